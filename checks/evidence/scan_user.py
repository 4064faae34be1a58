"""The scan service account and the permissions of the connector's directories (fault 5)."""

from __future__ import annotations

import re
import stat
from typing import NamedTuple

from checks.catalog import Platform
from checks.host import Host

SCAN_ACCOUNT = "cisco-amp-scan-svc"
DSLOCAL = "var/db/dslocal/nodes/Default"
PERMISSION_ROOT = "opt/cisco"
PERMISSION_DEPTH = 3


class BadDirectory(NamedTuple):
    path: str  # as shown on the host
    mode: int
    not_readable: bool
    writable: bool


class ScanUserFacts(NamedTuple):
    user_exists: bool
    group_exists: bool
    usergroups_enab: bool | None  # Linux login.defs; None when not set or not Linux
    bad_directories: tuple[BadDirectory, ...]


def probe(host: Host, platform: Platform) -> ScanUserFacts:
    if platform is Platform.MACOS and not host.live:
        user = host.exists(f"{DSLOCAL}/users/{SCAN_ACCOUNT}.plist")
        group = host.exists(f"{DSLOCAL}/groups/{SCAN_ACCOUNT}.plist")
    else:
        user = host.user_exists(SCAN_ACCOUNT)
        group = host.group_exists(SCAN_ACCOUNT)
    enab = _usergroups_enab(host) if platform is Platform.LINUX else None
    bad = tuple(_bad_directories(host)) if platform is Platform.LINUX else ()
    return ScanUserFacts(user, group, enab, bad)


def _usergroups_enab(host: Host) -> bool | None:
    text = host.read_optional("etc/login.defs")
    if text is None:
        return None
    value = None
    for line in text.splitlines():
        match = re.match(r"\s*USERGROUPS_ENAB\s+(\S+)", line)
        if match:
            value = match.group(1).lower() == "yes"
    return value


def _bad_directories(host: Host) -> list[BadDirectory]:
    """Directories at or below /opt/cisco (depth 3) that others cannot enter, or that others can write."""
    if not host.is_dir(PERMISSION_ROOT):
        return []
    found = _judge(host, PERMISSION_ROOT)
    for rel, dirs, _files in host.walk(PERMISSION_ROOT, PERMISSION_DEPTH):
        for name in dirs:
            found.extend(_judge(host, f"{rel}/{name}"))
    return found


def _judge(host: Host, rel: str) -> list[BadDirectory]:
    mode = stat.S_IMODE(host.stat(rel).st_mode)
    needed = stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
    not_readable = mode & needed != needed
    writable = bool(mode & (stat.S_IWGRP | stat.S_IWOTH))
    if not (not_readable or writable):
        return []
    return [BadDirectory(host.display(rel), mode, not_readable, writable)]
