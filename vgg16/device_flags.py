"""The seed's device flags, declared apart from `device` (which imports MindSpore) so that a
command that may run without MindSpore, `predict --engine onnxruntime`, declares them too."""

from __future__ import annotations

import argparse

from vgg16.config import DEVICE_TARGETS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The seed's device flags, on every command that runs the network."""
    parser.add_argument(
        "--device_target",
        choices=DEVICE_TARGETS,
        help="backend (seed flag); default: the best available",
    )
    parser.add_argument("--device_id", type=int, default=0, help="device index (seed flag)")
    parser.add_argument(
        "--is_distributed",
        type=int,
        choices=(0, 1),
        default=0,
        help="1: one process of a group started by rank table (seed flag; "
        "--workers needs no such flag)",
    )
