"""Your own images: class folders as people keep them, in one of two layouts.

- A folder whose sub-folders are the classes: all of it is train, and `prepare` holds the
  test split out of it (`test_fraction`, stratified and seeded), then val (`val_fraction`).
- `train/` and `test/`, and `val/` if there is one; then nothing is held out for a split the
  folder has. A top-level `train/` folder is what tells this layout from the other.

Any number of classes from 2, named by their folders exactly; images of any size and any
format Pillow decodes by itself, checked in full by `verify`. Images in a class folder's
sub-folders belong to the class too (as in torchvision's `ImageFolder`: photos are often kept
by date or by camera). How many classes there are is the data's (`num_classes` is None).
"""

from __future__ import annotations

from pathlib import Path

from vgg16.formats.class_folders import ClassFolders


class Folders(ClassFolders):
    name = "folders"
    num_classes = None
    raw_splits = {"train": "train", "val": "val", "test": "test"}
    transforms = "imagenet"
    recursive = True

    def folders(self, raw: Path) -> dict[str, Path]:
        if not (raw / self.raw_splits["train"]).is_dir():
            return {"train": raw}
        return {split: raw / sub for split, sub in self.raw_splits.items() if (raw / sub).is_dir()}


FORMAT = Folders()
