"""The connector's processes, read from the root's ``proc`` (psutil only on a live Mac)."""

from __future__ import annotations

import contextlib
import os
import re
from typing import NamedTuple

from checks.catalog import Platform
from checks.host import Host, HostError

DAEMON = "ampdaemon"
SCANNER = "ampscansvc"
WATCHED = (DAEMON, SCANNER)
BPF_LINK = "anon_inode:bpf-prog"
MAX_FDS = 65536
DEAD_STATES = ("Z", "X", "x")  # zombie, dead
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class ProcessInfo(NamedTuple):
    pid: int
    name: str
    started: float  # seconds since the epoch


class ProcessFacts(NamedTuple):
    by_name: dict[str, list[ProcessInfo]]
    # eBPF programs held open by the configured holder processes (Linux); None when their fds cannot be read
    bpf_programs: int | None = 0
    bpf_error: str = ""

    def running(self, name: str) -> bool:
        return bool(self.by_name.get(name))


def probe(host: Host, platform: Platform, bpf_holders: tuple[str, ...] = (DAEMON,)) -> ProcessFacts:
    """The watched processes (zombies do not count); on Linux also how many eBPF programs ``bpf_holders`` hold.

    Which process holds the connector's eBPF programs is not public (ampdaemon
    is assumed), so the names are a setting.
    """
    if platform is Platform.MACOS:
        if not host.live:
            raise HostError("processes of a macOS host can only be read on the live root")
        return _live_macos()
    if not host.is_dir("proc"):
        raise HostError(f"{host.display('proc')} is not mounted")
    if not host.exists("proc/1"):
        # hidepid=1/2 hides other users' processes: absent would be a wrong verdict.
        raise HostError(f"{host.display('proc')} does not show process 1 (mounted with hidepid?)")
    found: dict[str, list[ProcessInfo]] = {name: [] for name in (*WATCHED, *bpf_holders)}
    boot: float | None = None
    for entry in host.listdir("proc"):
        if not (entry.isascii() and entry.isdigit()):
            continue
        # psutil is not used here: it opens proc files by plain path, which blocks on a FIFO,
        # never ends on a device and follows a symlinked proc/<pid> out of the root.
        name = _comm(host, entry)
        if name not in found:
            continue
        stat = read_stat(host, entry)
        if stat is None or stat.name != name or stat.state in DEAD_STATES:
            continue  # gone meanwhile, or a zombie: not running
        if boot is None:
            boot = _boot_time(host)
        found[name].append(ProcessInfo(int(entry), name, boot + stat.start_ticks / CLOCK_TICKS))
    bpf, error = _bpf_programs(host, [p.pid for name in set(bpf_holders) for p in found[name]])
    return ProcessFacts(found, bpf, error)


class _Stat(NamedTuple):
    name: str
    state: str
    start_ticks: int


def _comm(host: Host, pid: str) -> str:
    try:
        return host.read_bytes(f"proc/{pid}/comm", limit=256).decode("utf-8", "replace").strip()
    except (FileNotFoundError, ProcessLookupError):
        return ""  # the process ended while we looked


def read_stat(host: Host, pid: str) -> _Stat | None:
    """``proc/<pid>/stat``: the name sits in parentheses and may hold anything, so split after the last one."""
    try:
        text = host.read_bytes(f"proc/{pid}/stat", limit=4096).decode("utf-8", "replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    return parse_stat(text, host.display(f"proc/{pid}/stat"))


def parse_stat(text: str, where: str) -> _Stat:
    """Name, state and start time (clock ticks after boot); anything else raises ``HostError``."""
    head, sep, tail = text.rpartition(")")
    fields = tail.split()
    if not sep or "(" not in head or len(fields) < 20 or not re.fullmatch(r"[0-9]{1,20}", fields[19]):
        raise HostError(f"{where} is not in the kernel's format")
    return _Stat(head.partition("(")[2], fields[0], int(fields[19]))


def _boot_time(host: Host) -> float:
    match = re.search(r"^btime ([0-9]{1,12})$", host.read_text("proc/stat", limit=1 << 20), re.MULTILINE)
    if match is None:
        raise HostError(f"{host.display('proc/stat')} has no btime line")
    return float(match.group(1))


def _live_macos() -> ProcessFacts:
    """macOS has no /proc: psutil asks the kernel directly."""
    import psutil

    found: dict[str, list[ProcessInfo]] = {name: [] for name in WATCHED}
    for proc in psutil.process_iter(["name", "create_time", "status"]):
        name = proc.info.get("name") or ""
        if name in found and proc.info.get("status") != psutil.STATUS_ZOMBIE:
            found[name].append(ProcessInfo(proc.pid, name, float(proc.info.get("create_time") or 0.0)))
    return ProcessFacts(found)


def _bpf_programs(host: Host, pids: list[int]) -> tuple[int | None, str]:
    """eBPF programs the processes hold open: ``proc/<pid>/fd/*`` linking to ``anon_inode:bpf-prog``.

    Another user's fds are unreadable without root: that is "unknown", not "none".
    """
    count = 0
    for pid in pids:
        fd_dir = f"proc/{pid}/fd"
        try:
            entries = host.listdir(fd_dir, limit=MAX_FDS)
        except (FileNotFoundError, ProcessLookupError):
            continue
        except PermissionError:
            return None, f"permission denied: {host.display(fd_dir)}"
        for entry in entries:
            with contextlib.suppress(FileNotFoundError):
                if host.readlink(f"{fd_dir}/{entry}") == BPF_LINK:
                    count += 1
    return count, ""
