"""The commands' entry points: a SIGTERM during the imports ends in the command's own result; the exit is the
interpreter's, output flushed to the last byte."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.commands import script
from tests.hosttree import LinuxTree


def _buffered(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """A command whose output to a pipe is buffered, as under cron or Nagios (not PYTHONUNBUFFERED)."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}
    return subprocess.run([script(name), *args], capture_output=True, text=True, timeout=30, env=env, check=False)


def test_everything_written_reaches_a_pipe(healthy: LinuxTree) -> None:
    """What is buffered reaches the pipe, to the last byte."""
    done = _buffered("secure-endpoint-exporter", "--path.rootfs", str(healthy.root), "--ampcli.run-from-rootfs",
                     "--once", "--format", "json")
    assert done.returncode == 0
    assert len(done.stdout) > 10000 and json.loads(done.stdout)["connector"]["installed"] is True
    plugin = _buffered("check_secure_endpoint", "--path.rootfs", str(healthy.root), "--ampcli.run-from-rootfs",
                       "--state-file", "", "-vv")
    assert plugin.returncode == 0 and len(plugin.stdout.splitlines()) > 10, plugin.stdout
    assert plugin.stdout.endswith("\n")


def test_a_usage_error_exits_as_argparse_says() -> None:
    done = subprocess.run([script("secure-endpoint-exporter"), "--no-such-flag"], capture_output=True, text=True,
                          timeout=30, check=False)
    assert done.returncode == 2 and "unrecognized arguments: --no-such-flag" in done.stderr


def test_output_that_cannot_be_written_is_not_an_ok_exit(healthy: LinuxTree) -> None:
    """A full disk (here /dev/full) under cron or a pipe: exit 120 as the interpreter itself would, not 0."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}
    with open("/dev/full", "w") as full:
        done = subprocess.run([script("check_secure_endpoint"), "--path.rootfs", str(healthy.root),
                               "--ampcli.run-from-rootfs", "--state-file",
                               ""], stdout=full, stderr=subprocess.PIPE, env=env, timeout=30, check=False)
    assert done.returncode == 120


@pytest.mark.parametrize(("line", "code"), [
    ("SECURE ENDPOINT UNKNOWN - stopped by SIGTERM before the checks finished\n", 3),  # the plugin's
    ("", 0),  # the exporter's
])
def test_sigterm_during_the_imports_ends_in_the_commands_own_result(line: str, code: int) -> None:
    """Before the command's handler is in place (the imports), SIGTERM must not end the run by the signal:
    Nagios calls that "out of bounds"."""
    program = ("import os, signal; from secure_endpoint_monitoring.checks import launch; "
               f"launch._run(lambda: os.kill(os.getpid(), signal.SIGTERM), {line!r}, {code})")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=30, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (code, line, "")
