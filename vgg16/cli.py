"""`vgg16 <stage>`: the command line, parsing and dispatch only.

Each command is a stage with a module of the same name whose `main(args)` reads top to
bottom; a command given `--workers N` runs under msrun instead (`launch`). `train` and
`evaluate` (alias `eval`) accept the seed's flags with the seed's names and meanings, so a
user of the model zoo's `train.py`/`eval.py` can switch without relearning them.
"""

from __future__ import annotations

import argparse
import signal
import sys
from importlib import import_module
from pathlib import Path

from vgg16 import launch
from vgg16.config import DATASETS, DEVICE_TARGETS
from vgg16.preemption import EXIT_CODE, Preempted

#: Commands kept under an older or the seed's name.
ALIASES = {"evaluate": ["eval"]}


def _recipe_flags(p: argparse.ArgumentParser, what: str = "the dataset's built-in one") -> None:
    p.add_argument("--config", type=Path, help=f"recipe YAML (default: {what})")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe key; repeatable",
    )
    p.add_argument("--dataset", choices=DATASETS, help="dataset type (seed flag)")


def _device_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device_target",
        choices=DEVICE_TARGETS,
        help="backend (seed flag); default: the best available",
    )
    p.add_argument("--device_id", type=int, default=0, help="device index (seed flag)")
    p.add_argument(
        "--is_distributed",
        type=int,
        choices=(0, 1),
        default=0,
        help="1: one process of a group started by rank table (seed flag; "
        "--workers needs no such flag)",
    )


def _parallel_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="data-parallel processes, launched with msrun (default 1)",
    )
    p.add_argument(
        "--nodes",
        type=int,
        default=1,
        help="nodes of a SLURM allocation to spread --workers over (one msrun each)",
    )
    p.add_argument("--log_dir", type=Path, help="msrun's worker logs (default: <output>/msrun)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vgg16", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def stage(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, aliases=ALIASES.get(name, []))
        p.set_defaults(stage=name)
        return p

    p = stage("download", "materialise a raw dataset (URL, local path, ImageNet archives, digits)")
    p.add_argument("--dataset", choices=DATASETS, required=True, help="raw layout")
    p.add_argument("--url", help="archive to fetch (http, https, file)")
    p.add_argument("--md5", help="expected md5 of the archive")
    p.add_argument("--sha256", help="expected sha256 of the archive")
    p.add_argument("--data_path", type=Path, help="local folder or archive instead of a URL")
    p.add_argument(
        "--archive",
        action="append",
        default=[],
        metavar="KEY=PATH",
        help="imagenet2012 only: the official train, val and devkit files, all three, "
        "instead of a URL or data_path; repeatable",
    )
    p.add_argument("--downloads", type=Path, help="where fetched archives are kept")
    p.add_argument("--output", type=Path, required=True, help="raw layout folder to create")

    p = stage("verify", "check a raw layout's files, labels and counts")
    p.add_argument("--dataset", choices=DATASETS, required=True, help="raw layout")
    p.add_argument("--data_path", type=Path, required=True)
    p.add_argument("--num_classes", type=int, required=True)
    p.add_argument(
        "--expect",
        action="append",
        default=[],
        metavar="SPLIT=COUNT",
        help="exact image count a split must have; repeatable",
    )
    p.add_argument("--output", type=Path, required=True, help="verified.json to write")

    p = stage("prepare", "convert a dataset to MindRecord (train/val/test)")
    p.add_argument("--dataset", choices=DATASETS, required=True, help="raw layout")
    p.add_argument(
        "--data_path",
        type=Path,
        required=True,
        help="CIFAR-10 binary folder, ImageNet folder with train/ and val/, or "
        "where to materialise digits",
    )
    p.add_argument("--output", type=Path, required=True, help="MindRecord folder to create")
    p.add_argument(
        "--val_fraction",
        type=float,
        default=0.1,
        help="share of train held out, stratified, as the val split (default 0.1)",
    )
    p.add_argument("--shards", type=int, default=1, help="MindRecord files per split")
    p.add_argument("--seed", type=int, default=1, help="seed of the val hold-out (default 1)")

    p = stage("train", "train VGG16 (seed: train.py)")
    _recipe_flags(p)
    _device_flags(p)
    p.add_argument(
        "--data_path",
        type=Path,
        required=True,
        help="prepared MindRecord folder or the seed's raw layout",
    )
    p.add_argument(
        "--output",
        "--ckpt_path",
        type=Path,
        default=Path("output"),
        help="the run's folder: ckpt/, history.csv, recipe.yaml (--ckpt_path: the seed's name)",
    )
    p.add_argument("--pre_trained", type=Path, help="checkpoint to start from (seed flag)")
    p.add_argument(
        "--reinit_head",
        action="store_true",
        help="with --pre_trained: re-initialise the last layer if num_classes differs",
    )
    p.add_argument("--ckpt_interval", type=int, help="epochs between checkpoints (seed flag)")
    _parallel_flags(p)

    p = stage("select", "pick the best checkpoint of a training run on the val split")
    _recipe_flags(p, "the run's recipe.yaml")
    _device_flags(p)
    p.add_argument("--data_path", type=Path, required=True, help="prepared MindRecord folder")
    p.add_argument("--train", type=Path, required=True, help="the training run's folder")
    p.add_argument("--output", type=Path, required=True, help="folder for selection.csv, best.ckpt")
    _parallel_flags(p)

    p = stage("evaluate", "evaluate a checkpoint (seed: eval.py)")
    _recipe_flags(p)
    _device_flags(p)
    p.add_argument("--data_path", type=Path, required=True)
    p.add_argument("--pre_trained", type=Path, required=True, help="checkpoint (seed flag)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument(
        "--output",
        type=Path,
        help="folder for metrics.json, confusion.csv, mistakes.csv and mistakes.npz",
    )
    _parallel_flags(p)

    p = stage("plot", "a run's plots: training, test-set confusions and classes, mistakes")
    p.add_argument("--history", type=Path, required=True)
    p.add_argument("--selection", type=Path, required=True)
    p.add_argument(
        "--eval",
        type=Path,
        required=True,
        help="evaluate's folder: metrics.json, confusion.csv, mistakes.csv, mistakes.npz",
    )
    p.add_argument("--output", type=Path, required=True)

    p = stage("summary", "one row per run: validation and test accuracy, training time")
    p.add_argument("--output", type=Path, required=True, help="summary.csv to write")
    p.add_argument(
        "--comparison",
        type=Path,
        required=True,
        help="PNG to write: every run's validation top-1 per epoch on shared axes",
    )
    p.add_argument("--runs", nargs="+", required=True, help="run names")
    for what in ("history", "selection", "metrics", "recipes"):
        p.add_argument(
            f"--{what}",
            type=Path,
            nargs="+",
            required=True,
            help=f"one {what.rstrip('s')} file per run, in --runs order",
        )

    p = stage("export", "export a checkpoint to MINDIR")
    _recipe_flags(p)
    _device_flags(p)
    p.add_argument("--pre_trained", type=Path, required=True)
    p.add_argument("--output", type=Path, required=True)
    p.add_argument("--batch_size", type=int, default=1, help="fixed batch size of the MINDIR")

    p = stage("predict", "class probabilities for image files")
    _recipe_flags(p)
    _device_flags(p)
    p.add_argument("--pre_trained", type=Path, required=True)
    p.add_argument("--output", type=Path, required=True, help="folder for predictions.csv")
    p.add_argument("images", type=Path, nargs="+")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    if launch.in_group():
        launch.set_stop_signals(signal.SIG_DFL)
    try:
        if launch.wanted(args):
            launch.relaunch(argv, args)
        else:
            import_module(f"vgg16.{args.stage}").main(args)
    except (FileNotFoundError, ValueError, FloatingPointError, launch.WorkerFailed) as err:
        print(f"vgg16 {args.command}: error: {err}", file=sys.stderr)
        return 1
    except Preempted as stopped:
        print(f"vgg16 {args.command}: {stopped}", file=sys.stderr)
        return EXIT_CODE
    return 0
