"""`vgg16 evaluate` (the seed's `eval`): a checkpoint's metrics on one split, usually test,
and the images it got most confidently wrong."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from vgg16 import checkpoint, device, tables
from vgg16.atomic import write_text
from vgg16.config import from_args
from vgg16.data import open_source
from vgg16.metrics import evaluate
from vgg16.pipeline import create_dataset, evaluation_indices, network_pixels
from vgg16.tables import MISTAKES_KEPT, write_confusion

SUMMARY_KEYS = ("top1", "top5", "loss", "num_images")


def main(args: argparse.Namespace) -> None:
    recipe = from_args(args)
    _, rank, size = device.start(args, recipe)
    net, meta = checkpoint.load_net(recipe, args.pre_trained)
    source = open_source(args.data_path, recipe.dataset)
    data = create_dataset(
        source,
        recipe,
        args.split,
        batch_size=recipe.eval_batch_size,
        num_shards=size,
        shard_id=rank,
    )
    metrics = evaluate(
        net,
        data,
        recipe.num_classes,
        distributed=size > 1,
        mistakes=MISTAKES_KEPT,
        indices=evaluation_indices(source.split(args.split).count, size, rank),
    )
    if rank:
        return
    print(f"result: {json.dumps({k: metrics[k] for k in SUMMARY_KEYS})}")
    if args.output:
        write_metrics(
            args.output,
            metrics,
            source.class_names,
            {
                "split": args.split,
                "checkpoint": str(args.pre_trained),
                "checkpoint_epoch": meta.get("epoch"),
                "recipe": recipe.to_dict(),
            },
        )
        wrong = metrics["mistakes"]
        pixels = network_pixels(source, recipe, args.split, [m["index"] for m in wrong])
        write_mistakes(args.output, wrong, source.class_names, pixels)
        print(f"metrics in {args.output / 'metrics.json'}")


def write_metrics(
    output: Path, metrics: dict[str, Any], class_names: list[str], extra: dict
) -> None:
    """`metrics.json` (per-class accuracy keyed by class name) and `confusion.csv`
    (rows: true class, columns: predicted class)."""
    payload = {k: v for k, v in metrics.items() if k not in ("confusion", "mistakes")}
    payload["per_class_accuracy"] = dict(
        zip(class_names, metrics["per_class_accuracy"], strict=True)
    )
    payload.update(extra)
    write_confusion(output, class_names, metrics["confusion"])
    write_text(Path(output) / "metrics.json", json.dumps(payload, indent=2) + "\n")


def write_mistakes(
    output: Path, mistakes: list[dict[str, Any]], class_names: list[str], pixels: np.ndarray
) -> None:
    """`mistakes.csv` with the classes by name, and the images' pixels in `mistakes.npz`."""
    rows = [
        {**m, "true": class_names[m["true"]], "predicted": class_names[m["predicted"]]}
        for m in mistakes
    ]
    tables.write_mistakes(output, rows, pixels)
