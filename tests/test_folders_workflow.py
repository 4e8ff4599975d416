"""Your own images through the real workflow: both folder layouts, class names with spaces,
accents and other scripts, a run fine-tuned from a checkpoint of another num_classes with
frozen features; what replacing that checkpoint reruns; the mistakes a config can hold.

One snakemake run builds both datasets and both runs (tiny images, one epoch); the other tests
dry-run copies of it.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import mindspore as ms
import numpy as np
import pytest
import yaml
from PIL import Image
from test_workflow import copy_repo, job_counts, snakemake

#: Runs the real snakemake (left out of `make check`).
pytestmark = pytest.mark.workflow

FLAT = ["Golden Retriever", "café crème", "Кошка"]
SPLIT = ["chat noir", "Ölbaum", "斑马"]
TINY = {
    "dataset": "folders", "num_classes": None, "transforms": "cifar", "image_size": "32,32",
    "max_epoch": 1, "warmup_epochs": 0, "lr_max": 0.05, "batch_size": 8, "eval_batch_size": 16,
    "random_flip": False, "log_interval": 2, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25],
}  # fmt: skip


def _photo(path: Path, seed: int, size: tuple[int, int], mode: str = "RGB") -> None:
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((rng.random(shape) * 255).astype(np.uint8), mode=mode).save(path)


def write_folders(root: Path) -> dict[str, dict]:
    """The two layouts, photos of several sizes; returns the config's datasets."""
    for c, name in enumerate(FLAT):
        for i in range(12):
            sub = "2024" if i % 4 == 0 else ""
            _photo(root / "flat" / name / sub / f"photo {i}.jpg", 10 * c + i, (40 + i, 30))
    _photo(root / "flat" / FLAT[2] / "grey.png", 99, (33, 33), mode="L")
    for split, n in (("train", 10), ("val", 3), ("test", 4)):
        for c, name in enumerate(SPLIT):
            for i in range(n):
                _photo(root / "split" / split / name / f"{i}.png", 1000 * c + 10 * n + i, (48, 36))
    return {
        "flat": {"format": "folders", "data_path": str(root / "flat"), "test_fraction": 0.25,
                 "val_fraction": 0.2},
        "split": {"format": "folders", "data_path": str(root / "split")},
    }  # fmt: skip


def seven_class_checkpoint(path: Path) -> Path:
    """A checkpoint of the tiny recipe's network for 7 classes, as the zoo saves one."""
    from vgg16.config import load_recipe
    from vgg16.model import build_net

    ms.set_seed(7)
    overrides = {key: value for key, value in TINY.items() if key != "num_classes"}
    ms.save_checkpoint(build_net(load_recipe(overrides={**overrides, "num_classes": 7})), str(path))
    return path


def config(workdir: Path, datasets: dict, runs: dict) -> list[str]:
    path = workdir / "folders-config.yaml"
    path.write_text(yaml.safe_dump({"datasets": datasets, "runs": runs}, allow_unicode=True))
    return ["--configfile", str(path)]


RUNS = {
    "scratch": {"dataset": "flat", "recipe": "tiny.yaml"},
    "finetuned": {"dataset": "split", "recipe": "tiny.yaml", "pre_trained": "start.ckpt",
                  "set": {"freeze": "features", "transforms": "imagenet"}},
}  # fmt: skip


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, dict]:
    workdir = copy_repo(tmp_path_factory.mktemp("folders"))
    datasets = write_folders(workdir / "photos")
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    seven_class_checkpoint(workdir / "start.ckpt")
    result = snakemake(workdir, *config(workdir, datasets, RUNS))
    assert job_counts(result)["train"] == 2
    return workdir, datasets


def _runs(workdir: Path) -> Path:
    return workdir / "results" / "runs"


def test_both_layouts_train_and_evaluate_with_their_class_names_everywhere(finished):
    workdir, _ = finished
    data = workdir / "results" / "data"
    flat = json.loads((data / "flat" / "mindrecord" / "manifest.json").read_text())
    assert flat["class_names"] == sorted(FLAT) and flat["test_fraction"] == 0.25
    assert {s: e["count"] for s, e in flat["splits"].items()} == {"train": 21, "val": 6, "test": 10}
    split = json.loads((data / "split" / "mindrecord" / "manifest.json").read_text())
    assert {s: e["count"] for s, e in split["splits"].items()} == {
        "train": 30,
        "val": 9,
        "test": 12,
    }
    for run, names in (("scratch", sorted(FLAT)), ("finetuned", sorted(SPLIT))):
        metrics = json.loads((_runs(workdir) / run / "eval" / "metrics.json").read_text())
        assert list(metrics["per_class_accuracy"]) == names, run
        with (_runs(workdir) / run / "eval" / "confusion.csv").open(encoding="utf-8") as f:
            assert next(csv.reader(f))[1:] == names
        with (_runs(workdir) / run / "eval" / "mistakes.csv").open(encoding="utf-8") as f:
            assert {row["true"] for row in csv.DictReader(f)} <= set(names)
        assert (_runs(workdir) / run / "plots" / "confusion.png").is_file()


def test_the_fine_tuned_run_starts_from_its_checkpoint_with_a_new_last_layer(finished):
    workdir, _ = finished
    log = (workdir / "results" / "logs" / "train" / "finetuned.log").read_text()
    assert "start.ckpt: its last layer is for 7 classes, the recipe's for 3, so that layer" in log
    from vgg16 import checkpoint

    (path,) = (_runs(workdir) / "finetuned" / "train" / "ckpt").glob("*.ckpt")
    weights, meta = checkpoint.read(path)
    start = ms.load_checkpoint(str(workdir / "start.ckpt"))
    assert all(np.array_equal(weights[k].asnumpy(), start[k].asnumpy()) for k in start
               if k.startswith("layers."))  # fmt: skip
    assert weights["classifier.6.bias"].shape == (3,)
    assert meta["class_names"] == sorted(SPLIT) and meta["pre_trained"]["path"] == "start.ckpt"


def _copy(finished, tmp_path: Path) -> Path:
    workdir = tmp_path / "w"
    shutil.copytree(finished[0], workdir, symlinks=True)
    return workdir


def test_replacing_the_checkpoint_retrains_that_run_only(finished, tmp_path):
    workdir = _copy(finished, tmp_path)
    args = config(workdir, finished[1], RUNS)
    assert "Nothing to be done" in snakemake(workdir, "--dry-run", *args).stdout
    seven_class_checkpoint(workdir / "start.ckpt")  # written again: a new file
    planned = job_counts(snakemake(workdir, "--dry-run", *args))
    assert planned == {"train": 1, "select": 1, "evaluate": 1, "plot": 1, "summary": 1, "all": 1}


def _dry_run_error(workdir: Path, datasets: dict, runs: dict) -> str:
    result = snakemake(workdir, "--dry-run", *config(workdir, datasets, runs), check=False)
    assert result.returncode != 0
    return result.stdout + result.stderr


def test_a_run_whose_num_classes_is_not_its_datas_stops_the_dry_run(finished, tmp_path):
    workdir = _copy(finished, tmp_path)
    runs = {"five": {"dataset": "flat", "recipe": "tiny.yaml", "set": {"num_classes": 5}}}
    assert (
        "config runs.five.set.num_classes: dataset 'flat' has 3 classes but the recipe's "
        "num_classes is 5" in _dry_run_error(workdir, finished[1], runs)
    )


def test_a_missing_checkpoint_stops_the_dry_run(finished, tmp_path):
    workdir = _copy(finished, tmp_path)
    runs = {"lost": {"dataset": "flat", "recipe": "tiny.yaml", "pre_trained": "gone.ckpt"}}
    assert "config runs.lost.pre_trained: gone.ckpt does not exist" in _dry_run_error(
        workdir, finished[1], runs
    )


def test_a_downloaded_checkpoint_that_does_not_match_its_digest_is_not_kept(finished, tmp_path):
    workdir = _copy(finished, tmp_path)
    url = (workdir / "start.ckpt").as_uri()
    wrong = hashlib.md5(b"another file").hexdigest()
    runs = {"web": {"dataset": "flat", "recipe": "tiny.yaml",
                    "pre_trained": {"url": url, "md5": wrong}}}  # fmt: skip
    target = f"results/pretrained/{wrong}/start.ckpt"
    result = snakemake(workdir, target, *config(workdir, finished[1], runs), check=False)
    assert result.returncode != 0
    log = (workdir / "results" / "logs" / "fetch" / wrong / "start.ckpt.log").read_text()
    assert f"checksum mismatch for {url}: md5 expected {wrong}" in log
    assert not (workdir / target).exists()


def test_every_shipped_recipe_trains_a_folders_dataset(finished, tmp_path):
    """The dry run accepts each shipped recipe on 3 class folders: num_classes follows the
    data, whatever the recipe was written for."""
    workdir = _copy(finished, tmp_path)
    shipped = ["digits", "cifar10", "imagenet2012"]
    runs = {name: {"dataset": "flat", "recipe": f"config/recipes/{name}.yaml"} for name in shipped}
    flags = config(workdir, finished[1], runs)
    result = snakemake(workdir, "--dry-run", "--printshellcmds", *flags)
    assert job_counts(result)["train"] == len(shipped)
    trains = [line for line in result.stdout.splitlines() if " train --config " in line]
    assert len(trains) == len(shipped) and all("num_classes=3" in line for line in trains)
