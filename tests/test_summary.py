"""The run summary, from small files shaped like the pipeline's own: the table `summary`
writes and prints, the command line, and the errors that name the bad file."""

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from vgg16.cli import main
from vgg16.summary import format_table, summarise
from vgg16.tables import SUMMARY

HISTORY = """epoch,step,loss,lr,img_per_s,seconds
1,20,2.22645,0.048,46.89,27.3
2,40,1.079721,0.02907,49.25,25.99
3,60,0.483118,0.01313,48.04,26.64
4,80,0.318211,0.003445,48.13,26.6
"""


#: (epoch, val_top1, val_top5, val_loss) of each checkpoint of the run in HISTORY.
SCORES = [(1, 0.1111, 0.5903, 26.7165), (2, 0.3403, 0.7917, 7.1777),
          (3, 0.7847, 1.0, 0.9414), (4, 0.9444, 0.9931, 0.1542)]  # fmt: skip


def selection_csv(chosen: int, scores: list[tuple] = SCORES) -> str:
    """selection.csv of `scores` with epoch `chosen` selected."""
    lines = [f"vgg16-epoch{e:04d}.ckpt,{e},{t1},{t5},{loss},{e == chosen},"
             for e, t1, t5, loss in scores]  # fmt: skip
    header = "checkpoint,epoch,val_top1,val_top5,val_loss,selected,damaged\n"
    return header + "\n".join(lines) + "\n"


def selection(chosen: int) -> str:
    """selection.csv with `chosen` selected: the summary reports what select chose (even
    when it is not the best val_top1 here, epoch 4), and never decides again."""
    return selection_csv(chosen)


SELECTION = selection(3)


def SELECTION_ROWS(chosen: int) -> list[dict[str, str]]:  # noqa: N802 (read like SELECTION)
    """The rows of `selection(chosen)` as the tables module reads them."""
    return [dict(zip(("checkpoint", "epoch", "val_top1", "val_top5", "val_loss", "selected",
                      "damaged"),
                     line.split(","), strict=True))
            for line in selection(chosen).splitlines()[1:]]  # fmt: skip


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


#: The two runs of `_two_runs` as `vgg16 summary` prints them: the best test top-1 first,
#: accuracies to 4 decimals, no index column.
TABLE = """\
  run dataset             recipe  epochs val_top1 val_top5 test_top1 test_top5  train_seconds
alpha  digits config/digits.yaml       4   0.7847   1.0000    0.9600    1.0000          106.5
 zeta cifar10   config/zeta.yaml       4   0.9444   0.9931    0.9100    1.0000          106.5"""


def _two_runs(tmp_path: Path) -> dict[str, dict[str, Path]]:
    zeta = _run(tmp_path / "zeta", _metrics(0.91, dataset="cifar10"), selection(4))
    return {"zeta": {**zeta, "recipe": Path("config/zeta.yaml")},
            "alpha": _run(tmp_path / "alpha", _metrics(0.96))}  # fmt: skip


def test_format_table_aligns_columns_and_gives_accuracies_four_decimals(tmp_path: Path):
    assert format_table(summarise(_two_runs(tmp_path), tmp_path / "summary.csv")) == TABLE


def test_the_summary_command_prints_the_table_and_writes_the_csv_and_the_comparison(
    tmp_path: Path, capsys
):
    """The per-run files are given in --runs order (zeta first); the table is sorted by test
    top-1, and the comparison's legend follows it."""
    runs = _two_runs(tmp_path)
    out, comparison = tmp_path / "summary.csv", tmp_path / "plots" / "comparison.png"
    argv = ["summary", "--output", str(out), "--comparison", str(comparison),
            "--runs", "zeta", "alpha"]  # fmt: skip
    for flag, key in [("--history", "history"), ("--selection", "selection"),
                      ("--metrics", "metrics"), ("--recipes", "recipe")]:  # fmt: skip
        argv += [flag, str(runs["zeta"][key]), str(runs["alpha"][key])]
    assert main(argv) == 0
    assert capsys.readouterr().out == TABLE + f"\nwrote {comparison}\n"
    assert out.read_text() == (
        "run,dataset,recipe,epochs,val_top1,val_top5,test_top1,test_top5,train_seconds\n"
        "alpha,digits,config/digits.yaml,4,0.7847,1.0,0.96,1.0,106.5\n"
        "zeta,cifar10,config/zeta.yaml,4,0.9444,0.9931,0.91,1.0,106.5\n"
    )
    with Image.open(comparison) as image:
        assert (image.format, image.size) == ("PNG", (800, 500))


def test_the_summary_puts_the_best_test_top1_first_and_ties_in_name_order(tmp_path: Path):
    """A learning-rate sweep reads from the top: the names' order is not the results'."""
    top1 = {"lr01": 0.90, "lr02": 0.97, "lr05": 0.93, "lr10": 0.97}
    runs = {name: _run(tmp_path / name, _metrics(value)) for name, value in top1.items()}
    df = summarise(runs, tmp_path / "summary.csv")
    assert list(df["run"]) == ["lr02", "lr10", "lr05", "lr01"]
    assert list(pd.read_csv(tmp_path / "summary.csv")["run"]) == list(df["run"])


#: Each per-run file flag of `vgg16 summary` and the key of its path in a `_run`.
FILE_FLAGS = {"--history": "history", "--selection": "selection", "--metrics": "metrics",
              "--recipes": "recipe"}  # fmt: skip


@pytest.mark.parametrize(
    "counts",
    [{"--history": 1}, {"--selection": 1}, {"--metrics": 3}, {"--metrics": 3, "--recipes": 1}],
)
def test_the_summary_command_names_each_file_list_of_another_length(
    tmp_path: Path, capsys, counts: dict[str, int]
):
    """Two runs; the flags in `counts` give that many files instead of two."""
    run = _run(tmp_path / "a", _metrics(0.96))
    out = tmp_path / "summary.csv"
    argv = ["summary", "--output", str(out), "--comparison", str(tmp_path / "c.png"),
            "--runs", "a", "b"]  # fmt: skip
    for flag, key in FILE_FLAGS.items():
        argv += [flag, *[str(run[key])] * counts.get(flag, 2)]
    assert main(argv) == 1
    assert capsys.readouterr().err == (
        f"vgg16 summary: error: --runs names 2 runs, but {counts} give other counts\n"
    )
    assert not out.exists()


def test_summarise_of_no_runs_writes_only_the_header(tmp_path: Path):
    df = summarise({}, tmp_path / "summary.csv")
    assert list(df.columns) == list(SUMMARY.columns) and df.empty
    assert (tmp_path / "summary.csv").read_text() == ",".join(SUMMARY.columns) + "\n"


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


@pytest.mark.parametrize(
    ("drop", "named"),
    [
        (["top5"], "top5"),
        (["top1", "recipe"], "top1, recipe"),
        (["recipe.dataset"], "recipe.dataset"),
    ],
)
def test_metrics_without_a_key_the_summary_reads_name_the_file_and_keys(
    tmp_path: Path, drop: list[str], named: str
):
    metrics = _metrics(0.96)
    for key in drop:
        if key == "recipe.dataset":
            del metrics["recipe"]["dataset"]
        else:
            del metrics[key]
    run = _run(tmp_path / "run", metrics)
    with pytest.raises(ValueError) as err:
        summarise({"run": run}, tmp_path / "summary.csv")
    assert str(err.value) == f"{run['metrics']} has no key {named}"
    assert not (tmp_path / "summary.csv").exists()


def test_a_selection_without_a_selected_row_is_named(tmp_path: Path):
    run = _run(tmp_path / "run", _metrics(0.96), SELECTION.replace("True", "False"))
    with pytest.raises(ValueError) as err:
        summarise({"run": run}, tmp_path / "summary.csv")
    assert str(err.value) == f"{run['selection']}: expected exactly one selected row, found 0"


def test_the_comparison_draws_every_runs_selection_in_the_summarys_order(
    tmp_path: Path, monkeypatch
):
    """What `vgg16 summary` hands to the comparison figure (whose drawing test_plot checks)."""
    from vgg16 import plot

    drawn = []
    figure = plot.comparison_figure
    monkeypatch.setattr(
        plot, "comparison_figure", lambda *args: drawn.append(args) or figure(*args)
    )
    runs = _two_runs(tmp_path)
    argv = ["summary", "--output", str(tmp_path / "s.csv"), "--comparison",
            str(tmp_path / "c.png"), "--runs", "zeta", "alpha"]  # fmt: skip
    for flag, key in FILE_FLAGS.items():
        argv += [flag, str(runs["zeta"][key]), str(runs["alpha"][key])]
    assert main(argv) == 0
    ((selections, test_top1),) = drawn
    assert list(selections) == ["alpha", "zeta"]
    assert selections["zeta"] == SELECTION_ROWS(4) and selections["alpha"] == SELECTION_ROWS(3)
    assert test_top1 == {"alpha": 0.96, "zeta": 0.91}
