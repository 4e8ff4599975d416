"""The test clusters (tests/slurm/start-cluster) and the workflow runs the SLURM tests share.

Those runs are long and mostly wait (SLURM jobs start, Snakemake polls them), so conftest
starts them in background threads as soon as pytest has collected a test that needs them, and
the other modules run meanwhile; under pytest-xdist the first worker starts them, and every
worker reads how each ended from the `result.json` beside it.

- On the one-node cluster: the digits demo and a tiny 2-worker run in one workflow, through
  profiles/slurm-cpu edited as README's SLURM section says, with a 2-minute limit for `train`
  (the profile's 48 h, scaled down) and one `scontrol requeue` of the 2-worker `train` job
  while it trains.
- On the two-node cluster: the same tiny run with one worker on each node (the profile's
  several-node settings), requeued in its second epoch, and in its third, after the restart,
  the worker on the second node killed (`kill -9`), which fails the job; Snakemake's retry
  resumes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import yaml
from test_workflow import TINY_RECIPE as WORKFLOW_TINY_RECIPE
from test_workflow import copy_repo

from vgg16.formats.cifar10 import find_batches, read_batches
from vgg16.formats.digits import write_digits
from vgg16.launch import is_worker

REPO = Path(__file__).resolve().parent.parent
START = REPO / "tests" / "slurm" / "start-cluster"
#: Set by .ci/run: there, a cluster that cannot be started fails the SLURM tests.
REQUIRED = "VGG16_REQUIRE_SLURM"
#: The test's stand-ins for the profile's time limit and warning (48 h, SIGTERM 300 s ahead).
#: SLURM counts limits in minutes and checks them every 30 s, so the warning comes 30-60 s
#: before this limit: after 60-90 s, while the demo's 3 epochs need longer.
LIMIT_MIN, WARN_S = 2, 30
#: A 2-minute limit may stop the demo's training more than once; the shipped 3 retries are meant
#: for 48 h limits, and the test's limit is 1,440 times shorter.
RETRIES = 10
TIMEOUT_S = 1500
#: tests/test_workflow.py's tiny recipe for 2 workers: 4 epochs of 3 steps (batch 2 x 8, a
#: line per step), every checkpoint kept (0.27 GB each): those saved before a node is lost
#: must all be there, unchanged, at the end.
TINY_RECIPE = {**WORKFLOW_TINY_RECIPE, "max_epoch": 4, "batch_size": 8, "eval_batch_size": 16,
               "keep_checkpoint_max": 4, "random_flip": True, "log_interval": 1}  # fmt: skip
CONFIG = {
    "datasets": {
        "digits": {"format": "digits", "val_fraction": 0.1, "shards": 1},
        "tiny": {"format": "cifar10", "data_path": "src", "expect": {"train": 64, "test": 40},
                 "val_fraction": 0.25},
    },
    "runs": {
        # The recipe and length of tests/test_end_to_end.py's run, to compare with.
        "digits": {"dataset": "digits", "recipe": "config/recipes/digits.yaml",
                   "set": {"max_epoch": 3}},
        "tiny_w2": {"dataset": "tiny", "recipe": "tiny.yaml", "set": {}, "workers": 2},
    },
}  # fmt: skip
#: The two-node cluster's workflow: the tiny run alone, one worker per node.
TWO_NODE_CONFIG = {"datasets": {"tiny": CONFIG["datasets"]["tiny"]},
                   "runs": {"tiny_w2": CONFIG["runs"]["tiny_w2"]}}  # fmt: skip
#: The run a requeue (and, on two nodes, a lost node) interrupts.
INTERRUPTED = "tiny_w2"
SUBMITTED = re.compile(r"Job \S+ has been submitted with SLURM jobid (\d+) \(log: (\S+)\)")


@dataclass(frozen=True)
class Cluster:
    """One of tests/slurm/start-cluster's clusters, reached through its own config alone."""

    nodes: int

    @property
    def folder(self) -> Path:
        return Path(os.environ.get("VGG16_SLURM_ROOT", "/tmp/vgg16-slurm")) / f"{self.nodes}node"

    @property
    def conf(self) -> Path:
        return self.folder / "etc" / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *cmd: str, check: bool = False) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True, check=check,
                              timeout=60)  # fmt: skip

    def answers(self) -> bool:
        try:
            return self.conf.is_file() and "is UP" in self.run("scontrol", "ping").stdout
        except (FileNotFoundError, subprocess.TimeoutExpired):
            return False

    def ensure(self) -> str | None:
        """None once the cluster answers (started here if need be), else why it cannot."""
        if self.answers():
            return None
        if os.geteuid() != 0:
            return f"no test SLURM cluster answers, and starting one needs root: sudo {START}"
        result = subprocess.run([START, "--nodes", str(self.nodes)], capture_output=True,
                                text=True)  # fmt: skip
        if result.returncode or not self.answers():
            return f"{START} --nodes {self.nodes} failed:\n{result.stdout}{result.stderr}"
        return None

    def job_state(self, job: str) -> dict[str, str]:
        """`scontrol show job` as key=value pairs ({} once SLURM has forgotten the job)."""
        return dict(
            re.findall(r"(\w+)=(\S*)", self.run("scontrol", "-o", "show", "job", job).stdout)
        )

    def workers_on(self, node: str) -> list[psutil.Process]:
        """msrun's worker processes running on `node`: in its network namespace."""
        netns = (self.folder / "nodes" / node / "netns").read_text().strip()

        def in_node(proc: psutil.Process) -> bool:
            try:
                return os.readlink(f"/proc/{proc.pid}/ns/net") == netns
            except OSError:
                return False

        return [proc for proc in psutil.process_iter() if in_node(proc) and is_worker(proc)]


def cores() -> int:
    return len(os.sched_getaffinity(0))


def edit_profile(source: Path, dest: Path, *, nodes: int = 1, groups: bool = True) -> Path:
    """profiles/slurm-cpu with the edits README's SLURM section lists, for a test cluster: its
    partition, no accounts nor accounting, one core and little memory per job but the whole
    node for `train` (two small jobs run at once), and the test's time limit, warning and
    retries; on several nodes, the profile's commented several-node settings for `train`.
    Without `groups`, the profile's groups are taken out (bench/slurm_groups.py)."""
    profile = yaml.safe_load(source.read_text())
    defaults = profile["default-resources"]
    defaults.update(slurm_partition="debug", cpus_per_task=1, mem_mb=2000)
    del defaults["slurm_account"]
    for resources in profile["set-resources"].values():
        resources.update(cpus_per_task=1, mem_mb=min(resources.get("mem_mb", 2000), 4000))
    train = profile["set-resources"]["train"]
    # msrun's workers share the job's cores: train gets the node's.
    train.update(cpus_per_task=cores(), runtime=LIMIT_MIN, slurm_extra=f"'--signal=TERM@{WARN_S}'")
    if nodes > 1:
        train.update(nodes=nodes, tasks=nodes, mpi="srun", workers=nodes)
    if not groups:
        del profile["groups"]
    profile["retries"] = RETRIES
    profile["slurm-status-command"] = "squeue"  # no accounting database here for sacct
    dest.mkdir(parents=True)
    (dest / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return dest


def write_tiny_source(folder: Path) -> None:
    """64 training and 40 test digits in the CIFAR-10 binary layout (as conftest's)."""
    from conftest import write_source

    raw = write_digits(folder.parent / "digits-raw")
    write_source(folder, *read_batches(find_batches(raw)["train"]), train=64, test=40)


def snakemake_command(workdir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "--directory", str(workdir),
            "--snakefile", str(workdir / "Snakefile"), "--configfile",
            str(workdir / "config.yaml"), *args]  # fmt: skip


def checkpoint_digests(folder: Path) -> dict[str, str]:
    """sha256 of each checkpoint in a run's ckpt folder (not the temporary files of a save)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.ckpt")}


@dataclass
class ClusterRun:
    """A workflow run through a test cluster; `wait()` returns it once finished, in any
    process. `unavailable` says why no cluster could run it."""

    workdir: Path
    cluster: Cluster
    config: dict
    #: `train`'s nodes (the profile's several-node settings when above 1).
    nodes: int = 1
    groups: bool = True
    unavailable: str | None = None
    returncode: int | None = None
    requeued: str | None = None
    #: `scontrol show job` of the requeued job once it ran again.
    restarted: dict[str, str] = field(default_factory=dict)
    #: On several nodes: the killed worker's pid, the checkpoints there were then, and how
    #: long its job took to end after the kill.
    killed: int | None = None
    saved_before_kill: dict[str, str] = field(default_factory=dict)
    failed_after_s: float | None = None
    #: The train log of each attempt seen, in order (`> {log}` starts it afresh at each), and
    #: which of them was requeued and which lost its worker (the retry's is the one after it).
    attempt_logs: list[str] = field(default_factory=list)
    requeued_attempt: int | None = None
    killed_attempt: int | None = None
    seconds: float = 0.0
    error: str | None = None
    _thread: threading.Thread | None = None
    _killed_at: float = 0.0

    @property
    def profile(self) -> Path:
        return self.workdir / "test-profile"

    @property
    def output(self) -> Path:
        return self.workdir / "snakemake.out"

    @property
    def result(self) -> Path:
        """How the run ended, written last: what the other pytest-xdist workers wait for."""
        return self.workdir.parent / "result.json"

    @property
    def requeued_log(self) -> str:
        """The requeued attempt's train log, as it ended."""
        return "" if self.requeued_attempt is None else self.attempt_logs[self.requeued_attempt]

    @property
    def train_log(self) -> Path:
        return self.workdir / "results" / "logs" / "train" / f"{INTERRUPTED}.log"

    def start(self) -> ClusterRun:
        """Starts the cluster if it does not answer, then the workflow in a background thread."""
        self.unavailable = self.cluster.ensure()
        if self.unavailable:
            self._save()
            return self
        self._thread = threading.Thread(target=self._run, name="slurm-workflow", daemon=True)
        self._thread.start()
        return self

    def wait(self) -> ClusterRun:
        if self._thread is not None:
            self._thread.join()
            return self
        deadline = time.monotonic() + TIMEOUT_S + 600
        while not self.result.is_file():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {self.result} after {TIMEOUT_S + 600} s")
            time.sleep(1)
        for key, value in json.loads(self.result.read_text()).items():
            setattr(self, key, value)
        return self

    _SAVED = ("unavailable", "returncode", "requeued", "restarted", "killed",
              "saved_before_kill", "failed_after_s", "attempt_logs", "requeued_attempt",
              "killed_attempt", "seconds", "error")  # fmt: skip

    def _save(self) -> None:
        tmp = self.result.with_suffix(".tmp")
        tmp.write_text(json.dumps({key: getattr(self, key) for key in self._SAVED}))
        tmp.rename(self.result)

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def jobs(self, rule: str, run: str | None = None) -> list[str]:
        """SLURM job ids of `rule` (for `run`), in submission order."""
        where = f"rule_{rule}/{run}/" if run else f"rule_{rule}/"
        return [job for job, log in SUBMITTED.findall(self.text()) if where in log]

    def group_jobs(self, group: str) -> list[str]:
        """SLURM job ids of Snakemake group `group`, in submission order (the plugin names a
        group job's log folder after the group and its rules)."""
        return [job for job, log in SUBMITTED.findall(self.text()) if f"/group_{group}_" in log]

    def _run(self) -> None:
        try:
            self._run_workflow()
        except Exception:
            self.error = traceback.format_exc()
        finally:
            self._save()

    def _run_workflow(self) -> None:
        started = time.monotonic()
        self.workdir.mkdir(parents=True)
        copy_repo(self.workdir)
        write_tiny_source(self.workdir / "src")
        (self.workdir / "tiny.yaml").write_text(yaml.safe_dump(TINY_RECIPE))
        (self.workdir / "config.yaml").write_text(yaml.safe_dump(self.config))
        edit_profile(self.workdir / "profiles" / "slurm-cpu" / "config.yaml", self.profile,
                     nodes=self.nodes, groups=self.groups)  # fmt: skip
        cmd = snakemake_command(self.workdir, "--workflow-profile", str(self.profile))
        with self.output.open("w") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=self.cluster.env)
        try:
            while proc.poll() is None:
                if time.monotonic() - started > TIMEOUT_S:
                    raise TimeoutError(f"the workflow took over {TIMEOUT_S} s:\n{self.text()}")
                self._interrupt()
                time.sleep(0.5)
        finally:
            if proc.poll() is None:
                proc.kill()
                self.cluster.run("scancel", *(job for job, _ in SUBMITTED.findall(self.text())))
        self.returncode = proc.returncode
        self.seconds = time.monotonic() - started

    def _follow_attempts(self, log: str) -> None:
        """Within an attempt the log only grows; a log that is not the last one seen, grown,
        is the next attempt's."""
        if self.attempt_logs and log.startswith(self.attempt_logs[-1]):
            self.attempt_logs[-1] = log
        elif log:
            self.attempt_logs.append(log)

    def _interrupt(self) -> None:
        """One look at the interrupted run's training, and the next interruption when due:
        a requeue in epoch 2; on several nodes, once the requeued job runs again, a worker on
        the last node killed in epoch 3."""
        log = self.train_log.read_text(errors="replace") if self.train_log.is_file() else ""
        self._follow_attempts(log)
        if self.requeued is None:
            jobs = self.jobs("train", INTERRUPTED)
            if jobs and "epoch 2 step" in log:
                self.requeued = jobs[-1]
                self.requeued_attempt = len(self.attempt_logs) - 1
                self.cluster.run("scontrol", "requeue", self.requeued, check=True)
            return
        state = self.cluster.job_state(self.requeued)
        if not self.restarted:
            if state.get("JobState") == "PENDING":
                # A requeued job waits 2 minutes before it may start again (its BeginTime);
                # an administrator can let it go at once, as here.
                self.cluster.run("scontrol", "update", f"jobid={self.requeued}", "StartTime=now")
            elif state.get("JobState") == "RUNNING" and state.get("Restarts") == "1":
                self.restarted = state
            return
        if self.nodes == 1:
            return
        if self.killed is None:
            workers = self.cluster.workers_on(f"n{self.nodes}") if "epoch 3 step" in log else []
            if len(workers) == 1:
                worker = workers[0]
                ckpt = self.workdir / "results" / "runs" / INTERRUPTED / "train" / "ckpt"
                self.saved_before_kill = checkpoint_digests(ckpt)
                worker.send_signal(signal.SIGKILL)
                self.killed, self._killed_at = worker.pid, time.monotonic()
                self.killed_attempt = len(self.attempt_logs) - 1
        elif self.failed_after_s is None and state.get("JobState") != "RUNNING":
            self.failed_after_s = time.monotonic() - self._killed_at
