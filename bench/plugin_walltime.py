"""Wall and CPU time of check_secure_endpoint and of --once, beside a trivial nagiosplugin check.

All three run as subprocesses of this interpreter's installation, in turn (one run of each per round),
so machine noise falls on all of them alike; the first round is dropped (page cache). CPU time is the
child's user + system time, its own children (ampcli) included, from wait4. Goal (issue 25): the plugin's
median wall time within 2.0x the trivial check's. --once is shown beside it; it imports prometheus_client.

    python3 -m venv /tmp/bench && /tmp/bench/bin/pip install .     # a regular install, as deployed
    /tmp/bench/bin/python bench/plugin_walltime.py [--runs 60] [--processes 300]
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

from bench.common import BIN, machine, percentile, typical_host


def timed(command: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and of the children it waited for)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _pid, _status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = 0  # reaped here; keeps Popen from waiting again
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--processes", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = typical_host(Path(scratch) / "host", args.processes).root
        state = Path(scratch) / "state.json"  # as deployed: both keep their state between runs
        commands = {
            "check_secure_endpoint": [str(BIN / "check_secure_endpoint"), "--path.rootfs", str(root),
                                      "--ampcli.run-from-rootfs", "--state-file", str(state)],
            "trivial nagiosplugin check": [sys.executable, str(Path(__file__).with_name("trivial_check.py"))],
            "secure-endpoint-exporter --once": [str(BIN / "secure-endpoint-exporter"), "--path.rootfs", str(root),
                                                "--ampcli.run-from-rootfs", "--once",
                                                "--output", str(Path(scratch) / "out.prom"),
                                                "--state-file", str(Path(scratch) / "once.json")],
        }
        walls: dict[str, list[float]] = {name: [] for name in commands}
        cpus: dict[str, list[float]] = {name: [] for name in commands}
        for number in range(args.runs + 1):
            for name, command in commands.items():
                wall, cpu = timed(command)
                if number:
                    walls[name].append(wall)
                    cpus[name].append(cpu)
    print(f"machine: {machine()}; host: {args.processes} extra processes; {args.runs} rounds")
    for name in commands:
        print(f"{name:32s} wall median {statistics.median(walls[name]) * 1000:6.1f} ms  "
              f"p90 {percentile(walls[name], 0.9) * 1000:6.1f} ms   CPU median "
              f"{statistics.median(cpus[name]) * 1000:6.1f} ms")
    plugin, floor, once = (statistics.median(walls[name]) for name in commands)
    plugin_cpu, floor_cpu, once_cpu = (statistics.median(cpus[name]) for name in commands)
    print(f"plugin / trivial check: wall {plugin / floor:.2f}x, CPU {plugin_cpu / floor_cpu:.2f}x "
          "(goal <= 2.0x, issue 25)")
    print(f"--once / plugin:        wall {once / plugin:.2f}x, CPU {once_cpu / plugin_cpu:.2f}x "
          "(no goal: it imports prometheus_client)")


if __name__ == "__main__":
    main()
