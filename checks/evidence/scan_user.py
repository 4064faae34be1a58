"""The scan service account and the permissions of the connector's directories (fault 5)."""

from __future__ import annotations

import stat
from collections.abc import Callable
from typing import NamedTuple

from ..catalog import Platform
from ..host import DeadlineExceeded, Host, HostError
from ..messages import said
from ..walk import WalkCache, walk_partly
from . import Collector, lines

SCAN_ACCOUNT = "cisco-amp-scan-svc"
DSLOCAL = "var/db/dslocal/nodes/Default"
# The scan service goes through /opt/cisco into the connector's folder: those are judged, down to
# PERMISSION_DEPTH levels below /opt/cisco. Other Cisco products beside it (Secure Client, Orbital) keep
# folders of their own there, which the scan service never needs.
PERMISSION_ROOT = "opt/cisco"
CONNECTOR_ROOT = "opt/cisco/amp"
PERMISSION_DEPTH = 3
ACCOUNT_BLOCK = 1 << 20
MAX_ACCOUNT_FILE = 1 << 30  # passwd and group are searched as a stream (see _account_line)


class BadDirectory(NamedTuple):
    path: str  # as shown on the host
    mode: int
    not_readable: bool
    writable: bool


class ScanUserFacts(NamedTuple):
    user_exists: bool | None  # None: could not be looked up (see unread)
    group_exists: bool | None
    usergroups_enab: bool | None  # Linux login.defs; None when not set or not Linux
    bad_directories: tuple[BadDirectory, ...]
    # What could not be read: what was read still proves a fault; only a clear needs it all.
    unread: tuple[OSError, ...] = ()


def probe(host: Host, platform: Platform, folders: WalkCache | None = None) -> ScanUserFacts:
    """The scan account, and on Linux the folders it cannot enter; ``folders`` keeps their listings for the
    next probe (a long-running exporter)."""
    unread: list[OSError] = []

    def looked_up(lookup: Callable[[], bool]) -> bool | None:
        try:
            return lookup()
        except DeadlineExceeded:
            raise  # the evaluation's time: nothing more is read
        except OSError as error:
            unread.append(error)
            return None

    if platform is Platform.MACOS and not host.live:
        user = looked_up(lambda: host.exists(f"{DSLOCAL}/users/{SCAN_ACCOUNT}.plist"))
        group = looked_up(lambda: host.exists(f"{DSLOCAL}/groups/{SCAN_ACCOUNT}.plist"))
    else:
        user = looked_up(lambda: user_exists(host, SCAN_ACCOUNT))
        group = looked_up(lambda: group_exists(host, SCAN_ACCOUNT))
    enab = _usergroups_enab(host) if platform is Platform.LINUX else None
    bad: list[BadDirectory] = []
    if platform is Platform.LINUX:
        bad, denied = _bad_directories(host, folders)
        unread += denied
    return ScanUserFacts(user, group, enab, tuple(bad), tuple(unread))


def _usergroups_enab(host: Host) -> bool | None:
    text = host.read_optional("etc/login.defs")
    if text is None:
        return None
    value = None
    for line in lines(text):
        words = line.split()
        if len(words) >= 2 and words[0] == "USERGROUPS_ENAB":
            value = words[1].lower() == "yes"
    return value


def _bad_directories(host: Host, cache: WalkCache | None) -> tuple[list[BadDirectory], list[OSError]]:
    """The folders the scan service goes through that others cannot enter or can write: /opt/cisco and the
    connector's folders below it (to depth 3), and where a link among them leads, that folder and those
    below it too; and on the way to each (``/opt``, or where a link leads), the folders above it that
    others cannot search. Second: what could not be read (what was judged still counts)."""
    judge = _Judgement(host)
    try:
        if not host.is_dir(PERMISSION_ROOT):
            return [], []
        judge.path(PERMISSION_ROOT)
    except DeadlineExceeded:
        raise
    except OSError as error:  # /opt cannot be searched: the folders above are judged all the same
        judge.above(PERMISSION_ROOT)
        return judge.bad(), [error]
    # (where, levels below it to judge, whether the exporter's listing cache serves it)
    todo: list[tuple[str, int, bool]] = [(CONNECTOR_ROOT, PERMISSION_DEPTH - 1, True)]
    while todo:
        rel, depth, cached = todo.pop(0)
        try:
            if not host.is_dir(rel):
                continue
            if not judge.first_visit(rel):
                continue  # a link back into what is judged already
        except DeadlineExceeded:
            raise
        except OSError as error:  # a loop, or a link into a folder this user cannot enter
            judge.denied.append(error)
            continue
        folders, denied = walk_partly(host, rel, depth, cache=cache if cached else None)
        judge.denied += denied
        resolved = host.resolved(rel).rstrip("/")
        for folder in folders:
            judge.walked(resolved + folder.rel[len(rel.strip("/")):])
            judge.found.append(_judge(host.display(folder.rel), folder.status.st_mode))
            if folder.depth < depth:
                # A link to a folder is judged by where it leads (inside the root), as the scan service sees it.
                todo += [(f"{folder.rel}/{name}", depth - folder.depth - 1, False) for name in folder.links]
    return judge.bad(), judge.denied


class _Judgement:
    """What ``_bad_directories`` has judged, by the path the host resolves each folder to."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.found: list[BadDirectory | None] = []
        self.denied: list[OSError] = []
        self._seen: set[str] = set()

    def path(self, rel: str) -> None:
        self.above(rel)
        self._seen.add(self.host.resolved(rel))
        self.found.append(_judge(self.host.display(rel), self.host.stat(rel).st_mode))

    def walked(self, resolved: str) -> None:
        """A folder (as the host resolves it) was judged on a walk: a link that leads there is not followed."""
        self._seen.add(resolved)

    def first_visit(self, rel: str) -> bool:
        """Whether ``rel`` leads somewhere not judged yet; if so, the folders above where it leads are."""
        resolved = self.host.resolved(rel)
        if resolved in self._seen:
            return False
        self._seen.add(resolved)
        self.above(resolved)
        return True

    def above(self, rel: str) -> None:
        """The folders above ``rel`` (as the host resolves it) must let others through (search)."""
        parts = self.host.resolved(rel).strip("/").split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            shown = "/" + "/".join(parts[:depth])
            if shown in self._seen:
                continue
            self._seen.add(shown)
            try:
                mode = self.host.stat(shown).st_mode
            except DeadlineExceeded:
                raise
            except OSError as error:
                self.denied.append(error)
                return
            self.found.append(_judge(shown, mode, search_only=True))

    def bad(self) -> list[BadDirectory]:
        return [bad for bad in self.found if bad is not None]


def _judge(shown: str, st_mode: int, search_only: bool = False) -> BadDirectory | None:
    """A folder the scan service lists must be readable and searchable by group and others, and writable by
    neither; one it only goes through (above the connector's, or above where a link leads) searchable."""
    mode = stat.S_IMODE(st_mode)
    needed = stat.S_IXGRP | stat.S_IXOTH if search_only else stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
    not_readable = mode & needed != needed
    writable = not search_only and bool(mode & (stat.S_IWGRP | stat.S_IWOTH))
    if not (not_readable or writable):
        return None
    return BadDirectory(shown, mode, not_readable, writable)


# -- accounts: NSS on the live root, the tree's own files under another --------------------------------
def user_exists(host: Host, name: str) -> bool:
    """NSS on the live root (LDAP, sssd, ... included); the tree's own passwd under another root."""
    if not host.live:
        return _account_line(host, "etc/passwd", name) is not None
    import pwd

    return _found(pwd.getpwnam, name)


def group_exists(host: Host, name: str) -> bool:
    if not host.live:
        return _account_line(host, "etc/group", name) is not None
    import grp

    return _found(grp.getgrnam, name)


def user_id(host: Host, name: str) -> int | None:
    """The user's uid (NSS on the live root, the tree's passwd otherwise); None when there is no such user."""
    if host.live:
        import pwd

        try:
            return pwd.getpwnam(name).pw_uid
        except KeyError:
            return None
    line = _account_line(host, "etc/passwd", name)
    fields = (line or b"").split(b":")
    return int(fields[2]) if len(fields) > 2 and fields[2].isdigit() and len(fields[2]) <= 10 else None


def _account_line(host: Host, rel: str, name: str) -> bytes | None:
    """The first line of ``rel`` (passwd, group) that starts with ``name:``; None when none does.

    The file is searched a block at a time, not read whole: a directory-sized passwd of
    millions of lines costs time (bounded by the deadline), never memory, and is never too big.
    """
    needle = b"\n" + name.encode() + b":"
    data = b"\n"  # the file's start is a line's start; what is kept is the tail or the line found
    read = 0
    with host.open_regular(rel) as handle:
        while True:
            host.tick()
            block = handle.read(ACCOUNT_BLOCK)
            data += block
            at = data.find(needle)
            if at >= 0 and (b"\n" in data[at + 1:] or not block or len(data) - at > ACCOUNT_BLOCK):
                return data[at + 1:].split(b"\n", 1)[0]
            if not block:
                return None
            data = data[at:] if at >= 0 else data[-len(needle):]
            read += len(block)
            if read > MAX_ACCOUNT_FILE:
                raise HostError(said("too_large_gib", path=host.display(rel), limit=MAX_ACCOUNT_FILE >> 30))


def _found(lookup: Callable[[str], object], name: str) -> bool:
    try:
        lookup(name)
    except KeyError:
        return False
    return True


COLLECTOR = Collector("scan_user", lambda p: probe(p.host, p.platform, p.cache.permissions))
