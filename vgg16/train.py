"""`vgg16 train`: the zoo's optimiser, loss and schedules in a plain loop over epochs.

Everything a run writes goes into its output folder: `ckpt/` (self-describing checkpoints;
`ckpt/recovery/` the rolling mid-epoch one), `history.csv` and the resolved `recipe.yaml`,
plus `msrun/` with several workers. The loop itself is short on purpose: one compiled train
step (MindSpore's own `build_train_network`, which applies the fixed loss scale), then
progress, history and checkpoints handled outside the step. Only rank 0 writes files or
prints progress. Every random choice (order, crops, flips, dropout) is a function of the
seed and the position (`randomness`), so a run stopped at any step (SIGTERM, SIGUSR1:
`preemption`) and resumed ends exactly as the uninterrupted run.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import mindspore as ms
import numpy as np
from mindspore import nn, ops
from mindspore.amp import FixedLossScaleManager, build_train_network

from vgg16 import checkpoint, device, randomness, schedule, stages
from vgg16.config import RESOLVED, Recipe, load_recipe, parse_overrides
from vgg16.data import DataSource, open_source
from vgg16.loss import CrossEntropySmooth
from vgg16.model import DROPOUT_P, DROPOUT_WIDTHS, build_net
from vgg16.pipeline import train_steps, training_epoch
from vgg16.preemption import STOPPED, Preempted, StopFlag
from vgg16.tables import HISTORY

NO_DECAY_SUFFIXES = (".bias", ".gamma", ".beta")


def main(args: argparse.Namespace) -> None:
    overrides = parse_overrides(args.overrides)
    if args.ckpt_interval is not None:  # the seed's flag
        overrides["ckpt_interval"] = args.ckpt_interval
    recipe = load_recipe(args.config, dataset=args.dataset, overrides=overrides)
    target, rank, size = device.start(args, recipe)
    stop = StopFlag(_any_worker() if size > 1 else None)
    stop.install()
    source = open_source(args.data_path, recipe.dataset)
    source.check(recipe)
    if rank == 0:
        recipe.dump(args.output / RESOLVED)
    train(
        recipe,
        source,
        stop=stop,
        output=args.output,
        target=target,
        amp_level=device.amp_level(recipe, target),
        class_names=source.class_names,
        pre_trained=args.pre_trained,
        reinit_head=args.reinit_head,
        rank=rank,
        group_size=size,
    )
    if rank == 0:
        print(f"checkpoints, history and recipe in {args.output}")


def _any_worker() -> Callable[[bool], bool]:
    """A flag combined across the process group: a sum all-reduce (MindSpore's CPU backend
    has no max), compiled once."""

    class AnyWorker(nn.Cell):
        def __init__(self) -> None:
            super().__init__()
            self.reduce = ops.AllReduce(ops.ReduceOp.SUM)

        def construct(self, x: ms.Tensor) -> ms.Tensor:
            return self.reduce(x)

    cell = AnyWorker()
    return lambda flag: bool(cell(ms.Tensor([float(flag)], ms.float32)).asnumpy()[0] > 0)


class _WithLoss(nn.Cell):
    """The loss of a batch, the dropout multipliers of its images passed in (`Vgg`)."""

    def __init__(self, net: nn.Cell, loss_fn: nn.Cell) -> None:
        super().__init__(auto_prefix=False)  # the zoo's parameter names, unprefixed
        self.net, self.loss_fn = net, loss_fn

    def construct(self, images: ms.Tensor, labels: ms.Tensor, *keep: ms.Tensor) -> ms.Tensor:
        return self.loss_fn(self.net(images, *keep), labels)


def training_hash(recipe: Recipe) -> str:
    """What a resumable checkpoint must match: the recipe and the code `vgg16 train` runs
    (the files Snakemake watches for this stage, so a code edit that reruns `train` retrains)."""
    digest = hashlib.sha256(f"{recipe.hash()} {stages.code_digest('train')}".encode())
    return digest.hexdigest()[:16]


def learning_rates(recipe: Recipe, steps_per_epoch: int) -> np.ndarray:
    common = {
        "warmup_epochs": recipe.warmup_epochs,
        "max_epoch": recipe.max_epoch,
        "steps_per_epoch": steps_per_epoch,
    }
    if recipe.lr_scheduler == "step":
        return schedule.step_lr(lr_init=recipe.lr_init, lr_max=recipe.lr_max, **common)
    if recipe.lr_scheduler == "cosine_annealing":
        return schedule.cosine_annealing_lr(
            lr=recipe.lr, t_max=recipe.T_max or None, eta_min=recipe.eta_min, **common
        )
    return schedule.exponential_lr(
        lr=recipe.lr, lr_epochs=recipe.lr_epochs, gamma=recipe.lr_gamma, **common
    )


def build_optimizer(net: nn.Cell, recipe: Recipe, lrs: np.ndarray) -> nn.Momentum:
    """Momentum with weight decay on everything but biases and BatchNorm gamma/beta. The
    optimiser divides by the same loss_scale the train step multiplies by."""
    params = net.trainable_params()
    decay = [p for p in params if not p.name.endswith(NO_DECAY_SUFFIXES)]
    no_decay = [p for p in params if p.name.endswith(NO_DECAY_SUFFIXES)]
    groups = [
        {"params": decay, "weight_decay": recipe.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
        {"order_params": params},
    ]
    return nn.Momentum(
        groups,
        learning_rate=ms.Tensor(lrs),
        momentum=recipe.momentum,
        loss_scale=recipe.loss_scale,
    )


def build_train_step(net: nn.Cell, recipe: Recipe, lrs: np.ndarray, amp_level: str) -> nn.Cell:
    """One compiled step: (images, labels, *dropout multipliers) -> loss, updating `net`.
    MindSpore's own `build_train_network` applies the fixed loss scale."""
    loss_fn = CrossEntropySmooth(num_classes=recipe.num_classes, smooth_factor=recipe.smooth_factor)
    step = build_train_network(
        _WithLoss(ms.amp.auto_mixed_precision(net, amp_level), loss_fn),
        build_optimizer(net, recipe, lrs),
        level="O0",  # the network is cast above, the loss stays fp32 (as the zoo's O2)
        loss_scale_manager=FixedLossScaleManager(recipe.loss_scale, drop_overflow_update=False),
    )
    step.set_train()
    return step


@dataclass
class Progress:
    """Progress lines with loss, lr, throughput and ETA; on long runs this is all a user sees."""

    total_steps: int
    batch_size: int
    interval: int
    enabled: bool
    started: float = 0.0
    done: int = 0

    def step(self, epoch: int, step: int, steps_per_epoch: int, loss: float, lr: float) -> None:
        if not self.started:
            self.started = time.perf_counter()  # after the first (compiling) step
            return
        self.done += 1
        if not self.enabled or (step % self.interval and step != steps_per_epoch):
            return
        per_step = (time.perf_counter() - self.started) / self.done
        left = per_step * (self.total_steps - self.done - 1)
        print(
            f"epoch {epoch} step {step}/{steps_per_epoch} loss {loss:.4f} lr {lr:.6f} "
            f"{self.batch_size / per_step:.1f} img/s eta {_duration(left)}",
            flush=True,
        )


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def resumable_checkpoints(ckpt_dir: Path, run_hash: str, *, set_aside: bool) -> list[dict]:
    """Metadata (and path) of the checkpoints this recipe and code can resume from: the epoch
    checkpoints and the recovery checkpoint.

    With `set_aside` (rank 0 only), checkpoints of another recipe or training code are moved to
    `previous-<hash>/` rather than deleted: nothing already computed is lost.
    """
    resumable = []
    recovery = checkpoint.recovery_path(ckpt_dir)
    for path in [*checkpoint.list_checkpoints(ckpt_dir), recovery]:
        try:
            _, meta = checkpoint.read(path, meta_only=True)
        except FileNotFoundError:  # no recovery checkpoint, or rank 0 moved it aside meanwhile
            continue
        if meta.get("training_hash") == run_hash:
            resumable.append({"path": path, **meta})
        elif set_aside:
            aside = ckpt_dir / f"previous-{meta.get('training_hash', 'unknown')}"
            aside.mkdir(exist_ok=True)
            shutil.move(str(path), aside / path.name)
            print(f"moved {path.name} (another recipe or training code) to {aside}", flush=True)
    return resumable


@dataclass
class Position:
    """Where training stands: steps done (over all epochs), the history of finished epochs
    and the losses of the current epoch's steps so far (its mean goes to the history)."""

    step: int = 0
    history: list[dict] = field(default_factory=list)
    epoch_losses: list[float] = field(default_factory=list)

    def epoch(self, steps_per_epoch: int) -> int:
        return self.step // steps_per_epoch + 1

    def meta(self, steps_per_epoch: int, **more: object) -> dict:
        """Checkpoint metadata; `epoch` is the one in progress, or the last one finished when
        the position is an epoch's end."""
        return {
            "epoch": self.step // steps_per_epoch + bool(self.epoch_losses),
            "step": self.step,
            "steps_per_epoch": steps_per_epoch,
            "history": self.history,
            "epoch_losses": self.epoch_losses,
            **more,
        }


def _resume(
    train_step: nn.Cell, resumable: list[dict], steps_per_epoch: int, main: bool
) -> Position:
    """Load the furthest checkpoint whose steps per epoch match (a recovery checkpoint of
    another global batch cannot say where in an epoch it is) and return its position."""
    usable = [
        m
        for m in resumable
        if m.get("steps_per_epoch", steps_per_epoch) == steps_per_epoch
        or m["step"] % m["steps_per_epoch"] == 0
    ]
    if not usable:
        return Position()
    latest = max(usable, key=lambda m: m["step"])
    params, _ = checkpoint.read(latest["path"])
    not_loaded, _ = ms.load_param_into_net(train_step, params, strict_load=True)
    if not_loaded:
        raise ValueError(f"cannot resume from {latest['path']}: {not_loaded} not in it")
    epoch = latest["epoch"]
    step = epoch * steps_per_epoch if not latest.get("epoch_losses") else latest["step"]
    position = Position(step, latest["history"], list(latest.get("epoch_losses", [])))
    if main:
        where = (
            f"step {step % steps_per_epoch} of epoch {epoch}"
            if position.epoch_losses
            else f"the end of epoch {epoch}"
        )
        print(f"resuming from {latest['path']} ({where})", flush=True)
    return position


def train(
    recipe: Recipe,
    source: DataSource,
    *,
    stop: StopFlag,
    output: Path,
    target: str,
    amp_level: str,
    class_names: list[str],
    pre_trained: Path | None = None,
    reinit_head: bool = False,
    rank: int = 0,
    group_size: int = 1,
) -> list[dict]:
    """Train to `recipe.max_epoch`, resuming from the furthest checkpoint of the same recipe
    and code in `output/ckpt`. Returns the per-epoch history; raises Preempted once a signal
    has stopped it (its position saved)."""
    main = rank == 0
    ckpt_dir = checkpoint.folder(output)
    steps_per_epoch = train_steps(source, recipe, group_size)
    if steps_per_epoch == 0:
        raise ValueError(
            f"the training split has fewer images than one global batch "
            f"({recipe.batch_size} x {group_size} worker(s))"
        )
    net = build_net(recipe)
    if pre_trained:
        params, _ = checkpoint.read(pre_trained)
        checkpoint.load_weights(net, params, source=pre_trained, reinit_head=reinit_head)
    lrs = learning_rates(recipe, steps_per_epoch)
    train_step = build_train_step(net, recipe, lrs, amp_level)

    run_hash = training_hash(recipe)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    resumable = resumable_checkpoints(ckpt_dir, run_hash, set_aside=main)
    at = _resume(train_step, resumable, steps_per_epoch, main)
    total = recipe.max_epoch * steps_per_epoch
    progress = Progress(
        total_steps=total - at.step,
        batch_size=recipe.batch_size * group_size,
        interval=recipe.log_interval,
        enabled=main,
    )
    if main:
        print(
            f"training {recipe.dataset} on {target} ({amp_level}): {group_size} worker(s), "
            f"{steps_per_epoch} steps/epoch x {recipe.max_epoch - at.epoch(steps_per_epoch) + 1}"
            f" epochs, global batch {recipe.batch_size * group_size}",
            flush=True,
        )

    def save(path: Path, **more: object) -> None:
        meta = at.meta(
            steps_per_epoch,
            training_hash=run_hash,
            recipe=recipe.to_dict(),
            class_names=class_names,
            **more,
        )
        checkpoint.save(train_step, path, meta)

    while at.step < total:
        epoch = at.epoch(steps_per_epoch)
        first = at.step % steps_per_epoch
        data = training_epoch(
            source, recipe, epoch=epoch, first_step=first, num_shards=group_size, shard_id=rank
        )
        started, done_before = time.perf_counter(), len(at.epoch_losses)
        for step, (images, labels, where) in enumerate(
            data.create_tuple_iterator(num_epochs=1), start=first + 1
        ):
            keep = (
                randomness.dropout_keep(
                    recipe.seed, epoch, where.asnumpy(), DROPOUT_WIDTHS, DROPOUT_P
                )
                if recipe.has_dropout
                else []
            )
            loss = float(train_step(images, labels, *map(ms.Tensor, keep)).asnumpy())
            at.step += 1
            if not math.isfinite(loss):
                raise FloatingPointError(
                    f"loss is {loss} at epoch {epoch} step {step} (global step {at.step}): "
                    "lower lr or loss_scale, or check the input data"
                )
            at.epoch_losses.append(loss)
            progress.step(epoch, step, steps_per_epoch, loss, float(lrs[at.step - 1]))
            stopping = stop.raised()
            if step == steps_per_epoch:
                break  # the epoch's end is saved below, as an epoch checkpoint
            if main and (stopping or _recovery_due(recipe, at.step)):
                save(checkpoint.recovery_path(ckpt_dir), kind="recovery")  # a rolling one
            if stopping:
                stop.barrier()  # every worker waits for rank 0's checkpoint
                raise Preempted(
                    f"{STOPPED} {stop.signal} at epoch {epoch} step {step}/{steps_per_epoch}: "
                    f"position saved in {checkpoint.recovery_path(ckpt_dir)}; run the same "
                    "command again to resume"
                )
        seconds = time.perf_counter() - started
        at.history.append(
            {
                "epoch": epoch,
                "step": at.step,
                "loss": round(float(np.mean(at.epoch_losses)), 6),
                "lr": float(lrs[at.step - 1]),
                "img_per_s": round(
                    (len(at.epoch_losses) - done_before) * progress.batch_size / seconds, 2
                ),
                "seconds": round(seconds, 2),
            }
        )
        at.epoch_losses = []
        recovery = checkpoint.recovery_path(ckpt_dir)
        if main:
            HISTORY.write(output, at.history)
            if epoch % recipe.ckpt_interval == 0 or epoch == recipe.max_epoch:
                save(ckpt_dir / checkpoint.checkpoint_name(epoch), kind="epoch")
                for old in checkpoint.list_checkpoints(ckpt_dir)[: -recipe.keep_checkpoint_max]:
                    old.unlink()
                recovery.unlink(missing_ok=True)  # the epoch checkpoint is further on
            elif stopping or _recovery_due(recipe, at.step):
                save(recovery, kind="recovery")
            print(
                f"epoch {epoch}/{recipe.max_epoch} done: loss {at.history[-1]['loss']:.4f} "
                f"{at.history[-1]['img_per_s']:.1f} img/s {seconds:.1f}s",
                flush=True,
            )
        if stopping and at.step < total:
            stop.barrier()
            raise Preempted(
                f"{STOPPED} {stop.signal} at the end of epoch {epoch}: run the same command "
                "again to resume"
            )
    if main:  # also when resuming a finished run, whose history.csv may have been removed
        HISTORY.write(output, at.history)
    return at.history


def _recovery_due(recipe: Recipe, step: int) -> bool:
    return recipe.recovery_steps > 0 and step % recipe.recovery_steps == 0
