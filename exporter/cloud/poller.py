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

log = logging.getLogger("secure_endpoint_cloud_exporter")
PAGE = 500  # the API's largest page
WINDOW = 3600.0  # the rate limit's period: requests an hour
MAX_COMPUTERS = 2_000_000  # a "total" beyond this is a lie, not a fleet
MAX_EVENT_PAGES = 10  # fault events a poll reads at most: 5,000 (the rest come with the next poll)
FIRST_BACKOFF = 10.0


class Churn(Malformed):
    """The fleet changed between pages (or the pages do not add up): this poll cannot be a whole fleet."""

    reason = "churn"


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

    def status(self) -> Status:
        with self._lock:
            return Status(self._up, self._polling, self._polls, dict(self._failures), dict(self._requests),
                          self._duration, self._last_requests, self._rate, self._next, dict(self.events.counts))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="cloud-poll", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def resume(self) -> None:
        """Poll again now with a new client (SIGHUP: the credentials file may have changed)."""
        with self._lock:
            self._polling = True
        self._client = None
        self._wake.set()

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
                self._failed(error)
                log.error("the API refused the credentials: polling stops until they change (SIGHUP reloads "
                          "them)", extra=kv(err=str(error), code=error.code))
                with self._lock:
                    self._polling = False
                continue
            except APIError as error:
                failures += 1
                self._failed(error)
                if isinstance(error, RateLimited):
                    rate = error.rate or RateLimit()
                    delay = (rate.reset_seconds if rate.reset_seconds is not None else 60.0) + random.uniform(1, 5)
                else:
                    delay = backoff(failures, self.interval)
                (log.warning if failures == 1 else log.debug)(
                    "poll failed, next in %.0f s", delay, extra=kv(err=str(error), reason=error.reason,
                                                                  failures=failures))
            else:
                if failures:
                    log.info("poll succeeded again", extra=kv(after_failures=failures))
                failures = 0
                delay = budget_delay(self.interval, requests, self._rate, time.monotonic(), self.window)
            self._sleep(delay)

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
        if self._client is None:
            self._client = self.connect()
        rate = self._rate
        if rate.remaining == 0 and rate.reset_seconds is not None and \
                time.monotonic() < rate.seen_at + rate.reset_seconds:
            raise RateLimited("no requests left this hour (X-RateLimit-Remaining: 0): waiting for the reset",
                              "budget", rate)
        try:
            answer = self._client.get(path, params)
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
        """One whole poll; returns the requests it took. Raises APIError (the snapshot stays) on any failure."""
        started = time.monotonic()
        with self._lock:
            before = sum(self._requests.values())
        reading = Reading()
        total: int | None = None
        while True:
            body = self._get("/v1/computers", [("limit", str(PAGE)), ("offset", str(len(reading.computers) +
                                                                                   reading.skipped))])
            data, page_total = _page(body)
            if total is None:
                total = page_total
            elif page_total != total:
                raise Churn(f"the fleet changed from {total} to {page_total} computers while it was read")
            for element in data:
                reading.add(element)
            if reading.duplicates:
                raise Churn("a computer came on two pages: the fleet changed while it was read")
            read = len(reading.computers) + reading.skipped
            if read >= total:
                break
            if not data:
                raise Churn(f"the pages ended after {read} of {total} computers")
        if read != total:
            raise Churn(f"{read} computers came for a total of {total}")
        found = self._fault_events()
        taken = time.time()
        snapshot = reading.snapshot(taken)
        with self._lock:
            requests = sum(self._requests.values()) - before
            self.snapshot = snapshot
            self.events.add(found)
            self._up = True
            self._polls += 1
            self._duration = time.monotonic() - started
            self._last_requests = requests
        log.debug("poll done", extra=kv(computers=len(snapshot.computers), requests=requests,
                                        seconds=round(self._duration, 3)))
        return requests

    def _fault_events(self) -> list[tuple[object, float, tuple[str, str]]]:
        params = [("event_type[]", str(event_type)) for event_type in FAULT_EVENT_TYPES]
        params += [("start_date", self.events.start_date()), ("limit", str(PAGE))]
        found: list[tuple[object, float, tuple[str, str]]] = []
        offset = 0
        for _ in range(MAX_EVENT_PAGES):
            data, total = _page(self._get("/v1/events", [*params, ("offset", str(offset))]))
            found += self.events.new(data)
            offset += len(data)
            if not data or offset >= total:
                break
        return found


def _page(body: dict[str, Any]) -> tuple[list[Any], int]:
    """A page's ``data`` and ``metadata.results.total``; Malformed when either is not there."""
    data = body.get("data")
    metadata = body.get("metadata")
    results = metadata.get("results") if isinstance(metadata, dict) else None
    total = results.get("total") if isinstance(results, dict) else None
    if not isinstance(data, list):
        raise Malformed("the answer has no data list")
    if not isinstance(total, int) or isinstance(total, bool) or not 0 <= total <= MAX_COMPUTERS:
        raise Malformed("the answer has no metadata.results.total of a plausible size")
    return data, total
