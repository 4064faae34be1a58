"""The connector's processes, read from the root's ``proc`` (psutil only on a live Mac).

Each process costs one small read (``proc/<pid>/stat`` holds its name, state and
start time), through an open ``proc`` folder. A table of the processes already
read is kept in the state (the plugin's state file, the exporter's memory): a
process still listed with the same folder inode is not read again, so a run on
a host with 20,000 processes reads only the few that are new or watched.

That identity holds on the kernel's ``proc``: a new process gets a new folder
inode even when it takes a pid used before. A copied tree on an ordinary file
system may give a folder made again the inode of the one removed, and its
files can be rewritten in place, so there the ``stat`` file's own inode, size
and times must be unchanged too (one ``stat`` call instead of a read).
Process 1 is always read: it tells whether ``proc`` is readable at all.

A process counts as the connector's only when root runs it (real and effective uid in
``proc/<pid>/status``; the scan service may also run as its own account, ``cisco-amp-scan-svc``,
as it is meant to) and, where its ``exe`` link can be read, that executable lies in the
connector's install folder: any user can name a process ``ampdaemon``, only root can make a
process of root or of another account. A start is known by its pid and its start time in clock
ticks since boot, which no step of the wall clock moves (``btime`` does), for one boot
(``proc/sys/kernel/random/boot_id``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import time

from checks.catalog import Platform
from checks.evidence import ascii_number, lines
from checks.evidence.scan_user import SCAN_ACCOUNT
from checks.host import Folder, Host, HostError
from checks.messages import said
from checks.records import Record

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
# A process may still exec another program just after it starts (fork, then exec): one younger than
# this when it was read is read again on the next scrape.
SETTLED_AFTER = 10.0
# A known process is read again after this long anyway, at most REVERIFY_PER_PROBE of them a probe:
# a long-lived process that execs a watched program later than SETTLED_AFTER is found within that
# time (plus, on a host with more processes than a probe re-reads in that time, what they take).
# On a host with 20,000 processes scraped every 15 s this is some 80 reads (~1 ms) a scrape.
REVERIFY_AFTER = 3600.0
REVERIFY_PER_PROBE = 128


class ProcessInfo(Record):
    pid: int
    name: str
    start_ticks: int  # clock ticks (CLOCK_TICKS a second) after boot


class ProcessFacts(Record):
    by_name: dict[str, list[ProcessInfo]]
    # eBPF programs held open by the configured holder processes (Linux); None when their fds cannot be read
    bpf_programs: int | None = 0
    bpf_error: str = ""
    boot_id: str = ""  # this boot of the host: process starts of another boot are not this one's
    uptime_ticks: int = 0  # clock ticks since boot, now

    def running(self, name: str) -> bool:
        return bool(self.by_name.get(name))


class Known(Record):
    """A process read earlier that need not be read again: neither watched nor young when read."""

    inode: int  # of its proc/<pid> folder: a pid used again by a new process comes with a new folder
    name: str
    read_at: float  # seconds since the epoch
    stamp: tuple[int, ...] = ()  # outside the kernel's proc: the stat file's inode, size, mtime, ctime


class ProcessTable:
    """The processes earlier probes read, by pid, for one boot of the host (``StateStore.process_table``).

    ``known`` is replaced whole at the end of each probe, so two probes at once never see half of one.
    """

    def __init__(self, boot: float = 0.0, known: dict[str, Known] | None = None) -> None:
        self.boot = boot
        self.known: dict[str, Known] = known or {}


def probe(host: Host, platform: Platform, bpf_holders: tuple[str, ...] = (DAEMON,),
          table: ProcessTable | None = None) -> ProcessFacts:
    """The watched processes (zombies do not count); on Linux also how many eBPF programs ``bpf_holders`` hold.

    Which process holds the connector's eBPF programs is not public (ampdaemon
    is assumed), so the names are a setting. ``table`` is read and updated: processes
    already known are not read again.
    """
    if platform is Platform.MACOS:
        if not host.live:
            raise HostError(said("macos_processes_live_only"))
        return _live_macos()
    if not host.is_dir("proc"):  # a permission error raises: it is not "not mounted"
        raise HostError(said("proc_not_mounted", path=host.display("proc")))
    with host.folder("proc") as proc:
        return _linux(proc, bpf_holders, table or ProcessTable())


def _since_boot(host: Host, boot: float) -> tuple[str, int]:
    """The boot id and the clock ticks since boot: the kernel's (``boot_id``, ``uptime``) where the tree
    has them, else worked out from ``btime`` (a copied tree without them: no clock steps there)."""
    boot_id = host.read_optional("proc/sys/kernel/random/boot_id")
    uptime = (host.read_optional("proc/uptime") or "").split()
    seconds = float(uptime[0]) if uptime and ascii_number(uptime[0].replace(".", "", 1), 16) else time.time() - boot
    known = boot_id.strip() if boot_id and len(boot_id.strip()) <= 64 and boot_id.strip().isprintable() else ""
    return known or f"btime {boot:.0f}", int(seconds * CLOCK_TICKS)


def _kernels(proc: Folder) -> bool:
    """Whether ``proc`` is the kernel's: the live root's, or a procfs mounted in the tree (its root has
    inode 1, and its files, process 1's stat included, have size 0)."""
    if proc.kernel:
        return True
    try:
        init = os.stat("1/stat", dir_fd=proc.fd, follow_symlinks=False)
    except OSError:
        return False
    return proc.status().st_ino == 1 and stat.S_ISREG(init.st_mode) and init.st_size == 0


def _stamp(proc: Folder, pid: str) -> tuple[int, ...]:
    """The stat file's inode, size, mtime and ctime; () when it cannot be looked at (the read will say why)."""
    try:
        found = os.stat(f"{pid}/stat", dir_fd=proc.fd, follow_symlinks=False)
    except OSError:
        return ()
    return found.st_ino, found.st_size, found.st_mtime_ns, found.st_ctime_ns


def _linux(proc: Folder, bpf_holders: tuple[str, ...], table: ProcessTable) -> ProcessFacts:
    # psutil is not used here: it opens proc files by plain path, which blocks on a FIFO,
    # never ends on a device and follows a symlinked proc/<pid> out of the root.
    wanted = frozenset((*WATCHED, *bpf_holders))
    found: dict[str, list[ProcessInfo]] = {name: [] for name in wanted}
    boot = _boot_time(proc.host)
    owners = _Owners(proc.host, Platform.LINUX)
    known = table.known if table.boot == boot else {}  # after a reboot pids and inodes start over
    kernel = _kernels(proc)
    fresh: dict[str, Known] = {}
    now = time.time()
    due = now - REVERIFY_AFTER  # known processes read before this are read again, a few a probe
    budget = REVERIFY_PER_PROBE
    init_read = False
    # Most entries are known: their path through the loop is kept to a lookup and two comparisons,
    # since a host may have tens of thousands.
    for entry in proc.scan(MAX_PROCESSES):
        pid = entry.name
        seen = known.get(pid)
        if (seen is not None and seen.inode == entry.inode() and seen.name not in wanted
                and (kernel or seen.stamp == _stamp(proc, pid))):
            if due <= seen.read_at <= now or budget <= 0:
                fresh[pid] = seen
                continue
            budget -= 1
        elif not (pid.isascii() and pid.isdigit()) or entry.is_symlink():
            continue  # not a process; a real proc/<pid> is a folder, a link may lead anywhere
        stamp = () if kernel else _stamp(proc, pid)  # before the read: a change after it is seen next time
        init_read = _read(proc, entry, boot, now, found, fresh, stamp, owners) or init_read
    if not init_read:
        # hidepid=1/2 hides other users' processes: absent would be a wrong verdict.
        raise HostError(said("proc_hidepid", path=proc.display()))
    table.boot, table.known = boot, fresh
    boot_id, uptime_ticks = _since_boot(proc.host, boot)  # after the listing: no process seen is younger
    # ... except in a tree whose proc/uptime is older than its processes: now is no earlier than they
    uptime_ticks = max([uptime_ticks, *(p.start_ticks for group in found.values() for p in group)])
    for processes in found.values():
        processes.sort()
    bpf, error = _bpf_programs(proc, [p.pid for name in set(bpf_holders) for p in found[name]])
    return ProcessFacts(found, bpf, error, boot_id, uptime_ticks)


def _read(proc: Folder, entry: os.DirEntry[str], boot: float, now: float, found: dict[str, list[ProcessInfo]],
          fresh: dict[str, Known], stamp: tuple[int, ...], owners: _Owners) -> bool:
    """Read one process: a watched one goes to ``found``, another old enough to ``fresh``; whether it is 1."""
    line = _read_stat(proc, entry.name)
    if line is None:
        return False  # gone meanwhile
    started = boot + line.start_ticks / CLOCK_TICKS
    if line.name in found:
        if line.state not in DEAD_STATES and _connectors(proc, entry.name, line.name, owners):  # zombie: not running
            found[line.name].append(ProcessInfo(int(entry.name), line.name, line.start_ticks))
    elif now - started >= SETTLED_AFTER and entry.name != "1":  # 1 is read on every probe anyway
        fresh[entry.name] = Known(entry.inode(), line.name, now, stamp)
    return entry.name == "1"


class _Owners:
    """Who may run the connector's processes and from where: root, the scan service also as its own
    account; from the install folders, also as the host resolves them (``/opt`` may be a link, as on
    rpm-ostree, and the kernel shows ``exe`` resolved). Each looked up once, when a process needs it."""

    def __init__(self, host: Host, platform: Platform) -> None:
        self.host = host
        self.platform = platform
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
            self._scan_uid, self._looked_up = self.host.user_id(SCAN_ACCOUNT), True
        return uid == self._scan_uid


def _connectors(proc: Folder, pid: str, name: str, owners: _Owners) -> bool:
    """Whether the process is the connector's: run by an allowed account (real and effective uid), and its
    executable in the install folder where ``exe`` can be read (another user's is not, without root: then
    the account alone counts, as only root can start a process of another account). A process that ended
    meanwhile is not."""
    try:
        status = proc.read(pid, "status", limit=MAX_STATUS).decode("utf-8", "replace")
    except (FileNotFoundError, ProcessLookupError):
        return False
    uids = next((line.split()[1:3] for line in lines(status) if line.startswith("Uid:")), [])
    if not (len(uids) == 2 and all(ascii_number(uid, 10) and owners.allowed(name, int(uid)) for uid in uids)):
        log.debug("%s: named %s, run by uid %s; not counted", proc.display(pid), name, uids)
        return False
    try:
        exe = proc.readlink(pid, "exe")
    except (PermissionError, FileNotFoundError, ProcessLookupError):
        return True
    if owners.installed(exe):
        return True
    log.debug("%s: runs %r, outside the connector's install folder; not counted", proc.display(pid), exe)
    return False


class _Stat(Record):
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
    return ProcessFacts(found, boot_id=f"boot {psutil.boot_time():.0f}", uptime_ticks=int(time.time() * CLOCK_TICKS))


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
