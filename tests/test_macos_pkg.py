"""The macOS kit (pkg/macos_pkg.py) built on this host: the tree the package installs, its scripts, the
profile, and the installed launcher run here against copies of Macs.

Building fetches the macOS wheels from PyPI. Without the network the tests are skipped with pip's
reason, except under CI=true, where that is a failure. pkgbuild, launchd and TCC need a Mac: what
they do is described in docs/macos.md and not checked here; the package scripts run here against a copied
target volume, with launchctl replaced by a recorder.
"""

from __future__ import annotations

import importlib.util
import os
import plistlib
import re
import shutil
import subprocess
import sys
import tarfile
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.commands import other_python, unavailable
from tests.mactree import MacTree

# Builds the macOS kit from PyPI's wheels and runs it on Python 3.9: on the system python3 only, not in the
# matrix of noxfile.py.
pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parent.parent
VERSION = "0.1.0"
KIT = f"secure-endpoint-monitoring-{VERSION}-macos"
HOME = "Library/Application Support/secure-endpoint-monitoring"
LABEL = "com.github.secure-endpoint-monitoring.exporter"
BROAD = "secure-endpoint-monitoring-fda-grants-all-apple-python3.mobileconfig"
IGNORE = ["--ignore", "6,7,daemon_not_running"]  # processes of a copied Mac cannot be read (docs/macos.md)
PERFDATA = (r"active={a};;;0;12 critical={a};;;0;16 definitions_age=\d+s;604800;;0 "
            r"unknown=0;;;0;16 warning=0;;;0;16")


def load() -> ModuleType:
    """pkg/ is no package: load the builder by its path, as pkg/build.py does."""
    spec = importlib.util.spec_from_file_location("macos_pkg", ROOT / "pkg" / "macos_pkg.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


macos_pkg = load()




@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Our wheel from a copy of the sources (the shared tree gets no build/), then the kit, unpacked."""
    tmp = tmp_path_factory.mktemp("macos")
    source = tmp / "source"
    for name in ("checks", "exporter", "secure_endpoint_monitoring"):
        shutil.copytree(ROOT / name, source / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp / "wheels"),
                           str(source)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        unavailable(f"the macOS kit could not be built (network or pip): {done.stderr.strip()[-2000:]}")
    wheel = next((tmp / "wheels").glob("*.whl"))
    try:
        outputs = macos_pkg.build(tmp / "dist", wheel, VERSION)
    except RuntimeError as error:
        unavailable(f"the macOS kit could not be built (network or pip): {str(error)[-2000:]}")
    tarball, profile = outputs
    with tarfile.open(tarball) as tar:
        if hasattr(tarfile, "data_filter"):  # Python 3.9.17, 3.10.12, 3.11.4 and later (Debian 12's 3.11.2 lacks it)
            tar.extractall(tmp / "x", filter="data")
        else:
            tar.extractall(tmp / "x")  # our own kit, just built
    return {"tarball": tarball, "profile": profile, "kit": tmp / "x" / KIT, "tmp": tmp}


def lay_down(kit: Path, target: Path) -> None:
    """What Installer does with the payload: the program's folder at its place on the target volume."""
    shutil.copytree(kit / "payload", target / HOME, symlinks=True, dirs_exist_ok=True)


@pytest.fixture(scope="module")
def installed(built: dict[str, Path]) -> Path:
    """The payload copied onto a target volume, then the package's postinstall run for that volume."""
    target = built["tmp"] / "volume"
    lay_down(built["kit"], target)
    run_script(built["kit"] / "scripts" / "postinstall", target)
    return target


def run_script(script: Path, target: Path) -> subprocess.CompletedProcess[str]:
    """As Installer calls them: package path, install location, target volume, volume root."""
    done = subprocess.run(["/bin/sh", str(script), "/tmp/x.pkg", "/", str(target), "/"],
                          capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def mac(tmp_path: Path, fault: bool) -> Path:
    tree = MacTree(tmp_path / "mac").healthy()
    if fault:
        tree.tcc({"com.cisco.endpoint.svc": False, "com.cisco.endpoint.svc.securityextension": True})
    return tree.root


def run(command: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(command), *args], capture_output=True, text=True, check=False, timeout=60,
                          env={"PATH": "/usr/bin:/bin", **(env or {})})


def macho(path: Path) -> str:
    """The CPU of a thin 64-bit Mach-O file, or "universal" for a fat one."""
    head = path.read_bytes()[:8]
    if head[:4] == b"\xca\xfe\xba\xbe":
        return "universal"
    assert head[:4] == b"\xcf\xfa\xed\xfe", f"{path.name} is no Mach-O file"
    return {0x01000007: "x86_64", 0x0100000C: "arm64"}[int.from_bytes(head[4:8], "little")]


def test_payload_holds_the_program_for_both_architectures(built: dict[str, Path]) -> None:
    home = built["kit"] / "payload"  # the program's folder itself: no system folder above it
    assert sorted(p.name for p in home.iterdir()) == ["VERSION", "bin", "launchd", "lib", "libexec",
                                                      "uninstall.sh"]
    assert sorted(p.name for p in (home / "bin").iterdir()) == ["check_secure_endpoint", "secure-endpoint-exporter"]
    assert (home / "VERSION").read_text() == f"{VERSION}\n"
    for arch in ("arm64", "x86_64"):
        lib = home / "lib" / arch
        for package in ("secure_endpoint_monitoring/checks", "secure_endpoint_monitoring/exporter", "prometheus_client",
                        "nagiosplugin", "psutil", "yaml", "bcrypt"):
            assert (lib / package / "__init__.py").is_file(), f"{package} missing for {arch}"
        assert not (lib / "bin").exists() and not list(lib.rglob("__pycache__")) and not list(lib.rglob("*.pyc"))
        compiled = list(lib.rglob("*.so"))
        assert {p.parent.name for p in compiled} >= {"psutil", "yaml", "bcrypt"}
        assert {macho(p) for p in compiled} <= {arch, "universal"}
        assert (lib / "psutil" / "_psutil_osx.abi3.so").is_file()  # the macOS build, not Linux's
    assert not list(home.rglob("Library"))  # no /Library, /Library/Logs, /Library/LaunchDaemons...
    script = (built["kit"] / "build-pkg.sh").read_text()
    assert '--install-location "/Library/Application Support/secure-endpoint-monitoring"' in script


def test_payload_dependencies_are_the_locked_ones(built: dict[str, Path]) -> None:
    """The kit's libraries are the versions of pkg/requirements.lock, as in the .deb and the .rpm."""
    pins = dict(re.findall(r"^([a-z0-9-]+)==(\S+) \\$", (ROOT / "pkg" / "requirements.lock").read_text(), re.M))
    assert {"prometheus-client", "nagiosplugin", "psutil", "pyyaml", "bcrypt", "polib"} <= set(pins)
    for arch in ("arm64", "x86_64"):
        installed = {}
        for info in (built["kit"] / "payload" / "lib" / arch).glob("*.dist-info"):
            name, version = info.name[:-len(".dist-info")].rsplit("-", 1)
            installed[re.sub(r"[-_.]+", "-", name).lower()] = version
        installed.pop("secure-endpoint-monitoring")
        assert installed == pins, arch


def test_tarball_is_root_wheel_with_package_modes(built: dict[str, Path]) -> None:
    with tarfile.open(built["tarball"]) as tar:
        members = {m.name.removeprefix(f"{KIT}/"): m for m in tar.getmembers()}
    assert {(m.uname, m.gname, m.uid, m.gid) for m in members.values()} == {("root", "wheel", 0, 0)}
    executable = {"payload/bin/check_secure_endpoint", "payload/bin/secure-endpoint-exporter",
                  "payload/uninstall.sh", "scripts/preinstall", "scripts/postinstall", "build-pkg.sh"}
    for name in executable:
        assert members[name].mode == 0o755, name
    assert members[f"payload/launchd/{LABEL}.plist"].mode == 0o644
    assert members["payload/libexec/launch.py"].mode == 0o644
    assert {m.mode for m in members.values() if m.isdir()} == {0o755}
    others = {n: m.mode for n, m in members.items() if m.isfile() and n not in executable}
    assert set(others.values()) == {0o644, 0o755}
    assert {n for n, mode in others.items() if mode == 0o755} == {n for n in others if n.endswith(".so")}


def test_launch_daemon_is_the_repository_plist_and_runs_the_installed_launcher(installed: Path) -> None:
    source = ROOT / "deploy" / "launchd" / f"{LABEL}.plist"
    daemon = installed / "Library" / "LaunchDaemons" / source.name  # copied there by postinstall
    assert daemon.read_bytes() == source.read_bytes()
    assert daemon.stat().st_mode & 0o7777 == 0o644
    plist: dict[str, Any] = plistlib.loads(daemon.read_bytes())
    assert plist["Label"] == daemon.stem == LABEL
    program = plist["ProgramArguments"][0]
    assert program == f"/{HOME}/bin/secure-endpoint-exporter"
    assert (installed / program.lstrip("/")).is_file()
    assert plist["EnvironmentVariables"]["SECURE_ENDPOINT_EXPORTER_ARGS_FILE"] == f"/{HOME}/etc/exporter.args"
    for key in ("StandardErrorPath", "StandardOutPath"):
        assert (installed / Path(plist[key]).parent.relative_to("/")).is_dir()


def test_settings_are_never_in_the_payload(built: dict[str, Path]) -> None:
    assert not (built["kit"] / "payload" / "etc").exists()
    assert not list((built["kit"] / "payload").rglob(".install-state"))


def test_postinstall_keeps_the_system_folders_as_macos_ships_them(built: dict[str, Path], tmp_path: Path) -> None:
    """Installer lays down only the program's folder; postinstall adds to /Library without re-moding it.

    The target gets its system folders first, with modes that differ from what the scripts would make
    (0775, 0700): a chmod or a fresh mkdir of them would show.
    """
    target = tmp_path / "volume"
    system = {"Library": 0o755, "Library/Application Support": 0o775, "Library/Logs": 0o775,
              "Library/LaunchDaemons": 0o700, "usr/local/bin": 0o775}
    for folder, mode in system.items():
        (target / folder).mkdir(parents=True, exist_ok=True)
        (target / folder).chmod(mode)
    lay_down(built["kit"], target)
    run_script(built["kit"] / "scripts" / "postinstall", target)
    assert {f: (target / f).stat().st_mode & 0o7777 for f in system} == system
    ours = [HOME, f"{HOME}/etc", "Library/Logs/secure-endpoint-monitoring"]
    assert {f: (target / f).stat().st_mode & 0o7777 for f in ours} == dict.fromkeys(ours, 0o755)
    assert (target / "Library" / "LaunchDaemons" / f"{LABEL}.plist").stat().st_mode & 0o7777 == 0o644


def test_profile_grants_full_disk_access_to_the_tools_python(built: dict[str, Path]) -> None:
    assert built["profile"].name == BROAD  # the name says what it grants
    profile: dict[str, Any] = plistlib.loads(built["profile"].read_bytes())
    assert built["profile"].read_bytes() == (built["kit"] / built["profile"].name).read_bytes()
    assert "EVERY launchd job running Apple's python3" in profile["PayloadDisplayName"]
    assert "including one a local user writes" in profile["PayloadDescription"]
    assert profile["PayloadType"] == "Configuration" and profile["PayloadScope"] == "System"
    (policy,) = profile["PayloadContent"]
    assert policy["PayloadType"] == "com.apple.TCC.configuration-profile-policy"
    assert list(policy["Services"]) == ["SystemPolicyAllFiles"]
    (grant,) = policy["Services"]["SystemPolicyAllFiles"]
    assert grant["Identifier"] == "com.apple.python3" and grant["IdentifierType"] == "bundleID"
    assert grant["CodeRequirement"] == 'identifier "com.apple.python3" and anchor apple'
    assert grant["Allowed"] is True and "Authorization" not in grant  # one of the two, never both
    uuids = [profile["PayloadUUID"], policy["PayloadUUID"]]
    assert all(str(uuid.UUID(u)).upper() == u for u in uuids) and len(set(uuids)) == 2
    assert macos_pkg.pppc_profile() == built["profile"].read_bytes()  # same UUIDs at every build
    other: dict[str, Any] = plistlib.loads(macos_pkg.pppc_profile("org.example.monitoring.fda"))
    assert other["PayloadUUID"] not in uuids and other["PayloadIdentifier"] == "org.example.monitoring.fda"


ORG_REQUIREMENT = ('identifier "org.example.sem.python" and anchor apple generic and '
                   'certificate leaf[subject.OU] = "ABCDE12345"')


@pytest.mark.parametrize(("identifier", "kind", "name"), [
    ("org.example.sem.python", "bundleID", "secure-endpoint-monitoring-fda-org.example.sem.python.mobileconfig"),
    ("/Library/Application Support/org.example.sem-python/bin/python3.11", "path",
     "secure-endpoint-monitoring-fda-Library-Application-Support-org.example.sem-python-bin-python3.11.mobileconfig"),
])
def test_profile_for_an_interpreter_of_ones_own(tmp_path: Path, identifier: str, kind: str, name: str) -> None:
    """--fda-identifier/--fda-requirement: the grant names that program alone, in a profile of its own."""
    code = macos_pkg.main(["--dist", str(tmp_path), "--profile-only", "--fda-identifier", identifier,
                           "--fda-requirement", ORG_REQUIREMENT])
    assert code == 0
    assert [p.name for p in tmp_path.iterdir()] == [name]
    profile: dict[str, Any] = plistlib.loads((tmp_path / name).read_bytes())
    (policy,) = profile["PayloadContent"]
    (grant,) = policy["Services"]["SystemPolicyAllFiles"]
    assert (grant["Identifier"], grant["IdentifierType"], grant["CodeRequirement"]) == (
        identifier, kind, ORG_REQUIREMENT)
    assert profile["PayloadIdentifier"].startswith("com.github.secure-endpoint-monitoring.fda.")
    broad: dict[str, Any] = plistlib.loads(macos_pkg.pppc_profile())
    assert profile["PayloadUUID"] != broad["PayloadUUID"]  # a separate profile, not a silent replacement
    assert identifier in profile["PayloadDisplayName"] and "EVERY" not in profile["PayloadDisplayName"]


@pytest.mark.parametrize("args", [["--fda-identifier", "org.example.sem.python"],
                                  ["--fda-requirement", ORG_REQUIREMENT],
                                  ["--fda-identifier", "org.example.sem.python", "--fda-requirement", " "],
                                  []])
def test_grant_options_are_checked(tmp_path: Path, args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """One of the pair without the other, an empty requirement, or no wheel for a kit: refused, nothing written."""
    try:
        code = macos_pkg.main(["--dist", str(tmp_path / "dist"), *(["--profile-only"] if args else []), *args])
    except SystemExit as error:
        code = error.code
    assert code not in (0, None)
    assert not (tmp_path / "dist").exists() or not list((tmp_path / "dist").iterdir())
    assert capsys.readouterr().err


def test_distribution_and_build_script_name_the_same_component(built: dict[str, Path]) -> None:
    root = ET.parse(built["kit"] / "distribution.xml").getroot()
    assert root.tag == "installer-gui-script"
    (ref,) = [r for r in root.iter("pkg-ref") if r.text]
    assert ref.get("version") == VERSION and ref.text == macos_pkg.COMPONENT
    options = root.find("options")
    assert options is not None and set(options.get("hostArchitectures", "").split(",")) == {"x86_64", "arm64"}
    script = (built["kit"] / "build-pkg.sh").read_text()
    assert f"--identifier {ref.get('id')} --version {VERSION}" in script
    assert f'"$work/{macos_pkg.COMPONENT}"' in script and "productsign --sign" in script


def test_scripts_parse_and_are_filled_in(built: dict[str, Path]) -> None:
    home = built["kit"] / "payload"
    scripts = [*(home / "bin").iterdir(), home / "uninstall.sh", home / "libexec" / "python.sh",
               *(built["kit"] / "scripts").iterdir(), built["kit"] / "build-pkg.sh"]
    assert len(scripts) == 7
    for script in scripts:
        done = subprocess.run(["/bin/sh", "-n", str(script)], capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"{script.name}: {done.stderr}"
        assert not re.search(r"@[A-Z]+@", script.read_text()), script.name
        assert script.name == "python.sh" or os.access(script, os.X_OK), script.name


@pytest.mark.parametrize(("fault", "first"), [
    (False, re.escape("SECURE ENDPOINT OK - no active faults (10 checked), connector connected | ")
     + PERFDATA.format(a=0)),
    (True, re.escape("SECURE ENDPOINT CRITICAL - Full Disk Access not granted (fault 3) | ") + PERFDATA.format(a=1)),
])
def test_installed_plugin_on_a_mac_tree(installed: Path, tmp_path: Path, fault: bool, first: str) -> None:
    (installed / HOME / "etc" / "python").write_text(other_python("3.9") + "\n")
    link = installed / "usr" / "local" / "bin" / "check_secure_endpoint"
    assert link.is_symlink() and not os.readlink(link).startswith("/")  # relative: right on any volume
    done = run(link, "--path.rootfs", str(mac(tmp_path, fault)), "--ampcli.run-from-rootfs",
               "--state-file", "", *IGNORE)
    assert done.returncode == (2 if fault else 0), done.stdout + done.stderr
    assert re.fullmatch(first, done.stdout.splitlines()[0]), done.stdout


def test_daemon_takes_the_flags_file(installed: Path, tmp_path: Path) -> None:
    (installed / HOME / "etc" / "python").write_text(other_python("3.9") + "\n")
    flags = tmp_path / "exporter.args"
    flags.write_text(f"# local settings\n\n--once\n--path.rootfs={mac(tmp_path, True)}\n--ampcli.run-from-rootfs\n")
    done = run(installed / HOME / "bin" / "secure-endpoint-exporter",
               env={"SECURE_ENDPOINT_EXPORTER_ARGS_FILE": str(flags)})
    assert done.returncode == 0, done.stderr
    active = r'^secure_endpoint_fault_active\{[^}]*fault_id="3"[^}]*\} 1(\.0)?$'
    assert re.search(active, done.stdout, re.M), done.stdout


def test_without_python_one_unknown_line(installed: Path) -> None:
    if Path("/Library/Developer/CommandLineTools/usr/bin/python3").exists():
        pytest.skip("this host has the Command Line Tools")
    (installed / HOME / "etc" / "python").unlink(missing_ok=True)
    done = run(installed / "usr" / "local" / "bin" / "check_secure_endpoint")
    assert done.returncode == 3
    assert done.stdout == ("SECURE ENDPOINT UNKNOWN - no Python 3.9 or later: install the Command Line Tools "
                           f"(xcode-select --install) or name an interpreter in {installed / HOME}/etc/python\n")


def test_older_python_is_named(installed: Path) -> None:
    old = other_python("3.8")
    (installed / HOME / "etc" / "python").write_text(old + "\n")
    done = run(installed / HOME / "bin" / "check_secure_endpoint")
    assert done.returncode == 3
    assert re.fullmatch(r"SECURE ENDPOINT UNKNOWN - Python 3\.[78]\.\d+ at \S+ is older than 3\.9: .*\n", done.stdout)


def test_upgrade_keeps_settings_and_replaces_code(built: dict[str, Path], tmp_path: Path) -> None:
    target = tmp_path / "volume"
    lay_down(built["kit"], target)
    run_script(built["kit"] / "scripts" / "postinstall", target)
    flags = target / HOME / "etc" / "exporter.args"
    assert flags.read_text().startswith("# Extra flags for the exporter")
    flags.write_text("--web.listen-address=127.0.0.1:9982\n")
    stale = target / HOME / "lib" / "arm64" / "dropped_module.py"
    stale.write_text("")
    run_script(built["kit"] / "scripts" / "preinstall", target)
    assert not (target / HOME / "lib").exists() and not (target / HOME / "bin").exists()
    lay_down(built["kit"], target)
    run_script(built["kit"] / "scripts" / "postinstall", target)
    assert flags.read_text() == "--web.listen-address=127.0.0.1:9982\n"
    assert not stale.exists()
    for command in ("check_secure_endpoint", "secure-endpoint-exporter"):
        link = target / "usr" / "local" / "bin" / command
        assert link.resolve() == (target / HOME / "bin" / command).resolve()


RECORDER = """#!/bin/sh
# Stands in for /bin/launchctl: writes each call to a log; "print" answers as launchd would for a loaded
# service when the file "loaded" exists beside it.
here=$(dirname "$0")
echo "$*" >> "$here/calls"
case $1 in
    print) [ -e "$here/loaded" ] ;;
    *) exit 0 ;;
esac
"""


def as_live(script: Path, target: Path, tools: Path) -> Path:
    """The script as it behaves on the running system: target taken as live, launchctl the recorder."""
    text = script.read_text()
    for line, replacement in (("launchctl=/bin/launchctl\n", f"launchctl={tools / 'launchctl'}\n"),
                              ("live=/\n", f"live={target}\n")):
        assert text.count(line) == 1, f"{script.name}: {line!r}"
        text = text.replace(line, replacement)
    copy = tools / script.name
    copy.write_text(text)
    return copy


def calls(tools: Path) -> list[str]:
    log = tools / "calls"
    return log.read_text().splitlines() if log.exists() else []


@pytest.fixture
def live(built: dict[str, Path], tmp_path: Path) -> dict[str, Path]:
    """A target volume treated as the running system, with the recorder in place of launchctl."""
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "launchctl").write_text(RECORDER)
    (tools / "launchctl").chmod(0o755)
    target = tmp_path / "volume"
    target.mkdir()
    scripts = {name: as_live(built["kit"] / "scripts" / name, target, tools) for name in ("preinstall", "postinstall")}
    return {"target": target, "tools": tools, **scripts}


def install(built: dict[str, Path], live: dict[str, Path]) -> str:
    """One installation as Installer runs it: preinstall, the payload, postinstall; returns postinstall's output."""
    run_script(live["preinstall"], live["target"])
    lay_down(built["kit"], live["target"])
    return run_script(live["postinstall"], live["target"]).stdout


PLIST_ON_TARGET = "{target}/Library/LaunchDaemons/" + LABEL + ".plist"


def test_first_install_does_not_start_the_exporter(built: dict[str, Path], live: dict[str, Path]) -> None:
    out = install(built, live)
    # Disabled, so that launchd does not load the plist at the next boot either; nothing else.
    assert calls(live["tools"]) == [f"disable system/{LABEL}"]
    plist = PLIST_ON_TARGET.format(target=live["target"])
    assert f"sudo launchctl enable system/{LABEL} && sudo launchctl bootstrap system {plist}" in out
    assert (live["target"] / HOME / "etc" / "exporter.args").read_text().count("neither TLS nor a password") == 1
    assert not (live["target"] / HOME / ".install-state").exists()


def test_first_install_starts_when_opted_in(built: dict[str, Path], live: dict[str, Path]) -> None:
    etc = live["target"] / HOME / "etc"
    etc.mkdir(parents=True)
    (etc / "start-on-install").touch()  # what an MDM drops, with exporter.args, before the package
    (etc / "exporter.args").write_text("--web.listen-address=127.0.0.1:9982\n")
    install(built, live)
    plist = PLIST_ON_TARGET.format(target=live["target"])
    assert calls(live["tools"]) == [f"enable system/{LABEL}", f"bootstrap system {plist}"]
    assert (etc / "exporter.args").read_text() == "--web.listen-address=127.0.0.1:9982\n"


@pytest.mark.parametrize("loaded", [True, False])
def test_upgrade_restarts_only_what_was_loaded(built: dict[str, Path], live: dict[str, Path], loaded: bool) -> None:
    install(built, live)  # the first installation: disabled, not started
    if loaded:
        (live["tools"] / "loaded").touch()  # the admin started it since
    (live["tools"] / "calls").unlink()
    install(built, live)
    plist = PLIST_ON_TARGET.format(target=live["target"])
    if loaded:
        expected = [f"print system/{LABEL}", f"bootout system/{LABEL}", f"enable system/{LABEL}",
                    f"bootstrap system {plist}"]
    else:
        expected = [f"print system/{LABEL}"]  # neither started nor disabled again: the admin's choice stands
    assert calls(live["tools"]) == expected
    assert not (live["target"] / HOME / ".install-state").exists()


def test_scripts_leave_launchd_alone_on_another_volume(built: dict[str, Path], tmp_path: Path) -> None:
    """The kit's scripts as they are: a target that is not / gets files, and launchctl is never run."""
    target = tmp_path / "volume"
    lay_down(built["kit"], target)
    out = run_script(built["kit"] / "scripts" / "postinstall", target).stdout
    assert "launchctl" not in out and (target / "Library" / "LaunchDaemons" / f"{LABEL}.plist").is_file()
