"""Both commands on Mac host trees: each macOS fault alone, and several at once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.commands import run
from tests.hosttree import faults_status
from tests.mactree import NETWORK, SECURITY, SERVICE, MacTree, extension
from tests.test_exporter_once import samples

CROWD = [("com.a", "A", True, 1), ("com.b", "B", True, 1), ("com.c", "C", True, 1), ("com.d", "D", True, 1)]


def reported(fault_id: int) -> Callable[[MacTree], None]:
    return lambda t: t.ampcli(faults_status((fault_id, "Major", f"Fault {fault_id} from ampcli"), mode="Normal"))


SETUPS: dict[str, Callable[[MacTree], None]] = {
    "1": lambda t: t.extensions(extension(SECURITY, state="activated_waiting_for_user"), extension(NETWORK)),
    "2": lambda t: t.extensions(extension(SECURITY, version="1.20.0.1"), extension(NETWORK)),
    "3": lambda t: t.tcc({SECURITY: True}),
    "4": reported(4),  # the kext can only be seen on a live Mac; the connector's word still counts
    "5": lambda t: t.scan_account(user=True, group=False),
    "6": reported(6),
    "7": reported(7),
    "10": lambda t: t.extensions(extension(SECURITY, state="activated_waiting_for_reboot"), extension(NETWORK)),
    "12": lambda t: t.content_filters((SERVICE, "Cisco", False, 1)),
    "13": lambda t: t.content_filters((SERVICE, "Cisco", False, 1), *CROWD),
    "14": reported(14),
    "15": lambda t: t.tcc({SERVICE: True}),
    "17": lambda t: t.orbital(),
    "18": reported(18),
}


# The plugin's exit code: reported Major is WARNING whatever the catalogue says, else the catalogue's.
CODES = {"1": 2, "2": 2, "3": 2, "4": 1, "5": 1, "6": 1, "7": 1, "10": 2, "12": 2, "13": 2, "14": 1, "15": 2,
         "17": 1, "18": 1}


def active_faults(root: Path) -> set[str]:
    done = run("secure-endpoint-exporter", "--path.rootfs", str(root), "--ampcli.run-from-rootfs", "--once")
    assert done.returncode == 0, done.stderr
    return {dict(labels)["fault_id"] for (name, labels), v in samples(done.stdout).items()
            if name == "secure_endpoint_fault_active" and v == 1}


@pytest.mark.parametrize("fault_id", list(SETUPS))
def test_each_fault_alone(tmp_path: Path, fault_id: str) -> None:
    tree = MacTree(tmp_path / "mac", version="13.6").healthy()
    SETUPS[fault_id](tree)
    assert active_faults(tree.root) == {fault_id}
    done = run("check_secure_endpoint", "--path.rootfs", str(tree.root), "--ampcli.run-from-rootfs", "--state-file", "")
    first = done.stdout.splitlines()[0]
    assert f"(fault {fault_id})" in first.split(" | ")[0], first
    assert done.returncode == CODES[fault_id]


def test_several_at_once_and_the_healthy_mac(tmp_path: Path) -> None:
    tree = MacTree(tmp_path / "mac").healthy()
    healthy = run("check_secure_endpoint", "--path.rootfs", str(tree.root), "--ampcli.run-from-rootfs",
                  "--state-file", "")
    assert healthy.returncode == 0, healthy.stdout  # what only the live Mac can tell is not judged, not unknown
    assert healthy.stdout.startswith("SECURE ENDPOINT OK - no active faults (10 checked), connector connected")
    for fault_id in ("1", "3", "5", "17"):
        SETUPS[fault_id](tree)
    assert active_faults(tree.root) == {"1", "3", "5", "17"}
    done = run("check_secure_endpoint", "--path.rootfs", str(tree.root), "--ampcli.run-from-rootfs",
               "--state-file", "", "--lang", "nl")
    assert done.returncode == 2
    assert done.stdout.startswith("SECURE ENDPOINT CRITICAL - Systeemextensie niet goedgekeurd (fout 1), "
                                  "Geen volledige schijftoegang (fout 3), ")
