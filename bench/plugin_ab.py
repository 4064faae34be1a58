"""Interleaved A/B of the plugin at two commits, same interpreter, same healthy 300-process host.

    git worktree add /tmp/old <commit>
    .venv/bin/python bench/plugin_ab.py /tmp/old [--runs 40]

The old tree is imported through PYTHONPATH (it wins over the editable install);
the first round of each is dropped (page cache).
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

from bench.common import main_of
from tests.hosttree import LinuxTree

HERE = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("old", help="a checkout of the older commit")
    parser.add_argument("--runs", type=int, default=40)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        tree = LinuxTree(Path(scratch) / "host").healthy()
        for number in range(300):
            tree.process(f"worker{number % 17}", started_ago=number * 7)
        args = ["--path.rootfs", str(tree.root), "--ampcli.run-from-rootfs", "--state-file", ""]
        targets = {"old": ({"PYTHONPATH": options.old}, options.old), "new": ({}, str(HERE))}
        times: dict[str, list[float]] = {name: [] for name in targets}
        for _ in range(options.runs + 1):
            for name, (env, cwd) in targets.items():
                start = time.perf_counter()
                command = [sys.executable, "-c", main_of(cwd, "checks.nagios"), *args]
                subprocess.run(command, env={"PATH": "/usr/bin:/bin", **env}, cwd=cwd, capture_output=True, check=False)
                times[name].append(time.perf_counter() - start)
    for name, values in times.items():
        kept = sorted(values[1:])
        p90 = kept[int(len(kept) * 0.9) - 1]
        print(f"{name}: median {statistics.median(kept) * 1000:6.1f} ms   p90 {p90 * 1000:6.1f} ms")


if __name__ == "__main__":
    main()
