"""Run plots, from small files shaped like the pipeline's own: what each figure draws (titles,
axes, the plotted data, the selected checkpoint's star) and the PNG files `vgg16 plot` writes."""

from pathlib import Path

import matplotlib
import pytest
from matplotlib.axes import Axes
from matplotlib.colors import to_hex
from matplotlib.layout_engine import ConstrainedLayoutEngine
from PIL import Image
from test_summary import HISTORY, SELECTION, selection_csv

from vgg16.cli import main
from vgg16.plot import plot_run, run_figures

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
    star = ax.get_lines()[2]
    assert star.get_linestyle() == "None"  # the legend shows the star alone, not a line
    assert star.get_markersize() == 16
    assert to_hex(star.get_color()) == "#dc143c"  # crimson
    assert _legend(ax) == ["top-1", "top-5", "selected: epoch 3, top-1 0.7847"]
    assert ax.get_ylim() == (0.0, 1.02)  # a top-5 of 1.0 (epoch 3) is not cut by the frame


def test_the_accuracy_legend_stays_in_the_lower_right_corner(tmp_path: Path):
    """A fixed place, even for a run whose accuracy collapses and passes through that corner
    (matplotlib's "best" would move it to the empty upper right)."""
    collapsing = selection_csv(1, [(1, 0.62, 0.95, 1.1), (2, 0.35, 0.7, 1.9),
                                   (3, 0.1, 0.5, 2.3), (4, 0.1, 0.5, 2.3)])  # fmt: skip
    ax = _axes(tmp_path, "accuracy.png", selection=collapsing)
    ax.figure.draw_without_rendering()
    legend, frame = ax.get_legend().get_window_extent(), ax.get_window_extent()
    assert frame.x1 - 10 < legend.x1 < frame.x1
    assert frame.y0 < legend.y0 < frame.y0 + 10


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
    """Nothing to place on the epoch axis for the val curves; the history is still drawn."""
    zoo = "checkpoint,epoch,val_top1,val_top5,val_loss,selected\nvgg16_zoo.ckpt,,0.9,1.0,0.1,True\n"
    figures = run_figures(*_files(tmp_path / "run", selection=zoo))
    assert _curves(figures["accuracy.png"].axes[0]) == [([], [], "o"), ([], [], "s")]
    assert _curves(figures["loss.png"].axes[0])[0][1] == [2.22645, 1.079721, 0.483118, 0.318211]


def test_plot_run_writes_three_valid_pngs_and_no_temporary_files(tmp_path: Path):
    history, selection = _files(tmp_path / "run")
    out_dir = tmp_path / "plots"
    paths = plot_run(history, selection, out_dir)
    assert paths == [out_dir / name for name in PLOTS]
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(PLOTS)
    for path in paths:
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert image.size == (600, 400)
            image.verify()


def test_the_png_size_does_not_depend_on_the_users_matplotlib_settings(tmp_path: Path):
    """6 x 4 inches at 100 dpi whatever a matplotlibrc says (here 200 and 300 dpi), so the
    report's images are the same on every machine."""
    history, selection = _files(tmp_path / "run")
    with matplotlib.rc_context({"figure.dpi": 200, "savefig.dpi": 300}):
        paths = plot_run(history, selection, tmp_path / "plots")
    for path in paths:
        with Image.open(path) as image:
            assert image.size == (600, 400)


def test_the_plot_command_writes_the_pngs_and_names_them(tmp_path: Path, capsys):
    history, selection = _files(tmp_path / "run")
    out_dir = tmp_path / "plots"
    argv = ["plot", "--history", str(history), "--selection", str(selection)]
    assert main([*argv, "--output", str(out_dir)]) == 0
    assert capsys.readouterr().out == "".join(f"wrote {out_dir / name}\n" for name in PLOTS)
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(PLOTS)


def test_the_plot_command_names_a_missing_history(tmp_path: Path, capsys):
    _, selection = _files(tmp_path / "run")
    missing = tmp_path / "nowhere" / "history.csv"
    argv = ["plot", "--history", str(missing), "--selection", str(selection)]
    assert main([*argv, "--output", str(tmp_path / "plots")]) == 1
    assert capsys.readouterr().err == f"vgg16 plot: error: {missing} does not exist\n"
    assert not (tmp_path / "plots").exists()


def test_a_history_without_loss_names_the_file_and_column(tmp_path: Path):
    history, selection = _files(tmp_path / "run", history=HISTORY.replace("loss", "x_loss", 1))
    with pytest.raises(ValueError, match=f"{history} has no column loss"):
        plot_run(history, selection, tmp_path / "plots")
    assert not (tmp_path / "plots").exists()


def test_a_selection_without_a_selected_row_is_refused(tmp_path: Path):
    history, selection = _files(tmp_path / "run", selection=SELECTION.replace("True", "False"))
    assert "True" not in selection.read_text()
    with pytest.raises(ValueError, match=f"{selection}: expected exactly one selected row"):
        plot_run(history, selection, tmp_path / "plots")
