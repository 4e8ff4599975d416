"""`vgg16 <command>`: download, verify, prepare, train, select, eval, export, predict, plot.

`train` and `eval` accept the seed's flags with the seed's names and meanings, so a user of
the model zoo's `train.py`/`eval.py` can switch without relearning them. Every command that
reads a recipe takes `--config RECIPE.yaml` and `--set key=value`, so one recipe drives
prepare, train, select, eval, export and predict alike.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vgg16.config import DATASETS, DEVICE_TARGETS, Recipe, load_recipe
from vgg16.launch import WorkerFailed


def _recipe_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="recipe YAML (default: the dataset's built-in one)")
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
    p.add_argument("--log_dir", type=Path, help="msrun's worker logs (default: beside the output)")
    p.add_argument(
        "--is_distributed",
        type=int,
        choices=(0, 1),
        default=0,
        help="1: this process is one worker of a launched group (seed flag; --workers sets it)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vgg16", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare", help="convert a dataset to MindRecord (train/val/test)")
    _recipe_flags(p)
    p.add_argument(
        "--data_path",
        type=Path,
        required=True,
        help="CIFAR-10 binary folder, ImageNet folder with train/ and val/, or "
        "where to materialise digits",
    )
    p.add_argument("--output", type=Path, required=True, help="MindRecord folder to create")
    p.add_argument("--shards", type=int, help="MindRecord files per split (recipe key shards)")

    p = sub.add_parser("download", help="materialise a raw dataset (URL, local path or digits)")
    p.add_argument("--dataset", choices=DATASETS, required=True, help="raw layout")
    p.add_argument("--url", help="archive to fetch (http, https, file)")
    p.add_argument("--md5", help="expected md5 of the archive")
    p.add_argument("--sha256", help="expected sha256 of the archive")
    p.add_argument("--data_path", type=Path, help="local folder or archive instead of a URL")
    p.add_argument("--downloads", type=Path, help="where fetched archives are kept")
    p.add_argument("--output", type=Path, required=True, help="raw layout folder to create")

    p = sub.add_parser("verify", help="check a raw layout's files, labels and counts")
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

    p = sub.add_parser("plot", help="loss, lr and accuracy plots of a run")
    p.add_argument("--history", type=Path, required=True)
    p.add_argument("--selection", type=Path, required=True)
    p.add_argument("--output", type=Path, required=True)

    p = sub.add_parser("train", help="train VGG16 (seed: train.py)")
    _recipe_flags(p)
    _device_flags(p)
    p.add_argument(
        "--data_path",
        type=Path,
        required=True,
        help="prepared MindRecord folder or the seed's raw layout",
    )
    _parallel_flags(p)
    p.add_argument("--pre_trained", type=Path, help="checkpoint to start from (seed flag)")
    p.add_argument(
        "--reinit_head",
        action="store_true",
        help="with --pre_trained: re-initialise the last layer if num_classes differs",
    )
    p.add_argument(
        "--ckpt_path",
        type=Path,
        default=Path("output"),
        help="checkpoint folder (seed flag); history.csv goes beside it",
    )
    p.add_argument("--ckpt_interval", type=int, help="epochs between checkpoints (seed flag)")

    p = sub.add_parser("eval", help="evaluate a checkpoint (seed: eval.py)")
    _recipe_flags(p)
    _device_flags(p)
    p.add_argument("--data_path", type=Path, required=True)
    p.add_argument("--pre_trained", type=Path, required=True, help="checkpoint (seed flag)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--output", type=Path, help="folder for metrics.json and confusion.csv")
    _parallel_flags(p)

    p = sub.add_parser("select", help="pick the best checkpoint on the val split")
    _recipe_flags(p)
    _device_flags(p)
    p.add_argument("--data_path", type=Path, required=True, help="prepared MindRecord folder")
    p.add_argument("--ckpt_path", type=Path, required=True, help="folder of checkpoints")
    p.add_argument("--output", type=Path, required=True, help="folder for selection.csv, best.ckpt")
    _parallel_flags(p)

    p = sub.add_parser("export", help="export a checkpoint to MINDIR")
    _recipe_flags(p)
    _device_flags(p)
    p.add_argument("--pre_trained", type=Path, required=True)
    p.add_argument("--output", type=Path, required=True)
    p.add_argument("--batch_size", type=int, default=1, help="fixed batch size of the MINDIR")

    p = sub.add_parser("predict", help="class probabilities for image files")
    _recipe_flags(p)
    _device_flags(p)
    p.add_argument("--pre_trained", type=Path, required=True)
    p.add_argument("--output", type=Path, required=True, help="folder for predictions.csv")
    p.add_argument("images", type=Path, nargs="+")
    return parser


def cmd_download(args: argparse.Namespace) -> None:
    from vgg16.download import materialise

    path = materialise(
        args.dataset,
        args.output,
        url=args.url,
        md5=args.md5,
        sha256=args.sha256,
        data_path=args.data_path,
        downloads=args.downloads,
    )
    print(f"raw {args.dataset} data in {path}")


def cmd_verify(args: argparse.Namespace) -> None:
    from vgg16.verify import verify, write_report

    expect = {}
    for pair in args.expect:
        split, sep, count = pair.partition("=")
        if not sep or not count.isdigit():
            raise ValueError(f"--expect {pair!r}: expected SPLIT=COUNT, e.g. train=50000")
        expect[split] = int(count)
    report = verify(
        args.dataset, args.data_path, num_classes=args.num_classes, expect=expect or None
    )
    write_report(report, args.output)
    counts = {split: info["count"] for split, info in report["splits"].items()}
    print(f"verified {args.data_path}: {counts}")


def cmd_plot(args: argparse.Namespace) -> None:
    from vgg16.report import plot_run

    for path in plot_run(args.history, args.selection, args.output):
        print(f"wrote {path}")


#: Commands that need no recipe.
PLAIN_COMMANDS = {"download": cmd_download, "verify": cmd_verify, "plot": cmd_plot}


def _recipe(args: argparse.Namespace) -> Recipe:
    overrides = list(args.overrides)
    for key in ("ckpt_interval", "shards"):
        if getattr(args, key, None) is not None:
            overrides.append(f"{key}={getattr(args, key)}")
    return load_recipe(args.config, dataset=args.dataset, overrides=overrides)


def _start(args: argparse.Namespace, recipe: Recipe) -> tuple[str, int, int]:
    """Device set-up, then the process group when this is one of several workers.

    Nothing with side effects may come before: msrun's scheduler process runs the script
    up to `init()` too. Returns (device target, rank, group size).
    """
    from vgg16 import device

    target = device.set_up(args.device_target, args.device_id, recipe.seed)
    rank, size = device.init_distributed() if getattr(args, "is_distributed", 0) else (0, 1)
    return target, rank, size


def _net_from_checkpoint(args: argparse.Namespace, recipe: Recipe):
    """The recipe's network with the checkpoint's weights, strictly loaded."""
    from vgg16 import checkpoint
    from vgg16.model import build_net

    net = build_net(recipe)
    params, meta = checkpoint.read(args.pre_trained)
    checkpoint.load_weights(net, params, source=args.pre_trained)
    return net, meta


def cmd_prepare(args: argparse.Namespace, recipe: Recipe) -> None:
    from vgg16.mindrecord import prepare

    manifest = prepare(
        recipe.dataset,
        args.data_path,
        args.output,
        val_fraction=recipe.val_fraction,
        shards=recipe.shards,
        seed=recipe.seed,
    )
    counts = {split: info["count"] for split, info in manifest["splits"].items()}
    print(f"wrote {args.output} {counts}")


def cmd_train(args: argparse.Namespace, recipe: Recipe) -> None:
    from vgg16 import device, pipeline
    from vgg16.train import train

    target, rank, size = _start(args, recipe)
    data = pipeline.create_dataset(
        args.data_path,
        recipe,
        "train",
        training=True,
        batch_size=recipe.batch_size,
        num_shards=size,
        shard_id=rank,
    )
    if rank == 0:
        args.ckpt_path.mkdir(parents=True, exist_ok=True)
        recipe.dump(args.ckpt_path.parent / "recipe.yaml")
    train(
        recipe,
        data,
        ckpt_dir=args.ckpt_path,
        target=target,
        amp_level=device.amp_level(recipe, target),
        class_names=pipeline.class_names(args.data_path, recipe),
        pre_trained=args.pre_trained,
        reinit_head=args.reinit_head,
        rank=rank,
        group_size=size,
    )
    if rank == 0:
        print(
            f"checkpoints in {args.ckpt_path}, history in {args.ckpt_path.parent / 'history.csv'}"
        )


def cmd_eval(args: argparse.Namespace, recipe: Recipe) -> None:
    from vgg16 import pipeline
    from vgg16.evaluate import evaluate, write_metrics

    _, rank, size = _start(args, recipe)
    net, meta = _net_from_checkpoint(args, recipe)
    data = pipeline.create_dataset(
        args.data_path,
        recipe,
        args.split,
        training=False,
        batch_size=recipe.eval_batch_size,
        num_shards=size,
        shard_id=rank,
    )
    metrics = evaluate(net, data, recipe.num_classes, distributed=size > 1)
    if rank:
        return
    summary = {k: metrics[k] for k in ("top1", "top5", "loss", "num_images")}
    print(f"result: {json.dumps(summary)}")
    if args.output:
        write_metrics(
            args.output,
            metrics,
            pipeline.class_names(args.data_path, recipe),
            {
                "split": args.split,
                "checkpoint": str(args.pre_trained),
                "checkpoint_epoch": meta.get("epoch"),
                "recipe": recipe.to_dict(),
            },
        )
        print(f"metrics in {args.output / 'metrics.json'}")


def cmd_select(args: argparse.Namespace, recipe: Recipe) -> None:
    from vgg16 import pipeline
    from vgg16.evaluate import select
    from vgg16.model import build_net

    _, rank, size = _start(args, recipe)
    net = build_net(recipe)

    def val_dataset():
        return pipeline.create_dataset(
            args.data_path,
            recipe,
            "val",
            training=False,
            batch_size=recipe.eval_batch_size,
            num_shards=size,
            shard_id=rank,
        )

    select(
        net,
        args.ckpt_path,
        val_dataset,
        recipe.num_classes,
        args.output,
        rank=rank,
        distributed=size > 1,
    )


def cmd_export(args: argparse.Namespace, recipe: Recipe) -> None:
    from vgg16.predict import export

    _start(args, recipe)
    net, _ = _net_from_checkpoint(args, recipe)
    print(f"wrote {export(net, recipe, args.output, args.batch_size)}")


def cmd_predict(args: argparse.Namespace, recipe: Recipe) -> None:
    from vgg16.predict import predict

    _start(args, recipe)
    net, meta = _net_from_checkpoint(args, recipe)
    names = meta.get("class_names") or [str(i) for i in range(recipe.num_classes)]
    print(f"wrote {predict(net, recipe, args.images, names, args.output)}")


COMMANDS = {
    "prepare": cmd_prepare,
    "train": cmd_train,
    "eval": cmd_eval,
    "select": cmd_select,
    "export": cmd_export,
    "predict": cmd_predict,
}


def _launch_dir(args: argparse.Namespace) -> Path:
    if args.log_dir:
        return args.log_dir
    if args.command == "train":
        return args.ckpt_path.parent / "msrun"
    return (args.output or Path(".")) / "msrun"


def _worker_argv(argv: list[str]) -> list[str]:
    """This command line for each worker: without --workers/--nodes, with --is_distributed."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--workers", "--nodes"):
            skip = True
        elif not arg.startswith(("--workers=", "--nodes=")):
            out.append(arg)
    return [*out, "--is_distributed", "1"]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "workers", 1) > 1 and not args.is_distributed:
            from vgg16.launch import launch

            _recipe(args)  # a bad recipe fails here, before any worker starts
            launch(
                _worker_argv(argv),
                workers=args.workers,
                log_dir=_launch_dir(args),
                nodes=args.nodes,
            )
        elif args.command in PLAIN_COMMANDS:
            PLAIN_COMMANDS[args.command](args)
        else:
            COMMANDS[args.command](args, _recipe(args))
    except (FileNotFoundError, ValueError, FloatingPointError, WorkerFailed) as err:
        print(f"vgg16 {args.command}: error: {err}", file=sys.stderr)
        return 1
    return 0
