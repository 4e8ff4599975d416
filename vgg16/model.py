"""VGG16 (Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", arXiv 1409.1556), laid out exactly as the MindSpore model zoo's `Vgg` cell.

Parameter names and shapes match the zoo (`layers.<i>.weight`, `layers.<i>.gamma`, ...,
`classifier.<i>.weight|bias`) so that a checkpoint published for the zoo loads with strict
name and shape matching.
"""

from __future__ import annotations

import math

import mindspore as ms
from mindspore import nn, ops
from mindspore.common import initializer as init

from vgg16.config import INITIALIZE_MODES, PAD_MODES, Recipe

#: Output channels of each 3x3 convolution; "M" is a 2x2 max-pool (configuration D).
VGG16_LAYERS: tuple[int | str, ...] = (
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    "M",
)


def make_layers(
    *,
    pad_mode: str,
    padding: int,
    has_bias: bool,
    batch_norm: bool,
    initialize_mode: str,
    frozen: bool = False,
) -> nn.SequentialCell:
    """The convolutional trunk; BatchNorm and ReLU are separate cells, as in the zoo, so the
    cell indices (and therefore the parameter names) line up with its checkpoints. `frozen`:
    BatchNorm always normalises with its moving statistics, and never updates them."""
    layers: list[nn.Cell] = []
    in_channels = 3
    for v in VGG16_LAYERS:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        weight_init = "XavierUniform" if initialize_mode == "XavierUniform" else "HeUniform"
        conv = nn.Conv2d(
            in_channels,
            v,
            kernel_size=3,
            pad_mode=pad_mode,
            padding=padding if pad_mode == "pad" else 0,
            has_bias=has_bias,
            weight_init=weight_init,
        )
        layers.append(conv)
        if batch_norm:
            layers.append(nn.BatchNorm2d(v, use_batch_statistics=False if frozen else None))
        layers.append(nn.ReLU())
        in_channels = v
    return nn.SequentialCell(layers)


#: Inputs of the two dropout layers, the widths of `dropout_keep`'s masks.
DROPOUT_WIDTHS = (4096, 4096)
DROPOUT_P = 0.5
#: Inverted dropout's scale of the units kept.
KEEP_SCALE = 1 / (1 - DROPOUT_P)


class Vgg(nn.Cell):
    """VGG16 with the zoo's classifier: Dense-ReLU-Dropout-Dense-ReLU-Dropout-Dense.

    The first Dense layer's width follows `image_size` (512 x H/32 x W/32) so that the same
    network runs at the zoo's 224 px and at CIFAR's native 32 px.
    """

    def __init__(
        self,
        *,
        num_classes: int = 1000,
        image_size: tuple[int, int] = (224, 224),
        pad_mode: str = "pad",
        padding: int = 1,
        has_bias: bool = True,
        batch_norm: bool = False,
        initialize_mode: str = "KaimingNormal",
        has_dropout: bool = True,
        freeze_features: bool = False,
    ) -> None:
        super().__init__()
        if initialize_mode not in INITIALIZE_MODES:
            raise ValueError(
                f"initialize_mode={initialize_mode!r}: expected one of {INITIALIZE_MODES}"
            )
        if pad_mode not in PAD_MODES:
            raise ValueError(f"pad_mode={pad_mode!r}: expected one of {PAD_MODES}")
        height, width = image_size
        if height % 32 or width % 32:
            raise ValueError(f"image_size={image_size}: both sides must be multiples of 32")
        self.layers = make_layers(
            pad_mode=pad_mode,
            padding=padding,
            has_bias=has_bias,
            batch_norm=batch_norm,
            initialize_mode=initialize_mode,
            frozen=freeze_features,
        )
        # Frozen features (fine-tuning the classifier alone): no gradient reaches them, so
        # training runs no backward pass through the convolutions, and their weights and
        # BatchNorm statistics stay the checkpoint's.
        self.frozen = freeze_features
        for param in self.layers.get_parameters() if freeze_features else []:
            param.requires_grad = False
        self.flatten = nn.Flatten()

        def dropout() -> nn.Cell:
            # Identity keeps the cell indices (classifier.0/3/6) identical either way;
            # nn.Dropout is itself an identity once the net is set to eval mode.
            return nn.Dropout(p=DROPOUT_P) if has_dropout else nn.Identity()

        self.classifier = nn.SequentialCell(
            [
                nn.Dense(512 * (height // 32) * (width // 32), 4096),
                nn.ReLU(),
                dropout(),
                nn.Dense(4096, 4096),
                nn.ReLU(),
                dropout(),
                nn.Dense(4096, num_classes),
            ]
        )
        if initialize_mode == "KaimingNormal":
            self._kaiming_init()

    def _kaiming_init(self) -> None:
        """The zoo's `custom_init_weight`: conv N(0, sqrt(2/fan_out)), dense N(0, 0.01), zero
        biases. Its KaimingNormal(a=sqrt(5), nonlinearity='relu') has gain sqrt(2): `a` only
        matters for leaky_relu."""
        for _, cell in self.cells_and_names():
            if isinstance(cell, nn.Conv2d):
                out_channels, _, kh, kw = cell.weight.shape
                std = math.sqrt(2.0 / (out_channels * kh * kw))
                cell.weight.set_data(init.initializer(init.Normal(std), cell.weight.shape))
            elif isinstance(cell, nn.Dense):
                cell.weight.set_data(init.initializer(init.Normal(0.01), cell.weight.shape))
            else:
                continue
            if cell.bias is not None:
                cell.bias.set_data(init.initializer("zeros", cell.bias.shape))

    def construct(
        self, x: ms.Tensor, keep1: ms.Tensor | None = None, keep2: ms.Tensor | None = None
    ) -> ms.Tensor:
        """`keep1`, `keep2`: which units the two dropout layers keep for this batch (uint8
        0 or 1; the kept ones are scaled by 1/(1-p) here), drawn by the caller from each
        image's position (`randomness.dropout_keep`), so that a resumed run drops what the
        uninterrupted one did. Without them the Dropout cells act: their own random masks in
        training, the identity in eval mode."""
        x = self.flatten(self.layers(x))
        if self.frozen:
            x = ops.stop_gradient(x)
        if keep1 is None:
            return self.classifier(x)
        head = self.classifier
        x = head[1](head[0](x))
        x = x * (ops.cast(keep1, x.dtype) * KEEP_SCALE)
        x = head[4](head[3](x))
        x = x * (ops.cast(keep2, x.dtype) * KEEP_SCALE)
        return head[6](x)


def build_net(recipe: Recipe) -> Vgg:
    return Vgg(
        num_classes=recipe.num_classes,
        image_size=recipe.image_size,
        pad_mode=recipe.pad_mode,
        padding=recipe.padding,
        has_bias=recipe.has_bias,
        batch_norm=recipe.batch_norm,
        initialize_mode=recipe.initialize_mode,
        has_dropout=recipe.has_dropout,
        freeze_features=recipe.freeze == "features",
    )
