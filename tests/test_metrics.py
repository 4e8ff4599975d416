"""Metrics of `evaluate` against a hand computation, on logits chosen here.

The "network" returns its input, so the dataset's images are the logits themselves.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from mindspore import dataset as ds
from mindspore import nn

from vgg16.group import ProcessGroup
from vgg16.input_pipeline import evaluation_indices
from vgg16.metrics import Tally, log_softmax, most_confident_mistakes, score

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

    got = score(Logits(), data, NUM_CLASSES)

    want = hand(logits, labels)
    assert got["num_images"] == 23  # the last, partial batch of 3 counts
    assert got["top1"] == pytest.approx(want["top1"])
    assert got["top5"] == pytest.approx(want["top5"])
    assert want["top5"] < 1 and want["top1"] < want["top5"]  # the example tells them apart
    assert got["loss"] == pytest.approx(want["loss"], rel=1e-6)
    assert got["per_class_accuracy"] == pytest.approx(want["per_class_accuracy"])
    assert got["confusion"].tolist() == want["confusion"]


def test_log_softmax_of_rows_with_very_different_scales_stays_finite():
    """Each row is shifted by its own maximum: exp(1000) overflows and exp(-2000) underflows,
    so neither an unshifted nor a globally shifted version gets these right."""
    logits = np.array([[1000.0, 1000.0, 1000.0 - math.log(2)], [-1000.0, -1000.0, -1000.0]])

    got = log_softmax(logits)

    # Row 1: weights 1, 1, 1/2 of 2.5. Row 2: a third each.
    want = [
        [math.log(1 / 2.5), math.log(1 / 2.5), math.log(0.5 / 2.5)],
        [-math.log(3)] * 3,
    ]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def _row(pred: int) -> list[float]:
    """Logits 0, -1, .., -5: class `pred` scores 0, the other classes -1, -2, .. in order."""
    row = [0.0] * NUM_CLASSES
    others = [c for c in range(NUM_CLASSES) if c != pred]
    for rank, c in enumerate(others, 1):
        row[c] = -float(rank)
    return row


def test_per_class_accuracy_counts_single_image_classes_and_skips_absent_ones(pynative):
    """Labels 0, 0, 2 predicted as 0, 1, 2: class 0 is half right, class 2 (one image) right,
    class 1 (predicted, never true) and 3..5 have no images. Batches of 2 end in a partial one;
    a class without images gives None without a numpy warning on the user's console."""
    logits = np.array([_row(0), _row(1), _row(2)], dtype=np.float32)
    labels = np.array([0, 0, 2], dtype=np.int32)
    data = ds.NumpySlicesDataset({"image": logits, "label": labels}, shuffle=False).batch(2)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = score(Logits(), data, NUM_CLASSES)

    assert got["per_class_accuracy"] == [0.5, None, 1.0, None, None, None]
    assert got["confusion"].dtype == np.int64  # counts, written to confusion.csv as integers
    assert got["confusion"].tolist() == [
        [1, 1, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
        [0, 0, 1, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
    ]
    # Every row's log-sum-exp is S = log(1 + e^-1 + ... + e^-5); image 1's label scores -1.
    s = math.log(sum(math.exp(-j) for j in range(NUM_CLASSES)))
    assert got["loss"] == pytest.approx(s + 1 / 3)
    assert (got["top1"], got["top5"], got["num_images"]) == (pytest.approx(2 / 3), 1.0, 3)


def test_a_single_image_is_evaluated(pynative):
    data = ds.NumpySlicesDataset(
        {"image": np.array([_row(3)], np.float32), "label": np.array([3], np.int32)},
        shuffle=False,
    ).batch(4)

    got = score(Logits(), data, NUM_CLASSES)

    assert (got["num_images"], got["top1"]) == (1, 1.0)
    assert got["per_class_accuracy"] == [None, None, None, 1.0, None, None]


def test_an_empty_split_is_an_error(pynative):
    """Three images in batches of four with the remainder dropped: no batch at all."""
    logits = np.zeros((3, NUM_CLASSES), np.float32)
    data = ds.NumpySlicesDataset(
        {"image": logits, "label": np.zeros(3, np.int32)}, shuffle=False
    ).batch(4, drop_remainder=True)

    with pytest.raises(ValueError, match="^the evaluation split is empty$"):
        score(Logits(), data, NUM_CLASSES)


class DropoutLogits(nn.Cell):
    """The identity in inference mode; in training mode it zeroes half the logits."""

    def __init__(self):
        super().__init__()
        self.dropout = nn.Dropout(p=0.5)

    def construct(self, x):
        return self.dropout(x)


def test_a_network_fresh_from_training_is_evaluated_in_inference_mode(pynative):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, NUM_CLASSES, 40).astype(np.int32)
    logits = rng.normal(0, 2, (40, NUM_CLASSES)).astype(np.float32)
    data = ds.NumpySlicesDataset({"image": logits, "label": labels}, shuffle=False).batch(8)
    net = DropoutLogits()
    net.set_train(True)

    got = score(net, data, NUM_CLASSES)

    want = hand(logits, labels)
    assert got["loss"] == pytest.approx(want["loss"], rel=1e-6)
    assert got["confusion"].tolist() == want["confusion"]


def hand_mistakes(logits: np.ndarray, labels: np.ndarray, index: list[int], limit: int) -> list:
    """The wrongly classified rows as (index, true, predicted, p(predicted), p(true)), the
    highest p(predicted) first, ties to the lower index, at most `limit`."""
    rows = []
    for row, y, i in zip(logits.tolist(), labels.tolist(), index, strict=True):
        z = sum(math.exp(v) for v in row)
        pred = row.index(max(row))
        if pred != y:
            rows.append((i, y, pred, math.exp(row[pred]) / z, math.exp(row[y]) / z))
    return sorted(rows, key=lambda r: (-r[3], r[0]))[:limit]


@pytest.mark.parametrize("limit", [1, 4, 100])
def test_the_most_confident_mistakes_equal_a_hand_computation(pynative, limit: int):
    """23 images in batches of 5, the last partial; images 4 and 17 have the same logits and
    label, so the same probability: the lower position goes first. Positions in the split are
    given (every other record from 10 on, as a second worker's shard would be)."""
    rng = np.random.default_rng(2)
    labels = rng.integers(0, NUM_CLASSES, 23).astype(np.int32)
    logits = rng.normal(0, 2, (23, NUM_CLASSES)).astype(np.float32)
    logits[17], labels[17] = logits[4], labels[4]
    labels[4] = labels[17] = (int(logits[4].argmax()) + 1) % NUM_CLASSES  # both wrong
    data = ds.NumpySlicesDataset({"image": logits, "label": labels}, shuffle=False).batch(5)
    index = list(range(10, 56, 2))

    got = score(Logits(), data, NUM_CLASSES, mistakes=limit, indices=index)["mistakes"]

    want = hand_mistakes(logits, labels, index, limit)
    wrong = hand_mistakes(logits, labels, index, 100)
    neighbours = [(a[0], b[0]) for a, b in zip(wrong, wrong[1:], strict=False)]
    assert 8 < len(wrong) < 23 and (18, 44) in neighbours  # the tie is there, lower first
    assert [(m["index"], m["true"], m["predicted"]) for m in got] == [w[:3] for w in want]
    for m, w in zip(got, want, strict=True):
        assert m["probability"] == pytest.approx(w[3], rel=1e-6)
        assert m["true_probability"] == pytest.approx(w[4], rel=1e-6)


def test_equally_confident_mistakes_go_to_the_lower_index_whatever_their_classes():
    """Columns: index, true, predicted, probability, true probability."""
    candidates = np.array(
        [[7, 0, 2, 0.75, 0.1], [3, 4, 1, 0.75, 0.2], [9, 1, 0, 0.8, 0.1], [1, 2, 3, 0.5, 0.3]]
    )
    assert most_confident_mistakes(candidates, 3).tolist() == [
        [9, 1, 0, 0.8, 0.1], [3, 4, 1, 0.75, 0.2], [7, 0, 2, 0.75, 0.1]
    ]  # fmt: skip


def test_mistake_probabilities_are_rounded_to_float32_as_an_all_reduce_carries_them():
    """Logits (0, 1) with class 0 true: predicted 1 with probability e / (1 + e)."""
    tally = Tally(2, limit=1)
    tally.add(np.array([[0.0, 1.0]]), np.array([0]), np.array([5]))
    (mistake,) = tally.metrics()["mistakes"]
    p = math.e / (1 + math.e)
    assert mistake["probability"] == float(np.float32(p)) != p
    assert mistake["true_probability"] == float(np.float32(1 / (1 + math.e)))
    assert (mistake["index"], mistake["true"], mistake["predicted"]) == (5, 0, 1)


def test_mistakes_are_numbered_from_zero_without_indices_and_absent_unless_asked(pynative):
    logits = np.array([_row(1), _row(0), _row(2), _row(0)], dtype=np.float32)
    labels = np.array([0, 0, 1, 1], dtype=np.int32)
    data = ds.NumpySlicesDataset({"image": logits, "label": labels}, shuffle=False).batch(3)

    got = score(Logits(), data, NUM_CLASSES, mistakes=5)
    assert "mistakes" not in score(Logits(), data, NUM_CLASSES)

    # Images 0, 2 and 3 are wrong with the same probability (each row is _row's shape).
    p = 1 / sum(math.exp(-j) for j in range(NUM_CLASSES))
    assert [(m["index"], m["true"], m["predicted"]) for m in got["mistakes"]] == [
        (0, 0, 1), (2, 1, 2), (3, 1, 0)
    ]  # fmt: skip
    assert [m["probability"] for m in got["mistakes"]] == pytest.approx([p] * 3, rel=1e-6)
    assert [m["true_probability"] for m in got["mistakes"]] == pytest.approx(
        [p * math.exp(-1), p * math.exp(-2), p * math.exp(-1)], rel=1e-6
    )


class TwoWorkers(ProcessGroup):
    """Worker `rank` of two, in this one process: its sums add what the other worker sent
    (`theirs`, in call order) to its own values, as float32 as MindSpore's CPU all-reduce
    carries them, and record what it sent itself (`sent`) for the other."""

    def __init__(self, rank: int, theirs: list[np.ndarray] | None = None) -> None:
        self.rank, self.size = rank, 2
        self.theirs, self.sent = list(theirs or []), []

    def sum(self, values: np.ndarray) -> np.ndarray:
        mine = np.asarray(values, dtype=np.float32)
        self.sent.append(mine)
        return (mine + self.theirs.pop(0)).astype(np.float64) if self.theirs else mine


def test_two_workers_shards_add_up_to_the_whole_splits_metrics_and_mistakes(pynative):
    """Each worker scores every other image (`evaluation_indices`); the counts, the loss and
    the mistakes combined across the two equal one process's on the whole split."""
    rng = np.random.default_rng(3)
    labels = rng.integers(0, NUM_CLASSES, 23).astype(np.int32)
    logits = rng.normal(0, 2, (23, NUM_CLASSES)).astype(np.float32)

    def shard(rank: int, group: ProcessGroup) -> dict:
        index = list(evaluation_indices(23, 2, rank))
        data = ds.NumpySlicesDataset(
            {"image": logits[index], "label": labels[index]}, shuffle=False
        ).batch(5)
        return score(Logits(), data, NUM_CLASSES, group=group, mistakes=4, indices=index)

    second = TwoWorkers(1)
    alone = shard(1, second)
    got = shard(0, TwoWorkers(0, theirs=second.sent))

    whole = ds.NumpySlicesDataset({"image": logits, "label": labels}, shuffle=False).batch(5)
    want = score(Logits(), whole, NUM_CLASSES, mistakes=4)
    assert alone["num_images"] == 11 and got["num_images"] == 23
    assert got["confusion"].tolist() == want["confusion"].tolist()
    assert got["confusion"].dtype == np.int64  # counts, not float32 sums
    assert (got["top1"], got["top5"]) == (want["top1"], want["top5"])
    assert got["per_class_accuracy"] == want["per_class_accuracy"]
    assert got["loss"] == pytest.approx(want["loss"], rel=1e-6)  # a float32 sum
    assert [(m["index"], m["true"], m["predicted"]) for m in got["mistakes"]] == [
        (m["index"], m["true"], m["predicted"]) for m in want["mistakes"]
    ]
    assert [m["probability"] for m in got["mistakes"]] == pytest.approx(
        [m["probability"] for m in want["mistakes"]], rel=1e-6
    )
