"""The exporter's own metrics, as every Prometheus client serves them: ``process_*``, ``python_gc_*``, ``python_info``.

node_exporter serves ``process_*`` and ``go_*`` beside its own; this exporter
serves ``process_*`` and the interpreter's. ``--web.disable-exporter-metrics``
switches them all off, as it does in node_exporter. They describe the serving
process, so the one-shot mode (``--once``, textfiles) never writes them: the
process they would describe has exited by the time anyone reads them.

On Linux the ``process_*`` metrics are prometheus_client's ``ProcessCollector``,
which reads ``/proc/self`` (always the exporter's own ``/proc``, never the one
under ``--path.rootfs``). Where there is no ``/proc/self`` (macOS) it would
give nothing, so ``PortableProcessCollector`` gives the same names from
``resource`` (CPU time, the open-file limit) and psutil (memory, start time,
open descriptors).

All collectors are made once, when the server starts: a scrape only reads the
few numbers (``ProcessCollector`` reads the boot time from ``/proc/stat`` when
it is made, ``PlatformCollector`` its labels).
"""

from __future__ import annotations

import contextlib
import gc
import os
import platform
import resource
from collections.abc import Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry

PROC = "/proc"


class PortableProcessCollector(Collector):
    """``process_*`` without ``/proc``: the names and meanings of prometheus_client's ProcessCollector.

    psutil is used here, and only here, because the standard library cannot say the current
    resident and virtual memory of the process on macOS (``resource.getrusage`` gives only the
    peak), nor when the process started, nor how many descriptors it holds; psutil asks the
    kernel (``proc_pidinfo``) and is a dependency already (processes on a live Mac). CPU time and
    the open-file limit come from ``resource``, which needs nothing more. A figure psutil cannot
    read (it raises) is left out of that scrape rather than failing it.
    """

    def __init__(self) -> None:
        import psutil

        self._psutil = psutil
        self._process = psutil.Process()
        try:
            self._start: float | None = self._process.create_time()
        except (psutil.Error, OSError):
            self._start = None

    def collect(self) -> Iterable[Metric]:
        found: list[Metric] = []
        try:
            memory = self._process.memory_info()
        except (self._psutil.Error, OSError):
            pass
        else:
            found.append(GaugeMetricFamily("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                                           value=float(memory.vms)))
            found.append(GaugeMetricFamily("process_resident_memory_bytes", "Resident memory size in bytes.",
                                           value=float(memory.rss)))
        if self._start is not None:
            found.append(GaugeMetricFamily("process_start_time_seconds",
                                           "Start time of the process since unix epoch in seconds.", value=self._start))
        usage = resource.getrusage(resource.RUSAGE_SELF)
        found.append(CounterMetricFamily("process_cpu_seconds_total",
                                         "Total user and system CPU time spent in seconds.",
                                         value=usage.ru_utime + usage.ru_stime))
        with contextlib.suppress(self._psutil.Error, OSError, AttributeError):  # num_fds: POSIX only
            found.append(GaugeMetricFamily("process_open_fds", "Number of open file descriptors.",
                                           value=float(self._process.num_fds())))
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY:
            found.append(GaugeMetricFamily("process_max_fds", "Maximum number of open file descriptors.",
                                           value=float(soft)))
        return found


def process_collector(proc: str = PROC) -> Collector:
    """prometheus_client's ProcessCollector where ``proc``/self can be read, else the portable one.

    This is the exporter's own process, not the host under test: a /proc/self that cannot be read
    (absent on macOS, or denied) only means the portable collector serves the same names."""
    if all(os.access(os.path.join(proc, *parts), os.R_OK) for parts in (("self", "stat"), ("stat",))):
        return ProcessCollector(proc=proc, registry=None)
    return PortableProcessCollector()


class ExporterMetrics(Collector):
    """``process_*``, ``python_gc_*`` (CPython) and ``python_info``, from collectors made once."""

    def __init__(self, proc: str = PROC) -> None:
        holder = CollectorRegistry(auto_describe=False)  # GCCollector and PlatformCollector register themselves
        self.collectors: list[Collector] = [process_collector(proc)]
        if hasattr(gc, "get_stats") and platform.python_implementation() == "CPython":
            self.collectors.append(GCCollector(registry=holder))
        self.collectors.append(PlatformCollector(registry=holder))

    def collect(self) -> Iterator[Metric]:
        for collector in self.collectors:
            yield from collector.collect()
