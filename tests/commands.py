"""Runs the installed console scripts as subprocesses, as Nagios and cron would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def script(name: str) -> str:
    path = BIN / name
    if not path.exists():
        raise AssertionError(f"{path} is missing: install the project with pip install -e '.[test]'")
    return str(path)


def run(name: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([script(name), *args], capture_output=True, text=True, timeout=timeout, check=False)


def unavailable(reason: str) -> None:
    """Skip a test whose tool or condition this machine lacks, except under CI=true, where that is a failure:
    CI installs everything the tests need (.ci/run)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)
