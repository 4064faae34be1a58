"""The rooted host: symlinks stay inside the root, reads are bounded, programs time out."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from secure_endpoint_monitoring.checks.evidence import scan_user
from secure_endpoint_monitoring.checks.host import Host, HostError
from secure_endpoint_monitoring.checks.programs import CommandTimeout
from secure_endpoint_monitoring.checks.walk import walk


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/hostname").write_text("fixture\n")
    return tmp_path


def test_absolute_symlink_resolves_inside_the_root(root: Path) -> None:
    os.symlink("/etc/hostname", root / "link")
    host = Host(str(root), run_programs=True)
    assert host.read_text("link") == "fixture\n"
    assert host.path("link") == str(root / "etc/hostname")


def test_dotdot_cannot_climb_out(root: Path) -> None:
    os.symlink("../../../../../../etc/hostname", root / "etc/up")
    assert Host(str(root), run_programs=True).read_text("etc/up") == "fixture\n"
    assert Host(str(root), run_programs=True).path("../../../etc/hostname") == str(root / "etc/hostname")


def test_symlink_loop_is_an_error_not_a_hang(root: Path) -> None:
    os.symlink("/b", root / "a")
    os.symlink("/a", root / "b")
    with pytest.raises(HostError, match="too many levels"):
        Host(str(root), run_programs=True).path("a/x")


def test_reads_are_bounded(root: Path) -> None:
    (root / "big").write_bytes(b"x" * 2048)
    with pytest.raises(HostError, match="larger than 1024 bytes"):
        Host(str(root), run_programs=True).read_bytes("big", limit=1024)


def test_walk_respects_depth(root: Path) -> None:
    (root / "a/b/c/d/e").mkdir(parents=True)
    seen = [found.rel for found in walk(Host(str(root), run_programs=True), "a", max_depth=2)]
    assert seen == ["a", "a/b", "a/b/c"]


def test_users_from_the_trees_passwd(root: Path) -> None:
    (root / "etc/passwd").write_text("# comment\nalice:x:1000:1000::/home/alice:/bin/sh\n")
    (root / "etc/group").write_text("staff:x:50:\n")
    host = Host(str(root), run_programs=True)
    assert scan_user.user_exists(host, "alice") and not scan_user.user_exists(host, "root")
    assert scan_user.group_exists(host, "staff") and not scan_user.group_exists(host, "alice")


def test_a_passwd_of_millions_of_bytes_is_searched_not_refused(root: Path) -> None:
    """An LDAP-sized passwd (3 MB here) is far over the 1 MiB read cap; it is searched as a stream."""
    lines = [f"user{n}:x:{10000 + n}:100:GECOS of user {n} cisco-amp-scan-svc:/home/u{n}:/bin/sh" for n in range(40000)]
    text = "\n".join(lines) + "\n"
    assert len(text) > 3_000_000
    (root / "etc/passwd").write_text(text)
    host = Host(str(root), run_programs=True)
    assert not scan_user.user_exists(host, "cisco-amp-scan-svc")  # in a comment field, not at a line's start
    assert not scan_user.user_exists(host, "user")  # every line starts with "user", none with "user:"
    (root / "etc/passwd").write_text(text + "cisco-amp-scan-svc:x:990:990::/opt/cisco/amp:/sbin/nologin\n")
    assert scan_user.user_exists(host, "cisco-amp-scan-svc") and scan_user.user_exists(host, "user39999")


def test_a_name_across_the_search_blocks_is_found(root: Path) -> None:
    from secure_endpoint_monitoring.checks.evidence.scan_user import ACCOUNT_BLOCK

    head = "#" * (ACCOUNT_BLOCK - 5) + "\n"  # the next line starts 4 bytes before the first block ends
    (root / "etc/group").write_text(head + "cisco-amp-scan-svc:x:990:\n")
    assert scan_user.group_exists(Host(str(root), run_programs=True), "cisco-amp-scan-svc")


def test_live_root_uses_nss() -> None:
    host = Host("/")
    assert host.live
    assert scan_user.user_exists(host, "root")
    assert not scan_user.user_exists(host, "no-such-user-anywhere")


def test_hung_program_and_its_children_are_killed(root: Path) -> None:
    script = root / "hang"
    pidfile = root / "child.pid"
    script.write_text(f"#!/bin/sh\nsleep 60 &\necho $! > {pidfile}\nwait\n")
    script.chmod(0o755)
    started = time.monotonic()
    with pytest.raises(CommandTimeout, match=r"did not answer within 0\.5 s"):
        Host(str(root), run_programs=True).run("hang", [], timeout=0.5)
    assert time.monotonic() - started < 3
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_program_output_is_capped(root: Path) -> None:
    script = root / "chatty"
    script.write_text("#!/bin/sh\nhead -c 5000000 /dev/zero\n")
    script.chmod(0o755)
    result = Host(str(root), run_programs=True).run("chatty", [], timeout=5, max_output=1000)
    assert result.truncated and len(result.stdout) == 1000 and result.returncode == 0


def test_symlink_loop_on_an_install_path_is_unknown_not_a_crash(tmp_path: Path) -> None:
    """A loop where the install marker belongs proves nothing: the installation is unknown, not absent."""
    from secure_endpoint_monitoring.checks.evaluate import evaluate
    from secure_endpoint_monitoring.checks.report import State

    (tmp_path / "opt").mkdir()
    os.symlink("/opt/cisco", tmp_path / "opt/cisco")
    report = evaluate(Host(str(tmp_path), run_programs=True))
    installed = next(r for r in report.checks if r.fault.id == "not_installed")
    assert installed.state is State.UNKNOWN
    assert installed.reason is not None and "symbolic links" in installed.reason.render("en")
