"""The tables the stages hand to each other: their columns are defined here and only here
(where each file lives is `layout`'s).

`train` writes the history, `select` the selection (including which checkpoint it chose),
`evaluate` the metrics, the confusion matrix and the mistakes (with their pixels beside them),
`summary` the summary; every reader goes through `read`, which names the file and the missing
column instead of failing later with a bare KeyError.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vgg16.atomic import atomic_write, write_csv
from vgg16.layout import EvalFolder


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    #: A table that may have no rows (a network that makes no mistakes has none to list).
    may_be_empty: bool = False

    def write(self, path: Path, rows: Iterable[dict]) -> Path:
        return write_csv(path, self.columns, rows)

    def read(self, path: Path) -> list[dict[str, str]]:
        """The rows of `path` (at least one), checked for this table's columns."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist")
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            missing = [c for c in self.columns if c not in (reader.fieldnames or ())]
        if missing:
            raise ValueError(f"{path} has no column {', '.join(missing)}")
        if not rows and not self.may_be_empty:
            raise ValueError(f"{path} has no rows")
        return rows


#: One row per trained epoch.
HISTORY = Table(("epoch", "step", "loss", "lr", "img_per_s", "seconds"))
#: One row per checkpoint; `selected` is true on exactly the one `select` publishes, and
#: `damaged` says why a checkpoint that is not whole was set aside unscored.
SELECTION = Table(
    ("checkpoint", "epoch", "val_top1", "val_top5", "val_loss", "selected", "damaged")
)
#: One row per run of the workflow.
SUMMARY = Table(
    (
        "run",
        "dataset",
        "recipe",
        "epochs",
        "val_top1",
        "val_top5",
        "test_top1",
        "test_top5",
        "train_seconds",
    ),
)
#: The test images the network got most confidently wrong, most confident first: `index` is
#: the image's position in the evaluated split (as the input pipeline reads it), `true` and
#: `predicted` are class names, `probability` is the predicted class's softmax probability
#: and `true_probability` the true class's.
MISTAKES = Table(
    ("index", "true", "predicted", "probability", "true_probability"),
    may_be_empty=True,
)
#: How many mistakes `evaluate` keeps (fewer when the network makes fewer): the report's
#: gallery shows them all.
MISTAKES_KEPT = 32
#: The confusion matrix's header is this corner cell and then the class names; each row is a
#: true class's name and its counts per predicted class.
CONFUSION_CORNER = "true\\predicted"


def selected_row(rows: list[dict[str, str]], source: Path | str) -> dict[str, str]:
    """The row of the checkpoint `select` chose (read, never decided again here)."""
    chosen = [row for row in rows if row["selected"] == "True"]
    if len(chosen) != 1:
        raise ValueError(f"{source}: expected exactly one selected row, found {len(chosen)}")
    return chosen[0]


def write_confusion(path: Path, class_names: list[str], confusion: np.ndarray) -> Path:
    """Rows are true classes, columns predicted classes, both by name."""
    rows = [[name, *row.tolist()] for name, row in zip(class_names, confusion, strict=True)]
    return write_csv(path, [CONFUSION_CORNER, *class_names], rows)


def read_confusion(path: Path) -> tuple[list[str], np.ndarray]:
    """The class names and the (true, predicted) count matrix of `write_confusion`'s file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    with path.open(newline="") as f:
        header, *rows = list(csv.reader(f)) or [[]]
    names = header[1:]
    square = all(len(row) == len(header) for row in rows)
    if header[:1] != [CONFUSION_CORNER] or [row[0] for row in rows] != names or not square:
        raise ValueError(
            f"{path} is not a confusion matrix: expected a {CONFUSION_CORNER!r} corner, the "
            "same class names along the first row and the first column, and a count per class"
        )
    return names, np.array([[int(v) for v in row[1:]] for row in rows], dtype=np.int64)


def write_mistakes(folder: EvalFolder, rows: list[dict], images: np.ndarray) -> None:
    """The mistakes (`MISTAKES`) and, in the same order, their pixels as the network saw them
    before normalisation: "images" (N, H, W, 3) uint8 RGB and "index" (their `index`)."""
    index = np.array([int(row["index"]) for row in rows], dtype=np.int64)
    if len(images) != len(index):
        raise ValueError(f"{len(rows)} mistakes but {len(images)} images")

    def save(tmp: Path) -> None:
        with tmp.open("wb") as f:  # a file object: np.savez would add ".npz" to a name
            np.savez_compressed(f, images=images, index=index)

    atomic_write(folder.mistake_images, save)
    MISTAKES.write(folder.mistakes, rows)


def read_mistakes(folder: EvalFolder) -> tuple[list[dict[str, str]], np.ndarray]:
    """The mistakes' rows and their images, checked to match."""
    rows = MISTAKES.read(folder.mistakes)
    path = folder.mistake_images
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    with np.load(path) as data:
        images, index = data["images"], data["index"]
    if index.tolist() != [int(row["index"]) for row in rows]:
        raise ValueError(f"{path} holds other images than {folder.mistakes} lists")
    return rows, images


def read_metrics(path: Path, keys: Iterable[str]) -> dict[str, Any]:
    """`evaluate`'s metrics, checked for the keys its reader uses."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    metrics = json.loads(path.read_text())
    missing = [key for key in keys if key not in metrics]
    if missing:
        raise ValueError(f"{path} has no key {', '.join(missing)}")
    return metrics
