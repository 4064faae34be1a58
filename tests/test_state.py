"""The state file as hostile input: links, special files, other users' files, bad content, races.

The plugin runs as root and the file steers verdicts, so every test checks two things: the file
(or what it points at) is left alone, and the verdict is the one the host deserves. Most
refusals run the plugin end to end, as Nagios does; the many content variants run in-process.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import multiprocessing
import os
import pwd
import shutil
import socket
import stat
import subprocess
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secure_endpoint_monitoring.checks import state
from secure_endpoint_monitoring.checks.collectors import Settings
from secure_endpoint_monitoring.checks.evaluate import evaluate
from secure_endpoint_monitoring.checks.host import Host
from secure_endpoint_monitoring.checks.report import Report, State
from secure_endpoint_monitoring.checks.state import StateFile, open_state, sanitize
from tests import unprivileged
from tests.commands import run, script
from tests.conftest import result, texts
from tests.hosttree import BOOT_ID, LinuxTree, cvd_bytes
from tests.test_plugin import AGE

# The definitions' age grows while a test runs: the lines are compared with it masked (test_plugin.AGE).
PERF_CLEAR = "active=0;;;0;9 critical=0;;;0;15 definitions_age=AGEs;604800;;0 unknown=0;;;0;15 warning=0;;;0;15"
HEALTHY = f"SECURE ENDPOINT OK - no active faults (9 checked), connector connected | {PERF_CLEAR}"
KEPT = "state is kept for this run only"
NOBODY = pwd.getpwnam("nobody").pw_uid
REPO = Path(__file__).resolve().parents[1]
SECRET = b"root:$6$salt$hash:19700:0:99999:7:::\n"


class Ran(NamedTuple):
    code: int
    lines: list[str]
    seconds: float


def plugin(tree: LinuxTree, state_file: str | Path, *args: str, umask: int | None = None) -> Ran:
    """The plugin as root, as Nagios runs it."""
    command = [script("check_secure_endpoint"), "--path.rootfs", str(tree.root), "--ampcli.run-from-rootfs",
               "--state-file", str(state_file),
               *args]
    return _run(command, umask=umask)


def _run(command: list[str], umask: int | None = None, env: dict[str, str] | None = None) -> Ran:
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False, env=env,
                          preexec_fn=None if umask is None else (lambda: os.umask(umask)))
    seconds = time.monotonic() - started
    assert done.stderr == ""  # the warning belongs in the output Nagios reads
    lines = done.stdout.splitlines()
    if lines:
        lines[0] = AGE.sub("AGE", lines[0])
    return Ran(done.returncode, lines, seconds)


def setpriv() -> str:
    found = shutil.which("setpriv")
    if found is None:
        raise AssertionError("setpriv (util-linux) is missing")
    return found


def plugin_as_nobody(tree: LinuxTree, *args: str, env: dict[str, str] | None = None) -> Ran:
    environment = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", **(env or {})}
    return _run([*unprivileged.command("check_secure_endpoint"), "--path.rootfs", str(tree.root),
                 "--ampcli.run-from-rootfs", *args],
                env=environment)


def refusal(lines: list[str], path: str | Path, reason: str) -> None:
    """After the first line, exactly one: the state file's path and why it was not used."""
    assert lines[1:] == [f"state file {path} cannot be used ({reason}); {KEPT}"], lines


def planted_starts(tree: LinuxTree, pids: tuple[int, ...] = (40001, 40002, 40003)) -> bytes:
    """Three scan service starts in the last few minutes: enough for fault 6 if believed."""
    starts = [tree.start_entry(pid, 60 * (n + 1)) for n, pid in enumerate(pids)]
    return json.dumps({str(tree.root): {"scan_starts": starts}}).encode()


def evaluate_with(tree: LinuxTree, path: str | Path) -> Report:
    with open_state(str(path), str(tree.root)) as store:
        return evaluate(Host(str(tree.root), run_programs=True), Settings(ampcli_timeout=2.0), store)


class Seen(NamedTuple):
    healthy: bool  # every check clear (or not applicable), exit 0 and the healthy first line
    state_lines: list[str]  # what was said about the state file
    seconds: float


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def attempt(tree: LinuxTree, path: str | Path, end_to_end: bool) -> Seen:
    """One run against ``path``: the plugin as Nagios runs it, or (faster, for the many variants) an
    in-process evaluation through the same store, its warnings caught where the plugin's logchan hangs."""
    if end_to_end:
        ran = plugin(tree, path)
        said = [line for line in ran.lines[1:] if line.startswith("state file ")]
        assert len(ran.lines) == 1 + len(said), ran.lines  # nothing else: no traceback, no fault lines
        return Seen((ran.code, ran.lines[0]) == (0, HEALTHY), said, ran.seconds)
    collect = Collect()
    logger = logging.getLogger("secure_endpoint_monitoring.checks")
    logger.addHandler(collect)
    started = time.monotonic()
    try:
        report = evaluate_with(tree, path)
    finally:
        logger.removeHandler(collect)
    healthy = all(r.state in (State.CLEAR, State.NOT_APPLICABLE) for r in report.all_results())
    return Seen(healthy, collect.lines, time.monotonic() - started)


def refused(path: str | Path, reason: str) -> list[str]:
    return [f"state file {path} cannot be used ({reason}); {KEPT}"]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Where the state file goes: root's own folder, like /var/lib/secure-endpoint-monitoring."""
    path = tmp_path / "state"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> LinuxTree:
    """One healthy host for the in-process tests that only read it."""
    return LinuxTree(tmp_path_factory.mktemp("host") / "root").healthy()


def no_leftovers(where: Path) -> None:
    assert [p.name for p in where.iterdir() if p.name.endswith(".tmp")] == []


# -- links ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "end_to_end"), [
    ("planted state", True), ("shadow-like", True), ("dangling", False), ("directory", False), ("/etc/passwd", False),
])
def test_symlink_is_refused_and_its_target_left_alone(host: LinuxTree, tmp_path: Path, folder: Path,
                                                      kind: str, end_to_end: bool) -> None:
    (tmp_path / "etc").mkdir()
    targets = {
        # Valid state that would raise fault 6 if the link were followed.
        "planted state": (tmp_path / "elsewhere.json", planted_starts(host)),
        "shadow-like": (tmp_path / "etc" / "shadow", SECRET),
        "dangling": (tmp_path / "etc" / "created-by-the-plugin", None),
        "directory": (tmp_path / "etc", None),
        "/etc/passwd": (Path("/etc/passwd"), None),
    }
    target, content = targets[kind]
    if content is not None:
        target.write_bytes(content)
        target.chmod(0o640)
    before = target.read_bytes() if target.is_file() else None
    link = folder / "check.state"
    link.symlink_to(target)

    seen = attempt(host, link, end_to_end)
    assert seen.healthy
    assert seen.state_lines == refused(link, "it is a symbolic link")
    assert link.is_symlink() and os.readlink(link) == str(target)
    if content is not None:
        assert target.read_bytes() == content
        assert stat.S_IMODE(target.stat().st_mode) == 0o640
    elif before is not None:
        assert target.read_bytes() == before
    elif kind == "dangling":
        assert not target.exists()
    else:
        assert list(target.iterdir()) == []
    no_leftovers(folder)


def _lstat_says_regular(monkeypatch: pytest.MonkeyPatch, regular: Path) -> None:
    """The look before the open sees a plain file: what a swap right after that look would give."""
    monkeypatch.setattr(state, "lstat", lambda name, dir_fd: os.lstat(regular))


def test_a_symlink_swapped_in_after_the_look_is_still_refused(host: LinuxTree, tmp_path: Path, folder: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """O_NOFOLLOW, not the look before, is what refuses the link: root's own file behind it is not read."""
    target = tmp_path / "root-owned.json"
    planted = planted_starts(host)
    target.write_bytes(planted)
    target.chmod(0o600)
    link = folder / "check.state"
    link.symlink_to(target)
    _lstat_says_regular(monkeypatch, target)
    seen = attempt(host, link, end_to_end=False)
    assert seen.healthy and seen.state_lines == refused(link, "it is a symbolic link")
    assert target.read_bytes() == planted and link.is_symlink()


def test_a_fifo_swapped_in_after_the_look_does_not_hang(host: LinuxTree, tmp_path: Path, folder: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer for ever."""
    path = folder / "check.state"
    os.mkfifo(path, 0o600)
    regular = tmp_path / "regular"
    regular.write_text("{}")
    _lstat_says_regular(monkeypatch, regular)
    seen: list[Seen] = []
    worker = threading.Thread(target=lambda: seen.append(attempt(host, path, end_to_end=False)), daemon=True)
    worker.start()
    worker.join(timeout=5)
    if worker.is_alive():
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))  # let the stuck open go before failing
        worker.join(timeout=5)
        raise AssertionError("opening the FIFO blocked")
    assert seen[0].healthy and seen[0].state_lines == refused(path, "it is a FIFO")


def test_the_read_is_bounded(folder: Path, monkeypatch: pytest.MonkeyPatch,
                             caplog: pytest.LogCaptureFixture) -> None:
    path = folder / "check.state"
    path.write_bytes(b" " * (8 << 20) + b"{}")
    path.chmod(0o600)
    read: list[int] = []
    real_read = os.read

    def counting_read(fd: int, size: int) -> bytes:
        data = real_read(fd, size)
        read.append(len(data))
        return data

    monkeypatch.setattr(os, "read", counting_read)
    opened = StateFile.open(str(path))
    monkeypatch.undo()
    opened.close()
    assert opened.data == {}
    assert sum(read) == state.MAX_BYTES + 1
    assert caplog.messages == [f"state file {path} is larger than {state.MAX_BYTES} bytes and has been reset"]


def test_hard_link_to_another_file_is_refused(host: LinuxTree, tmp_path: Path, folder: Path) -> None:
    """A second name for another file: what it holds was never written as state, and is not replaced."""
    other = tmp_path / "shadow"
    other.write_bytes(SECRET)
    other.chmod(0o600)
    link = folder / "check.state"
    os.link(other, link)
    seen = attempt(host, link, end_to_end=True)
    assert seen.healthy and seen.state_lines == refused(link, "it has 2 hard links")
    assert other.read_bytes() == SECRET and os.path.samefile(other, link)


# -- not a regular file -----------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "end_to_end"), [
    ("fifo", True), ("/dev/null", True), ("fifo", False), ("socket", False), ("directory", False),
    ("/dev/null", False), ("/dev/zero", False),
])
def test_special_files_are_refused_quickly(host: LinuxTree, folder: Path, kind: str, end_to_end: bool) -> None:
    path = folder / "check.state"
    reasons = {"fifo": "it is a FIFO", "socket": "it is a socket", "directory": "it is a directory",
               "/dev/null": "it is a character device", "/dev/zero": "it is a character device"}
    listener = None
    if kind == "fifo":
        os.mkfifo(path, 0o600)
    elif kind == "socket":
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(str(path))
    elif kind == "directory":
        path.mkdir()
        (path / "inside").write_text("kept")
    else:
        path = Path(kind)
    try:
        seen = attempt(host, path, end_to_end)
    finally:
        if listener is not None:
            listener.close()
    assert seen.seconds < 5, seen.seconds  # a FIFO opened for reading would block until a writer came
    assert seen.healthy and seen.state_lines == refused(path, reasons[kind])
    mode = os.lstat(path).st_mode
    checks = {"fifo": stat.S_ISFIFO, "socket": stat.S_ISSOCK, "directory": stat.S_ISDIR}
    assert checks.get(kind, stat.S_ISCHR)(mode)
    if kind == "directory":
        assert [p.name for p in path.iterdir()] == ["inside"] and (path / "inside").read_text() == "kept"
    no_leftovers(folder)


# -- other users' files and folders ------------------------------------------------------------


def test_planted_scan_starts_count_only_from_a_trusted_file(host: LinuxTree, folder: Path) -> None:
    """The control: root's own file with those starts does give fault 6, so the refusal below is real."""
    path = folder / "check.state"
    path.write_bytes(planted_starts(host))
    path.chmod(0o600)
    assert result(evaluate_with(host, path), "6").state is State.ACTIVE


def test_file_of_another_user_is_refused_as_root(host: LinuxTree, folder: Path) -> None:
    path = folder / "check.state"
    planted = planted_starts(host)
    path.write_bytes(planted)
    path.chmod(0o600)
    os.chown(path, NOBODY, NOBODY)
    seen = attempt(host, path, end_to_end=True)
    assert seen.healthy  # no fault 6 on another user's word
    assert seen.state_lines == refused(path, f"it is owned by uid {NOBODY}, not by this user (uid 0)")
    assert path.read_bytes() == planted and path.stat().st_uid == NOBODY


@pytest.mark.parametrize(("mode", "end_to_end"), [
    (0o666, True), (0o620, False), (0o602, False), (0o660, False), (0o606, False), (0o622, False), (0o4666, False),
])
def test_file_writable_by_others_is_refused(host: LinuxTree, folder: Path, mode: int, end_to_end: bool) -> None:
    path = folder / "check.state"
    planted = planted_starts(host)
    path.write_bytes(planted)
    path.chmod(mode)
    seen = attempt(host, path, end_to_end)
    assert seen.healthy
    assert seen.state_lines == refused(path, f"it is writable by group or others (mode {mode:04o})")
    assert path.read_bytes() == planted and stat.S_IMODE(path.stat().st_mode) == mode


@pytest.mark.parametrize(("setup", "reason", "end_to_end"), [
    ("parent 0777", "its folder {parent} is writable by others and not sticky (mode 0777)", True),
    ("parent 0773", "its folder {parent} is writable by others and not sticky (mode 0773)", False),
    ("grandparent 0777", "its folder {grandparent} is writable by others and not sticky (mode 0777)", False),
    ("parent of nobody", "its folder {parent} is owned by uid {nobody}, neither root nor this user (uid 0)", False),
    ("grandparent of nobody", "its folder {grandparent} is owned by uid {nobody}, neither root nor this user (uid 0)",
     False),
    ("parent 1777", None, False),
    ("parent 0775", None, False),
])
def test_folders_another_user_could_swap_the_file_in(host: LinuxTree, tmp_path: Path, setup: str,
                                                      reason: str | None, end_to_end: bool) -> None:
    """Even root's own file is not believed in a folder where another user could have put it."""
    grandparent = tmp_path / "outer"
    parent = grandparent / "inner"
    parent.mkdir(parents=True)
    which, what = setup.split(" ", 1)
    changed = parent if which == "parent" else grandparent
    if what == "of nobody":
        os.chown(changed, NOBODY, NOBODY)
    else:
        changed.chmod(int(what, 8))
    path = parent / "check.state"
    if reason is None:  # sticky (like /tmp) or only group-writable: the file is made, and made 0600
        seen = attempt(host, path, end_to_end)
        assert seen.healthy and seen.state_lines == []
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.stat().st_uid == 0
        return
    planted = planted_starts(host)
    path.write_bytes(planted)
    path.chmod(0o600)
    seen = attempt(host, path, end_to_end)
    assert seen.healthy
    assert seen.state_lines == refused(path, reason.format(parent=parent, grandparent=grandparent, nobody=NOBODY))
    assert path.read_bytes() == planted
    assert [p.name for p in parent.iterdir()] == ["check.state"]


@pytest.mark.system
def test_nobody_refuses_a_file_of_root(shared: Path) -> None:
    tree = LinuxTree(shared / "host").healthy()
    path = shared / "check.state"
    planted = planted_starts(tree)
    path.write_bytes(planted)
    path.chmod(0o644)
    ran = plugin_as_nobody(tree, "--state-file", str(path))
    assert (ran.code, ran.lines[0]) == (0, HEALTHY)
    refusal(ran.lines, path, f"it is owned by uid 0, not by this user (uid {NOBODY})")
    assert path.read_bytes() == planted


def made_not(home: str, reason: str) -> str:
    """The info line of a run whose default state file has no home folder to be made in."""
    path = os.path.join(home, ".local/state/secure-endpoint-monitoring/check_secure_endpoint.state")
    return f"state file {path} cannot be made ({reason}); {KEPT}"


@pytest.mark.system
@pytest.mark.parametrize(("home", "reason"), [
    ("/nonexistent", "home folder /nonexistent does not exist"),  # nobody's home in /etc/passwd
    ("/", "home folder / is not writable by this user"),  # what a systemd DynamicUser= service gets
    ("/etc/passwd", "home folder /etc/passwd is not a folder"),
], ids=["missing", "not writable", "a file"])
def test_nobody_without_a_home_keeps_state_in_memory_and_says_so_at_v(shared: Path, home: str, reason: str) -> None:
    """Issue 21: no line about the state file in every run, only one in -v."""
    tree = LinuxTree(shared / "host").healthy()
    env = {"HOME": home}
    ran = plugin_as_nobody(tree, env=env)
    assert (ran.code, ran.lines) == (0, [HEALTHY])
    verbose = plugin_as_nobody(tree, "-v", env=env)
    assert (verbose.code, verbose.lines[0]) == (0, HEALTHY)
    assert [line for line in verbose.lines if "state" in line] == [made_not(home, reason)]
    assert verbose.lines[-2:] == [made_not(home, reason), "processes found through the cgroup of cisco-amp.service"]


@pytest.mark.system
def test_nobody_without_a_home_says_so_once_at_vv_and_in_dutch(shared: Path) -> None:
    tree = LinuxTree(shared / "host").healthy()
    ran = plugin_as_nobody(tree, "-vv", "--lang", "nl")
    assert ran.code == 0 and ran.lines[0].startswith("SECURE ENDPOINT OK - geen actieve fouten")
    path = "/nonexistent/.local/state/secure-endpoint-monitoring/check_secure_endpoint.state"
    assert [line for line in ran.lines if "statusbestand" in line] == [
        f"statusbestand {path} kan niet worden gemaakt (thuismap /nonexistent bestaat niet); de status geldt "
        "alleen voor deze controle"]


@pytest.mark.system
def test_nobody_without_a_home_still_warns_about_a_state_file_it_was_given(shared: Path) -> None:
    tree = LinuxTree(shared / "host").healthy()
    path = shared / "check.state"  # root's folder: nobody cannot make the file there
    ran = plugin_as_nobody(tree, "--state-file", str(path))
    assert (ran.code, ran.lines[0]) == (0, HEALTHY)
    refusal(ran.lines, path, "Permission denied")
    assert not path.exists()


@pytest.mark.system
def test_nobody_default_location_is_private(shared: Path) -> None:
    tree = LinuxTree(shared / "host").healthy()
    xdg = shared / "xdg"
    xdg.mkdir()
    os.chown(xdg, NOBODY, NOBODY)
    ran = plugin_as_nobody(tree, env={"XDG_STATE_HOME": str(xdg)})
    assert (ran.code, ran.lines) == (0, [HEALTHY])
    folder = xdg / "secure-endpoint-monitoring"
    path = folder / "check_secure_endpoint.state"
    assert (folder.stat().st_uid, stat.S_IMODE(folder.stat().st_mode)) == (NOBODY, 0o700)
    assert (path.stat().st_uid, stat.S_IMODE(path.stat().st_mode)) == (NOBODY, 0o600)
    assert str(tree.root) in json.loads(path.read_text())


@pytest.mark.system
def test_nobody_cannot_save_in_a_folder_of_root(shared: Path) -> None:
    """nobody's own file in root's folder: read, but a save (a new file beside it) fails, and says so."""
    tree = LinuxTree(shared / "host").healthy()
    path = shared / "check.state"
    path.write_text("{}")
    path.chmod(0o600)
    os.chown(path, NOBODY, NOBODY)
    ran = plugin_as_nobody(tree, "--state-file", str(path))
    assert (ran.code, ran.lines[0]) == (0, HEALTHY)
    assert ran.lines[1:] == [f"state file {path} cannot be saved (Permission denied); this run's state is lost"]
    assert path.read_text() == "{}"


# -- content ----------------------------------------------------------------------------------


ROOT = "{root}"
MALFORMED: list[tuple[str, bytes, bool]] = [
    # (what, content, damaged: the warning about a reset is expected)
    ("not json", b"{not json", True),
    ("not utf-8", b'{"\xff\xfe": 1}', True),
    ("nul bytes", b"\x00" * 64, True),
    ("nested too deep", b"[" * 100_000 + b"]" * 100_000, True),
    ("truncated", b'{"/": {"scan_starts": [["b", 1, 2]', True),
    ("a list at the top", b"[]", False),
    ("a list of pairs at the top", b'[["/", {}]]', False),
    ("a string at the top", b'"state"', False),
    ("null at the top", b"null", False),
    ("a number at the top", b"42", False),
    ("an empty file", b"", False),
    ("whitespace", b"  \n ", False),
    ("a section that is a list", b'{"{root}": []}', False),
    ("a section that is a string", b'{"{root}": "x"}', False),
    ("scan_starts a mapping", b'{"{root}": {"scan_starts": {"1": 2}}}', False),
    ("scan_starts a string", b'{"{root}": {"scan_starts": "1,2"}}', False),
    ("scan_starts items of every wrong shape",
     b'{"{root}": {"scan_starts": [[1], [1, 2], ["b", 1], ["b", "1", 2], [true, 1, 2], ["b", 1, "2"], '
     b'["b", 1, null], ["b", -5, 2], ["b", 0, 2], ["b", 99999999999, 2], ["b", 1.5, 2], ["b", 1, -3], '
     b'["b", 1, 2.0], ["b", 1, 1e400], ["", 1, 2], [null, 1, 2], ["' + b"x" * 65 + b'", 1, 2], '
     b'["b", true, 2], {"pid": 1}, 7]}}', False),
    ("cvd a list", b'{"{root}": {"cvd": [["a", ""]]}}', False),
    ("cvd values of wrong types", b'{"{root}": {"cvd": {"a": 1, "b": null, "c": [""], "d": {}}}}', False),
    ("unknown keys", b'{"{root}": {"other": 1, "scan_starts": [], "cvd": {}}, "x": 1}', False),
    ("NaN and Infinity", b'{"{root}": {"scan_starts": [["b", 1, NaN], ["b", 2, Infinity]]}}', False),
    ("processes a list", b'{"{root}": {"processes": [[1, 2, "x", 3.0]]}}', False),
    ("processes rows of every wrong shape",
     b'{"{root}": {"processes": {"boot": 5.0, "known": {"1": [1, "x"], "x": [1, "x", 1.0], "2": ["1", "x", 1.0], '
     b'"3": [1, 2, 1.0], "4": [-1, "x", 1.0], "5": [1, "x", NaN], "6": [true, "x", 1.0], "7": {"inode": 1}}}}}',
     False),
    ("processes without a boot time", b'{"{root}": {"processes": {"known": {}}}}', False),
]


END_TO_END = {"nested too deep", "a list at the top", "scan_starts items of every wrong shape"}


@pytest.mark.parametrize(("content", "damaged", "end_to_end"),
                         [(c, d, w in END_TO_END) for w, c, d in MALFORMED], ids=[w for w, _, _ in MALFORMED])
def test_malformed_content_never_crashes(host: LinuxTree, folder: Path, content: bytes, damaged: bool,
                                         end_to_end: bool) -> None:
    path = folder / "check.state"
    path.write_bytes(content.replace(ROOT.encode(), str(host.root).encode()))
    path.chmod(0o600)
    seen = attempt(host, path, end_to_end)
    assert seen.healthy
    assert seen.state_lines == ([f"state file {path} was damaged and has been reset"] if damaged else [])
    saved = json.loads(path.read_bytes())  # what is written back is valid and fits the schema
    assert saved == sanitize(saved)
    section = saved[str(host.root)]
    assert section["scan_starts"] == [] and not section.get("cvd")
    assert set(section) <= {"scan_starts", "cvd", "processes"}


def test_good_entries_survive_beside_bad_ones(host: LinuxTree, folder: Path) -> None:
    raw = {str(host.root): {"scan_starts": [host.start_entry(41, 100), "junk", host.start_entry(42, 50),
                                            [BOOT_ID, 43, "x"], host.start_entry(44, 10)],
                               "cvd": {"k|1|2|3|4": "", "bad": 5}}}
    path = folder / "check.state"
    path.write_text(json.dumps(raw))
    path.chmod(0o600)
    report = evaluate_with(host, path)
    assert result(report, "6").state is State.ACTIVE  # 41, 42 and 44 were kept: three starts
    saved = json.loads(path.read_text())[str(host.root)]
    assert sorted(pid for _, pid, _ in saved["scan_starts"]) == [41, 42, 44]
    assert saved["cvd"] == {"k|1|2|3|4": ""}


def test_oversized_file_is_reset(host: LinuxTree, folder: Path) -> None:
    path = folder / "check.state"
    path.write_text(json.dumps({str(host.root): {"cvd": {"k": "x" * state.MAX_BYTES}}}))
    path.chmod(0o600)
    ran = plugin(host, path)
    assert (ran.code, ran.lines[0]) == (0, HEALTHY)
    assert ran.lines[1:] == [f"state file {path} is larger than {state.MAX_BYTES} bytes and has been reset"]
    assert path.stat().st_size < 1000


def test_counts_are_bounded(host: LinuxTree, folder: Path) -> None:
    raw: dict[str, Any] = {f"/host{n}": {"scan_starts": [[BOOT_ID, n + 1, 5]]} for n in range(100)}
    raw[str(host.root)] = {"scan_starts": [host.start_entry(pid, 1) for pid in range(1, 20_000)],
                              "cvd": {f"k{n}": "" for n in range(257)}}
    path = folder / "check.state"
    path.write_text(json.dumps(raw))
    path.chmod(0o600)
    assert path.stat().st_size < state.MAX_BYTES
    evaluate_with(host, path)
    saved = json.loads(path.read_text())
    assert len(saved) <= state.MAX_ROOTS and str(host.root) in saved
    assert len(saved[str(host.root)]["scan_starts"]) <= state.MAX_SCAN_STARTS
    assert len(saved[str(host.root)].get("cvd", {})) <= state.MAX_CVD_ENTRIES


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(["/", "/h", ""]), st.dictionaries(
    st.sampled_from(["scan_starts", "cvd", "x"]), JSON, max_size=3), max_size=3) | JSON)
def test_sanitize_takes_anything(raw: object) -> None:
    clean = sanitize(raw)
    assert sanitize(clean) == clean  # what passes once passes again: a saved file is always accepted
    for root, section in clean.items():
        assert isinstance(root, str) and root and set(section) <= {"scan_starts", "cvd"}
        for boot, pid, started in section.get("scan_starts", []):
            assert type(boot) is str and type(pid) is int and pid > 0 and type(started) is int
        assert all(type(k) is str and type(v) is str for k, v in section.get("cvd", {}).items())
    assert len(state.encode(clean)) <= state.MAX_BYTES


def test_encode_never_writes_what_a_read_would_refuse() -> None:
    huge = {f"/root{n}": {"cvd": {f"{'p' * 4000}{m}": "" for m in range(200)}} for n in range(6)}
    assert len(json.dumps(huge)) > state.MAX_BYTES
    assert len(state.encode(huge)) <= state.MAX_BYTES


# -- CVD verdicts -------------------------------------------------------------------------------


def _corrupt_cvd_host(tree: LinuxTree) -> str:
    """main.cvd corrupt and the scan service down, so fault 7 names the file. Returns its cache key."""
    rel = tree.definitions("main.cvd", corrupt=True)
    tree.stop("ampscansvc")
    st_ = (tree.root / rel).stat()
    return f"/{rel}|{st_.st_size}|{st_.st_mtime_ns}|{st_.st_ino}|{st_.st_ctime_ns}"


CORRUPT = "definition file /opt/cisco/amp/var/clamav/main.cvd fails its integrity check"


@pytest.mark.parametrize("owner", ["root", "nobody"])
def test_planted_intact_verdict_counts_only_from_a_trusted_file(healthy: LinuxTree, folder: Path,
                                                                owner: str) -> None:
    key = _corrupt_cvd_host(healthy)
    path = folder / "check.state"
    path.write_text(json.dumps({str(healthy.root): {"cvd": {key: ""}}}))
    path.chmod(0o600)
    if owner == "nobody":
        os.chown(path, NOBODY, NOBODY)
    ran = plugin(healthy, path)
    assert ran.code == 2
    fault7 = next(line for line in ran.lines if "(fault 7)" in line and line.startswith("CRITICAL"))
    if owner == "root":
        # Root's own cache is believed: this shows the planted key is the one the check looks up.
        assert CORRUPT not in fault7
    else:
        assert CORRUPT in fault7
        assert [line for line in ran.lines if line.startswith("state file ")] == refused(
            path, f"it is owned by uid {NOBODY}, not by this user (uid 0)")


@pytest.mark.parametrize("how", ["replaced", "rewritten in place"])
def test_a_swapped_cvd_with_the_old_size_and_mtime_is_hashed_again(healthy: LinuxTree, folder: Path,
                                                                   how: str) -> None:
    healthy.stop("ampscansvc")
    cvd = healthy.root / healthy.definitions("main.cvd")
    path = folder / "check.state"
    assert CORRUPT not in texts(result(evaluate_with(healthy, path), "7"))
    assert "" in json.loads(path.read_text())[str(healthy.root)]["cvd"].values()  # the intact verdict is cached

    old = cvd.stat()
    bad = cvd_bytes(corrupt=True)
    assert len(bad) == old.st_size
    if how == "replaced":
        spare = cvd.with_name("main.new")
        spare.write_bytes(bad)
        spare.replace(cvd)
    else:
        cvd.write_bytes(bad)
    os.utime(cvd, ns=(old.st_atime_ns, old.st_mtime_ns))
    assert (cvd.stat().st_size, cvd.stat().st_mtime_ns) == (old.st_size, old.st_mtime_ns)
    assert hashlib.md5(cvd.read_bytes()[512:]).hexdigest() not in cvd.read_bytes()[:512].decode()
    assert CORRUPT in texts(result(evaluate_with(healthy, path), "7"))


# -- locking and concurrency ----------------------------------------------------------------------


def test_concurrent_plugin_runs(host: LinuxTree, folder: Path) -> None:
    path = folder / "check.state"
    command = [script("check_secure_endpoint"), "--path.rootfs", str(host.root), "--ampcli.run-from-rootfs",
               "--state-file", str(path)]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    for process in runs:
        out, err = process.communicate(timeout=30)
        assert (process.returncode, err) == (0, "")
        assert AGE.sub("AGE", out.splitlines()[0]) == HEALTHY
        assert "Traceback" not in out
    assert str(host.root) in json.loads(path.read_text())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    no_leftovers(folder)


def _add_start(path: str, pid: int) -> None:
    # A wait long enough for any load (four test workers beside CI): this test is about lost updates;
    # giving up after LOCK_WAIT, which loses one by design, is tested below.
    with open_state(path, "/host", lock_wait=60) as store:
        store.scan_starts([(pid, 100)], BOOT_ID, 200, 600)
        time.sleep(0.01)  # long enough for the others to queue on the lock


def test_no_update_is_lost_between_concurrent_runs(folder: Path) -> None:
    path = str(folder / "check.state")
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_add_start, args=(path, pid)) for pid in range(100, 110)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    saved = json.loads(Path(path).read_text())
    assert sorted(pid for _, pid, _ in saved["/host"]["scan_starts"]) == list(range(100, 110))


def test_a_lock_held_too_long_leaves_the_file_alone(host: LinuxTree, folder: Path) -> None:
    path = folder / "check.state"
    planted = planted_starts(host, (40001, 40002))
    path.write_bytes(planted)
    path.chmod(0o600)
    with open(path, "rb") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        ran = plugin(host, path)
    assert 0.9 < ran.seconds < 5, ran.seconds
    # Two remembered starts plus the running scanner would make three, but that scanner started 30 min ago.
    assert (ran.code, ran.lines[0]) == (0, HEALTHY)
    assert ran.lines[1:] == [f"state file {path} is locked by another run; this run's state is kept in memory only"]
    assert path.read_bytes() == planted


def test_a_locked_file_is_still_read(folder: Path) -> None:
    path = folder / "check.state"
    path.write_text('{"/host": {"scan_starts": [["b", 7, 1]]}}')
    path.chmod(0o600)
    with open(path, "rb") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        opened = StateFile.open(str(path), lock_wait=0.05)
    try:
        assert not opened.locked
        assert opened.data == {"/host": {"scan_starts": [["b", 7, 1]]}}
        opened.save({"/host": {}})  # not ours to write
    finally:
        opened.close()
    assert path.read_text() == '{"/host": {"scan_starts": [["b", 7, 1]]}}'


# -- creation -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("umask", "end_to_end"), [(0o000, True), (0o022, False), (0o077, False), (0o277, False)],
                         ids=["0o0", "0o22", "0o77", "0o277"])
def test_new_file_is_0600_whatever_the_umask(host: LinuxTree, folder: Path, umask: int, end_to_end: bool) -> None:
    path = folder / "check.state"
    if end_to_end:
        ran = plugin(host, path, umask=umask)
        assert (ran.code, ran.lines) == (0, [HEALTHY])
    else:
        old = os.umask(umask)
        try:
            seen = attempt(host, path, end_to_end=False)
        finally:
            os.umask(old)
        assert seen.healthy and seen.state_lines == []
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert str(host.root) in json.loads(path.read_text())
    no_leftovers(folder)


@pytest.mark.parametrize("umask", [0o000, 0o277], ids=["0o0", "0o277"])
def test_a_new_file_is_0600_even_when_the_run_fails_before_saving(folder: Path, umask: int) -> None:
    path = folder / "check.state"
    old = os.umask(umask)
    try:
        with pytest.raises(RuntimeError), open_state(str(path), "/host"):
            raise RuntimeError("the evaluation failed")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_bytes() == b""


def test_an_old_0644_file_is_kept_and_saved_as_0600(host: LinuxTree, folder: Path) -> None:
    path = folder / "check.state"
    path.write_text(json.dumps({"/other": {"scan_starts": [["b", 5, 1]]}}))
    path.chmod(0o644)
    evaluate_with(host, path)
    saved = json.loads(path.read_text())
    assert saved["/other"] == {"scan_starts": [["b", 5, 1]]} and str(host.root) in saved
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_default_location_for_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert os.geteuid() == 0, "these tests run as root"
    assert state.default_path() == "/var/lib/secure-endpoint-monitoring/check_secure_endpoint.state"
    monkeypatch.setattr(state, "SYSTEM_STATE_DIR", str(tmp_path / "lib" / "secure-endpoint-monitoring"))
    old = os.umask(0)
    try:
        with open_state(state.default_path(), "/host") as store:
            store.scan_starts([(9, 100)], BOOT_ID, 200, 600)
    finally:
        os.umask(old)
    folder = tmp_path / "lib" / "secure-endpoint-monitoring"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "check_secure_endpoint.state").stat().st_mode) == 0o600


def test_default_location_for_other_users(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("XDG_STATE_HOME", "/xdg")
    assert state.default_path() == "/xdg/secure-endpoint-monitoring/check_secure_endpoint.state"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/ignored")  # the spec wants an absolute path
    monkeypatch.setenv("HOME", "/home/u")
    assert state.default_path() == "/home/u/.local/state/secure-endpoint-monitoring/check_secure_endpoint.state"


def test_no_usable_home_is_said_only_for_the_default_under_a_home(monkeypatch: pytest.MonkeyPatch,
                                                                    tmp_path: Path) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)

    def reason(home: str | Path) -> str | None:
        monkeypatch.setenv("HOME", str(home))
        return state.no_usable_home(state.default_path())

    assert reason(tmp_path / "missing") == f"home folder {tmp_path}/missing does not exist"
    (tmp_path / "file").write_text("")
    assert reason(tmp_path / "file") == f"home folder {tmp_path}/file is not a folder"
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    assert reason(tmp_path / "loop") == f"home folder {tmp_path}/loop cannot be reached (Too many levels of " \
                                        "symbolic links)"
    assert reason("relative") == "no home folder to keep it in"
    assert reason(tmp_path) is None  # a home this user can write: what fails below it is a warning
    with monkeypatch.context() as patch:
        patch.setattr(os, "statvfs", lambda path: SimpleNamespace(f_flag=os.ST_RDONLY))
        assert reason(tmp_path) == f"home folder {tmp_path} is on a read-only file system"
    with monkeypatch.context() as patch:
        patch.setattr(os, "access", lambda path, mode: False)
        assert reason(tmp_path) == f"home folder {tmp_path} is not writable by this user"
    monkeypatch.setenv("HOME", str(tmp_path / "missing"))
    assert state.no_usable_home(str(tmp_path / "missing/given.state")) is None  # not the default: given
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "missing"))
    assert state.no_usable_home(state.default_path()) is None  # chosen with $XDG_STATE_HOME
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert state.no_usable_home(state.default_path()) is None  # root's /var/lib default


def _said(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(record.levelname, record.getMessage()) for record in caplog.records]


def test_a_default_without_a_home_is_an_info_line_and_every_other_failure_a_warning(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="secure_endpoint_monitoring.checks")
    (tmp_path / "file").write_text("")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # root may write anywhere: homes that fail even for root
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)

    def said(home: Path, path: str | None = None) -> list[tuple[str, str]]:
        caplog.clear()
        monkeypatch.setenv("HOME", str(home))
        with open_state(path or state.default_path(), "/host") as store:
            assert store.scan_starts([(9, 100)], BOOT_ID, 200, 600)  # the run goes on in memory
        return _said(caplog)

    default = f"{tmp_path}/file/.local/state/secure-endpoint-monitoring/check_secure_endpoint.state"
    assert said(tmp_path / "file") == [
        ("INFO", f"state file {default} cannot be made (home folder {tmp_path}/file is not a folder); {KEPT}")]
    given = f"{tmp_path}/file/given.state"
    assert said(tmp_path / "file", given) == [("WARNING", f"state file {given} cannot be used (Not a directory); "
                                                          f"{KEPT}")]
    (tmp_path / "home").mkdir()
    (tmp_path / "home/.local").write_text("")  # below a usable home: something is wrong there
    below = f"{tmp_path}/home/.local/state/secure-endpoint-monitoring/check_secure_endpoint.state"
    assert said(tmp_path / "home") == [("WARNING", f"state file {below} cannot be used (Not a directory); {KEPT}")]
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "file"))
    chosen = f"{tmp_path}/file/secure-endpoint-monitoring/check_secure_endpoint.state"
    assert said(tmp_path / "file") == [("WARNING", f"state file {chosen} cannot be used (Not a directory); {KEPT}")]
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(state, "SYSTEM_STATE_DIR", str(tmp_path / "file/secure-endpoint-monitoring"))
    system = f"{tmp_path}/file/secure-endpoint-monitoring/check_secure_endpoint.state"
    assert said(tmp_path / "file") == [("WARNING", f"state file {system} cannot be used (Not a directory); {KEPT}")]


def test_exporter_once_uses_the_same_checks(host: LinuxTree, tmp_path: Path, folder: Path) -> None:
    target = tmp_path / "shadow"
    target.write_bytes(SECRET)
    link = folder / "state.json"
    link.symlink_to(target)
    done = run("secure-endpoint-exporter", "--path.rootfs", str(host.root), "--ampcli.run-from-rootfs",
               "--once", "--state-file", str(link))
    assert done.returncode == 0
    assert f"state file {link} cannot be used (it is a symbolic link); {KEPT}" in done.stderr
    assert "secure_endpoint_fault_active" in done.stdout
    assert target.read_bytes() == SECRET



# -- what is kept -----------------------------------------------------------------------------------------
def test_an_old_process_table_is_dropped(tmp_path: Path, folder: Path) -> None:
    """Earlier versions kept the processes already read; that part of an old file is dropped, the rest kept."""
    tree = LinuxTree(tmp_path / "host").healthy()
    path = folder / "check.state"
    path.write_text(json.dumps({str(tree.root): {"processes": {"boot": 1.0, "known": {"5": [1, "x", 1.0]}},
                                                 "scan_starts": [tree.start_entry(4242, 60)]}}))
    path.chmod(0o600)
    assert plugin(tree, path).code == 0
    saved = json.loads(path.read_text())[str(tree.root)]
    assert "processes" not in saved and [pid for _, pid, _ in saved["scan_starts"]] == [4242]


def test_an_unchanged_state_is_not_written_again(tmp_path: Path, folder: Path) -> None:
    tree = LinuxTree(tmp_path / "host").healthy()
    path = folder / "check.state"
    plugin(tree, path)
    before = path.stat()
    plugin(tree, path)
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
