"""Data-parallel launch through MindSpore's own launcher, `msrun` (dynamic cluster).

A command given `--workers N` (N > 1) runs this same command line under msrun, once per
worker. Each worker tells that it is one from the environment msrun gives it (`MS_ROLE`), so
the command line is passed on unchanged. msrun works on CPU (MCCL), GPU (NCCL) and Ascend
(HCCL) alike; `mpirun` does not work with MindSpore on CPU. Pitfalls handled here: msrun
starts workers as a bare `python` from PATH, so this interpreter's folder goes first on PATH;
without `--join=True` it returns at once; and after a worker dies msrun waits for its
scheduler's heartbeat time-out (about 40 s), so we watch its output and end the whole process
tree as soon as it reports a failed worker.

Signals: a cluster stopping a job (SLURM's `--signal`, a time limit, `scontrol requeue`,
preemption) sends SIGTERM to every process of the job at once, not only to ours. msrun and its
scheduler have no handler for it and would die at once, leaving the workers orphaned halfway
through saving their position. So both run with SIGTERM and SIGUSR1 ignored (a disposition
that survives exec); the workers put the default back (`cli`), and `train` installs its
graceful stop (`preemption`).

Under SLURM, where the command runs decides how msrun starts. In the job's own shell (the
batch step: Snakemake's `mpi` jobs, or an `salloc` shell) it runs under srun, one per node, so
the workers belong to the job's nodes (`slurm`). Inside a job step (Snakemake's default
`srun -n1` wrapper) it starts directly, on this node only: a step cannot start steps on other
nodes, and a nested srun would be signalled with the step.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import psutil

from vgg16.layout import MSRUN_LOGS
from vgg16.preemption import SIGNALS, STOPPED, Preempted
from vgg16.slurm import NODE_RANK, NODE_TIMEOUT_S, Allocation, NoAllocation

#: What msrun launches: the package's CLI as a script (msrun wants a file, not `-m`).
SCRIPT = Path(__file__).resolve().parent / "__main__.py"
#: How a worker's command line names SCRIPT, wherever the package lies.
WORKER_SCRIPT = f"{SCRIPT.parent.name}/{SCRIPT.name}"
#: Set by msrun in its scheduler (MS_SCHED) and in every worker (MS_WORKER).
ROLE = "MS_ROLE"
#: msrun's own words when one worker exits non-zero (process_entity/_api.py).
WORKER_FAILED = "exit with exception"
FAILURE_GRACE_S = 2.0
#: How long srun may take to end after its step was killed.
KILL_WAIT_S = 60.0
LOG_TAIL_LINES = 40


class WorkerFailed(RuntimeError):
    """A launched worker exited with an error (or was killed)."""


def in_group() -> bool:
    """Whether this process was started by msrun as part of a process group."""
    return ROLE in os.environ


def set_stop_signals(disposition: signal.Handlers) -> None:
    """SIGTERM and SIGUSR1 to SIG_IGN in msrun's process before exec (it, its scheduler and
    its workers inherit that), or back to SIG_DFL in a worker, so that a stopped job's workers
    end (or stop gracefully, once `train` installs its handler)."""
    for sig in SIGNALS:
        signal.signal(sig, disposition)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of every command that can run on several workers."""
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="data-parallel processes, launched with msrun (default 1)",
    )
    parser.add_argument(
        "--nodes",
        type=int,
        default=1,
        help="nodes of a SLURM allocation to spread --workers over (one msrun each)",
    )
    parser.add_argument(
        "--log_dir", type=Path, help=f"msrun's worker logs (default: <output>/{MSRUN_LOGS})"
    )


def wanted(args: argparse.Namespace) -> bool:
    """Whether this command line asks for several workers and is not yet one of them."""
    return getattr(args, "workers", 1) > 1 and not in_group()


def relaunch(argv: list[str], args: argparse.Namespace) -> None:
    """Run the command line `argv` on `args.workers` processes, logs beside the output."""
    output = getattr(args, "output", None) or Path(".")
    launch(
        argv,
        workers=args.workers,
        log_dir=args.log_dir or Path(output) / MSRUN_LOGS,
        nodes=args.nodes,
    )


def free_port() -> int:
    """A TCP port free now, so two runs on one machine never share a scheduler port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


def msrun_command(
    worker_args: list[str],
    *,
    workers: int,
    local_workers: int,
    master_port: int,
    log_dir: Path,
    master_addr: str | None = None,
    node_rank: str | None = None,
) -> list[str]:
    """The msrun command line for `vgg16 <worker_args>` on `workers` processes in all."""
    cmd = ["msrun", f"--worker_num={workers}", f"--local_worker_num={local_workers}"]
    if master_addr:
        cmd.append(f"--master_addr={master_addr}")
    if node_rank is not None:
        cmd.append(f"--node_rank={node_rank}")
    cmd += [f"--master_port={master_port}", "--join=True", f"--log_dir={log_dir}"]
    return [*cmd, str(SCRIPT), *worker_args]


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("MS_NODE_TIMEOUT", str(NODE_TIMEOUT_S))
    return env


def end_tree(proc: subprocess.Popen) -> None:
    """Kill msrun and everything it started (workers, scheduler, log tailers)."""
    try:
        family = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    for p in family:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            continue
    proc.kill()
    proc.wait()


def is_worker(process: psutil.Process) -> bool:
    """Whether `process` is one of msrun's workers: not its scheduler, whose end would fail
    the whole group, nor the workers' own children (data loaders) nor msrun's `tail` of each
    worker log, which inherit a worker's environment."""
    try:
        parent = process.parent()
        return (
            process.environ().get(ROLE) == "MS_WORKER"
            and parent is not None
            and parent.environ().get(ROLE) != "MS_WORKER"
            and any(arg.endswith(WORKER_SCRIPT) for arg in process.cmdline())
        )
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _workers(proc: subprocess.Popen) -> list[psutil.Process]:
    """msrun's worker processes (`is_worker`) under `proc`."""
    return [c for c in psutil.Process(proc.pid).children(recursive=True) if is_worker(c)]


def _forward_signals(proc: subprocess.Popen) -> None:
    """Pass SIGTERM and SIGUSR1 on to the workers, so that they stop gracefully together
    (`preemption`); msrun would otherwise end them on its own terms."""

    def forward(signum: int, frame: FrameType | None) -> None:
        for worker in _workers(proc):
            try:
                worker.send_signal(signum)
            except psutil.NoSuchProcess:
                continue

    for sig in SIGNALS:
        signal.signal(sig, forward)


def worker_logs(log_dir: Path) -> list[Path]:
    return sorted(Path(log_dir).glob("worker_*.log"))


def _failed_worker_tails(log_dir: Path, ranks: range | None = None) -> str:
    """The end of the logs of `ranks` (where known), else of each worker log that shows an
    error (all of them if none does)."""
    logs = {path: path.read_text(errors="replace") for path in worker_logs(log_dir)}
    if ranks is not None:
        failed = {p: t for p, t in logs.items() if int(p.stem.split("_")[1]) in ranks}
    else:
        failed = {p: t for p, t in logs.items() if "Traceback" in t or "error:" in t}
    parts = []
    for path, text in (failed or logs).items():
        tail = text.splitlines()[-LOG_TAIL_LINES:]
        parts.append(f"--- {path} (last {len(tail)} lines) ---\n" + "\n".join(tail))
    return "\n".join(parts)


@dataclass(frozen=True)
class Launch:
    """What runs the workers: msrun here, or srun of one msrun per node of `allocation`."""

    command: list[str]
    workers_per_node: int
    allocation: Allocation | None = None

    @classmethod
    def of(cls, worker_args: list[str], *, workers: int, nodes: int, log_dir: Path) -> Launch:
        allocation = Allocation.of_this_shell()
        if allocation is None:
            if nodes > 1:
                raise NoAllocation(
                    f"--nodes {nodes} needs to run in a SLURM job's own shell: "
                    + (
                        "this is a job step (SLURM_STEP_ID is set); give the rule the `mpi` "
                        'resource (README, "On a SLURM cluster") so that Snakemake runs it '
                        "outside a step"
                        if "SLURM_STEP_ID" in os.environ
                        else "there is no SLURM job here (no SLURM_JOB_ID)"
                    )
                )
            msrun = msrun_command(worker_args, workers=workers, local_workers=workers,
                                  master_port=free_port(), log_dir=log_dir)  # fmt: skip
            return cls(msrun, workers)
        if workers % nodes:
            raise ValueError(f"--workers {workers} is not a multiple of --nodes {nodes}")
        msrun = msrun_command(
            worker_args,
            workers=workers,
            local_workers=workers // nodes,
            master_port=free_port(),
            log_dir=log_dir,
            master_addr=allocation.nodes[0],
            node_rank=NODE_RANK,
        )
        return cls(allocation.srun_command(msrun, nodes=nodes), workers // nodes, allocation)

    def failed_node(self, line: str) -> tuple[str, range] | tuple[None, None]:
        """The node an srun-labelled line of output came from (`k: ...` from task k), and
        the ranks of the workers there."""
        label = line.split(":", 1)[0].strip()
        if self.allocation is None or not label.isdigit():
            return None, None
        task = int(label)
        ranks = range(task * self.workers_per_node, (task + 1) * self.workers_per_node)
        return self.allocation.nodes[task], ranks


def launch(worker_args: list[str], *, workers: int, log_dir: Path, nodes: int = 1) -> None:
    """Run `vgg16 <worker_args>` on `workers` processes and wait for all of them.

    Every worker's log is copied to our stdout at the end (the rule's log); a failing worker
    raises WorkerFailed with its log's tail (and its node's name), without waiting for
    msrun's time-out.
    """
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    for old in worker_logs(log_dir):
        old.unlink()
    how = Launch.of(worker_args, workers=workers, nodes=nodes, log_dir=log_dir)
    where = f" on nodes {', '.join(how.allocation.nodes[:nodes])}" if how.allocation else ""
    print(f"launching {workers} workers{where}: {shlex.join(how.command)}", flush=True)
    started = time.perf_counter()
    set_stop_signals(signal.SIG_IGN)  # inherited by msrun, kept across its exec
    proc = subprocess.Popen(
        how.command, env=_environment(), text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    _forward_signals(proc)
    failure = _watch(proc, how)
    logs = {path: path.read_text(errors="replace") for path in worker_logs(log_dir)}
    for path, text in logs.items():
        print(f"===== {path.name} =====\n{text}", flush=True)
    stopped = [line for text in logs.values() for line in text.splitlines() if STOPPED in line]
    if stopped:  # every worker stopped after the same step; rank 0 saved the position
        raise Preempted(stopped[0].split(": ", 1)[-1])
    if failure is not None or proc.returncode:
        node, ranks = how.failed_node(failure) if failure else (None, None)
        said = failure.split("]")[-1].strip() if failure else None  # msrun's own words
        names = ", ".join(f"worker_{rank}.log" for rank in ranks or ())
        whose = f"on node {node} (worker log {names}): " if node else ""
        raise WorkerFailed(
            f"a worker failed after {time.perf_counter() - started:.0f} s: {whose}"
            f"{said or f'msrun exited with {proc.returncode}'} (logs in {log_dir})\n"
            f"{_failed_worker_tails(log_dir, ranks)}"
        )
    print(f"{workers} workers finished in {time.perf_counter() - started:.1f} s", flush=True)


def _watch(proc: subprocess.Popen, how: Launch) -> str | None:
    """Copy msrun's output to ours until it ends, and return its word that a worker failed.

    msrun itself would then wait for its scheduler's time-out, and srun for the cluster's
    KillWait, so on that word the other workers are ended at once: the whole process tree
    here, or the srun step's on every node (then srun itself ends, or is ended after
    KILL_WAIT_S).
    """
    assert proc.stdout is not None
    failure = None
    for line in proc.stdout:
        print(f"[msrun] {line}", end="", flush=True)
        if failure is None and WORKER_FAILED in line:
            failure = line.strip()
            if how.allocation is None:
                time.sleep(FAILURE_GRACE_S)  # let the other workers' logs flush
                end_tree(proc)
                return failure
            how.allocation.kill_step()
    try:
        proc.wait(timeout=KILL_WAIT_S if failure else None)
    except subprocess.TimeoutExpired:
        end_tree(proc)
    return failure
