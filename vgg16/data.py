"""A dataset, opened once: a prepared MindRecord folder, or a format's raw layout.

`open_source` decides which it is and reads what describes it (the manifest, or the raw
layout through its format); the result carries the splits' files, the class names, the counts
and the encoding, and is what `train`, `select` and `evaluate` hand to the input pipeline.
The manifest's format is defined here too, for `prepare` to write and everyone else to read.

The manifest records a CRC32 of every MindRecord file (shards and their `.db` indexes), and a
prepared split is checked against it when first opened: MindRecord stores no checksum of its
own, and a shard overwritten in place would otherwise train without a word. Per file rather
than per record (TFRecord's way) because MindDataset reads records in C++ that we cannot hook,
and a whole-file CRC streams at the disk's speed over all cores before the first step.
"""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from vgg16 import formats
from vgg16.atomic import crc32, write_text
from vgg16.config import Recipe, fit
from vgg16.formats.base import Format, Split
from vgg16.images import cpus
from vgg16.layout import PreparedFolder
from vgg16.splits import HELD_OUT, SPLITS

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
#: The split key that holds each MindRecord file's checksum (older manifests lack it).
CHECKSUMS = "checksums"


def checksum(path: Path) -> str:
    """A file's checksum as the manifest records it."""
    return f"crc32:{crc32(path):08x}"


def checksums(folder: Path, names: list[str]) -> dict[str, str]:
    """The checksum of each file `names` in `folder`, over all cores."""
    with ThreadPoolExecutor(cpus()) as pool:
        return dict(zip(names, pool.map(lambda name: checksum(folder / name), names), strict=True))


def index_files(shards: list[str]) -> list[str]:
    """Each MindRecord shard with the `.db` index MindDataset reads beside it."""
    return [name for shard in shards for name in (shard, f"{shard}.db")]


class DataSource:
    """What a command needs to know about its data, read once. A raw layout's splits are
    listed when first asked for (ImageNet's train/ alone is 1.28 million files)."""

    def __init__(
        self,
        path: Path,
        format: Format,
        *,
        prepared: bool,
        encoding: str,
        class_names: list[str],
        image_shape: tuple[int, ...] | None = None,
        splits: dict[str, Split] | None = None,
        unchecked: dict[str, dict[str, str]] | None = None,
        share: tuple[int, int] = (0, 1),
    ) -> None:
        """`unchecked`: per prepared split, its files' recorded checksums, checked when the
        split is first opened; `share`: (rank, workers), so that each worker of a group
        checks its share of the files."""
        self.path = Path(path)
        self.format = format
        self.prepared = prepared
        self.encoding = encoding  # "raw": pixels of `image_shape` (HWC); "jpeg": encoded bytes
        self.image_shape = image_shape
        self.class_names = class_names
        self._splits = dict(splits or {})
        self._unchecked = dict(unchecked or {})
        self.share = share

    @property
    def dataset(self) -> str:
        return self.format.name

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def fit(self, recipe: Recipe) -> Recipe:
        """The recipe for this data: its number of classes, checked or taken from here."""
        return fit(recipe, self.num_classes, str(self.path))

    def split(self, name: str) -> Split:
        if name not in SPLITS:
            raise ValueError(f"split {name!r}: expected one of {list(SPLITS)}")
        if name not in self._splits and not self.prepared:
            found = self.format.split(self.path, name, self.class_names)
            if found is not None:
                self._splits[name] = found
        if name in self._unchecked:
            self._check(name, self._unchecked[name])
            del self._unchecked[name]  # once whole, not again; once damaged, on every ask
        if name in self._splits:
            return self._splits[name]
        if not self.prepared and name == HELD_OUT:
            raise ValueError(
                f"{self.path} is a raw {self.dataset} layout, which has no {HELD_OUT!r} split: "
                "run `vgg16 prepare` first (checkpoint selection never uses the test set)"
            )
        raise ValueError(
            f"split {name!r} is not in {self.path}; available: {', '.join(self._splits)}"
        )

    def _check(self, split: str, expected: dict[str, str]) -> None:
        """Refuse a split whose MindRecord files are not those `prepare` wrote, naming one."""
        rank, workers = self.share
        names = sorted(expected)[rank::workers]
        size = sum((self.path / name).stat().st_size for name in names)
        started = time.perf_counter()
        for name, actual in checksums(self.path, names).items():
            if actual != expected[name]:
                raise ValueError(
                    f"MindRecord file {self.path / name} of split {split!r} is damaged: its "
                    f"checksum is {actual}, {PreparedFolder(self.path).manifest} recorded "
                    f"{expected[name]} when it was written; prepare the dataset again"
                )
        seconds = time.perf_counter() - started
        print(
            f"checked {len(names)} MindRecord file(s) of split {split!r}: {size / 1e6:.1f} MB "
            f"in {seconds:.2f} s",
            file=sys.stderr,
            flush=True,
        )


def open_source(
    path: Path, dataset: str | None = None, *, share: tuple[int, int] = (0, 1)
) -> DataSource:
    """The prepared folder at `path` (it has a manifest), else the raw `dataset` layout there.
    A worker of a group checks its `share` (rank, workers) of the prepared files."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"--data_path {path} does not exist")
    folder = PreparedFolder(path)
    if folder.manifest.is_file():
        return _prepared(folder, share)
    if dataset is None:
        raise ValueError(
            f"{path} has no {folder.manifest.name}: name the raw layout's dataset (--dataset)"
        )
    fmt = formats.get(dataset)
    return DataSource(
        path,
        fmt,
        prepared=False,
        encoding=fmt.encoding,
        class_names=fmt.class_names(path),
        image_shape=fmt.image_shape,
    )


def _prepared(folder: PreparedFolder, share: tuple[int, int]) -> DataSource:
    manifest = read_manifest(folder.path)
    splits, unchecked = {}, {}
    for name, entry in manifest["splits"].items():
        files = tuple(folder.path.resolve() / f for f in entry["files"])
        needed = [folder.path / f for f in index_files(entry["files"])]
        missing = [str(f) for f in needed if not f.is_file()]
        if missing:
            raise FileNotFoundError(f"MindRecord files of split {name!r} not found: {missing}")
        splits[name] = Split(entry["count"], files)
        if CHECKSUMS in entry:
            unchecked[name] = entry[CHECKSUMS]
        else:
            print(
                f"{folder.manifest} records no checksums for split {name!r} (prepared by an "
                "older version): its files cannot be checked",
                file=sys.stderr,
            )
    shape = manifest["image_shape"]
    return DataSource(
        folder.path,
        formats.get(manifest["dataset"]),
        prepared=True,
        encoding=manifest["format"],
        class_names=list(manifest["class_names"]),
        image_shape=tuple(shape) if shape else None,
        splits=splits,
        unchecked=unchecked,
        share=share,
    )


def read_manifest(folder: Path) -> dict:
    """Read and check the manifest of a prepared folder, as `prepare` writes it."""
    path = PreparedFolder(folder).manifest
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


def write_manifest(folder: Path, manifest: dict) -> None:
    missing = [key for key in MANIFEST_KEYS if key not in manifest]
    assert not missing, f"manifest lacks {missing}"
    write_text(PreparedFolder(folder).manifest, json.dumps(manifest, indent=2) + "\n")
