"""The shipped Icinga 2 and Nagios 4 definitions, run by the real daemons on fixture hosts.

Both daemons must reach the same state, output and perfdata as the plugin run directly.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import ssl
import subprocess
import time
import urllib.request
from base64 import b64encode
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.commands import BIN, run
from tests.daemons import free_port, stop
from tests.hosttree import LinuxTree, faults_status

# Drives Debian's programs: runs on the system python3 only, not in the matrix of noxfile.py.
pytestmark = pytest.mark.system

REPO = Path(__file__).resolve().parents[1]
ICINGA_COMMAND = REPO / "contrib" / "icinga2" / "command.conf"
DOC = REPO / "docs" / "nagios-icinga.md"
NAGIOS_COMMANDS = REPO / "contrib" / "nagios" / "commands.cfg"


def need(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise AssertionError(f"{binary} is missing: install Debian's {package} (.ci/test does)")
    return path


class Host:
    def __init__(self, name: str, root: Path, state_file: Path) -> None:
        self.name = name
        self.root = root
        self.state_file = state_file

    def direct(self, *args: str) -> tuple[int, str, str]:
        """The plugin run by hand: exit code, status line without perfdata, perfdata."""
        code, lines = self.lines(*args)
        first, _, perfdata = lines[0].partition(" | ")
        return code, first, perfdata

    def lines(self, *args: str) -> tuple[int, list[str]]:
        done = run("check_secure_endpoint", "--path.rootfs", str(self.root), "--ampcli.run-from-rootfs",
                   "--state-file", str(self.state_file),
                   *args)
        return done.returncode, done.stdout.splitlines()


def same_perfdata(seen: str, expected: str, slack: int = 120) -> bool:
    """Equal perfdata, but for the definitions' age: it grows while the daemons and the direct run take turns."""
    def split(perfdata: str) -> dict[str, str]:
        return dict(item.split("=", 1) for item in perfdata.split())

    got, want = split(seen), split(expected)
    if got.keys() != want.keys():
        return False
    for label, value in want.items():
        if label == "definitions_age":
            (age, rest), (age_wanted, rest_wanted) = (v.split("s", 1) for v in (got[label], value))
            if rest != rest_wanted or not 0 <= int(age_wanted) - int(age) <= slack:
                return False
        elif got[label] != value:
            return False
    return True


# Extra Icinga services on the healthy and warning hosts: (name, host, custom vars, the plugin's own options).
ICINGA_EXTRA = [
    ("verbose-unset", "healthy", {}, []),
    ("verbose-0", "healthy", {"secure_endpoint_verbose": "0"}, []),
    ("verbose-true", "healthy", {"secure_endpoint_verbose": "true"}, ["-v"]),
    ("verbose-1", "healthy", {"secure_endpoint_verbose": "1"}, ["-v"]),
    ("verbose-2", "healthy", {"secure_endpoint_verbose": "2"}, ["-vv"]),
    ("verbose-2-text", "healthy", {"secure_endpoint_verbose": '"2"'}, ["-vv"]),
    ("verbose-3", "healthy", {"secure_endpoint_verbose": "3"}, ["-vvv"]),
    ("ignore-by-name", "warning", {"secure_endpoint_ignore": '[ "event_monitoring_overloaded" ]'},
     ["--ignore", "event_monitoring_overloaded"]),
    ("dutch", "warning", {"secure_endpoint_lang": '"nl"'}, ["--lang", "nl"]),
]


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> list[Host]:
    base = tmp_path_factory.mktemp("monitored")
    healthy = LinuxTree(base / "healthy").healthy()
    warning = LinuxTree(base / "warning").healthy()
    warning.ampcli(faults_status((18, "Major", "overloaded")))
    critical = LinuxTree(base / "critical").healthy()
    critical.selinux(enforcing=True, module="disabled")
    bare = LinuxTree(base / "not-installed", distro="debian")
    trees = {"healthy": healthy, "warning": warning, "critical": critical, "not-installed": bare}
    return [Host(name, tree.root, base / f"{name}.state") for name, tree in trees.items()]


def test_expected_states_when_run_directly(hosts: list[Host]) -> None:
    assert [h.direct()[0] for h in hosts] == [0, 1, 2, 2]


# -- Icinga 2 --------------------------------------------------------------------------------
def _openssl(*args: str) -> None:
    subprocess.run([need("openssl", "openssl"), *args], check=True, capture_output=True)


def _icinga_runtime(d: Path) -> list[str]:
    """The -D options that put every file icinga2 writes under ``d`` (made here) and run it as root."""
    for sub in ("lib", "log", "cache", "spool", "run"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    return [f"-D{name}={value}" for name, value in {
        "DataDir": d / "lib", "LogDir": d / "log", "CacheDir": d / "cache", "SpoolDir": d / "spool",
        "InitRunDir": d / "run", "PidPath": d / "run/icinga2.pid", "StatePath": d / "lib/icinga2.state",
        "ObjectsPath": d / "cache/icinga2.debug", "VarsPath": d / "cache/icinga2.vars",
        "ModAttrPath": d / "lib/modified-attributes.conf", "RunAsUser": "root", "RunAsGroup": "root"}.items()]


@pytest.fixture(scope="module")
def icinga(tmp_path_factory: pytest.TempPathFactory, hosts: list[Host]) -> Iterator[tuple[int, Path]]:
    binary = need("icinga2", "icinga2")
    d = tmp_path_factory.mktemp("icinga")
    runtime = _icinga_runtime(d)
    certs = d / "lib/certs"
    certs.mkdir()
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(certs / "ca.key"), "-out",
             str(certs / "ca.crt"), "-subj", "/CN=TestCA", "-days", "2")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(certs / "test-node.key"), "-out",
             str(certs / "test-node.csr"), "-subj", "/CN=test-node")
    _openssl("x509", "-req", "-in", str(certs / "test-node.csr"), "-CA", str(certs / "ca.crt"), "-CAkey",
             str(certs / "ca.key"), "-CAcreateserial", "-out", str(certs / "test-node.crt"), "-days", "2")
    port = free_port()
    by_name = {h.name: h for h in hosts}
    services = "\n".join(
        f'object Service "{h.name}" {{\n  host_name = "h1"\n  check_command = "secure_endpoint"\n'
        f'  vars.secure_endpoint_rootfs = "{h.root}"\n  vars.secure_endpoint_state_file = "{h.state_file}.icinga"\n'
        "  vars.secure_endpoint_ampcli_run_from_rootfs = true\n"
        f"  check_interval = 2s\n  retry_interval = 2s\n  max_check_attempts = 1\n}}" for h in hosts)
    services += "\n" + "\n".join(
        f'object Service "{name}" {{\n  host_name = "h1"\n  check_command = "secure_endpoint"\n'
        f'  vars.secure_endpoint_rootfs = "{by_name[host].root}"\n  vars.secure_endpoint_state_file = ""\n'
        "  vars.secure_endpoint_ampcli_run_from_rootfs = true\n"
        + "".join(f"  vars.{key} = {value}\n" for key, value in custom.items())
        + "  check_interval = 2s\n  retry_interval = 2s\n  max_check_attempts = 1\n}"
        for name, host, custom, _args in ICINGA_EXTRA)
    (d / "icinga2.conf").write_text(f"""include <itl>
object CheckerComponent "checker" {{ }}
object Endpoint "test-node" {{ }}
object Zone "master" {{ endpoints = [ "test-node" ] }}
object ApiListener "api" {{ bind_host = "127.0.0.1"; bind_port = {port} }}
object ApiUser "root" {{ password = "test"; permissions = [ "*" ] }}
object Host "h1" {{ check_command = "dummy"; check_interval = 1s }}
{services}
""")
    defines = [*runtime, *(f"-D{name}={value}" for name, value in {
        "NodeName": "test-node", "ZonesDir": d / "zones.d", "ConfigDir": d, "PluginContribDir": BIN}.items())]
    config = ["-c", str(d / "icinga2.conf"), "-c", str(ICINGA_COMMAND)]
    checked = subprocess.run([binary, "daemon", "-C", *config, *defines], capture_output=True, text=True,
                             check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    log = open(d / "icinga.log", "w")  # noqa: SIM115 - lives as long as the daemon
    process = subprocess.Popen([binary, "daemon", *config, *defines, "-x", "warning"], stdout=log,
                               stderr=subprocess.STDOUT)
    try:
        yield port, d
    finally:
        stop(process)
        log.close()


def _icinga_results(icinga: tuple[int, Path], count: int) -> dict[str, dict[str, Any]]:
    """Every service's attributes, once all ``count`` have a check result (or 30 s have passed)."""
    port, d = icinga
    deadline = time.monotonic() + 30
    services: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        try:
            services = _icinga_services(port, d)
        except OSError:
            time.sleep(0.2)
            continue
        if len(services) == count and all(s["last_check_result"] for s in services.values()):
            break
        time.sleep(0.2)
    assert len(services) == count, (d / "icinga.log").read_text()
    return services


def _icinga_services(port: int, d: Path) -> dict[str, dict[str, Any]]:
    context = ssl.create_default_context(cafile=str(d / "lib/certs/ca.crt"))
    context.check_hostname = False
    request = urllib.request.Request(
        f"https://127.0.0.1:{port}/v1/objects/services?attrs=name&attrs=state&attrs=last_check_result",
        headers={"Authorization": "Basic " + b64encode(b"root:test").decode(), "Accept": "application/json"})
    with urllib.request.urlopen(request, context=context, timeout=5) as response:
        body = json.load(response)
    return {item["attrs"]["name"]: item["attrs"] for item in body["results"]}


def test_shipped_command_validates(icinga: tuple[int, Path]) -> None:
    # The fixture ran `icinga2 daemon -C` with the shipped command.conf; the example apply rules validate too.
    _port, d = icinga
    binary = need("icinga2", "icinga2")
    conf = d / "validate.conf"
    conf.write_text(
        'include <itl>\n'
        'object Endpoint "master-node" { }\nobject Zone "master" { endpoints = [ "master-node" ] }\n'
        'object Endpoint "a" { }\nobject Zone "a" { endpoints = [ "a" ]; parent = "master" }\n'
        'object Host "a" { check_command = "dummy"; vars.secure_endpoint = true; vars.agent_endpoint = "a";'
        ' zone = "master" }\n'
        'object Host "b" { check_command = "dummy"; vars.secure_endpoint = true }\n'
        'object Host "c" { check_command = "dummy" }\n')
    done = subprocess.run([binary, "daemon", "-C", "-c", str(conf), "-c", str(ICINGA_COMMAND), "-c",
                           str(REPO / "contrib/icinga2/services.conf"), f"-DPluginContribDir={BIN}",
                           f"-DObjectsPath={d / 'cache/validate.debug'}", f"-DVarsPath={d / 'cache/validate.vars'}",
                           f"-DDataDir={d / 'lib'}", f"-DLogDir={d / 'log'}", f"-DCacheDir={d / 'cache'}",
                           "-DNodeName=master-node", "-DRunAsUser=root", "-DRunAsGroup=root"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Instantiated 2 Services." in done.stdout  # the agent rule for a, the local rule for b, none for c


# The Icinga 2 section of the doc, laid out in a copy of Debian's configuration as it says (issue 21).
DEBIAN_ICINGA = Path("/etc/icinga2")
NODE = "icinga.example.org"  # the Icinga node's NodeName, and so its ZoneName (Debian's constants.conf)


def _doc_blocks(section: str) -> list[tuple[str, str]]:
    """The fenced code blocks of one ``## `` section of the doc, as (language, text)."""
    text = DOC.read_text()
    start = text.index(f"\n## {section}\n")
    end = text.find("\n## ", start + 1)
    return re.findall(r"^```(\w*)\n(.*?)^```$", text[start:end if end >= 0 else None], re.M | re.S)


def _lay_out_doc(etc: Path, new_files_in: str | None = None) -> None:
    """Debian's /etc/icinga2 copied to ``etc``, changed as the doc's blocks say (the first line names the file).

    ``new_files_in`` puts the files the doc creates into that folder of ``etc`` instead.
    """
    if not (DEBIAN_ICINGA / "icinga2.conf").exists():
        raise AssertionError("/etc/icinga2 is missing: install Debian's icinga2 (.ci/test does)")
    shutil.copytree(DEBIAN_ICINGA, etc, symlinks=True)

    def into(path: str) -> Path:
        assert path.startswith(f"{DEBIAN_ICINGA}/"), path
        return etc / path[len(f"{DEBIAN_ICINGA}/"):].replace("<ZoneName>", NODE)

    blocks = _doc_blocks("Icinga 2")
    assert blocks, "no code blocks in the Icinga 2 section of the doc"
    for language, text in blocks:
        if language == "sh":
            for line in text.splitlines():
                words = line.split()
                if words[:3] == ["sudo", "mkdir", "-p"]:
                    into(words[3]).mkdir(parents=True)
                elif words[:2] == ["sudo", "cp"]:
                    *sources, target = words[2:]
                    for source in sources:
                        shutil.copy(REPO / source, into(target))
                else:
                    raise AssertionError(f"the doc's command is not understood here: {line}")
            continue
        first, _, body = text.partition("\n")
        how = re.fullmatch(r"// (/etc/icinga2/\S+): (a new file|add at the end|add inside (.+))", first)
        assert how, f"a block of the doc does not start by naming its file: {first}"
        path = into(how[1])
        if how[2] == "a new file":
            assert not path.exists(), path
            if new_files_in is not None:
                path = etc / new_files_in / path.name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(body)
        elif how[2] == "add at the end":
            path.write_text(f"{path.read_text()}\n{body}")
        else:
            before, anchor = path.read_text(), f"\n{how[3]} {{\n"
            assert anchor in before, (path, anchor)
            path.write_text(before.replace(anchor, anchor + body, 1))


def _check_config(etc: Path, d: Path) -> subprocess.CompletedProcess[str]:
    """`icinga2 daemon -C` on the configuration in ``etc``, writing only under ``d``."""
    return subprocess.run([need("icinga2", "icinga2"), "daemon", "-C", "-c", str(etc / "icinga2.conf"),
                           f"-DConfigDir={etc}", f"-DZonesDir={etc / 'zones.d'}", f"-DNodeName={NODE}",
                           *_icinga_runtime(d)], capture_output=True, text=True, check=False)


def _icinga_objects(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """The objects file of `daemon -C`, netstrings of JSON, as (type, full name): attributes."""
    data, at = path.read_bytes(), 0
    objects = {}
    while at < len(data):
        colon = data.index(b":", at)
        end = colon + 1 + int(data[at:colon])
        item = json.loads(data[colon + 1:end])
        objects[item["type"], item["properties"]["__name"]] = item["properties"]
        at = end + 1  # the comma that closes a netstring
    return objects


def test_documented_icinga_layout_validates(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    _lay_out_doc(etc)
    done = _check_config(etc, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    objects = _icinga_objects(tmp_path / "cache/icinga2.debug")
    declared = re.findall(r'^object (\w+) "([^"]+)"', "".join(text for _, text in _doc_blocks("Icinga 2")), re.M)
    assert {kind for kind, _name in declared} == {"Endpoint", "Zone", "Host"}, declared
    for kind, name in declared:
        assert (kind, name) in objects, (kind, name)
        if kind == "Zone":
            assert objects[kind, name]["parent"] == NODE
        if kind == "Host":
            assert objects[kind, name]["zone"] == NODE
            agent = objects["Service", f"{name}!secure-endpoint"]
            assert agent["zone"] == NODE and ("Endpoint", agent["command_endpoint"]) in objects, agent
    assert ("Service", f"{NODE}!secure-endpoint-local") in objects  # conf.d's Host NodeName, checked locally
    assert objects["CheckCommand", "secure_endpoint"]["zone"] == "global-templates"


def test_documented_icinga_host_outside_zones_d_fails(tmp_path: Path) -> None:
    # The layout of issue 21: the host file in conf.d, so its agent's check has no zone.
    etc = tmp_path / "etc"
    _lay_out_doc(etc, new_files_in="conf.d")
    done = _check_config(etc, tmp_path)
    assert done.returncode != 0, done.stdout
    assert "Checkable with command endpoint requires a zone" in done.stdout, done.stdout + done.stderr


def test_icinga_states_match_the_plugin(icinga: tuple[int, Path], hosts: list[Host]) -> None:
    services = _icinga_results(icinga, len(hosts) + len(ICINGA_EXTRA))
    for host in hosts:
        code, first, perfdata = host.direct()
        result = services[host.name]["last_check_result"]
        assert int(result["state"]) == code, (host.name, result)
        assert result["output"].splitlines()[0].rstrip() == first, host.name
        assert same_perfdata(" ".join(result["performance_data"]), perfdata), (host.name, result, perfdata)
    assert "definitions_age" in " ".join(services["healthy"]["last_check_result"]["performance_data"])


@pytest.mark.parametrize(("name", "host", "options"), [(n, h, a) for n, h, _vars, a in ICINGA_EXTRA])
def test_icinga_custom_vars_become_the_plugins_options(icinga: tuple[int, Path], hosts: list[Host], name: str,
                                                       host: str, options: list[str]) -> None:
    """secure_endpoint_verbose 0..3 is -v, -vv or -vvv; fault names and the language pass through."""
    services = _icinga_results(icinga, len(hosts) + len(ICINGA_EXTRA))
    result = services[name]["last_check_result"]
    command = result["command"]
    assert [word for word in command if word.startswith("-v")] == [o for o in options if o.startswith("-v")]
    for at in range(0, len(options) - 1, 2):
        flag, value = options[at], options[at + 1]
        if not flag.startswith("-v"):
            assert command[command.index(flag) + 1] == value, command
    code, lines = next(h for h in hosts if h.name == host).lines("--state-file", "", *options)
    assert int(result["state"]) == code, result
    seen = [line.rstrip() for line in result["output"].rstrip().splitlines()]
    assert seen[0] == lines[0].partition(" | ")[0]
    assert len(seen) == len(lines), (seen, lines)


# -- Nagios 4 --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def nagios(tmp_path_factory: pytest.TempPathFactory, hosts: list[Host]) -> Iterator[Path]:
    binary = need("nagios4", "nagios4-core")
    dummy = "/usr/lib/nagios/plugins/check_dummy"
    if not os.path.exists(dummy):
        raise AssertionError("check_dummy is missing: install Debian's monitoring-plugins-basic (.ci/test does)")
    d = tmp_path_factory.mktemp("nagios")
    (d / "checkresults").mkdir()
    (d / "resource.cfg").write_text(f"$USER1$={BIN}\n")
    by_name = {h.name: h for h in hosts}
    allow = "--ampcli.run-from-rootfs"
    checks = [(h.name, f"--path.rootfs {h.root} {allow} --state-file {h.state_file}.nagios") for h in hosts]
    checks += [(name, f"--path.rootfs {by_name[host].root} {allow} --state-file '' {' '.join(options)}")
               for name, host, options in NAGIOS_EXTRA]
    services = "\n".join(f"""define service {{
    host_name               h1
    service_description     {name}
    check_command           check_secure_endpoint!{arguments}
    max_check_attempts      1
    check_interval          2
    retry_interval          2
    check_period            24x7
    notification_period     24x7
    notification_interval   0
    contacts                nobody
}}""" for name, arguments in checks)
    (d / "objects.cfg").write_text(f"""define timeperiod {{
    timeperiod_name 24x7
    alias 24x7
    sunday 00:00-24:00
    monday 00:00-24:00
    tuesday 00:00-24:00
    wednesday 00:00-24:00
    thursday 00:00-24:00
    friday 00:00-24:00
    saturday 00:00-24:00
}}
define contact {{
    contact_name nobody
    host_notifications_enabled 0
    service_notifications_enabled 0
    host_notification_period 24x7
    service_notification_period 24x7
    host_notification_options n
    service_notification_options n
    host_notification_commands check_dummy
    service_notification_commands check_dummy
}}
define command {{
    command_name check_dummy
    command_line {dummy} 0
}}
define host {{
    host_name h1
    address 127.0.0.1
    check_command check_dummy
    max_check_attempts 1
    check_period 24x7
    notification_period 24x7
    notification_interval 0
    contacts nobody
}}
{services}
""")
    (d / "nagios.cfg").write_text(f"""log_file={d}/nagios.log
cfg_file={d}/objects.cfg
cfg_file={NAGIOS_COMMANDS}
resource_file={d}/resource.cfg
object_cache_file={d}/objects.cache
precached_object_file={d}/objects.precache
status_file={d}/status.dat
status_update_interval=1
lock_file={d}/nagios.lock
temp_file={d}/nagios.tmp
temp_path={d}
check_result_path={d}/checkresults
command_file={d}/nagios.cmd
check_external_commands=1
nagios_user=root
nagios_group=root
retain_state_information=0
interval_length=1
use_syslog=0
enable_notifications=0
query_socket={d}/nagios.qh
illegal_macro_output_chars=`~$&|'"<>
""")
    checked = subprocess.run([binary, "-v", str(d / "nagios.cfg")], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout
    process = subprocess.Popen([binary, str(d / "nagios.cfg")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield d
    finally:
        stop(process)


def _status(d: Path) -> dict[str, dict[str, str]]:
    try:
        text = (d / "status.dat").read_text()
    except FileNotFoundError:
        return {}
    found = {}
    for block in re.findall(r"servicestatus \{\n(.*?)\n\s*\}", text, re.S):
        fields = dict(line.strip().split("=", 1) for line in block.splitlines() if "=" in line)
        found[fields["service_description"]] = fields
    return found


# Extra Nagios services: (name, host, options in $ARG1$), as contrib/nagios/services.cfg suggests.
NAGIOS_EXTRA = [
    ("nagios-verbose", "healthy", ["-t", "20", "-v"]),
    ("nagios-by-name", "warning", ["--ignore", "event_monitoring_overloaded,orbital_full_disk_access_missing"]),
    ("nagios-dutch", "critical", ["--lang", "nl", "-vv"]),
]


def _nagios_results(nagios: Path, names: list[str]) -> dict[str, dict[str, str]]:
    deadline = time.monotonic() + 30
    forced = False
    status: dict[str, dict[str, str]] = {}
    while time.monotonic() < deadline:
        status = _status(nagios)
        if not forced and (nagios / "nagios.cmd").exists() and status:
            now = int(time.time())
            with open(nagios / "nagios.cmd", "w") as pipe:
                for name in names:
                    pipe.write(f"[{now}] SCHEDULE_FORCED_SVC_CHECK;h1;{name};{now}\n")
            forced = True
        if len(status) == len(names) and all(s.get("has_been_checked") == "1" for s in status.values()):
            break
        time.sleep(0.2)
    assert len(status) == len(names) and all(s["has_been_checked"] == "1" for s in status.values()), status
    return status


def test_nagios_states_match_the_plugin(nagios: Path, hosts: list[Host]) -> None:
    status = _nagios_results(nagios, [h.name for h in hosts] + [name for name, _host, _options in NAGIOS_EXTRA])
    for host in hosts:
        code, first, perfdata = host.direct()
        service = status[host.name]
        assert int(service["current_state"]) == code, (host.name, service)
        assert service["plugin_output"].rstrip() == first, host.name
        assert same_perfdata(service["performance_data"], perfdata), (host.name, service, perfdata)
        if code:
            assert service["long_plugin_output"].startswith(("CRITICAL: ", "WARNING: ")), service


@pytest.mark.parametrize(("name", "host", "options"), NAGIOS_EXTRA)
def test_nagios_passes_the_options(nagios: Path, hosts: list[Host], name: str, host: str,
                                   options: list[str]) -> None:
    status = _nagios_results(nagios, [h.name for h in hosts] + [n for n, _host, _options in NAGIOS_EXTRA])
    code, lines = next(h for h in hosts if h.name == host).lines("--state-file", "", *options)
    service = status[name]
    assert int(service["current_state"]) == code, service
    assert service["plugin_output"].rstrip() == lines[0].partition(" | ")[0]
    # status.dat keeps the long output on one line, its newlines written as \n.
    long_output = service["long_plugin_output"]
    assert (long_output.split("\\n") if long_output else []) == lines[1:], service
