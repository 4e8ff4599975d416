"""The digits demo: scikit-learn's digits written in CIFAR-10's layout."""

from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

from vgg16.formats.cifar10 import find_batches, read_batches
from vgg16.formats.digits import FORMAT, write_digits


def test_write_digits_writes_stratified_deterministic_cifar_layout(tmp_path: Path) -> None:
    folder = write_digits(tmp_path / "a")  # the default seed, 0, makes the demo's split

    assert folder == tmp_path / "a" / "cifar-10-batches-bin"
    files = find_batches(tmp_path / "a")
    train_images, train_labels = read_batches(files["train"])
    test_images, test_labels = read_batches(files["test"])
    assert len(train_labels) + len(test_labels) == 1797
    assert len(test_labels) == 360  # 20 %
    assert set(train_labels) == set(test_labels) == set(range(10))
    expected_counts = np.bincount(load_digits().target)
    np.testing.assert_array_equal(
        np.bincount(train_labels) + np.bincount(test_labels), expected_counts
    )
    # Stratified: every class has its 20 % in the test batch, to within rounding.
    assert (np.abs(np.bincount(test_labels) - 0.2 * expected_counts) < 1).all()
    assert FORMAT.class_names(folder) == [str(d) for d in range(10)]
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

    files = find_batches(write_digits(tmp_path))
    images, labels = read_batches(files["train"] + files["test"])

    got = [(int(label), image.tobytes()) for image, label in zip(images, labels, strict=True)]
    assert sorted(got) == sorted(want)
