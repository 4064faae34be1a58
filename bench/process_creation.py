"""How much slower starting programs gets when the machine runs many processes: the plugin on a copied
tree (no mount namespace, its own work flat), ``python -c pass`` and ``sh -c true``, before and while
20,000 sleeping processes run. Medians of ``--runs`` runs, in turn.

    sudo .venv/bin/python bench/process_creation.py [--runs 15] [--sleepers 20000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import BIN, machine
from tests.hosttree import LinuxTree


def medians(commands: dict[str, list[str]], runs: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            start = time.perf_counter()
            subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(found) for name, found in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--sleepers", type=int, default=20000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = LinuxTree(Path(scratch) / "host").healthy().root
        commands = {
            "check_secure_endpoint": [str(BIN / "check_secure_endpoint"), "--path.rootfs", str(root),
                                      "--ampcli.run-from-rootfs", "--state-file", ""],
            "python -c pass": [sys.executable, "-c", "pass"],
            "sh -c true": ["/bin/sh", "-c", "true"],
        }
        before = medians(commands, args.runs)
        sleepers = [subprocess.Popen(["sleep", "3600"]) for _ in range(args.sleepers)]
        try:
            during = medians(commands, args.runs)
        finally:
            for process in sleepers:
                process.kill()
            for process in sleepers:
                process.wait()
    print(f"machine: {machine()}; medians of {args.runs} runs")
    for name in commands:
        print(f"{name:24s} {before[name] * 1000:7.1f} ms, with {args.sleepers} sleepers {during[name] * 1000:7.1f} ms "
              f"({during[name] / before[name]:.2f}x)")


if __name__ == "__main__":
    main()
