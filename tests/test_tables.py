"""The CSV tables the stages hand to each other: columns, checked reading, the selected row,
the confusion matrix, and the mistakes with their images."""

import re
from pathlib import Path

import numpy as np
import pytest

from vgg16.layout import EvalFolder
from vgg16.tables import (
    HISTORY,
    SELECTION,
    read_confusion,
    read_mistakes,
    selected_row,
    write_confusion,
    write_mistakes,
)

HISTORY_ROWS = [
    {"epoch": 1, "step": 20, "loss": 2.22645, "lr": 0.048, "img_per_s": 46.89, "seconds": 27.3},
    {"epoch": 2, "step": 40, "loss": 1.079721, "lr": 0.02907, "img_per_s": 49.25, "seconds": 26},
]
HISTORY_CSV = (
    "epoch,step,loss,lr,img_per_s,seconds\r\n"
    "1,20,2.22645,0.048,46.89,27.3\r\n"
    "2,40,1.079721,0.02907,49.25,26\r\n"
)


def _selection_rows(*selected: bool) -> list[dict[str, str]]:
    return [
        {"checkpoint": f"e{i}.ckpt", "epoch": str(i), "val_top1": "0.5", "val_top5": "0.9",
         "val_loss": "1.2", "selected": str(flag), "damaged": ""}
        for i, flag in enumerate(selected, start=1)
    ]  # fmt: skip


def test_write_puts_the_header_and_the_rows_in_column_order(tmp_path: Path):
    path = HISTORY.write(tmp_path / "run" / "train" / "history.csv", HISTORY_ROWS)
    assert path == tmp_path / "run" / "train" / "history.csv"
    assert path.read_bytes() == HISTORY_CSV.encode()


def test_read_gives_each_row_as_text_keyed_by_column(tmp_path: Path):
    path = tmp_path / "history.csv"
    path.write_bytes(HISTORY_CSV.encode())
    assert HISTORY.read(path) == [
        {"epoch": "1", "step": "20", "loss": "2.22645", "lr": "0.048", "img_per_s": "46.89",
         "seconds": "27.3"},
        {"epoch": "2", "step": "40", "loss": "1.079721", "lr": "0.02907", "img_per_s": "49.25",
         "seconds": "26"},
    ]  # fmt: skip


def test_values_with_commas_quotes_or_line_breaks_come_back_unchanged(tmp_path: Path):
    """The csv module quotes such values; reading must not translate the quoted line break
    (the reason `open(newline="")` is needed, as the csv module's documentation says)."""
    rows = _selection_rows(True, False)
    rows[0]["checkpoint"] = 'runs/a,b/"best".ckpt'
    rows[1]["checkpoint"] = "two\r\nlines.ckpt"
    path = SELECTION.write(tmp_path / "selection.csv", rows)
    assert SELECTION.read(path) == rows


def test_reading_a_missing_file_names_it(tmp_path: Path):
    path = tmp_path / "train" / "history.csv"
    with pytest.raises(FileNotFoundError) as err:
        HISTORY.read(path)
    assert str(err.value) == f"{path} does not exist"


@pytest.mark.parametrize(
    ("text", "missing"),
    [
        ("epoch,step,img_per_s,seconds\n1,20,46.89,27.3\n", "loss, lr"),
        ("", "epoch, step, loss, lr, img_per_s, seconds"),  # an empty file has no header
    ],
)
def test_reading_names_the_file_and_every_missing_column(tmp_path: Path, text: str, missing):
    path = tmp_path / "history.csv"
    path.write_text(text)
    with pytest.raises(ValueError) as err:
        HISTORY.read(path)
    assert str(err.value) == f"{path} has no column {missing}"


def test_a_table_with_only_a_header_has_no_rows(tmp_path: Path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,step,loss,lr,img_per_s,seconds\n")
    with pytest.raises(ValueError) as err:
        HISTORY.read(path)
    assert str(err.value) == f"{path} has no rows"


def test_extra_columns_are_read_along(tmp_path: Path):
    """A newer writer may add columns; readers of the known ones still work."""
    path = tmp_path / "history.csv"
    path.write_text("epoch,step,loss,lr,img_per_s,seconds,note\n1,20,2.2,0.048,46.9,27.3,ok\n")
    assert HISTORY.read(path)[0]["loss"] == "2.2"
    assert HISTORY.read(path)[0]["note"] == "ok"


def test_selected_row_is_the_one_row_marked_true():
    rows = _selection_rows(False, True, False)
    assert selected_row(rows, Path("selection.csv")) is rows[1]


@pytest.mark.parametrize(("selected", "found"), [((False, False), 0), ((True, False, True), 2)])
def test_selected_row_refuses_none_or_several_and_names_the_file(selected, found):
    with pytest.raises(ValueError) as err:
        selected_row(_selection_rows(*selected), Path("runs/a/select/selection.csv"))
    assert str(err.value) == (
        f"runs/a/select/selection.csv: expected exactly one selected row, found {found}"
    )


def test_a_mistakes_table_with_only_a_header_is_a_network_without_mistakes(tmp_path: Path):
    write_mistakes(EvalFolder(tmp_path), [], np.zeros((0, 32, 32, 3), np.uint8))
    assert EvalFolder(tmp_path).mistakes.read_bytes() == (
        b"index,true,predicted,probability,true_probability\r\n"
    )
    rows, images = read_mistakes(EvalFolder(tmp_path))
    assert rows == [] and images.shape == (0, 32, 32, 3)


def test_mistakes_come_back_with_their_images_in_order(tmp_path: Path):
    rows = [{"index": "9", "true": "cat", "predicted": "dog", "probability": "0.9",
             "true_probability": "0.05"},
            {"index": "2", "true": "dog", "predicted": "cat", "probability": "0.8",
             "true_probability": "0.1"}]  # fmt: skip
    images = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
    folder = EvalFolder(tmp_path)
    write_mistakes(folder, rows, images)
    assert sorted(tmp_path.iterdir()) == [folder.mistakes, folder.mistake_images]
    got_rows, got_images = read_mistakes(folder)
    assert got_rows == rows
    np.testing.assert_array_equal(got_images, images)
    assert got_images.dtype == np.uint8
    with np.load(folder.mistake_images) as data:
        assert data["index"].tolist() == [9, 2]


def test_mistakes_and_images_of_other_counts_are_refused(tmp_path: Path):
    rows = [{"index": "9", "true": "a", "predicted": "b", "probability": "0.9",
             "true_probability": "0.1"}]  # fmt: skip
    with pytest.raises(ValueError, match="^1 mistakes but 0 images$"):
        write_mistakes(EvalFolder(tmp_path), rows, np.zeros((0, 4, 4, 3), np.uint8))
    assert not list(tmp_path.iterdir())


CONFUSION_CSV = "true\\predicted,cat,dog\r\ncat,3,1\r\ndog,0,2\r\n"


def test_a_confusion_matrix_is_written_with_class_names_along_both_sides(tmp_path: Path):
    path = write_confusion(tmp_path / "confusion.csv", ["cat", "dog"], np.array([[3, 1], [0, 2]]))
    assert path.read_bytes() == CONFUSION_CSV.encode()
    names, counts = read_confusion(path)
    assert names == ["cat", "dog"] and counts.tolist() == [[3, 1], [0, 2]]


def test_class_names_with_commas_quotes_or_line_breaks_come_back_unchanged(tmp_path: Path):
    names = ["tabby, orange", 'the "good" dog', "two\r\nlines", "carriage\rreturn"]
    path = write_confusion(tmp_path / "confusion.csv", names, np.diag([1, 2, 3, 4]))
    got, counts = read_confusion(path)
    assert got == names and counts.tolist() == np.diag([1, 2, 3, 4]).tolist()


def test_a_confusion_matrix_needs_a_row_per_class_name(tmp_path: Path):
    with pytest.raises(ValueError):
        write_confusion(tmp_path / "confusion.csv", ["cat", "dog", "owl"], np.eye(2, dtype=int))
    with pytest.raises(ValueError):
        write_confusion(tmp_path / "confusion.csv", ["cat"], np.eye(2, dtype=int))
    assert not list(tmp_path.iterdir())


def test_reading_a_missing_confusion_matrix_names_it(tmp_path: Path):
    path = tmp_path / "eval" / "confusion.csv"
    with pytest.raises(FileNotFoundError, match=f"^{re.escape(str(path))} does not exist$"):
        read_confusion(path)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "predicted,cat,dog\ncat,3,1\ndog,0,2\n",  # not the corner cell
        "true\\predicted,cat,dog\ndog,0,2\ncat,3,1\n",  # rows in another order
        "true\\predicted,cat,dog\ncat,3,1\n",  # a row missing
        "true\\predicted,cat,dog\ncat,3,1\ndog,0\n",  # a count missing
    ],
)
def test_a_file_that_is_not_a_confusion_matrix_is_named(tmp_path: Path, text: str):
    path = tmp_path / "confusion.csv"
    path.write_text(text)
    with pytest.raises(ValueError) as excinfo:
        read_confusion(path)
    assert str(excinfo.value) == (
        f"{path} is not a confusion matrix: expected a 'true\\\\predicted' corner, the same "
        "class names along the first row and the first column, and a count per class"
    )
