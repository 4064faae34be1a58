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
    """``2026-12-07T14:03:59Z`` (or with an offset, or fractions) as Unix time; NaN when it is none."""
    if not isinstance(value, str) or not 19 <= len(value) <= 40:
        return NAN
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return NAN
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return timegm(moment.utctimetuple()) + moment.microsecond / 1e6


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

    def __init__(self) -> None:
        self.computers: list[Computer] = []
        self.guids: set[str] = set()
        self.skipped = 0  # elements without a usable connector_guid
        self.duplicates = 0  # computers that came twice (the fleet changed between pages)
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
        if guid in self.guids:
            self.duplicates += 1
            return guid
        policy = element.get("policy")
        isolation = element.get("isolation")
        status = isolation.get("status") if isinstance(isolation, dict) else None
        faults = element.get("faults")
        elements = faults if isinstance(faults, list) else []
        severities = Counter(_severity(each) for each in elements)
        self.unrecognised += severities.get(UNKNOWN, 0)
        self.computers.append(Computer(
            guid, label(element.get("hostname")), self._text(element.get("operating_system")),
            self._text(element.get("connector_version")), self._text(element.get("group_guid")),
            self._text(policy.get("name") if isinstance(policy, dict) else None),
            timestamp(element.get("last_seen")), _flag(element.get("active")),
            _flag(status == "isolated") if isinstance(status, str) else NAN, _flag(element.get("is_compromised")),
            len(elements), tuple(sorted(severities.items())) if elements else ()))
        self.guids.add(guid)
        return guid

    def snapshot(self, taken: float) -> Snapshot:
        return Snapshot.of(self.computers, taken, self.skipped, self.unrecognised)


class Snapshot(NamedTuple):
    """A whole fleet as one poll read it, with the aggregates the fleet panels need."""

    computers: list[Computer]
    taken: float  # Unix time the poll ended
    skipped: int
    unrecognised: int
    by_os_version: dict[tuple[str, str], int]
    by_group: dict[str, int]
    inactive: int
    isolated: int
    compromised: int
    with_faults: int
    fault_elements: dict[str, int]  # severity (or unknown) -> elements in the fleet

    @classmethod
    def of(cls, computers: list[Computer], taken: float, skipped: int = 0, unrecognised: int = 0) -> Snapshot:
        elements: Counter[str] = Counter({severity: 0 for severity in (*SEVERITIES, UNKNOWN)})
        for computer in computers:
            for severity, count in computer.fault_severities:
                elements[severity] += count
        return cls(computers, taken, skipped, unrecognised,
                   dict(Counter((c.operating_system, c.connector_version) for c in computers)),
                   dict(Counter(c.group_guid for c in computers)),
                   sum(1 for c in computers if c.active == 0), sum(1 for c in computers if c.isolated == 1),
                   sum(1 for c in computers if c.compromised == 1), sum(1 for c in computers if c.faults),
                   dict(elements))


class FaultEvents:
    """Fault events raised and cleared since the exporter started, each event counted once.

    Events are asked for from a little before the newest one seen (an event can reach the API late),
    so some come twice: their ids, kept for that window only, drop the repeats.
    """

    WINDOW = 900.0  # seconds looked back before the newest event seen

    def __init__(self, started: float) -> None:
        self.since = started  # Unix time: events before it are not counted
        self.counts: Counter[tuple[str, str]] = Counter(
            {(severity, kind): 0 for severity in (*SEVERITIES, UNKNOWN) for kind in ("raised", "cleared")})
        self._seen: dict[object, float] = {}  # event id -> its time
        self.newest = started

    def start_date(self) -> str:
        moment = max(self.since, self.newest - self.WINDOW)
        return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    def new(self, events: Iterable[object]) -> list[tuple[object, float, tuple[str, str]]]:
        """The events not counted before, as (id, time, (severity, kind)); ``add`` them once the poll holds."""
        found: list[tuple[object, float, tuple[str, str]]] = []
        for event in events:
            if not isinstance(event, dict):
                continue
            meaning = FAULT_EVENT_TYPES.get(event.get("event_type_id"))  # type: ignore[arg-type]
            ident = event.get("id")
            if meaning is None or not isinstance(ident, (int, str)) or ident in self._seen:
                continue
            when = event.get("timestamp")
            moment = float(when) if isinstance(when, (int, float)) and not isinstance(when, bool) else \
                timestamp(event.get("date"))
            if not moment >= self.since:  # also NaN: an event without a time is not counted
                continue
            severity = meaning[0] or _event_severity(event)
            found.append((ident, moment, (severity, meaning[1])))
        return found

    def add(self, found: list[tuple[object, float, tuple[str, str]]]) -> None:
        for ident, moment, key in found:
            if ident not in self._seen:
                self._seen[ident] = moment
                self.counts[key] += 1
                self.newest = max(self.newest, moment)
        horizon = self.newest - 2 * self.WINDOW
        self._seen = {ident: moment for ident, moment in self._seen.items() if moment >= horizon}


def _event_severity(event: dict[str, Any]) -> str:
    value = event.get("severity")
    return value.strip().lower() if isinstance(value, str) and value.strip().lower() in SEVERITIES else UNKNOWN
