"""Self-describing checkpoints, written atomically and loaded strictly.

`ms.save_checkpoint` deletes an existing target before it renames its own temporary file, so
a kill at the wrong moment loses the checkpoint. We save into a hidden `.tmp/` folder beside
the checkpoints and `os.replace` the finished file into place; listings only look at
`*.ckpt` files directly in the folder, so a leftover temporary file is never selected or
loaded. Each file carries its epoch, step, training hash (recipe and code), recipe, class
names and history, so nothing parses an epoch out of a file name.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import mindspore as ms
from mindspore import nn
from mindspore.train import serialization

from vgg16.config import Recipe
from vgg16.model import build_net

META_KEY = "vgg16_meta"
#: Where a training run keeps its checkpoints, inside its output folder.
FOLDER = "ckpt"
TMP_DIR = ".tmp"
#: The last classifier layer: re-initialised when fine-tuning to another num_classes.
HEAD = ("classifier.6.weight", "classifier.6.bias")
#: Optimiser state the zoo's ModelCheckpoint (and our train loop) saves beside the weights.
OPTIMIZER_NAMES = frozenset({"global_step", "learning_rate", "momentum"})
OPTIMIZER_PREFIXES = ("moments.",)


def available_memory() -> int | None:
    """Bytes the kernel can hand out now (MemAvailable), page cache it can reclaim included.

    MindSpore 2.10's `load_checkpoint` refuses a file larger than "available memory", which it
    takes from SC_AVPHYS_PAGES: free pages only. Once a dataset has been read, the page cache
    fills most of RAM and that figure drops to a few hundred MB with the memory still there
    for the asking (seen in this project's CI: a 269 MB checkpoint refused for "199 MB
    available" on a 24 GB machine). Where /proc/meminfo is missing, MindSpore's own figure.
    """
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return _free_pages_only()


_free_pages_only = serialization._get_available_memory
serialization._get_available_memory = available_memory


def folder(run_dir: Path) -> Path:
    return Path(run_dir) / FOLDER


def checkpoint_name(epoch: int) -> str:
    return f"vgg16-epoch{epoch:04d}.ckpt"


def recovery_path(ckpt_dir: Path) -> Path:
    """The rolling mid-epoch checkpoint: in a sub-folder, so that `list_checkpoints` (and so
    `select`) never sees it."""
    return Path(ckpt_dir) / "recovery" / "vgg16-recovery.ckpt"


def save(cell: nn.Cell | list[dict[str, Any]], path: Path, meta: dict[str, Any]) -> None:
    """Save every parameter of `cell` (weights and, for a train cell, optimiser state), or
    the given `{"name", "data"}` list."""
    tmp_dir = path.parent / TMP_DIR
    tmp_dir.mkdir(parents=True, exist_ok=True)
    tmp = tmp_dir / path.name
    ms.save_checkpoint(cell, str(tmp), append_dict={META_KEY: json.dumps(meta)})
    os.replace(tmp, path)
    with contextlib.suppress(OSError):  # left when another save is under way
        tmp_dir.rmdir()


def publish(src: Path, dst: Path) -> None:
    """Write the weights and metadata of checkpoint `src` to `dst`, atomically, without the
    optimiser state a resumable checkpoint needs (momentum doubles a VGG16 checkpoint): what
    `select` ships as best.ckpt."""
    params, meta = read(src)
    save(
        [{"name": k, "data": v} for k, v in params.items() if not is_optimizer_state(k)], dst, meta
    )


def list_checkpoints(folder: Path) -> list[Path]:
    """Finished checkpoints in `folder`, oldest epoch first (names are zero-padded)."""
    return sorted(p for p in Path(folder).glob("*.ckpt") if p.is_file())


def read(path: Path, *, meta_only: bool = False) -> tuple[dict[str, ms.Parameter], dict[str, Any]]:
    """(parameters, metadata); metadata is empty for a checkpoint not written by us (the zoo's).

    `meta_only` skips the tensors (a VGG16 checkpoint is 0.3-1.1 GB) when only the metadata
    is wanted, as when deciding which checkpoint to resume from.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    choose = (lambda name: name == META_KEY) if meta_only else None
    try:
        params = ms.load_checkpoint(str(path), choice_func=choose)
    except (ValueError, RuntimeError) as err:
        raise ValueError(f"checkpoint {path} cannot be read: {err}") from err
    meta = params.pop(META_KEY, None)
    return params, json.loads(meta) if meta else {}


def is_optimizer_state(name: str) -> bool:
    return name in OPTIMIZER_NAMES or name.startswith(OPTIMIZER_PREFIXES)


def load_weights(
    net: nn.Cell, params: dict[str, ms.Parameter], *, source: Path, reinit_head: bool = False
) -> None:
    """Load network weights with strict name and shape matching.

    Optimiser state in the file is ignored. With `reinit_head`, the last classifier layer
    keeps its fresh initialisation when its shape differs (fine-tuning to a new num_classes).
    """
    weights = {k: v for k, v in params.items() if not is_optimizer_state(k)}
    expected = {p.name: p for p in net.get_parameters()}
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    mismatched = [
        f"{k}: checkpoint {tuple(weights[k].shape)} vs network {tuple(expected[k].shape)}"
        for k in sorted(set(weights) & set(expected))
        if tuple(weights[k].shape) != tuple(expected[k].shape)
    ]
    if reinit_head:
        mismatched = [m for m in mismatched if not m.startswith(HEAD)]
        for name in HEAD:
            if name in weights and tuple(weights[name].shape) != tuple(expected[name].shape):
                del weights[name]
    problems = []
    if missing:
        problems.append(f"missing {missing}")
    if unexpected:
        problems.append(f"unexpected {unexpected}")
    if mismatched:
        hint = " (use --reinit_head to fine-tune to another num_classes)" if not reinit_head else ""
        problems.append(f"shape mismatch {mismatched}{hint}")
    if problems:
        raise ValueError(f"checkpoint {source} does not match the network: " + "; ".join(problems))
    not_loaded, _ = ms.load_param_into_net(net, weights, strict_load=True)
    not_loaded = [n for n in not_loaded if n not in HEAD or not reinit_head]
    if not_loaded:
        raise ValueError(f"checkpoint {source}: parameters not loaded: {not_loaded}")


def load_net(recipe: Recipe, path: Path) -> tuple[nn.Cell, dict[str, Any]]:
    """The recipe's network with the checkpoint's weights, strictly loaded, and its metadata."""
    net = build_net(recipe)
    params, meta = read(path)
    load_weights(net, params, source=path)
    return net, meta
