"""Writes example host trees that show the checks at work on a machine without the connector.

    .venv/bin/python examples/build_hosts.py demo-hosts
    .venv/bin/check_secure_endpoint --path.rootfs demo-hosts/kernel-monitoring --ampcli.run-from-rootfs --state-file ''

Each tree is a small copy of a Linux host's files (os-release, proc, policy,
definitions, an ampcli script) built by the same helper the tests use.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.hosttree import LinuxTree, faults_status


def healthy(tree: LinuxTree) -> None:
    tree.healthy()


def kernel_monitoring(tree: LinuxTree) -> None:
    """Faults 8, 9 and 11: no modules, no eBPF, Secure Boot on, headers missing."""
    tree.healthy()
    tree.modules()
    tree.secure_boot(True)
    shutil.rmtree(tree.root / "usr/src/kernels")
    for entry in list((tree.root / "proc").iterdir()):
        if (entry / "comm").exists() and (entry / "comm").read_text().strip() == "ampdaemon":
            tree.kill(int(entry.name))
    tree.process("ampdaemon")


def scan_service(tree: LinuxTree) -> None:
    """Faults 5 and 7: the scan user is gone, a directory is world-writable, main.cvd is corrupt."""
    tree.healthy()
    tree.write("etc/passwd", "root:x:0:0:root:/root:/bin/bash\n")
    tree.write("etc/login.defs", "USERGROUPS_ENAB no\n")
    tree.chmod("opt/cisco/amp/etc", 0o777)
    tree.definitions("main.cvd", corrupt=True)
    for entry in list((tree.root / "proc").iterdir()):
        if (entry / "comm").exists() and (entry / "comm").read_text().strip() == "ampscansvc":
            tree.kill(int(entry.name))


def connector_reported(tree: LinuxTree) -> None:
    """Faults 16 and 18 as ampcli reports them, plus an id this project does not know."""
    tree.healthy()
    tree.ampcli(faults_status((16, "Critical", "Incompatible kernel."),
                              (18, "Major", "Connector event monitoring is overloaded."),
                              (42, "Minor", "A fault from a newer connector.")))


def selinux(tree: LinuxTree) -> None:
    """Fault 19: SELinux enforcing with cisco-secure-bpf disabled."""
    tree.healthy()
    tree.selinux(enforcing=True, module="disabled")


def ampcli_hung(tree: LinuxTree) -> None:
    """ampcli never answers: the connector's status is unavailable, the host checks go on."""
    tree.healthy()
    tree.ampcli(hang=60)


def not_installed(tree: LinuxTree) -> None:
    """A plain Debian host without the connector."""


HOSTS: dict[str, tuple[str, Callable[[LinuxTree], None]]] = {
    "healthy": ("rhel", healthy),
    "kernel-monitoring": ("ubuntu", kernel_monitoring),
    "scan-service": ("rhel", scan_service),
    "connector-reported": ("rhel", connector_reported),
    "selinux": ("ol", selinux),
    "ampcli-hung": ("rhel", ampcli_hung),
    "not-installed": ("debian", not_installed),
}


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: build_hosts.py DIR")
    target = Path(sys.argv[1])
    for name, (distro, build) in HOSTS.items():
        root = target / name
        if root.exists():
            shutil.rmtree(root)
        release = "5.15.0-91-generic" if distro == "ubuntu" else "5.14.0-362.8.1.el9_3.x86_64"
        build(LinuxTree(root, distro=distro, release=release))
        print(root)


if __name__ == "__main__":
    main()
