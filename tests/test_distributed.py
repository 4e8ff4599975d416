"""Data parallelism with msrun on CPU: equivalence, exact distributed evaluation, failures.

Each msrun start costs 10-25 s here, so the module shares one tiny dataset: 64 training and
40 test images of scikit-learn's digits.
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import mindspore as ms
import numpy as np
import psutil
import pytest
from conftest import sets

from vgg16 import checkpoint
from vgg16.config import load_recipe, parse_overrides
from vgg16.launch import SCRIPT, end_tree
from vgg16.model import build_net
from vgg16.preemption import EXIT_CODE

#: Runs commands under msrun (left out of `make check`).
pytestmark = pytest.mark.training

#: 2 workers x batch 8 then see exactly what 1 worker x 16 sees: the same images, crops,
#: flips and dropout masks (`vgg16.randomness` draws them per image position), in the same
#: order. Only BatchNorm, whose batch statistics are per worker, is left out.
ONE_EPOCH = ["batch_norm=false", "random_flip=true", "warmup_epochs=0", "lr_max=0.05",
             "eval_batch_size=16", "max_epoch=1"]  # fmt: skip

#: Every process that imports site (msrun, its scheduler, the workers) records each file it
#: moves into place (`os.replace` raises the audit event "os.rename") with its rank.
AUDIT_SITECUSTOMIZE = """
import os, sys

def _record(event, args):
    if event == "os.rename":
        log = os.path.join(os.environ["VGG16_TEST_AUDIT"], f"{os.getpid()}.tsv")
        with open(log, "a") as f:
            f.write(f"{os.environ.get('RANK_ID', '-')}\\t{os.fsdecode(args[1])}\\n")

sys.addaudithook(_record)
"""


@pytest.fixture(scope="module")
def data(tiny_data) -> Path:
    return tiny_data


@pytest.fixture(scope="module")
def init_ckpt(tmp_path_factory) -> Path:
    ms.set_seed(0)
    net = build_net(load_recipe(dataset="digits", overrides=parse_overrides(ONE_EPOCH)))
    path = tmp_path_factory.mktemp("init") / "init.ckpt"
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
def trained(vgg16, data, init_ckpt, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("trained")
    audit = root / "audit"
    audit.mkdir()
    (audit / "sitecustomize.py").write_text(AUDIT_SITECUSTOMIZE)
    path = os.pathsep.join(filter(None, [str(audit), os.environ.get("PYTHONPATH")]))
    env = {"PYTHONPATH": path, "VGG16_TEST_AUDIT": str(audit)}
    runs = {}
    for name, workers, batch in (("one", 1, 16), ("two", 2, 8)):
        vgg16("train", "--workers", workers, "--data_path", data, "--output", root / name,
              "--pre_trained", init_ckpt, *sets(*ONE_EPOCH, f"batch_size={batch}"),
              env=env if workers == 2 else None)  # fmt: skip
        runs[name] = root / name / "ckpt"
    runs["audit"] = audit
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
    """Whose process moved each checkpoint and history file into place (not their names)."""
    run = trained["two"].parent
    moves = [line.split("\t") for log in trained["audit"].glob("*.tsv")
             for line in log.read_text().splitlines()]  # fmt: skip
    outputs = [(rank, path) for rank, path in moves if path.startswith(str(run))]
    ckpts = [rank for rank, path in outputs if path.endswith(".ckpt")]
    histories = [rank for rank, path in outputs if path.endswith("history.csv")]
    assert ckpts and histories, moves  # the audit saw the writes
    assert set(ckpts) == {"0"} and set(histories) == {"0"}, outputs
    assert len(list(trained["two"].glob("*.ckpt"))) == 1
    logs = sorted(p.name for p in (run / "msrun").glob("worker_*.log"))
    assert logs == ["worker_0.log", "worker_1.log"]


def test_distributed_evaluation_equals_one_process(vgg16, trained, data, tmp_path):
    best = next(trained["one"].glob("*.ckpt"))
    out = {}
    for workers in (1, 2):
        out[workers] = tmp_path / f"eval{workers}"
        vgg16("evaluate", "--workers", workers, "--data_path", data, "--pre_trained", best,
              "--output", out[workers], *sets(*ONE_EPOCH))  # fmt: skip
    one, two = (json.loads((out[w] / "metrics.json").read_text()) for w in (1, 2))
    assert two["num_images"] == one["num_images"] == 40
    for key in ("top1", "top5", "loss"):
        assert two[key] == pytest.approx(one[key], rel=1e-6), key
    assert two["per_class_accuracy"] == pytest.approx(one["per_class_accuracy"])
    assert 0 < one["top1"] < one["top5"] < 1  # a checkpoint that tells the metrics apart
    assert (out[2] / "confusion.csv").read_text() == (out[1] / "confusion.csv").read_text()
    # The most confident mistakes, gathered from both workers' shards (every other image).
    mistakes = {w: list(csv.DictReader((out[w] / "mistakes.csv").read_text().splitlines()))
                for w in (1, 2)}  # fmt: skip
    assert len(mistakes[1]) == min(32, round(40 * (1 - one["top1"])))
    assert {int(row["index"]) % 2 for row in mistakes[1]} == {0, 1}  # from both shards
    columns = ("index", "true", "predicted")
    assert [[row[c] for c in columns] for row in mistakes[2]] == [
        [row[c] for c in columns] for row in mistakes[1]
    ]
    for key in ("probability", "true_probability"):
        got = [float(row[key]) for row in mistakes[2]]
        assert got == pytest.approx([float(row[key]) for row in mistakes[1]], abs=1e-6), key
    with np.load(out[1] / "mistakes.npz") as a, np.load(out[2] / "mistakes.npz") as b:
        np.testing.assert_array_equal(a["images"], b["images"])
        assert a["index"].tolist() == b["index"].tolist()


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


def test_killed_worker_fails_the_job_with_its_error(data, tmp_path):
    cmd = [sys.executable, "-m", "vgg16", "train", "--workers", "2", "--data_path", str(data),
           "--output", str(tmp_path),
           *sets(*ONE_EPOCH, "max_epoch=50", "batch_size=8")]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "GLOG_v": "3"})  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "history.csv").is_file() and time.monotonic() < deadline:
            time.sleep(1)  # an epoch done: both workers are training
        victim = _worker(proc, "1")
        assert victim is not None, "worker 1 never started training"
        victim.kill()
        # msrun alone would wait out its scheduler's time-out; bench/distributed.py times it.
        _, stderr = proc.communicate(timeout=180)
    finally:
        end_tree(proc)  # only what this test started: other tests' runs go on
    assert proc.returncode == 1
    assert "a worker failed" in stderr and "Error code: -9" in stderr, stderr[-3000:]


def test_sigterm_stops_every_worker_after_the_same_step_and_resumes(vgg16, data, init_ckpt,
                                                                     tmp_path):  # fmt: skip
    """SIGTERM to the launcher reaches both workers; rank 0 saves the position once both
    have stopped, and the resumed run ends with the weights of one worker with the global
    batch (16 steps of 2 x 2 images)."""
    settings = sets(*ONE_EPOCH, "batch_size=2", "log_interval=1")
    reference = tmp_path / "one"
    vgg16("train", "--data_path", data, "--output", reference, "--pre_trained", init_ckpt,
          *sets(*ONE_EPOCH, "batch_size=4"))  # fmt: skip
    run = tmp_path / "two"
    cmd = [sys.executable, "-m", "vgg16", "train", "--workers", "2", "--data_path", str(data),
           "--output", str(run), "--pre_trained", str(init_ckpt), *settings]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "GLOG_v": "3"})  # fmt: skip
    try:
        log, deadline = run / "msrun" / "worker_0.log", time.monotonic() + 180
        while time.monotonic() < deadline and not (
            log.is_file() and "epoch 1 step 3/16" in log.read_text(errors="replace")
        ):
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=180)
    finally:
        end_tree(proc)  # only what this test started: other tests' runs go on
    assert proc.returncode == EXIT_CODE, output[-3000:]
    workers = [(run / "msrun" / f"worker_{r}.log").read_text() for r in (0, 1)]
    stops = [re.search(r"training stopped by .* at epoch 1 step (\d+)/16", w) for w in workers]
    assert all(stops), workers
    assert stops[0][1] == stops[1][1] and int(stops[0][1]) < 16  # the same step, mid-epoch
    assert "SIGTERM" in workers[0] and "SIGTERM" in workers[1]  # forwarded to both
    saved = checkpoint.read(checkpoint.recovery_path(run / "ckpt"), meta_only=True)[1]
    assert saved["step"] == int(stops[0][1])

    resumed = vgg16("train", "--workers", "2", "--data_path", data, "--output", run,
                    "--pre_trained", init_ckpt, *settings).stdout  # fmt: skip
    assert f"step {stops[0][1]} of epoch 1" in resumed
    one, two = final_weights(reference / "ckpt"), final_weights(run / "ckpt")
    assert max(float(np.abs(one[k] - two[k]).max()) for k in one) < 1e-5
