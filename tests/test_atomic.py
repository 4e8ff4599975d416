"""Atomic writes: a reader sees the old file or folder or the new one, never half of one."""

from pathlib import Path

import pytest

from vgg16.atomic import staged_dir


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
