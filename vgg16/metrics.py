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

from vgg16.group import ProcessGroup
from vgg16.tables import MISTAKES

#: What `evaluate` keeps of each mistake: the columns of the mistakes table (labels as
#: indices here).
MISTAKE_KEYS = MISTAKES.columns


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


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


class Tally:
    """Counts of one worker's images so far: the confusion matrix, top-5 hits, the loss sum
    and, up to `limit`, the most confident mistakes."""

    def __init__(self, num_classes: int, limit: int) -> None:
        self.confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
        self.top5, self.loss, self.count, self.limit = 0, 0.0, 0, limit
        self.mistakes = np.zeros((0, len(MISTAKE_KEYS)))

    def add(self, logits: np.ndarray, truth: np.ndarray, index: np.ndarray) -> None:
        """A batch's float64 logits, true classes and positions in the split."""
        log_probs = log_softmax(logits)
        self.loss -= float(log_probs[np.arange(len(truth)), truth].sum())
        top5 = np.argsort(-logits, axis=1)[:, : min(5, len(self.confusion))]
        self.top5 += int((top5 == truth[:, None]).any(axis=1).sum())
        np.add.at(self.confusion, (truth, logits.argmax(axis=1)), 1)
        if self.limit:
            found = _batch_mistakes(log_probs, truth, index)
            both = np.concatenate([self.mistakes, found])
            self.mistakes = most_confident_mistakes(both, self.limit)
        self.count += len(truth)

    def combined(self, group: ProcessGroup) -> Tally:
        """The whole split's tally, every worker's added up (each evaluated its own disjoint
        part); a group of one returns its own."""
        if group.size == 1:
            return self
        total = Tally(len(self.confusion), self.limit)
        packed = group.sum(np.append(self.confusion.ravel(), [self.top5, self.loss]))
        total.confusion = np.rint(packed[:-2]).astype(np.int64).reshape(self.confusion.shape)
        total.top5, total.loss = int(np.rint(packed[-2])), float(packed[-1])
        total.count = int(total.confusion.sum())
        if self.limit:
            total.mistakes = most_confident_mistakes(self._gathered(group), self.limit)
        return total

    def _gathered(self, group: ProcessGroup) -> np.ndarray:
        """Every worker's mistakes, each in its own slot of a zeroed array summed across
        workers (exact: indices stay below 2**24)."""
        slots = np.zeros((group.size, self.limit, 1 + len(MISTAKE_KEYS)))
        slots[group.rank, : len(self.mistakes), 0] = 1  # this row holds a mistake
        slots[group.rank, : len(self.mistakes), 1:] = self.mistakes
        total = group.sum(slots).reshape(-1, slots.shape[-1])
        return total[total[:, 0] == 1, 1:]

    def metrics(self) -> dict[str, Any]:
        if self.count == 0:
            raise ValueError("the evaluation split is empty")
        per_class_total = self.confusion.sum(axis=1)
        per_class = np.divide(
            np.diag(self.confusion),
            per_class_total,
            out=np.full(len(self.confusion), np.nan),
            where=per_class_total > 0,
        )
        return {
            "top1": float(np.trace(self.confusion) / self.count),
            "top5": self.top5 / self.count,
            "loss": self.loss / self.count,
            "num_images": self.count,
            "per_class_accuracy": [None if np.isnan(a) else float(a) for a in per_class],
            "confusion": self.confusion,
            **({"mistakes": [_mistake(row) for row in self.mistakes]} if self.limit else {}),
        }


def score(
    net: nn.Cell,
    dataset: ms.dataset.Dataset,
    num_classes: int,
    *,
    group: ProcessGroup | None = None,
    mistakes: int = 0,
    indices: Sequence[int] | None = None,
) -> dict[str, Any]:
    """top-1, top-5, mean cross-entropy, per-class accuracy and the confusion matrix.

    With a `group` of several workers, each has scored its own disjoint shard; the counts and
    the loss sum are added up across workers, so every worker returns the whole split's
    metrics. `mistakes`: also return, as "mistakes", that many of the wrongly classified
    images, the most confident first (dicts of `MISTAKE_KEYS`; labels as class indices);
    `indices` are the positions in the split of the images `dataset` yields, in order
    (default 0, 1, ...), which is how a mistake names its image whichever worker found it."""
    net.set_train(False)
    tally = Tally(num_classes, mistakes)
    positions = None if indices is None else np.asarray(indices, dtype=np.int64)
    for images, labels in dataset.create_tuple_iterator(num_epochs=1):
        logits = net(images).asnumpy().astype(np.float64)
        truth = labels.asnumpy().astype(np.int64)
        where = np.arange(tally.count, tally.count + len(truth))
        tally.add(logits, truth, where if positions is None else positions[where])
    return tally.combined(group or ProcessGroup()).metrics()


def _mistake(row: np.ndarray) -> dict[str, int | float]:
    index, true, predicted, probability, true_probability = row.tolist()
    return {
        "index": int(index),
        "true": int(true),
        "predicted": int(predicted),
        "probability": probability,
        "true_probability": true_probability,
    }
