"""CVD headers and integrity: parsing, MD5 check, and the per-file verdict cache."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secure_endpoint_monitoring.checks.catalog import Platform
from secure_endpoint_monitoring.checks.evidence import definitions
from secure_endpoint_monitoring.checks.host import Host
from tests.hosttree import LinuxTree, cvd_bytes


def test_header_fields() -> None:
    header = definitions.parse_header(cvd_bytes(build_time=1_700_000_000)[:512])
    assert header.version == 27100 and header.signatures == 2048000 and header.flevel == 90
    assert header.build_time == 1_700_000_000


def test_build_time_from_the_time_field_when_stime_is_missing() -> None:
    raw = b"ClamAV-VDB:14 Jun 2023 07-28 +0000:26935:2034434:90:abc:dsig:builder:".ljust(512)
    assert definitions.parse_header(raw).build_time == 1686727680.0


@pytest.mark.parametrize("raw", [
    b"", b"ClamAV-VDB:", b"ClamAV-VDB:a:b:c:d:e:f:g:h", b"PK\x03\x04", b"ClamAV-VDB:\xff" * 9,
])
def test_bad_headers(raw: bytes) -> None:
    with pytest.raises(definitions.HeaderError):
        definitions.parse_header(raw)


@given(st.binary(max_size=600))
def test_any_bytes_parse_or_raise_header_error(raw: bytes) -> None:
    with contextlib.suppress(definitions.HeaderError):
        definitions.parse_header(raw)


@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=300))
def test_any_ascii_after_the_magic(rest: str) -> None:
    with contextlib.suppress(definitions.HeaderError):
        definitions.parse_header(("ClamAV-VDB:" + rest).encode())


def test_integrity_and_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = LinuxTree(tmp_path / "host")
    tree.definitions("main.cvd")
    tree.definitions("daily.cvd", corrupt=True)
    tree.definitions("bytecode.cld")
    host = Host(str(tree.root), run_programs=True)
    facts = definitions.probe(host, Platform.LINUX)
    by_name = {f.rel.rsplit("/", 1)[-1]: f for f in facts.files}
    cache: dict[str, str] = {}
    assert definitions.integrity_problem(host, by_name["main.cvd"], cache) is None
    assert "MD5" in (definitions.integrity_problem(host, by_name["daily.cvd"], cache) or "")
    assert definitions.integrity_problem(host, by_name["bytecode.cld"], cache) is None
    assert len(cache) == 2  # .cld files are never hashed

    opened: list[str] = []
    real_open = open

    def counting_open(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        opened.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", counting_open)
    for item in facts.files:
        definitions.integrity_problem(host, item, cache)
    assert opened == []  # every verdict came from the cache

    monkeypatch.undo()
    time.sleep(0.01)
    tree.definitions("main.cvd", corrupt=True)  # new content: new size/mtime, hashed again
    fresh = {f.rel.rsplit("/", 1)[-1]: f for f in definitions.probe(host, Platform.LINUX).files}
    assert definitions.integrity_problem(host, fresh["main.cvd"], cache) is not None


def test_newest_build_time(tmp_path: Path) -> None:
    tree = LinuxTree(tmp_path / "host")
    tree.definitions("main.cvd", build_time=1_600_000_000)
    tree.definitions("daily.cvd", build_time=1_700_000_000)
    tree.definitions("broken.cvd", data=b"not a cvd")
    facts = definitions.probe(Host(str(tree.root), run_programs=True), Platform.LINUX)
    assert facts.newest_build_time(1_700_000_000) == 1_700_000_000


def test_more_than_fifty_thousand_files_are_walked(tmp_path: Path) -> None:
    """The cap is a sanity bound, far above what a connector's folders hold (the old 50,000 was not)."""
    tree = LinuxTree(tmp_path / "host")
    tree.definitions("main.cvd")
    first = tree.write("opt/cisco/amp/var/cache/first", "")
    for folder in range(51):
        cache = first.parent / str(folder)
        cache.mkdir()
        for number in range(1000):
            os.link(first, cache / str(number))  # hard links: the quickest way to make 51,000 entries
    facts = definitions.probe(Host(str(tree.root), run_programs=True), Platform.LINUX)
    assert [f.path for f in facts.files] == ["/opt/cisco/amp/var/clamav/main.cvd"]


def test_a_huge_tree_fails_the_collector_instead_of_stalling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = LinuxTree(tmp_path / "host")
    tree.definitions("main.cvd")
    for number in range(30):
        tree.write(f"opt/cisco/amp/var/cache/{number}", "")
    monkeypatch.setattr(definitions, "MAX_ENTRIES", 20)
    with pytest.raises(OSError, match="more than 20 entries under /opt/cisco/amp"):
        definitions.probe(Host(str(tree.root), run_programs=True), Platform.LINUX)
