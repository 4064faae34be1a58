"""What a long-running exporter keeps between scrapes: known processes and folder listings.

A cache may only change what a scrape costs: every case here is a change on the host that the next
probe must see although its last one was cached.
"""

from __future__ import annotations

import os
import time

import pytest

from checks.catalog import Platform
from checks.evidence import definitions, processes, scan_user
from checks.host import Folder, Host
from checks.walk import WalkCache, walk
from tests.hosttree import LinuxTree

LONG_AGO = time.time() - 3600


def _probe(tree: LinuxTree, table: processes.ProcessTable) -> processes.ProcessFacts:
    return processes.probe(Host(str(tree.root), run_programs=True), Platform.LINUX, table=table)


def _rename_stat(tree: LinuxTree, pid: int, name: str) -> None:
    """What an exec does: the same process (same proc folder) gets another name and executable."""
    path = tree.root / f"proc/{pid}/stat"
    fields = path.read_text().split(" ")
    fields[1] = f"({name})"
    path.write_text(" ".join(fields))
    tree.symlink(f"proc/{pid}/exe", f"/opt/cisco/amp/bin/{name}")


def _fifo_at_stat(tree: LinuxTree, pid: int) -> None:
    path = tree.root / f"proc/{pid}/stat"
    path.unlink()
    os.mkfifo(path)


class _Reads:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.pids: list[str] = []
        read = processes._read_stat

        def counting(proc: Folder, pid: str) -> object:
            self.pids.append(pid)
            return read(proc, pid)

        monkeypatch.setattr(processes, "_read_stat", counting)


@pytest.fixture
def kernel_proc(monkeypatch: pytest.MonkeyPatch) -> None:
    """Take the tree's proc for the kernel's: a folder inode alone tells a process from a new one."""
    monkeypatch.setattr(processes, "_kernels", lambda proc: True)


def test_a_known_process_is_not_read_again(healthy: LinuxTree, monkeypatch: pytest.MonkeyPatch) -> None:
    worker = healthy.process("worker")
    cache = processes.ProcessTable()
    _probe(healthy, cache)
    reads = _Reads(monkeypatch)
    assert _probe(healthy, cache).running("ampscansvc")
    assert str(worker) not in reads.pids and "1" in reads.pids  # process 1: always, to see proc is readable
    assert len(reads.pids) == 3  # 1, ampdaemon and ampscansvc


def test_a_known_process_rewritten_in_a_copied_tree_is_read_again(healthy: LinuxTree) -> None:
    """Outside the kernel's proc a file can change in place, its folder keeping its inode."""
    worker = healthy.process("worker")
    cache = processes.ProcessTable()
    _probe(healthy, cache)
    _fifo_at_stat(healthy, worker)
    with pytest.raises(OSError, match="is a FIFO"):
        _probe(healthy, cache)


def test_the_kernels_proc_trusts_the_folder_inode(healthy: LinuxTree, kernel_proc: None) -> None:
    worker = healthy.process("worker")
    cache = processes.ProcessTable()
    _probe(healthy, cache)
    _fifo_at_stat(healthy, worker)  # on the kernel's proc a file never changes kind: not looked at
    assert _probe(healthy, cache).running("ampscansvc")


def test_a_pid_used_again_by_a_new_process_is_read(healthy: LinuxTree, kernel_proc: None) -> None:
    healthy.stop("ampscansvc")
    pid = healthy.process("worker")
    cache = processes.ProcessTable()
    assert not _probe(healthy, cache).running("ampscansvc")
    # A new process with the same pid comes with a new proc folder (kept apart so its inode is new).
    (healthy.root / f"proc/{pid}").rename(healthy.root / "old-proc-folder")
    healthy.process("ampscansvc", pid=pid, started_ago=60)
    assert _probe(healthy, cache).running("ampscansvc")


def test_a_young_process_is_read_again_in_case_it_execs(healthy: LinuxTree, kernel_proc: None) -> None:
    healthy.stop("ampscansvc")
    pid = healthy.process("sh", started_ago=1)
    cache = processes.ProcessTable()
    assert not _probe(healthy, cache).running("ampscansvc")
    _rename_stat(healthy, pid, "ampscansvc")
    assert _probe(healthy, cache).running("ampscansvc")


def test_an_old_process_that_execs_is_found_within_the_reverify_time(healthy: LinuxTree, kernel_proc: None,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    healthy.stop("ampscansvc")
    pids = [healthy.process("sh", started_ago=3600) for _ in range(3)]
    cache = processes.ProcessTable()
    _probe(healthy, cache)
    for pid in pids:
        _rename_stat(healthy, pid, "ampscansvc")
    assert not _probe(healthy, cache).running("ampscansvc")  # settled, and read just now: trusted
    monkeypatch.setattr(processes, "REVERIFY_AFTER", 0.0)
    monkeypatch.setattr(processes, "REVERIFY_PER_PROBE", 2)
    assert len(_probe(healthy, cache).by_name["ampscansvc"]) == 2  # at most two re-read per probe
    assert len(_probe(healthy, cache).by_name["ampscansvc"]) == 3


def test_watched_processes_are_always_read_again(healthy: LinuxTree, kernel_proc: None) -> None:
    cache = processes.ProcessTable()
    assert _probe(healthy, cache).running("ampscansvc")
    pid = next(p.pid for p in _probe(healthy, cache).by_name["ampscansvc"])
    path = healthy.root / f"proc/{pid}/stat"
    fields = path.read_text().split(" ")
    fields[2] = "Z"
    path.write_text(" ".join(fields))
    assert not _probe(healthy, cache).running("ampscansvc")
    healthy.kill(pid)
    assert not _probe(healthy, cache).running("ampscansvc")
    assert str(pid) not in cache.known  # the watched ones are never kept


# -- folder walks -------------------------------------------------------------------------------------
class _Listings:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.folders: list[str] = []
        scan = Folder.scan

        def counting(folder: Folder, limit: int = 0) -> object:
            self.folders.append(folder.rel)
            return scan(folder, limit)

        monkeypatch.setattr(Folder, "scan", counting)


def _walks(tree: LinuxTree, cache: WalkCache) -> list[tuple[str, tuple[str, ...]]]:
    found = walk(Host(str(tree.root)), "opt/cisco/amp", 6, keep=definitions._is_definition, cache=cache)
    return [(f.rel, f.files) for f in found]


def test_unchanged_folders_are_not_listed_again(healthy: LinuxTree, monkeypatch: pytest.MonkeyPatch) -> None:
    healthy.definitions("extra.cld")
    cache = WalkCache()
    listings = _Listings(monkeypatch)
    first = _walks(healthy, cache)
    assert "opt/cisco/amp/var/clamav" in listings.folders
    listings.folders.clear()
    assert _walks(healthy, cache) == first and "opt/cisco/amp/var/clamav" in listings.folders  # listed twice...
    listings.folders.clear()
    assert _walks(healthy, cache) == first and listings.folders == []  # ... then trusted


def test_a_new_definition_file_is_found_in_a_cached_folder(healthy: LinuxTree) -> None:
    walks: dict[str, WalkCache] = {}
    host = Host(str(healthy.root), run_programs=True)
    definitions.probe(host, Platform.LINUX, walks=walks)
    before = definitions.probe(host, Platform.LINUX, walks=walks)  # every listing confirmed now
    healthy.definitions("bytecode.cvd")
    healthy.write("opt/cisco/amp/var/new/deep/daily.cld", b"")
    after = definitions.probe(host, Platform.LINUX, walks=walks)
    assert {f.path for f in after.files} - {f.path for f in before.files} == {
        "/opt/cisco/amp/var/clamav/bytecode.cvd", "/opt/cisco/amp/var/new/deep/daily.cld"}
    healthy.remove("opt/cisco/amp/var/clamav/main.cvd")
    assert "/opt/cisco/amp/var/clamav/main.cvd" not in {f.path for f in definitions.probe(host, Platform.LINUX,
                                                                                          walks=walks).files}


def test_a_change_that_leaves_the_times_as_they_were_is_seen(healthy: LinuxTree) -> None:
    """Within one tick of a coarse file system clock a change may leave a folder's times as they were."""
    folder = healthy.root / "opt/cisco/amp/var/clamav"
    hour_ago = time.time_ns() - 3600 * 10**9
    os.utime(folder, ns=(hour_ago, hour_ago))  # a file server whose clock is behind ours, say
    cache = WalkCache()
    _walks(healthy, cache)
    times = os.stat(folder)
    healthy.definitions("bytecode.cvd")
    os.utime(folder, ns=(times.st_atime_ns, times.st_mtime_ns))  # the mtime as it was (a same-tick change)
    stamp = os.stat(folder)
    assert stamp.st_mtime_ns == times.st_mtime_ns
    with pytest.MonkeyPatch.context() as patch:  # and the ctime too, which a real clock tick would keep
        patch.setattr("checks.walk._stamp", lambda status: (status.st_dev, status.st_ino, status.st_mtime_ns, 0))
        assert ("opt/cisco/amp/var/clamav", ("bytecode.cvd", "daily.cvd", "main.cvd")) in _walks(healthy, cache)


def test_a_permission_change_is_seen_in_a_cached_walk(healthy: LinuxTree) -> None:
    cache = WalkCache()
    host = Host(str(healthy.root), run_programs=True)
    assert scan_user.probe(host, Platform.LINUX, cache).bad_directories == ()
    healthy.chmod("opt/cisco/amp/var/clamav", 0o700)  # a folder's own mode: its fstat, never cached
    bad = scan_user.probe(host, Platform.LINUX, cache).bad_directories
    assert [b.path for b in bad] == ["/opt/cisco/amp/var/clamav"]


def test_a_walk_cut_short_keeps_what_it_listed(healthy: LinuxTree) -> None:
    cache = WalkCache()
    host = Host(str(healthy.root), run_programs=True)
    with pytest.raises(OSError, match="more than 5 entries under /opt/cisco/amp"):
        walk(host, "opt/cisco/amp", 6, cache=cache, limit=5)
    assert "opt/cisco/amp" in cache.listings


def test_only_the_kernels_proc_is_taken_for_the_kernels(healthy: LinuxTree) -> None:
    with Host(str(healthy.root), run_programs=True).folder("proc") as copied:
        assert not processes._kernels(copied)
    with Host("/").folder("proc") as live:
        assert processes._kernels(live)


# -- links in the connector's folders (as the walk before the cache judged them) -------------------------
def test_a_linked_folder_is_judged_by_where_it_leads(healthy: LinuxTree) -> None:
    healthy.write("data/amp-var/keep", "")
    (healthy.root / "data/amp-var").chmod(0o777)
    healthy.remove("opt/cisco/amp/var")
    healthy.symlink("opt/cisco/amp/var", "/data/amp-var")  # absolute: resolved inside the root
    for cache in (None, WalkCache()):
        bad = scan_user.probe(Host(str(healthy.root), run_programs=True), Platform.LINUX, cache).bad_directories
        assert [(b.path, b.writable) for b in bad] == [("/opt/cisco/amp/var", True)]


def test_linked_definition_files_are_read_and_linked_folders_are_not(healthy: LinuxTree) -> None:
    healthy.definitions("main.cvd")
    healthy.write("srv/defs/extra.cvd", (healthy.root / "opt/cisco/amp/var/clamav/main.cvd").read_bytes())
    healthy.symlink("opt/cisco/amp/var/clamav/extra.cvd", "/srv/defs/extra.cvd")
    (healthy.root / "srv/folder.cvd").mkdir()
    healthy.symlink("opt/cisco/amp/var/clamav/folder.cvd", "/srv/folder.cvd")
    healthy.symlink("opt/cisco/amp/var/clamav/dangling.cvd", "/nowhere.cvd")
    facts = definitions.probe(Host(str(healthy.root), run_programs=True), Platform.LINUX, walks={})
    assert sorted(f.path.rpartition("/")[2] for f in facts.files) == ["daily.cvd", "extra.cvd", "main.cvd"]
    assert all(f.header is not None for f in facts.files)
