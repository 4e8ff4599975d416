"""Classification metrics of a network on a dataset, shared by `select` and `evaluate`.

Metrics are accumulated in numpy from the logits, so every image counts (the last partial
batch included) and the loss is the plain cross-entropy, comparable across recipes whatever
their label smoothing.
"""

from __future__ import annotations

from typing import Any

import mindspore as ms
import numpy as np
from mindspore import nn


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _sum_over_workers(values: np.ndarray) -> np.ndarray:
    """All-reduce (sum) across the process group: the zoo defined this and never called it."""
    from mindspore import ops

    return ops.AllReduce()(ms.Tensor(values)).asnumpy()


def evaluate(
    net: nn.Cell, dataset: ms.dataset.Dataset, num_classes: int, *, distributed: bool = False
) -> dict[str, Any]:
    """top-1, top-5, mean cross-entropy, per-class accuracy and the confusion matrix.

    `distributed`: each worker has evaluated its own disjoint shard; the counts and the loss
    sum are added up across workers, so every worker returns the whole split's metrics."""
    net.set_train(False)
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    top5_correct, loss_sum, count = 0, 0.0, 0
    k = min(5, num_classes)
    for images, labels in dataset.create_tuple_iterator(num_epochs=1):
        logits = net(images).asnumpy().astype(np.float64)
        truth = labels.asnumpy().astype(np.int64)
        log_probs = log_softmax(logits)
        loss_sum -= float(log_probs[np.arange(len(truth)), truth].sum())
        top5 = np.argsort(-logits, axis=1)[:, :k]
        top5_correct += int((top5 == truth[:, None]).any(axis=1).sum())
        np.add.at(confusion, (truth, logits.argmax(axis=1)), 1)
        count += len(truth)
    if distributed:
        # MindSpore's CPU AllReduce takes float32 only, which holds integers exactly below
        # 2**24: far above any count here (ImageNet's test split has 50,000 images).
        packed = np.append(confusion.ravel(), [top5_correct, loss_sum]).astype(np.float32)
        total = _sum_over_workers(packed)
        confusion = np.rint(total[:-2]).astype(np.int64).reshape(confusion.shape)
        top5_correct, loss_sum = int(np.rint(total[-2])), float(total[-1])
        count = int(confusion.sum())
    if count == 0:
        raise ValueError("the evaluation split is empty")
    per_class_total = confusion.sum(axis=1)
    per_class = np.divide(
        np.diag(confusion),
        per_class_total,
        out=np.full(num_classes, np.nan),
        where=per_class_total > 0,
    )
    return {
        "top1": float(np.trace(confusion) / count),
        "top5": top5_correct / count,
        "loss": loss_sum / count,
        "num_images": count,
        "per_class_accuracy": [None if np.isnan(a) else float(a) for a in per_class],
        "confusion": confusion,
    }
