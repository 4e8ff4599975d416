"""Formats whose images are files in one folder per class, per split: what `imagenet2012` and
`folders` share.

A class is a folder; its name is the class name exactly as it is on disk (unicode, spaces,
case), and the class index is its position among train's class folders sorted by code point
(Python's `sorted`, as torchvision's `ImageFolder`: "B" before "a"). Folders whose name starts
with a dot (`.ipynb_checkpoints`, `.git`) are not classes. An image is a file of a format
Pillow decodes by itself, of any size; records store it as RGB JPEG bytes
(`images.record_bytes`: greyscale and the rest become RGB). Other files are skipped and
listed.
"""

from __future__ import annotations

import os
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vgg16 import images
from vgg16.formats.base import Format, RawSplits, Split, Survey, listing_checksum


class ClassFolders(Format):
    encoding = "jpeg"
    #: Whether the images in a class folder's sub-folders belong to the class too.
    recursive = False

    @abstractmethod
    def folders(self, raw: Path) -> dict[str, Path]:
        """The folder of class folders of each split the layout in `raw` has."""

    def layout(self, raw: Path) -> dict[str, str]:
        raw = Path(raw)
        return {split: f.relative_to(raw).as_posix() for split, f in self.folders(raw).items()}

    def class_names(self, raw: Path) -> list[str]:
        """Train's class folders, in index order; at least two, or it is no classifier."""
        root = self.folders(Path(raw)).get("train", Path(raw))
        names = class_folders(root)
        if len(names) < 2:
            raise ValueError(
                f"{root} holds one class folder ({names[0]!r}): a classifier needs 2 or more"
            )
        return names

    def split(self, raw: Path, name: str, class_names: list[str]) -> Split | None:
        folder = self.folders(Path(raw)).get(name)
        if folder is None:
            return None
        listed = list_image_folder(folder, class_names, recursive=self.recursive)
        return Split(len(listed.paths), tuple(listed.paths), tuple(listed.labels))

    def records(self, split: Split) -> ImageFiles:
        return ImageFiles(list(split.files), list(split.labels or ()))

    def survey(self, raw: Path, num_classes: int | None) -> Survey:
        """Train has `num_classes` class folders (when given), the other splits no class that
        train lacks, and every class folder an image; the images are listed, not opened."""
        classes = self.class_names(raw)
        folders = self.folders(Path(raw))
        if num_classes is not None and len(classes) != num_classes:
            raise ValueError(
                f"{folders['train']} holds {len(classes)} class folders, "
                f"expected num_classes={num_classes}"
            )
        listed = {
            split: list_image_folder(folder, classes, recursive=self.recursive)
            for split, folder in folders.items()
        }
        return Survey(
            per_class={
                split: np.bincount(found.labels, minlength=len(classes))
                for split, found in listed.items()
            },
            images=[path for found in listed.values() for path in found.paths],
            skipped=[path for found in listed.values() for path in found.skipped],
            files=sum(len(found.paths) for found in listed.values()),
        )

    def read(self, raw: Path) -> RawSplits:
        """Every image is decoded before it is stored, so no record fails in training."""
        classes = self.class_names(raw)
        listed = {
            split: list_image_folder(folder, classes, recursive=self.recursive)
            for split, folder in self.folders(Path(raw)).items()
        }
        return RawSplits(
            splits={
                split: (found.paths, np.array(found.labels)) for split, found in listed.items()
            },
            encode=_record_bytes,
            encoding=self.encoding,
            image_shape=None,
            class_names=classes,
            sources=[listing_checksum(Path(raw), [p for f in listed.values() for p in f.paths])],
        )


def _record_bytes(paths: list[Path], split: str):
    return images.decode_all(images.record_bytes, paths, f"prepare {split}")


class ImageFiles:
    """Random access to image files as the RGB JPEG bytes `prepare` would store."""

    def __init__(self, paths: Sequence[Path], labels: Sequence[int]) -> None:
        self.paths, self.labels = paths, labels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.int32]:
        data = images.record_bytes(self.paths[i])
        return np.frombuffer(data, dtype=np.uint8), np.int32(self.labels[i])


def class_folders(root: Path) -> list[str]:
    """Sorted class-folder names of `root`: the class index is the position in this list."""
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
    """The images of a `root/<class>/<image>` tree, and the files that are not images."""

    paths: list[Path]
    labels: list[int]
    classes: list[str]
    skipped: list[Path]


def _files(folder: Path, recursive: bool) -> list[Path]:
    """The files of a class folder (and of its sub-folders, hidden ones aside, if
    `recursive`), sorted by their path in it."""
    if not recursive:
        return sorted(p for p in folder.iterdir() if p.is_file())
    found = []
    for top, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if d[0] != "."]
        found += [Path(top) / name for name in names]
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def list_image_folder(
    root: Path, classes: list[str] | None = None, *, recursive: bool = False
) -> ImageFolder:
    """Image paths and labels of a `root/<class>/<image>` tree.

    The class index is the position of the folder name in `classes` (train's folders), by
    default this tree's sorted folder names. Files of formats Pillow cannot decode by itself
    (a `.txt`, `.DS_Store`) are not images: they are returned as `skipped`.
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
        files = _files(folder, recursive)
        pictures = [p for p in files if p.suffix.lower() in images.IMAGE_EXTENSIONS]
        if not pictures:
            raise ValueError(f"class folder {folder} holds no images (of {len(files)} files)")
        skipped.extend(p for p in files if p.suffix.lower() not in images.IMAGE_EXTENSIONS)
        paths.extend(pictures)
        labels.extend([index[name]] * len(pictures))
    return ImageFolder(paths, labels, list(classes), skipped)
