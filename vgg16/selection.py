"""`vgg16 select`: score every checkpoint of a training run on the val split and publish the
best. The choice is written into the selection table (`selected`), and this is the only
place that decides it: everything downstream reads that column. (The module is not called
`select`, the stage's name, which would shadow the standard library's.)"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mindspore as ms
from mindspore import nn

from vgg16 import checkpoint, config, device, launch
from vgg16.config import from_args
from vgg16.data import open_source
from vgg16.group import ProcessGroup
from vgg16.input_pipeline import create_dataset
from vgg16.layout import SelectFolder, TrainFolder
from vgg16.metrics import score
from vgg16.model import build_net
from vgg16.tables import SELECTION


def add_arguments(parser: argparse.ArgumentParser) -> None:
    config.add_arguments(parser, "the run's resolved recipe")
    device.add_arguments(parser)
    parser.add_argument("--data_path", type=Path, required=True, help="prepared MindRecord folder")
    parser.add_argument("--train", type=Path, required=True, help="the training run's folder")
    parser.add_argument(
        "--output", type=Path, required=True, help=f"folder for {SelectFolder('.').names()}"
    )
    launch.add_arguments(parser)


def main(args: argparse.Namespace) -> None:
    run = TrainFolder(args.train)
    recipe = from_args(args, default=run.recipe)
    group = device.start(args, recipe)
    source = open_source(args.data_path, recipe.dataset, share=(group.rank, group.size))
    recipe = source.fit(recipe)

    def val_dataset() -> ms.dataset.Dataset:
        return create_dataset(
            source,
            recipe,
            "val",
            batch_size=recipe.eval_batch_size,
            num_shards=group.size,
            shard_id=group.rank,
        )

    select(
        build_net(recipe),
        run.checkpoints,
        val_dataset,
        recipe.num_classes,
        SelectFolder(args.output),
        group=group,
    )


def best_index(rows: list[dict[str, Any]]) -> int:
    """The highest val top-1 of the whole checkpoints, ties going to the later epoch (more
    training at equal accuracy), then to the later checkpoint."""
    scored = [i for i, row in enumerate(rows) if not row["damaged"]]
    return max(scored, key=lambda i: (rows[i]["val_top1"], rows[i]["epoch"] or 0, i))


def select(
    net: nn.Cell,
    ckpt_dir: Path,
    make_val_dataset: Callable[[], ms.dataset.Dataset],
    num_classes: int,
    output: SelectFolder,
    *,
    group: ProcessGroup | None = None,
) -> dict[str, Any]:
    """Evaluate every finished checkpoint in `ckpt_dir`; write the selection table and
    publish the best. A damaged checkpoint is listed with its reason, scores nothing, and is
    moved to `damaged/` (as `train` does) once every worker has read the folder.

    `make_val_dataset` is called once per checkpoint, since an iterator is spent.
    """
    group = group or ProcessGroup()
    paths = checkpoint.list_checkpoints(ckpt_dir)
    if not paths:
        raise FileNotFoundError(f"no checkpoints (*.ckpt) in {ckpt_dir}")
    rows, damaged = [], []
    for path in paths:
        row = {"checkpoint": path.name, "epoch": "", "damaged": ""}
        try:
            params, meta = checkpoint.read(path)
        except checkpoint.Damaged as damage:
            rows.append({**row, "damaged": damage.reason})
            damaged.append(damage)
            print(f"{path.name}: damaged, not scored: {damage.reason}", flush=True)
            continue
        checkpoint.load_weights(net, params, source=path)
        metrics = score(net, make_val_dataset(), num_classes, group=group)
        rows.append(
            {
                **row,
                "epoch": meta.get("epoch", ""),
                "val_top1": metrics["top1"],
                "val_top5": metrics["top5"],
                "val_loss": metrics["loss"],
            }
        )
        print(
            f"{path.name}: val top1 {metrics['top1']:.4f} top5 {metrics['top5']:.4f} "
            f"loss {metrics['loss']:.4f}",
            flush=True,
        )
    if len(damaged) == len(paths):
        raise ValueError(
            f"every checkpoint in {ckpt_dir} is damaged: "
            + "; ".join(f"{d.path.name}: {d.reason}" for d in damaged)
        )
    chosen = best_index(rows)
    for i, row in enumerate(rows):
        row["selected"] = i == chosen
    best = rows[chosen]
    group.barrier()  # every worker has read the folder before anything leaves it
    if not group.is_main:  # every worker computed the same table; the main one writes it
        return best
    for damage in damaged:
        checkpoint.set_aside(damage.path, ckpt_dir / checkpoint.DAMAGED_DIR, "damaged")
    checkpoint.publish(paths[chosen], output.best)
    SELECTION.write(output.selection, rows)
    print(f"best: {best['checkpoint']} (epoch {best['epoch']}, val top1 {best['val_top1']:.4f})")
    return best
