"""The offline demo: scikit-learn's 1,797 handwritten digits written in CIFAR-10's layout.

The bundled 8x8 images (values 0..16) are real data that need no download: scaled to 0..255,
upscaled to 32x32 (bilinear) and replicated to RGB, they take CIFAR-10's reader and transforms
unchanged. A seeded stratified 80/20 split gives `data_batch_1.bin` and `test_batch.bin`;
class names "0".."9" go to `batches.meta.txt`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vgg16.atomic import staged_dir
from vgg16.formats.cifar10 import FOLDER, META, SIDE, Cifar10, write_batch


class Digits(Cifar10):
    name = "digits"
    official_counts = None
    builtin = True

    def generate(self, dest: Path) -> Path:
        return write_digits(dest)


def write_digits(dest: Path, seed: int = 0) -> Path:
    """Write the digits as a CIFAR-10 binary layout in `dest`; return its batches folder."""
    from PIL import Image  # here, like scikit-learn: the workflow imports formats when parsed
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    small = np.rint(digits.images * (255 / 16)).astype(np.uint8)
    grey = np.stack(
        [
            np.asarray(Image.fromarray(img).resize((SIDE, SIDE), Image.Resampling.BILINEAR))
            for img in small
        ]
    )
    images = np.repeat(grey[..., None], 3, axis=-1)
    labels = digits.target.astype(np.int32)
    train, test = train_test_split(
        np.arange(len(labels)), test_size=0.2, stratify=labels, random_state=seed
    )
    final = Path(dest) / FOLDER
    with staged_dir(final) as tmp:
        for name, index in (("data_batch_1.bin", train), ("test_batch.bin", test)):
            index = np.sort(index)
            write_batch(tmp / name, images[index], labels[index])
        (tmp / META).write_text("".join(f"{c}\n" for c in digits.target_names))
    return final


FORMAT = Digits()
