"""Run plots and the run summary, from small files shaped like the pipeline's own."""

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from vgg16.report import format_table, plot_run, selected_row, summarise

HISTORY = """epoch,step,loss,lr,img_per_s,seconds
1,20,2.22645,0.048,46.89,27.3
2,40,1.079721,0.02907,49.25,25.99
3,60,0.483118,0.01313,48.04,26.64
4,80,0.318211,0.003445,48.13,26.6
"""
# Epoch 4 has the best val_top1; the runs below say eval tested epoch 3.
SELECTION = """checkpoint,epoch,val_top1,val_top5,val_loss
vgg16-epoch0001.ckpt,1,0.1111,0.5903,26.7165
vgg16-epoch0002.ckpt,2,0.3403,0.7917,7.1777
vgg16-epoch0003.ckpt,3,0.7847,1.0,0.9414
vgg16-epoch0004.ckpt,4,0.9444,0.9931,0.1542
"""


def _metrics(top1: float, checkpoint_epoch: int | None, dataset: str = "digits") -> dict:
    return {
        "top1": top1,
        "top5": 1.0,
        "loss": 0.1026,
        "num_images": 360,
        "per_class_accuracy": {"0": 0.97, "1": 1.0},
        "split": "test",
        "checkpoint": "results/runs/x/select/best.ckpt",
        "checkpoint_epoch": checkpoint_epoch,
        "recipe": {"dataset": dataset, "max_epoch": 4, "lr": 0.01, "batch_size": 64},
    }


def _run(folder: Path, metrics: dict, history: str = HISTORY) -> dict[str, Path]:
    folder.mkdir(parents=True)
    paths = {name: folder / name for name in ("history.csv", "selection.csv", "metrics.json")}
    paths["history.csv"].write_text(history)
    paths["selection.csv"].write_text(SELECTION)
    paths["metrics.json"].write_text(json.dumps(metrics))
    return {
        "history": paths["history.csv"],
        "selection": paths["selection.csv"],
        "metrics": paths["metrics.json"],
        "recipe": Path("config/digits.yaml"),
    }


def test_plot_run_writes_three_valid_pngs_and_no_temporary_files(tmp_path: Path):
    run = _run(tmp_path / "run", _metrics(0.96, 3))
    out_dir = tmp_path / "plots"
    paths = plot_run(run["history"], run["selection"], out_dir)
    assert [p.name for p in paths] == ["loss.png", "lr.png", "accuracy.png"]
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(p.name for p in paths)
    for path in paths:
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert image.size == (600, 400)
            image.verify()


def test_summarise_follows_the_evaluated_checkpoint(tmp_path: Path):
    runs = {
        "zeta": _run(tmp_path / "zeta", _metrics(0.91, 4, dataset="cifar10")),
        "alpha": _run(tmp_path / "alpha", _metrics(0.96, 3)),
    }
    out = tmp_path / "summary" / "summary.csv"
    df = summarise(runs, out)
    assert list(df["run"]) == ["alpha", "zeta"]
    alpha = df.iloc[0]
    assert alpha["val_top1"] == pytest.approx(0.7847)  # epoch 3, not the best row (epoch 4)
    assert alpha["val_top5"] == pytest.approx(1.0)
    assert alpha["test_top1"] == pytest.approx(0.96)
    assert alpha["epochs"] == 4
    assert alpha["train_seconds"] == pytest.approx(106.5)  # 27.3 + 25.99 + 26.64 + 26.6
    assert alpha["recipe"] == "config/digits.yaml"
    assert list(df["dataset"]) == ["digits", "cifar10"]
    assert df.iloc[1]["val_top1"] == pytest.approx(0.9444)
    pd.testing.assert_frame_equal(pd.read_csv(out), df)
    assert [p.name for p in out.parent.iterdir()] == ["summary.csv"]
    assert "0.7847" in format_table(df) and "106.5" in format_table(df)


def test_without_checkpoint_epoch_the_best_row_is_taken_ties_to_the_later_epoch():
    selection = pd.DataFrame(
        {"epoch": [1, 2, 3], "val_top1": [0.5, 0.9, 0.9], "val_top5": [0.8, 1.0, 0.95]}
    )
    assert selected_row(selection, None)["epoch"] == 3
    assert selected_row(selection, 7)["epoch"] == 3  # eval tested a checkpoint not listed
    assert selected_row(selection, 1)["epoch"] == 1


@pytest.mark.parametrize("missing", ["history", "selection", "metrics"])
def test_a_missing_file_is_named(tmp_path: Path, missing: str):
    run = _run(tmp_path / "run", _metrics(0.96, 3))
    run[missing].unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(str(run[missing]))):
        summarise({"run": run}, tmp_path / "summary.csv")
    assert not (tmp_path / "summary.csv").exists()


def test_a_history_without_loss_names_the_file_and_column(tmp_path: Path):
    history = HISTORY.replace("loss", "train_loss", 1)
    run = _run(tmp_path / "run", _metrics(0.96, 3), history=history)
    pattern = rf"{re.escape(str(run['history']))} has no column loss"
    with pytest.raises(ValueError, match=pattern):
        plot_run(run["history"], run["selection"], tmp_path / "plots")
    with pytest.raises(ValueError, match=pattern):
        summarise({"run": run}, tmp_path / "summary.csv")
