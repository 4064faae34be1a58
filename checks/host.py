"""The host under test: one root directory through which every read goes.

Like node_exporter's ``--path.rootfs``, the checks can judge the live machine
(``/``) or a copy of another machine's files. Absolute symlinks are resolved
inside the root, so a tree never leads the checks onto the machine running
them. Reads are bounded in size and walks in depth.

Some 450 lines for one concern, reading the root safely: ``Host`` resolves paths within the root
and ``Folder`` reads many files below one open directory (``/proc``). They share the no-follow
walk and the regular-file checks, which must stay in one place.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, BinaryIO

from .messages import Localized, said

if TYPE_CHECKING:
    from .programs import CommandResult, Running

MAX_READ = 1 << 20  # 1 MiB: no config file or proc entry we read is larger
MAX_SYMLINKS = 40


class HostError(OSError):
    """A read that failed for a reason worth telling the operator."""


class DeadlineExceeded(HostError):
    """The evaluation's time (or this collector's share of it) ran out."""


OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0)
# O_PATH walks directories that may be entered but not listed (mode 0711), as path lookup does.
DIR_FLAGS = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_CLOEXEC
LIST_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NONBLOCK  # a folder to list and read below
MAX_ENTRIES = 100_000  # entries of one directory; /proc on a busy host has a few thousand


def kind(mode: int) -> Localized:
    """What a file that is not a regular one is, for a reason ("it is a FIFO")."""
    kinds = ((stat.S_ISLNK, "kind_link"), (stat.S_ISDIR, "kind_dir"), (stat.S_ISFIFO, "kind_fifo"),
             (stat.S_ISCHR, "kind_chr"), (stat.S_ISBLK, "kind_blk"), (stat.S_ISSOCK, "kind_sock"))
    return said(next((key for test, key in kinds if test(mode)), "kind_other"))


class Host:
    """Every read of the host, made safe against what an attacker may have put there.

    Files are checked to be regular before they are opened (a FIFO would block,
    a device never end) and opened without blocking; under a root other than
    ``/`` every path is walked one component at a time through directory
    descriptors, so neither a symlink nor a rename during the walk leads out.
    Errors other than "no such file" are raised, never read as "absent".
    """

    def __init__(self, rootfs: str = "/", deadline: float | None = None, run_programs: bool = False) -> None:
        self.rootfs = os.path.abspath(rootfs)
        self.live = self.rootfs == "/"
        self.deadline = deadline  # time.monotonic() past which every read raises DeadlineExceeded
        # Whoever can write a tree other than / must not get to run code as this user (often root):
        # its programs run only when the operator says so (--ampcli.run-from-rootfs).
        self.may_run = self.live or run_programs

    def within(self, deadline: float | None) -> Host:
        """The same host, with reads bounded by ``deadline`` (a fresh view: hosts are shared by threads)."""
        return Host(self.rootfs, deadline, self.may_run)

    def tick(self) -> None:
        """Raise ``DeadlineExceeded`` once the deadline has passed: long reads call it between blocks."""
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise DeadlineExceeded(said("out_of_time"))

    # -- paths -------------------------------------------------------------
    def path(self, rel: str) -> str:
        """The real path of ``rel`` (relative to the root), symlinks resolved inside the root.

        Only for handing a path to a program or library; reads go through the methods below.
        """
        rel = rel.lstrip("/")
        if self.live:
            return "/" + rel
        return self._resolve(rel)

    def _resolve(self, rel: str) -> str:
        parts: list[str] = []
        todo = _parts(rel)
        hops = 0
        while todo:
            part = todo.pop(0)
            if part == "..":
                if parts:
                    parts.pop()
                continue
            candidate = os.path.join(self.rootfs, *parts, part)
            try:
                is_link = stat.S_ISLNK(os.lstat(candidate).st_mode)
            except OSError:
                is_link = False
            if not is_link:
                parts.append(part)
                continue
            hops += 1
            if hops > MAX_SYMLINKS:
                raise HostError(said("link_loop_at", path="/" + "/".join([*parts, part])))
            target = os.readlink(candidate)
            if target.startswith("/"):
                parts = []
            todo = _parts(target) + todo
        return os.path.join(self.rootfs, *parts)

    def resolved(self, rel: str) -> str:
        """``rel`` with its symlinks resolved as the host itself resolves them, as shown on the host: what
        its kernel shows for a file reached through a link (``/opt`` -> ``/var/opt``)."""
        if self.live:
            return os.path.realpath("/" + rel.lstrip("/"))
        inner = os.path.relpath(self._resolve(rel), self.rootfs)
        return "/" if inner == "." else "/" + inner

    def display(self, rel: str) -> str:
        """How a path is shown to the operator: as it is on the host."""
        return "/" + rel.lstrip("/")

    @contextlib.contextmanager
    def _located(self, rel: str, follow: bool = True) -> Iterator[tuple[int | None, str]]:
        """(descriptor of the parent directory, last name) for ``rel``; on the live root (None, path).

        Symlinks are resolved inside the root, the last one only when ``follow``.
        The descriptor is open only for the block.
        """
        self.tick()
        if self.live:
            yield None, "/" + rel.lstrip("/")
            return
        try:
            stack = [os.open(self.rootfs, DIR_FLAGS)]
        except OSError as error:
            raise _rename(error, self.display("")) from None
        try:
            todo, hops = _parts(rel), 0
            last = "."
            while todo:
                part = todo.pop(0)
                if part == "..":
                    if len(stack) > 1:
                        os.close(stack.pop())
                    continue
                try:
                    mode = os.stat(part, dir_fd=stack[-1], follow_symlinks=False).st_mode
                except OSError as error:
                    if not todo and isinstance(error, FileNotFoundError):
                        last = part  # the caller's own lookup says "no such file"
                        break
                    raise _rename(error, self.display(rel)) from None
                if stat.S_ISLNK(mode) and (todo or follow):
                    hops += 1
                    if hops > MAX_SYMLINKS:
                        raise HostError(said("link_loop_in", path=self.display(rel)))
                    target = os.readlink(part, dir_fd=stack[-1])
                    if target.startswith("/"):
                        while len(stack) > 1:
                            os.close(stack.pop())
                    todo = _parts(target) + todo
                    continue
                if not todo:
                    last = part
                    break
                try:
                    stack.append(os.open(part, DIR_FLAGS | os.O_NOFOLLOW, dir_fd=stack[-1]))
                except OSError as error:
                    raise _rename(error, self.display(rel)) from None
            yield stack[-1], last
        finally:
            for fd in stack:
                os.close(fd)

    # -- reads -------------------------------------------------------------
    def _lookup(self, rel: str, follow: bool = True) -> os.stat_result | None:
        """The entry's status, or None when it does not exist; other errors raise."""
        try:
            with self._located(rel, follow) as (parent, name):
                return os.stat(name, dir_fd=parent, follow_symlinks=follow and parent is None)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as error:
            raise _rename(error, self.display(rel)) from None

    def exists(self, rel: str) -> bool:
        """Whether the entry exists; "permission denied" and the like raise: they do not mean absent."""
        return self._lookup(rel) is not None

    def is_dir(self, rel: str) -> bool:
        found = self._lookup(rel)
        return found is not None and stat.S_ISDIR(found.st_mode)

    def stat(self, rel: str) -> os.stat_result:
        found = self._lookup(rel)
        if found is None:
            raise FileNotFoundError(2, "No such file or directory", self.display(rel))
        return found

    @contextlib.contextmanager
    def open_regular(self, rel: str) -> Iterator[BinaryIO]:
        """A regular file, opened for reading without blocking; anything else raises ``HostError``."""
        with self._located(rel) as (parent, name):
            fd = _open_regular(parent, name, lambda: self.display(rel))
        try:
            handle = os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise
        with handle:
            yield handle

    def read_bytes(self, rel: str, limit: int = MAX_READ) -> bytes:
        data = self._read(rel, limit + 1)
        if len(data) > limit:
            raise HostError(said("too_large", path=self.display(rel), limit=limit))
        return data

    def read_head(self, rel: str, size: int) -> bytes:
        return self._read(rel, size)

    def _read(self, rel: str, size: int) -> bytes:
        """At most ``size`` bytes of a regular file."""
        with self._located(rel) as (parent, name):
            fd = _open_regular(parent, name, lambda: self.display(rel))
        try:
            return _read_all(fd, size)
        except OSError as error:
            raise _rename(error, self.display(rel)) from None
        finally:
            os.close(fd)

    def read_text(self, rel: str, limit: int = MAX_READ) -> str:
        return self.read_bytes(rel, limit).decode("utf-8", errors="replace")

    def read_optional(self, rel: str) -> str | None:
        """The file's text, or None when it does not exist (other errors raise)."""
        try:
            return self.read_text(rel)
        except FileNotFoundError:
            return None

    @contextlib.contextmanager
    def folder(self, rel: str) -> Iterator[Folder]:
        """The directory ``rel`` held open, for many reads below it (see ``Folder``)."""
        with self._located(rel) as (parent, name):
            try:
                fd = os.open(name, LIST_FLAGS | (os.O_NOFOLLOW if parent is not None else 0), dir_fd=parent)
            except OSError as error:
                raise _rename(error, self.display(rel)) from None
        try:
            yield Folder(self, fd, rel)
        finally:
            os.close(fd)

    def listdir(self, rel: str, limit: int = MAX_ENTRIES) -> list[str]:
        """The names in a directory, sorted; more than ``limit`` is an error, not a truncated list."""
        with self.folder(rel) as folder:
            return sorted(entry.name for entry in folder.entries(limit))

    def readlink(self, rel: str) -> str:
        """The link's own target, unresolved (for /proc/<pid>/fd entries)."""
        with self._located(rel, follow=False) as (parent, name):
            try:
                return os.readlink(name, dir_fd=parent)
            except OSError as error:
                raise _rename(error, self.display(rel)) from None

    # -- programs ----------------------------------------------------------
    def run(self, rel: str, args: list[str], timeout: float, max_output: int = MAX_READ) -> CommandResult:
        """Run a program under the root with a hard timeout (see ``start``)."""
        return self.start(rel, args).result(timeout, max_output)

    def start(self, rel: str, args: list[str]) -> Running:
        """Start a program under the root (only where the operator allows it: ``may_run``); several may run
        at once, each collected with ``result`` (``checks.programs``)."""
        from .programs import ProgramRefused, start_program  # programs need the root's errors: imported here

        self.tick()
        if not self.may_run:
            raise ProgramRefused(said("program_refused", path=self.display(rel)))
        return start_program(self.path(rel), args, self.display(rel), self.deadline)


class Folder:
    """A directory of the host held open: many reads below it without walking from the root for each.

    The names below it are looked up one component at a time with ``O_NOFOLLOW``, so a symlink
    there is refused ("not a directory", "too many levels of symbolic links"), never followed:
    reading through an open folder is as safe as a walk from the root. ``/proc`` is read this way,
    a few files for each of thousands of processes.

    The live root's ``/proc`` is the kernel's own (docs/security.md: out of scope), so it holds no
    symlinked process folder and no special file where a file belongs: there a read is one open
    of the whole path, without the checks (four system calls instead of eight).
    """

    def __init__(self, host: Host, fd: int, rel: str) -> None:
        self.host = host
        self.fd = fd
        self.rel = rel.strip("/")
        self.kernel = host.live and self.rel == "proc"

    def display(self, *names: str) -> str:
        return self.host.display("/".join([self.rel, *names]))

    def status(self) -> os.stat_result:
        return os.fstat(self.fd)

    def entries(self, limit: int = MAX_ENTRIES) -> list[os.DirEntry[str]]:
        """The folder's entries, unsorted; more than ``limit`` is an error, not a truncated list."""
        return list(self.scan(limit))

    def scan(self, limit: int = MAX_ENTRIES) -> Iterator[os.DirEntry[str]]:
        """The folder's entries one by one (each knows its inode and, mostly, its type without a stat)."""
        self.host.tick()
        try:
            with os.scandir(self.fd) as listing:
                for count, entry in enumerate(listing, 1):
                    if count > limit:
                        raise HostError(said("too_many_entries", path=self.display(), limit=limit))
                    if not count & 0xFFF:
                        self.host.tick()  # a huge folder is bounded by the deadline too
                    yield entry
        except OSError as error:
            raise _rename(error, self.display()) from None

    @contextlib.contextmanager
    def child(self, *names: str) -> Iterator[Folder]:
        """A folder below this one (``names`` are its path's components; none may be a symlink); no
        names: this folder again, as a second descriptor."""
        if not names:
            fd = os.dup(self.fd)
        else:
            with self._parent(names) as parent:
                try:
                    fd = os.open(names[-1], LIST_FLAGS | os.O_NOFOLLOW, dir_fd=parent)
                except OSError as error:
                    raise _rename(error, self.display(*names)) from None
        try:
            yield Folder(self.host, fd, "/".join([self.rel, *names]))
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def _parent(self, names: tuple[str, ...]) -> Iterator[int]:
        """The descriptor of the folder that holds ``names[-1]``, open for the block."""
        self.host.tick()
        fd, opened = self.fd, []
        try:
            for name in names[:-1]:
                try:
                    fd = os.open(name, DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
                except OSError as error:
                    raise _rename(error, self.display(*names)) from None
                opened.append(fd)
            yield fd
        finally:
            for each in opened:
                os.close(each)

    def read(self, *names: str, limit: int = MAX_READ) -> bytes:
        """A regular file below the folder (``names`` are its path's components), at most ``limit`` bytes."""
        if self.kernel:
            self.host.tick()
            try:
                fd = os.open("/".join(names), OPEN_FLAGS | os.O_NOFOLLOW, dir_fd=self.fd)
            except OSError as error:
                raise _rename(error, self.display(*names)) from None
        else:
            with self._parent(names) as parent:
                fd = _open_regular(parent, names[-1], lambda: self.display(*names))
        try:
            data = _read_all(fd, limit + 1)
        except OSError as error:
            raise _rename(error, self.display(*names)) from None
        finally:
            os.close(fd)
        if len(data) > limit:
            raise HostError(said("too_large", path=self.display(*names), limit=limit))
        return data

    def readlink(self, *names: str) -> str:
        """A link's own target, unresolved (``/proc/<pid>/fd`` entries)."""
        if self.kernel:
            try:
                return os.readlink("/".join(names), dir_fd=self.fd)
            except OSError as error:
                raise _rename(error, self.display(*names)) from None
        with self._parent(names) as parent:
            try:
                return os.readlink(names[-1], dir_fd=parent)
            except OSError as error:
                raise _rename(error, self.display(*names)) from None

    def listdir(self, *names: str, limit: int = MAX_ENTRIES) -> list[str]:
        """The names in this folder, or in one below it, unsorted."""
        with self.child(*names) as inner:
            return [entry.name for entry in inner.entries(limit)]

def _open_regular(parent: int | None, name: str, shown: Callable[[], str]) -> int:
    """``name`` in the folder ``parent`` (a path when None), opened only if it is a regular file.

    Its type is checked before the open (opening a device can have effects, a FIFO would block) and
    again on the descriptor, which must be the same file: a swap in between is refused. ``shown``
    names the file in an error (built only then: /proc is read thousands of times a run).
    """
    try:
        before = os.stat(name, dir_fd=parent, follow_symlinks=parent is None)
        _require_regular(before, shown)
        fd = os.open(name, OPEN_FLAGS | (os.O_NOFOLLOW if parent is not None else 0), dir_fd=parent)
    except HostError:
        raise
    except OSError as error:
        raise _rename(error, shown()) from None
    try:
        after = os.fstat(fd)
        _require_regular(after, shown)
        if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
            raise HostError(said("replaced", path=shown()))
    except BaseException:
        os.close(fd)
        raise
    return fd


def _read_all(fd: int, size: int) -> bytes:
    """At most ``size`` bytes, read with plain ``os.read``: most files read here are a few hundred
    bytes, for which a buffered file object costs more than the read."""
    chunks = []
    while size > 0:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _parts(path: str) -> list[str]:
    return [part for part in path.split("/") if part not in ("", ".")]


def _require_regular(st: os.stat_result, shown: Callable[[], str]) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise HostError(said("not_regular", path=shown(), kind=kind(st.st_mode)))


def _rename(error: OSError, shown: str) -> OSError:
    """The same error, naming the path as it is on the host (not the last component of a walk)."""
    if isinstance(error, HostError) or error.errno is None:
        return error
    return OSError(error.errno, error.strerror, shown)
