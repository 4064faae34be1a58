"""The fleet dashboard: how many hosts have which fault, read from the recording rules, and the hosts that
need someone now."""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.models import dashboard as models

from . import config
from .common import FLEET_UID, Options, all_faults
from .panels import (
    Board,
    bar_gauge_panel,
    dashboard_json,
    query,
    stat_panel,
    table_panel,
    timeseries_panel,
    transformation,
    variables,
)

JOB = 'job=~"$job"'  # recorded series keep job only: the fleet dashboard filters on nothing else


def _count_stat(title: str, description: str, expr: str, steps: tuple[tuple[float | None, str], ...]
                = ((None, "green"), (1, "red"))) -> Any:
    """A count from a recording rule, which is there (0 included) whenever the job is: no data means the
    rules do not run, not that all is well."""
    return stat_panel(title, description, expr, steps=steps, no_value="no data: are the recording rules loaded?")


def build(options: Options) -> Board:
    del options  # the dashboards filter with their own variables, not the rules' selector
    board = Board(FLEET_UID, "Secure Endpoint / Fleet",
                  "Cisco Secure Endpoint connector faults across every host: counts from the recording rules, "
                  "and the hosts that need attention.", variables(with_instance=False))
    titles = {f.id: f"{f.id}: {f.title.en}" for f in all_faults()}
    fixes = {f.slug: f.fix.en for f in all_faults()}

    board.row("Fleet")
    board.add(_count_stat("Hosts", "Hosts whose Secure Endpoint metrics Prometheus has now.",
                          f"sum(secure_endpoint:hosts:count{{{JOB}}})", ((None, "blue"),)), 4, 4)
    board.add(_count_stat("Hosts with active faults", "Hosts with at least one documented connector fault active.",
                          f"sum(secure_endpoint:hosts_with_active_faults:count{{{JOB}}})"), 4, 4)
    board.add(_count_stat("Not installed", "Hosts without the connector.",
                          f"sum(secure_endpoint:hosts_not_installed:count{{{JOB}}})"), 4, 4)
    board.add(_count_stat("Not connected", "Hosts whose connector is not connected to the Secure Endpoint cloud.",
                          f"sum(secure_endpoint:hosts_not_connected:count{{{JOB}}})"), 4, 4)
    board.add(_count_stat("Stale data", "Hosts whose newest evaluation is older than "
                          f"{config.STALE_AFTER_SECONDS // 60} minutes: their faults show old data.",
                          f"sum(secure_endpoint:hosts_stale:count{{{JOB}}})"), 4, 4)
    board.add(_count_stat("Scrapes failing", "Targets Prometheus cannot scrape (up is 0).",
                          f"sum(secure_endpoint:targets_down:count{{{JOB}}})"), 4, 4)

    board.row("Faults")
    board.add(bar_gauge_panel("Hosts per active fault", "How many hosts have each fault active now.",
                              [query(f"sum by (fault_id) (fault_id:secure_endpoint_fault_active:sum{{{JOB}}})",
                                     "{{fault_id}}", instant=True)], titles), 12, 10)
    board.add(timeseries_panel("Active faults by severity", "Active faults over time, by the catalogue's "
                               "default severity of each fault.",
                               [query(f"sum by (severity) (severity:secure_endpoint_fault_active:sum{{{JOB}}})",
                                      "{{severity}}")], "none"), 12, 10)
    board.add(table_panel("Hosts per fault and state", "For each fault, how many hosts have it clear, active, "
                          "unknown (evidence unreadable) or not applicable (connector missing, option off).",
                          [query(f"sum by (fault_id, state) (fault_id_state:secure_endpoint_fault_state:count"
                                 f"{{{JOB}}})", as_table=True)], [], {"fault_id\\state": "Fault"}, "no hosts",
                          reshape=(transformation("groupingToMatrix", {
                              "columnField": "state", "rowField": "fault_id", "valueField": "Value",
                              "emptyValue": "zero"}),)).override_by_name("Fault", [_mapping(titles)]),
              12, 10)
    board.add(table_panel("Active faults and their fix", "Every active fault on every host, with what to do.",
                          [query(f"secure_endpoint_fault_active{{{JOB}}} == 1", as_table=True)],
                          ["Value", "job"], {"instance": "Host", "fault_id": "Fault", "fault": "Fix",
                                             "platform": "Platform"}, "no active fault")
              .override_by_name("Fault", [_mapping(titles)]).override_by_name("Fix", [_mapping(fixes)]), 12, 10)

    board.row("Connectors")
    board.add(table_panel("Connector versions", "Hosts per connector version and platform.",
                          [query(f"sum by (version, platform) (version:secure_endpoint_connector_info:count{{{JOB}}})",
                                 as_table=True)], [], {"version": "Version", "platform": "Platform",
                                                       "Value": "Hosts"}), 12, 8)
    board.add(table_panel("Hosts not installed or not connected", "Hosts that need the connector installed or "
                          "reconnected.",
                          [query(f'label_replace(secure_endpoint_connector_installed{{{JOB}}} == 0, "problem", '
                                 f'"not installed", "", "")', as_table=True, ref="A"),
                           query(f'label_replace(secure_endpoint_connector_connected{{{JOB}}} == 0, "problem", '
                                 f'"not connected", "", "")', as_table=True, ref="B")],
                          ["Value #A", "Value #B", "job"], {"instance": "Host", "problem": "Problem"}, "none"), 12, 8)
    return board


def _mapping(texts: dict[str, str]) -> models.DynamicConfigValue:
    """Show a column's raw values (fault ids, slugs) as the catalogue's texts."""
    return models.DynamicConfigValue(id_val="mappings", value=[models.ValueMap(options={
        key: models.ValueMappingResult(text=text, index=i) for i, (key, text) in enumerate(texts.items())})])


def dashboard(options: Options) -> dict[str, Any]:
    """The dashboard as the plain JSON Grafana provisions."""
    return dashboard_json(build(options))
