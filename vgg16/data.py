"""A dataset, opened once: a prepared MindRecord folder, or one of the seed's raw layouts.

`open_source` decides which it is and reads what describes it (the manifest, the CIFAR batch
files, the class folders); the result carries the splits' files, the class names, the counts
and the encoding, and is what `train`, `select` and `evaluate` hand to the input pipeline.
The manifest's format is defined here too, for `prepare` to write and everyone else to read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from vgg16 import readers
from vgg16.atomic import write_text
from vgg16.config import CIFAR_FAMILY, DATASETS, Recipe, check_dataset
from vgg16.splits import HELD_OUT, RAW_SPLITS, SPLITS

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


@dataclass(frozen=True)
class Split:
    """The files of one split: MindRecord shards, CIFAR batch files or image files (whose
    labels are then listed beside them)."""

    count: int
    files: tuple[Path, ...]
    labels: tuple[int, ...] | None = None


class DataSource:
    """What a command needs to know about its data, read once."""

    def __init__(
        self,
        path: Path,
        dataset: str,
        *,
        prepared: bool,
        encoding: str,
        class_names: list[str],
        image_shape: tuple[int, ...] | None = None,
        splits: dict[str, Split] | None = None,
        image_root: Path | None = None,
    ) -> None:
        self.path = Path(path)
        self.dataset = dataset
        self.prepared = prepared
        self.encoding = encoding  # "raw": pixels of `image_shape` (HWC); "jpeg": encoded bytes
        self.image_shape = image_shape
        self.class_names = class_names
        self._splits = dict(splits or {})
        self._image_root = image_root  # raw class folders are listed when a split is asked for

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def check(self, recipe: Recipe) -> None:
        check_dataset(recipe, self.dataset, self.num_classes, str(self.path))

    def split(self, name: str) -> Split:
        if name not in SPLITS:
            raise ValueError(f"split {name!r}: expected one of {list(SPLITS)}")
        if name not in self._splits and self._image_root is not None:
            self._splits.update(
                _image_folder_split(self._image_root, self.dataset, name, self.class_names)
            )
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


def open_source(path: Path, dataset: str | None = None) -> DataSource:
    """The prepared folder at `path` (it has a manifest), else the raw `dataset` layout there."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"--data_path {path} does not exist")
    if (path / MANIFEST).is_file():
        return _prepared(path)
    if dataset is None:
        raise ValueError(f"{path} has no {MANIFEST}: name the raw layout's dataset (--dataset)")
    if dataset in CIFAR_FAMILY:
        files = readers.find_cifar_files(path)
        splits = {
            split: Split(
                sum(f.stat().st_size for f in batches) // readers.CIFAR_RECORD_BYTES, tuple(batches)
            )
            for split, batches in files.items()
            if batches
        }
        return DataSource(
            path,
            dataset,
            prepared=False,
            encoding="raw",
            class_names=readers.cifar_class_names(path),
            image_shape=readers.CIFAR_IMAGE_SHAPE,
            splits=splits,
        )
    if dataset not in DATASETS:
        raise ValueError(f"dataset {dataset!r}: expected one of {list(DATASETS)}")
    train = path / RAW_SPLITS[dataset]["train"]
    names = readers.class_folders(train if train.is_dir() else path)
    return DataSource(
        path, dataset, prepared=False, encoding="jpeg", class_names=names, image_root=path
    )


def _image_folder_split(
    root: Path, dataset: str, split: str, class_names: list[str]
) -> dict[str, Split]:
    """`root/<train|val>/<class>/<image>` (see `splits.RAW_SPLITS`), or `root/<class>/<image>`
    for any split (the seed's evaluation-only folders). Labels index `class_names` (train's
    folders), so a val/ that lacks some classes keeps the same labels."""
    sub = RAW_SPLITS[dataset].get(split)
    if sub is None:
        return {}
    folder = root / sub if (root / sub).is_dir() else root
    listed = readers.list_image_folder(folder, class_names)
    return {split: Split(len(listed.paths), tuple(listed.paths), tuple(listed.labels))}


def _prepared(folder: Path) -> DataSource:
    manifest = read_manifest(folder)
    splits = {}
    for name, entry in manifest["splits"].items():
        files = tuple(folder.resolve() / f for f in entry["files"])
        missing = [str(p) for p in files if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"MindRecord shards of split {name!r} not found: {missing}")
        splits[name] = Split(entry["count"], files)
    shape = manifest["image_shape"]
    return DataSource(
        folder,
        manifest["dataset"],
        prepared=True,
        encoding="jpeg" if manifest["format"] == "jpeg" else "raw",
        class_names=list(manifest["class_names"]),
        image_shape=tuple(shape) if shape else None,
        splits=splits,
    )


def read_manifest(folder: Path) -> dict:
    """Read and check ``folder/manifest.json`` as `prepare` writes it."""
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


def write_manifest(folder: Path, manifest: dict) -> None:
    missing = [key for key in MANIFEST_KEYS if key not in manifest]
    assert not missing, f"manifest lacks {missing}"
    write_text(Path(folder) / MANIFEST, json.dumps(manifest, indent=2) + "\n")
