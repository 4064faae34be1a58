"""State kept between runs: scan service starts seen (fault 6) and CVD integrity verdicts.

The plugin (and the exporter's ``--once``) keep it in a JSON file; the
exporter server keeps it in memory. Entries are keyed by the root, so one
state file can serve several ``--path.rootfs`` trees.

The file steers verdicts (a remembered scan service start counts towards
fault 6, a cached "" says a CVD file is intact) and the plugin often runs as
root, so the file is treated as hostile input. That is why nagiosplugin's
``Cookie`` is not used: it opens the path with plain ``open()`` (following a
symlink, creating with whatever the umask allows), blocks on its lock for
ever, truncates a damaged file in place, rewrites in place (a crash leaves
half a file), reads without a size bound and trusts whoever wrote the file.

Here the file is opened without following a symlink, must be a regular file
with one link, owned by this user and writable by nobody else, in a folder
another user cannot swap it in; new files are 0600 whatever the umask; a
save goes to a fresh 0600 file in the same folder that is renamed over the
old one; the lock wait is bounded; and the content must fit a schema. A file
that fails any of this is left alone: the run says why in one warning line and
keeps its state in memory, and the checks still give their verdict. A user with no
home folder it can write (``nobody``) has no default folder either: that is said as
an info line (the plugin's -v), not a warning in every run.

Some 460 lines for one concern, the state file: its folder and file checks (on top of safefile's),
the bounded lock, the schema and the store, which share one failure path (keep state in memory, say why).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import math
import os
import stat
import time
from collections.abc import Iterator, MutableMapping
from typing import Any

from .host import kind
from .messages import os_reason, said
from .safefile import Refused, lstat, open_folder, replace

log = logging.getLogger(__name__)

MAX_CVD_ENTRIES = 256
MAX_SCAN_STARTS = 256
MAX_ROOTS = 32
MAX_KEY_CHARS = 8192  # a CVD cache key is a path (PATH_MAX 4096) and a few numbers
MAX_VERDICT_CHARS = 256
MAX_PID = 2**31 - 1
MAX_BOOT_ID = 64  # the kernel's is a UUID (36 characters)
MAX_BYTES = 4 << 20  # larger than any state this module writes
LOCK_WAIT = 1.0  # seconds; a run that waits longer keeps its state in memory
LOCK_POLL = 0.02
MAX_REOPEN = 200  # saves by other runs while this one waited; the deadline ends it long before

APP_DIR = "secure-endpoint-monitoring"
STATE_NAME = "check_secure_endpoint.state"
SYSTEM_STATE_DIR = "/var/lib/" + APP_DIR

OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
SYMLINK_ERRNOS = (errno.ELOOP, errno.EMLINK)  # what O_NOFOLLOW gives on Linux/macOS and on FreeBSD


class StateStore:
    """The state of one root inside the whole state (``data``, shared by every root in the file)."""

    def __init__(self, data: MutableMapping[str, Any] | None = None, rootfs: str = "/") -> None:
        self.data: MutableMapping[str, Any] = data if data is not None else {}
        self.rootfs = rootfs

    def _section(self) -> dict[str, Any]:
        section = self.data.get(self.rootfs)
        if not isinstance(section, dict):
            while len(self.data) >= MAX_ROOTS:  # the oldest root makes room, so the file stays bounded
                del self.data[next(iter(self.data))]
            section = {}
            self.data[self.rootfs] = section
        return section

    def scan_starts(self, seen: list[tuple[int, int]], boot_id: str, now: int, window: int) -> list[tuple[int, int]]:
        """Distinct scan service starts, (pid, start ticks after boot), of this boot within ``window`` ticks
        before ``now`` (ticks since boot).

        Adds the processes seen now to those remembered from earlier runs. Ticks since boot are what no
        step of the wall clock moves, so one process is one start whatever the clock does.
        """
        section = self._section()
        remembered = section.get("scan_starts", [])
        starts: set[tuple[int, int]] = set()
        if isinstance(remembered, list):
            for item in remembered:
                if isinstance(item, list) and len(item) == 3 and item[0] == boot_id:
                    with contextlib.suppress(TypeError, ValueError):
                        starts.add((int(item[1]), int(item[2])))
        starts.update(seen)
        recent = sorted((s for s in starts if now - window <= s[1] <= now), key=lambda s: (s[1], s[0]))
        recent = recent[-MAX_SCAN_STARTS:]
        section["scan_starts"] = [[boot_id, pid, ticks] for pid, ticks in recent]
        return sorted(recent)

    def cvd_cache(self) -> MutableMapping[str, str]:
        section = self._section()
        cache = section.get("cvd")
        if not isinstance(cache, dict) or len(cache) > MAX_CVD_ENTRIES:
            cache = {}
            section["cvd"] = cache
        return cache


# -- schema ---------------------------------------------------------------------------------


def sanitize(raw: object) -> dict[str, Any]:
    """What of ``raw`` fits the schema; the rest is dropped (debug log), never an exception.

    ``{root: {"scan_starts": [[boot id, pid, start ticks], ...], "cvd": {key: verdict}}}``, every part
    bounded. (The table of processes earlier versions kept is dropped as an unknown key.)
    """
    if not isinstance(raw, dict):
        log.debug("state: top level is %s, not a mapping; dropped", type(raw).__name__)
        return {}
    clean: dict[str, Any] = {}
    for root, section in raw.items():
        if len(clean) >= MAX_ROOTS:
            log.debug("state: more than %d roots; the rest dropped", MAX_ROOTS)
            break
        if not isinstance(root, str) or not 0 < len(root) <= MAX_KEY_CHARS or not isinstance(section, dict):
            log.debug("state: root entry %.80r dropped", root)
            continue
        clean[root] = _clean_section(section)
    return clean


def _clean_section(section: dict[Any, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for key, value in section.items():
        if key == "scan_starts":
            clean[key] = _clean_starts(value)
        elif key == "cvd":
            clean[key] = _clean_cvd(value)
        else:
            log.debug("state: unknown key %.80r dropped", key)
    return clean


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _clean_starts(value: object) -> list[list[str | int]]:
    """``[boot id, pid, start ticks after boot]`` each (the older ``[pid, time]`` form is dropped)."""
    if not isinstance(value, list):
        log.debug("state: scan_starts is %s, not a list; dropped", type(value).__name__)
        return []
    starts: list[list[str | int]] = []
    for item in value:
        if (isinstance(item, list) and len(item) == 3 and type(item[0]) is str and 0 < len(item[0]) <= MAX_BOOT_ID
                and type(item[1]) is int and 0 < item[1] <= MAX_PID and type(item[2]) is int and 0 <= item[2] < 2**63):
            starts.append(list(item))
        else:
            log.debug("state: scan start %.80r dropped", item)
    if len(starts) > MAX_SCAN_STARTS:
        log.debug("state: more than %d scan starts; the oldest dropped", MAX_SCAN_STARTS)
        starts = sorted(starts, key=lambda s: s[2])[-MAX_SCAN_STARTS:]
    return starts


def _clean_cvd(value: object) -> dict[str, str]:
    if not isinstance(value, dict) or len(value) > MAX_CVD_ENTRIES:
        log.debug("state: cvd cache is not a mapping of at most %d entries; dropped", MAX_CVD_ENTRIES)
        return {}
    clean: dict[str, str] = {}
    for key, verdict in value.items():
        if (isinstance(key, str) and 0 < len(key) <= MAX_KEY_CHARS and isinstance(verdict, str)
                and len(verdict) <= MAX_VERDICT_CHARS):
            clean[key] = verdict
        else:
            log.debug("state: cvd verdict for %.80r dropped", key)
    return clean


def encode(data: MutableMapping[str, Any]) -> bytes:
    """The state as JSON that a later run accepts: sanitized, and never over ``MAX_BYTES``."""
    clean = sanitize(dict(data))
    text = json.dumps(clean, separators=(",", ":"), sort_keys=True).encode() + b"\n"
    if len(text) > MAX_BYTES:  # only the CVD verdicts can grow this far
        log.debug("state: over %d bytes; the CVD caches dropped", MAX_BYTES)
        for section in clean.values():
            section.pop("cvd", None)
        text = json.dumps(clean, separators=(",", ":"), sort_keys=True).encode() + b"\n"
    return text


# -- the file -------------------------------------------------------------------------------


def default_path() -> str:
    """Where the plugin keeps its state when not told: a folder no other local user can create.

    Root: ``/var/lib/secure-endpoint-monitoring/``; others: ``$XDG_STATE_HOME`` (when absolute)
    or ``~/.local/state``, then ``secure-endpoint-monitoring/``. Unlike ``/var/tmp`` nobody else
    can plant the file there first.
    """
    if os.geteuid() == 0:
        return os.path.join(SYSTEM_STATE_DIR, STATE_NAME)
    base = os.environ.get("XDG_STATE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, APP_DIR, STATE_NAME)


def _make_private_dir(folder: str) -> None:
    """Create the default folder, and any missing folder above it, 0700 whatever the umask."""
    if not os.path.isabs(folder):
        raise Refused(said("no_home"))
    missing: list[str] = []
    current = folder
    while os.path.dirname(current) != current:
        try:
            os.stat(current)  # "permission denied" raises: the caller says so, it is not "missing"
            break
        except FileNotFoundError:
            missing.append(current)
            current = os.path.dirname(current)
    for path in reversed(missing):
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            continue  # made meanwhile (by another run): the checks on the folder judge it
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            os.fchmod(fd, 0o700)
        finally:
            os.close(fd)


def no_usable_home(path: str) -> str | None:
    """Why ``path``, the default under this user's home, has no folder to be made in; None when the home is not
    the reason: root's default, a folder under ``$XDG_STATE_HOME``, another path, or a home this user can write.

    Asked only once the default folder could not be made. What fails below a usable home (a ``~/.local`` of
    another user) is still a warning, so is everything the checks of ``StateFile.open`` refuse.
    """
    if os.geteuid() == 0 or os.path.isabs(os.environ.get("XDG_STATE_HOME", "")) or path != default_path():
        return None
    home = os.path.expanduser("~")
    if not os.path.isabs(home):
        return said("no_home")
    try:
        st = os.stat(home)
    except FileNotFoundError:
        return said("home_missing", path=home)
    except OSError as error:
        return said("home_unreachable", path=home, reason=os_reason(error))
    if not stat.S_ISDIR(st.st_mode):
        return said("home_not_folder", path=home)
    if os.statvfs(home).f_flag & os.ST_RDONLY:
        return said("home_read_only", path=home)
    if not os.access(home, os.W_OK | os.X_OK):
        return said("home_not_writable", path=home)
    return None


def _check_file(st: os.stat_result) -> None:
    """Only a file this user wrote and nobody else can change is trusted."""
    if not stat.S_ISREG(st.st_mode):
        raise Refused(said("it_is", kind=kind(st.st_mode)))
    uid = os.geteuid()
    if st.st_uid != uid:
        raise Refused(said("file_owner", owner=st.st_uid, uid=uid))
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise Refused(said("file_writable", mode=f"{stat.S_IMODE(st.st_mode):04o}"))
    if st.st_nlink > 1:
        raise Refused(said("hard_links", count=st.st_nlink))


class StateFile:
    """An open, checked and (normally) locked state file; ``data`` is its sanitized content."""

    def __init__(self, path: str, dir_fd: int, name: str) -> None:
        self.path = path
        self.dir_fd = dir_fd
        self.name = name
        self.fd = -1
        self.locked = False
        self.data: dict[str, Any] = {}
        self.raw = b""  # the bytes loaded: a save that would write them again is skipped

    @classmethod
    def open(cls, path: str, lock_wait: float = LOCK_WAIT) -> StateFile:
        """Open ``path`` (absolute) as a state file; raises ``Refused`` or ``OSError`` with the reason."""
        folder, name = os.path.split(path)
        if not name:
            raise Refused(said("names_folder"))
        dir_fd, _shown = open_folder(folder, strict=True)
        opened = cls(path, dir_fd, name)
        try:
            opened._open_locked(time.monotonic() + lock_wait)
            opened.data = opened._load()
        except BaseException:
            opened.close()
            raise
        return opened

    def _open_regular(self) -> int:
        """The file opened read-only without following a symlink, or created 0600 when missing."""
        for _attempt in range(5):
            before = lstat(self.name, self.dir_fd)
            if before is not None and not stat.S_ISREG(before.st_mode):
                raise Refused(said("it_is", kind=kind(before.st_mode)))  # a link, FIFO or device is not even opened
            try:
                if before is None:
                    fd = os.open(self.name, OPEN_FLAGS | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=self.dir_fd)
                    os.fchmod(fd, 0o600)
                    return fd
                return os.open(self.name, OPEN_FLAGS, dir_fd=self.dir_fd)
            except FileExistsError:
                continue  # created (or planted) between the stat and the open: look again
            except FileNotFoundError:
                continue
            except OSError as error:
                if error.errno in SYMLINK_ERRNOS:
                    raise Refused(said("it_is", kind=said("kind_link"))) from None
                raise
        raise Refused(said("keeps_changing"))

    def _open_locked(self, deadline: float) -> None:
        """Open, check and lock; the lock only counts if the path still names the locked file.

        Each run that saves renames a new file over the old one, so a run that waited may find
        itself holding the lock of a file no longer there: it opens the new one and waits again,
        until the deadline (after which it reads without the lock and does not save).
        """
        for _attempt in range(MAX_REOPEN):
            fd = self._open_regular()
            self.fd = fd
            _check_file(os.fstat(fd))
            if not self._lock(deadline):
                return
            now = lstat(self.name, self.dir_fd)
            held = os.fstat(fd)
            if now is not None and (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino):
                return
            self.locked = False
            os.close(fd)
            self.fd = -1
        raise Refused(said("keeps_replaced"))

    def _lock(self, deadline: float) -> bool:
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    log.warning("state file %s is locked by another run; this run's state is kept in memory only",
                                self.path)
                    return False
                time.sleep(LOCK_POLL)
            except OSError as error:  # no locks on this file system: reading is safe, saving is not
                log.warning("state file %s cannot be locked (%s); this run's state is kept in memory only",
                            self.path, error.strerror or error)
                return False
            else:
                self.locked = True
                return True

    def _load(self) -> dict[str, Any]:
        raw = self.raw = _read_bounded(self.fd, MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            log.warning("state file %s is larger than %d bytes and has been reset", self.path, MAX_BYTES)
            return {}
        if not raw.strip():  # a file made by a run that did not get to save
            return {}
        try:
            parsed = json.loads(raw)
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            log.warning("state file %s was damaged and has been reset", self.path)
            return {}
        return sanitize(parsed)

    def save(self, data: MutableMapping[str, Any]) -> None:
        """Write a fresh 0600 file beside the old one, fsync it, and rename it over the old one."""
        if not self.locked:
            return
        payload = encode(data)
        if payload == self.raw:
            return  # nothing changed: no new file, no fsync
        replace(self.dir_fd, self.name, payload, 0o600)

    def close(self) -> None:
        """Closing the file's descriptor also releases its lock."""
        for fd in (self.fd, self.dir_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.fd = self.dir_fd = -1
        self.locked = False


def _read_bounded(fd: int, limit: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = os.read(fd, min(limit - size, 1 << 16))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _open_file(path: str, lock_wait: float) -> StateFile | None:
    """The state file at ``path``, or None when it cannot be used, after the one line that says why."""
    shown = path
    try:
        if path == default_path():
            try:
                _make_private_dir(os.path.dirname(path))
            except (Refused, OSError):
                homeless = no_usable_home(path)
                if homeless is None:
                    raise
                log.info("state file %s cannot be made (%s); state is kept for this run only", path, homeless)
                return None
        shown = os.path.abspath(path)
        return StateFile.open(shown, lock_wait)
    except Refused as why:
        log.warning("state file %s cannot be used (%s); state is kept for this run only", shown, why)
    except OSError as error:
        log.warning("state file %s cannot be used (%s); state is kept for this run only", shown,
                    error.strerror or error)
    return None


@contextlib.contextmanager
def open_state(path: str | None, rootfs: str, lock_wait: float = LOCK_WAIT) -> Iterator[StateStore]:
    """A store backed by the state file at ``path``; in memory when ``path`` is empty or the file unusable.

    An unusable file costs one warning line (logger ``checks.state``), never the verdicts.
    The default location's folder is created (0700) when missing; when that fails for want of a
    home folder this user can write, the line is an info line instead (``no_usable_home``).
    """
    state_file = _open_file(path, lock_wait) if path else None
    if state_file is None:
        yield StateStore(rootfs=rootfs)
        return
    try:
        store = StateStore(state_file.data, rootfs)
        yield store
        try:
            state_file.save(store.data)
        except OSError as error:
            log.warning("state file %s cannot be saved (%s); this run's state is lost", state_file.path,
                        error.strerror or error)
    finally:
        state_file.close()
