"""Report -> Prometheus metric families. Reads only the report, never the host."""

from __future__ import annotations

import platform as pyplatform
from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from checks import __version__
from checks.report import Report, State

NAMESPACE = "secure_endpoint"


def _gauge(name: str, doc: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{NAMESPACE}_{name}", doc, labels=labels)


def families(report: Report) -> Iterator[Metric]:
    platform = str(report.platform)
    active = _gauge("fault_active", "1 when the connector fault is active (reported by the connector or "
                    "detected on the host), else 0.", ["fault_id", "fault", "platform"])
    reported = _gauge("fault_reported", "1 when ampcli status reports the fault, else 0; connector_severity is "
                      "the severity it reports (critical, major, minor), empty when it does not say.",
                      ["fault_id", "fault", "connector_severity"])
    success = _gauge("fault_check_success", "0 when the fault's state could not be determined (unknown).",
                     ["fault_id", "fault"])
    for result in report.faults:
        fault_id, slug = result.fault.id, result.fault.slug
        active.add_metric([fault_id, slug, platform], float(result.state is State.ACTIVE))
        severity = result.severity.lower() if result.reported else ""
        reported.add_metric([fault_id, slug, severity], float(bool(result.reported)))
        success.add_metric([fault_id, slug], float(result.state is not State.UNKNOWN))
    yield from (active, reported, success)

    yield GaugeMetricFamily(f"{NAMESPACE}_connector_installed", "1 when the Secure Endpoint connector is installed.",
                            value=float(report.installed))
    info = InfoMetricFamily(f"{NAMESPACE}_connector", "The connector and the host it runs on.",
                            labels=["version", "platform", "os", "os_version", "kernel_release", "policy"])
    info.add_metric([report.connector_version, platform, report.os_name, report.os_version,
                     report.kernel_release or "", report.connector_status.get("policy", "")], {})
    yield info
    if report.connected is not None:
        yield GaugeMetricFamily(f"{NAMESPACE}_connector_connected",
                                "1 when ampcli status says the connector is connected to the cloud.",
                                value=float(report.connected))
    running = _gauge("process_running", "1 when the connector process runs.", ["process"])
    for name, is_running in report.processes.items():
        if is_running is not None:
            running.add_metric([name], float(is_running))
    yield running
    if report.definitions_build_time is not None:
        yield GaugeMetricFamily(f"{NAMESPACE}_definitions_build_timestamp_seconds",
                                "Build time of the newest virus definition file (CVD header).",
                                value=report.definitions_build_time)
    if report.definitions_updated_time is not None:
        yield GaugeMetricFamily(f"{NAMESPACE}_definitions_updated_timestamp_seconds",
                                "When the connector last updated its definitions (ampcli policy).",
                                value=report.definitions_updated_time)
    if report.endpoint_security_extensions is not None:
        yield GaugeMetricFamily(f"{NAMESPACE}_endpoint_security_extensions_enabled",
                                "macOS: Endpoint Security system extensions enabled (the OS limits how many).",
                                value=float(report.endpoint_security_extensions))
    ok = _gauge("scrape_collector_success", "1 when the collector read its evidence.", ["collector"])
    took = _gauge("scrape_collector_duration_seconds", "Time the collector took.", ["collector"])
    for run in report.collectors:
        ok.add_metric([run.name], float(run.success))
        took.add_metric([run.name], run.duration)
    yield ok
    yield took
    build = InfoMetricFamily(f"{NAMESPACE}_exporter_build", "The exporter's version.",
                             labels=["version", "pythonversion"])
    build.add_metric([__version__, pyplatform.python_version()], {})
    yield build


class ReportCollector(Collector):
    """A prometheus_client collector that evaluates the host on every collect."""

    def __init__(self, produce: Callable[[], Report]) -> None:
        self.produce = produce

    def collect(self) -> Iterator[Metric]:
        yield from families(self.produce())
