"""Self-describing checkpoints, written atomically and loaded strictly, and the keeper of a
training run's checkpoint folder.

`ms.save_checkpoint` deletes an existing target before it renames its own temporary file, so
a kill at the wrong moment loses the checkpoint. We save into a hidden `.tmp/` folder beside
the checkpoints and `atomic.commit` the finished file into place (`fsync`ed, so a node crash
cannot leave the name without the data); listings only look at `*.ckpt` files directly in the
folder, so a leftover temporary file is never selected or loaded. Each file carries its epoch,
step, training hash (recipe and code), recipe, class names and history, so nothing parses an
epoch out of a file name.

Each file also ends in MindSpore's CRC32 of everything before it (`crc_check=True`), checked on
every read: a checkpoint cut short or overwritten is `Damaged`, never half-loaded. A run's own
checkpoints must carry the CRC; one from elsewhere (the zoo's) is read if it has none.

`CheckpointKeeper` owns every decision about a run's folder (timm's `CheckpointSaver` is the
model): when to write an epoch checkpoint and which to keep, when to write the rolling recovery
checkpoint, which checkpoints another recipe or code left (set aside, never deleted), and
which one a resume takes, moving damaged ones to `damaged/`. The training loop only tells it
where training stands.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import mindspore as ms
from mindspore import nn
from mindspore.train import serialization

from vgg16.atomic import commit, crc32
from vgg16.config import Recipe, fit
from vgg16.model import build_net

META_KEY = "vgg16_meta"
TMP_DIR = ".tmp"
#: Where damaged checkpoints are moved, inside the checkpoint folder: set aside, not deleted.
DAMAGED_DIR = "damaged"
#: MindSpore's CRC trailer: this marker and the CRC32 as 10 big-endian bytes.
CRC_MARKER = b"crc_num"
CRC_TRAILER = len(CRC_MARKER) + 10
#: The metadata key that says a checkpoint was written with a CRC (read removes it).
CRC_MARK = "crc32"
#: The last classifier layer: re-initialised when fine-tuning to another num_classes.
HEAD = ("classifier.6.weight", "classifier.6.bias")
#: Optimiser state and training bookkeeping that the zoo's ModelCheckpoint (and our train
#: loop) saves beside the weights: MindSpore's `append_info` adds the epoch and step numbers,
#: and a dynamic loss scale's step (`loss_scale_type: dynamic`) its scale and counters.
OPTIMIZER_NAMES = frozenset(
    {"global_step", "learning_rate", "momentum", "epoch_num", "step_num"}
    | {"scale_sense", "current_iterator_step", "last_overflow_iterator_step"}
)
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


def checkpoint_name(epoch: int) -> str:
    return f"vgg16-epoch{epoch:04d}.ckpt"


def recovery_path(ckpt_dir: Path) -> Path:
    """The rolling mid-epoch checkpoint: in a sub-folder, so that `list_checkpoints` (and so
    `select`) never sees it."""
    return Path(ckpt_dir) / "recovery" / "vgg16-recovery.ckpt"


class Damaged(ValueError):
    """A checkpoint whose bytes are not those written: cut short, overwritten or unreadable."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"checkpoint {path} is damaged: {reason}")
        self.path, self.reason = Path(path), reason


def save(cell: nn.Cell | list[dict[str, Any]], path: Path, meta: dict[str, Any]) -> None:
    """Save every parameter of `cell` (weights and, for a train cell, optimiser state), or
    the given `{"name", "data"}` list, with its CRC. A failed save (a full disk) leaves
    `path` as it was and no temporary file behind."""
    tmp_dir = path.parent / TMP_DIR
    tmp_dir.mkdir(parents=True, exist_ok=True)
    tmp = tmp_dir / path.name
    try:
        meta = {**meta, CRC_MARK: True}  # so that one that lost its CRC is known as ours
        ms.save_checkpoint(cell, str(tmp), append_dict={META_KEY: json.dumps(meta)}, crc_check=True)
        commit(tmp, path)
    finally:
        for left in (tmp, tmp.with_suffix(".tmp")):  # MindSpore's own temporary name
            left.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # left when another save is under way
            tmp_dir.rmdir()


def set_aside(path: Path, folder: Path, why: str) -> Path:
    """Move checkpoint `path` into `folder` under a name not taken there (nothing is
    overwritten, nothing deleted), saying so in one line; return where it went."""
    folder.mkdir(parents=True, exist_ok=True)
    target, n = folder / path.name, 1
    while target.exists():
        target, n = folder / f"{path.name}.{n}", n + 1
    shutil.move(str(path), target)
    print(f"moved {path.name} ({why}) to {target}", flush=True)
    return target


class CheckpointKeeper:
    """The checkpoints of one training run, identified by `run_hash` (recipe and code).

    - An epoch checkpoint every `interval` epochs and at `last_epoch`; only the newest `keep`
      of them stay.
    - A rolling recovery checkpoint mid-epoch every `recovery_steps` steps (0: never), and
      wherever training is stopped; an epoch checkpoint further on replaces it.
    - Checkpoints of another hash are moved to `previous-<hash>/`: nothing computed is lost.
    - A resume takes the furthest checkpoint of this hash whose position it can take.

    Only a keeper that `writes` (the main worker's) touches the folder; the others read it,
    so that every worker resumes from the same checkpoint.
    """

    def __init__(
        self,
        folder: Path,
        run_hash: str,
        *,
        last_epoch: int,
        keep: int,
        interval: int,
        recovery_steps: int,
        describe: dict[str, Any],
        writes: bool,
    ) -> None:
        self.folder, self.run_hash, self.writes = Path(folder), run_hash, writes
        self.last_epoch, self.keep, self.interval = last_epoch, keep, interval
        self.recovery_steps = recovery_steps
        self.describe = describe  # metadata every checkpoint of the run carries
        self.recovery = recovery_path(self.folder)

    def epoch_path(self, epoch: int) -> Path:
        return self.folder / checkpoint_name(epoch)

    def resume_point(self, steps_per_epoch: int) -> dict[str, Any] | None:
        """The metadata (with its "path") of the checkpoint a resume takes, or None.

        That is the furthest of this run's hash whose position a run of `steps_per_epoch`
        can take: an epoch checkpoint always, a recovery checkpoint only if made with as many
        steps per epoch (with another global batch it cannot say where in an epoch it is).
        """
        usable = [
            meta
            for meta in self._resumable()
            if meta["steps_per_epoch"] == steps_per_epoch
            or meta["step"] % meta["steps_per_epoch"] == 0
        ]
        return max(usable, key=lambda meta: meta["step"], default=None)

    def _resumable(self) -> list[dict[str, Any]]:
        """Metadata (and path) of this hash's whole checkpoints; the writer sets the others
        aside: damaged ones, and those of another hash."""
        found = []
        for path in [*list_checkpoints(self.folder), self.recovery]:
            try:
                _, meta = read(path, meta_only=True, ours=True)
            except FileNotFoundError:  # no recovery checkpoint, or the writer set it aside
                continue
            except Damaged as damage:
                if self.writes:
                    set_aside(path, self.folder / DAMAGED_DIR, f"damaged: {damage.reason}")
                continue
            if meta.get("training_hash") == self.run_hash:
                found.append({"path": path, **meta})
            elif self.writes:
                aside = self.folder / f"previous-{meta.get('training_hash', 'unknown')}"
                set_aside(path, aside, "another recipe or training code")
        return found

    def after_step(self, cell: nn.Cell, meta: dict[str, Any], *, stopping: bool) -> None:
        """Mid-epoch, at `meta["step"]`: the recovery checkpoint when stopping or due."""
        if stopping or self.recovery_due(meta["step"]):
            self._save(cell, self.recovery, meta, "recovery")

    def after_epoch(
        self, cell: nn.Cell, epoch: int, meta: dict[str, Any], *, stopping: bool
    ) -> None:
        """At the end of `epoch`: its checkpoint when due (the oldest beyond `keep` deleted,
        the recovery checkpoint with it), else the recovery checkpoint when stopping or due."""
        if epoch % self.interval == 0 or epoch == self.last_epoch:
            self._save(cell, self.epoch_path(epoch), meta, "epoch")
            if self.writes:
                for old in list_checkpoints(self.folder)[: -self.keep]:
                    old.unlink()
                self.recovery.unlink(missing_ok=True)  # the epoch checkpoint is further on
        elif stopping or self.recovery_due(meta["step"]):
            self._save(cell, self.recovery, meta, "recovery")

    def recovery_due(self, step: int) -> bool:
        """Whether a recovery checkpoint is due after global step `step`."""
        return self.recovery_steps > 0 and step % self.recovery_steps == 0

    def _save(self, cell: nn.Cell, path: Path, meta: dict[str, Any], kind: str) -> None:
        if self.writes:
            save(
                cell, path, {**meta, "training_hash": self.run_hash, **self.describe, "kind": kind}
            )


def publish(src: Path, dst: Path) -> None:
    """Write the weights and metadata of checkpoint `src` to `dst`, atomically, without the
    optimiser state a resumable checkpoint needs (momentum doubles a VGG16 checkpoint): what
    `select` ships as the best checkpoint."""
    params, meta = read(src)
    save(
        [{"name": k, "data": v} for k, v in params.items() if not is_optimizer_state(k)], dst, meta
    )


def list_checkpoints(folder: Path) -> list[Path]:
    """Finished checkpoints in `folder`, oldest epoch first (names are zero-padded)."""
    return sorted(p for p in Path(folder).glob("*.ckpt") if p.is_file())


def read(
    path: Path, *, meta_only: bool = False, ours: bool = False
) -> tuple[dict[str, ms.Parameter], dict[str, Any]]:
    """(parameters, metadata), the CRC checked; metadata is empty for a checkpoint not written
    by us (the zoo's). Raises `Damaged` for a file that is not whole.

    `meta_only` skips the tensors (a VGG16 checkpoint is 0.3-1.1 GB) when only the metadata
    is wanted, as when deciding which checkpoint to resume from. `ours`: the file must carry
    a CRC, as every checkpoint `train` writes does (one cut short has lost it).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    choose = (lambda name: name == META_KEY) if meta_only else None
    has_crc = _check_crc(path)
    if ours and not has_crc:
        raise Damaged(path, CUT_SHORT)
    try:
        params = ms.load_checkpoint(str(path), choice_func=choose)
    except (ValueError, RuntimeError) as err:
        raise Damaged(
            path, str(err) if has_crc else f"it cannot be parsed, and {CUT_SHORT}"
        ) from err
    meta = params.pop(META_KEY, None)
    meta = json.loads(meta) if meta else {}
    if meta.pop(CRC_MARK, None) and not has_crc:
        raise Damaged(path, CUT_SHORT)
    return params, meta


CUT_SHORT = "it ends without a CRC32 (cut short?)"


def _check_crc(path: Path) -> bool:
    """Whether `path` ends in a CRC (raising `Damaged` if it does not match the bytes before
    it). Checked here rather than by MindSpore's `crc_check`, whose mismatch error is reworded
    into one about read permissions."""
    with path.open("rb") as file:
        size = file.seek(0, os.SEEK_END)
        if size < CRC_TRAILER:
            return False
        file.seek(size - CRC_TRAILER)
        trailer = file.read(CRC_TRAILER)
        if not trailer.startswith(CRC_MARKER):
            return False
    if crc32(path, size - CRC_TRAILER) != int.from_bytes(trailer[len(CRC_MARKER) :], "big"):
        raise Damaged(path, "its CRC32 does not match its contents (overwritten?)")
    return True


def fingerprint(path: Path) -> str:
    """SHA-256 of a checkpoint file: what training started from, whatever its name."""
    with Path(path).open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def is_optimizer_state(name: str) -> bool:
    return name in OPTIMIZER_NAMES or name.startswith(OPTIMIZER_PREFIXES)


def load_weights(
    net: nn.Cell, params: dict[str, ms.Parameter], *, source: Path, new_head: bool = False
) -> list[str]:
    """Load network weights with strict name and shape matching; optimiser state in the file
    is ignored. A checkpoint that does not fit is refused naming its first difference.

    With `new_head` (fine-tuning), a last classifier layer of another shape (another
    num_classes) keeps its fresh initialisation; its names are returned.
    """
    weights = {k: v for k, v in params.items() if not is_optimizer_state(k)}
    expected = {p.name: p for p in net.get_parameters()}
    fresh = [name for name in HEAD if new_head and _shape(weights, name) != _shape(expected, name)]
    weights = {k: v for k, v in weights.items() if k not in fresh}
    difference = _first_difference({k: v for k, v in expected.items() if k not in fresh}, weights)
    if difference:
        raise ValueError(f"checkpoint {source} does not fit the network: {difference}")
    not_loaded, _ = ms.load_param_into_net(net, weights, strict_load=True)
    not_loaded = [name for name in not_loaded if name not in fresh]
    if not_loaded:
        raise ValueError(f"checkpoint {source}: parameters not loaded: {not_loaded}")
    return fresh


def _shape(params: dict[str, Any], name: str) -> tuple[int, ...] | None:
    return tuple(params[name].shape) if name in params else None


def _hint(name: str) -> str | None:
    """The recipe key a parameter that does not fit points to."""
    if name.endswith((".gamma", ".beta", ".moving_mean", ".moving_variance")):
        return "BatchNorm: recipe key batch_norm"
    if name == "classifier.0.weight":
        return "the classifier's input follows recipe key image_size"
    if name in HEAD:
        return "the last layer's size is recipe key num_classes"
    if name.startswith("layers.") and name.endswith(".bias"):
        return "the convolutions' biases: recipe key has_bias"
    return None


def _first_difference(expected: dict[str, Any], weights: dict[str, Any]) -> str | None:
    """The network's first parameter (in its order) that the checkpoint lacks or holds in
    another shape, else the checkpoint's first one the network lacks, with how many more
    differ and which recipe key it points to; None when they fit."""
    differ = [n for n in expected if _shape(weights, n) != _shape(expected, n)]
    differ += [n for n in weights if n not in expected]
    if not differ:
        return None
    name = differ[0]
    mine, theirs = _shape(expected, name), _shape(weights, name)
    what = (
        f"the network has {name} {mine}, the checkpoint has none"
        if theirs is None
        else f"the checkpoint has {name} {theirs}, the network has "
        + (f"{mine}" if mine is not None else "none")
    )
    hint = _hint(name)
    more = f"; {len(differ) - 1} more parameter(s) differ" if len(differ) > 1 else ""
    return what + (f" ({hint})" if hint else "") + more


def class_names(meta: dict[str, Any], recipe: Recipe) -> list[str]:
    """The class names a checkpoint carries; one from elsewhere (the zoo's) carries none, and
    its classes are named by their indices."""
    return meta.get("class_names") or [str(i) for i in range(recipe.num_classes)]


def load_net(recipe: Recipe, path: Path) -> tuple[nn.Cell, dict[str, Any], Recipe]:
    """The recipe's network with the checkpoint's weights, strictly loaded, its metadata, and
    the recipe with its number of classes (the checkpoint's, if the recipe leaves it open)."""
    params, meta = read(path)
    if recipe.num_classes is None:
        if HEAD[1] not in params:
            raise ValueError(f"checkpoint {path} has no {HEAD[1]}: set num_classes")
        recipe = fit(recipe, params[HEAD[1]].shape[0], str(path))
    net = build_net(recipe)
    load_weights(net, params, source=path)
    return net, meta, recipe
