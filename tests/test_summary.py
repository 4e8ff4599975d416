"""The run summary, from small files shaped like the pipeline's own."""

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from vgg16.summary import format_table, summarise

HISTORY = """epoch,step,loss,lr,img_per_s,seconds
1,20,2.22645,0.048,46.89,27.3
2,40,1.079721,0.02907,49.25,25.99
3,60,0.483118,0.01313,48.04,26.64
4,80,0.318211,0.003445,48.13,26.6
"""


def selection(chosen: int) -> str:
    """selection.csv with `chosen` selected: the summary reports what select chose (even
    when it is not the best val_top1 here, epoch 4), and never decides again."""
    rows = [(1, 0.1111, 0.5903, 26.7165), (2, 0.3403, 0.7917, 7.1777),
            (3, 0.7847, 1.0, 0.9414), (4, 0.9444, 0.9931, 0.1542)]  # fmt: skip
    lines = [f"vgg16-epoch{e:04d}.ckpt,{e},{t1},{t5},{loss},{e == chosen}"
             for e, t1, t5, loss in rows]  # fmt: skip
    return "checkpoint,epoch,val_top1,val_top5,val_loss,selected\n" + "\n".join(lines) + "\n"


SELECTION = selection(3)


def _metrics(top1: float, dataset: str = "digits") -> dict:
    return {
        "top1": top1,
        "top5": 1.0,
        "loss": 0.1026,
        "num_images": 360,
        "per_class_accuracy": {"0": 0.97, "1": 1.0},
        "split": "test",
        "checkpoint": "results/runs/x/select/best.ckpt",
        "checkpoint_epoch": 3,
        "recipe": {"dataset": dataset, "max_epoch": 4, "lr": 0.01, "batch_size": 64},
    }


def _run(folder: Path, metrics: dict, selection: str = SELECTION) -> dict[str, Path]:
    folder.mkdir(parents=True)
    paths = {name: folder / name for name in ("history.csv", "selection.csv", "metrics.json")}
    paths["history.csv"].write_text(HISTORY)
    paths["selection.csv"].write_text(selection)
    paths["metrics.json"].write_text(json.dumps(metrics))
    return {
        "history": paths["history.csv"],
        "selection": paths["selection.csv"],
        "metrics": paths["metrics.json"],
        "recipe": Path("config/digits.yaml"),
    }


def test_summarise_reports_the_checkpoint_select_chose(tmp_path: Path):
    runs = {
        "zeta": _run(tmp_path / "zeta", _metrics(0.91, dataset="cifar10"), selection(4)),
        "alpha": _run(tmp_path / "alpha", _metrics(0.96)),
    }  # fmt: skip
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
    assert df.iloc[1]["val_top1"] == pytest.approx(0.9444)  # zeta's select chose epoch 4
    pd.testing.assert_frame_equal(pd.read_csv(out), df)
    assert [p.name for p in out.parent.iterdir()] == ["summary.csv"]
    assert "0.7847" in format_table(df) and "106.5" in format_table(df)


@pytest.mark.parametrize("missing", ["history", "selection", "metrics"])
def test_a_missing_file_is_named(tmp_path: Path, missing: str):
    run = _run(tmp_path / "run", _metrics(0.96))
    run[missing].unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(str(run[missing]))):
        summarise({"run": run}, tmp_path / "summary.csv")
    assert not (tmp_path / "summary.csv").exists()


def test_a_history_without_loss_names_the_file_and_column(tmp_path: Path):
    run = _run(tmp_path / "run", _metrics(0.96))
    run["history"].write_text(HISTORY.replace("seconds", "secs", 1))
    pattern = rf"{re.escape(str(run['history']))} has no column seconds"
    with pytest.raises(ValueError, match=pattern):
        summarise({"run": run}, tmp_path / "summary.csv")
