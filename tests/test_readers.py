"""Tests for vgg16.readers: CIFAR binary batches, image folders, digits."""

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from vgg16.readers import (
    CIFAR10_CLASSES,
    CIFAR_RECORD_BYTES,
    cifar_class_names,
    find_cifar_files,
    list_image_folder,
    read_cifar_batches,
    write_cifar_batch,
    write_digits,
)


def _random_batch(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n)


def test_record_layout_is_label_then_r_g_b_planes_row_major(tmp_path: Path) -> None:
    red = (np.arange(1024) % 251).astype(np.uint8)  # distinct along rows and columns
    record = bytes([7]) + red.tobytes() + bytes([1]) * 1024 + bytes([2]) * 1024
    path = tmp_path / "one.bin"
    path.write_bytes(record)

    images, labels = read_cifar_batches([path])

    assert images.dtype == np.uint8 and images.shape == (1, 32, 32, 3)
    assert labels.dtype == np.int32 and labels.tolist() == [7]
    np.testing.assert_array_equal(images[0, :, :, 0], red.reshape(32, 32))
    assert (images[0, :, :, 1] == 1).all() and (images[0, :, :, 2] == 2).all()


def test_write_then_read_round_trips_across_files_in_order(tmp_path: Path) -> None:
    first, second = _random_batch(3, seed=0), _random_batch(4, seed=1)
    write_cifar_batch(tmp_path / "a.bin", *first)
    write_cifar_batch(tmp_path / "b.bin", *second)

    images, labels = read_cifar_batches([tmp_path / "a.bin", tmp_path / "b.bin"])

    assert (tmp_path / "a.bin").stat().st_size == 3 * CIFAR_RECORD_BYTES
    np.testing.assert_array_equal(images, np.concatenate([first[0], second[0]]))
    np.testing.assert_array_equal(labels, np.concatenate([first[1], second[1]]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.bin"]  # no temp file


def test_no_files_read_as_no_images_of_the_usual_shape_and_types() -> None:
    """A folder without test_batch.bin has an empty test split of the same layout."""
    images, labels = read_cifar_batches([])

    assert (images.shape, images.dtype) == ((0, 32, 32, 3), np.uint8)
    assert (labels.shape, labels.dtype) == ((0,), np.int32)


def test_write_cifar_batch_rejects_wrong_shape(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="x.bin"):
        write_cifar_batch(tmp_path / "x.bin", np.zeros((2, 32, 32), np.uint8), np.zeros(2))
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("labels", "shape"), [([0, 256], "(2,)"), ([-1, 3], "(2,)"), ([0, 1, 2], "(3,)")]
)
def test_write_cifar_batch_rejects_labels_a_byte_cannot_hold(
    tmp_path: Path, labels: list[int], shape: str
) -> None:
    message = f"^labels for {re.escape(str(tmp_path / 'x.bin'))} must be 2 integers in 0..255, "
    with pytest.raises(ValueError, match=message + re.escape(f"got shape {shape}") + "$"):
        write_cifar_batch(tmp_path / "x.bin", np.zeros((2, 32, 32, 3), np.uint8), np.array(labels))
    assert not list(tmp_path.iterdir())


def test_write_cifar_batch_stores_labels_0_to_255(tmp_path: Path) -> None:
    write_cifar_batch(tmp_path / "x.bin", np.zeros((2, 32, 32, 3), np.uint8), np.array([255, 0]))

    assert read_cifar_batches([tmp_path / "x.bin"])[1].tolist() == [255, 0]


@pytest.mark.parametrize("size", [2 * CIFAR_RECORD_BYTES - 5, 0])
def test_truncated_or_empty_file_names_file_and_record_size(tmp_path: Path, size: int) -> None:
    path = tmp_path / "data_batch_9.bin"
    write_cifar_batch(path, *_random_batch(2, seed=0))
    path.write_bytes(path.read_bytes()[:size])

    with pytest.raises(ValueError, match=rf"data_batch_9\.bin is {size} bytes.*3073"):
        read_cifar_batches([path])


def test_find_cifar_files_in_official_nested_layout(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    for name in ("data_batch_2.bin", "data_batch_1.bin", "test_batch.bin", "readme.html"):
        (folder / name).write_bytes(b"")
    expected = {
        "train": [folder / "data_batch_1.bin", folder / "data_batch_2.bin"],
        "test": [folder / "test_batch.bin"],
    }

    assert find_cifar_files(tmp_path) == expected
    assert find_cifar_files(folder) == expected


def test_find_cifar_files_in_verify_only_folder(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-verify-bin"
    folder.mkdir()
    (folder / "test_batch.bin").write_bytes(b"")

    assert find_cifar_files(folder) == {"train": [], "test": [folder / "test_batch.bin"]}


def test_find_cifar_files_in_training_only_folder(tmp_path: Path) -> None:
    (tmp_path / "data_batch_1.bin").write_bytes(b"")

    assert find_cifar_files(tmp_path) == {"train": [tmp_path / "data_batch_1.bin"], "test": []}


def test_find_cifar_files_without_bin_files_names_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path))):
        find_cifar_files(tmp_path)
    with pytest.raises(FileNotFoundError, match="absent"):
        find_cifar_files(tmp_path / "absent")


def test_class_names_from_meta_file_else_cifar10(tmp_path: Path) -> None:
    (tmp_path / "test_batch.bin").write_bytes(b"")
    assert cifar_class_names(tmp_path) == list(CIFAR10_CLASSES)
    assert CIFAR10_CLASSES[0] == "airplane" and CIFAR10_CLASSES[-1] == "truck"

    (tmp_path / "batches.meta.txt").write_text("cat\ndog\n\n")
    assert cifar_class_names(tmp_path) == ["cat", "dog"]

    (tmp_path / "batches.meta.txt").write_text("\n  \n")
    message = f"^{re.escape(str(tmp_path / 'batches.meta.txt'))} holds no class names \\(expected"
    with pytest.raises(ValueError, match=message):
        cifar_class_names(tmp_path)


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


def test_write_digits_writes_stratified_deterministic_cifar_layout(tmp_path: Path) -> None:
    folder = write_digits(tmp_path / "a")  # the default seed, 0, makes the demo's split

    assert folder == tmp_path / "a" / "cifar-10-batches-bin"
    files = find_cifar_files(tmp_path / "a")
    train_images, train_labels = read_cifar_batches(files["train"])
    test_images, test_labels = read_cifar_batches(files["test"])
    assert len(train_labels) + len(test_labels) == 1797
    assert len(test_labels) == 360  # 20 %
    assert set(train_labels) == set(test_labels) == set(range(10))
    expected_counts = np.bincount(load_digits().target)
    np.testing.assert_array_equal(
        np.bincount(train_labels) + np.bincount(test_labels), expected_counts
    )
    # Stratified: every class has its 20 % in the test batch, to within rounding.
    assert (np.abs(np.bincount(test_labels) - 0.2 * expected_counts) < 1).all()
    assert cifar_class_names(folder) == [str(d) for d in range(10)]
    for images in (train_images, test_images):
        assert (images[..., 0] == images[..., 1]).all() and (images[..., 0] == images[..., 2]).all()
    assert train_images.min() == 0 and train_images.max() == 255

    again = write_digits(tmp_path / "b", seed=0)
    other = write_digits(tmp_path / "c", seed=1)
    for name in ("data_batch_1.bin", "test_batch.bin", "batches.meta.txt"):
        assert (again / name).read_bytes() == (folder / name).read_bytes()
    assert (other / "test_batch.bin").read_bytes() != (folder / "test_batch.bin").read_bytes()


def test_write_digits_replaces_an_existing_set(tmp_path: Path) -> None:
    folder = write_digits(tmp_path, seed=1)
    (folder / "stale.bin").write_bytes(b"")

    write_digits(tmp_path, seed=0)

    assert [p.name for p in tmp_path.iterdir()] == ["cifar-10-batches-bin"]
    assert sorted(p.name for p in folder.iterdir()) == [
        "batches.meta.txt",
        "data_batch_1.bin",
        "test_batch.bin",
    ]


def test_write_digits_stores_each_digit_upscaled_bilinearly(tmp_path: Path) -> None:
    """The docstring's recipe: 0..16 scaled to 0..255, 8x8 upscaled to 32x32 bilinear, grey
    replicated to RGB; every digit once, with its label, across the two batches."""
    digits = load_digits()
    want = []
    for image, label in zip(digits.images, digits.target, strict=True):
        small = Image.fromarray(np.rint(image * 255 / 16).astype(np.uint8))
        grey = np.asarray(small.resize((32, 32), Image.Resampling.BILINEAR))
        want.append((int(label), np.repeat(grey[..., None], 3, axis=-1).tobytes()))

    files = find_cifar_files(write_digits(tmp_path))
    images, labels = read_cifar_batches(files["train"] + files["test"])

    got = [(int(label), image.tobytes()) for image, label in zip(images, labels, strict=True)]
    assert sorted(got) == sorted(want)
