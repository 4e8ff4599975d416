"""The test cluster (tests/slurm/start-cluster) and the workflow run the SLURM tests share.

That run is long and mostly waits (SLURM jobs start, Snakemake polls them), so conftest
starts it in a background thread as soon as pytest has collected a test that needs it, and
the other modules run meanwhile; under pytest-xdist the first worker starts it, and every
worker reads how it ended from `result.json` beside it. It is the digits demo and a tiny
2-worker run in one workflow, through profiles/slurm-cpu edited as README's SLURM section
says, with a 2-minute limit for `train` (the profile's 48 h, scaled down) and one `scontrol
requeue` of the 2-worker `train` job while it trains.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from test_workflow import TINY_RECIPE as WORKFLOW_TINY_RECIPE
from test_workflow import copy_repo

from vgg16.formats.cifar10 import find_batches, read_batches
from vgg16.formats.digits import write_digits

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
#: line per step), of which the last 2 checkpoints are kept (0.27 GB each).
TINY_RECIPE = {**WORKFLOW_TINY_RECIPE, "max_epoch": 4, "batch_size": 8, "eval_batch_size": 16,
               "keep_checkpoint_max": 2, "random_flip": True, "log_interval": 1}  # fmt: skip
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
SUBMITTED = re.compile(r"Job \S+ has been submitted with SLURM jobid (\d+) \(log: (\S+)\)")


def cluster_answers() -> bool:
    try:
        result = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False
    return "is UP" in result.stdout


def ensure_cluster() -> str | None:
    """None once a cluster answers (started here if need be), else why none can run."""
    if cluster_answers():
        return None
    if os.geteuid() != 0:
        return "no SLURM cluster answers, and starting one needs root: sudo " + str(START)
    result = subprocess.run([START], capture_output=True, text=True)
    if result.returncode or not cluster_answers():
        return f"{START} could not start a cluster:\n{result.stdout}{result.stderr}"
    return None


def cores() -> int:
    return len(os.sched_getaffinity(0))


def edit_profile(source: Path, dest: Path) -> Path:
    """profiles/slurm-cpu with the edits README's SLURM section lists, for this cluster: its
    partition, no accounts nor accounting, one core and little memory per job but the whole
    node for `train` (two small jobs run at once), and the test's time limit, warning and
    retries."""
    profile = yaml.safe_load(source.read_text())
    defaults = profile["default-resources"]
    defaults.update(slurm_partition="debug", cpus_per_task=1, mem_mb=2000)
    del defaults["slurm_account"]
    for resources in profile["set-resources"].values():
        resources.update(cpus_per_task=1, mem_mb=min(resources.get("mem_mb", 2000), 4000))
    train = profile["set-resources"]["train"]
    # msrun's workers share the job's cores: train gets the node's.
    train.update(cpus_per_task=cores(), runtime=LIMIT_MIN, slurm_extra=f"'--signal=TERM@{WARN_S}'")
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
            str(workdir / "config.yaml"), "--replace-workflow-config", *args]  # fmt: skip


def job_state(job: str) -> dict[str, str]:
    """`scontrol show job` as key=value pairs ({} once SLURM has forgotten the job)."""
    result = subprocess.run(["scontrol", "-o", "show", "job", job], capture_output=True, text=True)
    return dict(re.findall(r"(\w+)=(\S*)", result.stdout))


@dataclass
class ClusterRun:
    """The workflow run through SLURM; `wait()` returns it once finished, in any process.

    `unavailable` says why no cluster could run it."""

    workdir: Path
    unavailable: str | None = None
    returncode: int | None = None
    requeued: str | None = None
    #: `scontrol show job` of the requeued job once it ran again.
    restarted: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None
    _thread: threading.Thread | None = None

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

    def start(self) -> ClusterRun:
        """Starts a cluster if none answers, then the workflow in a background thread."""
        self.unavailable = ensure_cluster()
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

    def _save(self) -> None:
        keys = ("unavailable", "returncode", "requeued", "restarted", "seconds", "error")
        tmp = self.result.with_suffix(".tmp")
        tmp.write_text(json.dumps({key: getattr(self, key) for key in keys}))
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
        (self.workdir / "config.yaml").write_text(yaml.safe_dump(CONFIG))
        edit_profile(self.workdir / "profiles" / "slurm-cpu" / "config.yaml", self.profile)
        cmd = snakemake_command(self.workdir, "--workflow-profile", str(self.profile))
        with self.output.open("w") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        tiny_log = self.workdir / "results" / "logs" / "train" / "tiny_w2.log"
        released = False
        try:
            while proc.poll() is None:
                if time.monotonic() - started > TIMEOUT_S:
                    raise TimeoutError(f"the workflow took over {TIMEOUT_S} s:\n{self.text()}")
                if self.requeued is None:
                    log = tiny_log.read_text(errors="replace") if tiny_log.is_file() else ""
                    jobs = self.jobs("train", "tiny_w2")
                    if jobs and "epoch 2 step" in log:
                        self.requeued = jobs[-1]
                        subprocess.run(["scontrol", "requeue", self.requeued], check=True)
                elif not released:
                    # A requeued job waits 2 minutes before it may start again (its
                    # BeginTime); an administrator can let it go at once, as here.
                    if job_state(self.requeued).get("JobState") == "PENDING":
                        released = not subprocess.run(
                            ["scontrol", "update", f"jobid={self.requeued}", "StartTime=now"],
                            capture_output=True,
                        ).returncode
                elif not self.restarted:
                    state = job_state(self.requeued)
                    if state.get("JobState") == "RUNNING":
                        self.restarted = state
                time.sleep(0.5)
        finally:
            if proc.poll() is None:
                proc.kill()
                subprocess.run(["scancel", *(job for job, _ in SUBMITTED.findall(self.text()))],
                               capture_output=True)  # fmt: skip
        self.returncode = proc.returncode
        self.seconds = time.monotonic() - started
