"""ImageNet2012 as class folders: `train/<class>/<image>` train, `val/<class>/<image>` test.

ImageNet's own test images have no public labels, so its `val/` folder is the seed's test set
and becomes the `test` split here (`splits`). The seed's README calls the two folders
`ilsvrc/` and `validation_preprocess/`: those names are read too. A folder of class folders
alone (the seed's evaluation-only layout) serves any split. The official archives become these
folders through `imagenet_archives`.
"""

from __future__ import annotations

from pathlib import Path

from vgg16 import imagenet_archives
from vgg16.formats.base import RawSplits, Survey
from vgg16.formats.class_folders import ClassFolders

#: Each split's folder, under the names it may have (this project's first, then the seed's).
FOLDER_NAMES = {"train": ("train", "ilsvrc"), "test": ("val", "validation_preprocess")}


class ImageNet2012(ClassFolders):
    name = "imagenet2012"
    num_classes = imagenet_archives.NUM_CLASSES
    raw_splits = {split: names[0] for split, names in FOLDER_NAMES.items()}
    transforms = "imagenet"
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

    def folders(self, raw: Path) -> dict[str, Path]:
        return self._found(raw) or {split: raw for split in FOLDER_NAMES}

    def survey(self, raw: Path, num_classes: int | None) -> Survey:
        self._require_both(Path(raw))
        return super().survey(raw, num_classes)

    def read(self, raw: Path) -> RawSplits:
        self._require_both(Path(raw))
        return super().read(raw)

    def _found(self, raw: Path) -> dict[str, Path]:
        """The split folders there are, under either name."""
        found = {}
        for split, names in FOLDER_NAMES.items():
            folder = next((raw / name for name in names if (raw / name).is_dir()), None)
            if folder is not None:
                found[split] = folder
        return found

    def _require_both(self, raw: Path) -> None:
        """Verifying and converting take the whole layout, not an evaluation-only folder."""
        for split, names in FOLDER_NAMES.items():
            if split not in self._found(raw):
                raise FileNotFoundError(
                    f"image folder not found: {raw / names[0]} (nor {raw / names[1]})"
                )


FORMAT = ImageNet2012()
