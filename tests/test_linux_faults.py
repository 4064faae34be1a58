"""Every Linux fault: active, clear, and unknown or not applicable, on fixture host trees."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from secure_endpoint_monitoring.checks.report import State
from secure_endpoint_monitoring.checks.state import StateStore
from tests.conftest import Evaluate, result, texts
from tests.hosttree import BOOT_ID, CLK_TCK, LinuxTree, faults_status, policy_output


def states(report) -> dict[str, State]:
    return {r.fault.id: r.state for r in report.all_results()}


def test_healthy_host_is_clear_everywhere(healthy: LinuxTree, run: Evaluate) -> None:
    report = run(healthy)
    assert report.installed
    assert {k: v for k, v in states(report).items() if v is not State.CLEAR} == {}
    assert [r.fault.id for r in report.faults] == ["5", "6", "7", "8", "9", "11", "16", "18", "19",
                                                   "next_kernel_headers_missing"]
    assert all(c.success for c in report.collectors), report.collectors


def test_host_without_connector(tree: LinuxTree, run: Evaluate) -> None:
    report = run(tree)
    assert not report.installed
    assert result(report, "not_installed").state is State.ACTIVE
    assert {r.state for r in report.faults} == {State.NOT_APPLICABLE}
    assert "not installed" in texts(result(report, "8"))


# -- fault 5 -------------------------------------------------------------------
def test_5_scan_user_missing_names_login_defs(tree: LinuxTree, run: Evaluate) -> None:
    tree.healthy()
    tree.write("etc/passwd", "root:x:0:0:root:/root:/bin/bash\n")
    tree.write("etc/login.defs", "USERGROUPS_ENAB no\n")
    item = result(run(tree), "5")
    assert item.state is State.ACTIVE
    assert item.sources == ["host"]
    assert "user cisco-amp-scan-svc does not exist" in texts(item)
    assert "USERGROUPS_ENAB" in texts(item)


def test_5_group_missing(tree: LinuxTree, run: Evaluate) -> None:
    tree.healthy()
    tree.write("etc/group", "root:x:0:\n")
    item = result(run(tree), "5")
    assert item.state is State.ACTIVE
    assert "group cisco-amp-scan-svc does not exist" in texts(item)
    assert "USERGROUPS_ENAB" not in texts(item)


@pytest.mark.parametrize(("rel", "mode", "problem"), [
    ("opt/cisco/amp/bin", 0o750, "not readable"),
    ("opt/cisco", 0o777, "writable"),
    ("opt/cisco/amp/var/clamav", 0o700, "not readable"),
])
def test_5_directory_permissions(healthy: LinuxTree, run: Evaluate, rel: str, mode: int, problem: str) -> None:
    healthy.chmod(rel, mode)
    item = result(run(healthy), "5")
    assert item.state is State.ACTIVE
    assert f"/{rel} has mode {mode:04o}" in texts(item)
    assert problem in texts(item)


def test_5_deeper_than_three_levels_is_not_judged(healthy: LinuxTree, run: Evaluate) -> None:
    deep = healthy.root / "opt/cisco/amp/var/clamav/tmp"
    deep.mkdir(parents=True)
    deep.chmod(0o700)
    assert result(run(healthy), "5").state is State.CLEAR


@pytest.mark.parametrize("rel", ["opt/cisco/secureclient/kdf", "opt/cisco/orbital", "opt/cisco/secureclient"])
def test_5_other_cisco_products_beside_the_connector_are_not_judged(healthy: LinuxTree, run: Evaluate,
                                                                     rel: str) -> None:
    """Secure Client and Orbital keep folders of their own under /opt/cisco; the scan service never enters them."""
    folder = healthy.root / rel
    folder.mkdir(parents=True)
    folder.chmod(0o700)
    assert result(run(healthy), "5").state is State.CLEAR


def test_5_unreadable_passwd_is_unknown(healthy: LinuxTree, run: Evaluate) -> None:
    healthy.remove("etc/passwd")
    item = result(run(healthy), "5")
    assert item.state is State.UNKNOWN
    assert "scan_user" in texts(item)


# -- fault 6 -------------------------------------------------------------------
def test_6_reported_by_connector(healthy: LinuxTree, run: Evaluate) -> None:
    healthy.ampcli(faults_status((6, "Major", "Scan service restarting frequently.")))
    item = result(run(healthy), "6")
    assert item.state is State.ACTIVE
    assert item.reported is True
    assert "connector" in item.sources


def test_6_three_scanners_started_within_ten_minutes_across_runs(healthy: LinuxTree, run: Evaluate) -> None:
    store = StateStore(rootfs=str(healthy.root))
    _stop_scanner(healthy)
    for minutes_ago in (9, 5):
        pid = healthy.process("ampscansvc", started_ago=minutes_ago * 60)
        assert result(run(healthy, store=store), "6").state is State.CLEAR
        healthy.kill(pid)
    healthy.process("ampscansvc", started_ago=30)
    item = result(run(healthy, store=store), "6")
    assert item.state is State.ACTIVE
    assert item.sources == ["host"]
    assert "3 scan service processes started within 10 minutes" in texts(item)


def test_6_old_starts_fall_out_of_the_window(healthy: LinuxTree, run: Evaluate) -> None:
    store = StateStore(rootfs=str(healthy.root))
    now = int((time.time() - healthy.boot) * CLK_TCK)
    store.scan_starts([(501, now - 3600 * CLK_TCK), (502, now - 1800 * CLK_TCK)], BOOT_ID, now, 600 * CLK_TCK)
    item = result(run(healthy, store=store), "6")
    assert item.state is State.CLEAR
    assert "0 scan service processes" in texts(item)  # the running scanner started 30 minutes ago
    assert store.data[str(healthy.root)]["scan_starts"] == []


def test_6_clear_needs_the_connector_status(healthy: LinuxTree, run: Evaluate) -> None:
    healthy.ampcli(b"\xff\xfe garbage \x00")
    item = result(run(healthy), "6")
    assert item.state is State.UNKNOWN
    assert "connector's own status is unavailable" in texts(item)


# -- fault 7 -------------------------------------------------------------------
def _stop(tree: LinuxTree, name: str) -> None:
    tree.stop(name)


def _stop_scanner(tree: LinuxTree) -> None:
    _stop(tree, "ampscansvc")


def _restart_daemon_without_bpf(tree: LinuxTree) -> None:
    _stop(tree, "ampdaemon")
    tree.process("ampdaemon", bpf_programs=0)


def test_7_names_the_corrupt_cvd(healthy: LinuxTree, run: Evaluate) -> None:
    _stop_scanner(healthy)
    healthy.definitions("main.cvd", corrupt=True)
    item = result(run(healthy), "7")
    assert item.state is State.ACTIVE
    assert "ampscansvc is not running" in texts(item)
    assert "/opt/cisco/amp/var/clamav/main.cvd fails its integrity check" in texts(item)
    assert "daily.cvd" not in texts(item)


def test_7_names_low_memory(healthy: LinuxTree, run: Evaluate) -> None:
    _stop_scanner(healthy)
    healthy.write("proc/meminfo", "MemTotal: 1000000 kB\nMemAvailable: 102400 kB\n")
    item = result(run(healthy, min_available_mib=256), "7")
    assert item.state is State.ACTIVE
    assert "only 100 MiB of memory is available (minimum 256 MiB)" in texts(item)


def test_7_not_applicable_when_daemon_is_down(healthy: LinuxTree, run: Evaluate) -> None:
    for entry in list((healthy.root / "proc").iterdir()):
        if entry.name.isdigit() and entry.name != "1":
            healthy.kill(int(entry.name))
    report = run(healthy)
    assert result(report, "7").state is State.NOT_APPLICABLE
    assert result(report, "daemon_not_running").state is State.ACTIVE


def test_7_unknown_without_proc(healthy: LinuxTree, run: Evaluate) -> None:
    import shutil

    shutil.rmtree(healthy.root / "proc")
    item = result(run(healthy), "7")
    assert item.state is State.UNKNOWN
    assert "processes" in texts(item)


# -- faults 8 and 9 --------------------------------------------------------------
def test_8_active_with_secure_boot_and_missing_headers(healthy: LinuxTree, run: Evaluate) -> None:
    healthy.modules("ampnetworkflow")
    _restart_daemon_without_bpf(healthy)
    healthy.secure_boot(True)
    healthy.kernel_headers(present=False)
    (healthy.root / "usr/src/kernels" / healthy.release).rmdir()
    report = run(healthy)
    item = result(report, "8")
    assert item.state is State.ACTIVE
    assert "none of the kernel modules ampfsm, redirfs, avflt, ampavflt is loaded" in texts(item)
    assert "ampdaemon holds no eBPF program" in texts(item)
    assert "Secure Boot is on" in texts(item)
    assert "kernel headers for 5.14.0-362.8.1.el9_3.x86_64 are missing (fault 11)" in texts(item)
    assert result(report, "9").state is State.CLEAR  # ampnetworkflow is loaded


def test_8_clear_through_ebpf(healthy: LinuxTree, run: Evaluate) -> None:
    healthy.modules()
    item = result(run(healthy), "8")
    assert item.state is State.CLEAR
    assert "ampdaemon holds 4 eBPF programs" in texts(item)


def test_8_not_applicable_when_file_monitoring_is_off(healthy: LinuxTree, run: Evaluate) -> None:
    healthy.policy(file_monitoring=False, device_flow=True)
    healthy.modules()
    assert result(run(healthy), "8").state is State.NOT_APPLICABLE


def test_8_unknown_without_policy(healthy: LinuxTree, run: Evaluate) -> None:
    healthy.remove("opt/cisco/amp/etc/policy.xml")
    item = result(run(healthy), "8")
    assert item.state is State.UNKNOWN
    assert "no connector policy found at /opt/cisco/amp/etc/policy.xml" in texts(item)


def test_8_unknown_with_malformed_policy(healthy: LinuxTree, run: Evaluate) -> None:
    healthy.write("opt/cisco/amp/etc/policy.xml", "<config><agent>")
    report = run(healthy)
    assert result(report, "8").state is State.UNKNOWN
    assert "not well-formed XML" in texts(result(report, "8"))
    assert not next(c for c in report.collectors if c.name == "policy").success


def test_9_active_with_configured_module_names(healthy: LinuxTree, run: Evaluate) -> None:
    healthy.modules("ampfsm", "ampnetworkflow")
    _restart_daemon_without_bpf(healthy)
    item = result(run(healthy, network_modules=("ampnfm",)), "9")
    assert item.state is State.ACTIVE
    assert "ampnfm" in texts(item)


def test_9_not_applicable_without_device_flow(healthy: LinuxTree, run: Evaluate) -> None:
    healthy.policy(file_monitoring=True, device_flow=False)
    assert result(run(healthy, network_modules=("nothing",)), "9").state is State.NOT_APPLICABLE


def test_9_unknown_when_option_missing_from_policy(healthy: LinuxTree, run: Evaluate) -> None:
    healthy.policy(file_monitoring=True, device_flow=None)
    item = result(run(healthy), "9")
    assert item.state is State.UNKNOWN
    assert "does not say whether Device Flow Correlation is on" in texts(item)


# -- fault 11 ------------------------------------------------------------------
@pytest.mark.parametrize(("distro", "release", "package"), [
    ("rhel", "5.14.0-362.8.1.el9_3.x86_64", "kernel-devel-5.14.0-362.8.1.el9_3.x86_64"),
    ("ol", "5.15.0-200.131.27.el8uek.x86_64", "kernel-uek-devel-5.15.0-200.131.27.el8uek.x86_64"),
    ("debian", "6.1.0-13-amd64", "linux-headers-6.1.0-13-amd64"),
    ("ubuntu", "5.15.0-91-generic", "linux-headers-5.15.0-91-generic"),
])
def test_11_names_the_package_for_the_distro(tmp_path: Path, run: Evaluate, distro: str, release: str,
                                             package: str) -> None:
    tree = LinuxTree(tmp_path / "host", distro=distro, release=release).healthy()
    tree.modules()  # eBPF, built by a connector before 1.25: it needs the headers
    (tree.root / "usr/src/kernels" / release).rmdir()
    item = result(run(tree), "11")
    assert item.state is State.ACTIVE
    assert item.remedy is not None
    assert item.remedy.render("en") == (f"install the package {package} and restart the connector "
                                        "(systemctl restart cisco-amp)")
    assert f"/lib/modules/{release}/build does not lead to a directory" in texts(item)


def test_11_clear_when_headers_resolve_inside_the_root(healthy: LinuxTree, run: Evaluate) -> None:
    item = result(run(healthy), "11")
    assert item.state is State.CLEAR
    assert "kernel headers found" in texts(item)


@pytest.mark.parametrize("target", ["/var/tmp", "../../../../../../../../../../var/tmp"])
def test_11_symlink_out_of_the_root_does_not_count(healthy: LinuxTree, run: Evaluate, target: str) -> None:
    # /var/tmp exists on the machine running the test but not in the tree.
    assert Path("/var/tmp").is_dir() and not (healthy.root / "var/tmp").exists()
    healthy.modules()
    healthy.symlink(f"lib/modules/{healthy.release}/build", target)
    assert result(run(healthy), "11").state is State.ACTIVE


def test_11_not_applicable_when_both_options_are_off(healthy: LinuxTree, run: Evaluate) -> None:
    healthy.policy(file_monitoring=False, device_flow=False)
    assert result(run(healthy), "11").state is State.NOT_APPLICABLE


# -- faults 16 and 18 (connector-reported) ----------------------------------------
def test_16_reported_with_the_running_kernel(healthy: LinuxTree, run: Evaluate) -> None:
    healthy.ampcli(faults_status((16, "Critical", "Incompatible kernel."), mode="Normal"))
    item = result(run(healthy), "16")
    assert item.state is State.ACTIVE
    assert item.severity == "Critical"
    assert "running kernel 5.14.0-362.8.1.el9_3.x86_64" in texts(item)


def test_16_unknown_when_ampcli_hangs(healthy: LinuxTree, run: Evaluate) -> None:
    healthy.ampcli(hang=30)
    started = time.monotonic()
    report = run(healthy, ampcli_timeout=1.0)
    assert time.monotonic() - started < 5
    assert result(report, "16").state is State.UNKNOWN
    assert "did not answer within 1 s" in texts(result(report, "16"))
    assert result(report, "ampcli_failed").state is State.ACTIVE
    assert result(report, "5").state is State.CLEAR  # host checks go on


def test_18_from_degraded_mode_alone(healthy: LinuxTree, run: Evaluate) -> None:
    healthy.ampcli(faults_status(mode="Degraded"))
    item = result(run(healthy), "18")
    assert item.state is State.ACTIVE
    assert item.reported is False
    assert "mode Degraded" in texts(item)


def test_18_reported(healthy: LinuxTree, run: Evaluate) -> None:
    healthy.ampcli(faults_status((18, "Major", "Connector event monitoring is overloaded.")))
    item = result(run(healthy), "18")
    assert item.state is State.ACTIVE
    assert item.reported is True


# -- fault 19 ------------------------------------------------------------------
@pytest.mark.parametrize(("module", "store", "state"), [
    ("installed", "var/lib", State.CLEAR),
    ("installed", "etc", State.CLEAR),
    ("missing", "var/lib", State.ACTIVE),
    ("disabled", "var/lib", State.ACTIVE),
    ("disabled", "etc", State.ACTIVE),
])
def test_19_module_states(tmp_path: Path, run: Evaluate, module: str, store: str, state: State) -> None:
    tree = LinuxTree(tmp_path / "host").healthy()
    import shutil

    shutil.rmtree(tree.root / "var/lib/selinux")
    tree.selinux(enforcing=True, module=module, store=store)
    item = result(run(tree), "19")
    assert item.state is state
    if module == "disabled":
        assert "cisco-secure-bpf is disabled" in texts(item)


def test_19_permissive_is_clear(healthy: LinuxTree, run: Evaluate) -> None:
    healthy.selinux(enforcing=False, module="missing")
    assert result(run(healthy), "19").state is State.CLEAR


def test_19_uses_the_configured_policy_type(healthy: LinuxTree, run: Evaluate) -> None:
    healthy.selinux(enforcing=True, module="missing", policy_type="mls")
    item = result(run(healthy), "19")
    assert item.state is State.ACTIVE
    assert "SELinux (mls)" in texts(item)


# -- several at once, and the checks beyond the documents -------------------------
def test_several_faults_at_once(healthy: LinuxTree, run: Evaluate) -> None:
    healthy.write("etc/group", "root:x:0:\n")
    healthy.selinux(enforcing=True, module="disabled")
    healthy.ampcli(faults_status((18, "Major", "overloaded"), (42, "Critical", "Something new.")))
    report = run(healthy)
    active = sorted(r.fault.id for r in report.active())
    assert active == ["18", "19", "42", "5"]
    unknown = result(report, "42")
    assert unknown.fault.slug == "unknown"
    assert unknown.fault.title.en == "Something new"


def test_not_connected(healthy: LinuxTree, run: Evaluate) -> None:
    healthy.ampcli(faults_status(status="Disconnected", mode="Normal"))
    report = run(healthy)
    assert result(report, "not_connected").state is State.ACTIVE
    assert report.connected is False


def _old_files(tree: LinuxTree) -> None:
    tree.definitions("main.cvd", build_time=time.time() - 30 * 86400)
    tree.definitions("daily.cvd", build_time=time.time() - 10 * 86400)


def test_definitions_age_follows_ampcli_policy(healthy: LinuxTree, run: Evaluate) -> None:
    """The connector's own 'Definitions Last Updated' wins over the definition files' build time."""
    _old_files(healthy)
    report = run(healthy, definitions_max_age_days=7)
    item = result(report, "definitions_stale")
    assert item.state is State.CLEAR
    assert "last updated 0.1 days ago, says ampcli policy" in texts(item)
    assert report.definitions_updated_time is not None
    assert report.to_dict()["connector"]["definition_version"] == "ClamAV daily.cvd 27100"
    healthy.ampcli(policy=policy_output(updated=time.time() - 12 * 86400))
    item = result(run(healthy, definitions_max_age_days=7), "definitions_stale")
    assert item.state is State.ACTIVE
    assert "last updated 12.0 days ago, says ampcli policy" in texts(item)


@pytest.mark.parametrize("policy", ["", "Definition Version: 27100\nDefinitions Last Updated: sometime\n"])
def test_definitions_age_falls_back_to_the_files(healthy: LinuxTree, run: Evaluate, policy: str) -> None:
    """ampcli policy failing, or printing a time no known format fits: the newest CVD's build time counts."""
    healthy.ampcli(policy=policy)
    _old_files(healthy)
    report = run(healthy, definitions_max_age_days=7)
    item = result(report, "definitions_stale")
    assert item.state is State.ACTIVE
    assert "newest definitions were built 10.0 days ago" in texts(item)
    assert report.definitions_updated_time is None


def test_ampcli_missing_is_reported(healthy: LinuxTree, run: Evaluate) -> None:
    healthy.remove("opt/cisco/amp/bin/ampcli")
    report = run(healthy)
    assert result(report, "ampcli_failed").state is State.ACTIVE
    assert "ampcli not found at /opt/cisco/amp/bin/ampcli" in texts(result(report, "ampcli_failed"))
    assert result(report, "18").state is State.UNKNOWN
    assert result(report, "8").state is State.CLEAR


@pytest.mark.parametrize("output", [b"", b"\x89PNG\r\n\x1a\n\x00\x00", b"Segmentation fault\n", b"x" * 3_000_000])
def test_ampcli_garbage_never_crashes(healthy: LinuxTree, run: Evaluate, output: bytes) -> None:
    healthy.ampcli(output)
    report = run(healthy)
    assert result(report, "ampcli_failed").state is State.ACTIVE
    assert result(report, "18").state is State.UNKNOWN
    assert result(report, "19").state is State.CLEAR


def test_ampcli_failing_exit_code(healthy: LinuxTree, run: Evaluate) -> None:
    healthy.ampcli("Status: Connected\n", exit_code=4)
    item = result(run(healthy), "ampcli_failed")
    assert item.state is State.ACTIVE
    assert "exited with code 4" in texts(item)


def test_unreadable_evidence_is_unknown_not_clear(healthy: LinuxTree, run: Evaluate) -> None:
    """A directory where a file should be makes reads fail like a permission error would."""
    healthy.remove("sys/fs/selinux/enforce")
    (healthy.root / "sys/fs/selinux/enforce").mkdir()
    item = result(run(healthy), "19")
    assert item.state is State.UNKNOWN
    assert "selinux" in texts(item)

