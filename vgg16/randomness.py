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

import io
import math
from typing import Protocol

import numpy as np
from PIL import Image

_ORDER, _AUGMENT, _DROPOUT = 0, 1, 2  # streams, so that they never share draws


def generator(seed: int, stream: int, *key: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream, *key])


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
    """Inverted-dropout multipliers (0 or 1/(1-p)) for a batch, one (batch, width) float32
    array per dropout layer; each image's row is drawn from that image's own key."""
    draws = np.stack(
        [
            generator(seed, _DROPOUT, epoch, int(position)).random(sum(widths))
            for position in batch_positions
        ]
    )
    keep = ((draws >= p) / (1 - p)).astype(np.float32)
    return np.split(keep, np.cumsum(widths)[:-1], axis=1)


class Augment(Protocol):
    def __call__(self, image: np.ndarray, position: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The augmented HWC uint8 image, and the position passed through."""


class CifarAugment:
    """The zoo's CIFAR training crop (4-pixel zero padding, random 32x32 crop) and optional
    horizontal flip, drawn for each image from (seed, epoch, position)."""

    def __init__(self, seed: int, epoch: int, flip: bool) -> None:
        self.seed, self.epoch, self.flip = seed, epoch, flip

    def __call__(self, image: np.ndarray, position: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rng = generator(self.seed, _AUGMENT, self.epoch, int(position))
        top, left = rng.integers(0, 9, size=2)
        padded = np.pad(image, ((4, 4), (4, 4), (0, 0)))
        out = padded[top : top + image.shape[0], left : left + image.shape[1]]
        if self.flip and rng.random() < 0.5:
            out = out[:, ::-1]
        return np.ascontiguousarray(out), position


class ImagenetAugment:
    """The zoo's ImageNet training crop (`RandomCropDecodeResize`: area 8-100% of the image,
    aspect ratio 3/4 to 4/3, resized bilinearly to `size`) and horizontal flip, drawn for
    each image from (seed, epoch, position). Decodes a JPEG record itself (Pillow); takes
    raw pixels (HWC) as they are."""

    def __init__(self, seed: int, epoch: int, size: tuple[int, int], flip: bool) -> None:
        self.seed, self.epoch, self.size, self.flip = seed, epoch, size, flip

    def __call__(self, data: np.ndarray, position: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rng = generator(self.seed, _AUGMENT, self.epoch, int(position))
        opened = Image.fromarray(data) if data.ndim == 3 else Image.open(io.BytesIO(data.tobytes()))
        with opened as image:
            box = _random_resized_crop(rng, image.width, image.height)
            out = image.convert("RGB").resize(
                (self.size[1], self.size[0]), Image.Resampling.BILINEAR, box=box
            )
        pixels = np.asarray(out)
        if self.flip and rng.random() < 0.5:
            pixels = pixels[:, ::-1]
        return np.ascontiguousarray(pixels), position


def _random_resized_crop(
    rng: np.random.Generator, width: int, height: int
) -> tuple[int, int, int, int]:
    """(left, top, right, bottom): ten tries at a random area and log-uniform aspect ratio
    that fit, else the largest centred crop of a ratio within bounds (as MindSpore and
    torchvision do)."""
    area = width * height
    low, high = math.log(3 / 4), math.log(4 / 3)
    for _ in range(10):
        target = area * rng.uniform(0.08, 1.0)
        ratio = math.exp(rng.uniform(low, high))
        w = round(math.sqrt(target * ratio))
        h = round(math.sqrt(target / ratio))
        if 0 < w <= width and 0 < h <= height:
            left = int(rng.integers(0, width - w + 1))
            top = int(rng.integers(0, height - h + 1))
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
