"""Grafana's file provisioning beside the dashboards: the dashboard provider, and an example Prometheus data
source whose uid is the one the alert rules query."""

from __future__ import annotations

from typing import Any

from .common import Options

DASHBOARD_PATH = "/var/lib/grafana/dashboards/secure-endpoint"


def dashboard_provider() -> dict[str, Any]:
    return {"apiVersion": 1, "providers": [{
        "name": "secure-endpoint", "folder": "Secure Endpoint", "type": "file", "disableDeletion": False,
        "allowUiUpdates": False, "updateIntervalSeconds": 60, "options": {"path": DASHBOARD_PATH}}]}


def datasource_example(options: Options) -> dict[str, Any]:
    """A Prometheus data source; change the url. Its uid must be --grafana-datasource-uid for the alert rules,
    the dashboards pick theirs with the $datasource variable. Its own name and no default flag: Grafana
    matches provisioned data sources by name (one called "Prometheus" would rewrite a user's) and refuses to
    start with two defaults."""
    return {"apiVersion": 1, "datasources": [{
        "name": "Prometheus (Secure Endpoint)", "type": "prometheus", "uid": options.grafana_datasource_uid,
        "access": "proxy", "url": "http://localhost:9090", "isDefault": False, "editable": False,
        "jsonData": {"httpMethod": "POST", "timeInterval": "30s"}}]}
