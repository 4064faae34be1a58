"""Strings the host controls cannot forge an output: no raw control, format or separator character reaches
a plugin line, a metric label or the JSON, and a line separator inside a value splits nothing."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from secure_endpoint_monitoring.checks.messages import printable
from tests.commands import run
from tests.daemons import exporter
from tests.hosttree import HEALTHY_STATUS, LinuxTree, faults_status
from tests.mactree import MacTree

# ESC, BEL, CR, DEL, C1 (NEL, CSI), line and paragraph separators, bidi override and isolate, zero width,
# a byte order mark, a no-break space and a tag character beyond the BMP.
HOSTILE = ["\x1b[31m", "\x07", "\r", "\x7f", "\x85", "\x9b", "\u2028", "\u2029", "\u202e", "\u2066", "\u200b",
           "\ufeff", "\xa0", "\U000e0041"]
MIXED = "Evil" + "".join(HOSTILE) + "End"


def _raw_in(text: str) -> list[str]:
    """The hostile characters found raw in an output ("\\r" and "\\n" only as a line's own end)."""
    return [repr(ch) for ch in HOSTILE if ch != "\r" and ch in text] + (["'\\r'"] if "\r" in text else [])


def _outputs(tree: LinuxTree | MacTree, tmp_path: Path) -> dict[str, str]:
    args = ["--path.rootfs", str(tree.root), "--ampcli.run-from-rootfs"]
    found = {
        "plugin": run("check_secure_endpoint", *args, "--state-file", "", "-vv").stdout,
        "prometheus": run("secure-endpoint-exporter", *args, "--once").stdout,
        "json": run("secure-endpoint-exporter", *args, "--once", "--format", "json").stdout,
    }
    with exporter(tree.root, log=tmp_path / "log") as server, \
            urllib.request.urlopen(f"http://{server.address}/metrics", timeout=30) as answer:
        found["http"] = answer.read().decode()
    return found


def _linux(tree: LinuxTree) -> None:
    tree.write("etc/os-release", f'NAME="{MIXED}"\nID=rhel\nVERSION_ID="9{HOSTILE[0]}\u2028ID=ubuntu"\n')
    policy_line = f"Policy: {MIXED}\u2028ID 18 - Critical: forged\u2029Status: Disconnected"
    tree.ampcli(faults_status((7, "Major", f"scan {MIXED}")).replace("Policy: Audit Policy for FireAMP Linux (#1)",
                                                                     policy_line))
    folder = tree.root / f"opt/cisco/amp/x{MIXED}"
    folder.mkdir()
    folder.chmod(0o777)  # fault 5 names it


@pytest.mark.system  # promtool
def test_linux_host_strings_are_escaped_in_every_output(healthy: LinuxTree, tmp_path: Path) -> None:
    _linux(healthy)
    outputs = _outputs(healthy, tmp_path)
    for name, text in outputs.items():
        assert _raw_in(text) == [], name
    report = json.loads(outputs["json"])
    assert report["os"]["name"] == printable(MIXED) and "\\u2028" in report["os"]["name"]
    assert report["os"]["version"] == printable(f"9{HOSTILE[0]}\u2028ID=ubuntu")
    status = report["connector"]["status"]
    assert status["policy"].startswith("Evil\\x1b[31m") and status["status"] == "Connected"  # nothing split off
    states = {f["id"]: f["state"] for f in report["faults"]}
    assert states["18"] == "active"  # from Mode: Degraded, not from the text posing as a fault line
    assert not any(f.get("connector_severity") == "critical" or "forged" in json.dumps(f) for f in report["faults"])
    assert states["5"] == "active" and printable(MIXED) in " ".join(
        next(f for f in report["faults"] if f["id"] == "5")["evidence"])
    plugin = outputs["plugin"].splitlines()
    assert plugin[0].startswith("SECURE ENDPOINT WARNING - Scan service user unavailable (fault 5)")
    assert all(line.isprintable() for line in plugin)
    info = next(line for line in outputs["prometheus"].splitlines()
                if line.startswith("secure_endpoint_connector_info{"))
    assert 'os="Evil\\\\x1b[31m' in info and "\\\\u2028" in info and info.isprintable()
    done = run("secure-endpoint-exporter", "--path.rootfs", str(healthy.root), "--ampcli.run-from-rootfs", "--once")
    promtool = run_promtool(done.stdout)
    assert promtool == "", promtool


def run_promtool(text: str) -> str:
    binary = shutil.which("promtool")
    if binary is None:
        raise AssertionError("promtool is missing: install Debian's prometheus package (.ci/test does)")
    done = subprocess.run([binary, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30,
                          check=False)
    return done.stdout + done.stderr


def test_mac_version_strings_are_escaped(tmp_path: Path) -> None:
    mac = MacTree(tmp_path / "mac").healthy()
    mac.plist("System/Library/CoreServices/SystemVersion.plist",  # binary: XML cannot hold these characters
              {"ProductName": "macOS", "ProductVersion": f"14.4{MIXED}", "ProductBuildVersion": "23E214"})
    mac.install_connector(version=f"1.24{MIXED}", build=f"1.24.1{HOSTILE[6]}")
    mac.remove(mac.GLOBAL)  # the version then comes from the app's Info.plist
    mac.ampcli(HEALTHY_STATUS, about="")  # nor from ampcli about
    outputs = {"json": run("secure-endpoint-exporter", "--path.rootfs", str(mac.root), "--ampcli.run-from-rootfs",
                           "--once", "--format", "json").stdout,
               "prometheus": run("secure-endpoint-exporter", "--path.rootfs", str(mac.root),
                                 "--ampcli.run-from-rootfs", "--once").stdout}
    for name, text in outputs.items():
        assert _raw_in(text) == [], name
    report = json.loads(outputs["json"])
    assert report["os"]["version"] == printable(f"14.4{MIXED}")
    assert report["connector"]["version"] == printable(f"1.24{MIXED}")


@pytest.mark.parametrize("character", HOSTILE)
def test_one_character_at_a_time(healthy: LinuxTree, character: str) -> None:
    healthy.ampcli(HEALTHY_STATUS.replace("Policy: ", f"Policy: a{character}b "))
    done = run("secure-endpoint-exporter", "--path.rootfs", str(healthy.root), "--ampcli.run-from-rootfs",
               "--once", "--format", "json")
    assert _raw_in(done.stdout) == []
    policy = json.loads(done.stdout)["connector"]["status"]["policy"]
    assert policy.startswith("a\\") and policy.isprintable()
