"""No program of a tree other than / runs without --ampcli.run-from-rootfs; --ampcli.status-file reads a saved
status instead. Whoever can write a copied tree must not get to run code as the checking user."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from pathlib import Path

import pytest

from secure_endpoint_monitoring.checks.host import Host
from secure_endpoint_monitoring.checks.programs import ProgramRefused
from tests.commands import run, script
from tests.daemons import exporter
from tests.hosttree import LinuxTree, faults_status

NOT_ASKED = "not asked: /opt/cisco/amp/bin/ampcli is not run under a root other than /"


def _planted(tree: LinuxTree) -> Path:
    """An ampcli that leaves a mark when it runs, and would report fault 18 if believed."""
    mark = tree.root.parent / "ran"
    tree.write(tree.AMPCLI, f"#!/bin/sh\necho ran > '{mark}'\nprintf 'Status: Connected\\nFault IDs: 18\\n'\n",
               mode=0o755)
    return mark


def _json(tree: LinuxTree, *args: str) -> dict:
    done = run("secure-endpoint-exporter", "--path.rootfs", str(tree.root), "--once", "--format", "json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _states(report: dict) -> dict[str, str]:
    return {fault["id"]: fault["state"] for fault in report["faults"]}


def _collector(report: dict, name: str) -> dict:
    return next(c for c in report["collectors"] if c["name"] == name)


def test_plugin_runs_nothing_from_the_tree_without_the_flag(healthy: LinuxTree) -> None:
    mark = _planted(healthy)
    done = run("check_secure_endpoint", "--path.rootfs", str(healthy.root), "--state-file", "", "-v")
    assert not mark.exists()
    lines = done.stdout.splitlines()
    # Nothing the tree's ampcli would say is believed, and nothing is reported as a fault either.
    assert done.returncode == 3, done.stdout
    assert lines[0].startswith("SECURE ENDPOINT UNKNOWN - Scan service restarting frequently (fault 6): state unknown")
    assert any(NOT_ASKED in line for line in lines)
    assert f"OK: Event monitoring overloaded (fault 18): not applicable: {NOT_ASKED}" in "\n".join(lines)
    assert f"OK: Connector status unavailable: not applicable: {NOT_ASKED}" in "\n".join(lines)


def test_once_runs_nothing_from_the_tree_without_the_flag(healthy: LinuxTree) -> None:
    mark = _planted(healthy)
    report = _json(healthy)
    assert not mark.exists()
    assert _states(report)["18"] == "not_applicable"
    assert _collector(report, "connector_status")["success"] is False
    assert _collector(report, "connector_status")["error"].startswith(NOT_ASKED)
    checks = {check["slug"]: check["state"] for check in report["checks"]}
    assert checks["ampcli_failed"] == "not_applicable"
    text = run("secure-endpoint-exporter", "--path.rootfs", str(healthy.root), "--once").stdout
    assert 'secure_endpoint_scrape_collector_success{collector="connector_status"} 0.0' in text
    reported = 'secure_endpoint_fault_reported{connector_severity="",fault="event_monitoring_overloaded",fault_id="18"}'
    assert f"{reported} 0.0" in text
    assert not mark.exists()


def test_the_flag_runs_it(healthy: LinuxTree) -> None:
    mark = _planted(healthy)
    report = _json(healthy, "--ampcli.run-from-rootfs")
    assert mark.exists()
    assert _states(report)["18"] == "active"


def test_server_runs_nothing_from_the_tree_without_the_flag(healthy: LinuxTree, tmp_path: Path) -> None:
    mark = _planted(healthy)
    with exporter(healthy.root, log=tmp_path / "log", run_from_rootfs=False) as server, \
            urllib.request.urlopen(f"http://{server.address}/metrics", timeout=30) as answer:
        text = answer.read().decode()
    assert not mark.exists()
    assert 'secure_endpoint_scrape_collector_success{collector="connector_status"} 0.0' in text
    assert 'secure_endpoint_fault_active{fault="event_monitoring_overloaded",fault_id="18",platform="linux"} 0.0' \
        in text


def test_missing_ampcli_still_reads_as_missing(healthy: LinuxTree) -> None:
    """Seeing that ampcli is absent runs nothing, so a tree without it says so with or without the flag."""
    healthy.remove(healthy.AMPCLI)
    checks = {check["slug"]: check for check in _json(healthy)["checks"]}
    assert checks["ampcli_failed"]["state"] == "active"
    assert "ampcli" in " ".join(checks["ampcli_failed"]["evidence"])


def test_host_refuses_to_start_a_tree_program(healthy: LinuxTree) -> None:
    mark = _planted(healthy)
    for host in (Host(str(healthy.root)), Host(str(healthy.root)).within(None)):
        with pytest.raises(ProgramRefused, match=r"--ampcli\.run-from-rootfs"):
            host.start(healthy.AMPCLI, ["status"])
    assert not mark.exists()
    assert Host("/").may_run and Host(str(healthy.root), run_programs=True).within(None).may_run


@pytest.mark.parametrize("command", ["check_secure_endpoint", "secure-endpoint-exporter"])
def test_status_file_replaces_ampcli(healthy: LinuxTree, tmp_path: Path, command: str) -> None:
    mark = _planted(healthy)
    saved = tmp_path / "ampcli-status.txt"
    saved.write_text(faults_status((9, "Critical", "Network monitor not started"), mode="Normal"))
    args = ["--path.rootfs", str(healthy.root), "--ampcli.run-from-rootfs", "--ampcli.status-file", str(saved)]
    if command == "check_secure_endpoint":
        done = run(command, *args, "--state-file", "")
        assert done.stdout.startswith("SECURE ENDPOINT CRITICAL - Real-time network monitor not started (fault 9)")
        assert done.returncode == 2
    else:
        report = _json(healthy, *args[2:])
        assert _states(report)["9"] == "active" and _states(report)["18"] == "clear"
    assert not mark.exists()  # the saved status is read instead: nothing runs


@pytest.mark.parametrize("kind", ["fifo", "device", "missing", "huge", "not utf-8", "not a status", "folder"])
def test_a_bad_status_file_is_a_failed_collector(healthy: LinuxTree, tmp_path: Path, kind: str) -> None:
    saved = tmp_path / "status"
    if kind == "fifo":
        os.mkfifo(saved)
    elif kind == "device":
        saved = Path("/dev/zero")
    elif kind == "huge":
        saved.write_bytes(b"Status: Connected\n" * 100_000)
    elif kind == "not utf-8":
        saved.write_bytes(b"Status: Connected\n\xff\xfe\n")
    elif kind == "not a status":
        saved.write_text("hello\n")
    elif kind == "folder":
        saved.mkdir()
    report = _json(healthy, "--ampcli.status-file", str(saved))
    collector = _collector(report, "connector_status")
    assert collector["success"] is False and collector["error"], collector
    checks = {check["slug"]: check["state"] for check in report["checks"]}
    assert checks["ampcli_failed"] == "unknown"  # the operator's file, not the connector, could not be used
    assert _states(report)["18"] == "unknown"
    if kind == "not utf-8":
        assert collector["error"].endswith(f"the saved status {saved} holds bytes that are not UTF-8 (at offset 18)")


def test_status_file_is_relative_to_where_the_command_runs(healthy: LinuxTree, tmp_path: Path) -> None:
    (tmp_path / "saved").write_text(faults_status((18, "Major", "Event monitoring overloaded")))
    done = subprocess.run([script("secure-endpoint-exporter"), "--path.rootfs", str(healthy.root), "--once",
                           "--format", "json", "--ampcli.status-file", "saved"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=30, check=False)
    assert _states(json.loads(done.stdout))["18"] == "active"
