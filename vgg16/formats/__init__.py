"""The dataset formats, by name: register a new format's module here, and nowhere else.

`get` is the one place an unknown name is refused, so every command and the workflow say
the same thing about it.
"""

from __future__ import annotations

from vgg16.formats import cifar10, digits, imagenet2012
from vgg16.formats.base import Format

FORMATS: dict[str, Format] = {
    module.FORMAT.name: module.FORMAT for module in (cifar10, imagenet2012, digits)
}
#: The names, for `--dataset` choices and the recipes' `dataset` key.
NAMES = tuple(FORMATS)


def get(name: str) -> Format:
    if name not in FORMATS:
        raise ValueError(f"unknown dataset {name!r}: expected one of {', '.join(NAMES)}")
    return FORMATS[name]
