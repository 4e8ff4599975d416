"""`vgg16 <stage>`: the command line, parsing and dispatch only.

Each command is a stage whose module (`stages.module`) holds its flags (`add_arguments`) and
its `main(args)`, which reads top to bottom; only the chosen stage's module is imported, so a
command that needs no MindSpore never loads it. A command given `--workers N` runs under msrun
instead (`launch`). `train` and `evaluate` (alias `eval`) accept the seed's flags with the
seed's names and meanings, so a user of the model zoo's `train.py`/`eval.py` can switch
without relearning them.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from importlib import import_module
from types import ModuleType

from vgg16 import folder_lock, launch, stages
from vgg16.folder_lock import FolderBusy
from vgg16.layout import TrainFolder
from vgg16.preemption import EXIT_CODE, Preempted
from vgg16.slurm import NoAllocation

#: Commands kept under an older or the seed's name.
ALIASES = {"evaluate": ["eval"]}


def stage_module(stage: str) -> ModuleType:
    return import_module(f"vgg16.{stages.module(stage)}")


def build_parser(stage: str | None = None) -> argparse.ArgumentParser:
    """Every stage as a sub-command; the flags of `stage` alone, which is all one command
    line needs (and `vgg16 --help` lists the stages without importing any)."""
    parser = argparse.ArgumentParser(prog="vgg16", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help in stages.STAGES.items():
        p = sub.add_parser(name, help=help, description=help, aliases=ALIASES.get(name, []))
        p.set_defaults(stage=name)
        if name == stage:
            stage_module(name).add_arguments(p)
    return parser


def _stage_named(argv: list[str]) -> str | None:
    """The stage the command line names (its first word), aliases resolved."""
    aliases = {alias: name for name, names in ALIASES.items() for alias in names}
    first = next((word for word in argv if not word.startswith("-")), None)
    return aliases.get(first, first) if first is not None else None


def _one_writer(args: argparse.Namespace) -> contextlib.AbstractContextManager:
    """`train`'s hold on its output folder (`folder_lock`). msrun's workers take none: the
    command that launched them holds it for them; `--input_only` writes nothing."""
    if args.stage != "train" or launch.in_group() or args.input_only:
        return contextlib.nullcontext()
    return folder_lock.hold(TrainFolder(args.output).lock, "run folder")


def parse_args(argv: list[str]) -> argparse.Namespace:
    stage = _stage_named(argv)
    return build_parser(stage if stage in stages.STAGES else None).parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if launch.in_group():
        launch.set_stop_signals(signal.SIG_DFL)
    try:
        with _one_writer(args):
            if launch.wanted(args):
                launch.relaunch(argv, args)
            else:
                stage_module(args.stage).main(args)
    except (
        OSError,
        ValueError,
        FloatingPointError,
        launch.WorkerFailed,
        NoAllocation,
        FolderBusy,
    ) as err:
        print(f"vgg16 {args.command}: error: {err}", file=sys.stderr)
        return 1
    except Preempted as stopped:
        print(f"vgg16 {args.command}: {stopped}", file=sys.stderr)
        return EXIT_CODE
    return 0
