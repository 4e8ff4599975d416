"""Tests for vgg16.randomness: every draw a function of (seed, epoch, position) alone."""

import io

import numpy as np
import pytest
from PIL import Image

from vgg16 import randomness
from vgg16.randomness import (
    CifarAugment,
    ImagenetAugment,
    dropout_keep,
    epoch_order,
    positions,
    steps_per_epoch,
)


def test_the_epoch_order_is_a_permutation_fixed_by_seed_and_epoch() -> None:
    order = epoch_order(100, seed=1, epoch=3, shuffle=True)
    assert sorted(order) == list(range(100))
    np.testing.assert_array_equal(order, epoch_order(100, seed=1, epoch=3, shuffle=True))
    assert not np.array_equal(order, epoch_order(100, seed=1, epoch=4, shuffle=True))
    assert not np.array_equal(order, epoch_order(100, seed=2, epoch=3, shuffle=True))
    np.testing.assert_array_equal(epoch_order(5, seed=1, epoch=3, shuffle=False), range(5))


def test_workers_split_each_global_batch_and_resume_mid_epoch() -> None:
    """23 images, batch 3, 2 workers: 3 global batches of 6, the last 5 images unused."""
    assert steps_per_epoch(23, 6) == 3
    rank0 = positions(23, batch_size=3, num_shards=2, shard_id=0, first_step=0)
    rank1 = positions(23, batch_size=3, num_shards=2, shard_id=1, first_step=0)
    np.testing.assert_array_equal(rank0, [0, 1, 2, 6, 7, 8, 12, 13, 14])
    np.testing.assert_array_equal(rank1, [3, 4, 5, 9, 10, 11, 15, 16, 17])
    one = positions(23, batch_size=6, num_shards=1, shard_id=0, first_step=0)
    np.testing.assert_array_equal(one, np.arange(18))  # one worker, the same global batches
    later = positions(23, batch_size=3, num_shards=2, shard_id=1, first_step=2)
    np.testing.assert_array_equal(later, [15, 16, 17])


def test_dropout_rows_belong_to_their_image_not_to_the_batch() -> None:
    a = dropout_keep(1, 2, np.array([5, 9]), (4096, 1024), 0.5)
    b = dropout_keep(1, 2, np.array([9, 7]), (4096, 1024), 0.5)
    assert [k.shape for k in a] == [(2, 4096), (2, 1024)] and a[0].dtype == np.float32
    np.testing.assert_array_equal(a[0][1], b[0][0])  # image 9, whatever its neighbours
    np.testing.assert_array_equal(a[1][1], b[1][0])
    assert set(np.unique(a[0])) == {0.0, 2.0}
    assert (a[0] == 0).mean() == pytest.approx(0.5, abs=0.02)
    assert not np.array_equal(a[0][0], a[0][1])
    assert not np.array_equal(a[0], dropout_keep(1, 3, np.array([5, 9]), (4096, 1024), 0.5)[0])


def test_cifar_crop_is_a_window_of_the_zero_padded_image() -> None:
    image = np.random.default_rng(0).integers(1, 256, (32, 32, 3), dtype=np.uint8)
    padded = np.pad(image, ((4, 4), (4, 4), (0, 0)))
    augment = CifarAugment(seed=1, epoch=1, flip=True)
    flips = 0
    for position in range(40):
        out, where = augment(image, np.int64(position))
        assert where == position and out.shape == image.shape
        again, _ = augment(image, np.int64(position))
        np.testing.assert_array_equal(out, again)
        unflipped = [out, out[:, ::-1]]
        windows = [padded[t : t + 32, u : u + 32] for t in range(9) for u in range(9)]
        match = [i for i, w in enumerate(windows) for o in unflipped if np.array_equal(o, w)]
        assert match, position
        flips += not any(np.array_equal(out, w) for w in windows)
    assert 5 < flips < 35  # about half are mirrored
    assert not np.array_equal(augment(image, np.int64(0))[0], augment(image, np.int64(1))[0])


def test_imagenet_crop_is_sized_and_fixed_by_position() -> None:
    photo = np.random.default_rng(1).integers(0, 256, (90, 120, 3), dtype=np.uint8)
    data = io.BytesIO()
    Image.fromarray(photo).save(data, format="JPEG")
    record = np.frombuffer(data.getvalue(), np.uint8)
    augment = ImagenetAugment(seed=1, epoch=2, size=(32, 64), flip=True)
    out, where = augment(record, np.int64(7))
    assert out.shape == (32, 64, 3) and out.dtype == np.uint8 and where == 7
    np.testing.assert_array_equal(out, augment(record, np.int64(7))[0])
    assert not np.array_equal(out, augment(record, np.int64(8))[0])


@pytest.mark.parametrize(("width", "height"), [(500, 375), (40, 400), (400, 40)])
def test_random_resized_crop_boxes_fit_and_follow_the_zoo_ranges(width, height) -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        left, top, right, bottom = randomness._random_resized_crop(rng, width, height)
        assert 0 <= left < right <= width and 0 <= top < bottom <= height
        w, h = right - left, bottom - top
        assert 3 / 4 - 0.05 <= w / h <= 4 / 3 + 0.05 or (w, h) in ((width, height),)
        if (width, height) == (500, 375):
            assert 0.08 * width * height * 0.9 <= w * h <= width * height
