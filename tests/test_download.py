"""Tests for vgg16.download: checked downloads with retries, safe extraction, materialise.

Everything is local: ``file://`` URLs and, for retries, an http.server on 127.0.0.1.
"""

import contextlib
import hashlib
import http.server
import io
import os
import re
import shutil
import stat
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from vgg16 import download
from vgg16.cli import main
from vgg16.download import fetch, materialise, safe_extract
from vgg16.formats.cifar10 import find_batches, write_batch

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
    write_batch(folder / "data_batch_1.bin", images, np.array([0, 1, 2]))
    write_batch(folder / "test_batch.bin", images[:1], np.array([2]))
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


@pytest.mark.parametrize("algorithm", ["md5", "sha256"])
def test_fetch_wrong_checksum_names_url_and_leaves_nothing(tmp_path: Path, algorithm: str) -> None:
    source = _source(tmp_path)
    actual = hashlib.new(algorithm, PAYLOAD).hexdigest()
    wrong = "0" * len(actual)

    with pytest.raises(ValueError) as excinfo:
        fetch(source.as_uri(), tmp_path / "out" / "data.bin", **{algorithm: wrong})

    assert str(excinfo.value) == (
        f"checksum mismatch for {source.as_uri()}: {algorithm} expected {wrong}, got {actual}"
    )
    assert os.listdir(tmp_path / "out") == []


def test_fetch_names_every_digest_that_differs(tmp_path: Path) -> None:
    source = _source(tmp_path)
    md5, sha256 = hashlib.md5(PAYLOAD).hexdigest(), hashlib.sha256(PAYLOAD).hexdigest()

    with pytest.raises(ValueError) as excinfo:
        fetch(source.as_uri(), tmp_path / "data.bin", md5="0" * 32, sha256="f" * 64)

    assert str(excinfo.value) == (
        f"checksum mismatch for {source.as_uri()}: "
        f"md5 expected {'0' * 32}, got {md5}; sha256 expected {'f' * 64}, got {sha256}"
    )


def test_existing_good_dest_is_not_downloaded_again(tmp_path: Path) -> None:
    source = _source(tmp_path)
    sha256 = hashlib.sha256(PAYLOAD).hexdigest()
    dest = fetch(source.as_uri(), tmp_path / "out" / "data.bin", sha256=sha256)
    source.unlink()

    assert fetch(source.as_uri(), dest, sha256=sha256) == dest
    assert dest.read_bytes() == PAYLOAD


def test_existing_dest_with_wrong_checksum_is_replaced_saying_so(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """The one stderr line names the stale file; a 10 kB download prints no progress."""
    source = _source(tmp_path)
    dest = tmp_path / "out" / "data.bin"
    dest.parent.mkdir()
    dest.write_bytes(b"stale")

    fetch(source.as_uri(), dest, md5=hashlib.md5(PAYLOAD).hexdigest())

    assert dest.read_bytes() == PAYLOAD
    assert capsys.readouterr() == (
        "",
        f"{dest} does not match its checksum; downloading it again\n",
    )


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
    """A download of exactly PROGRESS_MIN_BYTES is not "smaller", so it reports progress."""
    monkeypatch.setattr(download, "PROGRESS_MIN_BYTES", 2 << 20)
    monkeypatch.setattr(download, "CHUNK_BYTES", 1 << 17)  # 16 chunks of a 2 MiB file
    source = _source(tmp_path, bytes(2 << 20))

    fetch(source.as_uri(), tmp_path / "out" / "big.bin")

    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"downloading big.bin: {p}% of 2.0 MiB" for p in range(10, 101, 10)]


class _FlakyHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``body``, failing the first ``failures`` requests in the way ``mode`` names.

    ``mode`` is an HTTP status code ("500", "404", ...) sent instead of the file, "truncated"
    (the connection closes, HTTP/1.0, after half the promised bytes) or "stall" (the headers
    come, then nothing until ``release`` is set). ``send_length=False`` omits Content-Length.
    """

    mode = "500"
    failures = 1
    requests = 0
    body = PAYLOAD
    send_length = True
    release: threading.Event

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        type(self).requests += 1
        failing = type(self).requests <= self.failures
        if failing and self.mode.isdigit():
            self.send_error(int(self.mode))
            return
        self.send_response(200)
        if self.send_length:
            self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        if failing and self.mode == "stall":
            self.wfile.flush()
            self.release.wait(timeout=3)
        with contextlib.suppress(OSError):  # a stalled client has gone
            self.wfile.write(self.body[: len(self.body) // 2] if failing else self.body)

    def log_message(self, *args: object) -> None:
        """Keep the test output quiet."""


@contextmanager
def _server(mode: str, failures: int, **attrs: object) -> Iterator[tuple[str, type[_FlakyHandler]]]:
    """A local HTTP server in a thread; yields the file's URL and the handler class."""
    handler = type(
        "Handler",
        (_FlakyHandler,),
        {"mode": mode, "failures": failures, "release": threading.Event(), **attrs},
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/data.bin", handler
    finally:
        handler.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize("mode", ["500", "503", "408", "429", "truncated"])
def test_fetch_retries_after_a_transient_failure(tmp_path: Path, mode: str) -> None:
    """Server errors, 408 Request Timeout, 429 Too Many Requests and short bodies pass."""
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


def test_fetch_gives_up_after_retries_naming_url_and_each_wait(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Retry n waits n times ``backoff``: 0.1 s, then 0.2 s.

    The server fails 5 times, more than the 3 attempts, yet not forever: if the retry limit
    broke, the test would fail in a second instead of hanging.
    """
    with _server("500", failures=5) as (url, handler), pytest.raises(OSError) as excinfo:
        fetch(url, tmp_path / "data.bin", retries=2, timeout=5, backoff=0.1)

    error = "HTTP Error 500: Internal Server Error"
    assert excinfo.type is OSError
    assert str(excinfo.value) == f"cannot download {url} after 3 attempt(s): {error}"
    assert capsys.readouterr().err.splitlines() == [
        f"download of {url} failed ({error}); retry 1 of 2 in 0.1 s",
        f"download of {url} failed ({error}); retry 2 of 2 in 0.2 s",
    ]
    assert handler.requests == 3
    assert os.listdir(tmp_path) == []


def test_fetch_tries_four_times_by_default(tmp_path: Path) -> None:
    with _server("500", failures=5) as (url, handler), pytest.raises(OSError, match="after 4"):
        fetch(url, tmp_path / "data.bin", timeout=5, backoff=0.01)
    assert handler.requests == 4


def test_truncated_body_every_time_names_the_missing_bytes(tmp_path: Path) -> None:
    with _server("truncated", failures=5) as (url, _), pytest.raises(OSError) as excinfo:
        fetch(url, tmp_path / "data.bin", retries=1, timeout=5, backoff=0.01)

    assert excinfo.type is OSError
    assert str(excinfo.value) == (
        f"cannot download {url} after 2 attempt(s): {url} ended after 5120 of 10240 bytes"
    )
    assert os.listdir(tmp_path) == []


def test_stalled_server_times_out_and_is_retried(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """``timeout`` bounds each wait for data: a server that stops sending is retried."""
    with _server("stall", failures=1) as (url, handler):
        dest = fetch(url, tmp_path / "data.bin", timeout=0.2, backoff=0.01)

    assert handler.requests == 2
    assert dest.read_bytes() == PAYLOAD
    assert capsys.readouterr().err == (
        f"download of {url} failed (timed out); retry 1 of 3 in 0.0 s\n"
    )


def test_unknown_length_download_reports_mib_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Without Content-Length there is no percentage: a line per step (100 MiB, here 1 MiB)."""
    monkeypatch.setattr(download, "_UNKNOWN_LENGTH_STEP", 1 << 20)
    monkeypatch.setattr(download, "CHUNK_BYTES", 1 << 18)
    body = bytes(range(256)) * (5 << 11)  # 2.5 MiB
    with _server("200", failures=0, body=body, send_length=False) as (url, _):
        dest = fetch(url, tmp_path / "big.bin", sha256=hashlib.sha256(body).hexdigest())

    assert dest.read_bytes() == body
    assert capsys.readouterr().err.splitlines() == [
        "downloading big.bin: 1.0 MiB",
        "downloading big.bin: 2.0 MiB",
    ]


@pytest.mark.parametrize(
    ("code", "reason"), [(400, "Bad Request"), (403, "Forbidden"), (404, "Not Found")]
)
def test_http_client_error_is_not_retried(
    tmp_path: Path, capsys: pytest.CaptureFixture, code: int, reason: str
) -> None:
    with _server(str(code), failures=99) as (url, handler), pytest.raises(OSError) as excinfo:
        fetch(url, tmp_path / "data.bin", timeout=5, backoff=0.01)

    assert (
        str(excinfo.value)
        == f"cannot download {url} after 1 attempt(s): HTTP Error {code}: {reason}"
    )
    assert handler.requests == 1
    assert capsys.readouterr().err == ""


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
        (_member("\\windows\\evil"), "absolute path"),
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

    with pytest.raises(
        ValueError, match=rf"bad\.tar: member {re.escape(repr(member.name))}.*{reason}"
    ):
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


def test_zip_with_symlink_member_is_refused(tmp_path: Path) -> None:
    """Zip stores a link as a member whose Unix mode (high 16 bits of external_attr) is S_IFLNK."""
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zip_file:
        zip_file.writestr("good.txt", "ok")
        link = zipfile.ZipInfo("evil")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zip_file.writestr(link, "/etc/passwd")

    with pytest.raises(ValueError) as excinfo:
        safe_extract(archive, tmp_path / "raw")

    assert str(excinfo.value) == f"{archive}: member 'evil' is a symbolic or hard link"
    assert os.listdir(tmp_path) == ["bad.zip"]


def test_tar_members_lose_setuid_and_group_write_bits(tmp_path: Path) -> None:
    """The "data" filter: a downloaded file must not become a setuid or world-writable one."""
    archive = tmp_path / "modes.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("tool.sh")
        info.size, info.mode = 2, 0o6777
        tar.addfile(info, io.BytesIO(b"ok"))

    dest = safe_extract(archive, tmp_path / "raw")

    assert stat.S_IMODE((dest / "tool.sh").stat().st_mode) == 0o755


def test_missing_archive_is_named(tmp_path: Path) -> None:
    archive = tmp_path / "gone.tar"
    with pytest.raises(FileNotFoundError) as excinfo:
        safe_extract(archive, tmp_path / "raw")
    assert str(excinfo.value) == f"archive not found: {archive}"


def test_good_tar_gz_extracts_cifar_layout(tmp_path: Path) -> None:
    source = _cifar_layout(tmp_path / "source")
    archive = _tar_gz(tmp_path / "cifar.tar.gz", source)

    dest = safe_extract(archive, tmp_path / "raw")

    files = find_batches(dest)
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
    assert len(find_batches(dest)["train"]) == 1
    assert (tmp_path / "data" / "downloads" / "cifar.tar.gz").is_file()
    archive.unlink()  # a rerun must use the kept download
    shutil.rmtree(dest)
    assert len(find_batches(materialise("cifar10", dest, url=archive.as_uri(), md5=md5))["test"])


def test_materialise_local_archive_is_extracted_and_checked(tmp_path: Path) -> None:
    archive = _tar_gz(tmp_path / "cifar.tar.gz", _cifar_layout(tmp_path / "source"))

    dest = materialise("cifar10", tmp_path / "raw", data_path=archive)
    assert len(find_batches(dest)["train"]) == 1

    with pytest.raises(ValueError, match=r"cifar\.tar\.gz.*md5"):
        materialise("cifar10", tmp_path / "raw2", data_path=archive, md5="0" * 32)
    assert not (tmp_path / "raw2").exists()


def test_materialise_digits_needs_no_source(tmp_path: Path) -> None:
    dest = materialise("digits", tmp_path / "raw")

    files = find_batches(dest)
    assert [p.name for p in files["train"] + files["test"]] == [
        "data_batch_1.bin",
        "test_batch.bin",
    ]
    assert os.listdir(tmp_path) == ["raw"]  # no staging folder left


def test_materialise_rejects_two_sources_or_none(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="url or data_path, not both"):
        materialise("cifar10", tmp_path / "raw", url="file:///x.tar", data_path=tmp_path)
    with pytest.raises(ValueError) as excinfo:
        materialise("cifar10", tmp_path / "raw")
    assert str(excinfo.value) == (
        "cifar10 needs a source: url or data_path (or archives for imagenet2012; "
        "only digits is built in)"
    )
    assert not (tmp_path / "raw").exists()


@pytest.mark.parametrize("digest", [{"md5": "0" * 32}, {"sha256": "0" * 64}])
def test_materialise_refuses_digests_of_a_folder_or_digits(tmp_path: Path, digest: dict) -> None:
    """A digest can only check an archive: given for a folder it would be silently ignored."""
    with pytest.raises(ValueError) as excinfo:
        materialise("imagenet2012", tmp_path / "raw", data_path=tmp_path, **digest)
    assert str(excinfo.value) == (
        f"imagenet2012: md5/sha256 check an archive (url or data_path file), not {tmp_path}"
    )
    with pytest.raises(ValueError) as excinfo:
        materialise("digits", tmp_path / "raw", **digest)
    assert str(excinfo.value) == (
        "digits: md5/sha256 check an archive (url or data_path file), not the built-in digits"
    )
    assert not (tmp_path / "raw").exists()


def test_materialise_url_without_file_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as excinfo:
        materialise("cifar10", tmp_path / "raw", url="http://127.0.0.1:9/")
    assert str(excinfo.value) == (
        "http://127.0.0.1:9/ names no file to download (expected .../<archive>)"
    )


def test_materialise_missing_data_path_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-imagenet"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        materialise("imagenet2012", tmp_path / "raw", data_path=missing)
    assert not (tmp_path / "raw").exists()


# the `vgg16 download` command ------------------------------------------------------------


def test_download_command_fetches_into_downloads_and_extracts(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    archive = _tar_gz(tmp_path / "cifar.tar.gz", _cifar_layout(tmp_path / "source"))
    data = archive.read_bytes()
    raw, kept = tmp_path / "data" / "raw", tmp_path / "cache"

    code = main(
        ["download", "--dataset", "cifar10", "--url", archive.as_uri(),
         "--md5", hashlib.md5(data).hexdigest(), "--sha256", hashlib.sha256(data).hexdigest(),
         "--downloads", str(kept), "--output", str(raw)]
    )  # fmt: skip

    assert code == 0
    assert capsys.readouterr().out == f"raw cifar10 data in {raw}\n"
    assert os.listdir(kept) == ["cifar.tar.gz"]
    assert os.listdir(raw.parent) == ["raw"]  # nothing kept in the default downloads folder
    assert [p.name for p in find_batches(raw)["test"]] == ["test_batch.bin"]


def test_download_command_builds_digits_without_a_source(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    raw = tmp_path / "raw"

    assert main(["download", "--dataset", "digits", "--output", str(raw)]) == 0

    assert capsys.readouterr().out == f"raw digits data in {raw}\n"
    assert sorted(os.listdir(raw / "cifar-10-batches-bin")) == [
        "batches.meta.txt",
        "data_batch_1.bin",
        "test_batch.bin",
    ]


def test_download_command_reports_every_wrong_digest_of_a_url(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    archive = _tar_gz(tmp_path / "cifar.tar.gz", _cifar_layout(tmp_path / "source"))
    data = archive.read_bytes()
    md5, sha256 = hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest()

    code = main(
        ["download", "--dataset", "cifar10", "--url", archive.as_uri(), "--md5", "0" * 32,
         "--sha256", "0" * 64, "--output", str(tmp_path / "data" / "raw")]
    )  # fmt: skip

    assert code == 1
    assert capsys.readouterr().err == (
        f"vgg16 download: error: checksum mismatch for {archive.as_uri()}: "
        f"md5 expected {'0' * 32}, got {md5}; sha256 expected {'0' * 64}, got {sha256}\n"
    )
    assert os.listdir(tmp_path / "data") == ["downloads"]
    assert os.listdir(tmp_path / "data" / "downloads") == []


def test_download_command_checks_a_local_archive(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    archive = _tar_gz(tmp_path / "cifar.tar.gz", _cifar_layout(tmp_path / "source"))
    sha256 = hashlib.sha256(archive.read_bytes()).hexdigest()

    code = main(
        ["download", "--dataset", "cifar10", "--data_path", str(archive), "--sha256", "0" * 64,
         "--output", str(tmp_path / "raw")]
    )  # fmt: skip

    assert code == 1
    assert capsys.readouterr().err == (
        f"vgg16 download: error: checksum mismatch for {archive}: "
        f"sha256 expected {'0' * 64}, got {sha256}\n"
    )
    assert not (tmp_path / "raw").exists()
