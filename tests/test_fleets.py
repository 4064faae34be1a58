"""Hosts shaped like the fleets people run today (issue 22), healthy and faulty, through both commands.

Each shape follows public material (docs/connector-facts.md): connector 1.25 and later load CO-RE eBPF
programs on kernels with BTF and need no headers; older connectors build their eBPF programs against the
headers; EL6/EL7 (and other old kernels) run the connector's kernel modules, which need no headers while
they are loaded; EL6 has no os-release; from 1.14.1 the Mac connector runs on macOS 10.14 and 10.15 with
kernel extensions, and uses system extensions from macOS 11 on. A healthy shape reads OK everywhere;
a copied Mac tree is judged where a copy can tell, and says where it cannot.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.commands import run
from tests.hosttree import LinuxTree
from tests.mactree import NETWORK, SECURITY, MacTree, extension
from tests.test_exporter_once import samples

CORE_VERSION = "1.25.0.1234"
Shape = Callable[[Path], "LinuxTree | MacTree"]


def _no_headers(tree: LinuxTree) -> LinuxTree:
    tree.remove(f"usr/src/kernels/{tree.release}")
    return tree


def _ebpf(tree: LinuxTree) -> LinuxTree:
    """No kernel module: the connector's eBPF programs, held by ampdaemon (the fixture's default)."""
    tree.modules()
    return tree


def _kmod(tree: LinuxTree, *modules: str) -> LinuxTree:
    """The connector's kernel modules (or none, when they failed to load); ampdaemon holds no eBPF."""
    tree.modules(*modules)
    tree.stop("ampdaemon")
    tree.process("ampdaemon")
    return tree


def rocky9_core_without_headers(base: Path) -> LinuxTree:
    tree = _ebpf(LinuxTree(base, distro="rocky").healthy())
    tree.btf("sys")
    tree.global_config(CORE_VERSION)
    return _no_headers(tree)


def al2023_core_btf_in_boot_config(base: Path) -> LinuxTree:
    tree = _ebpf(LinuxTree(base, distro="amzn2023", release="6.1.61-85.141.amzn2023.x86_64").healthy())
    tree.btf("boot")  # a tree copied without sys: the boot config tells
    tree.global_config("1.26.0.321")
    return _no_headers(tree)


def rhel9_before_core_with_headers(base: Path) -> LinuxTree:
    tree = _ebpf(LinuxTree(base).healthy())
    tree.btf("sys")
    return tree


def rhel9_before_core_without_headers(base: Path) -> LinuxTree:
    return _no_headers(rhel9_before_core_with_headers(base))


def core_connector_on_a_kernel_without_btf(base: Path) -> LinuxTree:
    tree = _ebpf(LinuxTree(base).healthy())
    tree.btf("none")
    tree.global_config(CORE_VERSION)
    return _no_headers(tree)


def core_connector_btf_not_known(base: Path) -> LinuxTree:
    """Copied without sys and boot: whether the kernel has BTF cannot be told."""
    tree = _ebpf(LinuxTree(base, distro="debian", release="6.1.0-13-amd64").healthy())
    tree.global_config(CORE_VERSION)
    return _no_headers(tree)


def btf_and_no_version_known(base: Path) -> LinuxTree:
    """No global.xml, and ampcli's status fails (the daemon restarting): the version is not known."""
    tree = _ebpf(LinuxTree(base, distro="rocky").healthy())
    tree.btf("sys")
    tree.remove("opt/cisco/amp/etc/global.xml")
    tree.ampcli("", exit_code=1, about="")
    return _no_headers(tree)


def rhel8_copied_without_sys_selinux_module_missing(base: Path) -> LinuxTree:
    tree = LinuxTree(base).healthy()
    tree.selinux(enforcing=True, module="missing")
    tree.remove("sys")  # the config still says enforcing
    return tree


def el7_kmod_without_headers(base: Path) -> LinuxTree:
    tree = LinuxTree(base, distro="centos7", release="3.10.0-1160.105.1.el7.x86_64").healthy()
    return _no_headers(_kmod(tree, "ampfsm", "ampnetworkflow"))


def el7_kmod_failed_without_headers(base: Path) -> LinuxTree:
    tree = LinuxTree(base, distro="centos7", release="3.10.0-1160.105.1.el7.x86_64").healthy()
    return _no_headers(_kmod(tree))


def el7_kmod_failed_with_headers(base: Path) -> LinuxTree:
    return _kmod(LinuxTree(base, distro="centos7", release="3.10.0-1160.105.1.el7.x86_64").healthy())


def el6_kmod_without_headers(base: Path) -> LinuxTree:
    tree = LinuxTree(base, release="2.6.32-754.35.1.el6.x86_64").healthy()
    tree.el6()
    return _no_headers(_kmod(tree, "redirfs", "avflt", "ampnetworkflow"))


def mac(version: str, content_filter: bool = True) -> Shape:
    def build(base: Path) -> MacTree:
        tree = MacTree(base, version=version).healthy()  # the 1.14.1+ layout: the Service app
        if not content_filter:
            tree.content_filters()
        return tree

    return build


def mac_mdm_grants_without_tcc_db(base: Path) -> MacTree:
    """Full Disk Access from an MDM profile (macOS 11's Authorization key), and no TCC.db to be read."""
    tree = MacTree(base, version="13.6").healthy()
    tree.remove("Library/Application Support/com.apple.TCC/TCC.db")
    tree.plist("Library/Application Support/com.apple.TCC/MDMOverrides.plist", {
        client: {"kTCCServiceSystemPolicyAllFiles": {"Authorization": "Allow", "IdentifierType": "bundleID"}}
        for client in ("com.cisco.endpoint.svc", "com.cisco.endpoint.svc.securityextension")})
    return tree


def mac_1_14_0_on_catalina_waiting_for_approval(base: Path) -> MacTree:
    """Connector 1.14.0 on macOS 10.15.5 or later uses system extensions (Cisco's advisory 216089)."""
    tree = MacTree(base, version="10.15.7").healthy()
    tree.install_connector(version="1.14.0", build="1.14.0.123")
    tree.global_config("1.14.0.123")
    tree.extensions(extension(SECURITY, state="activated_waiting_for_user", version="1.14.0.123"),
                    extension(NETWORK, version="1.14.0.123"))
    return tree


# shape: (the faults it has, the checks it cannot judge, the plugin's exit code)
SHAPES: dict[str, tuple[Shape, set[str], set[str], int]] = {
    "rocky9-core-ebpf-no-headers": (rocky9_core_without_headers, set(), set(), 0),
    "al2023-core-ebpf-btf-in-boot-config": (al2023_core_btf_in_boot_config, set(), set(), 0),
    "rhel9-ebpf-before-1.25": (rhel9_before_core_with_headers, set(), set(), 0),
    "rhel9-ebpf-before-1.25-no-headers": (rhel9_before_core_without_headers, {"11"}, set(), 2),
    "core-connector-kernel-without-btf-no-headers": (core_connector_on_a_kernel_without_btf, {"11"}, set(), 2),
    "core-connector-btf-not-known-no-headers": (core_connector_btf_not_known, set(), {"11"}, 3),
    # ampcli failing is a WARNING of its own (the plugin's ampcli_failed); no fault is called active.
    "btf-connector-version-not-known-no-headers": (btf_and_no_version_known, set(), {"6", "11", "16", "18"}, 1),
    "rhel-copied-without-sys-selinux-module-missing": (rhel8_copied_without_sys_selinux_module_missing,
                                                       {"19"}, set(), 2),
    "el7-kmod-no-headers": (el7_kmod_without_headers, set(), set(), 0),
    "el7-kmod-failed-no-headers": (el7_kmod_failed_without_headers, {"8", "9", "11"}, set(), 2),
    "el7-kmod-failed-headers-present": (el7_kmod_failed_with_headers, {"8", "9"}, set(), 2),
    "el6-kmod-no-os-release": (el6_kmod_without_headers, set(), set(), 0),
    "macos-10.14-connector-1.24": (mac("10.14.6", content_filter=False), set(), set(), 0),
    "macos-10.15-connector-1.24": (mac("10.15.7", content_filter=False), set(), set(), 0),
    "macos-10.15-connector-1.14.0-waiting-for-approval": (mac_1_14_0_on_catalina_waiting_for_approval, {"1"},
                                                          set(), 2),
    "macos-13-mdm-grants-no-tcc-db": (mac_mdm_grants_without_tcc_db, set(), set(), 0),
    "macos-14-copied-tree": (mac("14.4"), set(), set(), 0),
    "macos-14-without-content-filter": (mac("14.4", content_filter=False), {"12"}, set(), 2),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_fleet_shape_through_both_commands(tmp_path: Path, shape: str) -> None:
    build, faults, unknown_faults, code = SHAPES[shape]
    root = build(tmp_path / "host").root
    done = run("secure-endpoint-exporter", "--path.rootfs", str(root), "--ampcli.run-from-rootfs", "--once")
    assert done.returncode == 0, done.stderr
    found = samples(done.stdout)
    active = {dict(labels)["fault_id"] for (name, labels), v in found.items()
              if name == "secure_endpoint_fault_active" and v == 1}
    assert active == faults
    unknown = sorted(dict(labels)["fault_id"] for (name, labels), v in found.items()
                     if name == "secure_endpoint_fault_state" and dict(labels)["state"] == "unknown" and v == 1)
    assert unknown == sorted(unknown_faults)
    failed = sorted(dict(labels)["collector"] for (name, labels), v in found.items()
                    if name == "secure_endpoint_scrape_collector_success" and v == 0)
    assert failed == ([] if shape != "btf-connector-version-not-known-no-headers" else ["connector_status"])
    plugin = run("check_secure_endpoint", "--path.rootfs", str(root), "--ampcli.run-from-rootfs", "--state-file", "")
    first = plugin.stdout.splitlines()[0]
    assert plugin.returncode == code, plugin.stdout
    if faults:
        assert all(f"(fault {fault_id})" in first.split(" | ")[0] for fault_id in faults), first
    elif unknown_faults:  # not judged is no false alarm: never CRITICAL, never OK
        assert first.startswith(("SECURE ENDPOINT UNKNOWN - ", "SECURE ENDPOINT WARNING - Connector status")), first
    else:
        assert first.startswith("SECURE ENDPOINT OK - no active faults"), first


def test_el6_is_read_from_its_release_file(tmp_path: Path) -> None:
    root = el6_kmod_without_headers(tmp_path / "host").root
    done = run("secure-endpoint-exporter", "--path.rootfs", str(root), "--ampcli.run-from-rootfs",
               "--once", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert '"name": "CentOS"' in done.stdout and '"version": "6.10"' in done.stdout, done.stdout[:2000]


def test_a_copied_mac_says_what_it_did_not_judge(tmp_path: Path) -> None:
    root = mac("14.4")(tmp_path / "mac").root
    done = run("check_secure_endpoint", "--path.rootfs", str(root), "--ampcli.run-from-rootfs",
               "--state-file", "", "-v")
    assert done.returncode == 0, done.stdout
    assert "not judged from a copied tree: only the running Mac can tell (processes)" in done.stdout
