"""`vgg16 summary`: one row per run, from each run's history, selection and test metrics,
the best test top-1 first, and a plot of every run's validation top-1 per epoch beside it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pandas as pd

from vgg16 import plot
from vgg16.atomic import write_csv
from vgg16.tables import HISTORY, SELECTION, SUMMARY, read_metrics, selected_row

#: The metrics keys read here (evaluate writes more).
METRICS_KEYS = ("top1", "top5", "recipe")
ACCURACY_COLUMNS = ("val_top1", "val_top5", "test_top1", "test_top5")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", type=Path, required=True, help="the summary CSV to write")
    parser.add_argument(
        "--comparison",
        type=Path,
        required=True,
        help="PNG to write: every run's validation top-1 per epoch on shared axes",
    )
    parser.add_argument("--runs", nargs="+", required=True, help="run names")
    for what in ("history", "selection", "metrics", "recipes"):
        parser.add_argument(
            f"--{what}",
            type=Path,
            nargs="+",
            required=True,
            help=f"one {what.rstrip('s')} file per run, in --runs order",
        )


def main(args: argparse.Namespace) -> None:
    lists = {
        "--history": args.history,
        "--selection": args.selection,
        "--metrics": args.metrics,
        "--recipes": args.recipes,
    }
    wrong = {flag: len(v) for flag, v in lists.items() if len(v) != len(args.runs)}
    if wrong:
        raise ValueError(f"--runs names {len(args.runs)} runs, but {wrong} give other counts")
    runs = {
        name: {"history": h, "selection": s, "metrics": m, "recipe": r}
        for name, h, s, m, r in zip(args.runs, *lists.values(), strict=True)
    }
    table = summarise(runs, args.output)
    print(format_table(table))
    curves = {name: SELECTION.read(runs[name]["selection"]) for name in table["run"]}
    figure = plot.comparison_figure(
        curves, dict(zip(table["run"], table["test_top1"], strict=True))
    )
    print(f"wrote {plot.save(figure, args.comparison)}")


def _read_metrics(path: Path) -> dict[str, Any]:
    """`evaluate`'s metrics, checked for the keys the summary reads."""
    metrics = read_metrics(path, METRICS_KEYS)
    if "dataset" not in metrics["recipe"]:
        raise ValueError(f"{path} has no key recipe.dataset")
    return metrics


def _summary_row(name: str, paths: dict[str, Path]) -> dict[str, Any]:
    history = HISTORY.read(paths["history"])
    selected = selected_row(SELECTION.read(paths["selection"]), paths["selection"])
    metrics = _read_metrics(paths["metrics"])
    return {
        "run": name,
        "dataset": metrics["recipe"]["dataset"],
        "recipe": str(paths["recipe"]),
        "epochs": len(history),
        "val_top1": float(selected["val_top1"]),
        "val_top5": float(selected["val_top5"]),
        "test_top1": float(metrics["top1"]),
        "test_top5": float(metrics["top5"]),
        "train_seconds": round(sum(float(row["seconds"]) for row in history), 1),
    }


def summarise(runs: dict[str, dict[str, Path]], out: Path) -> pd.DataFrame:
    """One row per run, the best test top-1 first (ties by name), written to the CSV `out`
    and returned.

    `runs` maps a run name to the paths of its "history", "selection", "metrics" and
    "recipe"; the recipe path is only recorded, so the table says which file made each row.
    The val columns are those of the checkpoint `select` chose, which `evaluate` tested.
    """
    rows = [_summary_row(name, runs[name]) for name in sorted(runs)]
    rows.sort(key=lambda row: -row["test_top1"])  # stable: names in order for ties
    write_csv(out, SUMMARY.columns, rows)
    return pd.DataFrame(rows, columns=SUMMARY.columns)


def format_table(df: pd.DataFrame) -> str:
    """The summary as aligned text for a terminal, accuracies to 4 decimals."""
    formatters = {column: "{:.4f}".format for column in ACCURACY_COLUMNS}
    return df.to_string(index=False, formatters=formatters)
