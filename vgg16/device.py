"""Device, precision and process-group set-up, shared by every command that runs the net."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mindspore as ms
from mindspore import dataset as ds
from mindspore import hal
from mindspore import log as ms_log

from vgg16 import group
from vgg16.config import DEVICE_TARGETS, Recipe
from vgg16.device_flags import add_arguments as add_arguments  # the flags, without MindSpore
from vgg16.group import ProcessGroup
from vgg16.launch import in_group

#: What `hal.is_available` logs for a backend whose plugin this install lacks.
_PROBE_NOISE = ("Backend Ascend is not available", "Backend GPU is not available", "Here's error")


class _DropProbeNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(_PROBE_NOISE)


@contextmanager
def _quiet_probe() -> Iterator[None]:
    """Asking MindSpore whether Ascend or GPU is present logs four warnings (with library
    errors) on every CPU-only machine, before anything useful. They are dropped, and only
    they, unless the user asked for MindSpore's logs by setting GLOG_v."""
    if "GLOG_v" in os.environ:
        yield
        return
    logger = ms_log._get_logger()  # MindSpore's own logger: it has no public accessor
    noise = _DropProbeNoise()
    logger.addFilter(noise)
    try:
        yield
    finally:
        logger.removeFilter(noise)


def best_device_target() -> str:
    """The seed defaults to Ascend; we default to whatever this machine actually has."""
    with _quiet_probe():
        for target in ("Ascend", "GPU"):
            try:
                if hal.is_available(target):
                    return target
            except RuntimeError:  # the backend's plugin is absent from this install
                continue
    return "CPU"


#: oneDNN ISA caps that keep AVX-512 off (`DNNL_MAX_CPU_ISA`), where MindSpore's convolutions
#: stay on oneDNN's im2col + GEMM path.
_WITHOUT_AVX512 = frozenset({"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2"})


def slow_convolutions() -> str | None:
    """Why this CPU would train many times slower than it should, or None.

    MindSpore describes every CPU convolution as plain NCHW, for which oneDNN's AVX-512 code
    is a reference loop (`jit_uni_ncsp:conv+ref`): 46x slower per VGG16-BN step than its AVX2
    GEMM path on a Zen 5 (52.9 s vs 1.15 s at 32 px, batch 64; `bench/train_throughput.py
    --compare-isa`). The package caps oneDNN at AVX2 (`vgg16/__init__.py`) unless the user
    chose another cap."""
    isa = os.environ.get("DNNL_MAX_CPU_ISA", "").upper()
    if isa in _WITHOUT_AVX512 or not _has_avx512():
        return None
    return (
        f"DNNL_MAX_CPU_ISA={isa or '(unset)'} lets oneDNN use AVX-512 on this CPU, where "
        "MindSpore's NCHW convolutions take its reference loop: expect training about 46x "
        "slower per step (52.9 s instead of 1.15 s for VGG16-BN at 32 px, batch 64, measured on "
        "a Zen 5). Unset the variable to keep the package's AVX2 cap."
    )


def _has_avx512() -> bool:
    cpuinfo = Path("/proc/cpuinfo")
    return cpuinfo.is_file() and "avx512f" in cpuinfo.read_text().split()


def set_up(device_target: str | None, device_id: int, seed: int) -> None:
    """Graph mode on the chosen device (`target()` then says which), with every random source
    seeded."""
    target = device_target or best_device_target()
    if target not in DEVICE_TARGETS:
        raise ValueError(f"--device_target={target!r}: expected one of {list(DEVICE_TARGETS)}")
    if target == "CPU" and (why := slow_convolutions()):
        print(f"warning: {why}", file=sys.stderr, flush=True)
    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_device(target, device_id)
    ms.set_seed(seed)
    ds.config.set_seed(seed)


def amp_level(recipe: Recipe, target: str) -> str:
    """The seed trains in O2 (fp16 with fp32 BatchNorm) on accelerators. On CPU fp16 is
    about 55% slower and bf16 is unsupported, so `auto` means fp32 there."""
    if recipe.amp_level != "auto":
        return recipe.amp_level
    return "O0" if target == "CPU" else "O2"


def start(args: argparse.Namespace, recipe: Recipe) -> ProcessGroup:
    """Device set-up, then the process group when this is one of several workers (launched
    by msrun, or by the seed's rank tables with `--is_distributed 1`), else a group of one.

    Nothing with side effects may come before: msrun's scheduler process runs the command up
    to `group.join()` too. The device target is then `target()`.
    """
    set_up(args.device_target, args.device_id, recipe.seed)
    return group.join() if args.is_distributed or in_group() else ProcessGroup()


def target() -> str:
    """The device this process runs on, as `set_up` chose it."""
    return ms.get_context("device_target")
