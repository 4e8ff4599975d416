"""Conversion of a raw dataset to MindRecord train/val/test splits with a manifest.

Converting once means training reads one indexed format whatever the source layout, and the
validation split is held out here, seeded and stratified, so every run of every recipe sees the
same one. ``manifest.json`` records counts per class, the shard files and checksums of the
source, so a folder of MindRecords describes itself.
"""

import hashlib
import json
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from mindspore.mindrecord import FileWriter
from sklearn.model_selection import train_test_split

from vgg16.config import DATASETS
from vgg16.readers import (
    cifar_class_names,
    find_cifar_files,
    list_image_folder,
    read_cifar_batches,
    rgb_jpeg_bytes,
    staged_dir,
    write_digits,
)

SCHEMA = {"image": {"type": "bytes"}, "label": {"type": "int32"}}
MANIFEST = "manifest.json"
MANIFEST_KEYS = (
    "dataset",
    "format",
    "image_shape",
    "class_names",
    "num_classes",
    "seed",
    "val_fraction",
    "shards",
    "splits",
    "sources",
)
SPLIT_KEYS = ("count", "per_class", "files")

_WRITE_BATCH = 2000  # rows per write_raw_data call: large enough to amortise its overhead
_PROGRESS_EVERY = 10_000


def prepare(
    dataset: str,
    data_path: Path,
    output: Path,
    *,
    val_fraction: float = 0.1,
    shards: int = 1,
    seed: int = 0,
) -> dict:
    """Convert ``dataset`` at ``data_path`` to ``output/<split>.mindrecord`` and a manifest.

    ``output`` is replaced only once the new folder is complete. Splits without images (such
    as ``test`` for a CIFAR folder without ``test_batch.bin``) are left out of the manifest.
    Returns the manifest.
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if not 1 <= shards <= 1000:
        raise ValueError(f"shards must be in 1..1000 (MindRecord's limit), got {shards}")
    data_path, output = Path(data_path), Path(output)
    if dataset == "digits" and not data_path.exists():
        write_digits(data_path)
    with staged_dir(output) as tmp:
        if dataset == "imagenet2012":
            manifest = _prepare_imagenet(data_path, tmp, val_fraction, shards, seed)
        else:
            manifest = _prepare_cifar(data_path, tmp, val_fraction, shards, seed)
        manifest = {"dataset": dataset, **manifest}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _prepare_cifar(data_path: Path, out: Path, val_fraction: float, shards: int, seed: int) -> dict:
    """CIFAR binary layout (also digits): images stored as raw 32x32x3 HWC bytes."""
    files = find_cifar_files(data_path)
    class_names = cifar_class_names(data_path)
    train_images, train_labels = read_cifar_batches(files["train"])
    test_images, test_labels = read_cifar_batches(files["test"])
    for labels, source in ((train_labels, files["train"]), (test_labels, files["test"])):
        if labels.size and labels.max() >= len(class_names):
            raise ValueError(
                f"label {labels.max()} in {', '.join(map(str, source))} is out of range for "
                f"{len(class_names)} classes"
            )
    train, val = _hold_out(train_labels, val_fraction, seed, data_path)
    splits = {}
    for split, images, labels, index in (
        ("train", train_images, train_labels, train),
        ("val", train_images, train_labels, val),
        ("test", test_images, test_labels, np.arange(len(test_labels))),
    ):
        if index.size:
            rows = ({"image": images[i].tobytes(), "label": int(labels[i])} for i in index)
            splits[split] = _write_split(out, split, rows, labels[index], len(class_names), shards)
    return {
        "format": "raw",
        "image_shape": list(train_images.shape[1:]),
        "class_names": class_names,
        "num_classes": len(class_names),
        "seed": seed,
        "val_fraction": val_fraction,
        "shards": shards,
        "splits": splits,
        "sources": [_file_checksum(f) for f in files["train"] + files["test"]],
    }


def _prepare_imagenet(
    data_path: Path, out: Path, val_fraction: float, shards: int, seed: int
) -> dict:
    """ImageNet-style ``train/`` and ``val/`` class folders: images stored as RGB JPEG bytes."""
    train_paths, train_labels, class_names = list_image_folder(data_path / "train")
    test_paths, test_labels, test_classes = list_image_folder(data_path / "val")
    if test_classes != class_names:
        missing = sorted(set(class_names) - set(test_classes))[:5]
        extra = sorted(set(test_classes) - set(class_names))[:5]
        raise ValueError(
            f"class folders of {data_path / 'val'} differ from those of {data_path / 'train'}: "
            f"missing {missing}, extra {extra} (first five of each)"
        )
    train_labels, test_labels = np.array(train_labels), np.array(test_labels)
    train, val = _hold_out(train_labels, val_fraction, seed, data_path / "train")
    splits = {}
    for split, paths, labels, index in (
        ("train", train_paths, train_labels, train),
        ("val", train_paths, train_labels, val),
        ("test", test_paths, test_labels, np.arange(len(test_labels))),
    ):
        if index.size:
            rows = ({"image": rgb_jpeg_bytes(paths[i]), "label": int(labels[i])} for i in index)
            rows = _with_progress(rows, split, index.size)
            splits[split] = _write_split(out, split, rows, labels[index], len(class_names), shards)
    return {
        "format": "jpeg",
        "image_shape": None,
        "class_names": class_names,
        "num_classes": len(class_names),
        "seed": seed,
        "val_fraction": val_fraction,
        "shards": shards,
        "splits": splits,
        "sources": [_listing_checksum(data_path, train_paths + test_paths)],
    }


def _hold_out(
    labels: np.ndarray, val_fraction: float, seed: int, source: Path
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of training and validation images, sorted so files keep the source order."""
    index = np.arange(len(labels))
    if val_fraction == 0 or not index.size:
        return index, index[:0]
    try:
        train, val = train_test_split(
            index, test_size=val_fraction, stratify=labels, random_state=seed
        )
    except ValueError as error:
        raise ValueError(
            f"cannot hold out a stratified val_fraction={val_fraction} of the {len(labels)} "
            f"training images in {source}: {error}"
        ) from error
    return np.sort(train), np.sort(val)


def _write_split(
    out: Path,
    split: str,
    rows: Iterable[dict],
    labels: np.ndarray,
    num_classes: int,
    shards: int,
) -> dict:
    """Write ``rows`` to ``out/<split>.mindrecord`` shards and describe what was written."""
    writer = FileWriter(str(out / f"{split}.mindrecord"), shard_num=shards, overwrite=True)
    writer.add_schema(SCHEMA, f"vgg16 {split}")
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) == _WRITE_BATCH:
            writer.write_raw_data(batch)
            batch = []
    if batch:
        writer.write_raw_data(batch)
    writer.commit()
    # FileWriter names one shard "<split>.mindrecord" and several "<split>.mindrecord0..N-1".
    files = sorted(
        (p.name for p in out.glob(f"{split}.mindrecord*") if p.suffix != ".db"),
        key=lambda name: (len(name), name),
    )
    missing = [name for name in files if not (out / f"{name}.db").is_file()]
    if len(files) != shards or missing:
        raise RuntimeError(
            f"FileWriter left {files} for {shards} shard(s) of {split} in {out}; "
            f"index files missing for {missing}"
        )
    return {
        "count": int(labels.size),
        "per_class": np.bincount(labels, minlength=num_classes).tolist(),
        "files": files,
    }


def _with_progress(rows: Iterator[dict], split: str, total: int) -> Iterator[dict]:
    """Pass ``rows`` through, reporting count and rate on stderr: ImageNet takes a while."""
    start = time.monotonic()
    for count, row in enumerate(rows, 1):
        yield row
        if count % _PROGRESS_EVERY == 0 or count == total:
            rate = count / max(time.monotonic() - start, 1e-9)
            print(f"{split}: {count}/{total} images, {rate:.0f} img/s", file=sys.stderr)


def _file_checksum(path: Path) -> dict:
    """Size and SHA-256 of one source file."""
    with path.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    return {"path": str(path.resolve()), "bytes": path.stat().st_size, "sha256": digest}


def _listing_checksum(root: Path, paths: list[Path]) -> dict:
    """SHA-256 over the sorted "relpath<TAB>size" lines of an image tree.

    Hashing every image of ImageNet would take longer than the conversion; names and sizes
    catch missing, extra, renamed and truncated files.
    """
    lines = sorted(f"{p.relative_to(root).as_posix()}\t{p.stat().st_size}\n" for p in paths)
    digest = hashlib.sha256("".join(lines).encode())
    return {"path": str(root.resolve()), "files": len(lines), "listing_sha256": digest.hexdigest()}


def load_manifest(folder: Path) -> dict:
    """Read and check ``folder/manifest.json`` as written by :func:`prepare`."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"MindRecord manifest not found: {path}")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(manifest, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(manifest).__name__}")
    missing = [key for key in MANIFEST_KEYS if key not in manifest]
    if missing:
        raise ValueError(f"{path} lacks keys {missing}")
    if not isinstance(manifest["splits"], dict):
        raise ValueError(f"{path}: 'splits' must be an object of split name to description")
    for split, entry in manifest["splits"].items():
        missing = [key for key in SPLIT_KEYS if not isinstance(entry, dict) or key not in entry]
        if missing:
            raise ValueError(f"{path}: split {split!r} lacks keys {missing}")
    return manifest


def split_files(folder: Path, manifest: dict, split: str) -> list[str]:
    """Absolute paths of the MindRecord shards of ``split``, as ``MindDataset`` takes them.

    Pass all of them: ``MindDataset`` given a list reads only the listed shards.
    """
    splits = manifest["splits"]
    if split not in splits:
        raise ValueError(
            f"split {split!r} is not in {Path(folder) / MANIFEST}; available: {', '.join(splits)}"
        )
    paths = [Path(folder).resolve() / name for name in splits[split]["files"]]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"MindRecord shards of split {split!r} not found: {missing}")
    return [str(p) for p in paths]
