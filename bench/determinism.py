"""What determinism costs: the position-keyed training pipeline and dropout masks of
`vgg16.randomness` against MindSpore's own random ops, on the digits demo's data.

Three figures, measured in this process, alternating:
- input pipeline, img/s: `input_pipeline.training_epoch` (order, crops and flips keyed by position,
  in Python) against the same pipeline built from MindSpore's random ops (`MindDataset`
  shuffle, `RandomCrop`, `RandomHorizontalFlip`), both ending in the same normalisation;
- dropout masks: milliseconds per step to draw `randomness.dropout_keep` for a batch, to set
  beside a training step (about 1 s at batch 64 on 2 cores: `bench/train_throughput.py`).

    .venv/bin/python bench/determinism.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from mindspore import dataset as ds
from mindspore import dtype as mstype
from mindspore.dataset import transforms, vision

from vgg16 import randomness
from vgg16.config import load_recipe
from vgg16.data import open_source
from vgg16.input_pipeline import _RawPixels, training_epoch, workers
from vgg16.model import DROPOUT_P, DROPOUT_WIDTHS
from vgg16.prepare import prepare
from vgg16.transforms import normalize


def mindspore_random(source, recipe) -> ds.Dataset:
    """The pre-determinism pipeline: MindSpore's own shuffle and random transforms."""
    files = source.split("train")
    data = ds.MindDataset([str(f) for f in files.files], ["image", "label"], shuffle=True)
    data = data.map(_RawPixels(source.image_shape), input_columns="image")
    ops = [vision.RandomCrop((32, 32), (4, 4, 4, 4)), vision.RandomHorizontalFlip()]
    data = data.map(
        [*ops, *normalize(recipe)], input_columns="image", num_parallel_workers=workers()
    )
    data = data.map(transforms.TypeCast(mstype.int32), input_columns="label")
    return data.batch(recipe.batch_size, drop_remainder=True)


def images_per_second(data: ds.Dataset, batch: int) -> float:
    started, batches = time.perf_counter(), 0
    for _ in data.create_tuple_iterator(num_epochs=1):
        batches += 1
    return batches * batch / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    recipe = load_recipe(dataset="digits", overrides={"random_flip": True})
    with tempfile.TemporaryDirectory() as tmp:
        prepare("digits", Path(tmp) / "raw", Path(tmp) / "mindrecord")
        source = open_source(Path(tmp) / "mindrecord")
        rates: dict[str, list[float]] = {"keyed by position": [], "MindSpore random ops": []}
        for epoch in range(1, args.repeats + 1):
            keyed = training_epoch(source, recipe, epoch=epoch)
            rates["keyed by position"].append(images_per_second(keyed, recipe.batch_size))
            native = mindspore_random(source, recipe)
            rates["MindSpore random ops"].append(images_per_second(native, recipe.batch_size))
    for name, values in rates.items():
        print(f"input pipeline, {name}: {max(values):,.0f} img/s (runs: "
              f"{', '.join(f'{v:,.0f}' for v in values)})")  # fmt: skip
    where = np.arange(recipe.batch_size)
    started = time.perf_counter()
    for step in range(20):
        randomness.dropout_keep(recipe.seed, 1, where + step * 64, DROPOUT_WIDTHS, DROPOUT_P)
    per_step = (time.perf_counter() - started) / 20 * 1000
    print(f"dropout masks, batch {recipe.batch_size}: {per_step:.1f} ms per step")


if __name__ == "__main__":
    main()
