"""Class folders as the imagenet2012 format reads them: which files are images, their labels,
the split folders under this project's and the seed's names."""

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vgg16.formats.class_folders import list_image_folder
from vgg16.formats.imagenet2012 import FORMAT
from vgg16.images import record_bytes


def _save(path: Path, image: Image.Image, fmt: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format=fmt)
    return path


def test_list_image_folder_indexes_classes_in_sorted_order(tmp_path: Path) -> None:
    tiny = Image.new("RGB", (4, 4))
    for cls, names in {"n02": ["b.jpeg", "a.PNG"], "n01": ["z.JPEG"], "n03": ["c.jpg"]}.items():
        for name in names:
            _save(tmp_path / cls / name, tiny, "PNG")
    _save(tmp_path / "n03" / "d.bmp", tiny, "BMP")  # any format Pillow decodes
    (tmp_path / "n01" / "notes.txt").write_text("not an image")
    (tmp_path / "n01" / ".DS_Store").write_bytes(b"\0")
    _save(tmp_path / ".ipynb_checkpoints" / "x.png", tiny, "PNG")  # hidden: not a class

    found = list_image_folder(tmp_path)

    assert found.classes == ["n01", "n02", "n03"]
    assert [p.relative_to(tmp_path).as_posix() for p in found.paths] == [
        "n01/z.JPEG",
        "n02/a.PNG",
        "n02/b.jpeg",
        "n03/c.jpg",
        "n03/d.bmp",
    ]
    assert found.labels == [0, 1, 1, 2, 2]
    assert [p.name for p in found.skipped] == [".DS_Store", "notes.txt"]


def test_list_image_folder_labels_by_the_classes_given(tmp_path: Path) -> None:
    """val/ lacking a class keeps train's indices; a class train lacks is refused."""
    tiny = Image.new("RGB", (4, 4))
    _save(tmp_path / "n03" / "a.png", tiny, "PNG")

    assert list_image_folder(tmp_path, ["n01", "n02", "n03"]).labels == [2]
    message = r"has 1 class folder\(s\) that the training classes lack: \['n03'\]"
    with pytest.raises(ValueError, match=message):
        list_image_folder(tmp_path, ["n01", "n02"])


def test_list_image_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing"):
        list_image_folder(tmp_path / "missing")
    with pytest.raises(ValueError, match="no class folders"):
        list_image_folder(tmp_path)
    (tmp_path / "empty_class").mkdir()
    (tmp_path / "empty_class" / "readme.txt").write_text("no images here")
    message = f"^class folder {re.escape(str(tmp_path / 'empty_class'))} holds no images "
    with pytest.raises(ValueError, match=message + r"\(of 1 files\)$"):
        list_image_folder(tmp_path)


def test_a_raw_split_is_read_as_the_records_prepare_would_store(tmp_path: Path) -> None:
    """The seed's raw layout: train/ and val/ class folders, val/ the test split."""
    _save(tmp_path / "train" / "n01" / "a.png", Image.new("L", (5, 3), 7), "PNG")
    _save(tmp_path / "train" / "n02" / "b.jpg", Image.new("RGB", (4, 6), (1, 2, 3)), "JPEG")
    _save(tmp_path / "val" / "n02" / "c.jpg", Image.new("RGB", (4, 4)), "JPEG")
    classes = FORMAT.class_names(tmp_path)
    assert classes == ["n01", "n02"]
    split = FORMAT.split(tmp_path, "train", classes)
    assert split.count == 2 and split.labels == (0, 1)
    records = FORMAT.records(split)
    assert len(records) == 2
    for (data, label), path, want in zip(records, split.files, (0, 1), strict=False):
        assert data.tobytes() == record_bytes(path) and (label, label.dtype) == (want, np.int32)
    test = FORMAT.split(tmp_path, "test", classes)
    assert [p.name for p in test.files] == ["c.jpg"] and test.labels == (1,)
    assert FORMAT.split(tmp_path, "val", classes) is None  # held out by prepare, not raw


def test_the_seeds_folder_names_are_read_too(tmp_path: Path) -> None:
    """The seed's README trains on `ilsvrc/` and evaluates on `validation_preprocess/`."""
    for split, name in (("ilsvrc", "n01"), ("ilsvrc", "n02"), ("validation_preprocess", "n02")):
        _save(tmp_path / split / name / "a.JPEG", Image.new("RGB", (4, 4)), "JPEG")
    assert FORMAT.layout(tmp_path) == {"train": "ilsvrc", "test": "validation_preprocess"}
    raw = FORMAT.read(tmp_path)
    assert raw.class_names == ["n01", "n02"]
    assert {split: labels.tolist() for split, (_, labels) in raw.splits.items()} == {
        "train": [0, 1],
        "test": [1],
    }


def test_converting_needs_both_split_folders(tmp_path: Path) -> None:
    for name in ("n01", "n02"):
        _save(tmp_path / "train" / name / "a.JPEG", Image.new("RGB", (4, 4)), "JPEG")
    message = (
        f"image folder not found: {tmp_path / 'val'} (nor {tmp_path / 'validation_preprocess'})"
    )
    with pytest.raises(FileNotFoundError, match=f"^{re.escape(message)}$"):
        FORMAT.read(tmp_path)
