"""The kernel the next boot runs: fault 11 seen before the reboot, judged as fault 11 judges the running kernel.

The newest installed kernel of the running one's kind (a folder in lib/modules with its vmlinuz there or in
boot, ordered as rpm orders versions) counts when it is newer than the running one.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from secure_endpoint_monitoring.checks.evaluate import State
from secure_endpoint_monitoring.checks.evidence.kernel import MAX_KERNELS, compare_releases, release_order
from tests.commands import run, unavailable
from tests.conftest import Evaluate, result
from tests.hosttree import RELEASE, LinuxTree
from tests.test_exporter_once import samples, value

CHECK = "next_kernel_headers_missing"
NEWER = "5.14.0-427.13.1.el9_4.x86_64"


def _install(tree: LinuxTree, release: str, headers: bool = False, btf: bool | None = None,
             image: str = "boot") -> None:
    """An installed kernel: its modules folder, its image (``boot/vmlinuz-<r>`` or the RHEL family's
    ``lib/modules/<r>/vmlinuz``), optionally its headers and a boot config that says whether it has BTF."""
    tree.write(f"lib/modules/{release}/modules.dep", "")
    tree.write(f"boot/vmlinuz-{release}" if image == "boot" else f"lib/modules/{release}/vmlinuz", b"MZ")
    if headers:
        (tree.root / f"usr/src/kernels/{release}").mkdir(parents=True)
        tree.symlink(f"lib/modules/{release}/build", f"/usr/src/kernels/{release}")
    if btf is not None:
        tree.write(f"boot/config-{release}", f"CONFIG_BPF=y\nCONFIG_DEBUG_INFO_BTF={'y' if btf else 'n'}\n")


@pytest.fixture
def ebpf(healthy: LinuxTree) -> LinuxTree:
    """The healthy host with a connector that monitors through eBPF: none of its kernel modules loaded."""
    healthy.write("proc/modules", "xfs 2000000 2 - Live 0x0000000000000000\n")
    return healthy


def _plugin(tree: LinuxTree) -> tuple[int, list[str]]:
    done = run("check_secure_endpoint", "--path.rootfs", str(tree.root), "--ampcli.run-from-rootfs", "--state-file", "")
    return done.returncode, done.stdout.splitlines()


@pytest.mark.parametrize("image", ["boot", "lib/modules"])
def test_a_newer_kernel_without_headers_warns_before_the_reboot(ebpf: LinuxTree, run: Evaluate,
                                                                image: str) -> None:
    healthy = ebpf
    _install(healthy, RELEASE)  # the running kernel's own image
    _install(healthy, NEWER, image=image)
    found = result(run(healthy), CHECK)
    assert found.state is State.ACTIVE
    assert [str(m) for m in found.evidence] == [
        f"newest installed kernel {NEWER}, which the next boot runs",
        f"/lib/modules/{NEWER}/build does not lead to a directory"]
    assert str(found.remedy) == f"install the package kernel-devel-{NEWER} before the next reboot"
    code, lines = _plugin(healthy)
    assert code == 1
    assert lines[0].startswith("SECURE ENDPOINT WARNING - Next boot's kernel lacks headers | ")
    assert lines[1] == (f"WARNING: Next boot's kernel lacks headers. Seen: newest installed kernel {NEWER}, which "
                        f"the next boot runs; /lib/modules/{NEWER}/build does not lead to a directory. Fix: install "
                        f"the package kernel-devel-{NEWER} before the next reboot.")
    metrics = samples(run_exporter(healthy))
    assert value(metrics, "secure_endpoint_fault_active", fault=CHECK, fault_id=CHECK, platform="linux") == 1.0


def run_exporter(tree: LinuxTree) -> str:
    done = run("secure-endpoint-exporter", "--path.rootfs", str(tree.root), "--ampcli.run-from-rootfs", "--once")
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize(("version", "btf", "state"), [
    ("1.24.1.1234", None, State.ACTIVE),  # BCC programs: the headers decide
    ("1.24.1.1234", True, State.ACTIVE),
    ("1.25.0.100", True, State.CLEAR),  # CO-RE on a kernel with BTF: no headers needed
    ("1.25.0.100", False, State.ACTIVE),
    ("1.25.0.100", None, State.UNKNOWN),  # no config of the new kernel: whether it has BTF cannot be told
])
def test_the_next_kernel_needs_headers_as_fault_11_would(ebpf: LinuxTree, run: Evaluate, version: str,
                                                         btf: bool | None, state: State) -> None:
    healthy = ebpf
    healthy.global_config(version)
    _install(healthy, NEWER, btf=btf)
    found = result(run(healthy), CHECK)
    assert found.state is state, found


@pytest.mark.parametrize("case", ["headers", "older only", "leftover folder", "none at all", "modules loaded"])
def test_nothing_to_fear_from_the_next_boot(ebpf: LinuxTree, run: Evaluate, case: str) -> None:
    healthy = ebpf
    if case == "headers":
        _install(healthy, NEWER, headers=True)
    elif case == "older only":
        _install(healthy, "5.14.0-70.13.1.el9_0.x86_64")
    elif case == "leftover folder":  # a removed kernel leaves extra modules, not its image
        healthy.write(f"lib/modules/{NEWER}/extra/vendor.ko", b"")
    elif case == "modules loaded":  # the connector's own kernel modules need no headers
        _install(healthy, NEWER)
        healthy.write("proc/modules", "ampfsm 20000 0 - Live 0x0\nampnetworkflow 20000 0 - Live 0x0\n")
    found = result(run(healthy), CHECK)
    assert found.state is State.CLEAR, found
    if case in ("older only", "leftover folder", "none at all"):
        assert [str(m) for m in found.evidence] == [f"no kernel newer than the running {RELEASE} is installed"]


def test_without_kernel_monitoring_in_the_policy_it_does_not_apply(healthy: LinuxTree, run: Evaluate) -> None:
    healthy.policy(file_monitoring=False, device_flow=False)
    _install(healthy, NEWER)
    assert result(run(healthy), CHECK).state is State.NOT_APPLICABLE


def test_kernels_that_cannot_be_listed_are_unknown_not_clear(ebpf: LinuxTree, run: Evaluate) -> None:
    healthy = ebpf
    _install(healthy, NEWER)
    for number in range(MAX_KERNELS + 1):
        (healthy.root / f"lib/modules/x{number}").mkdir()
    found = result(run(healthy), CHECK)
    assert found.state is State.UNKNOWN
    assert "lib/modules" in str(found.reason) and f"more than {MAX_KERNELS} entries" in str(found.reason)
    assert result(run(healthy), "11").state is State.CLEAR  # the running kernel's verdict stands


RELEASES = [RELEASE, NEWER, "5.14.0-70.13.1.el9_0.x86_64", "5.14.0-362.24.1.el9_3.x86_64", "5.14.0-362.el9.x86_64",
            "4.18.0-553.el8_10.x86_64", "4.18.0-553.5.1.el8_10.x86_64", "4.18.0-513.5.1.el8_9.x86_64",
            "6.1.0-18-amd64", "6.1.0-9-amd64", "5.15.0-91-generic", "5.15.0-101-generic", "6.10.0", "6.9.12",
            "5.4.17-2136.330.7.1.el8uek.x86_64", "5.15.0-200.131.27.el9uek.x86_64", "5.14.0-427.13.1.el9_4.aarch64",
            "5.14.0-427.el9.aarch64", "6.1.0-0" + "0" * 5000 + "1-amd64", "5.15²"]


def test_a_rhel_update_is_newer_than_its_ga_kernel() -> None:
    assert compare_releases("4.18.0-553.5.1.el8_10.x86_64", "4.18.0-553.el8_10.x86_64") == 1
    assert compare_releases("5.14.0-362.el9.x86_64", "5.14.0-362.8.1.el9_3.x86_64") == -1
    assert compare_releases("6.1.0-21-amd64", "6.1.0-18-amd64") == 1
    assert compare_releases(RELEASE, RELEASE) == 0
    assert sorted(RELEASES, key=release_order)  # thousands of digits and non-ASCII digits sort without error


@pytest.mark.system  # drives Debian's rpm
def test_releases_order_as_rpm_orders_them() -> None:
    rpm = shutil.which("rpm")
    if rpm is None:
        unavailable("no rpm (Debian's rpm package)")
    # rpm.vercmp splits version and release at the last "-", as the RHEL family's "uname -r" holds them
    # (version-release.arch); Debian's and Ubuntu's releases carry more dashes and are not rpm's to order.
    rhel = [release for release in RELEASES if ".el" in release]
    pairs = [(a, b) for a in rhel for b in rhel]
    script = "".join(f"print(rpm.vercmp('{a}', '{b}') .. ' ') " for a, b in pairs)
    done = subprocess.run([rpm, "--eval", f"%{{lua: {script}}}"], capture_output=True, text=True, check=True)
    assert [compare_releases(a, b) for a, b in pairs] == [int(line) for line in done.stdout.split()]


@pytest.mark.parametrize(("running", "installed"), [
    ("5.14.0-362.8.1.el9_3.x86_64", "5.14.0-427.13.1.el9_4.x86_64+debug"),
    ("5.14.0-362.8.1.el9_3.x86_64", "5.14.0-427.13.1.rt14.343.el9_4.x86_64"),
    ("6.5.0-14-generic", "6.5.0-17-lowlatency"),
    ("5.14.0-362.8.1.el9_3.x86_64", "5.15.0-200.131.27.el9uek.x86_64"),
])
def test_a_kernel_of_another_kind_is_not_the_next_boot_s(tmp_path: Path, run: Evaluate, running: str,
                                                        installed: str) -> None:
    tree = LinuxTree(tmp_path / "host", release=running).healthy()
    tree.write("proc/modules", "xfs 2000000 2 - Live 0x0000000000000000\n")
    _install(tree, installed)
    found = result(run(tree), CHECK)
    assert found.state is State.CLEAR, found
    _install(tree, running.replace("362.8.1", "500.1.1").replace("-14-", "-20-"))  # the same kind, newer
    assert result(run(tree), CHECK).state is State.ACTIVE


@pytest.mark.parametrize(("running", "newer"), [
    ("4.18.0-425.3.1.el8.x86_64", "4.18.0-425.19.2.el8_7.x86_64"),  # a RHEL minor's updates end in el8_N
    ("6.1.0-18-amd64", "6.6.13+bpo-amd64"),  # Debian's backports
])
def test_an_update_of_the_same_kind_counts(tmp_path: Path, run: Evaluate, running: str, newer: str) -> None:
    tree = LinuxTree(tmp_path / "host", release=running).healthy()
    tree.write("proc/modules", "xfs 2000000 2 - Live 0x0000000000000000\n")
    _install(tree, newer)
    assert result(run(tree), CHECK).state is State.ACTIVE


def test_no_lib_modules_is_unknown(ebpf: LinuxTree, run: Evaluate) -> None:
    shutil.rmtree(ebpf.root / "lib/modules")
    found = result(run(ebpf), CHECK)
    assert found.state is State.UNKNOWN and "/lib/modules" in str(found.reason)
