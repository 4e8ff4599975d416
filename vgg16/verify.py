"""`vgg16 verify`: checks of a raw dataset layout before conversion, with a JSON report.

Converting ImageNet to MindRecord takes hours, so a truncated CIFAR batch, a label beyond the
class count, ``train/`` and ``val/`` disagreeing on their classes or an unreadable image should
fail here, early, naming the file. The report holds no timestamps or absolute paths, so an
unchanged dataset gives a byte-identical report.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from vgg16.atomic import write_text
from vgg16.readers import (
    CIFAR_RECORD_BYTES,
    IMAGE_FOLDER_SPLITS,
    class_folders,
    find_cifar_files,
    list_image_folder,
)

#: The official split sizes, for callers to pass as ``expect``; subsets and digits differ.
EXPECTED = {"cifar10": {"train": 50000, "test": 10000}}

_CIFAR_LAYOUT = ("cifar10", "digits")
_IMAGE_FOLDERS = ("imagenet2012",)
_IMAGE_SPLITS = tuple(IMAGE_FOLDER_SPLITS.values())


def main(args: argparse.Namespace) -> None:
    expect = {}
    for pair in args.expect:
        split, sep, count = pair.partition("=")
        if not sep or not count.isdigit():
            raise ValueError(f"--expect {pair!r}: expected SPLIT=COUNT, e.g. train=50000")
        expect[split] = int(count)
    report = verify(
        args.dataset, args.data_path, num_classes=args.num_classes, expect=expect or None
    )
    write_report(report, args.output)
    counts = {split: info["count"] for split, info in report["splits"].items()}
    print(f"verified {args.data_path}: {counts}")


def verify(
    dataset: str,
    raw: Path,
    *,
    num_classes: int,
    expect: dict[str, int] | None = None,
    progress_every: int = 10_000,
) -> dict:
    """Check the raw layout of ``dataset`` in ``raw`` and return counts per split and class.

    CIFAR-layout sets (cifar10, digits): every batch's size is a whole number of records and
    every label is below ``num_classes``. ImageNet: ``train/`` and ``val/`` hold the same
    ``num_classes`` class folders and every image's header can be read (pixels are not decoded,
    so this is I/O-bound). ``expect`` maps split names to the exact counts required; None
    skips that check. Any failure raises ValueError naming the file or split.
    """
    raw = Path(raw)
    if dataset in _CIFAR_LAYOUT:
        splits, files = _verify_cifar(raw, num_classes)
    elif dataset in _IMAGE_FOLDERS:
        splits, files = _verify_image_folders(raw, num_classes, progress_every)
    else:
        raise ValueError(
            f"unknown dataset {dataset!r}: expected one of {[*_CIFAR_LAYOUT, *_IMAGE_FOLDERS]}"
        )
    if expect is not None:
        _check_counts(raw, splits, expect)
    return {"dataset": dataset, "num_classes": num_classes, "splits": splits, "files": files}


def _split_entry(per_class: np.ndarray) -> dict:
    """The report entry of one split, in plain ints so that it serialises to JSON."""
    return {"count": int(per_class.sum()), "per_class": [int(n) for n in per_class]}


def _verify_cifar(raw: Path, num_classes: int) -> tuple[dict, int]:
    """Per-split counts of a CIFAR binary layout (train = data_batch_*, test = test_batch)."""
    found = find_cifar_files(raw)
    splits = {}
    for split, paths in found.items():
        per_class = np.zeros(num_classes, np.int64)
        for path in paths:
            per_class += np.bincount(_cifar_labels(path, num_classes), minlength=num_classes)
        splits[split] = _split_entry(per_class)
    return splits, sum(len(paths) for paths in found.values())


def _cifar_labels(path: Path, num_classes: int) -> np.ndarray:
    """The label byte of every record in ``path``, after checking size and label range."""
    size = path.stat().st_size
    if size == 0 or size % CIFAR_RECORD_BYTES:
        raise ValueError(
            f"{path} is {size} bytes, not a positive multiple of the "
            f"{CIFAR_RECORD_BYTES}-byte CIFAR-10 record"
        )
    labels = np.fromfile(path, dtype=np.uint8).reshape(-1, CIFAR_RECORD_BYTES)[:, 0]
    bad = np.flatnonzero(labels >= num_classes)
    if bad.size:
        raise ValueError(
            f"{path}: record {bad[0]} has label {labels[bad[0]]}, "
            f"expected labels below num_classes={num_classes}"
        )
    return labels


def _verify_image_folders(raw: Path, num_classes: int, progress_every: int) -> tuple[dict, int]:
    """Per-split counts of ``raw/train`` and ``raw/val`` class folders, every header read.

    The class folders are compared before any image is listed or opened, so a layout mistake
    (such as an unsorted, flat ``val/``) fails in seconds rather than after a full scan.
    """
    classes = {split: class_folders(raw / split) for split in _IMAGE_SPLITS}
    train, val = (set(classes[split]) for split in _IMAGE_SPLITS)
    if train != val:
        raise ValueError(
            f"{raw / 'train'} and {raw / 'val'} hold different class folders: "
            f"{len(train - val)} only in train (e.g. {sorted(train - val)[:3]}), "
            f"{len(val - train)} only in val (e.g. {sorted(val - train)[:3]})"
        )
    if len(train) != num_classes:
        raise ValueError(
            f"{raw / 'train'} holds {len(train)} class folders, expected num_classes={num_classes}"
        )
    listed = {split: list_image_folder(raw / split) for split in _IMAGE_SPLITS}
    paths = [path for split in _IMAGE_SPLITS for path in listed[split][0]]
    _check_headers(paths, progress_every)
    splits = {
        split: _split_entry(np.bincount(labels, minlength=num_classes))
        for split, (_, labels, _) in listed.items()
    }
    return splits, len(paths)


def _check_headers(paths: list[Path], progress_every: int) -> None:
    """Open every image, printing progress to stderr.

    ``Image.open`` parses the header (format, mode and a non-zero size) and stops before the
    pixel data, so a million images take minutes, not the hours a full decode would.
    """
    for done, path in enumerate(paths, start=1):
        try:
            with Image.open(path):
                pass
        except (OSError, SyntaxError) as error:  # what PIL raises for unreadable data
            raise ValueError(f"cannot read image {path}: {error}") from error
        if done % progress_every == 0:
            print(f"verified {done}/{len(paths)} images", file=sys.stderr)


def _check_counts(raw: Path, splits: dict, expect: dict[str, int]) -> None:
    """Raise ValueError unless every split named in ``expect`` has exactly that many images."""
    for split, want in expect.items():
        if split not in splits:
            raise ValueError(f"expect names split {split!r}, but {raw} has splits {list(splits)}")
        found = splits[split]["count"]
        if found != want:
            raise ValueError(f"split {split!r} of {raw}: expected {want} images, found {found}")


def write_report(report: dict, path: Path) -> None:
    """Write ``report`` as indented JSON via a temporary file, so it is never seen half-written."""
    write_text(path, json.dumps(report, indent=2) + "\n")
