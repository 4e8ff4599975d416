"""Tests for vgg16.download: checked downloads with retries, safe extraction, materialise.

Everything is local: ``file://`` URLs and, for retries, an http.server on 127.0.0.1.
"""

import hashlib
import http.server
import io
import os
import re
import shutil
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from vgg16 import download
from vgg16.download import fetch, materialise, safe_extract
from vgg16.readers import find_cifar_files, write_cifar_batch

PAYLOAD = bytes(range(256)) * 40


def _source(tmp_path: Path, data: bytes = PAYLOAD) -> Path:
    path = tmp_path / "source" / "data.bin"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _cifar_layout(root: Path) -> Path:
    """A two-file CIFAR binary layout under ``root/cifar-10-batches-bin``; returns ``root``."""
    folder = root / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    images = np.arange(3 * 32 * 32 * 3, dtype=np.int64).reshape(3, 32, 32, 3).astype(np.uint8)
    write_cifar_batch(folder / "data_batch_1.bin", images, np.array([0, 1, 2]))
    write_cifar_batch(folder / "test_batch.bin", images[:1], np.array([2]))
    return root


def _tar_gz(path: Path, folder: Path) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        tar.add(folder / "cifar-10-batches-bin", arcname="cifar-10-batches-bin")
    return path


# fetch ------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["md5", "sha256"])
def test_fetch_file_url_with_right_checksum(tmp_path: Path, algorithm: str) -> None:
    source = _source(tmp_path)
    digest = hashlib.new(algorithm, PAYLOAD).hexdigest().upper()  # case does not matter

    dest = fetch(source.as_uri(), tmp_path / "out" / "data.bin", **{algorithm: digest})

    assert dest == tmp_path / "out" / "data.bin"
    assert dest.read_bytes() == PAYLOAD
    assert os.listdir(dest.parent) == ["data.bin"]  # no .part left


def test_fetch_wrong_checksum_names_url_and_leaves_nothing(tmp_path: Path) -> None:
    source = _source(tmp_path)
    actual = hashlib.md5(PAYLOAD).hexdigest()

    with pytest.raises(ValueError, match=rf"{re.escape(source.as_uri())}.*md5.*0{{32}}.*{actual}"):
        fetch(source.as_uri(), tmp_path / "out" / "data.bin", md5="0" * 32)

    assert os.listdir(tmp_path / "out") == []


def test_existing_good_dest_is_not_downloaded_again(tmp_path: Path) -> None:
    source = _source(tmp_path)
    sha256 = hashlib.sha256(PAYLOAD).hexdigest()
    dest = fetch(source.as_uri(), tmp_path / "out" / "data.bin", sha256=sha256)
    source.unlink()

    assert fetch(source.as_uri(), dest, sha256=sha256) == dest
    assert dest.read_bytes() == PAYLOAD


def test_existing_dest_with_wrong_checksum_is_replaced(tmp_path: Path) -> None:
    source = _source(tmp_path)
    dest = tmp_path / "out" / "data.bin"
    dest.parent.mkdir()
    dest.write_bytes(b"stale")

    fetch(source.as_uri(), dest, md5=hashlib.md5(PAYLOAD).hexdigest())

    assert dest.read_bytes() == PAYLOAD


def test_missing_local_file_fails_without_retry_naming_url(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    url = (tmp_path / "nowhere.tar").as_uri()
    with pytest.raises(FileNotFoundError, match=re.escape(url)):
        fetch(url, tmp_path / "out" / "x.tar", backoff=0.01)
    assert "retry" not in capsys.readouterr().err


def test_progress_lines_every_tenth_on_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(download, "PROGRESS_MIN_BYTES", 0)
    monkeypatch.setattr(download, "CHUNK_BYTES", 1 << 17)  # 16 chunks of a 2 MiB file
    source = _source(tmp_path, bytes(2 << 20))

    fetch(source.as_uri(), tmp_path / "out" / "big.bin")

    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"downloading big.bin: {p}% of 2.0 MiB" for p in range(10, 101, 10)]


class _FlakyHandler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD, failing the first ``failures`` requests in the way ``mode`` names."""

    mode = "500"
    failures = 1
    requests = 0

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        type(self).requests += 1
        failing = type(self).requests <= self.failures
        if failing and self.mode in ("500", "404"):
            self.send_error(int(self.mode))
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        # "truncated": the connection closes (HTTP/1.0) after half the promised bytes
        self.wfile.write(PAYLOAD[: len(PAYLOAD) // 2] if failing else PAYLOAD)

    def log_message(self, *args: object) -> None:
        """Keep the test output quiet."""


@contextmanager
def _server(mode: str, failures: int) -> Iterator[tuple[str, type[_FlakyHandler]]]:
    """A local HTTP server in a thread; yields the file's URL and the handler class."""
    handler = type("Handler", (_FlakyHandler,), {"mode": mode, "failures": failures})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/data.bin", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize("mode", ["500", "truncated"])
def test_fetch_retries_after_a_failed_request(tmp_path: Path, mode: str) -> None:
    with _server(mode, failures=1) as (url, handler):
        dest = fetch(
            url,
            tmp_path / "data.bin",
            md5=hashlib.md5(PAYLOAD).hexdigest(),
            timeout=5,
            backoff=0.01,
        )
    assert handler.requests == 2
    assert dest.read_bytes() == PAYLOAD


def test_fetch_gives_up_after_retries_naming_url(tmp_path: Path) -> None:
    with _server("500", failures=99) as (url, handler), pytest.raises(OSError, match=url):
        fetch(url, tmp_path / "data.bin", retries=2, timeout=5, backoff=0.01)
    assert handler.requests == 3
    assert os.listdir(tmp_path) == []


def test_http_client_error_is_not_retried(tmp_path: Path) -> None:
    with _server("404", failures=99) as (url, handler), pytest.raises(OSError, match="404"):
        fetch(url, tmp_path / "data.bin", timeout=5, backoff=0.01)
    assert handler.requests == 1


# safe_extract ------------------------------------------------------------------------------


def _tar_with(path: Path, bad: tarfile.TarInfo) -> Path:
    """A tar holding one good file, then ``bad``."""
    with tarfile.open(path, "w") as tar:
        good = tarfile.TarInfo("good.txt")
        good.size = 2
        tar.addfile(good, io.BytesIO(b"ok"))
        tar.addfile(bad, io.BytesIO(b"evil") if bad.isreg() else None)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    info.size = 4 if kind == tarfile.REGTYPE else 0
    return info


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        (_member("../evil"), "'..' component"),
        (_member("data/../../evil"), "'..' component"),
        (_member("/tmp/evil"), "absolute path"),
        (_member("evil", tarfile.SYMTYPE, "/etc/passwd"), "link"),
        (_member("evil", tarfile.LNKTYPE, "good.txt"), "link"),
        (_member("evil", tarfile.FIFOTYPE), "device or fifo"),
    ],
)
def test_unsafe_tar_member_is_refused_before_extracting(
    tmp_path: Path, member: tarfile.TarInfo, reason: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    archive = _tar_with(work / "bad.tar", member)

    with pytest.raises(ValueError, match=rf"bad\.tar.*{re.escape(member.name)}.*{reason}"):
        safe_extract(archive, work / "raw")

    assert os.listdir(work) == ["bad.tar"]  # no dest, no staging folder, no ../evil


def test_zip_with_dotdot_member_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zip_file:
        zip_file.writestr("good.txt", "ok")
        zip_file.writestr("../evil", "evil")

    with pytest.raises(ValueError, match=r"bad\.zip.*\.\./evil"):
        safe_extract(archive, tmp_path / "raw")

    assert os.listdir(tmp_path) == ["bad.zip"]


def test_good_tar_gz_extracts_cifar_layout(tmp_path: Path) -> None:
    source = _cifar_layout(tmp_path / "source")
    archive = _tar_gz(tmp_path / "cifar.tar.gz", source)

    dest = safe_extract(archive, tmp_path / "raw")

    files = find_cifar_files(dest)
    assert [p.name for p in files["train"]] == ["data_batch_1.bin"]
    for path in files["train"] + files["test"]:
        assert path.read_bytes() == (source / "cifar-10-batches-bin" / path.name).read_bytes()
    assert sorted(os.listdir(tmp_path)) == ["cifar.tar.gz", "raw", "source"]


def test_good_zip_extracts(tmp_path: Path) -> None:
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zip_file:
        zip_file.writestr("a/b.txt", "hello")

    assert (safe_extract(archive, tmp_path / "raw") / "a" / "b.txt").read_text() == "hello"


def test_unknown_archive_type_names_file(tmp_path: Path) -> None:
    archive = tmp_path / "notes.txt"
    archive.write_text("not an archive")
    with pytest.raises(ValueError, match=r"notes\.txt is not a tar"):
        safe_extract(archive, tmp_path / "raw")
    assert not (tmp_path / "raw").exists()


# materialise -------------------------------------------------------------------------------


def test_materialise_folder_links_entries_without_copying(tmp_path: Path) -> None:
    source = tmp_path / "imagenet"
    for split in ("train", "val"):
        (source / split / "n01").mkdir(parents=True)
    (source / "LICENSE").write_text("x")

    dest = materialise("imagenet2012", tmp_path / "raw", data_path=source)

    assert sorted(os.listdir(dest)) == ["LICENSE", "train", "val"]
    for name in ("LICENSE", "train", "val"):
        link = dest / name
        assert link.is_symlink() and Path(os.readlink(link)) == (source / name).resolve()
        assert Path(os.readlink(link)).is_absolute()
    shutil.rmtree(dest)
    assert (source / "train" / "n01").is_dir() and (source / "LICENSE").is_file()


def test_materialise_url_extracts_and_keeps_the_download(tmp_path: Path) -> None:
    archive = _tar_gz(tmp_path / "cifar.tar.gz", _cifar_layout(tmp_path / "source"))
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()

    dest = materialise("cifar10", tmp_path / "data" / "raw", url=archive.as_uri(), md5=md5)

    assert dest == tmp_path / "data" / "raw"
    assert len(find_cifar_files(dest)["train"]) == 1
    assert (tmp_path / "data" / "downloads" / "cifar.tar.gz").is_file()
    archive.unlink()  # a rerun must use the kept download
    shutil.rmtree(dest)
    assert len(
        find_cifar_files(materialise("cifar10", dest, url=archive.as_uri(), md5=md5))["test"]
    )


def test_materialise_local_archive_is_extracted_and_checked(tmp_path: Path) -> None:
    archive = _tar_gz(tmp_path / "cifar.tar.gz", _cifar_layout(tmp_path / "source"))

    dest = materialise("cifar10", tmp_path / "raw", data_path=archive)
    assert len(find_cifar_files(dest)["train"]) == 1

    with pytest.raises(ValueError, match=r"cifar\.tar\.gz.*md5"):
        materialise("cifar10", tmp_path / "raw2", data_path=archive, md5="0" * 32)
    assert not (tmp_path / "raw2").exists()


def test_materialise_digits_needs_no_source(tmp_path: Path) -> None:
    dest = materialise("digits", tmp_path / "raw")

    files = find_cifar_files(dest)
    assert [p.name for p in files["train"] + files["test"]] == [
        "data_batch_1.bin",
        "test_batch.bin",
    ]
    assert os.listdir(tmp_path) == ["raw"]  # no staging folder left


def test_materialise_rejects_two_sources_or_none(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="url or data_path, not both"):
        materialise("cifar10", tmp_path / "raw", url="file:///x.tar", data_path=tmp_path)
    with pytest.raises(ValueError, match="cifar10 needs a source: url or data_path"):
        materialise("cifar10", tmp_path / "raw")
    with pytest.raises(ValueError, match="md5/sha256"):
        materialise("imagenet2012", tmp_path / "raw", data_path=tmp_path, md5="0" * 32)
    assert not (tmp_path / "raw").exists()


def test_materialise_missing_data_path_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-imagenet"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        materialise("imagenet2012", tmp_path / "raw", data_path=missing)
    assert not (tmp_path / "raw").exists()
