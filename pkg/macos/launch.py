"""Start a command of the macOS package from its private libraries.

The launchers in ../bin run ``python -I -S launch.py <command> [arguments]``. This file
then checks the interpreter (3.9 or later), puts ``../lib/<architecture>`` first on
``sys.path`` (the package carries the compiled dependencies for arm64 and x86_64;
``os.uname`` names the architecture this process runs as, so an x86_64 Python under
Rosetta gets the x86_64 ones) and hands over to ``checks.launch``. The exporter started by
launchd also takes the flags in the file named by SECURE_ENDPOINT_EXPORTER_ARGS_FILE, which
the package never overwrites. ``--compile`` (postinstall) writes the byte code once, as root,
so that later runs need not compile and unprivileged ones cannot write into the package.

It must run on the oldest interpreter it may meet, to say so in one line: no syntax newer
than Python 3.7.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import NoReturn

HOME = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENTRIES = {"check_secure_endpoint": "check_secure_endpoint", "secure-endpoint-exporter": "secure_endpoint_exporter"}
ARCHITECTURES = {"arm64": "arm64", "aarch64": "arm64", "x86_64": "x86_64"}
ARGS_FILE_VARIABLE = "SECURE_ENDPOINT_EXPORTER_ARGS_FILE"
DAEMON_PAUSE = 300  # seconds before a failed start under launchd exits, so the log gets a line per 5 min, not per 10 s


def fail(command: str, reason: str) -> NoReturn:
    """Say why in one line, as the plugin's UNKNOWN or on stderr, and exit 3."""
    if command == "check_secure_endpoint":
        print(f"SECURE ENDPOINT UNKNOWN - {reason}")
        sys.stdout.flush()
    else:
        print(f"{command}: {reason}", file=sys.stderr)
        if command == "secure-endpoint-exporter" and os.environ.get(ARGS_FILE_VARIABLE):
            import time

            time.sleep(DAEMON_PAUSE)
    sys.exit(3)


def library() -> str:
    """The folder of dependencies built for the architecture this interpreter runs as."""
    machine = os.uname().machine
    return os.path.join(HOME, "lib", ARCHITECTURES.get(machine, machine))


def extra_arguments(path: str) -> list[str]:
    """One flag per line (``--name=value``); blank lines and lines starting with # are skipped.

    No shell parsing: a value is taken as written, spaces included.
    """
    try:
        with open(path, encoding="utf-8") as lines:
            return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    except FileNotFoundError:
        return []


def main() -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if sys.version_info < (3, 9):  # noqa: UP036 - this file meets older interpreters, to name them
        fail(command or "launch.py", f"Python {sys.version.split()[0]} at {sys.executable} is older than 3.9: "
             f"install the Command Line Tools (xcode-select --install) or name another in {HOME}/etc/python")
    lib = library()
    if not os.path.isdir(lib):
        fail(command or "launch.py", f"this package has no libraries for {os.uname().machine} ({lib})")
    if command == "--compile":
        import compileall

        sys.exit(0 if compileall.compile_dir(lib, quiet=1) else 1)
    if command not in ENTRIES:
        fail("launch.py", f"unknown command {command!r}: expected one of {', '.join(sorted(ENTRIES))}")
    arguments = sys.argv[2:]
    args_file = os.environ.get(ARGS_FILE_VARIABLE, "")
    if command == "secure-endpoint-exporter" and args_file:
        arguments += extra_arguments(args_file)
    sys.path.insert(0, lib)
    sys.argv = [command, *arguments]
    from secure_endpoint_monitoring.checks import launch

    getattr(launch, ENTRIES[command])()


if __name__ == "__main__":
    main()
