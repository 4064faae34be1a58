"""Scrape and plugin cost as the number of real processes grows: the kernel's /proc, not a copied tree.

A host tree with the connector whose proc is /proc itself, bind-mounted in a mount namespace of the
command's own (unshare), and real sleeping processes, 300, then 3,000, then 20,000, ampdaemon and
ampscansvc among them: copies of sleep in a folder the tree's /opt/cisco links to, so their exe lies
in the connector's install folder as the tree resolves it. Two exporters are scraped in turn with
node_exporter's default collectors (whose cost does not follow the process count) as the reference:
one whose tree has the connector's unit cgroup (its cgroup.procs naming the two sleepers: systemd's
flat path) and one without (no systemd: all of proc is listed). The plugin runs on the first tree
too, as Nagios starts it. The sizes follow one another (the processes are the machine's).

    sudo .venv/bin/python bench/proc_scaling.py [--rounds 200] [--plugin-runs 30]

Needs root (mount), util-linux's unshare and Debian's prometheus-node-exporter; ~4 GB for 20,000 sleepers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    BIN,
    Served,
    machine,
    main_of,
    pin_client,
    start_server,
    take_turns,
    typical_host,
    wait_ready,
)
from tests.daemons import free_port
from tests.hosttree import UNIT_CGROUPS

SIZES = (300, 3000, 20000)
WARM_UP = 10


def sleeper(folder: Path, name: str) -> str:
    """A copy of sleep named ``name``: the kernel names its processes after it."""
    path = folder / name
    shutil.copy(shutil.which("sleep") or "/bin/sleep", path)
    return str(path)


def spawn(program: str, count: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([program, "3600"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL) for _ in range(count)]


def connector_host(base: Path, name: str, sleepers: Path, cgroup: bool) -> Path:
    """A typical host tree whose /opt/cisco links to ``sleepers``' grandparent (its cisco folder, kept at the
    same path inside the tree), so the real sleepers' exe is in the install folder as the tree resolves it."""
    tree = typical_host(base / name, 0, "v2" if cgroup else None)
    root = tree.root
    shutil.rmtree(root / "proc")
    (root / "proc").mkdir()
    cisco = sleepers.parent.parent  # .../cisco, holding amp/bin
    inside = root / cisco.relative_to("/")
    inside.parent.mkdir(parents=True)
    (root / "opt/cisco").rename(inside)
    tree.symlink("opt/cisco", str(cisco))
    return root


def in_namespace(root: Path, *command: str) -> list[str]:
    """``command`` in a mount namespace of its own where the tree's proc is the kernel's /proc."""
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", 'mount --bind /proc "$0" && exec "$@"',
            str(root / "proc"), *command]


def exporter(name: str, root: Path, old: str | None = None) -> Served:
    """The exporter serving ``root`` in its namespace; ``old``: another checkout's, run from its folder."""
    port = free_port()
    program = [sys.executable, "-c", main_of(old, "exporter.main")] if old else \
        [str(BIN / "secure-endpoint-exporter")]
    command = in_namespace(root, *program, "--path.rootfs", str(root), "--ampcli.run-from-rootfs",
                           "--web.listen-address", f"127.0.0.1:{port}", "--log.level", "error")
    environment = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": old} if old else None
    process = start_server(command, env=environment, cwd=old)
    wait_ready(port)
    return Served(name, process, port)


def plugin_median(root: Path, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(in_namespace(root, str(BIN / "check_secure_endpoint"), "--path.rootfs", str(root),
                                    "--ampcli.run-from-rootfs", "--state-file", ""),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--plugin-runs", type=int, default=30)
    parser.add_argument("--old", help="another checkout (git worktree add) whose exporter is scraped on the "
                        "tree without systemd, beside the others")
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
        os.chmod(base, 0o755)
        connector_bin = base / "cisco/amp/bin"
        connector_bin.mkdir(parents=True)
        (base / "bin").mkdir()
        worker = sleeper(base / "bin", "worker")
        sleepers += spawn(sleeper(connector_bin, "ampdaemon"), 1) + spawn(sleeper(connector_bin, "ampscansvc"), 1)
        with_unit = connector_host(base, "unit", connector_bin, cgroup=True)
        (with_unit / UNIT_CGROUPS["v2"] / "cgroup.procs").write_text("".join(f"{p.pid}\n" for p in sleepers))
        without_unit = connector_host(base, "no-systemd", connector_bin, cgroup=False)
        try:
            servers.append(exporter("exporter, unit cgroup", with_unit))
            servers.append(exporter("exporter, no systemd (all of proc)", without_unit))
            if args.old:
                servers.append(exporter(f"exporter at {args.old}, no systemd", without_unit, args.old))
            node_port = free_port()
            node = start_server([node_exporter, f"--web.listen-address=127.0.0.1:{node_port}",
                                 "--no-collector.systemd"])
            wait_ready(node_port)
            servers.append(Served("node_exporter", node, node_port))
            results = []
            for size in SIZES:
                sleepers += spawn(worker, size - (len(sleepers) - 2))
                running = sum(1 for entry in Path("/proc").iterdir() if entry.name.isdigit())
                for server in servers:
                    server.reconnect()
                    server.times = []
                take_turns(servers, args.rounds, WARM_UP)
                results.append((size, running, [statistics.median(s.times) for s in servers],
                                [s.cpu for s in servers], plugin_median(with_unit, args.plugin_runs)))
        finally:
            for server in servers:
                server.stop()
            for process in sleepers:
                process.kill()
            for process in sleepers:
                process.wait()
    print(f"machine: {described}; the kernel's /proc; {args.rounds} rounds a size after {WARM_UP} warm-up scrapes; "
          f"plugin: median of {args.plugin_runs} runs")
    report(results, [s.name for s in servers])


def report(results: list[tuple[int, int, list[float], list[float], float]], names: list[str]) -> None:
    for size, running, p50s, cpus, plugin in results:
        print(f"{size} sleepers ({running} processes): plugin {plugin * 1000:.1f} ms")
        for name, p50, cpu in zip(names, p50s, cpus):
            print(f"    {name:50s} p50 {p50 * 1000:7.2f} ms  CPU/scrape {cpu * 1000:6.2f} ms  "
                  f"{p50 / p50s[names.index('node_exporter')]:5.2f}x node_exporter")
    first, last = results[0], results[-1]
    for index, name in enumerate(names):
        print(f"{name}: {last[0]} vs {first[0]} sleepers {last[2][index] / first[2][index]:.2f}x")
    print(f"plugin: {last[0]} vs {first[0]} sleepers {last[4] / first[4]:.2f}x")


if __name__ == "__main__":
    main()
