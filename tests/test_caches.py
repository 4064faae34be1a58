"""What a long-running exporter keeps between scrapes: folder listings.

A cache may only change what a scrape costs: every case here is a change on the host that the next
probe must see although its last one was cached.
"""

from __future__ import annotations

import os
import time

import pytest

from secure_endpoint_monitoring.checks.catalog import Platform
from secure_endpoint_monitoring.checks.evidence import definitions, scan_user
from secure_endpoint_monitoring.checks.host import Folder, Host
from secure_endpoint_monitoring.checks.walk import WalkCache, walk
from tests.hosttree import LinuxTree

LONG_AGO = time.time() - 3600


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
        patch.setattr("secure_endpoint_monitoring.checks.walk._stamp",
                      lambda status: (status.st_dev, status.st_ino, status.st_mtime_ns, 0))
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
