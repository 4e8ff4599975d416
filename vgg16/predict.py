"""`vgg16 predict`: class probabilities for image files, from a checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from mindspore import dataset as ds
from mindspore import nn

from vgg16 import checkpoint, device
from vgg16.atomic import write_csv
from vgg16.config import Recipe, from_args
from vgg16.metrics import log_softmax
from vgg16.pipeline import ImageFiles, image_transforms, num_workers


def main(args: argparse.Namespace) -> None:
    recipe = from_args(args)
    device.start(args, recipe)
    net, meta = checkpoint.load_net(recipe, args.pre_trained)
    names = meta.get("class_names") or [str(i) for i in range(recipe.num_classes)]
    print(f"wrote {predict(net, recipe, args.images, names, args.output)}")


def predict(
    net: nn.Cell, recipe: Recipe, images: list[Path], class_names: list[str], output: Path
) -> Path:
    """Write `predictions.csv`: file, top-5 class names, then one probability per class.

    Images go through the evaluation transforms, after conversion to RGB (greyscale, CMYK
    and PNG files are accepted, as in the readers)."""
    missing = [str(p) for p in images if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(f"image file(s) not found: {missing}")
    data = ds.GeneratorDataset(
        ImageFiles(list(images), [0] * len(images)), ["image", "label"], shuffle=False
    )
    data = data.map(
        image_transforms(recipe, training=False, encoded=True),
        input_columns="image",
        num_parallel_workers=num_workers(),
    )
    net.set_train(False)
    probs = []
    for batch, _ in data.batch(recipe.eval_batch_size).create_tuple_iterator(num_epochs=1):
        logits = net(batch).asnumpy().astype(np.float64)
        probs.append(np.exp(log_softmax(logits)))
    probs = np.concatenate(probs)
    k = min(5, len(class_names))
    columns = ["file", *[f"top{i + 1}" for i in range(k)], *[f"p_{name}" for name in class_names]]
    rows = [
        [str(path), *[class_names[i] for i in np.argsort(-p)[:k]], *[f"{x:.6f}" for x in p]]
        for path, p in zip(images, probs, strict=True)
    ]
    return write_csv(output / "predictions.csv", columns, rows)
