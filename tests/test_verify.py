"""Tests for vgg16.verify: CIFAR-layout and ImageNet-layout checks and the JSON report."""

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vgg16.cli import main
from vgg16.formats.cifar10 import RECORD_BYTES, write_batch
from vgg16.formats.digits import write_digits
from vgg16.verify import verify, write_report


def _batch(path: Path, labels: list[int]) -> Path:
    images = np.full((len(labels), 32, 32, 3), 7, np.uint8)
    write_batch(path, images, np.array(labels))
    return path


def _cifar(root: Path) -> Path:
    """The official nested layout: 5 training records in two batches, 2 test records."""
    folder = root / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    _batch(folder / "data_batch_1.bin", [0, 1, 2, 2])
    _batch(folder / "data_batch_2.bin", [1])
    _batch(folder / "test_batch.bin", [0, 0])
    return root


def test_cifar_layout_counts_per_split_and_class(tmp_path: Path) -> None:
    raw = _cifar(tmp_path / "raw")

    report = verify("cifar10", raw, num_classes=3, expect={"train": 5, "test": 2})

    assert report == {
        "dataset": "cifar10",
        "num_classes": 3,
        "raw_splits": {"train": "data_batch_*.bin", "test": "test_batch.bin"},
        "splits": {
            "train": {"count": 5, "per_class": [1, 2, 2]},
            "test": {"count": 2, "per_class": [2, 0, 0]},
        },
        "files": 3,
        "skipped": [],
    }


def test_report_is_deterministic_json_written_atomically(tmp_path: Path) -> None:
    raw = _cifar(tmp_path / "raw")
    path = tmp_path / "reports" / "verify.json"

    write_report(verify("cifar10", raw, num_classes=3), path)
    first = path.read_bytes()
    write_report(verify("cifar10", raw, num_classes=3), path)

    assert path.read_bytes() == first
    assert json.loads(first)["splits"]["train"]["count"] == 5
    assert os.listdir(path.parent) == ["verify.json"]


def test_truncated_batch_names_file_and_size(tmp_path: Path) -> None:
    raw = _cifar(tmp_path / "raw")
    path = raw / "cifar-10-batches-bin" / "data_batch_2.bin"
    path.write_bytes(path.read_bytes()[:-1])

    with pytest.raises(ValueError, match=rf"data_batch_2\.bin is {RECORD_BYTES - 1} bytes"):
        verify("cifar10", raw, num_classes=3)


def test_empty_batch_is_refused(tmp_path: Path) -> None:
    """Zero bytes is a whole number of records, but no batch: a failed download, say."""
    raw = _cifar(tmp_path / "raw")
    path = raw / "cifar-10-batches-bin" / "test_batch.bin"
    path.write_bytes(b"")

    with pytest.raises(ValueError) as excinfo:
        verify("cifar10", raw, num_classes=3)

    assert str(excinfo.value) == (
        f"{path} is 0 bytes, not a positive multiple of the 3073-byte CIFAR-10 record"
    )


def test_label_beyond_num_classes_names_file_and_label(tmp_path: Path) -> None:
    raw = _cifar(tmp_path / "raw")
    _batch(raw / "cifar-10-batches-bin" / "test_batch.bin", [0, 5])

    with pytest.raises(ValueError, match=r"test_batch\.bin: record 1 has label 5.*num_classes=3"):
        verify("cifar10", raw, num_classes=3)


def test_label_equal_to_num_classes_is_out_of_range(tmp_path: Path) -> None:
    """Labels count from 0, so with 3 classes the label 3 is one too many."""
    raw = _cifar(tmp_path / "raw")
    path = _batch(raw / "cifar-10-batches-bin" / "data_batch_2.bin", [2, 3])

    with pytest.raises(ValueError) as excinfo:
        verify("cifar10", raw, num_classes=3)

    assert str(excinfo.value) == (
        f"{path}: record 1 has label 3, expected labels below num_classes=3"
    )


@pytest.mark.parametrize(
    ("expect", "message"),
    [
        ({"train": 6, "test": 2}, "split 'train' of {raw}: expected 6 images, found 5"),
        ({"train": 5, "test": 1}, "split 'test' of {raw}: expected 1 images, found 2"),
        (
            {"val": 5},
            "expect names split 'val', which a raw cifar10 layout does not have (train <- "
            "data_batch_*.bin, test <- test_batch.bin, val <- held out of train by prepare)",
        ),
    ],
)
def test_wrong_expected_counts_name_the_split(tmp_path: Path, expect: dict, message: str) -> None:
    raw = _cifar(tmp_path / "raw")
    with pytest.raises(ValueError) as excinfo:
        verify("cifar10", raw, num_classes=3, expect=expect)
    assert str(excinfo.value) == message.format(raw=raw)


def test_digits_layout_passes(tmp_path: Path) -> None:
    write_digits(tmp_path)

    report = verify("digits", tmp_path, num_classes=10)

    splits = report["splits"]
    assert splits["train"]["count"] + splits["test"]["count"] == 1797
    assert all(n > 0 for split in splits.values() for n in split["per_class"])


def _image(path: Path, colour: tuple[int, int, int], fmt: str = "JPEG") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (5, 4), colour).save(path, format=fmt)


def _imagenet(root: Path) -> Path:
    """Two classes; train holds 3 + 1 images (one a PNG named .JPEG, as in ImageNet), val 1 + 1."""
    _image(root / "train" / "n01" / "a.JPEG", (255, 0, 0))
    _image(root / "train" / "n01" / "b.JPEG", (0, 255, 0), fmt="PNG")
    _image(root / "train" / "n01" / "c.png", (0, 0, 255), fmt="PNG")
    _image(root / "train" / "n02" / "d.JPEG", (9, 9, 9))
    _image(root / "val" / "n01" / "e.JPEG", (1, 2, 3))
    _image(root / "val" / "n02" / "f.JPEG", (4, 5, 6))
    return root


def test_imagenet_layout_counts_splits_by_their_common_names(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """val/ is the test split, as everywhere else; files that are not images are listed."""
    raw = _imagenet(tmp_path / "raw")
    (raw / "train" / "n02" / "notes.txt").write_text("not an image")

    report = verify("imagenet2012", raw, num_classes=2, expect={"train": 4, "test": 2})

    assert report["raw_splits"] == {"train": "train", "test": "val"}
    assert report["splits"] == {
        "train": {"count": 4, "per_class": [3, 1]},
        "test": {"count": 2, "per_class": [1, 1]},
    }
    assert report["files"] == 6
    assert report["skipped"] == [
        {"path": "train/n02/notes.txt", "reason": "not an image file (extension)"}
    ]
    assert capsys.readouterr().err.startswith("verify: decoded 6/6 images, ")


def test_the_imagenet_val_folder_is_not_a_split_name(tmp_path: Path) -> None:
    raw = _imagenet(tmp_path / "raw")
    with pytest.raises(ValueError) as excinfo:
        verify("imagenet2012", raw, num_classes=2, expect={"val": 2})
    assert str(excinfo.value) == (
        "expect names split 'val', which a raw imagenet2012 layout does not have "
        "(train <- train, test <- val, val <- held out of train by prepare)"
    )


def test_every_bad_image_is_named_and_no_report_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Truncated, zero bytes, not an image: all of them, by path, and exit status 1."""
    raw = _imagenet(tmp_path / "raw")
    good = raw / "train" / "n01" / "a.JPEG"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (60, 80, 3), np.uint8)).save(good)
    truncated, empty, text = (raw / "val" / "n02" / n for n in ("t.JPEG", "z.JPEG", "h.JPEG"))
    truncated.write_bytes(good.read_bytes()[:400])
    empty.write_bytes(b"")
    text.write_bytes(b"this is not an image")
    output = tmp_path / "verified.json"
    output.write_text("{}")  # an earlier run's report must not survive a failed check

    code = main(["verify", "--dataset", "imagenet2012", "--data_path", str(raw),
                 "--num_classes", "2", "--output", str(output)])  # fmt: skip

    assert code == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("verify: decoded 9/9 images, ") and err[0].endswith("3 bad")
    assert err[1] == "vgg16 verify: error: 3 image file(s) cannot be decoded:"
    assert err[2] == f"  {text}: not an image Pillow can read"
    assert err[3].startswith(f"  {truncated}: cannot be decoded (")
    assert err[4] == f"  {empty}: empty file (0 bytes)"
    assert not output.exists()


def test_an_empty_class_folder_is_named(tmp_path: Path) -> None:
    raw = _imagenet(tmp_path / "raw")
    (raw / "val" / "n02" / "f.JPEG").unlink()
    with pytest.raises(ValueError, match=f"^class folder {re.escape(str(raw / 'val' / 'n02'))} "):
        verify("imagenet2012", raw, num_classes=2)


def test_a_val_class_that_train_lacks_is_refused(tmp_path: Path) -> None:
    raw = _imagenet(tmp_path / "raw")
    _image(raw / "val" / "n03" / "g.JPEG", (7, 8, 9))

    with pytest.raises(ValueError) as excinfo:
        verify("imagenet2012", raw, num_classes=2)

    assert str(excinfo.value) == (
        f"{raw}/val has 1 class folder(s) that the training classes lack: ['n03'] (first five)"
    )


def test_a_val_folder_lacking_a_class_is_counted_as_zero(tmp_path: Path) -> None:
    raw = _imagenet(tmp_path / "raw")
    (raw / "val" / "n02" / "f.JPEG").unlink()
    (raw / "val" / "n02").rmdir()

    report = verify("imagenet2012", raw, num_classes=2)

    assert report["splits"]["test"] == {"count": 1, "per_class": [1, 0]}


def test_counts_are_checked_before_any_image_is_decoded(tmp_path: Path) -> None:
    raw = _imagenet(tmp_path / "raw")
    (raw / "val" / "n02" / "f.JPEG").write_bytes(b"")  # would fail the decode
    with pytest.raises(ValueError, match="^split 'test' of .*: expected 5 images, found 2$"):
        verify("imagenet2012", raw, num_classes=2, expect={"test": 5})


def test_class_count_must_match_num_classes(tmp_path: Path) -> None:
    raw = _imagenet(tmp_path / "raw")
    with pytest.raises(ValueError) as excinfo:
        verify("imagenet2012", raw, num_classes=1000)
    assert str(excinfo.value) == f"{raw}/train holds 2 class folders, expected num_classes=1000"


def test_unknown_dataset_names_the_allowed_ones(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError,
        match=r"^unknown dataset 'mnist': expected one of cifar10, imagenet2012, digits, folders$",
    ):
        verify("mnist", tmp_path, num_classes=10)


# the `vgg16 verify` command --------------------------------------------------------------

#: verified.json of ``_cifar`` with three classes, as a person reads it.
CIFAR_REPORT = """\
{
  "dataset": "cifar10",
  "num_classes": 3,
  "raw_splits": {
    "train": "data_batch_*.bin",
    "test": "test_batch.bin"
  },
  "splits": {
    "train": {
      "count": 5,
      "per_class": [
        1,
        2,
        2
      ]
    },
    "test": {
      "count": 2,
      "per_class": [
        2,
        0,
        0
      ]
    }
  },
  "files": 3,
  "skipped": []
}
"""


def _verify_command(raw: Path, output: Path, *expect: str) -> int:
    flags = [x for pair in expect for x in ("--expect", pair)]
    return main(
        ["verify", "--dataset", "cifar10", "--data_path", str(raw), "--num_classes", "3",
         *flags, "--output", str(output)]
    )  # fmt: skip


def test_verify_command_writes_indented_report_and_prints_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    raw = _cifar(tmp_path / "raw")
    output = tmp_path / "verified.json"

    assert _verify_command(raw, output, "train=5", "test=2") == 0

    out = capsys.readouterr().out
    assert out == f"verified {raw}: {{'train': 5, 'test': 2}}, 0 file(s) skipped\n"
    assert output.read_text() == CIFAR_REPORT


def test_verify_command_checks_expected_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    raw = _cifar(tmp_path / "raw")
    output = tmp_path / "verified.json"

    assert _verify_command(raw, output, "test=2", "train=6") == 1

    err = capsys.readouterr().err
    assert err == f"vgg16 verify: error: split 'train' of {raw}: expected 6 images, found 5\n"
    assert not output.exists()


@pytest.mark.parametrize("pair", ["train", "train=", "train=x", "train==5", "train=-5"])
def test_verify_command_refuses_malformed_expect(
    tmp_path: Path, capsys: pytest.CaptureFixture, pair: str
) -> None:
    """Only SPLIT=COUNT with COUNT a whole number: a doubled '=' is a typo, not a split name."""
    raw = _cifar(tmp_path / "raw")
    output = tmp_path / "verified.json"

    assert _verify_command(raw, output, pair) == 1

    assert capsys.readouterr().err == (
        f"vgg16 verify: error: --expect {pair!r}: expected SPLIT=COUNT, e.g. train=50000\n"
    )
    assert not output.exists()


def test_the_verify_command_names_each_skipped_file_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    raw = _imagenet(tmp_path / "raw")
    (raw / "train" / "n02" / "notes.txt").write_text("not an image")
    argv = ["verify", "--dataset", "imagenet2012", "--data_path", str(raw), "--num_classes", "2",
            "--output", str(tmp_path / "verified.json")]  # fmt: skip

    assert main(argv) == 0

    captured = capsys.readouterr()
    assert "skipped train/n02/notes.txt: not an image file (extension)\n" in captured.err
    assert captured.out == f"verified {raw}: {{'train': 4, 'test': 2}}, 1 file(s) skipped\n"


def test_an_expected_split_the_folder_lacks_is_named(tmp_path: Path) -> None:
    """folders may have a test/ folder; this one has train/ only."""
    raw = tmp_path / "raw"
    for name in ("a", "b"):
        _image(raw / "train" / name / "0.png", (1, 2, 3))
    with pytest.raises(ValueError) as excinfo:
        verify("folders", raw, num_classes=None, expect={"train": 2, "test": 2})
    assert str(excinfo.value) == f"expect names split 'test', but {raw} has splits ['train']"
