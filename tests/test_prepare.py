"""Tests for vgg16.prepare: conversion to MindRecord splits, read back with MindDataset,
and vgg16.data reading the manifest."""

import hashlib
import json
import re
import zlib
from collections import Counter
from pathlib import Path

import mindspore.dataset as ds
import numpy as np
import pytest
from mindspore.dataset import vision
from PIL import Image

from vgg16.cli import main
from vgg16.data import open_source, read_manifest
from vgg16.formats.cifar10 import CLASSES, write_batch
from vgg16.prepare import prepare

PER_CLASS_TRAIN, PER_CLASS_TEST = 20, 5


def _balanced(per_class: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.permutation(np.repeat(np.arange(10), per_class))
    return rng.integers(0, 256, (len(labels), 32, 32, 3), dtype=np.uint8), labels


@pytest.fixture
def cifar(tmp_path: Path) -> tuple[Path, tuple, tuple]:
    """200 training images in two batch files and 50 test images, random pixels, balanced."""
    rng = np.random.default_rng(0)
    train, test = _balanced(PER_CLASS_TRAIN, rng), _balanced(PER_CLASS_TEST, rng)
    folder = tmp_path / "src" / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    write_batch(folder / "data_batch_1.bin", train[0][:120], train[1][:120])
    write_batch(folder / "data_batch_2.bin", train[0][120:], train[1][120:])
    write_batch(folder / "test_batch.bin", *test)
    return tmp_path / "src", train, test


def _records(images: np.ndarray, labels: np.ndarray) -> Counter:
    pairs = zip(labels, images, strict=True)
    return Counter((int(label), image.tobytes()) for label, image in pairs)


def _read(out: Path, split: str, decode: bool = False) -> list[tuple[int, np.ndarray]]:
    data = ds.MindDataset(
        [str(f) for f in open_source(out).split(split).files],
        columns_list=["image", "label"],
        shuffle=False,
    )
    if decode:
        data = data.map(vision.Decode(), input_columns="image")
    return [
        (int(row["label"]), row["image"]) for row in data.create_dict_iterator(output_numpy=True)
    ]


def _siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


def test_prepare_cifar_round_trip_with_stratified_val(cifar: tuple) -> None:
    src, train, test = cifar
    out = src.parent / "mr"

    manifest = prepare("cifar10", src, out, val_fraction=0.2, shards=2, seed=3)

    assert manifest == read_manifest(out)
    assert _siblings(out) == ["mr", "src"]  # no temporary folder left
    assert manifest["format"] == "raw" and manifest["image_shape"] == [32, 32, 3]
    assert manifest["class_names"] == list(CLASSES) and manifest["num_classes"] == 10
    assert (manifest["dataset"], manifest["seed"], manifest["shards"]) == ("cifar10", 3, 2)
    read = {split: _read(out, split) for split in ("train", "val", "test")}
    for split, rows in read.items():
        entry = manifest["splits"][split]
        assert entry["files"] == [f"{split}.mindrecord0", f"{split}.mindrecord1"]
        assert all((out / f"{name}.db").is_file() for name in entry["files"])
        assert len(rows) == entry["count"]
        assert entry["per_class"] == np.bincount([lab for lab, _ in rows], minlength=10).tolist()
    assert [manifest["splits"][s]["count"] for s in ("train", "val", "test")] == [160, 40, 50]

    stored = Counter((label, image.tobytes()) for label, image in read["train"] + read["val"])
    assert stored == _records(*train)
    assert Counter((label, image.tobytes()) for label, image in read["test"]) == _records(*test)
    for count in manifest["splits"]["val"]["per_class"]:
        assert abs(count - 0.2 * PER_CLASS_TRAIN) <= 1

    sources = sorted(src.rglob("*.bin"))
    assert manifest["sources"] == [
        {
            "path": str(p.resolve()),
            "bytes": p.stat().st_size,
            "sha256": hashlib.sha256(p.read_bytes()).hexdigest(),
        }
        for p in sources
    ]


def test_prepare_replaces_output_and_omits_val_when_fraction_is_zero(cifar: tuple) -> None:
    src, train, _ = cifar
    out = src.parent / "mr"
    prepare("cifar10", src, out, val_fraction=0.2)

    manifest = prepare("cifar10", src, out, val_fraction=0)

    assert sorted(manifest["splits"]) == ["test", "train"]
    assert manifest["splits"]["train"]["files"] == ["train.mindrecord"]
    assert sorted(p.name for p in out.iterdir()) == [
        "manifest.json",
        "test.mindrecord",
        "test.mindrecord.db",
        "train.mindrecord",
        "train.mindrecord.db",
    ]
    assert _siblings(out) == ["mr", "src"]
    assert Counter((lab, img.tobytes()) for lab, img in _read(out, "train")) == _records(*train)
    with pytest.raises(ValueError, match="'val'.*available: train, test"):
        open_source(out).split("val")


def test_failing_prepare_leaves_existing_output_and_no_temp_folder(cifar: tuple) -> None:
    src, _, _ = cifar
    batch = src / "cifar-10-batches-bin" / "data_batch_2.bin"
    out = src.parent / "mr"
    good = src.parent / "good"
    prepare("cifar10", src, good)
    batch.write_bytes(batch.read_bytes()[:-10])

    with pytest.raises(ValueError, match="data_batch_2.bin"):
        prepare("cifar10", src, out)
    with pytest.raises(ValueError, match="data_batch_2.bin"):
        prepare("cifar10", src, good)

    assert _siblings(out) == ["good", "src"]
    assert read_manifest(good)["splits"]["train"]["count"] == 180


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"dataset": "mnist"},
            "unknown dataset 'mnist': expected one of cifar10, imagenet2012, digits, folders",
        ),
        ({"val_fraction": 1.0}, "val_fraction must be in [0, 1), got 1.0"),
        ({"val_fraction": 1.5}, "val_fraction must be in [0, 1), got 1.5"),
        ({"val_fraction": -0.1}, "val_fraction must be in [0, 1), got -0.1"),
        ({"shards": 0}, "shards must be in 1..1000 (MindRecord's limit), got 0"),
        ({"shards": 1001}, "shards must be in 1..1000 (MindRecord's limit), got 1001"),
    ],
)
def test_prepare_rejects_bad_arguments(cifar: tuple, kwargs: dict, message: str) -> None:
    src, _, _ = cifar
    args = {"dataset": "cifar10", "data_path": src, "output": src.parent / "mr", **kwargs}
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        prepare(**args)
    assert not (src.parent / "mr").exists()


def test_the_val_split_is_a_function_of_the_seed(cifar: tuple) -> None:
    src, _, _ = cifar
    val = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        prepare("cifar10", src, src.parent / name, val_fraction=0.2, seed=seed)
        val[name] = [(label, image.tobytes()) for label, image in _read(src.parent / name, "val")]

    assert val["a"] == val["b"]
    assert Counter(val["a"]) != Counter(val["c"])


def test_a_val_fraction_too_small_to_stratify_names_the_source(cifar: tuple) -> None:
    src, _, _ = cifar
    message = (
        f"cannot hold out a stratified val_fraction=0.01 of the 200 training images in {src} "
        "(The test_size = 2 should be greater or equal to the number of classes = 10): "
        "stratifying needs at least one held-out and one remaining image of each of the 10 "
        "classes, so change val_fraction (the workflow's datasets.<name>.val_fraction, or "
        "`vgg16 prepare --val_fraction`), or set it to 0 to hold out nothing"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        prepare("cifar10", src, src.parent / "mr", val_fraction=0.01)


def _four_classes(folder: Path, *batches: list[int], test: list[int]) -> Path:
    """Blank images with the given labels: one data_batch_<i>.bin per list, classes a..d."""
    folder.mkdir(parents=True)
    for i, labels in enumerate(batches, 1):
        write_batch(
            folder / f"data_batch_{i}.bin", np.zeros((len(labels), 32, 32, 3), np.uint8), labels
        )
    write_batch(folder / "test_batch.bin", np.zeros((len(test), 32, 32, 3), np.uint8), test)
    (folder / "batches.meta.txt").write_text("a\nb\nc\nd\n")
    return folder


def _crc32(path: Path) -> str:
    return f"crc32:{zlib.crc32(path.read_bytes()):08x}"


def test_manifest_counts_every_class_even_when_a_split_lacks_it(tmp_path: Path) -> None:
    src = _four_classes(tmp_path / "src", [0, 1, 2, 3], [3, 2, 1], test=[1, 1, 0])

    manifest = prepare("cifar10", src, tmp_path / "mr", val_fraction=0)

    assert manifest == {
        "dataset": "cifar10",
        "format": "raw",
        "image_shape": [32, 32, 3],
        "class_names": ["a", "b", "c", "d"],
        "num_classes": 4,
        "seed": 1,
        "val_fraction": 0,
        "shards": 1,
        "splits": {
            split: {
                "count": count,
                "per_class": per_class,
                "files": [f"{split}.mindrecord"],
                "checksums": {
                    name: _crc32(tmp_path / "mr" / name)
                    for name in (f"{split}.mindrecord", f"{split}.mindrecord.db")
                },
            }
            for split, count, per_class in [("train", 7, [1, 2, 2, 2]), ("test", 3, [1, 2, 0, 0])]
        },  # fmt: skip
        "sources": [
            {
                "path": str(p.resolve()),
                "bytes": p.stat().st_size,
                "sha256": hashlib.sha256(p.read_bytes()).hexdigest(),
            }
            for p in sorted(src.glob("*.bin"))
        ],
    }


def test_a_label_beyond_the_class_names_names_the_batch_file(tmp_path: Path) -> None:
    src = _four_classes(tmp_path / "src", [0, 1], [4, 2], test=[0])
    batch = src / "data_batch_2.bin"
    message = f"{batch}: record 0 has label 4, expected labels below num_classes=4"

    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        prepare("cifar10", src, tmp_path / "mr", val_fraction=0)
    assert not (tmp_path / "mr").exists()


def test_a_split_larger_than_one_write_batch_keeps_every_row_in_order(tmp_path: Path) -> None:
    """2001 rows: one full batch of 2000 handed to the writer, then the rest."""
    labels = np.arange(2001) % 4
    src = _four_classes(tmp_path / "src", labels, test=[0])

    manifest = prepare("cifar10", src, tmp_path / "mr", val_fraction=0)

    assert manifest["splits"]["train"]["count"] == 2001
    assert [label for label, _ in _read(tmp_path / "mr", "train")] == labels.tolist()


def test_a_missing_cifar_folder_is_an_error_not_a_digits_download(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="CIFAR data folder not found: .*absent$"):
        prepare("cifar10", tmp_path / "absent", tmp_path / "mr")
    assert sorted(tmp_path.iterdir()) == []


def test_the_prepare_command_reports_the_counts(cifar: tuple, capsys) -> None:
    src, _, _ = cifar
    out = src.parent / "mr"

    code = main(
        ["prepare", "--dataset", "cifar10", "--data_path", str(src), "--output", str(out),
         "--val_fraction", "0.2", "--shards", "2", "--seed", "3"]
    )  # fmt: skip

    assert code == 0
    assert capsys.readouterr().out == f"wrote {out} {{'train': 160, 'val': 40, 'test': 50}}\n"
    manifest = read_manifest(out)
    assert (manifest["val_fraction"], manifest["shards"], manifest["seed"]) == (0.2, 2, 3)


def test_the_prepare_command_reports_errors(tmp_path: Path, capsys) -> None:
    code = main(
        ["prepare", "--dataset", "cifar10", "--data_path", str(tmp_path / "absent"),
         "--output", str(tmp_path / "mr")]
    )  # fmt: skip

    assert code == 1
    err = capsys.readouterr().err
    assert err == f"vgg16 prepare: error: CIFAR data folder not found: {tmp_path / 'absent'}\n"


def test_prepare_digits_materialises_missing_source(tmp_path: Path) -> None:
    manifest = prepare("digits", tmp_path / "digits", tmp_path / "mr", val_fraction=0.1)

    assert (tmp_path / "digits" / "cifar-10-batches-bin" / "test_batch.bin").is_file()
    assert manifest["class_names"] == [str(d) for d in range(10)]
    assert sum(entry["count"] for entry in manifest["splits"].values()) == 1797
    assert manifest["splits"]["test"]["count"] == 360
    assert [s["path"].rsplit("/", 1)[1] for s in manifest["sources"]] == [
        "data_batch_1.bin",
        "test_batch.bin",
    ]


def _image_tree(root: Path) -> None:
    """Two classes of six 40x30 training images (one greyscale JPEG, one PNG named .JPEG, one
    CMYK JPEG) and two validation images each."""
    rng = np.random.default_rng(0)
    for split, count in (("train", 6), ("val", 2)):
        for cls in ("n02", "n01"):
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
                image, fmt = Image.fromarray(pixels), "JPEG"
                if split == "train" and cls == "n01" and i == 0:
                    image = image.convert("L")
                elif split == "train" and cls == "n01" and i == 1:
                    fmt = "PNG"
                elif split == "train" and cls == "n02" and i == 0:
                    image = image.convert("CMYK")
                image.save(folder / f"{cls}_{i}.JPEG", format=fmt)


def _is_rgb_jpeg(path: Path) -> bool:
    with Image.open(path) as image:
        return (image.format, image.mode) == ("JPEG", "RGB")


def test_prepare_imagenet_folders(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root, out = tmp_path / "imagenet", tmp_path / "mr"
    _image_tree(root)

    manifest = prepare("imagenet2012", root, out, val_fraction=1 / 3, seed=0)

    assert manifest["format"] == "jpeg" and manifest["image_shape"] is None
    assert manifest["class_names"] == ["n01", "n02"]
    counts = {split: entry["count"] for split, entry in manifest["splits"].items()}
    assert counts == {"train": 8, "val": 4, "test": 4}
    assert manifest["splits"]["val"]["per_class"] == [2, 2]
    images = sorted(root.rglob("*.JPEG"))
    listing = "".join(
        sorted(f"{p.relative_to(root).as_posix()}\t{p.stat().st_size}\n" for p in images)
    )
    assert manifest["sources"] == [
        {
            "path": str(root.resolve()),
            "files": 16,
            "listing_sha256": hashlib.sha256(listing.encode()).hexdigest(),
        }
    ]
    assert "prepare test: decoded 4/4 images" in capsys.readouterr().err

    stored = set()
    for split in ("train", "val", "test"):
        rows = _read(out, split)
        stored |= {image.tobytes() for _, image in rows}
        for _, decoded in _read(out, split, decode=True):
            assert decoded.shape == (30, 40, 3)
    rgb_jpegs = [p for p in images if _is_rgb_jpeg(p)]
    assert len(rgb_jpegs) == 13
    assert {p.read_bytes() for p in rgb_jpegs} <= stored  # RGB JPEGs are stored unchanged


def test_a_val_folder_lacking_a_class_keeps_the_training_labels(tmp_path: Path) -> None:
    root = tmp_path / "imagenet"
    _image_tree(root)
    for image in (root / "val" / "n01").iterdir():
        image.unlink()
    (root / "val" / "n01").rmdir()

    manifest = prepare("imagenet2012", root, tmp_path / "mr", val_fraction=1 / 3, seed=0)

    assert manifest["class_names"] == ["n01", "n02"]
    assert manifest["splits"]["test"]["per_class"] == [0, 2]
    assert [label for label, _ in _read(tmp_path / "mr", "test")] == [1, 1]


def test_a_val_class_that_train_lacks_is_named(tmp_path: Path) -> None:
    root = tmp_path / "imagenet"
    for split, prefix in (("train", "t"), ("val", "v")):
        for i in range(6):
            folder = root / split / f"{prefix}{i}"
            folder.mkdir(parents=True)
            Image.new("RGB", (4, 4)).save(folder / "x.JPEG")
    message = (
        f"{root / 'val'} has 6 class folder(s) that the training classes lack: "
        "['v0', 'v1', 'v2', 'v3', 'v4'] (first five)"
    )

    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        prepare("imagenet2012", root, tmp_path / "mr")
    assert _siblings(root) == ["imagenet"]


def test_undecodable_images_are_all_named_and_nothing_is_written(tmp_path: Path) -> None:
    """The same refusal as verify's, so the package is safe without the workflow; an
    earlier conversion in the output folder is kept."""
    root, out = tmp_path / "imagenet", tmp_path / "mr"
    _image_tree(root)
    truncated = root / "train" / "n02" / "n02_3.JPEG"
    truncated.write_bytes(truncated.read_bytes()[:300])
    empty = root / "val" / "n01" / "n01_1.JPEG"
    empty.write_bytes(b"")
    prepare(
        "cifar10", _four_classes(tmp_path / "cifar", [0, 1, 2, 3], test=[0]), out, val_fraction=0
    )
    before = (out / "manifest.json").read_bytes()

    with pytest.raises(ValueError) as excinfo:
        prepare("imagenet2012", root, out, val_fraction=1 / 3, seed=0)

    lines = str(excinfo.value).splitlines()
    assert lines[0] == "2 image file(s) cannot be decoded:"
    assert lines[1].startswith(f"  {truncated}: cannot be decoded (")
    assert lines[2] == f"  {empty}: empty file (0 bytes)"
    assert len(lines) == 3
    assert (out / "manifest.json").read_bytes() == before
    assert _siblings(out) == ["cifar", "imagenet", "mr"]


def test_read_manifest_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        read_manifest(tmp_path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="manifest.json is not valid JSON"):
        read_manifest(tmp_path)
    path.write_text(json.dumps({"dataset": "cifar10"}))
    with pytest.raises(ValueError, match="manifest.json lacks keys.*'format'"):
        read_manifest(tmp_path)


def test_every_prepared_file_is_durable_before_the_folder_is_swapped_in(
    tmp_path: Path, fsynced
) -> None:
    src = _four_classes(tmp_path / "src", [0, 1, 2, 3], [3, 2, 1], test=[1, 1, 0])
    out = tmp_path / "mr"
    prepare("cifar10", src, out, val_fraction=0)
    written = sorted(p.name for p in out.iterdir())
    assert written == ["manifest.json", "test.mindrecord", "test.mindrecord.db",
                       "train.mindrecord", "train.mindrecord.db"]  # fmt: skip
    staged = fsynced[-2]  # the staged folder, then the parent that gains its new name
    assert fsynced[-1] == tmp_path and staged.parent == tmp_path
    assert {p.name for p in fsynced[:-2] if p.parent == staged} >= set(written)


def test_a_prepared_split_whose_file_changed_is_refused_by_name(tmp_path: Path, capsys) -> None:
    """Each file is checked against the manifest when its split is first opened; a worker of
    a group checks only its share of them."""
    src = _four_classes(tmp_path / "src", [0, 1, 2, 3], [3, 2, 1], test=[1, 1, 0])
    out = tmp_path / "mr"
    prepare("cifar10", src, out, val_fraction=0)
    assert open_source(out).split("train").count == 7
    assert "checked 2 MindRecord file(s) of split 'train'" in capsys.readouterr().err
    index = out / "train.mindrecord.db"
    with index.open("r+b") as f:  # one byte of the index changed, the size kept
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 0xFF]))
    source = open_source(out)
    assert source.split("test").count == 3  # the other split is whole
    damaged = f"MindRecord file {index} of split 'train' is damaged: its checksum is crc32:"
    for _ in range(2):  # refused on every ask, not only the first
        with pytest.raises(ValueError, match=re.escape(damaged)):
            source.split("train")
    # The worker whose share is the shard, not its index, finds nothing wrong.
    shard_only = open_source(out, share=(0, 2))
    assert shard_only.split("train").count == 7
    with pytest.raises(ValueError, match="train.mindrecord.db"):
        open_source(out, share=(1, 2)).split("train")


def test_a_manifest_without_checksums_is_read_with_a_warning(tmp_path: Path, capsys) -> None:
    """A folder prepared before checksums existed still trains; nothing claims it was checked."""
    src = _four_classes(tmp_path / "src", [0, 1, 2, 3], [3, 2, 1], test=[1, 1, 0])
    out = tmp_path / "mr"
    prepare("cifar10", src, out, val_fraction=0)
    manifest = json.loads((out / "manifest.json").read_text())
    for entry in manifest["splits"].values():
        del entry["checksums"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    capsys.readouterr()
    assert open_source(out).split("train").count == 7
    err = capsys.readouterr().err
    assert f"{out / 'manifest.json'} records no checksums for split 'train' (prepared by an " in err
    assert "checked" not in err.replace("cannot be checked", "")
