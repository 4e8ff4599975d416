"""Full-decode verification of ImageNet-sized JPEGs: `vgg16 verify` against Pillow's own decode.

Generates ImageNet-like photos (500x375, about 100 KB: crops and flips of the two photographs
scikit-learn ships, with camera-like noise, saved at JPEG quality 92; 500 distinct ones,
copied to `--images` files) in the seed's class-folder layout. Then times, alternating, the
command as the workflow runs it (`python -m vgg16 verify`, a new process that decodes every
image over all cores) and a single-process loop of `Image.open(path).load()`, the per-core
reference. Two figures for the command: its decoding rate (its own last progress line, from
the start of its worker pool), which is what ImageNet's 1,331,167 images see, and its whole
run, start-up (about a second of imports) included.

    .venv/bin/python bench/verify_decode.py [--images 6000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_sample_images

from vgg16.images import cpus

IMAGENET_IMAGES = 1_331_167
SIZE = (500, 375)
CLASSES = 10
DISTINCT = 500


def write_photos(root: Path, count: int) -> list[Path]:
    """`count` 500x375 photo-like JPEGs under root/train and root/val, 10 classes."""
    rng = np.random.default_rng(0)
    photos = [Image.fromarray(p) for p in load_sample_images().images]
    paths = []
    for i in range(count):
        split = "val" if (i // CLASSES) % 10 == 0 else "train"
        path = root / split / f"n{i % CLASSES:08d}" / f"{i:06d}.JPEG"
        path.parent.mkdir(parents=True, exist_ok=True)
        if i >= DISTINCT:
            shutil.copyfile(paths[i % DISTINCT], path)
        else:
            photo = photos[i % len(photos)]
            left = int(rng.integers(0, photo.width - SIZE[0]))
            top = int(rng.integers(0, photo.height - SIZE[1]))
            pixels = np.asarray(photo.crop((left, top, left + SIZE[0], top + SIZE[1])), float)
            pixels = np.clip(pixels + rng.normal(0, 8, pixels.shape), 0, 255).astype(np.uint8)
            Image.fromarray(pixels[:, ::-1] if i % 2 else pixels).save(path, quality=92)
        paths.append(path)
    return paths


def pillow_decode(paths: list[Path]) -> None:
    for path in paths:
        with Image.open(path) as image:
            image.load()


def verify_command(root: Path, output: Path) -> float:
    """Run the command; return the decoding rate its last progress line reports."""
    result = subprocess.run(
        [sys.executable, "-m", "vgg16", "verify", "--dataset", "imagenet2012",
         "--data_path", str(root), "--num_classes", str(CLASSES), "--output", str(output)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return float(re.findall(r"images, (\d+) img/s", result.stderr)[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=6000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "imagenet"
        paths = write_photos(root, args.images)
        kb = np.mean([p.stat().st_size for p in paths]) / 1000
        print(f"{len(paths)} JPEGs, {SIZE[0]}x{SIZE[1]}, mean {kb:.0f} KB; {cpus()} cores")
        rates: dict[str, list[float]] = {"decoding": [], "command": [], "pillow": []}
        for _ in range(args.repeats):
            started = time.perf_counter()
            rates["decoding"].append(verify_command(root, Path(tmp) / "verified.json"))
            rates["command"].append(len(paths) / (time.perf_counter() - started))
            started = time.perf_counter()
            pillow_decode(paths)
            rates["pillow"].append(len(paths) / (time.perf_counter() - started))
    best = {name: max(values) for name, values in rates.items()}
    per_core = best["decoding"] / cpus()
    print(f"Pillow decode, 1 process: {best['pillow']:,.0f} img/s (runs: {_list(rates['pillow'])})")
    print(
        f"vgg16 verify, {cpus()} processes, decoding: {best['decoding']:,.0f} img/s = "
        f"{per_core:,.0f} per core, {per_core / best['pillow']:.2f}x Pillow's single-process "
        f"rate (runs: {_list(rates['decoding'])})"
    )
    print(f"vgg16 verify, whole command: {_list(rates['command'])} img/s")
    minutes = IMAGENET_IMAGES / best["decoding"] / 60
    print(f"ImageNet ({IMAGENET_IMAGES:,} images): {minutes:.1f} min at the decoding rate")


def _list(values: list[float]) -> str:
    return ", ".join(f"{v:,.0f}" for v in values)


if __name__ == "__main__":
    main()
