"""Tests for vgg16.imagenet_archives: the official ImageNet2012 files, streamed into class
folders, on a miniature with the real files' names and layout (tests/imagenet_miniature.py)."""

import os
import re
import tarfile
from pathlib import Path

import pytest
from imagenet_miniature import (
    DEVKIT_DATA,
    INNER_NODE,
    VAL_WNIDS,
    class_synsets,
    devkit_bytes,
    expected_tree,
    ground_truth,
    meta_mat,
    tar_bytes,
    train_images,
    train_members,
    val_images,
    write_archives,
)
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from vgg16 import imagenet_archives
from vgg16.cli import main
from vgg16.formats import check_source
from vgg16.imagenet_archives import extract_imagenet

SCHEMA = Path(__file__).resolve().parent.parent / "workflow" / "schemas" / "config.schema.yaml"
GROUND_TRUTH = f"{DEVKIT_DATA}/ILSVRC2012_validation_ground_truth.txt"


@pytest.fixture
def archives(tmp_path: Path) -> dict[str, Path]:
    return write_archives(tmp_path / "archives")


def _extract(archives: dict[str, Path], dest: Path) -> Path:
    return extract_imagenet(archives["train"], archives["val"], archives["devkit"], dest)


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in folder.rglob("*")
        if path.is_file()
    }


def test_extraction_gives_the_class_folder_tree_byte_for_byte(
    archives: dict[str, Path], tmp_path: Path
) -> None:
    dest = _extract(archives, tmp_path / "work" / "raw")

    assert dest == tmp_path / "work" / "raw"
    assert _tree(dest) == expected_tree()
    assert sorted(os.listdir(dest)) == ["train", "val"]
    assert os.listdir(tmp_path / "work") == ["raw"]  # no staging folder left


def test_val_images_land_in_the_class_of_their_ground_truth_line(
    archives: dict[str, Path], tmp_path: Path
) -> None:
    """Ground truth 450, 442, 449, 449, 442, 450; meta.mat: 442 shark, 449 tench, 450 goldfish."""
    assert ground_truth() == "450\n442\n449\n449\n442\n450\n"

    dest = _extract(archives, tmp_path / "raw")

    assert {wnid: sorted(os.listdir(dest / "val" / wnid)) for wnid in os.listdir(dest / "val")} == {
        "n01443537": ["ILSVRC2012_val_00000001.JPEG", "ILSVRC2012_val_00000006.JPEG"],
        "n01484850": ["ILSVRC2012_val_00000002.JPEG", "ILSVRC2012_val_00000005.JPEG"],
        "n01440764": ["ILSVRC2012_val_00000003.JPEG", "ILSVRC2012_val_00000004.JPEG"],
    }
    assert (dest / "val" / "n01484850" / "ILSVRC2012_val_00000002.JPEG").read_bytes() == (
        val_images()["ILSVRC2012_val_00000002.JPEG"]
    )


def test_progress_lines_count_class_tars_and_images(
    archives: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    monkeypatch.setattr(imagenet_archives, "TRAIN_PROGRESS_EVERY", 2)
    monkeypatch.setattr(imagenet_archives, "VAL_PROGRESS_EVERY", 4)

    _extract(archives, tmp_path / "raw")

    assert capsys.readouterr() == (
        "",
        "val: 4 of 6 images\n"
        "val: 6 of 6 images\n"
        "train: 2 of 3 class tars, 6 images\n"
        "train: 3 of 3 class tars, 9 images\n",
    )


def test_archives_are_streamed_never_opened_for_random_access(
    archives: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stream ("r|") reads each archive once, front to back, as the 138 GB train tar must be
    read: a random-access open lists or seeks, and extracting the outer tar first writes it all
    to disk. Each class tar is read from the outer stream, not from a file or a buffer."""
    opened = []
    real_open = tarfile.open

    def recording_open(name=None, mode="r", fileobj=None, **kwargs):
        source = Path(name).name if name is not None else type(fileobj).__name__
        opened.append((source, mode))
        return real_open(name, mode, fileobj, **kwargs)

    def refuse(self, *args, **kwargs):
        raise AssertionError("an archive was extracted to disk whole")

    monkeypatch.setattr(tarfile, "open", recording_open)
    monkeypatch.setattr(tarfile.TarFile, "extractall", refuse)
    monkeypatch.setattr(tarfile.TarFile, "extract", refuse)

    dest = _extract(archives, tmp_path / "raw")

    assert opened == [
        ("ILSVRC2012_devkit_t12.tar.gz", "r:*"),  # 2.5 MB, read whole
        ("ILSVRC2012_img_val.tar", "r|*"),
        ("ILSVRC2012_img_train.tar", "r|*"),
        *[("ExFileObject", "r|*")] * 3,  # what the outer tar's extractfile returns
    ]
    assert _tree(dest) == expected_tree()


# refused archives ---------------------------------------------------------------------------


def _rewrite_train(archives: dict[str, Path], members: list) -> None:
    archives["train"].write_bytes(tar_bytes(members))


def _rewrite_val(archives: dict[str, Path], members: list) -> None:
    archives["val"].write_bytes(tar_bytes(members))


def _rewrite_devkit(archives: dict[str, Path], truth: str, synsets: list | None = None) -> None:
    archives["devkit"].write_bytes(devkit_bytes(truth, synsets or class_synsets()))


def _info(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


def _dotdot_class_tar(a: dict[str, Path]) -> str:
    _rewrite_train(a, [*train_members(train_images()), ("../n01440764.tar", tar_bytes([]))])
    return f"{a['train']}: member '../n01440764.tar' has a '..' component"


def _absolute_val_image(a: dict[str, Path]) -> str:
    _rewrite_val(a, [("/tmp/ILSVRC2012_val_00000001.JPEG", b"x"), *val_images().items()])
    return f"{a['val']}: member '/tmp/ILSVRC2012_val_00000001.JPEG' has an absolute path"


def _symlink_val_image(a: dict[str, Path]) -> str:
    link = _info("ILSVRC2012_val_00000001.JPEG", tarfile.SYMTYPE, "/etc/passwd")
    _rewrite_val(a, [(link, b""), *list(val_images().items())[1:]])
    return f"{a['val']}: member 'ILSVRC2012_val_00000001.JPEG' is a symbolic or hard link"


def _hard_link_in_class_tar(a: dict[str, Path]) -> str:
    images = train_images()
    link = _info("n01440764_9.JPEG", tarfile.LNKTYPE, "n01440764_10026.JPEG")
    members = [
        (f"{w}.tar", tar_bytes([*files.items(), (link, b"")])) for w, files in images.items()
    ]
    _rewrite_train(a, members)
    return f"{a['train']} (n01440764.tar): member 'n01440764_9.JPEG' is a symbolic or hard link"


def _fifo_in_train(a: dict[str, Path]) -> str:
    _rewrite_train(a, [(_info("n01440764.tar", tarfile.FIFOTYPE), b"")])
    return f"{a['train']}: member 'n01440764.tar' is a device or fifo"


def _image_in_a_folder_of_a_class_tar(a: dict[str, Path]) -> str:
    images = train_images()
    images["n01443537"]["sub/n01443537_1.JPEG"] = b"x"
    _rewrite_train(a, train_members(images))
    return (
        f"{a['train']} (n01443537.tar): member 'sub/n01443537_1.JPEG' is in a folder "
        "(expected none)"
    )


def _class_tar_in_a_folder(a: dict[str, Path]) -> str:
    members = train_members(train_images())
    _rewrite_train(a, [(f"train/{name}", data) for name, data in members])
    return f"{a['train']}: member 'train/n01440764.tar' is in a folder (expected none)"


def _folder_in_val(a: dict[str, Path]) -> str:
    _rewrite_val(a, [(_info("val", tarfile.DIRTYPE), b""), *val_images().items()])
    return f"{a['val']}: member 'val' is not a regular file"


def _class_tar_of_no_devkit_class(a: dict[str, Path]) -> str:
    _rewrite_train(a, [*train_members(train_images()), ("n02512053.tar", tar_bytes([]))])
    return f"{a['train']}: member 'n02512053.tar' is not <wnid>.tar of a devkit class"


def _class_tar_not_a_tar(a: dict[str, Path]) -> str:
    _rewrite_train(a, [("n01440764.zip", b"x")])
    return f"{a['train']}: member 'n01440764.zip' is not <wnid>.tar of a devkit class"


def _class_tar_twice(a: dict[str, Path]) -> str:
    members = train_members(train_images())
    _rewrite_train(a, [*members, members[0]])
    return f"{a['train']}: member 'n01440764.tar' appears twice"


def _val_image_twice(a: dict[str, Path]) -> str:
    images = list(val_images().items())
    _rewrite_val(a, [*images, images[2]])
    return f"{a['val']}: member 'ILSVRC2012_val_00000003.JPEG' appears twice"


def _val_image_beyond_the_ground_truth(a: dict[str, Path]) -> str:
    _rewrite_val(a, [*val_images().items(), ("ILSVRC2012_val_00000007.JPEG", b"x")])
    return (
        f"{a['val']}: member 'ILSVRC2012_val_00000007.JPEG' is not ILSVRC2012_val_<8 digits>.<ext> "
        "numbered 1 to 6 (the lines of the ground truth)"
    )


def _misnamed_val_image(a: dict[str, Path]) -> str:
    _rewrite_val(a, [("ILSVRC2012_val_1.JPEG", b"x")])
    return (
        f"{a['val']}: member 'ILSVRC2012_val_1.JPEG' is not ILSVRC2012_val_<8 digits>.<ext> "
        "numbered 1 to 6 (the lines of the ground truth)"
    )


def _ground_truth_missing_its_last_line(a: dict[str, Path]) -> str:
    _rewrite_devkit(a, ground_truth(VAL_WNIDS[:-1]))
    return (
        f"{a['val']}: member 'ILSVRC2012_val_00000006.JPEG' is not ILSVRC2012_val_<8 digits>.<ext> "
        "numbered 1 to 5 (the lines of the ground truth)"
    )


def _ground_truth_naming_an_id_meta_lacks(a: dict[str, Path]) -> str:
    _rewrite_devkit(a, "450\n7\n")
    return (
        f"{a['devkit']}: line 2 of {GROUND_TRUTH} is '7', not a class id of {DEVKIT_DATA}/meta.mat"
    )


def _ground_truth_naming_an_inner_node(a: dict[str, Path]) -> str:
    _rewrite_devkit(a, f"{INNER_NODE['ILSVRC2012_ID']}\n")
    return (
        f"{a['devkit']}: line 1 of {GROUND_TRUTH} is '1001', "
        f"not a class id of {DEVKIT_DATA}/meta.mat"
    )


def _devkit_without_meta(a: dict[str, Path]) -> str:
    members = [(GROUND_TRUTH, ground_truth().encode())]
    a["devkit"].write_bytes(tar_bytes(members, mode="w:gz"))
    return (
        f"{a['devkit']} holds no file {DEVKIT_DATA}/meta.mat (is it ILSVRC2012_devkit_t12.tar.gz?)"
    )


def _devkit_without_ground_truth(a: dict[str, Path]) -> str:
    members = [(f"{DEVKIT_DATA}/meta.mat", meta_mat(class_synsets()))]
    a["devkit"].write_bytes(tar_bytes(members, mode="w:gz"))
    return f"{a['devkit']} holds no file {GROUND_TRUTH} (is it ILSVRC2012_devkit_t12.tar.gz?)"


def _ground_truth_line_not_a_number(a: dict[str, Path]) -> str:
    _rewrite_devkit(a, "450\nn01440764\n")
    return (
        f"{a['devkit']}: line 2 of {GROUND_TRUTH} is 'n01440764', "
        f"not a class id of {DEVKIT_DATA}/meta.mat"
    )


def _image_twice_in_a_class_tar(a: dict[str, Path]) -> str:
    images = train_images()
    members = train_members(images)
    twice = list(images["n01443537"].items())
    members[1] = ("n01443537.tar", tar_bytes([*twice, twice[0]]))
    _rewrite_train(a, members)
    return f"{a['train']} (n01443537.tar): member 'n01443537_10026.JPEG' appears twice"


def _val_image_missing(a: dict[str, Path]) -> str:
    _rewrite_val(a, list(val_images().items())[:-1])
    return f"{a['val']} holds 5 images; the ground truth lists 6"


def _class_tar_missing(a: dict[str, Path]) -> str:
    """What a train tar cut off at a member boundary reads as: a shorter tar."""
    _rewrite_train(a, train_members(train_images())[:2])
    return f"{a['train']} holds 2 of the devkit's 3 class tars; missing n01484850"


def _train_tar_cut_mid_way(a: dict[str, Path]) -> str:
    data = a["train"].read_bytes()
    a["train"].write_bytes(data[: len(data) // 2 + 100])
    return rf"{re.escape(str(a['train']))} \(n01443537\.tar\) is damaged or truncated: "


BAD_ARCHIVES = [
    _dotdot_class_tar,
    _absolute_val_image,
    _symlink_val_image,
    _hard_link_in_class_tar,
    _fifo_in_train,
    _image_in_a_folder_of_a_class_tar,
    _class_tar_in_a_folder,
    _folder_in_val,
    _class_tar_of_no_devkit_class,
    _class_tar_not_a_tar,
    _class_tar_twice,
    _val_image_twice,
    _val_image_beyond_the_ground_truth,
    _misnamed_val_image,
    _ground_truth_missing_its_last_line,
    _ground_truth_naming_an_id_meta_lacks,
    _ground_truth_naming_an_inner_node,
    _devkit_without_meta,
    _devkit_without_ground_truth,
    _ground_truth_line_not_a_number,
    _image_twice_in_a_class_tar,
    _val_image_missing,
    _class_tar_missing,
]


@pytest.mark.parametrize("damage", BAD_ARCHIVES, ids=lambda f: f.__name__.strip("_"))
def test_a_bad_archive_is_refused_naming_it_and_leaves_no_folder(
    archives: dict[str, Path], tmp_path: Path, damage
) -> None:
    message = damage(archives)
    work = tmp_path / "work"
    work.mkdir()

    with pytest.raises(ValueError) as excinfo:
        _extract(archives, work / "raw")

    assert str(excinfo.value) == message
    assert os.listdir(work) == []


def test_a_train_tar_cut_mid_way_fails_and_keeps_the_previous_folder(
    archives: dict[str, Path], tmp_path: Path
) -> None:
    """The cut falls inside the second class tar, after the val images and a class were
    written to the staging folder: none of that may replace or appear as ``raw``."""
    previous = tmp_path / "work" / "raw"
    previous.mkdir(parents=True)
    (previous / "from-the-last-run.txt").write_text("complete")
    message = _train_tar_cut_mid_way(archives)

    with pytest.raises(ValueError, match=f"^{message}"):
        _extract(archives, previous)

    assert os.listdir(tmp_path / "work") == ["raw"]
    assert _tree(previous) == {"from-the-last-run.txt": b"complete"}


@pytest.mark.parametrize("key", ["devkit", "val", "train"])
def test_an_archive_that_is_no_tar_is_named_as_damaged(
    archives: dict[str, Path], tmp_path: Path, key: str
) -> None:
    archives[key].write_bytes(b"<html>503 Service Unavailable</html>\n" * 40)

    with pytest.raises(ValueError, match=f"^{re.escape(str(archives[key]))} is damaged or "):
        _extract(archives, tmp_path / "raw")

    assert not (tmp_path / "raw").exists()


def test_class_ids_1_and_1000_are_classes(archives: dict[str, Path], tmp_path: Path) -> None:
    """The devkit's classes are ids 1 to 1000, both ends included (tench is id 1 and toilet
    tissue id 1000 in the real devkit)."""
    ids = {"n01440764": 1, "n01443537": 1000, "n01484850": 442}
    synsets = [
        {**s, "ILSVRC2012_ID": ids.get(s["WNID"], s["ILSVRC2012_ID"])} for s in class_synsets()
    ]
    _rewrite_devkit(archives, "".join(f"{ids[wnid]}\n" for wnid in VAL_WNIDS), synsets)

    dest = _extract(archives, tmp_path / "raw")

    assert _tree(dest) == expected_tree()


@pytest.mark.parametrize(
    ("extra", "missing"),
    [
        (2, "n01484850, n09000000, n09000001"),
        (3, "n01484850, n09000000, n09000001, ..."),
    ],
)
def test_missing_class_tars_are_named_up_to_three(
    archives: dict[str, Path], tmp_path: Path, extra: int, missing: str
) -> None:
    """Devkit classes with no tar in a train tar of n01440764 and n01443537 only."""
    more = [
        {"ILSVRC2012_ID": 500 + i, "WNID": f"n0900000{i}", "words": "more", "num_children": 0,
         "children": [], "wordnet_height": 0, "num_train_images": 1}
        for i in range(extra)
    ]  # fmt: skip
    _rewrite_devkit(archives, ground_truth(), [*class_synsets(), *more])
    _rewrite_train(archives, train_members(train_images())[:2])

    with pytest.raises(ValueError) as excinfo:
        _extract(archives, tmp_path / "raw")

    assert str(excinfo.value) == (
        f"{archives['train']} holds 2 of the devkit's {3 + extra} class tars; missing {missing}"
    )


def test_a_missing_archive_is_named(archives: dict[str, Path], tmp_path: Path) -> None:
    archives["val"].unlink()
    with pytest.raises(FileNotFoundError) as excinfo:
        _extract(archives, tmp_path / "raw")
    assert str(excinfo.value) == (
        f"ImageNet val archive (ILSVRC2012_img_val.tar) not found: {archives['val']}"
    )
    assert not (tmp_path / "raw").exists()


# the `vgg16 download` command --------------------------------------------------------------


def _flags(archives: dict[str, Path]) -> list[str]:
    return [x for key, path in archives.items() for x in ("--archive", f"{key}={path}")]


def test_download_command_extracts_the_archives(
    archives: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    raw = tmp_path / "data" / "raw"

    code = main(["download", "--dataset", "imagenet2012", *_flags(archives), "--output", str(raw)])

    assert code == 0
    assert capsys.readouterr().out == f"raw imagenet2012 data in {raw}\n"
    assert _tree(raw) == expected_tree()
    assert os.listdir(raw.parent) == ["raw"]  # no downloads folder: nothing was fetched


def test_download_command_takes_archive_paths_with_an_equals_sign(
    archives: dict[str, Path], tmp_path: Path
) -> None:
    """Only the first "=" of KEY=PATH separates the key."""
    folder = tmp_path / "imagenet=2012"
    archives["devkit"].parent.rename(folder)
    moved = {key: folder / path.name for key, path in archives.items()}

    code = main(
        ["download", "--dataset", "imagenet2012", *_flags(moved), "--output", str(tmp_path / "raw")]
    )

    assert code == 0
    assert _tree(tmp_path / "raw") == expected_tree()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda flags: flags[:4],
            "imagenet2012: archives (--archive KEY=PATH) need the keys ['train', 'val', 'devkit'],"
            " got ['train', 'val']",
        ),
        (
            lambda flags: [*flags, "--archive", "test=x.tar"],
            "imagenet2012: archives (--archive KEY=PATH) need the keys ['train', 'val', 'devkit'],"
            " got ['devkit', 'test', 'train', 'val']",
        ),
        (
            lambda flags: [*flags, "--archive", "train"],
            "--archive 'train': expected KEY=PATH, once for each of train, val, devkit",
        ),
        (
            lambda flags: [*flags[:-1], "devkit="],
            "--archive 'devkit=': expected KEY=PATH, once for each of train, val, devkit",
        ),
        (
            lambda flags: [*flags, "--sha256", "0" * 64],
            "imagenet2012: archives (--archive) are a source of their own, "
            "not to be given with sha256",
        ),
        (
            lambda flags: [*flags, "--archive", "train=other.tar"],
            "--archive 'train=other.tar': expected KEY=PATH, once for each of train, val, devkit",
        ),
        (
            lambda flags: [*flags, "--data_path", "imagenet"],
            "imagenet2012: archives (--archive) are a source of their own, "
            "not to be given with data_path",
        ),
        (
            lambda flags: [*flags, "--url", "file:///x.tar", "--md5", "0" * 32],
            "imagenet2012: archives (--archive) are a source of their own, "
            "not to be given with url, md5",
        ),
        (
            lambda flags: [*flags, "--dataset", "cifar10"],
            "cifar10: archives (--archive) are ImageNet2012's files; use url or data_path",
        ),
    ],
)
def test_download_command_refuses_archive_flags_naming_what_is_expected(
    archives: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture, change, message
) -> None:
    flags = change(_flags(archives))

    code = main(
        ["download", "--dataset", "imagenet2012", *flags, "--output", str(tmp_path / "raw")]
    )

    assert code == 1
    assert capsys.readouterr().err == f"vgg16 download: error: {message}\n"
    assert not (tmp_path / "raw").exists()


def test_download_command_names_a_missing_archive(
    archives: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    archives["devkit"] = tmp_path / "nowhere.tar.gz"

    code = main(
        ["download", "--dataset", "imagenet2012", *_flags(archives),
         "--output", str(tmp_path / "raw")]
    )  # fmt: skip

    assert code == 1
    assert capsys.readouterr().err == (
        "vgg16 download: error: ImageNet devkit archive (ILSVRC2012_devkit_t12.tar.gz) "
        f"not found: {tmp_path / 'nowhere.tar.gz'}\n"
    )


# the workflow config ------------------------------------------------------------------------

ARCHIVES_SPEC = {
    "format": "imagenet2012",
    "archives": {"train": "/d/train.tar", "val": "/d/val.tar", "devkit": "/d/devkit.tar.gz"},
}


def _validate(dataset: dict) -> None:
    config = {"datasets": {"in1k": dataset}, "runs": {"r": {"dataset": "in1k", "recipe": "r.yaml"}}}
    validate(config, str(SCHEMA))


def test_config_schema_accepts_archives_as_the_source() -> None:
    _validate(dict(ARCHIVES_SPEC))


@pytest.mark.parametrize(
    "change",
    [
        {"data_path": "/d/imagenet"},
        {"url": "https://example.org/imagenet.tar", "md5": "0" * 32},
        {"sha256": "0" * 64},
        {"archives": {"train": "/d/train.tar", "val": "/d/val.tar"}},
        {"archives": {**ARCHIVES_SPEC["archives"], "test": "/d/test.tar"}},
        {"archives": {**ARCHIVES_SPEC["archives"], "val": 7}},
    ],
    ids=["data_path", "url", "sha256", "no devkit", "unknown key", "not a path"],
)
def test_config_schema_refuses_archives_with_another_source_or_the_wrong_keys(
    change: dict,
) -> None:
    with pytest.raises(WorkflowError):
        _validate({**ARCHIVES_SPEC, **change})


def test_a_dataset_entry_must_give_a_source_its_format_takes() -> None:
    """Checked when the workflow is parsed (`formats.check_source`), from each format's own
    word: archives are imagenet2012's, and only digits needs no source."""
    check_source(dict(ARCHIVES_SPEC))
    check_source({"format": "digits"})
    with pytest.raises(ValueError, match="^archives are the official files of a format that "):
        check_source({**ARCHIVES_SPEC, "format": "cifar10"})
    for fmt in ("imagenet2012", "cifar10", "folders"):
        with pytest.raises(ValueError, match=f"^a {fmt} dataset needs a source: url or data_path$"):
            check_source({"format": fmt})
