"""check_secure_endpoint as Nagios runs it: the exact first line and the exit code."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.commands import run, script
from tests.hosttree import LinuxTree, faults_status, policy_output

DAY = 86400
# The healthy tree's ampcli policy says the definitions were updated two hours before the tree was built.
PERF_CLEAR = "active=0;;;0;9 critical=0;;;0;15 definitions_age=AGEs;604800;;0 unknown=0;;;0;15 warning=0;;;0;15"
AGE = re.compile(r"(?<=definitions_age=)(\d+)(?=s;)")
# 'label'=value[UOM];[warn];[crit];[min];[max], the plugin guidelines' perfdata syntax.
PERFDATA = re.compile(r"('[^'=]+'|[^'=\s]+)=-?[0-9.]+(s|ms|us|%|B|KB|MB|TB|c)?(;[0-9.~:@-]*){0,4}")


def aged(line: str, near: float, slack: float = 60) -> str:
    """The line with the definitions' age as AGE, once it is seen to be ``near`` seconds (runs take time)."""
    found = AGE.search(line)
    assert found is not None, line
    assert near - 1 <= int(found.group(1)) <= near + slack, line
    return AGE.sub("AGE", line)


def plugin(tree: LinuxTree | Path, *args: str, state: Path | None = None, raw: bool = False) -> tuple[int, list[str]]:
    """Exit code and lines; unless ``raw``, the definitions' age (it grows while a test runs) reads AGE."""
    root = tree.root if isinstance(tree, LinuxTree) else tree
    state_args = ["--state-file", str(state)] if state else ["--state-file", ""]
    done = run("check_secure_endpoint", "--path.rootfs", str(root), "--ampcli.run-from-rootfs", *state_args, *args)
    assert done.stderr == ""  # everything goes into the plugin output Nagios reads
    lines = done.stdout.splitlines()
    if lines and not raw:
        lines[0] = AGE.sub("AGE", lines[0])
    return done.returncode, lines


def test_healthy(healthy: LinuxTree) -> None:
    code, lines = plugin(healthy, raw=True)
    assert [aged(lines[0], 7200)] == [f"SECURE ENDPOINT OK - no active faults (9 checked), connector connected | "
                                      f"{PERF_CLEAR}"]
    assert len(lines) == 1 and code == 0


def test_healthy_verbose_lists_every_fault(healthy: LinuxTree) -> None:
    code, lines = plugin(healthy, "-v")
    assert code == 0
    assert len(lines) == 1 + 5 + 9 + 1 + 1  # the first line, health checks, Cisco's faults, ours, the lookup
    assert "OK: Real-time file system monitor not started (fault 8): clear." in lines
    assert lines[-1] == "processes found through the cgroup of cisco-amp.service"  # why a run was fast, or slow


def test_not_installed_is_critical_by_default(tree: LinuxTree) -> None:
    code, lines = plugin(tree)
    assert lines[0] == ("SECURE ENDPOINT CRITICAL - Connector not installed | "
                        "active=0;;;0;9 critical=1;;;0;15 unknown=0;;;0;15 warning=0;;;0;15")
    assert lines[1] == "CRITICAL: Connector not installed. Fix: Install the connector from the Secure Endpoint console."
    assert code == 2


@pytest.mark.parametrize(("choice", "code", "word"), [("ok", 0, "OK"), ("warning", 1, "WARNING"),
                                                      ("unknown", 3, "UNKNOWN")])
def test_not_installed_choice(tree: LinuxTree, choice: str, code: int, word: str) -> None:
    got, lines = plugin(tree, "--not-installed", choice)
    assert got == code
    assert lines[0].startswith(f"SECURE ENDPOINT {word} - Connector not installed |")


def test_active_faults_with_cause_and_fix(healthy: LinuxTree) -> None:
    (healthy.root / "usr/src/kernels" / healthy.release).rmdir()
    healthy.modules()
    healthy.secure_boot(True)
    for entry in list((healthy.root / "proc").iterdir()):
        if (entry / "comm").exists() and (entry / "comm").read_text().strip() == "ampdaemon":
            healthy.kill(int(entry.name))
    healthy.process("ampdaemon")
    code, lines = plugin(healthy, raw=True)
    assert code == 2
    assert aged(lines[0], 7200) == (
        "SECURE ENDPOINT CRITICAL - Real-time file system monitor not started (fault 8), "
        "Real-time network monitor not started (fault 9), Kernel headers package missing (fault 11) | "
        "active=3;;;0;9 critical=3;;;0;15 definitions_age=AGEs;604800;;0 unknown=0;;;0;15 warning=0;;;0;15"
    )
    fault8 = next(line for line in lines if "(fault 8)" in line and line.startswith("CRITICAL"))
    assert "Cause: UEFI Secure Boot is on" in fault8
    assert "Fix: Turn UEFI Secure Boot off" in fault8
    fault11 = next(line for line in lines if line.startswith("CRITICAL: Kernel headers package missing (fault 11)"))
    assert ("Fix: install the package kernel-devel-5.14.0-362.8.1.el9_3.x86_64 and restart the connector "
            "(systemctl restart cisco-amp).") in fault11


def test_warning_fault_and_severity_options(healthy: LinuxTree) -> None:
    healthy.ampcli(faults_status((18, "Major", "Connector event monitoring is overloaded.")))
    code, lines = plugin(healthy, raw=True)
    assert (code, aged(lines[0], 7200)) == (1, "SECURE ENDPOINT WARNING - Event monitoring overloaded (fault 18) | "
                                               "active=1;;;0;9 critical=0;;;0;15 definitions_age=AGEs;604800;;0 "
                                               "unknown=0;;;0;15 warning=1;;;0;15")
    code, lines = plugin(healthy, "--critical", "18", raw=True)
    assert code == 2 and lines[0].startswith("SECURE ENDPOINT CRITICAL - Event monitoring overloaded (fault 18)")
    code, lines = plugin(healthy, "--ignore", "18,6", raw=True)
    assert code == 0
    assert aged(lines[0], 7200) == ("SECURE ENDPOINT OK - no active faults (7 checked), connector connected | "
                                    "active=0;;;0;7 critical=0;;;0;13 definitions_age=AGEs;604800;;0 "
                                    "unknown=0;;;0;13 warning=0;;;0;13")


@pytest.mark.parametrize("names", [["--ignore", "event_monitoring_overloaded,scan_service_restarting_frequently"],
                                   ["--ignore", "Event-Monitoring-Overloaded", "--ignore", "6"],
                                   ["--ignore", "018, scan_service_restarting_frequently"]])
def test_faults_are_named_by_id_or_by_their_metric_label(healthy: LinuxTree, names: list[str]) -> None:
    healthy.ampcli(faults_status((18, "Major", "Connector event monitoring is overloaded.")))
    code, lines = plugin(healthy, *names, raw=True)
    assert code == 0
    assert aged(lines[0], 7200) == ("SECURE ENDPOINT OK - no active faults (7 checked), connector connected | "
                                    "active=0;;;0;7 critical=0;;;0;13 definitions_age=AGEs;604800;;0 "
                                    "unknown=0;;;0;13 warning=0;;;0;13")


def test_severity_options_take_names(healthy: LinuxTree) -> None:
    healthy.ampcli(faults_status((18, "Major", "x")))
    code, lines = plugin(healthy, "--critical", "event_monitoring_overloaded")
    assert (code, lines[0].partition(" | ")[0]) == (2, "SECURE ENDPOINT CRITICAL - Event monitoring overloaded "
                                                       "(fault 18)")
    healthy.ampcli()
    healthy.selinux(enforcing=True, module="disabled")
    code, lines = plugin(healthy, "--warning", "selinux_policy_missing")
    assert (code, lines[0].partition(" | ")[0]) == (1, "SECURE ENDPOINT WARNING - SELinux policy module missing or "
                                                       "disabled (fault 19)")


def test_dutch(healthy: LinuxTree) -> None:
    healthy.ampcli(faults_status((18, "Major", "overloaded")))
    code, lines = plugin(healthy, "--lang", "nl")
    assert code == 1
    assert lines[0].startswith("SECURE ENDPOINT WARNING - Gebeurtenisbewaking overbelast (fout 18) |")
    assert "Oplossing: Zoek het drukke proces." in lines[1]


def test_critical_outranks_unknown(healthy: LinuxTree) -> None:
    healthy.write("etc/passwd", "root:x:0:0::/root:/bin/sh\n")
    healthy.remove("opt/cisco/amp/etc/policy.xml")
    code, lines = plugin(healthy, "--critical", "5")
    assert code == 2
    assert lines[0].startswith("SECURE ENDPOINT CRITICAL - Scan service user unavailable (fault 5), "
                               "Real-time file system monitor not started (fault 8): state unknown")
    assert any(line.startswith("UNKNOWN: Real-time file system monitor not started (fault 8). Why unknown: "
                               "no connector policy found at /opt/cisco/amp/etc/policy.xml") for line in lines)


def test_only_unknowns_give_unknown(healthy: LinuxTree) -> None:
    healthy.remove("opt/cisco/amp/etc/policy.xml")
    code, lines = plugin(healthy)
    assert code == 3
    assert lines[0].startswith("SECURE ENDPOINT UNKNOWN - Real-time file system monitor not started (fault 8): "
                               "state unknown")
    assert "unknown=4;;;0;15" in lines[0]  # 8, 9, 11 and the next boot's kernel: all need the policy


def test_hung_ampcli_costs_at_most_its_timeout(healthy: LinuxTree) -> None:
    healthy.ampcli(hang=60)
    started = time.monotonic()
    code, lines = plugin(healthy)
    elapsed = time.monotonic() - started
    assert elapsed < 10, elapsed
    assert code == 1
    assert lines[0].startswith("SECURE ENDPOINT WARNING - Connector status unavailable, ")
    assert any("did not answer within 5 s" in line for line in lines)


def test_plugin_timeout_is_unknown(healthy: LinuxTree) -> None:
    healthy.ampcli(hang=60)
    started = time.monotonic()
    code, lines = plugin(healthy, "-t", "1", "--ampcli-timeout", "30")
    elapsed = time.monotonic() - started
    assert code in (1, 3)
    # ampcli is held below the plugin's own timeout, so the check still answers, in time.
    assert lines[0].startswith("SECURE ENDPOINT WARNING - Connector status unavailable")
    assert any("did not answer in the 0." in line and "s left of the evaluation's time" in line for line in lines)
    assert elapsed < 1 + 1.5, elapsed  # -t plus the interpreter's start


NOT_A_FAULT = "is not a fault id or name in the catalogue (ids 1 to 19, names such as scan_service_user_unavailable " \
              "or not_installed)"


@pytest.mark.parametrize(("args", "reason"), [
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--ignore", "eighteen"], f"argument --ignore: 'eighteen' {NOT_A_FAULT}"),
    (["--ignore", "20"], f"argument --ignore: '20' {NOT_A_FAULT}"),
    (["--ignore", "0"], f"argument --ignore: '0' {NOT_A_FAULT}"),
    (["--critical", "18,unknown"], f"argument --critical: 'unknown' {NOT_A_FAULT}"),
    (["--warning", "8,9,1x"], f"argument --warning: '1x' {NOT_A_FAULT}"),
    (["--critical", "event_monitoring_overloaded", "--warning", "18"],
     "fault 18 is given to both --critical and --warning"),
    (["--critical", "8", "--warning", "8"], "fault 8 is given to both --critical and --warning"),
    (["--ampcli-timeout", "-1"], "argument --ampcli-timeout: '-1' must be a number greater than 0 and at most 1e9"),
    (["--definitions-max-age", "inf"],
     "argument --definitions-max-age: 'inf' must be a number greater than 0 and at most 1e9"),
    (["--lang", "de"], "argument --lang: invalid choice: 'de' (choose from 'en', 'nl')"),
])
def test_bad_arguments(healthy: LinuxTree, args: list[str], reason: str) -> None:
    code, lines = plugin(healthy, *args)
    assert (code, lines) == (3, [f"SECURE ENDPOINT UNKNOWN - bad arguments: {reason}"])


def test_missing_root(tmp_path: Path) -> None:
    code, lines = plugin(tmp_path / "nowhere")
    assert (code, lines) == (3, [f"SECURE ENDPOINT UNKNOWN - bad arguments: --path.rootfs {tmp_path}/nowhere "
                                 "is not a directory"])


def test_state_file_carries_scan_restarts(healthy: LinuxTree, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    for started_ago in (400, 200):
        pid = healthy.process("ampscansvc", started_ago=started_ago)
        assert plugin(healthy, state=state)[0] == 0
        healthy.kill(pid)
    healthy.process("ampscansvc", started_ago=10)
    code, lines = plugin(healthy, state=state)
    assert code == 1
    assert lines[0].startswith("SECURE ENDPOINT WARNING - Scan service restarting frequently (fault 6) |")


def test_damaged_state_file_is_reset(healthy: LinuxTree, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text("{not json")
    code, lines = plugin(healthy, state=state)
    assert code == 0, lines
    assert f"state file {state} was damaged and has been reset" in lines
    assert state.read_text().startswith("{")


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_is_unknown_as_the_guidelines_ask(flag: str) -> None:
    done = run("check_secure_endpoint", flag)
    assert (done.returncode, done.stderr) == (3, "")
    assert re.fullmatch(r"check_secure_endpoint \d+\.\d+\.\d+\S*\n", done.stdout), done.stdout


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_is_unknown_as_the_guidelines_ask(flag: str) -> None:
    done = run("check_secure_endpoint", flag)
    assert (done.returncode, done.stderr) == (3, "")
    assert done.stdout.startswith("usage: check_secure_endpoint ")
    assert "--ignore FAULTS" in done.stdout and "event_monitoring_overloaded" in done.stdout


# -- the definitions' age in the perfdata -----------------------------------------------------------------
def test_perfdata_follows_the_plugin_guidelines(healthy: LinuxTree) -> None:
    healthy.ampcli(faults_status((18, "Major", "x")))
    _code, lines = plugin(healthy, raw=True)
    perfdata = lines[0].split(" | ", 1)[1].split(" ")
    assert [p.split("=")[0] for p in perfdata] == ["active", "critical", "definitions_age", "unknown", "warning"]
    for item in perfdata:
        assert PERFDATA.fullmatch(item), item


def test_age_from_the_connectors_last_update(healthy: LinuxTree) -> None:
    healthy.ampcli(policy=policy_output(time.time() - 3 * DAY))
    _code, lines = plugin(healthy, raw=True)
    assert aged(lines[0], 3 * DAY).endswith(" definitions_age=AGEs;604800;;0 unknown=0;;;0;15 warning=0;;;0;15")


def test_age_from_the_newest_definition_file_when_ampcli_does_not_say(healthy: LinuxTree) -> None:
    healthy.ampcli(policy="")  # no ampcli policy: the newest CVD build (an hour before the tree was made)
    healthy.definitions("daily.cvd", build_time=time.time() - 10 * DAY)
    _code, lines = plugin(healthy, raw=True)
    assert "definitions_age=" in lines[0]
    aged(lines[0], 3600)


def test_an_update_dated_in_the_future_is_not_believed(healthy: LinuxTree) -> None:
    healthy.ampcli(policy=policy_output(time.time() + 30 * DAY))
    _code, lines = plugin(healthy, raw=True)
    aged(lines[0], 3600)  # the CVD build, as the staleness check does


def test_stale_definitions_pass_the_warning_threshold(healthy: LinuxTree) -> None:
    healthy.ampcli(policy=policy_output(time.time() - 8 * DAY))
    code, lines = plugin(healthy, "--definitions-max-age", "1.5", raw=True)
    assert code == 1
    assert aged(lines[0], 8 * DAY) == ("SECURE ENDPOINT WARNING - Virus definitions out of date | active=0;;;0;9 "
                                       "critical=0;;;0;15 definitions_age=AGEs;129600;;0 unknown=0;;;0;15 "
                                       "warning=1;;;0;15")


def test_no_threshold_when_staleness_is_ignored(healthy: LinuxTree) -> None:
    code, lines = plugin(healthy, "--ignore", "definitions_stale", raw=True)
    assert code == 0
    assert " definitions_age=AGEs;;;0 " in aged(lines[0], 7200)


def test_no_age_when_nothing_says_it(healthy: LinuxTree) -> None:
    healthy.ampcli(policy="")
    healthy.remove(healthy.DEFINITIONS)
    code, lines = plugin(healthy)
    assert code == 3
    assert lines[0] == ("SECURE ENDPOINT UNKNOWN - Virus definitions out of date: state unknown | active=0;;;0;9 "
                        "critical=0;;;0;15 unknown=1;;;0;15 warning=0;;;0;15")


def test_without_the_privilege_to_read_the_policy(healthy: LinuxTree) -> None:
    """As a monitoring user that cannot read root-only files: unknown with the reason, never clear."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise AssertionError("setpriv (util-linux) is missing")
    policy = healthy.root / "opt/cisco/amp/etc/policy.xml"
    os.chown(policy, 12345, 12345)
    policy.chmod(0o600)
    done = subprocess.run(
        [setpriv, "--bounding-set", "-dac_override,-dac_read_search", "--", script("check_secure_endpoint"),
         "--path.rootfs", str(healthy.root), "--ampcli.run-from-rootfs", "--state-file", ""],
        capture_output=True, text=True, timeout=30, check=False)
    lines = done.stdout.splitlines()
    assert done.returncode == 3, done.stdout
    assert lines[0].startswith("SECURE ENDPOINT UNKNOWN - Real-time file system monitor not started (fault 8): "
                               "state unknown")
    # The path as it is on the host under test, not where the tree sits on this machine.
    assert "Why unknown: could not read policy evidence: permission denied: /opt/cisco/amp/etc/policy.xml." in lines[1]


def test_the_plugins_own_timeout_is_one_unknown_line(healthy: LinuxTree, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """-t running out (nagiosplugin's alarm) ends in one UNKNOWN line in the plugin's own format, no traceback."""
    import nagiosplugin

    from secure_endpoint_monitoring.checks import nagios

    def hangs(self: object) -> None:
        raise nagiosplugin.Timeout("3s")

    monkeypatch.setattr(nagios.SecureEndpoint, "probe", hangs)
    args, policy = nagios.parse_args(["--path.rootfs", str(healthy.root), "--ampcli.run-from-rootfs",
                                      "--state-file", "", "-t", "3", "-vv"])
    with pytest.raises(SystemExit) as ended:
        nagios.run(args, policy)
    assert ended.value.code == 3
    assert capsys.readouterr().out.splitlines() == ["SECURE ENDPOINT UNKNOWN - the check was stopped after 3 s (-t 3)"]
