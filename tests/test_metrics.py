"""Metrics of `evaluate` against a hand computation, on logits chosen here.

The "network" returns its input, so the dataset's images are the logits themselves.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from mindspore import dataset as ds
from mindspore import nn

from vgg16.metrics import evaluate

NUM_CLASSES = 6


class Logits(nn.Cell):
    def construct(self, x):
        return x


def hand(logits: np.ndarray, labels: np.ndarray) -> dict:
    top1 = top5 = 0
    loss = 0.0
    confusion = [[0] * NUM_CLASSES for _ in range(NUM_CLASSES)]
    for row, y in zip(logits.tolist(), labels.tolist(), strict=True):
        order = sorted(range(NUM_CLASSES), key=lambda c: row[c], reverse=True)
        top1 += order[0] == y
        top5 += y in order[:5]
        loss += math.log(sum(math.exp(v) for v in row)) - row[y]
        confusion[y][order[0]] += 1
    per_class = [
        confusion[c][c] / sum(confusion[c]) if sum(confusion[c]) else None
        for c in range(NUM_CLASSES)
    ]
    n = len(labels)
    return {"top1": top1 / n, "top5": top5 / n, "loss": loss / n, "num_images": n,
            "per_class_accuracy": per_class, "confusion": confusion}  # fmt: skip


def test_metrics_equal_a_hand_computation(pynative):
    rng = np.random.default_rng(0)
    labels = rng.choice([0, 1, 2, 4, 5], size=23).astype(np.int32)  # class 3 never occurs
    logits = rng.normal(0, 2, (23, NUM_CLASSES)).astype(np.float32)
    logits[labels == 1, 1] += 4  # class 1 is mostly right
    data = ds.NumpySlicesDataset({"image": logits, "label": labels}, shuffle=False).batch(5)

    got = evaluate(Logits(), data, NUM_CLASSES)

    want = hand(logits, labels)
    assert got["num_images"] == 23  # the last, partial batch of 3 counts
    assert got["top1"] == pytest.approx(want["top1"])
    assert got["top5"] == pytest.approx(want["top5"])
    assert want["top5"] < 1 and want["top1"] < want["top5"]  # the example tells them apart
    assert got["loss"] == pytest.approx(want["loss"], rel=1e-6)
    assert got["per_class_accuracy"] == pytest.approx(want["per_class_accuracy"])
    assert got["confusion"].tolist() == want["confusion"]
