"""The cloud exporter's rules: promtool's own tests, the mixin conventions, and a real Prometheus that scrapes
the cloud exporter (against the fake API) and two host exporters, and raises the join's alerts."""

from __future__ import annotations

import contextlib
import re
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from secure_endpoint_monitoring.exporter.generate import cloud_rules, config
from secure_endpoint_monitoring.exporter.generate.common import CLOUD_UID, PREFIX, Options
from tests import fakecloud, pki
from tests.daemons import Prometheus, exporter
from tests.hosttree import LinuxTree
from tests.test_cloud_exporter import exporter as cloud_exporter
from tests.test_mixin import panel_queries, promtool

REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "rules" / "secure_endpoint_cloud.rules.yml"
HOST_RULES = REPO / "rules" / "secure_endpoint.rules.yml"
TESTS = REPO / "rules" / "secure_endpoint_cloud.rules.test.yml"


def alerts() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"] if "alert" in rule]


def test_promtool_check_and_test() -> None:
    for command in (["check", "rules", str(RULES)], ["test", "rules", str(TESTS)]):
        done = subprocess.run([promtool(), *command], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_follows_the_mixin_conventions_and_the_config() -> None:
    found = alerts()
    assert {a["alert"] for a in found} == {PREFIX + name for name in config.CLOUD_FOR}
    for alert in found:
        assert re.fullmatch(rf"{PREFIX}[A-Z][A-Za-z]+", alert["alert"])
        assert alert["labels"]["severity"] in ("critical", "warning", "info")
        assert set(alert["annotations"]) == {"summary", "description", "runbook_url"}
        assert alert["for"] == config.CLOUD_FOR[alert["alert"][len(PREFIX):]]


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    suite = cloud_rules.rule_tests(Options(), "x.yml")["tests"]
    fired: dict[str, int] = {}
    quiet: dict[str, int] = {}
    for test in suite:
        for check in test.get("alert_rule_test", []):
            target = fired if check["exp_alerts"] else quiet
            target[check["alertname"]] = target.get(check["alertname"], 0) + 1
            # the quiet computer, host or exporter is in every firing case too and must not be in its alerts
            assert len(check["exp_alerts"]) <= 1
    for alert in alerts():
        assert fired.get(alert["alert"]), alert["alert"]


def test_the_dashboard_reads_no_per_computer_series() -> None:
    import json

    board = json.loads((REPO / "grafana" / "dashboards" / "secure-endpoint-cloud.json").read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 12
    for expr in exprs:
        assert "secure_endpoint_cloud_computer_" not in expr, expr


def _seen(seconds_ago: float) -> str:
    return datetime.fromtimestamp(time.time() - seconds_ago, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pki")
    pki.make(folder)
    return folder


def test_prometheus_raises_the_join_alerts(certs: Path, tmp_path: Path) -> None:
    """Host "silent" is healthy here but not seen by the cloud for days; host "faulty" has a fault the cloud
    does not list; host "fine" agrees with the cloud. Computer 3 is compromised."""
    computers = fakecloud.fleet(40)
    guids = {name: computers[n]["connector_guid"] for n, name in enumerate(("silent", "faulty", "fine"))}
    for n in range(40):
        computers[n].update(active=True, is_compromised=n == 3, faults=[], last_seen=_seen(60))
    computers[0]["last_seen"] = _seen((config.CLOUD_JOIN_SILENT_HOURS + 2) * 3600)
    trees = {name: LinuxTree(tmp_path / name).healthy() for name in guids}
    for name, tree in trees.items():
        tree.local_config(guids[name])
    trees["faulty"].selinux(enforcing=True, module="missing")  # fault 19 active on that host only
    with contextlib.ExitStack() as stack:
        cloud = stack.enter_context(fakecloud.FakeCloud(certs, computers))
        running = stack.enter_context(cloud_exporter(cloud, certs, tmp_path))
        hosts = {name: stack.enter_context(exporter(tree.root, log=tmp_path / f"{name}.log")).address
                 for name, tree in trees.items()}
        prometheus = Prometheus(tmp_path)
        prometheus.write_config({"secure_endpoint": list(hosts.values()), "secure_endpoint_cloud": [running.address]},
                                [RULES, HOST_RULES])
        prometheus.start()
        stack.callback(prometheus.stop)
        wanted = {("SecureEndpointHostNotSeenByCloud", guids["silent"]),
                  ("SecureEndpointCloudMissesHostFaults", guids["faulty"]),
                  ("SecureEndpointCloudComputerCompromised", computers[3]["connector_guid"])}
        seen = _wait_for_alerts(prometheus, wanted)
        assert not any(guid == guids["fine"] for _, guid in seen), seen
        prometheus.wait_for("secure_endpoint_cloud:hosts_not_seen_by_cloud:count == 1", 1)
        prometheus.wait_for("secure_endpoint_cloud:hosts_with_faults_the_cloud_misses:count == 1", 1)
        prometheus.wait_for("secure_endpoint_cloud:computers:sum == 40", 1)
        for group in prometheus.api("rules")["groups"]:
            for rule in group["rules"]:
                assert rule["health"] in ("ok", "unknown"), rule
        prometheus.wait_for("rate(secure_endpoint_cloud_api_requests_total[5m])", 1)  # two scrapes in
        for group in yaml.safe_load(RULES.read_text())["groups"]:  # and a rule evaluation after them
            for record in (rule["record"] for rule in group["rules"] if "record" in rule):
                prometheus.wait_for(record, 1)
        empty = [f"{title}: {expr}" for _, title, expr in panel_queries((CLOUD_UID,)) if not prometheus.query(expr)]
        assert empty == []


def _wait_for_alerts(prometheus: Prometheus, wanted: set[tuple[str, str]]) -> set[tuple[str, str]]:
    deadline = time.monotonic() + 45
    seen: set[tuple[str, str]] = set()
    while time.monotonic() < deadline:
        seen = {(a["labels"]["alertname"], a["labels"].get("connector_guid", ""))
                for a in prometheus.api("alerts")["alerts"]}
        if wanted <= seen:
            return seen
        time.sleep(0.2)
    raise AssertionError(f"wanted {wanted - seen}, saw {seen}")
