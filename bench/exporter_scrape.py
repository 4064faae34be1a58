"""Scrape latency and throughput of the exporter beside node_exporter and a bare prometheus_client server.

Also the exporter's CPU time per evaluation (its own process only: ampcli's
run is a child and not counted) and its RSS across 10,000 scrapes.

    .venv/bin/python bench/exporter_scrape.py [--requests 300] [--scrapes 10000]

Needs Debian's prometheus-node-exporter. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.plugin_walltime import typical_host
from tests.daemons import free_port

BIN = Path(sys.executable).parent

BARE_SERVER = """
import sys, time
from prometheus_client import Gauge, start_http_server
count = int(sys.argv[2])
gauge = Gauge("bench_series", "A series per exporter series.", ["n"])
for n in range(count):
    gauge.labels(str(n)).set(n)
start_http_server(int(sys.argv[1]), addr="127.0.0.1")
while True:
    time.sleep(3600)
"""


def fetch(port: int, conn: http.client.HTTPConnection | None = None) -> float:
    start = time.perf_counter()
    own = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    own.request("GET", "/metrics")
    response = own.getresponse()
    response.read()
    assert response.status == 200, response.status
    if conn is None:
        own.close()
    return time.perf_counter() - start


def wait_ready(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            fetch(port)
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing answers on {port}")


def latency(port: int, requests: int) -> tuple[float, float]:
    times = sorted(fetch(port) for _ in range(requests))
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]


def throughput(port: int, seconds: float = 5.0, clients: int = 8) -> float:
    deadline = time.monotonic() + seconds

    def client(_: int) -> int:
        done = 0
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < deadline:
            fetch(port, conn)
            done += 1
        conn.close()
        return done

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        total = sum(pool.map(client, range(clients)))
    return total / seconds


def rss_kib(pid: int) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", text).group(1))  # type: ignore[union-attr]


def cpu_per_evaluation(root: Path, runs: int = 200) -> float:
    from checks.collect import Settings
    from checks.evaluate import evaluate
    from checks.host import Host
    from checks.state import StateStore

    host, store = Host(str(root)), StateStore(rootfs=str(root))
    evaluate(host, Settings(), store)
    start = time.process_time()
    for _ in range(runs):
        evaluate(host, Settings(), store)
    return (time.process_time() - start) / runs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--scrapes", type=int, default=10000)
    args = parser.parse_args()
    node_exporter = shutil.which("prometheus-node-exporter")
    if node_exporter is None:
        raise SystemExit("install Debian's prometheus-node-exporter first")
    processes: list[subprocess.Popen[bytes]] = []

    def start(command: list[str]) -> int:
        port = free_port()
        processes.append(subprocess.Popen([part.replace("PORT", str(port)) for part in command],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_ready(port)
        return port

    with tempfile.TemporaryDirectory() as scratch:
        root = typical_host(Path(scratch) / "host", 300).root
        textfiles = Path(scratch) / "textfile"
        textfiles.mkdir()
        subprocess.run([str(BIN / "secure-endpoint-exporter"), "--path.rootfs", str(root), "--once", "--output",
                        str(textfiles / "secure_endpoint.prom")], check=True)
        series = sum(1 for line in (textfiles / "secure_endpoint.prom").read_text().splitlines()
                     if line and not line.startswith("#"))
        try:
            ours = start([str(BIN / "secure-endpoint-exporter"), "--path.rootfs", str(root),
                          "--web.listen-address", "127.0.0.1:PORT", "--log.level", "error"])
            targets: dict[str, int] = {
                "secure-endpoint-exporter": ours,
                "node_exporter (default collectors)": start(
                    [node_exporter, "--web.listen-address=127.0.0.1:PORT", "--no-collector.systemd"]),
                "node_exporter (textfile only)": start(
                    [node_exporter, "--web.listen-address=127.0.0.1:PORT", "--collector.disable-defaults",
                     "--collector.textfile", f"--collector.textfile.directory={textfiles}"]),
                f"prometheus_client, {series} series": start(
                    [sys.executable, "-c", BARE_SERVER, "PORT", str(series)]),
            }
            print(f"{'target':40s} {'p50 ms':>8s} {'p99 ms':>8s} {'req/s (8 clients)':>18s}")
            for name, port in targets.items():
                p50, p99 = latency(port, args.requests)
                rate = throughput(port)
                print(f"{name:40s} {p50 * 1000:8.2f} {p99 * 1000:8.2f} {rate:18.0f}")
            pid = processes[0].pid
            before = rss_kib(pid)
            marks = []
            conn = http.client.HTTPConnection("127.0.0.1", ours, timeout=30)
            for number in range(1, args.scrapes + 1):
                fetch(ours, conn)
                if number in (1000, args.scrapes // 2, args.scrapes):
                    marks.append((number, rss_kib(pid)))
            print(f"exporter RSS: {before} KiB before, " + ", ".join(f"{kib} KiB after {n}" for n, kib in marks))
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=10)
        cpu: Callable[[Path], float] = cpu_per_evaluation
        print(f"CPU per evaluation (exporter process only, ampcli excluded): {cpu(root) * 1000:.1f} ms")
        print(f"host: 300 extra processes, fake ampcli; series exported: {series}; pid {os.getpid()}")


if __name__ == "__main__":
    main()
