"""The rules' ``promtool test rules`` suite: for every alert a host where it fires after its ``for``, one
where it never does, and the exact labels and annotations it fires with."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from ...checks import catalog
from ...checks.catalog import LINUX_FAULTS_URL, MACOS_FAULTS_URL, Platform
from . import config
from .common import PREFIX, Options, alert_name, all_faults
from .prometheus_rules import fault_alert, health_alerts

Labels = dict[str, str]
TEXTFILE = "/var/lib/prometheus/node-exporter/secure_endpoint.prom"
BEHIND = config.STALE_AFTER_SECONDS + 100  # seconds a stale test series stays behind time(): past the limit
OLD_DEFINITIONS = (config.DEFINITIONS_MAX_AGE_DAYS + 2) * 86400  # definitions' age past their limit


def _render(template: str, labels: Labels, value_text: str = "") -> str:
    """Fill in the few template forms the generated annotations use."""
    text = template.replace("{{ $labels.instance }}", labels["instance"])
    for key in ("fault_id", "fault", "collector", "file"):
        text = text.replace(f"{{{{ $labels.{key} }}}}", labels.get(key, ""))
    if "{{ if eq $labels.platform" in text:
        text = MACOS_FAULTS_URL if labels.get("platform") == "macos" else LINUX_FAULTS_URL
    return text.replace("{{ $value | humanizeDuration }}", value_text)


def _humanize_duration(seconds: int) -> str:
    """Prometheus's humanizeDuration for whole seconds (``9d 0h 0m 0s``, ``16m 40s``)."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h {minutes}m {secs}s"
    if hours:
        return f"{hours}h {minutes}m {secs}s"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def minutes_of(duration: str) -> int:
    value, unit = int(duration[:-1]), duration[-1]
    return {"m": value, "h": value * 60}[unit]


def selector_labels(selector: str) -> Labels:
    """The equality matchers of a selector, so test series carry them."""
    found = {}
    for part in selector.split(","):
        name, sep, value = part.partition("=")
        if sep and not name.endswith("!") and not value.startswith("~"):
            found[name.strip()] = json.loads(value.strip())
    return found


def input_series(name: str, labels: Labels, values: str) -> dict[str, str]:
    inner = ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items()))
    return {"series": f"{name}{{{inner}}}", "values": values}


def _annotations(rule: dict[str, Any], labels: Labels, value_text: str = "") -> Labels:
    return {k: _render(v, labels, value_text) for k, v in rule["annotations"].items()}


def fault_tests(options: Options) -> Iterator[dict[str, Any]]:
    base = selector_labels(options.selector)
    for fault in all_faults():
        rule = fault_alert(fault, options)
        minutes = minutes_of(rule["for"])
        platform = "macos" if Platform.LINUX not in fault.platforms else "linux"
        common = {**base, "fault_id": fault.id, "fault": fault.slug, "platform": platform}
        bad = {**common, "instance": "bad:9982"}
        good = {**common, "instance": "good:9982"}
        steps = minutes + 5
        yield {
            "interval": "1m",
            "input_series": [input_series("secure_endpoint_fault_active", bad, f"1x{steps}"),
                             input_series("secure_endpoint_fault_active", good, f"0x{steps}")],
            "alert_rule_test": [
                {"eval_time": f"{minutes - 1}m", "alertname": rule["alert"], "exp_alerts": []},
                {"eval_time": f"{minutes + 1}m", "alertname": rule["alert"], "exp_alerts": [{
                    "exp_labels": {**bad, "severity": str(fault.severity)},
                    "exp_annotations": _annotations(rule, bad),
                }]},
            ],
        }


def severity_change_test(options: Options) -> dict[str, Any]:
    """Fault 18 reported Major for 20 minutes, then Critical: the fault alert keeps firing without a
    gap (its labels do not change), and the Critical report raises its own alert after its ``for``."""
    base = selector_labels(options.selector)
    fault = catalog.get("18")
    assert fault is not None
    active = {**base, "fault_id": "18", "fault": fault.slug, "platform": "linux", "instance": "busy:9982"}
    reported = {**base, "fault_id": "18", "fault": fault.slug, "instance": "busy:9982"}
    critical_rule = next(r for r in health_alerts(options) if r["alert"] == PREFIX + "FaultReportedCritical")
    critical_labels = {**reported, "connector_severity": "critical"}
    return {
        "interval": "1m",
        "input_series": [
            input_series("secure_endpoint_fault_active", active, "1x40"),
            input_series("secure_endpoint_fault_reported", {**reported, "connector_severity": "major"}, "1x20 _x20"),
            input_series("secure_endpoint_fault_reported", critical_labels, "_x20 1x20"),
        ],
        "alert_rule_test": [
            {"eval_time": "24m", "alertname": alert_name(fault), "exp_alerts": [
                {"exp_labels": {**active, "severity": "warning"},
                 "exp_annotations": _annotations(fault_alert(fault, options), active)}]},
            {"eval_time": "24m", "alertname": critical_rule["alert"], "exp_alerts": []},
            {"eval_time": "26m", "alertname": critical_rule["alert"], "exp_alerts": [
                {"exp_labels": {**critical_labels, "severity": "critical"},
                 "exp_annotations": _annotations(critical_rule, critical_labels)}]},
        ],
    }


def vanished_test(options: Options) -> dict[str, Any]:
    """A host whose metrics stop after 20 minutes while its target stays up raises MetricsVanished once
    Prometheus's 5 minutes of staleness and the alert's ``for`` have passed; one that keeps reporting, one
    whose target went down (ExporterDown's case) and one taken out of the scrape configuration (its ``up``
    gone too) never do."""
    base = selector_labels(options.selector)
    rule = next(r for r in health_alerts(options) if r["alert"] == PREFIX + "MetricsVanished")
    gone, kept, down, retired = ({**base, "instance": f"{name}:9982"} for name in ("gone", "kept", "down", "retired"))
    fires = 20 + 5 + minutes_of(rule["for"])  # the minute the alert fires at the earliest
    rest = fires + 5 - 20  # steps after the metrics stop
    return {
        "interval": "1m",
        "input_series": [
            input_series("secure_endpoint_last_evaluation_timestamp_seconds", gone, f"0+60x20 _x{rest}"),
            input_series("secure_endpoint_last_evaluation_timestamp_seconds", kept, f"0+60x{20 + rest}"),
            input_series("secure_endpoint_last_evaluation_timestamp_seconds", down, f"0+60x20 _x{rest}"),
            input_series("secure_endpoint_last_evaluation_timestamp_seconds", retired, f"0+60x20 _x{rest}"),
            input_series("up", gone, f"1x{20 + rest}"), input_series("up", kept, f"1x{20 + rest}"),
            input_series("up", down, f"1x20 0x{rest}"), input_series("up", retired, f"1x20 _x{rest}"),
        ],
        "alert_rule_test": [
            {"eval_time": f"{fires - 2}m", "alertname": rule["alert"], "exp_alerts": []},
            {"eval_time": f"{fires + 3}m", "alertname": rule["alert"], "exp_alerts": [
                {"exp_labels": {**gone, "severity": "warning"}, "exp_annotations": _annotations(rule, gone)}]},
        ],
    }


# alert name: ([(metric, extra labels, bad values, good values)], labels the alert keeps)
_Case = tuple[list[tuple[str, Labels, str, str]], Labels]
# Alerts on ages: their series follow time() (60 s a step), the bad one BEHIND seconds behind or more.
_AGES = {"DefinitionsStale": OLD_DEFINITIONS, "EvaluationStale": BEHIND, "TextfileStale": BEHIND}


def _health_cases() -> dict[str, _Case]:
    return {
        "ExporterDown": ([("up", {}, "0", "1")], {}),
        "EvaluationStale": ([("secure_endpoint_last_evaluation_timestamp_seconds", {}, f"{-BEHIND}", "0")], {}),
        "TextfileStale": ([("node_textfile_mtime_seconds", {"file": TEXTFILE}, f"{-BEHIND}", "0")],
                          {"file": TEXTFILE}),
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
        "DefinitionsStale": ([("secure_endpoint_definitions_updated_timestamp_seconds", {}, f"{-OLD_DEFINITIONS}",
                               f"{-86400}"),
                              ("secure_endpoint_definitions_build_timestamp_seconds", {}, f"{-86400}",
                               f"{-OLD_DEFINITIONS}")], {}),
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


def health_tests(options: Options) -> Iterator[dict[str, Any]]:
    """Each health alert but MetricsVanished (``vanished_test``): a host where it fires after its ``for``,
    and one where it never does."""
    base = selector_labels(options.selector)
    by_name = {rule["alert"]: rule for rule in health_alerts(options)}
    for name, (metrics, kept) in _health_cases().items():
        rule = by_name[PREFIX + name]
        minutes = minutes_of(rule["for"])
        steps = minutes + 5
        series = []
        for metric, extra, bad_value, good_value in metrics:
            for instance, value in (("bad:9982", bad_value), ("good:9982", good_value)):
                values = f"{value}+60x{steps}" if name in _AGES else f"{value}x{steps}"
                series.append(input_series(metric, {**base, **extra, "instance": instance}, values))
        labels = {**base, **kept, "instance": "bad:9982"}
        age = _humanize_duration(_AGES[name]) if name in _AGES else ""
        yield {
            "interval": "1m",
            "input_series": series,
            "alert_rule_test": [
                {"eval_time": f"{max(minutes - 1, 0)}m", "alertname": rule["alert"], "exp_alerts": []},
                {"eval_time": f"{minutes + 1}m", "alertname": rule["alert"], "exp_alerts": [{
                    "exp_labels": {**labels, "severity": rule["labels"]["severity"]},
                    "exp_annotations": _annotations(rule, labels, age),
                }]},
            ],
        }


def rule_tests(options: Options, rules_file: str) -> dict[str, Any]:
    return {"rule_files": [rules_file], "evaluation_interval": "1m",
            "tests": [*fault_tests(options), *health_tests(options), severity_change_test(options),
                      vanished_test(options)]}
