"""secure-endpoint-exporter --once: the exposition, the textfile and the JSON report."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.commands import run, unavailable
from tests.hosttree import LinuxTree, faults_status

LINUX_FAULTS = ["5", "6", "7", "8", "9", "11", "16", "18", "19", "next_kernel_headers_missing"]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict, name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


def exporter(tree: LinuxTree, *args: str) -> subprocess.CompletedProcess[str]:
    done = run("secure-endpoint-exporter", "--path.rootfs", str(tree.root), "--ampcli.run-from-rootfs", "--once", *args)
    assert done.returncode == 0, done.stderr
    return done


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        raise AssertionError("promtool is missing: install Debian's prometheus package (.ci/test does)")
    return path


def test_every_fault_series_exists_and_is_zero_when_healthy(healthy: LinuxTree) -> None:
    found = samples(exporter(healthy).stdout)
    for fault_id in LINUX_FAULTS:
        labels = {k: v for k, v in _labels_of(found, "secure_endpoint_fault_active", fault_id).items()}
        assert labels["platform"] == "linux"
        assert value(found, "secure_endpoint_fault_active", **labels) == 0
        assert value(found, "secure_endpoint_fault_check_success", fault_id=fault_id, fault=labels["fault"]) == 1
        assert value(found, "secure_endpoint_fault_reported", fault_id=fault_id, fault=labels["fault"],
                     connector_severity="") == 0
    assert value(found, "secure_endpoint_connector_installed") == 1
    assert value(found, "secure_endpoint_connector_connected") == 1
    assert value(found, "secure_endpoint_process_running", process="ampdaemon") == 1
    assert value(found, "secure_endpoint_process_running", process="ampscansvc") == 1
    assert value(found, "secure_endpoint_definitions_build_timestamp_seconds") > 1_600_000_000
    for collector in ("system", "connector_status", "processes", "scan_user", "policy", "kernel", "selinux",
                      "definitions"):
        assert value(found, "secure_endpoint_scrape_collector_success", collector=collector) == 1
        assert value(found, "secure_endpoint_scrape_collector_duration_seconds", collector=collector) >= 0


def _labels_of(found: dict, name: str, fault_id: str) -> dict[str, str]:
    for (sample, labels), _ in found.items():
        as_dict = dict(labels)
        if sample == name and as_dict.get("fault_id") == fault_id:
            return as_dict
    raise AssertionError(f"no {name} for fault {fault_id}")


def test_faults_and_a_failing_collector(healthy: LinuxTree) -> None:
    healthy.ampcli(faults_status((18, "Major", "overloaded"), (77, "Critical", "A new fault.")))
    healthy.write("etc/group", "root:x:0:\n")
    healthy.write("opt/cisco/amp/etc/policy.xml", "<config>")
    found = samples(exporter(healthy).stdout)
    assert value(found, "secure_endpoint_fault_active", fault_id="18", fault="event_monitoring_overloaded",
                 platform="linux") == 1
    assert value(found, "secure_endpoint_fault_reported", fault_id="18", fault="event_monitoring_overloaded",
                 connector_severity="major") == 1
    assert value(found, "secure_endpoint_fault_active", fault_id="5", fault="scan_service_user_unavailable",
                 platform="linux") == 1
    assert value(found, "secure_endpoint_fault_reported", fault_id="5", fault="scan_service_user_unavailable",
                 connector_severity="") == 0
    assert value(found, "secure_endpoint_fault_reported", fault_id="77", fault="unknown",
                 connector_severity="critical") == 1
    assert value(found, "secure_endpoint_fault_active", fault_id="77", fault="unknown", platform="linux") == 1
    assert value(found, "secure_endpoint_fault_check_success", fault_id="8", fault="file_monitor_not_started") == 0
    assert value(found, "secure_endpoint_scrape_collector_success", collector="policy") == 0
    assert value(found, "secure_endpoint_scrape_collector_success", collector="kernel") == 1


def test_not_installed(tree: LinuxTree) -> None:
    found = samples(exporter(tree).stdout)
    assert value(found, "secure_endpoint_connector_installed") == 0
    actives = [v for (name, _), v in found.items() if name == "secure_endpoint_fault_active"]
    assert actives == [0.0] * len(LINUX_FAULTS)
    assert value(found, "secure_endpoint_process_running", process="ampdaemon") == 0


@pytest.mark.system
def test_promtool_accepts_the_exposition(healthy: LinuxTree, tmp_path: Path) -> None:
    healthy.ampcli(faults_status((18, "Major", "overloaded")))
    text = exporter(healthy).stdout
    checked = subprocess.run([promtool(), "check", "metrics"], input=text, capture_output=True, text=True,
                             check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_output_file_is_written_atomically(healthy: LinuxTree, tmp_path: Path) -> None:
    target = tmp_path / "textfile" / "secure_endpoint.prom"
    target.parent.mkdir()
    target.write_text("old\n")
    inode_before = target.stat().st_ino
    done = exporter(healthy, "--output", str(target))
    assert done.stdout == ""
    assert "secure_endpoint_fault_active" in target.read_text()
    assert target.stat().st_ino != inode_before  # replaced by rename, not rewritten in place
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    assert sorted(os.listdir(target.parent)) == ["secure_endpoint.prom"]  # no temporary file left


def test_output_to_a_missing_folder_fails_cleanly(healthy: LinuxTree, tmp_path: Path) -> None:
    done = run("secure-endpoint-exporter", "--path.rootfs", str(healthy.root), "--ampcli.run-from-rootfs",
               "--once", "--output",
               str(tmp_path / "nope" / "x.prom"))
    assert done.returncode == 1
    assert "cannot write" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(("mode", "owner", "message"), [
    (0o777, 0, "is writable by others and not sticky (mode 0777)"),
    (0o757, 0, "is writable by others and not sticky (mode 0757)"),
    (0o755, 65534, "is owned by uid 65534, neither root nor this user"),
])
def test_output_into_a_folder_others_can_write_is_refused(healthy: LinuxTree, tmp_path: Path, mode: int,
                                                          owner: int, message: str) -> None:
    """Issue 23: in such a folder another user can swap what the exporter writes. Refused, nothing written."""
    if os.geteuid() != 0:
        unavailable("giving a folder to another user needs root")
    folder = tmp_path / "textfile"
    folder.mkdir()
    os.chown(folder, owner, -1)
    folder.chmod(mode)
    done = run("secure-endpoint-exporter", "--path.rootfs", str(healthy.root), "--ampcli.run-from-rootfs",
               "--once", "--output",
               str(folder / "secure_endpoint.prom"))
    assert done.returncode == 1, done.stderr
    assert "cannot write" in done.stderr and message in done.stderr, done.stderr
    assert os.listdir(folder) == []


def test_output_below_a_folder_of_another_user_is_fine(healthy: LinuxTree, tmp_path: Path) -> None:
    """Debian's node_exporter layout: /var/lib/prometheus is prometheus's, node-exporter in it root's. What is
    written goes into the folder opened last, so the owner of a folder above cannot redirect it."""
    if os.geteuid() != 0:
        unavailable("giving a folder to another user needs root")
    above = tmp_path / "prometheus"
    above.mkdir()
    os.chown(above, 65534, 65534)
    folder = above / "node-exporter"
    folder.mkdir()
    target = folder / "secure_endpoint.prom"
    exporter(healthy, "--output", str(target))
    assert target.is_file() and oct(target.stat().st_mode & 0o777) == "0o644"


def test_output_through_a_link_another_user_planted_is_refused(healthy: LinuxTree, tmp_path: Path) -> None:
    """A symlink another user made in a sticky folder, leading to a folder of root's: not followed."""
    if os.geteuid() != 0:
        unavailable("a link of another user needs root")
    sticky = tmp_path / "shared"
    sticky.mkdir()
    sticky.chmod(0o1777)
    victim = tmp_path / "victim"
    victim.mkdir()
    (sticky / "metrics").symlink_to(victim)
    os.chown(sticky / "metrics", 65534, 65534, follow_symlinks=False)
    done = run("secure-endpoint-exporter", "--path.rootfs", str(healthy.root), "--ampcli.run-from-rootfs",
               "--once", "--output",
               str(sticky / "metrics" / "secure_endpoint.prom"))
    assert done.returncode == 1 and "is a symbolic link owned by uid 65534" in done.stderr, done.stderr
    assert os.listdir(victim) == []
    own = tmp_path / "own-link"
    own.symlink_to(victim)  # root's own link is followed
    exporter(healthy, "--output", str(own / "secure_endpoint.prom"))
    assert (victim / "secure_endpoint.prom").is_file()


def test_output_through_a_link_in_a_folder_another_user_may_rename_in_is_refused(
        healthy: LinuxTree, tmp_path: Path) -> None:
    """Even root's own link: in another user's folder it could be swapped between its check and its reading."""
    if os.geteuid() != 0:
        unavailable("giving a folder to another user needs root")
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    safe = tmp_path / "safe"
    safe.mkdir()
    (theirs / "link").symlink_to(safe)
    os.chown(theirs, 65534, 65534)
    done = run("secure-endpoint-exporter", "--path.rootfs", str(healthy.root), "--ampcli.run-from-rootfs",
               "--once", "--output",
               str(theirs / "link" / "secure_endpoint.prom"))
    assert done.returncode == 1 and "is owned by uid 65534" in done.stderr, done.stderr
    assert os.listdir(safe) == []


def test_dot_dot_after_a_link_is_where_the_kernel_takes_it(healthy: LinuxTree, tmp_path: Path) -> None:
    deep = tmp_path / "deep" / "d"
    deep.mkdir(parents=True)
    (tmp_path / "link").symlink_to(deep)
    exporter(healthy, "--output", f"{tmp_path}/link/../secure_endpoint.prom")
    assert (tmp_path / "deep" / "secure_endpoint.prom").is_file()
    assert not (tmp_path / "secure_endpoint.prom").exists()


@pytest.mark.parametrize("what", ["fifo", "folder"])
def test_output_onto_something_that_is_no_file_is_refused(healthy: LinuxTree, tmp_path: Path, what: str) -> None:
    """--output /dev/full as root used to replace the device with a file; a FIFO or a folder is refused alike."""
    target = tmp_path / "secure_endpoint.prom"
    os.mkfifo(target) if what == "fifo" else target.mkdir()
    done = run("secure-endpoint-exporter", "--path.rootfs", str(healthy.root), "--ampcli.run-from-rootfs",
               "--once", "--output", str(target))
    assert done.returncode == 1 and "not a file to replace" in done.stderr, done.stderr
    assert (target.is_fifo() if what == "fifo" else target.is_dir())


def test_output_into_a_sticky_shared_folder_is_fine(healthy: LinuxTree, tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o1777)  # as /tmp: nobody may rename or remove another user's file there
    target = folder / "secure_endpoint.prom"
    exporter(healthy, "--output", str(target))
    assert target.is_file() and not target.is_symlink() and oct(target.stat().st_mode & 0o777) == "0o644"


def test_output_replaces_a_symlink_and_never_writes_through_it(healthy: LinuxTree, tmp_path: Path) -> None:
    """A link planted at the output's name is replaced; the root-only file it points at keeps its mode and text."""
    victim = tmp_path / "secret"
    victim.write_text("root only\n")
    victim.chmod(0o600)
    folder = tmp_path / "textfile"
    folder.mkdir()
    target = folder / "secure_endpoint.prom"
    target.symlink_to(victim)
    exporter(healthy, "--output", str(target))
    assert not target.is_symlink() and "secure_endpoint_fault_active" in target.read_text()
    assert victim.read_text() == "root only\n" and oct(victim.stat().st_mode & 0o777) == "0o600"


def test_a_link_swapped_over_the_new_file_cannot_change_another_files_mode(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The attack of issue 23: after the new file is made, its name is swapped for a link to a root-only file.
    Its mode is set on the open descriptor, so the linked file keeps 0600."""
    from secure_endpoint_monitoring.checks import safefile

    victim = tmp_path / "secret"
    victim.write_text("root only\n")
    victim.chmod(0o600)
    real_fsync = os.fsync
    swapped: list[str] = []

    def swap_then_sync(fd: int) -> None:
        for name in os.listdir(tmp_path / "out"):
            if name.endswith(".tmp") and not swapped:
                os.unlink(tmp_path / "out" / name)
                os.symlink(victim, tmp_path / "out" / name)
                swapped.append(name)
        real_fsync(fd)

    (tmp_path / "out").mkdir()
    monkeypatch.setattr(safefile.os, "fsync", swap_then_sync)
    safefile.write(str(tmp_path / "out" / "secure_endpoint.prom"), b"metrics\n", 0o644)
    assert swapped  # the swap happened, between the create and the rename
    assert oct(victim.stat().st_mode & 0o777) == "0o600" and victim.read_text() == "root only\n"


def test_json_report(healthy: LinuxTree) -> None:
    healthy.ampcli(faults_status((18, "Major", "overloaded")))
    report = json.loads(exporter(healthy, "--format", "json").stdout)
    assert report["platform"] == "linux"
    assert report["connector"]["installed"] is True
    fault = next(f for f in report["faults"] if f["id"] == "18")
    assert fault["state"] == "active" and fault["sources"] == ["connector", "host"]
    assert fault["fix"].startswith("Find the busy process")
    assert fault["doc_url"].startswith("https://www.cisco.com/")
    dutch = json.loads(exporter(healthy, "--format", "json", "--lang", "nl").stdout)
    assert next(f for f in dutch["faults"] if f["id"] == "18")["title"] == "Gebeurtenisbewaking overbelast"


@pytest.mark.parametrize(("args", "message"), [
    (["--path.rootfs", "/nonexistent-root"], "is not a directory"),
    (["--format", "xml"], "invalid choice"),
])
def test_bad_arguments(args: list[str], message: str) -> None:
    done = run("secure-endpoint-exporter", "--once", *args)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


def test_hung_ampcli_costs_at_most_its_timeout(healthy: LinuxTree) -> None:
    healthy.ampcli(hang=60)
    started = time.monotonic()
    found = samples(exporter(healthy).stdout)
    assert time.monotonic() - started < 10
    assert value(found, "secure_endpoint_scrape_collector_success", collector="connector_status") == 0
    assert value(found, "secure_endpoint_fault_check_success", fault_id="18", fault="event_monitoring_overloaded") == 0
    assert value(found, "secure_endpoint_fault_active", fault_id="19", fault="selinux_policy_missing",
                 platform="linux") == 0
    assert value(found, "secure_endpoint_fault_check_success", fault_id="19", fault="selinux_policy_missing") == 1
