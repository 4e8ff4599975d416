"""What proving the data whole costs: the CRC32 check of prepared MindRecord files
(`data.checksums`, run when a split is first opened) and of a checkpoint (`checkpoint.read`),
measured on this machine and extrapolated to ImageNet.

Files of random bytes stand in for shards (a CRC's cost depends on the bytes' count, not their
values). Each size is checked from the page cache and, after `posix_fadvise(DONTNEED)` drops
the files' pages, from the disk, with one thread and with all cores (`images.cpus()`), in
alternating rounds. The extrapolation takes ImageNet-1k prepared as MindRecord at 140 GB
(1.28 M JPEGs, mean 110 KB) and the seed's GPU figure for an epoch: 19.7 h for 150 epochs on
8 V100s, 473 s per epoch.

    .venv/bin/python bench/integrity.py [--files 8] [--mb 256] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from vgg16.data import checksum
from vgg16.images import cpus

IMAGENET_GB = 140.0
EPOCH_S = 19.7 * 3600 / 150


def _drop_cache(paths: list[Path]) -> None:
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def _rate(paths: list[Path], threads: int) -> float:
    """GB/s of checking every file with `threads` threads."""
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(checksum, paths))
    return sum(p.stat().st_size for p in paths) / 1e9 / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--mb", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="where to write (a real disk)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        paths = [Path(tmp) / f"shard{i}.mindrecord" for i in range(args.files)]
        for path in paths:
            path.write_bytes(os.urandom(args.mb << 20))
        rates: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            for threads in (1, cpus()):
                _drop_cache(paths)
                rates.setdefault(f"disk, {threads} thread(s)", []).append(_rate(paths, threads))
                rates.setdefault(f"cache, {threads} thread(s)", []).append(_rate(paths, threads))
    total = args.files * args.mb / 1024
    print(f"{args.files} files x {args.mb} MB = {total:.1f} GB, {args.rounds} rounds, "
          f"{cpus()} cores")  # fmt: skip
    for name, values in rates.items():
        rate = statistics.median(values)
        seconds = IMAGENET_GB / rate
        print(
            f"{name:>22}: {rate:5.2f} GB/s (median; {min(values):.2f}-{max(values):.2f}); "
            f"ImageNet {IMAGENET_GB:.0f} GB: {seconds:6.1f} s = {seconds / EPOCH_S:.1%} of a "
            f"seed GPU epoch ({EPOCH_S:.0f} s)"
        )


if __name__ == "__main__":
    main()
