"""`vgg16 prepare`: convert a raw dataset to MindRecord train/val/test splits with a manifest.

Converting once means training reads one indexed format whatever the source layout, and the
validation split is held out here, seeded and stratified, so every run of every recipe sees the
same one. The manifest records counts per class, the shard files with their checksums
(checked by every stage that reads them) and checksums of the source, so a folder of
MindRecords describes itself.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from mindspore.mindrecord import FileWriter
from sklearn.model_selection import train_test_split

from vgg16 import formats, images
from vgg16.atomic import staged_dir
from vgg16.data import CHECKSUMS, checksums, index_files, write_manifest
from vgg16.formats.base import RawSplits
from vgg16.layout import PreparedFolder
from vgg16.splits import HELD_OUT

SCHEMA = {"image": {"type": "bytes"}, "label": {"type": "int32"}}
DEFAULT_VAL_FRACTION = 0.1
DEFAULT_TEST_FRACTION = 0.1
#: The val split's seed, 1 as the recipes' seed used to set it, so existing splits stay.
DEFAULT_SEED = 1
MAX_SHARDS = 1000  # MindRecord's limit

_WRITE_BATCH = 2000  # rows per write_raw_data call: large enough to amortise its overhead


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", choices=formats.NAMES, required=True, help="raw layout")
    parser.add_argument(
        "--data_path",
        type=Path,
        required=True,
        help="CIFAR-10 binary folder, ImageNet folder with train/ and val/, or "
        "where to materialise digits",
    )
    parser.add_argument("--output", type=Path, required=True, help="MindRecord folder to create")
    parser.add_argument(
        "--val_fraction",
        type=float,
        default=DEFAULT_VAL_FRACTION,
        help="share of train held out, stratified, as the val split (default 0.1)",
    )
    parser.add_argument(
        "--test_fraction",
        type=float,
        default=DEFAULT_TEST_FRACTION,
        help="share held out, stratified, as the test split when the layout has none, before "
        "val is (default 0.1)",
    )
    parser.add_argument("--shards", type=int, default=1, help="MindRecord files per split")
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help="seed of the val hold-out (default 1)"
    )


def main(args: argparse.Namespace) -> None:
    manifest = prepare(
        args.dataset,
        args.data_path,
        args.output,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
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
    test_fraction: float = DEFAULT_TEST_FRACTION,
    shards: int = 1,
    seed: int = DEFAULT_SEED,
) -> dict:
    """Convert `dataset` at `data_path` to `output/<split>.mindrecord` and a manifest.

    A split the raw layout lacks is held out of train: test (`test_fraction`) first, then val
    (`val_fraction`). `output` is replaced only once the new folder is complete. Splits without
    images (such as `test` for a CIFAR folder without `test_batch.bin`) are left out of the
    manifest. A built-in dataset (digits) is generated first when `data_path` does not exist.
    Returns the manifest.
    """
    fmt = formats.get(dataset)
    for key, fraction in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 <= fraction < 1:
            raise ValueError(f"{key} must be in [0, 1), got {fraction}")
    if not 1 <= shards <= MAX_SHARDS:
        raise ValueError(f"shards must be in 1..{MAX_SHARDS} (MindRecord's limit), got {shards}")
    data_path, output = Path(data_path), Path(output)
    if fmt.builtin and not data_path.exists():
        fmt.generate(data_path)
    raw = fmt.read(data_path)
    fractions = {HELD_OUT: val_fraction, "test": test_fraction}
    chosen = _choose(raw, fractions, seed, data_path)
    with staged_dir(output) as tmp:
        manifest = {
            "dataset": dataset,
            "format": raw.encoding,
            "image_shape": raw.image_shape,
            "class_names": raw.class_names,
            "num_classes": len(raw.class_names),
            "seed": seed,
            "val_fraction": val_fraction,
            **({} if "test" in raw.splits else {"test_fraction": test_fraction}),
            "shards": shards,
            "splits": _write_splits(PreparedFolder(tmp), raw, chosen, shards),
            "sources": raw.sources,
        }
        write_manifest(tmp, manifest)
    return manifest


def _choose(
    raw: RawSplits, fractions: dict[str, float], seed: int, source: Path
) -> dict[str, tuple[Sequence, np.ndarray, np.ndarray]]:
    """Per split: its items, labels and the indices of those that go in it. A split the
    layout lacks is held out of train, stratified and seeded: test first, then val."""
    items, labels = raw.splits["train"]
    train = np.arange(len(labels))
    chosen = {}
    for split in ("test", HELD_OUT):
        if split in raw.splits:
            split_items, split_labels = raw.splits[split]
            chosen[split] = (split_items, split_labels, np.arange(len(split_labels)))
        else:
            key = "val_fraction" if split == HELD_OUT else f"{split}_fraction"
            train, held = _hold_out(labels, train, fractions[split], seed, source, key)
            chosen[split] = (items, labels, held)
    return {"train": (items, labels, train), HELD_OUT: chosen[HELD_OUT], "test": chosen["test"]}


def _write_splits(
    out: PreparedFolder,
    raw: RawSplits,
    chosen: dict[str, tuple[Sequence, np.ndarray, np.ndarray]],
    shards: int,
) -> dict[str, dict]:
    """Each split's records, and what `_write_split` says of them; every bad image of every
    split is named, not only the first split's."""
    splits, bad = {}, []
    for split, (items, labels, index) in chosen.items():
        if not index.size:
            continue
        picked = labels[index]
        rows = (
            {"image": data, "label": int(picked[i])}
            for i, data in raw.encode([items[i] for i in index], split)
        )
        try:
            splits[split] = _write_split(out, split, rows, picked, len(raw.class_names), shards)
        except images.BadImages as error:
            bad += error.bad
    if bad:
        raise images.BadImages(bad)
    return splits


def _hold_out(
    labels: np.ndarray, index: np.ndarray, fraction: float, seed: int, source: Path, key: str
) -> tuple[np.ndarray, np.ndarray]:
    """`index` (of train's images) split into what stays and what is held out, both sorted
    so that records keep the source's order; `key` names the fraction in errors."""
    if fraction == 0 or not index.size:
        return index, index[:0]
    try:
        kept, held = train_test_split(
            index, test_size=fraction, stratify=labels[index], random_state=seed
        )
    except ValueError as error:
        raise ValueError(
            f"cannot hold out a stratified {key}={fraction} of the {index.size} "
            f"training images in {source} ({error}): stratifying needs at least one held-out "
            f"and one remaining image of each of the {np.unique(labels[index]).size} classes, "
            f"so change {key} (the workflow's datasets.<name>.{key}, or `vgg16 "
            f"prepare --{key}`), or set it to 0 to hold out nothing"
        ) from error
    return np.sort(kept), np.sort(held)


def _write_split(
    out: PreparedFolder,
    split: str,
    rows: Iterable[dict],
    labels: np.ndarray,
    num_classes: int,
    shards: int,
) -> dict:
    """Write `rows` to the split's MindRecord shards in `out` and describe what was written."""
    name = out.shards(split)
    writer = FileWriter(str(out.path / name), shard_num=shards, overwrite=True)
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
    # FileWriter names one shard `name` and several `name`0..N-1, each with its index `.db`.
    files = sorted(
        (p.name for p in out.path.glob(f"{name}*") if p.suffix != ".db"),
        key=lambda shard: (len(shard), shard),
    )
    missing = [shard for shard in files if not (out.path / f"{shard}.db").is_file()]
    if len(files) != shards or missing:
        raise RuntimeError(
            f"FileWriter left {files} for {shards} shard(s) of {split} in {out.path}; "
            f"index files missing for {missing}"
        )
    return {
        "count": int(labels.size),
        "per_class": np.bincount(labels, minlength=num_classes).tolist(),
        "files": files,
        CHECKSUMS: checksums(out.path, index_files(files)),
    }
