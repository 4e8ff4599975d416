"""Every random choice of training as a function of (seed, epoch, position), nothing else.

A resumed run must see the data order, crops, flips and dropout masks the uninterrupted run
saw, and two runs with one seed must be identical. MindSpore keeps these streams as hidden
state that cannot be saved: `nn.Dropout` is `ops.Dropout(keep_prob, seed0, seed1)`, whose
kernel advances its own counter (`mindspore.get_rng_state`/`set_rng_state` cover only the
default `Generator`, which it does not use), and the dataset pipeline's shuffle and random
transforms draw from per-worker generators seeded once by `dataset.config.set_seed`, in an
order that depends on thread scheduling. So each choice is drawn here, from a generator
keyed by where it is used: the epoch's order by (seed, epoch); each image's crop, flip and
dropout masks by (seed, epoch, its position in that order). Where an image is trained (which
worker, which resumed process) then changes nothing.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np

from vgg16 import images
from vgg16.preprocessing import bilinear

_ORDER, _AUGMENT, _DROPOUT = 0, 1, 2  # streams, so that they never share draws
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # SplitMix64's increment


def generator(seed: int, stream: int, *key: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream, *key])


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's output function, a bijection of uint64 whose outputs pass BigCrush. Numpy
    applies it to a whole batch at once, where a generator per image cost 20-40 us each."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def image_keys(seed: int, stream: int, epoch: int, positions: np.ndarray) -> np.ndarray:
    """One uint64 key per position: the seed of that image's own draws in `stream`."""
    key = np.zeros(1, dtype=np.uint64)
    for part in (seed, stream, epoch):
        key = _mix(key ^ (np.uint64(part) + _GOLDEN))
    return _mix(key ^ (np.asarray(positions, dtype=np.uint64) + _GOLDEN))


def draw_bits(keys: np.ndarray, count: int) -> np.ndarray:
    """(len(keys), count) uint64: each key's SplitMix64 sequence, computed all at once."""
    steps = np.arange(1, count + 1, dtype=np.uint64) * _GOLDEN
    return _mix(keys[:, None] + steps)


def uniforms(keys: np.ndarray, count: int) -> np.ndarray:
    """(len(keys), count) float64 in [0, 1), the top 53 bits of each draw."""
    return (draw_bits(keys, count) >> np.uint64(11)) * 2.0**-53


def epoch_order(count: int, seed: int, epoch: int, shuffle: bool) -> np.ndarray:
    """The record indices of one epoch, in training order."""
    if not shuffle:
        return np.arange(count)
    return generator(seed, _ORDER, epoch).permutation(count)


def steps_per_epoch(count: int, global_batch: int) -> int:
    """Whole global batches only, the same number for every worker."""
    return count // global_batch


def positions(
    count: int, *, batch_size: int, num_shards: int, shard_id: int, first_step: int
) -> np.ndarray:
    """The positions in the epoch's order that worker `shard_id` trains, from `first_step`
    on: step s's global batch is positions [s*G, (s+1)*G) (G = batch_size x num_shards), of
    which each worker takes its own contiguous `batch_size`; so N workers see exactly the
    images one worker with batch G would."""
    steps = steps_per_epoch(count, batch_size * num_shards)
    step = np.arange(first_step, steps)[:, None] * batch_size * num_shards
    return (step + shard_id * batch_size + np.arange(batch_size)).ravel()


def dropout_keep(
    seed: int, epoch: int, batch_positions: np.ndarray, widths: tuple[int, ...], p: float
) -> list[np.ndarray]:
    """Which units each dropout layer keeps for a batch: one (batch, width) uint8 array of
    0 and 1 per layer, each contiguous, each image's row drawn from that image's own key.
    The network scales the kept units by 1/(1-p) itself (`model.Vgg`): flags are a quarter
    of float32 multipliers' bytes through the pipeline and onto the device. Each flag takes
    the fewest bits of SplitMix64 output that give p exactly (`_flag_bits`): one bit for the
    zoo's 0.5, which makes a batch's flags 16 times cheaper to draw than 16 bits each."""
    total = sum(widths)
    bits = _flag_bits(p)
    keys = image_keys(seed, _DROPOUT, epoch, batch_positions)
    words = draw_bits(keys, -(-total * bits // 64)).astype("<u8")
    if bits == 1:
        draws = np.unpackbits(words.view(np.uint8), axis=1, count=total, bitorder="little")
    else:
        draws = words.view(f"<u{bits // 8}")[:, :total]
    keep = (draws >= round(p * 2**bits)).view(np.uint8)
    # contiguous copies: MindSpore converts a strided array element by element
    return [part.copy() for part in np.split(keep, np.cumsum(widths)[:-1], axis=1)]


def _flag_bits(p: float) -> int:
    """Bits per dropout draw: 1 where p is 0.5, 8 where 256p is whole, else 16 (p applied in
    steps of 1/65536)."""
    return next((b for b in (1, 8) if (p * 2**b).is_integer()), 16)


def crop_windows(images: np.ndarray, top: np.ndarray, left: np.ndarray, flip: np.ndarray):
    """Each image's own-sized window at (top, left) of it zero-padded by 4 pixels, mirrored
    where `flip`: (N, H, W, C) uint8 in, (N, C, H, W) out, in a few whole-batch numpy calls
    (which release the GIL, so that the pipeline's threads run side by side)."""
    count, height, width, channels = images.shape
    padded = np.zeros((count, channels, height + 8, width + 8), dtype=images.dtype)
    padded[:, :, 4:-4, 4:-4] = images.transpose(0, 3, 1, 2)
    windows = np.lib.stride_tricks.sliding_window_view(padded, (height, width), axis=(2, 3))
    out = windows[np.arange(count), :, top, left]  # (N, C, H, W): one copy per image
    out[flip] = out[flip, :, :, ::-1]
    return out


class Augment(Protocol):
    def __call__(self, records: np.ndarray | list[np.ndarray], positions: np.ndarray):
        """A batch's records (an (N, H, W, 3) uint8 array; or a list of HWC pixels of any
        size, or of encoded bytes where the family decodes), augmented to the network's size:
        (N, 3, height, width) uint8."""


class CifarAugment:
    """The zoo's CIFAR training crop (4-pixel zero padding, random crop of the image's own
    size) and optional horizontal flip, drawn for each image from (seed, epoch, position),
    then resized to `size` (height, width) if the image is another size, as the zoo's
    `Resize` does (`preprocessing.bilinear`)."""

    def __init__(self, seed: int, epoch: int, size: tuple[int, int], flip: bool) -> None:
        self.seed, self.epoch, self.size, self.flip = seed, epoch, tuple(size), flip

    def __call__(self, records: np.ndarray | list[np.ndarray], positions: np.ndarray):
        draws = uniforms(image_keys(self.seed, _AUGMENT, self.epoch, positions), 3)
        top, left = (draws[:, :2] * 9).astype(np.intp).T
        flip = self.flip & (draws[:, 2] < 0.5)
        if isinstance(records, np.ndarray):  # one size: the whole batch at once
            crops = crop_windows(records, top, left, flip)
            if records.shape[1:3] == self.size:
                return crops
        else:
            one = [slice(i, i + 1) for i in range(len(records))]
            crops = [crop_windows(image[None], top[i], left[i], flip[i])[0]
                     for image, i in zip(records, one, strict=True)]  # fmt: skip
        return np.stack([self._sized(crop) for crop in crops])

    def _sized(self, pixels: np.ndarray) -> np.ndarray:
        """(3, H, W) to (3, height, width)."""
        if pixels.shape[1:] == self.size:
            return pixels
        return bilinear(pixels.transpose(1, 2, 0), self.size).transpose(2, 0, 1)


class ImagenetAugment:
    """The zoo's ImageNet training crop (`RandomCropDecodeResize`: area 8-100% of the image,
    aspect ratio 3/4 to 4/3, resized bilinearly to `size`) and horizontal flip, drawn for
    each image from (seed, epoch, position). The crop is drawn from the record's header, so
    that only the crop of a JPEG is decoded, at the smallest DCT scale that keeps it at
    least `size` (`images.decode_record`). The crop is resized by `preprocessing.bilinear`
    (OpenCV's kernel, which MindSpore's `Resize` calls: the same pixels, to the bit) with
    the GIL released: MindSpore's eager ops hold it, which kept two threads from decoding
    side by side (1.78x on 2 cores, against 1.98x for MindSpore's own pipeline).
    Raw pixels (HWC) are taken as they are."""

    def __init__(self, seed: int, epoch: int, size: tuple[int, int], flip: bool) -> None:
        self.seed, self.epoch, self.size, self.flip = seed, epoch, tuple(size), flip

    def __call__(self, records: np.ndarray | list[np.ndarray], positions: np.ndarray):
        draws = uniforms(image_keys(self.seed, _AUGMENT, self.epoch, positions), _CROP_DRAWS + 1)
        batch = np.empty((len(records), 3, *self.size), dtype=np.uint8)
        for out, data, row in zip(batch, records, draws, strict=True):
            out[...] = self._one(data, row).transpose(2, 0, 1)  # one copy, into place
        return batch

    def _one(self, data: np.ndarray, draws: np.ndarray) -> np.ndarray:
        height, width = self.size
        full = images.record_size(data) if data.ndim == 1 else (data.shape[1], data.shape[0])
        box = left, top, right, bottom = _random_resized_crop(draws[:-1], *full)
        pixels = data[top:bottom, left:right] if data.ndim == 3 else images.decode_record(
            data, at_least=(-(-full[0] * width // (right - left)),
                            -(-full[1] * height // (bottom - top))), box=box)  # fmt: skip
        out = bilinear(pixels, self.size)
        return out[:, ::-1] if self.flip and draws[-1] < 0.5 else out


#: Uniform draws `_random_resized_crop` may use: ten tries of (area, ratio, left, top).
_CROP_DRAWS = 40


def _random_resized_crop(draws: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) from uniform draws in [0, 1) (4 per try): ten tries at a
    random area and log-uniform aspect ratio that fit, else the largest centred crop of a
    ratio within bounds (as MindSpore and torchvision do)."""
    area = width * height
    low, high = math.log(3 / 4), math.log(4 / 3)
    for u_area, u_ratio, u_left, u_top in draws.reshape(-1, 4)[:10]:
        target = area * (0.08 + 0.92 * u_area)
        ratio = math.exp(low + (high - low) * u_ratio)
        w = round(math.sqrt(target * ratio))
        h = round(math.sqrt(target / ratio))
        if 0 < w <= width and 0 < h <= height:
            left = int(u_left * (width - w + 1))
            top = int(u_top * (height - h + 1))
            return left, top, left + w, top + h
    ratio = width / height
    if ratio < 3 / 4:
        w, h = width, round(width / (3 / 4))
    elif ratio > 4 / 3:
        w, h = round(height * (4 / 3)), height
    else:
        w, h = width, height
    left, top = (width - w) // 2, (height - h) // 2
    return left, top, left + w, top + h
