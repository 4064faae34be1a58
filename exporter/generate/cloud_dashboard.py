"""The cloud dashboard: the fleet as Cisco's cloud API sees it (Windows included), and where it disagrees
with the host exporter. Every panel reads the exporter's aggregates or a recording rule, never the
per-computer series, so it stays fast with 100,000 computers."""

from __future__ import annotations

from typing import Any

from . import config
from .common import CLOUD_UID, Options
from .panels import Board, dashboard_json, query, stat_panel, table_panel, timeseries_panel, variables

JOB = 'job=~"$job"'


def build(options: Options) -> Board:
    del options  # the dashboard filters with its own variables
    board = Board(CLOUD_UID, "Secure Endpoint / Cloud",
                  "Every computer's Secure Endpoint connector as Cisco's cloud API sees it, Windows included, "
                  "from secure-endpoint-cloud-exporter, and the hosts where that view and the host exporter's "
                  "disagree.", variables(with_instance=False, job_of="secure_endpoint_cloud_up"))
    board.row("Fleet")
    board.add(stat_panel("Computers", "Computers the API lists.",
                         f"sum(secure_endpoint_cloud:computers:sum{{{JOB}}})", steps=((None, "blue"),),
                         no_value="no data: are the recording rules loaded?"), 4, 4)
    board.add(stat_panel("Compromised", "Computers the console marks compromised.",
                         f"sum(secure_endpoint_cloud_computers_compromised{{{JOB}}})"), 4, 4)
    board.add(stat_panel("With faults", "Computers whose connector reports at least one fault.",
                         f"sum(secure_endpoint_cloud_computers_with_faults{{{JOB}}})"), 4, 4)
    board.add(stat_panel("Isolated", "Computers in network isolation.",
                         f"sum(secure_endpoint_cloud_computers_isolated{{{JOB}}})",
                         steps=((None, "green"), (1, "orange"))), 4, 4)
    board.add(stat_panel("Inactive", "Computers the API marks not active.",
                         f"sum(secure_endpoint_cloud_computers_inactive{{{JOB}}})", steps=((None, "text"),)), 4, 4)
    board.add(stat_panel("Not heard from for a day", "Computers the cloud has not heard from within a day of "
                         "the last poll: inactive ones and those that never reported too.",
                         f"sum(secure_endpoint_cloud:computers:sum{{{JOB}}}) - "
                         f'sum(secure_endpoint_cloud:computers_seen_within:count{{{JOB}, within="1d"}})',
                         steps=((None, "green"), (1, "orange"))), 4, 4)

    board.row("Versions and systems")
    board.add(table_panel("Computers by operating system and connector version", "From the exporter's own "
                          "aggregate, one series per pair.",
                          [query(f"sum by (operating_system, connector_version) "
                                 f"(secure_endpoint_cloud_computers{{{JOB}}})", as_table=True)],
                          [], {"operating_system": "Operating system", "connector_version": "Connector",
                               "Value": "Computers"}), 12, 10)
    board.add(timeseries_panel("Computers by connector version", "How an update spreads.",
                               [query(f"sum by (connector_version) (connector_version:secure_endpoint_cloud_computers"
                                      f":sum{{{JOB}}})", "{{connector_version}}")], "none"), 12, 10)
    board.add(timeseries_panel("Last heard from", "Computers the cloud heard from within each period.",
                               [query(f"sum by (within) (secure_endpoint_cloud:computers_seen_within:count{{{JOB}}})",
                                      "within {{within}}")], "none"), 12, 8)
    board.add(timeseries_panel("Fault events", "Faults raised and cleared per hour, by severity (Cisco's event "
                               "stream).", [query(f"sum by (severity, kind) (severity_kind:secure_endpoint_cloud_"
                                                   f"fault_events:rate1h{{{JOB}}}) * 3600", "{{kind}} {{severity}}")],
                               "none"), 12, 8)

    board.row("Cloud and hosts disagree")
    board.add(stat_panel(f"Healthy here, silent in the cloud for {config.CLOUD_JOIN_SILENT_HOURS} h",
                         "Hosts the host exporter sees connected and without faults that the cloud has not heard "
                         "from (HostNotSeenByCloud).",
                         f"sum(secure_endpoint_cloud:hosts_not_seen_by_cloud:count{{{JOB}}})",
                         no_value="no data: are the recording rules loaded?"), 12, 4)
    board.add(stat_panel("Faults the cloud does not list", "Hosts with an active fault the cloud's faults[] does "
                         "not have (CloudMissesHostFaults).",
                         f"sum(secure_endpoint_cloud:hosts_with_faults_the_cloud_misses:count{{{JOB}}})",
                         no_value="no data: are the recording rules loaded?"), 12, 4)

    board.row("Exporter")
    board.add(stat_panel("Last poll", "1 when the exporter's last poll of the API succeeded.",
                         f"min(secure_endpoint_cloud_up{{{JOB}}})", steps=((None, "red"), (1, "green"))), 6, 4)
    board.add(stat_panel("Snapshot age", "How old the served fleet is.",
                         f"time() - max(secure_endpoint_cloud_snapshot_timestamp_seconds{{{JOB}}})", unit="s",
                         steps=((None, "green"), (config.CLOUD_STALE_POLLS * 300 + config.CLOUD_STALE_GRACE_SECONDS,
                                                  "red"))), 6, 4)
    board.add(stat_panel("API budget left", "Requests left in this hour's rate limit.",
                         f"min(secure_endpoint_cloud_api_rate_limit_remaining{{{JOB}}})",
                         steps=((None, "red"), (300, "green"))), 6, 4)
    board.add(timeseries_panel("API requests", "Requests to the API by HTTP status.",
                               [query(f"sum by (code) (rate(secure_endpoint_cloud_api_requests_total{{{JOB}}}[5m]))",
                                      "{{code}}")], "reqps"), 6, 4)
    return board


def dashboard(options: Options) -> dict[str, Any]:
    return dashboard_json(build(options))
