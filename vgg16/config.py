"""Recipes: the seed README's hyper-parameter tables as a validated dataclass.

One recipe drives train, select, evaluate, export and predict alike, so every command loads
it the same way: a YAML file (or the dataset's built-in recipe), then `--set key=value`
overrides. This module imports neither MindSpore nor the model, so the workflow validates
every run's recipe when it is parsed: a typo in a 150-epoch recipe fails before any stage
runs, not after hours of data conversion. Unknown keys and bad values are rejected with the
key's name and what is allowed.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from vgg16 import formats
from vgg16.atomic import write_text

DATASETS = formats.NAMES
DEVICE_TARGETS = ("CPU", "GPU", "Ascend")
LR_SCHEDULERS = ("step", "cosine_annealing", "exponential")
INITIALIZE_MODES = ("XavierUniform", "KaimingNormal")
PAD_MODES = ("same", "pad")
AMP_LEVELS = ("auto", "O0", "O1", "O2", "O3")
#: How the loss scale behaves: `fixed` as the seed (every step applied, even one whose fp16
#: gradients overflowed), or `dynamic` (such a step is skipped and the scale halved).
LOSS_SCALE_TYPES = ("fixed", "dynamic")
#: What fine-tuning leaves as the checkpoint had it: nothing, or the convolutional features
#: (weights and BatchNorm statistics), so that only the classifier trains.
FREEZE = ("none", "features")
#: The transforms families a recipe chooses from (`transforms.FAMILIES`): CIFAR-style
#: pad-and-crop of the image's own size, or ImageNet-style random resized crop.
TRANSFORMS = ("cifar", "imagenet")

#: Keys that change how results are evaluated or stored, not the trained weights: they are
#: left out of the recipe hash so that changing them never invalidates a checkpoint.
NOT_HASHED = frozenset(
    {"eval_batch_size", "keep_checkpoint_max", "ckpt_interval", "log_interval", "recovery_steps"}
)
#: Keys that older recipes carry but that belong to `vgg16 prepare` (and the workflow's
#: dataset entries): accepted with a warning and ignored.
DEPRECATED = frozenset({"val_fraction", "shards"})


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Field names are the seed's; the comment after each extra key says why it exists."""

    dataset: str = "cifar10"  # the dataset the recipe was written for; `--dataset` picks it
    num_classes: int | None = 10  # None (YAML null): as many as the data's classes
    lr: float = 0.01
    lr_init: float = 0.01
    lr_max: float = 0.1
    lr_epochs: tuple[int, ...] = (30, 60, 90, 120)
    lr_scheduler: str = "step"
    lr_gamma: float = 0.1  # the zoo's yaml: decay factor of the exponential schedule
    T_max: int = 0  # the zoo's yaml: cosine period in epochs; 0 means max_epoch
    eta_min: float = 0.0  # the zoo's yaml: cosine floor
    warmup_epochs: int = 5
    batch_size: int = 64
    eval_batch_size: int = 64  # evaluation only: larger is faster and does not change results
    max_epoch: int = 70
    momentum: float = 0.9
    weight_decay: float = 5e-4
    loss_scale: float = 1.0
    loss_scale_type: str = "fixed"  # dynamic: skip overflowing steps (`LOSS_SCALE_TYPES`)
    label_smooth: int = 0
    label_smooth_factor: float = 0.0
    buffer_size: int = 10
    image_size: tuple[int, int] = (224, 224)
    pad_mode: str = "same"
    padding: int = 0
    has_bias: bool = False
    batch_norm: bool = True
    keep_checkpoint_max: int = 10
    initialize_mode: str = "XavierUniform"
    has_dropout: bool = True
    mean: tuple[float, float, float] = (0.4465, 0.4822, 0.4914)  # 0-1 scale, RGB order of input
    std: tuple[float, float, float] = (0.2010, 0.1994, 0.2023)
    random_flip: bool = True  # horizontal flips; off for digits, whose mirror images differ
    augment: bool = True  # random crops/flips in training; off = the evaluation transforms
    shuffle: bool = True  # shuffle the training set each epoch
    seed: int = 1  # the zoo seeds 1: weights, shuffling and augmentation
    ckpt_interval: int = 1  # epochs between checkpoints
    recovery_steps: int = 0  # steps between rolling mid-epoch recovery checkpoints; 0 = none
    log_interval: int = 20  # steps between progress lines
    amp_level: str = "auto"  # auto: O2 on GPU/Ascend as the seed, O0 (fp32) on CPU
    transforms: str | None = None  # `TRANSFORMS`; None (older recipes): the dataset's family
    freeze: str = "none"  # features: fine-tune the classifier alone (`FREEZE`)

    def __post_init__(self) -> None:
        fmt = _format(self.dataset)
        if self.transforms is None:  # a recipe of before the key: its dataset's family
            object.__setattr__(self, "transforms", fmt.transforms)
        _check_choice("transforms", self.transforms, TRANSFORMS)
        _check_choice("freeze", self.freeze, FREEZE)
        _check_choice("lr_scheduler", self.lr_scheduler, LR_SCHEDULERS)
        _check_choice("pad_mode", self.pad_mode, PAD_MODES)
        _check_choice("initialize_mode", self.initialize_mode, INITIALIZE_MODES)
        _check_choice("amp_level", self.amp_level, AMP_LEVELS)
        _check_choice("loss_scale_type", self.loss_scale_type, LOSS_SCALE_TYPES)
        _check_choice("label_smooth", self.label_smooth, (0, 1))
        for key in (
            "batch_size",
            "eval_batch_size",
            "max_epoch",
            "keep_checkpoint_max",
            "ckpt_interval",
            "log_interval",
            "buffer_size",
        ):
            if getattr(self, key) < 1:
                raise ValueError(f"recipe key {key!r}={getattr(self, key)}: expected >= 1")
        for key in ("lr", "lr_init", "lr_max", "loss_scale"):
            if getattr(self, key) <= 0:
                raise ValueError(f"recipe key {key!r}={getattr(self, key)}: expected > 0")
        for key in (
            "warmup_epochs",
            "T_max",
            "padding",
            "weight_decay",
            "eta_min",
            "momentum",
            "recovery_steps",
        ):
            if getattr(self, key) < 0:
                raise ValueError(f"recipe key {key!r}={getattr(self, key)}: expected >= 0")
        if self.num_classes is not None and self.num_classes < 2:
            raise ValueError(f"recipe key 'num_classes'={self.num_classes}: expected >= 2")
        if not 0 <= self.label_smooth_factor < 1:
            raise ValueError(
                f"recipe key 'label_smooth_factor'={self.label_smooth_factor}: expected 0 <= x < 1"
            )
        if self.warmup_epochs >= self.max_epoch and self.lr_scheduler == "step":
            raise ValueError(
                f"recipe key 'warmup_epochs'={self.warmup_epochs}: expected < max_epoch "
                f"({self.max_epoch}) for the step schedule"
            )
        if any(side % 32 or side < 32 for side in self.image_size):
            raise ValueError(
                f"recipe key 'image_size'={self.image_size}: expected multiples of 32 (VGG16 "
                "halves the size five times)"
            )
        if list(self.lr_epochs) != sorted(set(self.lr_epochs)):
            raise ValueError(f"recipe key 'lr_epochs'={self.lr_epochs}: expected increasing epochs")

    @property
    def smooth_factor(self) -> float:
        return self.label_smooth_factor if self.label_smooth else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }

    def hash(self) -> str:
        """Identifies the training trajectory, so checkpoints from another recipe are never
        resumed from."""
        hashed = {k: v for k, v in self.to_dict().items() if k not in NOT_HASHED}
        return hashlib.sha256(json.dumps(hashed, sort_keys=True).encode()).hexdigest()[:16]

    def dump(self, path: Path) -> None:
        """Write the resolved recipe (atomically) next to the outputs it produced."""
        write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False))


def _format(dataset: str) -> formats.Format:
    """The recipe's dataset format; an unknown one is an error naming the recipe key."""
    try:
        return formats.get(dataset)
    except ValueError as err:
        raise ValueError(f"recipe key 'dataset': {err}") from None


def _check_choice(key: str, value: object, allowed: tuple) -> None:
    if value not in allowed:
        raise ValueError(f"recipe key {key!r}={value!r}: expected one of {list(allowed)}")


def _coerce(key: str, value: Any, field: dataclasses.Field) -> Any:
    """Accept the seed's spellings ('224,224', '30,60,90,120', 0/1 for booleans) and YAML's."""
    kind = field.type
    where = f"recipe key {key!r}={value!r}"
    if kind.endswith(" | None"):
        if value is None:
            return None
        kind = kind.removesuffix(" | None")
    if kind.startswith("tuple"):
        if isinstance(value, str):
            value = [v for v in value.replace(" ", "").split(",") if v]
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, list | tuple):
            raise ValueError(f"{where}: expected a list or a comma-separated string")
        element = float if "float" in kind else int
        try:
            items = tuple(element(v) for v in value)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: expected {element.__name__} values") from None
        if key == "image_size" and len(items) == 1:
            items = items * 2
        expected_len = {"image_size": 2, "mean": 3, "std": 3}.get(key)
        if expected_len and len(items) != expected_len:
            raise ValueError(f"{where}: expected {expected_len} values")
        return items
    if kind == "bool":
        if isinstance(value, bool) or value in (0, 1):
            return bool(value)
        raise ValueError(f"{where}: expected true/false (or 1/0)")
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where}: expected an integer")
        return value
    if kind == "float":
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                raise ValueError(f"{where}: expected a number") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{where}: expected a number")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"{where}: expected a string")
    return value


FIELDS = {f.name: f for f in dataclasses.fields(Recipe)}


def recipe_from_dict(values: dict[str, Any], source: str = "recipe") -> Recipe:
    old = sorted(DEPRECATED & set(values))
    if old:
        warnings.warn(
            f"{source}: recipe key(s) {old} are ignored: the val split and the shards are "
            "settings of `vgg16 prepare` (--val_fraction, --shards) and of the workflow's "
            "datasets.<name> entries; remove them from the recipe",
            FutureWarning,
            stacklevel=2,
        )
        values = {k: v for k, v in values.items() if k not in DEPRECATED}
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise ValueError(
            f"{source}: unknown recipe key(s) {unknown}; allowed keys: {sorted(FIELDS)}"
        )
    return Recipe(**{k: _coerce(k, v, FIELDS[k]) for k, v in values.items()})


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`--set key=value` pairs; values are parsed as YAML scalars (1e-3, true, '224,224')."""
    out = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--set {pair!r}: expected key=value")
        out[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
    return out


def builtin_recipe_path(dataset: str) -> Path:
    path = _format(dataset).default_recipe
    if not path.is_file():
        raise FileNotFoundError(f"built-in recipe {path} is missing (is the repository intact?)")
    return path


def load_recipe(
    config: Path | None = None,
    *,
    dataset: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Recipe:
    """The recipe file (default: the dataset's built-in one, else digits), then overrides.

    `dataset`, when given (the seed's `--dataset` flag), must agree with the file's.
    """
    path = Path(config) if config else builtin_recipe_path(dataset or "digits")
    if not path.is_file():
        raise FileNotFoundError(f"recipe file {path} does not exist")
    values = yaml.safe_load(path.read_text()) or {}
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a mapping of recipe keys, got {type(values).__name__}")
    values.update(overrides or {})
    if dataset is not None:
        if "dataset" in values and values["dataset"] != dataset:
            raise ValueError(
                f"{path}: recipe is for dataset {values['dataset']!r} but --dataset is {dataset!r}"
            )
        values["dataset"] = dataset
    return recipe_from_dict(values, source=str(path))


def add_arguments(
    parser: argparse.ArgumentParser, default: str = "the dataset's built-in one"
) -> None:
    """The recipe flags of every command that builds the network."""
    parser.add_argument("--config", type=Path, help=f"recipe YAML (default: {default})")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe key; repeatable",
    )
    parser.add_argument("--dataset", choices=DATASETS, help="dataset type (seed flag)")


def from_args(args: argparse.Namespace, default: Path | None = None) -> Recipe:
    """The recipe of a command line: `--config` (else `default`, else the built-in recipe of
    `--dataset`), then each `--set key=value`."""
    return load_recipe(
        args.config or default, dataset=args.dataset, overrides=parse_overrides(args.overrides)
    )


def fit(recipe: Recipe, num_classes: int, source: str) -> Recipe:
    """The recipe for data with `num_classes` classes: its own number if it has one and it is
    the data's (else ValueError naming `source`), else the data's. Any recipe trains any data:
    its transforms family decodes and resizes what it is given."""
    if recipe.num_classes is None:
        return dataclasses.replace(recipe, num_classes=num_classes)
    if num_classes != recipe.num_classes:
        raise ValueError(
            f"{source} has {num_classes} classes but the recipe's num_classes is "
            f"{recipe.num_classes}"
        )
    return recipe
