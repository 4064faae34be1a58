"""Fuzzing every reader: whatever a file holds, a reader returns facts or raises its own error, quickly.

The parsers of ampcli's output, the policy, the CVD header and the plists have their own fuzz tests
beside their unit tests; this module covers the rest and the rooted host's reads themselves, and
then feeds random bytes into the files of a whole healthy host.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secure_endpoint_monitoring.checks.catalog import Platform
from secure_endpoint_monitoring.checks.evaluate import evaluate
from secure_endpoint_monitoring.checks.evidence import system, version
from secure_endpoint_monitoring.checks.evidence.ampcli import parse_about, parse_policy
from secure_endpoint_monitoring.checks.evidence.processes import parse_stat
from secure_endpoint_monitoring.checks.host import Host, HostError
from secure_endpoint_monitoring.checks.messages import printable
from secure_endpoint_monitoring.checks.report import State
from tests.hosttree import LinuxTree

FAST = settings(max_examples=60, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
SLOW = settings(max_examples=25, deadline=5000, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FAST
@given(st.text(max_size=400))
def test_os_release_parses_any_text(text: str) -> None:
    fields = system.parse_os_release(text)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items())


@FAST
@given(st.text(max_size=300))
def test_proc_stat_parses_or_raises_host_error(text: str) -> None:
    try:
        parsed = parse_stat(text, "/proc/1/stat")
    except HostError as error:
        assert "/proc/1/stat" in str(error)
        return
    assert parsed.start_ticks >= 0


@FAST
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40), st.integers(0, 2**64),
       st.sampled_from(["S", "Z", "R", "X", "D", "t"]))
def test_proc_stat_names_may_hold_anything(name: str, ticks: int, state: str) -> None:
    """The name sits in parentheses and may itself hold ") " and spaces: only the last ")" ends it."""
    text = f"42 ({name}) {state} " + " ".join(["1"] * 18) + f" {ticks} 0 0\n"
    parsed = parse_stat(text, "/proc/42/stat")
    assert (parsed.name, parsed.state, parsed.start_ticks) == (name, state, ticks)


@FAST
@given(st.binary(max_size=400))
def test_global_xml_parses_or_raises_value_error(data: bytes) -> None:
    try:
        found = version.parse(data, "/opt/cisco/amp/etc/global.xml")
    except ValueError:
        return
    assert isinstance(found, str)


@FAST
@given(st.text(max_size=400))
def test_about_and_policy_output_parse(text: str) -> None:
    assert isinstance(parse_about(text), str)
    definition_version, updated = parse_policy(text)
    assert isinstance(definition_version, str) and (updated is None or isinstance(updated, float))


@FAST
@given(st.text(max_size=200))
def test_printable_leaves_nothing_that_breaks_an_output(text: str) -> None:
    shown = printable(text)
    shown.encode("utf-8")  # no lone surrogate
    assert "|" not in shown and shown.isprintable()  # no control, format, separator or unassigned character
    assert printable(shown) == shown  # applied again where it is shown, it changes nothing
    if text.isprintable() and "|" not in text:
        assert shown == text


KINDS = ["file", "fifo", "dir", "missing", "link_in", "link_out", "link_loop", "device"]


def _make(path: Path, kind: str, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "file":
        path.write_bytes(data)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "dir":
        path.mkdir()
    elif kind == "link_in":
        (path.parent / "target").write_bytes(data)
        os.symlink("target", path)
    elif kind == "link_out":
        os.symlink("/etc/hostname", path)
    elif kind == "link_loop":
        os.symlink(path.name, path)
    elif kind == "device":
        os.mknod(path, 0o644 | stat.S_IFCHR, os.makedev(1, 5))


@SLOW
@given(st.sampled_from(KINDS), st.binary(max_size=2000), st.integers(0, 10**6))
def test_the_hosts_reads_return_or_raise_os_errors_only(tmp_path: Path, kind: str, data: bytes, n: int) -> None:
    root = tmp_path / f"r{n}-{time.monotonic_ns()}"
    _make(root / "etc/thing", kind, data)
    host = Host(str(root), run_programs=True)
    started = time.monotonic()
    for read in (lambda: host.read_bytes("etc/thing", limit=1024), lambda: host.exists("etc/thing"),
                 lambda: host.is_dir("etc/thing"), lambda: host.listdir("etc/thing"),
                 lambda: host.read_optional("etc/thing"), lambda: host.stat("etc/thing")):
        with contextlib.suppress(OSError):
            read()
    assert time.monotonic() - started < 1.0
    if kind in ("fifo", "device"):
        try:
            host.read_bytes("etc/thing")
        except HostError as error:
            assert "not a regular file" in str(error)
        else:
            raise AssertionError("a special file was read")


HOST_FILES = ["etc/os-release", "etc/passwd", "etc/group", "etc/login.defs", "proc/modules", "proc/meminfo",
              "proc/stat", "proc/sys/kernel/osrelease", "sys/fs/selinux/enforce", "etc/selinux/config",
              LinuxTree.POLICY, LinuxTree.GLOBAL, f"{LinuxTree.DEFINITIONS}/daily.cvd", "proc/1001/stat",
              "proc/1001/comm", "proc/1002/stat"]


@SLOW
@given(st.sampled_from(HOST_FILES), st.binary(max_size=3000), st.integers(0, 10**6))
def test_random_bytes_in_any_file_of_a_healthy_host(tmp_path: Path, rel: str, data: bytes, n: int) -> None:
    """Any content in any one file: the evaluation answers, every state is a state, the JSON encodes."""
    tree = LinuxTree(tmp_path / f"h{n}-{time.monotonic_ns()}").healthy()
    tree.write(rel, data)
    report = evaluate(Host(str(tree.root), run_programs=True), deadline=time.monotonic() + 5)
    assert report.platform is Platform.LINUX
    assert all(isinstance(r.state, State) for r in report.all_results())
    json.dumps(report.to_dict("nl"), ensure_ascii=False).encode("utf-8")
