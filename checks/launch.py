"""The entry points of both commands: start-up and exit cut to what a short run needs.

A plugin run lasts about a tenth of a second, most of it the interpreter's
start-up and imports. Two things Python does by default cost such a run time
and buy it nothing:

- cyclic garbage collection during the imports: what they create lives until
  the exit, so the collector walks it again and again and frees nothing. It is
  off until the imports are done; what they made is then frozen out of later
  collections (``gc.freeze``), which run as usual.
- the teardown after the last line is written: every module finalised and
  every object freed one by one (15 to 25 ms here). The run flushes its output
  and ends at once instead (``os._exit``), as a C plugin would.

Called as a library (``checks.nagios.main``, ``exporter.main.main``) nothing of
this applies.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable


def check_secure_endpoint() -> None:
    gc.disable()
    from checks.nagios import main

    _run(main)


def secure_endpoint_exporter() -> None:
    gc.disable()
    from exporter.main import main

    _run(main)


def _run(main: Callable[[], None]) -> None:
    gc.freeze()
    gc.enable()
    try:
        main()
        code = 0
    except SystemExit as done:
        code = exit_code(done.code)
    except KeyboardInterrupt:  # Ctrl-C before the commands handle it themselves: no traceback
        code = 130
    if not _flush() and code == 0:
        code = 120  # what CPython exits with when it cannot flush stdout at the end
    os._exit(code)


def exit_code(code: object) -> int:
    """What the interpreter would exit with for ``sys.exit(code)``; a message goes to stderr."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _flush() -> bool:
    """What the teardown would have written: log handlers, then stdout and stderr; False when stdout failed."""
    if "logging" in sys.modules:
        sys.modules["logging"].shutdown()
    flushed = True
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a full disk, a reader gone: the output is not all there
            flushed = flushed and stream is not sys.stdout
    return flushed
