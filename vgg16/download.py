"""`vgg16 download`: a dataset's raw layout onto disk: checked downloads, safe extraction,
local sources, and ImageNet's official archives.

Every output appears complete or not at all: downloads go to a ``.part`` file that is renamed
only once its checksum matches, and extraction builds a staged folder that is swapped in on
success (``atomic.staged_dir``). Archives come from the network, so a member that would land
outside the output folder (absolute path, ``..``), a link or a device is refused before anything
is written (``members``). A local folder is linked, not copied, because ImageNet's is 146 GB.
"""

import argparse
import hashlib
import http.client
import os
import stat
import sys
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

from vgg16 import formats
from vgg16.atomic import commit, staged_dir
from vgg16.layout import DataFolder
from vgg16.members import check_member, check_tar_member

CHUNK_BYTES = 1 << 20
BACKOFF_SECONDS = 0.5  # the wait before retry n is n times this
PROGRESS_MIN_BYTES = 16 << 20  # smaller downloads print no progress lines

_UNKNOWN_LENGTH_STEP = 100 << 20  # progress every this many bytes when no Content-Length


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", choices=formats.NAMES, required=True, help="raw layout")
    parser.add_argument("--url", help="archive to fetch (http, https, file)")
    parser.add_argument("--md5", help="expected md5 of the archive")
    parser.add_argument("--sha256", help="expected sha256 of the archive")
    parser.add_argument("--data_path", type=Path, help="local folder or archive instead of a URL")
    parser.add_argument(
        "--archive",
        action="append",
        default=[],
        metavar="KEY=PATH",
        help="imagenet2012 only: the official train, val and devkit files, all three, "
        "instead of a URL or data_path; repeatable",
    )
    parser.add_argument("--downloads", type=Path, help="where fetched archives are kept")
    parser.add_argument("--output", type=Path, required=True, help="raw layout folder to create")


def main(args: argparse.Namespace) -> None:
    path = materialise(
        args.dataset,
        args.output,
        url=args.url,
        md5=args.md5,
        sha256=args.sha256,
        data_path=args.data_path,
        archives=_parse_archives(args.archive, formats.get(args.dataset).archives),
        downloads=args.downloads,
    )
    print(f"raw {args.dataset} data in {path}")


def _parse_archives(pairs: list[str], keys: tuple[str, ...]) -> dict[str, Path] | None:
    """The ``--archive KEY=PATH`` flags as a dict, or None when there are none."""
    if not pairs:
        return None
    archives = {}
    for pair in pairs:
        key, sep, path = pair.partition("=")
        if not sep or not path or key in archives:
            raise ValueError(
                f"--archive {pair!r}: expected KEY=PATH, once for each of {', '.join(keys)}"
            )
        archives[key] = Path(path)
    return archives


def fetch(
    url: str,
    dest: Path,
    *,
    md5: str | None = None,
    sha256: str | None = None,
    retries: int = 3,
    timeout: float = 60.0,
    backoff: float = BACKOFF_SECONDS,
) -> Path:
    """Download ``url`` (http, https or file) to ``dest``, checking the given digests.

    An existing ``dest`` that matches the digests (or any existing ``dest`` when none is given:
    it can only have been written complete) is returned without downloading, so reruns are free.
    Network errors are retried ``retries`` times after the first attempt, waiting ``backoff``
    seconds times the retry number; HTTP 4xx answers (bar 408 and 429) and a missing local file
    fail at once. A digest mismatch raises ValueError and leaves no file behind.
    """
    dest = Path(dest)
    expected = _expected_digests(md5, sha256)
    if dest.is_file():
        if not expected or not _mismatches(_file_digests(dest, expected), expected):
            return dest
        print(f"{dest} does not match its checksum; downloading it again", file=sys.stderr)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        actual = _download(url, part, expected, retries=retries, timeout=timeout, backoff=backoff)
        _check_digests(url, actual, expected)
        commit(part, dest)
    finally:
        part.unlink(missing_ok=True)
    return dest


def _expected_digests(md5: str | None, sha256: str | None) -> dict[str, str]:
    """The digests to check, by hashlib name, lower-cased as hexdigest() writes them."""
    return {algo: value.lower() for algo, value in (("md5", md5), ("sha256", sha256)) if value}


def _check_digests(source: str | Path, actual: dict[str, str], expected: dict[str, str]) -> None:
    """Raise ValueError naming ``source`` and every digest that differs."""
    bad = _mismatches(actual, expected)
    if bad:
        raise ValueError(f"checksum mismatch for {source}: {'; '.join(bad)}")


def _mismatches(actual: dict[str, str], expected: dict[str, str]) -> list[str]:
    """One 'algo expected X, got Y' line per digest that differs."""
    return [
        f"{algo} expected {want}, got {actual[algo]}"
        for algo, want in expected.items()
        if actual[algo] != want
    ]


def _file_digests(path: Path, algorithms: dict[str, str]) -> dict[str, str]:
    """Hex digests of ``path`` for each algorithm named in ``algorithms``, read in chunks."""
    digests = {}
    for algo in algorithms:
        with path.open("rb") as file:
            digests[algo] = hashlib.file_digest(file, algo).hexdigest()
    return digests


def _download(
    url: str,
    part: Path,
    algorithms: dict[str, str],
    *,
    retries: int,
    timeout: float,
    backoff: float,
) -> dict[str, str]:
    """Retry ``_download_once`` on transient errors; return the digests of the complete file."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return _download_once(url, part, algorithms, timeout)
        except (OSError, http.client.HTTPException) as error:
            if _is_permanent(error) or attempt > retries:
                reason = getattr(error, "reason", error)
                kind = FileNotFoundError if isinstance(reason, FileNotFoundError) else OSError
                raise kind(f"cannot download {url} after {attempt} attempt(s): {error}") from error
            wait = backoff * attempt
            print(
                f"download of {url} failed ({error}); retry {attempt} of {retries} in {wait:.1f} s",
                file=sys.stderr,
            )
            time.sleep(wait)


def _is_permanent(error: Exception) -> bool:
    """Whether retrying cannot help: an HTTP client error or a missing local file."""
    if isinstance(error, urllib.error.HTTPError):
        return 400 <= error.code < 500 and error.code not in (408, 429)
    return isinstance(error, urllib.error.URLError) and isinstance(error.reason, FileNotFoundError)


def _download_once(
    url: str, part: Path, algorithms: dict[str, str], timeout: float
) -> dict[str, str]:
    """Stream ``url`` into ``part``, hashing as it goes; a short body raises ConnectionError.

    urllib does not notice a connection closed before Content-Length bytes arrived (``read``
    just returns b""), so the length is checked here to make a truncated body retryable.
    """
    hashes = {algo: hashlib.new(algo) for algo in algorithms}
    with urllib.request.urlopen(url, timeout=timeout) as response, part.open("wb") as out:
        length = response.headers.get("Content-Length")
        total = int(length) if length is not None else None
        done = shown = 0
        while chunk := response.read(CHUNK_BYTES):
            out.write(chunk)
            for digest in hashes.values():
                digest.update(chunk)
            done += len(chunk)
            shown = _progress(part.name.removesuffix(".part"), done, total, shown)
    if total is not None and done != total:
        raise ConnectionError(f"{url} ended after {done} of {total} bytes")
    return {algo: digest.hexdigest() for algo, digest in hashes.items()}


def _progress(name: str, done: int, total: int | None, shown: int) -> int:
    """Print a line each time a tenth of ``total`` (or 100 MiB, if unknown) is passed.

    Returns the step now reached, to be passed back as ``shown``. Downloads known to be smaller
    than PROGRESS_MIN_BYTES stay quiet.
    """
    if total is not None and total < PROGRESS_MIN_BYTES:
        return shown
    step = done * 10 // total if total else done // _UNKNOWN_LENGTH_STEP
    if step > shown:
        where = f"{step * 10}% of {_mib(total)}" if total else _mib(done)
        print(f"downloading {name}: {where}", file=sys.stderr)
    return step


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"


def safe_extract(archive: Path, dest: Path) -> Path:
    """Extract a tar (plain, gz, bz2, xz) or zip ``archive`` into ``dest`` and return ``dest``.

    Every member is checked before anything is written, and extraction goes to a staged folder,
    so a refused or broken archive leaves ``dest`` as it was.
    """
    archive = Path(archive)
    if not archive.is_file():
        raise FileNotFoundError(f"archive not found: {archive}")
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive, mode="r:*") as tar:
            members = tar.getmembers()
            for member in members:
                check_tar_member(archive, member)
            with staged_dir(dest) as tmp:
                tar.extractall(tmp, members=members, filter="data")
    elif zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zip_file:
            for info in zip_file.infolist():
                check_member(archive, info.filename, link=stat.S_ISLNK(info.external_attr >> 16))
            with staged_dir(dest) as tmp:
                zip_file.extractall(tmp)
    else:
        raise ValueError(f"{archive} is not a tar (plain, gz, bz2, xz) or zip archive")
    return dest


def materialise(
    dataset: str,
    dest: Path,
    *,
    url: str | None = None,
    md5: str | None = None,
    sha256: str | None = None,
    data_path: Path | None = None,
    archives: dict[str, Path] | None = None,
    downloads: Path | None = None,
) -> Path:
    """Put the raw layout of ``dataset`` in folder ``dest`` from exactly one source.

    The sources: ``url`` (downloaded into ``downloads``, default ``dest.parent/downloads``, which
    is kept so a rerun does not download again, then extracted), ``data_path`` (an archive,
    extracted, or a folder, linked entry by entry so nothing is copied and removing ``dest``
    removes only links), for ``imagenet2012`` alone ``archives`` (the official ``train``,
    ``val`` and ``devkit`` files, local because ImageNet needs an account, streamed into class
    folders) or, for ``digits`` alone, none (scikit-learn's bundled set). The digests apply to
    the downloaded or local archive; given with any other source they raise ValueError rather
    than being silently ignored.
    """
    dest = Path(dest)
    fmt = formats.get(dataset)
    if archives is not None:
        others = {"url": url, "data_path": data_path, "md5": md5, "sha256": sha256}
        _alone(dataset, [key for key, value in others.items() if value is not None])
        return fmt.from_archives(archives, dest)
    if url is not None and data_path is not None:
        raise ValueError(f"{dataset}: give one source, url or data_path, not both")
    if url is not None:
        name = Path(urllib.parse.unquote(urllib.parse.urlparse(url).path)).name
        if not name:
            raise ValueError(f"{url} names no file to download (expected .../<archive>)")
        folder = Path(downloads) if downloads is not None else DataFolder(dest.parent).downloads
        return safe_extract(fetch(url, folder / name, md5=md5, sha256=sha256), dest)
    if data_path is None and not fmt.builtin:
        raise ValueError(
            f"{dataset} needs a source: url or data_path (or archives for imagenet2012; "
            "only digits is built in)"
        )
    data_path = Path(data_path) if data_path is not None else None
    expected = _expected_digests(md5, sha256)
    if data_path is not None and data_path.is_file():
        _check_digests(data_path, _file_digests(data_path, expected), expected)
        return safe_extract(data_path, dest)
    if data_path is not None and not data_path.is_dir():
        raise FileNotFoundError(f"data_path not found: {data_path} (expected an archive or folder)")
    if expected:
        raise ValueError(
            f"{dataset}: md5/sha256 check an archive (url or data_path file), "
            f"not {data_path or 'the built-in ' + dataset}"
        )
    with staged_dir(dest) as tmp:
        if data_path is None:
            fmt.generate(tmp)
        else:
            _link_entries(data_path, tmp)
    return dest


def _alone(dataset: str, others: list[str]) -> None:
    """Archives are a source of their own: refuse them given with `others`."""
    if others:
        raise ValueError(
            f"{dataset}: archives (--archive) are a source of their own, "
            f"not to be given with {', '.join(others)}"
        )


def _link_entries(source: Path, folder: Path) -> None:
    """Fill ``folder`` with one absolute symlink per top-level entry of ``source``."""
    source = source.resolve()
    for entry in sorted(os.listdir(source)):
        (folder / entry).symlink_to(source / entry)
