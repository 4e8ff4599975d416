"""`vgg16 train`: the zoo's optimiser, loss and schedules in a plain loop over epochs.

Everything a run writes goes into its output folder: `ckpt/` (self-describing checkpoints),
`history.csv` and the resolved `recipe.yaml`, plus `msrun/` with several workers. The loop
itself is short on purpose: one compiled train step (MindSpore's own `build_train_network`,
which applies the fixed loss scale), then progress, history and checkpoints handled outside
the step. Only rank 0 writes files or prints progress.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import mindspore as ms
import numpy as np
from mindspore import nn
from mindspore.amp import FixedLossScaleManager, build_train_network

from vgg16 import checkpoint, device, schedule, stages
from vgg16.config import RESOLVED, Recipe, load_recipe, parse_overrides
from vgg16.data import open_source
from vgg16.loss import CrossEntropySmooth
from vgg16.model import build_net
from vgg16.pipeline import create_dataset
from vgg16.tables import HISTORY

NO_DECAY_SUFFIXES = (".bias", ".gamma", ".beta")


def main(args: argparse.Namespace) -> None:
    overrides = parse_overrides(args.overrides)
    if args.ckpt_interval is not None:  # the seed's flag
        overrides["ckpt_interval"] = args.ckpt_interval
    recipe = load_recipe(args.config, dataset=args.dataset, overrides=overrides)
    target, rank, size = device.start(args, recipe)
    source = open_source(args.data_path, recipe.dataset)
    data = create_dataset(
        source,
        recipe,
        "train",
        training=True,
        batch_size=recipe.batch_size,
        num_shards=size,
        shard_id=rank,
    )
    if rank == 0:
        recipe.dump(args.output / RESOLVED)
    train(
        recipe,
        data,
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
    """Metadata (and path) of the checkpoints this recipe and code can resume from.

    With `set_aside` (rank 0 only), checkpoints of another recipe or training code are moved to
    `previous-<hash>/` rather than deleted: nothing already computed is lost.
    """
    resumable = []
    for path in checkpoint.list_checkpoints(ckpt_dir):
        try:
            _, meta = checkpoint.read(path, meta_only=True)
        except FileNotFoundError:  # rank 0 moved it aside meanwhile
            continue
        if meta.get("training_hash") == run_hash:
            resumable.append({"path": path, **meta})
        elif set_aside:
            aside = ckpt_dir / f"previous-{meta.get('training_hash', 'unknown')}"
            aside.mkdir(exist_ok=True)
            shutil.move(str(path), aside / path.name)
            print(f"moved {path.name} (another recipe or training code) to {aside}", flush=True)
    return resumable


def train(
    recipe: Recipe,
    dataset: ms.dataset.Dataset,
    *,
    output: Path,
    target: str,
    amp_level: str,
    class_names: list[str],
    pre_trained: Path | None = None,
    reinit_head: bool = False,
    rank: int = 0,
    group_size: int = 1,
) -> list[dict]:
    """Train to `recipe.max_epoch`, resuming from the newest checkpoint of the same recipe and
    code in `output/ckpt`. Returns the per-epoch history."""
    main = rank == 0
    ckpt_dir = checkpoint.folder(output)
    steps_per_epoch = dataset.get_dataset_size()
    if steps_per_epoch == 0:
        raise ValueError(
            f"the training split has fewer images than one batch ({recipe.batch_size})"
        )
    net = build_net(recipe)
    if pre_trained:
        params, _ = checkpoint.read(pre_trained)
        checkpoint.load_weights(net, params, source=pre_trained, reinit_head=reinit_head)
    loss_fn = CrossEntropySmooth(num_classes=recipe.num_classes, smooth_factor=recipe.smooth_factor)
    lrs = learning_rates(recipe, steps_per_epoch)
    optimizer = build_optimizer(net, recipe, lrs)
    train_step = build_train_network(
        net,
        optimizer,
        loss_fn,
        level=amp_level,
        loss_scale_manager=FixedLossScaleManager(recipe.loss_scale, drop_overflow_update=False),
    )
    train_step.set_train()

    run_hash = training_hash(recipe)
    start_epoch, history = 1, []
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    resumable = resumable_checkpoints(ckpt_dir, run_hash, set_aside=main)
    if resumable:
        latest = max(resumable, key=lambda m: m["epoch"])
        params, _ = checkpoint.read(latest["path"])
        not_loaded, _ = ms.load_param_into_net(train_step, params, strict_load=True)
        if not_loaded:
            raise ValueError(f"cannot resume from {latest['path']}: {not_loaded} not in it")
        start_epoch = latest["epoch"] + 1
        history = latest["history"]
        if main:
            print(f"resuming from {latest['path']} (epoch {latest['epoch']})", flush=True)

    epochs_left = recipe.max_epoch - start_epoch + 1
    progress = Progress(
        total_steps=epochs_left * steps_per_epoch,
        batch_size=recipe.batch_size * group_size,
        interval=recipe.log_interval,
        enabled=main,
    )
    if main:
        print(
            f"training {recipe.dataset} on {target} ({amp_level}): {group_size} worker(s), "
            f"{steps_per_epoch} steps/epoch x {epochs_left} epochs, global batch "
            f"{recipe.batch_size * group_size}",
            flush=True,
        )
    iterator = dataset.create_tuple_iterator(num_epochs=max(epochs_left, 1))
    for epoch in range(start_epoch, recipe.max_epoch + 1):
        started, losses = time.perf_counter(), []
        for step, (images, labels) in enumerate(iterator, start=1):
            loss = float(train_step(images, labels).asnumpy())
            global_step = (epoch - 1) * steps_per_epoch + step
            if not math.isfinite(loss):
                raise FloatingPointError(
                    f"loss is {loss} at epoch {epoch} step {step} (global step {global_step}): "
                    "lower lr or loss_scale, or check the input data"
                )
            losses.append(loss)
            progress.step(epoch, step, steps_per_epoch, loss, float(lrs[global_step - 1]))
        seconds = time.perf_counter() - started
        global_step = epoch * steps_per_epoch
        history.append(
            {
                "epoch": epoch,
                "step": global_step,
                "loss": round(float(np.mean(losses)), 6),
                "lr": float(lrs[global_step - 1]),
                "img_per_s": round(len(losses) * recipe.batch_size * group_size / seconds, 2),
                "seconds": round(seconds, 2),
            }
        )
        if not main:
            continue
        HISTORY.write(output, history)
        if epoch % recipe.ckpt_interval == 0 or epoch == recipe.max_epoch:
            meta = {
                "epoch": epoch,
                "step": global_step,
                "training_hash": run_hash,
                "recipe": recipe.to_dict(),
                "class_names": class_names,
                "history": history,
            }
            checkpoint.save(train_step, ckpt_dir / checkpoint.checkpoint_name(epoch), meta)
            for old in checkpoint.list_checkpoints(ckpt_dir)[: -recipe.keep_checkpoint_max]:
                old.unlink()
        print(
            f"epoch {epoch}/{recipe.max_epoch} done: loss {history[-1]['loss']:.4f} "
            f"{history[-1]['img_per_s']:.1f} img/s {seconds:.1f}s",
            flush=True,
        )
    if main:  # also when resuming a finished run, whose history.csv may have been removed
        HISTORY.write(output, history)
    return history
