"""Wall time of check_secure_endpoint on a typical host tree, beside a trivial nagiosplugin check.

Both run as subprocesses with this interpreter, interleaved, so machine noise
hits both alike. Target: the plugin's median within 2x the trivial check's.

    .venv/bin/python bench/plugin_walltime.py [--runs 40] [--processes 300]
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

from tests.hosttree import LinuxTree

BIN = Path(sys.executable).parent


def typical_host(root: Path, processes: int) -> LinuxTree:
    tree = LinuxTree(root).healthy()
    for number in range(processes):
        tree.process(f"worker{number % 17}", started_ago=number * 7)
    return tree


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--processes", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        tree = typical_host(Path(scratch) / "host", args.processes)
        state = Path(scratch) / "state.json"
        plugin = [str(BIN / "check_secure_endpoint"), "--path.rootfs", str(tree.root), "--state-file", str(state)]
        trivial = [sys.executable, str(Path(__file__).with_name("trivial_check.py"))]
        timed(plugin)
        timed(trivial)  # warm the page cache for both
        ours, floor = [], []
        for _ in range(args.runs):
            ours.append(timed(plugin))
            floor.append(timed(trivial))
    for name, values in (("check_secure_endpoint", ours), ("trivial nagiosplugin check", floor)):
        ordered = sorted(values)
        p90 = ordered[int(len(ordered) * 0.9) - 1]
        print(f"{name:28s} median {statistics.median(values) * 1000:6.1f} ms   p90 {p90 * 1000:6.1f} ms")
    ratio = statistics.median(ours) / statistics.median(floor)
    print(f"ratio (median): {ratio:.2f}x  (target <= 2x; {args.runs} runs, {args.processes} extra processes)")


if __name__ == "__main__":
    main()
