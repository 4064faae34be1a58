"""One evaluation of the host at a time, shared by the scrapes that arrive while it runs, each answered
by its own deadline: a burst of scrapes never starts a pile of ampcli processes."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ..checks.report import Report
from .logs import kv

log = logging.getLogger("secure_endpoint_exporter")
GRACE = 0.2  # seconds past a scrape's deadline before it is answered 503


class EvaluationUnavailable(Exception):
    """No report for this scrape: the evaluation missed the scrape's deadline, or too many are stuck."""


class _Flight:
    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.allowed = deadline - time.monotonic()  # the time it was given, which a joining scrape compares
        self.done = threading.Event()
        self.result: Report | None = None
        self.error: Exception | None = None
        self.abandoned = False


class SharedEvaluation:
    """One evaluation in flight at a time, run in a worker thread; scrapes that arrive meanwhile share it.

    A scrape joins the evaluation in flight when that one was given at least the time the scrape may
    take. One started for a client that asked for less (a tiny X-Prometheus-Scrape-Timeout-Seconds) is
    cut short for that client alone: a scrape that may take more starts one with the server's full
    time (``--web.scrape-timeout``), which every later scrape can join, so at most two run at once
    whatever timeouts clients send. A scrape waits until its own deadline (plus ``grace``) and then
    gets an answer, never a hang. An evaluation still running past the deadline it was given is
    *abandoned*: it keeps its worker thread (a thread cannot be killed), and the next scrape starts
    a fresh one. At most ``max_stuck`` abandoned evaluations may run at once; beyond that, scrapes
    fail at once instead of piling up threads and ampcli processes. When a stuck evaluation
    returns at last, its result is dropped and its place is free again, so scraping recovers by
    itself. Workers: at most ``max_stuck + 2``.
    """

    def __init__(self, produce: Callable[[float], Report], max_stuck: int = 2, grace: float = GRACE) -> None:
        self._produce = produce
        self._max_stuck = max_stuck
        self._grace = grace
        self._lock = threading.Lock()
        self._flight: _Flight | None = None
        self.stuck = 0

    def get(self, deadline: float, full: float | None = None) -> Report:
        """The report of the evaluation in flight, or of a new one that must finish by ``deadline`` (this
        scrape's). ``full`` is the deadline the server's own budget gives: when the evaluation in flight
        was given less time than this scrape may take, a new one is started with it, which every later
        scrape can join."""
        now = time.monotonic()
        budget = deadline - now
        with self._lock:
            flight = self._flight
            if flight is not None and now > flight.deadline + self._grace:
                self._abandon(flight)
                flight = None
            new_deadline = deadline
            if flight is not None and flight.allowed + self._grace < budget:
                # Cut shorter than this scrape may wait (a client asked for little time): it goes on for
                # its own scrapes, and one of the server's full length replaces it for the others.
                flight, new_deadline = None, max(deadline, full or deadline)
            if flight is None:
                if self.stuck >= self._max_stuck:
                    raise EvaluationUnavailable(
                        f"{self.stuck} evaluations are stuck past their deadline; none is started until one of "
                        "them returns")
                flight = _Flight(new_deadline)
                worker = threading.Thread(target=self._run, args=(flight,), name="evaluation", daemon=True)
                try:
                    worker.start()
                except RuntimeError as error:  # the system will not give us another thread
                    raise EvaluationUnavailable(f"cannot start an evaluation: {error}") from None
                self._flight = flight
        if not flight.done.wait(max(0.0, deadline + self._grace - time.monotonic())):
            with self._lock:
                if not flight.done.is_set() and time.monotonic() > flight.deadline + self._grace:
                    self._abandon(flight)
            raise EvaluationUnavailable(f"the evaluation did not finish within this scrape's {max(0.0, budget):.1f} s; "
                                        "it goes on in the background")
        if flight.error is not None:
            raise flight.error
        assert flight.result is not None
        return flight.result

    def _abandon(self, flight: _Flight) -> None:
        """Under the lock: ``flight`` ran past its deadline; later scrapes no longer wait for it."""
        if not flight.abandoned:
            flight.abandoned = True
            self.stuck += 1
            log.warning("an evaluation is stuck past its deadline (%d stuck)", self.stuck, extra=kv(stuck=self.stuck))
        if self._flight is flight:
            self._flight = None

    def _run(self, flight: _Flight) -> None:
        try:
            flight.result = self._produce(flight.deadline)
        except Exception as error:  # noqa: BLE001 - handed to every scrape waiting on this flight
            flight.error = error
        finally:
            with self._lock:
                if flight.abandoned:
                    self.stuck -= 1
                    log.info("a stuck evaluation returned after all (%d still stuck)", self.stuck,
                             extra=kv(stuck=self.stuck))
                if self._flight is flight:
                    self._flight = None
                flight.done.set()
