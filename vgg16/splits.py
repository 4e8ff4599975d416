"""The split vocabulary: which part of each raw layout becomes `train`, `val` and `test`.

Every stage names splits the same way, whatever the folders are called on disk: `verify`
reports and checks counts per split, `prepare` writes `<split>.mindrecord`, the input
pipeline and `evaluate --split` read them, and the workflow config's `expect` counts them.
The name clash to keep in mind is ImageNet's: its `val/` folder is the seed's test set
(ImageNet's own test images have no public labels), so it becomes `test` here, and `val` is
always held out of `train` by `prepare`, for checkpoint selection.
"""

from __future__ import annotations

SPLITS = ("train", "val", "test")
#: The split `prepare` carves out of train (stratified, `val_fraction`); no raw layout has it.
HELD_OUT = "val"

_CIFAR = {"train": "data_batch_*.bin", "test": "test_batch.bin"}
#: Per format, the raw files or folder that hold each split (glob patterns for CIFAR-style
#: batches, folder names for class-folder layouts).
RAW_SPLITS: dict[str, dict[str, str]] = {
    "cifar10": _CIFAR,
    "digits": _CIFAR,
    "imagenet2012": {"train": "train", "test": "val"},
}


def raw_splits(dataset: str) -> dict[str, str]:
    """The raw layout of `dataset` as split -> file pattern or folder name."""
    if dataset not in RAW_SPLITS:
        raise ValueError(f"unknown dataset {dataset!r}: expected one of {list(RAW_SPLITS)}")
    return RAW_SPLITS[dataset]


def describe(dataset: str) -> str:
    """One line for error messages: where each split of `dataset` comes from."""
    parts = [f"{split} <- {where}" for split, where in raw_splits(dataset).items()]
    return f"{', '.join(parts)}, {HELD_OUT} <- held out of train by prepare"


def check_raw_split(dataset: str, split: str, what: str) -> None:
    """Raise ValueError unless `split` is one the raw layout of `dataset` has."""
    if split not in raw_splits(dataset):
        raise ValueError(
            f"{what} names split {split!r}, which a raw {dataset} layout does not have "
            f"({describe(dataset)})"
        )
