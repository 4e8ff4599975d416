"""Stopping `train` gracefully on SIGTERM or SIGUSR1, what clusters send before they stop a job.

SLURM sends a signal ahead of a time limit (`--signal`) and on preemption; Snakemake and
users send SIGTERM. The handler only raises a flag; the training loop looks at it after each
step, so the step in flight completes, a resumable checkpoint of the exact position is
written, and the process exits with EXIT_CODE, which tells "stopped, resume me" apart from a
failure. With several workers the flag is combined across them (a sum all-reduce) at each
progress line and epoch end, not every step (it reads back to the host), so all stop after
the same step even if the signal reached only some.
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:  # the command line imports this module, which must not load MindSpore
    from vgg16.group import ProcessGroup

#: The exit status of a run stopped by a signal (BSD's EX_TEMPFAIL: "try again later").
EXIT_CODE = 75
SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
#: The line a stopped worker prints, by which the launcher tells a stop from a crash.
STOPPED = "training stopped by"


class Preempted(Exception):
    """Training stopped at a step boundary after a signal; its position is saved."""


class StopFlag:
    """Set by SIGTERM or SIGUSR1 once installed, and agreed across the process group."""

    def __init__(self, group: ProcessGroup) -> None:
        self.signal: str | None = None
        self._group = group

    def install(self) -> None:
        for sig in SIGNALS:
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signal = signal.Signals(signum).name

    def raised(self, agree: bool) -> bool:
        """Whether any worker has been signalled. Alone, this process's flag, at no cost; with
        several workers a collective call that reads a value back to the host, made only
        where `agree` (every worker must pass the same `agree` at the same steps), and
        otherwise False."""
        if self._group.size == 1:
            return self.signal is not None
        if not agree:
            return False
        anyone = self._group.any(self.signal is not None)
        if anyone and self.signal is None:
            self.signal = "a signal to another worker"
        return anyone

    def preempt(self, where: str) -> NoReturn:
        """Stop every worker once all get here (after the main one saved the position)."""
        self._group.barrier()
        raise Preempted(f"{STOPPED} {self.signal} {where}")
