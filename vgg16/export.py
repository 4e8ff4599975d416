"""`vgg16 export` (the seed's `export.py`): a checkpoint as a model to serve, in eval mode,
beside the `preprocessing.json` that says how to feed it.

MINDIR is read by MindSpore alone; ONNX (opset 11, as MindSpore 2.10 writes it, input
`images`, output `logits`) by ONNX Runtime and most other runtimes; AIR only on Ascend. The
batch size is fixed, and a runtime pads a short last batch (`predict`): MindSpore 2.10 can
export the batch axis as dynamic, but declares the output's batch fixed all the same (ONNX
Runtime warns at every call whose batch differs), and a network exported to ONNX once cannot
be exported to ONNX again (`RuntimeError: i: 6 out of range` on its first BatchNorm), so
each format is written once per command.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import mindspore as ms
import mindspore.onnx
import numpy as np
from mindspore import nn

from vgg16 import checkpoint, config, device
from vgg16.atomic import commit, write_text
from vgg16.config import Recipe, from_args
from vgg16.layout import ExportFolder
from vgg16.preprocessing import Preprocessing

#: The seed's `--file_format` choices.
FORMATS = ("MINDIR", "ONNX", "AIR")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    config.add_arguments(parser)
    device.add_arguments(parser)
    parser.add_argument("--pre_trained", type=Path, required=True)
    parser.add_argument(
        "--output", type=Path, required=True, help="folder for the model(s) and preprocessing.json"
    )
    parser.add_argument(
        "--file_format",
        nargs="+",
        type=str.upper,
        choices=FORMATS,
        default=["MINDIR"],
        help="MINDIR (default), ONNX or AIR (Ascend only), or several: one model each (seed flag)",
    )
    parser.add_argument("--batch_size", type=int, default=1, help="fixed batch size of the model")


def main(args: argparse.Namespace) -> None:
    if args.batch_size < 1:
        raise ValueError(f"--batch_size={args.batch_size}: expected >= 1")
    recipe = from_args(args)
    device.start(args, recipe)
    if "AIR" in args.file_format and device.target() != "Ascend":
        raise ValueError(
            f"--file_format AIR needs Ascend (MindSpore writes AIR only there), and this "
            f"process runs on {device.target()}: export MINDIR or ONNX instead"
        )
    net, meta, recipe = checkpoint.load_net(recipe, args.pre_trained)
    folder = ExportFolder(args.output)
    for file_format in dict.fromkeys(args.file_format):
        print(f"wrote {export(net, recipe, folder, file_format, args.batch_size)}")
    spec = Preprocessing.of(recipe, checkpoint.class_names(meta, recipe))
    # Last: a folder with a preprocessing.json holds whole models.
    print(f"wrote {write_text(folder.preprocessing, spec.to_json(args.batch_size))}")


def export(
    net: nn.Cell, recipe: Recipe, folder: ExportFolder, file_format: str, batch_size: int
) -> Path:
    """The network in eval mode (no dropout; BatchNorm's moving statistics) with the fixed
    input shape (batch_size, 3, H, W), written under a temporary name and then renamed."""
    net.set_train(False)
    target = folder.model(file_format)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.stem}.tmp{target.suffix}")  # MindSpore keeps its suffix
    dummy = ms.Tensor(np.zeros((batch_size, 3, *recipe.image_size), dtype=np.float32))
    try:
        if file_format == "ONNX":
            names = {"input_names": ["images"], "output_names": ["logits"]}
            mindspore.onnx.export(net, dummy, file_name=str(tmp), **names)
        else:
            ms.export(net, dummy, file_name=str(tmp), file_format=file_format)
        return commit(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
