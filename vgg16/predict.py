"""`vgg16 predict`: class probabilities for image files or folders of them, from a checkpoint
(MindSpore) or from a model exported to ONNX (ONNX Runtime, without MindSpore).

Either engine prepares every image the same way, in numpy, as evaluation's MindSpore ops
would (`preprocessing`, equal to them bit for bit): from the recipe and the checkpoint's
class names, or from the exported folder's `preprocessing.json`. Each runtime is imported
only by the engine that uses it, so `--engine onnxruntime` runs where MindSpore cannot be
imported at all (`tests/test_export.py`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import softmax

from vgg16 import config, device_flags, images
from vgg16.atomic import write_csv
from vgg16.layout import ExportFolder
from vgg16.preprocessing import Preprocessing

#: Each engine, and the flag that names what it predicts with.
ENGINES = {"mindspore": "--pre_trained", "onnxruntime": "--model"}
#: What only the MindSpore engine reads (its recipe and device); an exported model comes
#: with its own preprocessing.json.
MINDSPORE_FLAGS = {"config": "--config", "overrides": "--set", "dataset": "--dataset",
                   "device_target": "--device_target"}  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    config.add_arguments(parser)
    device_flags.add_arguments(parser)
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="mindspore",
        help="mindspore (default): a checkpoint and its recipe; onnxruntime: an exported "
        "ONNX model, without MindSpore",
    )
    parser.add_argument("--pre_trained", type=Path, help="checkpoint (--engine mindspore)")
    parser.add_argument(
        "--model",
        type=Path,
        help="folder written by `vgg16 export --file_format ONNX` (--engine onnxruntime)",
    )
    parser.add_argument("--output", type=Path, required=True, help="folder for predictions.csv")
    parser.add_argument("images", type=Path, nargs="+")


@dataclass(frozen=True)
class Network:
    """What predicting needs of a network, whichever runtime holds it: how to prepare its
    images, how many to give it at once, and its logits for a prepared batch."""

    preprocessing: Preprocessing
    batch_size: int
    logits: Callable[[np.ndarray], np.ndarray]


def main(args: argparse.Namespace) -> None:
    _check_flags(args)
    files = image_files(args.images)
    for _ in images.decode_all(images.check, files, "predict"):  # every bad file, named
        pass
    network = _mindspore(args) if args.engine == "mindspore" else _onnxruntime(args.model)
    out = predict(network, files, args.output)
    print(f"wrote {out}: {len(files)} image(s)")


def _check_flags(args: argparse.Namespace) -> None:
    """Each engine's flags with its engine only, and the chosen engine's given."""
    for engine, flag in ENGINES.items():
        if engine != args.engine and getattr(args, flag.removeprefix("--")) is not None:
            raise ValueError(f"{flag} is for --engine {engine}, not --engine {args.engine}")
    if getattr(args, ENGINES[args.engine].removeprefix("--")) is None:
        raise ValueError(f"--engine {args.engine} needs {ENGINES[args.engine]}")
    ignored = [flag for dest, flag in MINDSPORE_FLAGS.items() if getattr(args, dest)]
    if args.engine == "onnxruntime" and ignored:
        raise ValueError(
            f"{', '.join(ignored)}: for --engine mindspore; --engine onnxruntime prepares "
            f"images as {ExportFolder(args.model).preprocessing} says"
        )


def _mindspore(args: argparse.Namespace) -> Network:
    """The checkpoint's network, prepared as its recipe's evaluation."""
    import mindspore as ms  # here: `--engine onnxruntime` runs without MindSpore

    from vgg16 import checkpoint, device

    recipe = config.from_args(args)
    device.start(args, recipe)
    net, meta, recipe = checkpoint.load_net(recipe, args.pre_trained)
    net.set_train(False)
    spec = Preprocessing.of(recipe, checkpoint.class_names(meta, recipe))
    return Network(spec, recipe.eval_batch_size, lambda batch: net(ms.Tensor(batch)).asnumpy())


def _onnxruntime(folder: Path) -> Network:
    """The exported ONNX model in ONNX Runtime, prepared as its `preprocessing.json` says; a
    short last batch is padded to the model's fixed batch size (BatchNorm in eval mode
    treats every image alone, so the padding changes no other image's logits)."""
    try:
        import onnxruntime
    except ImportError:
        raise ValueError(
            "--engine onnxruntime needs ONNX Runtime: pip install 'vgg16-pipeline[onnx]'"
        ) from None
    export = ExportFolder(folder)
    spec = Preprocessing.read(export.preprocessing)
    path = export.model("ONNX")
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: export with --file_format ONNX")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (given,) = session.get_inputs()
    batch_size, *shape = given.shape
    if shape != [3, *spec.image_size]:
        raise ValueError(
            f"{path} takes images of shape {shape}, but {export.preprocessing} prepares "
            f"{[3, *spec.image_size]}: export both again"
        )

    def logits(batch: np.ndarray) -> np.ndarray:
        padded = np.zeros((batch_size, *shape), dtype=np.float32)
        padded[: len(batch)] = batch
        return session.run(None, {given.name: padded})[0][: len(batch)]

    return Network(spec, batch_size, logits)


def image_files(inputs: list[Path]) -> list[Path]:
    """The files given, and every image file below each folder given (recursively, sorted),
    in the order given."""
    missing = [str(p) for p in inputs if not Path(p).exists()]
    if missing:
        raise FileNotFoundError(f"image file(s) or folder(s) not found: {missing}")
    files = []
    for path in map(Path, inputs):
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.suffix.lower() in images.IMAGE_EXTENSIONS and p.is_file()
            )
            if not found:
                raise ValueError(
                    f"{path} holds no image files "
                    f"(extensions of the formats Pillow decodes, e.g. .jpg, .png)"
                )
            files.extend(found)
        else:
            files.append(path)
    return files


def predict(network: Network, files: list[Path], output: Path) -> Path:
    """Write `predictions.csv`: file, top-5 class names, then one probability per class,
    one row per file. Images are decoded and prepared in threads (Pillow and numpy release
    the GIL), a batch at a time."""
    spec = network.preprocessing
    probs = []
    with ThreadPoolExecutor(images.cpus()) as pool:
        for start in range(0, len(files), network.batch_size):
            chunk = files[start : start + network.batch_size]
            pixels = np.stack(list(pool.map(lambda p: spec.pixels(images.network_input(p)), chunk)))
            logits = network.logits(spec.normalize(pixels)).astype(np.float64)
            probs.append(softmax(logits, axis=1))
    probs = np.concatenate(probs)
    names = spec.class_names
    k = min(5, len(names))
    columns = ["file", *[f"top{i + 1}" for i in range(k)], *[f"p_{name}" for name in names]]
    rows = [
        [str(path), *[names[i] for i in np.argsort(-p)[:k]], *[f"{x:.6f}" for x in p]]
        for path, p in zip(files, probs, strict=True)
    ]
    return write_csv(output / "predictions.csv", columns, rows)
