"""The report's metric families handed to prometheus_client, which the HTTP server encodes (OpenMetrics or text)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from ..checks.report import Report
from .metrics import families


def client_families(report: Report) -> Iterator[Metric]:
    for family in families(report):
        if family.kind == "info":
            info = InfoMetricFamily(family.name, family.doc, labels=list(family.labels))
            for values, _ in family.samples:
                info.add_metric(list(values), {})
            yield info
        else:
            gauge = GaugeMetricFamily(family.name, family.doc, labels=list(family.labels))
            for values, value in family.samples:
                gauge.add_metric(list(values), value)
            yield gauge


class ReportCollector(Collector):
    """A prometheus_client collector that turns the report it is given into metric families."""

    def __init__(self, produce: Callable[[], Report]) -> None:
        self.produce = produce

    def collect(self) -> Iterator[Metric]:
        yield from client_families(self.produce())


def report_registry(report: Report) -> CollectorRegistry:
    """A registry holding only the report's families: what ``generate_latest`` and the encoders take."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ReportCollector(lambda: report))
    return registry
