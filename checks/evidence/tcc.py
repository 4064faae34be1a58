"""Full Disk Access grants: the system ``TCC.db`` (with its WAL, read as a private copy) and MDM overrides."""

from __future__ import annotations

import os
from typing import NamedTuple

from ..host import Host
from ..messages import Msg, msg, os_reason, said, sqlite_reason
from . import Collector

TCC_DIR = "Library/Application Support/com.apple.TCC"
TCC_DB = f"{TCC_DIR}/TCC.db"
TCC_WAL = f"{TCC_DB}-wal"
MDM_OVERRIDES = f"{TCC_DIR}/MDMOverrides.plist"
MAX_DB = 64 << 20  # a Mac's TCC.db is well under 1 MiB
MAX_SQLITE_STEPS = 50_000_000  # virtual machine steps: far above what the real table needs
MAX_ROWS = 100_000
FULL_DISK_ACCESS = "kTCCServiceSystemPolicyAllFiles"


class TccError(ValueError):
    pass


class TccFacts(NamedTuple):
    allowed: frozenset[str]  # clients (bundle ids or paths) with Full Disk Access, from TCC.db or MDM
    database_error: str = ""  # why TCC.db could not be read: only the MDM grants are known then

    def has_access(self, client: str) -> bool:
        return client in self.allowed


def probe(host: Host) -> TccFacts:
    """The grants of both sources. An MDM grant proves access on its own (a user cannot take it back), so an
    unreadable TCC.db leaves the MDM grants known; an unreadable MDMOverrides.plist fails the collector."""
    mdm = _mdm(host)
    try:
        database = _database(host)
    except TccError as error:
        if not mdm:
            raise
        return TccFacts(frozenset(mdm), error.args[0] if error.args else str(error))  # keeps its Dutch
    return TccFacts(frozenset(database | mdm))


def _database(host: Host) -> set[str]:
    """Clients TCC.db grants Full Disk Access.

    macOS keeps TCC.db in WAL mode: recent grants may sit in ``TCC.db-wal`` only.
    Opening the live file read-only with ``immutable=1`` would ignore the WAL, and
    opening it normally would take locks in macOS's own database. So both files
    are read (safely, bounded) into a private folder and the copy is queried.
    """
    import shutil
    import tempfile

    where = host.display(TCC_DB)
    try:
        database = host.read_bytes(TCC_DB, limit=MAX_DB)
    except FileNotFoundError:
        raise TccError(said("tcc_missing", path=where)) from None
    except PermissionError:
        raise TccError(said("tcc_denied", path=where, hint=_needs_fda(host))) from None
    except OSError as error:
        raise TccError(said("tcc_unreadable", path=where, reason=os_reason(error), hint="")) from None
    try:
        wal: bytes | None = host.read_bytes(TCC_WAL, limit=MAX_DB)
    except FileNotFoundError:
        wal = None
    except OSError as error:
        # Without its WAL the database may lack recent grants: no verdict rather than a false fault.
        raise TccError(said("tcc_unreadable", path=host.display(TCC_WAL), reason=os_reason(error), hint="")) from None
    folder = tempfile.mkdtemp(prefix="secure-endpoint-tcc-")
    try:
        copy = os.path.join(folder, "TCC.db")
        for name, data in (("TCC.db", database), ("TCC.db-wal", wal)):
            if data is not None:
                with open(os.path.join(folder, name), "xb") as handle:
                    handle.write(data)
        return _query(copy, where)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _query(copy: str, where: str) -> set[str]:
    import sqlite3  # only macOS roots get here

    try:
        connection = sqlite3.connect(copy, timeout=1)
    except sqlite3.Error as error:
        raise TccError(said("tcc_unopenable", path=where, reason=sqlite_reason(error))) from None
    # A crafted database (an 'access' view over a recursive query, say) must not run forever.
    budget = [MAX_SQLITE_STEPS // 1000]
    connection.set_progress_handler(lambda: _spend(budget), 1000)
    try:
        columns = {row[1] for row in connection.execute("PRAGMA table_info(access)")}
        if not columns:
            raise TccError(said("tcc_no_table", path=where))
        if "auth_value" in columns:
            granted = "auth_value = 2"
        elif "allowed" in columns:
            granted = "allowed = 1"
        else:
            raise TccError(said("tcc_no_columns", path=where))
        rows = connection.execute(
            f"SELECT client FROM access WHERE service = ? AND {granted}", (FULL_DISK_ACCESS,)).fetchall()
    except sqlite3.Error as error:
        raise TccError(said("tcc_unreadable", path=where, reason=sqlite_reason(error), hint="")) from None
    finally:
        connection.close()
    return {str(client) for (client,) in rows[:MAX_ROWS]}


def _needs_fda(host: Host) -> Msg | str:
    """On the live Mac, what an unreadable TCC file most likely means."""
    return msg("tcc_needs_fda") if host.live else ""


def _spend(budget: list[int]) -> int:
    """SQLite's progress handler: non-zero (abort) once the step budget is used up."""
    budget[0] -= 1
    return 1 if budget[0] < 0 else 0


def _mdm(host: Host) -> set[str]:
    """Clients an MDM profile allows; a missing file means no MDM grants, an unreadable one raises."""
    from .macapp import load_plist

    where = host.display(MDM_OVERRIDES)
    try:
        data = host.read_bytes(MDM_OVERRIDES, limit=16 << 20)
    except FileNotFoundError:
        return set()
    except OSError as error:
        raise TccError(said("tcc_unreadable", path=where, reason=os_reason(error), hint=_needs_fda(host))) from None
    try:
        overrides = load_plist(data, where)
    except ValueError as error:
        raise TccError(str(error)) from None
    allowed = set()
    for client, services in overrides.items():
        if not isinstance(services, dict):
            continue
        entry = services.get(FULL_DISK_ACCESS)
        # Profiles write either a boolean Allowed or an Authorization of "Allow".
        if isinstance(entry, dict) and (entry.get("Allowed") in (True, 1) or entry.get("Authorization") == "Allow"):
            allowed.add(str(client))
    return allowed


COLLECTOR = Collector("tcc", lambda p: probe(p.host))
