"""The host dashboard: one host's connector, every fault's state over time and now, and the exporter."""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.builders import dashboard as builders

from ...checks.catalog import LINUX_FAULTS_URL, MACOS_FAULTS_URL, Platform
from . import config
from .common import HOST_UID, Options, all_faults, fault_runbook, platforms_of
from .panels import (
    STATE_MAPPING,
    YES_NO,
    Board,
    dashboard_json,
    query,
    stat_panel,
    state_code,
    state_timeline_panel,
    table_panel,
    timeseries_panel,
    variables,
)

# One host: matched exactly, since Grafana does not regex-escape a single value ([2001:db8::1]:9982).
SEL = 'job=~"$job", instance="$instance"'
OK_STEPS = ((None, "red"), (1, "green"))
AGE_STEPS = ((None, "green"), (config.STALE_AFTER_SECONDS / 3, "orange"), (config.STALE_AFTER_SECONDS, "red"))


def _other_platform(platforms: frozenset[Platform]) -> str:
    """What a fault's panel says on a host of the other platform, where the fault has no series."""
    if platforms == frozenset({Platform.MACOS}):
        return "macOS only: not on this host"
    if platforms == frozenset({Platform.LINUX}):
        return "Linux only: not on this host"
    return "no data"


def build(options: Options) -> Board:
    """The host dashboard; of ``options`` only the runbook's address counts (the dashboards filter with their
    own variables, not the rules' selector)."""
    board = Board(HOST_UID, "Secure Endpoint / Host",
                  "One host's Cisco Secure Endpoint connector: its state, every documented fault, and the exporter.",
                  variables(with_instance=True))
    board.row("Connector")
    board.add(stat_panel("Installed", "Whether the Secure Endpoint connector is installed on this host.",
                         f"max(secure_endpoint_connector_installed{{{SEL}}})", mappings=YES_NO, steps=OK_STEPS),
              4, 4, "installed")
    board.add(stat_panel("Connected", "Whether ampcli status says the connector is connected to the Secure "
                         "Endpoint cloud; empty when the connector is not installed or ampcli does not answer.",
                         f"max(secure_endpoint_connector_connected{{{SEL}}})", mappings=YES_NO, steps=OK_STEPS,
                         no_value="not reported"), 4, 4, "connected")
    for process in ("ampdaemon", "ampscansvc"):
        board.add(stat_panel(process, f"Whether the connector's {process} process runs.",
                             f'max(secure_endpoint_process_running{{{SEL}, process="{process}"}})', mappings=YES_NO,
                             steps=OK_STEPS, no_value="not reported"), 4, 4, process)
    board.add(stat_panel("Definitions age", "Time since the connector last updated its definitions (ampcli "
                         "policy), or else since the newest virus definition file was built. Alerts after "
                         f"{config.DEFINITIONS_MAX_AGE_DAYS} days.",
                         f"time() - max(secure_endpoint_definitions_updated_timestamp_seconds{{{SEL}}}"
                         f" or secure_endpoint_definitions_build_timestamp_seconds{{{SEL}}})", unit="s",
                         no_value="unknown", steps=((None, "green"), (config.DEFINITIONS_WARN_DAYS * 86400, "orange"),
                                                       (config.DEFINITIONS_MAX_AGE_DAYS * 86400, "red"))),
              4, 4, "definitions")
    board.add(stat_panel("Last evaluation", "How old the newest evaluation of this host is. The exporter "
                         "evaluates on every scrape; in textfile mode the timer writes one a minute. Alerts past "
                         f"{config.STALE_AFTER_SECONDS // 60} minutes.",
                         f"time() - max(secure_endpoint_last_evaluation_timestamp_seconds{{{SEL}}})", unit="s",
                         steps=AGE_STEPS, no_value="no data: exporter down or metrics gone"), 4, 4, "evaluation")
    board.add(table_panel("Connector", "Connector version, operating system and policy.",
                          [query(f"secure_endpoint_connector_info{{{SEL}}}", as_table=True)],
                          ["Value", "job", "instance"],
                          {"version": "Version", "platform": "Platform", "os": "OS", "os_version": "OS version",
                           "kernel_release": "Kernel", "policy": "Policy"}), 20, 4, "connector")
    board.add(stat_panel("Target up", "Whether Prometheus can scrape this host's metrics (up).",
                         f"max(up{{{SEL}}})", mappings=YES_NO, steps=OK_STEPS), 4, 4, "up")

    board.row("Faults over time")
    board.add(state_timeline_panel(
        "Fault state", "Every fault of the host's platform: clear, not applicable (connector not installed, or the "
        "option the fault needs is off), unknown (the evidence could not be read) or ACTIVE.",
        [query(state_code(SEL, "fault_id, fault"), "{{fault_id}} {{fault}}")]), 24, 10, "fault_state")
    board.add(table_panel("Faults that cannot be judged", "Faults whose evidence could not be read; "
                          "check_secure_endpoint -v or the exporter's --once --format json says why.",
                          [query(f"secure_endpoint_fault_check_success{{{SEL}}} == 0", as_table=True)],
                          ["Value", "job", "instance"], {"fault_id": "Fault", "fault": "Name"}, "every fault judged"),
              12, 6, "unknown")
    board.add(table_panel("Faults the connector reports", "What ampcli status reports, beside what the host's "
                          "own evidence shows above.",
                          [query(f"secure_endpoint_fault_reported{{{SEL}}} == 1", as_table=True)],
                          ["Value", "job", "instance"],
                          {"fault_id": "Fault", "fault": "Name", "connector_severity": "Connector's severity"},
                          "none reported"), 12, 6, "reported")

    board.row("Every fault")
    for fault in all_faults():
        runbook = fault_runbook(fault, options)
        links = ([builders.DashboardLink("Cisco's fault table" if fault.documented else "Runbook")
                  .url(runbook).target_blank(True)]
                 if "{{" not in runbook else
                 [builders.DashboardLink("Cisco's Linux fault table").url(LINUX_FAULTS_URL).target_blank(True),
                  builders.DashboardLink("Cisco's macOS fault table").url(MACOS_FAULTS_URL).target_blank(True)])
        panel = stat_panel(f"{fault.id}: {fault.title.en}",
                           f"{fault.meaning.en} Fix: {fault.fix.en} ({platforms_of(fault)}; {fault.severity})",
                           state_code(f'{SEL}, fault_id="{fault.id}"', "fault_id"), mappings=STATE_MAPPING,
                           steps=((None, "green"),), no_value=_other_platform(fault.platforms)).links(links)
        board.add(panel, 4, 3, fault.id)

    board.row("Exporter")
    board.add(timeseries_panel("Collector success", "1 when a collector read its evidence, 0 when it failed "
                               "(the faults that need it are then unknown).",
                               [query(f"secure_endpoint_scrape_collector_success{{{SEL}}}", "{{collector}}")],
                               "none"), 8, 8, "collectors")
    board.add(timeseries_panel("Collector duration", "Time each collector takes per evaluation.",
                               [query(f"secure_endpoint_scrape_collector_duration_seconds{{{SEL}}}",
                                      "{{collector}}")], "s"), 8, 8)
    board.add(timeseries_panel("Evaluation duration", "Time one whole evaluation takes.",
                               [query(f"secure_endpoint_evaluation_duration_seconds{{{SEL}}}", "evaluation")], "s"),
              8, 8)
    return board


def dashboard(options: Options) -> dict[str, Any]:
    """The dashboard as the plain JSON Grafana provisions."""
    return dashboard_json(build(options))


def panel_keys(options: Options) -> dict[str, int]:
    """Panel ids by what they show: fault ids, and names such as "installed" or "evaluation"."""
    return build(options).keys
