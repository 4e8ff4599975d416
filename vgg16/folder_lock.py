"""One writer per run folder: `vgg16 train` holds an OS lock (`flock`) on a file in its output
folder for as long as it runs, and a second `train` on the same folder stops at once, naming
the folder and the holder's pid.

The kernel releases a `flock` when its holder dies, however it dies (SIGKILL, a node's OOM
killer), so a lock left by a killed run never blocks its rerun: there is no stale lock to
clean up, unlike a lock that is a file's existence. The pid written into the file is only for
the message. With several workers, the launching process holds the lock for all of them
(msrun's workers of one run share it; only rank 0 writes anyway).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


class FolderBusy(RuntimeError):
    """Another live process holds the folder's lock."""


@contextlib.contextmanager
def hold(lock: Path, what: str) -> Iterator[None]:
    """Hold the lock file `lock` while the block runs; `what` names the folder in errors."""
    lock = Path(lock)
    created = [folder for folder in [lock.parent, *lock.parent.parents] if not folder.exists()]
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise FolderBusy(
                f"{what} {lock.parent} is in use by another vgg16 train (pid {holder}); "
                "wait for it to finish or stop it, or give this run another --output"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            if created and [p.name for p in lock.parent.iterdir()] == [lock.name]:
                # A run that wrote nothing (a bad flag, say) leaves no folder behind; removed
                # while still held, so a process that opens the lock file after this
                # creates a new one rather than sharing this one.
                lock.unlink()
                with contextlib.suppress(OSError):  # a folder another process wrote into
                    for folder in created:
                        folder.rmdir()
    finally:
        os.close(fd)  # releases the lock; a run's folder keeps the file
