"""Input pipelines: MindRecord (or the seed's raw layouts) through the zoo's transforms.

Two image families: CIFAR-style raw 32x32 pixels (cifar10, digits) and JPEG bytes
(imagenet2012). Normalisation uses the recipe's 0-1 statistics scaled by 255, which equals
the zoo's Rescale(1/255) followed by Normalize for CIFAR in one op.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from mindspore import dataset as ds
from mindspore import dtype as mstype
from mindspore.dataset import transforms, vision

from vgg16 import readers
from vgg16.config import Recipe
from vgg16.mindrecord import load_manifest, split_files

CIFAR_FAMILY = ("cifar10", "digits")
SPLITS = ("train", "val", "test")


def num_workers() -> int:
    """The zoo's fixed 8 parallel workers fails on small machines."""
    return max(1, min(8, os.cpu_count() or 1))


def is_prepared(data_path: Path) -> bool:
    return (Path(data_path) / "manifest.json").is_file()


class _RawPixels:
    """MindRecord stores CIFAR pixels as bytes (it has no uint8 array type)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return np.frombuffer(image.tobytes(), dtype=np.uint8).reshape(self.shape)


class ImageFiles:
    """Random-access source over image files, normalised to RGB JPEG bytes on read."""

    def __init__(self, paths: list[Path], labels: list[int]) -> None:
        self.paths, self.labels = paths, labels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.int32]:
        data = readers.rgb_jpeg_bytes(self.paths[i])
        return np.frombuffer(data, dtype=np.uint8), np.int32(self.labels[i])


def _normalize(recipe: Recipe) -> list:
    return [
        vision.Normalize([m * 255 for m in recipe.mean], [s * 255 for s in recipe.std]),
        vision.HWC2CHW(),
    ]


def image_transforms(recipe: Recipe, *, training: bool, encoded: bool) -> list:
    """The zoo's transforms. `encoded`: the image column holds JPEG bytes, not pixels."""
    size = tuple(recipe.image_size)
    flip = [vision.RandomHorizontalFlip()] if training and recipe.random_flip else []
    if recipe.dataset in CIFAR_FAMILY:
        ops = [vision.Decode()] if encoded else []
        if training:
            ops.append(vision.RandomCrop((32, 32), (4, 4, 4, 4)))
        ops += flip
        if size != (32, 32) or encoded:
            ops.append(vision.Resize(size))
        return ops + _normalize(recipe)
    if training:
        ops = [vision.RandomCropDecodeResize(size, scale=(0.08, 1.0))] + flip
    else:
        short_side = round(size[0] * 256 / 224)  # 256 for the zoo's 224 px
        ops = [vision.Decode(), vision.Resize(short_side), vision.CenterCrop(size)]
    return ops + _normalize(recipe)


def _sharding(count: int, *, training: bool, shuffle: bool, num_shards: int, shard_id: int) -> dict:
    """Source arguments that give this worker its part of the split.

    Training uses MindSpore's sharding, which pads uneven shards by repeating records so that
    every worker takes the same number of steps (they all-reduce every step). Evaluation must
    count each image exactly once, so it takes every num_shards-th record from shard_id on:
    disjoint, covering, unpadded.
    """
    if num_shards == 1:
        return {"shuffle": shuffle}
    if training:
        return {"shuffle": shuffle, "num_shards": num_shards, "shard_id": shard_id}
    return {"sampler": ds.SubsetSampler(list(range(shard_id, count, num_shards)))}


def _raw_source(
    data_path: Path, recipe: Recipe, split: str, *, sharding: Callable[[int], dict]
) -> tuple[ds.Dataset, bool]:
    """The seed's layouts, read directly. They have no held-out `val` split."""
    if split == "val":
        raise ValueError(
            f"{data_path} is a raw {recipe.dataset} layout, which has no 'val' split: "
            "run `vgg16 prepare` first (checkpoint selection never uses the test set)"
        )
    if recipe.dataset in CIFAR_FAMILY:
        files = readers.find_cifar_files(data_path)[split]
        if not files:
            raise FileNotFoundError(f"{data_path}: no CIFAR-10 {split} batches found")
        images, labels = readers.read_cifar_batches(files)
        source = ds.NumpySlicesDataset({"image": images, "label": labels}, **sharding(len(labels)))
        return source, False
    root = Path(data_path)
    sub = {"train": "train", "test": "val"}[split]
    if (root / sub).is_dir():
        root = root / sub
    paths, labels, _ = readers.list_image_folder(root)
    source = ds.GeneratorDataset(
        ImageFiles(paths, labels),
        ["image", "label"],
        num_parallel_workers=num_workers(),
        **sharding(len(labels)),
    )
    return source, True


def create_dataset(
    data_path: Path,
    recipe: Recipe,
    split: str,
    *,
    training: bool,
    batch_size: int,
    num_shards: int = 1,
    shard_id: int = 0,
) -> ds.Dataset:
    """Batches of (float32 CHW image, int32 label). Training drops the last partial batch
    (fixed shapes for graph mode); evaluation keeps it, so every image is counted. With
    `num_shards` > 1 this worker reads its own part (see `_sharding`)."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r}: expected one of {list(SPLITS)}")
    data_path = Path(data_path)
    if not data_path.exists():
        raise FileNotFoundError(f"--data_path {data_path} does not exist")

    def sharding(count: int) -> dict:
        return _sharding(
            count,
            training=training,
            shuffle=training and recipe.shuffle,
            num_shards=num_shards,
            shard_id=shard_id,
        )

    if is_prepared(data_path):
        manifest = load_manifest(data_path)
        if manifest["dataset"] != recipe.dataset and not (
            {manifest["dataset"], recipe.dataset} <= set(CIFAR_FAMILY)
        ):
            raise ValueError(
                f"{data_path} holds {manifest['dataset']!r} but the recipe is for "
                f"{recipe.dataset!r}"
            )
        if manifest["num_classes"] != recipe.num_classes:
            raise ValueError(
                f"{data_path} has {manifest['num_classes']} classes but the recipe's "
                f"num_classes is {recipe.num_classes}"
            )
        data = ds.MindDataset(
            split_files(data_path, manifest, split),
            columns_list=["image", "label"],
            **sharding(manifest["splits"][split]["count"]),
        )
        encoded = manifest["format"] == "jpeg"
        if not encoded:
            data = data.map(_RawPixels(tuple(manifest["image_shape"])), input_columns="image")
    else:
        data, encoded = _raw_source(data_path, recipe, split, sharding=sharding)
    data = data.map(
        image_transforms(recipe, training=training and recipe.augment, encoded=encoded),
        input_columns="image",
        num_parallel_workers=num_workers(),
    )
    data = data.map(transforms.TypeCast(mstype.int32), input_columns="label")
    return data.batch(batch_size, drop_remainder=training)


def class_names(data_path: Path, recipe: Recipe) -> list[str]:
    """Names for reports and predictions: from the manifest, else the raw layout."""
    data_path = Path(data_path)
    if is_prepared(data_path):
        return list(load_manifest(data_path)["class_names"])
    if recipe.dataset in CIFAR_FAMILY:
        return readers.cifar_class_names(data_path)
    root = data_path / "train" if (data_path / "train").is_dir() else data_path
    return readers.class_folders(root)
