"""Shared fixtures. Tests import the installed package and write only under tmp_path."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import mindspore as ms
import numpy as np
import pytest

from vgg16.formats.cifar10 import find_batches, read_batches, write_batch
from vgg16.formats.digits import write_digits

#: Recipe overrides of the digits run below: the demo's recipe, 3 epochs.
DIGITS_EPOCHS = 3

# One device for the whole session: MindSpore refuses to change it once a kernel has run.
ms.set_device("CPU")

# No SLURM controller outside the test clusters, whose commands set their own SLURM_CONF.
# Every Snakemake process imports the SLURM executor plugin, which runs `scontrol show config`
# as it is imported; on a machine whose slurm.conf names a controller that does not answer,
# that waits 9 s, in each of the suite's local Snakemake runs.
os.environ["SLURM_CONF"] = str(Path(__file__).parent / "slurm" / "no-controller.conf")

#: The training trajectory is then a pure function of the recipe and the data: no BatchNorm
#: statistics per worker, no dropout masks, no augmentation and no shuffling.
EXACT = ["batch_norm=false", "has_dropout=false", "augment=false", "shuffle=false",
         "warmup_epochs=0", "lr_max=0.05", "eval_batch_size=16"]  # fmt: skip


def sets(*pairs: str) -> list[str]:
    """`--set` flags for each `key=value`."""
    return [x for pair in pairs for x in ("--set", pair)]


Vgg16 = Callable[..., subprocess.CompletedProcess]


@pytest.fixture(scope="session")
def vgg16() -> Vgg16:
    """`python -m vgg16 ...` as its own process, as the workflow runs it; fails with its output."""

    def run(*args, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "vgg16", *map(str, args)]
        full_env = {**os.environ, "GLOG_v": "3", **(env or {})}
        result = subprocess.run(cmd, capture_output=True, text=True, env=full_env)
        if check and result.returncode:
            raise AssertionError(f"{cmd} failed:\n{result.stdout[-5000:]}\n{result.stderr[-5000:]}")
        return result

    return run


@pytest.fixture(scope="session")
def digits(tmp_path_factory) -> tuple[np.ndarray, np.ndarray]:
    """The training batch of the digits demo: (N, 32, 32, 3) uint8 images and their labels."""
    raw = write_digits(tmp_path_factory.mktemp("digits"))
    return read_batches(find_batches(raw)["train"])


def write_source(folder: Path, images: np.ndarray, labels: np.ndarray, train: int, test: int):
    """A CIFAR-10 binary layout with the first `train` images, then `test` more as its test
    batch; the class names are the digits'."""
    folder.mkdir(parents=True)
    write_batch(folder / "data_batch_1.bin", images[:train], labels[:train])
    write_batch(folder / "test_batch.bin", images[train : train + test],
                      labels[train : train + test])  # fmt: skip
    (folder / "batches.meta.txt").write_text("".join(f"{d}\n" for d in range(10)))
    return folder


@pytest.fixture(scope="session")
def tiny_source(digits, tmp_path_factory) -> Path:
    """64 training and 40 test images of the digits in the CIFAR-10 binary layout."""
    return write_source(tmp_path_factory.mktemp("tiny") / "src", *digits, train=64, test=40)


@pytest.fixture(scope="session")
def tiny_data(tiny_source) -> Path:
    """`tiny_source` prepared without a val split: 4 steps of 16 images per epoch."""
    from vgg16.prepare import prepare

    out = tiny_source.parent / "mindrecord"
    prepare("digits", tiny_source, out, val_fraction=0.0)
    return out


@pytest.fixture
def fsynced(monkeypatch) -> list[Path]:
    """Every file or folder `os.fsync` is called on from now on, in order (the path its
    descriptor was opened with, read back from /proc)."""
    synced: list[Path] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(Path(os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return synced


@pytest.fixture
def pynative():
    """Eager execution: shape and gradient checks need no graph compilation (seconds each)."""
    ms.set_context(mode=ms.PYNATIVE_MODE)
    yield
    ms.set_context(mode=ms.GRAPH_MODE)


@contextmanager
def made_once(folder: Path) -> Iterator[bool]:
    """Whether this process is to make `folder`, False if another pytest-xdist worker of the
    session made it already; the others wait meanwhile. A failed attempt leaves it to the
    next."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with (folder.parent / f"{folder.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        complete = folder / ".complete"
        yield not complete.exists()
        complete.touch()


@pytest.fixture(scope="session")
def digits_run(vgg16, tmp_path_factory) -> dict[str, Path]:
    """prepare -> train -> select -> evaluate of the digits demo for DIGITS_EPOCHS epochs,
    each command its own process (about a minute and a half on 2 cores), made once per session
    whichever worker asks first. Read-only: shared by tests/test_end_to_end.py and, as the
    uninterrupted run to match, tests/test_slurm.py."""
    root = xdist_shared(tmp_path_factory) / "digits-run"
    paths = {
        "raw": root / "raw",
        "data": root / "mindrecord",
        "train": root / "train",
        "ckpt": root / "train" / "ckpt",
        "select": root / "select",
        "eval": root / "eval",
    }
    with made_once(root) as fresh:
        if fresh:
            make_digits_run(vgg16, paths)
    paths["train_log"] = (root / "train.log").read_text()
    return paths


def make_digits_run(vgg16: Vgg16, paths: dict[str, Path]) -> None:
    settings = ["--set", f"max_epoch={DIGITS_EPOCHS}"]
    vgg16("prepare", "--dataset", "digits", "--data_path", paths["raw"], "--output", paths["data"])
    log = vgg16("train", "--data_path", paths["data"], "--output", paths["train"], *settings)
    (paths["train"].parent / "train.log").write_text(log.stdout)
    # A leftover of a killed save must never be selected or loaded.
    (paths["ckpt"] / ".tmp").mkdir(exist_ok=True)
    (paths["ckpt"] / ".tmp" / "vgg16-epoch0099.ckpt").write_bytes(b"half-written")
    (paths["ckpt"] / "vgg16-epoch0098.ckpt.tmp").write_bytes(b"half-written")
    vgg16("select", "--data_path", paths["data"], "--train", paths["train"],
          "--output", paths["select"])  # fmt: skip
    vgg16("evaluate", "--config", paths["train"] / "recipe.yaml", "--data_path", paths["data"],
          "--output", paths["eval"], "--pre_trained", paths["select"] / "best.ckpt")  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The SLURM tests last: their workflow runs in the background meanwhile. Before them,
    the modules that train or run the workflow (the longest), then the rest: `make test`
    runs two pytest-xdist workers, `--dist loadfile`, each module on one worker (so that its
    module-scoped fixtures are made once) in this order, and long modules last would leave
    one worker idle at the end."""
    long = {item.module for item in items if item.get_closest_marker("training")
            or item.get_closest_marker("workflow")}  # fmt: skip
    items.sort(key=lambda item: (item.get_closest_marker("slurm") is not None,
                                 item.module not in long))  # fmt: skip


def xdist_shared(tmp_path_factory) -> Path:
    """A folder every pytest-xdist worker of this session sees (the session's own without)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


#: The modules that read the two-node cluster's run (tests/slurm_cluster.py).
TWO_NODE_MODULES = ("test_slurm_nodes",)


@pytest.fixture(scope="session", autouse=True)
def slurm_workflows(request, tmp_path_factory):
    """The SLURM tests' workflow runs (tests/slurm_cluster.py), on the one-node cluster and,
    when a two-node test is collected, the two-node one, started in the background at the
    session's start, by the first worker under pytest-xdist, when a collected test needs them.
    """
    slurm = [item for item in request.session.items if item.get_closest_marker("slurm")]
    if not slurm:
        yield {}
        return
    from slurm_cluster import CONFIG, TWO_NODE_CONFIG, Cluster, ClusterRun

    shared = xdist_shared(tmp_path_factory) / "slurm"
    runs = {1: ClusterRun(shared / "one-node" / "w", Cluster(1), CONFIG)}
    if any(item.module.__name__ in TWO_NODE_MODULES for item in slurm):
        runs[2] = ClusterRun(shared / "two-nodes" / "w", Cluster(2), TWO_NODE_CONFIG, nodes=2)
    starts = os.environ.get("PYTEST_XDIST_WORKER", "gw0") == "gw0"
    if starts:
        for run in runs.values():
            run.workdir.parent.mkdir(parents=True)
            run.start()
    # Those runs are the session's longest chain: the tests yield the CPU to them. On Linux a
    # thread's nice value is its own, inherited by the threads and processes it starts, so
    # the runs' threads, started above, submit their jobs at the normal priority (SLURM
    # passes the submitter's on), while the tests and all they start run at nice 10.
    os.nice(10)
    yield runs
    if starts:
        for run in runs.values():
            run.wait()  # this worker must outlive the runs its threads watch
