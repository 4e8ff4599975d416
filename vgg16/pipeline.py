"""Input pipelines: a data source's split (MindRecord, or the seed's raw layouts) through the
zoo's transforms.

Two image families: CIFAR-style raw 32x32 pixels (cifar10, digits) and JPEG bytes
(imagenet2012). Normalisation uses the recipe's 0-1 statistics scaled by 255, which equals
the zoo's Rescale(1/255) followed by Normalize for CIFAR in one op. Training reads one epoch
at a time, in the order and with the crops and flips `randomness` draws for it, so that a
run resumed at any step sees what the uninterrupted run saw.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from mindspore import dataset as ds
from mindspore import dtype as mstype
from mindspore.dataset import transforms, vision

from vgg16 import images, randomness, readers
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


def image_transforms(recipe: Recipe, *, encoded: bool, normalize: bool = True) -> list:
    """The zoo's evaluation transforms. `encoded`: the image column holds JPEG bytes, not
    pixels. Images of any size are accepted (`predict`): CIFAR-style ones are resized to
    `image_size`, which leaves a 32x32 image's pixels exactly as they are at 32 px.
    `normalize=False` stops before normalisation: uint8 HWC RGB pixels, as the network sees
    them."""
    size = tuple(recipe.image_size)
    decode = [vision.Decode()] if encoded else []
    last = _normalize(recipe) if normalize else []
    if recipe.dataset in CIFAR_FAMILY:
        return [*decode, vision.Resize(size), *last]
    short_side = round(size[0] * 256 / 224)  # 256 for the zoo's 224 px
    return [*decode, vision.Resize(short_side), vision.CenterCrop(size), *last]


def _augmentation(recipe: Recipe, epoch: int) -> tuple[randomness.Augment, list]:
    """The zoo's training transforms for one epoch: the random part, a function of (image,
    position) whose draws `randomness` fixes by the position, then the fixed ops."""
    size = tuple(recipe.image_size)
    if recipe.dataset in CIFAR_FAMILY:
        resize = [vision.Resize(size)] if size != (32, 32) else []
        return randomness.CifarAugment(recipe.seed, epoch, recipe.random_flip), resize
    return randomness.ImagenetAugment(recipe.seed, epoch, size, recipe.random_flip), []


def evaluation_indices(count: int, num_shards: int = 1, shard_id: int = 0) -> range:
    """The split positions of the records worker `shard_id` evaluates, in order: every
    num_shards-th record from shard_id on (disjoint, covering, unpadded), so that counts add
    up across workers."""
    return range(shard_id, count, num_shards)


def _evaluation_sampler(count: int, num_shards: int, shard_id: int) -> dict:
    """Every image exactly once, in `evaluation_indices` order."""
    if num_shards == 1:
        return {"shuffle": False}
    return {"sampler": ds.SubsetSampler(list(evaluation_indices(count, num_shards, shard_id)))}


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
    batch_size: int,
    num_shards: int = 1,
    shard_id: int = 0,
) -> ds.Dataset:
    """Evaluation batches of (float32 CHW image, int32 label), the last partial one kept so
    that every image is counted; with `num_shards` > 1, this worker's part."""
    source.check(recipe)
    files = source.split(split)
    data = _source_dataset(source, files, _evaluation_sampler(files.count, num_shards, shard_id))
    data = data.map(
        image_transforms(recipe, encoded=source.encoding == "jpeg"),
        input_columns="image",
        num_parallel_workers=num_workers(),
    )
    data = data.map(transforms.TypeCast(mstype.int32), input_columns="label")
    return data.batch(batch_size, drop_remainder=False)


def network_pixels(
    source: DataSource, recipe: Recipe, split: str, indices: list[int]
) -> np.ndarray:
    """The images at positions `indices` of `split` as the network sees them, before
    normalisation (decoded, resized, cropped): (N, H, W, 3) uint8 RGB, in the order given."""
    source.check(recipe)
    height, width = recipe.image_size
    if not indices:
        return np.zeros((0, height, width, 3), dtype=np.uint8)
    wanted = sorted(set(indices))
    records = _source_dataset(source, source.split(split), {"sampler": ds.SubsetSampler(wanted)})
    data = records.map(
        image_transforms(recipe, encoded=source.encoding == "jpeg", normalize=False),
        input_columns="image",
    )
    rows = data.create_dict_iterator(num_epochs=1, output_numpy=True)
    pixels = dict(zip(wanted, (row["image"] for row in rows), strict=True))
    return np.stack([pixels[i] for i in indices])


def train_steps(source: DataSource, recipe: Recipe, num_shards: int) -> int:
    """Steps per epoch: whole global batches (`batch_size` x workers) of the train split."""
    return randomness.steps_per_epoch(source.split("train").count, recipe.batch_size * num_shards)


def training_epoch(
    source: DataSource,
    recipe: Recipe,
    *,
    epoch: int,
    first_step: int = 0,
    num_shards: int = 1,
    shard_id: int = 0,
) -> ds.Dataset:
    """Epoch `epoch`'s training batches for this worker from step `first_step` (0-based) on,
    as (float32 CHW image, int32 label, int64 position in the epoch's order). The order,
    crops and flips depend only on the recipe's seed, the epoch and each image's position."""
    source.check(recipe)
    files = source.split("train")
    order = randomness.epoch_order(files.count, recipe.seed, epoch, recipe.shuffle)
    where = randomness.positions(
        files.count,
        batch_size=recipe.batch_size,
        num_shards=num_shards,
        shard_id=shard_id,
        first_step=first_step,
    )
    records = _source_dataset(source, files, {"sampler": ds.SubsetSampler(order[where].tolist())})
    data = ds.zip((records, ds.NumpySlicesDataset({"position": where}, shuffle=False)))
    if recipe.augment:
        augment, fixed = _augmentation(recipe, epoch)
        data = data.map(
            augment,
            input_columns=["image", "position"],
            output_columns=["image", "position"],
            num_parallel_workers=num_workers(),
        )
        data = data.map([*fixed, *_normalize(recipe)], input_columns="image")
    else:
        encoded = source.encoding == "jpeg"
        data = data.map(image_transforms(recipe, encoded=encoded), input_columns="image")
    data = data.map(transforms.TypeCast(mstype.int32), input_columns="label")
    return data.batch(recipe.batch_size, drop_remainder=True)
