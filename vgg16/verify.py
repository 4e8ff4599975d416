"""`vgg16 verify`: checks of a raw dataset layout before conversion, with a JSON report.

Converting ImageNet to MindRecord takes hours, so a truncated CIFAR batch, a label beyond the
class count, a val/ class that train/ lacks or an image that does not decode should fail
here, early, naming every bad file. The report holds no timestamps or absolute paths, so an
unchanged dataset gives a byte-identical report.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from vgg16 import images
from vgg16.atomic import write_text
from vgg16.config import CIFAR_FAMILY
from vgg16.readers import CIFAR_RECORD_BYTES, class_folders, find_cifar_files, list_image_folder
from vgg16.splits import check_raw_split, raw_splits

#: The official split sizes, for callers to pass as ``expect``; subsets and digits differ.
EXPECTED = {"cifar10": {"train": 50000, "test": 10000}}


def main(args: argparse.Namespace) -> None:
    expect = {}
    for pair in args.expect:
        split, sep, count = pair.partition("=")
        if not sep or not count.isdigit():
            raise ValueError(f"--expect {pair!r}: expected SPLIT=COUNT, e.g. train=50000")
        expect[split] = int(count)
    args.output.unlink(missing_ok=True)  # a report of an earlier, different dataset
    report = verify(
        args.dataset, args.data_path, num_classes=args.num_classes, expect=expect or None
    )
    write_report(report, args.output)
    counts = {split: info["count"] for split, info in report["splits"].items()}
    for entry in report["skipped"]:
        print(f"skipped {entry['path']}: {entry['reason']}", file=sys.stderr)
    print(f"verified {args.data_path}: {counts}, {len(report['skipped'])} file(s) skipped")


def verify(
    dataset: str, raw: Path, *, num_classes: int, expect: dict[str, int] | None = None
) -> dict:
    """Check the raw layout of ``dataset`` in ``raw`` and return counts per split and class.

    Splits are named as everywhere else (`splits.RAW_SPLITS`: ImageNet's val/ is `test`).
    CIFAR-layout sets (cifar10, digits): every batch's size is a whole number of records and
    every label is below ``num_classes``. ImageNet: train/ holds ``num_classes`` class
    folders, val/ no class that train/ lacks, and every image decodes in full (over all
    cores). ``expect`` maps split names to the exact counts required; None skips that check.
    Any failure raises ValueError naming the file or split; bad images are all listed.
    """
    raw = Path(raw)
    layout = raw_splits(dataset)
    for split in expect or {}:
        check_raw_split(dataset, split, "expect")
    if dataset in CIFAR_FAMILY:
        splits, files = _verify_cifar(raw, num_classes)
        paths, skipped = [], []
    else:
        splits, paths, skipped = _list_image_folders(raw, layout, num_classes)
        files = len(paths)
    if expect is not None:
        _check_counts(raw, splits, expect)  # before hours of decoding
    for _ in images.decode_all(images.check, paths, "verify"):
        pass
    return {
        "dataset": dataset,
        "num_classes": num_classes,
        "raw_splits": layout,
        "splits": splits,
        "files": files,
        "skipped": skipped,
    }


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


def _list_image_folders(
    raw: Path, layout: dict[str, str], num_classes: int
) -> tuple[dict, list[Path], list[dict]]:
    """Per-split counts of the class folders, the images to decode and the files skipped.

    Nothing is opened yet, so a layout mistake (such as an unsorted, flat val/) fails in
    seconds rather than after a full decode.
    """
    folders = {split: raw / sub for split, sub in layout.items()}
    classes = class_folders(folders["train"])
    if len(classes) != num_classes:
        raise ValueError(
            f"{folders['train']} holds {len(classes)} class folders, "
            f"expected num_classes={num_classes}"
        )
    listed = {split: list_image_folder(folder, classes) for split, folder in folders.items()}
    splits = {
        split: _split_entry(np.bincount(found.labels, minlength=num_classes))
        for split, found in listed.items()
    }
    paths = [path for found in listed.values() for path in found.paths]
    skipped = [
        {"path": path.relative_to(raw).as_posix(), "reason": "not an image file (extension)"}
        for found in listed.values()
        for path in found.skipped
    ]
    return splits, paths, skipped


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
