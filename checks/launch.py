"""The entry points of the commands: a SIGTERM that comes while the modules are still loading.

The commands install their own signal handling (``checks/programs.py``) once their modules are
imported. A scheduler that gives up on a check during the imports would otherwise end it by the
signal, which Nagios reports as "out of bounds", so until then SIGTERM ends the run with the
command's own result: the plugin prints UNKNOWN and exits 3, the exporter exits 0. Ctrl-C there ends
it with 130 and no traceback. Everything else, the exit included, is the interpreter's own.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from types import FrameType


class _StoppedEarly(BaseException):
    """SIGTERM before the command installed its own handler, during the imports."""


def check_secure_endpoint() -> None:
    _run(_plugin, "SECURE ENDPOINT UNKNOWN - stopped by SIGTERM before the checks finished\n", 3)


def secure_endpoint_exporter() -> None:
    _run(_exporter, "", 0)


def secure_endpoint_cloud_exporter() -> None:
    _run(_cloud_exporter, "", 0)


def _cloud_exporter() -> None:
    from ..exporter.cloud.main import main

    main()


def _plugin() -> None:
    from .nagios import main

    main()


def _exporter() -> None:
    from ..exporter.main import main

    main()


def _stopped_early(_signum: int, _frame: FrameType | None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise _StoppedEarly


def _run(command: Callable[[], None], early_line: str, early_code: int) -> None:
    """``early_line`` and ``early_code``: what a SIGTERM before the command's own handler ends in."""
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN:  # ignored by whoever started us: stays so
        signal.signal(signal.SIGTERM, _stopped_early)
    try:
        command()
    except KeyboardInterrupt:  # Ctrl-C before the commands handle it themselves: no traceback
        sys.exit(130)
    except _StoppedEarly:
        sys.stdout.write(early_line)
        sys.exit(early_code)
