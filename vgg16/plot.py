"""`vgg16 plot`: loss, learning-rate and validation-accuracy plots of one run.

Only `history.csv` (train) and `selection.csv` (select) are read, so this module needs neither
MindSpore nor a checkpoint and stays cheap to import in the workflow's report rules. Every
output goes through a temporary name and `os.replace`, so a killed job never leaves a
half-written file that Snakemake would take as finished.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from vgg16.atomic import atomic_write
from vgg16.tables import HISTORY, SELECTION, selected_row

FIGSIZE = (6, 4)
DPI = 100


def main(args: argparse.Namespace) -> None:
    for path in plot_run(args.history, args.selection, args.output):
        print(f"wrote {path}")


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


def _plot_accuracy(selection: pd.DataFrame, best: dict[str, str]) -> Figure:
    fig, ax = _figure("Validation accuracy per checkpoint", "accuracy")
    ax.plot(selection["epoch"], selection["val_top1"], marker="o", label="top-1")
    ax.plot(selection["epoch"], selection["val_top5"], marker="s", label="top-5")
    if best["epoch"]:
        top1 = float(best["val_top1"])
        ax.plot(
            int(best["epoch"]),
            top1,
            linestyle="none",
            marker="*",
            markersize=16,
            color="crimson",
            label=f"selected: epoch {best['epoch']}, top-1 {top1:.4f}",
        )
    ax.set_ylim(0, 1.02)  # a little headroom so a top-5 of 1.0 is not cut by the frame
    ax.legend(loc="lower right")
    return fig


def run_figures(history: Path, selection: Path) -> dict[str, Figure]:
    """The figures of one run by file name: loss.png, lr.png and accuracy.png.

    Checkpoints without an epoch (the zoo's) cannot be placed on the epoch axis and are left
    out of the plots.
    """
    hist = pd.DataFrame(HISTORY.read(history)).astype(float)
    rows = SELECTION.read(selection)
    best = selected_row(rows, selection)
    placed = [row for row in rows if row["epoch"]]
    sel = pd.DataFrame(placed, columns=list(SELECTION.columns))
    sel = sel[["epoch", "val_top1", "val_top5", "val_loss"]].astype(float)
    return {
        "loss.png": _plot_loss(hist, sel),
        "lr.png": _plot_lr(hist),
        "accuracy.png": _plot_accuracy(sel, best),
    }


def plot_run(history: Path, selection: Path, out_dir: Path) -> list[Path]:
    """Write the `run_figures` of one run to `out_dir`; return their paths."""
    out_dir = Path(out_dir)
    return [_save(fig, out_dir / name) for name, fig in run_figures(history, selection).items()]
