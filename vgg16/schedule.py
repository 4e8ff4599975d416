"""Per-step learning-rate schedules of the zoo recipe, as pure functions.

Each returns one float32 learning rate per optimiser step for the whole run, so the
optimiser takes the array as its `learning_rate` and resuming at step k is `lrs[k:]`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def step_lr(
    *, lr_init: float, lr_max: float, warmup_epochs: int, max_epoch: int, steps_per_epoch: int
) -> np.ndarray:
    """Linear warm-up lr_init -> lr_max, then quadratic decay to 0 (the zoo's CIFAR `lr_steps`)."""
    total = steps_per_epoch * max_epoch
    warmup = steps_per_epoch * warmup_epochs
    inc = (lr_max - lr_init) / warmup if warmup else 0.0
    lrs = []
    for i in range(total):
        if i < warmup:
            lrs.append(lr_init + inc * i)
        else:
            base = 1.0 - (i - warmup) / (total - warmup)
            lrs.append(max(lr_max * base * base, 0.0))
    return np.asarray(lrs, dtype=np.float32)


def _warmup(i: int, warmup_steps: int, lr: float) -> float:
    """The zoo's `linear_warmup_lr` from 0: reaches `lr` on the last warm-up step."""
    return lr * (i + 1) / warmup_steps


def cosine_annealing_lr(
    *,
    lr: float,
    warmup_epochs: int,
    max_epoch: int,
    steps_per_epoch: int,
    t_max: int | None = None,
    eta_min: float = 0.0,
) -> np.ndarray:
    """Warm-up, then cosine annealing, constant within each epoch (the zoo's ImageNet default)."""
    t_max = t_max or max_epoch
    warmup = steps_per_epoch * warmup_epochs
    lrs = []
    for i in range(steps_per_epoch * max_epoch):
        if i < warmup:
            lrs.append(_warmup(i, warmup, lr))
        else:
            epoch = i // steps_per_epoch
            lrs.append(eta_min + (lr - eta_min) * (1.0 + math.cos(math.pi * epoch / t_max)) / 2)
    return np.asarray(lrs, dtype=np.float32)


def exponential_lr(
    *,
    lr: float,
    lr_epochs: Sequence[int],
    gamma: float,
    warmup_epochs: int,
    max_epoch: int,
    steps_per_epoch: int,
) -> np.ndarray:
    """Warm-up, then multiply by gamma at the first step of each epoch in lr_epochs."""
    warmup = steps_per_epoch * warmup_epochs
    milestones = {e * steps_per_epoch for e in lr_epochs}
    lrs = []
    current = lr
    for i in range(steps_per_epoch * max_epoch):
        if i < warmup:
            current = _warmup(i, warmup, lr)
        elif i in milestones:
            current *= gamma
        lrs.append(current)
    return np.asarray(lrs, dtype=np.float32)
