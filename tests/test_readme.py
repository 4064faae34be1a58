"""The README against the programs: the synopses list every flag of ``--help``, the demo's sample output is
what the demo prints, and the Quick start's one-line command stops at its first failure.

The Quick start command is run as written in the README, with every program that would change the machine or
reach the network (``id``, ``sudo``, ``apt-get``, ``python3 -m venv``, ``pip``) replaced by a small script that
records its arguments; the plugin and the exporter it runs at the end are the real ones. It runs in a checkout,
as the README says: it fetches no code itself.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.commands import BIN, script

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
FLAG = re.compile(r"(?<![\w-])--?[A-Za-z][\w.-]*")
# --collector.NAME / --no-collector.NAME stand for one flag pair per collector.
COLLECTOR = re.compile(r"--(no-)?collector\.(?!disable-defaults$)([\w]+)$")
EXEMPT = {"-h", "--help"}
APT = "apt-get install -y ca-certificates python3-venv"


def section(title: str) -> str:
    """The README from the heading ``title`` to the next heading of the same or a higher level."""
    match = re.search(rf"^(#+) {re.escape(title)}\n", README, re.M)
    assert match, f"README has no heading {title!r}"
    level = len(match.group(1))
    end = re.compile(rf"^#{{1,{level}}} ", re.M).search(README, match.end())
    return README[match.end():end.start() if end else len(README)]


def blocks(text: str, lang: str = "") -> list[str]:
    """The fenced code blocks of ``text`` with that info string ('' = none), without their fences."""
    return [m.group(2) for m in re.finditer(r"^```(\w*)\n(.*?)^```$", text, re.M | re.S) if m.group(1) == lang]


def help_flags(command: str) -> set[str]:
    """Every option string ``command --help`` lists (its option lines start with two spaces and a dash)."""
    done = subprocess.run([script(command), "--help"], capture_output=True, text=True, timeout=30, check=False,
                          env={**os.environ, "COLUMNS": "200"})
    assert done.returncode in (0, 3), done.stderr
    flags: set[str] = set()
    for line in done.stdout.splitlines():
        match = re.match(r" {2}(-\S.*?)(?: {2,}|$)", line)
        if match:
            flags.update(FLAG.findall(match.group(1)))
    assert len(flags) > 10, f"parsed too few options from {command} --help: {sorted(flags)}"
    return flags


def generic(flags: set[str]) -> set[str]:
    """The collector family folded into --collector.NAME and --no-collector.NAME."""
    out = set()
    for flag in flags:
        match = COLLECTOR.match(flag)
        out.add(f"--{match.group(1) or ''}collector.NAME" if match else flag)
    return out


def differences(help_set: set[str], synopsis: str) -> tuple[set[str], set[str]]:
    """(flags of --help the synopsis lacks, flags of the synopsis --help does not have)."""
    written = generic(set(FLAG.findall(synopsis)))
    wanted = generic(help_set) - EXEMPT
    return wanted - written, written - wanted - EXEMPT


def synopsis(title: str) -> str:
    found = blocks(section(title))
    assert found, f"no synopsis block under {title!r}"
    return found[0]


@pytest.mark.parametrize(("command", "title"), [("check_secure_endpoint", "The Nagios/Icinga plugin"),
                                                 ("secure-endpoint-exporter", "The exporter"),
                                                 ("secure-endpoint-cloud-exporter", "The cloud exporter")])
def test_synopsis_matches_help(command: str, title: str) -> None:
    missing, extra = differences(help_flags(command), synopsis(title))
    assert not missing, f"the README's synopsis of {command} lacks {sorted(missing)}"
    assert not extra, f"the README's synopsis of {command} names flags --help does not know: {sorted(extra)}"


def test_synopsis_check_notices_a_missing_flag() -> None:
    flags = help_flags("check_secure_endpoint")
    text = synopsis("The Nagios/Icinga plugin").replace("[--ignore FAULTS]...", "")
    assert differences(flags, text) == ({"--ignore"}, set())


def test_every_collector_is_named() -> None:
    names = {m.group(2) for f in help_flags("secure-endpoint-exporter") if (m := COLLECTOR.match(f))}
    assert len(names) >= 10
    text = section("The exporter")
    assert {name for name in names if f"`{name}`" not in text} == set()


def test_demo_sample_is_what_the_demo_prints(tmp_path: Path) -> None:
    """The first sample line by a pattern where it changes with time (definitions_age grows with the tree's
    age, the ampcli policy of the tree dating the last update two hours before the build), the rest verbatim."""
    text = section("See it find faults (no connector needed)")
    commands = blocks(text, "sh")[0].splitlines()
    sample = blocks(text)[0].splitlines()
    demo = tmp_path / "demo-hosts"
    build = shlex.split(commands[0])
    assert build[:2] == [".venv/bin/python", "examples/build_hosts.py"]
    subprocess.run([sys.executable, str(ROOT / build[1]), str(demo)], cwd=ROOT, check=True, capture_output=True,
                   timeout=60)
    argv = [a.replace("demo-hosts", str(demo), 1) if a.startswith("demo-hosts/") else a
            for a in shlex.split(commands[1])]
    assert argv[0] == ".venv/bin/check_secure_endpoint"
    done = subprocess.run([script("check_secure_endpoint"), *argv[1:]], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    real = done.stdout.splitlines()
    first, found = re.subn(r"definitions_age=\d+s", r"definitions_age=\\d+s", re.escape(sample[0]))
    assert found == 1, f"the sample's first line has no definitions_age=<seconds>s: {sample[0]}"
    assert re.fullmatch(first, real[0]), f"README: {sample[0]}\nreal:   {real[0]}"
    assert sample[1:] == real[1:]


def test_two_set_up_commands() -> None:
    """The Quick start has exactly the two commands: one runs the product, one runs every test; CI runs the
    same two (.ci/run reads them from this section), and the README names the pytest line of .ci/test."""
    commands = blocks(section("Quick start (Debian 12)"), "sh")
    assert len(commands) == 2
    lines = commands[0].strip().splitlines()  # one command, a step a line: each line but the last ends in &&
    assert len(lines) > 1 and all(line.endswith(" &&") for line in lines[:-1]) and not lines[-1].endswith("&&")
    assert max(len(line) for line in lines) <= 100
    assert commands[1].strip() == "bash .ci/test"
    assert r"/^## Quick start \(Debian 12\)$/" in (ROOT / ".ci/run").read_text()
    pytest_line = next(line.strip() for line in (ROOT / ".ci/test").read_text().splitlines()
                       if "-m pytest" in line)
    assert f"sudo {pytest_line}" in section("Quick start (Debian 12)").replace("\n", " ")


# The stand-ins of the Quick start. Each writes one line to $LOG; they use no program from PATH.
STANDINS = {
    "id": '[ "$1" = -u ] && echo "$FAKE_UID"\n',
    "sudo": 'echo "sudo $*" >> "$LOG"\nexec "$@"\n',
    "apt-get": 'echo "apt-get $*" >> "$LOG"\nexit "${APT_EXIT:-0}"\n',
    "python3": """echo "python3 $*" >> "$LOG"
[ "$*" = "-m venv .venv" ] || exit 9
/bin/mkdir -p .venv/bin
printf '#!/bin/sh\\necho "pip $*" >> "$LOG"\\n' > .venv/bin/pip
if [ -n "${PLUGIN_EXIT:-}" ]; then
  printf '#!/bin/sh\\necho "plugin $*" >> "$LOG"\\nexit %s\\n' "$PLUGIN_EXIT" > .venv/bin/check_secure_endpoint
  printf '#!/bin/sh\\necho "exporter $*" >> "$LOG"\\necho secure_endpoint_connector_installed 0.0 > "$3"\\n' \\
    > .venv/bin/secure-endpoint-exporter
  /bin/chmod 755 .venv/bin/check_secure_endpoint .venv/bin/secure-endpoint-exporter
else
  /bin/ln -s "$REAL_BIN/check_secure_endpoint" "$REAL_BIN/secure-endpoint-exporter" .venv/bin/
fi
/bin/chmod 755 .venv/bin/pip
""",
}


def quick_start(tmp_path: Path, *, uid: int = 0, sudo: bool = False, **env: str) -> tuple[int, list[str], str]:
    """Runs the README's first command in bash with the stand-ins; gives its status, the log, its output."""
    command = blocks(section("Quick start (Debian 12)"), "sh")[0].strip()
    tools = tmp_path / "tools"
    tools.mkdir()
    for name, body in STANDINS.items():
        if name != "sudo" or sudo:
            (tools / name).write_text("#!/bin/sh\n" + body)
            (tools / name).chmod(0o755)
    grep = shutil.which("grep")
    assert grep
    (tools / "grep").symlink_to(grep)
    home = tmp_path / "home"
    checkout = home / "secure-endpoint-monitoring"
    checkout.mkdir(parents=True)
    log = tmp_path / "log"
    log.touch()
    bash = shutil.which("bash")
    assert bash
    done = subprocess.run([bash, "-c", command], cwd=checkout, capture_output=True, text=True, timeout=120, check=False,
                          env={"PATH": str(tools), "HOME": str(home), "LOG": str(log), "FAKE_UID": str(uid),
                               "REAL_BIN": str(BIN), **env})
    return done.returncode, log.read_text().splitlines(), done.stdout + done.stderr


def test_quick_start_as_root(tmp_path: Path) -> None:
    code, log, output = quick_start(tmp_path)
    assert code == 0, output
    assert log == ["apt-get update", APT, "python3 -m venv .venv", "pip install ."]
    assert "SECURE ENDPOINT " in output  # the real plugin's first line
    assert re.search(r"^secure_endpoint_connector_installed [01]\.0$", output, re.M), output
    assert (tmp_path / "home/secure-endpoint-monitoring/secure_endpoint.prom").is_file()


def test_quick_start_as_a_sudo_user(tmp_path: Path) -> None:
    code, log, output = quick_start(tmp_path, uid=1000, sudo=True, PLUGIN_EXIT="2")
    assert code == 0, output
    assert log[:4] == ["sudo apt-get update", "apt-get update", f"sudo {APT}", APT]
    assert "sudo" not in " ".join(log[4:])  # the venv and pip run as the user
    assert log[-2:] == ["plugin --state-file ", "exporter --once --output secure_endpoint.prom"]


def test_quick_start_without_sudo_stops_at_once(tmp_path: Path) -> None:
    code, log, output = quick_start(tmp_path, uid=1000)
    assert code == 127, output
    assert log == []


def test_quick_start_stops_when_apt_fails(tmp_path: Path) -> None:
    code, log, output = quick_start(tmp_path, APT_EXIT="100")
    assert code == 100, output
    assert log == ["apt-get update"]


@pytest.mark.parametrize("plugin_exit", ["0", "1", "2", "3"])
def test_quick_start_takes_every_plugin_verdict(tmp_path: Path, plugin_exit: str) -> None:
    code, log, output = quick_start(tmp_path, PLUGIN_EXIT=plugin_exit)
    assert code == 0, output
    assert log[-1] == "exporter --once --output secure_endpoint.prom"
    assert "secure_endpoint_connector_installed 0.0" in output


@pytest.mark.parametrize("plugin_exit", ["4", "127"])
def test_quick_start_stops_when_the_plugin_fails(tmp_path: Path, plugin_exit: str) -> None:
    code, log, output = quick_start(tmp_path, PLUGIN_EXIT=plugin_exit)
    assert code != 0, output
    assert log[-1] == "plugin --state-file "
    assert not any(line.startswith("exporter") for line in log)
