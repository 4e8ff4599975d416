"""The official ImageNet2012 archives turned into the ``train/<wnid>/`` and ``val/<wnid>/``
class folders of the `imagenet2012` format (`formats.imagenet2012`).

The download is three files (config/README.md lists their sizes and md5s). The train tar holds
one tar per class, ``<wnid>.tar``, of that class's images; the val tar holds 50,000 images
with no class in their names; the devkit holds the val ground truth (line i: the class id,
1..1000, of val image i) and ``meta.mat``, which maps class ids to wnids. The train tar is
138 GB, so both image archives are streamed member by member: never extracted whole first,
never held in memory. Everything is built in a staged folder (``atomic.staged_dir``), so an
interrupted or refused extraction leaves no folder that a rerun would take as done.
"""

import io
import re
import shutil
import sys
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from vgg16.atomic import staged_dir
from vgg16.members import check_tar_member

#: The archives by their ``--archive`` key, with their official names.
ARCHIVES = {
    "train": "ILSVRC2012_img_train.tar",
    "val": "ILSVRC2012_img_val.tar",
    "devkit": "ILSVRC2012_devkit_t12.tar.gz",
}
NUM_CLASSES = 1000
GROUND_TRUTH = "ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt"
META = "ILSVRC2012_devkit_t12/data/meta.mat"
TRAIN_PROGRESS_EVERY = 50  # class tars between progress lines
VAL_PROGRESS_EVERY = 5000  # val images between progress lines

_VAL_NAME = re.compile(r"ILSVRC2012_val_([0-9]{8})\.[A-Za-z]+")


def extract_imagenet(train_tar: Path, val_tar: Path, devkit: Path, dest: Path) -> Path:
    """Build ``dest/train/<wnid>/`` and ``dest/val/<wnid>/`` from the three archives.

    The devkit is read first (it is small), then val, then train, so that a bad devkit or val
    archive fails in minutes rather than after the 138 GB train tar. Every member is checked
    before it is written: no absolute path, ``..``, link or device, nothing in folders, class
    tars named ``<wnid>.tar`` after a devkit class, val images ``ILSVRC2012_val_<8 digits>.<ext>``
    numbered within the ground truth. A refused member, or a damaged or short archive (a class
    tar or val image missing), raises ValueError naming the archive and leaves ``dest`` as it was.
    """
    paths = {"train": Path(train_tar), "val": Path(val_tar), "devkit": Path(devkit)}
    for key, path in paths.items():
        if not path.is_file():
            raise FileNotFoundError(f"ImageNet {key} archive ({ARCHIVES[key]}) not found: {path}")
    classes, val_wnids = _read_devkit(paths["devkit"])
    with staged_dir(dest) as tmp:
        _extract_val(paths["val"], tmp / "val", val_wnids)
        _extract_train(paths["train"], tmp / "train", classes)
    return Path(dest)


def _read_devkit(devkit: Path) -> tuple[set[str], list[str]]:
    """The wnids of the classes (ids 1..1000), and the wnid of each val image in order."""
    from scipy.io import loadmat  # here: scipy takes seconds to import, and the workflow
    # imports this module (through `formats`) every time it is parsed

    with _reading(devkit), tarfile.open(devkit, mode="r:*") as tar:
        ground_truth = _member_bytes(tar, devkit, GROUND_TRUTH).decode()
        synsets = loadmat(io.BytesIO(_member_bytes(tar, devkit, META)))["synsets"].ravel()
    # meta.mat also lists the 860 inner nodes of the class tree, with ids above 1000.
    ids = (int(synset["ILSVRC2012_ID"].item()) for synset in synsets)
    names = (str(synset["WNID"].item()) for synset in synsets)
    wnids = {i: name for i, name in zip(ids, names, strict=True) if 1 <= i <= NUM_CLASSES}
    val_wnids = []
    for number, line in enumerate(ground_truth.splitlines(), 1):
        class_id = int(line) if line.strip().isdigit() else None
        if class_id not in wnids:
            raise ValueError(
                f"{devkit}: line {number} of {GROUND_TRUTH} is {line!r}, not a class id of {META}"
            )
        val_wnids.append(wnids[class_id])
    return set(wnids.values()), val_wnids


def _member_bytes(tar: tarfile.TarFile, archive: Path, name: str) -> bytes:
    try:
        file = tar.extractfile(name)
    except KeyError:
        file = None
    if file is None:
        raise ValueError(f"{archive} holds no file {name} (is it {ARCHIVES['devkit']}?)")
    return file.read()


def _extract_val(archive: Path, folder: Path, wnids: list[str]) -> None:
    """Stream the val images into ``folder/<wnid>/``, each in the class the ground truth gives."""
    for wnid in set(wnids):
        (folder / wnid).mkdir(parents=True)
    done = 0
    with _reading(archive), tarfile.open(archive, mode="r|*") as tar:
        for member in tar:
            _check_flat_file(archive, member)
            match = _VAL_NAME.fullmatch(member.name)
            number = int(match[1]) if match else 0
            if not 1 <= number <= len(wnids):
                raise ValueError(
                    f"{archive}: member {member.name!r} is not ILSVRC2012_val_<8 digits>.<ext> "
                    f"numbered 1 to {len(wnids)} (the lines of the ground truth)"
                )
            _write(archive, member.name, tar.extractfile(member), folder / wnids[number - 1])
            done += 1
            _progress("val", done, len(wnids), VAL_PROGRESS_EVERY, "images")
    if done != len(wnids):
        raise ValueError(f"{archive} holds {done} images; the ground truth lists {len(wnids)}")


def _extract_train(archive: Path, folder: Path, wnids: set[str]) -> None:
    """Stream each class tar ``<wnid>.tar`` of the train archive into ``folder/<wnid>/``."""
    seen, images = set(), 0
    with _reading(archive), tarfile.open(archive, mode="r|*") as outer:
        for member in outer:
            _check_flat_file(archive, member)
            wnid = member.name.removesuffix(".tar")
            if wnid == member.name or wnid not in wnids:
                raise ValueError(
                    f"{archive}: member {member.name!r} is not <wnid>.tar of a devkit class"
                )
            if wnid in seen:
                raise ValueError(f"{archive}: member {member.name!r} appears twice")
            seen.add(wnid)
            (folder / wnid).mkdir(parents=True)
            class_tar = f"{archive} ({member.name})"
            source = outer.extractfile(member)
            with _reading(class_tar), tarfile.open(fileobj=source, mode="r|*") as inner:
                for image in inner:
                    _check_flat_file(class_tar, image)
                    _write(class_tar, image.name, inner.extractfile(image), folder / wnid)
                    images += 1
            what = f"class tars, {images:,} images"
            _progress("train", len(seen), len(wnids), TRAIN_PROGRESS_EVERY, what)
    if seen != wnids:
        missing = sorted(wnids - seen)
        raise ValueError(
            f"{archive} holds {len(seen)} of the devkit's {len(wnids)} class tars; "
            f"missing {', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}"
        )


def _check_flat_file(archive: Path | str, member: tarfile.TarInfo) -> None:
    """Refuse an unsafe member, or one that is not a file at the top of the archive."""
    check_tar_member(archive, member)
    if not member.isreg():
        raise ValueError(f"{archive}: member {member.name!r} is not a regular file")
    if "/" in member.name:
        raise ValueError(f"{archive}: member {member.name!r} is in a folder (expected none)")


def _write(archive: Path | str, name: str, source: IO[bytes], folder: Path) -> None:
    """Copy a member's data to ``folder/name``; a second member of that name is refused."""
    try:
        with (folder / name).open("xb") as out:
            shutil.copyfileobj(source, out)
    except FileExistsError:
        raise ValueError(f"{archive}: member {name!r} appears twice") from None


def _progress(split: str, done: int, total: int, every: int, what: str) -> None:
    """A stderr line every ``every`` items and at the end: the train tar takes hours."""
    if done % every == 0 or done == total:
        print(f"{split}: {done:,} of {total:,} {what}", file=sys.stderr)


@contextmanager
def _reading(archive: Path | str) -> Iterator[None]:
    """Report a damaged or truncated archive as a ValueError naming it, as bad members are."""
    try:
        yield
    except (tarfile.TarError, EOFError) as error:
        raise ValueError(f"{archive} is damaged or truncated: {error}") from error
