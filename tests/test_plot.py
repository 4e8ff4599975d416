"""Run plots, from small files shaped like the pipeline's own."""

from pathlib import Path

import pytest
from PIL import Image
from test_summary import HISTORY, SELECTION

from vgg16.plot import plot_run


def _files(folder: Path, history: str = HISTORY, selection: str = SELECTION) -> tuple[Path, Path]:
    folder.mkdir(parents=True)
    (folder / "history.csv").write_text(history)
    (folder / "selection.csv").write_text(selection)
    return folder / "history.csv", folder / "selection.csv"


def test_plot_run_writes_three_valid_pngs_and_no_temporary_files(tmp_path: Path):
    history, selection = _files(tmp_path / "run")
    out_dir = tmp_path / "plots"
    paths = plot_run(history, selection, out_dir)
    assert [p.name for p in paths] == ["loss.png", "lr.png", "accuracy.png"]
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(p.name for p in paths)
    for path in paths:
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert image.size == (600, 400)
            image.verify()


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
