"""What a dataset format is: the one object every stage asks about a raw layout.

Each format module (`cifar10`, `digits`, `imagenet2012`) defines one `Format`: which raw
files hold which split, how to list and read them, what `verify` counts and checks before
anything is decoded, what `prepare` stores, which transforms family trains on it, and its
default recipe and class count. The stages ask the format instead of comparing names, so a
new format is one module plus one line in `formats/__init__.py`.

No MindSpore here, nor anything slow to import: the workflow reads the formats when parsed.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vgg16.splits import SPLITS

#: The shipped recipes, one per format, named after it (config/recipes/<format>.yaml).
RECIPES = Path(__file__).resolve().parents[2] / "config" / "recipes"
#: How the images of a layout are held: "raw" pixels of a fixed shape (HWC uint8), or "jpeg"
#: bytes of any size. MindRecord keeps them as they are.
ENCODINGS = ("raw", "jpeg")


@dataclass(frozen=True)
class Split:
    """The files of one split: MindRecord shards, CIFAR batch files or image files (whose
    labels are then listed beside them)."""

    count: int
    files: tuple[Path, ...]
    labels: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Survey:
    """What `verify` learns of a raw layout before decoding anything: images per class in
    each split, the image files still to decode in full, the files that are not images, and
    how many files it read."""

    per_class: dict[str, np.ndarray]
    images: list[Path]
    skipped: list[Path]
    files: int


@dataclass(frozen=True)
class RawSplits:
    """A raw layout as `prepare` converts it: the items (pixel arrays or image paths) and
    labels of each split it has (train always; `prepare` holds out the others it lacks), and
    how to turn the chosen items into (position among them, bytes a record stores)."""

    splits: dict[str, tuple[Sequence[Any], np.ndarray]]
    encode: Callable[[list[Any], str], Iterator[tuple[int, bytes]]]
    encoding: str
    image_shape: list[int] | None
    class_names: list[str]
    sources: list[dict]


class Format(ABC):
    """The base of every format; a subclass sets the class attributes and reads its layout."""

    #: The name in configs, recipes and `--dataset`.
    name: str
    #: Classes of the official dataset: what `verify` checks unless a config says otherwise;
    #: None: as many as the data has.
    num_classes: int | None
    #: Split -> the raw files (glob pattern) or folder that hold it; `prepare` holds out of
    #: train a split the layout lacks.
    raw_splits: dict[str, str]
    #: The transforms family of the recipes written for this format (`config.TRANSFORMS`).
    transforms: str
    #: How the raw layout holds its images (`ENCODINGS`), and their shape when fixed.
    encoding: str
    image_shape: tuple[int, int, int] | None = None
    #: The official image count of each split, for a config's `expect`; None: no such thing.
    official_counts: dict[str, int] | None = None
    #: Whether the raw layout can be made here, without a source (`generate`).
    builtin: bool = False
    #: The keys of the official archive files `from_archives` takes, if any.
    archives: tuple[str, ...] = ()

    @property
    def default_recipe(self) -> Path:
        return RECIPES / f"{self.name}.yaml"

    def describe_splits(self) -> str:
        """One line for error messages: where each split comes from."""
        parts = [f"{split} <- {where}" for split, where in self.raw_splits.items()]
        held_out = [split for split in SPLITS if split not in self.raw_splits]
        parts += [f"{split} <- held out of train by prepare" for split in held_out]
        return ", ".join(parts)

    def layout(self, raw: Path) -> dict[str, str]:
        """What holds each split in `raw`, for `verify`'s report."""
        return dict(self.raw_splits)

    def check_split(self, split: str, what: str) -> None:
        """Raise ValueError unless the raw layout has `split`; `what` names who asked."""
        if split not in self.raw_splits:
            raise ValueError(
                f"{what} names split {split!r}, which a raw {self.name} layout does not have "
                f"({self.describe_splits()})"
            )

    # Where the raw layout comes from (`vgg16 download`).

    def generate(self, dest: Path) -> Path:
        """Write the raw layout into `dest` without a source; only a `builtin` format can."""
        raise ValueError(f"{self.name} is not built in: it needs a source")

    def from_archives(self, archives: dict[str, Path], dest: Path) -> Path:
        """Build the raw layout in `dest` from the dataset's official archive files."""
        raise ValueError(
            f"{self.name}: archives (--archive) are ImageNet2012's files; use url or data_path"
        )

    # The raw layout, read by `verify`, `prepare` and training on raw data.

    @abstractmethod
    def class_names(self, raw: Path) -> list[str]:
        """The class names, in label order."""

    @abstractmethod
    def split(self, raw: Path, name: str, class_names: list[str]) -> Split | None:
        """The files of split `name` of the layout in `raw`, or None if it has none."""

    @abstractmethod
    def records(self, split: Split) -> Sequence[tuple[np.ndarray, np.int32]]:
        """Random access to a split's (image, label) records, images as `encoding` holds
        them: what the input pipeline reads when training on the raw layout."""

    @abstractmethod
    def survey(self, raw: Path, num_classes: int | None) -> Survey:
        """Check the layout (against `num_classes`, when given) and count its images per
        split and class, opening no image: a layout mistake fails in seconds, not after hours
        of decoding."""

    @abstractmethod
    def read(self, raw: Path) -> RawSplits:
        """The layout's train and test items, as `prepare` converts them."""


def file_checksum(path: Path) -> dict:
    """Size and SHA-256 of one source file."""
    with path.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    return {"path": str(path.resolve()), "bytes": path.stat().st_size, "sha256": digest}


def listing_checksum(root: Path, paths: list[Path]) -> dict:
    """SHA-256 over the sorted "relpath<TAB>size" lines of an image tree.

    Hashing every image of ImageNet would take longer than the conversion; names and sizes
    catch missing, extra, renamed and truncated files.
    """
    lines = sorted(f"{p.relative_to(root).as_posix()}\t{p.stat().st_size}\n" for p in paths)
    digest = hashlib.sha256("".join(lines).encode())
    return {"path": str(root.resolve()), "files": len(lines), "listing_sha256": digest.hexdigest()}
