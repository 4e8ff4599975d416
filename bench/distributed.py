"""1 worker vs 2 msrun workers on this machine: throughput and msrun's start-up cost.

One epoch of the digits demo at the same global batch (64 = 1 x 64 = 2 x 32), each run in
its own process side by side. Start-up cost is the wall time not spent in the epoch itself
(imports, compilation, and for msrun the scheduler and process group), compared between the
two.

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


def run(data: Path, out: Path, workers: int) -> dict:
    cmd = [sys.executable, "-m", "vgg16", "train", "--workers", str(workers), "--data_path",
           str(data), "--ckpt_path", str(out / "ckpt"), "--set", "max_epoch=1",
           "--set", "warmup_epochs=0", "--set", f"batch_size={64 // workers}"]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "GLOG_v": "3"})
    wall = time.perf_counter() - started
    with (out / "history.csv").open() as f:
        (row,) = csv.DictReader(f)
    return {"wall": wall, "epoch": float(row["seconds"]), "img_per_s": float(row["img_per_s"])}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "mindrecord"
        subprocess.run([sys.executable, "-m", "vgg16", "prepare", "--dataset", "digits",
                        "--data_path", str(Path(tmp) / "raw"), "--output", str(data)],
                       check=True, capture_output=True)  # fmt: skip
        results = {w: run(data, Path(tmp) / f"w{w}", w) for w in (1, 2)}
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


if __name__ == "__main__":
    main()
