"""Runs the installed console scripts as subprocesses, as Nagios and cron would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NoReturn

import pytest

BIN = Path(sys.executable).parent


def script(name: str) -> str:
    path = BIN / name
    if not path.exists():
        raise AssertionError(f"{path} is missing: install the project with pip install -e '.[test]'")
    return str(path)


def run(name: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([script(name), *args], capture_output=True, text=True, timeout=timeout, check=False)


def other_python(version: str) -> str:
    """An interpreter of another CPython version (``3.9``) for the tests of what runs on the fleets' Pythons:
    pyenv's, from ``$SEM_PYENV_ROOT`` (which .ci/test passes through sudo), ``$PYENV_ROOT`` or ``~/.pyenv``;
    else ``python3.9`` on PATH (not pyenv's shim, which needs pyenv's own PATH)."""
    root = Path(os.environ.get("SEM_PYENV_ROOT") or os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    found = sorted(root.glob(f"versions/{version}.*/bin/python{version}"),
                   key=lambda path: [int(part) for part in path.parts[-3].split(".") if part.isdigit()])
    if found:
        return str(found[-1])
    on_path = shutil.which(f"python{version}")
    if on_path is None or "/shims/" in on_path:
        unavailable(f"no CPython {version} under {root} (pyenv) or on PATH")
    return str(on_path)


def unavailable(reason: str) -> NoReturn:
    """Skip a test whose tool or condition this machine lacks, except under CI=true, where that is a failure:
    CI installs everything the tests need (.ci/test)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)
