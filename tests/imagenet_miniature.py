"""A miniature of the official ImageNet2012 download: the same three file names and internal
layout, with three real classes and a few small JPEGs, for tests that need the real thing's
structure (vgg16.imagenet_archives, and the workflow run on ImageNet archives).

- ``ILSVRC2012_img_train.tar``: one plain tar per class, ``<wnid>.tar``, of ``<wnid>_<n>.JPEG``.
- ``ILSVRC2012_img_val.tar``: ``ILSVRC2012_val_00000001.JPEG`` ... flat.
- ``ILSVRC2012_devkit_t12.tar.gz``: ``ILSVRC2012_devkit_t12/data/`` holding the val ground
  truth (one class id per line) and ``meta.mat``, a MATLAB struct array ``synsets`` with the
  real fields, written by scipy.

The classes keep their real devkit ids (tench 449, goldfish 450, great white shark 442), which
are in another order than their wnids, so mapping ids to wnids by position or by sorting
would put val images in the wrong folder. ``meta.mat`` also has an inner node of the class
tree (fish, id above 1000, with children), as the real one has 860.
"""

import io
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.io import savemat

#: ILSVRC2012_ID of each class, as in the real devkit.
CLASS_IDS = {"n01440764": 449, "n01443537": 450, "n01484850": 442}
#: The class of val image 1, 2, ...: what the ground truth says, written out by wnid.
VAL_WNIDS = ("n01443537", "n01484850", "n01440764", "n01440764", "n01484850", "n01443537")
TRAIN_NUMBERS = (10026, 10027, 1004)  # the <n> of <wnid>_<n>.JPEG in each class
#: A synset that is not a class: its id is above 1000 and it has children.
INNER_NODE = {"ILSVRC2012_ID": 1001, "WNID": "n02512053", "words": "fish", "num_children": 3,
              "children": [442, 449, 450], "wordnet_height": 2, "num_train_images": 0}  # fmt: skip
SYNSET_FIELDS = ("ILSVRC2012_ID", "WNID", "words", "gloss", "num_children", "children",
                 "wordnet_height", "num_train_images")  # fmt: skip
ARCHIVE_NAMES = {
    "train": "ILSVRC2012_img_train.tar",
    "val": "ILSVRC2012_img_val.tar",
    "devkit": "ILSVRC2012_devkit_t12.tar.gz",
}
DEVKIT_DATA = "ILSVRC2012_devkit_t12/data"


def jpeg(seed: int) -> bytes:
    """A distinct 16x16 RGB JPEG for each seed."""
    pixels = np.random.default_rng(seed).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=90)
    return out.getvalue()


def train_images() -> dict[str, dict[str, bytes]]:
    """Each class's images, by wnid then file name."""
    return {
        wnid: {f"{wnid}_{n}.JPEG": jpeg(100 * c + i) for i, n in enumerate(TRAIN_NUMBERS)}
        for c, wnid in enumerate(sorted(CLASS_IDS))
    }


def val_images() -> dict[str, bytes]:
    """The val images by file name, in archive order."""
    return {f"ILSVRC2012_val_{i:08d}.JPEG": jpeg(1000 + i) for i in range(1, len(VAL_WNIDS) + 1)}


def expected_tree() -> dict[str, bytes]:
    """What extraction must produce: ``train/<wnid>/<image>`` and ``val/<wnid>/<image>``."""
    tree = {
        f"train/{wnid}/{name}": data
        for wnid, images in train_images().items()
        for name, data in images.items()
    }
    for wnid, (name, data) in zip(VAL_WNIDS, val_images().items(), strict=True):
        tree[f"val/{wnid}/{name}"] = data
    return tree


def tar_bytes(members: list[tuple[str | tarfile.TarInfo, bytes]], mode: str = "w") -> bytes:
    """A tar of the given members: a name (a regular file) or a TarInfo, and its data."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=mode) as tar:
        for member, data in members:
            info = member if isinstance(member, tarfile.TarInfo) else tarfile.TarInfo(member)
            if info.isreg():
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return out.getvalue()


def train_members(images: dict[str, dict[str, bytes]]) -> list[tuple[str, bytes]]:
    """The members of the train tar: one ``<wnid>.tar`` per class."""
    return [(f"{wnid}.tar", tar_bytes(list(files.items()))) for wnid, files in images.items()]


def ground_truth(wnids: tuple[str, ...] = VAL_WNIDS) -> str:
    return "".join(f"{CLASS_IDS[wnid]}\n" for wnid in wnids)


def meta_mat(synsets: list[dict]) -> bytes:
    """``meta.mat`` as the devkit has it: a struct array ``synsets`` of shape (N, 1)."""
    table = np.empty((len(synsets), 1), dtype=[(field, object) for field in SYNSET_FIELDS])
    for row, synset in enumerate(synsets):
        values = {"gloss": f"the {synset['words']}", **synset}
        table[row, 0] = tuple(
            values[f] if isinstance(values[f], str) else np.array(values[f], np.uint16)
            for f in SYNSET_FIELDS
        )
    out = io.BytesIO()
    savemat(out, {"synsets": table})
    return out.getvalue()


def class_synsets() -> list[dict]:
    """The leaf synsets in id order, as the real meta.mat lists them, then the inner node."""
    leaves = [
        {"ILSVRC2012_ID": i, "WNID": wnid, "words": wnid, "num_children": 0, "children": [],
         "wordnet_height": 0, "num_train_images": len(TRAIN_NUMBERS)}
        for wnid, i in sorted(CLASS_IDS.items(), key=lambda item: item[1])
    ]  # fmt: skip
    return [*leaves, INNER_NODE]


def devkit_bytes(truth: str, synsets: list[dict]) -> bytes:
    return tar_bytes(
        [
            (f"{DEVKIT_DATA}/ILSVRC2012_validation_ground_truth.txt", truth.encode()),
            (f"{DEVKIT_DATA}/meta.mat", meta_mat(synsets)),
        ],
        mode="w:gz",
    )


def write_archives(root: Path) -> dict[str, Path]:
    """Write the three files into ``root``; returns their paths by ``--archive`` key."""
    root.mkdir(parents=True, exist_ok=True)
    paths = {key: root / name for key, name in ARCHIVE_NAMES.items()}
    paths["train"].write_bytes(tar_bytes(train_members(train_images())))
    paths["val"].write_bytes(tar_bytes(list(val_images().items())))
    paths["devkit"].write_bytes(devkit_bytes(ground_truth(), class_synsets()))
    return paths
