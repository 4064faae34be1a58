"""The background poll: every computer, page by page, into a snapshot that replaces the last one whole.

Scrapes never call the API; they read the last good snapshot. A poll that fails anywhere (an error
answer, a truncated or malformed page, a fleet that changed between pages) replaces nothing, and
``up`` says so. Requests are budgeted against the API's hourly limit (its ``X-RateLimit-*`` headers):
a poll that needs more requests than are left waits for the reset, and a fleet too large for the
interval stretches it, so the limit is never hit by this exporter alone. Errors back off: 429 until
its reset, 5xx and timeouts exponentially with jitter, 401/403 stop polling until the credentials
change (SIGHUP) and are logged once.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, NamedTuple

from ..logs import kv
from .api import APIError, Client, Malformed, RateLimit, RateLimited, Rejected
from .fleet import FAULT_EVENT_TYPES, FaultEvents, Reading, Snapshot

log = logging.getLogger("secure_endpoint_exporter.cloud")
PAGE = 500  # the API's largest page
WINDOW = 3600.0  # the rate limit's period: requests an hour
MAX_COMPUTERS = 2_000_000  # a "total" beyond this is a lie, not a fleet
MAX_EVENT_PAGES = 10  # fault events a poll reads at most: 5,000, the newest (the API answers newest first)
FIRST_BACKOFF = 10.0


class Churn(Malformed):
    """The fleet changed between pages (or the pages do not add up): this poll cannot be a whole fleet.
    ``came_again``: the GUIDs that came on two pages (moved by the change, or listed twice)."""

    reason = "churn"

    def __init__(self, message: str, came_again: frozenset[str] = frozenset()) -> None:
        super().__init__(message)
        self.came_again = came_again


REASONS = ("rejected", "rate_limited", "unavailable", "malformed", "churn")


class Status(NamedTuple):
    """The poller's own figures, copied for one scrape."""

    up: bool
    polling: bool  # False once the credentials were refused
    polls: int
    failures: dict[str, int]
    requests: dict[str, int]  # HTTP status (or "error", "timeout") -> requests
    last_duration: float
    last_requests: int
    rate: RateLimit
    next_poll: float  # Unix time
    event_counts: dict[tuple[str, str], int]
    events_up: bool
    interval: float


def budget_delay(interval: float, requests: int, rate: RateLimit, now: float, window: float = WINDOW) -> float:
    """Seconds until the next poll may start, when one poll takes ``requests`` requests.

    At least ``interval``; stretched so that a poll's requests, repeated for an hour, stay within
    the limit; and, when fewer than ``requests`` are left of this hour's budget, until it is reset.
    ``now`` is a time.monotonic() value, as ``rate.seen_at`` is; ``window`` the limit's period.
    """
    delay = interval
    if rate.limit:
        delay = max(delay, requests * window / rate.limit)
    if rate.remaining is not None and rate.remaining < requests + 1 and rate.reset_seconds is not None:
        delay = max(delay, rate.seen_at + rate.reset_seconds - now + 1.0)
    return delay


def backoff(failures: int, interval: float) -> float:
    """Exponential from FIRST_BACKOFF, capped at the interval, with full jitter's upper half."""
    ceiling = min(interval, FIRST_BACKOFF * 2.0 ** min(failures - 1, 20))
    return ceiling * random.uniform(0.5, 1.0)  # jitter, not a secret


class Poller:
    def __init__(self, connect: Callable[[], Client], interval: float, started: float | None = None,
                 window: float = WINDOW) -> None:
        """``connect`` makes the API client (again after SIGHUP: new credentials); ``window``: the rate
        limit's period (the API's hour; shorter only for a fake API in tests)."""
        self.connect = connect
        self.interval = interval
        self.window = window
        self.snapshot: Snapshot | None = None  # replaced whole, read without a lock
        self.events = FaultEvents(time.time() if started is None else started)
        self._lock = threading.Lock()
        self._up = False
        self._polling = True
        self._polls = 0
        self._failures: Counter[str] = Counter({reason: 0 for reason in REASONS})
        self._requests: Counter[str] = Counter()
        self._duration = 0.0
        self._last_requests = 0
        self._rate = RateLimit()
        self._next = time.time()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: Client | None = None
        self._events_up = True

    def status(self) -> Status:
        with self._lock:
            return Status(self._up, self._polling, self._polls, dict(self._failures), dict(self._requests),
                          self._duration, self._last_requests, self._rate, self._next, dict(self.events.counts),
                          self._events_up, self.interval)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="cloud-poll", daemon=True)
        self._thread.start()

    def resume(self) -> None:
        """New credentials (SIGHUP): the next request connects with them; a poller the API had refused polls
        again at once, one that polls anyway keeps its schedule (and its budget)."""
        self._client = None
        with self._lock:
            stopped, self._polling = not self._polling, True
        if stopped:
            self._wake.set()

    def stop(self) -> None:
        """Ends the loop, cutting off a request in flight."""
        self._stop.set()
        self._wake.set()
        client = self._client
        if client is not None:
            client.abort()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            if not self._polling:
                self._wake.wait()
                self._wake.clear()
                continue
            try:
                requests = self.poll()
            except Rejected as error:
                failures += 1  # so that the poll the new credentials make says it succeeded again
                self._failed(error)
                log.error("the API refused the credentials: polling stops until they change (SIGHUP reloads "
                          "them)", extra=kv(err=str(error), code=error.code))
                with self._lock:
                    self._polling = False
                continue
            except Exception as error:  # whatever an answer did, the loop goes on
                if self._stop.is_set():
                    return
                failures += 1
                if not isinstance(error, APIError):  # a case the readers missed: still a bad answer
                    log.debug("poll failed on an unexpected answer", exc_info=error)
                    error = Malformed(f"{type(error).__name__}: {error}")
                self._failed(error)
                delay = self._failure_delay(error, failures)
                (log.warning if failures == 1 else log.debug)(
                    "poll failed, next in %.0f s", delay, extra=kv(err=str(error), reason=error.reason,
                                                                  failures=failures))
            else:
                if failures or self._polls == 1:
                    log.info("poll succeeded" + (" again" if failures else ""),
                             extra=kv(computers=len(self.snapshot.computers) if self.snapshot else 0,
                                      requests=requests, after_failures=failures))
                failures = 0
                delay = self._limited(budget_delay(self.interval, requests, self._rate, time.monotonic(),
                                                   self.window))
            self._sleep(delay)

    def _failure_delay(self, error: APIError, failures: int) -> float:
        """429: until the reset it gave; otherwise a backoff, never shorter than the budget's stretch."""
        if isinstance(error, RateLimited):
            rate = error.rate or RateLimit()
            wait = rate.reset_seconds if rate.reset_seconds is not None else 60.0
            return self._limited(wait + random.uniform(1, 5))  # jitter, not a secret
        stretch = budget_delay(0.0, self._last_requests or 1, self._rate, time.monotonic(), self.window)
        return self._limited(max(backoff(failures, self.interval), stretch))

    def _limited(self, delay: float) -> float:
        """No wait is longer than the interval or the limit's hour, whatever the headers said."""
        return min(delay, max(self.interval, self.window))

    def _sleep(self, delay: float) -> None:
        with self._lock:
            self._next = time.time() + delay
        if self._wake.wait(delay):
            self._wake.clear()

    def _failed(self, error: APIError) -> None:
        with self._lock:
            self._up = False
            self._failures[error.reason] += 1

    def _get(self, path: str, params: list[tuple[str, str]]) -> dict[str, Any]:
        client = self._client or self.connect()  # one reference: SIGHUP may drop self._client meanwhile
        self._client = client
        rate = self._rate
        if rate.remaining == 0 and rate.reset_seconds is not None and \
                time.monotonic() < rate.seen_at + rate.reset_seconds:
            raise RateLimited("no requests left this hour (X-RateLimit-Remaining: 0): waiting for the reset",
                              "budget", rate)
        try:
            answer = client.get(path, params)
        except APIError as error:
            with self._lock:
                self._requests[error.code] += 1
                if error.rate is not None and error.rate.limit is not None:
                    self._rate = error.rate
            raise
        with self._lock:
            self._requests["200"] += 1
            self._rate = answer.rate
        return answer.body

    def poll(self) -> int:
        """One whole poll, tried again once at once when the fleet changed while it was read; returns the
        requests it took. Raises APIError (the snapshot stays) on any failure."""
        started = time.monotonic()
        with self._lock:
            before = sum(self._requests.values())
        try:
            try:
                reading = self._computers()
            except Churn as churn:
                rate = self._rate
                if rate.remaining is not None and rate.remaining < 2 * (self._last_requests or 1):
                    raise
                log.debug("reading the computers again", extra=kv(err=str(churn)))
                # A GUID on two pages again is listed twice (a cloned connector), not moved by a change.
                reading = self._computers(churn.came_again)
            events_up, found, checked = self._fault_events()
        finally:
            # Polls are minutes apart, and a load balancer closes an idle connection sooner: the next
            # poll connects anew rather than fail on a connection the far end dropped.
            if self._client is not None:
                self._client.close()
        snapshot = reading.snapshot(time.time())
        if reading.repeated:
            log.debug("the API lists computers twice on one page; each is served once",
                      extra=kv(computers=reading.repeated))
        with self._lock:
            requests = sum(self._requests.values()) - before
            self.snapshot = snapshot
            if events_up:
                self.events.add(found, checked)
            self._events_up = events_up
            self._up = True
            self._polls += 1
            self._duration = time.monotonic() - started
            self._last_requests = requests
        log.debug("poll done", extra=kv(computers=len(snapshot.computers), requests=requests,
                                        seconds=round(self._duration, 3)))
        return requests

    def _computers(self, known_repeats: frozenset[str] = frozenset()) -> Reading:
        reading = Reading(known_repeats)
        total: int | None = None
        while True:
            offset = len(reading.computers) + reading.skipped + reading.repeated
            data, page_total = _page(self._get("/v1/computers", [("limit", str(PAGE)), ("offset", str(offset))]))
            if total is None:
                total = page_total
            elif page_total != total:
                raise Churn(f"the fleet changed from {total} to {page_total} computers while it was read")
            reading.next_page()
            for element in data:
                reading.add(element)
            read = len(reading.computers) + reading.skipped + reading.repeated
            if read >= total:
                break
            if not data:
                raise Churn(f"the pages ended after {read} of {total} computers")
        if read != total:
            raise Churn(f"{read} computers came for a total of {total}")
        if reading.came_again:  # after the last page: the read again knows every GUID that came twice
            raise Churn(f"{len(reading.came_again)} computer(s) came again on a later page: the fleet changed "
                        "while it was read, or the API lists them twice", frozenset(reading.came_again))
        return reading

    def _fault_events(self) -> tuple[bool, list[tuple[object, float, tuple[str, str]]], float]:
        """(whether they could be read, the new ones, the time asked at). A failure here keeps the computers:
        it is said by ``events_up`` and the log, and the next poll asks again from the same start."""
        checked = time.time()
        params = [("event_type[]", str(event_type)) for event_type in FAULT_EVENT_TYPES]
        params += [("start_date", self.events.start_date()), ("limit", str(PAGE))]
        found: list[tuple[object, float, tuple[str, str]]] = []
        offset = 0
        try:
            for _ in range(MAX_EVENT_PAGES):
                data, total = _page(self._get("/v1/events", [*params, ("offset", str(offset))]))
                found += self.events.new(data, checked)
                offset += len(data)
                if not data or offset >= total:
                    break
        except APIError as error:
            if self._events_up:
                log.warning("fault events cannot be read; the computers are served", extra=kv(err=str(error)))
            return False, [], checked
        return True, found, checked


def _page(body: dict[str, Any]) -> tuple[list[Any], int]:
    """A page's ``data`` and ``metadata.results.total``; Malformed when either is not there."""
    data = body.get("data")
    metadata = body.get("metadata")
    results = metadata.get("results") if isinstance(metadata, dict) else None
    total = results.get("total") if isinstance(results, dict) else None
    if not isinstance(data, list):
        raise Malformed("the answer has no data list")
    if len(data) > PAGE:
        raise Malformed(f"a page of {len(data)} elements, though {PAGE} were asked for")
    if not isinstance(total, int) or isinstance(total, bool) or not 0 <= total <= MAX_COMPUTERS:
        raise Malformed("the answer has no metadata.results.total of a plausible size")
    return data, total
