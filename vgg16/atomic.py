"""Atomic, durable file and folder writes: a reader (or a killed job's rerun) sees the old
file or the new one, never half of one, because the data goes to a temporary name beside the
target first; and a write counts as done only once it would survive a power cut or a node
crash, because the data and then the folder's new entry are `fsync`ed (as PostgreSQL and
SQLite do). Without that, a filesystem may put the rename on disk before the data, and a crash
right after a save leaves a checkpoint of the right name and the wrong contents."""

from __future__ import annotations

import csv
import io
import os
import shutil
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path


def crc32(path: Path, length: int | None = None) -> int:
    """CRC32 of a file's first `length` bytes (all of them by default), streamed in 16 MB
    chunks; zlib releases the GIL, so threads checking several files run in parallel. How the
    package proves that a checkpoint or a MindRecord file is the one it wrote."""
    crc, left = 0, length
    with Path(path).open("rb") as file:
        while chunk := file.read(1 << 24 if left is None else min(left, 1 << 24)):
            crc = zlib.crc32(chunk, crc)
            left = None if left is None else left - len(chunk)
    return crc


def sync(path: Path) -> None:
    """`fsync` a file, or a folder (which makes its entries' creations and renames durable)."""
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if Path(path).is_dir() else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_tree(folder: Path) -> None:
    """`fsync` every file under `folder`, then every folder, deepest first."""
    for parent, _, files in os.walk(folder, topdown=False):
        for name in files:
            sync(Path(parent) / name)
        sync(Path(parent))


def commit(tmp: Path, path: Path) -> Path:
    """Make the finished file `tmp` durable, rename it onto `path`, and make the rename
    durable."""
    sync(tmp)
    os.replace(tmp, path)
    sync(Path(path).parent)
    return Path(path)


def atomic_write(path: Path, write: Callable[[Path], object]) -> Path:
    """Call `write` on a temporary name in `path`'s folder, then `commit` it onto `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        commit(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def write_csv(path: Path, columns: Iterable[str], rows: Iterable[dict | list]) -> Path:
    """A CSV with a header row; `rows` are dicts keyed by column or plain lists."""
    buf = io.StringIO()
    columns = list(columns)
    rows = list(rows)
    if rows and isinstance(rows[0], dict):
        writer = csv.DictWriter(buf, fieldnames=columns)
        writer.writeheader()
    else:
        writer = csv.writer(buf)
        writer.writerow(columns)
    writer.writerows(rows)
    return write_text(path, buf.getvalue())


@contextmanager
def staged_dir(final: Path) -> Iterator[Path]:
    """Yield an empty temporary sibling of ``final`` that replaces ``final`` only on success.

    Readers of ``final`` therefore see either the previous complete folder or the new complete
    one, never a half-written one; on any exception the temporary folder is removed and
    ``final`` is left as it was. Everything in it is made durable before it is swapped in.
    """
    final = Path(final)
    if final.exists() and not final.is_dir():
        raise NotADirectoryError(f"{final} exists and is not a directory")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)  # left over by a killed process with our pid
    tmp.mkdir()
    try:
        yield tmp
        sync_tree(tmp)
        _swap_in(tmp, final)
        sync(final.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _swap_in(new: Path, final: Path) -> None:
    """Rename ``new`` to ``final``, moving an existing ``final`` aside until the rename is done."""
    if not final.exists():
        new.rename(final)
        return
    old = final.parent / f".{final.name}.old-{os.getpid()}"
    shutil.rmtree(old, ignore_errors=True)
    final.rename(old)
    try:
        new.rename(final)
    except BaseException:
        old.rename(final)
        raise
    shutil.rmtree(old)
