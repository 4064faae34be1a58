"""Report -> metric families, as plain data. Reads only the report, never the host.

``exporter.collector`` hands them to prometheus_client, which writes them in
OpenMetrics or the text format, for the server and the one-shot mode alike.
"""

from __future__ import annotations

import sys
from typing import NamedTuple

from ..checks import __version__
from ..checks.catalog import Platform
from ..checks.report import Report, State

NAMESPACE = "secure_endpoint"


class Family(NamedTuple):
    name: str  # without the ``_info`` an info family's sample carries
    kind: str  # "gauge" or "info"
    doc: str
    labels: tuple[str, ...]
    samples: list[tuple[tuple[str, ...], float]]  # label values, value (1 for an info family)


def _gauge(name: str, doc: str, *labels: str) -> Family:
    return Family(f"{NAMESPACE}_{name}", "gauge", doc, labels, [])


def _single(name: str, doc: str, value: float) -> Family:
    return Family(f"{NAMESPACE}_{name}", "gauge", doc, (), [((), value)])


def families(report: Report) -> list[Family]:
    platform = str(report.platform)
    active = _gauge("fault_active", "1 when the connector fault is active (reported by the connector or "
                    "detected on the host), else 0.", "fault_id", "fault", "platform")
    reported = _gauge("fault_reported", "1 when ampcli status reports the fault, else 0; connector_severity is "
                      "the severity it reports (critical, major, minor), empty when it does not say.",
                      "fault_id", "fault", "connector_severity")
    success = _gauge("fault_check_success", "0 when the fault's state could not be determined (unknown).",
                     "fault_id", "fault")
    # A state set in the style of node_exporter's systemd unit_state: one series per possible state, 1 for
    # the current one, so not_applicable (no connector, option off) can be told from clear.
    state = _gauge("fault_state", "1 for the fault's current state (active, clear, unknown, not_applicable), "
                   "0 for the others.", "fault_id", "fault", "platform", "state")
    for result in report.faults:
        fault_id, slug = result.fault.id, result.fault.slug
        active.samples.append(((fault_id, slug, platform), float(result.state is State.ACTIVE)))
        state.samples.extend(((fault_id, slug, platform, str(each)), float(result.state is each)) for each in State)
        severity = result.severity.lower() if result.reported else ""
        reported.samples.append(((fault_id, slug, severity), float(bool(result.reported))))
        success.samples.append(((fault_id, slug), float(result.state is not State.UNKNOWN)))
    found = [active, state, reported, success,
             _single("connector_installed", "1 when the Secure Endpoint connector is installed.",
                     float(report.installed))]
    found.append(Family(f"{NAMESPACE}_connector", "info", "The connector and the host it runs on.",
                        ("version", "platform", "os", "os_version", "kernel_release", "policy", "connector_guid"),
                        [((report.connector_version, platform, report.os_name, report.os_version,
                           report.kernel_release or "", report.connector_status.get("policy", ""),
                           report.connector_guid), 1.0)]))
    if report.connected is not None:
        found.append(_single("connector_connected", "1 when ampcli status says the connector is connected to the "
                             "cloud.", float(report.connected)))
    running = _gauge("process_running", "1 when the connector process runs.", "process")
    running.samples.extend(((name,), float(is_running)) for name, is_running in report.processes.items()
                           if is_running is not None)
    found.append(running)
    lookup = _gauge("process_lookup", "1 for how this evaluation found the connector's processes: cgroup (the "
                    "unit's, a flat cost), scan (all of /proc: no unit, or a process missing from it), psutil "
                    "(a Mac); 0 for the others.", "method")
    methods = ("psutil",) if report.platform is Platform.MACOS else ("cgroup", "scan")
    lookup.samples.extend(((method,), float(method == report.process_lookup)) for method in methods)
    found.append(lookup)
    if report.definitions_build_time is not None:
        found.append(_single("definitions_build_timestamp_seconds",
                             "Build time of the newest virus definition file (CVD header).",
                             report.definitions_build_time))
    if report.definitions_updated_time is not None:
        found.append(_single("definitions_updated_timestamp_seconds",
                             "When the connector last updated its definitions (ampcli policy).",
                             report.definitions_updated_time))
    if report.endpoint_security_extensions is not None:
        found.append(_single("endpoint_security_extensions_enabled",
                             "macOS: Endpoint Security system extensions enabled (the OS limits how many).",
                             float(report.endpoint_security_extensions)))
    ok = _gauge("scrape_collector_success", "1 when the collector read its evidence.", "collector")
    took = _gauge("scrape_collector_duration_seconds", "Time the collector took.", "collector")
    for run in report.collectors:
        ok.samples.append(((run.name,), float(run.success)))
        took.samples.append(((run.name,), run.duration))
    found += [ok, took,
              _single("last_evaluation_timestamp_seconds", "When the evaluation behind these metrics ended (Unix "
                      "time): old in textfile mode when the timer stops.", report.evaluated_at),
              _single("evaluation_duration_seconds", "Time the whole evaluation took.", report.duration)]
    found.append(Family(f"{NAMESPACE}_exporter_build", "info", "The exporter's version.",
                        ("version", "pythonversion"), [((__version__, sys.version.split()[0]), 1.0)]))
    return found
