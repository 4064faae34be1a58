"""Scrape cost as the number of real processes grows: the kernel's /proc, not a copied tree.

A copied tree's proc is an ordinary folder, where a known process's stat file must be looked at on
every scrape (see checks/evidence/processes.py); a host's /proc is the kernel's, where the folder's
inode alone is enough. This benchmark gives the exporter the kernel's: a host tree with the connector
whose proc is /proc itself, bind-mounted in a mount namespace of the exporter's own (unshare), and
real sleeping processes, 300, then 3,000, then 20,000 (and ampdaemon and ampscansvc among them). The
sizes follow one another (the processes are the machine's), so node_exporter's default collectors,
whose cost does not follow the process count, are scraped in turn beside it as the reference.

    sudo .venv/bin/python bench/proc_scaling.py [--rounds 200]

Needs root (mount), util-linux's unshare and Debian's prometheus-node-exporter; ~4 GB for 20,000 sleepers.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import BIN, Served, machine, pin_client, start_server, take_turns, typical_host, wait_ready
from tests.daemons import free_port

SIZES = (300, 3000, 20000)
SETTLE = 12.0  # seconds: processes younger than checks.evidence.processes.SETTLED_AFTER are read every scrape
WARM_UP = 10


def sleeper(folder: Path, name: str) -> str:
    """A copy of sleep named ``name``: the kernel names its processes after it."""
    path = folder / name
    shutil.copy(shutil.which("sleep") or "/bin/sleep", path)
    return str(path)


def spawn(program: str, count: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([program, "3600"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL) for _ in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    node_exporter = shutil.which("prometheus-node-exporter")
    if node_exporter is None or shutil.which("unshare") is None:
        raise SystemExit("needs prometheus-node-exporter and unshare")
    described = machine()
    pin_client()
    sleepers: list[subprocess.Popen[bytes]] = []
    servers: list[Served] = []
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch)
        root = typical_host(base / "host", 0).root
        shutil.rmtree(root / "proc")
        (root / "proc").mkdir()
        (base / "bin").mkdir()
        worker = sleeper(base / "bin", "worker")
        sleepers += spawn(sleeper(base / "bin", "ampdaemon"), 1) + spawn(sleeper(base / "bin", "ampscansvc"), 1)
        try:
            port = free_port()
            mounted = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                       'mount --bind /proc "$0" && exec "$@"', str(root / "proc")]
            exporter = start_server([*mounted, str(BIN / "secure-endpoint-exporter"), "--path.rootfs", str(root),
                                     "--ampcli.run-from-rootfs", "--web.listen-address", f"127.0.0.1:{port}",
                                     "--log.level", "error"])
            wait_ready(port)
            servers.append(Served("secure-endpoint-exporter", exporter, port))
            node_port = free_port()
            node = start_server([node_exporter, f"--web.listen-address=127.0.0.1:{node_port}",
                                 "--no-collector.systemd"])
            wait_ready(node_port)
            servers.append(Served("node_exporter", node, node_port))
            results = []
            for size in SIZES:
                sleepers += spawn(worker, size - (len(sleepers) - 2))
                time.sleep(SETTLE)  # every process old enough not to be read again
                running = sum(1 for entry in Path("/proc").iterdir() if entry.name.isdigit())
                for server in servers:
                    server.reconnect()
                    server.times = []
                first = servers[0].scraper.scrape()[0]
                take_turns(servers, args.rounds, WARM_UP)
                results.append((size, running, first, statistics.median(servers[0].times), servers[0].cpu,
                                statistics.median(servers[1].times)))
        finally:
            for server in servers:
                server.stop()
            for process in sleepers:
                process.kill()
            for process in sleepers:
                process.wait()
    print(f"machine: {described}; the kernel's /proc; {args.rounds} rounds a size after {WARM_UP} warm-up scrapes")
    print(f"{'sleepers':>9s} {'processes':>10s} {'first scrape':>13s} {'p50':>9s} {'CPU/scrape':>11s} "
          f"{'node_exporter p50':>18s} {'p50 / smallest':>15s}")
    smallest = results[0][3]
    for size, running, first, p50, cpu, node_p50 in results:
        print(f"{size:9d} {running:10d} {first * 1000:10.1f} ms {p50 * 1000:6.2f} ms {cpu * 1000:8.2f} ms "
              f"{node_p50 * 1000:15.2f} ms {p50 / smallest:14.2f}x")


if __name__ == "__main__":
    main()
