"""The API's computer objects and fault events as compact records: what one poll turns into a snapshot.

Every field is read defensively: a value of the wrong type counts as unknown, never as a crash, and a
field nobody documented is ignored. Texts become label values here, once per poll: printable, at most
``MAX_LABEL`` characters, escaped for the text format, so that rendering a scrape only joins strings.
The texts many computers share (operating system, version, group, policy) are stored once.

The fields of a ``faults[]`` element are not public. Elements are counted; a severity is taken only from
a field named ``severity`` (or ``level``) that holds critical, major or minor; the rest count as not
understood. No element's own text ever becomes a label.
"""

from __future__ import annotations

import math
import re
from calendar import timegm
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any, NamedTuple

MAX_LABEL = 200
SEVERITIES = ("critical", "major", "minor")
UNKNOWN = "unknown"
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
NAN = math.nan
EARLIEST, LATEST = 946684800.0, 4102444800.0  # 2000-01-01 and 2100-01-01, UTC
MAX_SCANNED = 100  # fault elements of one computer looked at for a severity; the rest count as unknown
# Fault events (GET /v1/events?event_type[]=...): the ids of the event types, and what each means.
FAULT_EVENT_TYPES = {2164260931: ("critical", "raised"), 1090519107: ("major", "raised"),
                     553648195: ("minor", "raised"), 553648196: (None, "cleared"),
                     553648197: (None, "cleared")}  # "All Fault Cleared": counted as one clearing


class Computer(NamedTuple):
    """One computer; the texts are escaped label values already."""

    guid: str
    hostname: str
    operating_system: str
    connector_version: str
    group_guid: str
    policy: str
    last_seen: float  # Unix time, NaN when unknown
    active: float  # 1, 0 or NaN
    isolated: float
    compromised: float
    faults: int
    fault_severities: tuple[tuple[str, int], ...]  # (severity, elements) for computers with elements


def label(value: object) -> str:
    """A label value in the text format: printable characters only, bounded, with \\ and " escaped."""
    if not isinstance(value, str):
        return ""
    text = value if value.isprintable() else "".join(ch if ch.isprintable() else "\ufffd" for ch in value)
    text = text[:MAX_LABEL]
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a \\ud800 in the JSON
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text.replace("\\", "\\\\").replace('"', '\\"')


def timestamp(value: object) -> float:
    """``2026-12-07T14:03:59Z`` (or with an offset, or fractions) as Unix time; NaN when it is none, or
    outside the years 2000 to 2100 (no connector reported before; a later date is a broken clock)."""
    if not isinstance(value, str) or not 19 <= len(value) <= 40:
        return NAN
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        seconds = timegm(moment.utctimetuple()) + moment.microsecond / 1e6
    except (ValueError, OverflowError):  # 9999-12-31T23:59:59-14:00 overflows in utctimetuple
        return NAN
    return seconds if EARLIEST <= seconds <= LATEST else NAN


ONE, ZERO = 1.0, 0.0  # shared by every computer's flags, not a float object each


def _flag(value: object) -> float:
    if isinstance(value, bool):
        return ONE if value else ZERO
    return NAN


def _severity(element: object) -> str:
    if isinstance(element, dict):
        for key in ("severity", "level"):
            value = element.get(key)
            if isinstance(value, str) and value.strip().lower() in SEVERITIES:
                return value.strip().lower()
    return UNKNOWN


class Reading:
    """One poll's computers as they come page by page; ``snapshot()`` when all pages are in."""

    def __init__(self, known_repeats: frozenset[str] = frozenset()) -> None:
        """``known_repeats``: GUIDs an earlier read of this poll found twice too, so listed twice, not moved."""
        self.known_repeats = known_repeats
        self.computers: list[Computer] = []
        self.guids: set[str] = set()
        self.skipped = 0  # elements without a usable connector_guid
        self.repeated = 0  # computers the API lists twice (a cloned connector): served once
        self.came_again: set[str] = set()  # GUIDs that came again on a later page: churn, unless a known repeat
        self.unreadable_last_seen = 0
        self._page: set[str] = set()
        self.unrecognised = 0  # fault elements without a known severity
        self._shared: dict[str, str] = {}

    def _text(self, value: object) -> str:
        text = label(value)
        return self._shared.setdefault(text, text)

    def add(self, element: object) -> str | None:
        """Adds one computer; returns its GUID, or None when the element has none (counted as skipped)."""
        if not isinstance(element, dict):
            self.skipped += 1
            return None
        guid = element.get("connector_guid")
        guid = guid.strip().lower() if isinstance(guid, str) else ""
        if not GUID.fullmatch(guid):
            self.skipped += 1
            return None
        if guid in self._page or (guid in self.known_repeats and guid in self.guids):
            self.repeated += 1  # kept once: every later poll would fail the same way
            return guid
        self._page.add(guid)
        if guid in self.guids:
            self.came_again.add(guid)
            self.repeated += 1
            return guid
        policy = element.get("policy")
        isolation = element.get("isolation")
        status = isolation.get("status") if isinstance(isolation, dict) else None
        faults = element.get("faults")
        elements = faults if isinstance(faults, list) else []
        severities = Counter(_severity(each) for each in elements[:MAX_SCANNED])
        if len(elements) > MAX_SCANNED:
            severities[UNKNOWN] += len(elements) - MAX_SCANNED
        self.unrecognised += severities.get(UNKNOWN, 0)
        seen = element.get("last_seen")
        last_seen = timestamp(seen)
        if seen is not None and math.isnan(last_seen):
            self.unreadable_last_seen += 1  # there, but no time: a format this exporter does not know
        self.computers.append(Computer(
            guid, label(element.get("hostname")), self._text(element.get("operating_system")),
            self._text(element.get("connector_version")), self._text(element.get("group_guid")),
            self._text(policy.get("name") if isinstance(policy, dict) else None),
            last_seen, _flag(element.get("active")),
            _flag(status == "isolated") if isinstance(status, str) else NAN, _flag(element.get("is_compromised")),
            len(elements), tuple(sorted(severities.items())) if elements else ()))
        self.guids.add(guid)
        return guid

    def next_page(self) -> None:
        self._page = set()

    def snapshot(self, taken: float) -> Snapshot:
        return Snapshot.of(self.computers, taken, self.skipped, self.unrecognised, self.repeated,
                           self.unreadable_last_seen)


class Snapshot(NamedTuple):
    """A whole fleet as one poll read it, with the aggregates the fleet panels need."""

    computers: list[Computer]
    taken: float  # Unix time the poll ended
    skipped: int
    unrecognised: int
    repeated: int
    unreadable_last_seen: int
    by_os_version: dict[tuple[str, str], int]
    by_group: dict[str, int]
    inactive: int
    isolated: int
    compromised: int
    with_faults: int
    fault_elements: dict[str, int]  # severity (or unknown) -> elements in the fleet

    @classmethod
    def of(cls, computers: list[Computer], taken: float, skipped: int = 0, unrecognised: int = 0, repeated: int = 0,
           unreadable_last_seen: int = 0) -> Snapshot:
        elements: Counter[str] = Counter({severity: 0 for severity in (*SEVERITIES, UNKNOWN)})
        for computer in computers:
            for severity, count in computer.fault_severities:
                elements[severity] += count
        return cls(computers, taken, skipped, unrecognised, repeated, unreadable_last_seen,
                   dict(Counter((c.operating_system, c.connector_version) for c in computers)),
                   dict(Counter(c.group_guid for c in computers)),
                   sum(1 for c in computers if c.active == 0), sum(1 for c in computers if c.isolated == 1),
                   sum(1 for c in computers if c.compromised == 1), sum(1 for c in computers if c.faults),
                   dict(elements))


class FaultEvents:
    """Fault events raised and cleared since the exporter started, each event counted once.

    A query starts WINDOW before the newest event counted, in the API's own time (so a clock here that
    runs ahead loses nothing), but never before the last query that succeeded (on this clock) less a
    day, nor before the start. An event can reach the API late, so some come again: their ids, kept
    back to the query's start, drop the repeats. An event dated more than an hour ahead of this clock
    is not counted (a connector with a broken clock).
    """

    WINDOW = 900.0
    LOOKBACK = 86400.0  # a quiet fleet's query reaches back a day at most
    MAX_IDS = 200_000  # ids remembered at most: a storm of events costs no more memory than this

    def __init__(self, started: float) -> None:
        self.since = started  # Unix time: events before it are not counted
        self.checked = started  # Unix time (this clock) of the last query that succeeded
        self.newest = started  # Unix time (the API's) of the newest event counted
        self.counts: Counter[tuple[str, str]] = Counter(
            {(severity, kind): 0 for severity in (*SEVERITIES, UNKNOWN) for kind in ("raised", "cleared")})
        self._seen: dict[object, float] = {}  # event id -> its time

    def _start(self) -> float:
        return max(self.since, self.checked - self.LOOKBACK, min(self.checked, self.newest) - self.WINDOW)

    def start_date(self) -> str:
        return datetime.fromtimestamp(self._start(), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    def new(self, events: Iterable[object], now: float) -> list[tuple[object, float, tuple[str, str]]]:
        """The events not counted before, as (id, time, (severity, kind)); ``add`` them once the poll holds."""
        found: list[tuple[object, float, tuple[str, str]]] = []
        for event in events:
            if not isinstance(event, dict):
                continue
            kind = event.get("event_type_id")
            ident = event.get("id")
            if not isinstance(kind, int) or not (_plain_int(ident) or (isinstance(ident, str) and len(ident) <= 64)):
                continue
            meaning = FAULT_EVENT_TYPES.get(kind)  # a bool is an int, and no key
            if meaning is None or ident in self._seen:
                continue
            when = event.get("timestamp")
            moment = float(when) if isinstance(when, int) and not isinstance(when, bool) and \
                EARLIEST <= when <= LATEST else timestamp(event.get("date"))
            if not self.since <= moment <= now + 3600:  # also NaN: an event without a time is not counted
                continue
            found.append((ident, moment, (meaning[0] or _event_severity(event), meaning[1])))
        return found

    def add(self, found: list[tuple[object, float, tuple[str, str]]], checked: float) -> None:
        for ident, moment, key in found:
            if ident not in self._seen:
                self._seen[ident] = moment
                self.counts[key] += 1
                self.newest = max(self.newest, moment)
        self.checked = checked
        horizon = self._start() - 60.0  # an id older than the next query's start cannot come again
        kept = sorted(((moment, ident) for ident, moment in self._seen.items() if moment >= horizon),
                      key=lambda pair: pair[0])[-self.MAX_IDS:]
        self._seen = {ident: moment for moment, ident in kept}


def _plain_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _event_severity(event: dict[str, Any]) -> str:
    value = event.get("severity")
    return value.strip().lower() if isinstance(value, str) and value.strip().lower() in SEVERITIES else UNKNOWN
