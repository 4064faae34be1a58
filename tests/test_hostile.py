"""Hostile host trees: whoever can write a file the checks read must not hang them, exhaust memory,
change files, leave processes behind or turn a fault into "clear".

Every case runs the real command (the exporter's one-shot JSON, or the plugin) as a subprocess under
``prlimit --as``, and asserts the wall time around it, the exact state, that the tree is unchanged and
that no process the host's programs started is still alive.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import time
import zlib
from pathlib import Path
from typing import Any, NamedTuple

import psutil
import pytest

from tests import bplist, unprivileged
from tests.commands import script
from tests.hosttree import LinuxTree, pid_of
from tests.mactree import NETWORK, SECURITY, SERVICE, TCC, MacTree, extension

MEMORY_LIMIT = 512 << 20  # address space: a healthy run needs well under 300 MiB
TIME_LIMIT = 10.0  # seconds for one run, including the interpreter's start
DAY_SECONDS = 86400.0


class Outcome(NamedTuple):
    code: int
    stdout: str
    stderr: str
    elapsed: float

    @property
    def report(self) -> dict[str, Any]:
        return json.loads(self.stdout)  # type: ignore[no-any-return]

    def state(self, fault_id: str) -> str:
        report = self.report
        found = {r["id"]: r for r in report["checks"] + report["faults"]}
        return str(found[fault_id]["state"])

    def result(self, fault_id: str) -> dict[str, Any]:
        report = self.report
        return next(r for r in report["checks"] + report["faults"] if r["id"] == fault_id)

    def collector(self, name: str) -> dict[str, Any]:
        return next(c for c in self.report["collectors"] if c["name"] == name)


def _snapshot(root: Path) -> dict[str, tuple[int, int, int, str]]:
    """Every entry's kind, size, mtime and link target, read without opening anything."""
    found = {}
    for current, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(current, name)
            st = os.lstat(path)
            target = os.readlink(path) if stat.S_ISLNK(st.st_mode) else ""
            found[path] = (st.st_mode, st.st_size if stat.S_ISREG(st.st_mode) else 0, st.st_mtime_ns, target)
    return found


def _leftovers(root: Path) -> list[str]:
    """Processes still running a program from the tree, or one of the lurkers' sleeps."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = proc.info.get("cmdline") or []
        if proc.info.get("status") == psutil.STATUS_ZOMBIE:
            continue
        if any(str(root) in part for part in cmdline) or cmdline[-1:] == [lurker_seconds(root)]:
            found.append(" ".join(cmdline))
    return found


def lurker_seconds(root: Path) -> str:
    """How long the lurkers of this tree sleep: a number no other test's lurkers use."""
    return str(3_000_000 + zlib.crc32(str(root).encode()) % 1_000_000)


def _command(name: str, args: list[str], root: Path, nobody: bool = False, no_dac: bool = False) -> Outcome:
    """Run under the memory limit; as nobody, or as root without the right to override file permissions."""
    before = _snapshot(root)
    argv = ["prlimit", f"--as={MEMORY_LIMIT}", "--"]
    if no_dac:
        argv += ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--inh-caps", "-all", "--",
                 script(name)]
    else:
        argv += unprivileged.command(name) if nobody else [script(name)]
    started = time.monotonic()
    done = subprocess.run(argv + args, capture_output=True, timeout=60, check=False)
    elapsed = time.monotonic() - started
    assert _snapshot(root) == before, "the run changed the tree"
    assert not _leftovers(root), _leftovers(root)
    assert elapsed < TIME_LIMIT, elapsed
    assert done.returncode >= 0, f"killed by signal {-done.returncode}: {done.stderr[-500:]!r}"
    assert b"Traceback" not in done.stderr + done.stdout, done.stderr.decode(errors="replace")
    return Outcome(done.returncode, done.stdout.decode(), done.stderr.decode(errors="replace"), elapsed)


def once(root: Path, *extra: str, **how: Any) -> Outcome:
    """The exporter's one-shot JSON: every fault's exact state and every collector's outcome."""
    args = ["--once", "--format", "json", "--path.rootfs", str(root), "--ampcli.run-from-rootfs", *extra]
    outcome = _command("secure-endpoint-exporter", args, root, **how)
    assert outcome.code == 0, outcome.stderr
    return outcome


def plugin(root: Path, *extra: str, **how: Any) -> Outcome:
    return _command("check_secure_endpoint", ["--path.rootfs", str(root), "--ampcli.run-from-rootfs",
                                              "--state-file", "", *extra], root, **how)


def _fifo(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        path.unlink()
    os.mkfifo(path)


def _device(path: Path, minor: int) -> None:
    """A character device of the memory driver: 5 is /dev/zero, 9 /dev/urandom."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        path.unlink()
    os.mknod(path, 0o644 | stat.S_IFCHR, os.makedev(1, minor))


@pytest.fixture
def linux(tmp_path: Path) -> LinuxTree:
    return LinuxTree(tmp_path / "host").healthy()


@pytest.fixture
def mac(tmp_path: Path) -> MacTree:
    return MacTree(tmp_path / "mac").healthy()


def test_the_healthy_trees_are_clear(linux: LinuxTree, mac: MacTree) -> None:
    """The baseline every case below changes one thing of."""
    outcome = once(linux.root)
    assert all(c["success"] for c in outcome.report["collectors"]), outcome.report["collectors"]
    assert {r["state"] for r in outcome.report["faults"]} <= {"clear", "not_applicable"}
    mac_outcome = once(mac.root)
    assert mac_outcome.state("1") == "clear" and mac_outcome.state("3") == "clear"


# -- 1. special files where a file belongs ------------------------------------------------------
LINUX_SPECIAL = [
    ("etc/passwd", "scan_user", "5"),
    ("etc/login.defs", "scan_user", "5"),
    ("opt/cisco/amp/etc/policy.xml", "policy", "8"),
    ("opt/cisco/amp/etc/global.xml", "connector_version", None),
    ("proc/modules", "kernel", "8"),
    ("proc/sys/kernel/osrelease", "system", None),
    ("proc/meminfo", "system", None),
    ("etc/os-release", "system", None),
    ("proc/stat", "processes", "7"),
    ("sys/fs/selinux/enforce", "selinux", "19"),
    ("opt/cisco/amp/var/clamav/daily.cvd", "definitions", None),
]


@pytest.mark.parametrize(("rel", "collector", "fault"), LINUX_SPECIAL)
def test_a_fifo_fails_its_collector_and_the_rest_answers(linux: LinuxTree, rel: str, collector: str,
                                                         fault: str | None) -> None:
    _fifo(linux.root / rel)
    outcome = once(linux.root)
    failed = outcome.collector(collector)
    assert not failed["success"] and "is a FIFO, not a regular file" in failed["error"], failed
    assert f"/{rel}" in failed["error"]
    if fault is not None:
        assert outcome.state(fault) == "unknown"
    others = [c for c in outcome.report["collectors"] if c["name"] not in (collector, "kernel")]
    assert [c["name"] for c in others if not c["success"]] == []


@pytest.mark.parametrize("kind", ["fifo", "zero", "urandom"])
def test_special_files_in_proc(linux: LinuxTree, kind: str) -> None:
    path = linux.root / f"proc/{pid_of(linux, 'ampscansvc')}/stat"
    if kind == "fifo":
        _fifo(path)
    else:
        _device(path, 5 if kind == "zero" else 9)
    outcome = once(linux.root)
    failed = outcome.collector("processes")
    expected = "a FIFO" if kind == "fifo" else "a character device"
    assert not failed["success"] and f"is {expected}, not a regular file" in failed["error"], failed
    assert outcome.state("7") == "unknown" and outcome.state("daemon_not_running") == "unknown"


@pytest.mark.parametrize("kind", ["fifo", "zero"])
def test_a_special_comm_is_never_opened(linux: LinuxTree, kind: str) -> None:
    """The name comes from proc/<pid>/stat; comm, where a FIFO would block an open, is not read at all."""
    path = linux.root / f"proc/{pid_of(linux, 'ampscansvc')}/comm"
    if kind == "fifo":
        _fifo(path)
    else:
        _device(path, 5)
    outcome = once(linux.root)
    assert outcome.collector("processes")["success"]
    assert outcome.state("7") == "clear" and outcome.state("daemon_not_running") == "clear"


@pytest.mark.parametrize("rel", ["opt/cisco/amp/etc/policy.xml", "proc/modules",
                                 "opt/cisco/amp/var/clamav/main.cvd"])
def test_devices_where_files_belong(linux: LinuxTree, rel: str) -> None:
    _device(linux.root / rel, 5)
    outcome = once(linux.root)
    assert any("is a character device, not a regular file" in (c["error"] or "")
               for c in outcome.report["collectors"])


def test_a_fifo_at_the_secure_boot_variable_only_hides_secure_boot(linux: LinuxTree) -> None:
    _fifo(linux.root / "sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c")
    outcome = once(linux.root)
    assert outcome.collector("kernel")["success"]
    assert outcome.state("8") == "clear"  # the modules are loaded: Secure Boot does not matter


MAC_SPECIAL = [
    ("Library/SystemExtensions/db.plist", "system_extensions", "1"),
    ("Applications/Cisco Secure Endpoint/Secure Endpoint Service.app/Contents/Info.plist", "connector_app", "2"),
    (f"{TCC}/MDMOverrides.plist", "tcc", "3"),
    (f"{TCC}/TCC.db", "tcc", "3"),
    ("Library/Preferences/com.apple.networkextension.plist", "network_extensions", "12"),
    ("System/Library/CoreServices/SystemVersion.plist", "system", None),
]


@pytest.mark.parametrize(("rel", "collector", "fault"), MAC_SPECIAL)
def test_fifos_on_a_mac(mac: MacTree, rel: str, collector: str, fault: str | None) -> None:
    _fifo(mac.root / rel)
    outcome = once(mac.root)
    failed = outcome.collector(collector)
    assert not failed["success"] and "FIFO" in failed["error"], failed
    if fault is not None:
        assert outcome.state(fault) == "unknown"


# -- 2. plist bombs -------------------------------------------------------------------------------
def self_list() -> bytes:
    """{"k": L} where L is a list that holds itself."""
    return bplist.build([bplist.dictionary([1], [2]), bplist.ascii_string("k"), bplist.array([2])])


def self_dict() -> bytes:
    """A dictionary that is its own value."""
    return bplist.build([bplist.dictionary([1], [0]), bplist.ascii_string("k")])


def mutual() -> bytes:
    """Two lists that hold each other."""
    return bplist.build([bplist.dictionary([1], [2]), bplist.ascii_string("k"), bplist.array([3]),
                         bplist.array([2])])


def dag(levels: int = 40) -> bytes:
    """Each level lists the next twice: 2**levels leaves when expanded, a few hundred bytes on disk."""
    objects = [bplist.dictionary([1], [2]), bplist.ascii_string("k")]
    objects += [bplist.array([3 + level] * 2) for level in range(levels)]
    objects.append(bplist.ascii_string("x"))
    return bplist.build(objects)


BOMBS = {"self_list": self_list, "self_dict": self_dict, "mutual": mutual, "dag": dag}
BOMB_PLACES = [
    ("Applications/Cisco Secure Endpoint/Secure Endpoint Service.app/Contents/Info.plist", "connector_app"),
    ("System/Library/CoreServices/SystemVersion.plist", "system"),
    ("Library/SystemExtensions/db.plist", "system_extensions"),
    (f"{TCC}/MDMOverrides.plist", "tcc"),
    ("Library/Preferences/com.apple.networkextension.plist", "network_extensions"),
]


@pytest.mark.parametrize("bomb", sorted(BOMBS))
@pytest.mark.parametrize(("rel", "collector"), BOMB_PLACES)
def test_plist_bombs_fail_their_collector_quickly(mac: MacTree, bomb: str, rel: str, collector: str) -> None:
    mac.write(rel, BOMBS[bomb]())
    outcome = once(mac.root)
    failed = outcome.collector(collector)
    assert not failed["success"], failed
    assert f"/{rel}" in failed["error"]


def test_a_keyed_archive_whose_references_loop(mac: MacTree) -> None:
    import plistlib

    objects: list[Any] = ["$null", {"$classname": "NEConfiguration"}]
    # Object 2 is a configuration whose content filter is itself, whose name is a string that points back.
    objects.append({"$class": plistlib.UID(1), "ContentFilter": plistlib.UID(2), "Name": plistlib.UID(3),
                    "Application": plistlib.UID(3)})
    objects.append({"NS.string": plistlib.UID(3)})
    archive = {"$archiver": "NSKeyedArchiver", "$version": 100000, "$top": {"Root": plistlib.UID(2)},
               "$objects": objects}
    mac.write("Library/Preferences/com.apple.networkextension.plist", plistlib.dumps(archive, fmt=plistlib.FMT_BINARY))
    outcome = once(mac.root)
    assert outcome.state("12") == "unknown"
    assert "references loop" in outcome.collector("network_extensions")["error"]


# -- 3. deadlines --------------------------------------------------------------------------------
@pytest.mark.parametrize("seconds", [1, 2, 3])
def test_the_plugins_timeout_always_wins(linux: LinuxTree, seconds: int) -> None:
    linux.ampcli(hang=60)
    outcome = plugin(linux.root, "-t", str(seconds), "--ampcli-timeout", "30")
    assert outcome.elapsed < seconds + 1.5, outcome.elapsed
    assert outcome.code in (1, 3)
    assert outcome.stdout.startswith("SECURE ENDPOINT WARNING - Connector status unavailable"), outcome.stdout


def test_hung_about_and_policy_do_not_hold_the_status(linux: LinuxTree) -> None:
    script_text = (linux.root / linux.AMPCLI).read_text()
    linux.write(linux.AMPCLI, script_text.replace("#!/bin/sh\n", '#!/bin/sh\n[ "$1" = status ] || sleep 60\n'),
                mode=0o755)
    outcome = plugin(linux.root, "-t", "3")
    assert outcome.code == 0, outcome.stdout
    assert outcome.elapsed < 3 + 1.5


# -- 5. no permission is not "absent" -------------------------------------------------------------
def _lock(path: Path) -> None:
    """Owned by someone else, for them only: a run without DAC override cannot look inside."""
    os.chown(path, 12345, 12345)
    path.chmod(0o700)


def test_an_unreadable_selinux_disabled_folder_is_unknown_not_clear(linux: LinuxTree) -> None:
    linux.selinux(enforcing=True, module="disabled")
    disabled = linux.root / "var/lib/selinux/targeted/active/modules/disabled"
    _lock(disabled)
    outcome = once(linux.root, no_dac=True)
    assert outcome.state("19") == "unknown"
    assert "permission denied" in outcome.result("19")["reason"]


def test_unreadable_kernel_modules_folder_is_unknown_not_fault_11(linux: LinuxTree) -> None:
    linux.modules()  # eBPF before 1.25: the headers decide
    _lock(linux.root / f"lib/modules/{linux.release}")
    outcome = once(linux.root, no_dac=True)
    assert outcome.state("11") == "unknown"
    assert "permission denied" in outcome.result("11")["reason"]


def test_unreadable_bin_folder_is_unknown_not_uninstalled(linux: LinuxTree) -> None:
    _lock(linux.root / "opt/cisco/amp/bin")
    outcome = once(linux.root, no_dac=True)
    assert outcome.state("not_installed") == "unknown"
    assert "permission denied" in outcome.result("not_installed")["reason"]


def test_an_unlistable_connector_folder_proves_fault_5(linux: LinuxTree) -> None:
    """Its own mode (known from the folder above) is the fault: what could not be listed does not hide it."""
    _lock(linux.root / "opt/cisco/amp/var")
    (linux.root / "opt/cisco/amp/etc").chmod(0o777)  # beside it: the walk goes on past the locked one
    outcome = once(linux.root, no_dac=True)
    assert outcome.state("5") == "active"
    evidence = " ".join(outcome.result("5")["evidence"])
    assert "/opt/cisco/amp/var has mode 0700" in evidence and "/opt/cisco/amp/etc has mode 0777" in evidence
    collector = outcome.collector("scan_user")  # it still says what it could not read
    assert not collector["success"] and "/opt/cisco/amp/var" in collector["error"], collector
    first = plugin(linux.root, no_dac=True).stdout.splitlines()[0]
    assert "Scan service user unavailable (fault 5)" in first and "state unknown" not in first, first


@pytest.mark.parametrize(("locked", "mode"), [("opt/cisco/amp", 0o700), ("opt/cisco/amp", 0o711),
                                            ("opt/cisco", 0o700)])
def test_an_unenterable_top_folder_proves_fault_5(linux: LinuxTree, locked: str, mode: int) -> None:
    """The walk's own top (or the folder above it) cannot be entered: its mode is still known and judged."""
    _lock(linux.root / locked)
    (linux.root / locked).chmod(mode)
    outcome = once(linux.root, no_dac=True)
    assert outcome.state("5") == "active", outcome.result("5")
    assert f"/{locked} has mode {mode:04o}" in " ".join(outcome.result("5")["evidence"])


@pytest.mark.parametrize("link", ["loop", "locked"])
def test_a_link_that_cannot_be_followed_does_not_hide_fault_5(linux: LinuxTree, link: str) -> None:
    if link == "loop":
        os.symlink("loop", linux.root / "opt/cisco/amp/loop")
    else:
        (linux.root / "srv/secret/x").mkdir(parents=True)
        _lock(linux.root / "srv/secret")
        os.symlink("/srv/secret/x", linux.root / "opt/cisco/amp/locked")
    (linux.root / "opt/cisco/amp/var").chmod(0o700)
    outcome = once(linux.root, no_dac=True)
    assert outcome.state("5") == "active", outcome.result("5")
    assert "/opt/cisco/amp/var has mode 0700" in " ".join(outcome.result("5")["evidence"])
    (linux.root / "opt/cisco/amp/var").chmod(0o755)
    outcome = once(linux.root, no_dac=True)
    assert outcome.state("5") == "unknown"  # nothing proven, and one link not followed: not clear


@pytest.mark.parametrize("layout", ["var linked out, clamav 0700", "amp linked under a 0700 folder",
                                    "var linked under a 0700 folder"])
def test_where_a_link_leads_is_judged_like_the_connector_s_own_folders(linux: LinuxTree, layout: str) -> None:
    """The scan service goes through the link: the folders below where it leads, and those above, count."""
    root = linux.root
    if layout == "var linked out, clamav 0700":
        (root / "opt/cisco/amp/var").rename(root / "srv_ampvar")
        linux.symlink("opt/cisco/amp/var", "/srv_ampvar")
        (root / "srv_ampvar/clamav").chmod(0o700)
        shown = "/opt/cisco/amp/var/clamav has mode 0700"
    else:
        (root / "srv/x").mkdir(parents=True)
        moved = "amp" if layout.startswith("amp") else "var"
        source = root / ("opt/cisco/amp" if moved == "amp" else "opt/cisco/amp/var")
        source.rename(root / "srv/x" / moved)
        linux.symlink(str(source.relative_to(root)), f"/srv/x/{moved}")
        (root / "srv/x").chmod(0o700)
        shown = "/srv/x has mode 0700"
    outcome = once(linux.root)
    assert outcome.state("5") == "active", outcome.result("5")
    assert shown in " ".join(outcome.result("5")["evidence"])


@pytest.mark.parametrize("case", ["amp 0744", "a link loop for amp", "no account and /opt 0700"])
def test_what_cannot_be_read_never_loses_what_was_proven(linux: LinuxTree, case: str) -> None:
    if case == "amp 0744":  # listable but not searchable by others
        _lock(linux.root / "opt/cisco/amp")
        (linux.root / "opt/cisco/amp").chmod(0o744)
        shown = "/opt/cisco/amp has mode 0744"
    elif case == "a link loop for amp":
        (linux.root / "opt/cisco/amp").rename(linux.root / "amp-gone")
        linux.symlink("opt/cisco/amp", "amp")
        (linux.root / "opt/cisco").chmod(0o777)
        shown = "/opt/cisco has mode 0777"
    else:
        linux.write("etc/passwd", "root:x:0:0:root:/root:/bin/bash\n")
        _lock(linux.root / "opt")
        shown = "user cisco-amp-scan-svc does not exist"
    outcome = once(linux.root, no_dac=True)
    assert outcome.state("5") == "active", outcome.result("5")
    assert shown in " ".join(outcome.result("5")["evidence"])


def test_an_unreadable_passwd_beside_a_bad_mode_is_still_fault_5(linux: LinuxTree) -> None:
    _lock(linux.root / "etc/passwd")
    outcome = once(linux.root, no_dac=True)
    assert outcome.state("5") == "unknown"  # the control: nothing read proves it, so it is not clear either
    assert "permission denied" in outcome.result("5")["reason"].lower()
    (linux.root / "opt/cisco/amp/bin").chmod(0o775)
    outcome = once(linux.root, no_dac=True)
    assert outcome.state("5") == "active"
    assert "/opt/cisco/amp/bin has mode 0775" in " ".join(outcome.result("5")["evidence"])


def test_unreadable_dslocal_is_unknown_not_fault_5(mac: MacTree) -> None:
    _lock(mac.root / "var/db/dslocal/nodes/Default")
    outcome = once(mac.root, no_dac=True)
    assert outcome.state("5") == "unknown"
    assert "permission denied" in outcome.result("5")["reason"]


def test_orbital_behind_an_unreadable_folder_is_unknown(mac: MacTree) -> None:
    mac.orbital()
    _lock(mac.root / "opt/cisco")
    outcome = once(mac.root, no_dac=True)
    assert outcome.state("17") == "unknown"
    assert "Permission denied" in outcome.result("17")["reason"]


@pytest.mark.system
def test_as_an_unprivileged_user(shared: Path) -> None:
    tree = LinuxTree(shared / "host").healthy()
    for current, dirs, _files in os.walk(shared):
        for name in dirs:
            os.chmod(os.path.join(current, name), 0o755)
    (tree.root / f"lib/modules/{tree.release}").chmod(0o700)
    (tree.root / tree.POLICY).chmod(0o600)
    outcome = once(tree.root, nobody=True)
    assert outcome.state("11") == "unknown" and outcome.state("8") == "unknown"
    assert "permission denied" in outcome.result("8")["reason"]
    assert outcome.state("7") == "clear"  # what nobody may read is still judged


# -- 6. reads stay inside the root ---------------------------------------------------------------
@pytest.mark.parametrize("target", ["/usr/lib/os-release", "../usr/lib/os-release",
                                    "../../../../../../../../usr/lib/os-release"])
def test_os_release_symlinks_resolve_inside_the_root(linux: LinuxTree, target: str) -> None:
    """The real shape: etc/os-release links to usr/lib/os-release. This Debian machine's own must not leak in."""
    linux.write("usr/lib/os-release", (linux.root / "etc/os-release").read_text())
    linux.symlink("etc/os-release", target)
    linux.modules()  # eBPF before 1.25, so headers are needed
    linux.remove(f"usr/src/kernels/{linux.release}")  # fault 11 names the distribution's package
    outcome = once(linux.root)
    assert outcome.report["os"]["name"] == "Red Hat Enterprise Linux"
    assert "kernel-devel-" in outcome.result("11")["remedy"]


@pytest.mark.parametrize("how", ["absolute", "relative"])
def test_a_process_folder_linked_out_of_the_root_is_not_believed(linux: LinuxTree, tmp_path: Path, how: str) -> None:
    linux.stop("ampscansvc")
    outside = LinuxTree(tmp_path / "outside")
    pid = outside.process("ampscansvc", pid=4242)
    target = str(outside.root / f"proc/{pid}") if how == "absolute" else f"../../outside/proc/{pid}"
    linux.symlink(f"proc/{pid}", target)
    outcome = once(linux.root)
    assert outcome.state("7") == "active"


# -- 7. no wrong clears ------------------------------------------------------------------------------
def _state_of(tree: LinuxTree, name: str, state: str) -> None:
    path = tree.root / f"proc/{pid_of(tree, name)}/stat"
    fields = path.read_text().split(" ")
    fields[2] = state
    path.write_text(" ".join(fields))


@pytest.mark.parametrize("state", ["Z", "X"])
def test_a_dead_scan_service_is_not_running(linux: LinuxTree, state: str) -> None:
    _state_of(linux, "ampscansvc", state)
    assert once(linux.root).state("7") == "active"


def test_a_zombie_daemon_is_not_running(linux: LinuxTree) -> None:
    _state_of(linux, "ampdaemon", "Z")
    assert once(linux.root).state("daemon_not_running") == "active"


@pytest.mark.parametrize("ahead_days", [3, 400, 30000])
def test_a_future_dated_cvd_does_not_hide_stale_definitions(linux: LinuxTree, ahead_days: int) -> None:
    linux.ampcli(policy="")  # the connector does not say when it last updated
    now = time.time()
    linux.definitions("main.cvd", build_time=now - 30 * DAY_SECONDS)
    linux.definitions("daily.cvd", build_time=now - 30 * DAY_SECONDS)
    linux.definitions("bytecode.cvd", build_time=now + ahead_days * DAY_SECONDS)
    outcome = once(linux.root)
    assert outcome.state("definitions_stale") == "active"
    assert any("bytecode.cvd claims to be built" in e for e in outcome.result("definitions_stale")["evidence"])


def test_only_future_dated_cvds_are_suspect_not_fresh(linux: LinuxTree) -> None:
    linux.ampcli(policy="")
    for name in ("main.cvd", "daily.cvd"):
        linux.definitions(name, build_time=time.time() + 90 * DAY_SECONDS)
    outcome = once(linux.root)
    assert outcome.state("definitions_stale") == "unknown"
    assert "claims to be built" in outcome.result("definitions_stale")["reason"]


@pytest.mark.parametrize("which", ["no_bundle_version", "empty_versions", "bundle_version_not_a_dict"])
def test_an_enabled_extension_without_a_version_is_unknown_for_fault_2(mac: MacTree, which: str) -> None:
    broken = extension(SECURITY)
    if which == "no_bundle_version":
        del broken["bundleVersion"]
    elif which == "empty_versions":
        broken["bundleVersion"] = {}
    else:
        broken["bundleVersion"] = 7
    mac.extensions(broken, extension(NETWORK))
    outcome = once(mac.root)
    assert outcome.state("2") == "unknown"
    assert SECURITY in outcome.result("2")["reason"]


def test_a_grant_still_in_tccs_wal_counts(mac: MacTree, tmp_path: Path) -> None:
    """macOS keeps TCC.db in WAL mode: a fresh grant may be in TCC.db-wal only."""
    work = tmp_path / "tcc-work"
    work.mkdir()
    database = work / "TCC.db"
    connection = sqlite3.connect(database)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA wal_autocheckpoint=0")
    connection.execute("CREATE TABLE access (service TEXT, client TEXT, client_type INTEGER, auth_value INTEGER)")
    connection.commit()
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.executemany("INSERT INTO access VALUES ('kTCCServiceSystemPolicyAllFiles', ?, 0, 2)",
                           [(SERVICE,), (SECURITY,)])
    connection.commit()
    target = mac.root / TCC
    shutil.copy(database, target / "TCC.db")
    shutil.copy(work / "TCC.db-wal", target / "TCC.db-wal")
    connection.close()
    with sqlite3.connect(f"file:{target / 'TCC.db'}?mode=ro&immutable=1", uri=True) as check:
        assert check.execute("SELECT count(*) FROM access").fetchone() == (0,)  # without the WAL: no grants
    outcome = once(mac.root)
    assert outcome.state("3") == "clear" and outcome.state("15") == "clear"


def test_an_unreadable_wal_is_unknown_not_a_missing_grant(mac: MacTree) -> None:
    _fifo(mac.root / TCC / "TCC.db-wal")
    outcome = once(mac.root)
    assert outcome.state("3") == "unknown"
    assert "TCC.db-wal" in outcome.result("3")["reason"]


# -- 8. ampcli's descendants and its output ----------------------------------------------------------
ESCAPES = {
    "setsid_then_answer": 'setsid "$(dirname "$0")/lurker" >/dev/null 2>&1 </dev/null &\n',
    "setsid_then_hang": 'setsid "$(dirname "$0")/lurker" >/dev/null 2>&1 </dev/null &\nsleep 60\n',
    "double_fork": '(setsid sh -c \'"$0" &\' "$(dirname "$0")/lurker" >/dev/null 2>&1 </dev/null &)\n',
    "nohup_keeping_the_pipe": 'setsid nohup "$(dirname "$0")/lurker" &\n',
}


@pytest.mark.parametrize("escape", sorted(ESCAPES))
def test_ampclis_escaped_children_are_reaped(linux: LinuxTree, escape: str) -> None:
    linux.write("opt/cisco/amp/bin/lurker", f"#!/bin/sh\nsleep {lurker_seconds(linux.root)}\n", mode=0o755)
    script_text = (linux.root / linux.AMPCLI).read_text()
    linux.write(linux.AMPCLI, script_text.replace("#!/bin/sh\n", "#!/bin/sh\n" + ESCAPES[escape]), mode=0o755)
    outcome = plugin(linux.root, "-t", "4", "--ampcli-timeout", "2")
    assert outcome.code in (0, 1), outcome.stdout  # _command asserts no lurker is left


def test_an_ampcli_whose_child_keeps_its_output_open_is_read_when_it_exits(linux: LinuxTree) -> None:
    """Issue 23: waiting for the pipe to close took the whole timeout and called ampcli hung. Its exit
    ends the wait; what it wrote counts, and the child is killed."""
    linux.write("opt/cisco/amp/bin/lurker", f"#!/bin/sh\nsleep {lurker_seconds(linux.root)}\n", mode=0o755)
    script_text = (linux.root / linux.AMPCLI).read_text()
    linux.write(linux.AMPCLI, script_text.replace("#!/bin/sh\n", "#!/bin/sh\n" + ESCAPES["nohup_keeping_the_pipe"]),
                mode=0o755)
    began = time.monotonic()
    outcome = plugin(linux.root, "-t", "30", "--ampcli-timeout", "20")
    assert outcome.code == 0 and "connector connected" in outcome.stdout, outcome.stdout
    assert time.monotonic() - began < 10  # a hang guard: the 20 s timeout was not waited for
    exported = once(linux.root, "--ampcli-timeout", "20")
    assert exported.state("ampcli_failed") == "clear"


def test_a_flood_of_fault_ids_is_an_ampcli_failure(linux: LinuxTree) -> None:
    lines = "".join(f"ID {n % 999 + 1} - Major: x\n" for n in range(45_000))  # 700 KB: under the 1 MiB bound
    linux.ampcli("Status: Connected\nFaults: 45000 Major\n" + lines)
    outcome = plugin(linux.root)
    assert outcome.code == 1
    assert "more than 64 fault ids" in outcome.stdout
    assert len(outcome.stdout) < 20_000
    exported = once(linux.root)
    assert exported.state("ampcli_failed") == "active"
    assert len([f for f in exported.report["faults"] if f["reported"]]) == 0


@pytest.mark.parametrize("line", ["ID 0000000050 - Major: overloaded", "Fault IDs: -7, +8, 1e9",
                                  "Fault IDs: 7;18", "ID 5 Major overloaded"])
def test_fault_ids_of_an_undocumented_shape_are_no_fault(linux: LinuxTree, line: str) -> None:
    """Issue 23: loose parsing made faults of these. The status is not understood instead: ampcli_failed."""
    linux.ampcli(f"Status: Connected\nMode: Normal\nFaults: 1 Major\n{line}\n")
    outcome = plugin(linux.root)
    assert outcome.code == 1 and "not understood" in outcome.stdout, outcome.stdout
    exported = once(linux.root)
    assert exported.state("ampcli_failed") == "active"
    assert [f["fault"]["id"] for f in exported.report["faults"] if f["reported"]] == []
    assert all(exported.state(fault_id) != "active" for fault_id in ("5", "7", "8", "9", "18"))


# -- 11. names that are not UTF-8 ---------------------------------------------------------------------
def test_file_names_that_are_not_utf8_or_hold_newlines(linux: LinuxTree) -> None:
    linux.ampcli(policy="")
    now = time.time()
    linux.definitions("main.cvd", build_time=now - 30 * DAY_SECONDS)
    linux.definitions("daily.cvd", build_time=now - 30 * DAY_SECONDS)
    folder = os.fsencode(linux.root / linux.DEFINITIONS)
    with open(folder + b"/odd\xff\nname|x.cvd", "wb") as handle:
        handle.write((linux.root / linux.DEFINITIONS / "main.cvd").read_bytes())
    os.utime(folder + b"/odd\xff\nname|x.cvd")
    linux.definitions("future.cvd", build_time=now + 90 * DAY_SECONDS)
    os.rename(folder + b"/future.cvd", folder + b"/fut\xfeure\n.cvd")
    outcome = once(linux.root)
    evidence = " ".join(outcome.result("definitions_stale")["evidence"])
    assert "fut\\xfeure\\x0a.cvd" in evidence
    checked = plugin(linux.root)
    assert checked.code == 1
    lines = checked.stdout.splitlines()
    assert all(line.startswith(("SECURE ENDPOINT", "WARNING", "CRITICAL", "UNKNOWN", "|")) or "=" in line
               for line in lines), lines
    assert "fut\\xfeure\\x0a.cvd" in checked.stdout


@pytest.mark.system
def test_a_root_the_user_cannot_enter_is_said_as_such(linux: LinuxTree) -> None:
    """pytest's folders are root's own: as nobody, the tree cannot be reached at all."""
    outcome = plugin(linux.root, nobody=True)
    assert outcome.code == 3
    assert "cannot be used: Permission denied" in outcome.stdout, outcome.stdout
