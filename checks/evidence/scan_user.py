"""The scan service account and the permissions of the connector's directories (fault 5)."""

from __future__ import annotations

import stat
from collections.abc import Callable

from checks.catalog import Platform
from checks.evidence import lines
from checks.host import DeadlineExceeded, Host
from checks.records import Record
from checks.walk import WalkCache, walk_partly

SCAN_ACCOUNT = "cisco-amp-scan-svc"
DSLOCAL = "var/db/dslocal/nodes/Default"
# The scan service goes through /opt/cisco into the connector's folder: those are judged, down to
# PERMISSION_DEPTH levels below /opt/cisco. Other Cisco products beside it (Secure Client, Orbital) keep
# folders of their own there, which the scan service never needs.
PERMISSION_ROOT = "opt/cisco"
CONNECTOR_ROOT = "opt/cisco/amp"
PERMISSION_DEPTH = 3


class BadDirectory(Record):
    path: str  # as shown on the host
    mode: int
    not_readable: bool
    writable: bool


class ScanUserFacts(Record):
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
        user = looked_up(lambda: host.user_exists(SCAN_ACCOUNT))
        group = looked_up(lambda: host.group_exists(SCAN_ACCOUNT))
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
    """/opt/cisco, and the connector's folders below it (to depth 3), that others cannot enter or can write;
    and the folders that could not be listed (their own mode is judged all the same)."""
    if not host.is_dir(PERMISSION_ROOT):
        return [], []
    found = [_judge(host.display(PERMISSION_ROOT), host.stat(PERMISSION_ROOT).st_mode)]
    denied: list[OSError] = []
    try:
        connector = host.is_dir(CONNECTOR_ROOT)
    except PermissionError as error:  # /opt/cisco cannot be searched: its own mode is judged above
        return [bad for bad in found if bad is not None], [error]
    if connector:
        depth = PERMISSION_DEPTH - 1  # the connector's folder is one level below /opt/cisco
        folders, denied = walk_partly(host, CONNECTOR_ROOT, depth, cache=cache)
        for folder in folders:
            found.append(_judge(host.display(folder.rel), folder.status.st_mode))
            if folder.depth < depth:
                # A link to a folder is judged by where it leads (inside the root), as the scan service sees it.
                for name in folder.links:
                    try:
                        target = host.stat(f"{folder.rel}/{name}")
                    except FileNotFoundError:
                        continue  # a dangling link: no folder to judge
                    except DeadlineExceeded:
                        raise
                    except OSError as error:  # a loop, or a link into a folder this user cannot enter
                        denied.append(error)
                        continue
                    if stat.S_ISDIR(target.st_mode):
                        found.append(_judge(host.display(f"{folder.rel}/{name}"), target.st_mode))
    return [bad for bad in found if bad is not None], denied


def _judge(shown: str, st_mode: int) -> BadDirectory | None:
    mode = stat.S_IMODE(st_mode)
    needed = stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
    not_readable = mode & needed != needed
    writable = bool(mode & (stat.S_IWGRP | stat.S_IWOTH))
    if not (not_readable or writable):
        return None
    return BadDirectory(shown, mode, not_readable, writable)
