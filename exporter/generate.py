"""Writes the Prometheus rules, their promtool tests, Grafana dashboards and Grafana alerting from the catalogue.

    python -m exporter.generate [--out DIR] [--selector 'job="secure_endpoint"'] [--runbook-url URL]

A new fault in ``checks/catalog.py`` needs no edit here: every alert, test,
panel and Grafana rule comes from the catalogue. The generated files are
committed; a test fails when they differ from a fresh generation.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from checks import catalog
from checks.catalog import LINUX_FAULTS_URL, MACOS_FAULTS_URL, Fault, Platform, Severity

DEFAULT_SELECTOR = 'job="secure_endpoint"'
DEFAULT_RUNBOOK = catalog.PROJECT_RUNBOOK_URL
DEFAULT_FOR = "5m"
# The fault tables' own guidance: 6 clears by itself within ten minutes of a restart, 18 can be a short
# burst, 13 can follow a reboot on connector 1.14.0, 10 waits for a planned reboot.
FOR_OVERRIDES = {"6": "15m", "18": "15m", "13": "30m", "10": "30m"}
FLEET_UID = "secure-endpoint-fleet"
HOST_UID = "secure-endpoint-host"
PREFIX = "SecureEndpoint"


class Options(argparse.Namespace):
    selector: str = DEFAULT_SELECTOR
    runbook_url: str = DEFAULT_RUNBOOK
    for_default: str = DEFAULT_FOR
    grafana_datasource_uid: str = "prometheus"
    out: str = "."


def all_faults() -> list[Fault]:
    """Every documented fault once (5, 6 and 7 are on both platforms), in id order."""
    return sorted(catalog.FAULTS, key=lambda f: int(f.id))


def alert_name(fault: Fault) -> str:
    return PREFIX + "".join(part.capitalize() for part in fault.slug.split("_"))


def severity_ids(severity: Severity) -> list[str]:
    return [f.id for f in all_faults() if f.severity is severity]


def _runbook(fault: Fault) -> str:
    if fault.article:
        return fault.article
    if fault.platforms == frozenset({Platform.MACOS}):
        return MACOS_FAULTS_URL
    if fault.platforms == frozenset({Platform.LINUX}):
        return LINUX_FAULTS_URL
    return f'{{{{ if eq $labels.platform "macos" }}}}{MACOS_FAULTS_URL}{{{{ else }}}}{LINUX_FAULTS_URL}{{{{ end }}}}'


def _sel(options: Options, *extra: str) -> str:
    return "{" + ", ".join([options.selector, *extra]) + "}"


# -- Prometheus rules ------------------------------------------------------------------------
def fault_alert(fault: Fault, options: Options) -> dict[str, Any]:
    """The fault's alert: the catalogue's severity and labels that stay the same while the fault lasts
    (a label that changed, such as the connector's severity, would restart the ``for`` timer)."""
    return {
        "alert": alert_name(fault),
        "expr": f'secure_endpoint_fault_active{_sel(options, f"fault_id={json.dumps(fault.id)}")} == 1',
        "for": FOR_OVERRIDES.get(fault.id, options.for_default),
        "labels": {"severity": str(fault.severity)},
        "annotations": {
            "summary": f"{{{{ $labels.instance }}}}: {fault.title.en} (fault {fault.id})",
            "description": f"{fault.meaning.en} Fix: {fault.fix.en} Host: {{{{ $labels.instance }}}}.",
            "runbook_url": _runbook(fault),
        },
    }


def _check(name: str, expr: str, duration: str, severity: str, summary: str, description: str,
           anchor: str, options: Options) -> dict[str, Any]:
    return {
        "alert": PREFIX + name,
        "expr": expr,
        "for": duration,
        "labels": {"severity": severity},
        "annotations": {"summary": summary, "description": description,
                        "runbook_url": f"{options.runbook_url}#{anchor}"},
    }


def health_alerts(options: Options) -> list[dict[str, Any]]:
    s = options
    host = "{{ $labels.instance }}"
    return [
        _check("ExporterDown", f"up{_sel(s)} == 0", "5m", "warning",
               f"{host}: the Secure Endpoint metrics cannot be scraped",
               "Prometheus cannot scrape the exporter (or node_exporter in textfile mode), so no connector fault "
               "on this host can be seen.", "exporter-down", s),
        _check("CollectorFailing",
               f'secure_endpoint_scrape_collector_success{_sel(s, "collector!=" + json.dumps("connector_status"))}'
               " == 0", "15m", "warning",
               f"{host}: the {{{{ $labels.collector }}}} collector fails",
               "The exporter cannot read the evidence of this collector; the faults that need it are unknown. "
               "Run the exporter with --log.level=debug or --once --format json to see why.", "collector-failing",
               s),
        _check("StatusUnavailable",
               f'secure_endpoint_scrape_collector_success{_sel(s, "collector=" + json.dumps("connector_status"))}'
               " == 0", "15m", "warning",
               f"{host}: ampcli status gives no answer",
               "ampcli is missing, failing, hung or printing something unreadable, so the faults only the connector "
               "can report are unknown.", "ampcli_failed", s),
        _check("ConnectorNotInstalled", f"secure_endpoint_connector_installed{_sel(s)} == 0", "15m", "critical",
               f"{host}: the Secure Endpoint connector is not installed",
               "No connector was found on this host. Install it, or stop monitoring the host.", "not_installed", s),
        _check("DaemonNotRunning",
               f'secure_endpoint_process_running{_sel(s, "process=" + json.dumps("ampdaemon"))} == 0 '
               f"and on (job, instance) secure_endpoint_connector_installed{_sel(s)} == 1",
               "5m", "critical", f"{host}: ampdaemon is not running",
               "The connector is installed but its daemon does not run: nothing on this host is protected.",
               "daemon_not_running", s),
        _check("NotConnected", f"secure_endpoint_connector_connected{_sel(s)} == 0", "15m", "warning",
               f"{host}: the connector is not connected to the Secure Endpoint cloud",
               "The connector gets no policy or definition updates and the console shows old state.",
               "not_connected", s),
        _check("DefinitionsStale",
               f"time() - (secure_endpoint_definitions_updated_timestamp_seconds{_sel(s)}"
               f" or secure_endpoint_definitions_build_timestamp_seconds{_sel(s)}) > 7 * 86400", "1h",
               "warning", f"{host}: virus definitions are older than 7 days",
               "The definitions were last updated (ampcli policy; else the newest definition file's build time) "
               "{{ $value | humanizeDuration }} ago.",
               "definitions_stale", s),
        _check("FaultCheckUnknown", f"secure_endpoint_fault_check_success{_sel(s)} == 0", "1h", "info",
               f"{host}: fault {{{{ $labels.fault_id }}}} ({{{{ $labels.fault }}}}) cannot be judged",
               "The evidence for this fault has been unreadable for an hour (permission, damaged file, ampcli). "
               "check_secure_endpoint -v or the exporter's JSON report names the reason.", "fault-check-unknown", s),
        _check("FaultReportedCritical",
               f'secure_endpoint_fault_reported{_sel(s, "connector_severity=" + json.dumps("critical"))} == 1',
               "5m", "critical",
               f"{host}: the connector reports fault {{{{ $labels.fault_id }}}} ({{{{ $labels.fault }}}}) as Critical",
               "The connector itself rates this fault Critical (for fault 18: it watches only a reduced set of "
               "events). The fault's own alert keeps the catalogue's severity; route on connector_severity to "
               "escalate.", "fault-reported-critical", s),
        _check("UnknownFaultReported",
               f'secure_endpoint_fault_active{_sel(s, "fault=" + json.dumps("unknown"))} == 1', "5m", "warning",
               f"{host}: the connector reports fault {{{{ $labels.fault_id }}}}, which this project does not know",
               "See Cisco's fault table for the platform, and tell this project about the new fault.",
               "unknown-fault", s),
    ]


def recording_rules(options: Options) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = [
        {"record": "fault_id:secure_endpoint_fault_active:sum",
         "expr": f"sum by (fault_id, fault, platform) (secure_endpoint_fault_active{_sel(options)})"},
        {"record": "version:secure_endpoint_connector_info:count",
         "expr": f"count by (version, platform) (secure_endpoint_connector_info{_sel(options)})"},
        {"record": "secure_endpoint:hosts_with_active_faults:count",
         "expr": f"count(max by (job, instance) (secure_endpoint_fault_active{_sel(options)}) == 1) or vector(0)"},
    ]
    for severity in Severity:
        ids = "|".join(severity_ids(severity))
        rules.append({"record": "severity:secure_endpoint_fault_active:sum",
                      "expr": f'sum(secure_endpoint_fault_active{_sel(options, f"fault_id=~{json.dumps(ids)}")})'
                              " or vector(0)",
                      "labels": {"severity": str(severity)}})
    return rules


def rules(options: Options) -> dict[str, Any]:
    return {"groups": [
        {"name": "secure-endpoint-faults", "rules": [fault_alert(f, options) for f in all_faults()]},
        {"name": "secure-endpoint-health", "rules": health_alerts(options)},
        {"name": "secure-endpoint-fleet.rules", "rules": recording_rules(options)},
    ]}


# -- promtool tests ---------------------------------------------------------------------------
def _render(template: str, labels: dict[str, str]) -> str:
    """Fill in the few template forms the generated annotations use."""
    text = template.replace("{{ $labels.instance }}", labels["instance"])
    for key in ("fault_id", "fault", "collector"):
        text = text.replace(f"{{{{ $labels.{key} }}}}", labels.get(key, ""))
    if "{{ if eq $labels.platform" in text:
        text = MACOS_FAULTS_URL if labels.get("platform") == "macos" else LINUX_FAULTS_URL
    return text


def _minutes(duration: str) -> int:
    value, unit = int(duration[:-1]), duration[-1]
    return {"m": value, "h": value * 60}[unit]


def _selector_labels(options: Options) -> dict[str, str]:
    """The equality matchers of the selector, so test series carry them."""
    found = {}
    for part in options.selector.split(","):
        name, sep, value = part.partition("=")
        if sep and not name.endswith(("!", "=~")) and not value.startswith("~"):
            found[name.strip()] = json.loads(value.strip())
    return found


def _series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    inner = ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items()))
    return {"series": f"{name}{{{inner}}}", "values": values}


def fault_tests(options: Options) -> Iterator[dict[str, Any]]:
    base = _selector_labels(options)
    for fault in all_faults():
        rule = fault_alert(fault, options)
        minutes = _minutes(rule["for"])
        platform = "macos" if Platform.LINUX not in fault.platforms else "linux"
        common = {**base, "fault_id": fault.id, "fault": fault.slug, "platform": platform}
        bad = {**common, "instance": "bad:9982"}
        good = {**common, "instance": "good:9982"}
        steps = minutes + 5
        yield {
            "interval": "1m",
            "input_series": [_series("secure_endpoint_fault_active", bad, f"1x{steps}"),
                             _series("secure_endpoint_fault_active", good, f"0x{steps}")],
            "alert_rule_test": [
                {"eval_time": f"{minutes - 1}m", "alertname": rule["alert"], "exp_alerts": []},
                {"eval_time": f"{minutes + 1}m", "alertname": rule["alert"], "exp_alerts": [{
                    "exp_labels": {**bad, "severity": str(fault.severity)},
                    "exp_annotations": {k: _render(v, bad) for k, v in rule["annotations"].items()},
                }]},
            ],
        }


def severity_change_test(options: Options) -> dict[str, Any]:
    """Fault 18 reported Major for 20 minutes, then Critical: the fault alert keeps firing without a
    gap (its labels do not change), and the Critical report raises its own alert after its ``for``."""
    base = _selector_labels(options)
    fault = catalog.get("18")
    assert fault is not None
    active = {**base, "fault_id": "18", "fault": fault.slug, "platform": "linux", "instance": "busy:9982"}
    reported = {**base, "fault_id": "18", "fault": fault.slug, "instance": "busy:9982"}
    critical_rule = next(r for r in health_alerts(options) if r["alert"] == PREFIX + "FaultReportedCritical")
    critical_labels = {**reported, "connector_severity": "critical"}

    def annotations(rule: dict[str, Any], labels: dict[str, str]) -> dict[str, str]:
        return {k: _render(v, labels) for k, v in rule["annotations"].items()}

    return {
        "interval": "1m",
        "input_series": [
            _series("secure_endpoint_fault_active", active, "1x40"),
            _series("secure_endpoint_fault_reported", {**reported, "connector_severity": "major"}, "1x20 _x20"),
            _series("secure_endpoint_fault_reported", critical_labels, "_x20 1x20"),
        ],
        "alert_rule_test": [
            {"eval_time": "24m", "alertname": alert_name(fault), "exp_alerts": [
                {"exp_labels": {**active, "severity": "warning"},
                 "exp_annotations": annotations(fault_alert(fault, options), active)}]},
            {"eval_time": "24m", "alertname": critical_rule["alert"], "exp_alerts": []},
            {"eval_time": "26m", "alertname": critical_rule["alert"], "exp_alerts": [
                {"exp_labels": {**critical_labels, "severity": "critical"},
                 "exp_annotations": annotations(critical_rule, critical_labels)}]},
        ],
    }


def health_tests(options: Options) -> Iterator[dict[str, Any]]:
    """Each health alert: a host where it fires after its ``for``, and one where it never does."""
    base = _selector_labels(options)
    cases: dict[str, tuple[list[tuple[str, dict[str, str], str, str]], dict[str, str]]] = {
        # alert name: ([(metric, extra labels, bad values, good values)], labels the alert keeps)
        "ExporterDown": ([("up", {}, "0", "1")], {}),
        "CollectorFailing": ([("secure_endpoint_scrape_collector_success", {"collector": "policy"}, "0", "1")],
                             {"collector": "policy"}),
        "StatusUnavailable": ([("secure_endpoint_scrape_collector_success", {"collector": "connector_status"},
                                "0", "1")], {"collector": "connector_status"}),
        "ConnectorNotInstalled": ([("secure_endpoint_connector_installed", {}, "0", "1")], {}),
        "DaemonNotRunning": ([("secure_endpoint_process_running", {"process": "ampdaemon"}, "0", "1"),
                              ("secure_endpoint_connector_installed", {}, "1", "1")], {"process": "ampdaemon"}),
        "NotConnected": ([("secure_endpoint_connector_connected", {}, "0", "1")], {}),
        # The connector's update time wins over the files' build time: the good host has stale files
        # but fresh updates, the bad one the other way round.
        "DefinitionsStale": ([("secure_endpoint_definitions_updated_timestamp_seconds", {}, f"{-9 * 86400}",
                               f"{-86400}"),
                              ("secure_endpoint_definitions_build_timestamp_seconds", {}, f"{-86400}",
                               f"{-9 * 86400}")], {}),
        "FaultCheckUnknown": ([("secure_endpoint_fault_check_success",
                                {"fault_id": "8", "fault": "file_monitor_not_started"}, "0", "1")],
                              {"fault_id": "8", "fault": "file_monitor_not_started"}),
        "FaultReportedCritical": ([("secure_endpoint_fault_reported",
                                    {"fault_id": "18", "fault": "event_monitoring_overloaded",
                                     "connector_severity": "critical"}, "1", "0")],
                                  {"fault_id": "18", "fault": "event_monitoring_overloaded",
                                   "connector_severity": "critical"}),
        "UnknownFaultReported": ([("secure_endpoint_fault_active",
                                   {"fault_id": "42", "fault": "unknown", "platform": "linux"}, "1", "0")],
                                 {"fault_id": "42", "fault": "unknown", "platform": "linux"}),
    }
    by_name = {rule["alert"]: rule for rule in health_alerts(options)}
    for name, (metrics, kept) in cases.items():
        rule = by_name[PREFIX + name]
        minutes = _minutes(rule["for"])
        steps = minutes + 5
        series = []
        for metric, extra, bad_value, good_value in metrics:
            for instance, value in (("bad:9982", bad_value), ("good:9982", good_value)):
                # Timestamps: the stale test counts from time() at each step, so its series grows by 60 s a step.
                values = (f"{value}+60x{steps}" if name == "DefinitionsStale" else f"{value}x{steps}")
                series.append(_series(metric, {**base, **extra, "instance": instance}, values))
        labels = {**base, **kept, "instance": "bad:9982"}
        annotations = {k: _render(v, labels) for k, v in rule["annotations"].items()}
        if name == "DefinitionsStale":
            annotations["description"] = annotations["description"].replace(
                "{{ $value | humanizeDuration }}", "9d 0h 0m 0s")
        yield {
            "interval": "1m",
            "input_series": series,
            "alert_rule_test": [
                {"eval_time": f"{max(minutes - 1, 0)}m", "alertname": rule["alert"], "exp_alerts": []},
                {"eval_time": f"{minutes + 1}m", "alertname": rule["alert"], "exp_alerts": [{
                    "exp_labels": {**labels, "severity": rule["labels"]["severity"]},
                    "exp_annotations": annotations,
                }]},
            ],
        }


def rule_tests(options: Options, rules_file: str) -> dict[str, Any]:
    return {"rule_files": [rules_file], "evaluation_interval": "1m",
            "tests": [*fault_tests(options), *health_tests(options), severity_change_test(options)]}


# -- Grafana dashboards ----------------------------------------------------------------------
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
ACTIVE_MAPPING = [{"type": "value", "options": {
    "0": {"text": "clear", "color": "green", "index": 0},
    "1": {"text": "ACTIVE", "color": "red", "index": 1}}}]


def _variables(single_instance: bool) -> dict[str, Any]:
    return {"list": [
        {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
         "current": {}, "hide": 0},
        {"name": "job", "label": "Job", "type": "query", "datasource": DATASOURCE,
         "query": {"query": "label_values(secure_endpoint_connector_installed, job)", "refId": "job"},
         "definition": "label_values(secure_endpoint_connector_installed, job)", "refresh": 2,
         "multi": True, "includeAll": True, "allValue": ".+", "current": {}},
        {"name": "instance", "label": "Host", "type": "query", "datasource": DATASOURCE,
         "query": {"query": 'label_values(secure_endpoint_connector_installed{job=~"$job"}, instance)',
                   "refId": "instance"},
         "definition": 'label_values(secure_endpoint_connector_installed{job=~"$job"}, instance)', "refresh": 2,
         "multi": not single_instance, "includeAll": not single_instance, "allValue": ".+", "current": {}},
    ]}


class _Layout:
    """Hands out grid positions left to right, top to bottom, and panel ids."""

    def __init__(self) -> None:
        self.x = self.y = self.row_height = 0
        self.next_id = 1

    def place(self, width: int, height: int) -> dict[str, int]:
        if self.x + width > 24:
            self.x, self.y, self.row_height = 0, self.y + self.row_height, 0
        position = {"x": self.x, "y": self.y, "w": width, "h": height}
        self.x += width
        self.row_height = max(self.row_height, height)
        return position

    def row(self, title: str) -> dict[str, Any]:
        self.x, self.y, self.row_height = 0, self.y + self.row_height, 0
        panel = {"type": "row", "title": title, "id": self.take(), "collapsed": False,
                 "gridPos": {"x": 0, "y": self.y, "w": 24, "h": 1}, "panels": []}
        self.y += 1
        return panel

    def take(self) -> int:
        self.next_id += 1
        return self.next_id - 1


def _panel(layout: _Layout, kind: str, title: str, exprs: list[tuple[str, str]], width: int, height: int,
           description: str = "", instant: bool = False, **extra: Any) -> dict[str, Any]:
    panel: dict[str, Any] = {
        "type": kind, "title": title, "id": layout.take(), "datasource": DATASOURCE,
        "gridPos": layout.place(width, height), "description": description,
        "targets": [{"refId": chr(65 + i), "expr": expr, "legendFormat": legend, "instant": instant,
                     "range": not instant, "datasource": DATASOURCE} for i, (expr, legend) in enumerate(exprs)],
    }
    panel.update(extra)
    return panel


def _stat(mappings: list[dict[str, Any]] | None = None, unit: str = "none",
          steps: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"fieldConfig": {"defaults": {"unit": unit, "mappings": mappings or [], "thresholds": {
        "mode": "absolute", "steps": steps or [{"color": "green", "value": None}, {"color": "red", "value": 1}]}},
        "overrides": []}, "options": {"colorMode": "background", "reduceOptions": {"calcs": ["lastNotNull"]}}}


def fleet_dashboard(options: Options) -> dict[str, Any]:
    del options
    sel = 'job=~"$job", instance=~"$instance"'
    lay = _Layout()
    titles = {f.id: f"{f.id}: {f.title.en}" for f in all_faults()}
    fixes = {f.slug: f.fix.en for f in all_faults()}
    panels = [
        lay.row("Fleet"),
        _panel(lay, "stat", "Hosts", [(f"count(secure_endpoint_connector_installed{{{sel}}}) or vector(0)", "")],
               4, 4, "Hosts whose Secure Endpoint metrics are scraped.", True,
               **_stat(steps=[{"color": "blue", "value": None}])),
        _panel(lay, "stat", "Hosts with active faults",
               [(f"count(max by (job, instance) (secure_endpoint_fault_active{{{sel}}}) == 1) or vector(0)", "")],
               4, 4, "Hosts with at least one documented connector fault active.", True, **_stat()),
        _panel(lay, "stat", "Not installed",
               [(f"count(secure_endpoint_connector_installed{{{sel}}} == 0) or vector(0)", "")],
               4, 4, "Hosts without the connector.", True, **_stat()),
        _panel(lay, "stat", "Not connected",
               [(f"count(secure_endpoint_connector_connected{{{sel}}} == 0) or vector(0)", "")],
               4, 4, "Hosts whose connector is not connected to the cloud.", True, **_stat()),
        _panel(lay, "stat", "ampdaemon down",
               [(f'count(secure_endpoint_process_running{{{sel}, process="ampdaemon"}} == 0 and on (job, instance) '
                 f"secure_endpoint_connector_installed{{{sel}}} == 1) or vector(0)", "")],
               4, 4, "Hosts with the connector installed but its daemon not running.", True, **_stat()),
        _panel(lay, "stat", "Scrapes failing", [(f"count(up{{{sel}}} == 0) or vector(0)", "")],
               4, 4, "Targets Prometheus cannot scrape.", True, **_stat()),
        lay.row("Faults"),
        _panel(lay, "bargauge", "Hosts per active fault",
               [(f"sum by (fault_id) (secure_endpoint_fault_active{{{sel}}})", "{{fault_id}}")],
               12, 10, "How many hosts have each fault active now.", True,
               fieldConfig={"defaults": {"unit": "none", "min": 0}, "overrides": [
                   {"matcher": {"id": "byName", "options": fid}, "properties": [
                       {"id": "displayName", "value": title}]} for fid, title in titles.items()]},
               options={"displayMode": "basic", "orientation": "horizontal",
                        "reduceOptions": {"calcs": ["lastNotNull"]}}),
        _panel(lay, "timeseries", "Active faults by severity",
               [(f'sum(secure_endpoint_fault_active{{{sel}, fault_id=~"{"|".join(severity_ids(sev))}"}})'
                 " or vector(0)", str(sev)) for sev in Severity],
               12, 10, "Active faults over time, split by the catalogue's default severity."),
        _panel(lay, "table", "Active faults and their fix",
               [(f"secure_endpoint_fault_active{{{sel}}} == 1", "")], 24, 10,
               "Every active fault on every host, with what to do about it.", True,
               transformations=[{"id": "labelsToFields", "options": {}},
                                {"id": "organize", "options": {
                                    "excludeByName": {"Time": True, "Value": True, "__name__": True, "job": True},
                                    "renameByName": {"instance": "Host", "fault_id": "Fault", "fault": "Fix",
                                                     "platform": "Platform"}}}],
               fieldConfig={"defaults": {}, "overrides": [
                   {"matcher": {"id": "byName", "options": "Fault"}, "properties": [{"id": "mappings", "value": [
                       {"type": "value", "options": {fid: {"text": title, "index": i} for i, (fid, title)
                                                     in enumerate(titles.items())}}]}]},
                   {"matcher": {"id": "byName", "options": "Fix"}, "properties": [{"id": "mappings", "value": [
                       {"type": "value", "options": {slug: {"text": fix, "index": i} for i, (slug, fix)
                                                     in enumerate(fixes.items())}}]}]}]}),
        lay.row("Connectors"),
        _panel(lay, "table", "Connector versions",
               [(f"count by (version, platform) (secure_endpoint_connector_info{{{sel}}})", "")], 12, 8,
               "Hosts per connector version and platform.", True,
               transformations=[{"id": "labelsToFields", "options": {}}]),
        _panel(lay, "table", "Hosts not installed or not connected",
               [(f"secure_endpoint_connector_installed{{{sel}}} == 0", "not installed"),
                (f"secure_endpoint_connector_connected{{{sel}}} == 0", "not connected")], 12, 8,
               "Hosts that need a connector installed or reconnected.", True,
               transformations=[{"id": "merge", "options": {}}]),
    ]
    return _dashboard(FLEET_UID, "Secure Endpoint / Fleet", panels, single_instance=False)


def host_dashboard(options: Options) -> dict[str, Any]:
    del options
    sel = 'job=~"$job", instance=~"$instance"'
    lay = _Layout()
    binary: list[dict[str, Any]] = [{"type": "value", "options": {"0": {"text": "no", "color": "red", "index": 0},
                                            "1": {"text": "yes", "color": "green", "index": 1}}}]
    ok_steps: list[dict[str, Any]] = [{"color": "red", "value": None}, {"color": "green", "value": 1}]
    panels: list[dict[str, Any]] = [
        lay.row("Connector"),
        _panel(lay, "stat", "Installed", [(f"max(secure_endpoint_connector_installed{{{sel}}})", "")], 4, 4,
               instant=True, **_stat(binary, steps=ok_steps)),
        _panel(lay, "stat", "Connected", [(f"max(secure_endpoint_connector_connected{{{sel}}})", "")], 4, 4,
               instant=True, **_stat(binary, steps=ok_steps)),
        _panel(lay, "stat", "ampdaemon",
               [(f'max(secure_endpoint_process_running{{{sel}, process="ampdaemon"}})', "")], 4, 4,
               instant=True, **_stat(binary, steps=ok_steps)),
        _panel(lay, "stat", "ampscansvc",
               [(f'max(secure_endpoint_process_running{{{sel}, process="ampscansvc"}})', "")], 4, 4,
               instant=True, **_stat(binary, steps=ok_steps)),
        _panel(lay, "stat", "Definitions age",
               [(f"time() - max(secure_endpoint_definitions_updated_timestamp_seconds{{{sel}}}"
                 f" or secure_endpoint_definitions_build_timestamp_seconds{{{sel}}})", "")], 4, 4,
               "Time since the connector last updated its definitions (ampcli policy), or else since the "
               "newest virus definition file was built.", True,
               **_stat(unit="s", steps=[{"color": "green", "value": None}, {"color": "orange", "value": 3 * 86400},
                                        {"color": "red", "value": 7 * 86400}])),
        _panel(lay, "table", "Connector", [(f"secure_endpoint_connector_info{{{sel}}}", "")], 4, 4,
               "Version, OS and policy.", True, transformations=[{"id": "labelsToFields", "options": {}}]),
        lay.row("Faults over time"),
        _panel(lay, "state-timeline", "Fault state",
               [(f"secure_endpoint_fault_active{{{sel}}}", "{{fault_id}} {{fault}}")], 24, 10,
               "Every fault of the host's platform: red while active.",
               fieldConfig={"defaults": {"mappings": ACTIVE_MAPPING, "thresholds": {"mode": "absolute", "steps": [
                   {"color": "green", "value": None}, {"color": "red", "value": 1}]}}, "overrides": []}),
        _panel(lay, "table", "Faults that cannot be judged",
               [(f"secure_endpoint_fault_check_success{{{sel}}} == 0", "")], 12, 6,
               "Faults whose evidence could not be read; the plugin's -v output or the JSON report says why.", True,
               transformations=[{"id": "labelsToFields", "options": {}}]),
        _panel(lay, "table", "Faults the connector reports",
               [(f"secure_endpoint_fault_reported{{{sel}}} == 1", "")], 12, 6,
               "What ampcli status says, beside what the host evidence shows.", True,
               transformations=[{"id": "labelsToFields", "options": {}}]),
        lay.row("Every fault"),
    ]
    for fault in all_faults():
        platforms = " and ".join(sorted(str(p) for p in fault.platforms))
        panels.append(_panel(
            lay, "stat", f"{fault.id}: {fault.title.en}",
            [(f'max(secure_endpoint_fault_active{{{sel}, fault_id="{fault.id}"}})', "")], 4, 3,
            f"{fault.meaning.en} Fix: {fault.fix.en} ({platforms}; {fault.severity})", True,
            links=[{"title": "Cisco fault table", "url": _runbook(fault) if "{{" not in _runbook(fault)
                    else LINUX_FAULTS_URL, "targetBlank": True}],
            **_stat(ACTIVE_MAPPING)))
    panels += [
        lay.row("Exporter"),
        _panel(lay, "timeseries", "Collector success",
               [(f"secure_endpoint_scrape_collector_success{{{sel}}}", "{{collector}}")], 12, 8,
               "1 when a collector read its evidence."),
        _panel(lay, "timeseries", "Collector duration",
               [(f"secure_endpoint_scrape_collector_duration_seconds{{{sel}}}", "{{collector}}")], 12, 8,
               "Time each collector takes per scrape.", fieldConfig={"defaults": {"unit": "s"}, "overrides": []}),
    ]
    return _dashboard(HOST_UID, "Secure Endpoint / Host", panels, single_instance=True)


def _dashboard(uid: str, title: str, panels: list[dict[str, Any]], single_instance: bool) -> dict[str, Any]:
    other = HOST_UID if uid == FLEET_UID else FLEET_UID
    return {
        "uid": uid, "title": title, "tags": ["secure-endpoint", "cisco"], "timezone": "browser",
        "editable": False, "graphTooltip": 1, "schemaVersion": 39, "version": 1, "refresh": "1m",
        "time": {"from": "now-6h", "to": "now"}, "templating": _variables(single_instance),
        "annotations": {"list": []}, "panels": panels,
        "links": [{"title": "Fleet" if other == FLEET_UID else "Host", "type": "link", "url": f"/d/{other}",
                   "keepTime": True, "includeVars": True}],
    }


# -- Grafana provisioning --------------------------------------------------------------------------
def dashboard_provider() -> dict[str, Any]:
    return {"apiVersion": 1, "providers": [{
        "name": "secure-endpoint", "folder": "Secure Endpoint", "type": "file", "disableDeletion": False,
        "allowUiUpdates": False, "updateIntervalSeconds": 60,
        "options": {"path": "/var/lib/grafana/dashboards/secure-endpoint"}}]}


def fault_panel_ids(options: Options) -> dict[str, int]:
    """The host dashboard's panel id for each fault, so Grafana alerts can link to it."""
    ids = {}
    for panel in host_dashboard(options)["panels"]:
        title = panel["title"]
        head = title.split(":", 1)[0]
        if panel["type"] == "stat" and head.isdigit():
            ids[head] = panel["id"]
    return ids


def grafana_alerting(options: Options) -> dict[str, Any]:
    """Grafana-managed rules equivalent to the Prometheus alerts, for teams that alert from Grafana."""
    all_rules = [*(fault_alert(f, options) for f in all_faults()), *health_alerts(options)]
    panels = fault_panel_ids(options)
    grafana_rules = []
    for rule in all_rules:
        fault_id = rule["expr"].split('fault_id="', 1)[1].split('"', 1)[0] if 'fault_id="' in rule["expr"] else ""
        labels = {**rule["labels"], **({"fault_id": fault_id} if fault_id else {})}
        links = {"__dashboardUid__": HOST_UID, **({"__panelId__": str(panels[fault_id])} if fault_id else {})}
        grafana_rules.append({
            "uid": _grafana_uid(rule["alert"]),
            "title": rule["alert"],
            "condition": "C",
            "data": [
                {"refId": "A", "relativeTimeRange": {"from": 600, "to": 0},
                 "datasourceUid": options.grafana_datasource_uid,
                 "model": {"refId": "A", "expr": _grafana_expr(rule["expr"]), "instant": True, "range": False}},
                {"refId": "C", "relativeTimeRange": {"from": 0, "to": 0}, "datasourceUid": "__expr__",
                 "model": {"refId": "C", "type": "threshold", "expression": "A",
                           "conditions": [{"evaluator": {"type": "gt", "params": [0]}}]}},
            ],
            "noDataState": "OK",
            "execErrState": "Error",
            "for": rule["for"],
            "labels": labels,
            "annotations": {**{k: _grafana_template(v) for k, v in rule["annotations"].items()}, **links},
        })
    return {"apiVersion": 1, "groups": [{"orgId": 1, "name": "secure-endpoint", "folder": "Secure Endpoint",
                                         "interval": "1m", "rules": grafana_rules}]}


def _grafana_uid(alert: str) -> str:
    """Grafana uids are at most 40 characters: keep them stable and readable."""
    slug = "se-" + "".join(c.lower() if c.isalnum() else "-" for c in alert.removeprefix(PREFIX))
    return slug[:40]


def _grafana_expr(expr: str) -> str:
    """Every series the Prometheus expression keeps becomes a 1, which the threshold turns into an alert."""
    return f"({expr}) * 0 + 1"


def _grafana_template(text: str) -> str:
    """Grafana knows $labels as Prometheus does; the value of query A is $values.A."""
    return text.replace("{{ $value | humanizeDuration }}", "more than 7 days")


# -- writing -------------------------------------------------------------------------------
def files(options: Options) -> dict[str, str]:
    def dump_yaml(value: Any, header: str) -> str:
        body = yaml.safe_dump(value, sort_keys=False, allow_unicode=True, width=120)
        return f"# {header}\n# Generated by `python -m exporter.generate` from checks/catalog.py: do not edit.\n{body}"

    def dump_json(value: Any) -> str:
        return json.dumps(value, indent=2, ensure_ascii=False) + "\n"

    return {
        "rules/secure_endpoint.rules.yml": dump_yaml(rules(options), "Prometheus alerting and recording rules."),
        "rules/secure_endpoint.rules.test.yml": dump_yaml(
            rule_tests(options, "secure_endpoint.rules.yml"), "promtool test rules secure_endpoint.rules.test.yml"),
        f"grafana/dashboards/{FLEET_UID}.json": dump_json(fleet_dashboard(options)),
        f"grafana/dashboards/{HOST_UID}.json": dump_json(host_dashboard(options)),
        "grafana/provisioning/dashboards/secure-endpoint.yml": dump_yaml(
            dashboard_provider(), "Grafana dashboard provisioning: copy the dashboards/ JSON files to the path below."),
        "grafana/provisioning/alerting/secure-endpoint.yml": dump_yaml(
            grafana_alerting(options), "Grafana-managed alert rules (file provisioning)."),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m exporter.generate", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=".", help="repository root to write rules/ and grafana/ into")
    parser.add_argument("--selector", default=DEFAULT_SELECTOR,
                        help='label matchers for the exporter\'s series (default: %(default)s; textfile mode: '
                        'job="node")')
    parser.add_argument("--runbook-url", default=DEFAULT_RUNBOOK, help="base URL of docs/runbook.md")
    parser.add_argument("--for-default", default=DEFAULT_FOR, help="'for' of fault alerts without their own")
    parser.add_argument("--grafana-datasource-uid", default="prometheus",
                        help="uid of the Prometheus data source the Grafana alert rules query")
    options = parser.parse_args(argv, namespace=Options())
    for rel, text in files(options).items():
        path = Path(options.out) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(path)


if __name__ == "__main__":
    main()
