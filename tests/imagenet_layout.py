"""A generated folder in the seed's ImageNet layout, with the oddities real ImageNet holds.

`train/<wnid>/*.JPEG` and `val/<wnid>/*.JPEG`, mostly RGB JPEGs of textured content, plus
one each of what the real set also contains or what users' own folders do: a greyscale
JPEG, a CMYK JPEG, a PNG named .JPEG, a 16-bit greyscale PNG, a BMP, and a text file that
is not an image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

WNIDS = ("n01440764", "n01443537", "n01484850")


def _picture(rng: np.random.Generator, label: int) -> np.ndarray:
    """A 40x48 image whose colour says its class, so a network can learn something."""
    base = np.zeros((40, 48, 3))
    base[..., label % 3] = 160
    return np.clip(base + rng.normal(0, 40, base.shape), 0, 255).astype(np.uint8)


def write_image_folder(
    root: Path, *, classes: int = 2, train: int = 100, val: int = 4, seed: int = 0
) -> dict[str, int]:
    """Write the layout under `root`; return the image count of each split (train, test)."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", train), ("val", val)):
        for label, wnid in enumerate(WNIDS[:classes]):
            folder = root / split / wnid
            folder.mkdir(parents=True)
            for i in range(count):
                image = Image.fromarray(_picture(rng, label))
                name = folder / f"{wnid}_{i}.JPEG"
                kind = i if split == "train" and label == 0 else None
                if kind == 0:
                    image.convert("L").save(name, format="JPEG")
                elif kind == 1:
                    image.convert("CMYK").save(name, format="JPEG")
                elif kind == 2:
                    image.save(name, format="PNG")  # a PNG named .JPEG
                elif kind == 3:
                    deep = np.asarray(image.convert("L")).astype(np.uint16) * 257
                    Image.fromarray(deep).save(name.with_suffix(".png"))
                elif kind == 4:
                    image.save(name.with_suffix(".bmp"))
                else:
                    image.save(name, format="JPEG", quality=90)
    (root / "train" / WNIDS[0] / "notes.txt").write_text("not an image: skipped and listed")
    return {"train": classes * train, "test": classes * val}
