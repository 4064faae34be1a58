"""Scrape latency and CPU of the exporter beside node_exporter and a bare prometheus_client server.

Every target is scraped as Prometheus 2.42 scrapes it: one kept-alive connection, Prometheus's
Accept (OpenMetrics first), Accept-Encoding (gzip) and scrape-timeout headers. The targets take turns,
one scrape each per round, so machine noise falls on all of them alike. The servers run on the first
CPU(s), the client on the last. CPU per scrape is the server's own time plus that of the children it
waited for (ampcli), read from /proc/<pid>/stat around the measured rounds.

    .venv/bin/python bench/exporter_scrape.py [--rounds 400] [--processes 300] [--old DIR] [--soak 10000]

``--old DIR`` adds the exporter of another checkout (``git worktree add DIR <commit>``) as a target,
imported through PYTHONPATH. Needs Debian's prometheus-node-exporter. Everything is on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    BIN,
    Served,
    describe,
    machine,
    main_of,
    pin_client,
    rss_kib,
    start_server,
    take_turns,
    typical_host,
    wait_ready,
)
from tests.daemons import free_port

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
WARM_UP = 20


def serve(name: str, command: list[str], env: dict[str, str] | None = None, cwd: str | None = None) -> Served:
    port = free_port()
    process = start_server([part.replace("PORT", str(port)) for part in command], env, cwd)
    wait_ready(port)
    return Served(name, process, port)


def exporter_command(root: Path) -> list[str]:
    return ["--path.rootfs", str(root), "--ampcli.run-from-rootfs",
            "--web.listen-address", "127.0.0.1:PORT", "--log.level", "error"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=400)
    parser.add_argument("--processes", type=int, default=300)
    parser.add_argument("--old", help="another checkout whose exporter runs beside this one")
    parser.add_argument("--soak", type=int, default=0, help="scrapes of the exporter after the rounds, for RSS")
    args = parser.parse_args()
    node_exporter = shutil.which("prometheus-node-exporter")
    if node_exporter is None:
        raise SystemExit("install Debian's prometheus-node-exporter first")
    pin_client()
    targets: list[Served] = []
    with tempfile.TemporaryDirectory() as scratch:
        root = typical_host(Path(scratch) / "host", args.processes).root
        textfiles = Path(scratch) / "textfile"
        textfiles.mkdir()
        subprocess.run([str(BIN / "secure-endpoint-exporter"), "--path.rootfs", str(root), "--ampcli.run-from-rootfs",
                        "--once", "--output",
                        str(textfiles / "secure_endpoint.prom")], check=True)
        series = sum(1 for line in (textfiles / "secure_endpoint.prom").read_text().splitlines()
                     if line and not line.startswith("#"))
        try:
            targets.append(serve("secure-endpoint-exporter",
                                  [str(BIN / "secure-endpoint-exporter"), *exporter_command(root)]))
            if args.old:
                targets.append(serve(f"secure-endpoint-exporter at {args.old}",
                                      [sys.executable, "-c", main_of(args.old, "exporter.main"),
                                       *exporter_command(root)],
                                      env={"PATH": "/usr/bin:/bin", "PYTHONPATH": args.old}, cwd=args.old))
            targets.append(serve("node_exporter, default collectors",
                                  [node_exporter, "--web.listen-address=127.0.0.1:PORT", "--no-collector.systemd"]))
            targets.append(serve("node_exporter, textfile only",
                                  [node_exporter, "--web.listen-address=127.0.0.1:PORT",
                                   "--collector.disable-defaults", "--collector.textfile",
                                   f"--collector.textfile.directory={textfiles}"]))
            targets.append(serve(f"prometheus_client, {series} series",
                                  [sys.executable, "-c", BARE_SERVER, "PORT", str(series)]))
            take_turns(targets, args.rounds, WARM_UP)
            print(f"machine: {machine()}; host: {args.processes} extra processes; {args.rounds} rounds, "
                  "targets in turn, kept-alive connections, Prometheus 2.42's headers")
            for target in targets:
                lines = target.body.count(b"\n")
                print(f"{target.name:48s} {describe(target.times)}  CPU {target.cpu * 1000:6.2f} ms/scrape  "
                      f"({lines} lines)")
            ours, node = targets[0], next(t for t in targets if t.name.startswith("node_exporter, default"))
            ratio = statistics.median(ours.times) / statistics.median(node.times)
            print(f"p50 ratio, exporter / node_exporter default collectors: {ratio:.2f}x "
                  "(goals: <= 0.9x issue 24, <= 1.0x issue 25)")
            if args.soak:
                pid = ours.process.pid
                marks = [(0, rss_kib(pid))]
                for number in range(1, args.soak + 1):
                    ours.scraper.scrape()
                    if number in (args.soak // 10, args.soak // 2, args.soak):
                        marks.append((number, rss_kib(pid)))
                print("exporter RSS: " + ", ".join(f"{kib} KiB after {n}" for n, kib in marks))
        finally:
            for target in targets:
                target.stop()


if __name__ == "__main__":
    main()
