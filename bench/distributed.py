"""1 worker vs 2 msrun workers on this machine: throughput, msrun's start-up cost, and how
long a job takes to fail once a worker is killed.

One epoch of the digits demo at the same global batch (64 = 1 x 64 = 2 x 32), each run in
its own process side by side. Start-up cost is the wall time not spent in the epoch itself
(imports, compilation, and for msrun the scheduler and process group), compared between the
two. Then a long 2-worker run has its rank-1 worker killed after the first epoch; msrun alone
would wait for its scheduler's time-out (about 40 s), the launcher ends the job at once.

    .venv/bin/python bench/distributed.py
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from vgg16.launch import SCRIPT


def train_cmd(data: Path, out: Path, workers: int, epochs: int) -> list[str]:
    return [sys.executable, "-m", "vgg16", "train", "--workers", str(workers), "--data_path",
            str(data), "--output", str(out), "--set", f"max_epoch={epochs}",
            "--set", "warmup_epochs=0", "--set", f"batch_size={64 // workers}"]  # fmt: skip


def run(data: Path, out: Path, workers: int) -> dict:
    cmd = train_cmd(data, out, workers, epochs=1)
    started = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "GLOG_v": "3"})
    wall = time.perf_counter() - started
    with (out / "history.csv").open() as f:
        (row,) = csv.DictReader(f)
    return {"wall": wall, "epoch": float(row["seconds"]), "img_per_s": float(row["img_per_s"])}


def seconds_to_fail(data: Path, out: Path) -> float:
    """Kill the rank-1 worker of a 2-worker run after its first epoch; time the job's exit."""
    cmd = train_cmd(data, out, 2, epochs=50)
    env = {**os.environ, "GLOG_v": "3"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    while not (out / "history.csv").is_file():
        time.sleep(0.5)
    # msrun's log tailer shares the worker's environment; the worker runs the package's script.
    (worker,) = [
        p for p in psutil.Process(proc.pid).children(recursive=True)
        if p.environ().get("MS_ROLE") == "MS_WORKER" and p.environ().get("RANK_ID") == "1"
        and p.cmdline()[1:2] == [str(SCRIPT)]
    ]  # fmt: skip
    worker.kill()
    killed = time.perf_counter()
    proc.wait()
    return time.perf_counter() - killed


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "mindrecord"
        subprocess.run([sys.executable, "-m", "vgg16", "prepare", "--dataset", "digits",
                        "--data_path", str(Path(tmp) / "raw"), "--output", str(data)],
                       check=True, capture_output=True)  # fmt: skip
        results = {w: run(data, Path(tmp) / f"w{w}", w) for w in (1, 2)}
        failed_after = seconds_to_fail(data, Path(tmp) / "killed")
    for w, r in results.items():
        outside = r["wall"] - r["epoch"]
        print(f"{w} worker(s): {r['img_per_s']:.1f} img/s in the epoch, epoch {r['epoch']:.1f} s, "
              f"wall {r['wall']:.1f} s, outside the epoch {outside:.1f} s")  # fmt: skip
    one, two = results[1], results[2]
    overhead = (two["wall"] - two["epoch"]) - (one["wall"] - one["epoch"])
    ratio = two["img_per_s"] / one["img_per_s"]
    print(
        f"2 workers / 1 worker throughput: {ratio:.2f}x; msrun start-up overhead: {overhead:.1f} s"
    )
    print(f"a killed worker failed the job {failed_after:.1f} s later")


if __name__ == "__main__":
    main()
