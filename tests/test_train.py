"""Training through the CLI: which checkpoints are kept, and that every resume is exact.

The recipe keeps every source of randomness on (BatchNorm, dropout, shuffling, crops and
flips): each draw is a function of the seed and the image's position (`vgg16.randomness`),
so a run stopped anywhere (epoch checkpoint, SIGTERM mid-epoch, SIGKILL after a recovery
checkpoint) and resumed ends with the uninterrupted run's weights and optimiser state, and a
second run with the same seed is identical to the bit.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import mindspore as ms
import numpy as np
import pytest
from conftest import sets

from vgg16 import checkpoint
from vgg16.preemption import EXIT_CODE

#: Starts `vgg16 train` (left out of `make check`).
pytestmark = pytest.mark.training

#: 64 images, batch 8: 8 steps per epoch.
RUN = ["batch_size=8", "max_epoch=3", "random_flip=true", "warmup_epochs=1", "log_interval=1",
       "ckpt_interval=2"]  # fmt: skip
STEPS = 8


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
    """history.csv without its timing columns (img/s, seconds), which no rerun repeats."""
    with (run / "history.csv").open() as f:
        return [{k: r[k] for k in ("epoch", "step", "loss", "lr")} for r in csv.DictReader(f)]


def train_args(data: Path, run: Path, *settings: str) -> list[str]:
    return ["train", "--data_path", str(data), "--output", str(run), *sets(*RUN, *settings)]


def interrupted(data: Path, run: Path, sig: signal.Signals, after: str, *settings: str,
                meanwhile: Callable[[int], None] | None = None) -> str:  # fmt: skip
    """Start `train`, send `sig` once a progress line starts with `after`; return the output.
    With `meanwhile`, the process is paused (SIGSTOP) and `meanwhile(pid)` runs before `sig`."""
    cmd = [sys.executable, "-m", "vgg16", *train_args(data, run, *settings)]
    env = {**os.environ, "GLOG_v": "3"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)  # fmt: skip
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if line.startswith(after):
            if meanwhile is not None:
                proc.send_signal(signal.SIGSTOP)
                meanwhile(proc.pid)
            proc.send_signal(sig)
            break
    lines += proc.stdout.readlines()
    proc.wait()
    output = "".join(lines)
    expected = EXIT_CODE if sig != signal.SIGKILL else -signal.SIGKILL
    assert proc.returncode == expected, output
    return output


def assert_same_run(run: Path, reference: Path) -> None:
    got, want = tensors(at_epoch(run / "ckpt", 3)), tensors(at_epoch(reference / "ckpt", 3))
    assert set(got) == set(want)  # weights and optimiser state (moments, global step)
    worst = max(float(np.abs(got[k] - want[k]).max()) for k in want)
    assert worst <= 1e-6, worst
    assert history(run) == history(reference)


@pytest.fixture(scope="module")
def uninterrupted(vgg16, tiny_data, tmp_path_factory) -> Path:
    """Three epochs with a checkpoint every second epoch (and at the end)."""
    run = tmp_path_factory.mktemp("full")
    vgg16(*train_args(tiny_data, run, "keep_checkpoint_max=10"))
    return run


def test_checkpoints_every_ckpt_interval_epochs_and_at_the_end(uninterrupted):
    assert saved_epochs(uninterrupted / "ckpt") == [2, 3]
    assert [int(row["epoch"]) for row in history(uninterrupted)] == [1, 2, 3]
    assert not (uninterrupted / "ckpt" / "recovery").exists() or not list(
        (uninterrupted / "ckpt" / "recovery").glob("*.ckpt")
    )


def test_the_same_seed_gives_the_same_run_to_the_bit(vgg16, tiny_data, uninterrupted, tmp_path):
    vgg16(*train_args(tiny_data, tmp_path, "keep_checkpoint_max=10"))
    for epoch in (2, 3):
        a, b = (
            tensors(at_epoch(tmp_path / "ckpt", epoch)),
            tensors(at_epoch(uninterrupted / "ckpt", epoch)),
        )
        assert all(np.array_equal(a[k], b[k]) for k in b), epoch
    assert history(tmp_path) == history(uninterrupted)


def test_another_seed_gives_another_run(vgg16, tiny_data, uninterrupted, tmp_path):
    """So that the equalities here say something: the randomness is really there."""
    vgg16(*train_args(tiny_data, tmp_path, "seed=2", "max_epoch=2"))
    other, same_seed = (
        tensors(at_epoch(tmp_path / "ckpt", 2)),
        tensors(at_epoch(uninterrupted / "ckpt", 2)),
    )
    weights = [k for k in other if not checkpoint.is_optimizer_state(k)]
    assert max(float(np.abs(other[k] - same_seed[k]).max()) for k in weights) > 1e-3


def test_resume_from_an_epoch_checkpoint_is_exact_and_a_damaged_newer_one_is_set_aside(
    vgg16, tiny_data, uninterrupted, tmp_path
):
    """Epoch 2's checkpoint, and epoch 3's cut short (what a crash right after an unsynced
    save can leave): the rerun moves epoch 3's to ckpt/damaged/ in one line, resumes from
    epoch 2 and ends exactly as the uninterrupted run."""
    (tmp_path / "ckpt").mkdir()
    for epoch in (2, 3):
        path = at_epoch(uninterrupted / "ckpt", epoch)
        shutil.copy(path, tmp_path / "ckpt" / path.name)
    newest, whole = at_epoch(tmp_path / "ckpt", 3), at_epoch(tmp_path / "ckpt", 2)
    cut = truncate(newest)

    log = vgg16(*train_args(tiny_data, tmp_path, "keep_checkpoint_max=1")).stdout

    damaged = tmp_path / "ckpt" / checkpoint.DAMAGED_DIR / newest.name
    moved = f"moved {newest.name} (damaged: it ends without a CRC32 (cut short?)) to {damaged}"
    assert [line for line in log.splitlines() if line.startswith("moved")] == [moved]
    assert f"resuming from {whole} (the end of epoch 2)" in log
    assert damaged.read_bytes() == cut  # kept as it was found
    assert "epoch 1 step" not in log and "epoch 2 step" not in log  # only epoch 3 trained
    assert saved_epochs(tmp_path / "ckpt") == [3]  # keep_checkpoint_max=1
    moved_from = tensors(at_epoch(uninterrupted / "ckpt", 2))
    final = tensors(at_epoch(uninterrupted / "ckpt", 3))
    assert max(float(np.abs(final[k] - moved_from[k]).max()) for k in final) > 1e-3
    assert_same_run(tmp_path, uninterrupted)


def test_sigterm_mid_epoch_stops_saves_and_resumes_exactly(vgg16, tiny_data, uninterrupted,
                                                            tmp_path):  # fmt: skip
    out = interrupted(tiny_data, tmp_path, signal.SIGTERM, "epoch 2 step 3/")
    stopped = re.search(r"training stopped by SIGTERM at epoch 2 step (\d)/8", out)
    assert stopped and 3 <= int(stopped[1]) < STEPS, out
    recovery = checkpoint.recovery_path(tmp_path / "ckpt")
    assert checkpoint.read(recovery, meta_only=True)[1]["step"] == STEPS + int(stopped[1])
    assert saved_epochs(tmp_path / "ckpt") == []  # select never sees the recovery checkpoint

    log = vgg16(*train_args(tiny_data, tmp_path, "keep_checkpoint_max=10")).stdout
    assert f"step {stopped[1]} of epoch 2" in log
    assert_same_run(tmp_path, uninterrupted)
    assert not recovery.exists()  # the epoch checkpoints are further on


def test_sigkill_loses_at_most_the_recovery_interval(vgg16, tiny_data, uninterrupted, tmp_path):
    """Also: one train per run folder. A second one on the folder stops at once, naming it and
    the first one's pid, and the SIGKILLed first one's lock never blocks the rerun."""
    busy = {}

    def second_train(pid: int) -> None:
        busy[pid] = vgg16(*train_args(tiny_data, tmp_path, "recovery_steps=3"), check=False)

    out = interrupted(tiny_data, tmp_path, signal.SIGKILL, "epoch 2 step 5/", "recovery_steps=3",
                      meanwhile=second_train)  # fmt: skip
    done = max(int(s) for s in re.findall(r"epoch 2 step (\d)/8", out))
    ((pid, second),) = busy.items()
    assert second.returncode == 1
    assert f"run folder {tmp_path} is in use by another vgg16 train (pid {pid})" in second.stderr
    assert "training" not in second.stdout

    log = vgg16(*train_args(tiny_data, tmp_path, "recovery_steps=3")).stdout
    resumed = re.search(r"step (\d) of epoch 2", log)
    assert resumed, log
    assert 0 <= done - int(resumed[1]) <= 3  # steps of epoch 2 trained twice
    assert_same_run(tmp_path, uninterrupted)


@pytest.fixture(scope="module")
def seven_classes(tmp_path_factory) -> Path:
    """A checkpoint of another num_classes (7, the data has 10), saved as the zoo saves one:
    weights only, no metadata; BatchNorm's statistics set apart from its initial ones, so
    that keeping them means keeping the checkpoint's."""
    from vgg16.config import load_recipe
    from vgg16.model import build_net

    ms.set_seed(5)
    net = build_net(load_recipe(dataset="digits", overrides={"num_classes": 7}))
    for param in net.get_parameters():
        if "moving_" in param.name:
            param.set_data(ms.Tensor(np.full(param.shape, 0.5, np.float32)))
    path = tmp_path_factory.mktemp("pretrained") / "seven.ckpt"
    ms.save_checkpoint(net, str(path))
    return path


def _fine_tune(vgg16, data: Path, run: Path, start: Path, *settings: str) -> str:
    settings = sets("max_epoch=1", "warmup_epochs=0", "batch_size=16", *settings)
    return vgg16(
        "train", "--data_path", data, "--output", run, "--pre_trained", start, *settings
    ).stdout


def test_fine_tuning_with_frozen_features_keeps_them_to_the_bit(
    vgg16, tiny_data, seven_classes, tmp_path
):
    """Every features parameter and BatchNorm statistic stays the checkpoint's, the last layer
    has the data's 10 classes; without freezing, the features move."""
    log = _fine_tune(vgg16, tiny_data, tmp_path / "frozen", seven_classes, "freeze=features")
    assert "its last layer is for 7 classes, the recipe's for 10, so that layer starts" in log
    start = {k: v.asnumpy() for k, v in ms.load_checkpoint(str(seven_classes)).items()}
    frozen = tensors(at_epoch(tmp_path / "frozen" / "ckpt", 1))
    features = [k for k in start if k.startswith("layers.")]
    assert len(features) == 13 * 5  # conv weight, BatchNorm gamma, beta and both statistics
    assert all(np.array_equal(frozen[k], start[k]) for k in features)
    assert frozen["classifier.6.weight"].shape == (10, 4096)
    assert not np.array_equal(frozen["classifier.0.weight"], start["classifier.0.weight"])
    assert not [k for k in frozen if k.startswith("moments.layers.")]  # nothing to optimise

    _fine_tune(vgg16, tiny_data, tmp_path / "free", seven_classes)
    free = tensors(at_epoch(tmp_path / "free" / "ckpt", 1))
    moved = [k for k in features if not np.array_equal(free[k], start[k])]
    assert "layers.0.weight" in moved and "layers.1.moving_mean" in moved


def test_freezing_without_a_checkpoint_to_keep_is_refused(vgg16, tiny_data, tmp_path):
    result = vgg16(*train_args(tiny_data, tmp_path, "freeze=features"), check=False)
    assert result.returncode == 1
    assert "recipe key 'freeze'='features' keeps the features of a pre-trained checkpoint" in (
        result.stderr
    )
    assert not (tmp_path / "ckpt").exists()


def truncate(path: Path) -> bytes:
    """Cut a file to half its size (what a crash right after an unsynced save can leave)."""
    data = path.read_bytes()[: path.stat().st_size // 2]
    path.chmod(0o644)  # MindSpore leaves checkpoints read-only
    path.write_bytes(data)
    return data


def test_a_damaged_mindrecord_shard_stops_training_before_its_first_step(vgg16, tiny_data,
                                                                          tmp_path):  # fmt: skip
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    shard = data / "train.mindrecord"
    with shard.open("r+b") as f:  # 4 KB overwritten mid-file, the size kept
        f.seek(shard.stat().st_size // 2)
        f.write(b"\xa5" * 4096)
    result = vgg16(*train_args(data, tmp_path / "run"), check=False)
    assert result.returncode == 1
    assert f"MindRecord file {shard} of split 'train' is damaged" in result.stderr
    assert "step" not in result.stdout
    assert not (tmp_path / "run" / "ckpt").exists()


@pytest.fixture
def small_disk(tmp_path):
    """A 400 MB tmpfs: room for one checkpoint of the tiny run (269 MB), not two."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400m", "tmpfs", str(disk)],
                           capture_output=True, text=True)  # fmt: skip
    if mount.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mount.stderr.strip()}")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


def test_a_full_disk_stops_training_with_the_reason_and_keeps_the_earlier_checkpoint(
    vgg16, tiny_data, uninterrupted, small_disk
):
    run = small_disk / "run"
    result = vgg16(*train_args(tiny_data, run, "ckpt_interval=1", "keep_checkpoint_max=10"),
                   check=False)  # fmt: skip
    assert result.returncode == 1
    assert "No space left on device" in result.stderr.splitlines()[-1]
    assert saved_epochs(run / "ckpt") == [1]
    assert not list((run / "ckpt").rglob("*.tmp")) and not (run / "ckpt" / ".tmp").exists()

    subprocess.run(["mount", "-o", "remount,size=1200m", str(small_disk)], check=True)
    log = vgg16(*train_args(tiny_data, run, "ckpt_interval=1", "keep_checkpoint_max=10")).stdout
    assert f"resuming from {at_epoch(run / 'ckpt', 1)} (the end of epoch 1)" in log
    assert_same_run(run, uninterrupted)
