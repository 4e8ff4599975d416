"""The training loop's reads from the device (`vgg16.train.train_one_epoch`), without a
network: a train step that returns the losses given, and batches that are placeholders.

On an accelerator every read of a result back to the host waits for the queue of work in
front of it, so the loop reads the losses only where it shows or saves them."""

from __future__ import annotations

from pathlib import Path

import mindspore as ms
import numpy as np
import pytest

from vgg16.checkpoint import CheckpointKeeper
from vgg16.config import load_recipe
from vgg16.group import ProcessGroup
from vgg16.layout import TrainFolder
from vgg16.preemption import StopFlag
from vgg16.train import Loop, Position, Report, train_one_epoch

STEPS = 10


class Batches:
    """Stands in for the epoch's dataset: `STEPS` placeholder batches."""

    def create_tuple_iterator(self, num_epochs: int):
        assert num_epochs == 1
        return iter([(None, None)] * STEPS)


class Step:
    """Stands in for the compiled train step: the next loss, as a device tensor."""

    def __init__(self, losses: list[float]) -> None:
        self.losses = iter(losses)

    def __call__(self, images, labels) -> ms.Tensor:
        return ms.Tensor(np.float32(next(self.losses)))


@pytest.fixture
def reads(monkeypatch) -> list[int]:
    """Every read of a tensor's value back to the host (`asnumpy`, `item`, `float()`)."""
    calls: list[int] = []
    for name in ("asnumpy", "item", "__float__"):
        real = getattr(ms.Tensor, name)

        def counted(self, *args, _real=real, **kwargs):
            calls.append(1)
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(ms.Tensor, name, counted)
    return calls


def run_epoch(tmp_path: Path, losses: list[float], log_interval: int, recovery: int = 0):
    recipe = load_recipe(dataset="digits", overrides={"log_interval": log_interval})
    folder = TrainFolder(tmp_path)
    keeper = CheckpointKeeper(tmp_path, "hash", last_epoch=2, keep=1, interval=5,
                              recovery_steps=recovery, describe={}, writes=False)  # fmt: skip
    report = Report(folder, 2 * STEPS, recipe.batch_size, log_interval, writes=False)
    stop = StopFlag(ProcessGroup())
    loop = Loop(Step(losses), recipe, np.full(2 * STEPS, 0.1), STEPS, keeper, report, stop)
    at = Position()
    train_one_epoch(loop, Batches(), at, epoch=1)
    return at


@pytest.mark.parametrize(("log_interval", "recovery", "expected"),
                         [(5, 0, 2), (4, 0, 3), (20, 0, 1), (1, 0, 10), (5, 3, 5)])  # fmt: skip
def test_losses_are_read_back_only_at_progress_lines_checkpoints_and_the_epoch_end(
    tmp_path, reads, log_interval, recovery, expected
):
    """Progress every `log_interval` steps and at the epoch's end; a recovery checkpoint
    every `recovery` steps (at 3, 6 and 9 here, besides progress at 5 and 10)."""
    losses = list(np.linspace(2.0, 1.0, STEPS, dtype=np.float32))
    at = run_epoch(tmp_path, losses, log_interval, recovery)
    assert len(reads) == expected
    assert at.history[0]["loss"] == round(float(np.mean(np.array(losses, np.float64))), 6)
    assert at.pending == [] and at.step == STEPS


def test_a_loss_that_is_not_finite_is_caught_at_the_next_read_naming_its_step(tmp_path, reads):
    losses = [1.0] * STEPS
    losses[6] = float("nan")
    with pytest.raises(FloatingPointError, match=r"loss is nan at epoch 1 step 7 \(global"):
        run_epoch(tmp_path, losses, log_interval=5)
    assert len(reads) == 2  # found at the read after step 10, not at step 7
