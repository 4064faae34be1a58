"""Runs the installed console scripts as subprocesses, as Nagios and cron would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def script(name: str) -> str:
    path = BIN / name
    if not path.exists():
        raise AssertionError(f"{path} is missing: install the project with pip install -e '.[test]'")
    return str(path)


def run(name: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([script(name), *args], capture_output=True, text=True, timeout=timeout, check=False)
