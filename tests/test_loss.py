"""Label-smoothed cross-entropy against a hand computation."""

import mindspore as ms
import numpy as np
import pytest

from vgg16.loss import CrossEntropySmooth

LOGITS = np.array([[2.0, 0.5, -1.0, 0.0], [0.1, 0.2, 3.0, -2.0]], dtype=np.float32)
LABELS = np.array([0, 2], dtype=np.int32)


def _hand(factor: float) -> float:
    total = 0.0
    for row, label in zip(LOGITS.astype(np.float64), LABELS, strict=True):
        log_probs = row - np.log(np.exp(row).sum())
        target = np.full(4, factor / 3)
        target[label] = 1 - factor
        total += -(target * log_probs).sum()
    return total / len(LABELS)


@pytest.mark.parametrize("factor", [0.0, 0.1, 0.5])
def test_matches_hand_computation(pynative, factor):
    loss = CrossEntropySmooth(num_classes=4, smooth_factor=factor)
    value = float(loss(ms.Tensor(LOGITS), ms.Tensor(LABELS)).asnumpy())
    assert value == pytest.approx(_hand(factor), rel=1e-5)


def test_zero_factor_is_plain_cross_entropy(pynative):
    value = float(CrossEntropySmooth(num_classes=4)(ms.Tensor(LOGITS), ms.Tensor(LABELS)).asnumpy())
    pairs = zip(LOGITS, LABELS, strict=True)
    plain = -np.mean([row[k] - np.log(np.exp(row).sum()) for row, k in pairs])
    assert value == pytest.approx(plain, rel=1e-5)


def test_rejects_factor_of_one():
    with pytest.raises(ValueError, match="label_smooth_factor"):
        CrossEntropySmooth(num_classes=4, smooth_factor=1.0)


def test_a_numpy_float64_factor_gives_float32_targets(pynative):
    """A factor from NumPy (a sweep's `np.linspace`, say) is float64; the one-hot targets are
    made float32 regardless, which MindSpore's OneHot requires."""
    loss = CrossEntropySmooth(num_classes=4, smooth_factor=np.float64(0.1))
    value = float(loss(ms.Tensor(LOGITS), ms.Tensor(LABELS)).asnumpy())
    assert value == pytest.approx(_hand(0.1), rel=1e-5)
