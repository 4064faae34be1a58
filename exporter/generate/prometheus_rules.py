"""The Prometheus alerting and recording rules: one alert per fault, the exporter's health, fleet recordings."""

from __future__ import annotations

import json
from typing import Any

from ...checks.catalog import Fault, Severity
from . import config
from .common import (
    PREFIX,
    Options,
    alert_name,
    all_faults,
    equals,
    fault_runbook,
    selector,
    severity_ids,
)

# node_exporter names the file by its path (1.7 and later) or its name (before): match either.
TEXTFILE_NAME = r"(.*/)?secure_endpoint[^/]*\.prom"
HOST = "{{ $labels.instance }}"


def fault_alert(fault: Fault, options: Options) -> dict[str, Any]:
    """The fault's alert: the catalogue's severity and labels that stay the same while the fault lasts
    (a label that changed, such as the connector's severity, would restart the ``for`` timer)."""
    return {
        "alert": alert_name(fault),
        "expr": f"secure_endpoint_fault_active{selector(options, equals('fault_id', fault.id))} == 1",
        "for": fault.alert_for or options.for_default,
        "labels": {"severity": str(fault.severity)},
        "annotations": {
            "summary": f"{HOST}: {fault.title.en}" + (f" (fault {fault.id})" if fault.documented else ""),
            "description": f"{fault.meaning.en} Fix: {fault.fix.en} Host: {HOST}.",
            "runbook_url": fault_runbook(fault, options),
        },
    }


def _health(name: str, expr: str, severity: str, summary: str, description: str, anchor: str,
            options: Options) -> dict[str, Any]:
    return {
        "alert": PREFIX + name,
        "expr": expr,
        "for": config.HEALTH_FOR[name],
        "labels": {"severity": severity},
        "annotations": {"summary": summary, "description": description,
                        "runbook_url": f"{options.runbook_url}#{anchor}"},
    }


def health_alerts(options: Options) -> list[dict[str, Any]]:
    """Alerts on what the exporter itself sees: the connector's state, collectors, and data going stale."""
    s = options

    def sel(*extra: str) -> str:
        return selector(options, *extra)

    stale = config.STALE_AFTER_SECONDS
    days = config.DEFINITIONS_MAX_AGE_DAYS
    return [
        _health("ExporterDown", f"up{sel()} == 0", "warning",
                f"{HOST}: the Secure Endpoint metrics cannot be scraped",
                "Prometheus cannot scrape the exporter (or node_exporter in textfile mode), so no connector fault "
                "on this host can be seen.", "exporter-down", s),
        _health("EvaluationStale",
                f"time() - secure_endpoint_last_evaluation_timestamp_seconds{sel()} > {stale}", "warning",
                f"{HOST}: the Secure Endpoint evaluation has not run for {stale // 60} minutes",
                "The last evaluation of the connector's faults is {{ $value | humanizeDuration }} old: in textfile "
                "mode the timer or its --once run stopped, so every fault alert shows old data. Check "
                "systemctl status secure-endpoint-exporter-textfile.timer and its journal.", "evaluation-stale", s),
        _health("TextfileStale",
                f"time() - node_textfile_mtime_seconds{{file=~{json.dumps(TEXTFILE_NAME)}}} > {stale}",
                "warning", f"{HOST}: {{{{ $labels.file }}}} has not been rewritten for {stale // 60} minutes",
                "node_exporter still serves the Secure Endpoint textfile, but nothing has rewritten it for "
                "{{ $value | humanizeDuration }}: the timer is stopped or its run fails.", "textfile-stale", s),
        _health("MetricsVanished",
                f"max_over_time(secure_endpoint_last_evaluation_timestamp_seconds{sel()}[1d]) "
                f"unless secure_endpoint_last_evaluation_timestamp_seconds{sel()} "
                f"and on (job, instance) up{sel()} == 1", "warning",
                f"{HOST}: the Secure Endpoint metrics are gone",
                "The host reported Secure Endpoint metrics in the last day and reports none now, while its target "
                "is still up (the textfile was removed, or the collector turned off): the fault alerts resolved "
                "without the faults being fixed. A host taken out of the scrape configuration does not raise it.",
                "metrics-vanished", s),
        _health("CollectorFailing",
                f"secure_endpoint_scrape_collector_success{sel('collector!=' + json.dumps('connector_status'))}"
                " == 0", "warning",
                f"{HOST}: the {{{{ $labels.collector }}}} collector fails",
                "The exporter cannot read the evidence of this collector; the faults that need it are unknown. "
                "Run the exporter with --log.level=debug or --once --format json to see why.", "collector-failing",
                s),
        _health("StatusUnavailable",
                f"secure_endpoint_scrape_collector_success{sel(equals('collector', 'connector_status'))} == 0",
                "warning", f"{HOST}: ampcli status gives no answer",
                "ampcli is missing, failing, hung or printing something unreadable, so the faults only the connector "
                "can report are unknown.", "ampcli_failed", s),
        _health("ConnectorNotInstalled", f"secure_endpoint_connector_installed{sel()} == 0", "critical",
                f"{HOST}: the Secure Endpoint connector is not installed",
                "No connector was found on this host. Install it, or stop monitoring the host.", "not_installed", s),
        _health("DaemonNotRunning",
                f"secure_endpoint_process_running{sel(equals('process', 'ampdaemon'))} == 0 "
                f"and on (job, instance) secure_endpoint_connector_installed{sel()} == 1",
                "critical", f"{HOST}: ampdaemon is not running",
                "The connector is installed but its daemon does not run: nothing on this host is protected.",
                "daemon_not_running", s),
        _health("NotConnected", f"secure_endpoint_connector_connected{sel()} == 0", "warning",
                f"{HOST}: the connector is not connected to the Secure Endpoint cloud",
                "The connector gets no policy or definition updates and the console shows old state.",
                "not_connected", s),
        _health("DefinitionsStale",
                f"time() - (secure_endpoint_definitions_updated_timestamp_seconds{sel()}"
                f" or secure_endpoint_definitions_build_timestamp_seconds{sel()}) > {days} * 86400",
                "warning", f"{HOST}: virus definitions are older than {days} days",
                "The definitions were last updated (ampcli policy; else the newest definition file's build time) "
                "{{ $value | humanizeDuration }} ago.",
                "definitions_stale", s),
        _health("FaultCheckUnknown", f"secure_endpoint_fault_check_success{sel()} == 0", "info",
                f"{HOST}: fault {{{{ $labels.fault_id }}}} ({{{{ $labels.fault }}}}) cannot be judged",
                "The evidence for this fault has been unreadable for an hour (permission, damaged file, ampcli). "
                "check_secure_endpoint -v or the exporter's JSON report names the reason.", "fault-check-unknown",
                s),
        _health("FaultReportedCritical",
                f"secure_endpoint_fault_reported{sel(equals('connector_severity', 'critical'))} == 1",
                "critical",
                f"{HOST}: the connector reports fault {{{{ $labels.fault_id }}}} ({{{{ $labels.fault }}}}) as Critical",
                "The connector itself rates this fault Critical (for fault 18: it watches only a reduced set of "
                "events). The fault's own alert keeps the catalogue's severity; route on connector_severity to "
                "escalate.", "fault-reported-critical", s),
        _health("UnknownFaultReported",
                f"secure_endpoint_fault_active{sel(equals('fault', 'unknown'))} == 1", "warning",
                f"{HOST}: the connector reports fault {{{{ $labels.fault_id }}}}, which this project does not know",
                "See Cisco's fault table for the platform, and tell this project about the new fault.",
                "unknown-fault", s),
    ]


def recording_rules(options: Options) -> list[dict[str, Any]]:
    """Fleet aggregates the fleet dashboard reads; each keeps ``job``, the label the dashboards filter on."""
    sel = selector(options)
    rules: list[dict[str, Any]] = [
        {"record": "fault_id:secure_endpoint_fault_active:sum",
         "expr": f"sum by (job, fault_id, fault, platform) (secure_endpoint_fault_active{sel})"},
        {"record": "fault_id_state:secure_endpoint_fault_state:count",
         "expr": f"count by (job, fault_id, fault, platform, state) (secure_endpoint_fault_state{sel} == 1)"},
        {"record": "version:secure_endpoint_connector_info:count",
         "expr": f"count by (job, version, platform) (secure_endpoint_connector_info{sel})"},
        {"record": "secure_endpoint:hosts:count",
         "expr": f"count by (job) (secure_endpoint_connector_installed{sel})"},
        {"record": "secure_endpoint:hosts_with_active_faults:count",
         "expr": f"sum by (job) (max by (job, instance) (secure_endpoint_fault_active{sel}))"},
        # `== bool` keeps a 0 for every job, so a count of none is 0, not an empty result.
        {"record": "secure_endpoint:hosts_not_installed:count",
         "expr": f"sum by (job) (secure_endpoint_connector_installed{sel} == bool 0)"},
        {"record": "secure_endpoint:hosts_not_connected:count",
         "expr": f"sum by (job) (secure_endpoint_connector_connected{sel} == bool 0)"},
        {"record": "secure_endpoint:hosts_stale:count",
         "expr": f"sum by (job) (time() - secure_endpoint_last_evaluation_timestamp_seconds{sel} "
                 f"> bool {config.STALE_AFTER_SECONDS})"},
        {"record": "secure_endpoint:targets_down:count", "expr": f"sum by (job) (up{sel} == bool 0)"},
    ]
    for severity in Severity:
        ids = json.dumps("|".join(severity_ids(severity)))
        rules.append({"record": "severity:secure_endpoint_fault_active:sum",
                      "expr": f"sum by (job) (secure_endpoint_fault_active{selector(options, f'fault_id=~{ids}')})",
                      "labels": {"severity": str(severity)}})
    return rules


def rules(options: Options) -> dict[str, Any]:
    return {"groups": [
        {"name": "secure-endpoint-faults", "rules": [fault_alert(f, options) for f in all_faults()]},
        {"name": "secure-endpoint-health", "rules": health_alerts(options)},
        {"name": "secure-endpoint-fleet.rules", "rules": recording_rules(options)},
    ]}
