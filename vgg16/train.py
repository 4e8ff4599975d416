"""`vgg16 train`: the zoo's optimiser, loss and schedules in a plain loop over epochs.

Everything a run writes goes into its output folder (`layout.TrainFolder`): checkpoints, the
history and the resolved recipe, plus msrun's logs with several workers. The loop is
short on purpose: one compiled train step (MindSpore's own `build_train_network` with the
seed's fixed loss scale, or its loss-scaled step with a dynamic one), and `train_one_epoch`
over the epoch's batches; which checkpoints to write, keep, set aside and resume from is the
`checkpoint.CheckpointKeeper`'s, and what people see (progress, history) is the `Report`'s.
Only the main worker writes: that is decided once, in `train`. Every random choice (order,
crops, flips, dropout) is a function of the seed and the position (`randomness`), so a run
stopped at any step (SIGTERM, SIGUSR1: `preemption`) and resumed ends exactly as the
uninterrupted run.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import mindspore as ms
import numpy as np
from mindspore import nn, ops
from mindspore.amp import (
    DynamicLossScaleManager,
    FixedLossScaleManager,
    all_finite,
    build_train_network,
)

from vgg16 import checkpoint, config, device, launch, schedule, stages
from vgg16.checkpoint import CheckpointKeeper
from vgg16.config import Recipe, load_recipe, parse_overrides
from vgg16.data import DataSource, open_source
from vgg16.group import ProcessGroup
from vgg16.input_pipeline import train_steps, training_epoch
from vgg16.layout import TrainFolder
from vgg16.loss import CrossEntropySmooth
from vgg16.model import build_net
from vgg16.preemption import StopFlag
from vgg16.preprocessing import Preprocessing
from vgg16.tables import HISTORY

NO_DECAY_SUFFIXES = (".bias", ".gamma", ".beta")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    config.add_arguments(parser)
    device.add_arguments(parser)
    parser.add_argument(
        "--data_path",
        type=Path,
        required=True,
        help="prepared MindRecord folder or the seed's raw layout",
    )
    parser.add_argument(
        "--output",
        "--ckpt_path",
        type=Path,
        default=Path("output"),
        help=f"the run's folder: {TrainFolder('.').names()} (--ckpt_path: the seed's name)",
    )
    parser.add_argument(
        "--pre_trained",
        type=Path,
        help="checkpoint to start from (seed flag); a last layer of another num_classes starts "
        "afresh",
    )
    parser.add_argument(
        "--reinit_head",
        action="store_true",
        help="kept for older command lines: what it asked for is what --pre_trained does",
    )
    parser.add_argument("--ckpt_interval", type=int, help="epochs between checkpoints (seed flag)")
    parser.add_argument(
        "--input_only",
        action="store_true",
        help="read the recipe's epochs through the training input pipeline (order, crops, "
        "flips, dropout masks) without the network, and print how many images per second it "
        "delivers: whether data loading can keep up with the accelerators; writes nothing",
    )
    launch.add_arguments(parser)


def main(args: argparse.Namespace) -> None:
    overrides = parse_overrides(args.overrides)
    if args.ckpt_interval is not None:  # the seed's flag
        overrides["ckpt_interval"] = args.ckpt_interval
    recipe = load_recipe(args.config, dataset=args.dataset, overrides=overrides)
    group = device.start(args, recipe)
    stop = StopFlag(group)
    stop.install()
    source = open_source(args.data_path, recipe.dataset, share=(group.rank, group.size))
    recipe = source.fit(recipe)
    if args.input_only:
        read_input(recipe, source, group)
        return
    if recipe.freeze != "none" and not args.pre_trained:
        raise ValueError(
            f"recipe key 'freeze'={recipe.freeze!r} keeps the features of a pre-trained "
            "checkpoint: give one (--pre_trained, or the run's pre_trained)"
        )
    net = build_net(recipe)
    folder = TrainFolder(args.output)
    train(recipe, source, net, folder, group=group, stop=stop, pre_trained=args.pre_trained)


def read_input(recipe: Recipe, source: DataSource, group: ProcessGroup) -> None:
    """Read every epoch of the recipe as training would, each batch made into tensors, and
    nothing else; print a line per epoch (its own rate: the first includes reading a
    raw-pixel split into memory, once per process) and last `N img/s` over all epochs (all
    workers together)."""
    steps = _steps_per_epoch(source, recipe, group)
    started = time.perf_counter()
    for epoch in range(1, recipe.max_epoch + 1):
        begun = time.perf_counter()
        batches = training_epoch(
            source, recipe, epoch=epoch, num_shards=group.size, shard_id=group.rank
        )
        for _ in batches.create_tuple_iterator(num_epochs=1):
            pass
        if group.is_main:
            rate = steps * recipe.batch_size / (time.perf_counter() - begun)
            print(f"epoch {epoch}/{recipe.max_epoch}: {steps} batches, {rate:.0f} img/s "
                  "(this epoch, this worker)", flush=True)  # fmt: skip
    images = steps * recipe.batch_size * recipe.max_epoch
    rate = float(group.sum(np.array([images / (time.perf_counter() - started)]))[0])
    if group.is_main:
        print(f"{rate:.0f} img/s", flush=True)


class Normalization(nn.Cell):
    """uint8 NCHW images to what the network takes, by the recipe's statistics, as
    `transforms.normalize` does on the host for evaluation. Training does it on the device,
    in the step: the host's input pipeline is spared that work, and sends a quarter of
    float32's bytes."""

    def __init__(self, recipe: Recipe) -> None:
        super().__init__()
        spec, channels = Preprocessing.of(recipe), (1, 3, 1, 1)
        self.mean = ms.Tensor(np.reshape(spec.mean, channels), ms.float32)
        self.std = ms.Tensor(np.reshape(spec.std, channels), ms.float32)

    def construct(self, images: ms.Tensor) -> ms.Tensor:
        return (ops.cast(images, ms.float32) - self.mean) / self.std


class _WithLoss(nn.Cell):
    """The loss of a batch of uint8 images (normalised here), the dropout flags of its images
    passed in (`Vgg`)."""

    def __init__(self, net: nn.Cell, loss_fn: nn.Cell, recipe: Recipe) -> None:
        super().__init__(auto_prefix=False)  # the zoo's parameter names, unprefixed
        self.net, self.loss_fn, self.normalize = net, loss_fn, Normalization(recipe)

    def construct(self, images: ms.Tensor, labels: ms.Tensor, *keep: ms.Tensor) -> ms.Tensor:
        return self.loss_fn(self.net(self.normalize(images), *keep), labels)


def training_hash(recipe: Recipe, pre_trained: str | None = None) -> str:
    """What a resumable checkpoint must match: the recipe, the code `vgg16 train` runs (the
    files Snakemake watches for this stage, so a code edit that reruns `train` retrains) and
    the pre-trained checkpoint's digest (so a replaced one retrains too)."""
    start = f" {pre_trained}" if pre_trained else ""
    digest = hashlib.sha256(f"{recipe.hash()} {stages.code_digest('train')}{start}".encode())
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
    """Momentum with weight decay on everything but biases and BatchNorm gamma/beta. With a
    fixed loss scale the optimiser divides the gradients by it, as the seed's does; the
    dynamic scale's step (`_DynamicLossScaleStep`) divides them itself."""
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
        loss_scale=recipe.loss_scale if recipe.loss_scale_type == "fixed" else 1.0,
    )


class _DynamicLossScaleStep(nn.TrainOneStepWithLossScaleCell):
    """MindSpore's loss-scaled step with a `DynamicLossScaleUpdateCell`: a step whose gradients
    are not all finite is skipped (optimiser state and schedule position included) and the
    scale halved; a window of steps without one doubles it. Unlike MindSpore's, it returns the
    loss alone, as the fixed-scale step does. MindSpore's own overflow check has no CPU kernel
    (NPUGetFloatStatusV2; FloatStatus is the GPU's), which is why `build_train_network` refuses
    a dynamic scale on CPU; there the check is `mindspore.amp.all_finite`, after the gradient
    reduction, so every worker of a group makes the same choice."""

    def __init__(self, network: nn.Cell, optimizer: nn.Optimizer, scale: nn.Cell) -> None:
        super().__init__(network, optimizer, scale_sense=scale)
        self.on_cpu = device.target() == "CPU"

    def get_overflow_status(self, status: ms.Tensor, compute_output: tuple) -> ms.Tensor:
        if self.on_cpu:
            return ops.logical_not(all_finite(compute_output))
        return super().get_overflow_status(status, compute_output)

    def construct(self, *inputs: ms.Tensor) -> ms.Tensor:
        loss, _, _ = super().construct(*inputs)
        return loss


def build_train_step(net: nn.Cell, recipe: Recipe, lrs: np.ndarray, amp_level: str) -> nn.Cell:
    """One compiled step: (uint8 NCHW images, int32 labels, *dropout flags) -> loss,
    updating `net`.

    The backward pass starts from the loss times the loss scale, and the gradients are divided
    by it before the update. `loss_scale_type: fixed` (the seed's): MindSpore's own
    `build_train_network`, which applies every step, even one whose fp16 gradients overflowed.
    `dynamic`: `loss_scale` is the first scale of `_DynamicLossScaleStep`, which skips such a
    step and halves the scale (MindSpore's defaults: doubled after 2000 steps without one)."""
    loss_fn = CrossEntropySmooth(num_classes=recipe.num_classes, smooth_factor=recipe.smooth_factor)
    # The network is cast here and the loss stays fp32 (as the zoo's O2), hence level O0 below.
    network = _WithLoss(ms.amp.auto_mixed_precision(net, amp_level), loss_fn, recipe)
    optimizer = build_optimizer(net, recipe, lrs)
    if recipe.loss_scale_type == "dynamic":
        scale = DynamicLossScaleManager(recipe.loss_scale).get_update_cell()
        step = _DynamicLossScaleStep(network, optimizer, scale)
    else:
        step = build_train_network(
            network,
            optimizer,
            level="O0",
            loss_scale_manager=FixedLossScaleManager(recipe.loss_scale, drop_overflow_update=False),
        )
    step.set_train()
    return step


@dataclass
class Position:
    """Where training stands: steps done (over all epochs), the history of finished epochs
    and the losses of the current epoch's steps so far (its mean goes to the history).

    The losses of the latest steps stay on the device (`pending`) until `sync` reads them
    back in one go: reading a loss every step would stall an accelerator's queue."""

    step: int = 0
    history: list[dict] = field(default_factory=list)
    epoch_losses: list[float] = field(default_factory=list)
    pending: list[ms.Tensor] = field(default_factory=list)

    def epoch(self, steps_per_epoch: int) -> int:
        return self.step // steps_per_epoch + 1

    def meta(self, steps_per_epoch: int) -> dict:
        """Checkpoint metadata (after `sync`); `epoch` is the one in progress, or the last one
        finished when the position is an epoch's end."""
        return {
            "epoch": self.step // steps_per_epoch + bool(self.epoch_losses),
            "step": self.step,
            "steps_per_epoch": steps_per_epoch,
            "history": self.history,
            "epoch_losses": self.epoch_losses,
        }

    def add_step(self, loss: ms.Tensor) -> None:
        self.step += 1
        self.pending.append(loss)

    def sync(self, epoch: int, steps_per_epoch: int) -> float:
        """Read the pending steps' losses back (one host read); return the latest. Raises
        FloatingPointError at the first that is not finite."""
        if not self.pending:
            return self.epoch_losses[-1]
        values = ops.stack(self.pending).asnumpy().astype(float).tolist()
        first = self.step - len(values) + 1
        self.pending = []
        for step, loss in enumerate(values, start=first):
            if not math.isfinite(loss):
                raise FloatingPointError(
                    f"loss is {loss} at epoch {epoch} step "
                    f"{step - (epoch - 1) * steps_per_epoch} (global step {step}): lower lr or "
                    "loss_scale, or check the input data"
                )
        self.epoch_losses.extend(values)
        return values[-1]

    def end_epoch(self, epoch: int, lr: float, images: int, seconds: float) -> None:
        """Close `epoch` into the history (after `sync`): `images` were trained in `seconds` by
        this process (a resumed epoch's earlier steps are not timed)."""
        self.history.append(
            {
                "epoch": epoch,
                "step": self.step,
                "loss": round(float(np.mean(self.epoch_losses)), 6),
                "lr": lr,
                "img_per_s": round(images / seconds, 2),
                "seconds": round(seconds, 2),
            }
        )
        self.epoch_losses = []


@dataclass
class Report:
    """What people and later stages see of training: progress lines with loss, lr,
    throughput and ETA (on long runs all a user sees), a line per epoch, the history table
    and the resolved recipe. Only a report that `writes` (the main worker's) prints or writes."""

    folder: TrainFolder
    total_steps: int
    batch_size: int
    interval: int
    writes: bool
    started: float = 0.0
    done: int = 0

    def say(self, line: str) -> None:
        if self.writes:
            print(line, flush=True)

    def start(self, recipe: Recipe, line: str) -> None:
        if self.writes:
            recipe.dump(self.folder.recipe)
        self.say(line)

    def tick(self) -> None:
        """A step was dispatched; the clock starts after the first (compiling) one."""
        if not self.started:
            self.started = time.perf_counter()
        else:
            self.done += 1

    def due(self, step: int, steps_per_epoch: int) -> bool:
        """Whether step `step` of the epoch gets a progress line (every `interval`, and the
        epoch's last)."""
        return step % self.interval == 0 or step == steps_per_epoch

    def progress(self, epoch: int, step: int, steps_per_epoch: int, loss: float, lr: float) -> None:
        if not self.done:
            return
        per_step = (time.perf_counter() - self.started) / self.done
        left = per_step * (self.total_steps - self.done - 1)
        self.say(
            f"epoch {epoch} step {step}/{steps_per_epoch} loss {loss:.4f} lr {lr:.6f} "
            f"{self.batch_size / per_step:.1f} img/s eta {_duration(left)}"
        )

    def history(self, history: list[dict]) -> None:
        if self.writes:
            HISTORY.write(self.folder.history, history)

    def epoch(self, row: dict, max_epoch: int) -> None:
        self.say(
            f"epoch {row['epoch']}/{max_epoch} done: loss {row['loss']:.4f} "
            f"{row['img_per_s']:.1f} img/s {row['seconds']:.1f}s"
        )


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def resume(train_step: nn.Cell, keeper: CheckpointKeeper, steps: int, report: Report) -> Position:
    """Load the checkpoint the keeper resumes from into `train_step`; return its position."""
    latest = keeper.resume_point(steps)
    if latest is None:
        return Position()
    params, _ = checkpoint.read(latest["path"])
    not_loaded, _ = ms.load_param_into_net(train_step, params, strict_load=True)
    if not_loaded:
        raise ValueError(f"cannot resume from {latest['path']}: {not_loaded} not in it")
    epoch = latest["epoch"]
    mid_epoch = bool(latest.get("epoch_losses"))
    position = Position(
        latest["step"] if mid_epoch else epoch * steps,
        latest["history"],
        list(latest.get("epoch_losses", [])),
    )
    where = (
        f"step {position.step % steps} of epoch {epoch}"
        if mid_epoch
        else f"the end of epoch {epoch}"
    )
    report.say(f"resuming from {latest['path']} ({where})")
    return position


def train(
    recipe: Recipe,
    source: DataSource,
    net: nn.Cell,
    folder: TrainFolder,
    *,
    group: ProcessGroup,
    stop: StopFlag,
    pre_trained: Path | None = None,
) -> list[dict]:
    """Train `net` to `recipe.max_epoch` from `pre_trained`'s weights (if given), resuming
    from the furthest checkpoint of the same recipe, code and start in the folder. Returns the
    per-epoch history; raises Preempted once a signal has stopped it (its position saved)."""
    steps = _steps_per_epoch(source, recipe, group)
    lrs = learning_rates(recipe, steps)
    amp_level = device.amp_level(recipe, device.target())
    writes = group.is_main  # the one decision: the main worker writes, the others compute alike
    batch = recipe.batch_size * group.size
    report = Report(folder, len(lrs), batch, recipe.log_interval, writes)
    start = _start_from(net, pre_trained, report)
    keeper = _keeper(recipe, folder, source.class_names, writes, start)
    loop = Loop(
        build_train_step(net, recipe, lrs, amp_level), recipe, lrs, steps, keeper, report, stop
    )
    at = resume(loop.train_step, keeper, steps, report)
    report.total_steps -= at.step
    report.start(
        recipe,
        f"training {recipe.dataset} on {device.target()} ({amp_level}): {group.size} worker(s), "
        f"{steps} steps/epoch x {recipe.max_epoch - at.epoch(steps) + 1} epochs, "
        f"global batch {batch}",
    )
    while at.step < len(lrs):
        epoch = at.epoch(steps)
        batches = training_epoch(
            source,
            recipe,
            epoch=epoch,
            first_step=at.step % steps,
            num_shards=group.size,
            shard_id=group.rank,
        )
        train_one_epoch(loop, batches, at, epoch)
    report.history(at.history)  # also when resuming a finished run, whose file may be gone
    report.say(f"checkpoints, history and recipe in {folder.path}")
    return at.history


def _steps_per_epoch(source: DataSource, recipe: Recipe, group: ProcessGroup) -> int:
    steps = train_steps(source, recipe, group.size)
    if steps == 0:
        raise ValueError(
            f"the training split has fewer images than one global batch "
            f"({recipe.batch_size} x {group.size} worker(s))"
        )
    return steps


def _start_from(net: nn.Cell, pre_trained: Path | None, report: Report) -> dict | None:
    """Load the pre-trained weights into `net`, a last layer of another num_classes left
    afresh (and said so); return the checkpoint's path and digest, or None."""
    if pre_trained is None:
        return None
    params, _ = checkpoint.read(pre_trained)
    fresh = checkpoint.load_weights(net, params, source=pre_trained, new_head=True)
    if fresh:
        report.say(
            f"fine-tuning from {pre_trained}: its last layer is for "
            f"{params[fresh[-1]].shape[0]} classes, the recipe's for "
            f"{net.parameters_dict()[fresh[-1]].shape[0]}, so that layer starts afresh"
        )
    return {"path": str(pre_trained), "sha256": checkpoint.fingerprint(pre_trained)}


def _keeper(
    recipe: Recipe,
    folder: TrainFolder,
    class_names: list[str],
    writes: bool,
    start: dict | None,
) -> CheckpointKeeper:
    """The run's checkpoints as the recipe asks for them, each carrying the recipe, the class
    names and what training started from."""
    return CheckpointKeeper(
        folder.checkpoints,
        training_hash(recipe, start["sha256"] if start else None),
        last_epoch=recipe.max_epoch,
        keep=recipe.keep_checkpoint_max,
        interval=recipe.ckpt_interval,
        recovery_steps=recipe.recovery_steps,
        describe={"recipe": recipe.to_dict(), "class_names": class_names}
        | ({"pre_trained": start} if start else {}),
        writes=writes,
    )


@dataclass(frozen=True)
class Loop:
    """What every epoch of a run trains with and hands its results to."""

    train_step: nn.Cell
    recipe: Recipe
    lrs: np.ndarray  # one per step of the whole run
    steps: int  # per epoch
    keeper: CheckpointKeeper
    report: Report
    stop: StopFlag


def train_one_epoch(loop: Loop, batches: ms.dataset.Dataset, at: Position, epoch: int) -> None:
    """Train the rest of `epoch` from `at`, then close it: history, checkpoints. The losses
    are read back only at progress lines, checkpoints and the epoch's end. A signal stops it
    after the step in flight, with its position saved (`StopFlag.preempt`)."""
    steps, first = loop.steps, at.step % loop.steps
    started, stopping = time.perf_counter(), False
    for step, (images, labels, *keep) in enumerate(
        batches.create_tuple_iterator(num_epochs=1), start=first + 1
    ):
        at.add_step(loop.train_step(images, labels, *keep))
        loop.report.tick()
        due = loop.report.due(step, steps)
        stopping = loop.stop.raised(agree=due)
        if due or stopping or loop.keeper.recovery_due(at.step):
            loss = at.sync(epoch, steps)
            if due:
                loop.report.progress(epoch, step, steps, loss, float(loop.lrs[at.step - 1]))
        if step < steps:
            loop.keeper.after_step(loop.train_step, at.meta(steps), stopping=stopping)
            if stopping:
                loop.stop.preempt(
                    f"at epoch {epoch} step {step}/{steps}: position saved in "
                    f"{loop.keeper.recovery}; run the same command again to resume"
                )
    seconds = time.perf_counter() - started
    at.end_epoch(
        epoch, float(loop.lrs[at.step - 1]), (steps - first) * loop.report.batch_size, seconds
    )
    loop.report.history(at.history)
    loop.keeper.after_epoch(loop.train_step, epoch, at.meta(steps), stopping=stopping)
    loop.report.epoch(at.history[-1], loop.recipe.max_epoch)
    if stopping and at.step < len(loop.lrs):
        loop.stop.preempt(f"at the end of epoch {epoch}: run the same command again to resume")
