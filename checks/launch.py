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
import signal
import sys
from collections.abc import Callable
from types import FrameType


class _StoppedEarly(BaseException):
    """SIGTERM before the command installed its own handler (checks/stopping.py), during the imports."""


def check_secure_endpoint() -> None:
    _run(_plugin, "SECURE ENDPOINT UNKNOWN - stopped by SIGTERM before the checks finished\n", 3)


def secure_endpoint_exporter() -> None:
    _run(_exporter, "", 0)


def _plugin() -> None:
    from checks.nagios import main

    _imported()
    main()


def _exporter() -> None:
    from exporter.main import main

    _imported()
    main()


def _imported() -> None:
    gc.freeze()
    gc.enable()


def _stopped_early(_signum: int, _frame: FrameType | None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise _StoppedEarly


def _run(command: Callable[[], None], early_line: str, early_code: int) -> None:
    """``early_line`` and ``early_code``: what a SIGTERM before the command's own handler ends in (a
    plugin must still print a state; Python's default would end it by the signal, which Nagios calls
    "out of bounds")."""
    gc.disable()
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN:  # ignored by whoever started us: stays so
        signal.signal(signal.SIGTERM, _stopped_early)
    try:
        command()
        code = 0
    except SystemExit as done:
        code = exit_code(done.code)
    except KeyboardInterrupt:  # Ctrl-C before the commands handle it themselves: no traceback
        code = 130
    except _StoppedEarly:
        sys.stdout.write(early_line)
        code = early_code
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
