"""VGG16-BN in PyTorch, layer for layer the package's network (`vgg16.model`, BatchNorm,
no convolution bias): the reference the benches run beside MindSpore. Their PyTorch sides run
in processes of their own, which find this module through `PYTHONPATH` (`python_path`)."""

from __future__ import annotations

import os
from pathlib import Path

#: The zoo's VGG16 ("M": 2x2 max-pooling).
LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def vgg16_bn(side: int, num_classes: int = 10):  # -> torch.nn.Sequential
    from torch import nn  # only in the benches' PyTorch processes

    layers, channels = [], 3
    for v in LAYERS:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, v, 3, padding=1, bias=False), nn.BatchNorm2d(v),
                       nn.ReLU()]  # fmt: skip
            channels = v
    cells = side // 32
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(512 * cells * cells, 4096), nn.ReLU(),
                         nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(4096, num_classes))  # fmt: skip


def python_path() -> dict[str, str]:
    """The environment of a PyTorch process that imports this module."""
    here = str(Path(__file__).resolve().parent)
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")])),
    }
