"""The input pipelines. Evaluation: `network_pixels` must give, for a position in a split, the
image that evaluation scores at that position. Training: every batch a function of the seed,
the epoch and its step, whichever worker or process makes it."""

from __future__ import annotations

from pathlib import Path

import mindspore as ms
import numpy as np
import pytest
from imagenet_layout import write_image_folder

from vgg16.config import load_recipe, parse_overrides
from vgg16.data import open_source
from vgg16.formats.cifar10 import find_batches, read_batches
from vgg16.input_pipeline import (
    create_dataset,
    evaluation_indices,
    network_pixels,
    training_epoch,
)
from vgg16.prepare import prepare
from vgg16.train import Normalization


def test_evaluation_indices_split_a_split_into_disjoint_covering_shards():
    assert list(evaluation_indices(7)) == [0, 1, 2, 3, 4, 5, 6]
    shards = [list(evaluation_indices(7, 3, shard)) for shard in range(3)]
    assert shards == [[0, 3, 6], [1, 4], [2, 5]]


def test_the_pixels_of_a_cifar_split_are_the_records_own_in_the_order_asked(
    tiny_source: Path, tiny_data: Path
):
    """32x32 images reach the network unchanged, so the pixels are the raw test batch's;
    positions may come in any order and more than once (a gallery's order is its own)."""
    images, _ = read_batches(find_batches(tiny_source)["test"])
    recipe = load_recipe(dataset="digits")
    source = open_source(tiny_data)
    got = network_pixels(source, recipe, "test", [5, 0, 39, 5])
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, images[[5, 0, 39, 5]])
    assert network_pixels(source, recipe, "test", []).shape == (0, 32, 32, 3)


@pytest.fixture(scope="module")
def jpeg_data(tmp_path_factory) -> Path:
    """An ImageNet-style folder (40x48 JPEGs, 3 classes) prepared into 3 shards per split."""
    root = tmp_path_factory.mktemp("jpeg")
    write_image_folder(root / "raw", classes=3, train=4, val=5)
    prepare("imagenet2012", root / "raw", root / "mr", val_fraction=0, shards=3)
    return root / "mr"


@pytest.mark.parametrize("shards", [1, 2])
def test_the_pixels_of_an_encoded_split_are_what_evaluation_scores_at_each_position(
    jpeg_data: Path, shards: int
):
    """Decoded, resized and cropped as evaluation does, before normalisation: undoing the
    normalisation of the batches evaluation reads (each worker's shard of it) gives the same
    pixels at the same positions."""
    settings = parse_overrides(["num_classes=3", "image_size=32,32"])
    recipe = load_recipe(dataset="imagenet2012", overrides=settings)
    source = open_source(jpeg_data)
    mean, std = 255 * np.array(recipe.mean), 255 * np.array(recipe.std)
    for shard in range(shards):
        data = create_dataset(source, recipe, "test", batch_size=4, num_shards=shards,
                              shard_id=shard)  # fmt: skip
        seen = np.concatenate([images.asnumpy() for images, _ in data.create_tuple_iterator()])
        unnormalised = seen.transpose(0, 2, 3, 1) * std + mean
        positions = list(evaluation_indices(15, shards, shard))
        pixels = network_pixels(source, recipe, "test", positions)
        assert pixels.shape == (len(positions), 32, 32, 3)
        np.testing.assert_allclose(pixels, unnormalised, atol=1e-3)
        assert np.ptp(pixels.reshape(len(pixels), -1).mean(axis=1)) > 1  # different images


def epoch_batches(source, recipe, **where) -> list[tuple[np.ndarray, ...]]:
    data = training_epoch(source, recipe, **where)
    return [tuple(column.asnumpy() for column in row) for row in data.create_tuple_iterator()]


def assert_same_batches(a: list[tuple], b: list[tuple]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert len(x) == len(y)
        for u, v in zip(x, y, strict=True):
            np.testing.assert_array_equal(u, v)


@pytest.fixture(scope="module")
def cifar_recipe():
    return load_recipe(dataset="digits", overrides={"batch_size": 8, "random_flip": True})


def test_training_batches_are_a_function_of_seed_epoch_and_step(tiny_data: Path, cifar_recipe):
    """Images (uint8 NCHW), labels and both dropout flags: the same twice, another epoch
    another; resuming at step 3 reads exactly the rest of the epoch."""
    source = open_source(tiny_data)
    full = epoch_batches(source, cifar_recipe, epoch=2)
    assert len(full) == 64 // 8
    images, labels, keep1, keep2 = full[0]
    assert images.shape == (8, 3, 32, 32) and images.dtype == np.uint8
    assert labels.dtype == np.int32 and keep1.shape == keep2.shape == (8, 4096)
    assert keep1.dtype == np.uint8 and images.flags.c_contiguous
    assert_same_batches(full, epoch_batches(source, cifar_recipe, epoch=2))
    assert_same_batches(full[3:], epoch_batches(source, cifar_recipe, epoch=2, first_step=3))
    other = epoch_batches(source, cifar_recipe, epoch=3)
    assert not np.array_equal(other[0][0], images) and not np.array_equal(other[0][2], keep1)


def test_two_workers_read_the_global_batches_of_one(tiny_data: Path, cifar_recipe):
    """Each image's crop, flip and masks follow from its position, whichever worker reads it:
    two workers' batch halves, side by side, are one worker's batches of twice the size."""
    source = open_source(tiny_data)
    double = load_recipe(dataset="digits", overrides={"batch_size": 16, "random_flip": True})
    one = epoch_batches(source, double, epoch=1)
    halves = [epoch_batches(source, cifar_recipe, epoch=1, num_shards=2, shard_id=r)
              for r in (0, 1)]  # fmt: skip
    joined = [tuple(np.concatenate(pair) for pair in zip(a, b, strict=True))
              for a, b in zip(*halves, strict=True)]  # fmt: skip
    assert_same_batches(joined, one)


def test_imagenet_style_batches_from_jpeg_records_are_fixed_by_position(jpeg_data: Path):
    """JPEG records, random resized crops: the same twice, resumed at step 1 the rest, and
    two workers' halves are one worker's batches."""
    settings = ["num_classes=3", "image_size=32,32", "random_flip=true"]
    recipe = load_recipe(
        dataset="imagenet2012", overrides=parse_overrides([*settings, "batch_size=2"])
    )
    double = load_recipe(
        dataset="imagenet2012", overrides=parse_overrides([*settings, "batch_size=4"])
    )
    source = open_source(jpeg_data)
    made = epoch_batches(source, recipe, epoch=1)
    assert made[0][0].shape == (2, 3, 32, 32) and len(made) == 6
    assert_same_batches(made, epoch_batches(source, recipe, epoch=1))
    assert_same_batches(made[1:], epoch_batches(source, recipe, epoch=1, first_step=1))
    halves = [epoch_batches(source, recipe, epoch=1, num_shards=2, shard_id=r) for r in (0, 1)]
    joined = [tuple(np.concatenate(pair) for pair in zip(a, b, strict=True))
              for a, b in zip(*halves, strict=True)]  # fmt: skip
    assert_same_batches(joined, epoch_batches(source, double, epoch=1))


def test_unaugmented_training_batches_are_what_evaluation_reads(tiny_data: Path):
    """Without augmentation or shuffling, the numpy-made training batches, normalised by the
    training step's `Normalization` on the device, hold the images MindSpore's evaluation
    pipeline gives (normalised on the host) for the same records, in the same order."""
    source = open_source(tiny_data)
    settings = {"batch_size": 8, "augment": False, "shuffle": False, "has_dropout": False}
    recipe = load_recipe(dataset="digits", overrides=settings)
    trained = np.concatenate([b[0] for b in epoch_batches(source, recipe, epoch=1)])
    files = source.split("train")
    evaluated = create_dataset(source, recipe, "train", batch_size=8)
    seen = np.concatenate([images.asnumpy() for images, _ in evaluated.create_tuple_iterator()])
    assert trained.shape == (files.count, 3, 32, 32) and trained.dtype == np.uint8
    normalized = Normalization(recipe)(ms.Tensor(trained)).asnumpy()
    np.testing.assert_allclose(normalized, seen[: len(trained)], rtol=0, atol=1e-5)
