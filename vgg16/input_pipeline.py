"""The MindSpore input pipeline: a data source's split, through the zoo's transforms, in
batches for the network.

A split is read from its MindRecord shards, or from a raw layout through its format
(`Format.records`); the transforms are the recipe's family's (`transforms`). Evaluation reads
every image once, in order, sharded exactly across workers; training reads one epoch at a
time, in the order and with the crops and flips `randomness` draws for it, so that a run
resumed at any step sees what the uninterrupted run saw.
"""

from __future__ import annotations

import numpy as np
from mindspore import dataset as ds
from mindspore import dtype as mstype
from mindspore.dataset import vision
from mindspore.dataset.transforms import TypeCast

from vgg16 import images, randomness, transforms
from vgg16.config import Recipe
from vgg16.data import DataSource
from vgg16.formats.base import Split

#: The zoo's parallel workers per dataset op; fewer where fewer cores are ours.
MAX_WORKERS = 8


def workers() -> int:
    return min(MAX_WORKERS, images.cpus())


class _RawPixels:
    """MindRecord stores raw pixels as bytes (it has no uint8 array type)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return np.frombuffer(image.tobytes(), dtype=np.uint8).reshape(self.shape)


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


def _decode(source: DataSource) -> list:
    """What turns the split's records into pixels: MindSpore's decoder for JPEG records, and
    nothing for pixels (`_records` reshapes MindRecord's bytes)."""
    return [vision.Decode()] if source.encoding == "jpeg" else []


def _records(source: DataSource, files: Split, sharding: dict) -> ds.Dataset:
    """The split's records as (image, label): pixels or encoded bytes, by `source.encoding`."""
    if not source.prepared:
        return ds.GeneratorDataset(
            source.format.records(files),
            ["image", "label"],
            num_parallel_workers=workers(),
            python_multiprocessing=False,
            **sharding,
        )
    data = ds.MindDataset(
        [str(f) for f in files.files], columns_list=["image", "label"], **sharding
    )
    if source.encoding == "raw":
        data = data.map(_RawPixels(source.image_shape), input_columns="image")
    return data


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
    files = source.split(split)
    data = _records(source, files, _evaluation_sampler(files.count, num_shards, shard_id))
    data = data.map(
        [*_decode(source), *transforms.evaluation(recipe)],
        input_columns="image",
        num_parallel_workers=workers(),
    )
    data = data.map(TypeCast(mstype.int32), input_columns="label")
    return data.batch(batch_size, drop_remainder=False)


def network_pixels(
    source: DataSource, recipe: Recipe, split: str, indices: list[int]
) -> np.ndarray:
    """The images at positions `indices` of `split` as the network sees them, before
    normalisation (decoded, resized, cropped): (N, H, W, 3) uint8 RGB, in the order given."""
    height, width = recipe.image_size
    if not indices:
        return np.zeros((0, height, width, 3), dtype=np.uint8)
    wanted = sorted(set(indices))
    records = _records(source, source.split(split), {"sampler": ds.SubsetSampler(wanted)})
    data = records.map(
        [*_decode(source), *transforms.evaluation(recipe, normalized=False)],
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
    files = source.split("train")
    order = randomness.epoch_order(files.count, recipe.seed, epoch, recipe.shuffle)
    where = randomness.positions(
        files.count,
        batch_size=recipe.batch_size,
        num_shards=num_shards,
        shard_id=shard_id,
        first_step=first_step,
    )
    records = _records(source, files, {"sampler": ds.SubsetSampler(order[where].tolist())})
    data = ds.zip((records, ds.NumpySlicesDataset({"position": where}, shuffle=False)))
    if recipe.augment:
        family = transforms.family(recipe)
        augment, fixed = family.augmentation(recipe, epoch, source.image_shape)
        if family.augments_pixels and (decode := _decode(source)):
            data = data.map(decode, input_columns="image")
        data = data.map(
            augment,
            input_columns=["image", "position"],
            output_columns=["image", "position"],
            num_parallel_workers=workers(),
        )
        data = data.map([*fixed, *transforms.normalize(recipe)], input_columns="image")
    else:
        data = data.map([*_decode(source), *transforms.evaluation(recipe)], input_columns="image")
    data = data.map(TypeCast(mstype.int32), input_columns="label")
    return data.batch(recipe.batch_size, drop_remainder=True)
