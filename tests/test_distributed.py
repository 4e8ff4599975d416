"""Data parallelism with msrun on CPU: equivalence, exact distributed evaluation, failures.

Each msrun start costs 10-25 s here, so the module shares one tiny dataset: 64 training and
40 test images of scikit-learn's digits.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import mindspore as ms
import numpy as np
import psutil
import pytest

from vgg16.config import load_recipe
from vgg16.launch import SCRIPT
from vgg16.mindrecord import prepare
from vgg16.model import build_net
from vgg16.readers import find_cifar_files, read_cifar_batches, write_cifar_batch, write_digits

# No BatchNorm (its statistics are per worker) and no dropout (its masks are random), no
# augmentation and no shuffling: then 2 workers x batch 8 see exactly what 1 worker x 16 sees.
EXACT = ["batch_norm=false", "has_dropout=false", "augment=false", "shuffle=false",
         "max_epoch=1", "warmup_epochs=0", "lr_max=0.05", "eval_batch_size=16"]  # fmt: skip


def sets(*pairs: str) -> list[str]:
    return [x for pair in pairs for x in ("--set", pair)]


def vgg16(*args, check=True) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "vgg16", *map(str, args)]
    result = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "GLOG_v": "3"})
    if check and result.returncode:
        raise AssertionError(f"{cmd} failed:\n{result.stdout[-5000:]}\n{result.stderr[-5000:]}")
    return result


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dist")
    images, labels = read_cifar_batches(find_cifar_files(write_digits(root / "digits"))["train"])
    src = root / "src"
    src.mkdir()
    write_cifar_batch(src / "data_batch_1.bin", images[:64], labels[:64])
    write_cifar_batch(src / "test_batch.bin", images[64:104], labels[64:104])
    prepare("digits", src, root / "mindrecord", val_fraction=0.0)
    return root / "mindrecord"


@pytest.fixture(scope="module")
def init_ckpt(data) -> Path:
    ms.set_seed(0)
    net = build_net(load_recipe(dataset="digits", overrides=EXACT))
    path = data.parent / "init.ckpt"
    ms.save_checkpoint(net, str(path))
    return path


def final_weights(ckpt_dir: Path) -> dict[str, np.ndarray]:
    (path,) = ckpt_dir.glob("*.ckpt")
    return {
        k: v.asnumpy()
        for k, v in ms.load_checkpoint(str(path)).items()
        if k.startswith(("layers.", "classifier."))
    }


@pytest.fixture(scope="module")
def trained(data, init_ckpt) -> dict[str, Path]:
    runs = {}
    for name, workers, batch in (("one", 1, 16), ("two", 2, 8)):
        ckpt = data.parent / name / "ckpt"
        vgg16("train", "--workers", workers, "--data_path", data, "--ckpt_path", ckpt,
              "--pre_trained", init_ckpt, *sets(*EXACT, f"batch_size={batch}"))  # fmt: skip
        runs[name] = ckpt
    return runs


def test_two_workers_equal_one_worker_with_twice_the_batch(trained, init_ckpt):
    one, two = final_weights(trained["one"]), final_weights(trained["two"])
    init = {k: v.asnumpy() for k, v in ms.load_checkpoint(str(init_ckpt)).items()}
    moved = max(float(np.abs(one[k] - init[k]).max()) for k in one)
    assert moved > 1e-4  # training did change the weights
    worst = max(float(np.abs(one[k] - two[k]).max()) for k in one)
    print(f"max |w(1 worker) - w(2 workers)| = {worst:.3g}, largest update {moved:.3g}")
    assert worst < 1e-5


def test_only_rank_zero_writes(trained):
    run = trained["two"].parent
    assert len(list(trained["two"].glob("*.ckpt"))) == 1
    assert (run / "history.csv").read_text().count("\n") == 2  # header + 1 epoch
    logs = sorted(p.name for p in (run / "msrun").glob("worker_*.log"))
    assert logs == ["worker_0.log", "worker_1.log"]


def test_distributed_evaluation_counts_exactly_what_one_process_counts(trained, data):
    best = next(trained["one"].glob("*.ckpt"))
    out = {}
    for workers in (1, 2):
        out[workers] = data.parent / f"eval{workers}"
        vgg16("eval", "--workers", workers, "--data_path", data, "--pre_trained", best,
              "--output", out[workers], *sets(*EXACT))  # fmt: skip
    one = (out[1] / "confusion.csv").read_text()
    assert (out[2] / "confusion.csv").read_text() == one
    assert sum(int(v) for row in one.splitlines()[1:] for v in row.split(",")[1:]) == 40


def _worker(launcher: subprocess.Popen, rank: str) -> psutil.Process | None:
    """The msrun worker process of `rank` (not its data-loading children or log tailers)."""
    for child in psutil.Process(launcher.pid).children(recursive=True):
        try:
            cmdline, env = " ".join(child.cmdline()), child.environ()
            parent = " ".join(child.parent().cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        is_worker = str(SCRIPT) in cmdline and "msrun" in parent and "msrun" not in cmdline
        if is_worker and env.get("MS_ROLE") == "MS_WORKER" and env.get("RANK_ID") == rank:
            return child
    return None


def test_killed_worker_fails_the_job_promptly_with_its_error(data, tmp_path):
    cmd = [sys.executable, "-m", "vgg16", "train", "--workers", "2", "--data_path", str(data),
           "--ckpt_path", str(tmp_path / "ckpt"),
           *sets(*EXACT, "max_epoch=50", "batch_size=8")]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "GLOG_v": "3"})  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "history.csv").is_file() and time.monotonic() < deadline:
            time.sleep(1)  # an epoch done: both workers are training
        victim = _worker(proc, "1")
        assert victim is not None, "worker 1 never started training"
        victim.kill()
        killed = time.monotonic()
        _, stderr = proc.communicate(timeout=60)
        took = time.monotonic() - killed
    finally:
        for child in psutil.Process(os.getpid()).children(recursive=True):
            child.kill()
    assert proc.returncode == 1
    assert "a worker failed" in stderr and "Error code: -9" in stderr, stderr[-3000:]
    assert took < 20, f"took {took:.0f} s to fail"
