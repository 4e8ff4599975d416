"""Atomic writes: a reader sees the old file or folder or the new one, never half of one."""

import os
from pathlib import Path

import pytest

from vgg16.atomic import _swap_in, staged_dir, write_csv, write_text


def test_staged_dir_keeps_old_folder_on_error_and_replaces_it_on_success(tmp_path: Path) -> None:
    final = tmp_path / "out"
    final.mkdir()
    (final / "old.txt").write_text("old")

    with pytest.raises(RuntimeError), staged_dir(final) as tmp:
        (tmp / "new.txt").write_text("new")
        raise RuntimeError("interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert [p.name for p in final.iterdir()] == ["old.txt"]

    with staged_dir(final) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert [p.name for p in final.iterdir()] == ["new.txt"]


def test_write_text_creates_missing_parent_folders(tmp_path: Path) -> None:
    path = write_text(tmp_path / "runs" / "a" / "metrics.json", "{}\n")
    assert path.read_text() == "{}\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["metrics.json"]


def test_write_csv_of_plain_lists(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "h.csv", ("epoch", "loss"), [[1, 0.5], [2, 0.25]])
    assert path.read_bytes() == b"epoch,loss\r\n1,0.5\r\n2,0.25\r\n"


def test_write_csv_of_dicts_follows_the_columns(tmp_path: Path) -> None:
    rows = [{"loss": 0.5, "epoch": 1}]
    path = write_csv(tmp_path / "h.csv", ["epoch", "loss"], rows)
    assert path.read_bytes() == b"epoch,loss\r\n1,0.5\r\n"


def test_write_csv_without_rows_writes_the_header(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "h.csv", ["epoch", "loss"], [])
    assert path.read_bytes() == b"epoch,loss\r\n"


def test_staged_dir_clears_an_old_folder_left_by_a_killed_process(tmp_path: Path) -> None:
    """A process killed mid-swap leaves `.out.old-<pid>`; a later process with that pid must
    still be able to swap."""
    final = tmp_path / "out"
    final.mkdir()
    (final / "old.txt").write_text("old")
    leftover = tmp_path / f".out.old-{os.getpid()}"
    leftover.mkdir()
    (leftover / "stale.txt").write_text("stale")

    with staged_dir(final) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert [p.name for p in final.iterdir()] == ["new.txt"]


def test_a_failed_swap_puts_the_old_folder_back(tmp_path: Path) -> None:
    final = tmp_path / "out"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with pytest.raises(FileNotFoundError):
        _swap_in(tmp_path / "vanished", final)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert (final / "old.txt").read_text() == "old"


def test_a_file_write_is_durable_file_first_then_its_folder(tmp_path: Path, fsynced) -> None:
    path = write_text(tmp_path / "a" / "b.txt", "b")
    assert fsynced == [tmp_path / "a" / ".b.txt.tmp", tmp_path / "a"]
    assert path.read_text() == "b"


def test_a_staged_folder_is_durable_before_it_is_swapped_in(tmp_path: Path, fsynced) -> None:
    """Every file, then every folder deepest first, then the parent that gains the new name."""
    final = tmp_path / "out"
    with staged_dir(final) as tmp:
        (tmp / "sub").mkdir()
        (tmp / "sub" / "x").write_text("x")
        (tmp / "y").write_text("y")
    assert fsynced == [tmp / "sub" / "x", tmp / "sub", tmp / "y", tmp, tmp_path]
    assert (final / "sub" / "x").read_text() == "x"
