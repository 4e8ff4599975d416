"""Data sources: a prepared folder or a raw layout, opened once, with the errors a user sees."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vgg16.config import load_recipe
from vgg16.data import MANIFEST, open_source
from vgg16.prepare import prepare
from vgg16.readers import write_cifar_batch


@pytest.fixture
def cifar(tmp_path: Path) -> Path:
    """Seven training images in two batch files, three test images, four classes."""
    folder = tmp_path / "cifar"
    folder.mkdir()
    pixels = np.zeros((7, 32, 32, 3), np.uint8)
    write_cifar_batch(folder / "data_batch_1.bin", pixels[:4], np.array([0, 1, 2, 3]))
    write_cifar_batch(folder / "data_batch_2.bin", pixels[4:], np.array([3, 2, 1]))
    write_cifar_batch(folder / "test_batch.bin", pixels[:3], np.array([1, 1, 0]))
    (folder / "batches.meta.txt").write_text("a\nb\nc\nd\n")
    return folder


def test_a_raw_cifar_layout(cifar: Path):
    source = open_source(cifar, "cifar10")
    assert (source.prepared, source.encoding, source.dataset) == (False, "raw", "cifar10")
    assert source.class_names == ["a", "b", "c", "d"] and source.num_classes == 4
    assert source.image_shape == (32, 32, 3)
    train, test = source.split("train"), source.split("test")
    assert train.count == 7 and [f.name for f in train.files] == [
        "data_batch_1.bin",
        "data_batch_2.bin",
    ]
    assert test.count == 3 and [f.name for f in test.files] == ["test_batch.bin"]
    with pytest.raises(ValueError, match="raw cifar10 layout, which has no 'val' split"):
        source.split("val")
    with pytest.raises(ValueError, match=r"split 'dev': expected one of \['train', 'val'"):
        source.split("dev")


def test_a_prepared_folder_describes_itself(cifar: Path, tmp_path: Path):
    out = tmp_path / "mr"
    prepare("cifar10", cifar, out, val_fraction=0, shards=2)
    source = open_source(out, "imagenet2012")  # the manifest, not the caller, says what it is
    assert (source.prepared, source.encoding, source.dataset) == (True, "raw", "cifar10")
    assert source.class_names == ["a", "b", "c", "d"] and source.image_shape == (32, 32, 3)
    split = source.split("train")
    assert split.count == 7
    assert [f.name for f in split.files] == ["train.mindrecord0", "train.mindrecord1"]
    assert all(f.is_absolute() for f in split.files)
    with pytest.raises(ValueError, match=r"split 'val' is not in .*mr; available: train, test"):
        source.split("val")
    (out / "train.mindrecord1").unlink()
    with pytest.raises(FileNotFoundError, match="split 'train' not found.*train.mindrecord1"):
        open_source(out)


def test_the_recipe_must_fit_the_data(cifar: Path):
    source = open_source(cifar, "cifar10")
    with pytest.raises(ValueError, match="has 4 classes but the recipe's num_classes is 10"):
        source.check(load_recipe(dataset="cifar10"))
    source.check(load_recipe(dataset="digits", overrides={"num_classes": 4}))


def _image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8)).save(path)


def test_raw_class_folders_are_listed_only_when_a_split_is_asked_for(tmp_path: Path):
    root = tmp_path / "imagenet"
    for split, names in (
        ("train", ["n1/a.JPEG", "n1/b.JPEG", "n2/c.JPEG"]),
        ("val", ["n2/d.JPEG"]),
    ):
        for name in names:
            _image(root / split / name)
    source = open_source(root, "imagenet2012")
    assert (source.encoding, source.class_names) == ("jpeg", ["n1", "n2"])
    (root / "train" / "n1" / "late.JPEG").write_bytes(
        (root / "train" / "n1" / "a.JPEG").read_bytes()
    )
    train = source.split("train")
    assert train.count == 4 and train.labels == (0, 0, 0, 1)
    test = source.split("test")  # the seed tests on ImageNet's val/ folder
    assert [f.name for f in test.files] == ["d.JPEG"] and test.labels == (1,)


def test_a_val_folder_with_a_class_that_train_lacks_is_named(tmp_path: Path):
    root = tmp_path / "imagenet"
    _image(root / "train" / "n1" / "a.JPEG")
    _image(root / "val" / "n9" / "b.JPEG")
    with pytest.raises(ValueError, match=r"val has class folders that the training .*\['n9'\]"):
        open_source(root, "imagenet2012").split("test")


def test_a_folder_of_class_folders_serves_any_split(tmp_path: Path):
    """The seed's evaluation-only folders: <class>/<image> with no train/ or val/ level."""
    root = tmp_path / "val-only"
    _image(root / "n1" / "a.JPEG")
    _image(root / "n2" / "b.JPEG")
    source = open_source(root, "imagenet2012")
    assert source.class_names == ["n1", "n2"]
    assert source.split("test").labels == (0, 1)


def test_errors_name_the_path(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="--data_path .*nowhere does not exist"):
        open_source(tmp_path / "nowhere", "cifar10")
    with pytest.raises(ValueError, match=f"{tmp_path} has no {MANIFEST}: name the raw layout"):
        open_source(tmp_path)
    (tmp_path / MANIFEST).write_text(json.dumps({"dataset": "cifar10"}))
    with pytest.raises(ValueError, match="lacks keys"):
        open_source(tmp_path)
