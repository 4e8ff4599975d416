"""The process group a command runs in: a single process, or one of msrun's workers.

One value carries what the code needs of it: this worker's rank, the group's size, whether
it is the main worker (the one that writes files and prints progress), a sum across workers
and a barrier. A single process gets the same value with size 1, whose sum is the identity, so
no caller needs to know whether it runs alone.
"""

from __future__ import annotations

import mindspore as ms
import numpy as np
from mindspore import nn, ops


class _SumOverWorkers(nn.Cell):
    """A sum all-reduce (MindSpore's CPU backend has no max), compiled once per shape."""

    def __init__(self) -> None:
        super().__init__()
        self.reduce = ops.AllReduce(ops.ReduceOp.SUM)

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        return self.reduce(x)


class ProcessGroup:
    def __init__(self, rank: int = 0, size: int = 1) -> None:
        self.rank, self.size = rank, size
        self._sum = _SumOverWorkers() if size > 1 else None

    def __repr__(self) -> str:
        return f"ProcessGroup(rank={self.rank}, size={self.size})"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def sum(self, values: np.ndarray) -> np.ndarray:
        """Element-wise sum of every worker's `values` (the same shape on each).

        MindSpore's CPU collectives take float32 only, which holds integers exactly below
        2**24 (far above any count here: ImageNet's test split has 50,000 images); alone, the
        values come back as they are."""
        if self._sum is None:
            return np.asarray(values)
        flat = ms.Tensor(np.asarray(values, dtype=np.float32).ravel())
        return self._sum(flat).asnumpy().reshape(np.shape(values)).astype(np.float64)

    def any(self, flag: bool) -> bool:
        """Whether any worker's `flag` is set: every worker must ask at the same point."""
        return bool(self.sum(np.array([float(flag)]))[0] > 0)

    def barrier(self) -> None:
        """Wait until every worker gets here."""
        self.sum(np.zeros(1))


def join() -> ProcessGroup:
    """Join the msrun (or rank-table) process group with data parallelism, gradients
    averaged. msrun's scheduler process runs the command up to here too, so nothing with
    side effects may come before."""
    from mindspore.communication import get_group_size, get_rank, init

    init()
    size = get_group_size()
    ms.set_auto_parallel_context(
        parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True, device_num=size
    )
    return ProcessGroup(get_rank(), size)
