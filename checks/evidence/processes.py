"""The connector's processes: on Linux from its systemd unit's cgroup and the root's ``proc`` (psutil only
on a live Mac).

systemd keeps every process of a service in the service's cgroup, so the unit's ``cgroup.procs`` names
the connector's pids and each costs one ``proc/<pid>/stat`` read, whatever the host's size. Only when
that cannot show every watched process (no systemd: EL6's upstart, containers, copied trees without
``sys``; a connector started by hand; a process missing) is all of ``proc`` listed, so an absence is
always confirmed by the full listing, never taken from the cgroup alone.

A process counts as the connector's only when root runs it (real and effective uid in
``proc/<pid>/status``; the scan service may also run as its own account, ``cisco-amp-scan-svc``,
as it is meant to, or any account while systemd keeps it in the unit: its own ``proc/<pid>/cgroup``),
and, where its ``exe`` link can be read, that executable lies in the connector's install folder: any
user can name a process ``ampdaemon`` or run a program of that folder, only root can make a process of
root or of another account, or put one into a system service. The unit's word counts a scan service
whose account the root's ``etc/passwd`` does not list (a directory account); it never makes a process
that is not root's the daemon (a process in the unit can rename itself).

A start is known by its pid and its start time in clock ticks since boot, which no step of the wall clock
moves (``btime`` does), for one boot (``proc/sys/kernel/random/boot_id``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from typing import NamedTuple

from ..catalog import Platform
from ..host import DeadlineExceeded, Folder, Host, HostError
from ..messages import said
from ..walk import walk
from . import Collector, ascii_number, lines
from .scan_user import SCAN_ACCOUNT, user_id

log = logging.getLogger(__name__)

DAEMON = "ampdaemon"
SCANNER = "ampscansvc"
WATCHED = (DAEMON, SCANNER)
BPF_LINK = "anon_inode:bpf-prog"
MAX_FDS = 65536
MAX_PROCESSES = 4_194_304  # the kernel's own ceiling (pid_max)
DEAD_STATES = ("Z", "X", "x")  # zombie, dead
# Where the connector's programs are (ampdaemon: docs/connector-facts.md; ampscansvc beside it, assumed;
# on a Mac also its support folder and its apps' folders).
INSTALL_DIRS = {
    Platform.LINUX: ("/opt/cisco/amp/",),
    Platform.MACOS: ("/opt/cisco/amp/", "/Library/Application Support/Cisco/", "/Applications/Cisco Secure Endpoint/",
                     "/Applications/Cisco AMP for Endpoints/", "/Applications/Cisco AMP/"),
}
MAX_STATUS = 1 << 16  # proc/<pid>/status is some 1.5 KiB
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
UNIT = "cisco-amp.service"  # Cisco's articles restart the connector with systemctl restart cisco-amp.service
# Where systemd keeps a system service's cgroup: the unified hierarchy (cgroup v2), then the hybrid and the
# legacy layouts' own trees (systemd's "Control Group APIs and Delegation"). A service may hold child cgroups.
CGROUP_ROOTS = ("sys/fs/cgroup", "sys/fs/cgroup/unified", "sys/fs/cgroup/systemd")
MAX_CGROUP_DEPTH = 4
MAX_CGROUPS = 64
MAX_CGROUP_BYTES = 1 << 20  # a cgroup.procs of every pid the kernel allows is some 30 MiB: none of ours


class ProcessInfo(NamedTuple):
    pid: int
    name: str
    start_ticks: int  # clock ticks (CLOCK_TICKS a second) after boot


class ProcessFacts(NamedTuple):
    by_name: dict[str, list[ProcessInfo]]
    # eBPF programs held open by the configured holder processes (Linux); None when their fds cannot be read
    bpf_programs: int | None = 0
    bpf_error: str = ""
    boot_id: str = ""  # this boot of the host: process starts of another boot are not this one's
    uptime_ticks: int = 0  # clock ticks since boot, now
    lookup: str = ""  # how they were found: "cgroup" (the unit's), "scan" (all of proc), "psutil" (a Mac)

    def running(self, name: str) -> bool:
        return bool(self.by_name.get(name))


def probe(host: Host, platform: Platform, bpf_holders: tuple[str, ...] = (DAEMON,), unit: str = UNIT) -> ProcessFacts:
    """The watched processes (zombies do not count); on Linux also how many eBPF programs ``bpf_holders`` hold.

    Which process holds the connector's eBPF programs is not public (ampdaemon
    is assumed), so the names are a setting; so is the unit's name.
    """
    if platform is Platform.MACOS:
        if not host.live:
            raise HostError(said("macos_processes_live_only"))
        return _live_macos()
    if not host.is_dir("proc"):  # a permission error raises: it is not "not mounted"
        raise HostError(said("proc_not_mounted", path=host.display("proc")))
    with host.folder("proc") as proc:
        return _linux(proc, bpf_holders, unit)


def _since_boot(host: Host, boot: float) -> tuple[str, int]:
    """The boot id and the clock ticks since boot: the kernel's (``boot_id``, ``uptime``) where the tree
    has them, else worked out from ``btime`` (a copied tree without them: no clock steps there)."""
    boot_id = host.read_optional("proc/sys/kernel/random/boot_id")
    uptime = (host.read_optional("proc/uptime") or "").split()
    seconds = float(uptime[0]) if uptime and ascii_number(uptime[0].replace(".", "", 1), 16) else time.time() - boot
    known = boot_id.strip() if boot_id and len(boot_id.strip()) <= 64 and boot_id.strip().isprintable() else ""
    return known or f"btime {boot:.0f}", int(seconds * CLOCK_TICKS)


def _linux(proc: Folder, bpf_holders: tuple[str, ...], unit: str) -> ProcessFacts:
    # psutil is not used here: it opens proc files by plain path, which blocks on a FIFO,
    # never ends on a device and follows a symlinked proc/<pid> out of the root.
    wanted = frozenset((*WATCHED, *bpf_holders))
    boot = _boot_time(proc.host)
    owners = _Owners(proc.host, Platform.LINUX, unit)
    lookup = "cgroup"
    pids = unit_pids(proc.host, unit)
    found = _read_all(proc, pids or [], wanted, owners)
    if not all(found.values()):  # a watched process not in the unit (or no unit at all): all of proc decides
        lookup = "scan"
        found = _scan(proc, wanted, owners)
    boot_id, uptime_ticks = _since_boot(proc.host, boot)  # after the reads: no process seen is younger
    # ... except in a tree whose proc/uptime is older than its processes: now is no earlier than they
    uptime_ticks = max([uptime_ticks, *(p.start_ticks for group in found.values() for p in group)])
    for group in found.values():
        group.sort()
    bpf, error = _bpf_programs(proc, [p.pid for name in set(bpf_holders) for p in found[name]])
    return ProcessFacts(found, bpf, error, boot_id, uptime_ticks, lookup)


def unit_pids(host: Host, unit: str) -> list[str] | None:
    """The pids systemd keeps in the unit's cgroup and the cgroups below it; None when no layout shows the
    unit, or its files cannot be read as they should (unreadable, a FIFO, too many, too large): the
    full listing then decides, so none of this can make a process "not running"."""
    for root in CGROUP_ROOTS:
        rel = f"{root}/system.slice/{unit}"
        try:
            if not host.is_dir(rel):
                continue
            folders = walk(host, rel, MAX_CGROUP_DEPTH, keep=lambda name: name == "cgroup.procs",
                           limit=MAX_CGROUPS * 64)
            if len(folders) > MAX_CGROUPS:
                return None
            return [pid for folder in folders if folder.files
                    for pid in host.read_text(f"{folder.rel}/cgroup.procs", limit=MAX_CGROUP_BYTES).split()]
        except DeadlineExceeded:
            raise
        except OSError as error:
            log.debug("the cgroup of %s cannot be read (%s): all of proc is listed", unit, error)
            return None
    return None


def _read_all(proc: Folder, pids: list[str], wanted: frozenset[str], owners: _Owners) -> dict[str, list[ProcessInfo]]:
    """The watched processes among ``pids``."""
    found: dict[str, list[ProcessInfo]] = {name: [] for name in wanted}
    for pid in dict.fromkeys(pids):  # a pid listed twice (a cgroup moved meanwhile) is read once
        if ascii_number(pid, 10):
            _read(proc, pid, found, owners)
    return found


def _scan(proc: Folder, wanted: frozenset[str], owners: _Owners) -> dict[str, list[ProcessInfo]]:
    """Every process of ``proc`` read for the watched ones; process 1 must be among them, or ``hidepid``
    hides other users' processes and an absence would be a wrong verdict."""
    found: dict[str, list[ProcessInfo]] = {name: [] for name in wanted}
    init_read = False
    for entry in proc.scan(MAX_PROCESSES):
        pid = entry.name
        if not (pid.isascii() and pid.isdigit()) or entry.is_symlink():
            continue  # not a process; a real proc/<pid> is a folder, a link may lead anywhere
        init_read = (_read(proc, pid, found, owners) and pid == "1") or init_read
    if not init_read:
        raise HostError(said("proc_hidepid", path=proc.display()))
    return found


def _read(proc: Folder, pid: str, found: dict[str, list[ProcessInfo]], owners: _Owners) -> bool:
    """Read one process: a watched one of the connector goes to ``found``; whether it was there to read."""
    line = _read_stat(proc, pid)
    if line is None:
        return False  # gone meanwhile
    if line.name in found and line.state not in DEAD_STATES and _connectors(proc, pid, line.name, owners):
        found[line.name].append(ProcessInfo(int(pid), line.name, line.start_ticks))  # a zombie is not running
    return True


class _Owners:
    """Who may run the connector's processes and from where: root, the scan service also as its own
    account; from the install folders, also as the host resolves them (``/opt`` may be a link, as on
    rpm-ostree, and the kernel shows ``exe`` resolved). Each looked up once, when a process needs it."""

    def __init__(self, host: Host, platform: Platform, unit: str = UNIT) -> None:
        self.host = host
        self.platform = platform
        self.unit_cgroup = f"/system.slice/{unit}"
        self._looked_up = False
        self._scan_uid: int | None = None
        self._folders: tuple[str, ...] = ()

    def installed(self, exe: str) -> bool:
        """Whether an executable's path (as the kernel shows it: `` (deleted)`` after it while an update
        replaces the file) lies in an install folder, written plainly (no ``..`` to climb out)."""
        path = exe[:-len(" (deleted)")] if exe.endswith(" (deleted)") else exe
        if os.path.normpath(path) != path:
            return False
        if path.startswith(INSTALL_DIRS[self.platform]):
            return True
        if not self._folders:
            self._folders = tuple(self._resolved(folder) for folder in INSTALL_DIRS[self.platform])
        return path.startswith(self._folders)

    def _resolved(self, folder: str) -> str:
        try:
            resolved = self.host.resolved(folder).rstrip("/")
        except OSError:  # a link loop: only the folder as written counts
            return folder
        # Moved or linked, the folder keeps its own name (amp, Cisco): a link to /, /tmp or /usr/bin would
        # make other programs the connector's.
        name = folder.rstrip("/").rsplit("/", 1)[-1]
        return resolved + "/" if resolved.endswith("/" + name) else folder

    def allowed(self, name: str, uid: int) -> bool:
        if uid == 0:
            return True
        if name != SCANNER:
            return False
        if not self._looked_up:
            self._scan_uid, self._looked_up = user_id(self.host, SCAN_ACCOUNT), True
        return uid == self._scan_uid

    def in_unit(self, proc: Folder, pid: str) -> bool:
        """Whether systemd keeps the process in the unit, by its own ``proc/<pid>/cgroup``: the unified
        hierarchy's line (``0::/system.slice/<unit>``) or the legacy one's (``N:name=systemd:...``), at or
        below the unit. Paths there are seen from the reader's cgroup namespace, so from a container with a
        cgroup namespace of its own none matches; neither does a file that cannot be read as it should
        (a user's own process may make its path too long to show): the account rule alone then decides."""
        try:
            text = proc.read(pid, "cgroup", limit=MAX_STATUS).decode("utf-8", "replace")
        except DeadlineExceeded:
            raise
        except OSError as error:
            log.debug("%s: %s; the unit does not vouch for it", proc.display(pid, "cgroup"), error)
            return False
        for line in lines(text):
            _, _, rest = line.partition(":")
            controllers, _, path = rest.partition(":")
            if controllers in ("", "name=systemd") and (path == self.unit_cgroup
                                                         or path.startswith(self.unit_cgroup + "/")):
                return True
        return False


def _connectors(proc: Folder, pid: str, name: str, owners: _Owners) -> bool:
    """Whether the process is the connector's: run by an allowed account (real and effective uid) or kept in
    the unit, and its executable in the install folder where ``exe`` can be read (another user's is not,
    without root: then the account or the unit alone counts). A process that ended meanwhile is not."""
    try:
        status = proc.read(pid, "status", limit=MAX_STATUS).decode("utf-8", "replace")
    except (FileNotFoundError, ProcessLookupError):
        return False
    uids = next((line.split()[1:3] for line in lines(status) if line.startswith("Uid:")), [])
    by_account = len(uids) == 2 and all(ascii_number(uid, 10) and owners.allowed(name, int(uid)) for uid in uids)
    # The unit vouches for the scan service alone: a process of the unit that is not root (the scan service
    # itself, which parses hostile files) can rename itself, and must never stand in for root's daemon.
    if not (by_account or (name == SCANNER and owners.in_unit(proc, pid))):
        log.debug("%s: named %s, run by uid %s outside the unit; not counted", proc.display(pid), name, uids)
        return False
    try:
        exe = proc.readlink(pid, "exe")
    except (PermissionError, FileNotFoundError, ProcessLookupError):
        return True
    if owners.installed(exe):
        return True
    log.debug("%s: runs %r, outside the connector's install folder; not counted", proc.display(pid), exe)
    return False


class _Stat(NamedTuple):
    name: str
    state: str
    start_ticks: int


def _read_stat(proc: Folder, pid: str) -> _Stat | None:
    """``proc/<pid>/stat``, or None when the process has ended."""
    try:
        text = proc.read(pid, "stat", limit=4096).decode("utf-8", "replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    return parse_stat(text, proc.display(pid, "stat"))


def parse_stat(text: str, where: str) -> _Stat:
    """Name, state and start time (clock ticks after boot); anything else raises ``HostError``.

    The name sits in parentheses and may hold anything, so the fields are split after the last one.
    """
    head, sep, tail = text.rpartition(")")
    fields = tail.split()
    if not sep or "(" not in head or len(fields) < 20 or not ascii_number(fields[19], 20):
        raise HostError(said("proc_stat_format", path=where))
    return _Stat(head.partition("(")[2], fields[0], int(fields[19]))


def _boot_time(host: Host) -> float:
    for line in lines(host.read_text("proc/stat", limit=1 << 20)):
        if line.startswith("btime ") and ascii_number(line[6:], 12):
            return float(line[6:])
    raise HostError(said("proc_no_btime", path=host.display("proc/stat")))


def _live_macos() -> ProcessFacts:
    """macOS has no /proc: psutil asks the kernel directly."""
    import psutil

    found: dict[str, list[ProcessInfo]] = {name: [] for name in WATCHED}
    owners = _Owners(Host("/"), Platform.MACOS)
    for proc in psutil.process_iter(["name", "create_time", "status", "uids", "exe"]):
        info = proc.info
        name = info.get("name") or ""
        if name not in found or info.get("status") == psutil.STATUS_ZOMBIE:
            continue
        uids, exe = info.get("uids"), info.get("exe")  # None where not readable (exe of root's, as a user)
        if uids is None or not all(owners.allowed(name, uid) for uid in (uids.real, uids.effective)):
            continue
        if exe and not owners.installed(exe):
            continue
        # create_time is fixed when the process starts: a later clock step does not move it
        found[name].append(ProcessInfo(proc.pid, name, int(float(info.get("create_time") or 0.0) * CLOCK_TICKS)))
    return ProcessFacts(found, boot_id=f"boot {psutil.boot_time():.0f}", uptime_ticks=int(time.time() * CLOCK_TICKS),
                        lookup="psutil")


def _bpf_programs(proc: Folder, pids: list[int]) -> tuple[int | None, str]:
    """eBPF programs the processes hold open: ``proc/<pid>/fd/*`` linking to ``anon_inode:bpf-prog``.

    Another user's fds are unreadable without root: that is "unknown", not "none".
    """
    count = 0
    for pid in map(str, pids):
        try:
            entries = proc.listdir(pid, "fd", limit=MAX_FDS)
        except (FileNotFoundError, ProcessLookupError):
            continue
        except PermissionError:
            return None, said("permission_denied", path=proc.display(pid, "fd"))
        for entry in entries:
            with contextlib.suppress(FileNotFoundError):
                if proc.readlink(pid, "fd", entry) == BPF_LINK:
                    count += 1
    return count, ""


COLLECTOR = Collector("processes",
                      lambda p: probe(p.host, p.platform, p.settings.bpf_processes, p.settings.connector_unit))
