"""SIGTERM and Ctrl-C: end the programs in flight, then unwind once, without a traceback.

Python's default for SIGTERM kills the process on the spot: an ``ampcli`` it started keeps running,
orphaned, and nothing is logged. Its default for Ctrl-C raises ``KeyboardInterrupt`` wherever the
code is, a second Ctrl-C raises it again inside the clean-up, and both end in a traceback. After
``handle_stop_signals``, the first SIGTERM or SIGINT kills every program ``Host.start`` started
and raises ``Stopped`` in the main thread; the entry points catch it and end with their own line.
Any further one while stopping is ignored.
"""

from __future__ import annotations

import signal
from types import FrameType

from checks.host import stop_programs

__all__ = ["STOP_SIGNALS", "Stopped", "handle_stop_signals"]

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stopped(BaseException):
    """A stop signal arrived; a BaseException so that no ``except Exception`` of a probe swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signal_name = signal.Signals(signum).name


def handle_stop_signals() -> None:
    """Install the handler (main thread only); a signal ignored by whoever started us stays ignored
    (a job in the background of a shell has SIGINT ignored)."""
    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _on_stop_signal)


def _on_stop_signal(signum: int, _frame: FrameType | None) -> None:
    for other in STOP_SIGNALS:
        signal.signal(other, signal.SIG_IGN)
    stop_programs()
    raise Stopped(signum)
