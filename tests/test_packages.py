"""The .deb, .rpm, wheel and sdist that pkg/build.py makes: their metadata, their files, and the commands
inside them run from the extracted payload (and, on request, from a real install with apt)."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import checks
from tests.hosttree import LinuxTree

# Builds the packages with Debian's dpkg and rpm: runs on the system python3 only, not in the matrix of noxfile.py.
pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parents[1]
VERSION = checks.__version__
NAME = "secure-endpoint-monitoring"
USER = "secure-endpoint-exporter"
LIB = "usr/lib/secure-endpoint-monitoring/lib"
NOT_INSTALLED = ("SECURE ENDPOINT CRITICAL - Connector not installed | "
                 "active=0;;;0;9 critical=1;;;0;14 unknown=0;;;0;14 warning=0;;;0;14")
HEALTHY = "SECURE ENDPOINT OK - no active faults (9 checked), connector connected | "
PYENV = Path("/root/.pyenv/versions")
# What a host's PATH holds: no pyenv shims, so python3 is the distribution's.
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
UNITS = ["secure-endpoint-exporter.service", "secure-endpoint-exporter.socket",
         "secure-endpoint-exporter-textfile.service", "secure-endpoint-exporter-textfile.timer"]


def unavailable(reason: str) -> None:
    """Skip, except in CI, where a package that cannot be built is a failure."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and the packages cannot be built: {reason}")
    pytest.skip(reason)


class Built:
    def __init__(self, dist: Path) -> None:
        self.dist = dist
        self.deb = next(dist.glob("*.deb"))
        self.rpm = next(dist.glob("*.rpm"))
        self.wheel = next(dist.glob("*.whl"))
        self.sdist = next(dist.glob("*.tar.gz"))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """One build for the whole module (it downloads the build tools and the dependency wheels from PyPI)."""
    missing = [tool for tool in ("dpkg-deb", "rpmbuild", "rpm", "rpm2cpio", "cpio") if shutil.which(tool) is None]
    if missing:
        unavailable(f"{', '.join(missing)} missing (Debian: apt-get install rpm cpio)")
    dist = tmp_path_factory.mktemp("dist")
    done = subprocess.run([sys.executable, str(ROOT / "pkg" / "build.py"), "--dist", str(dist)],
                          capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        unavailable(f"pkg/build.py failed (no network to PyPI?): {done.stderr[-2000:]}")
    return Built(dist)


@pytest.fixture(scope="module")
def deb_root(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("deb-payload")
    subprocess.run(["dpkg-deb", "-x", str(built.deb), str(root)], check=True)
    return root


@pytest.fixture(scope="module")
def rpm_root(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rpm-payload")
    subprocess.run(f"rpm2cpio '{built.rpm}' | cpio -idm --quiet", shell=True, cwd=root, check=True)
    return root


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("hosts")
    return {"healthy": LinuxTree(base / "healthy").healthy().root,
            "not-installed": LinuxTree(base / "not-installed", distro="debian").root}


def command(path: Path, *args: str, path_env: str = SYSTEM_PATH) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(path), *args], capture_output=True, text=True, timeout=60, check=False,
                          env={"PATH": path_env, "LANG": "C.UTF-8"})


def rpm_query(package: Path, *args: str) -> str:
    return subprocess.run(["rpm", "-qp", *args, str(package)], capture_output=True, text=True, check=True).stdout


# -- metadata -----------------------------------------------------------------------------------------


def test_deb_control(built: Built) -> None:
    info = subprocess.run(["dpkg-deb", "--info", str(built.deb)], capture_output=True, text=True, check=True).stdout
    fields = dict(re.findall(r"^ (\w[\w-]*): (.*)$", info, re.M))
    assert fields["Package"] == NAME and fields["Version"] == VERSION and fields["Architecture"] == "amd64"
    assert fields["Depends"] == "python3 (>= 3.9), adduser"
    assert built.deb.name == f"{NAME}_{VERSION}_amd64.deb"
    control = subprocess.run(["dpkg-deb", "--ctrl-tarfile", str(built.deb)], capture_output=True, check=True).stdout
    listing = subprocess.run(["tar", "-tvf", "-"], input=control, capture_output=True, check=True).stdout.decode()
    for script in ("postinst", "prerm", "postrm"):
        assert re.search(rf"^-rwxr-xr-x root/root .* \./{script}$", listing, re.M), listing


def test_deb_conffiles_and_scripts(built: Built, tmp_path: Path) -> None:
    subprocess.run(["dpkg-deb", "-e", str(built.deb), str(tmp_path / "DEBIAN")], check=True)
    assert (tmp_path / "DEBIAN/conffiles").read_text() == "/etc/default/secure-endpoint-exporter\n"
    postinst = (tmp_path / "DEBIAN/postinst").read_text()
    assert "systemctl enable" not in postinst and "systemctl start" not in postinst  # nothing starts on install
    assert "try-restart" in postinst and "[ -d /run/systemd/system ]" in postinst
    for script in ("postinst", "prerm", "postrm"):
        done = subprocess.run(["sh", "-n", str(tmp_path / "DEBIAN" / script)], capture_output=True, check=False)
        assert done.returncode == 0, done.stderr
    prerm = (tmp_path / "DEBIAN/prerm").read_text()
    assert all(unit in prerm.replace("$NAME", "secure-endpoint-exporter") for unit in UNITS)


def test_deb_files_owners_and_modes(built: Built) -> None:
    listing = subprocess.run(["dpkg-deb", "--contents", str(built.deb)], capture_output=True, text=True,
                             check=True).stdout
    entries = {line.split()[-1] if " -> " not in line else line.split()[-3]: line for line in listing.splitlines()}
    assert all(" root/root " in line for line in entries.values())
    expect = {"./usr/bin/check_secure_endpoint": "-rwxr-xr-x", "./usr/bin/secure-endpoint-exporter": "-rwxr-xr-x",
              "./usr/lib/secure-endpoint-monitoring/textfile-link": "-rwxr-xr-x",
              "./etc/default/secure-endpoint-exporter": "-rw-r--r--",
              "./usr/lib/secure-endpoint-monitoring/systemd/socket-activation.conf": "-rw-r--r--",
              "./usr/lib/nagios/plugins/check_secure_endpoint": "lrwxrwxrwx"}
    expect.update({f"./usr/lib/systemd/system/{unit}": "-rw-r--r--" for unit in UNITS})
    for path, mode in expect.items():
        assert entries[path].startswith(mode), entries.get(path)
    assert entries["./usr/lib/nagios/plugins/check_secure_endpoint"].endswith(
        "-> ../../../bin/check_secure_endpoint")
    assert f"./{LIB}/checks/launch.py" in entries and f"./{LIB}/bcrypt/__init__.py" in entries
    assert not [p for p in entries if "__pycache__" in p or p.startswith(f"./{LIB}/bin")]
    assert not [p for p in entries if re.search(r"/yaml/_yaml.*\.so$", p)]


def test_rpm_files(built: Built) -> None:
    assert built.rpm.name == f"{NAME}-{VERSION}-1.x86_64.rpm"
    files = rpm_query(built.rpm, "-l").splitlines()
    for path in ("/usr/bin/check_secure_endpoint", "/usr/bin/secure-endpoint-exporter",
                 "/usr/lib64/nagios/plugins/check_secure_endpoint", "/etc/sysconfig/secure-endpoint-exporter",
                 "/var/lib/secure-endpoint-exporter/textfile", f"/{LIB}/checks/launch.py",
                 *(f"/usr/lib/systemd/system/{unit}" for unit in UNITS)):
        assert path in files, path
    assert not [p for p in files if "__pycache__" in p or "/usr/lib/nagios/" in p]
    query = "[%{FILENAMES}|%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILEFLAGS:fflags}\n]"
    modes = dict(line.split("|", 1) for line in rpm_query(built.rpm, "--qf", query).splitlines())
    assert modes["/usr/bin/check_secure_endpoint"] == "-rwxr-xr-x root:root "
    assert modes["/etc/sysconfig/secure-endpoint-exporter"] == "-rw-r--r-- root:root cn"  # %config(noreplace)
    assert modes["/etc/secure-endpoint-monitoring"] == f"drwxr-x--- root:{USER} "
    assert modes["/var/lib/secure-endpoint-exporter"] == f"drwxr-xr-x {USER}:{USER} "
    assert modes["/var/lib/secure-endpoint-exporter/textfile"] == f"drwxr-xr-x {USER}:{USER} "
    assert modes["/usr/lib64/nagios/plugins/check_secure_endpoint"].startswith("lrwxrwxrwx root:root")


def test_rpm_requires_and_scripts(built: Built) -> None:
    requires = {line.strip() for line in rpm_query(built.rpm, "-R").splitlines()}
    ours = {r for r in requires if not r.startswith("rpmlib(")}
    assert ours == {"python(abi) >= 3.9", "shadow-utils", "/bin/sh"}
    scripts = rpm_query(built.rpm, "--scripts")
    for section in ("preinstall", "postinstall", "preuninstall", "postuninstall", "posttrans"):
        assert f"{section} scriptlet" in scripts, section
    pre = scripts.split("preinstall scriptlet")[1].split("scriptlet")[0]
    assert "useradd -r" in pre and "-s /sbin/nologin" in pre and "-d /var/lib/secure-endpoint-exporter" in pre
    preun = scripts.split("preuninstall scriptlet")[1].split("scriptlet")[0]
    assert 'if [ "$1" -eq 0 ]' in preun and "disable" in preun and "textfile-link remove" in preun
    assert "systemctl enable" not in scripts and "systemctl start" not in scripts


def test_wheel_and_sdist(built: Built) -> None:
    with zipfile.ZipFile(built.wheel) as wheel:
        names = wheel.namelist()
        metadata = wheel.read(f"secure_endpoint_monitoring-{VERSION}.dist-info/METADATA").decode()
        entry_points = wheel.read(f"secure_endpoint_monitoring-{VERSION}.dist-info/entry_points.txt").decode()
    assert "checks/launch.py" in names and "exporter/main.py" in names
    assert not [n for n in names if n.startswith("tests/")]
    assert f"Version: {VERSION}" in metadata
    assert "check_secure_endpoint = checks.launch:check_secure_endpoint" in entry_points
    listing = subprocess.run(["tar", "-tzf", str(built.sdist)], capture_output=True, text=True, check=True).stdout
    assert f"secure_endpoint_monitoring-{VERSION}/pyproject.toml" in listing.splitlines()


# -- the payload, run ---------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", ["usr/bin/check_secure_endpoint", "usr/lib/nagios/plugins/check_secure_endpoint"])
def test_deb_plugin_runs(deb_root: Path, hosts: dict[str, Path], entry: str) -> None:
    done = command(deb_root / entry, "--path.rootfs", str(hosts["not-installed"]), "--state-file", "")
    assert done.stdout.splitlines()[0] == NOT_INSTALLED and done.returncode == 2, done.stdout + done.stderr
    done = command(deb_root / entry, "--path.rootfs", str(hosts["healthy"]), "--state-file", "")
    assert done.stdout.startswith(HEALTHY) and done.returncode == 0, done.stdout + done.stderr


def test_deb_exporter_once(deb_root: Path, hosts: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "secure_endpoint.prom"
    done = command(deb_root / "usr/bin/secure-endpoint-exporter", "--once", "--path.rootfs", str(hosts["healthy"]),
                   "--output", str(out), "--state-file", str(tmp_path / "state.json"))
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert "secure_endpoint_connector_installed 1" in out.read_text()


def pythons(tmp_path: Path, **links: str) -> str:
    """A PATH folder holding only the given interpreters: name -> real path."""
    folder = tmp_path / "python-bin"
    folder.mkdir()
    for name, target in links.items():
        (folder / name).symlink_to(target)
    (folder / "readlink").symlink_to(shutil.which("readlink") or "/usr/bin/readlink")
    return str(folder)


def pyenv(version: str) -> str:
    found = sorted(PYENV.glob(f"{version}.*/bin/python{version}"))
    if not found:
        unavailable(f"no CPython {version} under {PYENV} (pyenv)")
    return str(found[-1])


def test_rpm_payload_on_python_3_9(rpm_root: Path, hosts: dict[str, Path], tmp_path: Path) -> None:
    """RHEL 9's python3 is 3.9; the rpm payload's launchers run the plugin and --once on it."""
    path = pythons(tmp_path, python3=pyenv("3.9"))
    done = command(rpm_root / "usr/lib64/nagios/plugins/check_secure_endpoint", "--path.rootfs",
                   str(hosts["not-installed"]), "--state-file", "", path_env=path)
    assert done.stdout.splitlines()[:1] == [NOT_INSTALLED] and done.returncode == 2, done.stdout + done.stderr
    done = command(rpm_root / "usr/bin/secure-endpoint-exporter", "--once", "--path.rootfs", str(hosts["healthy"]),
                   path_env=path)
    assert done.returncode == 0 and "secure_endpoint_connector_installed 1" in done.stdout, done.stderr


def test_old_python3_hands_over_to_python3_9(rpm_root: Path, hosts: dict[str, Path], tmp_path: Path) -> None:
    """RHEL 8: python3 is 3.6 and the python39 package adds python3.9, which the launcher then uses."""
    path = pythons(tmp_path, python3=pyenv("3.6"), **{"python3.9": pyenv("3.9")})
    done = command(rpm_root / "usr/bin/check_secure_endpoint", "--path.rootfs", str(hosts["not-installed"]),
                   "--state-file", "", path_env=path)
    assert done.stdout.splitlines()[:1] == [NOT_INSTALLED] and done.returncode == 2, done.stdout + done.stderr
    done = command(rpm_root / "usr/bin/secure-endpoint-exporter", "--version", path_env=path)
    assert "python version:   3.9." in done.stdout, done.stdout + done.stderr


def test_no_suitable_python_is_unknown(rpm_root: Path, tmp_path: Path) -> None:
    only_old = pythons(tmp_path, python3=pyenv("3.6"))
    done = command(rpm_root / "usr/bin/check_secure_endpoint", path_env=only_old)
    assert done.returncode == 3
    assert re.fullmatch(r"SECURE ENDPOINT UNKNOWN - check_secure_endpoint needs Python 3\.9 or later, found "
                        r"3\.6\.\d+ \(RHEL 8: dnf install python39\)\n", done.stdout), done.stdout
    done = command(rpm_root / "usr/bin/check_secure_endpoint", path_env=str(tmp_path / "empty"))
    assert done.returncode == 3 and done.stdout == (
        "SECURE ENDPOINT UNKNOWN - check_secure_endpoint needs Python 3.9 or later: none found "
        "(RHEL 8: dnf install python39)\n")
    done = command(rpm_root / "usr/bin/secure-endpoint-exporter", "--once", path_env=str(tmp_path / "empty"))
    assert done.returncode == 3 and done.stdout == "" and "needs Python 3.9 or later" in done.stderr


def test_isolated_from_the_callers_environment(rpm_root: Path, tmp_path: Path) -> None:
    """PYTHONPATH and the user's site-packages do not reach the command: a planted 'checks' is not run."""
    planted = tmp_path / "planted" / "checks"
    planted.mkdir(parents=True)
    (planted / "__init__.py").write_text("raise SystemExit('planted module imported')\n")
    done = subprocess.run([str(rpm_root / "usr/bin/check_secure_endpoint"), "--version"], capture_output=True,
                          text=True, timeout=60, check=False,
                          env={"PATH": SYSTEM_PATH, "PYTHONPATH": str(planted.parent), "HOME": str(tmp_path)})
    assert done.returncode == 3 and done.stdout.startswith("check_secure_endpoint "), done.stdout + done.stderr


@pytest.mark.parametrize("version", ["3.9", "3.10", "3.11", "3.12", "3.13"])
def test_private_libraries_load_on_every_python(rpm_root: Path, version: str) -> None:
    """The compiled dependencies (abi3 psutil and bcrypt) load, and yaml parses with its pure-Python loader."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import bcrypt, psutil, yaml, prometheus_client, "
            "nagiosplugin; assert not yaml.__with_libyaml__; assert yaml.safe_load('a: [1, 2]') == {'a': [1, 2]}; "
            "assert bcrypt.checkpw(b'x', bcrypt.hashpw(b'x', bcrypt.gensalt(4))); assert psutil.Process().pid; "
            "print(psutil.__file__)")
    done = subprocess.run([pyenv(version), "-I", "-S", "-c", code, str(rpm_root / LIB)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(str(rpm_root / LIB))


# -- a real install -----------------------------------------------------------------------------------


@pytest.fixture
def installable(built: Built) -> Iterator[Built]:
    if os.geteuid() != 0:
        pytest.skip("installing the .deb needs root")
    if os.environ.get("CI") != "true" and os.environ.get("SEM_INSTALL_TESTS") != "1":
        pytest.skip("installs into this machine: only with CI=true or SEM_INSTALL_TESTS=1")
    if shutil.which("apt-get") is None:
        pytest.skip("no apt-get: not a Debian-family machine")
    if subprocess.run(["dpkg", "-s", NAME], capture_output=True, check=False).returncode == 0:
        pytest.fail(f"{NAME} is installed on this machine already; the test would remove it")
    try:
        yield built
    finally:
        subprocess.run(["dpkg", "--purge", NAME], capture_output=True, check=False)


def apt(*args: str) -> None:
    done = subprocess.run(["apt-get", "-y", "-q", "--no-install-recommends", *args], capture_output=True, text=True,
                          timeout=300, check=False, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    assert done.returncode == 0, done.stdout + done.stderr


def test_install_upgrade_and_purge(installable: Built, shared: Path, tmp_path: Path) -> None:
    host = LinuxTree(shared / "host").healthy().root
    textfiles = Path("/var/lib/prometheus/node-exporter")
    made_textfiles = not textfiles.exists()
    textfiles.mkdir(parents=True, exist_ok=True)
    try:
        apt("install", str(installable.deb))
        account = pwd.getpwnam(USER)
        assert account.pw_dir == "/var/lib/secure-endpoint-exporter" and account.pw_shell == "/usr/sbin/nologin"
        for folder in ("/var/lib/secure-endpoint-exporter", "/var/lib/secure-endpoint-exporter/textfile"):
            info = os.stat(folder)
            assert (info.st_uid, info.st_mode & 0o7777) == (account.pw_uid, 0o755), folder
        info = os.stat("/etc/secure-endpoint-monitoring")
        assert (info.st_uid, info.st_gid, info.st_mode & 0o7777) == (0, account.pw_gid, 0o750)
        link = textfiles / "secure_endpoint.prom"
        assert os.readlink(link) == "/var/lib/secure-endpoint-exporter/textfile/secure_endpoint.prom"
        assert list(Path(f"/{LIB}/checks").glob("__pycache__/launch.cpython-*.pyc"))  # compiled by postinst
        for plugin in ("/usr/bin/check_secure_endpoint", "/usr/lib/nagios/plugins/check_secure_endpoint"):
            done = command(Path(plugin), "--path.rootfs", str(host), "--state-file", "")
            assert done.stdout.startswith(HEALTHY) and done.returncode == 0, done.stdout + done.stderr
        # The timer's command, as its user: it may write its own folder, and node_exporter's link finds the file.
        done = subprocess.run(["runuser", "-u", USER, "--", "/usr/bin/secure-endpoint-exporter", "--once",
                               "--path.rootfs", str(host), "--output", os.readlink(link),
                               "--state-file", "/var/lib/secure-endpoint-exporter/state.json"],
                              capture_output=True, text=True, timeout=60, check=False, env={"PATH": SYSTEM_PATH})
        assert done.returncode == 0 and done.stderr == "", done.stderr
        assert "secure_endpoint_connector_installed 1" in link.read_text()

        # An upgrade keeps the operator's config; then a unit enabled by the operator.
        conf = Path("/etc/default/secure-endpoint-exporter")
        conf.write_text(conf.read_text().replace('ARGS=""', 'ARGS="--log.level=warn"', 1))
        newer = repack(installable.deb, f"{VERSION}+1", tmp_path)
        apt("install", str(newer))
        assert 'ARGS="--log.level=warn"' in conf.read_text()
        assert subprocess.run(["dpkg-query", "-W", "-f=${Version}", NAME], capture_output=True, text=True,
                              check=True).stdout == f"{VERSION}+1"
        subprocess.run(["systemctl", "enable", "secure-endpoint-exporter-textfile.timer"], capture_output=True,
                       check=False)
        assert list(Path("/etc/systemd/system").glob("*.wants/secure-endpoint-exporter-textfile.timer"))

        apt("purge", NAME)
        assert not list(Path("/etc/systemd/system").glob("*.wants/secure-endpoint-exporter*"))
        assert not os.path.lexists(link)
        for gone in ("/var/lib/secure-endpoint-exporter", "/usr/lib/secure-endpoint-monitoring", str(conf),
                     "/etc/secure-endpoint-monitoring", "/usr/bin/check_secure_endpoint",
                     "/usr/lib/nagios/plugins/check_secure_endpoint", "/usr/lib/systemd/system/" + UNITS[0]):
            assert not os.path.lexists(gone), gone
        owned = subprocess.run(["find", "/etc", "/var/lib", "/usr/lib", "-xdev", "-user", USER], capture_output=True,
                               text=True, check=False).stdout
        assert owned == ""
        pwd.getpwnam(USER)  # the account stays, as Debian packages usually leave it
    finally:
        if made_textfiles:
            shutil.rmtree(textfiles, ignore_errors=True)


def repack(deb: Path, version: str, tmp_path: Path) -> Path:
    """The same package under a higher version, to exercise the upgrade path of the scripts."""
    tree = tmp_path / "repack"
    subprocess.run(["dpkg-deb", "-R", str(deb), str(tree)], check=True)
    control = tree / "DEBIAN/control"
    control.write_text(re.sub(r"^Version: .*$", f"Version: {version}", control.read_text(), flags=re.M))
    out = tmp_path / f"{NAME}_{version}_amd64.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(tree), str(out)], check=True,
                   capture_output=True)
    return out
