"""Reading a file of the product's own (bounded, never blocking) and writing one where another local user
must not be able to redirect, replace or re-mode it.

One mechanism for every file the product writes (the plugin's state, the exporter's ``--output``):
the folder belongs to root or to this user and is not writable by others (unless sticky, as /tmp
is), and it is reached without a link another user owns (``open_folder``); a new file is created
beside the old one with ``O_EXCL | O_NOFOLLOW``, given its mode on the open descriptor (never through
a name, which a symlink could redirect), written, synced and renamed over the old one within the
folder opened once. A folder that fails is refused with the reason, before anything is written.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable

from .host import MAX_SYMLINKS, kind
from .messages import said

CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, and a read from it for data.
READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class Refused(Exception):
    """The file (or its folder) is not one this run may trust; the text says why."""


def check_folder(st: os.stat_result, shown: str) -> None:
    """A folder another user could swap the file in (or plant it in first) is refused.

    Root's and this user's folders are fine; a sticky world-writable one (/tmp) too, since
    there nobody may rename or remove another user's file.
    """
    uid = os.geteuid()
    if st.st_uid not in (0, uid):
        raise Refused(said("folder_owner", path=shown, owner=st.st_uid, uid=uid))
    if st.st_mode & stat.S_IWOTH and not st.st_mode & stat.S_ISVTX:
        raise Refused(said("folder_writable", path=shown, mode=f"{stat.S_IMODE(st.st_mode):04o}"))


def open_folder(folder: str, strict: bool = False) -> tuple[int, str]:
    """The folder's descriptor and the path it was reached by, once ``check_folder`` accepts it.

    The path is walked from ``/`` one folder at a time, each opened with ``O_NOFOLLOW`` from the one
    before, so nobody can swap a link in on the way; a symlink on it is followed only when root or this
    user owns it (what ``fs.protected_symlinks`` does in sticky folders, everywhere). The folders on the
    way may belong to anyone (Debian's ``/var/lib/prometheus`` is prometheus's): what is written goes
    into the folder opened last, whatever happens to the names above it; only a link's own folder
    must pass ``check_folder``, since a link in a folder another user may rename in could be swapped.
    ``strict`` (the state file) also holds every folder on the way to ``check_folder``.
    """
    uid = os.geteuid()
    # Made absolute without normalising: ".." is taken where the kernel takes it, after a link.
    parts = [part for part in os.path.join(os.getcwd(), folder).split("/") if part]
    fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    shown = "/"
    links = 0
    try:
        if strict:
            check_folder(os.fstat(fd), shown)
        while parts:
            name = parts.pop(0)
            if name in (".", ""):
                continue
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                # Followed only from a folder nobody else may rename in: elsewhere the link could be swapped
                # between this check and its reading.
                check_folder(os.fstat(fd), shown)
                links += 1
                if links > MAX_SYMLINKS:
                    raise Refused(said("link_chain", path=os.path.join(shown, name), count=MAX_SYMLINKS))
                if st.st_uid not in (0, uid):
                    raise Refused(said("link_owner", path=os.path.join(shown, name), owner=st.st_uid, uid=uid))
                target = os.readlink(name, dir_fd=fd)
                if target.startswith("/"):
                    os.close(fd)
                    fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                    shown = "/"
                parts = [part for part in target.split("/") if part] + parts
                continue
            opened = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = opened
            shown = os.path.normpath(os.path.join(shown, name))
            if strict or not parts:
                check_folder(os.fstat(fd), shown)
    except BaseException:
        os.close(fd)
        raise
    return fd, shown


def read(path: str, limit: int, check: Callable[[os.stat_result], None] | None = None) -> bytes:
    """The bytes of ``path`` (the web config, the message catalogue, the cloud API's credentials: files of
    the product's operator), if it is a regular file of at most ``limit`` bytes; a FIFO, device or folder
    there, or a larger file, is refused. ``check`` sees the opened file's status before anything is read
    (and raises ``Refused`` to refuse it): the file judged is the file read. Raises ``Refused`` or ``OSError``."""
    fd = os.open(path, READ_FLAGS)
    try:
        st = os.fstat(fd)
        mode = st.st_mode
        if not stat.S_ISREG(mode):
            raise Refused(said("not_regular", path=path, kind=kind(mode)))
        if check is not None:
            check(st)
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, 65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            size += len(chunk)
        raise Refused(said("too_large", path=path, limit=limit))
    finally:
        os.close(fd)


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
    """``replace`` at ``path``, in a folder ``open_folder`` accepts; a device, FIFO or folder at ``path`` is
    refused (a symlink there is replaced, never written through). Raises ``Refused`` or ``OSError``."""
    folder, name = os.path.split(path)
    if not name or name in (".", ".."):
        raise Refused(said("names_folder"))
    dir_fd, _shown = open_folder(folder)
    try:
        found = lstat(name, dir_fd)
        if found is not None and not (stat.S_ISREG(found.st_mode) or stat.S_ISLNK(found.st_mode)):
            raise Refused(said("not_replaceable", path=os.path.join(_shown, name), kind=kind(found.st_mode)))
        replace(dir_fd, name, data, mode)
    finally:
        os.close(dir_fd)


def lstat(name: str, dir_fd: int) -> os.stat_result | None:
    """What ``name`` is now, without following a symlink; None when it is missing."""
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
