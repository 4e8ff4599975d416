"""`vgg16 export` to ONNX, and `vgg16 predict --engine onnxruntime` without MindSpore, on the
digits demo's trained checkpoint (conftest's `digits_run`, shared with test_end_to_end.py):
the model in ONNX Runtime against the network, and its predictions against MindSpore's."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sklearn.datasets
from PIL import Image

from vgg16.cli import main
from vgg16.config import load_recipe
from vgg16.formats.cifar10 import find_batches, read_batches
from vgg16.preprocessing import Preprocessing

#: scikit-learn's two sample photographs (427x640 JPEGs).
PHOTOS = Path(sklearn.datasets.__file__).parent / "images"
BATCH = 4


@pytest.fixture(scope="module")
def run(digits_run) -> dict[str, Path]:
    return digits_run


@pytest.fixture(scope="module")
def exported(run, vgg16, tmp_path_factory) -> tuple[Path, str]:
    """The selected checkpoint as ONNX and MINDIR, batch 4: the folder and the command's
    output."""
    folder = tmp_path_factory.mktemp("export") / "model"
    result = vgg16("export", "--config", run["train"] / "recipe.yaml", "--pre_trained",
                   run["select"] / "best.ckpt", "--output", folder, "--file_format", "onnx",
                   "MINDIR", "--batch_size", BATCH)  # fmt: skip
    return folder, result.stdout


@pytest.mark.training
def test_export_writes_each_model_and_what_feeds_it(exported):
    """Hand values: the digits demo's recipe (32 px, resized as CIFAR-10 is, statistics 0.19
    and 0.33 of 255 in every channel) and class names (the digits)."""
    import onnx

    folder, stdout = exported
    names = ["vgg16.onnx", "vgg16.mindir", "preprocessing.json"]
    assert stdout.splitlines() == [f"wrote {folder / name}" for name in names]
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)  # no temporary file left
    assert json.loads((folder / "preprocessing.json").read_text()) == {
        "image_size": [32, 32], "batch_size": BATCH, "layout": "NCHW", "channel_order": "RGB",
        "dtype": "float32", "resize": {"height": 32, "width": 32},
        "interpolation": "cv2.INTER_LINEAR", "center_crop": None, "mean": [48.45] * 3,
        "std": [84.15] * 3, "class_names": [str(d) for d in range(10)],
    }  # fmt: skip
    model = onnx.load(str(folder / "vgg16.onnx"))
    onnx.checker.check_model(model)
    shapes = {
        value.name: [dim.dim_value for dim in value.type.tensor_type.shape.dim]
        for value in [*model.graph.input, *model.graph.output]
    }
    assert shapes == {"images": [BATCH, 3, 32, 32], "logits": [BATCH, 10]}
    assert [opset.version for opset in model.opset_import] == [11]


@pytest.mark.training
def test_onnx_runtime_gives_the_networks_eval_mode_output(run, exported):
    """On the held-out digits, prepared from preprocessing.json: ONNX Runtime's logits equal
    MindSpore's for the checkpoint's network in eval mode (no dropout, BatchNorm's moving
    statistics) within 1e-5."""
    import mindspore as ms
    import onnxruntime

    from vgg16.checkpoint import load_net

    folder, _ = exported
    spec = Preprocessing.read(folder / "preprocessing.json")
    digits, _ = read_batches(find_batches(run["raw"])["test"])
    batches = spec.normalize(np.stack([spec.pixels(image) for image in digits[:16]]))
    session = onnxruntime.InferenceSession(str(folder / "vgg16.onnx"))
    net, _, _ = load_net(load_recipe(run["train"] / "recipe.yaml"), run["select"] / "best.ckpt")
    net.set_train(False)
    for batch in np.split(batches, len(batches) // BATCH):
        got = session.run(["logits"], {"images": batch})[0]
        want = net(ms.Tensor(batch)).asnumpy()
        assert np.abs(got - want).max() <= 1e-5
        assert np.ptp(want) > 1  # trained, varied logits


def held_out_files(run: dict[str, Path], folder: Path) -> list[Path]:
    """Images the network never trained on, as files: test digits (PNG, and one at another
    size), photographs as JPEGs of several sizes and kinds (resized to 32 px)."""
    folder.mkdir()
    digits, _ = read_batches(find_batches(run["raw"])["test"])
    for i, image in enumerate(digits[:9]):
        Image.fromarray(image).save(folder / f"digit{i}.png")
    Image.fromarray(digits[9]).resize((80, 64)).save(folder / "digit9-80x64.png")
    with Image.open(PHOTOS / "china.jpg") as china:
        china.save(folder / "china.jpg", quality=90)
        china.crop((100, 50, 333, 251)).save(folder / "crop.jpg", quality=80, subsampling=0)
        china.resize((64, 64)).convert("L").save(folder / "grey.jpg")
    (folder / "flower.jpg").write_bytes((PHOTOS / "flower.jpg").read_bytes())
    return sorted(folder.iterdir())


def read_predictions(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


@pytest.mark.training
def test_predict_in_onnx_runtime_without_mindspore_is_mindspores_predict(
    run, exported, vgg16, tmp_path
):
    """The same CSV within 1e-4 and the same top-1 for every held-out image, from a process
    where `import mindspore` fails (a stand-in package first on the path), which never even
    tries it."""
    folder, _ = exported
    files = held_out_files(run, tmp_path / "images")
    vgg16("predict", "--pre_trained", run["select"] / "best.ckpt", "--output", tmp_path / "ms",
          *files)  # fmt: skip
    blocked = tmp_path / "blocked" / "mindspore"
    blocked.mkdir(parents=True)
    tried = tmp_path / "tried-mindspore"
    (blocked / "__init__.py").write_text(
        f"open({str(tried)!r}, 'w').close()\nraise ImportError('no MindSpore here')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(blocked.parent)}
    cmd = [sys.executable, "-m", "vgg16", "predict", "--engine", "onnxruntime", "--model",
           str(folder), "--output", str(tmp_path / "ort"), *map(str, files)]  # fmt: skip
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert not tried.exists()

    want, got = (read_predictions(tmp_path / side / "predictions.csv") for side in ("ms", "ort"))
    assert [row["file"] for row in got] == [row["file"] for row in want] == list(map(str, files))
    assert [row["top1"] for row in got] == [row["top1"] for row in want]
    columns = [f"p_{d}" for d in range(10)]
    probabilities = [[[float(row[c]) for c in columns] for row in side] for side in (want, got)]
    assert np.abs(np.subtract(*probabilities)).max() <= 1e-4
    assert len({row["top1"] for row in want}) >= 4  # different images, different answers


def test_air_needs_ascend(tmp_path, capsys):
    """Said before the checkpoint is even read; nothing is written."""
    code = main(["export", "--file_format", "AIR", "--pre_trained", str(tmp_path / "x.ckpt"),
                 "--output", str(tmp_path / "out")])  # fmt: skip
    assert code == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        "vgg16 export: error: --file_format AIR needs Ascend (MindSpore writes AIR only "
        "there), and this process runs on CPU: export MINDIR or ONNX instead"
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--engine", "onnxruntime"], "--engine onnxruntime needs --model"),
        (["--model", "m"], "--model is for --engine onnxruntime, not --engine mindspore"),
        (["--engine", "onnxruntime", "--model", "m", "--pre_trained", "c.ckpt"],
         "--pre_trained is for --engine mindspore, not --engine onnxruntime"),
        (["--engine", "onnxruntime", "--model", "m", "--set", "transforms=imagenet"],
         "--set: for --engine mindspore; --engine onnxruntime prepares images as "
         "m/preprocessing.json says"),
        (["--engine", "onnxruntime", "--model", "{tmp}"],
         "{tmp}/preprocessing.json does not exist (written by vgg16 export)"),
    ],
    ids=["no-model", "model-for-mindspore", "checkpoint-for-onnxruntime", "recipe-for-onnx",
         "no-export"],
)  # fmt: skip
def test_predict_says_what_each_engine_needs(flags, message, tmp_path, capsys):
    image = tmp_path / "a.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(image)
    flags = [flag.format(tmp=tmp_path) for flag in flags]
    code = main(["predict", *flags, "--output", str(tmp_path / "out"), str(image)])
    assert code == 1
    err = capsys.readouterr().err.splitlines()[-1]
    assert err == f"vgg16 predict: error: {message.format(tmp=tmp_path)}"
    assert not (tmp_path / "out").exists()
