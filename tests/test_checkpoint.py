"""Checkpoints: self-describing, atomic, strictly loaded; temporary files are never listed."""

import os
from pathlib import Path

import mindspore as ms
import numpy as np
import pytest
from mindspore import nn
from mindspore.train import serialization

from vgg16 import checkpoint
from vgg16.config import load_recipe
from vgg16.model import build_net
from vgg16.train import build_optimizer


@pytest.fixture(scope="module")
def recipe():
    return load_recipe(dataset="digits")


def _train_cell(net, recipe):
    """Weights plus optimiser state, as the zoo's ModelCheckpoint and our train loop save."""
    optimizer = build_optimizer(net, recipe, np.full(4, 0.01, dtype=np.float32))
    return nn.TrainOneStepCell(nn.WithLossCell(net, nn.SoftmaxCrossEntropyWithLogits()), optimizer)


def test_save_is_self_describing_and_lists_only_finished_files(tmp_path: Path, recipe):
    net = build_net(recipe)
    meta = {"epoch": 3, "step": 60, "training_hash": recipe.hash(), "class_names": ["a", "b"]}
    path = tmp_path / checkpoint.checkpoint_name(3)
    checkpoint.save(_train_cell(net, recipe), path, meta)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary left
    # Leftovers of killed saves: ours in .tmp/, MindSpore's own beside the target.
    (tmp_path / checkpoint.TMP_DIR).mkdir()
    (tmp_path / checkpoint.TMP_DIR / checkpoint.checkpoint_name(9)).write_bytes(b"partial")
    (tmp_path / (checkpoint.checkpoint_name(8) + ".tmp")).write_bytes(b"partial")
    assert checkpoint.list_checkpoints(tmp_path) == [path]
    params, got = checkpoint.read(path)
    assert got == meta
    assert "moments.layers.0.weight" in params and "layers.0.weight" in params


def test_strict_load_round_trip(tmp_path: Path, recipe):
    source = build_net(recipe)
    path = tmp_path / "a.ckpt"
    checkpoint.save(_train_cell(source, recipe), path, {"epoch": 1})
    target = build_net(recipe)
    params, _ = checkpoint.read(path)
    checkpoint.load_weights(target, params, source=path)
    for a, b in zip(source.get_parameters(), target.get_parameters(), strict=True):
        np.testing.assert_array_equal(a.asnumpy(), b.asnumpy())


def test_a_full_page_cache_does_not_stop_a_checkpoint_from_loading(tmp_path, recipe, monkeypatch):
    """After a dataset has been read, free pages (MindSpore's "available memory") can be
    fewer than a checkpoint's bytes while the kernel can reclaim plenty: it still loads."""
    path = tmp_path / "a.ckpt"
    checkpoint.save(_train_cell(build_net(recipe), recipe), path, {"epoch": 1})
    sysconf = os.sysconf
    monkeypatch.setattr(
        os, "sysconf", lambda name: 1 if name == "SC_AVPHYS_PAGES" else sysconf(name)
    )
    free = checkpoint._free_pages_only()
    assert free < path.stat().st_size  # MindSpore's own check would refuse this file
    with pytest.raises(ValueError, match="exceeds current available memory"):
        serialization._check_checkpoint_protobuf_size(str(path), path.stat().st_size, free)
    assert checkpoint.available_memory() > path.stat().st_size
    params, meta = checkpoint.read(path)
    assert meta == {"epoch": 1} and "layers.0.weight" in params


def test_zoo_checkpoint_without_metadata_loads(tmp_path: Path, recipe):
    net = build_net(recipe)
    path = tmp_path / "zoo.ckpt"
    ms.save_checkpoint(_train_cell(net, recipe), str(path))
    params, meta = checkpoint.read(path)
    assert meta == {}
    checkpoint.load_weights(build_net(recipe), params, source=path)


def test_missing_unexpected_and_mismatched_names_are_errors(tmp_path: Path, recipe):
    net = build_net(recipe)
    params = {p.name: p for p in net.get_parameters()}
    missing = {k: v for k, v in params.items() if k != "layers.0.weight"}
    with pytest.raises(ValueError, match=r"missing \['layers.0.weight'\]"):
        checkpoint.load_weights(build_net(recipe), missing, source=Path("m.ckpt"))
    extra = {
        **params,
        "head.weight": ms.Parameter(ms.Tensor(np.zeros(2, np.float32)), "head.weight"),
    }
    with pytest.raises(ValueError, match=r"unexpected \['head.weight'\]"):
        checkpoint.load_weights(build_net(recipe), extra, source=Path("u.ckpt"))
    other = build_net(load_recipe(dataset="digits", overrides={"num_classes": 7}))
    with pytest.raises(ValueError, match=r"classifier.6.weight.*--reinit_head"):
        checkpoint.load_weights(
            build_net(recipe), {p.name: p for p in other.get_parameters()}, source=Path("s.ckpt")
        )


def test_reinit_head_keeps_the_trunk_and_a_fresh_last_layer(recipe):
    ten = build_net(recipe)
    seven = build_net(load_recipe(dataset="digits", overrides={"num_classes": 7}))
    before = seven.classifier[6].weight.asnumpy().copy()
    checkpoint.load_weights(
        seven, {p.name: p for p in ten.get_parameters()}, source=Path("x.ckpt"), reinit_head=True
    )
    np.testing.assert_array_equal(seven.layers[0].weight.asnumpy(), ten.layers[0].weight.asnumpy())
    np.testing.assert_array_equal(seven.classifier[6].weight.asnumpy(), before)


def test_unreadable_checkpoint_names_the_file(tmp_path: Path):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.ckpt"):
        checkpoint.read(bad)
    with pytest.raises(FileNotFoundError, match="none.ckpt"):
        checkpoint.read(tmp_path / "none.ckpt")
