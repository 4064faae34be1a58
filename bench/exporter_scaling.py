"""What a scrape costs as the host grows: processes, files under /opt/cisco/amp, a large CVD.

One exporter per host, all scraped in turn (kept-alive connections, Prometheus's headers), servers on
the first CPU(s) and the client on the last. For each host: the first scrape (nothing known yet) and
the median after warm-up; then the plugin's first and second run on a host whose 200 MB CVD must be
hashed (the scan service is down, so fault 7 names a damaged definition file), with a state file.

    .venv/bin/python bench/exporter_scaling.py [--rounds 200] [--old DIR]

``--old DIR`` scrapes the exporter of another checkout beside each host's (``git worktree add``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import BIN, Served, machine, main_of, pin_client, start_server, take_turns, typical_host
from tests.daemons import free_port
from tests.hosttree import LinuxTree, cvd_bytes

WARM_UP = 10
BIG_CVD = 200 << 20


def files_host(root: Path, files: int) -> LinuxTree:
    """The typical host with ``files`` more files under /opt/cisco/amp (100 to a folder, hard links)."""
    tree = typical_host(root)
    first = tree.write("opt/cisco/amp/var/cache/first", "")
    for number in range(files):
        folder = first.parent / f"{number // 100}"
        folder.mkdir(exist_ok=True)
        os.link(first, folder / str(number))
    return tree


def big_cvd_host(root: Path) -> LinuxTree:
    tree = typical_host(root)
    tree.definitions("main.cvd", data=cvd_bytes(body=os.urandom(1 << 20) * (BIG_CVD >> 20)))
    tree.stop("ampscansvc")  # fault 7: its causes include each definition file that fails its check
    return tree


def exporter(name: str, root: Path, old: str | None = None) -> Served:
    port = free_port()
    args = ["--path.rootfs", str(root), "--ampcli.run-from-rootfs",
            "--web.listen-address", f"127.0.0.1:{port}", "--log.level", "error"]
    if old:
        process = start_server([sys.executable, "-c", main_of(old, "exporter.main"), *args],
                               env={"PATH": "/usr/bin:/bin", "PYTHONPATH": old}, cwd=old)
    else:
        process = start_server([str(BIN / "secure-endpoint-exporter"), *args])
    deadline = time.monotonic() + 60
    while True:
        try:
            served = Served(name, process, port)
            served.first = served.scraper.scrape()[0]
            return served
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def plugin_runs(root: Path, state: Path) -> tuple[float, float]:
    times = []
    for _ in range(2):
        start = time.perf_counter()
        subprocess.run([str(BIN / "check_secure_endpoint"), "--path.rootfs", str(root), "--ampcli.run-from-rootfs",
                        "--state-file", str(state)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - start)
    return times[0], times[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--old", help="another checkout whose exporter is scraped beside this one")
    args = parser.parse_args()
    described = machine()
    pin_client()
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch)
        hosts = {
            "300 processes": typical_host(base / "p300", 300).root,
            "3,000 processes": typical_host(base / "p3000", 3000).root,
            "20,000 processes": typical_host(base / "p20000", 20000).root,
            "1,000 files under /opt/cisco/amp": files_host(base / "f1000", 1000).root,
            "50,000 files under /opt/cisco/amp": files_host(base / "f50000", 50000).root,
        }
        exporters: list[Served] = []
        try:
            for name, root in hosts.items():
                exporters.append(exporter(name, root))
                if args.old:
                    exporters.append(exporter(f"{name} (at {args.old})", root, args.old))
            take_turns(exporters, args.rounds, WARM_UP)
        finally:
            for served in exporters:
                served.stop()
        print(f"machine: {described}; {args.rounds} rounds after {WARM_UP} warm-up scrapes, exporters in turn")
        reference = statistics.median(exporters[0].times)
        print(f"{'host':60s} {'first scrape':>13s} {'p50 after':>10s} {'CPU/scrape':>11s} {'p50 / 300 processes':>20s}")
        for served in exporters:
            p50 = statistics.median(served.times)
            print(f"{served.name:60s} {served.first * 1000:10.1f} ms {p50 * 1000:7.2f} ms "
                  f"{served.cpu * 1000:8.2f} ms {p50 / reference:19.2f}x")
        big = big_cvd_host(base / "cvd").root
        first, second = plugin_runs(big, base / "cvd.state")
        print(f"plugin, 200 MB CVD to hash (fault 7): first run {first * 1000:.0f} ms, second run "
              f"{second * 1000:.0f} ms (the verdict cached in the state file)")
        cvd = exporter("200 MB CVD", big)
        later = statistics.median(cvd.scraper.scrape()[0] for _ in range(20))
        cvd.stop()
        print(f"exporter, 200 MB CVD: first scrape {cvd.first * 1000:.0f} ms, later scrapes p50 {later * 1000:.1f} ms")


if __name__ == "__main__":
    main()
