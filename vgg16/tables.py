"""The CSV tables the stages hand to each other: their columns are defined here and only here.

`train` writes history.csv, `select` writes selection.csv (including which checkpoint it
chose), `summary` writes summary.csv; every reader goes through `read`, which names the file
and the missing column instead of failing later with a bare KeyError.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from vgg16.atomic import write_csv


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[str, ...]

    def write(self, folder: Path, rows: Iterable[dict]) -> Path:
        return write_csv(Path(folder) / self.name, self.columns, rows)

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
        if not rows:
            raise ValueError(f"{path} has no rows")
        return rows


#: One row per trained epoch.
HISTORY = Table("history.csv", ("epoch", "step", "loss", "lr", "img_per_s", "seconds"))
#: One row per scored checkpoint; `selected` is true on exactly the one published as best.ckpt.
SELECTION = Table(
    "selection.csv", ("checkpoint", "epoch", "val_top1", "val_top5", "val_loss", "selected")
)
#: One row per run of the workflow.
SUMMARY = Table(
    "summary.csv",
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


def selected_row(rows: list[dict[str, str]], source: Path) -> dict[str, str]:
    """The row of the checkpoint `select` chose (read, never decided again here)."""
    chosen = [row for row in rows if row["selected"] == "True"]
    if len(chosen) != 1:
        raise ValueError(f"{source}: expected exactly one selected row, found {len(chosen)}")
    return chosen[0]
