"""Running the commands as an unprivileged user (nobody), wherever the checkout and its venv live.

A checkout often sits where nobody may not go (a 0700 temporary folder, /root), so the project's
packages and their dependencies are copied once per test run into a world-readable folder, and the
command is started from there with the same interpreter (the compiled extensions need its version).
"""

from __future__ import annotations

import atexit
import functools
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

NOBODY = "65534"
AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--inh-caps", "-all", "--"]
PACKAGES = ("secure_endpoint_monitoring", "prometheus_client", "nagiosplugin", "psutil", "yaml", "_yaml", "bcrypt",
            "polib")
ENTRY_POINTS = {"check_secure_endpoint": "secure_endpoint_monitoring.checks.nagios",
                "secure-endpoint-exporter": "secure_endpoint_monitoring.exporter.main"}


@functools.cache
def runtime() -> str:
    """The world-readable folder holding the packages, made on first use and removed at exit."""
    folder = Path(tempfile.mkdtemp(prefix="se-nobody-", dir="/tmp"))
    atexit.register(shutil.rmtree, folder, True)
    for name in PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None:
            continue  # an optional part (PyYAML without its C loader)
        if spec.submodule_search_locations:
            source = next(iter(spec.submodule_search_locations))
            shutil.copytree(source, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif spec.origin:
            shutil.copy2(spec.origin, folder)
    for current, _dirs, files in os.walk(folder):
        os.chmod(current, 0o755)
        for entry in files:
            os.chmod(os.path.join(current, entry), 0o644)
    return str(folder)


@functools.cache
def interpreter() -> str:
    """This test run's Python, or the system's of the same version when nobody cannot start it."""
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    for candidate in (os.path.realpath(sys.executable), f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"):
        probe = subprocess.run([*AS_NOBODY, candidate, "-I", "-c", "pass"], capture_output=True, timeout=30,
                               check=False)
        if probe.returncode == 0:
            return candidate
    raise AssertionError(f"no Python {version} that user {NOBODY} may start: install python{version}")


def command(name: str) -> list[str]:
    """``name`` (a console script of this project) run as nobody."""
    boot = (f"import sys; sys.path.insert(0, {runtime()!r}); sys.argv[0] = {name!r}; "
            f"from {ENTRY_POINTS[name]} import main; main()")
    return [*AS_NOBODY, interpreter(), "-I", "-c", boot]
