"""What the network is fed, without MindSpore: evaluation's transforms of a decoded image,
in numpy and OpenCV, and as `preprocessing.json` describes them to any runtime.

Evaluation runs MindSpore's C++ ops (`transforms.evaluation`, built from the same
`Preprocessing`), whose resize is OpenCV 4.5's `cv::resize` with `INTER_LINEAR`: fixed-point
weights (11 bits), no antialiasing, and an exact halving done as a 2x2 box average. Pillow's
bilinear resize antialiases instead and moved pixels by up to 165 levels of 255 against it
(measured on photographs), which would move a network's probabilities by far more than
1e-4; so `bilinear` calls OpenCV's own kernel (opencv-python-headless), which equals
MindSpore's `Resize` bit for bit (`tests/test_preprocessing.py`, on photographs at sizes up
and down). Decoding is not here: Pillow's libjpeg-turbo gives
MindSpore's decoder's pixels (`images.network_input`).

This module imports neither MindSpore nor the rest of the package at run time, so an
exported model's runtime (`predict --engine onnxruntime`) prepares images with it alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import cv2
import numpy as np

if TYPE_CHECKING:
    from vgg16.config import Recipe

#: What every exported model takes: one float32 array of RGB images, channels first.
LAYOUT, CHANNEL_ORDER, DTYPE = "NCHW", "RGB", "float32"
#: The resize `bilinear` runs, named as a runtime with OpenCV would call it.
INTERPOLATION = "cv2.INTER_LINEAR"

Size = tuple[int, int]


def _cifar(size: Size) -> tuple[Size | int, Size | None]:
    return size, None


def _imagenet(size: Size) -> tuple[Size | int, Size | None]:
    return round(size[0] * 256 / 224), size  # the short side: 256 for the zoo's 224 px


#: Each transforms family's evaluation for a network of `size` (height, width): the resize
#: (an int: the short side, the aspect ratio kept; else height and width), then the centre
#: crop, if any.
GEOMETRY: dict[str, Callable[[Size], tuple[Size | int, Size | None]]] = {
    "cifar": _cifar,
    "imagenet": _imagenet,
}


@dataclass(frozen=True)
class Preprocessing:
    """Evaluation's transforms of a recipe: decoded HWC uint8 RGB pixels of any size to the
    network's input, and the class names its outputs stand for."""

    image_size: Size
    resize: Size | int
    center_crop: Size | None
    #: Per RGB channel, on the 0-255 scale of the pixels: `(pixel - mean) / std`.
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    class_names: tuple[str, ...] = ()

    @classmethod
    def of(cls, recipe: Recipe, class_names: Sequence[str] = ()) -> Preprocessing:
        size = tuple(recipe.image_size)
        resize, crop = GEOMETRY[recipe.transforms](size)
        return cls(
            image_size=size,
            resize=resize,
            center_crop=crop,
            mean=tuple(m * 255 for m in recipe.mean),
            std=tuple(s * 255 for s in recipe.std),
            class_names=tuple(class_names),
        )

    def resized_size(self, height: int, width: int) -> Size:
        """The size `resize` gives an image, by MindSpore's rule for a short side: the long
        side scaled in float32 and rounded down."""
        if not isinstance(self.resize, int):
            return self.resize
        short, ratio = self.resize, np.float32(max(height, width)) / np.float32(min(height, width))
        long = int(ratio * np.float32(short))
        return (short, long) if height < width else (long, short)

    def pixels(self, image: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB pixels as the network sees them, before normalisation."""
        image = bilinear(image, self.resized_size(*image.shape[:2]))
        return center_crop(image, self.center_crop) if self.center_crop else image

    def normalize(self, pixels: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 pixels of `pixels` as one (N, 3, H, W) float32 batch, normalised
        in float32 as MindSpore's `Normalize` does (bit for bit)."""
        batch = (pixels.astype(np.float32) - np.float32(self.mean)) / np.float32(self.std)
        return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))

    def to_json(self, batch_size: int) -> str:
        """`preprocessing.json`: everything a runtime needs to feed a model exported with a
        fixed `batch_size`."""
        resize = (
            {"short_side": self.resize}
            if isinstance(self.resize, int)
            else {"height": self.resize[0], "width": self.resize[1]}
        )
        crop = self.center_crop
        payload = {
            "image_size": list(self.image_size),
            "batch_size": batch_size,
            "layout": LAYOUT,
            "channel_order": CHANNEL_ORDER,
            "dtype": DTYPE,
            "resize": resize,
            "interpolation": INTERPOLATION,
            "center_crop": {"height": crop[0], "width": crop[1]} if crop else None,
            "mean": list(self.mean),
            "std": list(self.std),
            "class_names": list(self.class_names),
        }
        return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def read(cls, path: Path) -> Preprocessing:
        """A `preprocessing.json`, checked: a missing key or a value this module cannot
        reproduce is a ValueError naming the file, the key and what was expected."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist (written by vgg16 export)")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not JSON ({error})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
        spec = _Fields(path, data)
        for key, value in (
            ("layout", LAYOUT),
            ("channel_order", CHANNEL_ORDER),
            ("dtype", DTYPE),
            ("interpolation", INTERPOLATION),
        ):
            spec.constant(key, value)
        spec.count("batch_size", spec.get("batch_size"))
        resize = spec.get("resize", dict)
        if set(resize) == {"short_side"}:
            resized: Size | int = spec.count("resize", resize["short_side"])
        elif set(resize) == {"height", "width"}:
            resized = spec.size("resize", [resize["height"], resize["width"]])
        else:
            spec.wrong("resize", '{"short_side": N} or {"height": H, "width": W}')
        crop = spec.get("center_crop", (dict, type(None)))
        if crop is not None:
            if set(crop) != {"height", "width"}:
                spec.wrong("center_crop", 'null or {"height": H, "width": W}')
            crop = spec.size("center_crop", [crop["height"], crop["width"]])
        names = spec.get("class_names", list)
        if not names or not all(isinstance(name, str) for name in names):
            spec.wrong("class_names", "a non-empty list of strings")
        return cls(
            image_size=spec.size("image_size", spec.get("image_size", list)),
            resize=resized,
            center_crop=crop,
            mean=spec.channels("mean", positive=False),
            std=spec.channels("std", positive=True),
            class_names=tuple(names),
        )


class _Fields:
    """The keys of one JSON file, each checked with an error naming the file and the key."""

    #: What a JSON reader calls the Python types `json` reads.
    TYPES = {dict: "an object", list: "a list", str: "a string", type(None): "null"}

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path, self.data = path, data

    def wrong(self, key: str, expected: str) -> NoReturn:
        raise ValueError(f"{self.path}: key {key!r} is {self.data.get(key)!r}; expected {expected}")

    def get(self, key: str, kind: type | tuple[type, ...] = object) -> Any:
        if key not in self.data:
            raise ValueError(f"{self.path}: key {key!r} is missing")
        if not isinstance(self.data[key], kind):
            kinds = kind if isinstance(kind, tuple) else (kind,)
            self.wrong(key, " or ".join(self.TYPES[k] for k in kinds))
        return self.data[key]

    def constant(self, key: str, value: str) -> None:
        if self.get(key, str) != value:
            self.wrong(key, repr(value))

    def count(self, key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            self.wrong(key, "a whole number >= 1")
        return value

    def size(self, key: str, values: list) -> Size:
        if len(values) != 2:
            self.wrong(key, "a height and a width")
        height, width = (self.count(key, v) for v in values)
        return height, width

    def channels(self, key: str, *, positive: bool) -> tuple[float, float, float]:
        values = self.get(key, list)
        if len(values) != 3 or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and (v > 0 or not positive)
            for v in values
        ):
            self.wrong(key, "3 numbers, one per RGB channel" + (", each > 0" if positive else ""))
        red, green, blue = (float(v) for v in values)
        return red, green, blue


def bilinear(image: np.ndarray, size: Size) -> np.ndarray:
    """(H, W, 3) uint8 pixels resized to `size` (height, width) exactly as MindSpore's
    `Resize(..., Inter.LINEAR)` resizes them: by the kernel it calls, OpenCV's `cv::resize`
    with INTER_LINEAR, which releases the GIL while it works."""
    height, width = size
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)


def center_crop(image: np.ndarray, size: Size) -> np.ndarray:
    """The centre `size` (height, width) of `image`, as MindSpore's `CenterCrop`: the offset
    rounded down, and a side shorter than the crop padded with zeros (the odd pixel on top
    or on the left)."""
    height, width = size
    short = [max(height - image.shape[0], 0), max(width - image.shape[1], 0)]
    if any(short):
        image = np.pad(image, [(n - n // 2, n // 2) for n in short] + [(0, 0)])
    top, left = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
    return image[top : top + height, left : left + width]
