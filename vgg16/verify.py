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

from vgg16 import formats, images
from vgg16.atomic import write_text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", choices=formats.NAMES, required=True, help="raw layout")
    parser.add_argument("--data_path", type=Path, required=True)
    parser.add_argument(
        "--num_classes", type=int, help="classes the data must have (default: as it has)"
    )
    parser.add_argument(
        "--expect",
        action="append",
        default=[],
        metavar="SPLIT=COUNT",
        help="exact image count a split must have; repeatable",
    )
    parser.add_argument("--output", type=Path, required=True, help="the JSON report to write")


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
    dataset: str, raw: Path, *, num_classes: int | None, expect: dict[str, int] | None = None
) -> dict:
    """Check the raw layout of `dataset` in `raw` and return counts per split and class.

    The format checks its layout (`Format.survey`: whole CIFAR records and labels below
    `num_classes`; ImageNet's class folders), then every image it lists is decoded in full,
    over all cores. Splits are named as everywhere else (ImageNet's val/ is `test`). `expect`
    maps split names to the exact counts required; None skips that check. Any failure raises
    ValueError naming the file or split; bad images are all listed.
    """
    raw = Path(raw)
    fmt = formats.get(dataset)
    for split in expect or {}:
        fmt.check_split(split, "expect")
    survey = fmt.survey(raw, num_classes)
    splits = {split: _split_entry(counts) for split, counts in survey.per_class.items()}
    if expect is not None:
        _check_counts(raw, splits, expect)  # before hours of decoding
    for _ in images.decode_all(images.check, survey.images, "verify"):
        pass
    return {
        "dataset": dataset,
        "num_classes": len(next(iter(survey.per_class.values()))),
        "raw_splits": fmt.layout(raw),
        "splits": splits,
        "files": survey.files,
        "skipped": [
            {"path": path.relative_to(raw).as_posix(), "reason": "not an image file (extension)"}
            for path in survey.skipped
        ],
    }


def _split_entry(per_class: np.ndarray) -> dict:
    """The report entry of one split, in plain ints so that it serialises to JSON."""
    return {"count": int(per_class.sum()), "per_class": [int(n) for n in per_class]}


def _check_counts(raw: Path, splits: dict, expect: dict[str, int]) -> None:
    """Raise ValueError unless every split named in `expect` has exactly that many images."""
    for split, want in expect.items():
        if split not in splits:
            raise ValueError(f"expect names split {split!r}, but {raw} has splits {list(splits)}")
        found = splits[split]["count"]
        if found != want:
            raise ValueError(f"split {split!r} of {raw}: expected {want} images, found {found}")


def write_report(report: dict, path: Path) -> None:
    """Write `report` as indented JSON via a temporary file, so it is never seen half-written."""
    write_text(path, json.dumps(report, indent=2) + "\n")
