"""Your own images (`format: folders`): both layouts, class names as they are on disk, images
in sub-folders, the test split held out when there is none, and the mistakes people make."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vgg16.data import open_source, read_manifest
from vgg16.formats.class_folders import list_image_folder
from vgg16.formats.folders import FORMAT
from vgg16.images import record_bytes
from vgg16.prepare import prepare
from vgg16.verify import verify

#: Class names as people name folders: spaces, accents, another script, case (code point
#: order puts "Zebra" before "apple" and "Кошка" last).
CLASSES = ["Golden Retriever", "Zebra", "apple", "café crème", "Кошка"]


def _photo(path: Path, seed: int, mode: str = "RGB", size: tuple[int, int] = (36, 28)) -> None:
    rng = np.random.default_rng(seed)
    channels = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((rng.random(channels) * 255).astype(np.uint8), mode=mode).save(path)


def _flat(root: Path, per_class: int = 10) -> Path:
    """Class folders alone; every third photo in a dated sub-folder, one greyscale PNG."""
    for c, name in enumerate(CLASSES):
        for i in range(per_class):
            sub = "2024-07" if i % 3 == 0 else ""
            _photo(root / name / sub / f"img {i}.jpg", seed=100 * c + i)
    _photo(root / "Кошка" / "grey.png", seed=999, mode="L")
    (root / "apple" / "notes.txt").write_text("not a photo")
    return root


def test_class_folders_alone_are_train_with_every_image_below_each_class(tmp_path: Path):
    root = _flat(tmp_path / "pets")
    assert FORMAT.class_names(root) == sorted(CLASSES) == [
        "Golden Retriever", "Zebra", "apple", "café crème", "Кошка"
    ]  # fmt: skip
    train = FORMAT.split(root, "train", FORMAT.class_names(root))
    assert train.count == 51 and np.bincount(train.labels).tolist() == [10, 10, 10, 10, 11]
    assert root / "Кошка" / "2024-07" / "img 0.jpg" in train.files  # a sub-folder counts
    assert FORMAT.split(root, "test", CLASSES) is None  # held out by prepare
    report = verify("folders", root, num_classes=None)
    assert report["raw_splits"] == {"train": "."} and report["num_classes"] == 5
    assert report["splits"] == {"train": {"count": 51, "per_class": [10, 10, 10, 10, 11]}}
    assert report["skipped"] == [
        {"path": "apple/notes.txt", "reason": "not an image file (extension)"}
    ]


def test_prepare_holds_out_test_then_val_stratified_and_seeded(tmp_path: Path):
    root = _flat(tmp_path / "pets")
    manifest = prepare("folders", root, tmp_path / "mr", val_fraction=0.2, test_fraction=0.2)
    splits = manifest["splits"]
    assert manifest["class_names"] == sorted(CLASSES) and manifest["num_classes"] == 5
    assert manifest["test_fraction"] == 0.2
    assert {s: splits[s]["count"] for s in splits} == {"train": 32, "val": 8, "test": 11}
    assert splits["test"]["per_class"] == [2, 2, 2, 2, 3]  # a fifth of each class
    val = splits["val"]["per_class"]  # a fifth of what test left: 8 images, from every class
    assert sum(val) == 8 and all(n in (1, 2) for n in val)
    again = prepare("folders", root, tmp_path / "again", val_fraction=0.2, test_fraction=0.2)
    assert again["splits"] == splits  # same seed, same split
    source = open_source(tmp_path / "mr")
    assert source.class_names == sorted(CLASSES) and source.split("test").count == 11


def test_train_and_test_folders_with_val_hold_nothing_out(tmp_path: Path):
    root = tmp_path / "pets"
    for split, n in (("train", 4), ("val", 2), ("test", 3)):
        for c, name in enumerate(CLASSES[:3]):
            for i in range(n):
                _photo(root / split / name / f"{i}.png", seed=1000 * c + 10 * n + i)
    assert FORMAT.layout(root) == {"train": "train", "val": "val", "test": "test"}
    manifest = prepare("folders", root, tmp_path / "mr", val_fraction=0.5, test_fraction=0.5)
    assert {s: e["count"] for s, e in manifest["splits"].items()} == {
        "train": 12, "val": 6, "test": 9
    }  # fmt: skip
    assert "test_fraction" not in manifest
    assert read_manifest(tmp_path / "mr")["class_names"] == CLASSES[:3]


def test_without_val_the_split_layout_holds_val_out_of_train(tmp_path: Path):
    root = tmp_path / "pets"
    for split, n in (("train", 10), ("test", 2)):
        for c, name in enumerate(("a", "b")):
            for i in range(n):
                _photo(root / split / name / f"{i}.png", seed=100 * c + 10 * n + i)
    manifest = prepare("folders", root, tmp_path / "mr", val_fraction=0.2)
    assert {s: e["count"] for s, e in manifest["splits"].items()} == {
        "train": 16, "val": 4, "test": 4
    }  # fmt: skip


def test_a_single_class_is_no_classifier(tmp_path: Path):
    _photo(tmp_path / "pets" / "only" / "a.jpg", seed=1)
    message = f"^{re.escape(str(tmp_path / 'pets'))} holds one class folder \\('only'\\): "
    with pytest.raises(ValueError, match=message + "a classifier needs 2 or more$"):
        verify("folders", tmp_path / "pets", num_classes=None)
    assert not (tmp_path / "mr").exists()


def test_a_class_folder_without_images_is_named(tmp_path: Path):
    root = _flat(tmp_path / "pets", per_class=2)
    (root / "empty class" / "sub").mkdir(parents=True)
    (root / "empty class" / "sub" / "readme.txt").write_text("no photos")
    message = (
        f"^class folder {re.escape(str(root / 'empty class'))} holds no images \\(of 1 files\\)$"
    )
    with pytest.raises(ValueError, match=message):
        prepare("folders", root, tmp_path / "mr")
    assert not (tmp_path / "mr").exists()


def test_a_test_class_that_train_lacks_is_named(tmp_path: Path):
    root = tmp_path / "pets"
    for name in ("a", "b"):
        _photo(root / "train" / name / "0.png", seed=len(name))
    _photo(root / "test" / "c" / "0.png", seed=3)
    with pytest.raises(
        ValueError, match=r"test has 1 class folder\(s\) that the training classes lack: \['c'\]"
    ):
        verify("folders", root, num_classes=None)


def test_a_test_fraction_too_small_for_every_class_names_the_key(tmp_path: Path):
    root = _flat(tmp_path / "pets")
    with pytest.raises(ValueError) as err:
        prepare("folders", root, tmp_path / "mr", test_fraction=0.05)
    assert str(err.value).startswith(
        f"cannot hold out a stratified test_fraction=0.05 of the 51 training images in {root} ("
    )
    hint = "change test_fraction (the workflow's datasets.<name>.test_fraction, or `vgg16 "
    assert hint + "prepare --test_fraction`)" in str(err.value)
    assert not (tmp_path / "mr").exists()


def test_the_number_of_classes_checked_when_given(tmp_path: Path):
    root = _flat(tmp_path / "pets", per_class=1)
    with pytest.raises(ValueError, match=r"holds 5 class folders, expected num_classes=4$"):
        verify("folders", root, num_classes=4)


def test_hidden_sub_folders_are_not_part_of_a_class(tmp_path: Path):
    root = tmp_path / "pets"
    for name in ("cat", "dog"):
        _photo(root / name / "a.jpg", seed=len(name))
    _photo(root / "cat" / ".ipynb_checkpoints" / "a-checkpoint.jpg", seed=5)
    _photo(root / "cat" / "x" / ".git" / "b.jpg", seed=6)
    _photo(root / "cat" / "x" / "c.jpg", seed=7)
    train = FORMAT.split(root, "train", FORMAT.class_names(root))
    assert train.files == (
        root / "cat" / "a.jpg",
        root / "cat" / "x" / "c.jpg",
        root / "dog" / "a.jpg",
    )


def test_a_class_folders_images_are_in_the_order_of_their_paths_as_text(tmp_path: Path):
    """Text order, as the README gives it: "a b/" and "a-c/" sort before "a/" (a space and
    a hyphen before a slash), whereas path parts would put "a" first."""
    root = tmp_path / "pets"
    for sub in ("a", "a b", "a-c"):
        _photo(root / "cat" / sub / "0.jpg", seed=len(sub))
    _photo(root / "dog" / "0.jpg", seed=9)
    train = FORMAT.split(root, "train", FORMAT.class_names(root))
    assert [p.relative_to(root).as_posix() for p in train.files] == [
        "cat/a b/0.jpg", "cat/a-c/0.jpg", "cat/a/0.jpg", "dog/0.jpg"
    ]  # fmt: skip


def test_listing_leaves_sub_folders_out_unless_asked(tmp_path: Path):
    root = _flat(tmp_path / "pets", per_class=3)  # img 0.jpg of each class in 2024-07/
    assert len(list_image_folder(root).paths) == 11
    assert len(list_image_folder(root, recursive=True).paths) == 16


def test_a_folder_without_class_folders_is_named(tmp_path: Path):
    _photo(tmp_path / "pets" / "a.jpg", seed=1)
    root = tmp_path / "pets"
    with pytest.raises(ValueError) as err:
        verify("folders", root, num_classes=None)
    assert str(err.value) == f"{root} holds no class folders (expected {root}/<class>/<image>)"


def test_records_are_each_images_record_bytes_and_class(tmp_path: Path):
    root = _flat(tmp_path / "pets", per_class=1)
    train = FORMAT.split(root, "train", FORMAT.class_names(root))
    records = FORMAT.records(train)
    assert len(records) == 6
    for i, path in enumerate(train.files):
        data, label = records[i]
        assert data.tobytes() == record_bytes(path) and label == train.labels[i]
    assert [records[i][1] for i in range(6)] == [0, 1, 2, 3, 4, 4]
