"""Evaluation's transforms without MindSpore (`vgg16.preprocessing`) against MindSpore's own
ops, on photographs: equal to the bit, for both families; and `preprocessing.json`."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import sklearn.datasets
from mindspore.dataset import vision
from PIL import Image

from vgg16 import images, transforms
from vgg16.config import load_recipe
from vgg16.preprocessing import Preprocessing, bilinear, center_crop

#: scikit-learn's two sample photographs (427x640 JPEGs): real images of real detail.
PHOTOS = Path(sklearn.datasets.__file__).parent / "images"


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    return [
        np.asarray(Image.open(PHOTOS / name).convert("RGB")) for name in ("china.jpg", "flower.jpg")
    ]


def crops(photos: list[np.ndarray], count: int, seed: int):
    """`count` random crops of the photographs, of random sizes from 1x1 to the whole."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        photo = photos[i % len(photos)]
        height, width = (int(rng.integers(1, side + 1)) for side in photo.shape[:2])
        top = int(rng.integers(0, photo.shape[0] - height + 1))
        left = int(rng.integers(0, photo.shape[1] - width + 1))
        yield rng, np.ascontiguousarray(photo[top : top + height, left : left + width])


def test_bilinear_is_mindspores_resize_to_the_bit(photos):
    """Up and down, by any factor, exact halving (OpenCV's box average) and the same size
    (a copy) included; Pillow's bilinear resize differs by up to 165 levels here."""
    sizes = []
    for rng, image in crops(photos, 240, seed=0):
        height, width = image.shape[:2]
        size = [
            (int(rng.integers(1, 480)), int(rng.integers(1, 480))),
            (max(height // 2, 1), max(width // 2, 1)),
            (height, width),
        ][rng.integers(0, 3) if height > 1 and width > 1 else 0]
        sizes.append(size)
        np.testing.assert_array_equal(bilinear(image, size), vision.Resize(size)(image), str(size))
    assert len(set(sizes)) > 200


def test_a_short_side_resize_gives_mindspores_size(photos):
    for rng, image in crops(photos, 200, seed=1):
        short_side = int(rng.integers(1, 400))
        spec = Preprocessing((32, 32), short_side, None, (0, 0, 0), (1, 1, 1))
        assert spec.resized_size(*image.shape[:2]) == vision.Resize(short_side)(image).shape[:2]


def test_center_crop_is_mindspores_padding_included(photos):
    """A crop larger than the image pads it with zeros, as MindSpore does (up to 3 times
    the image's size, MindSpore's limit)."""
    for rng, image in crops(photos, 200, seed=2):
        size = tuple(int(rng.integers(1, 2 * side + 1)) for side in image.shape[:2])
        np.testing.assert_array_equal(center_crop(image, size), vision.CenterCrop(size)(image))


@pytest.mark.parametrize(
    "recipe",
    [
        load_recipe(dataset="digits"),  # cifar family: resize to 32x32
        load_recipe(dataset="imagenet2012"),  # imagenet family: short side 256, crop 224
        load_recipe(dataset="digits", overrides={"transforms": "imagenet", "image_size": "64,96"}),
    ],
    ids=["cifar", "imagenet", "imagenet-64x96"],
)
def test_the_network_input_is_evaluations_to_the_bit(photos, recipe):
    """Resize, centre crop and normalisation of decoded photographs of many sizes (wide,
    tall, smaller than the network's input, twice its size), and of a 32x32 image, equal
    MindSpore's evaluation ops of the recipe's family, float32 for float32."""
    spec = Preprocessing.of(recipe)
    ops = transforms.evaluation(recipe)
    shapes = [(427, 640), (400, 300), (251, 333), (224, 224), (64, 64), (45, 60), (17, 400)]
    pictures = [np.ascontiguousarray(photos[i % 2][:h, :w]) for i, (h, w) in enumerate(shapes)]
    pictures.append(np.random.default_rng(4).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    for image in pictures:
        want = image
        for op in ops:
            want = op(want)
        got = spec.normalize(spec.pixels(image)[None])[0]
        assert got.dtype == np.float32 and got.shape == (3, *recipe.image_size)
        np.testing.assert_array_equal(got, want, str(image.shape))


def jpeg(image: Image.Image, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", **options)
    return out.getvalue()


def test_pillow_decodes_a_jpeg_record_as_mindspores_decoder(photos, tmp_path):
    """What `predict` decodes with Pillow equals what evaluation decodes with MindSpore's
    `Decode`, for the JPEGs a dataset holds: any quality and chroma subsampling, progressive,
    odd sizes, and a greyscale JPEG (stored as an RGB record, re-encoded)."""
    photo = Image.fromarray(photos[0])
    files = {
        "q95.jpg": jpeg(photo, quality=95),
        "q60-420.jpg": jpeg(photo, quality=60, subsampling=2),
        "q80-422.jpg": jpeg(photo, quality=80, subsampling=1),
        "q75-444.jpg": jpeg(photo, quality=75, subsampling=0),
        "progressive.jpg": jpeg(photo, quality=85, progressive=True),
        "odd.jpg": jpeg(photo.crop((3, 5, 336, 256)), quality=90),
        "grey.jpg": jpeg(photo.convert("L"), quality=90),
        "flower.jpg": (PHOTOS / "flower.jpg").read_bytes(),
    }
    decode = vision.Decode()
    for name, data in files.items():
        path = tmp_path / name
        path.write_bytes(data)
        record = np.frombuffer(images.record_bytes(path), dtype=np.uint8)
        np.testing.assert_array_equal(images.network_input(path), decode(record), name)


def test_preprocessing_json_says_what_evaluation_does():
    """Hand values: the digits demo's statistics (0.19 and 0.33 on the 0-1 scale) and the
    zoo's ImageNet evaluation (short side 256, centre 224)."""
    digits = json.loads(Preprocessing.of(load_recipe(dataset="digits"), "0123456789").to_json(4))
    assert digits == {
        "image_size": [32, 32], "batch_size": 4, "layout": "NCHW", "channel_order": "RGB",
        "dtype": "float32", "resize": {"height": 32, "width": 32},
        "interpolation": "cv2.INTER_LINEAR", "center_crop": None,
        "mean": [0.19 * 255] * 3, "std": [0.33 * 255] * 3, "class_names": list("0123456789"),
    }  # fmt: skip
    imagenet = json.loads(
        Preprocessing.of(load_recipe(dataset="imagenet2012"), ["a", "b"]).to_json(1)
    )
    assert imagenet["resize"] == {"short_side": 256}
    assert imagenet["center_crop"] == {"height": 224, "width": 224}
    assert imagenet["mean"] == [0.485 * 255, 0.456 * 255, 0.406 * 255]


@pytest.mark.parametrize("dataset", ["digits", "imagenet2012"])
def test_preprocessing_json_reads_back_as_written(dataset, tmp_path):
    spec = Preprocessing.of(load_recipe(dataset=dataset), ["猫", "dog"])
    path = tmp_path / "preprocessing.json"
    path.write_text(spec.to_json(8))
    assert Preprocessing.read(path) == spec


#: A key of a good preprocessing.json, a bad value for it (None: the key left out), and
#: what the error says after the file's path.
BAD = {
    "missing": ("mean", None, "key 'mean' is missing"),
    "bgr": ("channel_order", "BGR", "key 'channel_order' is 'BGR'; expected 'RGB'"),
    "zero-std": ("std", [58.6, 0, 58.6], "key 'std' is [58.6, 0, 58.6]; expected 3 numbers"),
    "resize-key": ("resize", {"long_side": 9}, "key 'resize' is {'long_side': 9}; expected"),
    "resize-zero": ("resize", {"short_side": 0}, "key 'resize' is {'short_side': 0}; expected a "
                    "whole number >= 1"),
    "size": ("image_size", [32], "key 'image_size' is [32]; expected a height and a width"),
    "no-classes": ("class_names", [], "key 'class_names' is []; expected a non-empty list"),
    "crop": ("center_crop", [224, 224], "key 'center_crop' is [224, 224]; expected an object "
             "or null"),
    "pillow": ("interpolation", "bilinear", "key 'interpolation' is 'bilinear'; expected "
               "'cv2.INTER_LINEAR'"),
}  # fmt: skip


@pytest.mark.parametrize("key,value,message", BAD.values(), ids=BAD)
def test_a_bad_preprocessing_json_is_refused_naming_the_file_and_key(key, value, message, tmp_path):
    path = tmp_path / "preprocessing.json"
    data = json.loads(Preprocessing.of(load_recipe(dataset="imagenet2012"), ["a"]).to_json(1))
    if value is None:
        del data[key]
    else:
        data[key] = value
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError) as error:
        Preprocessing.read(path)
    assert str(error.value).startswith(f"{path}: {message}")


def test_a_missing_or_unreadable_preprocessing_json_is_named(tmp_path):
    path = tmp_path / "preprocessing.json"
    with pytest.raises(FileNotFoundError, match="preprocessing.json does not exist"):
        Preprocessing.read(path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match=f"{path}: not JSON"):
        Preprocessing.read(path)
