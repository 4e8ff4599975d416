"""VGG16: the zoo's parameter names and shapes, initialisation, forward, gradients, learning."""

import math

import mindspore as ms
import numpy as np
import pytest
from mindspore import ops

from vgg16.config import load_recipe
from vgg16.loss import CrossEntropySmooth
from vgg16.model import build_net
from vgg16.train import build_optimizer

CONV_CHANNELS = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
POOL_AFTER = {1, 3, 6, 9, 12}  # conv positions followed by a max-pool


def zoo_layout(recipe) -> dict[str, tuple[int, ...]]:
    """The zoo's `_make_layer` + classifier naming, walked independently of vgg16.model."""
    shapes, index, in_ch = {}, 0, 3
    for position, out_ch in enumerate(CONV_CHANNELS):
        shapes[f"layers.{index}.weight"] = (out_ch, in_ch, 3, 3)
        if recipe.has_bias:
            shapes[f"layers.{index}.bias"] = (out_ch,)
        index += 1
        if recipe.batch_norm:
            for name in ("moving_mean", "moving_variance", "gamma", "beta"):
                shapes[f"layers.{index}.{name}"] = (out_ch,)
            index += 1
        index += 1  # ReLU
        index += position in POOL_AFTER
        in_ch = out_ch
    h, w = recipe.image_size
    dense = [(512 * (h // 32) * (w // 32), 4096), (4096, 4096), (4096, recipe.num_classes)]
    for i, (fan_in, fan_out) in zip((0, 3, 6), dense, strict=True):
        shapes[f"classifier.{i}.weight"] = (fan_out, fan_in)
        shapes[f"classifier.{i}.bias"] = (fan_out,)
    return shapes


@pytest.mark.parametrize("dataset", ["cifar10", "imagenet2012", "digits"])
def test_parameter_names_and_shapes_match_the_zoo(dataset):
    recipe = load_recipe(dataset=dataset)
    net = build_net(recipe)
    got = {p.name: tuple(p.shape) for p in net.get_parameters()}
    assert got == zoo_layout(recipe)
    trainable = sum(p.size for p in net.trainable_params())
    expected = sum(math.prod(s) for n, s in zoo_layout(recipe).items() if "moving_" not in n)
    assert trainable == expected
    if dataset == "imagenet2012":
        assert trainable == 138_357_544


def test_kaiming_initialisation_of_the_imagenet_recipe():
    """Conv weights N(0, sqrt(2 / fan_out)), fan_out = out_channels x 3 x 3, on layers whose fan-in
    differs from their fan-out (3 -> 64, 64 -> 128, 256 -> 512); dense N(0, 0.01); zero biases."""
    net = build_net(load_recipe(dataset="imagenet2012"))
    params = {p.name: p.asnumpy() for p in net.get_parameters()}
    for name, out_channels in (("layers.0.weight", 64), ("layers.5.weight", 128),
                               ("layers.17.weight", 512)):  # fmt: skip
        conv = params[name]
        assert conv.shape[0] == out_channels and conv.shape[1] != out_channels
        assert conv.std() == pytest.approx(math.sqrt(2 / (out_channels * 9)), rel=0.05), name
        assert abs(conv.mean()) < 0.1 * conv.std()
    for name in ("classifier.0.weight", "classifier.3.weight", "classifier.6.weight"):
        assert params[name].std() == pytest.approx(0.01, rel=0.02), name
    for name in ("layers.0.bias", "layers.28.bias", "classifier.0.bias", "classifier.6.bias"):
        assert not params[name].any(), name


def test_xavier_uniform_bounds_conv_weights():
    net = build_net(load_recipe(dataset="digits"))
    weight = {p.name: p.asnumpy() for p in net.get_parameters()}["layers.3.weight"]
    bound = math.sqrt(6 / (64 * 9 + 64 * 9))
    assert np.abs(weight).max() <= bound
    assert np.abs(weight).max() > 0.95 * bound  # uniform fills the range


@pytest.mark.parametrize(("dataset", "size"), [("digits", 32), ("imagenet2012", 224)])
def test_forward_shapes(pynative, dataset, size):
    recipe = load_recipe(dataset=dataset)
    net = build_net(recipe)
    net.set_train(False)
    x = ms.Tensor(np.random.default_rng(0).standard_normal((2, 3, size, size)), ms.float32)
    out = net(x).asnumpy()
    assert out.shape == (2, recipe.num_classes)
    assert np.isfinite(out).all()


def test_dropout_only_while_training(pynative):
    """Training zeroes half of the classifier's activations and doubles the rest; eval does
    not, and `has_dropout: false` never does."""
    net = build_net(load_recipe(dataset="digits"))
    dropout = net.classifier[2]
    ones = ms.Tensor(np.ones((16, 4096), np.float32))
    net.set_train(True)
    out = dropout(ones).asnumpy()
    assert set(np.unique(out).tolist()) == {0.0, 2.0}
    assert (out == 0).mean() == pytest.approx(0.5, abs=0.02)
    x = ms.Tensor(np.random.default_rng(1).standard_normal((4, 3, 32, 32)), ms.float32)
    assert not np.array_equal(net(x).asnumpy(), net(x).asnumpy())
    net.set_train(False)
    np.testing.assert_array_equal(dropout(ones).asnumpy(), ones.asnumpy())
    np.testing.assert_array_equal(net(x).asnumpy(), net(x).asnumpy())
    no_dropout = build_net(load_recipe(dataset="digits", overrides={"has_dropout": False}))
    no_dropout.set_train(True)
    np.testing.assert_array_equal(no_dropout.classifier[2](ones).asnumpy(), ones.asnumpy())


def test_dropout_flags_given_by_the_caller_replace_the_cells_masks(pynative):
    """With `keep1`, `keep2` (what `randomness.dropout_keep` draws per image), the classifier
    keeps the units they flag, scaled by 2 (p = 0.5), instead of drawing its own masks: the
    same output every time."""
    recipe = load_recipe(dataset="digits", overrides={"batch_norm": False})
    net = build_net(recipe)
    net.set_train(True)
    rng = np.random.default_rng(2)
    x = ms.Tensor(rng.standard_normal((3, 3, 32, 32)), ms.float32)
    keep1, keep2 = ((rng.random((3, 4096)) >= 0.5).astype(np.uint8) for _ in range(2))
    out = net(x, ms.Tensor(keep1), ms.Tensor(keep2)).asnumpy()

    head = net.classifier
    features = net.flatten(net.layers(x))
    hidden = np.maximum(head[0](features).asnumpy(), 0) * keep1 * 2.0
    hidden = np.maximum(head[3](ms.Tensor(hidden, ms.float32)).asnumpy(), 0) * keep2 * 2.0
    want = head[6](ms.Tensor(hidden, ms.float32)).asnumpy()
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)
    again = net(x, ms.Tensor(keep1), ms.Tensor(keep2)).asnumpy()
    np.testing.assert_array_equal(out, again)


def test_every_parameter_receives_a_gradient(pynative):
    recipe = load_recipe(dataset="digits")
    net = build_net(recipe)
    net.set_train(True)
    loss_fn = CrossEntropySmooth(num_classes=10)
    rng = np.random.default_rng(0)
    x = ms.Tensor(rng.standard_normal((8, 3, 32, 32)), ms.float32)
    y = ms.Tensor(np.arange(8) % 10, ms.int32)

    def forward(images, labels):
        return loss_fn(net(images), labels)

    params = net.trainable_params()
    _, grads = ops.value_and_grad(forward, None, params)(x, y)
    dead = [p.name for p, g in zip(params, grads, strict=True) if not np.abs(g.asnumpy()).sum() > 0]
    assert not dead


def test_loss_falls_on_a_fixed_batch():
    """The real train step (graph mode, loss scale, weight-decay groups) fits 16 images."""
    from mindspore.amp import FixedLossScaleManager, build_train_network

    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_seed(0)
    recipe = load_recipe(dataset="digits", overrides={"loss_scale": 8})
    net = build_net(recipe)
    optimizer = build_optimizer(net, recipe, np.full(30, 0.01, dtype=np.float32))
    step = build_train_network(
        net,
        optimizer,
        CrossEntropySmooth(num_classes=10),
        level="O0",
        loss_scale_manager=FixedLossScaleManager(8.0, drop_overflow_update=False),
    )
    step.set_train()
    rng = np.random.default_rng(0)
    x = ms.Tensor(rng.standard_normal((16, 3, 32, 32)), ms.float32)
    y = ms.Tensor(np.arange(16) % 10, ms.int32)
    losses = [float(step(x, y).asnumpy()) for _ in range(12)]
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.5 * losses[0], losses


def test_weight_decay_skips_biases_and_batchnorm():
    recipe = load_recipe(dataset="digits")
    net = build_net(recipe)
    optimizer = build_optimizer(net, recipe, np.full(2, 0.01, dtype=np.float32))
    decayed = {
        p.name for p, wd in zip(optimizer.parameters, optimizer.decay_flags, strict=True) if wd
    }
    names = {p.name for p in net.trainable_params()}
    assert decayed == {n for n in names if not n.endswith((".bias", ".gamma", ".beta"))}
