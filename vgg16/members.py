"""Archive members that are safe to extract: the one check of every archive this package opens.

Archives come from the network, so a member that would land outside the output folder
(absolute path, ``..``), a link or a device is refused before anything is written. Both
``download.safe_extract`` and the streamed ImageNet extraction (``imagenet_archives``) call
these, which is why they live apart from either.
"""

import tarfile
from pathlib import Path, PurePosixPath


def check_member(archive: Path | str, name: str, *, link: bool) -> None:
    """Refuse a member that could write outside the output folder; ``archive`` names it."""
    if name.startswith(("/", "\\")):
        raise ValueError(f"{archive}: member {name!r} has an absolute path")
    if ".." in PurePosixPath(name).parts:
        raise ValueError(f"{archive}: member {name!r} has a '..' component")
    if link:
        raise ValueError(f"{archive}: member {name!r} is a symbolic or hard link")


def check_tar_member(archive: Path | str, member: tarfile.TarInfo) -> None:
    """``check_member`` for a tar member, which may also be a device or fifo."""
    check_member(archive, member.name, link=member.issym() or member.islnk())
    if member.isdev():
        raise ValueError(f"{archive}: member {member.name!r} is a device or fifo")
