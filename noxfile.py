"""The Python matrix: the unit and subprocess tests on every CPython the fleets run.

RHEL 9 and macOS ship 3.9, Ubuntu 22.04 3.10, Debian 12 3.11, Ubuntu 24.04 3.12. Tests marked
``system`` (Debian's daemons and packaging tools, another user) run once, on the Python of ``.ci/test``'s own
environment: they test those programs, not the Python. ``.ci/test`` calls this with the versions it
found; under ``CI=true`` a version without an interpreter fails the run instead of being skipped.
"""

from __future__ import annotations

import os

import nox

PYTHONS = ["3.9", "3.10", "3.11", "3.12", "3.13"]

nox.options.sessions = ["tests"]
nox.options.error_on_missing_interpreters = os.environ.get("CI") == "true"


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """``pytest -m 'not system'`` in a fresh environment of this Python; arguments after ``--`` go to pytest."""
    session.install(".[test]")
    # Four workers on two cores: most tests wait on a subprocess (ampcli timeouts, hung readers).
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not system", "-n", "4",
                *session.posargs, env={"PYTHONDONTWRITEBYTECODE": ""})  # byte code once, not per subprocess
