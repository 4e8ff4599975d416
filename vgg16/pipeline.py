"""Input pipelines: a data source's split (MindRecord, or the seed's raw layouts) through the
zoo's transforms.

Two image families: CIFAR-style raw 32x32 pixels (cifar10, digits) and JPEG bytes
(imagenet2012). Normalisation uses the recipe's 0-1 statistics scaled by 255, which equals
the zoo's Rescale(1/255) followed by Normalize for CIFAR in one op.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from mindspore import dataset as ds
from mindspore import dtype as mstype
from mindspore.dataset import transforms, vision

from vgg16 import images, readers
from vgg16.config import CIFAR_FAMILY, Recipe
from vgg16.data import DataSource, Split


def num_workers() -> int:
    """The zoo's fixed 8 parallel workers fails on small machines."""
    return max(1, min(8, os.cpu_count() or 1))


class _RawPixels:
    """MindRecord stores CIFAR pixels as bytes (it has no uint8 array type)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return np.frombuffer(image.tobytes(), dtype=np.uint8).reshape(self.shape)


class ImageFiles:
    """Random-access source over image files, as the RGB JPEG bytes `prepare` would store."""

    def __init__(self, paths: list[Path], labels: list[int]) -> None:
        self.paths, self.labels = paths, labels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.int32]:
        data = images.record_bytes(self.paths[i])
        return np.frombuffer(data, dtype=np.uint8), np.int32(self.labels[i])


def _normalize(recipe: Recipe) -> list:
    return [
        vision.Normalize([m * 255 for m in recipe.mean], [s * 255 for s in recipe.std]),
        vision.HWC2CHW(),
    ]


def image_transforms(recipe: Recipe, *, training: bool, encoded: bool) -> list:
    """The zoo's transforms. `encoded`: the image column holds JPEG bytes, not pixels.

    Evaluation takes images of any size (`predict`): CIFAR-style ones are resized to
    `image_size`, which leaves a 32x32 image's pixels exactly as they are at 32 px."""
    size = tuple(recipe.image_size)
    decode = [vision.Decode()] if encoded else []
    flip = [vision.RandomHorizontalFlip()] if training and recipe.random_flip else []
    if recipe.dataset in CIFAR_FAMILY:
        if not training:
            return [*decode, vision.Resize(size), *_normalize(recipe)]
        crop = [vision.RandomCrop((32, 32), (4, 4, 4, 4))]
        resize = [vision.Resize(size)] if size != (32, 32) else []
        return [*decode, *crop, *flip, *resize, *_normalize(recipe)]
    if training:
        return [vision.RandomCropDecodeResize(size, scale=(0.08, 1.0)), *flip, *_normalize(recipe)]
    short_side = round(size[0] * 256 / 224)  # 256 for the zoo's 224 px
    return [*decode, vision.Resize(short_side), vision.CenterCrop(size), *_normalize(recipe)]


def _sharding(count: int, *, training: bool, shuffle: bool, num_shards: int, shard_id: int) -> dict:
    """Source arguments that give this worker its part of the split.

    Training uses MindSpore's sharding, which pads uneven shards by repeating records so that
    every worker takes the same number of steps (they all-reduce every step). Evaluation must
    count each image exactly once, so it takes every num_shards-th record from shard_id on:
    disjoint, covering, unpadded.
    """
    if num_shards == 1:
        return {"shuffle": shuffle}
    if training:
        return {"shuffle": shuffle, "num_shards": num_shards, "shard_id": shard_id}
    return {"sampler": ds.SubsetSampler(list(range(shard_id, count, num_shards)))}


def _source_dataset(source: DataSource, files: Split, sharding: dict) -> ds.Dataset:
    """The split's records as (image, label): pixels or encoded bytes, by `source.encoding`."""
    if source.prepared:
        data = ds.MindDataset(
            [str(f) for f in files.files], columns_list=["image", "label"], **sharding
        )
        if source.encoding == "raw":
            data = data.map(_RawPixels(source.image_shape), input_columns="image")
        return data
    if source.encoding == "raw":
        images, labels = readers.read_cifar_batches(list(files.files))
        return ds.NumpySlicesDataset({"image": images, "label": labels}, **sharding)
    return ds.GeneratorDataset(
        ImageFiles(list(files.files), list(files.labels)),
        ["image", "label"],
        num_parallel_workers=num_workers(),
        **sharding,
    )


def create_dataset(
    source: DataSource,
    recipe: Recipe,
    split: str,
    *,
    training: bool,
    batch_size: int,
    num_shards: int = 1,
    shard_id: int = 0,
) -> ds.Dataset:
    """Batches of (float32 CHW image, int32 label). Training drops the last partial batch
    (fixed shapes for graph mode); evaluation keeps it, so every image is counted. With
    `num_shards` > 1 this worker reads its own part (see `_sharding`)."""
    source.check(recipe)
    files = source.split(split)
    sharding = _sharding(
        files.count,
        training=training,
        shuffle=training and recipe.shuffle,
        num_shards=num_shards,
        shard_id=shard_id,
    )
    data = _source_dataset(source, files, sharding)
    data = data.map(
        image_transforms(
            recipe, training=training and recipe.augment, encoded=source.encoding == "jpeg"
        ),
        input_columns="image",
        num_parallel_workers=num_workers(),
    )
    data = data.map(transforms.TypeCast(mstype.int32), input_columns="label")
    return data.batch(batch_size, drop_remainder=training)
