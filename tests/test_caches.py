"""What a long-running exporter keeps between scrapes: known processes and folder listings.

A cache may only change what a scrape costs: every case here is a change on the host that the next
probe must see although its last one was cached.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from checks.catalog import Platform
from checks.evidence import definitions, processes, scan_user
from checks.host import Folder, Host
from checks.walk import WalkCache, walk
from tests.hosttree import LinuxTree

LONG_AGO = time.time() - 3600


def _probe(tree: LinuxTree, table: processes.ProcessTable) -> processes.ProcessFacts:
    return processes.probe(Host(str(tree.root)), Platform.LINUX, table=table)


def _rename_stat(tree: LinuxTree, pid: int, name: str) -> None:
    """What an exec does: the same process (same proc folder) gets another name."""
    path = tree.root / f"proc/{pid}/stat"
    fields = path.read_text().split(" ")
    fields[1] = f"({name})"
    path.write_text(" ".join(fields))


def _fifo_at_stat(tree: LinuxTree, pid: int) -> None:
    path = tree.root / f"proc/{pid}/stat"
    path.unlink()
    os.mkfifo(path)


def test_a_known_process_is_not_read_again(healthy: LinuxTree) -> None:
    worker = healthy.process("worker")
    cache = processes.ProcessTable()
    _probe(healthy, cache)
    _fifo_at_stat(healthy, worker)  # reading it now would fail the collector
    assert _probe(healthy, cache).running("ampscansvc")
    with pytest.raises(OSError, match="is a FIFO"):
        _probe(healthy, processes.ProcessTable())


def test_a_pid_used_again_by_a_new_process_is_read(healthy: LinuxTree) -> None:
    healthy.stop("ampscansvc")
    pid = healthy.process("worker")
    cache = processes.ProcessTable()
    assert not _probe(healthy, cache).running("ampscansvc")
    # A new process with the same pid comes with a new proc folder (kept apart so its inode is new).
    (healthy.root / f"proc/{pid}").rename(healthy.root / "old-proc-folder")
    healthy.process("ampscansvc", pid=pid, started_ago=60)
    assert _probe(healthy, cache).running("ampscansvc")


def test_a_young_process_is_read_again_in_case_it_execs(healthy: LinuxTree) -> None:
    healthy.stop("ampscansvc")
    pid = healthy.process("sh", started_ago=1)
    cache = processes.ProcessTable()
    assert not _probe(healthy, cache).running("ampscansvc")
    _rename_stat(healthy, pid, "ampscansvc")
    assert _probe(healthy, cache).running("ampscansvc")


def test_an_old_process_that_execs_is_found_within_the_reverify_time(healthy: LinuxTree,
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


def test_watched_processes_are_always_read_again(healthy: LinuxTree) -> None:
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
    assert str(pid) not in cache.known and cache.known  # the workers are known, the watched ones never


# -- folder walks -------------------------------------------------------------------------------------
def _age(root: Path) -> None:
    """Folders whose times lie well before now, as on a host that is not being changed."""
    for folder, _dirs, _files in os.walk(root):
        os.utime(folder, (LONG_AGO, LONG_AGO))


class _Listings:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.folders: list[str] = []
        scan = Folder.scan

        def counting(folder: Folder, limit: int = 0) -> object:
            self.folders.append(folder.rel)
            return scan(folder, limit)

        monkeypatch.setattr(Folder, "scan", counting)


def test_unchanged_folders_are_not_listed_again(healthy: LinuxTree, monkeypatch: pytest.MonkeyPatch) -> None:
    healthy.definitions("extra.cld")
    _age(healthy.root / "opt")
    cache = WalkCache()
    listings = _Listings(monkeypatch)
    first = walk(Host(str(healthy.root)), "opt/cisco/amp", 6, keep=definitions._is_definition, cache=cache)
    assert listings.folders and time.time() - os.stat(healthy.root / "opt/cisco/amp").st_mtime > 3000
    listings.folders.clear()
    again = walk(Host(str(healthy.root)), "opt/cisco/amp", 6, keep=definitions._is_definition, cache=cache)
    assert listings.folders == []
    assert [(f.rel, f.files) for f in again] == [(f.rel, f.files) for f in first]


def test_a_new_definition_file_is_found_in_a_cached_folder(healthy: LinuxTree) -> None:
    _age(healthy.root / "opt")
    walks: dict[str, WalkCache] = {}
    host = Host(str(healthy.root))
    before = definitions.probe(host, Platform.LINUX, walks=walks)
    healthy.definitions("bytecode.cvd")
    healthy.write("opt/cisco/amp/var/new/deep/daily.cld", b"")
    after = definitions.probe(host, Platform.LINUX, walks=walks)
    assert {f.path for f in after.files} - {f.path for f in before.files} == {
        "/opt/cisco/amp/var/clamav/bytecode.cvd", "/opt/cisco/amp/var/new/deep/daily.cld"}
    healthy.remove("opt/cisco/amp/var/clamav/main.cvd")
    assert "/opt/cisco/amp/var/clamav/main.cvd" not in {f.path for f in definitions.probe(host, Platform.LINUX,
                                                                                          walks=walks).files}


def test_a_folder_changed_just_before_its_listing_is_listed_again(healthy: LinuxTree,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Within the file system's clock tick a change may leave a folder's times as they were."""
    cache = WalkCache()
    host = Host(str(healthy.root))
    walk(host, "opt/cisco/amp", 6, cache=cache)  # the tree was just written: every folder is "racy"
    assert not any(listing.trusted for listing in cache.listings.values())
    listings = _Listings(monkeypatch)
    walk(host, "opt/cisco/amp", 6, cache=cache)
    assert "opt/cisco/amp" in listings.folders


def test_a_permission_change_is_seen_in_a_cached_walk(healthy: LinuxTree) -> None:
    _age(healthy.root / "opt")
    cache = WalkCache()
    host = Host(str(healthy.root))
    assert scan_user.probe(host, Platform.LINUX, cache).bad_directories == ()
    healthy.chmod("opt/cisco/amp/var/clamav", 0o700)  # a folder's own mode: its fstat, never cached
    bad = scan_user.probe(host, Platform.LINUX, cache).bad_directories
    assert [b.path for b in bad] == ["/opt/cisco/amp/var/clamav"]


def test_a_walk_cut_short_keeps_what_it_listed(healthy: LinuxTree) -> None:
    _age(healthy.root / "opt")
    cache = WalkCache()
    host = Host(str(healthy.root))
    with pytest.raises(OSError, match="more than 5 entries under /opt/cisco/amp"):
        walk(host, "opt/cisco/amp", 6, cache=cache, limit=5)
    assert "opt/cisco/amp" in cache.listings
