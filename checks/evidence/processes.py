"""The connector's processes, read through psutil from the root's ``proc``."""

from __future__ import annotations

import contextlib
import sys
from typing import NamedTuple

import psutil

from checks.catalog import Platform
from checks.host import Host, HostError

DAEMON = "ampdaemon"
SCANNER = "ampscansvc"
WATCHED = (DAEMON, SCANNER)
BPF_LINK = "anon_inode:bpf-prog"
MAX_FDS = 4096


class ProcessInfo(NamedTuple):
    pid: int
    name: str
    started: float  # seconds since the epoch


class ProcessFacts(NamedTuple):
    by_name: dict[str, list[ProcessInfo]]
    bpf_programs: int = 0  # eBPF programs held open by the configured holder processes (Linux)

    def running(self, name: str) -> bool:
        return bool(self.by_name.get(name))


def probe(host: Host, platform: Platform, bpf_holders: tuple[str, ...] = (DAEMON,)) -> ProcessFacts:
    """The watched processes; on Linux also how many eBPF programs ``bpf_holders`` hold.

    Which process holds the connector's eBPF programs is not public (ampdaemon
    is assumed), so the names are a setting.
    """
    if platform is Platform.MACOS:
        if not host.live:
            raise HostError("processes of a macOS host can only be read on the live root")
        return _live_macos()
    if sys.platform != "linux":
        raise HostError("the processes of a Linux root can only be read on Linux")
    if not host.is_dir("proc"):
        raise HostError(f"{host.display('proc')} is not mounted")
    found: dict[str, list[ProcessInfo]] = {name: [] for name in (*WATCHED, *bpf_holders)}
    procdir = host.path("proc")
    with host.procfs():
        for pid in psutil.pids():
            # A cheap look at comm first; psutil only for the few processes we watch.
            # Fresh Process objects, not process_iter's module-wide cache, which
            # would mix processes of different roots.
            if _comm(procdir, pid) not in found:
                continue
            try:
                proc = psutil.Process(pid)
                name = proc.name()
                if name in found:
                    found[name].append(ProcessInfo(pid, name, proc.create_time()))
            except psutil.Error:
                continue  # gone meanwhile, or a zombie
    bpf = sum(_count_bpf_fds(host, holder.pid) for name in set(bpf_holders) for holder in found[name])
    return ProcessFacts(found, bpf)


def _live_macos() -> ProcessFacts:
    """macOS has no /proc: psutil asks the kernel directly."""
    found: dict[str, list[ProcessInfo]] = {name: [] for name in WATCHED}
    for proc in psutil.process_iter(["name", "create_time"]):
        name = proc.info.get("name") or ""
        if name in found:
            found[name].append(ProcessInfo(proc.pid, name, float(proc.info.get("create_time") or 0.0)))
    return ProcessFacts(found)


def _comm(procdir: str, pid: int) -> str:
    try:
        with open(f"{procdir}/{pid}/comm", "rb") as handle:
            return handle.read(64).decode("utf-8", "replace").strip()
    except OSError:
        return ""


def _count_bpf_fds(host: Host, pid: int) -> int:
    """eBPF programs the process holds open: ``proc/<pid>/fd/*`` linking to ``anon_inode:bpf-prog``."""
    count = 0
    fd_dir = f"proc/{pid}/fd"
    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
        for entry in host.listdir(fd_dir)[:MAX_FDS]:
            with contextlib.suppress(FileNotFoundError):
                if host.readlink(f"{fd_dir}/{entry}") == BPF_LINK:
                    count += 1
    return count
