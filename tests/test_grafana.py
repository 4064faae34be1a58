"""The Grafana files as Grafana sees them: dashboards that Grafana's own schema accepts, tables that show every
series, a panel for every fault, the fleet read from the recording rules, and alert rules that pass the checks
Grafana runs before it starts."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from secure_endpoint_monitoring.checks import catalog
from secure_endpoint_monitoring.exporter.generate import common
from tests import grafana_rules, grafana_schema
from tests.test_mixin import ALL_IDS, DASHBOARDS, REPO, load_rules

# Drives Debian's programs: runs on the system python3 only, not in the matrix of noxfile.py.
pytestmark = pytest.mark.system

ALERTING = REPO / "grafana" / "provisioning" / "alerting" / "secure-endpoint.yml"
PROVIDER = REPO / "grafana" / "provisioning" / "dashboards" / "secure-endpoint.yml"
DATASOURCE = REPO / "grafana" / "provisioning" / "datasources" / "secure-endpoint-prometheus.example.yml"
# Panels whose value is a number a reader compares, so a unit must say what it counts.
NUMERIC = {"stat", "timeseries", "bargauge"}


def boards() -> dict[str, dict[str, Any]]:
    return {uid: dict(json.loads(path.read_text())) for uid, path in DASHBOARDS.items()}


def panels(uid: str) -> list[dict[str, Any]]:
    return [p for p in boards()[uid]["panels"] if p["type"] != "row"]


def alerting() -> dict[str, Any]:
    return dict(yaml.safe_load(ALERTING.read_text()))


# -- Grafana's schema ---------------------------------------------------------------------------------
def test_dashboards_pass_grafanas_schema(tmp_path: Path) -> None:
    done = grafana_schema.check(boards(), tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(("where", "change"), [
    ("an unknown panel option", lambda p: p["options"].__setitem__("colourMode", "background")),
    ("a value outside an enum", lambda p: p["options"].__setitem__("colorMode", "rainbow")),
    ("a string where a number belongs", lambda p: p["gridPos"].__setitem__("w", "four")),
    ("an unknown field config key", lambda p: p["fieldConfig"]["defaults"].__setitem__("units", "s")),
])
def test_the_schema_check_catches(where: str, change: Any, tmp_path: Path) -> None:
    broken = boards()
    stat = next(p for p in broken[common.HOST_UID]["panels"] if p["type"] == "stat")
    change(stat)
    done = grafana_schema.check(broken, tmp_path)
    assert done.returncode != 0, f"tsc accepted {where}"


# -- what the panels show -------------------------------------------------------------------------------
def test_dashboards_are_well_formed() -> None:
    for uid, board in boards().items():
        assert board["uid"] == uid and board["title"].startswith("Secure Endpoint")
        names = [v["name"] for v in board["templating"]["list"]]
        assert names == (["datasource", "job", "instance"] if uid == common.HOST_UID else ["datasource", "job"])
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids))
        cells: set[tuple[int, int]] = set()
        for panel in board["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
            mine = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                    for y in range(grid["y"], grid["y"] + grid["h"])}
            assert not cells & mine, f"{panel['title']} overlaps another panel"
            cells |= mine
        for link in board["links"]:
            assert link["url"].removeprefix("/d/") in DASHBOARDS


@pytest.mark.parametrize("uid", list(DASHBOARDS))
def test_every_panel_says_what_it_shows(uid: str) -> None:
    for panel in panels(uid):
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        assert len(panel.get("description", "")) > 20, f"{panel['title']} has no description"
        if panel["type"] in NUMERIC:
            assert panel["fieldConfig"]["defaults"].get("unit"), f"{panel['title']} has no unit"


@pytest.mark.parametrize("uid", list(DASHBOARDS))
def test_tables_show_every_series(uid: str) -> None:
    """An instant query returns a frame per series, and a table shows one frame at a time: every table query
    is table-formatted (one frame per query), and several queries are merged into one table."""
    tables = [p for p in panels(uid) if p["type"] == "table"]
    assert tables
    for panel in tables:
        assert all(t.get("format") == "table" and t.get("instant") for t in panel["targets"]), panel["title"]
        kinds = [t["id"] for t in panel.get("transformations", [])]
        if len(panel["targets"]) > 1:
            assert kinds[0] == "merge", panel["title"]
        assert "labelsToFields" not in kinds


def test_every_fault_has_a_panel_that_names_its_platform() -> None:
    by_id = {p["title"].split(":", 1)[0]: p for p in panels(common.HOST_UID) if p["type"] == "stat"}
    for fault in catalog.FAULTS:
        panel = by_id[fault.id]
        assert f'fault_id="{fault.id}"' in panel["targets"][0]["expr"]
        assert "secure_endpoint_fault_state" in panel["targets"][0]["expr"]
        assert fault.fix.en in panel["description"]
        no_value = panel["fieldConfig"]["defaults"].get("noValue", "")
        if len(fault.platforms) == 1:
            platform = "macOS" if catalog.Platform.MACOS in fault.platforms else "Linux"
            assert no_value.startswith(f"{platform} only"), fault.id


def test_fault_state_panels_map_every_state() -> None:
    texts = set()
    panel = next(p for p in panels(common.HOST_UID) if p["type"] == "state-timeline")
    for mapping in panel["fieldConfig"]["defaults"]["mappings"]:
        texts |= {v["text"] for v in mapping["options"].values()}
    assert texts == {"clear", "not applicable", "unknown", "ACTIVE"}


def test_the_fleet_reads_the_recording_rules() -> None:
    recorded = {r["record"] for r in load_rules() if "record" in r}
    exprs = " ".join(t["expr"] for p in panels(common.FLEET_UID) for t in p["targets"])
    used = set(re.findall(r"[a-z_]+:[a-z_]+:[a-z_]+", exprs))
    assert used == recorded, (used, recorded)
    assert "$instance" not in exprs  # recorded series keep job, not instance


def test_recording_rules_keep_the_label_the_dashboards_filter_on() -> None:
    for rule in load_rules():
        if "record" in rule:
            by = re.search(r"^\w+ by \(([^)]*)\)", rule["expr"])
            assert by and "job" in [label.strip() for label in by.group(1).split(",")], rule["record"]


# -- provisioning -----------------------------------------------------------------------------------------
def test_alert_rules_pass_grafanas_start_up_checks() -> None:
    assert grafana_rules.problems(alerting(), boards()) == []


def _first_rule(data: dict[str, Any]) -> dict[str, Any]:
    rule: dict[str, Any] = data["groups"][0]["rules"][0]
    return rule


@pytest.mark.parametrize(("change", "complaint"), [
    (lambda r: r["annotations"].pop("__panelId__"), "must both be set"),
    (lambda r: r["annotations"].__setitem__("__panelId__", "9999"), "not shipped"),
    (lambda r: r.__setitem__("uid", "x" * 41), "uid"),
    (lambda r: r.__setitem__("uid", "has space"), "uid"),
    (lambda r: r.__setitem__("condition", "B"), "condition"),
    (lambda r: r["data"][1]["model"].__setitem__("expression", "Z"), "reads 'Z'"),
    (lambda r: r.__setitem__("noDataState", "Ok"), "noDataState"),
    (lambda r: r.__setitem__("execErrState", "Keep"), "execErrState"),
    (lambda r: r.__setitem__("for", "-5m"), "for"),
    (lambda r: r["labels"].__setitem__("__grafana_receiver__", "x"), "reserved"),
])
def test_the_start_up_checks_catch(change: Any, complaint: str) -> None:
    broken = copy.deepcopy(alerting())
    change(_first_rule(broken))
    found = grafana_rules.problems(broken, boards())
    assert any(complaint in problem for problem in found), found


def test_the_start_up_checks_catch_repeated_uids_and_titles() -> None:
    broken = copy.deepcopy(alerting())
    rules = broken["groups"][0]["rules"]
    rules.append(copy.deepcopy(rules[0]))
    found = grafana_rules.problems(broken, boards())
    assert "rule uids repeat" in found and any("titles repeat" in p for p in found)


def test_every_alert_is_in_grafana_linked_to_its_panel() -> None:
    rules = alerting()["groups"][0]["rules"]
    prometheus_alerts = {r["alert"]: r for r in load_rules() if "alert" in r}
    assert {r["title"] for r in rules} == set(prometheus_alerts)
    fault_panels = {p["title"].split(":", 1)[0]: p["id"] for p in panels(common.HOST_UID) if p["type"] == "stat"}
    for rule in rules:
        alert = prometheus_alerts[rule["title"]]
        assert rule["for"] == alert["for"] and rule["labels"]["severity"] == alert["labels"]["severity"]
        assert rule["annotations"]["__dashboardUid__"] == common.HOST_UID
        if "fault_id" in rule["labels"]:
            assert int(rule["annotations"]["__panelId__"]) == fault_panels[rule["labels"]["fault_id"]]
        assert "{{ $value" not in json.dumps(rule["annotations"])  # Grafana's value is the 1 of the threshold
    assert sorted(r["labels"]["fault_id"] for r in rules if "fault_id" in r["labels"]) == sorted(ALL_IDS)


def test_provisioning_files_fit_together() -> None:
    provider = yaml.safe_load(PROVIDER.read_text())
    assert provider["apiVersion"] == 1 and provider["providers"][0]["type"] == "file"
    source = yaml.safe_load(DATASOURCE.read_text())["datasources"][0]
    assert source["type"] == "prometheus"
    used = {q["datasourceUid"] for r in alerting()["groups"][0]["rules"] for q in r["data"]}
    assert used == {source["uid"], "__expr__"}
