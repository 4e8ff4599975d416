"""The shipped `config/imagenet2012.yaml`, run on a generated ImageNet folder and on a
miniature of the three official archives.

Only what a user would change is changed: `data_path` (or `archives`), `num_classes`, the
`expect` counts, a small `image_size` and one epoch. Everything else (its val_fraction of
0.01, 16 shards, the seed's ImageNet recipe) runs as a real ImageNet run would; the
miniature's 9 training images also need a larger val_fraction and a smaller batch.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from imagenet_layout import write_image_folder
from imagenet_miniature import expected_tree, write_archives
from test_workflow import REPO, copy_repo, job_counts, snakemake

#: Runs the real snakemake (left out of `make check`).
pytestmark = pytest.mark.workflow

RULES = {"download", "verify", "prepare", "train", "select", "evaluate", "plot", "summary", "all"}


def shipped_config(
    workdir: Path, source: dict, counts: dict[str, int], classes: int, **changes
) -> list:
    """The shipped file with the data's source (`data_path` or `archives`) and size;
    `changes`: dataset keys and, under `set`, recipe keys."""
    config = yaml.safe_load((REPO / "config" / "imagenet2012.yaml").read_text())
    (dataset,) = config["datasets"].values()
    del dataset["data_path"]
    dataset.update(source, num_classes=classes, expect=counts)
    (run,) = config["runs"].values()
    run["set"] = {"num_classes": classes, "image_size": "32,32", "max_epoch": 1}
    run["set"].update(changes.pop("set", {}))
    dataset.update(changes)
    path = workdir / "imagenet-config.yaml"
    path.write_text(yaml.safe_dump(config))
    return ["--configfile", str(path)]


def test_the_shipped_imagenet_config_runs_end_to_end(tmp_path):
    workdir = copy_repo(tmp_path)
    counts = write_image_folder(tmp_path / "imagenet", classes=2, train=100, val=4)

    result = snakemake(
        workdir, *shipped_config(workdir, {"data_path": str(tmp_path / "imagenet")}, counts, 2)
    )

    assert set(job_counts(result)) == RULES
    data = workdir / "results" / "data" / "imagenet2012"
    verified = json.loads((data / "verified.json").read_text())
    assert {split: entry["count"] for split, entry in verified["splits"].items()} == counts
    assert verified["skipped"] == [
        {"path": "train/n01440764/notes.txt", "reason": "not an image file (extension)"}
    ]
    manifest = json.loads((data / "mindrecord" / "manifest.json").read_text())
    assert {split: entry["count"] for split, entry in manifest["splits"].items()} == {
        "train": 198,
        "val": 2,  # 1% of 200, one per class
        "test": 8,
    }
    assert all(len(entry["files"]) == 16 for entry in manifest["splits"].values())
    metrics = json.loads(
        (workdir / "results" / "runs" / "imagenet2012" / "eval" / "metrics.json").read_text()
    )
    assert metrics["num_images"] == 8
    # The mistakes gallery of an encoded (JPEG), 16-shard split: the images as the network
    # saw them, one per mistake.
    eval_dir = workdir / "results" / "runs" / "imagenet2012" / "eval"
    wrong = round(8 * (1 - metrics["top1"]))
    assert len((eval_dir / "mistakes.csv").read_text().splitlines()) == 1 + wrong
    with np.load(eval_dir / "mistakes.npz") as saved:
        assert saved["images"].shape == (wrong, 32, 32, 3)
        assert len(set(saved["index"].tolist())) == wrong and set(saved["index"]) <= set(range(8))
    assert (workdir / "results" / "runs" / "imagenet2012" / "plots" / "mistakes.png").is_file()
    summary = (workdir / "results" / "summary.csv").read_text().splitlines()
    assert summary[1].startswith("imagenet2012,imagenet2012,config/recipes/imagenet2012.yaml,1,")


def test_a_truncated_image_stops_the_workflow_at_verify_naming_it(tmp_path):
    workdir = copy_repo(tmp_path)
    counts = write_image_folder(tmp_path / "imagenet", classes=2, train=100, val=4)
    bad = tmp_path / "imagenet" / "val" / "n01443537" / "n01443537_2.JPEG"
    bad.write_bytes(bad.read_bytes()[:500])

    result = snakemake(
        workdir,
        *shipped_config(workdir, {"data_path": str(tmp_path / "imagenet")}, counts, 2),
        check=False,
    )

    assert result.returncode != 0
    log = (workdir / "results" / "logs" / "verify" / "imagenet2012.log").read_text()
    assert "vgg16 verify: error: 1 image file(s) cannot be decoded:" in log
    assert "/val/n01443537/n01443537_2.JPEG: cannot be decoded (" in log
    data = workdir / "results" / "data" / "imagenet2012"
    assert not (data / "verified.json").exists() and not (data / "mindrecord").exists()


def test_the_official_archives_run_end_to_end(tmp_path):
    """The config's `archives` become quoted `--archive` flags (the folder has a space),
    download sorts them into class folders, and the run goes on as from a folder."""
    workdir = copy_repo(tmp_path)
    archives = {key: str(path) for key, path in write_archives(tmp_path / "image net").items()}
    config = shipped_config(
        workdir, {"archives": archives}, {"train": 9, "test": 6}, 3, val_fraction=1 / 3,
        set={"batch_size": 2},
    )  # fmt: skip

    result = snakemake(workdir, *config)

    assert set(job_counts(result)) == RULES
    raw = workdir / "results" / "data" / "imagenet2012" / "raw"
    assert {p.relative_to(raw).as_posix(): p.read_bytes() for p in raw.glob("*/*/*")} == (
        expected_tree()
    )
    manifest = json.loads(
        (workdir / "results" / "data" / "imagenet2012" / "mindrecord" / "manifest.json").read_text()
    )
    assert manifest["class_names"] == ["n01440764", "n01443537", "n01484850"]
    assert {split: entry["per_class"] for split, entry in manifest["splits"].items()} == {
        "train": [2, 2, 2],
        "val": [1, 1, 1],
        "test": [2, 2, 2],
    }
    metrics = json.loads(
        (workdir / "results" / "runs" / "imagenet2012" / "eval" / "metrics.json").read_text()
    )
    assert metrics["num_images"] == 6
