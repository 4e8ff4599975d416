"""`vgg16 export`: a checkpoint as MINDIR, in eval mode, for serving."""

from __future__ import annotations

import argparse
from pathlib import Path

import mindspore as ms
import numpy as np
from mindspore import nn

from vgg16 import checkpoint, config, device
from vgg16.atomic import commit
from vgg16.config import Recipe, from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    config.add_arguments(parser)
    device.add_arguments(parser)
    parser.add_argument("--pre_trained", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--batch_size", type=int, default=1, help="fixed batch size of the MINDIR")


def main(args: argparse.Namespace) -> None:
    recipe = from_args(args)
    device.start(args, recipe)
    net, _, recipe = checkpoint.load_net(recipe, args.pre_trained)
    print(f"wrote {export(net, recipe, args.output, args.batch_size)}")


def export(net: nn.Cell, recipe: Recipe, output: Path, batch_size: int = 1) -> Path:
    """MINDIR with a fixed input shape (batch, 3, H, W), in eval mode (no dropout)."""
    net.set_train(False)
    output.mkdir(parents=True, exist_ok=True)
    height, width = recipe.image_size
    dummy = ms.Tensor(np.zeros((batch_size, 3, height, width), dtype=np.float32))
    # ms.export appends ".mindir" to the name it is given.
    ms.export(net, dummy, file_name=str(output / ".vgg16.tmp"), file_format="MINDIR")
    target = output / "vgg16.mindir"
    return commit(output / ".vgg16.tmp.mindir", target)
