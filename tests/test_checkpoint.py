"""Checkpoints: self-describing, atomic, strictly loaded; temporary files are never listed."""

import errno
import hashlib
import os
import re
import zlib
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


def _params(net) -> dict:
    return {p.name: p for p in net.get_parameters()}


def _net(**overrides):
    return build_net(load_recipe(dataset="digits", overrides=overrides))


def _refusal(net, params: dict) -> str:
    with pytest.raises(ValueError) as err:
        checkpoint.load_weights(net, params, source=Path("x.ckpt"))
    return str(err.value)


def test_a_checkpoint_that_does_not_fit_is_refused_naming_its_first_difference(recipe):
    """The first parameter, in the network's order, that differs, and the recipe key behind
    it; the checkpoint's extra names after the network's."""
    prefix = "checkpoint x.ckpt does not fit the network: "
    no_bn = _refusal(build_net(recipe), _params(_net(batch_norm=False)))
    assert no_bn.startswith(prefix + "the network has layers.1.moving_mean (64,), the "
                            "checkpoint has none (BatchNorm: recipe key batch_norm); ")  # fmt: skip
    assert no_bn.endswith(" more parameter(s) differ")
    assert _refusal(build_net(recipe), _params(_net(image_size="64,64"))) == (
        prefix + "the checkpoint has classifier.0.weight (4096, 2048), the network has "
        "(4096, 512) (the classifier's input follows recipe key image_size)"
    )
    assert _refusal(build_net(recipe), _params(_net(num_classes=7))) == (
        prefix + "the checkpoint has classifier.6.weight (7, 4096), the network has (10, 4096) "
        "(the last layer's size is recipe key num_classes); 1 more parameter(s) differ"
    )
    extra = {
        **_params(build_net(recipe)),
        "head.weight": ms.Parameter(ms.Tensor(np.zeros(2, np.float32)), "head.weight"),
    }
    assert _refusal(build_net(recipe), extra) == (
        prefix + "the checkpoint has head.weight (2,), the network has none"
    )
    biased = _refusal(_net(has_bias=True), _params(build_net(recipe)))
    assert biased.startswith(prefix + "the network has layers.0.bias (64,), the checkpoint has "
                             "none (the convolutions' biases: recipe key has_bias); ")  # fmt: skip


def test_a_last_layer_of_another_num_classes_starts_afresh_when_fine_tuning(recipe):
    ten = build_net(recipe)
    seven = _net(num_classes=7)
    before = seven.classifier[6].weight.asnumpy().copy()
    bookkeeping = {name: ms.Parameter(ms.Tensor(np.ones(1, np.int32)), name)
                   for name in ("epoch_num", "step_num", "global_step")}  # fmt: skip
    fresh = checkpoint.load_weights(
        seven, {**_params(ten), **bookkeeping}, source=Path("x.ckpt"), new_head=True
    )
    assert fresh == ["classifier.6.weight", "classifier.6.bias"]
    np.testing.assert_array_equal(seven.layers[0].weight.asnumpy(), ten.layers[0].weight.asnumpy())
    np.testing.assert_array_equal(seven.classifier[6].weight.asnumpy(), before)
    assert checkpoint.load_weights(_net(), _params(ten), source=Path("x"), new_head=True) == []


def test_unreadable_checkpoint_names_the_file(tmp_path: Path):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.ckpt"):
        checkpoint.read(bad)
    with pytest.raises(FileNotFoundError, match="none.ckpt"):
        checkpoint.read(tmp_path / "none.ckpt")


class Tiny(nn.Cell):
    """A two-number "network": a keeper decides files, so no real weights are needed."""

    def __init__(self, value: float = 0.0) -> None:
        super().__init__()
        self.w = ms.Parameter(ms.Tensor(np.full(2, value, np.float32)), name="w")


def _keeper(folder: Path, **settings) -> checkpoint.CheckpointKeeper:
    """Hash "hash-a"; by default 5 epochs, a checkpoint each, all kept, no recovery saves."""
    defaults = {"last_epoch": 5, "keep": 10, "interval": 1, "recovery_steps": 0, "writes": True}
    return checkpoint.CheckpointKeeper(
        folder, "hash-a", describe={"class_names": ["a", "b"]}, **{**defaults, **settings}
    )


def _position(step: int, steps_per_epoch: int = 10, mid_epoch: bool = False) -> dict:
    """The position metadata training passes the keeper (`train.Position.meta`)."""
    losses = [1.0] * (step % steps_per_epoch) if mid_epoch else []
    return {"epoch": -(-step // steps_per_epoch), "step": step,
            "steps_per_epoch": steps_per_epoch, "history": [], "epoch_losses": losses}  # fmt: skip


def _metas(folder: Path) -> dict[str, dict]:
    """Every checkpoint file under `folder` (sub-folders too), by relative path: its metadata."""
    return {
        p.relative_to(folder).as_posix(): checkpoint.read(p, meta_only=True)[1]
        for p in sorted(folder.rglob("*.ckpt"))
        if checkpoint.TMP_DIR not in p.parts
    }


def test_the_keeper_saves_every_interval_and_the_last_epoch_and_keeps_the_newest(tmp_path):
    keeper = _keeper(tmp_path, keep=2, interval=2)
    for epoch in range(1, 6):
        keeper.after_epoch(Tiny(epoch), epoch, _position(epoch * 10), stopping=False)
    metas = _metas(tmp_path)
    assert sorted(metas) == [checkpoint.checkpoint_name(4), checkpoint.checkpoint_name(5)]
    last = metas[checkpoint.checkpoint_name(5)]
    assert last == {**_position(50), "training_hash": "hash-a", "class_names": ["a", "b"],
                    "kind": "epoch"}  # fmt: skip
    params, _ = checkpoint.read(tmp_path / checkpoint.checkpoint_name(4))
    assert params["w"].asnumpy().tolist() == [4.0, 4.0]


def test_the_recovery_checkpoint_rolls_every_recovery_steps_and_an_epoch_checkpoint_ends_it(
    tmp_path,
):
    keeper = _keeper(tmp_path, interval=2, recovery_steps=3)
    recovery = checkpoint.recovery_path(tmp_path).relative_to(tmp_path).as_posix()
    for step in range(1, 10):  # epoch 1: steps 1-9 mid-epoch
        keeper.after_step(Tiny(step), _position(step, mid_epoch=True), stopping=False)
    assert {name: meta["step"] for name, meta in _metas(tmp_path).items()} == {recovery: 9}
    assert _metas(tmp_path)[recovery]["kind"] == "recovery"
    keeper.after_step(Tiny(10), _position(10, mid_epoch=True), stopping=False)
    assert _metas(tmp_path)[recovery]["step"] == 9  # 10 is not a multiple of 3
    keeper.after_epoch(Tiny(10), 1, _position(10), stopping=True)  # not due: recovery instead
    described = {"training_hash": "hash-a", "class_names": ["a", "b"], "kind": "recovery"}
    assert _metas(tmp_path) == {recovery: {**_position(10), **described}}
    keeper.after_step(Tiny(11), _position(11, mid_epoch=True), stopping=True)  # a stop: saved
    assert _metas(tmp_path)[recovery]["step"] == 11
    keeper.after_epoch(Tiny(20), 2, _position(20), stopping=False)
    assert list(_metas(tmp_path)) == [checkpoint.checkpoint_name(2)]
    keeper.after_epoch(Tiny(30), 3, _position(30), stopping=False)  # no epoch save, but due
    assert _metas(tmp_path)[recovery]["step"] == 30


def test_a_resume_takes_the_furthest_checkpoint_whose_position_it_can_take(tmp_path):
    keeper = _keeper(tmp_path / "run" / "ckpt", recovery_steps=1)
    assert keeper.resume_point(10) is None  # nothing yet, and no folder either
    keeper.after_epoch(Tiny(), 1, _position(10), stopping=False)
    keeper.after_epoch(Tiny(), 2, _position(20), stopping=False)
    keeper.after_step(Tiny(), _position(25, mid_epoch=True), stopping=False)
    assert len(_metas(tmp_path)) == 3
    found = keeper.resume_point(10)
    assert (found["path"], found["step"]) == (keeper.recovery, 25)
    # With another global batch (5 steps per epoch) the recovery checkpoint cannot say where
    # in an epoch it is; the end of epoch 2 still can.
    found = keeper.resume_point(5)
    assert (found["path"], found["step"]) == (keeper.epoch_path(2), 20)


def test_checkpoints_of_another_recipe_or_code_are_set_aside_not_deleted(tmp_path, capsys):
    other = checkpoint.CheckpointKeeper(tmp_path, "hash-b", last_epoch=5, keep=10, interval=1,
                                        recovery_steps=1, describe={}, writes=True)  # fmt: skip
    other.after_epoch(Tiny(), 1, _position(10), stopping=False)
    other.after_step(Tiny(), _position(13, mid_epoch=True), stopping=False)
    checkpoint.save(Tiny(), tmp_path / "zoo.ckpt", {})  # no hash at all
    reader = _keeper(tmp_path, writes=False)
    assert reader.resume_point(10) is None
    assert sorted(_metas(tmp_path)) == ["recovery/vgg16-recovery.ckpt", "vgg16-epoch0001.ckpt",
                                        "zoo.ckpt"]  # fmt: skip
    keeper = _keeper(tmp_path)
    assert keeper.resume_point(10) is None
    assert sorted(_metas(tmp_path)) == [
        "previous-hash-b/vgg16-epoch0001.ckpt",
        "previous-hash-b/vgg16-recovery.ckpt",
        "previous-unknown/zoo.ckpt",
    ]
    keeper.after_epoch(Tiny(), 1, _position(10), stopping=False)
    assert keeper.resume_point(10)["path"] == keeper.epoch_path(1)
    assert len(_metas(tmp_path)) == 4  # nothing of hash-b's was lost
    assert "moved zoo.ckpt (another recipe or training code) to" in capsys.readouterr().out


def test_a_keeper_that_does_not_write_leaves_the_folder_alone(tmp_path):
    keeper = _keeper(tmp_path / "ckpt", recovery_steps=1, writes=False)
    keeper.after_step(Tiny(), _position(1, mid_epoch=True), stopping=True)
    keeper.after_epoch(Tiny(), 5, _position(50), stopping=True)
    assert keeper.resume_point(10) is None
    assert not (tmp_path / "ckpt").exists()


def test_publishing_keeps_the_weights_and_metadata_and_drops_the_optimiser_state(
    tmp_path: Path, recipe
):
    """What `select` ships: the network alone (momentum doubles a VGG16 checkpoint)."""
    net = build_net(recipe)
    trained = tmp_path / "ckpt" / "a.ckpt"
    meta = {"epoch": 2, "class_names": [str(d) for d in range(10)]}
    checkpoint.save(_train_cell(net, recipe), trained, meta)
    best = tmp_path / "select" / "best.ckpt"
    checkpoint.publish(trained, best)
    params, got = checkpoint.read(best)
    assert got == meta
    assert set(params) == {p.name for p in net.get_parameters()}
    assert {"global_step", "learning_rate", "momentum"} <= set(checkpoint.read(trained)[0])
    loaded, loaded_meta, _ = checkpoint.load_net(recipe, best)
    assert loaded_meta == meta
    for a, b in zip(net.get_parameters(), loaded.get_parameters(), strict=True):
        np.testing.assert_array_equal(a.asnumpy(), b.asnumpy())


def test_a_recipe_that_leaves_num_classes_open_takes_the_checkpoints(tmp_path: Path):
    """What `predict` and `export` do with a recipe for your own images (num_classes: null)."""
    path = tmp_path / "seven.ckpt"
    checkpoint.save(_net(num_classes=7), path, {"class_names": list("abcdefg")})
    net, meta, fitted = checkpoint.load_net(load_recipe(dataset="folders", overrides={
        "image_size": "32,32", "batch_norm": True, "has_bias": False, "pad_mode": "same",
        "padding": 0}), path)  # fmt: skip
    assert fitted.num_classes == 7 and meta["class_names"] == list("abcdefg")
    assert net.classifier[6].weight.shape == (7, 4096)


def test_class_names_are_the_checkpoints_else_its_class_indices():
    """A zoo checkpoint carries no names: `export` and `predict` name its classes 0..N-1."""
    recipe = load_recipe(dataset="digits", overrides={"num_classes": 3})
    assert checkpoint.class_names({"class_names": ["cat", "dog", "ant"]}, recipe) == [
        "cat", "dog", "ant"
    ]  # fmt: skip
    assert checkpoint.class_names({}, recipe) == ["0", "1", "2"]


def _cut(path: Path, keep: int) -> bytes:
    """`path` cut to its first `keep` bytes; returns them."""
    data = path.read_bytes()[:keep]
    path.chmod(0o644)  # MindSpore leaves checkpoints read-only
    path.write_bytes(data)
    return data


def test_every_checkpoint_ends_in_a_crc_of_what_precedes_it(tmp_path: Path):
    path = tmp_path / "a.ckpt"
    checkpoint.save(Tiny(1.0), path, {"epoch": 1})
    data = path.read_bytes()
    assert data[-17:-10] == b"crc_num"
    assert int.from_bytes(data[-10:], "big") == zlib.crc32(data[:-17])


@pytest.mark.parametrize(
    "damage,reason",
    [
        (lambda data: data[: len(data) // 2], "it cannot be parsed, and it ends without a CRC32"),
        (lambda data: data[:-17], "it ends without a CRC32 (cut short?)"),  # the CRC alone lost
        (lambda data: data[:40] + bytes([data[40] ^ 1]) + data[41:], "CRC32 does not match"),
    ],
    ids=["half", "crc-lost", "one-bit"],
)
def test_a_damaged_checkpoint_is_named_with_the_reason(tmp_path: Path, damage, reason):
    path = tmp_path / "a.ckpt"
    checkpoint.save(Tiny(1.0), path, {"epoch": 1})
    data = damage(path.read_bytes())
    path.chmod(0o644)
    path.write_bytes(data)
    with pytest.raises(checkpoint.Damaged, match=re.escape(reason)) as caught:
        checkpoint.read(path)
    assert str(caught.value).startswith(f"checkpoint {path} is damaged: ")
    with pytest.raises(checkpoint.Damaged, match=re.escape(reason)):
        checkpoint.read(path, meta_only=True)


def test_a_checkpoint_of_ours_must_end_in_its_crc_a_foreign_one_need_not(tmp_path, recipe):
    zoo = tmp_path / "zoo.ckpt"
    ms.save_checkpoint(Tiny(1.0), str(zoo))  # the zoo's: no CRC, no metadata
    assert set(checkpoint.read(zoo)[0]) == {"w"}
    with pytest.raises(checkpoint.Damaged, match=re.escape("it ends without a CRC32")):
        checkpoint.read(zoo, ours=True)  # as the keeper reads its run's folder


def test_a_damaged_newest_checkpoint_is_set_aside_and_the_newest_whole_one_resumed(
    tmp_path, capsys
):
    keeper = _keeper(tmp_path, recovery_steps=3)
    for epoch in (1, 2):
        keeper.after_epoch(Tiny(epoch), epoch, _position(10 * epoch), stopping=False)
    keeper.after_step(Tiny(9), _position(24, mid_epoch=True), stopping=False)
    newest, recovery = keeper.epoch_path(2), keeper.recovery
    cut = _cut(newest, newest.stat().st_size // 2)
    _cut(recovery, recovery.stat().st_size - 1)

    reader = _keeper(tmp_path, writes=False)  # another worker: it skips them, moves nothing
    assert reader.resume_point(10)["path"] == keeper.epoch_path(1)
    assert newest.exists() and recovery.exists()

    assert keeper.resume_point(10)["path"] == keeper.epoch_path(1)
    damaged = tmp_path / checkpoint.DAMAGED_DIR
    assert (damaged / newest.name).read_bytes() == cut  # never deleted, kept as it was
    assert (damaged / recovery.name).is_file()
    assert not newest.exists() and not recovery.exists()
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"moved {newest.name} (damaged: it ends without a CRC32 (cut short?)) to "
        f"{damaged / newest.name}",
        f"moved {recovery.name} (damaged: it ends without a CRC32 (cut short?)) to "
        f"{damaged / recovery.name}",
    ]
    # The same epoch damaged again after the rerun: the first damaged copy is not overwritten.
    for copy, size in [(1, 100), (2, 200)]:
        keeper.after_epoch(Tiny(2), 2, _position(20), stopping=False)
        _cut(newest, size)
        assert keeper.resume_point(10)["path"] == keeper.epoch_path(1)
        assert (damaged / f"{newest.name}.{copy}").stat().st_size == size
    assert (damaged / newest.name).read_bytes() == cut


def test_a_full_disk_during_a_save_leaves_the_earlier_checkpoints_whole(tmp_path, monkeypatch):
    """ENOSPC half-way through writing epoch 2 (as MindSpore meets it: some bytes written,
    then the error): the error reaches the caller, epoch 1 still loads, nothing half-written
    is left to be found by a resume or `select`."""
    keeper = _keeper(tmp_path)
    keeper.after_epoch(Tiny(1.0), 1, _position(10), stopping=False)
    real_save = ms.save_checkpoint

    def disk_full(cell, name, **kwargs):
        """As MindSpore meets it: part of the file written under its own temporary name."""
        real_save(cell, name, **kwargs)
        partial = Path(name).with_suffix(".tmp")
        partial.write_bytes(Path(name).read_bytes()[:50])
        Path(name).chmod(0o644)
        Path(name).unlink()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(partial))

    monkeypatch.setattr(checkpoint.ms, "save_checkpoint", disk_full)
    with pytest.raises(OSError, match="No space left on device") as caught:
        keeper.after_epoch(Tiny(2.0), 2, _position(20), stopping=False)
    assert caught.value.errno == errno.ENOSPC
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        checkpoint.checkpoint_name(1)
    ]
    monkeypatch.undo()
    assert keeper.resume_point(10)["path"] == keeper.epoch_path(1)
    params, _ = checkpoint.read(keeper.epoch_path(1))
    assert params["w"].asnumpy().tolist() == [1.0, 1.0]


def test_a_save_is_durable_file_first_then_its_folder(tmp_path, fsynced):
    """The data must be on disk before the rename that publishes it, and the rename after."""
    path = tmp_path / "ckpt" / "a.ckpt"
    checkpoint.save(Tiny(1.0), path, {"epoch": 1})
    assert fsynced == [path.parent / checkpoint.TMP_DIR / path.name, path.parent]


def test_a_checkpoints_fingerprint_is_the_sha256_of_its_bytes(tmp_path: Path):
    path = tmp_path / "a.ckpt"
    checkpoint.save(Tiny(1.0), path, {"epoch": 1})
    assert checkpoint.fingerprint(path) == hashlib.sha256(path.read_bytes()).hexdigest()
