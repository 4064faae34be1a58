"""The connector's processes come from its systemd unit's cgroup; all of proc is listed only to confirm an
absence or where no unit shows them, so a cgroup can never make a process read "not running"."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from secure_endpoint_monitoring.checks.catalog import Platform
from secure_endpoint_monitoring.checks.evidence import processes
from secure_endpoint_monitoring.checks.host import Host
from tests.commands import run
from tests.hosttree import UNIT_CGROUPS, LinuxTree, pid_of
from tests.test_exporter_once import samples, value

CGROUP_LINE = "processes found through the cgroup of cisco-amp.service"
SCAN_LINE = "processes found by listing all of /proc: the cgroup of cisco-amp.service did not show every one"


def _poison_the_listing(tree: LinuxTree) -> None:
    """A process outside the unit whose stat is a FIFO: listing all of proc fails on it, the cgroup does not."""
    pid = tree.process("worker")
    (tree.root / f"proc/{pid}/stat").unlink()
    os.mkfifo(tree.root / f"proc/{pid}/stat")


def _json(tree: LinuxTree, *args: str) -> dict:
    done = run("secure-endpoint-exporter", "--path.rootfs", str(tree.root), "--ampcli.run-from-rootfs", "--once",
               "--format", "json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _judged(tree: LinuxTree, *args: str) -> tuple[str | None, dict[str, str], list[str]]:
    """How the processes were found, the process verdicts (exporter) and the plugin's -v lines."""
    report = _json(tree, *args)
    states = {r["id"]: r["state"] for r in report["checks"] + report["faults"]}
    plugin = run("check_secure_endpoint", "--path.rootfs", str(tree.root), "--ampcli.run-from-rootfs",
                 "--state-file", "", "-v", *args)
    verdicts = {key: states[key] for key in ("daemon_not_running", "7")}
    return report["connector"]["process_lookup"], verdicts, plugin.stdout.splitlines()


CLEAR = {"daemon_not_running": "clear", "7": "clear"}


@pytest.mark.parametrize("layout", sorted(UNIT_CGROUPS))
def test_a_healthy_host_is_read_from_the_unit_alone(tmp_path: Path, layout: str) -> None:
    tree = LinuxTree(tmp_path / "host", cgroup=layout).healthy()
    _poison_the_listing(tree)  # proof that proc was not listed: the listing would fail on it
    lookup, verdicts, lines = _judged(tree)
    assert (lookup, verdicts) == ("cgroup", CLEAR)
    assert lines[0].startswith("SECURE ENDPOINT OK") and CGROUP_LINE in lines
    metrics = samples(run("secure-endpoint-exporter", "--path.rootfs", str(tree.root), "--ampcli.run-from-rootfs",
                        "--once").stdout)
    assert value(metrics, "secure_endpoint_process_lookup", method="cgroup") == 1.0
    assert value(metrics, "secure_endpoint_process_lookup", method="scan") == 0.0


def test_a_child_cgroup_of_the_unit_counts(tmp_path: Path) -> None:
    tree = LinuxTree(tmp_path / "host").healthy()
    scanner = pid_of(tree, "ampscansvc")
    tree.kill(scanner)
    tree.in_unit(tree.process("ampscansvc", in_unit=False, started_ago=1800), "scanners")
    _poison_the_listing(tree)
    assert _judged(tree)[:2] == ("cgroup", CLEAR)


@pytest.mark.parametrize("case", ["no systemd", "started outside the unit", "a listed pid gone",
                                  "cgroup.procs a FIFO", "cgroup.procs huge", "cgroup.procs a link",
                                  "unit folder a link", "another unit"])
def test_where_the_unit_does_not_show_them_all_proc_is_listed(tmp_path: Path, case: str) -> None:
    tree = LinuxTree(tmp_path / "host", cgroup=None if case == "no systemd" else "v2").healthy()
    unit = tree.root / UNIT_CGROUPS["v2"]
    procs = unit / "cgroup.procs"
    args: tuple[str, ...] = ()
    if case == "started outside the unit":  # by hand, or by an init system we did not foresee
        procs.write_text("")
    elif case == "a listed pid gone":
        procs.write_text("999999\n" + "\n".join(procs.read_text().split()[1:]) + "\n")
    elif case == "cgroup.procs a FIFO":
        procs.unlink()
        os.mkfifo(procs)
    elif case == "cgroup.procs huge":
        procs.write_bytes(b"1\n" * (processes.MAX_CGROUP_BYTES // 2 + 1))
    elif case == "cgroup.procs a link":
        os.rename(procs, tree.root / "elsewhere")
        os.symlink("/elsewhere", procs)
    elif case == "unit folder a link":
        os.rename(unit, tree.root / "unit-elsewhere")
        os.symlink("/unit-elsewhere", unit)
    elif case == "another unit":
        args = ("--connector.unit", "amp-renamed.service")
    lookup, verdicts, lines = _judged(tree, *args)
    assert verdicts == CLEAR, (case, verdicts)  # never a wrong "not running"
    if case in ("cgroup.procs a link", "unit folder a link"):
        assert lookup in ("cgroup", "scan")  # a link inside the tree resolves inside it: either is right
    else:
        assert lookup == "scan"
        unit_name = args[1] if args else "cisco-amp.service"
        assert SCAN_LINE.replace("cisco-amp.service", unit_name) in lines


def test_a_stopped_daemon_is_confirmed_by_the_listing(tmp_path: Path) -> None:
    tree = LinuxTree(tmp_path / "host").healthy()
    tree.stop("ampdaemon")
    lookup, verdicts, lines = _judged(tree)
    assert lookup == "scan" and verdicts == {"daemon_not_running": "active", "7": "not_applicable"}
    assert lines[0].startswith("SECURE ENDPOINT CRITICAL - Connector daemon not running")


@pytest.mark.system  # as nobody: needs this Python's own version where nobody may start it (not the matrix's)
def test_an_unreadable_cgroup_as_a_user_is_the_listing_not_an_absence(shared: Path) -> None:
    from tests import unprivileged

    tree = LinuxTree(shared / "host").healthy()
    for current, dirs, _files in os.walk(shared):
        for name in dirs:
            os.chmod(os.path.join(current, name), 0o755)
    unit = tree.root / UNIT_CGROUPS["v2"]
    os.chown(unit, 12345, 12345)
    unit.chmod(0o700)
    done = subprocess.run([*unprivileged.command("secure-endpoint-exporter"), "--path.rootfs", str(tree.root),
                           "--ampcli.run-from-rootfs", "--once", "--format", "json"],
                          capture_output=True, text=True, timeout=60, check=False)
    report = json.loads(done.stdout)
    states = {r["id"]: r["state"] for r in report["checks"] + report["faults"]}
    assert report["connector"]["process_lookup"] == "scan"
    assert states["daemon_not_running"] == "clear" and states["7"] == "clear"


def test_a_walk_of_the_unit_is_bounded(tmp_path: Path) -> None:
    tree = LinuxTree(tmp_path / "host").healthy()
    unit = tree.root / UNIT_CGROUPS["v2"]
    for number in range(processes.MAX_CGROUPS + 1):
        (unit / f"child{number}").mkdir()
    assert processes.unit_pids(Host(str(tree.root)), processes.UNIT) is None
    facts = processes.probe(Host(str(tree.root)), Platform.LINUX)
    assert facts.lookup == "scan" and facts.running("ampdaemon")


@pytest.mark.parametrize("unit", ["../system.slice", "a/b", "..", ""])
def test_a_unit_name_is_one_name_not_a_path(healthy: LinuxTree, unit: str) -> None:
    done = run("check_secure_endpoint", "--path.rootfs", str(healthy.root), "--connector.unit", unit,
               "--state-file", "")
    assert done.returncode == 3
    assert done.stdout.startswith("SECURE ENDPOINT UNKNOWN - bad arguments: argument --connector.unit: ")
    assert done.stdout.rstrip().endswith("is not a systemd unit name")
