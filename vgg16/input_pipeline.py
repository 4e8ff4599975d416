"""The MindSpore input pipeline: a data source's split, through the zoo's transforms, in
batches for the network.

A split is read from its MindRecord shards, or from a raw layout through its format
(`Format.records`); the transforms are the recipe's family's (`transforms`). Evaluation reads
every image once, in order, sharded exactly across workers, through MindSpore's C++ ops.
Training reads one epoch at a time, in the order and with the crops, flips and dropout masks
`randomness` draws for it, so that a run resumed at any step sees what the uninterrupted run
saw. Those draws are keyed by position, which no MindSpore op can take, so training's
batches are made whole in numpy (`TrainingBatches`), a batch per call: per-image Python calls
in MindSpore's threads would share one core (the GIL), and worker processes cost more in
copies than they saved (measured: 8,700 img/s for a batch map doing nothing).
"""

from __future__ import annotations

import functools

import numpy as np
from mindspore import dataset as ds
from mindspore import dtype as mstype
from mindspore.dataset import vision
from mindspore.dataset.transforms import TypeCast

from vgg16 import images, randomness, transforms
from vgg16.config import Recipe
from vgg16.data import DataSource
from vgg16.formats.base import Split
from vgg16.model import DROPOUT_P, DROPOUT_WIDTHS

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


def _records(
    source: DataSource, files: Split, sharding: dict, *, as_pixels: bool = True
) -> ds.Dataset:
    """The split's records as (image, label): pixels or encoded bytes, by `source.encoding`;
    raw pixels as MindRecord stores them (bytes) unless `as_pixels`."""
    if not source.prepared:
        return ds.GeneratorDataset(
            source.format.records(files),
            ["image", "label"],
            num_parallel_workers=workers(),
            python_multiprocessing=False,
            **sharding,
        )
    data = ds.MindDataset(
        [str(f) for f in files.files],
        columns_list=["image", "label"],
        num_parallel_workers=workers(),
        **sharding,
    )
    if source.encoding == "raw" and as_pixels:
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
    as (uint8 NCHW images, int32 labels, *dropout flags: `TrainingBatches`). The
    order, crops, flips and masks depend only on the recipe's seed, the epoch and each
    image's position in the epoch's order."""
    files = source.split("train")
    order = randomness.epoch_order(files.count, recipe.seed, epoch, recipe.shuffle)
    where = randomness.positions(
        files.count,
        batch_size=recipe.batch_size,
        num_shards=num_shards,
        shard_id=shard_id,
        first_step=first_step,
    )
    steps = ds.NumpySlicesDataset({"step": np.arange(len(where) // recipe.batch_size)},
                                  shuffle=False)  # fmt: skip
    batches = TrainingBatches(recipe, epoch, where)
    if recipe.augment and source.encoding == "raw":
        batches.hold(*split_pixels(source, files), order)
        data, columns = steps, ["step"]
    else:
        records = _records(source, files, {"sampler": ds.SubsetSampler(order[where].tolist())},
                           as_pixels=not recipe.augment)  # fmt: skip
        if not recipe.augment:
            records = records.map(
                [*_decode(source), *transforms.evaluation(recipe, normalized=False)],
                input_columns="image",
                num_parallel_workers=workers(),
            )
        records = records.batch(recipe.batch_size, drop_remainder=True)
        data, columns = ds.zip((records, steps)), ["image", "label", "step"]
    return data.map(
        batches,
        input_columns=columns,
        output_columns=batches.columns,
        num_parallel_workers=workers(),
    )


@functools.lru_cache(maxsize=1)
def split_pixels(source: DataSource, files: Split) -> tuple[np.ndarray, np.ndarray]:
    """A raw-pixel split's images, (N, H, W, 3) uint8, and labels, read once per process and
    kept: MindRecord's reader gives about 20,000 records a second a core here, below what
    training can ask for, and such a split is small (CIFAR-10's train split: 150 MB). The
    records are read as MindRecord's bytes and joined, not reshaped one by one."""
    records = _records(source, files, {"shuffle": False}, as_pixels=False).batch(4096)
    rows = list(records.create_tuple_iterator(num_epochs=1, output_numpy=True))
    data = b"".join(image.tobytes() for image, _ in rows)
    pixels = np.frombuffer(data, dtype=np.uint8).reshape(files.count, *source.image_shape)
    return pixels, np.concatenate([labels for _, labels in rows])


class TrainingBatches:
    """Makes each training batch whole in numpy, as a MindSpore map over step numbers: the
    family's random crops and flips and the dropout flags of its images, drawn from their
    positions. Images stay uint8 (NCHW): the training step normalises them on the device
    (`train._WithLoss`), so a quarter of float32's bytes go through the pipeline and onto
    it. The records come with the step (JPEG records or pixels of any size, batched by
    MindSpore), or are the split's pixels held in memory (`hold`). Numpy releases the GIL
    in its whole-batch calls, so MindSpore's threads make batches side by side."""

    def __init__(self, recipe: Recipe, epoch: int, where: np.ndarray) -> None:
        self.batch_size, self.where = recipe.batch_size, where
        self.size = tuple(recipe.image_size)
        family = transforms.family(recipe)
        self.decode = family.augments_pixels
        self.augment = family.augmentation(recipe, epoch) if recipe.augment else None
        self.dropout = (recipe.seed, epoch) if recipe.has_dropout else None
        self.columns = ["image", "label"] + (["keep1", "keep2"] if recipe.has_dropout else [])
        self.held: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def hold(self, pixels: np.ndarray, labels: np.ndarray, order: np.ndarray) -> None:
        """Take the records from the split's pixels and labels in memory, in `order`."""
        self.held = (pixels, labels, order)

    def __call__(self, *columns: np.ndarray) -> tuple[np.ndarray, ...]:
        *records, step = columns
        first = int(step) * self.batch_size
        positions = self.where[first : first + self.batch_size]
        if self.held is not None:
            pixels, labels, order = self.held
            batch, labels = pixels[order[positions]], labels[order[positions]]
        else:
            batch, labels = self._images(records[0]), records[1]
        batch = (
            batch.transpose(0, 3, 1, 2) if self.augment is None else self.augment(batch, positions)
        )
        # contiguous: MindSpore converts a strided array element by element
        made = (np.ascontiguousarray(batch), labels.astype(np.int32))
        if self.dropout is None:
            return made
        seed, epoch = self.dropout
        return made + tuple(
            randomness.dropout_keep(seed, epoch, positions, DROPOUT_WIDTHS, DROPOUT_P)
        )

    def _images(self, records: np.ndarray) -> np.ndarray | list[np.ndarray]:
        """A batch of records as the family's augmentation takes them: pixels as they are;
        JPEG bytes decoded, unless the family decodes them itself."""
        if records.dtype == np.uint8:
            return records
        encoded = [np.frombuffer(record, dtype=np.uint8) for record in records.ravel()]
        return [images.decode_record(r) for r in encoded] if self.decode else encoded
