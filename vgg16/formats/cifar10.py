"""CIFAR-10's binary layout: `data_batch_*.bin` train, `test_batch.bin` test, 32x32 RGB.

Each record is one label byte, then the red, green and blue 32x32 planes, row-major. The
batches are parsed with numpy rather than `mindspore.dataset.Cifar10Dataset`, which needs
exactly 10,000 records in every file and reads every `.bin` in a folder (so with the official
tarball layout it would train on the test batch too). Any number of records per file is
accepted, so subsets and the digits demo read the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from vgg16.atomic import atomic_write
from vgg16.formats.base import Format, RawSplits, Split, Survey, file_checksum

RECORD_BYTES = 3073
#: The class names when the folder has no `batches.meta.txt`.
CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
#: The folder the official tarball unpacks to.
FOLDER = "cifar-10-batches-bin"
#: One class name per line, beside the batches.
META = "batches.meta.txt"
SIDE = 32
IMAGE_SHAPE = (SIDE, SIDE, 3)


class Cifar10(Format):
    name = "cifar10"
    num_classes = 10
    raw_splits = {"train": "data_batch_*.bin", "test": "test_batch.bin"}
    transforms = "cifar"
    encoding = "raw"
    image_shape = IMAGE_SHAPE
    official_counts = {"train": 50000, "test": 10000}

    def class_names(self, raw: Path) -> list[str]:
        """From `batches.meta.txt` beside the batches, else CIFAR-10's."""
        meta = batches_folder(raw) / META
        if not meta.is_file():
            return list(CLASSES)
        names = [line.strip() for line in meta.read_text().splitlines() if line.strip()]
        if not names:
            raise ValueError(f"{meta} holds no class names (expected one name per line)")
        return names

    def split(self, raw: Path, name: str, class_names: list[str]) -> Split | None:
        files = find_batches(raw).get(name)
        if not files:
            return None
        return Split(sum(f.stat().st_size for f in files) // RECORD_BYTES, tuple(files))

    def records(self, split: Split) -> Pixels:
        return Pixels(*read_batches(list(split.files)))

    def survey(self, raw: Path, num_classes: int | None) -> Survey:
        """Every batch is a whole number of records, every label below `num_classes` (by
        default the class names')."""
        num_classes = num_classes or len(self.class_names(raw))
        found = find_batches(raw)
        per_class = {}
        for split, paths in found.items():
            counts = np.zeros(num_classes, np.int64)
            for path in paths:
                labels = _records(path, num_classes)[:, 0]
                counts += np.bincount(labels, minlength=num_classes)
            per_class[split] = counts
        return Survey(per_class, [], [], sum(len(paths) for paths in found.values()))

    def read(self, raw: Path) -> RawSplits:
        """Images stored as their raw 32x32x3 HWC bytes."""
        files = find_batches(raw)
        class_names = self.class_names(raw)
        return RawSplits(
            # test_batch.bin or not, no test split is held out of CIFAR's train batches
            splits={split: read_batches(found, len(class_names)) for split, found in files.items()},
            encode=_pixel_bytes,
            encoding=self.encoding,
            image_shape=list(IMAGE_SHAPE),
            class_names=class_names,
            sources=[file_checksum(f) for f in files["train"] + files["test"]],
        )


class Pixels:
    """Random access to in-memory images and their labels, as the input pipeline reads them."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.int32]:
        return self.images[i], self.labels[i]


def _pixel_bytes(pixels: list[np.ndarray], split: str) -> Iterator[tuple[int, bytes]]:
    return ((i, image.tobytes()) for i, image in enumerate(pixels))


def batches_folder(raw: Path) -> Path:
    """The folder holding the `.bin` files: `raw` itself or the tarball's `FOLDER` in it."""
    raw = Path(raw)
    if not raw.is_dir():
        raise FileNotFoundError(f"CIFAR data folder not found: {raw}")
    patterns = Cifar10.raw_splits
    for folder in (raw, raw / FOLDER):
        if any(folder.glob(patterns["train"])) or (folder / patterns["test"]).is_file():
            return folder
    raise FileNotFoundError(
        f"no CIFAR-10 binary files (data_batch_*.bin, test_batch.bin) in {raw} or {raw / FOLDER}"
    )


def find_batches(raw: Path) -> dict[str, list[Path]]:
    """The batch files of each split, sorted. `raw` may hold only `test_batch.bin` (an
    evaluation-only folder) or be the parent of the tarball's folder."""
    folder = batches_folder(raw)
    return {split: sorted(folder.glob(pattern)) for split, pattern in Cifar10.raw_splits.items()}


def _records(path: Path, num_classes: int | None = None) -> np.ndarray:
    """The (N, RECORD_BYTES) records of one batch, checked to be whole and, given
    `num_classes`, to have labels below it."""
    path = Path(path)
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % RECORD_BYTES:
        raise ValueError(
            f"{path} is {raw.size} bytes, not a positive multiple of the "
            f"{RECORD_BYTES}-byte CIFAR-10 record"
        )
    records = raw.reshape(-1, RECORD_BYTES)
    bad = np.flatnonzero(records[:, 0] >= num_classes) if num_classes else []
    if len(bad):
        raise ValueError(
            f"{path}: record {bad[0]} has label {records[bad[0], 0]}, "
            f"expected labels below num_classes={num_classes}"
        )
    return records


def read_batches(
    files: list[Path], num_classes: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 32, 32, 3) uint8 RGB and labels (N,) int32 of the batches, in order."""
    if not files:
        return np.empty((0, *IMAGE_SHAPE), np.uint8), np.empty(0, np.int32)
    images, labels = [], []
    for path in files:
        records = _records(path, num_classes)
        labels.append(records[:, 0].astype(np.int32))
        planes = records[:, 1:].reshape(-1, 3, SIDE, SIDE)
        images.append(planes.transpose(0, 2, 3, 1))
    return np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels)


def write_batch(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """Write images (N, 32, 32, 3) uint8 RGB and labels 0..255 as one batch, atomically."""
    path = Path(path)
    images, labels = np.asarray(images), np.asarray(labels)
    if images.dtype != np.uint8 or images.shape[1:] != IMAGE_SHAPE:
        raise ValueError(
            f"images for {path} must be uint8 of shape (N, 32, 32, 3), "
            f"got {images.dtype} {images.shape}"
        )
    if labels.shape != (len(images),) or labels.min(initial=0) < 0 or labels.max(initial=0) > 255:
        raise ValueError(
            f"labels for {path} must be {len(images)} integers in 0..255, got shape {labels.shape}"
        )
    records = np.empty((len(images), RECORD_BYTES), np.uint8)
    records[:, 0] = labels
    records[:, 1:] = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    atomic_write(path, records.tofile)


FORMAT = Cifar10()
