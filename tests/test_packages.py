"""The .deb, .rpm, wheel and sdist that pkg/build.py makes: their metadata, their files, and the commands
inside them run from the extracted payload (and, on request, from a real install with apt)."""

from __future__ import annotations

import grp
import importlib.util
import os
import pwd
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit

import pytest

from secure_endpoint_monitoring import checks
from secure_endpoint_monitoring.checks import catalog
from secure_endpoint_monitoring.exporter.generate import config
from tests.commands import other_python, unavailable
from tests.hosttree import LinuxTree

# Builds the packages with Debian's dpkg and rpm: runs on the system python3 only, not in the matrix of noxfile.py.
pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parents[1]
VERSION = checks.__version__
NAME = "secure-endpoint-monitoring"
USER = "secure-endpoint-exporter"
LIB = "usr/lib/secure-endpoint-monitoring/lib"
NOT_INSTALLED = ("SECURE ENDPOINT CRITICAL - Connector not installed | "
                 "active=0;;;0;9 critical=1;;;0;15 unknown=0;;;0;15 warning=0;;;0;15")
HEALTHY = "SECURE ENDPOINT OK - no active faults (9 checked), connector connected | "
# What a host's PATH holds: no pyenv shims, so python3 is the distribution's.
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
UNITS = ["secure-endpoint-exporter.service", "secure-endpoint-exporter.socket",
         "secure-endpoint-exporter-textfile.service", "secure-endpoint-exporter-textfile.timer",
         "secure-endpoint-cloud-exporter.service"]
STATE = "/var/lib/secure-endpoint-exporter"
TARGET = f"{STATE}/textfile/secure_endpoint.prom"


class Built:
    def __init__(self, dist: Path) -> None:
        self.dist = dist
        self.deb = next(dist.glob("*.deb"))
        self.rpm = next(dist.glob("*.rpm"))
        self.wheel = next(dist.glob("*.whl"))
        self.sdist = next(dist.glob("secure_endpoint_monitoring-*.tar.gz"))  # not the macOS kit


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """One build for the whole module (it downloads the build tools and the dependency wheels from PyPI)."""
    missing = [tool for tool in ("dpkg-deb", "rpm", "rpm2cpio", "cpio") if shutil.which(tool) is None]
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
    assert fields["Depends"] == "python3 (>= 3.9)" and fields["Pre-Depends"] == "passwd"  # preinst's useradd
    assert built.deb.name == f"{NAME}_{VERSION}_amd64.deb"
    control = subprocess.run(["dpkg-deb", "--ctrl-tarfile", str(built.deb)], capture_output=True, check=True).stdout
    listing = subprocess.run(["tar", "-tvf", "-"], input=control, capture_output=True, check=True).stdout.decode()
    for script in ("preinst", "postinst", "prerm", "postrm"):
        assert re.search(rf"^-rwxr-xr-x (root/root|0/0) .* \./{script}$", listing, re.M), listing


def test_deb_conffiles_and_scripts(built: Built, tmp_path: Path) -> None:
    subprocess.run(["dpkg-deb", "-e", str(built.deb), str(tmp_path / "DEBIAN")], check=True)
    assert (tmp_path / "DEBIAN/conffiles").read_text() == "/etc/default/secure-endpoint-exporter\n"
    postinst = (tmp_path / "DEBIAN/postinst").read_text()
    assert "systemctl enable" not in postinst and "systemctl start" not in postinst  # nothing starts on install
    assert "$LIB/refresh" in postinst and "[ -d /run/systemd/system ]" in postinst
    for script in ("preinst", "postinst", "prerm", "postrm"):
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
              "./usr/bin/secure-endpoint-cloud-exporter": "-rwxr-xr-x",
              "./usr/lib/secure-endpoint-monitoring/textfile-link": "-rwxr-xr-x",
              "./usr/lib/secure-endpoint-monitoring/refresh": "-rwxr-xr-x",
              "./etc/default/secure-endpoint-exporter": "-rw-r--r--",
              "./usr/lib/secure-endpoint-monitoring/systemd/socket-activation.conf": "-rw-r--r--",
              "./usr/lib/nagios/plugins/check_secure_endpoint": "lrwxrwxrwx"}
    expect.update({f"./usr/lib/systemd/system/{unit}": "-rw-r--r--" for unit in UNITS})
    for path, mode in expect.items():
        assert entries[path].startswith(mode), entries.get(path)
    assert entries["./usr/lib/nagios/plugins/check_secure_endpoint"].endswith(
        "-> ../../../bin/check_secure_endpoint")
    assert f"./{LIB}/secure_endpoint_monitoring/checks/launch.py" in entries
    assert f"./{LIB}/bcrypt/__init__.py" in entries
    assert not [p for p in entries if "__pycache__" in p or p.startswith(f"./{LIB}/bin")]
    assert not [p for p in entries if re.search(r"/yaml/_yaml.*\.so$", p)]
    assert not [p for p in entries if p.endswith(("/direct_url.json", "/REQUESTED"))]  # pip's records of the build
    assert not [p for p in entries if p.startswith("./var/")]  # postinst makes the state folders, root's first


def test_rpm_files(built: Built) -> None:
    assert built.rpm.name == f"{NAME}-{VERSION}-1.x86_64.rpm"
    files = rpm_query(built.rpm, "-l").splitlines()
    for path in ("/usr/bin/check_secure_endpoint", "/usr/bin/secure-endpoint-exporter",
                 "/usr/bin/secure-endpoint-cloud-exporter", "/usr/lib64/nagios/plugins/check_secure_endpoint",
                 "/etc/sysconfig/secure-endpoint-exporter",
                 f"{STATE}/textfile", f"{STATE}/state", f"/{LIB}/secure_endpoint_monitoring/checks/launch.py",
                 "/usr/lib64/nagios", "/usr/lib64/nagios/plugins", f"/usr/share/licenses/{NAME}/LICENSE",
                 *(f"/usr/lib/systemd/system/{unit}" for unit in UNITS)):
        assert path in files, path
    assert not [p for p in files if "__pycache__" in p or "/usr/lib/nagios/" in p]
    query = "[%{FILENAMES}|%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILEFLAGS:fflags}\n]"
    modes = dict(line.split("|", 1) for line in rpm_query(built.rpm, "--qf", query).splitlines())
    assert modes["/usr/bin/check_secure_endpoint"] == "-rwxr-xr-x root:root "
    assert modes["/etc/sysconfig/secure-endpoint-exporter"] == "-rw-r--r-- root:root cn"  # %config(noreplace)
    assert modes["/etc/secure-endpoint-monitoring"] == f"drwxr-x--- root:{USER} "
    # The state root is root's: the service user owns only the folders in it, and cannot swap them for links.
    assert modes[STATE] == f"drwxr-xr-x root:{USER} "
    assert modes[f"{STATE}/textfile"] == f"drwxr-xr-x {USER}:{USER} "
    assert modes[f"{STATE}/state"] == f"drwx------ {USER}:{USER} "
    assert [p for p in modes if p.startswith(STATE)] == [STATE, f"{STATE}/state", f"{STATE}/textfile"]
    assert modes[f"/usr/share/licenses/{NAME}/LICENSE"] == "-rw-r--r-- root:root l"  # %license
    assert modes["/usr/lib64/nagios/plugins"] == "drwxr-xr-x root:root "
    assert not [p for p in modes if p.endswith(("/direct_url.json", "/REQUESTED"))]
    # rpm keeps no mode for a symlink (nfpm writes 0); the link's target is what counts.
    assert modes["/usr/lib64/nagios/plugins/check_secure_endpoint"].startswith("l")
    targets = rpm_query(built.rpm, "--qf", "[%{FILENAMES}|%{FILELINKTOS}\n]").splitlines()
    links = dict(line.split("|") for line in targets)
    assert links["/usr/lib64/nagios/plugins/check_secure_endpoint"] == "../../../bin/check_secure_endpoint"
    # Every folder that is only ours is the package's, so that erasing it leaves none behind.
    for folder in ("/usr/lib/secure-endpoint-monitoring", "/usr/lib/secure-endpoint-monitoring/systemd",
                   f"/usr/share/doc/{NAME}", f"/usr/share/licenses/{NAME}"):
        assert modes[folder] == "drwxr-xr-x root:root ", folder


def test_rpm_requires_and_scripts(built: Built) -> None:
    requires = {line.strip() for line in rpm_query(built.rpm, "-R").splitlines()}
    ours = {r for r in requires if not r.startswith("rpmlib(")}
    assert ours == {"python(abi) >= 3.9", "shadow-utils", "/bin/sh"}
    scripts = rpm_query(built.rpm, "--scripts")
    sections = dict(re.findall(r"^(\w+) scriptlet \(using /bin/sh\):\n(.*?)(?=^\w+ scriptlet|\Z)", scripts,
                               re.M | re.S))
    assert set(sections) == {"preinstall", "postinstall", "preuninstall", "postuninstall", "posttrans"}
    pre = sections["preinstall"]
    assert "useradd -r" in pre and "-s /usr/sbin/nologin" in pre and "-d /var/lib/$NAME" in pre
    # An existing group is joined (-g), not made again.
    assert "getent group $NAME >/dev/null || groupadd -r $NAME" in pre and "-g $NAME" in pre
    # rpm's arguments: 0 on erase (stop, disable, unlink), 1 when an upgrade removes the old version.
    assert "remove|deconfigure|0)" in sections["preuninstall"] and "disable" in sections["preuninstall"]
    assert "textfile-link remove" in sections["preuninstall"]
    assert "systemctl enable" not in scripts and "systemctl start" not in scripts
    restart = sections["posttrans"].split("systemctl try-restart", 1)[1].split("\n")[0].split()
    assert [unit.replace("$NAME", USER) for unit in restart] == [
        "secure-endpoint-exporter.socket", "secure-endpoint-exporter.service",
        "secure-endpoint-exporter-textfile.timer", "secure-endpoint-cloud-exporter.service"], restart


@pytest.mark.parametrize(("script", "args", "ran"), [
    ("preinstall", ["install"], ["groupadd", "useradd"]),
    ("preinstall", ["upgrade", "0.1.0"], ["groupadd", "useradd"]),
    ("preinstall", ["1"], ["groupadd", "useradd"]),
    ("preinstall", ["2"], ["groupadd", "useradd"]),
    ("preinstall", ["3"], ["groupadd", "useradd"]),  # rpm counts every installed version
    ("preinstall", ["abort-upgrade", "0.2.0"], []),
    ("preremove", ["remove"], ["systemctl", "textfile-link"]),
    ("preremove", ["0"], ["systemctl", "textfile-link"]),
    ("preremove", ["upgrade", "0.2.0"], []),
    ("preremove", ["1"], []),
    ("postremove", ["purge"], ["rm"]),
    ("postremove", ["0"], []),
    ("postremove", ["1"], []),
])
def test_scripts_take_dpkgs_and_rpms_arguments(tmp_path: Path, script: str, args: list[str], ran: list[str]) -> None:
    """The shared scripts, with every command they may call stubbed (the stub logs its name): what each
    does for each of dpkg's and rpm's arguments. The scripts set their own PATH, so it is swapped here."""
    stubs = tmp_path / "bin"
    stubs.mkdir()
    log = tmp_path / "log"
    for name in ("getent", "groupadd", "useradd", "systemctl", "rm", "rmdir", "find", "textfile-link"):
        (stubs / name).write_text(f'#!/bin/sh\necho {name} >> "{log}"\n[ {name} != getent ]\n')
        (stubs / name).chmod(0o755)
    text = (ROOT / "pkg" / "linux" / "scripts" / script).read_text()
    assert text.count("\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin ") == 1
    text = re.sub(r"\nPATH=\S+", f"\nPATH={stubs}", text).replace("/usr/lib/secure-endpoint-monitoring/", "")
    (tmp_path / script).write_text(text)
    done = subprocess.run(["/bin/sh", str(tmp_path / script), *args], capture_output=True, text=True, check=False,
                          env={"PATH": str(stubs)}, timeout=30)
    assert done.returncode == 0, done.stderr
    called = log.read_text().split() if log.exists() else []
    assert [name for name in dict.fromkeys(called) if name not in ("getent", "find", "rmdir")] == ran, called


def test_two_builds_of_one_commit_are_the_same(built: Built, tmp_path: Path) -> None:
    """Same commit, same Python, another dist folder: the same .deb and .rpm, byte for byte (file times are
    the commit's; no record of the build's paths is left in the private libraries)."""
    done = subprocess.run([sys.executable, str(ROOT / "pkg" / "build.py"), "--dist", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    again = Built(tmp_path)
    assert again.deb.read_bytes() == built.deb.read_bytes()
    assert again.rpm.read_bytes() == built.rpm.read_bytes()


def test_one_set_of_scripts_for_both_packages(built: Built, tmp_path: Path) -> None:
    """The .deb's maintainer scripts and the .rpm's scriptlets are the same files from pkg/linux/."""
    subprocess.run(["dpkg-deb", "-e", str(built.deb), str(tmp_path / "DEBIAN")], check=True)
    scripts = rpm_query(built.rpm, "--scripts")
    for deb_name, rpm_name, source in (("preinst", "preinstall", "scripts/preinstall"),
                                       ("postinst", "postinstall", "scripts/postinstall"),
                                       ("prerm", "preuninstall", "scripts/preremove"),
                                       ("postrm", "postuninstall", "scripts/postremove"),
                                       (None, "posttrans", "refresh")):
        text = (ROOT / "pkg" / "linux" / source).read_text()
        if deb_name is not None:
            assert (tmp_path / "DEBIAN" / deb_name).read_text() == text, deb_name
        assert f"{rpm_name} scriptlet (using /bin/sh):\n{text.rstrip()}" in scripts, rpm_name


def test_packages_install_the_runbook_the_rules_link_to(built: Built, deb_root: Path, rpm_root: Path) -> None:
    """The default runbook base of the alert rules and of the report's doc_url is a file both packages install:
    docs/runbook.md, unchanged."""
    url = urlsplit(catalog.PROJECT_RUNBOOK_URL)
    assert config.RUNBOOK_URL == catalog.PROJECT_RUNBOOK_URL
    assert (url.scheme, url.netloc, url.path) == ("file", "", f"/usr/share/doc/{NAME}/runbook.md")
    for root in (deb_root, rpm_root):
        assert (root / url.path.lstrip("/")).read_bytes() == (ROOT / "docs" / "runbook.md").read_bytes(), root
    query = "[%{FILENAMES}|%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILEFLAGS:fflags}\n]"
    modes = dict(line.split("|", 1) for line in rpm_query(built.rpm, "--qf", query).splitlines())
    assert modes[url.path] == "-rw-r--r-- root:root "  # not %doc: an install without docs keeps it


def test_wheel_and_sdist(built: Built) -> None:
    info = f"secure_endpoint_monitoring-{VERSION}.dist-info"
    with zipfile.ZipFile(built.wheel) as wheel:
        names = wheel.namelist()
        metadata = wheel.read(f"{info}/METADATA").decode()
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
        licences = [n for n in names if n in (f"{info}/LICENSE", f"{info}/licenses/LICENSE")]
        assert len(licences) == 1, names  # setuptools 75 and 84 put it in different places
        assert wheel.read(licences[0]) == (ROOT / "LICENSE").read_bytes()
    assert {"secure_endpoint_monitoring/checks/launch.py", "secure_endpoint_monitoring/exporter/main.py"} <= set(names)
    assert not [n for n in names if n.startswith(("checks/", "exporter/"))]  # nothing another project's collides with
    assert not [n for n in names if n.startswith("tests/")]
    assert f"Version: {VERSION}" in metadata and "Apache-2.0" in metadata
    assert "check_secure_endpoint = secure_endpoint_monitoring.checks.launch:check_secure_endpoint" in entry_points
    listing = subprocess.run(["tar", "-tzf", str(built.sdist)], capture_output=True, text=True, check=True).stdout
    assert f"secure_endpoint_monitoring-{VERSION}/pyproject.toml" in listing.splitlines()


def committed(*folders: str) -> list[str]:
    """The files of HEAD under the folders (what build.py packages), or of this tree when it is no checkout."""
    done = subprocess.run(["git", "-C", str(ROOT), "ls-tree", "-r", "--name-only", "HEAD", "--", *folders],
                          capture_output=True, text=True, check=False)
    if done.returncode == 0 and done.stdout:
        return done.stdout.splitlines()
    return [str(p.relative_to(ROOT)) for folder in folders for p in (ROOT / folder).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and "node_modules" not in p.parts]


def test_sdist_is_complete(built: Built) -> None:
    """The tests travel with every helper and file they read, so they import in the unpacked sdist; the
    units of docs/deployment.md's pip path and the rest of the operator's files are there; no build leftovers."""
    prefix = f"secure_endpoint_monitoring-{VERSION}/"
    listing = subprocess.run(["tar", "-tzf", str(built.sdist)], capture_output=True, text=True, check=True).stdout
    names = {n[len(prefix):] for n in listing.splitlines() if n.startswith(prefix)}
    wanted = set(committed("tests", "deploy", "rules", "grafana", "contrib", "docs", "pkg"))
    assert {"tests/conftest.py", "tests/hosttree.py", "tests/pki.py", "tests/unprivileged.py",
            "deploy/systemd/secure-endpoint-exporter.service"} <= wanted
    assert wanted - names == set()
    assert {"LICENSE", "MANIFEST.in", "README.md", "secure_endpoint_monitoring/checks/__init__.py"} <= names
    assert not [n for n in names if "node_modules" in n or "__pycache__" in n or n.endswith(".pyc")]
    with subprocess.Popen(["tar", "-xzOf", str(built.sdist), f"{prefix}LICENSE"], stdout=subprocess.PIPE) as tar:
        assert tar.stdout is not None
        assert tar.stdout.read() == (ROOT / "LICENSE").read_bytes()
    assert "Apache License" in (ROOT / "LICENSE").read_text() and "Version 2.0" in (ROOT / "LICENSE").read_text()


def load_build(root: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_under_test", root / "pkg" / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_build_takes_the_commit_not_the_working_tree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A clone with an untracked module, a changed tracked file and a stale egg-info: the default source is
    HEAD alone (and says in one line that changes are left out); --worktree takes the changed tracked file
    but still no untracked one."""
    if shutil.which("git") is None:
        unavailable("git missing")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)], check=True)
    (clone / "checks" / "planted.py").write_text("raise SystemExit('untracked module shipped')\n")
    init = clone / "checks" / "__init__.py"
    head = init.read_text()
    init.write_text(head + "# uncommitted\n")
    (clone / "secure_endpoint_monitoring.egg-info").mkdir()
    (clone / "secure_endpoint_monitoring.egg-info" / "SOURCES.txt").write_text("checks/planted.py\n")
    build = load_build(clone)
    for scratch in ("default", "worktree", "clean"):
        (tmp_path / scratch).mkdir()
    src = build.source(tmp_path / "default")
    err = capsys.readouterr().err
    assert (src / "checks" / "__init__.py").read_text() == head
    assert not (src / "checks" / "planted.py").exists() and not list(src.glob("*.egg-info"))
    assert (src / "LICENSE").is_file() and (src / "pkg" / "build.py").is_file()
    assert not (src / ".git").exists()
    assert len(err.splitlines()) == 1 and "2 uncommitted changes are not in the packages" in err, err
    src = build.source(tmp_path / "worktree", worktree=True)
    assert (src / "checks" / "__init__.py").read_text() == head + "# uncommitted\n"
    assert not (src / "checks" / "planted.py").exists() and not list(src.glob("*.egg-info"))
    # A clean clone (CI) builds without a warning.
    init.write_text(head)
    (clone / "checks" / "planted.py").unlink()
    shutil.rmtree(clone / "secure_endpoint_monitoring.egg-info")
    capsys.readouterr()
    build.source(tmp_path / "clean")
    assert capsys.readouterr().err == ""


# -- the state folders and the textfile link, run -----------------------------------------------------


def state_dirs_function(built: Built, tmp_path: Path) -> str:
    """The state_dirs function of the packaged postinst, as text."""
    subprocess.run(["dpkg-deb", "-e", str(built.deb), str(tmp_path / "DEBIAN")], check=True)
    text = (tmp_path / "DEBIAN/postinst").read_text()
    found = re.search(r"^state_dirs\(\) \{\n.*?^\}\n", text, re.M | re.S)
    assert found is not None, text
    return found.group(0)


def test_postinst_text_never_follows_links(built: Built, tmp_path: Path) -> None:
    function = state_dirs_function(built, tmp_path)
    text = (tmp_path / "DEBIAN/postinst").read_text()
    assert "install -d" not in text and "chown -R" not in text and "chmod -R" not in text
    assert "state_dirs $STATE $NAME $NAME" in text
    # The root is root's before anything inside it is looked at; every chown is -h; a link is only removed.
    lines = function.splitlines()
    first_sub = next(i for i, line in enumerate(lines) if "for sub in" in line)
    assert any('chown -h root:"$group" -- "$root"' in line for line in lines[:first_sub])
    assert all("chown -h" in line for line in lines if "chown" in line)
    assert "textfile:0755 state:0700" in function
    assert "mv -- " in function and "chmod 0755" in function


def test_postinst_state_dirs_do_not_follow_a_planted_link(built: Built, tmp_path: Path) -> None:
    """The layout an older version left: the state root the service user's, who swapped textfile/ and state/
    for links to root's folders. postinst takes the root back first, removes the links, follows neither."""
    if os.geteuid() != 0:
        unavailable("chown to another user needs root")
    function = state_dirs_function(built, tmp_path)
    nobody = pwd.getpwnam("nobody")
    group = subprocess.run(["id", "-gn", "nobody"], capture_output=True, text=True, check=True).stdout.strip()
    victim, victim2 = tmp_path / "victim", tmp_path / "victim2"
    victim.mkdir(mode=0o700)
    victim2.mkdir(mode=0o700)
    (victim / "secret").write_text("root's\n")
    root = tmp_path / "state"
    root.mkdir()
    os.chown(root, nobody.pw_uid, nobody.pw_gid)
    (root / "textfile").symlink_to(victim)
    (root / "state").symlink_to(victim2)
    (root / "state.json").write_text("{}\n")
    for _ in range(2):  # every configure runs it: idempotent
        done = subprocess.run(["sh", "-e", "-c", function + f'state_dirs "{root}" nobody {group}'],
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        info = os.lstat(root)
        assert (info.st_uid, info.st_gid, info.st_mode & 0o7777) == (0, nobody.pw_gid, 0o755)
        for name, mode in (("textfile", 0o755), ("state", 0o700)):
            info = os.lstat(root / name)
            assert not (root / name).is_symlink() and (root / name).is_dir(), name
            assert (info.st_uid, info.st_mode & 0o7777) == (nobody.pw_uid, mode), name
        for folder in (victim, victim2):
            info = os.lstat(folder)
            assert (info.st_uid, info.st_gid, info.st_mode & 0o7777) == (0, 0, 0o700), folder
        assert os.lstat(victim / "secret").st_uid == 0
        assert (root / "state" / "state.json").read_text() == "{}\n" and not (root / "state.json").exists()
    # As the service user now: nothing can be added to, or swapped in, the state root.
    done = subprocess.run(["runuser", "-u", "nobody", "--", "ln", "-s", str(victim), str(root / "planted")],
                          capture_output=True, text=True, check=False)
    assert done.returncode != 0 and not os.path.lexists(root / "planted")


class LinkHost:
    """The packaged textfile-link with its absolute paths moved under a scratch folder."""

    def __init__(self, deb_root: Path, base: Path) -> None:
        self.base = base
        text = (deb_root / "usr/lib/secure-endpoint-monitoring/textfile-link").read_text()
        assert text.count("/var/lib/") >= 4 and text.count("/etc/") == 2
        self.script = base / "textfile-link"
        self.script.write_text(text.replace("/var/lib/", f"{base}/var/lib/").replace("/etc/", f"{base}/etc/"))
        self.target = base / TARGET.lstrip("/")
        self.target.parent.mkdir(parents=True)
        self.target.write_text("secure_endpoint_connector_installed 1\n")
        self.debian = base / "var/lib/prometheus/node-exporter"
        self.debian.mkdir(parents=True)
        (base / "etc/default").mkdir(parents=True)
        self.conf = base / "etc/default/secure-endpoint-exporter"

    def run(self, action: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["sh", str(self.script), action], capture_output=True, text=True, timeout=30,
                              cwd=self.base, check=False, env={"PATH": SYSTEM_PATH})

    def links(self) -> list[str]:
        found = []
        for folder, _, files in os.walk(self.base):
            path = Path(folder) / "secure_endpoint.prom"
            if "secure_endpoint.prom" in files and path.is_symlink() and os.readlink(path) == str(self.target):
                found.append(str(path.relative_to(self.base)))
        return sorted(found)


def test_textfile_link_reads_the_config_without_running_it(deb_root: Path, tmp_path: Path) -> None:
    """The config is systemd's, not shell: unquoted values with spaces, $(...), backticks and ; are text."""
    host = LinkHost(deb_root, tmp_path)
    custom = tmp_path / "custom dir"
    custom.mkdir()
    host.conf.write_text(f"ARGS=--no-collector.selinux --log.level=warn\nX=$(touch {tmp_path}/ran);"
                         f"`touch {tmp_path}/ran2`; touch {tmp_path}/ran3\n"
                         f'TEXTFILE_DIRECTORY="{custom}"\n')
    done = host.run("add")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("ran")]
    assert host.links() == ["custom dir/secure_endpoint.prom"]
    for quoted in (f"'{custom}'", str(custom), f'  "{custom}"  '):
        host.conf.write_text(f"# TEXTFILE_DIRECTORY=/elsewhere\nTEXTFILE_DIRECTORY={quoted}\n")
        done = host.run("add")
        assert done.returncode == 0 and host.links() == ["custom dir/secure_endpoint.prom"], (quoted, done.stderr)
    host.conf.write_text("TEXTFILE_DIRECTORY=relative/dir\n")
    done = host.run("add")
    assert "not an absolute path" in done.stderr
    assert host.links() == ["var/lib/prometheus/node-exporter/secure_endpoint.prom"]


def test_textfile_link_follows_a_changed_directory(deb_root: Path, tmp_path: Path) -> None:
    """add removes the link it made before; remove finds it in every place it may be; a foreign file or
    link of that name is never touched."""
    host = LinkHost(deb_root, tmp_path)
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    host.conf.write_text('TEXTFILE_DIRECTORY=""\n')
    assert host.run("add").returncode == 0
    assert host.links() == ["var/lib/prometheus/node-exporter/secure_endpoint.prom"]
    record = tmp_path / "var/lib/secure-endpoint-exporter/textfile-link.made"
    assert record.read_text() == f"{host.debian}/secure_endpoint.prom\n"
    host.conf.write_text(f'TEXTFILE_DIRECTORY="{first}"\n')
    assert host.run("add").returncode == 0
    assert host.links() == ["first/secure_endpoint.prom"]
    host.conf.write_text(f"TEXTFILE_DIRECTORY='{second}'\n")
    assert host.run("add").returncode == 0
    assert host.links() == ["second/secure_endpoint.prom"]
    # The setting changes again, and then the package goes: remove finds the link through the record.
    host.conf.write_text(f'TEXTFILE_DIRECTORY="{tmp_path}/third"\n')
    foreign = first / "secure_endpoint.prom"
    foreign.symlink_to(tmp_path / "someone-elses.prom")
    own_file = host.debian / "secure_endpoint.prom"
    own_file.write_text("# an old cron job's\n")
    done = host.run("remove")
    assert done.returncode == 0, done.stderr
    assert host.links() == [] and not record.exists()
    assert os.readlink(foreign) == str(tmp_path / "someone-elses.prom") and own_file.is_file()
    # Without a textfile directory add says so, and the old link goes all the same.
    host.conf.write_text(f'TEXTFILE_DIRECTORY="{second}"\n')
    assert host.run("add").returncode == 0 and host.links() == ["second/secure_endpoint.prom"]
    host.conf.write_text(f'TEXTFILE_DIRECTORY="{tmp_path}/missing"\n')
    done = host.run("add")
    assert "no link made" in done.stderr and host.links() == []


# -- the payload, run ---------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", ["usr/bin/check_secure_endpoint", "usr/lib/nagios/plugins/check_secure_endpoint"])
def test_deb_plugin_runs(deb_root: Path, hosts: dict[str, Path], entry: str) -> None:
    done = command(deb_root / entry, "--path.rootfs", str(hosts["not-installed"]), "--ampcli.run-from-rootfs",
                   "--state-file", "")
    assert done.stdout.splitlines()[0] == NOT_INSTALLED and done.returncode == 2, done.stdout + done.stderr
    done = command(deb_root / entry, "--path.rootfs", str(hosts["healthy"]), "--ampcli.run-from-rootfs",
                   "--state-file", "")
    assert done.stdout.startswith(HEALTHY) and done.returncode == 0, done.stdout + done.stderr


def test_deb_exporter_once(deb_root: Path, hosts: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "secure_endpoint.prom"
    done = command(deb_root / "usr/bin/secure-endpoint-exporter", "--once", "--path.rootfs", str(hosts["healthy"]),
                   "--ampcli.run-from-rootfs", "--output", str(out), "--state-file", str(tmp_path / "state.json"))
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


def test_rpm_payload_on_python_3_9(rpm_root: Path, hosts: dict[str, Path], tmp_path: Path) -> None:
    """RHEL 9's python3 is 3.9; the rpm payload's launchers run the plugin and --once on it."""
    path = pythons(tmp_path, python3=other_python("3.9"))
    done = command(rpm_root / "usr/lib64/nagios/plugins/check_secure_endpoint", "--path.rootfs",
                   str(hosts["not-installed"]), "--ampcli.run-from-rootfs", "--state-file", "", path_env=path)
    assert done.stdout.splitlines()[:1] == [NOT_INSTALLED] and done.returncode == 2, done.stdout + done.stderr
    done = command(rpm_root / "usr/bin/secure-endpoint-exporter", "--once", "--path.rootfs", str(hosts["healthy"]),
                   "--ampcli.run-from-rootfs", path_env=path)
    assert done.returncode == 0 and "secure_endpoint_connector_installed 1" in done.stdout, done.stderr
    done = command(rpm_root / "usr/bin/secure-endpoint-cloud-exporter", "--cloud.api-url", "http://x", path_env=path)
    assert done.returncode == 2 and "https only" in done.stderr, done.stderr  # its flags parsed, on 3.9


def test_old_python3_hands_over_to_python3_9(rpm_root: Path, hosts: dict[str, Path], tmp_path: Path) -> None:
    """RHEL 8: python3 is 3.6 and the python39 package adds python3.9, which the launcher then uses."""
    path = pythons(tmp_path, python3=other_python("3.6"), **{"python3.9": other_python("3.9")})
    done = command(rpm_root / "usr/bin/check_secure_endpoint", "--path.rootfs", str(hosts["not-installed"]),
                   "--ampcli.run-from-rootfs", "--state-file", "", path_env=path)
    assert done.stdout.splitlines()[:1] == [NOT_INSTALLED] and done.returncode == 2, done.stdout + done.stderr
    done = command(rpm_root / "usr/bin/secure-endpoint-exporter", "--version", path_env=path)
    assert "python version:   3.9." in done.stdout, done.stdout + done.stderr


def test_no_suitable_python_is_unknown(rpm_root: Path, tmp_path: Path) -> None:
    only_old = pythons(tmp_path, python3=other_python("3.6"))
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


def test_no_python_from_the_current_directory(rpm_root: Path, tmp_path: Path) -> None:
    """An empty or relative PATH entry means the current directory; a root cron job or Nagios may run the
    launcher anywhere. Neither search (python3 first, then the fallback from a python3 older than 3.9)
    runs an interpreter found through such an entry."""
    cwd = tmp_path / "cwd"
    (cwd / "rel").mkdir(parents=True)
    marker = tmp_path / "ran"
    for folder in (cwd, cwd / "rel"):
        for name in ("python3", "python3.9", "python3.13"):
            fake = folder / name
            fake.write_text(f"#!/bin/sh\necho {folder.name}/{name} >> {marker}\n")
            fake.chmod(0o755)
    old = pythons(tmp_path, python3=other_python("3.6"))
    for path in (f":rel:{SYSTEM_PATH}", f"{old}::rel:.", f"{old}:", ""):
        done = subprocess.run([str(rpm_root / "usr/bin/check_secure_endpoint"), "--version"], capture_output=True,
                              text=True, timeout=60, cwd=cwd, check=False, env={"PATH": path})
        assert not marker.exists(), (path, marker.read_text())
        if path.startswith(old):  # only 3.6 in an absolute folder: the fallback finds nothing
            assert done.returncode == 3 and "needs Python 3.9 or later, found 3.6." in done.stdout, done.stdout
        else:  # the distribution's python3 after the skipped entries (an empty PATH: /usr/bin:/bin)
            assert done.returncode == 3 and done.stdout.startswith("check_secure_endpoint "), done.stderr
    # The same fake in an absolute folder is found, so the search itself still works.
    done = subprocess.run([str(rpm_root / "usr/bin/check_secure_endpoint"), "--version"], capture_output=True,
                          text=True, timeout=60, cwd=cwd, check=False, env={"PATH": f"{old}:{cwd / 'rel'}"})
    assert marker.read_text() == "rel/python3.13\n", done.stdout + done.stderr


def test_isolated_from_the_callers_environment(rpm_root: Path, tmp_path: Path) -> None:
    """PYTHONPATH and the user's site-packages do not reach the command: a planted package of our name is not
    run."""
    planted = tmp_path / "planted" / "secure_endpoint_monitoring"
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
    done = subprocess.run([other_python(version), "-I", "-S", "-c", code, str(rpm_root / LIB)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(str(rpm_root / LIB))


# -- a real install -----------------------------------------------------------------------------------


@pytest.fixture
def installable(built: Built) -> Iterator[Built]:
    if os.geteuid() != 0:
        unavailable("installing the .deb needs root")
    if os.environ.get("CI") != "true" and os.environ.get("SEM_INSTALL_TESTS") != "1":
        pytest.skip("installs into this machine: only with CI=true or SEM_INSTALL_TESTS=1")
    if shutil.which("apt-get") is None:
        unavailable("no apt-get: not a Debian-family machine")
    if subprocess.run(["dpkg", "-s", NAME], capture_output=True, check=False).returncode == 0:
        pytest.fail(f"{NAME} is installed on this machine already; the test would remove it")
    had_account = subprocess.run(["getent", "passwd", USER], capture_output=True, check=False).returncode == 0
    had_group = subprocess.run(["getent", "group", USER], capture_output=True, check=False).returncode == 0
    try:
        yield built
    finally:
        subprocess.run(["dpkg", "--purge", NAME], capture_output=True, check=False)
        # The package leaves its account behind on purpose; the test leaves none it made.
        if not had_account:
            subprocess.run(["userdel", USER], capture_output=True, check=False)
        if not had_group:
            subprocess.run(["groupdel", USER], capture_output=True, check=False)


def apt(*args: str) -> None:
    done = subprocess.run(["apt-get", "-y", "-q", "--no-install-recommends", *args], capture_output=True, text=True,
                          timeout=300, check=False, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    assert done.returncode == 0, done.stdout + done.stderr


def test_install_upgrade_and_purge(installable: Built, shared: Path, tmp_path: Path) -> None:
    host = LinuxTree(shared / "host").healthy().root
    textfiles = Path("/var/lib/prometheus/node-exporter")
    made_textfiles = not textfiles.exists()
    textfiles.mkdir(parents=True, exist_ok=True)
    custom = tmp_path / "custom-textfiles"
    custom.mkdir()
    try:
        # A group of that name but no user (a half-removed earlier install): preinst must join it.
        if subprocess.run(["getent", "group", USER], capture_output=True, check=False).returncode != 0:
            subprocess.run(["groupadd", "--system", USER], check=True)
        apt("install", str(installable.deb))
        account = pwd.getpwnam(USER)
        assert account.pw_dir == "/var/lib/secure-endpoint-exporter" and account.pw_shell == "/usr/sbin/nologin"
        assert grp.getgrgid(account.pw_gid).gr_name == USER
        expected_state(account)
        info = os.stat("/etc/secure-endpoint-monitoring")
        assert (info.st_uid, info.st_gid, info.st_mode & 0o7777) == (0, account.pw_gid, 0o750)
        link = textfiles / "secure_endpoint.prom"
        assert os.readlink(link) == "/var/lib/secure-endpoint-exporter/textfile/secure_endpoint.prom"
        # compiled by refresh
        assert list(Path(f"/{LIB}/secure_endpoint_monitoring/checks").glob("__pycache__/launch.cpython-*.pyc"))
        for plugin in ("/usr/bin/check_secure_endpoint", "/usr/lib/nagios/plugins/check_secure_endpoint"):
            done = command(Path(plugin), "--path.rootfs", str(host), "--ampcli.run-from-rootfs", "--state-file", "")
            assert done.stdout.startswith(HEALTHY) and done.returncode == 0, done.stdout + done.stderr
        run_as_the_service_user(host, link)
        victim = attack_the_old_layout(account, tmp_path)

        # An upgrade keeps the operator's config; then a unit enabled by the operator.
        conf = Path("/etc/default/secure-endpoint-exporter")
        conf.write_text(conf.read_text().replace('ARGS=""', 'ARGS="--log.level=warn"', 1))
        newer = repack(installable.deb, f"{VERSION}+1", tmp_path)
        apt("install", str(newer))
        assert 'ARGS="--log.level=warn"' in conf.read_text()
        info = os.lstat(victim)
        assert (info.st_uid, info.st_gid, info.st_mode & 0o7777) == (0, 0, 0o700)
        expected_state(account)
        # A changed TEXTFILE_DIRECTORY: the link moves, none stays behind in the old place.
        conf.write_text(conf.read_text().replace('TEXTFILE_DIRECTORY=""', f'TEXTFILE_DIRECTORY="{custom}"', 1))
        subprocess.run(["/usr/lib/secure-endpoint-monitoring/textfile-link", "add"], capture_output=True, check=True)
        assert not os.path.lexists(link) and os.readlink(custom / "secure_endpoint.prom") == TARGET
        assert subprocess.run(["dpkg-query", "-W", "-f=${Version}", NAME], capture_output=True, text=True,
                              check=True).stdout == f"{VERSION}+1"
        subprocess.run(["systemctl", "enable", "secure-endpoint-exporter-textfile.timer"], capture_output=True,
                       check=False)
        assert list(Path("/etc/systemd/system").glob("*.wants/secure-endpoint-exporter-textfile.timer"))

        apt("purge", NAME)
        assert not list(Path("/etc/systemd/system").glob("*.wants/secure-endpoint-exporter*"))
        assert not os.path.lexists(link) and not os.path.lexists(custom / "secure_endpoint.prom")
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


def run_as_the_service_user(host: Path, link: Path) -> None:
    """The timer's command, as its user: it may write its own folders, node_exporter's link finds the file,
    and nothing can be added to the state root."""
    done = subprocess.run(["runuser", "-u", USER, "--", "/usr/bin/secure-endpoint-exporter", "--once",
                           "--path.rootfs", str(host), "--ampcli.run-from-rootfs", "--output", os.readlink(link),
                           "--state-file", f"{STATE}/state/state.json"],
                          capture_output=True, text=True, timeout=60, check=False, env={"PATH": SYSTEM_PATH})
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert "secure_endpoint_connector_installed 1" in link.read_text()
    assert Path(f"{STATE}/state/state.json").is_file()
    done = subprocess.run(["runuser", "-u", USER, "--", "ln", "-s", "/etc", f"{STATE}/planted"],
                          capture_output=True, text=True, check=False)
    assert done.returncode != 0 and not os.path.lexists(f"{STATE}/planted")


def attack_the_old_layout(account: pwd.struct_passwd, tmp_path: Path) -> Path:
    """The layout before the state root was root's, attacked: the root the user's, textfile/ swapped for a
    link to a root-owned folder. The next postinst must take the root back and follow no link."""
    victim = tmp_path / "victim"
    victim.mkdir(mode=0o700)
    os.chown(STATE, account.pw_uid, account.pw_gid)
    shutil.rmtree(f"{STATE}/textfile")
    os.symlink(victim, f"{STATE}/textfile")
    return victim


def expected_state(account: pwd.struct_passwd) -> None:
    """The state root root's (the group may read), the two folders in it the service user's."""
    for folder, uid, mode in ((STATE, 0, 0o755), (f"{STATE}/textfile", account.pw_uid, 0o755),
                              (f"{STATE}/state", account.pw_uid, 0o700)):
        info = os.lstat(folder)
        assert not os.path.islink(folder)
        assert (info.st_uid, info.st_gid, info.st_mode & 0o7777) == (uid, account.pw_gid, mode), folder


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
