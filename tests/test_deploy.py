"""The shipped deployment files: every flag they pass exists, and textfile mode works with node_exporter."""

from __future__ import annotations

import configparser
import os
import plistlib
import re
import shlex
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from secure_endpoint_monitoring.exporter.connections import FD_RESERVE
from secure_endpoint_monitoring.exporter.main import build_parser
from tests.commands import run, script
from tests.daemons import free_port, stop
from tests.hosttree import LinuxTree

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
UNITS = ["secure-endpoint-exporter.service", "secure-endpoint-exporter-textfile.service"]
DROP_IN = "secure-endpoint-exporter.service.d/socket-activation.conf"
INSTALLED = "/usr/bin/secure-endpoint-exporter"
CLOUD_INSTALLED = "/usr/bin/secure-endpoint-cloud-exporter"
CONFIG = Path(__file__).resolve().parents[1] / "pkg" / "linux" / "secure-endpoint-exporter.conf"


def config() -> dict[str, str]:
    """The packaged config file's settings, as systemd's EnvironmentFile= reads them."""
    found: dict[str, str] = {}
    for line in CONFIG.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            found[name] = shlex.split(value)[0] if value else ""
    return found


def expand(command: str, values: dict[str, str]) -> list[str]:
    """ExecStart split as systemd splits it: an unbraced $VAR becomes its value's words (none when unset)."""
    words: list[str] = []
    for word in shlex.split(command):
        words += values.get(word[1:], "").split() if word.startswith("$") else [word]
    return words


def unit(name: str) -> configparser.RawConfigParser:
    """A unit file read as systemd does where it matters here: a repeated key's last value wins."""
    parser = configparser.RawConfigParser(strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((DEPLOY / "systemd" / name).read_text().replace("\\\n", " "))
    return parser


@pytest.mark.parametrize("name", [*UNITS, DROP_IN])
@pytest.mark.parametrize("settings", ["packaged", "no config file"])
def test_unit_flags_parse(name: str, settings: str) -> None:
    values = config() if settings == "packaged" else {}
    command = expand(unit(name)["Service"]["ExecStart"], values)
    assert command[0] == INSTALLED
    build_parser().parse_args(command[1:])  # exits 2 on an unknown flag


def test_units_read_the_packaged_config_file() -> None:
    """Both distributions' config paths, optional (a pip install has neither), and every variable the units
    use is one the packaged file sets."""
    values = config()
    assert set(values) == {"ARGS", "WEB_ARGS", "LISTEN_ARGS", "TEXTFILE_DIRECTORY"}
    for name in [*UNITS, DROP_IN]:
        text = (DEPLOY / "systemd" / name).read_text()
        used = set(re.findall(r"\$([A-Z_]+)", text))
        assert used and used <= set(values), (name, used)
    for name in UNITS:
        files = [line.split("=", 1)[1] for line in (DEPLOY / "systemd" / name).read_text().splitlines()
                 if line.startswith("EnvironmentFile=")]
        assert files == ["-/etc/default/secure-endpoint-exporter", "-/etc/sysconfig/secure-endpoint-exporter"]
    assert expand(unit(UNITS[0])["Service"]["ExecStart"], values)[1:] == ["--web.listen-address=:9982"]


def test_textfile_unit_writes_only_its_own_folder() -> None:
    """The textfile service writes under its two state directories (textfile/ 0755, so node_exporter may read
    it) and needs no write access to node_exporter's directory: the packages link the file there instead.
    systemd gives only the listed, innermost folders to the user: the state root itself must not be listed,
    or systemd would chown it back to the user, who could then swap textfile/ for a link."""
    service = unit("secure-endpoint-exporter-textfile.service")["Service"]
    args = build_parser().parse_args(expand(service["ExecStart"], config())[1:])
    assert args.output == "/var/lib/secure-endpoint-exporter/textfile/secure_endpoint.prom"
    assert args.state_file == "/var/lib/secure-endpoint-exporter/state/state.json"
    folders = service["StateDirectory"].split()
    assert folders == ["secure-endpoint-exporter/textfile", "secure-endpoint-exporter/state"]
    assert "secure-endpoint-exporter" not in folders
    assert {str(Path(args.output).parent), str(Path(args.state_file).parent)} == {f"/var/lib/{f}" for f in folders}
    assert service["StateDirectoryMode"] == "0755" and service["UMask"] == "0022"
    assert "ReadWritePaths" not in service  # ProtectSystem=strict: the StateDirectory= folders are writable


@pytest.mark.parametrize("name", UNITS)
def test_unit_hardening(name: str) -> None:
    service = unit(name)["Service"]
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert "DynamicUser" not in service  # the packages' system user, which owns the state directory
    assert service["User"] == service["Group"] == "secure-endpoint-exporter"
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
    args = build_parser().parse_args(expand(drop_in["Service"]["ExecStart"], config())[1:])
    assert args.systemd_socket and not args.listen
    assert drop_in["Service"]["ExecStart"].split()[-2:] == ["$ARGS", "$WEB_ARGS"]  # the config's flags kept
    assert drop_in["Service"]["PrivateNetwork"] == "yes"
    text = (DEPLOY / "systemd" / DROP_IN).read_text()
    assert "\nExecStart=\nExecStart=" in text  # cleared first, or systemd refuses a second ExecStart


@pytest.mark.system  # Debian's systemd-analyze or node_exporter
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
            target.write_text(path.read_text().replace(CLOUD_INSTALLED, script("secure-endpoint-cloud-exporter"))
                              .replace(INSTALLED, script("secure-endpoint-exporter")))
    names = sorted(p.name for p in tmp_path.iterdir() if p.is_file())
    assert names == ["secure-endpoint-cloud-exporter.service", "secure-endpoint-exporter-textfile.service",
                     "secure-endpoint-exporter-textfile.timer", "secure-endpoint-exporter.service",
                     "secure-endpoint-exporter.socket"]
    done = subprocess.run([analyze, "verify", *names], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          check=False)
    ours = [line for line in (done.stdout + done.stderr).splitlines() if "secure-endpoint-" in line]
    assert done.returncode == 0 and not ours, done.stdout + done.stderr
    # The check sees the drop-in: a drop-in naming a missing program fails it.
    broken = tmp_path / DROP_IN
    broken.write_text(broken.read_text().replace(script("secure-endpoint-exporter"), "/nonexistent/exporter"))
    done = subprocess.run([analyze, "verify", "secure-endpoint-exporter.service"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode != 0 and "/nonexistent/exporter" in done.stderr


def test_the_cloud_unit_runs_the_installed_command_with_its_credentials() -> None:
    service = unit("secure-endpoint-cloud-exporter.service")["Service"]
    command = service["ExecStart"].split()
    assert command[0] == CLOUD_INSTALLED and command[-1] == "$ARGS"
    from secure_endpoint_monitoring.exporter.cloud.main import build_parser as cloud_parser

    args = cloud_parser().parse_args(command[1:-1])
    assert args.credentials_file == "/etc/secure-endpoint-monitoring/cloud-credentials.yml"
    assert service["CapabilityBoundingSet"] == "" and service["User"] == "secure-endpoint-exporter"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["RestartPreventExitStatus"].split() == ["2", "78"]  # a wrong flag, a configuration error
    from secure_endpoint_monitoring.exporter.cloud.main import EX_CONFIG

    assert EX_CONFIG == 78


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


@pytest.mark.system  # Debian's systemd-analyze or node_exporter
def test_textfile_through_a_real_node_exporter(healthy: LinuxTree, tmp_path: Path) -> None:
    binary = shutil.which("prometheus-node-exporter")
    if binary is None:
        raise AssertionError("prometheus-node-exporter is missing: .ci/test installs Debian's package")
    textfiles = tmp_path / "textfile"
    textfiles.mkdir()
    done = run("secure-endpoint-exporter", "--path.rootfs", str(healthy.root), "--ampcli.run-from-rootfs",
               "--once", "--output",
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


def scrape(port: int, process: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
                return str(response.read().decode())
        except OSError:
            if process.poll() is not None:
                raise AssertionError(f"node_exporter exited with {process.returncode}") from None
            time.sleep(0.05)
    raise AssertionError("node_exporter did not answer within 15 s")


@pytest.mark.system  # Debian's systemd-analyze or node_exporter
def test_node_exporter_follows_the_packaged_symlink(healthy: LinuxTree, tmp_path: Path) -> None:
    """The packages' design: the timer writes into a folder of its own and node_exporter's textfile directory
    holds a symlink to the file. node_exporter serves the target's metrics and reports the target's mtime."""
    binary = shutil.which("prometheus-node-exporter")
    assert binary is not None, "prometheus-node-exporter is missing: .ci/test installs Debian's package"
    own = tmp_path / "var/lib/secure-endpoint-exporter/textfile"
    own.mkdir(parents=True)
    target = own / "secure_endpoint.prom"
    done = run("secure-endpoint-exporter", "--path.rootfs", str(healthy.root), "--ampcli.run-from-rootfs",
               "--once", "--output", str(target))
    assert done.returncode == 0, done.stderr
    mtime = 1_700_000_000
    os.utime(target, (mtime, mtime))
    textfiles = tmp_path / "node-exporter"
    textfiles.mkdir()
    (textfiles / "secure_endpoint.prom").symlink_to(target)
    port = free_port()
    process = subprocess.Popen(
        [binary, f"--web.listen-address=127.0.0.1:{port}", "--collector.disable-defaults", "--collector.textfile",
         f"--collector.textfile.directory={textfiles}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        body = scrape(port, process)
    finally:
        stop(process)
    assert "node_textfile_scrape_error 0" in body
    assert "secure_endpoint_connector_installed 1" in body
    found = re.search(r'node_textfile_mtime_seconds\{file="([^"]+)"\} (\S+)', body)
    assert found is not None, body
    assert found.group(1).endswith("secure_endpoint.prom")
    assert float(found.group(2)) == mtime  # the target's, not the link's own (now)


def test_the_cron_line_as_documented(healthy: LinuxTree, tmp_path: Path) -> None:
    """docs/deployment.md's cron line, run twice with its paths moved under a scratch folder: no warning on
    either run (the state directory is made before the first), and the output is there."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "deployment.md").read_text()
    lines = [line for line in text.splitlines() if line.startswith("* * * * * root ")]
    assert len(lines) == 1, lines
    command = lines[0].split(" ", 6)[6]
    bin_dir = str(Path(script("secure-endpoint-exporter")).parent)
    command = (command.replace("/opt/secure-endpoint-monitoring/bin", bin_dir)
               .replace("/var/lib/", f"{tmp_path}/var/lib/")
               .replace("--once", f"--once --path.rootfs {healthy.root} --ampcli.run-from-rootfs"))
    (tmp_path / "var/lib/prometheus/node-exporter").mkdir(parents=True)  # node_exporter's package made it
    for _ in range(2):
        done = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0 and done.stderr == "", done.stderr
    assert "secure_endpoint_connector_installed 1" in (
        tmp_path / "var/lib/prometheus/node-exporter/secure_endpoint.prom").read_text()
    assert (tmp_path / "var/lib/secure-endpoint-exporter/state.json").is_file()
