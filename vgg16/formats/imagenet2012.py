"""ImageNet2012 as class folders: `train/<class>/<image>` train, `val/<class>/<image>` test.

ImageNet's own test images have no public labels, so its `val/` folder is the seed's test set
and becomes the `test` split here (`splits`). Images are files of any size and any format
Pillow decodes by itself; records store them as RGB JPEG bytes (`images.record_bytes`). The
class index is the position of the folder name among train's sorted folder names, as in
torchvision's `ImageFolder`. The official archives become these folders through
`imagenet_archives`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vgg16 import imagenet_archives, images
from vgg16.formats.base import Format, RawSplits, Split, Survey, listing_checksum


class ImageNet2012(Format):
    name = "imagenet2012"
    num_classes = imagenet_archives.NUM_CLASSES
    raw_splits = {"train": "train", "test": "val"}
    transforms = "imagenet"
    encoding = "jpeg"
    official_counts = {"train": 1281167, "test": 50000}
    archives = tuple(imagenet_archives.ARCHIVES)

    def from_archives(self, archives: dict[str, Path], dest: Path) -> Path:
        """The official train, val and devkit files, streamed into class folders."""
        if sorted(archives) != sorted(self.archives):
            raise ValueError(
                f"{self.name}: archives (--archive KEY=PATH) need the keys "
                f"{list(self.archives)}, got {sorted(archives)}"
            )
        paths = {key: Path(path) for key, path in archives.items()}
        return imagenet_archives.extract_imagenet(
            paths["train"], paths["val"], paths["devkit"], dest
        )

    def class_names(self, raw: Path) -> list[str]:
        """Train's class folders; a folder of class folders alone (the seed's evaluation
        layout) names them itself."""
        train = Path(raw) / self.raw_splits["train"]
        return class_folders(train if train.is_dir() else raw)

    def split(self, raw: Path, name: str, class_names: list[str]) -> Split | None:
        """`raw/<train|val>/`, or `raw` itself for any split (the seed's evaluation-only
        folders). Labels index `class_names`, so a val/ lacking some classes keeps train's
        labels."""
        sub = self.raw_splits.get(name)
        if sub is None:
            return None
        folder = Path(raw) / sub if (Path(raw) / sub).is_dir() else Path(raw)
        listed = list_image_folder(folder, class_names)
        return Split(len(listed.paths), tuple(listed.paths), tuple(listed.labels))

    def records(self, split: Split) -> ImageFiles:
        return ImageFiles(list(split.files), list(split.labels or ()))

    def survey(self, raw: Path, num_classes: int) -> Survey:
        """train/ holds `num_classes` class folders, val/ no class that train/ lacks, and
        every class folder at least one image; the images are listed, not opened."""
        folders = {split: Path(raw) / sub for split, sub in self.raw_splits.items()}
        classes = class_folders(folders["train"])
        if len(classes) != num_classes:
            raise ValueError(
                f"{folders['train']} holds {len(classes)} class folders, "
                f"expected num_classes={num_classes}"
            )
        listed = {split: list_image_folder(folder, classes) for split, folder in folders.items()}
        return Survey(
            per_class={
                split: np.bincount(found.labels, minlength=num_classes)
                for split, found in listed.items()
            },
            images=[path for found in listed.values() for path in found.paths],
            skipped=[path for found in listed.values() for path in found.skipped],
            files=sum(len(found.paths) for found in listed.values()),
        )

    def read(self, raw: Path) -> RawSplits:
        """Every image is decoded before it is stored, so no record fails in training."""
        folders = {split: Path(raw) / sub for split, sub in self.raw_splits.items()}
        train = list_image_folder(folders["train"])
        test = list_image_folder(folders["test"], train.classes)
        return RawSplits(
            train=(train.paths, np.array(train.labels)),
            test=(test.paths, np.array(test.labels)),
            encode=lambda paths, split: images.decode_all(
                images.record_bytes, paths, f"prepare {split}"
            ),
            encoding=self.encoding,
            image_shape=None,
            class_names=train.classes,
            sources=[listing_checksum(Path(raw), train.paths + test.paths)],
        )


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
    """Sorted class-folder names of `root`: the class index is the position in this list.
    Hidden folders (`.ipynb_checkpoints`, `.git`) are not classes."""
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


def list_image_folder(root: Path, classes: list[str] | None = None) -> ImageFolder:
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
        files = sorted(p for p in folder.iterdir() if p.is_file())
        pictures = [p for p in files if p.suffix.lower() in images.IMAGE_EXTENSIONS]
        if not pictures:
            raise ValueError(f"class folder {folder} holds no images (of {len(files)} files)")
        skipped.extend(p for p in files if p.suffix.lower() not in images.IMAGE_EXTENSIONS)
        paths.extend(pictures)
        labels.extend([index[name]] * len(pictures))
    return ImageFolder(paths, labels, list(classes), skipped)


FORMAT = ImageNet2012()
