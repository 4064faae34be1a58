"""The cloud exporter's poll against the local fake API (tests/fakecloud.py): real HTTPS on 127.0.0.1.

Each test sets the fake's behaviour (a bad answer, a slow one, churn between pages), polls once or runs
the poller, and asserts what the snapshot and the poller's figures say afterwards.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from secure_endpoint_monitoring.exporter.cloud import api, fleet, poller
from secure_endpoint_monitoring.exporter.cloud.credentials import Credentials
from tests import fakecloud, pki

GOOD = Credentials(fakecloud.CLIENT_ID, fakecloud.API_KEY)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pki")
    pki.make(folder)
    return folder


@pytest.fixture
def cloud(certs: Path) -> Iterator[fakecloud.FakeCloud]:
    with fakecloud.FakeCloud(certs, fakecloud.fleet(1201)) as server:
        yield server


def make_poller(server: fakecloud.FakeCloud, certs: Path, credentials: Credentials = GOOD, timeout: float = 5.0,
                interval: float = 300.0) -> poller.Poller:
    return poller.Poller(lambda: api.Client(server.url, credentials, str(certs / "ca.pem"), timeout), interval,
                         window=server.window)


def test_a_poll_reads_every_page_into_one_snapshot(cloud: fakecloud.FakeCloud, certs: Path) -> None:
    poll = make_poller(cloud, certs)
    assert poll.poll() == 4  # 3 pages of computers (500, 500, 201), one of events
    snapshot = poll.snapshot
    assert snapshot is not None and len(snapshot.computers) == 1201
    assert {c.guid for c in snapshot.computers} == {c["connector_guid"] for c in cloud.computers}
    expected: dict[tuple[str, str], int] = {}
    for each in cloud.computers:
        key = (each["operating_system"], each["connector_version"])
        expected[key] = expected.get(key, 0) + 1
    assert snapshot.by_os_version == expected
    assert snapshot.compromised == sum(1 for c in cloud.computers if c["is_compromised"])
    assert snapshot.inactive == sum(1 for c in cloud.computers if not c["active"])
    assert snapshot.isolated == sum(1 for c in cloud.computers if c["isolation"]["status"] == "isolated")
    assert snapshot.with_faults == sum(1 for c in cloud.computers if c["faults"])
    status = poll.status()
    assert status.up and status.polls == 1 and status.requests == {"200": 4}
    assert status.rate.limit == 3000 and status.rate.remaining == 2996
    assert cloud.statuses() == [200, 200, 200]


def test_fault_elements_of_every_shape_are_counted_and_only_known_severities_taken(
        cloud: fakecloud.FakeCloud, certs: Path) -> None:
    shapes: list[Any] = [{"severity": "Critical", "id": 2}, {"level": "MAJOR"}, {"severity": "minor"},
                         "a string", {"severity": 3}, None, ["x"], {"severity": "catastrophic"}]
    cloud.computers = fakecloud.fleet(3)
    cloud.computers[0]["faults"] = shapes
    cloud.computers[1]["faults"] = "not a list"
    cloud.computers[2]["faults"] = []
    poll = make_poller(cloud, certs)
    poll.poll()
    snapshot = poll.snapshot
    assert snapshot is not None
    first, second, third = snapshot.computers
    assert first.faults == len(shapes)
    assert dict(first.fault_severities) == {"critical": 1, "major": 1, "minor": 1, "unknown": 5}
    assert (second.faults, second.fault_severities, third.faults) == (0, (), 0)
    assert snapshot.unrecognised == 5
    assert snapshot.fault_elements == {"critical": 1, "major": 1, "minor": 1, "unknown": 5}


def test_odd_computers_are_read_defensively(cloud: fakecloud.FakeCloud, certs: Path) -> None:
    odd = {"connector_guid": "D821E2D9-9280-489C-A6C3-BE02D85BA8A0", "hostname": 'evil"\\\nhost\ud800',
           "active": "yes", "last_seen": "yesterday", "policy": "not an object", "isolation": None,
           "operating_system": 7, "faults": None}
    cloud.computers = [odd, {"connector_guid": "not-a-guid"}, "not an object", {"hostname": "no guid"}]
    poll = make_poller(cloud, certs)
    poll.poll()
    snapshot = poll.snapshot
    assert snapshot is not None and snapshot.skipped == 3
    [computer] = snapshot.computers
    assert computer.guid == "d821e2d9-9280-489c-a6c3-be02d85ba8a0"
    assert computer.hostname == 'evil\\"\\\\\ufffdhost\ufffd'
    assert computer.active != computer.active and computer.last_seen != computer.last_seen  # NaN: not said
    assert (computer.policy, computer.operating_system, computer.faults) == ("", "", 0)


def test_last_seen_is_read_as_utc() -> None:
    assert fleet.timestamp("2021-05-20T09:55:41Z") == 1621504541.0
    assert fleet.timestamp("2021-05-20T11:55:41+02:00") == 1621504541.0
    assert fleet.timestamp("2021-05-20T09:55:41.500Z") == 1621504541.5
    for bad in ("", "2021-05-20", "never", None, 1621504541, "2021-13-40T99:00:00Z"):
        assert fleet.timestamp(bad) != fleet.timestamp(bad)


@pytest.mark.parametrize("act", ["status:500", "status:503", "truncate", "notjson", "huge", "429"])
def test_a_failed_poll_keeps_the_last_snapshot_and_says_why(cloud: fakecloud.FakeCloud, certs: Path,
                                                              act: str) -> None:
    poll = make_poller(cloud, certs)
    poll.poll()
    kept = poll.snapshot
    cloud.script.extend(["", act])  # the second page of the next poll misbehaves
    with pytest.raises(api.APIError) as raised:
        poll.poll()
    assert poll.snapshot is kept
    expected = {"status:500": "unavailable", "status:503": "unavailable", "truncate": "unavailable",
                "notjson": "malformed", "huge": "malformed", "429": "rate_limited"}[act]
    assert raised.value.reason == expected
    poll.poll()  # and the next poll works on a new connection
    assert poll.snapshot is not kept and poll.snapshot is not None and len(poll.snapshot.computers) == 1201


@pytest.mark.parametrize("act", ["sleep:3", "drip:0.05"])
def test_a_slow_answer_ends_at_the_request_timeout(cloud: fakecloud.FakeCloud, certs: Path, act: str) -> None:
    cloud.computers = fakecloud.fleet(50)
    poll = make_poller(cloud, certs, timeout=1.0)
    cloud.script.append(act)
    started = time.monotonic()
    with pytest.raises(api.APIError) as raised:
        poll.poll()
    took = time.monotonic() - started
    assert raised.value.code == "timeout" and raised.value.reason == "unavailable"
    assert 0.9 < took < 2.5, took
    assert poll.status().requests == {"timeout": 1}


def test_wrong_credentials_stop_polling_until_resumed(cloud: fakecloud.FakeCloud, certs: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    current = [Credentials(fakecloud.CLIENT_ID, "wrong")]
    poll = poller.Poller(lambda: api.Client(cloud.url, current[0], str(certs / "ca.pem"), 5.0), 0.05)
    poll.start()
    try:
        _wait(lambda: not poll.status().polling)
        time.sleep(0.3)  # were it still polling, the interval of 0.05 s would show more requests by now
        status = poll.status()
        assert not status.up and status.failures["rejected"] == 1 and status.requests == {"401": 1}
        refused = [r for r in caplog.records if "refused the credentials" in r.getMessage()]
        assert len(refused) == 1 and "Unknown API key or Client ID" in str(refused[0].__dict__.get("kv"))
        current[0] = GOOD
        poll.resume()
        _wait(lambda: poll.status().up)
    finally:
        poll.stop()
    assert cloud.statuses()[0] == 401 and set(cloud.statuses()[1:]) == {200}


def _wait(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _added(server: fakecloud.FakeCloud) -> None:  # the fleet grows while every poll reads it
    newcomer = fakecloud.computer(len(server.computers) + 5000, time.time(), fakecloud.random.Random(1))
    server.computers = [*server.computers, newcomer]


def _removed(server: fakecloud.FakeCloud) -> None:
    server.computers = server.computers[1:]


def _shifted(server: fakecloud.FakeCloud) -> None:  # one vanishes, one appears: the total stays
    newcomer = dict(server.computers[-1], connector_guid=str(uuid.uuid4()), hostname="newcomer")
    server.computers = [newcomer, *server.computers[:-1]]


@pytest.mark.parametrize("change", [_added, _removed, _shifted])
def test_a_fleet_that_changes_between_pages_is_not_taken(cloud: fakecloud.FakeCloud, certs: Path,
                                                          change: Any) -> None:
    """The poll reads the fleet again at once, and fails when it changed during that read too."""
    poll = make_poller(cloud, certs)
    cloud.between_pages = change
    with pytest.raises(poller.Churn):
        poll.poll()
    assert poll.snapshot is None and not poll.status().up
    assert 4 <= len(cloud.statuses()) <= 6  # two reads, each cut short where the change showed
    cloud.between_pages = None
    poll.poll()
    assert poll.snapshot is not None and len(poll.snapshot.computers) == len(cloud.computers)


def test_one_change_between_pages_is_read_again(cloud: fakecloud.FakeCloud, certs: Path) -> None:
    poll = make_poller(cloud, certs)
    changes = [_added]

    def once(server: fakecloud.FakeCloud) -> None:
        if changes:
            changes.pop()(server)

    cloud.between_pages = once
    poll.poll()
    assert poll.snapshot is not None and len(poll.snapshot.computers) == 1202


def test_a_computer_listed_twice_on_one_page_is_served_once(cloud: fakecloud.FakeCloud, certs: Path) -> None:
    cloud.computers = [*cloud.computers[:10], dict(cloud.computers[3]), *cloud.computers[10:]]  # a clone
    poll = make_poller(cloud, certs)
    poll.poll()
    assert poll.snapshot is not None and len(poll.snapshot.computers) == 1201 and poll.snapshot.repeated == 1


def test_a_computer_listed_twice_on_two_pages_is_served_once(cloud: fakecloud.FakeCloud, certs: Path) -> None:
    """A clone on two pages looks like churn the first time; on the read again it comes twice once more."""
    cloud.computers = [*cloud.computers[:700], dict(cloud.computers[3]), *cloud.computers[700:]]
    poll = make_poller(cloud, certs)
    poll.poll()
    assert poll.snapshot is not None and len(poll.snapshot.computers) == 1201 and poll.snapshot.repeated == 1
    poll.poll()  # and every poll after it
    assert poll.status().polls == 2


def test_each_poll_connects_anew(cloud: fakecloud.FakeCloud, certs: Path) -> None:
    """A load balancer closes a connection left idle between polls: the next poll must not fail on it."""
    poll = make_poller(cloud, certs)
    poll.poll()
    assert poll._client is not None and poll._client._connection is None
    poll.poll()
    assert poll.status().failures["unavailable"] == 0


def test_events_start_from_the_newest_in_the_apis_own_time() -> None:
    events = fleet.FaultEvents(1000.0)
    assert events.start_date() == "1970-01-01T00:16:40Z"  # the start
    found = events.new([{"id": 1, "event_type_id": 553648195, "timestamp": 946684800 + 50_000}], 946684800 + 52_000)
    events.add(found, 946684800 + 52_000 + 1200)  # this clock runs 20 minutes ahead of the API's
    assert events.start_date() == "2000-01-01T13:38:20Z"  # the newest event less 15 minutes, not this clock's
    events.add([], 946684800 + 52_000 + 5 * 86400)  # quiet for days: a day back at most
    assert events.start_date() == "2000-01-05T14:26:40Z"


def test_fault_events_that_fail_keep_the_computers(cloud: fakecloud.FakeCloud, certs: Path) -> None:
    poll = make_poller(cloud, certs)
    cloud.script.extend(["", "", "", "status:400"])  # the events request of this poll
    poll.poll()
    status = poll.status()
    assert status.up and not status.events_up and poll.snapshot is not None
    poll.poll()
    assert poll.status().events_up


def test_an_event_from_a_broken_clock_does_not_stop_the_counting(cloud: fakecloud.FakeCloud, certs: Path) -> None:
    now = time.time()
    guid = cloud.computers[0]["connector_guid"]
    cloud.events = [fakecloud.event(1, 2164260931, now + 10 * 365 * 86400, guid)]
    poll = make_poller(cloud, certs)
    poll.events = fleet.FaultEvents(now)
    poll.poll()
    cloud.events.append(fakecloud.event(2, 2164260931, now + 5, guid))
    poll.poll()
    assert poll.status().event_counts[("critical", "raised")] == 1


@pytest.mark.parametrize("element", [
    {"event_type_id": [], "id": 3, "timestamp": 1}, {"event_type_id": 2164260931, "id": 4, "timestamp": 10 ** 400},
    {"event_type_id": 2164260931, "id": 5.5, "timestamp": 1}, {"event_type_id": True, "id": 6},
    {"event_type_id": 2164260931, "id": 7, "date": "9999-12-31T23:59:59-14:00"}])
def test_odd_events_are_skipped(element: dict[str, Any]) -> None:
    assert fleet.FaultEvents(0.0).new([element], time.time()) == []


def test_answers_that_break_the_readers_do_not_stop_the_poller(cloud: fakecloud.FakeCloud, certs: Path) -> None:
    """A page nested too deep for the JSON reader fails its poll (a Content-Length in a digit int() refuses
    is only read to the close); the poller goes on and the next poll works."""
    cloud.computers = fakecloud.fleet(10)
    poll = make_poller(cloud, certs, interval=0.05)
    cloud.script.extend(["deep", "superscript"])
    poll.start()
    try:
        _wait(lambda: poll.status().up)
    finally:
        poll.stop()
    failures = poll.status().failures
    assert failures["malformed"] >= 1 and poll.snapshot is not None


def test_a_reset_of_years_waits_no_longer_than_the_hour() -> None:
    rate = api.RateLimit(3000, 0, float(api.RESET_MAX), 0.0)
    assert poller.budget_delay(300.0, 201, rate, 0.0) == pytest.approx(3601.0)
    poll = poller.Poller(lambda: None, 300.0)  # type: ignore[arg-type,return-value]
    error = api.RateLimited("429", "429", api.RateLimit(3000, 0, 9e12, 0.0))
    assert poll._failure_delay(error, 1) == 3600.0


def test_fault_events_are_counted_once_each_from_the_start(cloud: fakecloud.FakeCloud, certs: Path) -> None:
    now = time.time()
    guid = cloud.computers[0]["connector_guid"]
    cloud.events = [fakecloud.event(6180352115244794000, 2164260931, now - 3600, guid),  # before the start
                    fakecloud.event(6180352115244794001, 2164260931, now + 1, guid),
                    fakecloud.event(6180352115244794002, 1090519107, now + 2, guid),
                    fakecloud.event(6180352115244794003, 553648196, now + 3, guid, severity="Critical"),
                    fakecloud.event(6180352115244794004, 553648196, now + 3, guid, severity="Low")]
    poll = make_poller(cloud, certs)
    poll.events = fleet.FaultEvents(now)
    poll.poll()
    poll.poll()  # the same events again: not counted twice
    cloud.events.append(fakecloud.event(6180352115244794005, 553648195, now + 5, guid))
    poll.poll()
    counts = {key: n for key, n in poll.status().event_counts.items() if n}
    assert counts == {("critical", "raised"): 2 - 1, ("major", "raised"): 1, ("minor", "raised"): 1,
                      ("critical", "cleared"): 1, ("unknown", "cleared"): 1}


def test_the_budget_stretches_the_interval_and_waits_for_the_reset() -> None:
    hour = poller.WINDOW
    plenty = api.RateLimit(3000, 2900, 3000.0, 100.0)
    # 100,000 computers: 200 pages and one of events, every 5 minutes: 2,412 an hour, within 3,000
    assert poller.budget_delay(300.0, 201, plenty, 100.0) == 300.0
    # a fleet of 250,000 would need 6,012: stretched to 501 requests per 3000/3600 s
    assert poller.budget_delay(300.0, 501, plenty, 100.0) == pytest.approx(501 * hour / 3000)
    # fewer left than a poll needs: wait until the reset, one second after it
    low = api.RateLimit(3000, 150, 1200.0, 100.0)
    assert poller.budget_delay(300.0, 201, low, 130.0) == pytest.approx(1200.0 - 30.0 + 1.0)
    assert poller.budget_delay(300.0, 201, api.RateLimit(), 0.0) == 300.0  # nothing known: the interval


def test_no_429_when_the_budget_is_tight(certs: Path) -> None:
    """A limit of 12 requests per 2 s window, 5 requests a poll, an interval of 0.05 s: the poller
    must stretch its interval and wait for resets instead of running into 429."""
    with fakecloud.FakeCloud(certs, fakecloud.fleet(2000), limit=12, window=2.0) as server:
        poll = make_poller(server, certs, interval=0.05)
        poll.start()
        try:
            _wait(lambda: poll.status().polls >= 4, timeout=30)
        finally:
            poll.stop()
        statuses = server.statuses() + server.statuses("/v1/events")
    assert 429 not in statuses and len(statuses) >= 20
    assert poll.status().failures["rate_limited"] == 0


def test_the_client_refuses_plain_http_and_urls_with_credentials() -> None:
    for url in ("http://api.amp.cisco.com", "https://user:pw@api.amp.cisco.com", "https://api.amp.cisco.com/?x=1",
                "ftp://api.amp.cisco.com", "https://"):
        with pytest.raises(ValueError):
            api.base_url(url)
    assert api.base_url("https://api.eu.amp.cisco.com/") == ("api.eu.amp.cisco.com", 443, "")
    assert api.base_url("https://proxy.example:8443/amp") == ("proxy.example", 8443, "/amp")


def test_tls_is_verified(cloud: fakecloud.FakeCloud, certs: Path) -> None:
    unverified = poller.Poller(lambda: api.Client(cloud.url, GOOD, None, 5.0), 300.0)  # the system's CAs only
    with pytest.raises(api.APIError) as raised:
        unverified.poll()
    assert "CERTIFICATE_VERIFY_FAILED" in str(raised.value)
    assert cloud.statuses() == []


def test_scrapes_read_the_snapshot_while_a_poll_runs(cloud: fakecloud.FakeCloud, certs: Path) -> None:
    poll = make_poller(cloud, certs)
    poll.poll()
    first = poll.snapshot
    cloud.script.extend(["", "sleep:1"])
    thread = threading.Thread(target=poll.poll)
    thread.start()
    time.sleep(0.3)
    assert poll.snapshot is first  # the poll in flight has not replaced it yet
    thread.join()
    assert poll.snapshot is not first
