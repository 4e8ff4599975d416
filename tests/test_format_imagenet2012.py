"""The ImageNet2012 format's class folders: which files are images, and their labels."""

import re
from pathlib import Path

import pytest
from PIL import Image

from vgg16.formats.imagenet2012 import list_image_folder


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
