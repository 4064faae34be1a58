"""A snapshot and the poller's figures in Prometheus's text format (0.0.4), as a stream of chunks.

Written here rather than with prometheus_client's ``generate_latest``: that builds the whole text as one
string, and with 100,000 computers (some 70 MB) it would sit in memory beside the snapshot it came
from, for every scrape in flight. Here each chunk is a few thousand lines, made from the snapshot's
pre-escaped label values as it is sent. The process's own ``process_*`` and ``python_*`` metrics are
still prometheus_client's (a small block, ``generate_latest`` of their registry).
"""

from __future__ import annotations

import math
import platform
from collections.abc import Callable, Iterable, Iterator

from ...checks import __version__
from .fleet import SEVERITIES, UNKNOWN, Computer, Snapshot, label
from .poller import REASONS, Status

NS = "secure_endpoint_cloud"
CHUNK = 2000  # lines joined into one chunk
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() or abs(value) >= 1e15 else str(int(value))


def _head(name: str, kind: str, doc: str) -> str:
    return f"# HELP {NS}_{name} {doc}\n# TYPE {NS}_{name} {kind}\n"


def _single(name: str, kind: str, doc: str, value: float) -> str:
    return f"{_head(name, kind, doc)}{NS}_{name} {_value(value)}\n"


def _labelled(name: str, kind: str, doc: str, samples: Iterable[tuple[str, float]]) -> str:
    """``samples``: (the labels inside the braces, escaped already, value)."""
    lines = [f"{NS}_{name}{{{labels}}} {_value(value)}\n" for labels, value in samples]
    return _head(name, kind, doc) + "".join(lines)


def status_text(status: Status, snapshot: Snapshot | None) -> str:
    """The poller's own series: whether it works, what it cost, and the API's budget."""
    rate = status.rate
    nan = math.nan
    return "".join((
        _labelled("exporter_build_info", "gauge", "The cloud exporter's version, and the Python it runs on.",
                  [(f'version="{label(__version__)}",pythonversion="{platform.python_version()}"', 1.0)]),
        _single("up", "gauge", "1 when the last poll of the API succeeded, else 0.", float(status.up)),
        _single("events_up", "gauge", "1 when the last poll could read the fault events (GET /v1/events), else 0; "
                "the computers are served either way.", float(status.events_up)),
        _single("poll_interval_seconds", "gauge", "--cloud.poll-interval: the time between polls when nothing "
                "stretches it.", status.interval),
        _single("polling", "gauge", "0 once the API refused the credentials (401 or 403): no further polls until "
                "they change and the exporter gets SIGHUP.", float(status.polling)),
        _single("snapshot_timestamp_seconds", "gauge", "Unix time of the last good poll, whose computers are "
                "served (0 before the first).", snapshot.taken if snapshot else 0.0),
        _single("poll_duration_seconds", "gauge", "How long the last successful poll took.", status.last_duration),
        _single("poll_requests", "gauge", "API requests the last successful poll took.", status.last_requests),
        _single("polls_total", "counter", "Successful polls since the exporter started.", status.polls),
        _labelled("poll_failures_total", "counter", "Failed polls since the exporter started, by reason.",
                  ((f'reason="{reason}"', status.failures.get(reason, 0)) for reason in REASONS)),
        _single("next_poll_timestamp_seconds", "gauge", "Unix time of the next poll (later than the interval when "
                "the rate limit or a backoff stretches it).", status.next_poll),
        _labelled("api_requests_total", "counter", "Requests to the API by HTTP status (error and timeout: no "
                  "answer).", ((f'code="{label(code)}"', count) for code, count in sorted(status.requests.items()))),
        _single("api_rate_limit_remaining", "gauge", "Requests left in this hour's budget, as the last answer said "
                "(NaN before one said).", nan if rate.remaining is None else rate.remaining),
        _single("api_rate_limit", "gauge", "Requests an hour the API allows, as the last answer said.",
                nan if rate.limit is None else rate.limit),
        _single("computers_skipped", "gauge", "Computers of the last poll without a usable connector_guid (not "
                "served).", snapshot.skipped if snapshot else 0),
        _single("computers_repeated", "gauge", "Computers the last poll found twice on one page (a cloned connector "
                "shares a GUID): served once.", snapshot.repeated if snapshot else 0),
        _single("last_seen_unreadable", "gauge", "Computers of the last poll whose last_seen is there but is no time "
                "this exporter can read (served as NaN).", snapshot.unreadable_last_seen if snapshot else 0),
        _single("fault_elements_unrecognised", "gauge", "Elements of faults[] in the last poll whose severity was "
                "not understood (counted under severity=\"unknown\").", snapshot.unrecognised if snapshot else 0),
        _labelled("fault_events_total", "counter", "Fault events (GET /v1/events) since the exporter started, by "
                  "severity and kind (raised or cleared).",
                  ((f'severity="{severity}",kind="{kind}"', status.event_counts.get((severity, kind), 0))
                   for severity in (*SEVERITIES, UNKNOWN) for kind in ("raised", "cleared"))),
    ))


def fleet_text(snapshot: Snapshot | None) -> str:
    """The aggregates: small whatever the fleet's size."""
    s = snapshot
    return "".join((
        _labelled("computers", "gauge", "Computers by operating system and connector version.",
                  ((f'operating_system="{os}",connector_version="{version}"', count)
                   for (os, version), count in sorted(s.by_os_version.items())) if s else ()),
        _labelled("group_computers", "gauge", "Computers by group.",
                  ((f'group_guid="{group}"', count) for group, count in sorted(s.by_group.items())) if s else ()),
        _single("computers_inactive", "gauge", "Computers the API marks not active.", s.inactive if s else 0),
        _single("computers_isolated", "gauge", "Computers whose isolation status is isolated.", s.isolated if s else 0),
        _single("computers_compromised", "gauge", "Computers the API marks compromised.", s.compromised if s else 0),
        _single("computers_with_faults", "gauge", "Computers with at least one element in faults[].",
                s.with_faults if s else 0),
        _labelled("fault_elements", "gauge", "Elements of faults[] in the fleet, by severity (unknown: not said).",
                  ((f'severity="{severity}"', s.fault_elements.get(severity, 0) if s else 0)
                   for severity in (*SEVERITIES, UNKNOWN))),
    ))


PER_COMPUTER: tuple[tuple[str, str, Callable[[Computer], str]], ...] = (
    ("computer_info", "The computer as the API lists it.",
     lambda c: (f'{{connector_guid="{c.guid}",hostname="{c.hostname}",operating_system="{c.operating_system}",'
                f'connector_version="{c.connector_version}",group_guid="{c.group_guid}",policy="{c.policy}"}} 1\n')),
    ("computer_last_seen_timestamp_seconds", "Unix time the cloud last heard from the computer (NaN: not said).",
     lambda c: f'{{connector_guid="{c.guid}"}} {_value(c.last_seen)}\n'),
    ("computer_active", "1 when the API marks the computer active, 0 when not, NaN when it does not say.",
     lambda c: f'{{connector_guid="{c.guid}"}} {_value(c.active)}\n'),
    ("computer_isolated", "1 when the computer's isolation status is isolated (NaN: not said).",
     lambda c: f'{{connector_guid="{c.guid}"}} {_value(c.isolated)}\n'),
    ("computer_compromised", "1 when the API marks the computer compromised (NaN: not said).",
     lambda c: f'{{connector_guid="{c.guid}"}} {_value(c.compromised)}\n'),
    ("computer_faults", "Elements in the computer's faults[].",
     lambda c: f'{{connector_guid="{c.guid}"}} {c.faults}\n'),
)


def computer_chunks(computers: list[Computer]) -> Iterator[bytes]:
    """The per-computer families, a few thousand lines a chunk."""
    for name, doc, line in PER_COMPUTER:
        prefix = f"{NS}_{name}"
        yield _head(name, "gauge", doc).encode()
        for start in range(0, len(computers), CHUNK):
            yield "".join(prefix + line(c) for c in computers[start:start + CHUNK]).encode()
    yield _head("computer_fault_elements", "gauge", "Elements in the computer's faults[] by severity (unknown: not "
                "said); only computers with elements.").encode()
    with_faults = [c for c in computers if c.fault_severities]
    for start in range(0, len(with_faults), CHUNK):
        yield "".join(f'{NS}_computer_fault_elements{{connector_guid="{c.guid}",severity="{severity}"}} {count}\n'
                      for c in with_faults[start:start + CHUNK] for severity, count in c.fault_severities).encode()


def exposition(status: Status, snapshot: Snapshot | None, per_computer: bool) -> Iterator[bytes]:
    yield (status_text(status, snapshot) + fleet_text(snapshot)).encode()
    if per_computer:
        yield from computer_chunks(snapshot.computers if snapshot else [])
