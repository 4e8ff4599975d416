"""`vgg16 select`: score every checkpoint of a training run on the val split and publish the
best as best.ckpt. The choice is written into selection.csv (`selected`), and this is the only
place that decides it: everything downstream reads that column."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mindspore as ms
from mindspore import nn

from vgg16 import checkpoint, device
from vgg16.config import RESOLVED, from_args
from vgg16.data import open_source
from vgg16.metrics import evaluate
from vgg16.model import build_net
from vgg16.pipeline import create_dataset
from vgg16.tables import SELECTION


def main(args: argparse.Namespace) -> None:
    recipe = from_args(args, default=args.train / RESOLVED)
    _, rank, size = device.start(args, recipe)
    source = open_source(args.data_path, recipe.dataset)

    def val_dataset() -> ms.dataset.Dataset:
        return create_dataset(
            source,
            recipe,
            "val",
            batch_size=recipe.eval_batch_size,
            num_shards=size,
            shard_id=rank,
        )

    select(
        build_net(recipe),
        checkpoint.folder(args.train),
        val_dataset,
        recipe.num_classes,
        args.output,
        rank=rank,
        distributed=size > 1,
    )


def best_index(rows: list[dict[str, Any]]) -> int:
    """The highest val top-1, ties going to the later epoch (more training at equal
    accuracy), then to the later checkpoint."""
    return max(range(len(rows)), key=lambda i: (rows[i]["val_top1"], rows[i]["epoch"] or 0, i))


def select(
    net: nn.Cell,
    ckpt_dir: Path,
    make_val_dataset: Callable[[], ms.dataset.Dataset],
    num_classes: int,
    output: Path,
    *,
    rank: int = 0,
    distributed: bool = False,
) -> dict[str, Any]:
    """Evaluate every finished checkpoint in `ckpt_dir`; write selection.csv and best.ckpt.

    `make_val_dataset` is called once per checkpoint, since an iterator is spent.
    """
    paths = checkpoint.list_checkpoints(ckpt_dir)
    if not paths:
        raise FileNotFoundError(f"no checkpoints (*.ckpt) in {ckpt_dir}")
    rows = []
    for path in paths:
        params, meta = checkpoint.read(path)
        checkpoint.load_weights(net, params, source=path)
        metrics = evaluate(net, make_val_dataset(), num_classes, distributed=distributed)
        rows.append(
            {
                "checkpoint": path.name,
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
    chosen = best_index(rows)
    for i, row in enumerate(rows):
        row["selected"] = i == chosen
    best = rows[chosen]
    if rank:  # every worker computed the same table; rank 0 writes it
        return best
    checkpoint.publish(paths[chosen], Path(output) / "best.ckpt")
    SELECTION.write(output, rows)
    print(f"best: {best['checkpoint']} (epoch {best['epoch']}, val top1 {best['val_top1']:.4f})")
    return best
