"""Mixed precision exercised on CPU, through the step training runs (`build_train_step`).

The seed trains ImageNet in amp O2 (fp16, BatchNorm in fp32) with a fixed loss scale of 1024.
On CPU `amp_level: auto` means fp32, so these tests are the only place the fp16 path runs here:
VGG16-BN at 32 px on four digits, each graph-mode step compiled in seconds. What GPUs and
Ascend add (their fp16 kernels, their own overflow checks) cannot be tested on this machine.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import mindspore as ms
import numpy as np
import pytest
from mindspore import nn, ops
from mindspore.amp import auto_mixed_precision

from vgg16 import checkpoint, train
from vgg16.config import Recipe, load_recipe
from vgg16.model import build_net
from vgg16.train import build_train_step

#: Compiles and runs VGG16 train steps (left out of `make check`).
pytestmark = pytest.mark.training

BATCH = 4
FP16_MAX = float(np.finfo(np.float16).max)  # 65504
#: fp16's unit roundoff, 2^-11: the relative error of rounding one value to fp16.
FP16_EPS = 2.0**-11
#: One learning rate per step, each different: a step that moved the schedule on without
#: updating the weights would show in the size of the next update.
LRS = np.linspace(0.01, 0.12, 12, dtype=np.float32)
#: The seed's fixed loss scale for ImageNet.
SEED_SCALE = 1024.0
#: The dynamic scale's first value: large enough to overflow fp16 at the network's output
#: (`test_an_overflowing_step_is_skipped_and_the_dynamic_scale_halved` checks it does).
FIRST_SCALE = 2.0**19

Batch = tuple[np.ndarray, np.ndarray]
Weights = dict[str, np.ndarray]


def recipe(**overrides: object) -> Recipe:
    """VGG16-BN at 32 px without dropout (its masks would differ between runs) and without
    weight decay, so that an update is the learning rate times the gradient alone: decay
    would add the same term to every run and hide how far their gradients differ."""
    fixed = {"batch_norm": True, "image_size": [32, 32], "num_classes": 10,
             "has_dropout": False, "weight_decay": 0.0}  # fmt: skip
    return load_recipe(dataset="digits", overrides={**fixed, **overrides})


@pytest.fixture(scope="module")
def batch(digits) -> Batch:
    """The first BATCH digits as training's input pipeline gives them: NCHW uint8, int32."""
    images, labels = digits
    x = np.ascontiguousarray(images[:BATCH].transpose(0, 3, 1, 2))
    assert x.dtype == np.uint8
    return x, labels[:BATCH].astype(np.int32)


@pytest.fixture(scope="module")
def start() -> Weights:
    """The initial weights every run below starts from."""
    ms.set_seed(0)
    return {p.name: p.asnumpy().copy() for p in build_net(recipe()).get_parameters()}


def train_step(level: str, start: Weights, **overrides: object) -> nn.Cell:
    """`build_train_step` in graph mode, as training builds it, on a net holding `start`."""
    ms.set_context(mode=ms.GRAPH_MODE)
    r = recipe(**overrides)
    net = build_net(r)
    weights = {name: ms.Parameter(ms.Tensor(value), name=name) for name, value in start.items()}
    not_loaded, _ = ms.load_param_into_net(net, weights, strict_load=True)
    assert not not_loaded
    return build_train_step(net, r, LRS, level)


def take_step(step: nn.Cell, batch: Batch) -> float:
    return float(step(ms.Tensor(batch[0]), ms.Tensor(batch[1])).asnumpy())


def update(step: nn.Cell, start: Weights) -> Weights:
    """How far the trainable weights have moved from `start`."""
    return {p.name: p.asnumpy() - start[p.name] for p in step.network.trainable_params()}


def distance(a: Weights, b: Weights, names: list[str]) -> float:
    """||a - b|| / ||b|| over the named tensors taken together."""
    diff = sum(float(np.sum((a[n] - b[n]) ** 2, dtype=np.float64)) for n in names)
    return math.sqrt(diff / sum(float(np.sum(b[n] ** 2, dtype=np.float64)) for n in names))


@dataclass
class Run:
    """A few steps on one batch: the losses, and the first step's update."""

    losses: list[float]
    update: Weights


def run(step: nn.Cell, batch: Batch, start: Weights, count: int) -> Run:
    losses = [take_step(step, batch)]
    first = update(step, start)
    losses += [take_step(step, batch) for _ in range(count - 1)]
    return Run(losses, first)


@pytest.fixture(scope="module")
def fp16_run(batch, start) -> Callable[[str], Run]:
    """Three steps at an amp level with the seed's fixed loss scale, each level run once."""
    runs: dict[str, Run] = {}

    def get(level: str) -> Run:
        if level not in runs:
            runs[level] = run(train_step(level, start, loss_scale=SEED_SCALE), batch, start, 3)
        return runs[level]

    return get


@pytest.mark.parametrize("level", ["O2", "O3"])
def test_fp16_steps_run_on_cpu_and_fit_a_batch(fp16_run, level):
    """MindSpore accepts O2 and O3 on CPU: with the seed's loss scale the first step updates
    every parameter, and each step lowers the loss on a fixed batch."""
    result = fp16_run(level)
    assert all(math.isfinite(loss) for loss in result.losses), result.losses
    assert all(b < a for a, b in itertools.pairwise(result.losses)), result.losses
    assert result.losses[-1] < 0.8 * result.losses[0], result.losses
    assert not [name for name, change in result.update.items() if not change.any()]


@dataclass
class Seen:
    """What one cell of the network took in and gave out in a forward pass."""

    cell: nn.Cell
    given: np.ndarray
    given_dtype: ms.Type
    out: np.ndarray
    out_dtype: ms.Type


def forward_seen(level: str, batch: Batch) -> list[Seen]:
    """A training-mode forward pass (PyNative) of VGG16-BN cast by `auto_mixed_precision`,
    with what every convolution, BatchNorm and Dense cell saw. A cell's output dtype is the
    precision it computed in: amp casts a cell's inputs and parameters to its type inside the
    cell, so its input is still what the cell before it gave out."""
    net = build_net(recipe())
    amp = auto_mixed_precision(net, level)
    amp.set_train(True)
    seen: list[Seen] = []

    def record(cell: nn.Cell, args: tuple, out: ms.Tensor) -> None:
        given, made = (t.asnumpy().astype(np.float64) for t in (args[0], out))
        seen.append(Seen(cell, given, args[0].dtype, made, out.dtype))

    for _, cell in net.cells_and_names():
        if isinstance(cell, nn.Conv2d | nn.BatchNorm2d | nn.Dense):
            cell.register_forward_hook(record)
    amp(train.Normalization(recipe())(ms.Tensor(batch[0])))
    return seen


def batch_norm(given: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BatchNorm2d in training mode at initialisation (gamma 1, beta 0, eps 1e-5), in float64:
    its output, and its moving mean and variance after one batch (momentum 0.9 from 0 and 1;
    the variance MindSpore keeps is the unbiased one)."""
    mean, var = given.mean(axis=(0, 2, 3)), given.var(axis=(0, 2, 3))
    out = (given - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5)
    n = given.size // given.shape[1]
    return out, 0.1 * mean, 0.9 + 0.1 * var * n / (n - 1)


def fp16_rounding(exact: np.ndarray) -> float:
    """The largest error of holding `exact` in fp16."""
    return float(np.abs(exact.astype(np.float16).astype(np.float64) - exact).max())


def test_o2_computes_convolutions_and_dense_layers_in_fp16_and_batchnorm_in_fp32(pynative, batch):
    """Each BatchNorm's output and statistics match a float64 BatchNorm of its fp16 input 20
    times closer than fp16 could even hold the exact values: computed in fp32, not merely
    cast to it. Its parameters stay fp32."""
    seen = forward_seen("O2", batch)
    kinds = [type(s.cell).__name__ for s in seen]
    assert (kinds.count("Conv2d"), kinds.count("BatchNorm2d"), kinds.count("Dense")) == (13, 13, 3)
    for s in seen:
        want = ms.float32 if isinstance(s.cell, nn.BatchNorm2d) else ms.float16
        assert s.out_dtype == want, (type(s.cell).__name__, s.out_dtype)
    for s in (s for s in seen if isinstance(s.cell, nn.BatchNorm2d)):
        assert s.given_dtype == ms.float16  # what the convolution before it gave out
        out, moving_mean, moving_variance = batch_norm(s.given)
        for got, exact in ((s.out, out), (s.cell.moving_mean.asnumpy(), moving_mean),
                           (s.cell.moving_variance.asnumpy(), moving_variance)):  # fmt: skip
            assert np.abs(got - exact).max() < fp16_rounding(exact) / 20
        assert {p.dtype for p in s.cell.get_parameters()} == {ms.float32}


def test_o3_computes_batchnorm_in_fp16_too(pynative, batch):
    """What the test above tells apart: O3 casts BatchNorm as well, and its output is then
    no closer to the exact one than fp16 holds it."""
    seen = forward_seen("O3", batch)
    norms = [s for s in seen if isinstance(s.cell, nn.BatchNorm2d)]
    assert {s.out_dtype for s in norms} == {ms.float16}
    for s in norms:
        out, _, _ = batch_norm(s.given)
        assert np.abs(s.out - out).max() >= fp16_rounding(out) / 20


def fp16(values: np.ndarray) -> np.ndarray:
    return values.astype(np.float16).astype(np.float32)


@pytest.fixture(scope="module")
def o0_runs(batch, start) -> tuple[Run, Run]:
    """One fp32 (O0) step without a loss scale; and one from the weights and images rounded
    to fp16: how far rounding to fp16 alone, before any fp16 arithmetic, moves the update."""
    exact = run(train_step("O0", start), batch, start, 1)
    rounded_start = {name: fp16(value) for name, value in start.items()}
    with pytest.MonkeyPatch.context() as patch:  # the step's normalised images, rounded
        patch.setattr(train, "Normalization", _RoundedNormalization)
        rounded = run(train_step("O0", rounded_start), batch, rounded_start, 1)
    return exact, rounded


class _RoundedNormalization(train.Normalization):
    def construct(self, images: ms.Tensor) -> ms.Tensor:
        return ops.cast(ops.cast(super().construct(images), ms.float16), ms.float32)


def test_o2_with_the_seeds_fixed_loss_scale_updates_as_o0_within_fp16_rounding(fp16_run, o0_runs):
    """The tolerance is measured, not chosen: VGG16-BN's update is chaotic in its inputs (on
    this batch a 1e-5 relative change of the weights moved it by 3.5%, through ReLU and
    max-pool choices that flip), so rounding the weights and images to fp16 alone moves it by
    about 17%. O2 with the loss multiplied by 1024 and the gradients divided by it must land
    as close as that noise, within a factor 2 (it measured 1.14); a scale applied on one side
    only is off by a factor 1024. And it must differ by more than a tenth of it: the step
    really ran in fp16. The loss, well conditioned, agrees within ten fp16 roundoffs."""
    exact, rounded = o0_runs
    o2 = fp16_run("O2")
    assert abs(o2.losses[0] - exact.losses[0]) < 10 * FP16_EPS * exact.losses[0]
    names = list(exact.update)
    noise = distance(rounded.update, exact.update, names)
    assert 0.1 * noise < distance(o2.update, exact.update, names) < 2 * noise


@dataclass
class DynamicRun:
    """Steps with a dynamic loss scale up to the first one applied: per step the loss, the
    scale after it and whether it left what an applied step changes (weights, momentum,
    the optimiser's step) as it was; then the update, and the train step itself. BatchNorm's
    moving statistics are not compared: the forward pass updates them even in a skipped step,
    as in MindSpore's own loss-scaled step."""

    losses: list[float]
    scales: list[float]
    skipped: list[bool]
    update: Weights
    step: nn.Cell


@pytest.fixture(scope="module")
def dynamic_o2(batch, start) -> DynamicRun:
    step = train_step("O2", start, loss_scale=FIRST_SCALE, loss_scale_type="dynamic")
    optimised = [p.name for p in step.optimizer.get_parameters()]

    def snapshot() -> Weights:
        params = step.parameters_dict()
        return {name: params[name].asnumpy().copy() for name in optimised}

    result, before = DynamicRun([], [], [], {}, step), snapshot()
    while not result.skipped or result.skipped[-1]:
        assert len(result.losses) < 10, result.scales  # the 10th ran at SEED_SCALE, which fits
        result.losses.append(take_step(step, batch))
        result.scales.append(float(step.scale_sense.asnumpy()))
        after = snapshot()
        result.skipped.append(all(np.array_equal(after[n], before[n]) for n in optimised))
        before = after
    result.update = update(step, start)
    return result


def test_an_overflowing_step_is_skipped_and_the_dynamic_scale_halved(dynamic_o2, fp16_run):
    """The gradient of the mean cross-entropy at the true class's logit is (p - 1) / BATCH, and
    some image has p <= exp(-loss): times the first scale, more than fp16 holds where the fp32
    loss hands it to the fp16 network. Each such step is skipped and halves the scale, until
    one fits; that one keeps it (2000 steps to double) and is the very update of the fixed
    scale's first step (powers of two scale exactly): the skipped steps left no momentum and
    did not move the learning-rate schedule on (the next rate is 2x, 3x ... the first)."""
    r = dynamic_o2
    assert FIRST_SCALE * (1 - math.exp(-r.losses[0])) / BATCH > FP16_MAX
    skips = len(r.skipped) - 1
    assert skips >= 1 and r.skipped == [True] * skips + [False]
    assert r.scales == [FIRST_SCALE / 2**n for n in range(1, skips + 1)] + [r.scales[-2]]
    assert all(math.isfinite(loss) for loss in r.losses)  # training goes on
    fixed = fp16_run("O2").update
    assert distance(r.update, fixed, list(fixed)) < 1e-5


def test_the_dynamic_scale_is_resumed_and_left_out_of_the_weights(dynamic_o2, start, tmp_path):
    """A resumed run starts from the scale it had reached, not the recipe's; `select`,
    `evaluate` and fine-tuning load the weights without it, and `select` publishes the best
    checkpoint without it."""
    path, best = tmp_path / "dynamic.ckpt", tmp_path / "best.ckpt"
    checkpoint.save(dynamic_o2.step, path, {})
    params, _ = checkpoint.read(path)
    resumed = train_step("O2", start, loss_scale=FIRST_SCALE, loss_scale_type="dynamic")
    not_loaded, unused = ms.load_param_into_net(resumed, params, strict_load=True)
    assert not not_loaded and not unused
    assert float(resumed.scale_sense.asnumpy()) == dynamic_o2.scales[-1] < FIRST_SCALE

    net = build_net(recipe())
    assert checkpoint.load_weights(net, params, source=path) == []
    trained = dynamic_o2.step.parameters_dict()
    assert all(np.array_equal(p.asnumpy(), trained[p.name].asnumpy()) for p in net.get_parameters())
    checkpoint.publish(path, best)
    assert set(checkpoint.read(best)[0]) == {p.name for p in net.get_parameters()}


def test_the_seeds_fixed_scale_applies_an_overflowing_step(batch, start):
    """What `loss_scale_type: dynamic` is for: with the seed's fixed scale (its
    `drop_overflow_update=False`) the same overflow is applied: every weight tensor takes Inf
    or NaN values and the next loss is NaN, which stops training."""
    step = train_step("O2", start, loss_scale=FIRST_SCALE)
    assert math.isfinite(take_step(step, batch))
    assert not [p.name for p in step.network.trainable_params() if np.isfinite(p.asnumpy()).all()]
    assert math.isnan(take_step(step, batch))
