"""The host under test: one root directory through which every read goes.

Like node_exporter's ``--path.rootfs``, the checks can judge the live machine
(``/``) or a copy of another machine's files. Absolute symlinks are resolved
inside the root, so a tree never leads the checks onto the machine running
them. Reads are bounded in size and walks in depth.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import selectors
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import NamedTuple

import psutil

MAX_READ = 1 << 20  # 1 MiB: no config file or proc entry we read is larger
MAX_SYMLINKS = 40
MAX_LATE_READS = 64  # reads of output already waiting when a program's time is up (64 KiB each)
_psutil_lock = threading.Lock()


class HostError(OSError):
    """A read that failed for a reason worth telling the operator."""


class CommandResult(NamedTuple):
    returncode: int
    stdout: bytes
    stderr: bytes
    truncated: bool


class CommandTimeout(HostError):
    pass


class Host:
    def __init__(self, rootfs: str = "/") -> None:
        self.rootfs = os.path.abspath(rootfs)
        self.live = self.rootfs == "/"

    # -- paths -------------------------------------------------------------
    def path(self, rel: str) -> str:
        """The real path of ``rel`` (relative to the root), symlinks resolved inside the root."""
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
                raise HostError(f"too many levels of symbolic links at /{'/'.join([*parts, part])}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                parts = []
            todo = _parts(target) + todo
        return os.path.join(self.rootfs, *parts)

    def display(self, rel: str) -> str:
        """How a path is shown to the operator: as it is on the host."""
        return "/" + rel.lstrip("/")

    # -- reads -------------------------------------------------------------
    def exists(self, rel: str) -> bool:
        try:
            return os.path.exists(self.path(rel))
        except HostError:  # a symlink loop leads nowhere
            return False

    def is_dir(self, rel: str) -> bool:
        try:
            return os.path.isdir(self.path(rel))
        except HostError:
            return False

    def stat(self, rel: str) -> os.stat_result:
        return os.stat(self.path(rel))

    def read_bytes(self, rel: str, limit: int = MAX_READ) -> bytes:
        with open(self.path(rel), "rb") as handle:
            data = handle.read(limit + 1)
        if len(data) > limit:
            raise HostError(f"{self.display(rel)} is larger than {limit} bytes")
        return data

    def read_head(self, rel: str, size: int) -> bytes:
        with open(self.path(rel), "rb") as handle:
            return handle.read(size)

    def read_text(self, rel: str, limit: int = MAX_READ) -> str:
        return self.read_bytes(rel, limit).decode("utf-8", errors="replace")

    def read_optional(self, rel: str) -> str | None:
        """The file's text, or None when it does not exist (other errors raise)."""
        try:
            return self.read_text(rel)
        except FileNotFoundError:
            return None

    def listdir(self, rel: str) -> list[str]:
        return sorted(os.listdir(self.path(rel)))

    def readlink(self, rel: str) -> str:
        """The link's own target, unresolved (for /proc/<pid>/fd entries)."""
        parent, _, name = rel.rstrip("/").rpartition("/")
        return os.readlink(os.path.join(self.path(parent), name))

    def walk(self, rel: str, max_depth: int) -> Iterator[tuple[str, list[str], list[str]]]:
        """os.walk below ``rel`` as root-relative paths, at most ``max_depth`` levels down.

        Symlinked directories are not followed: a walk stays in the tree.
        """
        base = self.path(rel)
        top = rel.strip("/")
        for current, dirs, files in os.walk(base, onerror=_raise):
            sub = os.path.relpath(current, base)
            depth = 0 if sub == "." else sub.count(os.sep) + 1
            if depth >= max_depth:
                dirs[:] = []
            dirs.sort()
            rel_current = top if sub == "." else f"{top}/{sub}"
            yield rel_current, dirs, sorted(files)

    # -- users and groups --------------------------------------------------
    def user_exists(self, name: str) -> bool:
        return self._account_exists(name, pwd.getpwnam, "etc/passwd")

    def group_exists(self, name: str) -> bool:
        return self._account_exists(name, grp.getgrnam, "etc/group")

    def _account_exists(self, name: str, lookup: Callable[[str], object], rel: str) -> bool:
        """NSS on the live root (LDAP, sssd, ... included); the tree's own file under another root."""
        if not self.live:
            return name in self._colon_file_names(rel)
        try:
            lookup(name)
        except KeyError:
            return False
        return True

    def _colon_file_names(self, rel: str) -> set[str]:
        text = self.read_text(rel)
        return {line.split(":", 1)[0] for line in text.splitlines() if line and not line.startswith("#")}

    # -- processes -----------------------------------------------------------
    @contextlib.contextmanager
    def procfs(self) -> Iterator[None]:
        """psutil reading ``<root>/proc`` for the duration of the block."""
        with _psutil_lock:
            saved = psutil.PROCFS_PATH
            psutil.PROCFS_PATH = self.path("proc")
            try:
                yield
            finally:
                psutil.PROCFS_PATH = saved

    # -- programs ----------------------------------------------------------
    def run(self, rel: str, args: list[str], timeout: float, max_output: int = MAX_READ) -> CommandResult:
        """Run a program under the root with a hard timeout (see ``start``)."""
        return self.start(rel, args).result(timeout, max_output)

    def start(self, rel: str, args: list[str]) -> Running:
        """Start a program under the root; several may run at once, each collected with ``result``.

        The program gets its own process group so a hung shell script and its
        children are all killed.
        """
        program = self.path(rel)
        proc = subprocess.Popen(
            [program, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"},
        )
        return Running(proc, self.display(rel))


class Running:
    """A started program: its output is read, bounded, until it exits or the deadline passes."""

    def __init__(self, proc: subprocess.Popen[bytes], shown: str) -> None:
        self.proc = proc
        self.shown = shown
        self.started = time.monotonic()

    def result(self, timeout: float, max_output: int = MAX_READ) -> CommandResult:
        """Wait at most ``timeout`` seconds from the start; past that the program is killed and this raises."""
        proc = self.proc
        try:
            out, err = _read_bounded(proc, self.started + timeout, max_output)
        except subprocess.TimeoutExpired:
            self.kill()
            raise CommandTimeout(f"{self.shown} did not answer within {timeout:g} s") from None
        except BaseException:
            self.kill()
            raise
        return CommandResult(proc.returncode, bytes(out[:max_output]), bytes(err[:4096]), len(out) > max_output)

    def kill(self) -> None:
        _kill_group(self.proc)


def _read_bounded(proc: subprocess.Popen[bytes], deadline: float, cap: int) -> tuple[bytearray, bytearray]:
    """Both pipes until they close and the program exits, keeping at most ``cap`` bytes of each."""
    assert proc.stdout is not None and proc.stderr is not None
    buffers = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    with selectors.DefaultSelector() as selector:
        for fd in buffers:
            selector.register(fd, selectors.EVENT_READ)
        late_reads = 0
        while selector.get_map():
            # Past the deadline, output already written (or a pipe already closed) still counts:
            # reads go on while something is ready at once, a bounded number of times, so a program
            # that keeps writing cannot hold the caller.
            remaining = deadline - time.monotonic()
            ready = selector.select(max(remaining, 0))
            if remaining <= 0:
                if not ready or late_reads >= MAX_LATE_READS:
                    raise subprocess.TimeoutExpired(proc.args, 0)
                late_reads += 1
            for key, _ in ready:
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fd)
                    continue
                buffer = buffers[key.fd]
                if len(buffer) <= cap:
                    buffer += chunk[: cap + 1 - len(buffer)]
    proc.wait(max(deadline - time.monotonic(), 0.001))
    return buffers[proc.stdout.fileno()], buffers[proc.stderr.fileno()]


def _parts(path: str) -> list[str]:
    return [part for part in path.split("/") if part not in ("", ".")]


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        proc.communicate(timeout=1)


def _raise(error: OSError) -> None:
    raise error
