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
from tests.mactree import MacTree
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
    tree.global_config(CORE_VERSION)
    return _no_headers(tree)


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


# shape: (the faults it has, the plugin's exit code)
SHAPES: dict[str, tuple[Shape, set[str], int]] = {
    "rocky9-core-ebpf-no-headers": (rocky9_core_without_headers, set(), 0),
    "al2023-core-ebpf-btf-in-boot-config": (al2023_core_btf_in_boot_config, set(), 0),
    "rhel9-ebpf-before-1.25": (rhel9_before_core_with_headers, set(), 0),
    "rhel9-ebpf-before-1.25-no-headers": (rhel9_before_core_without_headers, {"11"}, 2),
    "core-connector-kernel-without-btf-no-headers": (core_connector_on_a_kernel_without_btf, {"11"}, 2),
    "el7-kmod-no-headers": (el7_kmod_without_headers, set(), 0),
    "el7-kmod-failed-no-headers": (el7_kmod_failed_without_headers, {"8", "9", "11"}, 2),
    "el7-kmod-failed-headers-present": (el7_kmod_failed_with_headers, {"8", "9"}, 2),
    "el6-kmod-no-os-release": (el6_kmod_without_headers, set(), 0),
    "macos-10.14-connector-1.24": (mac("10.14.6", content_filter=False), set(), 0),
    "macos-10.15-connector-1.24": (mac("10.15.7", content_filter=False), set(), 0),
    "macos-14-copied-tree": (mac("14.4"), set(), 0),
    "macos-14-without-content-filter": (mac("14.4", content_filter=False), {"12"}, 2),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_fleet_shape_through_both_commands(tmp_path: Path, shape: str) -> None:
    build, faults, code = SHAPES[shape]
    root = build(tmp_path / "host").root
    done = run("secure-endpoint-exporter", "--path.rootfs", str(root), "--once")
    assert done.returncode == 0, done.stderr
    found = samples(done.stdout)
    active = {dict(labels)["fault_id"] for (name, labels), v in found.items()
              if name == "secure_endpoint_fault_active" and v == 1}
    assert active == faults
    unknown = sorted(dict(labels)["fault_id"] for (name, labels), v in found.items()
                     if name == "secure_endpoint_fault_state" and dict(labels)["state"] == "unknown" and v == 1)
    assert unknown == []
    failed = sorted(dict(labels)["collector"] for (name, labels), v in found.items()
                    if name == "secure_endpoint_scrape_collector_success" and v == 0)
    assert failed == []
    plugin = run("check_secure_endpoint", "--path.rootfs", str(root), "--state-file", "")
    first = plugin.stdout.splitlines()[0]
    assert plugin.returncode == code, plugin.stdout
    if faults:
        assert all(f"(fault {fault_id})" in first.split(" | ")[0] for fault_id in faults), first
    else:
        assert first.startswith("SECURE ENDPOINT OK - no active faults"), first


def test_el6_is_read_from_its_release_file(tmp_path: Path) -> None:
    root = el6_kmod_without_headers(tmp_path / "host").root
    done = run("secure-endpoint-exporter", "--path.rootfs", str(root), "--once", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert '"name": "CentOS"' in done.stdout and '"version": "6.10"' in done.stdout, done.stdout[:2000]


def test_a_copied_mac_says_what_it_did_not_judge(tmp_path: Path) -> None:
    root = mac("14.4")(tmp_path / "mac").root
    done = run("check_secure_endpoint", "--path.rootfs", str(root), "--state-file", "", "-v")
    assert done.returncode == 0, done.stdout
    assert "not judged from a copied tree: only the running Mac can tell (processes)" in done.stdout
