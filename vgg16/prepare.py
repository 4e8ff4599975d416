"""`vgg16 prepare`: convert a raw dataset to MindRecord train/val/test splits with a manifest.

Converting once means training reads one indexed format whatever the source layout, and the
validation split is held out here, seeded and stratified, so every run of every recipe sees the
same one. ``manifest.json`` records counts per class, the shard files and checksums of the
source, so a folder of MindRecords describes itself.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from mindspore.mindrecord import FileWriter
from sklearn.model_selection import train_test_split

from vgg16 import images
from vgg16.atomic import staged_dir
from vgg16.config import CIFAR_FAMILY, DATASETS
from vgg16.data import write_manifest
from vgg16.readers import (
    cifar_class_names,
    find_cifar_files,
    list_image_folder,
    read_cifar_batches,
    write_digits,
)
from vgg16.splits import HELD_OUT, RAW_SPLITS

SCHEMA = {"image": {"type": "bytes"}, "label": {"type": "int32"}}
DEFAULT_VAL_FRACTION = 0.1
#: The val split's seed, 1 as the recipes' seed used to set it, so existing splits stay.
DEFAULT_SEED = 1
MAX_SHARDS = 1000  # MindRecord's limit

_WRITE_BATCH = 2000  # rows per write_raw_data call: large enough to amortise its overhead


@dataclass(frozen=True)
class RawSplits:
    """A raw layout as conversion sees it: items (pixel arrays or image paths) with labels,
    and how to turn the chosen items into (position among them, bytes a record stores)."""

    train: tuple[Sequence[Any], np.ndarray]
    test: tuple[Sequence[Any], np.ndarray]
    encode: Callable[[list[Any], str], Iterator[tuple[int, bytes]]]
    format: str
    image_shape: list[int] | None
    class_names: list[str]
    sources: list[dict]


def main(args: argparse.Namespace) -> None:
    manifest = prepare(
        args.dataset,
        args.data_path,
        args.output,
        val_fraction=args.val_fraction,
        shards=args.shards,
        seed=args.seed,
    )
    counts = {split: info["count"] for split, info in manifest["splits"].items()}
    print(f"wrote {args.output} {counts}")


def prepare(
    dataset: str,
    data_path: Path,
    output: Path,
    *,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    shards: int = 1,
    seed: int = DEFAULT_SEED,
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
    if not 1 <= shards <= MAX_SHARDS:
        raise ValueError(f"shards must be in 1..{MAX_SHARDS} (MindRecord's limit), got {shards}")
    data_path, output = Path(data_path), Path(output)
    if dataset == "digits" and not data_path.exists():
        write_digits(data_path)
    raw = _cifar(data_path) if dataset in CIFAR_FAMILY else _image_folders(data_path)
    num_classes = len(raw.class_names)
    (items, labels), (test_items, test_labels) = raw.train, raw.test
    train, val = _hold_out(labels, val_fraction, seed, data_path)
    with staged_dir(output) as tmp:
        splits, bad = {}, []
        for split, split_items, split_labels, index in (
            ("train", items, labels, train),
            (HELD_OUT, items, labels, val),
            ("test", test_items, test_labels, np.arange(len(test_labels))),
        ):
            if not index.size:
                continue
            chosen = split_labels[index]
            rows = (
                {"image": data, "label": int(chosen[i])}
                for i, data in raw.encode([split_items[i] for i in index], split)
            )
            try:
                splits[split] = _write_split(tmp, split, rows, chosen, num_classes, shards)
            except images.BadImages as error:  # go on, to name the other splits' bad files too
                bad += error.bad
        if bad:
            raise images.BadImages(bad)
        manifest = {
            "dataset": dataset,
            "format": raw.format,
            "image_shape": raw.image_shape,
            "class_names": raw.class_names,
            "num_classes": num_classes,
            "seed": seed,
            "val_fraction": val_fraction,
            "shards": shards,
            "splits": splits,
            "sources": raw.sources,
        }
        write_manifest(tmp, manifest)
    return manifest


def _cifar(data_path: Path) -> RawSplits:
    """CIFAR binary layout (also digits): images stored as raw 32x32x3 HWC bytes."""
    files = find_cifar_files(data_path)
    class_names = cifar_class_names(data_path)
    train, test = read_cifar_batches(files["train"]), read_cifar_batches(files["test"])
    for (_, labels), source in ((train, files["train"]), (test, files["test"])):
        if labels.size and labels.max() >= len(class_names):
            raise ValueError(
                f"label {labels.max()} in {', '.join(map(str, source))} is out of range for "
                f"{len(class_names)} classes"
            )
    return RawSplits(
        train=train,
        test=test,
        encode=lambda pixels, split: ((i, image.tobytes()) for i, image in enumerate(pixels)),
        format="raw",
        image_shape=list(train[0].shape[1:]),
        class_names=class_names,
        sources=[_file_checksum(f) for f in files["train"] + files["test"]],
    )


def _image_folders(data_path: Path) -> RawSplits:
    """ImageNet-style class folders (`splits.RAW_SPLITS`): images stored as RGB JPEG bytes,
    every one decoded first, so that no record fails to decode in training."""
    folders = {split: data_path / sub for split, sub in RAW_SPLITS["imagenet2012"].items()}
    train = list_image_folder(folders["train"])
    test = list_image_folder(folders["test"], train.classes)
    return RawSplits(
        train=(train.paths, np.array(train.labels)),
        test=(test.paths, np.array(test.labels)),
        encode=lambda paths, split: images.decode_all(
            images.record_bytes, paths, f"prepare {split}"
        ),
        format="jpeg",
        image_shape=None,
        class_names=train.classes,
        sources=[_listing_checksum(data_path, train.paths + test.paths)],
    )


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
            f"training images in {source} ({error}): stratifying needs at least one held-out "
            f"and one remaining image of each of the {np.unique(labels).size} classes, so "
            "change val_fraction (the workflow's datasets.<name>.val_fraction, or `vgg16 "
            "prepare --val_fraction`), or set it to 0 to hold out nothing"
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
