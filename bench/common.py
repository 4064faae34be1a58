"""What the benchmarks share: host trees, CPU placement, Prometheus's scrape, per-process CPU and memory."""

from __future__ import annotations

import gzip
import http.client
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.hosttree import LinuxTree

BIN = Path(sys.executable).parent


def main_of(checkout: str, module: str) -> str:
    """``python -c`` code that runs ``module``'s main from ``checkout`` (on PYTHONPATH): under
    secure_endpoint_monitoring, or at the top in a checkout from before the packages moved there."""
    moved = os.path.isdir(os.path.join(checkout, "secure_endpoint_monitoring"))
    return f"from {'secure_endpoint_monitoring.' if moved else ''}{module} import main; main()"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# What Prometheus 2.42 (Debian 12's) sends with every scrape.
PROMETHEUS_HEADERS = {
    "Accept": "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
              "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "Accept-Encoding": "gzip",
    "User-Agent": "Prometheus/2.42.0",
    "X-Prometheus-Scrape-Timeout-Seconds": "10",
}


def typical_host(root: Path, processes: int = 300, cgroup: str | None = "v2") -> LinuxTree:
    """The healthy real-shaped Linux host of the tests, plus ``processes`` other processes started at
    times spread over the day since its boot (none before it: a start before boot is no stat line).
    ``cgroup=None``: a host without systemd, whose processes are found by listing all of proc."""
    tree = LinuxTree(root, cgroup=cgroup).healthy()
    for number in range(processes):
        tree.process(f"worker{number % 17}", started_ago=60 + number * 7 % 80000)
    return tree


# -- where programs run -------------------------------------------------------
def server_cpus() -> set[int]:
    """CPUs for the programs measured: all but the last when there are two or more."""
    cpus = sorted(os.sched_getaffinity(0))
    return set(cpus[:-1]) if len(cpus) > 1 else set(cpus)


def client_cpus() -> set[int]:
    """The CPU left to the benchmark itself (the client), off the servers' cores where possible."""
    cpus = sorted(os.sched_getaffinity(0))
    return {cpus[-1]}


def start_server(command: Sequence[str], env: dict[str, str] | None = None,
                 cwd: str | None = None) -> subprocess.Popen[bytes]:
    """A server pinned to ``server_cpus()`` by taskset, which then becomes it (its children inherit the place)."""
    cpus = ",".join(str(cpu) for cpu in sorted(server_cpus()))
    return subprocess.Popen(["taskset", "-c", cpus, *command], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env, cwd=cwd)


def pin_client() -> None:
    os.sched_setaffinity(0, client_cpus())


# -- scraping -----------------------------------------------------------------
class Scraper:
    """One kept-alive connection to a target, scraped as Prometheus does."""

    def __init__(self, port: int, path: str = "/metrics") -> None:
        self.port = port
        self.path = path
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def scrape(self) -> tuple[float, bytes]:
        """(seconds from the request to the last byte of the answer, the body unzipped)."""
        start = time.perf_counter()
        self.conn.request("GET", self.path, headers=PROMETHEUS_HEADERS)
        response = self.conn.getresponse()
        body = response.read()
        took = time.perf_counter() - start
        if response.status != 200:
            raise RuntimeError(f"port {self.port} answered {response.status}: {body[:200]!r}")
        if response.getheader("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        return took, body

    def close(self) -> None:
        self.conn.close()


class Served:
    """A server being measured: its process, a kept-alive scraper, and what the rounds found."""

    def __init__(self, name: str, process: subprocess.Popen[bytes], port: int) -> None:
        self.name = name
        self.process = process
        self.port = port
        self.scraper = Scraper(port)
        self.first = 0.0  # seconds the first scrape took
        self.times: list[float] = []
        self.cpu = 0.0  # seconds of CPU a scrape, the server's own and its children's
        self.body = b""

    def reconnect(self) -> None:
        """A new kept-alive connection (the server closes one left idle past its read timeout)."""
        self.scraper.close()
        self.scraper = Scraper(self.port)

    def stop(self) -> None:
        self.scraper.close()
        self.process.terminate()
        self.process.wait(timeout=10)


def take_turns(servers: Sequence[Served], rounds: int, warm_up: int) -> None:
    """Scrape every server once a round, ``warm_up`` rounds not counted, then ``rounds`` measured."""
    for _ in range(warm_up):
        for server in servers:
            server.scraper.scrape()
    before = [cpu_seconds(server.process.pid) for server in servers]
    for _ in range(rounds):
        for server in servers:
            took, server.body = server.scraper.scrape()
            server.times.append(took)
    for server, used in zip(servers, before):
        server.cpu = (cpu_seconds(server.process.pid) - used) / rounds


def wait_ready(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            scraper = Scraper(port)
            scraper.scrape()
            scraper.close()
            return
        except (OSError, RuntimeError, http.client.HTTPException):
            time.sleep(0.05)
    raise SystemExit(f"nothing answers on port {port}")


# -- the measured process -------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """User + system time of ``pid`` and of the children it has waited for (ampcli and its own)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text.rpartition(")")[2].split()
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    return (utime + stime + cutime + cstime) / CLOCK_TICKS


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def describe(values: Sequence[float]) -> str:
    return (f"p50 {statistics.median(values) * 1000:7.2f} ms  p90 {percentile(values, 0.9) * 1000:7.2f} ms  "
            f"p99 {percentile(values, 0.99) * 1000:7.2f} ms")


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.partition(":")[2].strip()
            break
    return (f"{os.cpu_count()} CPUs ({model}), Python {sys.version.split()[0]}, "
            f"{time.strftime('%Y-%m-%d')}")
