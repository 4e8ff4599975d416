"""Time `vgg16 prepare` on a 50,000-image CIFAR-format set generated locally.

Five 10,000-record training batches and one test batch of random pixels, written in the
CIFAR-10 binary layout, then converted to MindRecord (train/val/test) as the CLI does.

    .venv/bin/python bench/prepare_cifar.py [--shards 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from vgg16.formats.cifar10 import FOLDER, write_batch
from vgg16.prepare import prepare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / FOLDER
        src.mkdir()
        for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
            images = rng.integers(0, 256, (10_000, 32, 32, 3), dtype=np.uint8)
            write_batch(src / name, images, rng.integers(0, 10, 10_000))
        started = time.perf_counter()
        manifest = prepare("cifar10", src, Path(tmp) / "mindrecord", shards=args.shards)
        seconds = time.perf_counter() - started
    counts = {s: v["count"] for s, v in manifest["splits"].items()}
    print(
        f"prepare: {seconds:.1f} s for 60,000 records {counts} ({args.shards} shard(s)); "
        f"{50_000 / seconds:,.0f} training img/s"
    )


if __name__ == "__main__":
    main()
