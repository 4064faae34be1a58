"""Grafana-managed alert rules equal to the Prometheus alerts, for teams that alert from Grafana, in the
file-provisioning format. Every rule links to the host dashboard's panel that shows its subject: Grafana
refuses a rule with a dashboard and no panel, and a refused file stops Grafana from starting."""

from __future__ import annotations

import re
from typing import Any

from grafana_foundation_sdk.builders import alerting, expr, prometheus
from grafana_foundation_sdk.models import alerting as models

from . import config
from .common import HOST_UID, PREFIX, Options, all_faults
from .host_dashboard import panel_keys
from .panels import plain
from .prometheus_rules import fault_alert, health_alerts

FOLDER = "Secure Endpoint"
GROUP = "secure-endpoint"
INTERVAL = "1m"
# The host dashboard panel that shows what each health alert is about.
HEALTH_PANELS = {
    "ExporterDown": "up", "EvaluationStale": "evaluation", "TextfileStale": "evaluation",
    "MetricsVanished": "evaluation", "CollectorFailing": "collectors", "StatusUnavailable": "collectors",
    "ConnectorNotInstalled": "installed", "DaemonNotRunning": "ampdaemon", "NotConnected": "connected",
    "DefinitionsStale": "definitions", "FaultCheckUnknown": "unknown", "FaultReportedCritical": "reported",
    "UnknownFaultReported": "reported",
}
# Grafana's rule value is not the age the Prometheus annotation formats: say the limit instead.
_STALE = f"more than {config.STALE_AFTER_SECONDS // 60} minutes"
AGE_WORDS = {"DefinitionsStale": f"more than {config.DEFINITIONS_MAX_AGE_DAYS} days", "EvaluationStale": _STALE,
             "TextfileStale": _STALE}
# Grafana's own limit and alphabet for uids (its util.ValidateUID).
UID_LENGTH = 40


def grafana_uid(alert: str) -> str:
    """Stable, readable uids within Grafana's 40 characters."""
    return ("se-" + re.sub(r"[^a-z0-9]+", "-", alert[len(PREFIX):].lower()))[:UID_LENGTH]


def _panel_key(rule: dict[str, Any]) -> str:
    found = re.search(r'fault_id="([a-z0-9_]+)"', rule["expr"])
    return found.group(1) if found else HEALTH_PANELS[rule["alert"][len(PREFIX):]]


def _rule(rule: dict[str, Any], panels: dict[str, int], options: Options) -> alerting.Rule:
    name = rule["alert"][len(PREFIX):]
    fault_id = re.search(r'fault_id="([a-z0-9_]+)"', rule["expr"])
    labels = {**rule["labels"], **({"fault_id": fault_id.group(1)} if fault_id else {})}
    annotations = {key: value.replace("{{ $value | humanizeDuration }}", AGE_WORDS.get(name, ""))
                   for key, value in rule["annotations"].items()}
    # Every series the Prometheus expression keeps becomes a 1, which the threshold turns into an alert.
    source = (alerting.Query("A").datasource_uid(options.grafana_datasource_uid)
              .relative_time_range(models.RelativeTimeRange(from_val=600, to=0))
              .model(prometheus.Dataquery().ref_id("A").expr(f"({rule['expr']}) * 0 + 1").instant()))
    threshold = (alerting.Query("C").datasource_uid("__expr__")
                 .relative_time_range(models.RelativeTimeRange(from_val=0, to=0))
                 .model(expr.TypeThreshold().ref_id("C").expression("A").conditions([
                     expr.ExprTypeThresholdConditions().evaluator(
                         expr.ExprTypeThresholdConditionsEvaluator().type("gt").params([0]))])))
    return (alerting.Rule(rule["alert"]).uid(grafana_uid(rule["alert"])).condition("C")
            .queries([source, threshold]).no_data_state("OK").exec_err_state("Error").for_val(rule["for"])
            .labels(labels).annotations({**annotations, "__dashboardUid__": HOST_UID,
                                         "__panelId__": str(panels[_panel_key(rule)])}))


def rules(options: Options) -> dict[str, Any]:
    """The provisioning file: one group in one folder; the API's folder, group and org fields are the
    group's in this format, so they are dropped from each rule."""
    panels = panel_keys(options)
    alerts = [*(fault_alert(f, options) for f in all_faults()), *health_alerts(options)]
    file_rules = []
    for alert in alerts:
        data = plain(_rule(alert, panels, options).build())
        for api_only in ("folderUID", "ruleGroup", "orgID"):
            data.pop(api_only, None)
        file_rules.append(data)
    return {"apiVersion": 1, "groups": [{"orgId": 1, "name": GROUP, "folder": FOLDER, "interval": INTERVAL,
                                         "rules": file_rules}]}
