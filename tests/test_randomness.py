"""Tests for vgg16.randomness: every draw a function of (seed, epoch, position) alone."""

import io

import numpy as np
import pytest
from mindspore.dataset import vision
from mindspore.dataset.vision import Inter
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
    assert [k.shape for k in a] == [(2, 4096), (2, 1024)] and a[0].dtype == np.uint8
    assert all(k.flags.c_contiguous for k in a)
    np.testing.assert_array_equal(a[0][1], b[0][0])  # image 9, whatever its neighbours
    np.testing.assert_array_equal(a[1][1], b[1][0])
    assert set(np.unique(a[0])) == {0, 1}
    assert (a[0] == 0).mean() == pytest.approx(0.5, abs=0.02)
    for p in (0.1, 0.25):  # 16-bit and 8-bit draws (0.5 takes one bit)
        rare = dropout_keep(1, 2, np.arange(64), (4096,), p)[0]
        assert (rare == 0).mean() == pytest.approx(p, abs=0.005)
    assert not np.array_equal(a[0][0], a[0][1])
    assert not np.array_equal(a[0], dropout_keep(1, 3, np.array([5, 9]), (4096, 1024), 0.5)[0])


def test_a_dropout_rate_finer_than_8_bits_is_drawn_from_16():
    """p = 0.001 rounds to 0 in 8 bits (nothing dropped) and to 66/65536 in 16."""
    keep = dropout_keep(1, 2, np.arange(256), (4096,), 0.001)[0]
    assert (keep == 0).mean() == pytest.approx(66 / 65536, abs=0.0002)


def test_draws_are_uniform_and_belong_to_their_key() -> None:
    keys = randomness.image_keys(1, 0, 2, np.arange(2000))
    draws = randomness.uniforms(keys, 3)
    assert draws.shape == (2000, 3) and draws.min() >= 0 and draws.max() < 1
    counts = np.histogram(draws, bins=10, range=(0, 1))[0]
    assert counts.min() > 0.9 * 600 and counts.max() < 1.1 * 600  # 6000 draws in 10 bins
    assert abs(np.corrcoef(draws[:, 0], draws[:, 1])[0, 1]) < 0.05
    np.testing.assert_array_equal(randomness.uniforms(keys[[7, 3]], 3), draws[[7, 3]])
    for other in ((2, 0, 2), (1, 1, 2), (1, 0, 3)):
        assert not np.isin(randomness.image_keys(*other, np.arange(2000)), keys).any()


def test_cifar_crop_is_a_window_of_the_zero_padded_image() -> None:
    images = list(np.random.default_rng(0).integers(1, 256, (40, 32, 32, 3), dtype=np.uint8))
    augment = CifarAugment(seed=1, epoch=1, size=(32, 32), flip=True)
    outs = augment(np.stack(images), np.arange(40)).transpose(0, 2, 3, 1)  # NCHW out
    one = augment([images[5]], np.array([5]))  # a list of images, of any sizes
    np.testing.assert_array_equal(outs[5], one[0].transpose(1, 2, 0))
    flips = 0
    for image, out in zip(images, outs, strict=True):
        assert out.shape == image.shape and out.dtype == np.uint8
        padded = np.pad(image, ((4, 4), (4, 4), (0, 0)))
        windows = [padded[t : t + 32, u : u + 32] for t in range(9) for u in range(9)]
        assert any(np.array_equal(o, w) for w in windows for o in (out, out[:, ::-1]))
        flips += not any(np.array_equal(out, w) for w in windows)
    assert 5 < flips < 35  # about half are mirrored
    assert len({out.tobytes() for out in outs}) == 40
    # the images have no zero pixel: the first non-zero row and column give the window
    corners = {(o.any(axis=(1, 2)).argmax(), o.any(axis=(0, 2)).argmax()) for o in outs}
    assert len(corners) > 10  # the windows move


def test_cifar_crop_of_another_size_is_resized_to_the_network_as_the_zoo_resizes() -> None:
    """The crop of the image's own size, then MindSpore's `Resize` (the zoo's), to the bit."""
    image = np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    same = CifarAugment(seed=1, epoch=1, size=(20, 24), flip=False)
    augment = CifarAugment(seed=1, epoch=1, size=(32, 48), flip=False)
    for position in range(4):
        where = np.array([position])
        (out,) = augment([image], where)
        (crop,) = same([image], where)
        expected = vision.Resize((32, 48), Inter.BILINEAR)(crop.transpose(1, 2, 0))
        np.testing.assert_array_equal(out.transpose(1, 2, 0), expected)


def _jpeg(pixels: np.ndarray) -> np.ndarray:
    data = io.BytesIO()
    Image.fromarray(pixels).save(data, format="JPEG", quality=95)
    return np.frombuffer(data.getvalue(), np.uint8)


def test_imagenet_crop_is_sized_and_fixed_by_position() -> None:
    photo = np.random.default_rng(1).integers(0, 256, (90, 120, 3), dtype=np.uint8)
    record = _jpeg(photo)
    augment = ImagenetAugment(seed=1, epoch=2, size=(32, 64), flip=True)
    out, other = augment([record, record], np.array([7, 8]))
    assert out.shape == (3, 32, 64) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, augment([record], np.array([7]))[0])
    assert not np.array_equal(out, other)


def test_a_jpeg_is_decoded_at_a_reduced_scale_only_as_far_as_the_crop_allows() -> None:
    """A large photo is decoded at a DCT scale (in eighths) where the crop stays at least the
    network's size: the result is close to cropping the fully decoded image."""
    y, x = np.mgrid[0:800, 0:1000]
    photo = np.stack([x % 256, y % 256, (x + y) // 8 % 256], axis=-1).astype(np.uint8)
    record = _jpeg(photo)
    augment = ImagenetAugment(seed=3, epoch=1, size=(32, 32), flip=False)
    where = np.arange(20)
    draws = randomness.uniforms(randomness.image_keys(3, 1, 1, where), 41)
    for out, row in zip(augment([record] * 20, where), draws, strict=True):
        box = randomness._random_resized_crop(row[:-1], 1000, 800)
        full = Image.fromarray(photo).resize((32, 32), Image.Resampling.BILINEAR, box=box)
        error = np.abs(out.transpose(1, 2, 0).astype(int) - np.asarray(full, dtype=int))
        assert error.mean() < 8, (box, error.mean())


def test_the_dct_scale_keeps_every_crop_at_least_the_networks_size(monkeypatch) -> None:
    """No crop is enlarged from fewer pixels than the network takes (each decoded crop is at
    least `size`), only the crop is decoded, and below full size where the crop allows."""
    photo = np.random.default_rng(4).integers(0, 256, (800, 1000, 3), dtype=np.uint8)
    record, decode, decoded = _jpeg(photo), randomness.images.decode_record, []

    def recorded(data: np.ndarray, at_least=(0, 0), box=None) -> np.ndarray:
        pixels = decode(data, at_least, box)
        decoded.append((pixels.shape[:2], box))
        return pixels

    monkeypatch.setattr(randomness.images, "decode_record", recorded)
    height, width = 96, 128
    where = np.arange(20)
    ImagenetAugment(seed=3, epoch=1, size=(height, width), flip=False)([record] * 20, where)
    draws = randomness.uniforms(randomness.image_keys(3, 1, 1, where), 41)
    assert len(decoded) == 20
    for ((h, w), box), row in zip(decoded, draws, strict=True):
        assert box == randomness._random_resized_crop(row[:-1], 1000, 800)
        left, top, right, bottom = box
        assert h >= height and w >= width, (box, h, w)
        assert h < bottom - top and w < right - left, (box, h, w)


def test_raw_pixels_are_cropped_as_their_jpeg_record_is() -> None:
    """The same box and resize for raw pixels as for a JPEG record decoded at full size
    (the network's size above the photo's): the JPEG's pixels given raw, the same bytes."""
    photo = np.random.default_rng(5).integers(0, 256, (90, 120, 3), dtype=np.uint8)
    record = _jpeg(photo)
    pixels = randomness.images.decode_record(record)
    augment = ImagenetAugment(seed=2, epoch=0, size=(96, 128), flip=True)
    where = np.arange(8)
    from_jpeg = augment([record] * 8, where)
    np.testing.assert_array_equal(augment(np.stack([pixels] * 8), where), from_jpeg)
    assert len({out.tobytes() for out in from_jpeg}) == 8


@pytest.mark.parametrize(("height", "width"), [(90, 120), (300, 41)])
def test_imagenet_crops_are_mindspores_resized_crop_of_the_drawn_box(height, width) -> None:
    """The crop of the drawn box, resized as MindSpore's `ResizedCrop` resizes it (bilinear,
    to the bit), mirrored where the flip is drawn."""
    photo = np.random.default_rng(6).integers(0, 256, (height, width, 3), dtype=np.uint8)
    where = np.arange(16)
    outs = ImagenetAugment(seed=8, epoch=3, size=(48, 64), flip=True)(np.stack([photo] * 16), where)
    draws = randomness.uniforms(randomness.image_keys(8, 1, 3, where), 41)
    for out, row in zip(outs, draws, strict=True):
        left, top, right, bottom = randomness._random_resized_crop(row[:-1], width, height)
        crop = vision.ResizedCrop(top, left, bottom - top, right - left, (48, 64),
                                  Inter.BILINEAR)(photo)  # fmt: skip
        expected = crop[:, ::-1] if row[-1] < 0.5 else crop
        np.testing.assert_array_equal(out.transpose(1, 2, 0), expected, err_msg=str(row[-1]))


@pytest.mark.parametrize(("width", "height"), [(500, 375), (40, 400), (400, 40)])
def test_random_resized_crop_boxes_fit_and_follow_the_zoo_ranges(width, height) -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        box = randomness._random_resized_crop(rng.random(40), width, height)
        left, top, right, bottom = box
        assert 0 <= left < right <= width and 0 <= top < bottom <= height
        w, h = right - left, bottom - top
        assert 3 / 4 - 0.05 <= w / h <= 4 / 3 + 0.05 or (w, h) in ((width, height),)
        if (width, height) == (500, 375):
            assert 0.08 * width * height * 0.9 <= w * h <= width * height
