"""`select` and `eval` on checkpoints whose predictions are set by hand.

Each checkpoint's last layer has zero weights, so its logits are its bias whatever the image:
"always class k", with the other classes ranked by index. The val split holds only 3s and
the test split mostly 7s, so the checkpoint best on val (epoch 2) is neither the last one
(epoch 3) nor the one best on test (epoch 1), and every metric is computed here by hand.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import mindspore as ms
import numpy as np
import pytest
from conftest import write_source
from PIL import Image

from vgg16 import checkpoint
from vgg16.cli import main
from vgg16.config import load_recipe
from vgg16.model import build_net

#: Epoch -> the class its checkpoint always predicts.
ALWAYS = {1: 7, 2: 3, 3: 5}
TEST_LABELS = [7] * 30 + [0, 0, 1, 1, 2, 2, 4, 4, 4, 4]


def bias(k: int) -> np.ndarray:
    """Class k first, then the others in index order."""
    b = -0.1 * np.arange(10, dtype=np.float32)
    b[k] = 5.0
    return b


def hand_metrics(b: np.ndarray, labels: list[int]) -> dict:
    """top-1, top-5 and mean cross-entropy of constant logits `b`, computed independently."""
    log_probs = b.astype(np.float64) - np.log(np.exp(b.astype(np.float64)).sum())
    ranked = sorted(range(10), key=lambda c: -b[c])
    return {
        "top1": sum(y == ranked[0] for y in labels) / len(labels),
        "top5": sum(y in ranked[:5] for y in labels) / len(labels),
        "loss": -sum(log_probs[y] for y in labels) / len(labels),
    }


@pytest.fixture(scope="module")
def setup(digits, tmp_path_factory) -> dict[str, Path]:
    from vgg16.prepare import prepare

    images, labels = digits
    root = tmp_path_factory.mktemp("select")
    threes = images[labels == 3][:40]
    test = np.concatenate([images[labels == y][:1] for y in TEST_LABELS])
    src = write_source(root / "src", np.concatenate([threes, test]),
                       np.array([3] * 40 + TEST_LABELS), train=40, test=40)  # fmt: skip
    prepare("digits", src, root / "data", val_fraction=0.25)
    recipe = load_recipe(dataset="digits")
    recipe.dump(root / "train" / "recipe.yaml")  # as `train` leaves it for `select`
    ckpt = root / "train" / "ckpt"
    net = build_net(recipe)
    head = net.classifier[6]
    head.weight.set_data(ms.Tensor(np.zeros(head.weight.shape, np.float32)))
    for epoch, k in ALWAYS.items():
        head.bias.set_data(ms.Tensor(bias(k)))
        checkpoint.save(net, ckpt / checkpoint.checkpoint_name(epoch), {"epoch": epoch})
    return {"data": root / "data", "train": root / "train", "ckpt": ckpt, "root": root}


@pytest.fixture(scope="module")
def selected(vgg16, setup) -> Path:
    out = setup["root"] / "selected"
    vgg16("select", "--data_path", setup["data"], "--train", setup["train"], "--output", out)
    return out


def test_the_val_split_is_what_the_hand_computation_assumes(setup):
    manifest = json.loads((setup["data"] / "manifest.json").read_text())
    assert manifest["splits"]["val"]["per_class"] == [0, 0, 0, 10, 0, 0, 0, 0, 0, 0]
    assert manifest["splits"]["test"]["count"] == len(TEST_LABELS)


def test_select_scores_every_checkpoint_on_val(selected):
    with (selected / "selection.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert [r["selected"] for r in rows] == ["False", "True", "False"]
    for row in rows:
        want = hand_metrics(bias(ALWAYS[int(row["epoch"])]), [3] * 10)
        assert float(row["val_top1"]) == pytest.approx(want["top1"])
        assert float(row["val_top5"]) == pytest.approx(want["top5"])
        assert float(row["val_loss"]) == pytest.approx(want["loss"], rel=1e-5)


def test_select_publishes_the_best_on_val_not_the_last_nor_the_best_on_test(setup, selected):
    """best.ckpt holds the epoch-2 checkpoint's weights and metadata."""
    best, meta = checkpoint.read(selected / "best.ckpt")
    source, source_meta = checkpoint.read(setup["ckpt"] / checkpoint.checkpoint_name(2))
    weights = {k for k in source if not checkpoint.is_optimizer_state(k)}
    assert set(best) == weights
    assert all((best[k].asnumpy() == source[k].asnumpy()).all() for k in weights)
    assert meta == source_meta


def test_eval_metrics_equal_a_hand_computation(vgg16, setup, selected):
    out = setup["root"] / "eval"
    vgg16("evaluate", "--config", setup["train"] / "recipe.yaml", "--data_path", setup["data"],
          "--pre_trained", selected / "best.ckpt", "--output", out)  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    want = hand_metrics(bias(3), TEST_LABELS)
    assert metrics["num_images"] == len(TEST_LABELS)
    assert metrics["top1"] == pytest.approx(want["top1"])
    assert metrics["top5"] == pytest.approx(want["top5"])  # 0.25: the ten non-7s
    assert metrics["loss"] == pytest.approx(want["loss"], rel=1e-5)
    present = set(TEST_LABELS)
    assert metrics["per_class_accuracy"] == {
        str(c): (0.0 if c in present else None) for c in range(10)
    }
    with (out / "confusion.csv").open() as f:
        confusion = [[int(v) for v in row[1:]] for row in list(csv.reader(f))[1:]]
    expected = np.zeros((10, 10), int)
    for y in TEST_LABELS:
        expected[y, 3] += 1
    assert confusion == expected.tolist()


def overwrite(path: Path, data: bytes = b"\xa5" * 4096) -> None:
    """Bytes overwritten in the middle of a file, its size kept (as a bad sector or a stray
    write leaves it)."""
    with path.open("r+b") as f:
        f.seek(path.stat().st_size // 2)
        f.write(data)


def truncate(path: Path) -> bytes:
    """Cut a file to half its size (as a crash right after an unsynced save leaves it)."""
    data = path.read_bytes()[: path.stat().st_size // 2]
    path.chmod(0o644)  # MindSpore leaves checkpoints read-only
    path.write_bytes(data)
    return data


def test_select_sets_damaged_checkpoints_aside_lists_them_and_scores_the_rest(
    vgg16, setup, tmp_path
):
    """The best on val (epoch 2) overwritten, the last (epoch 3) cut short: epoch 1 is
    published, and both are listed with their reasons and kept in ckpt/damaged/."""
    train = tmp_path / "train"
    shutil.copytree(setup["train"], train)
    ckpt = train / "ckpt"
    (ckpt / checkpoint.checkpoint_name(2)).chmod(0o644)
    overwrite(ckpt / checkpoint.checkpoint_name(2))
    cut = truncate(ckpt / checkpoint.checkpoint_name(3))

    log = vgg16("select", "--data_path", setup["data"], "--train", train,
                "--output", tmp_path / "selected").stdout  # fmt: skip

    damaged = ckpt / checkpoint.DAMAGED_DIR
    for epoch in (2, 3):
        name = checkpoint.checkpoint_name(epoch)
        assert f"moved {name} (damaged) to {damaged / name}" in log
    assert "CRC32 does not match" in log and "without a CRC32 (cut short?)" in log
    assert checkpoint.list_checkpoints(ckpt) == [ckpt / checkpoint.checkpoint_name(1)]
    assert (damaged / checkpoint.checkpoint_name(3)).read_bytes() == cut  # kept as it was
    with (tmp_path / "selected" / "selection.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["checkpoint"], r["selected"]) for r in rows] == [
        (checkpoint.checkpoint_name(1), "True"),
        (checkpoint.checkpoint_name(2), "False"),
        (checkpoint.checkpoint_name(3), "False"),
    ]
    assert rows[0]["damaged"] == "" and float(rows[0]["val_top1"]) == 0.0
    assert "CRC32 does not match" in rows[1]["damaged"] and rows[1]["val_top1"] == ""
    assert "without a CRC32 (cut short?)" in rows[2]["damaged"] and rows[2]["val_top1"] == ""
    _, meta = checkpoint.read(tmp_path / "selected" / "best.ckpt")
    assert meta["epoch"] == 1


def test_select_with_every_checkpoint_damaged_names_them_all(vgg16, setup, tmp_path):
    ckpt = tmp_path / "train" / "ckpt"
    shutil.copytree(setup["train"], tmp_path / "train")
    for path in checkpoint.list_checkpoints(ckpt):
        truncate(path)
    result = vgg16("select", "--data_path", setup["data"], "--train", tmp_path / "train",
                   "--output", tmp_path / "selected", check=False)  # fmt: skip
    assert result.returncode == 1
    assert f"every checkpoint in {ckpt} is damaged" in result.stderr
    assert all(checkpoint.checkpoint_name(e) in result.stderr for e in ALWAYS)
    assert not (tmp_path / "selected").exists()
    assert len(checkpoint.list_checkpoints(ckpt)) == len(ALWAYS)  # nothing moved or lost


@pytest.mark.parametrize("stage", ["evaluate", "export", "predict"])
def test_a_damaged_checkpoint_given_to_a_command_is_named(setup, selected, stage, tmp_path,
                                                          capsys):  # fmt: skip
    """In process: each command stops while loading, before any graph is compiled."""
    best = tmp_path / "best.ckpt"
    shutil.copy(selected / "best.ckpt", best)
    best.chmod(0o644)
    overwrite(best)
    image = tmp_path / "three.png"
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(image)
    where = {"evaluate": ["--data_path", setup["data"]], "export": [],
             "predict": [image]}[stage]  # fmt: skip
    code = main([stage, "--config", str(setup["train"] / "recipe.yaml"), "--pre_trained",
                 str(best), "--output", str(tmp_path / "out"), *map(str, where)])  # fmt: skip
    assert code == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"vgg16 {stage}: error: checkpoint {best} is damaged: its CRC32 does not match its "
        "contents (overwritten?)"
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("stage,split", [("select", "val"), ("evaluate", "test")])
def test_a_damaged_mindrecord_shard_is_refused_by_name(setup, selected, stage, split, tmp_path,
                                                       capsys):  # fmt: skip
    """In process: the split is checked when opened, before any graph is compiled."""
    data = tmp_path / "data"
    shutil.copytree(setup["data"], data)
    shard = data / f"{split}.mindrecord"
    overwrite(shard)
    where = {"select": ["--train", setup["train"]],
             "evaluate": ["--pre_trained", selected / "best.ckpt"]}[stage]  # fmt: skip
    code = main([stage, "--config", str(setup["train"] / "recipe.yaml"), "--data_path",
                 str(data), *map(str, where), "--output", str(tmp_path / "out")])  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert f"MindRecord file {shard} of split {split!r} is damaged" in err
    assert "prepare the dataset again" in err
    assert not (tmp_path / "out").exists()
