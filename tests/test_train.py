"""Training through the CLI: which checkpoints are kept, and that resuming is exact.

With the EXACT settings (no BatchNorm, dropout, augmentation or shuffling) training is a pure
function of the recipe and the data, so a run resumed from its epoch-2 checkpoint must end
with the uninterrupted run's weights and optimiser state, not merely "resume".
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import EXACT, sets

from vgg16 import checkpoint

RUN = [*EXACT, "batch_size=16", "max_epoch=3"]


def epoch_of(path: Path) -> int:
    """A checkpoint's epoch, read from its own metadata, not its name."""
    return checkpoint.read(path, meta_only=True)[1]["epoch"]


def saved_epochs(ckpt_dir: Path) -> list[int]:
    return sorted(epoch_of(p) for p in ckpt_dir.glob("*.ckpt"))


def at_epoch(ckpt_dir: Path, epoch: int) -> Path:
    (path,) = [p for p in ckpt_dir.glob("*.ckpt") if epoch_of(p) == epoch]
    return path


def tensors(path: Path) -> dict[str, np.ndarray]:
    return {k: v.asnumpy() for k, v in checkpoint.read(path)[0].items()}


def history(run: Path) -> list[dict[str, str]]:
    with (run / "history.csv").open() as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def uninterrupted(vgg16, tiny_data, tmp_path_factory) -> Path:
    """Three epochs with a checkpoint every second epoch (and at the end)."""
    run = tmp_path_factory.mktemp("full")
    vgg16("train", "--data_path", tiny_data, "--output", run,
          *sets(*RUN, "ckpt_interval=2", "keep_checkpoint_max=10"))  # fmt: skip
    return run


@pytest.fixture(scope="module")
def resumed(vgg16, tiny_data, uninterrupted, tmp_path_factory) -> tuple[Path, str]:
    """The same run, killed after its epoch-2 checkpoint and started again, keeping one."""
    run = tmp_path_factory.mktemp("resumed")
    (run / "ckpt").mkdir()
    epoch2 = at_epoch(uninterrupted / "ckpt", 2)
    shutil.copy(epoch2, run / "ckpt" / epoch2.name)
    log = vgg16("train", "--data_path", tiny_data, "--output", run,
                *sets(*RUN, "ckpt_interval=2", "keep_checkpoint_max=1")).stdout  # fmt: skip
    return run, log


def test_checkpoints_every_ckpt_interval_epochs_and_at_the_end(uninterrupted):
    assert saved_epochs(uninterrupted / "ckpt") == [2, 3]
    assert [int(row["epoch"]) for row in history(uninterrupted)] == [1, 2, 3]


def test_only_the_newest_keep_checkpoint_max_are_kept(resumed):
    run, _ = resumed
    assert saved_epochs(run / "ckpt") == [3]


def test_resume_continues_the_run_exactly(uninterrupted, resumed):
    run, log = resumed
    assert "epoch 1 step" not in log and "epoch 2 step" not in log  # only epoch 3 trained
    (final,) = (run / "ckpt").glob("*.ckpt")
    got, want = tensors(final), tensors(at_epoch(uninterrupted / "ckpt", 3))
    before = tensors(at_epoch(uninterrupted / "ckpt", 2))
    assert set(got) == set(want)  # weights and optimiser state (moments, global step)
    worst = max(float(np.abs(got[k] - want[k]).max()) for k in want)
    moved = max(float(np.abs(want[k] - before[k]).max()) for k in want if k.endswith("weight"))
    print(f"max |resumed - uninterrupted| = {worst:.3g}; largest change in epoch 3 {moved:.3g}")
    assert moved > 1e-3  # epoch 3 did change the weights
    assert worst <= 1e-6
    columns = ("epoch", "step", "loss", "lr")
    rows = [{k: r[k] for k in columns} for r in history(run)]
    assert rows == [{k: r[k] for k in columns} for r in history(uninterrupted)]
