"""Classification metrics of a network on a dataset, shared by `select` and `evaluate`.

Metrics are accumulated in numpy from the logits, so every image counts (the last partial
batch included) and the loss is the plain cross-entropy, comparable across recipes whatever
their label smoothing. `evaluate` can also keep the images the network got most confidently
wrong, across workers too, for the report's gallery of mistakes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import mindspore as ms
import numpy as np
from mindspore import nn

from vgg16.tables import MISTAKES


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _sum_over_workers(values: np.ndarray) -> np.ndarray:
    """All-reduce (sum) across the process group: the zoo defined this and never called it."""
    from mindspore import ops

    return ops.AllReduce()(ms.Tensor(values)).asnumpy()


#: What `evaluate` keeps of each mistake: the columns of mistakes.csv (labels as indices here).
MISTAKE_KEYS = MISTAKES.columns


def most_confident_mistakes(candidates: np.ndarray, limit: int) -> np.ndarray:
    """The `limit` rows of `candidates` (columns: `MISTAKE_KEYS`) with the highest
    probability, ties going to the lower index, so the choice never depends on batch or
    worker order."""
    order = np.lexsort((candidates[:, 0], -candidates[:, 3]))
    return candidates[order[:limit]]


def _batch_mistakes(log_probs: np.ndarray, truth: np.ndarray, index: np.ndarray) -> np.ndarray:
    """One row per wrongly classified image of a batch (columns: `MISTAKE_KEYS`).

    Probabilities are rounded to float32, what the all-reduce of several workers carries, so
    one process and N workers rank the same values."""
    predicted = log_probs.argmax(axis=1)
    wrong = np.flatnonzero(predicted != truth)
    probs = np.exp(log_probs[wrong]).astype(np.float32).astype(np.float64)
    columns = (
        index[wrong],
        truth[wrong],
        predicted[wrong],
        probs[np.arange(len(wrong)), predicted[wrong]],
        probs[np.arange(len(wrong)), truth[wrong]],
    )
    return np.stack(columns, axis=1).astype(np.float64).reshape(-1, len(MISTAKE_KEYS))


def _gather_mistakes(mine: np.ndarray, limit: int) -> np.ndarray:
    """Every worker's mistakes, each in its own slot of a zeroed array that is summed across
    workers (MindSpore's CPU collectives take float32: exact for indices below 2**24)."""
    from mindspore.communication import get_group_size, get_rank

    slots = np.zeros((get_group_size(), limit, 1 + len(MISTAKE_KEYS)), dtype=np.float32)
    slots[get_rank(), : len(mine), 0] = 1  # this row holds a mistake
    slots[get_rank(), : len(mine), 1:] = mine
    total = _sum_over_workers(slots.ravel()).reshape(-1, slots.shape[-1]).astype(np.float64)
    return total[total[:, 0] == 1, 1:]


def evaluate(
    net: nn.Cell,
    dataset: ms.dataset.Dataset,
    num_classes: int,
    *,
    distributed: bool = False,
    mistakes: int = 0,
    indices: Sequence[int] | None = None,
) -> dict[str, Any]:
    """top-1, top-5, mean cross-entropy, per-class accuracy and the confusion matrix.

    `distributed`: each worker has evaluated its own disjoint shard; the counts and the loss
    sum are added up across workers, so every worker returns the whole split's metrics.
    `mistakes`: also return, as "mistakes", that many of the wrongly classified images, the
    most confident first (dicts of `MISTAKE_KEYS`; labels as class indices); `indices` are
    the positions in the split of the images `dataset` yields, in order (default 0, 1, ...),
    which is how a mistake names its image whichever worker found it."""
    net.set_train(False)
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    top5_correct, loss_sum, count = 0, 0.0, 0
    wrong = np.zeros((0, len(MISTAKE_KEYS)))
    positions = None if indices is None else np.asarray(indices, dtype=np.int64)
    k = min(5, num_classes)
    for images, labels in dataset.create_tuple_iterator(num_epochs=1):
        logits = net(images).asnumpy().astype(np.float64)
        truth = labels.asnumpy().astype(np.int64)
        log_probs = log_softmax(logits)
        loss_sum -= float(log_probs[np.arange(len(truth)), truth].sum())
        top5 = np.argsort(-logits, axis=1)[:, :k]
        top5_correct += int((top5 == truth[:, None]).any(axis=1).sum())
        np.add.at(confusion, (truth, logits.argmax(axis=1)), 1)
        if mistakes:
            where = np.arange(count, count + len(truth))
            index = where if positions is None else positions[where]
            found = _batch_mistakes(log_probs, truth, index)
            wrong = most_confident_mistakes(np.concatenate([wrong, found]), mistakes)
        count += len(truth)
    if distributed and mistakes:
        wrong = most_confident_mistakes(_gather_mistakes(wrong, mistakes), mistakes)
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
        **({"mistakes": [_mistake(row) for row in wrong]} if mistakes else {}),
    }


def _mistake(row: np.ndarray) -> dict[str, int | float]:
    index, true, predicted, probability, true_probability = row.tolist()
    return {
        "index": int(index),
        "true": int(true),
        "predicted": int(predicted),
        "probability": probability,
        "true_probability": true_probability,
    }
