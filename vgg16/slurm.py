"""The SLURM allocation a several-node launch spreads its workers over, and the srun that does.

A command given `--nodes N` runs in a job's own shell (the batch step: what Snakemake's SLURM
plugin gives a rule with the `mpi` resource, or an `salloc` shell), and starts one msrun per
node with srun. There the Snakemake jobstep plugin has removed every `SLURM_*` variable but the
job's identity (its `keep_slurm`), so the allocation is read back from the controller by job
id rather than from `SLURM_JOB_NODELIST` and `SLURM_CPUS_PER_TASK`; srun itself finds the job
from `SLURM_JOB_ID`.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

from vgg16.preemption import SIGNALS

#: Seconds MindSpore's cluster waits for a silent node before it fails the job (MindSpore's
#: `MS_NODE_TIMEOUT`); a node that dies without a word (power, network, a killed slurmd) is
#: noticed that late. Set here unless the environment sets it.
NODE_TIMEOUT_S = 30
#: msrun's `--node_rank` under srun: each node's own, expanded in that node's shell.
NODE_RANK = "$SLURM_NODEID"
#: The name of the job step of srun's msruns (`squeue --steps`), to kill it by name.
STEP_NAME = "vgg16-msrun"
#: `trap` arguments that make a shell ignore SIGNALS.
IGNORED_SIGNALS = "'' " + " ".join(sig.name.removeprefix("SIG") for sig in SIGNALS)


class NoAllocation(RuntimeError):
    """`--nodes` above 1 outside a SLURM job's own shell, or beyond its allocation."""


@dataclass(frozen=True)
class Allocation:
    """The nodes of the job this process runs in, and the cores each of its tasks has."""

    job_id: str
    nodes: tuple[str, ...]
    cpus_per_task: int

    @classmethod
    def of_this_shell(cls, environ: Mapping[str, str] = os.environ) -> Allocation | None:
        """The job's allocation when this is its own shell; None outside a job and in a job
        step (`SLURM_STEP_ID`), where a nested srun would be signalled with the step."""
        job_id = environ.get("SLURM_JOB_ID")
        if not job_id or "SLURM_STEP_ID" in environ:
            return None
        return cls.of_job(job_id)

    @classmethod
    def of_job(cls, job_id: str) -> Allocation:
        fields = dict(re.findall(r"([\w/:]+)=(\S*)", _scontrol("-o", "show", "job", job_id)))
        try:
            node_list, cpus = fields["NodeList"], fields["CPUs/Task"]
        except KeyError as missing:
            raise NoAllocation(
                f"`scontrol show job {job_id}` gives no {missing}: is job {job_id} running?"
            ) from None
        hosts = _scontrol("show", "hostnames", node_list).split()
        return cls(job_id, tuple(hosts), int(cpus) if cpus.isdigit() else 1)

    def srun_command(self, msrun: list[str], *, nodes: int) -> list[str]:
        """srun of the `msrun` command line once on each of the first `nodes` nodes, with
        `--node_rank={NODE_RANK}` left for each node's shell to expand.

        Each task ignores SIGTERM and SIGUSR1 (`trap ''`) and becomes msrun (`exec`): a
        stopped job's signal reaches every process of the step at once, and the workers stop
        gracefully only while msrun and its scheduler outlive them (`launch`). A task that
        fails ends the others (`--kill-on-bad-exit`), as msrun ends its own node's workers;
        `--label` tells whose node a line of output comes from (task k runs on node k).
        """
        if nodes > len(self.nodes):
            raise NoAllocation(
                f"--nodes {nodes}, but SLURM job {self.job_id} has {len(self.nodes)} node(s) "
                f"({', '.join(self.nodes)}): ask for them (the rule's `nodes` resource)"
            )
        rank = f"--node_rank={NODE_RANK}"
        inner = " ".join(
            f'--node_rank="{NODE_RANK}"' if a == rank else shlex.quote(a) for a in msrun
        )
        return [
            "srun", f"--jobid={self.job_id}", f"--job-name={STEP_NAME}", f"--nodes={nodes}",
            "--ntasks-per-node=1",
            f"--cpus-per-task={self.cpus_per_task}", "--kill-on-bad-exit=1", "--label",
            "--export=ALL", "bash", "-c", f"trap {IGNORED_SIGNALS} && exec {inner}",
        ]  # fmt: skip

    def kill_step(self) -> None:
        """SIGKILL, now, to every process of the msruns' step on every node.

        Once a node's msrun has failed, srun ends the others (`--kill-on-bad-exit`) the way
        SLURM ends a step, SIGTERM first and SIGKILL only after the cluster's KillWait (30 s
        by default); meanwhile SIGTERM sends their workers into a graceful stop that waits
        for the lost worker. Nothing is left to save: the last checkpoint is the place to
        resume from.
        """
        listed = subprocess.run(
            ["squeue", "--noheader", "--steps", f"--jobs={self.job_id}", "--format=%i %j"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        steps = [step for step, _, name in (line.partition(" ") for line in
                 listed.stdout.splitlines()) if name == STEP_NAME]  # fmt: skip
        if steps:
            subprocess.run(["scancel", "--signal=KILL", *steps], capture_output=True, timeout=60)


def _scontrol(*args: str) -> str:
    try:
        result = subprocess.run(["scontrol", *args], capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise NoAllocation("SLURM_JOB_ID is set, but there is no `scontrol` on PATH") from None
    if result.returncode:
        raise NoAllocation(f"`scontrol {' '.join(args)}` failed: {result.stderr.strip()}")
    return result.stdout
