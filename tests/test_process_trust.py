"""Only the connector's own processes count, and a start is counted once whatever the wall clock does.

A process named like the connector is its own only when root runs it (the scan service also as its
account, or as any while systemd keeps it in the unit) and, where its executable can be seen, that lies
in the install folder. Starts are keyed on pid and start ticks since boot, per boot id: stepping the clock
moves ``btime``, never those.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from secure_endpoint_monitoring.checks.catalog import Platform
from secure_endpoint_monitoring.checks.evaluate import State
from secure_endpoint_monitoring.checks.evidence import processes, scan_user
from secure_endpoint_monitoring.checks.host import Host
from secure_endpoint_monitoring.checks.state import StateStore
from tests.commands import run
from tests.conftest import Evaluate, result
from tests.hosttree import UNIT_CGROUPS, LinuxTree, pid_of

NOBODY = 65534


def _plugin(tree: LinuxTree, *args: str) -> tuple[int, str]:
    done = run("check_secure_endpoint", "--path.rootfs", str(tree.root), "--ampcli.run-from-rootfs", *args)
    return done.returncode, done.stdout


def _check(report: object, slug: str) -> State:
    return next(c.state for c in report.checks if c.fault.slug == slug)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("uid", "exe"), [
    (1000, "/opt/cisco/amp/bin/ampdaemon"),  # a user running the real program: not the connector's
    (1000, "/home/mallory/ampdaemon"),
    (0, "/tmp/ampdaemon"),  # root's, but not the connector's program
    (0, "/opt/cisco/amp-evil/ampdaemon"),  # a folder whose name only starts like the install folder's
    (0, "/opt/cisco/amp/../../../tmp/ampdaemon"),  # climbs out (the kernel never shows such a path)
    (0, "/opt/cisco/amp/bin/../../../../tmp/ampdaemon (deleted)"),
    (990, "/opt/cisco/amp/bin/ampdaemon"),  # the scan account may run the scan service, not the daemon
])
def test_an_impostor_daemon_does_not_hide_a_stopped_one(healthy: LinuxTree, run: Evaluate, uid: int,
                                                        exe: str) -> None:
    healthy.stop("ampdaemon")
    healthy.process("ampdaemon", uid=uid, exe=exe)
    assert _check(run(healthy), "daemon_not_running") is State.ACTIVE
    code, out = _plugin(healthy, "--state-file", "")
    assert code == 2 and "Connector daemon not running" in out.splitlines()[0], out


@pytest.mark.parametrize(("uid", "exe"), [
    (0, "/opt/cisco/amp/bin/ampdaemon"),
    (0, "/opt/cisco/amp/bin/ampdaemon (deleted)"),  # replaced by an update while it runs: still the connector
    (0, ""),  # no exe to read (unreadable as a user, or a copied tree without the link): root alone counts
])
def test_the_connector_s_own_daemon_counts(healthy: LinuxTree, run: Evaluate, uid: int, exe: str) -> None:
    healthy.stop("ampdaemon")
    healthy.process("ampdaemon", uid=uid, exe=exe, bpf_programs=4)
    assert _check(run(healthy), "daemon_not_running") is State.CLEAR


@pytest.mark.parametrize(("link", "target", "exe"), [
    ("opt/cisco", "/srv/x", "/srv/x/amp/bin/ampdaemon"),  # the connector moved to another disk
    ("opt", "var/opt", "/var/opt/cisco/amp/bin/ampdaemon"),  # rpm-ostree: /opt is a link to var/opt
])
def test_an_install_folder_reached_through_a_link_counts(healthy: LinuxTree, run: Evaluate, link: str,
                                                         target: str, exe: str) -> None:
    """The kernel shows exe resolved: the install folder counts as the host resolves it too."""
    moved = healthy.root / (target.lstrip("/") if target.startswith("/") else str(Path(link).parent / target))
    moved.parent.mkdir(parents=True, exist_ok=True)
    (healthy.root / link).rename(moved)
    healthy.symlink(link, target)
    for name in ("ampdaemon", "ampscansvc"):
        healthy.stop(name)
        healthy.process(name, exe=exe.replace("ampdaemon", name), started_ago=1800)
    report = run(healthy)
    assert _check(report, "daemon_not_running") is State.CLEAR
    assert result(report, "7").state is State.CLEAR
    healthy.stop("ampdaemon")
    healthy.process("ampdaemon", exe=exe.replace("/amp/bin/", "/elsewhere/"))
    assert _check(run(healthy), "daemon_not_running") is State.ACTIVE


def test_an_install_folder_linked_to_the_root_trusts_nothing_more(healthy: LinuxTree, run: Evaluate) -> None:
    (healthy.root / "opt/cisco/amp").rename(healthy.root / "amp-moved")
    healthy.symlink("opt/cisco/amp", "/")  # the folder resolves to the root itself
    shutil.copytree(healthy.root / "amp-moved/bin", healthy.root / "bin", dirs_exist_ok=True)  # still installed
    healthy.stop("ampdaemon")
    healthy.process("ampdaemon", exe="/tmp/ampdaemon")
    assert _check(run(healthy), "daemon_not_running") is State.ACTIVE


@pytest.mark.parametrize(("link", "target", "exe", "counts"), [
    # The install folder, moved by root, is where it resolves to: what runs from there is the connector's ...
    ("opt/cisco", "/tmp", "/tmp/amp/ampdaemon", True),
    ("opt", "/tmp", "/tmp/cisco/amp/bin/ampdaemon", True),
    # ... and nothing beside it.
    ("opt/cisco", "/tmp", "/tmp/evil", False),
    ("opt", "/tmp", "/tmp/cisco/evil", False),
    # A link that gives the folder another name (or none: /) widens nothing.
    ("opt/cisco/amp", "/usr/bin", "/usr/bin/evil", False),
    ("opt/cisco/amp", "../..", "/usr/bin/evil", False),
])
def test_a_link_to_another_folder_widens_no_trust(healthy: LinuxTree, run: Evaluate, link: str, target: str,
                                                  exe: str, counts: bool) -> None:
    """Only a folder that keeps its own name (amp) counts as the install folder where it resolves."""
    moved = healthy.root / "moved"
    (healthy.root / link).rename(moved)
    healthy.symlink(link, target)
    shutil.copytree(moved, healthy.root / (target.lstrip("/") if target.startswith("/") else "."),
                    dirs_exist_ok=True, symlinks=True)
    healthy.stop("ampdaemon")
    healthy.process("ampdaemon", exe=exe)
    assert _check(run(healthy), "daemon_not_running") is (State.CLEAR if counts else State.ACTIVE)


def test_a_stale_uptime_in_a_tree_does_not_hide_restarts(healthy: LinuxTree, tmp_path: Path) -> None:
    """A tree whose proc/uptime was written before its processes: now is no earlier than the newest start."""
    healthy.stop("ampscansvc")
    for ago in (60, 120, 180):
        healthy.process("ampscansvc", started_ago=ago)
    for uptime in ("0 0\n", "0.00 0\n", "5.00 1.00\n"):
        healthy.write("proc/uptime", uptime)
        code, out = _plugin(healthy, "--state-file", "")
        assert code == 1 and "Scan service restarting frequently (fault 6)" in out.splitlines()[0], (uptime, out)


def test_the_scan_service_may_run_as_its_account(healthy: LinuxTree, run: Evaluate) -> None:
    healthy.stop("ampscansvc")
    healthy.process("ampscansvc", uid=990, started_ago=1800)
    assert result(run(healthy), "7").state is State.CLEAR


def test_the_scan_service_as_another_user_is_not_the_connector_s(healthy: LinuxTree, run: Evaluate) -> None:
    healthy.stop("ampscansvc")
    healthy.process("ampscansvc", uid=1000, started_ago=1800)
    assert result(run(healthy), "7").state is State.ACTIVE


def test_the_scan_account_is_looked_up_in_the_tree(healthy: LinuxTree, run: Evaluate) -> None:
    healthy.write("etc/passwd", "root:x:0:0:root:/root:/bin/bash\ncisco-amp-scan-svc:x:4242:4242::/:/bin/false\n")
    healthy.stop("ampscansvc")
    healthy.process("ampscansvc", uid=990, started_ago=1800)
    assert result(run(healthy), "7").state is State.ACTIVE  # 990 is not the account here
    healthy.stop("ampscansvc")
    healthy.process("ampscansvc", uid=4242, started_ago=1800)
    assert result(run(healthy), "7").state is State.CLEAR


@pytest.mark.parametrize("daemon_in_unit", [True, False])  # the unit alone, or the listing of proc
def test_a_scan_service_the_unit_keeps_counts_without_its_account(healthy: LinuxTree, run: Evaluate,
                                                                  daemon_in_unit: bool) -> None:
    """An account the tree's passwd does not list (a container's view, a directory account): the unit vouches."""
    healthy.stop("ampscansvc")
    if not daemon_in_unit:
        (healthy.root / UNIT_CGROUPS["v2"] / "cgroup.procs").write_text("")
        healthy.write(f"proc/{pid_of(healthy, 'ampdaemon')}/cgroup", "0::/system.slice/cisco-amp.service\n")
    healthy.process("ampscansvc", uid=990, in_unit=True, started_ago=1800)
    facts = processes.probe(Host(str(healthy.root)), Platform.LINUX)
    assert facts.lookup == ("cgroup" if daemon_in_unit else "scan")
    assert result(run(healthy), "7").state is State.CLEAR
    code, out = _plugin(healthy, "--state-file", "")
    assert code == 0, out


@pytest.mark.parametrize("own_cgroup", [
    "0::/user.slice/user-1000.slice/user@1000.service/system.slice/cisco-amp.service\n",  # a user's delegated tree
    "0::/system.slice/cisco-amp.service.evil\n",
    "0::/system.slice/cisco-amp.serviceX/child\n",
    "0::/../system.slice/cisco-amp.service\n",  # seen from another cgroup namespace
    "4:cpu,cpuacct:/system.slice/cisco-amp.service\n1:name=systemd:/user.slice\n",  # a controller, not systemd's
    "0:/system.slice/cisco-amp.service\n",
    "",
    "\0" * 5000,
])
def test_only_the_unit_s_own_cgroup_vouches_for_a_user_s_process(healthy: LinuxTree, run: Evaluate,
                                                                   own_cgroup: str) -> None:
    healthy.stop("ampscansvc")
    pid = healthy.process("ampscansvc", uid=1000, in_unit=True, started_ago=1800)
    assert result(run(healthy), "7").state is State.CLEAR  # the control: the unit's word counts
    healthy.write(f"proc/{pid}/cgroup", own_cgroup)
    assert result(run(healthy), "7").state is State.ACTIVE


@pytest.mark.parametrize("uid", [990, 65534])
def test_a_process_of_the_unit_that_is_not_root_s_is_never_the_daemon(healthy: LinuxTree, run: Evaluate,
                                                                       uid: int) -> None:
    """A scan service renamed ampdaemon (prctl) while the daemon is gone: still "daemon not running"."""
    healthy.stop("ampdaemon")
    healthy.process("ampdaemon", uid=uid, exe="/opt/cisco/amp/bin/ampscansvc", in_unit=True)
    assert _check(run(healthy), "daemon_not_running") is State.ACTIVE
    code, out = _plugin(healthy, "--state-file", "")
    assert code == 2 and "Connector daemon not running" in out.splitlines()[0], out


@pytest.mark.parametrize("kind", ["huge", "fifo"])
def test_an_unreadable_own_cgroup_only_takes_the_unit_s_word_away(healthy: LinuxTree, run: Evaluate,
                                                                  kind: str) -> None:
    """A user's process whose cgroup file cannot be read (too long a path) makes nothing unknown."""
    healthy.stop("ampscansvc")
    pid = healthy.process("ampscansvc", uid=1000, in_unit=False)
    path = healthy.root / f"proc/{pid}/cgroup"
    if kind == "huge":
        path.write_text("0::/" + "x" * processes.MAX_STATUS + "\n")
    else:
        os.mkfifo(path)
    assert result(run(healthy), "7").state is State.ACTIVE


def test_the_unit_does_not_vouch_for_a_program_outside_the_install_folder(healthy: LinuxTree,
                                                                          run: Evaluate) -> None:
    healthy.stop("ampscansvc")
    healthy.process("ampscansvc", uid=990, exe="/tmp/ampscansvc", in_unit=True, started_ago=1800)
    assert result(run(healthy), "7").state is State.ACTIVE


def test_short_lived_impostors_raise_no_fault_6(healthy: LinuxTree, tmp_path: Path) -> None:
    state = tmp_path / "state"
    for _ in range(3):
        pid = healthy.process("ampscansvc", uid=1000, exe="/home/mallory/ampscansvc", started_ago=5)
        code, out = _plugin(healthy, "--state-file", str(state))
        assert code == 0, out
        healthy.kill(pid)
    # The control: the same with the connector's own program does raise it.
    for _ in range(3):
        pid = healthy.process("ampscansvc", started_ago=5)
        code, out = _plugin(healthy, "--state-file", str(state))
        healthy.kill(pid)
    assert code == 1 and "Scan service restarting frequently (fault 6)" in out.splitlines()[0], out


@pytest.mark.parametrize("status", ["", "Name:\tampdaemon\n", "Uid:\t0\n", "Uid:\tx\tx\tx\tx\n",
                                    "Uid:\t0\t1000\t0\t0\n", "Uid:\t1000\t0\t0\t0\n", "\0" * 5000])
def test_a_status_without_root_s_uids_is_not_the_connector_s(healthy: LinuxTree, run: Evaluate,
                                                             status: str) -> None:
    pid = pid_of(healthy, "ampdaemon")
    healthy.write(f"proc/{pid}/status", status)  # still in the unit, which vouches for no daemon
    assert _check(run(healthy), "daemon_not_running") is State.ACTIVE


def test_an_unreadable_status_is_unknown_not_absent(healthy: LinuxTree, run: Evaluate) -> None:
    pid = pid_of(healthy, "ampdaemon")
    (healthy.root / f"proc/{pid}/status").unlink()
    os.mkfifo(healthy.root / f"proc/{pid}/status")
    assert _check(run(healthy), "daemon_not_running") is State.UNKNOWN


@pytest.mark.parametrize("uptime", [True, False])
def test_a_clock_step_does_not_make_one_process_several_starts(healthy: LinuxTree, tmp_path: Path,
                                                               uptime: bool) -> None:
    """The kernel's btime is the wall clock minus the uptime: stepping the clock back moves it."""
    state = tmp_path / "state"
    healthy.stop("ampscansvc")
    healthy.process("ampscansvc", started_ago=60)
    for step in range(4):
        healthy.write("proc/stat", f"cpu  1 2 3 4\nbtime {int(healthy.boot) - step}\n")
        if uptime:
            healthy.write("proc/uptime", f"{86400 + step:.2f} 100.00\n")
        code, out = _plugin(healthy, "--state-file", str(state), "-vv")
        assert code == 0, out
        assert "1 scan service processes started within 10 minutes" in out


def test_starts_of_another_boot_do_not_count(healthy: LinuxTree) -> None:
    store = StateStore(rootfs=str(healthy.root))
    assert store.scan_starts([(10, 100), (11, 200)], "boot-a", 300, 600) == [(10, 100), (11, 200)]
    assert store.scan_starts([(12, 50)], "boot-b", 300, 600) == [(12, 50)]  # a reboot: pids and ticks anew
    assert store.scan_starts([], "boot-b", 1000, 600) == []  # out of the window


def test_user_id_reads_long_and_odd_passwd_files(tmp_path: Path) -> None:
    host = Host(str(tmp_path))
    (tmp_path / "etc").mkdir()
    filler = "".join(f"user{n}:x:{n}:{n}::/home/user{n}:/bin/sh\n" for n in range(60_000))  # > 1 MiB: blocks
    (tmp_path / "etc/passwd").write_text(filler + "cisco-amp-scan-svc:x:990:990::/:/sbin/nologin\n")
    assert scan_user.user_id(host, "cisco-amp-scan-svc") == 990
    assert scan_user.user_exists(host, "user59999") and not scan_user.user_exists(host, "user60000")
    (tmp_path / "etc/passwd").write_text(filler + "cisco-amp-scan-svc:x:990")  # no newline at the end
    assert scan_user.user_id(host, "cisco-amp-scan-svc") == 990
    (tmp_path / "etc/passwd").write_text("xcisco-amp-scan-svc:x:1:1::/:/bin/sh\ncisco-amp-scan-svc:x:-5:1\n")
    assert scan_user.user_id(host, "cisco-amp-scan-svc") is None  # a negative uid is no uid
    (tmp_path / "etc/passwd").write_text("cisco-amp-scan-svc:x:" + "9" * 30 + ":1\n")
    assert scan_user.user_id(host, "cisco-amp-scan-svc") is None
    assert scan_user.user_id(host, "nobody-here") is None


# -- the kernel's own /proc ---------------------------------------------------------------------


@pytest.fixture
def sleepers(shared: Path) -> Path:
    """A copy of sleep named ampdaemon in a folder nobody may enter (the kernel names the process after it)."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        raise AssertionError("these tests run as root on Linux (.ci/test does)")
    program = shared / "ampdaemon"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", program)
    return program


def _live_daemons() -> list[int]:
    return [p.pid for p in processes.probe(Host("/"), Platform.LINUX).by_name["ampdaemon"]]


@pytest.mark.system  # starts a process as nobody
def test_live_proc_counts_no_process_outside_the_install_folder(sleepers: Path) -> None:
    as_root = subprocess.Popen([str(sleepers), "60"])
    as_nobody = subprocess.Popen([str(sleepers), "60"], user=NOBODY, group=NOBODY)
    try:
        found = _live_daemons()
        assert as_root.pid not in found and as_nobody.pid not in found
    finally:
        for process in (as_root, as_nobody):
            process.kill()
            process.wait()
