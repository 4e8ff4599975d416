"""Run plots, from small files shaped like the pipeline's own: what each figure draws (titles,
axes, the plotted data, the selected checkpoint's star; the heatmap's array, the bars' lengths,
the gallery's images and labels), that crowded figures stay legible (no text cut off or written
over another, counts readable on their cells, pixels unblended, class names of any length and
script drawn alike in every figure) and the PNG files `vgg16 plot` writes. Cosmetic choices
(plot.HIGHLIGHT, plot.STAR, ...) are not pinned."""

import csv
import io
import itertools
import json
import logging
import math
import re
import warnings
from pathlib import Path
from unittest import mock

import matplotlib
import numpy as np
import pytest
from matplotlib import font_manager
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex, to_rgb
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.text import Text
from matplotlib.transforms import Bbox
from PIL import Image
from test_summary import HISTORY, SELECTION, selection_csv

from vgg16.cli import main
from vgg16.plot import (
    CJK_FONTS,
    HIGHLIGHT,
    NAME_COLUMNS,
    UPRIGHT_CHARACTERS,
    comparison_figure,
    confusion_figure,
    display_names,
    eval_figures,
    mistakes_figure,
    per_class_figure,
    plot_run,
    row_shares,
    run_figures,
)
from vgg16.tables import MISTAKES_KEPT

EPOCHS = [1.0, 2.0, 3.0, 4.0]
PLOTS = ["loss.png", "lr.png", "accuracy.png"]


def _files(folder: Path, history: str = HISTORY, selection: str = SELECTION) -> tuple[Path, Path]:
    folder.mkdir(parents=True)
    (folder / "history.csv").write_text(history)
    (folder / "selection.csv").write_text(selection)
    return folder / "history.csv", folder / "selection.csv"


def _axes(tmp_path: Path, plot: str, history: str = HISTORY, selection: str = SELECTION) -> Axes:
    """The single Axes of one of the run's figures, built from the files as `vgg16 plot` is."""
    figure = run_figures(*_files(tmp_path / "run", history, selection))[plot]
    (ax,) = figure.axes
    return ax


def _curves(ax: Axes) -> list[tuple[list[float], list[float], str]]:
    """(x, y, marker) of every line drawn, in drawing order."""
    return [
        ([float(x) for x in line.get_xdata()], [float(y) for y in line.get_ydata()],
         line.get_marker())
        for line in ax.get_lines()
    ]  # fmt: skip


def _legend(ax: Axes) -> list[str]:
    return [text.get_text() for text in ax.get_legend().get_texts()]


def _assert_in_the_lower_right_corner(legend) -> None:
    """Within 10 pixels of the frame's lower right corner, once drawn."""
    ax = legend.axes
    ax.figure.draw_without_rendering()
    box, frame = legend.get_window_extent(), ax.get_window_extent()
    assert frame.x1 - 10 < box.x1 < frame.x1
    assert frame.y0 < box.y0 < frame.y0 + 10


def _with_lr(lrs: list[float]) -> str:
    """HISTORY with its lr column replaced by `lrs`."""
    header, *rows = HISTORY.splitlines()
    lines = [header]
    for row, lr in zip(rows, lrs, strict=True):
        cells = row.split(",")
        cells[header.split(",").index("lr")] = str(lr)
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def test_each_figure_has_its_title_and_axis_labels(tmp_path: Path):
    figures = run_figures(*_files(tmp_path / "run"))
    assert list(figures) == PLOTS
    labels = {name: (ax.get_title(), ax.get_xlabel(), ax.get_ylabel())
              for name, (ax,) in ((name, fig.axes) for name, fig in figures.items())}  # fmt: skip
    assert labels == {
        "loss.png": ("Loss", "epoch", "loss (log scale)"),
        "lr.png": ("Learning rate (last step of each epoch)", "epoch", "learning rate"),
        "accuracy.png": ("Validation accuracy per checkpoint", "epoch", "accuracy"),
    }


@pytest.mark.parametrize("plot", PLOTS)
def test_every_figure_ticks_whole_epochs_with_a_faint_grid_and_constrained_layout(
    tmp_path: Path, plot: str
):
    """Epoch 2.5 means nothing, so only whole epochs are ticked (the default locator would tick
    every half epoch for four epochs); constrained layout keeps labels inside the PNG."""
    ax = _axes(tmp_path, plot)
    low, high = ax.get_xlim()
    assert [t for t in ax.get_xticks() if low <= t <= high] == EPOCHS
    for grid in (ax.xaxis.get_gridlines()[0], ax.yaxis.get_gridlines()[0]):
        assert grid.get_visible() and grid.get_alpha() == 0.3
    assert isinstance(ax.figure.get_layout_engine(), ConstrainedLayoutEngine)


def test_the_loss_figure_draws_train_loss_per_epoch_and_val_loss_per_checkpoint_on_log_y(
    tmp_path: Path,
):
    ax = _axes(tmp_path, "loss.png")
    assert _curves(ax) == [
        (EPOCHS, [2.22645, 1.079721, 0.483118, 0.318211], "o"),  # history.csv's loss
        (EPOCHS, [26.7165, 7.1777, 0.9414, 0.1542], "s"),  # selection.csv's val_loss
    ]
    assert ax.get_yscale() == "log"
    assert _legend(ax) == ["train (mean over the epoch)", "val (cross-entropy)"]


def test_the_lr_figure_draws_the_last_lr_of_each_epoch_without_a_legend(tmp_path: Path):
    ax = _axes(tmp_path, "lr.png")
    assert _curves(ax) == [(EPOCHS, [0.048, 0.02907, 0.01313, 0.003445], "o")]
    assert ax.get_legend() is None


@pytest.mark.parametrize(
    ("lrs", "offset", "labels"),
    [
        ([0.048, 0.02907, 0.01313, 0.003445], "", ["0.01", "0.02", "0.03", "0.04", "0.05"]),
        ([0.008, 0.006, 0.004, 0.002], "1e−3", ["2", "3", "4", "5", "6", "7", "8"]),
    ],
)
def test_lr_tick_labels_switch_to_a_power_of_ten_below_0_01(
    tmp_path: Path, lrs: list[float], offset: str, labels: list[str]
):
    """Scientific labels from 1e-3 down (matplotlib's default waits until 1e-5, labelling
    0.0001, 0.0002, ...), plain decimals above."""
    ax = _axes(tmp_path, "lr.png", history=_with_lr(lrs))
    ax.figure.draw_without_rendering()
    assert ax.yaxis.get_offset_text().get_text() == offset
    low, high = ax.get_ylim()
    shown = [label for label in ax.get_yticklabels() if low <= label.get_position()[1] <= high]
    assert [label.get_text() for label in shown] == labels


def test_the_accuracy_figure_stars_the_checkpoint_select_chose(tmp_path: Path):
    """Select chose epoch 3 (top-1 0.7847), not the highest top-1 (epoch 4): the star shows
    select's choice."""
    ax = _axes(tmp_path, "accuracy.png")
    assert _curves(ax) == [
        (EPOCHS, [0.1111, 0.3403, 0.7847, 0.9444], "o"),
        (EPOCHS, [0.5903, 0.7917, 1.0, 0.9931], "s"),
        ([3.0], [0.7847], "*"),
    ]
    top1, top5, star = ax.get_lines()
    assert star.get_linestyle() == "None"  # the legend shows the star alone, not a line
    assert star.get_markersize() > max(top1.get_markersize(), top5.get_markersize())
    assert to_hex(star.get_color()) == to_hex(HIGHLIGHT)  # as the test top-1 per class
    assert _legend(ax) == ["top-1", "top-5", "selected: epoch 3, top-1 0.7847"]
    assert ax.get_ylim() == (0.0, 1.02)  # a top-5 of 1.0 (epoch 3) is not cut by the frame


def test_the_accuracy_legend_stays_in_the_lower_right_corner(tmp_path: Path):
    """A fixed place, even for a run whose accuracy collapses and passes through that corner
    (matplotlib's "best" would move it to the empty upper right)."""
    collapsing = selection_csv(1, [(1, 0.62, 0.95, 1.1), (2, 0.35, 0.7, 1.9),
                                   (3, 0.1, 0.5, 2.3), (4, 0.1, 0.5, 2.3)])  # fmt: skip
    ax = _axes(tmp_path, "accuracy.png", selection=collapsing)
    _assert_in_the_lower_right_corner(ax.get_legend())


def test_a_checkpoint_without_an_epoch_is_left_out_and_gets_no_star(tmp_path: Path):
    """The zoo's checkpoint has no epoch to place it at, even when select chose it."""
    zoo = SELECTION.replace("True", "False") + "vgg16_zoo.ckpt,,0.99,1.0,0.05,True\n"
    figures = run_figures(*_files(tmp_path / "run", selection=zoo))
    accuracy, loss = figures["accuracy.png"].axes[0], figures["loss.png"].axes[0]
    assert _curves(accuracy) == [
        (EPOCHS, [0.1111, 0.3403, 0.7847, 0.9444], "o"),
        (EPOCHS, [0.5903, 0.7917, 1.0, 0.9931], "s"),
    ]
    assert _legend(accuracy) == ["top-1", "top-5"]
    assert _curves(loss)[1] == (EPOCHS, [26.7165, 7.1777, 0.9414, 0.1542], "s")


def test_a_run_of_zoo_checkpoints_only_still_plots_its_training(tmp_path: Path):
    """Nothing to place on the epoch axis for the val curves (a damaged checkpoint has no
    epoch and no scores either); the history is still drawn."""
    zoo = ("checkpoint,epoch,val_top1,val_top5,val_loss,selected,damaged\n"
           "vgg16_zoo.ckpt,,0.9,1.0,0.1,True,\n"
           "vgg16-epoch0002.ckpt,,,,,False,it ends without a CRC32 (cut short?)\n")  # fmt: skip
    figures = run_figures(*_files(tmp_path / "run", selection=zoo))
    assert _curves(figures["accuracy.png"].axes[0]) == [([], [], "o"), ([], [], "s")]
    assert _curves(figures["loss.png"].axes[0])[0][1] == [2.22645, 1.079721, 0.483118, 0.318211]


def test_plot_run_writes_valid_pngs_and_no_temporary_files(tmp_path: Path):
    history, selection = _files(tmp_path / "run")
    out_dir = tmp_path / "plots"
    paths = plot_run(history, selection, _eval_folder(tmp_path / "eval"), out_dir)
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(p.name for p in paths)
    for path in paths:
        with Image.open(path) as image:
            image.verify()


def test_the_png_size_does_not_depend_on_the_users_matplotlib_settings(tmp_path: Path):
    """Each figure's inches at 100 dpi whatever a matplotlibrc says (here 200 and 300 dpi), so
    the report's images are the same on every machine."""
    history, selection = _files(tmp_path / "run")
    with matplotlib.rc_context({"figure.dpi": 200, "savefig.dpi": 300}):
        paths = plot_run(history, selection, _eval_folder(tmp_path / "eval"), tmp_path / "plots")
    for path in paths:
        with Image.open(path) as image:
            assert image.size == SIZES[path.name]


def _plot_argv(history: Path, selection: Path, eval_dir: Path, out_dir: Path) -> list[str]:
    return ["plot", "--history", str(history), "--selection", str(selection),
            "--eval", str(eval_dir), "--output", str(out_dir)]  # fmt: skip


def test_the_plot_command_writes_the_pngs_and_names_them(tmp_path: Path, capsys):
    history, selection = _files(tmp_path / "run")
    out_dir = tmp_path / "plots"
    argv = _plot_argv(history, selection, _eval_folder(tmp_path / "eval"), out_dir)
    assert main(argv) == 0
    assert capsys.readouterr().out == "".join(f"wrote {out_dir / name}\n" for name in SIZES)
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(SIZES)


def test_the_plot_command_names_a_missing_history(tmp_path: Path, capsys):
    _, selection = _files(tmp_path / "run")
    missing = tmp_path / "nowhere" / "history.csv"
    argv = _plot_argv(missing, selection, _eval_folder(tmp_path / "eval"), tmp_path / "plots")
    assert main(argv) == 1
    assert capsys.readouterr().err == f"vgg16 plot: error: {missing} does not exist\n"
    assert not (tmp_path / "plots").exists()


def test_a_history_without_loss_names_the_file_and_column(tmp_path: Path):
    history, selection = _files(tmp_path / "run", history=HISTORY.replace("loss", "x_loss", 1))
    with pytest.raises(ValueError, match=f"{history} has no column loss"):
        plot_run(history, selection, _eval_folder(tmp_path / "eval"), tmp_path / "plots")
    assert not (tmp_path / "plots").exists()


def test_a_selection_without_a_selected_row_is_refused(tmp_path: Path):
    history, selection = _files(tmp_path / "run", selection=SELECTION.replace("True", "False"))
    assert "True" not in selection.read_text()
    with pytest.raises(ValueError, match=f"{selection}: expected exactly one selected row"):
        plot_run(history, selection, _eval_folder(tmp_path / "eval"), tmp_path / "plots")


# The test-set figures, from a hand-made confusion matrix. Classes: cat, dog, ant, bee; ant
# has no test image.
NAMES = ["cat", "dog", "ant", "bee"]
CONFUSION_CSV = """true\\predicted,cat,dog,ant,bee
cat,5,0,3,1
dog,2,6,0,0
ant,0,0,0,0
bee,0,3,1,4
"""
#: Each count over its row's total (9, 8, 0, 8), by hand.
SHARES = [[5 / 9, 0, 3 / 9, 1 / 9], [2 / 8, 6 / 8, 0, 0], [0, 0, 0, 0], [0, 3 / 8, 1 / 8, 4 / 8]]
#: (x, y) = (predicted, true) of every non-zero cell, and its count.
CELLS = {(0, 0): "5", (2, 0): "3", (3, 0): "1", (0, 1): "2", (1, 1): "6", (1, 3): "3",
         (2, 3): "1", (3, 3): "4"}  # fmt: skip
#: Off-diagonal counts, largest first, ties (3 and 3, 1 and 1) in class order.
PAIRS = ["cat → ant: 3 (33%)", "bee → dog: 3 (38%)", "dog → cat: 2 (25%)", "cat → bee: 1 (11%)",
         "bee → ant: 1 (12%)"]  # fmt: skip
METRICS = {"top1": 0.6, "top5": 1.0, "num_images": 25,
           "per_class_accuracy": {"cat": 5 / 9, "dog": 0.75, "ant": None, "bee": 0.5}}  # fmt: skip
MISTAKE_ROWS = [
    {"index": "7", "true": "cat", "predicted": "ant", "probability": "0.9876",
     "true_probability": "0.01"},
    {"index": "3", "true": "bee", "predicted": "dog", "probability": "0.5004",
     "true_probability": "0.4"},
]  # fmt: skip
#: The PNGs' sizes in pixels; the gallery of MISTAKE_ROWS is one row (a full one is 1200 x 750).
SIZES = {"loss.png": (600, 400), "lr.png": (600, 400), "accuracy.png": (600, 400),
         "confusion.png": (1200, 700), "per_class.png": (800, 700),
         "mistakes.png": (1200, 225)}  # fmt: skip


def _pixels(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)


def _eval_folder(folder: Path, mistakes: list[dict] = MISTAKE_ROWS) -> Path:
    """An evaluate folder as the pipeline writes it, by hand."""
    folder.mkdir(parents=True)
    (folder / "confusion.csv").write_text(CONFUSION_CSV)
    (folder / "metrics.json").write_text(json.dumps(METRICS))
    columns = "index,true,predicted,probability,true_probability"
    lines = [",".join(row[c] for c in columns.split(",")) for row in mistakes]
    (folder / "mistakes.csv").write_text("\n".join([columns, *lines]) + "\n")
    index = np.array([int(row["index"]) for row in mistakes], dtype=np.int64)
    np.savez(folder / "mistakes.npz", images=_pixels(len(mistakes)), index=index)
    return folder


def _heatmap(figure) -> tuple[Axes, Axes]:
    """The heatmap's axes and the axes listing the confused pairs beside it."""
    (heat,) = [ax for ax in figure.axes if ax.get_images()]
    (listing,) = [ax for ax in figure.axes if ax.get_title(loc="left").startswith("Most")]
    return heat, listing


def _ticks(axis) -> list[str]:
    return [label.get_text() for label in axis.get_ticklabels()]


def _bars(ax: Axes) -> list[tuple[float, float]]:
    """(y, length) of every horizontal bar, top to bottom."""
    return sorted((p.get_y() + p.get_height() / 2, p.get_width()) for p in ax.patches)


def _counts() -> np.ndarray:
    """CONFUSION_CSV's counts."""
    return np.array([row.split(",")[1:] for row in CONFUSION_CSV.splitlines()[1:]], dtype=int)


def _drawn_texts(figure: Figure) -> list[Text]:
    """Every text a reader sees, in drawing order: drawn (tick labels outside the view are
    not), visible and not empty."""
    drawn = []
    draw = Text.draw

    def record(text: Text, renderer) -> None:
        if text.get_visible() and text.get_text():
            drawn.append(text)
        draw(text, renderer)

    with mock.patch.object(Text, "draw", record):
        figure.draw_without_rendering()
    return drawn


def _rendered(figure: Figure) -> np.ndarray:
    """The figure's RGB pixels as its PNG has them, the top row first."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3]


def _within(pixels: np.ndarray, box: Bbox, margin: int = 2) -> np.ndarray:
    """The pixels of `box` (display coordinates: from the bottom left), `margin` pixels in from
    its edges, where antialiasing blends it with what surrounds it."""
    top = pixels.shape[0] - box.y1
    rows = slice(math.ceil(top) + margin, math.floor(top + box.height) - margin)
    return pixels[rows, math.ceil(box.x0) + margin : math.floor(box.x1) - margin]


def _colours(pixels: np.ndarray) -> set[tuple[int, ...]]:
    return {tuple(int(c) for c in pixel) for pixel in pixels.reshape(-1, pixels.shape[-1])}


def _lightness(rgba: tuple[float, ...]) -> float:
    """Relative luminance (Rec. 709 weights) of a colour."""
    red, green, blue = rgba[:3]
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def test_the_confusion_heatmap_colours_each_row_by_its_share_and_writes_the_counts(
    tmp_path: Path,
):
    figure = eval_figures(_eval_folder(tmp_path / "eval"))["confusion.png"]
    heat, listing = _heatmap(figure)
    shares = heat.get_images()[0].get_array()
    assert not np.ma.getmaskarray(shares).any()  # ant's row is drawn, as zeros, not left blank
    np.testing.assert_allclose(shares, SHARES)
    assert heat.get_images()[0].get_clim() == (0, 1)
    assert _ticks(heat.xaxis) == NAMES and _ticks(heat.yaxis) == NAMES
    assert (heat.get_xlabel(), heat.get_ylabel()) == ("predicted class", "true class")
    assert heat.get_title() == "Confusion matrix, test split (25 images)"
    assert {text.get_position(): text.get_text() for text in heat.texts} == CELLS
    assert [text.get_text() for text in listing.texts] == PAIRS


def test_a_confusion_matrix_without_confusions_says_so():
    figure = confusion_figure(["a", "b"], np.array([[3, 0], [0, 2]]))
    _, listing = _heatmap(figure)
    assert [text.get_text() for text in listing.texts] == ["no confusions"]


def test_a_class_with_one_image_fills_its_cell_and_a_class_without_images_stays_empty():
    """Shares by hand: 1 of 1; 2 of 4 twice; no images: zeros, not 0/0 (the heatmap would leave
    a NaN cell blank)."""
    shares = row_shares(np.array([[1, 0, 0], [2, 2, 0], [0, 0, 0]]))
    np.testing.assert_array_equal(shares, [[1, 0, 0], [0.5, 0.5, 0], [0, 0, 0]])


def test_the_colour_scale_runs_from_none_to_all_of_a_class_whatever_the_shares():
    """Here no cell is 0 (shares 0.25 and 0.75): the lightest colour must still mean none of
    the class's images, so that colours compare across runs; the colour bar says so."""
    heat, _ = _heatmap(confusion_figure(["a", "b"], np.array([[3, 1], [1, 3]])))
    (image,) = heat.get_images()
    assert image.get_clim() == (0, 1)
    assert image.colorbar.ax.get_ylim() == (0, 1)
    assert image.colorbar.ax.get_ylabel() == "share of the true class's images"


def test_a_larger_share_is_a_darker_cell_and_counts_on_the_darker_half_are_white():
    """Each count stays readable: black on the lighter half of the colour scale, white on the
    darker half (above one half: cat → cat 5/9 and dog → dog 6/8; bee → bee is 4/8)."""
    heat, _ = _heatmap(confusion_figure(NAMES, _counts()))
    (image,) = heat.get_images()
    shares = sorted({share for row in SHARES for share in row})
    lightness = [_lightness(image.to_rgba(share)) for share in shares]
    assert all(lighter > darker for lighter, darker in itertools.pairwise(lightness))
    colours = {text.get_position(): to_hex(text.get_color()) for text in heat.texts}
    assert colours == {(j, i): to_hex("white" if SHARES[i][j] > 0.5 else "black") for j, i in CELLS}


def test_each_count_is_centred_in_its_cell():
    figure = confusion_figure(NAMES, _counts())
    heat, _ = _heatmap(figure)
    figure.draw_without_rendering()
    for text in heat.texts:
        box = text.get_window_extent()
        x, y = heat.transData.transform(text.get_position())
        assert (abs((box.x0 + box.x1) / 2 - x), abs((box.y0 + box.y1) / 2 - y)) < (1, 1)


def test_the_confused_pairs_are_listed_top_down_under_their_title_on_a_bare_panel():
    figure = confusion_figure(NAMES, _counts())
    _, listing = _heatmap(figure)
    (title,) = [t for t in _drawn_texts(figure) if t.get_text() == listing.get_title(loc="left")]
    assert not listing.axison  # no frame or ticks around the text
    boxes = [text.get_window_extent() for text in [title, *listing.texts]]
    assert all(below.y1 <= above.y0 for above, below in itertools.pairwise(boxes))
    assert all(abs(box.x0 - boxes[0].x0) < 1 for box in boxes)  # aligned on the title's left


def test_the_heatmaps_cells_are_flat_whatever_a_matplotlibrc_says():
    """Every pixel of the heatmap is one of its cells' colours: no blending across cells, even
    where a matplotlibrc asks for bilinear interpolation (21 classes: no counts drawn over)."""
    with matplotlib.rc_context({"image.interpolation": "bilinear"}):
        figure = confusion_figure([f"c{i}" for i in range(21)], _chain(21))
        pixels = _rendered(figure)
    heat, _ = _heatmap(figure)
    (image,) = heat.get_images()
    cells = _colours(image.to_rgba(image.get_array(), bytes=True)[..., :3])
    assert _colours(_within(pixels, image.get_window_extent())) <= cells


def _tick_sizes(labels: list[Text]) -> set[float]:
    return {label.get_fontsize() for label in labels}


def test_tick_labels_shrink_only_above_20_rows():
    """So that 50 classes or 41 bars fit (the legibility test below); with room, larger."""

    def heatmap(n: int) -> set[float]:
        heat, _ = _heatmap(confusion_figure([f"c{i}" for i in range(n)], _chain(n)))
        return _tick_sizes([*heat.get_xticklabels(), *heat.get_yticklabels()])

    def bars(n: int) -> set[float]:
        accuracy = {f"c{i}": i / n for i in range(n)}
        (ax,) = per_class_figure(accuracy, dict.fromkeys(accuracy, 10), 0.5).axes
        return _tick_sizes(ax.get_yticklabels())

    for sizes in (heatmap, bars):
        (roomy,), (crowded,) = sizes(20), sizes(21)
        assert crowded < roomy
        assert sizes(4) == {roomy} and sizes(50) == {crowded}
    assert bars(60) == {crowded}  # 41 bars


#: Class names as people name their folders: accents, Cyrillic, CJK, spaces, mixed case, and
#: names longer than a figure has room for, two of them alike at the start.
FOLDERS = ["Golden Retriever (adult, outdoors)", "Golden Retriever (puppy, indoors)", "Ölbaum",
           "café crème", "Кошка", "chat_noir", "猫", "German Shepherd Dog (working line)",
           "Wirehaired Pointing Griffon", "Black-throated Blue Warbler"]  # fmt: skip
#: Without a CJK font, "猫" draws as a box and matplotlib warns (test_cjk_... checks that).
NO_CJK_FONT = "ignore:Glyph .* missing from font"

CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
#: As many classes of three of the widest letters as may stand upright, and one more.
UPRIGHT = ["WWW"] * (UPRIGHT_CHARACTERS // 3)
TOO_MANY_UPRIGHT = [*UPRIGHT, "WWW"]
#: The same with CJK characters, each as wide as two Latin ones.
CJK_UPRIGHT = ["猫猫"] * (UPRIGHT_CHARACTERS // 4)
TOO_MANY_CJK_UPRIGHT = [*CJK_UPRIGHT, "猫猫"]


@pytest.mark.filterwarnings(NO_CJK_FONT)
@pytest.mark.parametrize(
    ("names", "rotation"),
    [(NAMES, 0), (CIFAR10, 90), (UPRIGHT, 0), (TOO_MANY_UPRIGHT, 90), (CJK_UPRIGHT, 0),
     (TOO_MANY_CJK_UPRIGHT, 90)],
    ids=["4 short names", "CIFAR-10", "upright limit", "one more", "CJK upright limit",
         "one more CJK"],
)  # fmt: skip
def test_class_names_under_the_heatmap_stand_upright_while_they_fit(
    names: list[str], rotation: int
):
    """Short names of a few classes read upright; longer or more names turn vertical, where
    they cannot overlap (the legibility test below draws both sides of the limit)."""
    heat, _ = _heatmap(confusion_figure(names, _chain(len(names))))
    assert {label.get_rotation() for label in heat.get_xticklabels()} == {rotation}


def _chain(n: int) -> np.ndarray:
    """n classes, 50 right each; class i is taken for i + 1 (i + 1) times: the most confused
    pairs are the last ones, (n-2 → n-1) first."""
    confusion = 50 * np.eye(n, dtype=np.int64)
    for i in range(n - 1):
        confusion[i, i + 1] = i + 1
    return confusion


@pytest.mark.parametrize(("n", "counts_shown"), [(20, True), (21, False), (50, False)])
def test_counts_are_written_up_to_20_classes_and_the_heatmap_is_drawn_up_to_50(
    n: int, counts_shown: bool
):
    names = [f"c{i}" for i in range(n)]
    heat, listing = _heatmap(confusion_figure(names, _chain(n)))
    assert heat.get_images()[0].get_array().shape == (n, n)
    assert _ticks(heat.yaxis) == names
    assert len(heat.texts) == (2 * n - 1 if counts_shown else 0)
    # The k-th pair: class n-1-k taken n-k times for the next one, of its 50 + n-k images.
    assert [text.get_text() for text in listing.texts] == [
        f"c{n - 1 - k} → c{n - k}: {n - k} ({(n - k) / (50 + n - k):.0%})" for k in range(1, 11)
    ]


def test_above_50_classes_the_20_most_confused_pairs_replace_the_heatmap():
    n = 51
    names = [f"c{i}" for i in range(n)]
    figure = confusion_figure(names, _chain(n))
    assert not [ax for ax in figure.axes if ax.get_images()]
    (ax,) = figure.axes
    assert [length for _, length in _bars(ax)] == [float(50 - k) for k in range(20)]
    assert _ticks(ax.yaxis) == [f"c{49 - k} → c{50 - k}" for k in range(20)]
    assert ax.get_title() == "The 20 most confused pairs of 51 classes, test split (3825 images)"
    assert (ax.get_xlabel(), ax.get_ylabel()) == (
        "test images of the true class predicted as the other",
        "true class → predicted class",
    )
    # Class 49-k has its 50 images right and 50-k taken for the next class: 100-k in all.
    assert [text.get_text() for text in ax.texts] == [
        f"{(50 - k) / (100 - k):.0%} of c{49 - k}" for k in range(20)
    ]


def test_the_pair_counts_are_ticked_in_whole_images():
    """A few images per pair (here 2 and 1): no tick at half an image."""
    confusion = 5 * np.eye(51, dtype=np.int64)
    confusion[0, 1], confusion[1, 2] = 2, 1
    (ax,) = confusion_figure([f"c{i}" for i in range(51)], confusion).axes
    low, high = ax.get_xlim()
    ticks = [tick for tick in ax.get_xticks() if low <= tick <= high]
    assert len(ticks) >= 3 and all(tick == round(tick) for tick in ticks)


def test_per_class_accuracy_is_sorted_best_first_with_the_class_counts(tmp_path: Path):
    """ant has no test image, so no accuracy: it is left out and counted in the title."""
    figure = eval_figures(_eval_folder(tmp_path / "eval"))["per_class.png"]
    (ax,) = figure.axes
    assert _bars(ax) == [(0, 0.75), (1, pytest.approx(5 / 9)), (2, 0.5)]
    assert _ticks(ax.yaxis) == ["dog (n=8)", "cat (n=9)", "bee (n=8)"]
    assert ax.get_title() == "Test accuracy per class (3 classes); 1 without test images"
    (top1,) = ax.get_lines()
    assert list(top1.get_xdata()) == [0.6, 0.6]
    assert _legend(ax) == ["test top-1 0.6000"]
    assert [text.get_text() for text in ax.texts] == ["0.75", "0.56", "0.50"]


@pytest.mark.parametrize("n", [50, 60])
def test_above_50_classes_only_the_20_best_and_20_worst_are_shown(n: int):
    """Accuracy of class c{i} is i / 100; c0 and c1 tie at 0.5 and keep their class order."""
    accuracy = {f"c{i}": i / 100 for i in range(n)}
    accuracy["c0"] = accuracy["c1"] = 0.5
    counts = {f"c{i}": 100 + i for i in range(n)}
    (ax,) = per_class_figure(accuracy, counts, 0.3).axes
    order = sorted(accuracy, key=lambda name: -accuracy[name])
    assert order.index("c0") == order.index("c1") - 1  # tie in class order
    labels = [f"{name} (n={counts[name]})" for name in order]
    if n == 50:
        assert _ticks(ax.yaxis) == labels
        assert [length for _, length in _bars(ax)] == [accuracy[name] for name in order]
    else:
        assert _ticks(ax.yaxis) == [*labels[:20], "(20 more)", *labels[-20:]]
        shown = [*order[:20], *order[-20:]]
        assert [y for y, _ in _bars(ax)] == [*range(20), *range(21, 41)]
        assert [length for _, length in _bars(ax)] == [accuracy[name] for name in shown]
        assert ax.get_title() == "Test accuracy, the 20 best and worst of 60 classes"


def test_a_value_stays_readable_where_the_top1_line_crosses_it():
    """bee's 0.50 is written just after its bar, where a test top-1 of 0.52 passes: the line
    must not be drawn over the digits."""
    figure = per_class_figure({"dog": 0.75, "bee": 0.5}, {"dog": 8, "bee": 8}, 0.52)
    pixels = _rendered(figure)
    (ax,) = figure.axes
    (line,) = ax.get_lines()
    (value,) = [text for text in ax.texts if text.get_text() == "0.50"]
    box = value.get_window_extent()
    assert box.x0 < ax.transData.transform((0.52, 0))[0] < box.x1  # the line does cross it
    line_colour = 255 * np.array(to_rgb(line.get_color()))
    assert not (np.abs(_within(pixels, box, 0) - line_colour).max(axis=-1) < 40).any()


def test_the_top1_line_stands_out_from_the_bars(tmp_path: Path):
    (ax,) = eval_figures(_eval_folder(tmp_path / "eval"))["per_class.png"].axes
    (line,) = ax.get_lines()
    assert to_hex(line.get_color()) not in {to_hex(bar.get_facecolor()) for bar in ax.patches}


def test_the_accuracy_axis_spans_0_to_1_with_room_for_a_full_bars_value():
    """Bars read as shares of a perfect class: the axis starts at 0 and reaches 1 even when the
    best class is lower, ticks nothing above 1, and a class at 1.0 has its value in the frame;
    a faint grid across the accuracies only, none between the bars."""
    (ax,) = per_class_figure({"a": 0.75, "b": 0.5}, {"a": 4, "b": 4}, 0.6).axes
    low, high = ax.get_xlim()
    assert low == 0 and high >= 1
    assert max(tick for tick in ax.get_xticks() if low <= tick <= high) == 1
    assert ax.get_xlabel() == "accuracy on the class's test images"
    assert ax.xaxis.get_gridlines()[0].get_visible()
    assert not ax.yaxis.get_gridlines()[0].get_visible()
    figure = per_class_figure({"a": 1.0, "b": 0.5}, {"a": 4, "b": 4}, 0.6)
    (ax,) = figure.axes
    figure.draw_without_rendering()
    (full,) = [text for text in ax.texts if text.get_text() == "1.00"]
    assert full.get_window_extent().x1 < ax.get_window_extent().x1


def test_the_per_class_legend_stays_in_the_lower_right_corner(tmp_path: Path):
    """Under the worst classes' short bars, in the same place for every run (matplotlib's
    "best" would move it to the empty upper right here)."""
    (ax,) = eval_figures(_eval_folder(tmp_path / "eval"))["per_class.png"].axes
    _assert_in_the_lower_right_corner(ax.get_legend())


def test_the_gallery_shows_each_mistake_in_order_with_its_classes_and_probability(
    tmp_path: Path,
):
    figure = eval_figures(_eval_folder(tmp_path / "eval"))["mistakes.png"]
    shown = [ax for ax in figure.axes if ax.get_images()]
    assert len(figure.axes) == len(shown) == 2  # a row of two: no empty tiles
    for ax, image in zip(shown, _pixels(2), strict=True):
        np.testing.assert_array_equal(ax.get_images()[0].get_array(), image)
    assert [ax.get_title() for ax in shown] == [
        "true cat\npredicted ant\np = 0.988",
        "true bee\npredicted dog\np = 0.500",
    ]
    assert figure.get_suptitle() == (
        "The 2 most confident mistakes among the 25 test images "
        "(as the network saw them, most confident first)"
    )
    assert not any(ax.axison for ax in figure.axes)  # no frames or ticks


def test_a_network_without_mistakes_gets_a_gallery_that_says_so(tmp_path: Path):
    figure = eval_figures(_eval_folder(tmp_path / "eval", mistakes=[]))["mistakes.png"]
    assert not figure.axes
    assert figure.get_suptitle() == "No mistakes among the 25 test images"


def test_mistakes_and_images_of_other_lengths_are_refused():
    with pytest.raises(ValueError, match="2 mistakes and 1 images"):
        mistakes_figure(MISTAKE_ROWS, _pixels(1), 25)


def _mistakes(count: int) -> list[dict[str, str]]:
    """`count` rows of mistakes.csv with CIFAR-10's longest class names."""
    row = {"true": "automobile", "predicted": "airplane", "probability": "0.9999",
           "true_probability": "0.0001"}  # fmt: skip
    return [{"index": str(k), **row} for k in range(count)]


def test_the_gallery_has_room_for_every_mistake_evaluate_keeps_and_no_more():
    figure = mistakes_figure(_mistakes(MISTAKES_KEPT), _pixels(MISTAKES_KEPT), 10000)
    shown = [ax.get_images()[0].get_array() for ax in figure.axes if ax.get_images()]
    np.testing.assert_array_equal(shown, _pixels(MISTAKES_KEPT))
    more = MISTAKES_KEPT + 1
    message = (
        f"^{more} mistakes and {more} images: expected as many of each, at most {MISTAKES_KEPT}$"
    )
    with pytest.raises(ValueError, match=message):
        mistakes_figure(_mistakes(more), _pixels(more), 10000)


def _tiles(figure: Figure) -> list[Bbox]:
    """The gallery's images as drawn (in pixels from the bottom left), in drawing order."""
    figure.draw_without_rendering()
    return [ax.get_images()[0].get_window_extent() for ax in figure.axes if ax.get_images()]


@pytest.mark.parametrize("count", [1, 3, 8, 9, 17, 32])
def test_the_gallery_is_as_many_rows_of_8_as_its_mistakes_fill(count: int):
    """Left to right, then top down, 8 a row; fewer than 8 mistakes make a row of that many
    across the figure. No empty row: below the last one, less than a quarter of an image is
    left blank, and every image is over a hundred pixels a side."""
    figure = mistakes_figure(_mistakes(count), _pixels(count), 10000)
    tiles = _tiles(figure)
    columns = sorted({round(tile.x0) for tile in tiles})
    rows = sorted({round(tile.y1) for tile in tiles}, reverse=True)  # top down
    places = [(rows.index(round(tile.y1)), columns.index(round(tile.x0))) for tile in tiles]
    assert places == [divmod(k, 8) for k in range(count)]
    assert len(figure.axes) == len(rows) * len(columns)  # no column or row without an image
    first_row = tiles[: len(columns)]
    assert first_row[0].x0 == pytest.approx(figure.bbox.width - first_row[-1].x1, abs=2)
    assert min(tile.height for tile in tiles) > 100
    assert min(tile.y0 for tile in tiles) < tiles[0].height / 4


def test_the_gallery_grows_by_one_rows_height_per_row_from_a_header_without_mistakes():
    """1 and 8 mistakes make one row, 9 and 16 two, 25 and 32 four: the same height for the
    same rows, one more row's height for each row more; a run without mistakes gets the header
    (its sentence) alone."""
    heights: dict[int, set[float]] = {}
    for count in (0, 1, 8, 9, 16, 17, 25, 32):
        figure = mistakes_figure(_mistakes(count), _pixels(count), 10000)
        heights.setdefault(math.ceil(count / 8), set()).add(figure.bbox.height)
    assert [len(same) for same in heights.values()] == [1] * 5
    (header,), (one,), (two,), (three,), (four,) = heights.values()
    assert one - header == pytest.approx(two - one) == pytest.approx(three - two)
    assert four - three == pytest.approx(one - header)
    assert one - header > 100


def test_the_gallery_shows_the_networks_pixels_unblended_whatever_a_matplotlibrc_says():
    """Each 32 x 32 image is blown up to over a hundred pixels a side: every pixel drawn is one
    of the image's own colours, even where a matplotlibrc asks for bilinear smoothing."""
    with matplotlib.rc_context({"image.interpolation": "bilinear"}):
        figure = mistakes_figure(MISTAKE_ROWS, _pixels(2), 25)
        pixels = _rendered(figure)
    shown = [ax.get_images()[0] for ax in figure.axes if ax.get_images()]
    for image, original in zip(shown, _pixels(2), strict=True):
        assert _colours(_within(pixels, image.get_window_extent())) <= _colours(original)


def _long_names(n: int) -> list[str]:
    return [f"{FOLDERS[i % len(FOLDERS)]} {i}" for i in range(n)]


def _is_shortened(label: str, name: str) -> bool:
    """Whether `label` is `name` with a part of its middle replaced by an ellipsis: some of its
    start before it, some of its end after it."""
    head, ellipsis, tail = label.partition("…")
    return (
        bool(ellipsis and head and tail)
        and name.startswith(head)
        and name.endswith(tail)
        and len(head) + len(tail) < len(name)
    )


def _drawn_names(names: list[str]) -> dict[str, str]:
    """Each class name as the heatmap draws it (its rows' labels; its columns' are the same)."""
    heat, _ = _heatmap(confusion_figure(names, _chain(len(names))))
    assert _ticks(heat.xaxis) == _ticks(heat.yaxis)
    return dict(zip(names, _ticks(heat.yaxis), strict=True))


@pytest.mark.filterwarnings(NO_CJK_FONT)
def test_class_names_that_fit_are_drawn_as_named_and_longer_ones_keep_both_ends():
    """Shortened for the figures only, as much of the start and of the end as fits: the long
    FOLDERS are Latin, a column a character."""
    drawn = _drawn_names(FOLDERS)
    fitting = [name for name in FOLDERS if len(name) <= NAME_COLUMNS]
    assert fitting == ["Ölbaum", "café crème", "Кошка", "chat_noir", "猫"]
    assert [drawn[name] for name in fitting] == fitting
    for name in FOLDERS:
        if name not in fitting:
            head, _, tail = drawn[name].partition("…")
            assert _is_shortened(drawn[name], name), drawn[name]
            assert len(drawn[name]) == NAME_COLUMNS and abs(len(head) - len(tail)) <= 1
    assert len(set(drawn.values())) == len(FOLDERS)


@pytest.mark.filterwarnings(NO_CJK_FONT)
def test_every_figure_draws_a_class_under_the_same_name():
    """The heatmap's, the listing's, the pairs', the per-class bars' and the gallery's."""
    drawn = _drawn_names(FOLDERS)
    _, listing = _heatmap(confusion_figure(FOLDERS, _chain(10)))
    assert [text.get_text().rsplit(": ", 1)[0] for text in listing.texts] == [
        f"{drawn[FOLDERS[k - 1]]} → {drawn[FOLDERS[k]]}" for k in range(9, 0, -1)
    ]
    many = [f"c{i}" for i in range(41)] + FOLDERS
    (ax,) = confusion_figure(many, _chain(51)).axes
    label = {**{name: name for name in many[:41]}, **drawn}
    top = range(50, 30, -1)  # the 20 most confused pairs: (k - 1 → k), the last first
    assert _ticks(ax.yaxis) == [f"{label[many[k - 1]]} → {label[many[k]]}" for k in top]
    assert [text.get_text().split(" of ", 1)[1] for text in ax.texts] == [
        label[many[k - 1]] for k in top
    ]
    accuracy = {name: k / 10 for k, name in enumerate(FOLDERS)}
    (ax,) = per_class_figure(accuracy, dict.fromkeys(FOLDERS, 7), 0.5).axes
    assert _ticks(ax.yaxis) == [f"{drawn[name]} (n=7)" for name in reversed(FOLDERS)]
    pairs = list(zip(FOLDERS, FOLDERS[1:] + FOLDERS[:1], strict=True))
    rows = [
        {"true": true, "predicted": predicted, "probability": "0.9"} for true, predicted in pairs
    ]
    figure = mistakes_figure(rows, _pixels(len(rows)), 100)
    assert [ax.get_title() for ax in figure.axes if ax.get_images()] == [
        f"true {drawn[true]}\npredicted {drawn[predicted]}\np = 0.900" for true, predicted in pairs
    ]


def test_names_alike_but_for_their_middle_are_drawn_apart_in_every_figure():
    """Cut to the same start and end they would read as one class: they keep more of both
    ends, until they differ."""
    twins = ["Golden Retriever (adult, outdoors)", "Golden Retriever (puppy, outdoors)"]
    plots = [f"survey plot {k:02d} of the northern transect" for k in range(12)]
    for names in (twins, plots):
        drawn = _drawn_names(names)
        assert all(_is_shortened(drawn[name], name) for name in names), drawn
        assert len(set(drawn.values())) == len(names), drawn
        (ax,) = per_class_figure(dict.fromkeys(names, 0.5), dict.fromkeys(names, 3), 0.5).axes
        assert len(set(_ticks(ax.yaxis))) == len(names)
    rows = [{"true": twins[0], "predicted": twins[1], "probability": "0.9"}]
    (ax,) = mistakes_figure(rows, _pixels(1), 100).axes
    true, predicted, _ = ax.get_title().splitlines()
    assert true.removeprefix("true ") != predicted.removeprefix("predicted ")


@pytest.mark.filterwarnings(NO_CJK_FONT)
def test_a_cut_keeps_accents_on_their_letters_and_a_cjk_character_takes_two_columns():
    """An "é" written as e and a combining accent (as macOS names files) is one letter, kept
    or cut whole; a CJK character is twice as wide as a Latin one, so half as many fit."""
    accented = "e\u0301" * (NAME_COLUMNS + 4)
    spelt_apart = "cafe\u0301 cre\u0300me"  # fits: drawn exactly as named
    fits, wide = "猫" * (NAME_COLUMNS // 2), "猫" * (NAME_COLUMNS // 2 + 1)
    latin = "c" * (NAME_COLUMNS // 2 + 1)
    drawn = _drawn_names([accented, spelt_apart, fits, wide, latin])
    head, _, tail = drawn[accented].partition("…")
    assert _is_shortened(drawn[accented], accented)
    assert head.count("e") == head.count("\u0301") and tail.count("e") == tail.count("\u0301")
    assert head.count("e") + tail.count("e") == NAME_COLUMNS - 1  # letters, not code points
    assert [drawn[spelt_apart], drawn[fits], drawn[latin]] == [spelt_apart, fits, latin]
    assert _is_shortened(drawn[wide], wide)
    assert len(drawn[wide]) - 1 == (NAME_COLUMNS - 1) // 2


def test_a_cut_takes_the_first_character_first_then_alternates_by_width():
    """16 columns: the ellipsis and 15 more. 26 letters keep 8 at the start and 7 at the end;
    a CJK character takes two of the 15 wherever it is kept."""
    assert display_names(
        ["abcdefghijklmnopqrstuvwxyz", "abc" + "猫" * 10, "abcdefghijklmnop猫"]
    ) == {
        "abcdefghijklmnopqrstuvwxyz": "abcdefgh…tuvwxyz",
        "abc" + "猫" * 10: "abc猫猫…猫猫猫猫",  # 3 + 4 + 1 + 8 columns
        "abcdefghijklmnop猫": "abcdefg…klmnop猫",  # 7 + 1 + 6 + 2 columns
    }


def test_names_alike_at_16_columns_get_one_more_column_at_a_time_up_to_their_full_length():
    """At 16 columns the first pair keeps "abcdefgh" and "nopqrst", at 17 one more letter of
    the end: X or Y. The second pair differs only in its 11th of 21 letters, which no cut
    keeps: drawn in full. A name that was not alike keeps its 16 columns."""
    assert display_names(
        ["abcdefghijklXnopqrst", "abcdefghijklYnopqrst", "the quick brown fox jumps"]
    ) == {
        "abcdefghijklXnopqrst": "abcdefgh…Xnopqrst",
        "abcdefghijklYnopqrst": "abcdefgh…Ynopqrst",
        "the quick brown fox jumps": "the quic…x jumps",
    }
    middle = ["abcdefghijXklmnopqrst", "abcdefghijYklmnopqrst"]
    assert display_names(middle) == {name: name for name in middle}
    assert display_names([]) == {}


def _cjk_fonts_installed() -> set[str]:
    """The fonts matplotlib knows of here, of the families the figures fall back to, whose
    files have a glyph for 猫."""
    return {
        font.name
        for font in font_manager.fontManager.ttflist
        if font.name in CJK_FONTS and ord("猫") in font_manager.get_font(font.fname).get_charmap()
    }


#: Each figure that draws names, with CJK ones: class names, and a run's name in the comparison.
CJK_FIGURES = {
    "heatmap and listing": lambda: confusion_figure(["猫", "犬", "chat"], _chain(3)),
    "pairs": lambda: confusion_figure([*_imagenet(49), "猫", "犬"], _chain(51)),
    "per class": lambda: per_class_figure({"猫": 0.5, "犬": 0.25}, {"猫": 4, "犬": 4}, 0.4),
    "gallery": lambda: mistakes_figure(
        [{"true": "猫", "predicted": "犬", "probability": "0.9"}], _pixels(1), 10
    ),
    "comparison": lambda: comparison_figure(_runs(**{"猫犬": selection_csv(4)}), {"猫犬": 0.9}),
}


@pytest.mark.filterwarnings(NO_CJK_FONT)  # those of the draws after the one watched here
@pytest.mark.parametrize("build", CJK_FIGURES.values(), ids=CJK_FIGURES)
def test_cjk_names_draw_in_a_cjk_font_where_one_is_installed_and_as_boxes_elsewhere(build):
    """With one of the common CJK fonts installed every glyph is found (matplotlib warns of each
    it draws as a box); without, the names still draw, 猫 and 犬 as boxes, and nothing else is
    missing. The user's font comes first either way."""
    figure = build()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        figure.draw_without_rendering()
    missing = {int(code) for w in caught for code in re.findall(r"^Glyph (\d+) ", str(w.message))}
    names = [text for text in _drawn_texts(figure) if re.search("[猫犬]", text.get_text())]
    assert names
    if fonts := _cjk_fonts_installed():
        assert missing == set()
        assert all(fonts & set(text.get_fontfamily()) for text in names)
    else:
        assert missing == {ord("猫"), ord("犬")}
    default = matplotlib.rcParams["font.family"]
    assert all(text.get_fontfamily()[: len(default)] == default for text in names)


def test_figures_without_cjk_names_log_nothing_about_fonts(tmp_path: Path, caplog):
    """Whatever fonts are installed: the CJK ones are offered to CJK names only, as matplotlib
    logs a warning for each text offered a font without a regular weight (as WenQuanYi Zen
    Hei). Drawn at a font size of their own, so that no font is taken from matplotlib's cache
    of those it found for earlier figures."""
    figures = [*eval_figures(_eval_folder(tmp_path / "eval")).values(),
               *run_figures(*_files(tmp_path / "run")).values()]  # fmt: skip
    with matplotlib.rc_context({"font.size": 9.25}), caplog.at_level(logging.WARNING):
        for figure in figures:
            figure.draw_without_rendering()
    assert [record.getMessage() for record in caplog.records] == []


def test_the_figures_leave_matplotlibs_settings_as_they_were_and_a_users_font_first():
    """The fallback is the figures' own: a user's settings (here a serif font) are the same
    after a figure is built, and its names are drawn in the user's font where it has them."""
    with matplotlib.rc_context({"font.family": ["serif"]}):
        before = dict.copy(matplotlib.rcParams)  # as stored: reading "backend" would set it
        figure = confusion_figure(["猫", "chat"], _chain(2))
        assert dict.copy(matplotlib.rcParams) == before
    heat, _ = _heatmap(figure)
    assert {label.get_fontfamily()[0] for label in heat.get_yticklabels()} == {"serif"}


def _runs(**selections: str) -> dict[str, list[dict[str, str]]]:
    """The rows of each run's selection.csv, by run name, in the order given."""
    return {name: list(csv.DictReader(io.StringIO(text))) for name, text in selections.items()}


def test_the_comparison_draws_each_runs_val_top1_and_stars_its_selected_checkpoint():
    """In the order given (the summary's: the best test top-1 first)."""
    alpha = selection_csv(3, [(1, 0.2, 0.6, 3.0), (2, 0.5, 0.9, 1.0), (3, 0.7, 0.9, 0.8)])
    rows = _runs(zeta=selection_csv(4), alpha=alpha)
    (ax,) = comparison_figure(rows, {"zeta": 0.91, "alpha": 0.96}).axes
    assert _curves(ax) == [
        (EPOCHS, [0.1111, 0.3403, 0.7847, 0.9444], "o"),
        ([4.0], [0.9444], "*"),
        ([1.0, 2.0, 3.0], [0.2, 0.5, 0.7], "o"),
        ([3.0], [0.7], "*"),
    ]
    lines = ax.get_lines()
    assert lines[1].get_color() == lines[0].get_color() != lines[2].get_color()
    assert lines[3].get_color() == lines[2].get_color()
    assert _legend(ax) == ["zeta: test top-1 0.9100", "alpha: test top-1 0.9600"]
    assert ax.get_ylim() == (0.0, 1.02)


def test_the_comparison_names_its_axes_and_its_legend_explains_the_stars():
    (ax,) = comparison_figure(_runs(zeta=selection_csv(4)), {"zeta": 0.91}).axes
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == (
        "Validation top-1 per epoch, runs side by side",
        "epoch",
        "val top-1",
    )
    assert ax.get_legend().get_title().get_text() == "run (selected checkpoint starred)"
    curve, star = ax.get_lines()
    assert star.get_markersize() > curve.get_markersize()


def test_the_comparison_legend_stays_in_the_lower_right_corner():
    """A fixed place, even where a run collapses through that corner (matplotlib's "best"
    would move it to the empty upper right)."""
    collapsing = selection_csv(1, [(1, 0.62, 0.95, 1.1), (2, 0.35, 0.7, 1.9),
                                   (3, 0.1, 0.5, 2.3), (4, 0.1, 0.5, 2.3)])  # fmt: skip
    rows = _runs(zeta=selection_csv(4), alpha=collapsing)
    (ax,) = comparison_figure(rows, {"zeta": 0.91, "alpha": 0.5}).axes
    _assert_in_the_lower_right_corner(ax.get_legend())


def test_plot_run_writes_every_figure_at_its_size(tmp_path: Path):
    history, selection = _files(tmp_path / "run")
    out_dir = tmp_path / "plots"
    paths = plot_run(history, selection, _eval_folder(tmp_path / "eval"), out_dir)
    assert paths == [out_dir / name for name in SIZES]
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(SIZES)
    for path in paths:
        with Image.open(path) as image:
            assert (image.format, image.size) == ("PNG", SIZES[path.name])


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: (f / "mistakes.npz").unlink(), "mistakes.npz does not exist"),
        (lambda f: np.savez(f / "mistakes.npz", images=_pixels(2), index=np.array([3, 7])),
         "mistakes.npz holds other images than"),
        (lambda f: (f / "metrics.json").write_text(json.dumps({**METRICS, "per_class_accuracy":
                                                               {"cat": 1.0}})),
         "name other classes"),
        (lambda f: (f / "metrics.json").write_text(json.dumps({"top1": 0.6})),
         "has no key num_images, per_class_accuracy"),
        (lambda f: (f / "confusion.csv").write_text(CONFUSION_CSV.replace("\nant,", "\nbat,")),
         "is not a confusion matrix"),
    ],
)  # fmt: skip
def test_eval_files_that_do_not_fit_are_named_and_nothing_is_written(
    tmp_path: Path, damage, message: str
):
    history, selection = _files(tmp_path / "run")
    folder = _eval_folder(tmp_path / "eval")
    damage(folder)
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        plot_run(history, selection, folder, tmp_path / "plots")
    assert not (tmp_path / "plots").exists()


def test_the_comparison_refuses_a_run_without_its_selected_checkpoint():
    rows = list(csv.DictReader(io.StringIO(SELECTION.replace("True", "False"))))
    with pytest.raises(ValueError, match="^run zeta's selection: expected exactly one selected"):
        comparison_figure({"zeta": rows}, {"zeta": 0.9})


def test_metrics_and_a_confusion_matrix_of_other_classes_are_both_named(tmp_path: Path):
    folder = _eval_folder(tmp_path / "eval")
    (folder / "metrics.json").write_text(json.dumps({**METRICS, "per_class_accuracy": {}}))
    with pytest.raises(ValueError) as err:
        eval_figures(folder)
    assert str(err.value) == (
        f"{folder / 'metrics.json'} and {folder / 'confusion.csv'} name other classes"
    )


def _imagenet(n: int) -> list[str]:
    return [f"n{i:08d}" for i in range(n)]


#: Figures as crowded as the pipeline makes them: the most classes, the longest names.
CROWDED = {
    "heatmap of 4 classes": lambda: confusion_figure(NAMES, _counts()),
    "heatmap of CIFAR-10, 1,000 images a class": lambda: confusion_figure(CIFAR10, 20 * _chain(10)),
    "heatmap of 20 classes with counts": lambda: confusion_figure(
        [f"class_{i:02d}" for i in range(20)], 10 * _chain(20)
    ),
    "heatmap at the upright limit": lambda: confusion_figure(UPRIGHT, _chain(len(UPRIGHT))),
    "heatmap one over it": lambda: confusion_figure(TOO_MANY_UPRIGHT, _chain(len(UPRIGHT) + 1)),
    "heatmap of 50 classes": lambda: confusion_figure(
        [f"class_{i:02d}" for i in range(50)], _chain(50)
    ),
    "pairs of 1,000 classes": lambda: confusion_figure(_imagenet(1000), _chain(1000)),
    "per class of 4": lambda: per_class_figure(METRICS["per_class_accuracy"],
                                               dict.fromkeys(NAMES, 8), 0.6),
    "per class of 1,000": lambda: per_class_figure(
        {name: (i % 97) / 96 for i, name in enumerate(_imagenet(1000))},
        dict.fromkeys(_imagenet(1000), 50),
        0.7,
    ),
    "gallery of 32": lambda: mistakes_figure(_mistakes(32), _pixels(32), 10000),
    "gallery of 3": lambda: mistakes_figure(_mistakes(3), _pixels(3), 10000),
    "gallery without mistakes": lambda: mistakes_figure([], _pixels(0), 10000),
    "heatmap of long names": lambda: confusion_figure(FOLDERS, 10 * _chain(10)),
    "heatmap of 50 long names": lambda: confusion_figure(_long_names(50), _chain(50)),
    "pairs of 1,000 long names": lambda: confusion_figure(_long_names(1000), _chain(1000)),
    "per class of long names": lambda: per_class_figure(
        {name: k / 10 for k, name in enumerate(FOLDERS)}, dict.fromkeys(FOLDERS, 7), 0.5
    ),
    "per class of 1,000 long names": lambda: per_class_figure(
        {name: (i % 97) / 96 for i, name in enumerate(_long_names(1000))},
        dict.fromkeys(_long_names(1000), 50),
        0.7,
    ),
    "gallery of 32 long names": lambda: mistakes_figure(
        [{"true": FOLDERS[k % 10], "predicted": FOLDERS[(3 * k + 1) % 10], "probability": "1"}
         for k in range(32)], _pixels(32), 10000
    ),
}  # fmt: skip


@pytest.mark.filterwarnings(NO_CJK_FONT)
@pytest.mark.parametrize("build", CROWDED.values(), ids=CROWDED)
def test_no_text_is_cut_off_or_written_over_another(build):
    figure = build()
    boxes = [(text.get_text(), text.get_window_extent()) for text in _drawn_texts(figure)]
    assert [text for text, box in boxes if not figure.bbox.contains(box.x0, box.y0)
            or not figure.bbox.contains(box.x1, box.y1)] == []  # fmt: skip
    overlapping = [
        (first, second)
        for (first, one), (second, other) in itertools.combinations(boxes, 2)
        if one.overlaps(other)
    ]
    assert overlapping == []
