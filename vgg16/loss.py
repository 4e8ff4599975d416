"""Softmax cross-entropy with label smoothing, as the zoo's `CrossEntropySmooth`."""

from __future__ import annotations

import mindspore as ms
from mindspore import nn, ops


class CrossEntropySmooth(nn.Cell):
    """Targets are 1 - factor on the true class and factor / (C - 1) elsewhere.

    The zoo spreads the smoothing mass over the C - 1 wrong classes (not over all C, as
    Szegedy et al. do), so a factor of 0 is exactly plain cross-entropy.
    """

    def __init__(self, *, num_classes: int, smooth_factor: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= smooth_factor < 1.0:
            raise ValueError(f"label_smooth_factor={smooth_factor}: expected 0 <= factor < 1")
        self.num_classes = num_classes
        self.on_value = ms.Tensor(1.0 - smooth_factor, ms.float32)
        self.off_value = ms.Tensor(smooth_factor / (num_classes - 1), ms.float32)
        self.ce = nn.SoftmaxCrossEntropyWithLogits(reduction="mean")

    def construct(self, logits: ms.Tensor, labels: ms.Tensor) -> ms.Tensor:
        target = ops.one_hot(labels, self.num_classes, self.on_value, self.off_value)
        return self.ce(logits.astype(ms.float32), target)
