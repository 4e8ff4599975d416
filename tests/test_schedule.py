"""Learning-rate schedules against hand-computed values."""

import math

import numpy as np
import pytest

from vgg16.schedule import cosine_annealing_lr, exponential_lr, step_lr


def test_step_schedule_of_the_cifar10_recipe():
    lrs = step_lr(lr_init=0.01, lr_max=0.1, warmup_epochs=5, max_epoch=70, steps_per_epoch=781)
    assert len(lrs) == 54_670
    assert lrs.dtype == np.float32
    assert lrs[0] == pytest.approx(0.01)
    assert lrs[1] == pytest.approx(0.01 + 0.09 / 3905)
    assert lrs[3904] == pytest.approx(0.01 + 0.09 * 3904 / 3905)
    assert lrs[3905] == pytest.approx(0.1)
    # Quadratic decay: halfway through the decay phase the rate is lr_max / 4.
    half = 3905 + (54_670 - 3905) // 2
    expected = 0.1 * (1 - (half - 3905) / (54_670 - 3905)) ** 2
    assert lrs[half] == pytest.approx(expected, rel=1e-6)
    assert lrs[-1] == pytest.approx(0.1 / (54_670 - 3905) ** 2, rel=1e-4)
    assert np.all(np.diff(lrs[3905:]) <= 0)


def test_step_schedule_without_warmup_starts_at_lr_max():
    lrs = step_lr(lr_init=0.01, lr_max=0.2, warmup_epochs=0, max_epoch=2, steps_per_epoch=3)
    np.testing.assert_allclose(lrs, [0.2 * (1 - i / 6) ** 2 for i in range(6)], rtol=1e-6)


def test_cosine_annealing_is_constant_within_an_epoch():
    lrs = cosine_annealing_lr(lr=0.1, warmup_epochs=0, max_epoch=4, steps_per_epoch=2)
    expected = [0.1 * (1 + math.cos(math.pi * e / 4)) / 2 for e in (0, 0, 1, 1, 2, 2, 3, 3)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-6)


def test_cosine_annealing_warmup_t_max_and_eta_min():
    lrs = cosine_annealing_lr(
        lr=0.1, warmup_epochs=1, max_epoch=3, steps_per_epoch=4, t_max=6, eta_min=0.02
    )
    np.testing.assert_allclose(lrs[:4], [0.025, 0.05, 0.075, 0.1], rtol=1e-6)
    epoch1 = 0.02 + 0.08 * (1 + math.cos(math.pi / 6)) / 2
    epoch2 = 0.02 + 0.08 * (1 + math.cos(math.pi * 2 / 6)) / 2
    np.testing.assert_allclose(lrs[4:], [epoch1] * 4 + [epoch2] * 4, rtol=1e-6)


def test_exponential_decays_at_each_milestone():
    lrs = exponential_lr(
        lr=0.1, lr_epochs=(2, 3), gamma=0.1, warmup_epochs=1, max_epoch=4, steps_per_epoch=2
    )
    np.testing.assert_allclose(lrs, [0.05, 0.1, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001], rtol=1e-5)


def test_exponential_warms_up_over_all_warmup_epochs():
    lrs = exponential_lr(
        lr=0.1, lr_epochs=(3,), gamma=0.1, warmup_epochs=2, max_epoch=4, steps_per_epoch=2
    )
    assert lrs.dtype == np.float32
    np.testing.assert_allclose(lrs, [0.025, 0.05, 0.075, 0.1, 0.1, 0.1, 0.01, 0.01], rtol=1e-6)


def test_exponential_without_warmup_starts_at_lr():
    lrs = exponential_lr(
        lr=0.1, lr_epochs=(1,), gamma=0.5, warmup_epochs=0, max_epoch=2, steps_per_epoch=2
    )
    np.testing.assert_allclose(lrs, [0.1, 0.1, 0.05, 0.05], rtol=1e-6)


def test_cosine_annealing_returns_float32():
    """The optimiser takes the array as its learning rate: float32 like the weights."""
    lrs = cosine_annealing_lr(lr=0.1, warmup_epochs=0, max_epoch=2, steps_per_epoch=1)
    assert lrs.dtype == np.float32
    np.testing.assert_allclose(lrs, [0.1, 0.05], rtol=1e-6)
