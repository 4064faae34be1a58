"""Golden outputs: for each demo host of ``examples/build_hosts.py``, the exact exposition, JSON report and
plugin output (English and Dutch), kept under ``tests/golden/<host>/`` and diffed by ``test_golden.py``, as
node_exporter's e2e-output does. A change of any output shows as a diff to review, not as a passing test.

Regenerate after an intended change (and read the diff before committing it):

    .venv/bin/python -m tests.golden

Only what differs from run to run is masked: durations, timestamps, ages (the trees are built "now") and
the Python version the exporter reports.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.commands import script
from tests.hosttree import LinuxTree

GOLDEN = Path(__file__).resolve().parent / "golden"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "build_hosts.py"
COMMON = ("--ampcli.run-from-rootfs", "--ampcli-timeout", "1", "--state-file", "")
VARIES = "<varies>"

# Every sample of a ``..._seconds`` series is a duration or a point in time.
_SECONDS_SAMPLE = re.compile(r"^(\w+_seconds(?:\{[^}]*\})?) \S+$", re.MULTILINE)
_AGE_PERFDATA = re.compile(r"\bdefinitions_age=\d+s")
_PYTHON_VERSION = re.compile(r'\bpythonversion="[^"]*"')  # the interpreter the tests run on
_TIME_FIELDS = re.compile(r'^(\s*"(?:duration_seconds|evaluated_at|definitions_build_time|definitions_updated_time)"'
                          r": )[-+0-9.eE]+", re.MULTILINE)


def _demo_hosts() -> dict[str, tuple[str, object]]:
    spec = importlib.util.spec_from_file_location("build_hosts", EXAMPLES)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.HOSTS)


def build(target: Path) -> dict[str, Path]:
    """The demo host trees, as ``examples/build_hosts.py`` writes them."""
    roots = {}
    for name, (distro, make) in _demo_hosts().items():
        release = "5.15.0-91-generic" if distro == "ubuntu" else "5.14.0-362.8.1.el9_3.x86_64"
        tree = LinuxTree(target / name, distro=distro, release=release)
        make(tree)  # type: ignore[operator]
        roots[name] = tree.root
    return roots


def mask(text: str) -> str:
    """The output with what differs between runs replaced by ``<varies>``."""
    text = _SECONDS_SAMPLE.sub(rf"\1 {VARIES}", text)
    text = _AGE_PERFDATA.sub(f"definitions_age={VARIES}", text)
    text = _PYTHON_VERSION.sub(f'pythonversion="{VARIES}"', text)
    return _TIME_FIELDS.sub(rf"\g<1>{VARIES}", text)


def _run(name: str, *args: str) -> str:
    done = subprocess.run([script(name), *args], capture_output=True, text=True, timeout=60, check=False)
    return mask(done.stdout) + f"exit {done.returncode}\n" + (f"stderr:\n{done.stderr}" if done.stderr else "")


def outputs(root: Path) -> dict[str, str]:
    """Each output file's name and its masked text for one host tree."""
    exporter = ("secure-endpoint-exporter", "--path.rootfs", str(root), *COMMON, "--once")
    plugin = ("check_secure_endpoint", "--path.rootfs", str(root), *COMMON, "-v")
    return {
        "metrics.prom": _run(*exporter),
        "report.json": _run(*exporter, "--format", "json"),
        "plugin.txt": _run(*plugin),
        "plugin.nl.txt": _run(*plugin, "--lang", "nl"),
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        for host, root in build(Path(scratch)).items():
            folder = GOLDEN / host
            folder.mkdir(parents=True, exist_ok=True)
            for name, text in outputs(root).items():
                (folder / name).write_text(text)
            print(folder)


if __name__ == "__main__":
    sys.exit(main())
