"""Writing a file where another local user must not be able to redirect, replace or re-mode it.

One mechanism for every file the product writes (the plugin's state, the exporter's ``--output``):
the folder, and each folder above it, belongs to root or to this user and is not writable by others
(unless sticky, as /tmp is); a new file is created beside the old one with ``O_EXCL | O_NOFOLLOW``,
given its mode on the open descriptor (never through a name, which a symlink could redirect), written,
synced and renamed over the old one within the folder opened once. A folder that fails is refused
with the reason, before anything is written.
"""

from __future__ import annotations

import contextlib
import os
import stat

CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class Refused(Exception):
    """The file (or its folder) is not one this run may trust; the text says why."""


def kind(mode: int) -> str:
    kinds = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    return next((text for test, text in kinds if test(mode)), "not a regular file")


def check_folder(st: os.stat_result, shown: str) -> None:
    """A folder another user could swap the file in (or plant it in first) is refused.

    Root's and this user's folders are fine; a sticky world-writable one (/tmp) too, since
    there nobody may rename or remove another user's file.
    """
    uid = os.geteuid()
    if st.st_uid not in (0, uid):
        raise Refused(f"its folder {shown} is owned by uid {st.st_uid}, neither root nor this user (uid {uid})")
    if st.st_mode & stat.S_IWOTH and not st.st_mode & stat.S_ISVTX:
        raise Refused(f"its folder {shown} is writable by others and not sticky "
                      f"(mode {stat.S_IMODE(st.st_mode):04o})")


def ancestors(folder: str) -> list[str]:
    """``folder`` and every folder above it, up to ``/``."""
    found = [folder]
    while True:
        parent = os.path.dirname(found[-1])
        if parent == found[-1]:
            return found
        found.append(parent)


def open_folder(folder: str) -> tuple[int, str]:
    """The folder's descriptor and real path, once it and every folder above it pass ``check_folder``;
    the descriptor is checked again, so a folder swapped after the checks is refused too."""
    real = os.path.realpath(folder)
    for ancestor in ancestors(real):
        check_folder(os.stat(ancestor), ancestor)
    dir_fd = os.open(real, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        check_folder(os.fstat(dir_fd), real)
    except BaseException:
        os.close(dir_fd)
        raise
    return dir_fd, real


def replace(dir_fd: int, name: str, data: bytes, mode: int) -> None:
    """``name`` in the folder ``dir_fd`` becomes a new regular file holding ``data`` with ``mode``, at once.

    A symlink or file already at ``name`` is replaced, never written through. Readers see the old file or
    the new one, never half of one.
    """
    temporary = f".{name[:200]}.{os.urandom(6).hex()}.tmp"  # not secrets: it imports hashlib, hmac, random
    fd = os.open(temporary, CREATE_FLAGS, 0o600, dir_fd=dir_fd)
    try:
        try:
            os.fchmod(fd, mode)  # on the descriptor: whatever a name leads to later, no other file changes
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=dir_fd)
        raise
    with contextlib.suppress(OSError):  # the rename itself survives a crash (not every system can)
        os.fsync(dir_fd)


def write(path: str, data: bytes, mode: int = 0o644) -> None:
    """``replace`` at ``path``, in a folder ``open_folder`` accepts; raises ``Refused`` or ``OSError``."""
    folder, name = os.path.split(os.path.abspath(path))
    if not name:
        raise Refused("it names a folder, not a file")
    dir_fd, _real = open_folder(folder)
    try:
        replace(dir_fd, name, data, mode)
    finally:
        os.close(dir_fd)
