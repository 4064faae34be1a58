"""A real Prometheus scrapes the exporter on two fixture hosts; the series arrive per instance."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.daemons import Prometheus, exporter
from tests.hosttree import LinuxTree, faults_status


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Prometheus, dict[str, str]]]:
    base = tmp_path_factory.mktemp("fleet")
    healthy = LinuxTree(base / "healthy").healthy()
    faulty = LinuxTree(base / "faulty").healthy()
    faulty.ampcli(faults_status((18, "Major", "overloaded"), status="Disconnected"))
    faulty.selinux(enforcing=True, module="missing")
    with exporter(healthy.root, log=base / "healthy.log") as one, exporter(faulty.root, log=base / "faulty.log") as two:
        prometheus = Prometheus(base)
        prometheus.write_config({"secure_endpoint": [one.address, two.address]})
        prometheus.start()
        try:
            yield prometheus, {"healthy": one.address, "faulty": two.address}
        finally:
            prometheus.stop()


def by_instance(result: list[dict]) -> dict[str, float]:
    return {item["metric"]["instance"]: float(item["value"][1]) for item in result}


def test_both_targets_are_up(fleet: tuple[Prometheus, dict[str, str]]) -> None:
    prometheus, hosts = fleet
    up = by_instance(prometheus.wait_for('up{job="secure_endpoint"}', 2))
    assert up == {hosts["healthy"]: 1.0, hosts["faulty"]: 1.0}


def test_fault_series_per_instance(fleet: tuple[Prometheus, dict[str, str]]) -> None:
    prometheus, hosts = fleet
    prometheus.wait_for("secure_endpoint_fault_active", 18)
    for fault_id, faulty_value in (("18", 1.0), ("19", 1.0), ("8", 0.0), ("5", 0.0)):
        found = by_instance(prometheus.query(f'secure_endpoint_fault_active{{fault_id="{fault_id}"}}'))
        assert found == {hosts["healthy"]: 0.0, hosts["faulty"]: faulty_value}, fault_id
    connected = by_instance(prometheus.query("secure_endpoint_connector_connected"))
    assert connected == {hosts["healthy"]: 1.0, hosts["faulty"]: 0.0}
    per_host = by_instance(prometheus.query("count by (instance) (secure_endpoint_fault_active)"))
    assert per_host == {hosts["healthy"]: 9.0, hosts["faulty"]: 9.0}


def test_scrape_is_clean(fleet: tuple[Prometheus, dict[str, str]]) -> None:
    prometheus, _ = fleet
    prometheus.wait_for('up{job="secure_endpoint"}', 2)
    targets = prometheus.api("targets")["activeTargets"]
    assert len(targets) == 2
    assert all(t["health"] == "up" and t["lastError"] == "" for t in targets), targets
