"""The dataset formats, by name: register a new format's module here, and nowhere else.

`get` is the one place an unknown name is refused, so every command and the workflow say
the same thing about it.
"""

from __future__ import annotations

from vgg16.formats import cifar10, digits, folders, imagenet2012
from vgg16.formats.base import Format

FORMATS: dict[str, Format] = {
    module.FORMAT.name: module.FORMAT for module in (cifar10, imagenet2012, digits, folders)
}
#: The names, for `--dataset` choices and the recipes' `dataset` key.
NAMES = tuple(FORMATS)


def get(name: str) -> Format:
    if name not in FORMATS:
        raise ValueError(f"unknown dataset {name!r}: expected one of {', '.join(NAMES)}")
    return FORMATS[name]


def check_source(entry: dict) -> None:
    """A workflow config's dataset entry names a source its format can take: the official
    archives only for a format that has them, and no source at all only for a built-in one."""
    fmt = get(entry["format"])
    if "archives" in entry and not fmt.archives:
        raise ValueError(
            f"archives are the official files of a format that has them, not {fmt.name}"
        )
    if not {"url", "data_path", "archives"} & set(entry) and not fmt.builtin:
        raise ValueError(f"a {fmt.name} dataset needs a source: url or data_path")
