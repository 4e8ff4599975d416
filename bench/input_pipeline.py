"""The training input pipeline against MindSpore's own, side by side, for both families.

- CIFAR-style: `vgg16 train --input_only` on prepared MindRecord (order, 4-pixel padded
  crops, flips and dropout flags, all keyed by position) against MindSpore's
  `Cifar10Dataset` on the same images' binary batches with its C++ ops (shuffle,
  `RandomCrop` with 4-pixel padding, `RandomHorizontalFlip`, `Normalize`, `HWC2CHW`).
- ImageNet-style: `vgg16 train --input_only` on prepared MindRecord (JPEG records) against
  `MindDataset` on the same files with MindSpore's C++ ops (shuffle,
  `RandomCropDecodeResize` to 224 px, `RandomHorizontalFlip`, `Normalize`, `HWC2CHW`).

Ours hands the device uint8 images, which the training step normalises there; MindSpore's
is run twice: as the zoo runs it (`Normalize` on the host, float32 out), and stopping where
ours does (no `Normalize`, uint8 out), the like-for-like comparison.

Each pipeline runs in its own process, pinned with `taskset` to 1 core and then 2 cores
(the pipelines start one worker per core they may use), ours and MindSpore's back to back
for each family and core count, in alternating rounds. This machine's speed drifts by up to
30% within minutes, so the ratio of each round's own side-by-side runs is reported (their
median over the rounds) beside the ratio of the best rates. Also: milliseconds to draw a
batch's dropout masks, per image with a generator each (the previous code, kept here as the
reference) and vectorised.

    .venv/bin/python bench/input_pipeline.py [--rounds 3] [--cifar DIR] [--imagenet DIR]

Without `--cifar`/`--imagenet` it generates the data: 50,000 CIFAR images in five binary
batches, and 2,000 JPEGs of ImageNet's typical size (500x375, 90% quality, textured).
`--cifar DIR`: a `cifar-10-batches-bin` folder; `--imagenet DIR`: a train folder of class
folders (held-out data: any you have).
"""

from __future__ import annotations

import argparse
import functools
import itertools
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from vgg16 import randomness
from vgg16.formats.cifar10 import write_batch
from vgg16.model import DROPOUT_P, DROPOUT_WIDTHS

EPOCHS = 3
OURS = "ours"
#: MindSpore's pipeline as the zoo runs it (float32 out, normalised on the host), and
#: stopping where ours does (uint8 CHW out, normalised on the device by the training step).
THEIRS, THEIRS_UINT8 = "MindSpore's (normalised)", "MindSpore's (uint8)"
CIFAR_BATCH, IMAGENET_BATCH = 64, 32
FAMILIES = ("CIFAR-style", "ImageNet-style")

MINDSPORE_PIPELINE = """
import sys, time
from mindspore import dataset as ds
from mindspore.dataset import vision
from vgg16.config import load_recipe
family, path, workers, epochs, batch, on_host = sys.argv[1:7]
workers, epochs, batch = int(workers), int(epochs), int(batch)
recipe = load_recipe(dataset="cifar10" if family == "cifar" else "imagenet2012")
mean, std = [m * 255 for m in recipe.mean], [s * 255 for s in recipe.std]
if family == "cifar":
    data = ds.Cifar10Dataset(path, usage="train", shuffle=True, num_parallel_workers=workers)
    ops = [vision.RandomCrop((32, 32), (4, 4, 4, 4)), vision.RandomHorizontalFlip()]
else:
    data = ds.MindDataset(path, columns_list=["image", "label"], shuffle=True,
                          num_parallel_workers=workers)
    ops = [vision.RandomCropDecodeResize(224, scale=(0.08, 1.0), ratio=(0.75, 1.333)),
           vision.RandomHorizontalFlip()]
normalize = [vision.Normalize(mean, std)] if on_host == "normalize" else []
data = data.map(ops + normalize + [vision.HWC2CHW()], input_columns="image",
                num_parallel_workers=workers)
data = data.batch(batch, drop_remainder=True)
started, images = time.perf_counter(), 0
iterator = data.create_tuple_iterator(num_epochs=epochs)
for epoch in range(1, epochs + 1):
    begun, count = time.perf_counter(), 0
    for _ in iterator:  # one epoch
        count += batch
    print(f"epoch {epoch}/{epochs}: {count / (time.perf_counter() - begun):.0f} img/s (this epoch)")
    images += count
print(f"{images / (time.perf_counter() - started):.0f} img/s")
"""


def write_cifar(folder: Path, count: int) -> Path:
    """Random CIFAR-10 binary batches of 10,000 images (what `Cifar10Dataset` requires)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(1, count // 10_000 + 1):
        images = rng.integers(0, 256, (10_000, 32, 32, 3), dtype=np.uint8)
        write_batch(folder / f"data_batch_{i}.bin", images, rng.integers(0, 10, 10_000))
    write_batch(folder / "test_batch.bin", images[:1000], rng.integers(0, 10, 1000))
    (folder / "batches.meta.txt").write_text("".join(f"class{d}\n" for d in range(10)))
    return folder


def write_photos(folder: Path, count: int, classes: int = 10) -> Path:
    """JPEGs of ImageNet's typical size and file size (about 100 KB): smooth colour fields
    with fine texture on top, which JPEG compresses as it does photographs."""
    rng = np.random.default_rng(0)
    for split, n in (("train", count), ("val", classes)):
        for label in range(classes):
            (folder / split / f"n{label:08d}").mkdir(parents=True)
        for i in range(n):
            coarse = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
            smooth = np.asarray(Image.fromarray(coarse).resize((500, 375), Image.BICUBIC))
            pixels = np.clip(smooth + rng.normal(0, 12, smooth.shape), 0, 255).astype(np.uint8)
            name = folder / split / f"n{i % classes:08d}" / f"img_{i}.JPEG"
            Image.fromarray(pixels).save(name, quality=90)
    return folder


def vgg16(*args: str, cores: str) -> str:
    cmd = ["taskset", "-c", cores, sys.executable, "-m", "vgg16", *args]
    result = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "GLOG_v": "3"})
    if result.returncode:
        raise SystemExit(f"{cmd} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result.stdout


def rates(output: str) -> tuple[float, float]:
    """Over all epochs (one-time reads included), and the last epoch's own."""
    whole = re.findall(r"^(\d+) img/s$", output, re.MULTILINE)[-1]
    last = re.findall(r"^epoch \d+/\d+: .*?(\d+) img/s \(this epoch", output, re.MULTILINE)[-1]
    return float(whole), float(last)


def ours(prepared: Path, dataset: str, batch: int, cores: str) -> tuple[float, float]:
    # 32 px for CIFAR (the zoo's CIFAR recipe says 224); the data's own classes
    size = "32,32" if dataset == "cifar10" else "224,224"
    settings = [f"max_epoch={EPOCHS}", "warmup_epochs=0", f"batch_size={batch}", "random_flip=true",
                f"image_size={size}", "num_classes=10"]  # fmt: skip
    flags = [x for pair in settings for x in ("--set", pair)]
    return rates(vgg16("train", "--input_only", "--data_path", str(prepared),
                      "--dataset", dataset, *flags, cores=cores))  # fmt: skip


def mindspore(family: str, path: Path, batch: int, cores: str, on_host: str) -> tuple[float, float]:
    workers = str(len(cores.split(",")))
    cmd = ["taskset", "-c", cores, sys.executable, "-c", MINDSPORE_PIPELINE, family, str(path),
           workers, str(EPOCHS), str(batch), on_host]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "GLOG_v": "3"})
    if result.returncode:
        raise SystemExit(f"{cmd} failed:\n{result.stderr[-3000:]}")
    return rates(result.stdout)


def dropout_ms() -> tuple[float, float]:
    """ms per batch of 64: one generator per image (the previous code), and vectorised."""
    where = np.arange(64)

    def per_image() -> None:
        draws = np.stack([randomness.generator(1, 2, 1, int(p)).random(8192) for p in where])
        np.split(((draws >= 0.5) / 0.5).astype(np.float32), [4096], axis=1)

    def vectorised() -> None:
        randomness.dropout_keep(1, 1, where, DROPOUT_WIDTHS, DROPOUT_P)

    times = []
    for draw in (per_image, vectorised):
        started = time.perf_counter()
        for _ in range(50):
            draw()
        times.append((time.perf_counter() - started) / 50 * 1000)
    return times[0], times[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cifar", type=Path, help="a cifar-10-batches-bin folder")
    parser.add_argument("--imagenet", type=Path, help="a folder with train/ of class folders")
    args = parser.parse_args()
    cores = {"1 core": "0", "2 cores": "0,1"}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cifar = args.cifar or write_cifar(root / "cifar", 50_000)
        imagenet = args.imagenet or write_photos(root / "imagenet", 2_000)
        for dataset, raw in (("cifar10", cifar), ("imagenet2012", imagenet)):
            vgg16("prepare", "--dataset", dataset, "--data_path", str(raw), "--output",
                  str(root / f"{dataset}-mr"), "--val_fraction", "0", "--shards", "1",
                  cores="0,1")  # fmt: skip
        train_files = sorted(str(p) for p in (root / "imagenet2012-mr").glob("train*.mindrecord"))
        cifar_mr, imagenet_mr = root / "cifar10-mr", root / "imagenet2012-mr"
        runs = {
            ("CIFAR-style", OURS): functools.partial(ours, cifar_mr, "cifar10", CIFAR_BATCH),
            ("ImageNet-style", OURS): functools.partial(
                ours, imagenet_mr, "imagenet2012", IMAGENET_BATCH
            ),
        }
        for who, on_host in ((THEIRS, "normalize"), (THEIRS_UINT8, "uint8")):
            runs[("CIFAR-style", who)] = functools.partial(
                mindspore, "cifar", cifar, CIFAR_BATCH, on_host=on_host
            )
            runs[("ImageNet-style", who)] = functools.partial(
                mindspore, "imagenet", Path(train_files[0]), IMAGENET_BATCH, on_host=on_host
            )
        measured: dict[tuple[str, str, str], list[np.ndarray]] = {}
        for round_ in range(1, args.rounds + 1):
            order = itertools.product(FAMILIES, cores, (OURS, THEIRS, THEIRS_UINT8))
            for family, name, who in order:  # ours and MindSpore's side by side
                whole, last = runs[(family, who)](cores=cores[name])
                measured.setdefault((family, who, name), []).append(np.array([whole, last]))
                print(f"round {round_}: {family} {who} {name}: {whole:,.0f} img/s over "
                      f"{EPOCHS} epochs, {last:,.0f} in the last", flush=True)  # fmt: skip
    best = {key: np.max(rounds, axis=0) for key, rounds in measured.items()}
    print(f"\nimg/s over {EPOCHS} epochs (one-time reads included) | in the last epoch alone; "
          "best of the rounds, and the median of each round's own ratio")  # fmt: skip
    for family in FAMILIES:
        for name in cores:
            a = best[(family, OURS, name)]
            for who in (THEIRS, THEIRS_UINT8):
                b = best[(family, who, name)]
                mine, theirs = measured[(family, OURS, name)], measured[(family, who, name)]
                ratio = np.median(np.divide(mine, theirs), axis=0)
                print(f"{family}, {name}: ours {a[0]:,.0f} | {a[1]:,.0f}, {who} {b[0]:,.0f} | "
                      f"{b[1]:,.0f}, ratio of the best {a[0] / b[0]:.2f} | {a[1] / b[1]:.2f}, "
                      f"median ratio {ratio[0]:.2f} | {ratio[1]:.2f}")  # fmt: skip
        for who in (OURS, THEIRS, THEIRS_UINT8):
            one, two = best[(family, who, "1 core")], best[(family, who, "2 cores")]
            print(f"{family}, {who}: 1 -> 2 cores {two[0] / one[0]:.2f}x | {two[1] / one[1]:.2f}x")
    old, new = dropout_ms()
    print(f"dropout masks, batch 64: {old:.2f} ms per image generator, {new:.2f} ms vectorised")


if __name__ == "__main__":
    main()
