"""Readers for the raw dataset layouts: CIFAR-10 binary batches, ImageNet class folders, digits.

CIFAR-10 is parsed with numpy rather than ``mindspore.dataset.Cifar10Dataset``, which needs
exactly 10,000 records in every ``.bin`` file and reads every ``.bin`` in a folder (so with the
official tarball layout it would train on the test batch too). The scikit-learn digits set is
written in the same CIFAR binary layout, so that the demo dataset takes the CIFAR code path.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from vgg16.atomic import atomic_write, staged_dir
from vgg16.images import IMAGE_EXTENSIONS
from vgg16.splits import RAW_SPLITS

CIFAR_RECORD_BYTES = 3073
CIFAR10_CLASSES = (
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
CIFAR_FOLDER = "cifar-10-batches-bin"
_CIFAR_FILES = RAW_SPLITS["cifar10"]

_CIFAR_SIDE = 32
CIFAR_IMAGE_SHAPE = (_CIFAR_SIDE, _CIFAR_SIDE, 3)
_JPEG_QUALITY = 95


def _cifar_folder(data_path: Path) -> Path:
    """The folder holding the ``.bin`` files: ``data_path`` itself or its official subfolder."""
    if not data_path.is_dir():
        raise FileNotFoundError(f"CIFAR data folder not found: {data_path}")
    for folder in (data_path, data_path / CIFAR_FOLDER):
        if any(folder.glob(_CIFAR_FILES["train"])) or (folder / _CIFAR_FILES["test"]).is_file():
            return folder
    raise FileNotFoundError(
        f"no CIFAR-10 binary files (data_batch_*.bin, test_batch.bin) in {data_path} "
        f"or {data_path / CIFAR_FOLDER}"
    )


def find_cifar_files(data_path: Path) -> dict[str, list[Path]]:
    """The training and test batches of a CIFAR-10 binary layout.

    Accepts the folder holding the ``.bin`` files (including an evaluation-only folder that
    holds just ``test_batch.bin``) or the parent of the tarball's ``cifar-10-batches-bin/``.
    """
    folder = _cifar_folder(Path(data_path))
    return {split: sorted(folder.glob(pattern)) for split, pattern in _CIFAR_FILES.items()}


def cifar_class_names(data_path: Path) -> list[str]:
    """Class names from ``batches.meta.txt`` beside the ``.bin`` files, else CIFAR-10's."""
    meta = _cifar_folder(Path(data_path)) / "batches.meta.txt"
    if not meta.is_file():
        return list(CIFAR10_CLASSES)
    names = [line.strip() for line in meta.read_text().splitlines() if line.strip()]
    if not names:
        raise ValueError(f"{meta} holds no class names (expected one name per line)")
    return names


def read_cifar_batches(files: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """Parse CIFAR-10 binary batches into images (N, 32, 32, 3) uint8 RGB and labels (N,) int32.

    Each record is one label byte then the red, green and blue 32x32 planes, row-major. Any
    number of records per file is accepted, so subsets and the digits set read the same way.
    """
    if not files:
        return np.empty((0, _CIFAR_SIDE, _CIFAR_SIDE, 3), np.uint8), np.empty(0, np.int32)
    images, labels = [], []
    for path in files:
        path = Path(path)
        raw = np.fromfile(path, dtype=np.uint8)
        if raw.size == 0 or raw.size % CIFAR_RECORD_BYTES:
            raise ValueError(
                f"{path} is {raw.size} bytes, not a positive multiple of the "
                f"{CIFAR_RECORD_BYTES}-byte CIFAR-10 record"
            )
        records = raw.reshape(-1, CIFAR_RECORD_BYTES)
        labels.append(records[:, 0].astype(np.int32))
        planes = records[:, 1:].reshape(-1, 3, _CIFAR_SIDE, _CIFAR_SIDE)
        images.append(planes.transpose(0, 2, 3, 1))
    return np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels)


def write_cifar_batch(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """Write images (N, 32, 32, 3) uint8 RGB and labels 0..255 as one CIFAR-10 binary batch.

    The file is written under a temporary name and renamed, so it is never seen half-written.
    """
    path = Path(path)
    images, labels = np.asarray(images), np.asarray(labels)
    if images.dtype != np.uint8 or images.shape[1:] != (_CIFAR_SIDE, _CIFAR_SIDE, 3):
        raise ValueError(
            f"images for {path} must be uint8 of shape (N, 32, 32, 3), "
            f"got {images.dtype} {images.shape}"
        )
    if labels.shape != (len(images),) or labels.min(initial=0) < 0 or labels.max(initial=0) > 255:
        raise ValueError(
            f"labels for {path} must be {len(images)} integers in 0..255, got shape {labels.shape}"
        )
    records = np.empty((len(images), CIFAR_RECORD_BYTES), np.uint8)
    records[:, 0] = labels
    records[:, 1:] = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    atomic_write(path, records.tofile)


def class_folders(root: Path) -> list[str]:
    """Sorted class-folder names of ``root``: the class index is the position in this list.
    Hidden folders (``.ipynb_checkpoints``, ``.git``) are not classes."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    classes = sorted(
        entry.name for entry in os.scandir(root) if entry.is_dir() and entry.name[0] != "."
    )
    if not classes:
        raise ValueError(f"{root} holds no class folders (expected {root}/<class>/<image>)")
    return classes


@dataclass(frozen=True)
class ImageFolder:
    """The images of a ``root/<class>/<image>`` tree, and the files that are not images."""

    paths: list[Path]
    labels: list[int]
    classes: list[str]
    skipped: list[Path]


def list_image_folder(root: Path, classes: list[str] | None = None) -> ImageFolder:
    """Image paths and labels of an ImageNet-style ``root/<class>/<image>`` tree.

    The class index is the position of the folder name in ``classes`` (train's folders, so
    a val/ lacking some classes keeps the same labels), by default this tree's sorted folder
    names, as in torchvision's ``ImageFolder``. Files of formats Pillow cannot decode by
    itself (a ``.txt``, ``.DS_Store``) are not images: they are returned as ``skipped``.
    """
    root = Path(root)
    found = class_folders(root)
    classes = found if classes is None else classes
    index = {name: i for i, name in enumerate(classes)}
    unknown = [name for name in found if name not in index]
    if unknown:
        raise ValueError(
            f"{root} has {len(unknown)} class folder(s) that the training classes lack: "
            f"{unknown[:5]} (first five)"
        )
    paths, labels, skipped = [], [], []
    for name in found:
        folder = root / name
        files = sorted(p for p in folder.iterdir() if p.is_file())
        images = [p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS]
        if not images:
            raise ValueError(f"class folder {folder} holds no images (of {len(files)} files)")
        skipped.extend(p for p in files if p.suffix.lower() not in IMAGE_EXTENSIONS)
        paths.extend(images)
        labels.extend([index[name]] * len(images))
    return ImageFolder(paths, labels, list(classes), skipped)


def write_digits(dest: Path, seed: int = 0) -> Path:
    """Write scikit-learn's digits as a CIFAR-10 binary layout and return its batches folder.

    The 1,797 bundled 8x8 images (values 0..16) are real data that need no download: scaled to
    0..255, upscaled to 32x32 (bilinear) and replicated to RGB, they run through the CIFAR
    pipeline unchanged. A seeded stratified 80/20 split gives ``data_batch_1.bin`` and
    ``test_batch.bin``; class names "0".."9" go to ``batches.meta.txt``.
    """
    digits = load_digits()
    small = np.rint(digits.images * (255 / 16)).astype(np.uint8)
    grey = np.stack(
        [
            np.asarray(
                Image.fromarray(img).resize((_CIFAR_SIDE, _CIFAR_SIDE), Image.Resampling.BILINEAR)
            )
            for img in small
        ]
    )
    images = np.repeat(grey[..., None], 3, axis=-1)
    labels = digits.target.astype(np.int32)
    train, test = train_test_split(
        np.arange(len(labels)), test_size=0.2, stratify=labels, random_state=seed
    )
    final = Path(dest) / CIFAR_FOLDER
    with staged_dir(final) as tmp:
        for name, index in (("data_batch_1.bin", train), ("test_batch.bin", test)):
            index = np.sort(index)
            write_cifar_batch(tmp / name, images[index], labels[index])
        (tmp / "batches.meta.txt").write_text("".join(f"{c}\n" for c in digits.target_names))
    return final
