"""Full Disk Access grants: the system ``TCC.db`` (read-only, never locked) and MDM overrides beside it."""

from __future__ import annotations

import os
from typing import NamedTuple

from checks.host import Host, HostError

TCC_DIR = "Library/Application Support/com.apple.TCC"
TCC_DB = f"{TCC_DIR}/TCC.db"
MDM_OVERRIDES = f"{TCC_DIR}/MDMOverrides.plist"
FULL_DISK_ACCESS = "kTCCServiceSystemPolicyAllFiles"
NEEDS_FDA = (" (on a Mac, reading TCC.db needs Full Disk Access for the monitoring process: "
             "grant it to the exporter or plugin, e.g. by an MDM PPPC profile)")


class TccError(ValueError):
    pass


class TccFacts(NamedTuple):
    allowed: frozenset[str]  # clients (bundle ids or paths) with Full Disk Access, from TCC.db or MDM

    def has_access(self, client: str) -> bool:
        return client in self.allowed


def probe(host: Host) -> TccFacts:
    return TccFacts(frozenset(_database(host) | _mdm(host)))


def _database(host: Host) -> set[str]:
    """Clients TCC.db grants Full Disk Access."""
    import sqlite3  # only macOS roots get here
    import urllib.parse

    where = host.display(TCC_DB)
    try:
        path = host.path(TCC_DB)
    except HostError as error:
        raise TccError(f"{where}: {error}") from None
    if not os.path.isfile(path):
        raise TccError(f"{where} does not exist, so Full Disk Access cannot be judged")
    if not os.access(path, os.R_OK):
        raise TccError(f"{where}: permission denied{NEEDS_FDA if host.live else ''}")
    # immutable=1: SQLite takes no locks and writes nothing, so macOS's own use of the file is never disturbed.
    uri = f"file:{urllib.parse.quote(path)}?mode=ro&immutable=1"
    try:
        connection = sqlite3.connect(uri, uri=True, timeout=1)
    except sqlite3.Error as error:
        raise TccError(f"{where} cannot be opened ({error})") from None
    try:
        columns = {row[1] for row in connection.execute("PRAGMA table_info(access)")}
        if not columns:
            raise TccError(f"{where} has no 'access' table")
        if "auth_value" in columns:
            granted = "auth_value = 2"
        elif "allowed" in columns:
            granted = "allowed = 1"
        else:
            raise TccError(f"{where}: the access table has neither auth_value nor allowed")
        rows = connection.execute(
            f"SELECT client FROM access WHERE service = ? AND {granted}", (FULL_DISK_ACCESS,)).fetchall()
    except sqlite3.Error as error:
        detail = str(error)
        if "unable to open" in detail or "authorization" in detail:
            detail += NEEDS_FDA if host.live else ""
        raise TccError(f"{where} cannot be read ({detail})") from None
    finally:
        connection.close()
    return {str(client) for (client,) in rows}


def _mdm(host: Host) -> set[str]:
    """Clients an MDM profile allows; a missing file means no MDM grants, an unreadable one raises."""
    import plistlib

    where = host.display(MDM_OVERRIDES)
    try:
        data = host.read_bytes(MDM_OVERRIDES, limit=16 << 20)
    except FileNotFoundError:
        return set()
    except OSError as error:
        raise TccError(f"{where} cannot be read ({error.strerror or error}){NEEDS_FDA if host.live else ''}") from None
    try:
        overrides = plistlib.loads(data)
    except Exception:  # noqa: BLE001 - plistlib raises many types on damaged input
        raise TccError(f"{where} is not a valid plist") from None
    if not isinstance(overrides, dict):
        raise TccError(f"{where} does not hold a dictionary")
    allowed = set()
    for client, services in overrides.items():
        if not isinstance(services, dict):
            continue
        entry = services.get(FULL_DISK_ACCESS)
        # Profiles write either a boolean Allowed or an Authorization of "Allow".
        if isinstance(entry, dict) and (entry.get("Allowed") in (True, 1) or entry.get("Authorization") == "Allow"):
            allowed.add(str(client))
    return allowed
