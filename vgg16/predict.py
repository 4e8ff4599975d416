"""`vgg16 predict`: class probabilities for image files or folders of them, from a checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from mindspore import dataset as ds
from mindspore import nn
from mindspore.dataset import vision

from vgg16 import checkpoint, config, device, images, transforms
from vgg16.atomic import write_csv
from vgg16.config import Recipe, from_args
from vgg16.input_pipeline import workers
from vgg16.metrics import log_softmax


def add_arguments(parser: argparse.ArgumentParser) -> None:
    config.add_arguments(parser)
    device.add_arguments(parser)
    parser.add_argument("--pre_trained", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True, help="folder for predictions.csv")
    parser.add_argument("images", type=Path, nargs="+")


def main(args: argparse.Namespace) -> None:
    recipe = from_args(args)
    files = image_files(args.images)
    for _ in images.decode_all(images.check, files, "predict"):  # every bad file, named
        pass
    device.start(args, recipe)
    net, meta, recipe = checkpoint.load_net(recipe, args.pre_trained)
    names = meta.get("class_names") or [str(i) for i in range(recipe.num_classes)]
    out = predict(net, recipe, files, names, args.output)
    print(f"wrote {out}: {len(files)} image(s)")


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


class _NetworkInputs:
    """Random-access source of each file's pixels as evaluation would see them: JPEGs by
    MindSpore's decoder (as their records are in evaluation), other formats exactly."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self.decode = vision.Decode()

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[np.ndarray]:
        data = images.network_input(self.paths[i])
        if isinstance(data, bytes):
            return (self.decode(np.frombuffer(data, dtype=np.uint8)),)
        return (data,)


def predict(
    net: nn.Cell, recipe: Recipe, files: list[Path], class_names: list[str], output: Path
) -> Path:
    """Write `predictions.csv`: file, top-5 class names, then one probability per class,
    one row per file, from the evaluation transforms of `recipe`."""
    data = ds.GeneratorDataset(_NetworkInputs(list(files)), ["image"], shuffle=False)
    data = data.map(
        transforms.evaluation(recipe),
        input_columns="image",
        num_parallel_workers=workers(),
    )
    net.set_train(False)
    probs = []
    for (batch,) in data.batch(recipe.eval_batch_size).create_tuple_iterator(num_epochs=1):
        logits = net(batch).asnumpy().astype(np.float64)
        probs.append(np.exp(log_softmax(logits)))
    probs = np.concatenate(probs)
    k = min(5, len(class_names))
    columns = ["file", *[f"top{i + 1}" for i in range(k)], *[f"p_{name}" for name in class_names]]
    rows = [
        [str(path), *[class_names[i] for i in np.argsort(-p)[:k]], *[f"{x:.6f}" for x in p]]
        for path, p in zip(files, probs, strict=True)
    ]
    return write_csv(output / "predictions.csv", columns, rows)
