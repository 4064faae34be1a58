"""Hosts shaped like real connector installations (docs/connector-facts.md), through both commands.

The trees carry what public material shows: the signed, namespaced policy;
ampcli output with its log noise and the connector's own severities;
global.xml; a Mac connector from before 1.14.
"""

from __future__ import annotations

import os
import plistlib
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from secure_endpoint_monitoring.checks.report import State
from tests.commands import run
from tests.conftest import Evaluate, result, texts
from tests.hosttree import (
    CONNECTOR_VERSION,
    LinuxTree,
    about_output,
    cvd_bytes,
    faults_status,
    policy_document,
    policy_output,
)
from tests.mactree import TCC, MacTree
from tests.test_exporter_once import samples, value
from tests.test_plugin import PERF_CLEAR, plugin

LINUX_IDS = ["5", "6", "7", "8", "9", "11", "16", "18", "19"]
OVERLOADED = "Connector event monitoring is overloaded."


def once(root: Path, *args: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    done = run("secure-endpoint-exporter", "--path.rootfs", str(root), "--ampcli.run-from-rootfs", "--once", *args)
    assert done.returncode == 0, done.stderr
    return samples(done.stdout)


def info_labels(found: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> dict[str, str]:
    return next(dict(labels) for name, labels in found if name == "secure_endpoint_connector_info")


# -- Linux -----------------------------------------------------------------------------------------
def _reported(fault_id: int, severity: str = "Major") -> Callable[[LinuxTree], None]:
    return lambda t: t.ampcli(faults_status((fault_id, severity, f"Fault {fault_id} from ampcli"), mode="Normal"))


# fault id: (how to make it happen alone, the plugin's exit code)
LINUX_SETUPS: dict[str, Callable[[LinuxTree], None]] = {
    "5": lambda t: t.write("etc/group", "root:x:0:\n"),
    "6": _reported(6),
    "7": lambda t: t.stop("ampscansvc"),
    "8": lambda t: (t.modules("ampnetworkflow"), t.stop("ampdaemon"), t.process("ampdaemon")),
    "9": lambda t: (t.modules("ampfsm"), t.stop("ampdaemon"), t.process("ampdaemon")),
    "11": lambda t: (t.modules(), (t.root / "usr/src/kernels" / t.release).rmdir()),  # eBPF before 1.25
    "16": _reported(16, "Critical"),
    "18": lambda t: t.ampcli(faults_status((18, "Major", OVERLOADED))),
    "19": lambda t: t.selinux(enforcing=True, module="disabled"),
}


# Reported Major: WARNING whatever the catalogue says; reported Critical: CRITICAL; else the catalogue's.
LINUX_CODES = {"5": 1, "6": 1, "7": 2, "8": 2, "9": 2, "11": 2, "16": 2, "18": 1, "19": 2}


@pytest.mark.parametrize("fault_id", LINUX_IDS)
def test_each_linux_fault_alone_through_both_commands(healthy: LinuxTree, fault_id: str) -> None:
    LINUX_SETUPS[fault_id](healthy)
    found = once(healthy.root)
    active = {dict(labels)["fault_id"] for (name, labels), v in found.items()
              if name == "secure_endpoint_fault_active" and v == 1}
    assert active == {fault_id}
    code, lines = plugin(healthy)
    assert f"(fault {fault_id})" in lines[0].split(" | ")[0], lines[0]
    assert code == LINUX_CODES[fault_id]
    assert not any(line.startswith("UNKNOWN") for line in lines), lines


def test_healthy_real_linux_host_is_ok_through_both_commands(healthy: LinuxTree) -> None:
    code, lines = plugin(healthy)
    assert (code, lines) == (0, [f"SECURE ENDPOINT OK - no active faults (9 checked), connector connected | "
                                 f"{PERF_CLEAR}"])
    found = once(healthy.root)
    for fault_id in LINUX_IDS:  # every fault judged: none unknown, none active
        labels = next(dict(lb) for name, lb in found if name == "secure_endpoint_fault_active"
                      and dict(lb)["fault_id"] == fault_id)
        assert value(found, "secure_endpoint_fault_active", **labels) == 0, fault_id
        assert value(found, "secure_endpoint_fault_check_success", fault_id=fault_id, fault=labels["fault"]) == 1
    assert info_labels(found)["version"] == CONNECTOR_VERSION
    assert value(found, "secure_endpoint_scrape_collector_success", collector="connector_version") == 1
    assert value(found, "secure_endpoint_definitions_updated_timestamp_seconds") > 1_600_000_000


def test_policy_options_read_from_the_signed_document(healthy: LinuxTree, run: Evaluate) -> None:
    report = run(healthy)
    for fault_id in ("8", "9", "11"):
        assert result(report, fault_id).state is State.CLEAR, texts(result(report, fault_id))
    healthy.policy(file_monitoring=False, device_flow=False)
    report = run(healthy)
    assert {result(report, i).state for i in ("8", "9", "11")} == {State.NOT_APPLICABLE}
    assert "the policy has file monitoring switched off" in texts(result(report, "8"))


def test_a_policy_without_namespace_still_reads(healthy: LinuxTree, run: Evaluate) -> None:
    healthy.policy(file_monitoring=True, device_flow=False, signed=False)
    report = run(healthy)
    assert result(report, "8").state is State.CLEAR
    assert result(report, "9").state is State.NOT_APPLICABLE


@pytest.mark.parametrize(("severity", "code", "word"), [("Critical", 2, "CRITICAL"), ("Major", 1, "WARNING")])
def test_connector_severity_decides_the_plugin_state(healthy: LinuxTree, severity: str, code: int,
                                                     word: str) -> None:
    healthy.ampcli(faults_status((18, severity, OVERLOADED)))
    got, lines = plugin(healthy)
    assert got == code
    assert lines[0].startswith(f"SECURE ENDPOINT {word} - Event monitoring overloaded (fault 18) | active=1;;;0;9")
    assert f"{word}: Event monitoring overloaded (fault 18). Seen: the connector reports it ({OVERLOADED})" \
        in lines[1]
    found = once(healthy.root)
    assert value(found, "secure_endpoint_fault_reported", fault_id="18", fault="event_monitoring_overloaded",
                 connector_severity=severity.lower()) == 1


def test_operator_severity_outranks_the_connector(healthy: LinuxTree) -> None:
    healthy.ampcli(faults_status((18, "Critical", OVERLOADED)))
    code, lines = plugin(healthy, "--warning", "18")
    assert code == 1 and lines[0].startswith("SECURE ENDPOINT WARNING - Event monitoring overloaded (fault 18)")
    healthy.ampcli(faults_status((18, "Major", OVERLOADED)))
    code, lines = plugin(healthy, "--critical", "18")
    assert code == 2 and lines[0].startswith("SECURE ENDPOINT CRITICAL - Event monitoring overloaded (fault 18)")


def test_listed_ids_take_the_summary_severity_only_when_it_is_unambiguous(healthy: LinuxTree) -> None:
    text = ("Status: Connected\nMode: Degraded\nFaults: 1 Critical, 1 Major\nFault IDs: 6, 18\n"
            f"ID 18 - Major: {OVERLOADED}\n")
    healthy.ampcli(text)
    code, lines = plugin(healthy)
    # 6 has no line of its own and two severities are counted: the catalogue's WARNING; 18 says Major.
    assert code == 1, lines
    healthy.ampcli(text.replace("1 Critical, 1 Major", "2 Critical").replace("ID 18 - Major", "ID 18 - Critical"))
    code, lines = plugin(healthy)
    assert code == 2, lines


def test_version_falls_back_to_ampcli_about(healthy: LinuxTree, run: Evaluate) -> None:
    healthy.remove("opt/cisco/amp/etc/global.xml")
    healthy.ampcli(about="AMP for Endpoints Connector 1.22.2.3\n")
    assert run(healthy).connector_version == "1.22.2.3"
    healthy.global_config(text="<config><agent><version>4.0</version></agent></config>")  # not a connector version
    assert run(healthy).connector_version == "1.22.2.3"


def test_version_element_is_a_setting(healthy: LinuxTree) -> None:
    healthy.global_config(text='<config xmlns="urn:x"><agent><build>1.23.0.77</build></agent></config>')
    assert info_labels(once(healthy.root, "--connector-version-element", "build"))["version"] == "1.23.0.77"


def test_damaged_global_xml_fails_its_collector_only(healthy: LinuxTree) -> None:
    healthy.global_config(text="<config><agent>")
    found = once(healthy.root)
    assert value(found, "secure_endpoint_scrape_collector_success", collector="connector_version") == 0
    assert info_labels(found)["version"] == CONNECTOR_VERSION  # ampcli about says it too
    code, _ = plugin(healthy)
    assert code == 0


def test_old_connector_modules_count(healthy: LinuxTree, run: Evaluate) -> None:
    """Connectors before eBPF loaded redirfs with avflt (Cisco's Linux primer)."""
    healthy.modules("redirfs", "avflt", "ampnetworkflow")
    assert result(run(healthy), "8").state is State.CLEAR


def test_unconfirmed_names_are_settings(healthy: LinuxTree, run: Evaluate) -> None:
    healthy.modules()
    # eBPF programs held by another process than ampdaemon.
    healthy.stop("ampdaemon")
    healthy.process("ampdaemon")
    healthy.process("ampbpfsvc", bpf_programs=3)
    assert result(run(healthy), "8").state is State.ACTIVE
    item = result(run(healthy, bpf_processes=("ampdaemon", "ampbpfsvc")), "8")
    assert item.state is State.CLEAR and "holds 3 eBPF programs" in texts(item)
    # The SELinux module under another name.
    healthy.selinux(enforcing=True, module="missing")
    (healthy.root / "var/lib/selinux/targeted/active/modules/400/cisco-bpf").mkdir(parents=True)
    assert result(run(healthy), "19").state is State.ACTIVE
    assert result(run(healthy, selinux_module="cisco-bpf"), "19").state is State.CLEAR
    # Definitions in a folder of the operator's choosing.
    healthy.remove(healthy.DEFINITIONS)
    healthy.ampcli(policy="")
    assert result(run(healthy), "definitions_stale").state is State.UNKNOWN
    healthy.write("srv/clamav/main.cvd", cvd_bytes())
    assert result(run(healthy, definitions_dirs=("/srv/clamav",)), "definitions_stale").state is State.CLEAR


# -- macOS -----------------------------------------------------------------------------------------
def test_healthy_real_mac_judges_every_fault(tmp_path: Path, run: Evaluate) -> None:
    mac = MacTree(tmp_path / "mac").healthy()
    report = run(mac)
    states = {r.fault.id: r.state for r in report.faults}
    # Under a root, processes (6, 7) are not judged (not unknown); 4 is for older macOS, 17 needs Orbital.
    assert {i for i, s in states.items() if s is State.UNKNOWN} == set()
    assert states["6"] is State.NOT_APPLICABLE and states["7"] is State.NOT_APPLICABLE
    assert states["12"] is State.CLEAR and states["13"] is State.CLEAR and states["18"] is State.CLEAR
    found = once(mac.root)
    assert info_labels(found)["version"] == "1.24.1.1234"
    assert info_labels(found)["policy"] == "Protect Policy for Mac (#7)"
    for fault_id, fault in (("6", "scan_service_restarting_frequently"), ("7", "scan_service_not_started")):
        assert value(found, "secure_endpoint_fault_state", fault_id=fault_id, fault=fault, platform="macos",
                     state="not_applicable") == 1
    # Not judged is no failure of the processes collector: it is not run at all.
    assert not any(name == "secure_endpoint_scrape_collector_success" and dict(labels)["collector"] == "processes"
                   for name, labels in found)
    code, lines = plugin(mac.root)
    assert code == 0 and lines[0].startswith("SECURE ENDPOINT OK - no active faults"), lines


def test_mac_reporting_18(tmp_path: Path) -> None:
    mac = MacTree(tmp_path / "mac").healthy()
    mac.ampcli(faults_status((18, "Critical", OVERLOADED)))
    done = run("check_secure_endpoint", "--path.rootfs", str(mac.root), "--ampcli.run-from-rootfs", "--state-file", "")
    assert done.returncode == 2
    assert done.stdout.startswith("SECURE ENDPOINT CRITICAL - Event monitoring overloaded (fault 18)")
    found = once(mac.root)
    assert value(found, "secure_endpoint_fault_active", fault_id="18", fault="event_monitoring_overloaded",
                 platform="macos") == 1


@pytest.fixture
def legacy(tmp_path: Path) -> MacTree:
    return MacTree(tmp_path / "mac", version="10.15.7").healthy_legacy()


def test_mac_before_1_14(legacy: MacTree, run: Evaluate) -> None:
    report = run(legacy)
    assert report.connector_version == "1.12.7.811"
    states = {r.fault.id: r.state for r in report.faults}
    for fault_id in ("1", "2", "10", "12", "13"):
        assert states[fault_id] is State.NOT_APPLICABLE, fault_id
        assert "predates 1.14" in texts(result(report, fault_id))
    assert states["15"] is State.NOT_APPLICABLE  # macOS 10.15
    item = result(report, "3")
    assert item.state is State.CLEAR and "Full Disk Access granted to /opt/cisco/amp/ampdaemon" in texts(item)
    assert states["4"] is State.NOT_APPLICABLE  # the kext: only the live Mac can say, so not judged here
    assert states["5"] is State.CLEAR and states["18"] is State.CLEAR
    legacy.tcc({"com.cisco.endpoint.svc": True})
    item = result(run(legacy), "3")
    assert item.state is State.ACTIVE and "/opt/cisco/amp/ampdaemon has no Full Disk Access" in texts(item)


def test_mac_before_1_14_through_the_plugin(legacy: MacTree) -> None:
    done = run("check_secure_endpoint", "--path.rootfs", str(legacy.root), "--ampcli.run-from-rootfs",
               "--state-file", "",
               "--ignore", "4,6,7,daemon_not_running")
    assert done.returncode == 0, done.stdout
    assert done.stdout.startswith("SECURE ENDPOINT OK - no active faults (")


def test_mac_before_1_14_on_big_sur_still_uses_the_kext(tmp_path: Path, run: Evaluate) -> None:
    mac = MacTree(tmp_path / "mac", version="11.7").healthy_legacy()
    report = run(mac)
    item = result(report, "4")  # applies, but only the live Mac can judge it
    assert item.state is State.NOT_APPLICABLE and "not judged from a copied tree" in texts(item)
    assert result(report, "15").state is State.NOT_APPLICABLE


def test_what_is_installed_decides_before_a_version(tmp_path: Path, run: Evaluate) -> None:
    """A Service app exists only from 1.14 on: a global.xml that seems to say 1.12 does not make the
    Mac legacy (the element that holds the version is a guess)."""
    mac = MacTree(tmp_path / "mac").healthy()
    mac.global_config("1.12.7.811")
    report = run(mac)
    item = result(report, "3")
    assert item.state is State.CLEAR and "com.cisco.endpoint.svc" in texts(item)
    assert result(report, "1").state is State.CLEAR


def test_registered_cisco_extensions_mean_1_14_or_later(tmp_path: Path, run: Evaluate) -> None:
    mac = MacTree(tmp_path / "mac").healthy()
    mac.remove("Applications/Cisco Secure Endpoint")
    mac.global_config("1.12.7.811")
    item = result(run(mac), "3")  # checks the Service, not the daemon's path
    assert item.state is State.CLEAR and "granted to com.cisco.endpoint.svc" in texts(item)


def test_without_service_app_or_extensions_the_version_decides(tmp_path: Path, run: Evaluate) -> None:
    mac = MacTree(tmp_path / "mac").healthy_legacy()
    mac.global_config("1.24.1.1234")
    report = run(mac)
    assert result(report, "1").state is State.CLEAR  # applies: a 1.24 connector, nothing registered
    assert "com.cisco.endpoint.svc has no Full Disk Access" in texts(result(report, "3"))
    # Fault 2 compares with the Service app only, never with the Connector app beside it.
    assert result(report, "2").state is State.UNKNOWN


def test_full_disk_access_only_from_mojave(tmp_path: Path, run: Evaluate) -> None:
    mac = MacTree(tmp_path / "mac", version="10.13.6").healthy_legacy()
    mac.tcc({})
    assert result(run(mac), "3").state is State.NOT_APPLICABLE


def test_second_mac_policy_folder(tmp_path: Path, run: Evaluate) -> None:
    mac = MacTree(tmp_path / "mac").healthy()
    policy = (mac.root / mac.POLICY).read_bytes()
    mac.remove(mac.POLICY)
    assert result(run(mac), "12").state is State.UNKNOWN
    mac.write("Library/Application Support/Cisco/Secure Endpoint/policy.xml", policy)
    assert result(run(mac), "12").state is State.CLEAR


def test_no_db_plist_means_nothing_registered(tmp_path: Path, run: Evaluate) -> None:
    mac = MacTree(tmp_path / "mac").healthy()
    mac.remove("Library/SystemExtensions/db.plist")
    report = run(mac)
    item = result(report, "1")
    assert item.state is State.CLEAR
    assert "no system extension is registered (/Library/SystemExtensions/db.plist does not exist)" in texts(item)
    assert result(report, "10").state is State.CLEAR
    assert report.endpoint_security_extensions == 0


def test_mdm_authorization_allow_counts(tmp_path: Path, run: Evaluate) -> None:
    mac = MacTree(tmp_path / "mac").healthy()
    mac.tcc({})
    mac.write(f"{TCC}/MDMOverrides.plist", plistlib.dumps({
        "com.cisco.endpoint.svc": {"kTCCServiceSystemPolicyAllFiles": {"Authorization": "Allow"}},
        "com.cisco.endpoint.svc.securityextension": {"kTCCServiceSystemPolicyAllFiles": {"Authorization": "Deny"}},
    }))
    report = run(mac)
    assert result(report, "3").state is State.CLEAR
    assert result(report, "15").state is State.ACTIVE


def test_orbital_clients_are_a_setting(tmp_path: Path, run: Evaluate) -> None:
    mac = MacTree(tmp_path / "mac").healthy()
    mac.orbital()
    mac.tcc({"com.cisco.endpoint.svc": True, "com.cisco.endpoint.svc.securityextension": True,
             "com.example.orbitald": True})
    assert result(run(mac), "17").state is State.ACTIVE
    assert result(run(mac, orbital_clients=("com.example.orbital",)), "17").state is State.CLEAR


# -- what a hostile or odd connector prints ----------------------------------------------------------
def test_unknown_severity_words_are_no_severity(healthy: LinuxTree) -> None:
    healthy.modules("ampnetworkflow")
    healthy.stop("ampdaemon")
    healthy.process("ampdaemon")
    healthy.ampcli(faults_status((8, "Error", "file monitor down")))
    code, lines = plugin(healthy)
    assert code == 2, lines  # the catalogue's CRITICAL: "Error" is not one of the connector's severities
    found = once(healthy.root)
    assert value(found, "secure_endpoint_fault_reported", fault_id="8", fault="file_monitor_not_started",
                 connector_severity="") == 1


def test_future_update_time_is_no_evidence_of_freshness(healthy: LinuxTree, run: Evaluate) -> None:
    healthy.ampcli(policy=policy_output(updated=time.time() + 30 * 86400))
    healthy.definitions("main.cvd", build_time=time.time() - 30 * 86400)
    healthy.definitions("daily.cvd", build_time=time.time() - 10 * 86400)
    item = result(run(healthy, definitions_max_age_days=7), "definitions_stale")
    assert item.state is State.ACTIVE and "built 10.0 days ago" in texts(item)


def _ampcli_by_command(tree: LinuxTree, status: str, about: str, policy: str) -> None:
    """An ampcli whose three commands each run the given shell snippet."""
    tree.write(tree.AMPCLI, "#!/bin/sh\ncase \"$1\" in\n"
               f"status) {status} ;;\nabout) {about} ;;\npolicy) {policy} ;;\nesac\n", mode=0o755)


def _alive(pid_file: Path) -> bool:
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_a_hung_about_costs_nothing_but_the_version(healthy: LinuxTree, run: Evaluate) -> None:
    pid = healthy.root / "about.pid"
    _ampcli_by_command(healthy, f'cat "{healthy.root / healthy.AMPCLI}.status"',
                       f'echo $$ > "{pid}"; exec sleep 30', f'cat "{healthy.root / healthy.AMPCLI}.policy"')
    healthy.remove(healthy.GLOBAL)
    started = time.monotonic()
    report = run(healthy, ampcli_timeout=1.0)
    assert time.monotonic() - started < 5
    assert report.connected is True
    assert report.definitions_updated_time is not None  # policy's answer is kept
    assert report.connector_version == ""
    assert not _alive(pid)


def test_failing_status_leaves_no_about_or_policy_behind(healthy: LinuxTree, run: Evaluate) -> None:
    pids = [healthy.root / "about.pid", healthy.root / "policy.pid"]
    healthy.remove(healthy.GLOBAL)  # no version there: about runs too
    # status fails only once about and policy have written their pids (polled, at most 2.5 s), so the
    # check below always has both to look at.
    wait = f'for i in $(seq 50); do [ -s "{pids[0]}" ] && [ -s "{pids[1]}" ] && break; sleep 0.05; done'
    _ampcli_by_command(healthy, f"{wait}; echo broken >&2; exit 3", f'echo $$ > "{pids[0]}"; exec sleep 30',
                       f'echo $$ > "{pids[1]}"; exec sleep 30')
    report = run(healthy, ampcli_timeout=3.0)
    assert result(report, "ampcli_failed").state is State.ACTIVE
    assert "exited with code 3: broken" in texts(result(report, "ampcli_failed"))
    assert not any(_alive(p) for p in pids if p.exists() and p.read_text().strip())


def test_about_runs_only_when_global_xml_names_no_version(healthy: LinuxTree, run: Evaluate) -> None:
    runs = healthy.root / "about.runs"
    healthy.write(f"{healthy.AMPCLI}.about", about_output("1.25.0"))
    _ampcli_by_command(healthy, f'cat "{healthy.root / healthy.AMPCLI}.status"',
                       f'echo run >> "{runs}"; cat "{healthy.root / healthy.AMPCLI}.about"',
                       f'cat "{healthy.root / healthy.AMPCLI}.policy"')
    assert run(healthy).connector_version == "1.24.1.1234" and not runs.exists()
    healthy.global_config(text="<config><agent/></config>")
    assert run(healthy).connector_version == "1.25.0" and runs.read_text() == "run\n"


def test_an_unsigned_object_before_the_signed_one_is_not_read(healthy: LinuxTree, run: Evaluate) -> None:
    signed = policy_document(file_monitoring=True, device_flow=True)
    forged = signed.replace('<Object Id="policy">', '<Object Id="forged"><config><agent><driver><protmode>'
                            "<file>0</file></protmode></driver><nfm><enable>0</enable></nfm></agent></config>"
                            '</Object><Object Id="policy">')
    healthy.write(healthy.POLICY, forged)
    healthy.modules()
    healthy.stop("ampdaemon")
    healthy.process("ampdaemon")
    report = run(healthy)
    assert result(report, "8").state is State.ACTIVE
    assert result(report, "9").state is State.ACTIVE


@pytest.mark.parametrize("flag", ["--orbital-client", "--bpf-process", "--selinux-module", "--definitions-dir",
                                  "--connector-version-element"])
def test_empty_settings_are_refused(healthy: LinuxTree, flag: str) -> None:
    code, lines = plugin(healthy, flag, "")
    assert code == 3 and lines[0].startswith("SECURE ENDPOINT UNKNOWN - bad arguments:"), lines
