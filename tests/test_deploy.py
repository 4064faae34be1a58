"""The shipped deployment files: every flag they pass exists, and textfile mode works with node_exporter."""

from __future__ import annotations

import configparser
import plistlib
import shlex
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from exporter.main import build_parser
from exporter.server import FD_RESERVE
from tests.commands import run, script
from tests.daemons import free_port, stop
from tests.hosttree import LinuxTree

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
UNITS = ["secure-endpoint-exporter.service", "secure-endpoint-exporter-textfile.service"]
DROP_IN = "secure-endpoint-exporter.service.d/socket-activation.conf"
INSTALLED = "/opt/secure-endpoint-monitoring/bin/secure-endpoint-exporter"


def unit(name: str) -> configparser.RawConfigParser:
    """A unit file read as systemd does where it matters here: a repeated key's last value wins."""
    parser = configparser.RawConfigParser(strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((DEPLOY / "systemd" / name).read_text().replace("\\\n", " "))
    return parser


@pytest.mark.parametrize("name", [*UNITS, DROP_IN])
def test_unit_flags_parse(name: str) -> None:
    command = shlex.split(unit(name)["Service"]["ExecStart"])
    assert command[0].endswith("/bin/secure-endpoint-exporter")
    build_parser().parse_args(command[1:])  # exits 2 on an unknown flag


@pytest.mark.parametrize("name", UNITS)
def test_unit_hardening(name: str) -> None:
    service = unit(name)["Service"]
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["DynamicUser"] == "yes"
    assert set(service["CapabilityBoundingSet"].split()) == {"CAP_DAC_READ_SEARCH", "CAP_SYS_PTRACE"}
    assert service["AmbientCapabilities"] == service["CapabilityBoundingSet"]


@pytest.mark.parametrize("name", UNITS)
def test_unit_open_file_limit(name: str) -> None:
    """Room for every connection the exporter may hold, beside the descriptors the evaluation needs."""
    limit = unit(name)["Service"]["LimitNOFILE"]
    assert limit.isdigit(), limit
    assert int(limit) >= build_parser().parse_args([]).max_connections + FD_RESERVE


def test_the_socket_unit_and_its_drop_in() -> None:
    """The socket hands its listening socket to the service (Accept=no); the drop-in makes the service take it."""
    sock = unit("secure-endpoint-exporter.socket")
    assert sock["Socket"]["ListenStream"] == "9982"
    assert sock["Socket"]["Accept"] == "no"
    assert int(sock["Socket"]["Backlog"]) >= 128
    assert sock["Install"]["WantedBy"] == "sockets.target"
    drop_in = unit(DROP_IN)
    assert drop_in["Unit"]["Requires"] == drop_in["Unit"]["After"] == "secure-endpoint-exporter.socket"
    args = build_parser().parse_args(shlex.split(drop_in["Service"]["ExecStart"])[1:])
    assert args.systemd_socket and not args.listen
    assert drop_in["Service"]["PrivateNetwork"] == "yes"
    text = (DEPLOY / "systemd" / DROP_IN).read_text()
    assert "\nExecStart=\nExecStart=" in text  # cleared first, or systemd refuses a second ExecStart


def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    """systemd-analyze verify reads the units as systemd would, drop-in included (with the installed path
    pointed at this checkout's command, which it checks is executable)."""
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "systemd-analyze (Debian's systemd package) is missing"
    source = DEPLOY / "systemd"
    for path in source.rglob("*"):
        if path.is_file():
            target = tmp_path / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(path.read_text().replace(INSTALLED, script("secure-endpoint-exporter")))
    names = sorted(p.name for p in tmp_path.iterdir() if p.is_file())
    assert names == ["secure-endpoint-exporter-textfile.service", "secure-endpoint-exporter-textfile.timer",
                     "secure-endpoint-exporter.service", "secure-endpoint-exporter.socket"]
    done = subprocess.run([analyze, "verify", *names], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          check=False)
    ours = [line for line in (done.stdout + done.stderr).splitlines() if "secure-endpoint-exporter" in line]
    assert done.returncode == 0 and not ours, done.stdout + done.stderr
    # The check sees the drop-in: a drop-in naming a missing program fails it.
    broken = tmp_path / DROP_IN
    broken.write_text(broken.read_text().replace(script("secure-endpoint-exporter"), "/nonexistent/exporter"))
    done = subprocess.run([analyze, "verify", "secure-endpoint-exporter.service"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode != 0 and "/nonexistent/exporter" in done.stderr


def test_timer_runs_the_textfile_service() -> None:
    timer = unit("secure-endpoint-exporter-textfile.timer")
    assert timer["Timer"]["OnUnitActiveSec"] == "1min"
    assert timer["Install"]["WantedBy"] == "timers.target"


def test_launchd_plist() -> None:
    path = next((DEPLOY / "launchd").glob("*.plist"))
    plist = plistlib.loads(path.read_bytes())
    assert plist["Label"] == path.stem
    assert plist["ProgramArguments"][0].endswith("/bin/secure-endpoint-exporter")
    build_parser().parse_args(plist["ProgramArguments"][1:])
    assert plist["KeepAlive"] is True
    files = build_parser().parse_args([]).max_connections + FD_RESERVE
    assert plist["SoftResourceLimits"]["NumberOfFiles"] >= files
    assert plist["HardResourceLimits"]["NumberOfFiles"] >= plist["SoftResourceLimits"]["NumberOfFiles"]


def test_textfile_through_a_real_node_exporter(healthy: LinuxTree, tmp_path: Path) -> None:
    binary = shutil.which("prometheus-node-exporter")
    if binary is None:
        raise AssertionError("prometheus-node-exporter is missing: .ci/run installs Debian's package")
    textfiles = tmp_path / "textfile"
    textfiles.mkdir()
    done = run("secure-endpoint-exporter", "--path.rootfs", str(healthy.root), "--once", "--output",
               str(textfiles / "secure_endpoint.prom"))
    assert done.returncode == 0, done.stderr
    port = free_port()
    process = subprocess.Popen(
        [binary, f"--web.listen-address=127.0.0.1:{port}", "--collector.disable-defaults", "--collector.textfile",
         f"--collector.textfile.directory={textfiles}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        body = ""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
                    body = response.read().decode()
                break
            except OSError:
                time.sleep(0.05)
        assert "node_textfile_scrape_error 0" in body
        assert 'secure_endpoint_fault_active{fault="selinux_policy_missing",fault_id="19",platform="linux"} 0' in body
        assert "secure_endpoint_connector_installed 1" in body
    finally:
        stop(process)
