"""Data sources: a prepared folder or a raw layout, opened once, with the errors a user sees."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vgg16.config import load_recipe
from vgg16.data import MANIFEST_KEYS, open_source, read_manifest, write_manifest
from vgg16.formats.cifar10 import write_batch
from vgg16.layout import PreparedFolder
from vgg16.prepare import prepare


@pytest.fixture
def cifar(tmp_path: Path) -> Path:
    """Seven training images in two batch files, three test images, four classes."""
    folder = tmp_path / "cifar"
    folder.mkdir()
    pixels = np.zeros((7, 32, 32, 3), np.uint8)
    write_batch(folder / "data_batch_1.bin", pixels[:4], np.array([0, 1, 2, 3]))
    write_batch(folder / "data_batch_2.bin", pixels[4:], np.array([3, 2, 1]))
    write_batch(folder / "test_batch.bin", pixels[:3], np.array([1, 1, 0]))
    (folder / "batches.meta.txt").write_text("a\nb\nc\nd\n")
    return folder


def test_a_raw_cifar_layout(cifar: Path):
    source = open_source(cifar, "cifar10")
    assert (source.prepared, source.encoding, source.dataset) == (False, "raw", "cifar10")
    assert source.class_names == ["a", "b", "c", "d"] and source.num_classes == 4
    assert source.image_shape == (32, 32, 3)
    train, test = source.split("train"), source.split("test")
    assert isinstance(train.count, int)  # whole records: 7, not 7.0, in messages and JSON
    assert train.count == 7 and [f.name for f in train.files] == [
        "data_batch_1.bin",
        "data_batch_2.bin",
    ]
    assert test.count == 3 and [f.name for f in test.files] == ["test_batch.bin"]
    with pytest.raises(
        ValueError,
        match=r"raw cifar10 layout, which has no 'val' split: run `vgg16 prepare` first \(",
    ):
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


def test_the_recipe_must_fit_the_datas_classes_or_take_them(cifar: Path):
    source = open_source(cifar, "cifar10")
    message = f"^{re.escape(str(cifar))} has 4 classes but the recipe's num_classes is 10$"
    with pytest.raises(ValueError, match=message):
        source.fit(load_recipe(dataset="cifar10"))
    four = load_recipe(dataset="imagenet2012", overrides={"num_classes": 4})
    assert source.fit(four) is four  # a recipe of any dataset trains this data
    assert source.fit(load_recipe(dataset="folders")).num_classes == 4


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
    assert (source.prepared, source.dataset) == (False, "imagenet2012")
    assert (source.encoding, source.class_names) == ("jpeg", ["n1", "n2"])
    (root / "train" / "n1" / "late.JPEG").write_bytes(
        (root / "train" / "n1" / "a.JPEG").read_bytes()
    )
    train = source.split("train")
    assert train.count == 4 and train.labels == (0, 0, 0, 1)
    (root / "train" / "n2" / "later.JPEG").write_bytes(
        (root / "train" / "n1" / "a.JPEG").read_bytes()
    )
    assert source.split("train") == train  # listed once, on the first request
    test = source.split("test")  # the seed tests on ImageNet's val/ folder
    assert [f.name for f in test.files] == ["d.JPEG"] and test.labels == (1,)
    with pytest.raises(ValueError, match="raw imagenet2012 layout, which has no 'val' split"):
        source.split("val")


def test_a_val_folder_with_a_class_that_train_lacks_is_named(tmp_path: Path):
    root = tmp_path / "imagenet"
    _image(root / "train" / "n1" / "a.JPEG")
    _image(root / "train" / "n2" / "c.JPEG")
    _image(root / "val" / "n9" / "b.JPEG")
    with pytest.raises(
        ValueError, match=r"val has 1 class folder\(s\) that the training .*\[.n9.\]"
    ):
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
    with pytest.raises(ValueError, match=f"{tmp_path} has no manifest.json: name the raw layout"):
        open_source(tmp_path)
    PreparedFolder(tmp_path).manifest.write_text(json.dumps({"dataset": "cifar10"}))
    with pytest.raises(ValueError, match="lacks keys"):
        open_source(tmp_path)


def test_only_the_first_five_unknown_val_classes_are_named(tmp_path: Path):
    root = tmp_path / "imagenet"
    _image(root / "train" / "n0" / "a.JPEG")
    _image(root / "train" / "n1" / "c.JPEG")
    for name in ("m1", "m2", "m3", "m4", "m5", "m6"):
        _image(root / "val" / name / "b.JPEG")
    message = (
        r"has 6 class folder\(s\) that the training classes lack: "
        r"\['m1', 'm2', 'm3', 'm4', 'm5'\] \(first five\)$"
    )
    with pytest.raises(ValueError, match=message):
        open_source(root, "imagenet2012").split("test")


def test_a_raw_layout_of_an_unknown_dataset_is_refused(tmp_path: Path):
    message = r"^unknown dataset 'mnist': expected one of cifar10, imagenet2012, digits, folders$"
    with pytest.raises(ValueError, match=message):
        open_source(tmp_path, "mnist")


def test_a_prepared_image_folder_holds_jpeg_bytes(tmp_path: Path):
    root = tmp_path / "imagenet"
    for name in ("train/n1/a.JPEG", "train/n2/b.JPEG", "val/n1/c.JPEG", "val/n2/d.JPEG"):
        _image(root / name)
    prepare("imagenet2012", root, tmp_path / "mr", val_fraction=0)

    source = open_source(tmp_path / "mr")

    assert (source.prepared, source.dataset) == (True, "imagenet2012")
    assert (source.encoding, source.image_shape) == ("jpeg", None)
    assert source.split("test").count == 2


def _manifest(**changes) -> dict:
    split = {"count": 1, "per_class": [1], "files": ["train.mindrecord"]}
    manifest = {key: None for key in MANIFEST_KEYS} | {"splits": {"train": split}}
    return manifest | changes


def test_write_manifest_writes_indented_json(tmp_path: Path):
    """The manifest is for people too: two-space indentation and a final newline."""
    manifest = {key: None for key in MANIFEST_KEYS} | {"splits": {}, "class_names": ["a"]}

    write_manifest(tmp_path, manifest)

    lines = PreparedFolder(tmp_path).manifest.read_text().split("\n")
    assert lines[0] == "{" and lines[1] == '  "dataset": null,'
    assert lines[4:7] == ['  "class_names": [', '    "a"', "  ],"]
    assert lines[-2:] == ["}", ""]
    assert read_manifest(tmp_path) == manifest


def test_write_manifest_refuses_an_incomplete_manifest(tmp_path: Path):
    manifest = {key: None for key in MANIFEST_KEYS if key != "sources"}
    with pytest.raises(AssertionError, match=r"manifest lacks \['sources'\]"):
        write_manifest(tmp_path, manifest)
    assert not PreparedFolder(tmp_path).manifest.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ([1, 2], " must hold a JSON object, got list$"),
        (_manifest(splits=["train"]), ": 'splits' must be an object of split name to description$"),
        (
            _manifest(splits={"train": {"count": 1}}),
            r": split 'train' lacks keys \['per_class', 'files'\]$",
        ),
        (
            _manifest(splits={"val": 3}),
            r": split 'val' lacks keys \['count', 'per_class', 'files'\]$",
        ),
    ],
)
def test_read_manifest_names_what_is_malformed(tmp_path: Path, content: object, message: str):
    PreparedFolder(tmp_path).manifest.write_text(json.dumps(content))
    with pytest.raises(
        ValueError, match=f"^{re.escape(str(PreparedFolder(tmp_path).manifest))}{message}"
    ):
        read_manifest(tmp_path)
