"""prepare -> train -> select -> eval -> predict -> export on the digits demo, through the CLI.

One short training run (conftest's `digits_run`: 3 epochs, about a minute and a half on 2
cores) is shared by the tests of this module; each command runs as its own process, as the
workflow runs them.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import DIGITS_EPOCHS

from vgg16 import checkpoint
from vgg16.config import load_recipe

#: Trains the digits demo (left out of `make check`).
pytestmark = pytest.mark.training

EPOCHS = DIGITS_EPOCHS
SETTINGS = [f"max_epoch={EPOCHS}"]


def with_settings(*args: str | Path) -> list[str | Path]:
    return [*args, *(x for s in SETTINGS for x in ("--set", s))]


@pytest.fixture(scope="module")
def run(digits_run) -> dict[str, Path]:
    return digits_run


def test_prepare_writes_the_three_splits(run):
    manifest = json.loads((run["data"] / "manifest.json").read_text())
    counts = {split: info["count"] for split, info in manifest["splits"].items()}
    assert sum(counts.values()) == 1797
    assert counts["val"] == round(0.1 * (counts["train"] + counts["val"]))


def test_training_history_and_progress(run):
    with (run["train"] / "history.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == list(range(1, EPOCHS + 1))
    losses = [float(r["loss"]) for r in rows]
    assert losses[-1] < 0.5 * losses[0]
    assert all(float(r["img_per_s"]) > 0 for r in rows)
    assert "img/s eta" in run["train_log"]
    saved = sorted(p.name for p in run["ckpt"].glob("*.ckpt"))
    assert saved == [f"vgg16-epoch{e:04d}.ckpt" for e in range(1, EPOCHS + 1)]
    assert load_recipe(run["train"] / "recipe.yaml").max_epoch == EPOCHS


def test_select_ranks_every_finished_checkpoint_and_publishes_the_best(run):
    with (run["select"] / "selection.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["checkpoint"] for r in rows] == [f"vgg16-epoch{e:04d}.ckpt" for e in range(1, 4)]
    best = max(rows, key=lambda r: (float(r["val_top1"]), int(r["epoch"])))
    assert [r["selected"] == "True" for r in rows] == [r is best for r in rows]
    published, meta = checkpoint.read(run["select"] / "best.ckpt")
    source, source_meta = checkpoint.read(run["ckpt"] / best["checkpoint"])
    assert meta == source_meta and set(published) < set(source)  # no optimiser state
    assert all((published[k].asnumpy() == source[k].asnumpy()).all() for k in published)
    size = (run["select"] / "best.ckpt").stat().st_size
    assert size < 0.6 * (run["ckpt"] / best["checkpoint"]).stat().st_size  # momentum dropped


def test_eval_beats_chance_by_a_wide_margin_and_counts_every_image(run):
    metrics = json.loads((run["eval"] / "metrics.json").read_text())
    manifest = json.loads((run["data"] / "manifest.json").read_text())
    assert metrics["num_images"] == manifest["splits"]["test"]["count"]  # 360: not a batch multiple
    assert metrics["top1"] > 0.6, metrics  # chance is 0.1
    assert metrics["top5"] >= metrics["top1"]
    assert set(metrics["per_class_accuracy"]) == {str(i) for i in range(10)}
    with (run["eval"] / "confusion.csv").open() as f:
        confusion = [[int(v) for v in row[1:]] for row in list(csv.reader(f))[1:]]
    assert sum(map(sum, confusion)) == metrics["num_images"]
    correct = sum(confusion[i][i] for i in range(10))
    assert correct / metrics["num_images"] == pytest.approx(metrics["top1"])


def test_seed_layout_eval_matches_the_mindrecord_test_split(vgg16, run):
    """The seed's `eval.py --data_path <cifar folder>` (the `eval` alias, the raw layout)
    reads the same 360 test images."""
    result = vgg16(*with_settings("eval", "--dataset", "digits", "--data_path", run["raw"],
                                   "--pre_trained", run["select"] / "best.ckpt"))  # fmt: skip
    line = next(s for s in result.stdout.splitlines() if s.startswith("result: "))
    raw = json.loads(line.removeprefix("result: "))
    metrics = json.loads((run["eval"] / "metrics.json").read_text())
    assert raw["num_images"] == metrics["num_images"]
    assert raw["top1"] == pytest.approx(metrics["top1"])


def test_predict(vgg16, run, tmp_path):
    from PIL import Image

    from vgg16.formats.cifar10 import find_batches, read_batches

    images, labels = read_batches(find_batches(run["raw"])["test"])
    files = []
    for i in range(8):
        path = tmp_path / f"digit{i}.png"
        Image.fromarray(images[i]).save(path)
        files.append(path)
    vgg16(
        "predict", "--pre_trained", run["select"] / "best.ckpt", "--output", tmp_path / "p", *files
    )
    with (tmp_path / "p" / "predictions.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8
    probs = [[float(r[f"p_{c}"]) for c in map(str, range(10))] for r in rows]
    assert all(sum(p) == pytest.approx(1, abs=1e-4) for p in probs)
    hits = sum(r["top1"] == str(labels[i]) for i, r in enumerate(rows))
    assert hits >= 5


def test_exported_mindir_gives_the_networks_eval_mode_logits(vgg16, run, tmp_path):
    """Loaded with MindSpore's own loader; training mode (dropout, batch statistics) differs."""
    import mindspore as ms
    from mindspore import nn

    from vgg16 import checkpoint

    best = run["select"] / "best.ckpt"
    vgg16("export", "--pre_trained", best, "--output", tmp_path / "x", "--batch_size", "4")
    ms.set_context(mode=ms.GRAPH_MODE)
    exported = nn.GraphCell(ms.load(str(tmp_path / "x" / "vgg16.mindir")))
    net, _, _ = checkpoint.load_net(load_recipe(dataset="digits"), best)
    net.set_train(False)
    x = ms.Tensor(np.random.default_rng(0).standard_normal((4, 3, 32, 32)), ms.float32)
    want = net(x).asnumpy()
    np.testing.assert_allclose(exported(x).asnumpy(), want, rtol=1e-4, atol=1e-4)
    assert np.ptp(want) > 1  # real, varied logits


def test_a_cpu_machine_hears_nothing_of_missing_ascend_and_gpu_plugins(run, tmp_path):
    """Four MindSpore warnings (with library errors) used to open every command's output on
    a CPU-only machine; they show again when the user asks for MindSpore's logs (GLOG_v)."""
    import os
    import subprocess
    import sys

    env = {key: value for key, value in os.environ.items() if key != "GLOG_v"}
    best = run["select"] / "best.ckpt"
    cmd = [sys.executable, "-m", "vgg16", "export", "--pre_trained", str(best),
           "--output", str(tmp_path / "x")]  # fmt: skip

    quiet = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    asked = subprocess.run(cmd, env={**env, "GLOG_v": "2"}, capture_output=True, text=True)

    assert quiet.stderr == ""
    assert quiet.stdout == "".join(
        f"wrote {tmp_path / 'x' / name}\n" for name in ("vgg16.mindir", "preprocessing.json")
    )
    assert "Backend GPU is not available" in asked.stderr and asked.returncode == 0


def test_the_slow_avx512_convolution_path_is_announced(run, tmp_path):
    """Lifting the package's AVX2 cap on an AVX-512 CPU gets MindSpore's convolutions
    oneDNN's reference loop: the command says so once, with the figure to expect."""
    import os
    import subprocess
    import sys
    from pathlib import Path as P

    avx512 = "avx512f" in P("/proc/cpuinfo").read_text().split()
    cmd = [sys.executable, "-m", "vgg16", "export", "--pre_trained",
           str(run["select"] / "best.ckpt"), "--output", str(tmp_path / "x")]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "GLOG_v"}
    lifted = subprocess.run(cmd, env={**env, "DNNL_MAX_CPU_ISA": "ALL"}, capture_output=True,
                            text=True, check=True)  # fmt: skip
    capped = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    warnings = [line for line in lifted.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == (1 if avx512 else 0), lifted.stderr
    if avx512:
        assert "DNNL_MAX_CPU_ISA=ALL" in warnings[0] and "46x slower" in warnings[0]
    assert "warning:" not in capped.stderr


def test_errors_are_clear_and_leave_no_output(vgg16, run, tmp_path):
    bad = tmp_path / "cifar"
    bad.mkdir()
    (bad / "data_batch_1.bin").write_bytes(b"\0" * 3073 * 2 + b"\0" * 5)
    result = vgg16(
        "prepare",
        "--dataset",
        "cifar10",
        "--data_path",
        bad,
        "--output",
        tmp_path / "out",
        check=False,
    )
    assert result.returncode == 1
    assert "data_batch_1.bin" in result.stderr and "3073" in result.stderr
    assert not (tmp_path / "out").exists()
    result = vgg16("train", "--data_path", run["data"], "--ckpt_path", tmp_path / "c",
                   "--set", "num_clases=3", check=False)  # fmt: skip
    assert result.returncode == 1 and "num_clases" in result.stderr
    assert not (tmp_path / "c").exists()


def test_nan_loss_stops_training_naming_epoch_and_step(vgg16, run, tmp_path):
    result = vgg16("train", "--data_path", run["data"], "--ckpt_path", tmp_path,
                   "--set", "lr_init=1e12", "--set", "lr_max=1e12", check=False)  # fmt: skip
    assert result.returncode == 1, result.stdout
    assert (
        "loss is nan at epoch 1 step" in result.stderr or "loss is inf at epoch 1" in result.stderr
    )
    assert not list((tmp_path / "ckpt").glob("*.ckpt"))


def _network_probabilities(run, pixels: np.ndarray) -> np.ndarray:
    """The trained network applied in this process to (N, 32, 32, 3) uint8 RGB pixels,
    normalised by hand with the recipe's statistics: the reference `predict` must match."""
    import mindspore as ms

    from vgg16.checkpoint import load_net

    recipe = load_recipe(run["train"] / "recipe.yaml")
    net, _, _ = load_net(recipe, run["select"] / "best.ckpt")
    net.set_train(False)
    x = (pixels / 255.0 - np.array(recipe.mean)) / np.array(recipe.std)
    logits = net(ms.Tensor(x.transpose(0, 3, 1, 2).astype(np.float32))).asnumpy()
    logits = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def test_predict_feeds_lossless_images_their_own_pixels(vgg16, run, tmp_path, pynative):
    """PNGs of every kind (RGB, greyscale, 16-bit greyscale, palette, RGBA) are decoded to
    their own pixels and never re-encoded: the probabilities equal the network applied to
    the PIL-decoded, normalised pixels. A lossy round trip moved them by up to 0.135."""
    from PIL import Image

    from vgg16.formats.cifar10 import find_batches, read_batches

    digits, _ = read_batches(find_batches(run["raw"])["test"])
    rng = np.random.default_rng(0)
    noisy = np.clip(digits[:5].astype(int) + rng.integers(-40, 41, digits[:5].shape), 0, 255)
    rgb = noisy.astype(np.uint8)  # texture that JPEG would blur
    files = {
        "rgb.png": Image.fromarray(rgb[0]),
        "grey.png": Image.fromarray(rgb[1, ..., 0]),
        "grey16.png": Image.fromarray(rgb[2, ..., 0].astype(np.uint16) * 257),
        "palette.png": Image.fromarray(rgb[3]).quantize(64),
        "rgba.png": Image.fromarray(np.dstack([rgb[4], np.full((32, 32), 200, np.uint8)])),
    }
    folder = tmp_path / "in"
    (folder / "nested").mkdir(parents=True)
    for name, image in files.items():
        image.save(folder / ("nested" if name == "rgba.png" else "") / name)
    (folder / "notes.txt").write_text("not an image")
    expected_pixels = {
        name: np.asarray(image.convert("RGB"))
        if name != "grey16.png"
        else np.dstack([rgb[2, ..., 0]] * 3)
        for name, image in files.items()
    }

    vgg16("predict", "--pre_trained", run["select"] / "best.ckpt", "--output", tmp_path / "p",
          folder)  # fmt: skip

    with (tmp_path / "p" / "predictions.csv").open() as f:
        rows = list(csv.DictReader(f))
    order = sorted(folder.rglob("*.png"))
    assert [r["file"] for r in rows] == [str(p) for p in order]  # recursive, sorted, no .txt
    got = np.array([[float(r[f"p_{c}"]) for c in map(str, range(10))] for r in rows])
    want = _network_probabilities(run, np.stack([expected_pixels[p.name] for p in order]))
    assert np.abs(got - want).max() <= 1e-5
    assert got.std(axis=0).max() > 0.01  # different images, different answers


def test_the_mistakes_are_the_most_confidently_wrong_test_images(run, pynative):
    """mistakes.csv against the trained network applied here to the raw test batch (the
    test split keeps its order), and mistakes.npz against those images' own pixels."""
    from vgg16.formats.cifar10 import find_batches, read_batches

    images, labels = read_batches(find_batches(run["raw"])["test"])
    probs = _network_probabilities(run, images)
    predicted = probs.argmax(axis=1)
    wrong = sorted(np.flatnonzero(predicted != labels), key=lambda i: (-probs[i, predicted[i]], i))
    with (run["eval"] / "mistakes.csv").open() as f:
        rows = list(csv.DictReader(f))

    assert len(wrong) >= 3  # a network that makes mistakes to list
    assert [int(r["index"]) for r in rows] == [int(i) for i in wrong[:32]]
    assert [(r["true"], r["predicted"]) for r in rows] == [
        (str(labels[i]), str(predicted[i])) for i in wrong[:32]
    ]  # the digits' class names are the digits
    for row, i in zip(rows, wrong, strict=False):
        assert float(row["probability"]) == pytest.approx(probs[i, predicted[i]], abs=1e-5)
        assert float(row["true_probability"]) == pytest.approx(probs[i, labels[i]], abs=1e-5)
    with np.load(run["eval"] / "mistakes.npz") as saved:
        assert saved["index"].tolist() == [int(r["index"]) for r in rows]
        np.testing.assert_array_equal(saved["images"], images[saved["index"]])


def test_predict_names_every_undecodable_file(vgg16, run, tmp_path):
    good = tmp_path / "good.png"
    from PIL import Image

    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(good)
    empty, cut = tmp_path / "empty.png", tmp_path / "cut.png"
    empty.write_bytes(b"")
    cut.write_bytes(good.read_bytes()[:60])

    result = vgg16("predict", "--pre_trained", run["select"] / "best.ckpt",
                   "--output", tmp_path / "p", good, empty, cut, check=False)  # fmt: skip

    assert result.returncode == 1
    assert f"{empty}: empty file (0 bytes)" in result.stderr
    assert f"{cut}: cannot be decoded" in result.stderr
    assert not (tmp_path / "p").exists()
