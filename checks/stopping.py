"""SIGTERM, SIGHUP and Ctrl-C: end the programs in flight, then unwind once, without a traceback.

Python's default for SIGTERM kills the process on the spot: an ``ampcli`` it started keeps running,
orphaned, and nothing is logged. Its default for Ctrl-C raises ``KeyboardInterrupt`` wherever the
code is, a second Ctrl-C raises it again inside the clean-up, and both end in a traceback. After
``handle_stop_signals``, the first SIGTERM, SIGHUP or SIGINT kills every program ``Host.start`` started
and raises ``Stopped`` in the main thread (``Host.start`` raises it itself when the signal lands
between its fork and the new program's registration); the entry points catch it and end with their
own line. Any further one while stopping is ignored, and so is one that arrives while the plugin
writes its verdict. SIGHUP's default would kill the process as SIGTERM's does (a closed terminal, a
``kill -HUP``): the plugin and ``--once`` stop on it like on SIGTERM; the server reloads its web
config instead (``exporter.server``), as exporter-toolkit's users expect.
"""

from __future__ import annotations

import signal
from types import FrameType

from checks.host import Stopped, end_programs, stop_programs

__all__ = ["STOP_SIGNALS", "Stopped", "end_programs", "handle_stop_signals", "ignore_stop_signals"]

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def handle_stop_signals() -> None:
    """Install the handler (main thread only); a signal ignored by whoever started us stays ignored
    (a job in the background of a shell has SIGINT ignored)."""
    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _on_stop_signal)


def ignore_stop_signals() -> None:
    """From here on a stop signal changes nothing: the verdict is being written (a second line
    saying "stopped" after it would contradict it)."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def _on_stop_signal(signum: int, _frame: FrameType | None) -> None:
    ignore_stop_signals()
    if stop_programs(signum):
        return  # inside Host.start, between fork and registration: it raises Stopped itself
    raise Stopped(signum)
