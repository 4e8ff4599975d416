"""The shipped `config/imagenet2012.yaml`, run as shipped on a generated ImageNet folder.

Only what the issue allows a user to change is changed: `data_path`, `num_classes`, the
`expect` counts, a small `image_size` and one epoch. Everything else (its val_fraction of
0.01, 16 shards, the seed's ImageNet recipe) runs as a real ImageNet run would.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from imagenet_layout import write_image_folder
from test_workflow import REPO, copy_repo, job_counts, snakemake

RULES = {"download", "verify", "prepare", "train", "select", "evaluate", "plot", "summary", "all"}


def shipped_config(workdir: Path, data_path: Path, counts: dict[str, int], classes: int) -> list:
    config = yaml.safe_load((REPO / "config" / "imagenet2012.yaml").read_text())
    (dataset,) = config["datasets"].values()
    dataset.update(data_path=str(data_path), num_classes=classes, expect=counts)
    (run,) = config["runs"].values()
    run["set"] = {"num_classes": classes, "image_size": "32,32", "max_epoch": 1}
    path = workdir / "imagenet-config.yaml"
    path.write_text(yaml.safe_dump(config))
    return ["--configfile", str(path), "--replace-workflow-config"]


def test_the_shipped_imagenet_config_runs_end_to_end(tmp_path):
    workdir = copy_repo(tmp_path)
    counts = write_image_folder(tmp_path / "imagenet", classes=2, train=100, val=4)

    result = snakemake(workdir, *shipped_config(workdir, tmp_path / "imagenet", counts, 2))

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
    summary = (workdir / "results" / "summary.csv").read_text().splitlines()
    assert summary[1].startswith("imagenet2012,imagenet2012,config/recipes/imagenet2012.yaml,1,")


def test_a_truncated_image_stops_the_workflow_at_verify_naming_it(tmp_path):
    workdir = copy_repo(tmp_path)
    counts = write_image_folder(tmp_path / "imagenet", classes=2, train=100, val=4)
    bad = tmp_path / "imagenet" / "val" / "n01443537" / "n01443537_2.JPEG"
    bad.write_bytes(bad.read_bytes()[:500])

    result = snakemake(
        workdir, *shipped_config(workdir, tmp_path / "imagenet", counts, 2), check=False
    )

    assert result.returncode != 0
    log = (workdir / "results" / "logs" / "verify" / "imagenet2012.log").read_text()
    assert "vgg16 verify: error: 1 image file(s) cannot be decoded:" in log
    assert "/val/n01443537/n01443537_2.JPEG: cannot be decoded (" in log
    data = workdir / "results" / "data" / "imagenet2012"
    assert not (data / "verified.json").exists() and not (data / "mindrecord").exists()
