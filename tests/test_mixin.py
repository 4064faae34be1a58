"""The shipped rules and dashboards: fresh from the catalogue, valid, complete, and working in a real Prometheus
(Grafana's own checks of the dashboards and alert rules are in test_grafana.py)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from secure_endpoint_monitoring.checks import catalog, nagios
from secure_endpoint_monitoring.checks.collectors import Settings
from secure_endpoint_monitoring.exporter.generate import common, config, fault_docs
from secure_endpoint_monitoring.exporter.generate.__main__ import files, main
from tests.conftest import Fleet

# Drives Debian's programs: runs on the system python3 only, not in the matrix of noxfile.py.
pytestmark = pytest.mark.system

REPO = Path(__file__).resolve().parents[1]
REGENERATE = "python -m secure_endpoint_monitoring.exporter.generate --out ."
RULES = REPO / "rules" / "secure_endpoint.rules.yml"
RULE_TESTS = REPO / "rules" / "secure_endpoint.rules.test.yml"
DASHBOARDS = {uid: REPO / "grafana" / "dashboards" / f"{uid}.json"
              for uid in (common.FLEET_UID, common.HOST_UID, common.CLOUD_UID)}
ALL_IDS = [f.id for f in sorted(catalog.FAULTS, key=catalog.fault_order)]


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        raise AssertionError("promtool is missing: install Debian's prometheus package (.ci/test does)")
    return path


def load_rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def dashboard(uid: str) -> dict[str, Any]:
    return dict(json.loads(DASHBOARDS[uid].read_text()))


def test_committed_files_match_a_fresh_generation() -> None:
    fresh = files(common.Options())
    for rel, text in fresh.items():
        assert (REPO / rel).read_text() == text, f"{rel} is stale: run {REGENERATE}"


def test_every_health_alert_waits_as_config_says() -> None:
    """config.HEALTH_FOR holds the `for:` of each health alert and of nothing else."""
    groups = {group["name"]: group["rules"] for group in yaml.safe_load(RULES.read_text())["groups"]}
    waits = {rule["alert"][len(common.PREFIX):]: rule["for"] for rule in groups["secure-endpoint-health"]}
    assert waits == config.HEALTH_FOR


def test_the_rules_and_the_checks_agree_on_how_old_definitions_may_be() -> None:
    """DefinitionsStale fires where the plugin and the exporter's definitions_stale check turn: one age."""
    assert Settings().definitions_max_age_days == config.DEFINITIONS_MAX_AGE_DAYS
    assert nagios.build_parser().parse_args([]).definitions_max_age == config.DEFINITIONS_MAX_AGE_DAYS


def test_the_fault_tables_match_the_catalogue() -> None:
    page = (REPO / "docs" / "faults.md").read_text()
    assert fault_docs.fill(page) == page, f"docs/faults.md's tables are stale: run {REGENERATE}"
    kinds = [m.group(2) for m in fault_docs.MARKED.finditer(page)]
    assert kinds == ["linux", "macos", "beyond"]
    for fault in catalog.FAULTS + catalog.HEALTH_CHECKS:  # every fault in each of its tables
        for platform in fault.platforms:
            kind = "beyond" if not fault.documented else platform.value
            assert f"| {fault.title.en} |" in fault_docs.table(kind), (fault.id, kind)


def test_a_stale_fault_table_is_rewritten() -> None:
    stale = "before\n<!-- generated: beyond -->\n| old |\n<!-- end generated -->\nafter\n"
    filled = fault_docs.fill(stale)
    assert "| old |" not in filled and filled.startswith("before\n") and filled.endswith("after\n")
    assert "| `daemon_not_running` | Connector daemon not running | CRITICAL | `ampdaemon` is not running |" in filled


def test_generation_takes_its_parameters(tmp_path: Path) -> None:
    main(["--out", str(tmp_path), "--selector", 'job="node"', "--runbook-url", "https://example.org/rb",
                   "--for-default", "10m"])
    text = (tmp_path / "rules" / "secure_endpoint.rules.yml").read_text()
    assert 'secure_endpoint_fault_active{job="node", fault_id="8"} == 1' in text
    assert "https://example.org/rb#not_installed" in text
    rules = [r for g in yaml.safe_load(text)["groups"] for r in g["rules"]]
    assert next(r for r in rules if r.get("alert") == "SecureEndpointFileMonitorNotStarted")["for"] == "10m"
    done = subprocess.run([promtool(), "test", "rules", str(tmp_path / "rules" / "secure_endpoint.rules.test.yml")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_check_and_test() -> None:
    for command in (["check", "rules", str(RULES)], ["test", "rules", str(RULE_TESTS)]):
        done = subprocess.run([promtool(), *command], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_follows_the_mixin_conventions() -> None:
    alerts = [r for r in load_rules() if "alert" in r]
    assert len({a["alert"] for a in alerts}) == len(alerts)
    for alert in alerts:
        assert re.fullmatch(r"SecureEndpoint[A-Z][A-Za-z]+", alert["alert"])
        assert alert["labels"]["severity"] in ("critical", "warning", "info")
        assert set(alert["annotations"]) == {"summary", "description", "runbook_url"}
        assert "{{ $labels.instance }}" in alert["annotations"]["summary"]


def test_every_fault_has_an_alert_and_a_positive_and_negative_test() -> None:
    alerts = {r["alert"]: r for r in load_rules() if "alert" in r}
    by_fault = {re.search(r'fault_id="([a-z0-9_]+)"', a["expr"]).group(1): a for a in alerts.values()  # type: ignore[union-attr]
                if 'fault_id="' in a["expr"]}
    assert sorted(by_fault) == sorted(ALL_IDS)
    for fault in catalog.FAULTS:
        assert by_fault[fault.id]["labels"]["severity"] == str(fault.severity)
    assert by_fault["6"]["for"] == "15m" and by_fault["18"]["for"] == "15m" and by_fault["13"]["for"] == "30m"
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    covered: dict[str, set[bool]] = {}
    for case in tests:
        for check in case["alert_rule_test"]:
            covered.setdefault(check["alertname"], set()).add(bool(check["exp_alerts"]))
    assert covered == {name: {True, False} for name in alerts}


# -- against a real Prometheus -------------------------------------------------------------------
def panel_queries(uids: tuple[str, ...] = (common.FLEET_UID, common.HOST_UID)) -> list[tuple[str, str, str]]:
    """Each panel's queries with the variables filled in; the cloud dashboard's are tried in test_cloud_rules."""
    found = []
    for uid in uids:
        for panel in dashboard(uid)["panels"]:
            for target in panel.get("targets", []):
                expr = (target["expr"].replace('instance="$instance"', 'instance=~".+"')
                        .replace("$job", ".+").replace("$instance", ".+"))
                found.append((uid, f'{panel["title"]} [{target["refId"]}]', expr))
    return found


def test_every_panel_query_returns_series(fleet: Fleet) -> None:
    prometheus = fleet.prometheus
    prometheus.wait_for("secure_endpoint_fault_active", 40)
    prometheus.wait_for("secure_endpoint_fault_check_success == 0", 1)
    # The recording rules the fleet dashboard reads have their first values one rule evaluation after
    # the first scrape: poll for them, then ask every panel's query once.
    for rule in load_rules():
        if "record" in rule:
            prometheus.wait_for(rule["record"], 1)
    empty = []
    for uid, title, expr in panel_queries():
        if not prometheus.query(expr):
            empty.append(f"{uid} / {title}: {expr}")
    assert empty == []


def test_variable_queries_find_the_hosts(fleet: Fleet) -> None:
    # Its own wait: under pytest -n without --dist loadfile this test may get a fleet no other test waited on.
    fleet.prometheus.wait_for("secure_endpoint_connector_installed", len(fleet.hosts))
    found = fleet.prometheus.api("series", **{"match[]": "secure_endpoint_connector_installed"})
    assert {s["instance"] for s in found} == set(fleet.hosts.values())


def test_rules_load_and_evaluate(fleet: Fleet) -> None:
    groups = fleet.prometheus.api("rules")["groups"]
    assert {g["name"] for g in groups} == {"secure-endpoint-faults", "secure-endpoint-health",
                                           "secure-endpoint-fleet.rules"}
    for group in groups:
        for rule in group["rules"]:
            assert rule["health"] in ("ok", "unknown"), rule


def test_pending_alerts_for_the_faulty_hosts_only(fleet: Fleet) -> None:
    prometheus, hosts = fleet.prometheus, fleet.hosts
    wanted = {
        (hosts["faulty"], "SecureEndpointSelinuxPolicyMissing"),
        (hosts["faulty"], "SecureEndpointEventMonitoringOverloaded"),
        (hosts["faulty"], "SecureEndpointNotConnected"),
        (hosts["not-installed"], "SecureEndpointConnectorNotInstalled"),
        (hosts["mac"], "SecureEndpointFullDiskAccessMissing"),
    }
    deadline = time.monotonic() + 30
    seen: set[tuple[str, str]] = set()
    while time.monotonic() < deadline:
        alerts = prometheus.api("alerts")["alerts"]
        seen = {(a["labels"]["instance"], a["labels"]["alertname"]) for a in alerts}
        if wanted <= seen:
            break
        time.sleep(0.2)
    assert wanted <= seen
    assert all(a["state"] == "pending" for a in prometheus.api("alerts")["alerts"])
    assert not any(instance == hosts["healthy"] for instance, _ in seen), seen
    # The recording rules count fault 19 on the faulty host and fault 3 on the Mac as critical.
    prometheus.wait_for('severity:secure_endpoint_fault_active:sum{severity="critical"} == 2', 1)
    prometheus.wait_for('severity:secure_endpoint_fault_active:sum{severity="warning"} == 1', 1)


def runbook_anchors() -> set[str]:
    """The anchors GitHub gives the ``## `` headings of docs/runbook.md: lower case, punctuation other than
    '-' and '_' dropped, spaces made '-'."""
    return {re.sub(r"[^\w\- ]", "", line[3:].strip().lower()).replace(" ", "-")
            for line in (REPO / "docs" / "runbook.md").read_text().splitlines() if line.startswith("## ")}


def linked_anchors(texts: list[str], base: str) -> list[str]:
    """What follows '#' in every link to base in the texts."""
    return [anchor for text in texts for anchor in re.findall(re.escape(base) + r"#([^\s\"'<>&]*)", text)]


def test_every_runbook_link_has_its_section() -> None:
    """Every anchor of a link to the project's runbook, in the generated rules, rule tests, dashboards and
    Grafana alerting and in the report's doc_url, is a section of docs/runbook.md."""
    texts = list(files(common.Options()).values())
    texts += [fault.doc_url(platform) for fault in catalog.FAULTS + catalog.HEALTH_CHECKS
              for platform in fault.platforms]
    anchors = linked_anchors(texts, catalog.PROJECT_RUNBOOK_URL)
    health = {url.split("#", 1)[1] for url in (r["annotations"]["runbook_url"] for r in load_rules() if "alert" in r)
              if url.startswith(f"{catalog.PROJECT_RUNBOOK_URL}#")}
    assert len(health) >= 10 and health <= set(anchors)  # the health alerts' links are among those found
    missing = sorted(set(anchors) - runbook_anchors())
    assert missing == [], f"no '## ' heading in docs/runbook.md for: {missing}"


def test_runbook_url_sets_the_base_of_every_runbook_link(tmp_path: Path) -> None:
    """--runbook-url replaces the default base everywhere, with the same sections after '#'."""
    base = "https://wiki.example/runbook"
    main(["--out", str(tmp_path), "--runbook-url", base])
    written = {rel: (tmp_path / rel).read_text() for rel in files(common.Options())}
    assert not [rel for rel, text in written.items() if catalog.PROJECT_RUNBOOK_URL in text]
    default = linked_anchors(list(files(common.Options()).values()), catalog.PROJECT_RUNBOOK_URL)
    assert sorted(linked_anchors(list(written.values()), base)) == sorted(default) and default
    for group in yaml.safe_load(written["rules/secure_endpoint.rules.yml"])["groups"]:
        for rule in (r for r in group["rules"] if "alert" in r):
            url = rule["annotations"]["runbook_url"]
            assert url.startswith(f"{base}#") or "https://www.cisco.com/" in url, (rule["alert"], url)


def test_the_rules_alone_need_no_grafana_sdk(tmp_path: Path) -> None:
    """Textfile users regenerate with their selector: --no-grafana works where the SDK cannot be imported."""
    blocker = tmp_path / "blocker"
    (blocker / "grafana_foundation_sdk").mkdir(parents=True)
    (blocker / "grafana_foundation_sdk" / "__init__.py").write_text("raise ImportError('no SDK here')\n")
    env = {**os.environ, "PYTHONPATH": f"{blocker}{os.pathsep}{REPO}"}
    command = [sys.executable, "-m", "secure_endpoint_monitoring.exporter.generate", "--out", str(tmp_path / "out"),
               "--selector", 'job="node"']
    refused = subprocess.run(command, capture_output=True, text=True, env=env, check=False, cwd=tmp_path)
    assert refused.returncode == 2 and "--no-grafana" in refused.stderr and "Traceback" not in refused.stderr
    done = subprocess.run([*command, "--no-grafana"], capture_output=True, text=True, env=env, check=False,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "out" / "rules").iterdir()) == [
        "secure_endpoint.rules.test.yml", "secure_endpoint.rules.yml", "secure_endpoint_cloud.rules.test.yml",
        "secure_endpoint_cloud.rules.yml"]
    assert not (tmp_path / "out" / "grafana").exists()
