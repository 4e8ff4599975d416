"""`vgg16 evaluate` (the seed's `eval`): a checkpoint's metrics on one split, usually test,
and the images it got most confidently wrong."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from vgg16 import checkpoint, config, device, launch, tables
from vgg16.atomic import write_text
from vgg16.config import from_args
from vgg16.data import open_source
from vgg16.input_pipeline import create_dataset, evaluation_indices, network_pixels
from vgg16.layout import EvalFolder
from vgg16.metrics import score
from vgg16.splits import SPLITS
from vgg16.tables import MISTAKES_KEPT, write_confusion

SUMMARY_KEYS = ("top1", "top5", "loss", "num_images")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    config.add_arguments(parser)
    device.add_arguments(parser)
    parser.add_argument("--data_path", type=Path, required=True)
    parser.add_argument("--pre_trained", type=Path, required=True, help="checkpoint (seed flag)")
    parser.add_argument("--split", default="test", choices=SPLITS)
    parser.add_argument(
        "--output",
        type=Path,
        help=f"folder for {EvalFolder('.').names()}",
    )
    launch.add_arguments(parser)


def main(args: argparse.Namespace) -> None:
    recipe = from_args(args)
    group = device.start(args, recipe)
    source = open_source(args.data_path, recipe.dataset, share=(group.rank, group.size))
    recipe = source.fit(recipe)
    net, meta, _ = checkpoint.load_net(recipe, args.pre_trained)
    data = create_dataset(
        source,
        recipe,
        args.split,
        batch_size=recipe.eval_batch_size,
        num_shards=group.size,
        shard_id=group.rank,
    )
    metrics = score(
        net,
        data,
        recipe.num_classes,
        group=group,
        mistakes=MISTAKES_KEPT,
        indices=evaluation_indices(source.split(args.split).count, group.size, group.rank),
    )
    if not group.is_main:
        return
    print(f"result: {json.dumps({k: metrics[k] for k in SUMMARY_KEYS})}")
    if args.output:
        folder = EvalFolder(args.output)
        write_metrics(
            folder,
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
        write_mistakes(folder, wrong, source.class_names, pixels)
        print(f"metrics in {folder.metrics}")


def write_metrics(
    folder: EvalFolder, metrics: dict[str, Any], class_names: list[str], extra: dict
) -> None:
    """The metrics (per-class accuracy keyed by class name) and the confusion matrix (rows:
    true class, columns: predicted class)."""
    payload = {k: v for k, v in metrics.items() if k not in ("confusion", "mistakes")}
    payload["per_class_accuracy"] = dict(
        zip(class_names, metrics["per_class_accuracy"], strict=True)
    )
    payload.update(extra)
    write_confusion(folder.confusion, class_names, metrics["confusion"])
    write_text(folder.metrics, json.dumps(payload, indent=2) + "\n")


def write_mistakes(
    folder: EvalFolder, mistakes: list[dict[str, Any]], class_names: list[str], pixels: np.ndarray
) -> None:
    """The mistakes with the classes by name, and the images' pixels beside them."""
    rows = [
        {**m, "true": class_names[m["true"]], "predicted": class_names[m["predicted"]]}
        for m in mistakes
    ]
    tables.write_mistakes(folder, rows, pixels)
