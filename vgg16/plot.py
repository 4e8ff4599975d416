"""`vgg16 plot`: the figures of one run, and the comparison of several.

Training: loss, learning rate and validation accuracy (the history and selection tables). Test
set (`evaluate`'s folder): the confusion matrix, the per-class accuracy and a gallery of the
most confident mistakes. `vgg16 summary` draws every run's validation top-1 on shared axes
with `comparison_figure`. Only those files are read, so this module needs neither MindSpore
nor a checkpoint and stays cheap to import in the workflow's report rules. Every output goes
through a temporary name and `os.replace`, so a killed job never leaves a half-written file
that Snakemake would take as finished.

Each figure is built by a function that returns the `Figure` (a bare one, no pyplot), so the
tests read back what it draws (bar lengths, the heatmap's array, the labels) and compare it to
the files it was drawn from.
"""

from __future__ import annotations

import argparse
import functools
import math
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import ParamSpec

import numpy as np
import pandas as pd
from matplotlib import font_manager
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import MaxNLocator

from vgg16.atomic import atomic_write
from vgg16.layout import EvalFolder, PlotsFolder
from vgg16.tables import (
    HISTORY,
    MISTAKES_KEPT,
    SELECTION,
    read_confusion,
    read_metrics,
    read_mistakes,
    selected_row,
)

DPI = 100
#: Inches of each figure (at `DPI`: 600 x 400 pixels for the training plots, and so on).
FIGSIZE = (6, 4)
CONFUSION_FIGSIZE = (12, 7)
PER_CLASS_FIGSIZE = (8, 7)
COMPARISON_FIGSIZE = (8, 5)
#: Above this many classes (ImageNet has 1,000) a heatmap's cells and a bar per class are
#: too small to read: the confusion figure shows the `PAIRS_INSTEAD` most confused pairs
#: instead, and the per-class chart the `EXTREMES` best and worst classes.
MANY_CLASSES = 50
#: Counts are written in the heatmap's cells up to this many classes.
COUNTS_UP_TO = 20
#: Most confused pairs listed beside the heatmap.
PAIRS_BESIDE = 10
PAIRS_INSTEAD = 20
EXTREMES = 20
#: The gallery: up to this many mistakes a row, as many rows as its mistakes fill (room for
#: every mistake `evaluate` keeps). Its width, in inches, gives its title room; each row of
#: images (with their titles) adds `GALLERY_ROW_HEIGHT` to the `GALLERY_HEADER`.
GALLERY_COLUMNS = 8
GALLERY_WIDTH = 12
GALLERY_HEADER = 0.5
GALLERY_ROW_HEIGHT = 1.75
#: The metrics keys the test-set figures read (evaluate writes more).
METRICS_KEYS = ("top1", "num_images", "per_class_accuracy")
#: Tick labels keep `TICK_SIZE` (points) up to this many rows or columns (classes, bars) and
#: shrink to `SMALL_TICK_SIZE` above, so that 50 classes or 41 bars do not overlap, even
#: with names of `NAME_COLUMNS` columns (under the heatmap they take its height).
ROOMY_TICKS = 20
TICK_SIZE = 9
SMALL_TICK_SIZE = 6.5
#: Class names stand upright under the heatmap while all of them together take at most this
#: many columns (their number times the longest, as drawn); more would overlap, so they turn
#: vertical.
UPRIGHT_CHARACTERS = 45
#: Class names are folder names, of any length: each is drawn in full up to this many columns
#: (a CJK character takes two, as in a terminal) and longer ones as their start and end around
#: `ELLIPSIS`, so that they fit beside a gallery image or twice on a line of the listing.
NAME_COLUMNS = 16
ELLIPSIS = "…"
#: Families of common CJK fonts: the first installed is tried after the user's font for the
#: characters it lacks (DejaVu Sans, matplotlib's default, has Latin, Greek and Cyrillic but
#: no CJK).
CJK_FONTS = (
    "Noto Sans CJK JP",
    "Noto Sans CJK SC",
    "Noto Sans CJK TC",
    "Noto Sans CJK KR",
    "Source Han Sans",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Droid Sans Fallback",
)

# Cosmetic styles (sizes in points), named once: the tests check what a reader relies on (the
# numbers, labels, order and legibility of each figure), not these.
#: The colour of what was chosen: the selected checkpoint's star, the test top-1 line.
HIGHLIGHT = "crimson"
STAR = {"marker": "*", "markersize": 16}
TOP1_LINE = {"color": HIGHLIGHT, "linestyle": "--"}
#: The heatmap's width to that of the listing beside it.
HEATMAP_WIDTHS = (2.6, 1)
CELL_COUNT = {"ha": "center", "va": "center", "fontsize": 8}
LISTING_TITLE = {"loc": "left", "fontsize": 10}
LISTING_LINE = {"va": "top", "fontsize": 9}
PAIR_BARS = {"color": "tab:red"}
PAIR_LABEL = {"padding": 3, "fontsize": 8}
#: The values after the per-class bars: a white box keeps each readable where the top-1 line
#: crosses it.
VALUE_LABEL = {
    "padding": 2,
    "fontsize": 7,
    "bbox": {"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none"},
}
GALLERY_TITLE = {"fontsize": 7}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--history", type=Path, required=True)
    parser.add_argument("--selection", type=Path, required=True)
    parser.add_argument(
        "--eval", type=Path, required=True, help=f"evaluate's folder: {EvalFolder('.').names()}"
    )
    parser.add_argument("--output", type=Path, required=True)


def main(args: argparse.Namespace) -> None:
    for path in plot_run(args.history, args.selection, args.eval, args.output):
        print(f"wrote {path}")


def _bare_figure(figsize: tuple[float, float]) -> Figure:
    # A bare Figure (no pyplot): no global backend switch and nothing to close, so it works
    # on display-less nodes and inside a user's notebook alike. The constrained layout keeps
    # every label inside the PNG.
    return Figure(figsize=figsize, layout="constrained")


@functools.cache
def _cjk_font() -> str | None:
    """The first of `CJK_FONTS` that matplotlib knows of here (its font list is read once).
    One is enough: each has the CJK characters, and matplotlib looks up every font a text is
    given (and warns of one without a regular weight) whether the text needs it or not."""
    installed = {font.name for font in font_manager.fontManager.ttflist}
    return next((family for family in CJK_FONTS if family in installed), None)


def _is_wide(char: str) -> bool:
    """A CJK character (ideograph, kana, hangul, full-width form): twice a Latin one's width."""
    return unicodedata.east_asian_width(char) in "WF"


P = ParamSpec("P")


def _with_fallback_fonts(build: Callable[P, Figure]) -> Callable[P, Figure]:
    """Gives each text of the built figure that has a CJK character (a class or run name) the
    installed CJK font after its own, so that it draws: without one such a character is a box
    and matplotlib warns. Per text, so that matplotlib's settings stay the user's; and only
    those texts, as a font without a regular weight (WenQuanYi Zen Hei's is medium) makes
    matplotlib log a warning for each text it is offered to."""

    @functools.wraps(build)
    def built(*args: P.args, **kwargs: P.kwargs) -> Figure:
        fig = build(*args, **kwargs)
        if fallback := _cjk_font():
            for text in fig.findobj(Text):
                if any(map(_is_wide, text.get_text())):
                    text.set_fontfamily([*text.get_fontfamily(), fallback])
        return fig

    return built


def _grapheme_columns(name: str) -> list[tuple[str, int]]:
    """`name`'s characters, each with the combining marks after it (so that a cut never parts
    a letter from its accent), and the columns each takes: two for a wide (CJK) one."""
    characters: list[tuple[str, int]] = []
    for char in name:
        if characters and unicodedata.combining(char):
            characters[-1] = (characters[-1][0] + char, characters[-1][1])
        else:
            characters.append((char, 2 if _is_wide(char) else 1))
    return characters


def _columns(text: str) -> int:
    return sum(width for _, width in _grapheme_columns(text))


def _shortened(name: str, columns: int) -> str:
    """`name` in full if it takes at most `columns` columns, else as many of its first and
    last characters (taken in turn, the first first) as fit around `ELLIPSIS`: both ends, as
    names of one family often share a start ("Golden Retriever ...") or an end."""
    characters = _grapheme_columns(name)
    if sum(width for _, width in characters) <= columns:
        return name
    room = columns - _columns(ELLIPSIS)
    start, end = 0, len(characters)  # characters[:start] and characters[end:] are kept
    while start < end:
        front = start <= len(characters) - end
        width = characters[start if front else end - 1][1]
        if width > room:
            break
        room -= width
        start, end = (start + 1, end) if front else (start, end - 1)
    kept = [char for char, _ in characters]
    return "".join(kept[:start]) + ELLIPSIS + "".join(kept[end:])


def display_names(names: Iterable[str]) -> dict[str, str]:
    """Each class name as drawn: `_shortened` to `NAME_COLUMNS` columns, for display only.
    Names that would then look alike (they differ only in the middle) are given one column
    more at a time until they differ, so that no two classes are ever drawn as one."""
    shown = {name: _shortened(name, NAME_COLUMNS) for name in names}
    for columns in range(NAME_COLUMNS + 1, max(map(_columns, shown), default=0) + 1):
        alike = Counter(shown.values())
        crowded = [name for name, label in shown.items() if alike[label] > 1]
        if not crowded:
            break
        shown.update({name: _shortened(name, columns) for name in crowded})
    return shown


def _grid(ax: Axes, axis: str = "both") -> None:
    """Faint, so that it helps to read values off without competing with the data."""
    ax.grid(alpha=0.3, axis=axis)


def _figure(title: str, ylabel: str, figsize: tuple[float, float] = FIGSIZE) -> tuple[Figure, Axes]:
    fig = _bare_figure(figsize)
    ax = fig.subplots()
    ax.set(title=title, xlabel="epoch", ylabel=ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _grid(ax)
    return fig, ax


def save(fig: Figure, path: Path) -> Path:
    """`fig` as a PNG at `DPI`, whatever a matplotlibrc says, written atomically."""
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
    # A power of ten from 1e-3 down: matplotlib waits until 1e-5 and labels 0.0001, 0.0002, ...
    ax.yaxis.get_major_formatter().set_powerlimits((-3, 3))
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
            linestyle="none",  # the legend shows the star alone
            color=HIGHLIGHT,
            label=f"selected: epoch {best['epoch']}, top-1 {top1:.4f}",
            **STAR,
        )
    ax.set_ylim(0, 1.02)  # a little headroom so a top-5 of 1.0 is not cut by the frame
    ax.legend(loc="lower right")
    return fig


def confused_pairs(confusion: np.ndarray, limit: int) -> list[tuple[int, int, int]]:
    """The `limit` largest off-diagonal counts as (true, predicted, count), largest first,
    ties in class order (true class, then predicted class); pairs never confused are left out."""
    off = np.array(confusion)
    np.fill_diagonal(off, 0)
    pairs = [(int(i), int(j), int(off[i, j])) for i, j in np.argwhere(off)]  # in class order
    pairs.sort(key=lambda pair: -pair[2])  # a stable sort: ties stay in class order
    return pairs[:limit]


def row_shares(confusion: np.ndarray) -> np.ndarray:
    """Each count as a share of its true class's images (rows of an absent class: 0)."""
    totals = confusion.sum(axis=1, keepdims=True)
    return np.divide(confusion, totals, out=np.zeros(confusion.shape), where=totals > 0)


def _tick_size(rows: int) -> float:
    """Smaller labels only where many must fit: larger ones read better."""
    return TICK_SIZE if rows <= ROOMY_TICKS else SMALL_TICK_SIZE


@_with_fallback_fonts
def confusion_figure(class_names: list[str], confusion: np.ndarray) -> Figure:
    """Up to `MANY_CLASSES` classes: the heatmap of the row-normalised confusion matrix (counts
    in the cells up to `COUNTS_UP_TO` classes, none for zero) with the `PAIRS_BESIDE` most
    confused pairs listed beside it; above, a bar chart of the `PAIRS_INSTEAD` most confused
    pairs. Long class names are shortened (`display_names`)."""
    fig = _bare_figure(CONFUSION_FIGSIZE)
    n, total = len(class_names), int(confusion.sum())
    label_of = display_names(class_names)
    labels = [label_of[name] for name in class_names]
    shares = row_shares(confusion)
    if n > MANY_CLASSES:
        _pair_bars(fig.subplots(), labels, confusion, shares)
        return fig
    heat, listing = fig.subplots(1, 2, width_ratios=HEATMAP_WIDTHS)
    image = heat.imshow(shares, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    fig.colorbar(image, shrink=0.8, label="share of the true class's images")
    size = _tick_size(n)
    upright = max(map(_columns, labels)) * n <= UPRIGHT_CHARACTERS
    heat.set_xticks(range(n), labels, fontsize=size, rotation=0 if upright else 90)
    heat.set_yticks(range(n), labels, fontsize=size)
    heat.set(
        title=f"Confusion matrix, test split ({total} images)",
        xlabel="predicted class",
        ylabel="true class",
    )
    if n <= COUNTS_UP_TO:
        for i, j in np.argwhere(confusion):
            # White on the darker half of the colour scale, black on the lighter half.
            color = "white" if shares[i, j] > 0.5 else "black"
            heat.text(j, i, str(confusion[i, j]), color=color, **CELL_COUNT)
    listing.set_axis_off()
    listing.set_title(
        "Most confused: true → predicted,\nimages (share of the true class)", **LISTING_TITLE
    )
    lines = [
        f"{labels[i]} → {labels[j]}: {count} ({shares[i, j]:.0%})"
        for i, j, count in confused_pairs(confusion, PAIRS_BESIDE)
    ] or ["no confusions"]
    for row, line in enumerate(lines):
        listing.text(0, 1 - 0.05 * row, line, transform=listing.transAxes, **LISTING_LINE)
    return fig


def _pair_bars(ax: Axes, labels: list[str], confusion: np.ndarray, shares: np.ndarray) -> None:
    """`labels`: the classes' names as drawn."""
    pairs = confused_pairs(confusion, PAIRS_INSTEAD)
    bars = ax.barh(range(len(pairs)), [count for *_, count in pairs], **PAIR_BARS)
    ax.bar_label(bars, [f"{shares[i, j]:.0%} of {labels[i]}" for i, j, _ in pairs], **PAIR_LABEL)
    ax.set_yticks(range(len(pairs)), [f"{labels[i]} → {labels[j]}" for i, j, _ in pairs])
    ax.invert_yaxis()  # the largest at the top
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(
        title=f"The {len(pairs)} most confused pairs of {len(labels)} classes, "
        f"test split ({int(confusion.sum())} images)",
        xlabel="test images of the true class predicted as the other",
        ylabel="true class → predicted class",
    )


@_with_fallback_fonts
def per_class_figure(
    accuracy: dict[str, float | None], counts: dict[str, int], top1: float
) -> Figure:
    """Per-class test accuracy as horizontal bars, best at the top (ties in class order), each
    class labelled with its number of test images; above `MANY_CLASSES` classes, the
    `EXTREMES` best and the `EXTREMES` worst. Classes without test images have no accuracy
    and are left out. Long class names are shortened (`display_names`)."""
    fig = _bare_figure(PER_CLASS_FIGSIZE)
    ax = fig.subplots()
    scored = [(name, acc) for name, acc in accuracy.items() if acc is not None]
    ranked = sorted(scored, key=lambda item: -item[1])  # stable: class order for ties
    label_of = display_names(accuracy)
    labelled = [(f"{label_of[name]} (n={counts[name]})", acc) for name, acc in ranked]
    if len(ranked) > MANY_CLASSES:
        gap = (f"({len(ranked) - 2 * EXTREMES} more)", None)
        shown = [*labelled[:EXTREMES], gap, *labelled[-EXTREMES:]]
        title = f"Test accuracy, the {EXTREMES} best and worst of {len(ranked)} classes"
    else:
        shown, title = labelled, f"Test accuracy per class ({len(ranked)} classes)"
    if len(accuracy) > len(scored):
        title += f"; {len(accuracy) - len(scored)} without test images"
    bars = [(y, acc) for y, (_, acc) in enumerate(shown) if acc is not None]
    drawn = ax.barh([y for y, _ in bars], [acc for _, acc in bars])
    ax.bar_label(drawn, fmt="%.2f", **VALUE_LABEL)
    ax.set_yticks(range(len(shown)), [label for label, _ in shown], fontsize=_tick_size(len(shown)))
    ax.invert_yaxis()  # the best at the top
    ax.axvline(top1, label=f"test top-1 {top1:.4f}", **TOP1_LINE)
    # Room after a full bar for its value; no tick beyond an accuracy of 1.
    ax.set(title=title, xlabel="accuracy on the class's test images", xlim=(0, 1.08))
    _grid(ax, "x")
    ax.legend(loc="lower right")
    return fig


@_with_fallback_fonts
def mistakes_figure(rows: list[dict[str, str]], images: np.ndarray, num_images: int) -> Figure:
    """The images of the mistakes table in its order (the most confident first), as the network
    saw them, each titled with its true class, the predicted class and its probability (long
    class names shortened: `display_names`). The grid has as many rows as the mistakes fill,
    and the figure grows with them, so that a run with a few mistakes gets no blank canvas."""
    if len(rows) != len(images) or len(rows) > MISTAKES_KEPT:
        raise ValueError(
            f"{len(rows)} mistakes and {len(images)} images: expected as many of each, at most "
            f"{MISTAKES_KEPT}"
        )
    grid_rows = math.ceil(len(rows) / GALLERY_COLUMNS)
    fig = _bare_figure((GALLERY_WIDTH, GALLERY_HEADER + grid_rows * GALLERY_ROW_HEIGHT))
    if not rows:
        fig.suptitle(f"No mistakes among the {num_images} test images")
        return fig
    fig.suptitle(
        f"The {len(rows)} most confident mistakes among the {num_images} test images "
        "(as the network saw them, most confident first)"
    )
    label_of = display_names(name for row in rows for name in (row["true"], row["predicted"]))
    axes = fig.subplots(grid_rows, min(len(rows), GALLERY_COLUMNS), squeeze=False).ravel()
    for ax in axes:
        ax.set_axis_off()
    for index, row in enumerate(rows):
        axes[index].imshow(images[index], interpolation="nearest")
        axes[index].set_title(
            f"true {label_of[row['true']]}\npredicted {label_of[row['predicted']]}\n"
            f"p = {float(row['probability']):.3f}",
            **GALLERY_TITLE,
        )
    return fig


@_with_fallback_fonts
def comparison_figure(
    selections: dict[str, list[dict[str, str]]], test_top1: dict[str, float]
) -> Figure:
    """Every run's validation top-1 per epoch on shared axes, its selected checkpoint
    starred, the legend in the order given (the summary's: best test top-1 first)."""
    fig, ax = _figure(
        "Validation top-1 per epoch, runs side by side", "val top-1", COMPARISON_FIGSIZE
    )
    for name, rows in selections.items():
        placed = [row for row in rows if row["epoch"]]
        (line,) = ax.plot(
            [int(row["epoch"]) for row in placed],
            [float(row["val_top1"]) for row in placed],
            marker="o",
            label=f"{name}: test top-1 {test_top1[name]:.4f}",
        )
        best = selected_row(rows, f"run {name}'s selection")
        if best["epoch"]:
            ax.plot(int(best["epoch"]), float(best["val_top1"]), color=line.get_color(), **STAR)
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower right", title="run (selected checkpoint starred)")
    return fig


#: The figures' file names (`layout` owns them), by which the functions below return them.
NAMES = PlotsFolder(".")


def eval_figures(eval_dir: Path) -> dict[str, Figure]:
    """The test-set figures of one run by file name: the confusion matrix, the per-class
    accuracy and the mistakes, from `evaluate`'s folder."""
    folder = EvalFolder(eval_dir)
    metrics = read_metrics(folder.metrics, METRICS_KEYS)
    names, confusion = read_confusion(folder.confusion)
    if list(metrics["per_class_accuracy"]) != names:
        raise ValueError(f"{folder.metrics} and {folder.confusion} name other classes")
    counts = dict(zip(names, confusion.sum(axis=1).tolist(), strict=True))
    rows, images = read_mistakes(folder)
    return {
        NAMES.confusion.name: confusion_figure(names, confusion),
        NAMES.per_class.name: per_class_figure(
            metrics["per_class_accuracy"], counts, metrics["top1"]
        ),
        NAMES.mistakes.name: mistakes_figure(rows, images, metrics["num_images"]),
    }


def run_figures(history: Path, selection: Path) -> dict[str, Figure]:
    """The training figures of one run by file name: loss, learning rate and validation
    accuracy.

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
        NAMES.loss.name: _plot_loss(hist, sel),
        NAMES.lr.name: _plot_lr(hist),
        NAMES.accuracy.name: _plot_accuracy(sel, best),
    }


def plot_run(history: Path, selection: Path, eval_dir: Path, out_dir: Path) -> list[Path]:
    """Write the `run_figures` and `eval_figures` of one run to `out_dir`; return their
    paths. Every file is read (and checked) before anything is written."""
    figures = {**run_figures(history, selection), **eval_figures(eval_dir)}
    return [save(fig, Path(out_dir) / name) for name, fig in figures.items()]
