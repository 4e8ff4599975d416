"""The CIFAR-10 binary format: records, batch files, the folders that hold them, class names."""

import re
from pathlib import Path

import numpy as np
import pytest

from vgg16.formats.cifar10 import (
    CLASSES,
    FORMAT,
    RECORD_BYTES,
    find_batches,
    read_batches,
    write_batch,
)


def _random_batch(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n)


def test_record_layout_is_label_then_r_g_b_planes_row_major(tmp_path: Path) -> None:
    red = (np.arange(1024) % 251).astype(np.uint8)  # distinct along rows and columns
    record = bytes([7]) + red.tobytes() + bytes([1]) * 1024 + bytes([2]) * 1024
    path = tmp_path / "one.bin"
    path.write_bytes(record)

    images, labels = read_batches([path])

    assert images.dtype == np.uint8 and images.shape == (1, 32, 32, 3)
    assert labels.dtype == np.int32 and labels.tolist() == [7]
    np.testing.assert_array_equal(images[0, :, :, 0], red.reshape(32, 32))
    assert (images[0, :, :, 1] == 1).all() and (images[0, :, :, 2] == 2).all()


def test_write_then_read_round_trips_across_files_in_order(tmp_path: Path) -> None:
    first, second = _random_batch(3, seed=0), _random_batch(4, seed=1)
    write_batch(tmp_path / "a.bin", *first)
    write_batch(tmp_path / "b.bin", *second)

    images, labels = read_batches([tmp_path / "a.bin", tmp_path / "b.bin"])

    assert (tmp_path / "a.bin").stat().st_size == 3 * RECORD_BYTES
    np.testing.assert_array_equal(images, np.concatenate([first[0], second[0]]))
    np.testing.assert_array_equal(labels, np.concatenate([first[1], second[1]]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.bin"]  # no temp file


def test_no_files_read_as_no_images_of_the_usual_shape_and_types() -> None:
    """A folder without test_batch.bin has an empty test split of the same layout."""
    images, labels = read_batches([])

    assert (images.shape, images.dtype) == ((0, 32, 32, 3), np.uint8)
    assert (labels.shape, labels.dtype) == ((0,), np.int32)


def test_write_cifar_batch_rejects_wrong_shape(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="x.bin"):
        write_batch(tmp_path / "x.bin", np.zeros((2, 32, 32), np.uint8), np.zeros(2))
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("labels", "shape"), [([0, 256], "(2,)"), ([-1, 3], "(2,)"), ([0, 1, 2], "(3,)")]
)
def test_write_cifar_batch_rejects_labels_a_byte_cannot_hold(
    tmp_path: Path, labels: list[int], shape: str
) -> None:
    message = f"^labels for {re.escape(str(tmp_path / 'x.bin'))} must be 2 integers in 0..255, "
    with pytest.raises(ValueError, match=message + re.escape(f"got shape {shape}") + "$"):
        write_batch(tmp_path / "x.bin", np.zeros((2, 32, 32, 3), np.uint8), np.array(labels))
    assert not list(tmp_path.iterdir())


def test_write_cifar_batch_stores_labels_0_to_255(tmp_path: Path) -> None:
    write_batch(tmp_path / "x.bin", np.zeros((2, 32, 32, 3), np.uint8), np.array([255, 0]))

    assert read_batches([tmp_path / "x.bin"])[1].tolist() == [255, 0]


@pytest.mark.parametrize("size", [2 * RECORD_BYTES - 5, 0])
def test_truncated_or_empty_file_names_file_and_record_size(tmp_path: Path, size: int) -> None:
    path = tmp_path / "data_batch_9.bin"
    write_batch(path, *_random_batch(2, seed=0))
    path.write_bytes(path.read_bytes()[:size])

    with pytest.raises(ValueError, match=rf"data_batch_9\.bin is {size} bytes.*3073"):
        read_batches([path])


def test_find_cifar_files_in_official_nested_layout(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    for name in ("data_batch_2.bin", "data_batch_1.bin", "test_batch.bin", "readme.html"):
        (folder / name).write_bytes(b"")
    expected = {
        "train": [folder / "data_batch_1.bin", folder / "data_batch_2.bin"],
        "test": [folder / "test_batch.bin"],
    }

    assert find_batches(tmp_path) == expected
    assert find_batches(folder) == expected


def test_find_cifar_files_in_verify_only_folder(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-verify-bin"
    folder.mkdir()
    (folder / "test_batch.bin").write_bytes(b"")

    assert find_batches(folder) == {"train": [], "test": [folder / "test_batch.bin"]}


def test_find_cifar_files_in_training_only_folder(tmp_path: Path) -> None:
    (tmp_path / "data_batch_1.bin").write_bytes(b"")

    assert find_batches(tmp_path) == {"train": [tmp_path / "data_batch_1.bin"], "test": []}


def test_find_cifar_files_without_bin_files_names_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path))):
        find_batches(tmp_path)
    with pytest.raises(FileNotFoundError, match="absent"):
        find_batches(tmp_path / "absent")


def test_class_names_from_meta_file_else_cifar10(tmp_path: Path) -> None:
    (tmp_path / "test_batch.bin").write_bytes(b"")
    assert FORMAT.class_names(tmp_path) == list(CLASSES)
    assert CLASSES[0] == "airplane" and CLASSES[-1] == "truck"

    (tmp_path / "batches.meta.txt").write_text("cat\ndog\n\n")
    assert FORMAT.class_names(tmp_path) == ["cat", "dog"]

    (tmp_path / "batches.meta.txt").write_text("\n  \n")
    message = f"^{re.escape(str(tmp_path / 'batches.meta.txt'))} holds no class names \\(expected"
    with pytest.raises(ValueError, match=message):
        FORMAT.class_names(tmp_path)


def test_a_raw_split_is_read_record_by_record_as_the_input_pipeline_asks(tmp_path: Path) -> None:
    first, second = _random_batch(3, seed=0), _random_batch(2, seed=1)
    write_batch(tmp_path / "data_batch_1.bin", *first)
    write_batch(tmp_path / "data_batch_2.bin", *second)
    split = FORMAT.split(tmp_path, "train", list(CLASSES))
    assert split.count == 5
    records = FORMAT.records(split)
    assert len(records) == 5
    image, label = records[3]
    np.testing.assert_array_equal(image, second[0][0])
    assert label == second[1][0] and label.dtype == np.int32
    assert FORMAT.split(tmp_path, "test", list(CLASSES)) is None  # no test_batch.bin
