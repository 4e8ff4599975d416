"""The evaluation pipeline's positions and the pixels the network sees: `network_pixels`
must give, for a position in a split, the image that evaluation scores at that position."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from imagenet_layout import write_image_folder

from vgg16.config import load_recipe, parse_overrides
from vgg16.data import open_source
from vgg16.formats.cifar10 import find_batches, read_batches
from vgg16.input_pipeline import create_dataset, evaluation_indices, network_pixels
from vgg16.prepare import prepare


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
