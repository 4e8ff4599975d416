"""The zoo's image transforms, in the two families a recipe trains with.

- `cifar`, CIFAR-style (the zoo's for CIFAR-10): training pads the decoded image by 4
  pixels, takes a random crop of its own size, flips, and resizes to `image_size` (not at
  all for 32x32 pixels at 32 px); evaluation resizes to `image_size`, which leaves a 32x32
  image's pixels exactly as they are at 32 px.
- `imagenet`, ImageNet-style (the zoo's for ImageNet): training takes a random resized crop
  (the zoo's `RandomCropDecodeResize`, decoding a JPEG record itself) and flips; evaluation
  resizes the short side to 256/224 of the crop and takes the centre.

Either family takes either kind of record, JPEG bytes or raw pixels, of any size.

What evaluation does is `preprocessing.Preprocessing`'s, which also does it in numpy for a
runtime without MindSpore and describes it in an exported model's `preprocessing.json`;
here it becomes MindSpore's C++ ops. Normalisation uses the recipe's 0-1 statistics scaled
by 255, which equals the zoo's Rescale(1/255) followed by Normalize in one op. Training's
random draws are `randomness`'s, keyed by (seed, epoch, position), so a resumed run crops
and flips what the uninterrupted one did. Which family a recipe uses is its own choice
(`Recipe.transforms`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from mindspore.dataset import vision

from vgg16 import randomness
from vgg16.config import Recipe
from vgg16.preprocessing import Preprocessing


def normalize(recipe: Recipe) -> list:
    """The last ops of every family in evaluation: float32 CHW, normalised by the recipe's
    statistics."""
    spec = Preprocessing.of(recipe)
    return [vision.Normalize(list(spec.mean), list(spec.std)), vision.HWC2CHW()]


class Family(ABC):
    """Training's part of a family; its evaluation is `preprocessing.GEOMETRY`'s."""

    #: Whether training's random part takes pixels (JPEG records decoded first), or decodes
    #: a JPEG record itself.
    augments_pixels: bool

    @abstractmethod
    def augmentation(self, recipe: Recipe, epoch: int) -> randomness.Augment:
        """Training's random part, a function of a batch's records and their positions, to
        pixels of the network's size, before normalisation."""


class CifarStyle(Family):
    augments_pixels = True

    def augmentation(self, recipe: Recipe, epoch: int) -> randomness.Augment:
        size = tuple(recipe.image_size)
        return randomness.CifarAugment(recipe.seed, epoch, size, recipe.random_flip)


class ImagenetStyle(Family):
    augments_pixels = False

    def augmentation(self, recipe: Recipe, epoch: int) -> randomness.Augment:
        size = tuple(recipe.image_size)
        return randomness.ImagenetAugment(recipe.seed, epoch, size, recipe.random_flip)


FAMILIES: dict[str, Family] = {"cifar": CifarStyle(), "imagenet": ImagenetStyle()}


def family(recipe: Recipe) -> Family:
    return FAMILIES[recipe.transforms]


def evaluation(recipe: Recipe, *, normalized: bool = True) -> list:
    """The zoo's evaluation transforms of decoded pixels, of any size: the resize, then the
    centre crop if the family takes one. `normalized=False` stops before normalisation:
    uint8 HWC RGB pixels, as the network sees them."""
    spec = Preprocessing.of(recipe)
    crop = [vision.CenterCrop(spec.center_crop)] if spec.center_crop else []
    last = normalize(recipe) if normalized else []
    return [vision.Resize(spec.resize), *crop, *last]
