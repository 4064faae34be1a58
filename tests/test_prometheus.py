"""A real Prometheus scrapes the exporter on four fixture hosts; the series arrive per instance."""

from __future__ import annotations

import pytest

from tests.conftest import Fleet

# Drives Debian's programs: runs on the system python3 only, not in the matrix of noxfile.py.
pytestmark = pytest.mark.system


def by_instance(result: list[dict]) -> dict[str, float]:
    return {item["metric"]["instance"]: float(item["value"][1]) for item in result}


def test_every_target_is_up(fleet: Fleet) -> None:
    up = by_instance(fleet.prometheus.wait_for('up{job="secure_endpoint"}', 4))
    assert up == dict.fromkeys(fleet.hosts.values(), 1.0)


def test_fault_series_per_instance(fleet: Fleet) -> None:
    prometheus, hosts = fleet.prometheus, fleet.hosts
    prometheus.wait_for("secure_endpoint_fault_active", 10 + 10 + 10 + 14)
    for fault_id, faulty_value in (("18", 1.0), ("19", 1.0), ("8", 0.0), ("5", 0.0)):
        expr = f'secure_endpoint_fault_active{{fault_id="{fault_id}", platform="linux"}}'
        found = by_instance(prometheus.query(expr))
        assert found == {hosts["healthy"]: 0.0, hosts["faulty"]: faulty_value, hosts["not-installed"]: 0.0}, fault_id
    assert by_instance(prometheus.query('secure_endpoint_fault_active{fault_id="3"}')) == {hosts["mac"]: 1.0}
    connected = by_instance(prometheus.query("secure_endpoint_connector_connected"))
    assert connected == {hosts["healthy"]: 1.0, hosts["faulty"]: 0.0, hosts["mac"]: 1.0}
    installed = by_instance(prometheus.query("secure_endpoint_connector_installed"))
    assert installed[hosts["not-installed"]] == 0.0 and installed[hosts["healthy"]] == 1.0
    per_host = by_instance(prometheus.query("count by (instance) (secure_endpoint_fault_active)"))
    assert per_host == {hosts["healthy"]: 10.0, hosts["faulty"]: 10.0, hosts["not-installed"]: 10.0, hosts["mac"]: 14.0}


def test_scrapes_are_clean(fleet: Fleet) -> None:
    fleet.prometheus.wait_for('up{job="secure_endpoint"}', 4)
    targets = fleet.prometheus.api("targets")["activeTargets"]
    assert len(targets) == 4
    assert all(t["health"] == "up" and t["lastError"] == "" for t in targets), targets


def test_the_fault_state_set_per_instance(fleet: Fleet) -> None:
    prometheus, hosts = fleet.prometheus, fleet.hosts
    prometheus.wait_for("secure_endpoint_fault_state", 4 * (10 + 10 + 10 + 14))
    current = by_instance(prometheus.query("count by (instance) (secure_endpoint_fault_state == 1)"))
    assert current == {hosts["healthy"]: 10.0, hosts["faulty"]: 10.0, hosts["not-installed"]: 10.0, hosts["mac"]: 14.0}
    # Without the connector every fault is not_applicable, which fault_active alone shows as 0.
    na = by_instance(prometheus.query('count by (instance) (secure_endpoint_fault_state{state="not_applicable"} == 1)'))
    assert na[hosts["not-installed"]] == 10.0
    assert all(count < current[host] for host, count in na.items() if host != hosts["not-installed"]), na
    active = prometheus.query('secure_endpoint_fault_state{state="active"} == 1')
    assert {(a["metric"]["instance"], a["metric"]["fault_id"]) for a in active} >= {
        (hosts["faulty"], "18"), (hosts["faulty"], "19"), (hosts["mac"], "3")}
    prometheus.wait_for('fault_id_state:secure_endpoint_fault_state:count{job="secure_endpoint", '
                        'state="not_applicable", fault_id="19"} == 1', 1)


def test_every_host_reports_a_fresh_evaluation(fleet: Fleet) -> None:
    fresh = by_instance(fleet.prometheus.wait_for(
        "time() - secure_endpoint_last_evaluation_timestamp_seconds < 60", 4))
    assert set(fresh) == set(fleet.hosts.values())
