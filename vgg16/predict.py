"""Inference on image files and export to MINDIR for serving."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import mindspore as ms
import numpy as np
from mindspore import dataset as ds
from mindspore import nn

from vgg16.atomic import write_text
from vgg16.config import Recipe
from vgg16.evaluate import log_softmax
from vgg16.pipeline import ImageFiles, image_transforms, num_workers


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
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(
        ["file", *[f"top{i + 1}" for i in range(k)], *[f"p_{name}" for name in class_names]]
    )
    for path, p in zip(images, probs, strict=True):
        top = np.argsort(-p)[:k]
        writer.writerow([str(path), *[class_names[i] for i in top], *[f"{x:.6f}" for x in p]])
    return write_text(output / "predictions.csv", buf.getvalue())


def export(net: nn.Cell, recipe: Recipe, output: Path, batch_size: int = 1) -> Path:
    """MINDIR with a fixed input shape (batch, 3, H, W), in eval mode (no dropout)."""
    net.set_train(False)
    output.mkdir(parents=True, exist_ok=True)
    height, width = recipe.image_size
    dummy = ms.Tensor(np.zeros((batch_size, 3, height, width), dtype=np.float32))
    # ms.export appends ".mindir" to the name it is given.
    ms.export(net, dummy, file_name=str(output / ".vgg16.tmp"), file_format="MINDIR")
    target = output / "vgg16.mindir"
    os.replace(output / ".vgg16.tmp.mindir", target)
    return target
