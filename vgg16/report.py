"""Plots of one run and a table comparing runs, from the files the pipeline writes.

Only `history.csv` (train), `selection.csv` (select) and `metrics.json` (eval) are read, so
this module needs neither MindSpore nor a checkpoint and stays cheap to import in the
workflow's report rules. Every output goes through a temporary name and `os.replace`, so a
killed job never leaves a half-written file that Snakemake would take as finished.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from vgg16.atomic import atomic_write

#: The columns read here (train.py and evaluate.py write more).
HISTORY_COLUMNS = ("epoch", "loss", "lr", "seconds")
SELECTION_COLUMNS = ("epoch", "val_top1", "val_top5", "val_loss")
METRICS_KEYS = ("top1", "top5", "recipe")
SUMMARY_COLUMNS = (
    "run",
    "dataset",
    "recipe",
    "epochs",
    "val_top1",
    "val_top5",
    "test_top1",
    "test_top5",
    "train_seconds",
)
ACCURACY_COLUMNS = ("val_top1", "val_top5", "test_top1", "test_top5")
FIGSIZE = (6, 4)
DPI = 100


def _require(path: Path, present: Any, expected: tuple[str, ...], what: str) -> None:
    """Fail with the file's name and what is missing, rather than a bare KeyError later."""
    missing = [name for name in expected if name not in present]
    if missing:
        raise ValueError(f"{path} has no {what} {', '.join(missing)}")


def _read_csv(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """The CSV at `path`, checked for `columns` and at least one row."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    df = pd.read_csv(path)
    _require(path, df.columns, columns, "column")
    if df.empty:
        raise ValueError(f"{path} has no rows")
    return df


def _read_metrics(path: Path) -> dict[str, Any]:
    """metrics.json, checked for the keys the summary reads (checkpoint_epoch is optional)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    metrics = json.loads(path.read_text())
    _require(path, metrics, METRICS_KEYS, "key")
    _require(path, metrics["recipe"], ("dataset",), "recipe key")
    return metrics


def selected_row(selection: pd.DataFrame, epoch: int | None = None) -> pd.Series:
    """The selection row of the checkpoint at `epoch` (metrics.json's checkpoint_epoch).

    Without such a row, select's own rule: best val_top1, ties going to the later epoch (then
    the later row), so the answer is the checkpoint select published as best.ckpt.
    """
    matching = selection[selection["epoch"] == epoch]
    candidates = matching if len(matching) else selection
    epochs = candidates["epoch"].fillna(-1)  # select writes "" for a checkpoint without one
    best = max(
        range(len(candidates)),
        key=lambda i: (candidates["val_top1"].iat[i], epochs.iat[i], i),
    )
    return candidates.iloc[best]


def _figure(title: str, ylabel: str) -> tuple[Figure, Axes]:
    # A bare Figure (no pyplot): no global backend switch and nothing to close, so it works
    # on display-less nodes and inside a user's notebook alike.
    fig = Figure(figsize=FIGSIZE, layout="constrained")
    ax = fig.subplots()
    ax.set(title=title, xlabel="epoch", ylabel=ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    return fig, ax


def _save(fig: Figure, path: Path) -> Path:
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI))


def _plot_loss(history: pd.DataFrame, selection: pd.DataFrame) -> Figure:
    """Log scale: early val losses can be ten times the training loss and flatten the rest."""
    fig, ax = _figure("Loss", "loss (log scale)")
    ax.plot(history["epoch"], history["loss"], marker="o", label="train (mean over the epoch)")
    ax.plot(selection["epoch"], selection["val_loss"], marker="s", label="val (cross-entropy)")
    ax.set_yscale("log")
    ax.legend()
    return fig


def _plot_lr(history: pd.DataFrame) -> Figure:
    fig, ax = _figure("Learning rate (last step of each epoch)", "learning rate")
    ax.plot(history["epoch"], history["lr"], marker="o")
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    return fig


def _plot_accuracy(selection: pd.DataFrame) -> Figure:
    fig, ax = _figure("Validation accuracy per checkpoint", "accuracy")
    ax.plot(selection["epoch"], selection["val_top1"], marker="o", label="top-1")
    ax.plot(selection["epoch"], selection["val_top5"], marker="s", label="top-5")
    best = selected_row(selection)
    ax.plot(
        best["epoch"],
        best["val_top1"],
        linestyle="none",
        marker="*",
        markersize=16,
        color="crimson",
        label=f"selected: epoch {best['epoch']:.0f}, top-1 {best['val_top1']:.4f}",
    )
    ax.set_ylim(0, 1.02)  # a little headroom so a top-5 of 1.0 is not cut by the frame
    ax.legend(loc="lower right")
    return fig


def plot_run(history: Path, selection: Path, out_dir: Path) -> list[Path]:
    """Write loss.png, lr.png and accuracy.png for one run to `out_dir`; return their paths.

    Checkpoints without an epoch (the zoo's) cannot be placed on the epoch axis and are left
    out of the plots.
    """
    hist = _read_csv(history, HISTORY_COLUMNS)
    sel = _read_csv(selection, SELECTION_COLUMNS).dropna(subset=["epoch"])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return [
        _save(_plot_loss(hist, sel), out_dir / "loss.png"),
        _save(_plot_lr(hist), out_dir / "lr.png"),
        _save(_plot_accuracy(sel), out_dir / "accuracy.png"),
    ]


def _summary_row(name: str, paths: dict[str, Path]) -> dict[str, Any]:
    history = _read_csv(paths["history"], HISTORY_COLUMNS)
    selection = _read_csv(paths["selection"], SELECTION_COLUMNS)
    metrics = _read_metrics(paths["metrics"])
    selected = selected_row(selection, metrics.get("checkpoint_epoch"))
    return {
        "run": name,
        "dataset": metrics["recipe"]["dataset"],
        "recipe": str(paths["recipe"]),
        "epochs": len(history),
        "val_top1": float(selected["val_top1"]),
        "val_top5": float(selected["val_top5"]),
        "test_top1": float(metrics["top1"]),
        "test_top5": float(metrics["top5"]),
        "train_seconds": round(float(history["seconds"].sum()), 1),
    }


def summarise(runs: dict[str, dict[str, Path]], out: Path) -> pd.DataFrame:
    """One row per run, sorted by name, written to the CSV `out` and returned.

    `runs` maps a run name to the paths of its "history", "selection", "metrics" and
    "recipe"; the recipe path is only recorded, so the table says which file made each row.
    The val columns are those of the checkpoint eval tested, not the best val row.
    """
    rows = [_summary_row(name, runs[name]) for name in sorted(runs)]
    df = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda tmp: df.to_csv(tmp, index=False))
    return df


def format_table(df: pd.DataFrame) -> str:
    """The summary as aligned text for a terminal, accuracies to 4 decimals."""
    formatters = {column: "{:.4f}".format for column in ACCURACY_COLUMNS}
    return df.to_string(index=False, formatters=formatters)
