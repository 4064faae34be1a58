"""Every macOS fault on Mac host trees read under --path.rootfs: active, clear, unknown or not applicable."""

from __future__ import annotations

import contextlib
import plistlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secure_endpoint_monitoring.checks.evidence import netext, sysext
from secure_endpoint_monitoring.checks.report import State
from tests.conftest import Evaluate, result, texts
from tests.hosttree import faults_status
from tests.mactree import NETWORK, SECURITY, SERVICE, MacTree, extension, keyed_archive

MAC_IDS = ["1", "2", "3", "4", "5", "6", "7", "10", "12", "13", "14", "15", "17", "18"]
OTHER = [("com.vendor.vpn", "Vendor VPN", True, 1), ("com.vendor.dlp", "DLP", True, 1),
         ("com.vendor.fw", "Firewall", True, 1), ("com.vendor.web", "Web filter", True, 1)]


@pytest.fixture
def mac(tmp_path: Path) -> MacTree:
    return MacTree(tmp_path / "mac").healthy()


def test_healthy_mac(mac: MacTree, run: Evaluate) -> None:
    report = run(mac)
    assert report.platform == "macos" and report.os_version == "14.4"
    assert [r.fault.id for r in report.faults] == MAC_IDS
    states = {r.fault.id: r.state for r in report.faults}
    # Processes of a Mac tree can only be read on the live Mac: not judged from a copy (issue 22), neither
    # unknown nor clear; fault 4 is for macOS 10.15 and older only; Orbital is not installed.
    assert states == {**dict.fromkeys(MAC_IDS, State.CLEAR), "4": State.NOT_APPLICABLE,
                      "6": State.NOT_APPLICABLE, "7": State.NOT_APPLICABLE, "17": State.NOT_APPLICABLE}
    assert report.connector_version == "1.24.1.1234"  # from global.xml
    assert report.endpoint_security_extensions == 1
    assert result(report, "daemon_not_running").state is State.NOT_APPLICABLE
    assert "not judged from a copied tree: only the running Mac can tell (processes)" in texts(result(report, "7"))
    assert "processes" not in [c.name for c in report.collectors]  # not run, so not failed


def test_mac_without_connector(tmp_path: Path, run: Evaluate) -> None:
    report = run(MacTree(tmp_path / "mac"))
    assert not report.installed
    assert {r.state for r in report.faults} == {State.NOT_APPLICABLE}


def test_legacy_app_path_counts_as_installed(tmp_path: Path, run: Evaluate) -> None:
    tree = MacTree(tmp_path / "mac")
    tree.install_legacy_connector(version="1.12.7", build="1.12.7.500")
    tree.remove("opt/cisco/amp/ampdaemon")
    tree.remove("opt/cisco/amp/global.xml")
    report = run(tree)
    assert report.installed and report.connector_version == "1.12.7"  # from the app, without global.xml


# -- fault 1 ---------------------------------------------------------------------------
def test_1_extension_waiting_for_user(mac: MacTree, run: Evaluate) -> None:
    mac.extensions(extension(SECURITY, state="activated_waiting_for_user"), extension(NETWORK))
    item = result(run(mac), "1")
    assert item.state is State.ACTIVE
    assert f"system extension {SECURITY} is activated_waiting_for_user" in texts(item)


def test_1_other_teams_do_not_count(mac: MacTree, run: Evaluate) -> None:
    mac.extensions(extension(SECURITY), extension(NETWORK),
                   extension("com.other.ext", state="activated_waiting_for_user", team="ABCDE12345"))
    assert result(run(mac), "1").state is State.CLEAR


# -- fault 2 ---------------------------------------------------------------------------
def test_2_version_mismatch(mac: MacTree, run: Evaluate) -> None:
    mac.extensions(extension(SECURITY, version="1.22.0.900"), extension(NETWORK))
    item = result(run(mac), "2")
    assert item.state is State.ACTIVE
    assert f"{SECURITY} runs version 1.22.0.900 but the Service app is 1.24.1.1234" in texts(item)


def test_2_unknown_without_the_service_app(mac: MacTree, run: Evaluate) -> None:
    mac.remove("Applications")
    item = result(run(mac), "2")
    assert item.state is State.UNKNOWN
    assert "Service app" in texts(item)


# -- faults 3 and 15 (Full Disk Access) --------------------------------------------------
def test_3_service_without_full_disk_access(mac: MacTree, run: Evaluate) -> None:
    mac.tcc({SERVICE: False, SECURITY: True})
    report = run(mac)
    assert result(report, "3").state is State.ACTIVE
    assert f"{SERVICE} has no Full Disk Access" in texts(result(report, "3"))
    assert result(report, "15").state is State.CLEAR


def test_3_before_1_14_checks_the_daemon_path(tmp_path: Path, run: Evaluate) -> None:
    mac = MacTree(tmp_path / "mac", version="10.15.7").healthy_legacy()
    mac.tcc({SERVICE: True, SECURITY: True})
    item = result(run(mac), "3")
    assert item.state is State.ACTIVE
    assert "/opt/cisco/amp/ampdaemon has no Full Disk Access" in texts(item)
    mac.tcc({"/opt/cisco/amp/ampdaemon": True})
    assert result(run(mac), "3").state is State.CLEAR


def test_mdm_granted_access_counts(mac: MacTree, run: Evaluate) -> None:
    mac.tcc({})
    mac.mdm(SERVICE, SECURITY)
    report = run(mac)
    assert result(report, "3").state is State.CLEAR
    assert result(report, "15").state is State.CLEAR


@pytest.mark.parametrize("schema", ["modern", "legacy"])
def test_both_tcc_schemas(mac: MacTree, run: Evaluate, schema: str) -> None:
    mac.tcc({SERVICE: True, SECURITY: False}, schema=schema)
    report = run(mac)
    assert result(report, "3").state is State.CLEAR
    assert result(report, "15").state is State.ACTIVE


def test_15_not_applicable_before_big_sur(tmp_path: Path, run: Evaluate) -> None:
    tree = MacTree(tmp_path / "mac", version="10.15.7").healthy()
    tree.tcc({SERVICE: True})
    assert result(run(tree), "15").state is State.NOT_APPLICABLE


@pytest.mark.parametrize("damage", ["corrupt", "missing", "unreadable_mdm"])
def test_damaged_tcc_is_unknown_and_leaves_the_rest(mac: MacTree, run: Evaluate, damage: str) -> None:
    db = mac.root / "Library/Application Support/com.apple.TCC/TCC.db"
    if damage == "corrupt":
        db.write_bytes(b"SQLite format 3\x00" + b"\xff" * 2000)
    elif damage == "missing":
        db.unlink()
    else:
        mac.write("Library/Application Support/com.apple.TCC/MDMOverrides.plist", b"bplist00\x00\x01garbage")
    report = run(mac)
    for fault_id in ("3", "15"):
        assert result(report, fault_id).state is State.UNKNOWN, fault_id
    assert "TCC" in texts(result(report, "3")) or "MDMOverrides" in texts(result(report, "3"))
    assert result(report, "1").state is State.CLEAR
    assert result(report, "12").state is State.CLEAR


def test_tcc_db_is_never_written(mac: MacTree, run: Evaluate) -> None:
    db = mac.root / "Library/Application Support/com.apple.TCC/TCC.db"
    before = (db.read_bytes(), db.stat().st_mtime_ns)
    run(mac)
    assert (db.read_bytes(), db.stat().st_mtime_ns) == before
    assert sorted(p.name for p in db.parent.iterdir()) == ["TCC.db"]  # no journal or WAL files


# -- fault 4 ---------------------------------------------------------------------------
def test_4_not_judged_for_catalina_under_a_root(tmp_path: Path, run: Evaluate) -> None:
    tree = MacTree(tmp_path / "mac", version="10.15.7").healthy()
    item = result(run(tree), "4")
    assert item.state is State.NOT_APPLICABLE
    assert "not judged from a copied tree: only the running Mac can tell (kernel_extensions)" in texts(item)


def test_4_not_applicable_from_big_sur(mac: MacTree, run: Evaluate) -> None:
    item = result(run(mac), "4")
    assert item.state is State.NOT_APPLICABLE
    assert "macOS 10.15 and older" in texts(item)


# -- fault 5 ---------------------------------------------------------------------------
def test_5_scan_user_missing_from_dslocal(mac: MacTree, run: Evaluate) -> None:
    mac.scan_account(user=False, group=True)
    item = result(run(mac), "5")
    assert item.state is State.ACTIVE
    assert "user cisco-amp-scan-svc does not exist" in texts(item)


# -- faults 6 and 7 --------------------------------------------------------------------
def test_6_reported_is_active_even_without_processes(mac: MacTree, run: Evaluate) -> None:
    mac.ampcli(faults_status((6, "Major", "Scan service restarting frequently"), mode="Normal"))
    item = result(run(mac), "6")
    assert item.state is State.ACTIVE and item.reported is True


def test_7_definitions_are_read_under_application_support(mac: MacTree, run: Evaluate) -> None:
    report = run(mac)
    assert report.definitions_build_time is not None


# -- fault 10 --------------------------------------------------------------------------
def test_10_waiting_for_reboot(mac: MacTree, run: Evaluate) -> None:
    mac.extensions(extension(SECURITY, state="activated_waiting_for_reboot"), extension(NETWORK))
    item = result(run(mac), "10")
    assert item.state is State.ACTIVE
    assert "activated_waiting_for_reboot" in texts(item)


def test_10_upgrade_waiting_beside_an_enabled_newer_version_is_not_a_fault(mac: MacTree, run: Evaluate) -> None:
    mac.extensions(extension(SECURITY, state="terminated_waiting_to_uninstall_on_reboot", version="1.23.0.100"),
                   extension(SECURITY), extension(NETWORK))
    report = run(mac)
    assert result(report, "10").state is State.CLEAR
    assert result(report, "2").state is State.CLEAR


def test_truncated_db_plist_is_unknown_for_its_faults_only(mac: MacTree, run: Evaluate) -> None:
    db = mac.root / "Library/SystemExtensions/db.plist"
    db.write_bytes(db.read_bytes()[:40])
    report = run(mac)
    for fault_id in ("1", "2", "10", "14"):
        assert result(report, fault_id).state is State.UNKNOWN, fault_id
    assert result(report, "3").state is State.CLEAR
    assert result(report, "12").state is State.CLEAR
    assert report.endpoint_security_extensions is None


def test_xml_db_plist_reads_the_same(mac: MacTree, run: Evaluate) -> None:
    mac.extensions(extension(SECURITY, state="activated_waiting_for_user"), extension(NETWORK), binary=False)
    assert result(run(mac), "1").state is State.ACTIVE


# -- faults 12 and 13 ------------------------------------------------------------------
def test_12_filter_not_enabled(mac: MacTree, run: Evaluate) -> None:
    mac.content_filters((SERVICE, "Cisco Secure Endpoint", False, 1), *OTHER[:2])
    report = run(mac)
    assert result(report, "12").state is State.ACTIVE
    assert "2 other firewall-grade content filters are enabled (Vendor VPN, DLP)" in texts(result(report, "12"))
    assert result(report, "13").state is State.CLEAR


def test_13_four_other_firewall_filters(mac: MacTree, run: Evaluate) -> None:
    mac.content_filters(*OTHER)
    report = run(mac)
    assert result(report, "13").state is State.ACTIVE
    assert "macOS allows 4 content filters per grade" in texts(result(report, "13"))
    assert result(report, "12").state is State.CLEAR


def test_12_13_other_grades_do_not_crowd_ours_out(mac: MacTree, run: Evaluate) -> None:
    mac.content_filters(*[(app, name, on, 2) for app, name, on, _ in OTHER])
    report = run(mac)
    assert result(report, "12").state is State.ACTIVE
    assert result(report, "13").state is State.CLEAR


def test_12_13_not_applicable_without_device_flow(mac: MacTree, run: Evaluate) -> None:
    mac.policy(device_flow=False)
    mac.content_filters()
    report = run(mac)
    assert result(report, "12").state is State.NOT_APPLICABLE
    assert result(report, "13").state is State.NOT_APPLICABLE


def test_12_no_network_extension_file(mac: MacTree, run: Evaluate) -> None:
    mac.remove("Library/Preferences/com.apple.networkextension.plist")
    item = result(run(mac), "12")
    assert item.state is State.ACTIVE
    assert "no content filter configured" in texts(item)


# -- fault 14 --------------------------------------------------------------------------
def test_14_reported_with_the_count(mac: MacTree, run: Evaluate) -> None:
    mac.extensions(extension(SECURITY), extension(NETWORK), extension("com.crowd.es", team="XYZ1234567",
                                                                      categories=(sysext.ENDPOINT_SECURITY_CATEGORY,)),
                   extension("com.other.es", team="QRS1234567", categories=(sysext.ENDPOINT_SECURITY_CATEGORY,)))
    mac.ampcli(faults_status((14, "Critical", "Too many Endpoint Security extensions"), mode="Normal"))
    report = run(mac)
    item = result(report, "14")
    assert item.state is State.ACTIVE
    assert "3 Endpoint Security extensions are enabled" in texts(item)
    assert report.endpoint_security_extensions == 3


def test_14_unknown_without_the_connector(mac: MacTree, run: Evaluate) -> None:
    mac.remove("opt/cisco/amp/ampcli")
    assert result(run(mac), "14").state is State.UNKNOWN


# -- fault 17 --------------------------------------------------------------------------
def test_17_orbital_without_access(mac: MacTree, run: Evaluate) -> None:
    mac.orbital()
    item = result(run(mac), "17")
    assert item.state is State.ACTIVE
    assert "Cisco Orbital" in texts(item)


@pytest.mark.parametrize("client", ["com.cisco.orbital", "com.cisco.endpoint.orbital",
                                    "/opt/cisco/orbital/bin/orbital"])
def test_17_orbital_with_access(mac: MacTree, run: Evaluate, client: str) -> None:
    mac.orbital()
    mac.tcc({SERVICE: True, SECURITY: True, client: True})
    assert result(run(mac), "17").state is State.CLEAR


# -- several at once ---------------------------------------------------------------------
def test_several_mac_faults_at_once(mac: MacTree, run: Evaluate) -> None:
    mac.extensions(extension(SECURITY, state="activated_waiting_for_user"), extension(NETWORK, version="1.0.0.1"))
    mac.tcc({SERVICE: False})
    mac.content_filters(*OTHER)
    mac.orbital()
    active = sorted((r.fault.id for r in run(mac).active()), key=int)
    assert active == ["1", "2", "3", "13", "15", "17"]


# -- readers never crash -------------------------------------------------------------------
@given(st.binary(max_size=300))
def test_db_plist_reader_raises_only_value_error(data: bytes) -> None:
    with contextlib.suppress(ValueError):
        sysext.parse(data, "db.plist")


@given(st.binary(max_size=300))
def test_archive_reader_raises_only_value_error(data: bytes) -> None:
    with contextlib.suppress(ValueError):
        netext.parse(data, "ne.plist")


plist_values = st.recursive(
    st.booleans() | st.integers(-5, 10) | st.text(max_size=8)
    | st.builds(plistlib.UID, st.integers(0, 12)),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(st.lists(plist_values, max_size=12))
def test_archive_reader_survives_any_object_table(objects: list) -> None:
    data = plistlib.dumps({"$archiver": "NSKeyedArchiver", "$objects": ["$null", *objects], "$top": {}},
                          fmt=plistlib.FMT_BINARY)
    try:
        facts = netext.parse(data, "ne.plist")
    except ValueError as error:  # a reference loop or a chain too long: refused, with the file named
        assert "ne.plist" in str(error)
        return
    assert all(isinstance(f.enabled, bool) for f in facts.filters)


@given(st.lists(st.dictionaries(st.sampled_from(["identifier", "teamID", "state", "categories", "bundleVersion"]),
                                plist_values, max_size=5), max_size=5))
def test_db_plist_reader_survives_any_entries(entries: list) -> None:
    facts = sysext.parse(plistlib.dumps({"extensions": entries}, fmt=plistlib.FMT_BINARY), "db.plist")
    assert len(facts.extensions) == len(entries)


def test_keyed_archive_round_trip() -> None:
    facts = netext.parse(keyed_archive([(SERVICE, "Cisco", True, 1), ("x", "y", False, 2)]), "ne.plist")
    assert facts.filters == (netext.ContentFilter(SERVICE, "Cisco", True, 1), netext.ContentFilter("x", "y", False, 2))


@pytest.mark.parametrize(("text", "parts"), [("1.14.2", (1, 14, 2)), ("1.²", (1,)), ("١.14", ()),
                                              ("1." + "9" * 5000, (1,)), ("", ())])
def test_version_tuple_reads_ascii_numbers_only(text: str, parts: tuple[int, ...]) -> None:
    from secure_endpoint_monitoring.checks.evidence import version_tuple

    assert version_tuple(text) == parts
