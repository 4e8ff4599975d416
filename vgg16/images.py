"""Image files decoded in full, one way for every stage, and in parallel for whole datasets.

Opening an image reads only its header, so a truncated JPEG used to pass `verify` and
`prepare` and fail hours into training, inside MindSpore's decoder, naming a MindRecord file
(on a 600-byte truncated JPEG that decoder even dies with SIGFPE). Every file is therefore
decoded to its last pixel by Pillow, which refuses truncated data that MindSpore's decoder
accepts too (a JPEG missing only its end marker), so a file that passes here decodes in
training. `verify` and `prepare` both call `decode_all`, so they refuse the same files with
the same message.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image, UnidentifiedImageError

from vgg16 import _jpeg

T = TypeVar("T")

#: Formats Pillow opens only with a plug-in or program this package does not install.
_NEEDS_HANDLER = frozenset({"BUFR", "EPS", "GRIB", "HDF5", "MPEG", "WMF"})
Image.init()
#: Every extension of a format Pillow decodes by itself; other files in a class folder are
#: skipped, and listed as such.
IMAGE_EXTENSIONS = frozenset(
    ext
    for ext, fmt in Image.registered_extensions().items()
    if fmt in Image.OPEN and fmt not in _NEEDS_HANDLER
)
#: Re-encoding quality for the images that are not already RGB JPEGs.
JPEG_QUALITY = 95

_SIXTEEN_BIT = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
_CHUNK = 16  # images per task sent to a worker: amortises the pipe, keeps progress smooth
_PROGRESS_EVERY = 10_000


class BadImages(ValueError):
    """Images that cannot be decoded, every one of them with its reason, sorted by path (so
    that `verify` and `prepare` give the same message)."""

    def __init__(self, bad: list[tuple[Path, str]]) -> None:
        self.bad = sorted(bad)
        lines = "".join(f"\n  {path}: {reason}" for path, reason in bad)
        super().__init__(f"{len(bad)} image file(s) cannot be decoded:{lines}")


def _rgb(image: Image.Image) -> Image.Image:
    """The image as 8-bit RGB. Pillow's own conversion clips 16-bit greyscale to white, so
    16-bit data are scaled to 0..255 here (v / 257, rounded: 65535 becomes 255)."""
    if image.mode in _SIXTEEN_BIT:
        pixels = np.asarray(image, dtype=np.int64)
        if pixels.min(initial=0) < 0 or pixels.max(initial=0) > 0xFFFF:
            raise ValueError(f"{image.mode} pixels outside 0..65535 (not 16-bit image data)")
        image = Image.fromarray(np.rint(pixels / 257).astype(np.uint8), mode="L")
    elif image.mode == "F":
        raise ValueError("floating-point pixels have no fixed range to map to 0..255")
    return image if image.mode == "RGB" else image.convert("RGB")


def _decoded(data: bytes) -> tuple[Image.Image, str, str]:
    """Decode every pixel of `data`; return the RGB image, the file's format and mode."""
    if not data:
        raise ValueError("empty file (0 bytes)")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return _rgb(image), image.format, image.mode
    except UnidentifiedImageError:
        raise ValueError("not an image Pillow can read") from None
    except (OSError, SyntaxError, Image.DecompressionBombError) as error:
        raise ValueError(f"cannot be decoded ({error})") from None


def _named(path: Path, decode: Callable[[bytes], T]) -> T:
    try:
        return decode(Path(path).read_bytes())
    except ValueError as error:
        raise BadImages([(Path(path), str(error))]) from None


def _as_record(data: bytes, image: Image.Image, fmt: str, mode: str) -> bytes:
    if (fmt, mode) == ("JPEG", "RGB"):
        return data  # stored as it is, without the loss of re-encoding
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def _record(data: bytes) -> bytes:
    return _as_record(data, *_decoded(data))


def record_bytes(path: Path) -> bytes:
    """What a record stores for the image in `path`: an RGB JPEG, so that every record
    decodes to three channels in MindSpore. An RGB JPEG is stored unchanged; anything else
    (greyscale, CMYK, 16-bit, a PNG named .JPEG, as found in ImageNet) is converted and
    encoded at quality JPEG_QUALITY. Raises BadImages naming the file if it does not decode."""
    return _named(path, _record)


def _network_input(data: bytes) -> np.ndarray:
    image, fmt, mode = _decoded(data)
    record = _as_record(data, image, fmt, mode) if fmt == "JPEG" else data
    if record is data:  # any format but a JPEG that is not RGB, which is stored re-encoded
        return np.asarray(image)
    with Image.open(io.BytesIO(record)) as stored:
        return np.asarray(stored)


def network_input(path: Path) -> np.ndarray:
    """What evaluation would feed its transforms for `path`, as (H, W, 3) uint8 RGB pixels:
    a JPEG decoded from its record (`record_bytes`), as evaluation decodes records, and any
    other format's own pixels, never re-encoded (a lossy JPEG round trip moved digits
    probabilities by up to 0.135). Pillow decodes the record: its libjpeg-turbo gives
    MindSpore's `Decode`'s pixels, to the bit (`tests/test_preprocessing.py`)."""
    return _named(path, _network_input)


_SOI = b"\xff\xd8"  # a JPEG's first marker


def _jpeg_header(data: memoryview) -> tuple[int, int, bool] | None:
    """A JPEG record's (width, height, whether libjpeg makes RGB of it); None for another
    format."""
    return _jpeg.header(data) if data[:2] == _SOI else None


def record_size(record: np.ndarray) -> tuple[int, int]:
    """An encoded record's (width, height), from its header alone."""
    header = _jpeg_header(memoryview(record))
    if header is not None:
        return header[:2]
    with Image.open(io.BytesIO(record.tobytes())) as image:
        return image.size


def dct_scale(size: tuple[int, int], at_least: tuple[int, int]) -> int:
    """The smallest DCT scale, in eighths, at which libjpeg decodes an image of `size`
    (width, height) to at least `at_least` pixels each way; 8 (full size) at most."""
    for eighths in range(1, 8):
        width, height = _at_scale(size, eighths)
        if width >= at_least[0] and height >= at_least[1]:
            return eighths
    return 8


def _at_scale(size: tuple[int, int], eighths: int) -> tuple[int, int]:
    """libjpeg's output size at a DCT scale: rounded up."""
    return -(-size[0] * eighths // 8), -(-size[1] * eighths // 8)


Box = tuple[int, int, int, int]


def scaled_box(box: Box, full: tuple[int, int], scaled: tuple[int, int]) -> Box:
    """A (left, top, right, bottom) box of the image at `full` (width, height) as (left,
    top, width, height) of the same image at `scaled`: at least one pixel, inside it."""
    left, top, right, bottom = box
    sx, sy = scaled[0] / full[0], scaled[1] / full[1]
    x, y = min(round(left * sx), scaled[0] - 1), min(round(top * sy), scaled[1] - 1)
    width = max(1, min(round((right - left) * sx), scaled[0] - x))
    height = max(1, min(round((bottom - top) * sy), scaled[1] - y))
    return x, y, width, height


def decode_record(
    record: np.ndarray, at_least: tuple[int, int] | None = None, box: Box | None = None
) -> np.ndarray:
    """An encoded record (MindRecord's bytes, checked when prepared) as HWC uint8 RGB pixels:
    at full size, or a JPEG at the smallest DCT scale (in eighths) that keeps at least
    `at_least` (width, height) pixels; with `box` (left, top, right, bottom, in the full
    image's pixels), only that box as it lies at that scale (`scaled_box`).

    JPEGs go to the system's libjpeg-turbo through `vgg16._jpeg`, which decodes only the
    box's rows and columns, as MindSpore's `RandomCropDecodeResize` does (0.75 against 0.92
    ms for a training crop of a 500x375 photo decoded whole), with the GIL released; its
    pixels are those of the whole image, to the bit, and Pillow's. Pillow decodes the CMYK
    JPEGs libjpeg makes no RGB of, and other formats, in full (halved by `draft` where
    `at_least` allows). Warnings are ignored, as Pillow ignores them: `verify` and `prepare`
    already refused what Pillow cannot decode in full."""
    data = memoryview(record)
    header = _jpeg_header(data)
    if header is not None and header[2]:
        full = header[:2]
        scale = 8 if at_least is None else dct_scale(full, at_least)
        scaled = _at_scale(full, scale)
        x, y, width, height = (0, 0, *scaled) if box is None else scaled_box(box, full, scaled)
        pixels = _jpeg.decode_crop(data, scale, x, y, width, height)
        return np.frombuffer(pixels, dtype=np.uint8).reshape(height, width, 3)
    with Image.open(io.BytesIO(record.tobytes())) as image:
        full = image.size
        if at_least is not None:  # JPEGs only, at 1/2, 1/4 or 1/8
            image.draft("RGB", (max(1, at_least[0]), max(1, at_least[1])))
        pixels = np.asarray(image.convert("RGB"))
    if box is None:
        return pixels
    x, y, width, height = scaled_box(box, full, (pixels.shape[1], pixels.shape[0]))
    return pixels[y : y + height, x : x + width]


def check(path: Path) -> None:
    """Raise BadImages unless every pixel of `path` decodes."""
    _named(path, _decoded)


def _attempt(work: Callable[[Path], T], path: Path) -> tuple[T | None, str | None]:
    try:
        return work(path), None
    except BadImages as error:
        return None, error.bad[0][1]


def cpus() -> int:
    """The cores this process may use: a SLURM allocation's or `taskset`'s, not the node's.
    The package's one rule for how many processes or threads to start."""
    return len(os.sched_getaffinity(0))


def decode_all(
    work: Callable[[Path], T], paths: Sequence[Path], what: str
) -> Iterator[tuple[int, T]]:
    """`work(path)` for every path, in order, over all cores; (position in `paths`, result)
    of each good file is yielded, and BadImages lists every bad one once all are done.
    Progress goes to stderr, as `what: done/total images, rate`, because ImageNet's 1.33
    million take a while.

    Worker processes are spawned rather than forked: the caller may have MindSpore's
    threads running. `work` must be a module-level function (it is pickled)."""
    if not paths:
        return
    bad = []
    start = time.monotonic()
    context = multiprocessing.get_context("spawn")
    with context.Pool(min(cpus(), max(1, len(paths) // _CHUNK))) as pool:
        results = pool.imap(partial(_attempt, work), paths, chunksize=_CHUNK)
        for done, (path, (value, reason)) in enumerate(zip(paths, results, strict=True), 1):
            if reason is None:
                yield done - 1, value
            else:
                bad.append((Path(path), reason))
            if done % _PROGRESS_EVERY == 0 or done == len(paths):
                rate = done / max(time.monotonic() - start, 1e-9)
                print(
                    f"{what}: decoded {done}/{len(paths)} images, {rate:.0f} img/s, {len(bad)} bad",
                    file=sys.stderr,
                )
    if bad:
        raise BadImages(bad)
