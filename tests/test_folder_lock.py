"""One writer per run folder: an OS lock that its holder's death always releases."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from vgg16.folder_lock import FolderBusy, hold


def test_a_held_folder_refuses_a_second_holder_naming_the_folder_and_the_pid(tmp_path: Path):
    lock = tmp_path / "run" / ".lock"
    lock.parent.mkdir()
    with hold(lock, "run folder"):
        assert lock.read_text() == f"{os.getpid()}\n"
        with pytest.raises(FolderBusy) as busy, hold(lock, "run folder"):
            pass
    assert str(busy.value) == (
        f"run folder {tmp_path / 'run'} is in use by another vgg16 train (pid {os.getpid()}); "
        "wait for it to finish or stop it, or give this run another --output"
    )
    with hold(lock, "run folder"):  # released on leaving the block
        pass
    assert lock.is_file()  # left in place: no other process sees it vanish mid-check


def test_a_killed_holders_lock_never_blocks(tmp_path: Path):
    lock = tmp_path / ".lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from vgg16.folder_lock import hold\n"
         f"with hold({str(lock)!r}, 'run folder'):\n print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    with pytest.raises(FolderBusy, match=f"pid {holder.pid}\\)"), hold(lock, "run folder"):
        pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert lock.read_text() == f"{holder.pid}\n"  # the dead holder's pid is still written
    with hold(lock, "run folder"):
        assert lock.read_text() == f"{os.getpid()}\n"


def test_a_run_that_wrote_nothing_leaves_no_folder_and_one_that_wrote_keeps_the_lock(
    tmp_path: Path,
):
    lock = tmp_path / "runs" / "a" / ".lock"
    with hold(lock, "run folder"):
        assert lock.is_file()
    assert list(tmp_path.iterdir()) == []  # the folders it created went with it
    with hold(lock, "run folder"):
        (lock.parent / "history.csv").write_text("epoch\n")
    assert sorted(p.name for p in lock.parent.iterdir()) == [".lock", "history.csv"]
    (lock.parent / "history.csv").unlink()
    with hold(lock, "run folder"):  # a folder it did not create stays, even empty
        pass
    assert lock.is_file()
