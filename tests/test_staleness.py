"""Textfile mode going stale, end to end: a real node_exporter serves an old Secure Endpoint textfile, a real
Prometheus scrapes it with rules generated for job="node", and the staleness alerts go pending."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from secure_endpoint_monitoring.exporter.generate.__main__ import main as generate
from tests.commands import run
from tests.daemons import Prometheus, free_port, stop
from tests.hosttree import LinuxTree

# Drives Debian's programs: runs on the system python3 only, not in the matrix of noxfile.py.
pytestmark = pytest.mark.system

AGE = 20 * 60  # seconds: past the 15 minutes the alerts allow


@pytest.fixture
def node_exporter(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    binary = shutil.which("prometheus-node-exporter")
    if binary is None:
        raise AssertionError("prometheus-node-exporter is missing: .ci/test installs Debian's package")
    textfiles = tmp_path / "textfile"
    textfiles.mkdir()
    port = free_port()
    process = subprocess.Popen(
        [binary, f"--web.listen-address=127.0.0.1:{port}", "--collector.disable-defaults", "--collector.textfile",
         f"--collector.textfile.directory={textfiles}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield f"127.0.0.1:{port}", textfiles
    finally:
        stop(process)


def _write_old_textfile(tree: LinuxTree, path: Path) -> None:
    """What a timer that stopped 20 minutes ago leaves behind: its last file, written then."""
    done = run("secure-endpoint-exporter", "--path.rootfs", str(tree.root), "--ampcli.run-from-rootfs",
               "--once", "--output", str(path))
    assert done.returncode == 0, done.stderr
    then = time.time() - AGE
    text, count = re.subn(r"^secure_endpoint_last_evaluation_timestamp_seconds .*$",
                          f"secure_endpoint_last_evaluation_timestamp_seconds {then}", path.read_text(), flags=re.M)
    assert count == 1
    path.write_text(text)
    os.utime(path, (then, then))


def test_a_stopped_timer_raises_the_staleness_alerts(healthy: LinuxTree, node_exporter: tuple[str, Path],
                                                     tmp_path: Path) -> None:
    address, textfiles = node_exporter
    _write_old_textfile(healthy, textfiles / "secure_endpoint.prom")
    generate(["--out", str(tmp_path / "generated"), "--selector", 'job="node"'])
    prometheus = Prometheus(tmp_path)
    prometheus.write_config({"node": [address]}, [tmp_path / "generated" / "rules" / "secure_endpoint.rules.yml"])
    prometheus.start()
    try:
        wanted = {"SecureEndpointTextfileStale", "SecureEndpointEvaluationStale"}
        deadline = time.monotonic() + 30
        seen: dict[str, dict[str, str]] = {}
        while time.monotonic() < deadline and not wanted <= set(seen):
            seen = {a["labels"]["alertname"]: a["labels"] for a in prometheus.api("alerts")["alerts"]}
            time.sleep(0.2)
        assert wanted <= set(seen), seen
        assert seen["SecureEndpointTextfileStale"]["file"].endswith("secure_endpoint.prom")
        assert seen["SecureEndpointEvaluationStale"]["instance"] == address
        # The faults themselves are clear on this host: stale data raises only the staleness alerts.
        assert set(seen) == wanted, seen
    finally:
        prometheus.stop()


def test_a_fresh_textfile_raises_none(healthy: LinuxTree, node_exporter: tuple[str, Path], tmp_path: Path) -> None:
    address, textfiles = node_exporter
    done = run("secure-endpoint-exporter", "--path.rootfs", str(healthy.root), "--ampcli.run-from-rootfs",
               "--once", "--output",
               str(textfiles / "secure_endpoint.prom"))
    assert done.returncode == 0, done.stderr
    generate(["--out", str(tmp_path / "generated"), "--selector", 'job="node"'])
    prometheus = Prometheus(tmp_path)
    prometheus.write_config({"node": [address]}, [tmp_path / "generated" / "rules" / "secure_endpoint.rules.yml"])
    prometheus.start()
    try:
        prometheus.wait_for('secure_endpoint_last_evaluation_timestamp_seconds{job="node"}', 1)
        prometheus.wait_for('node_textfile_mtime_seconds{job="node"}', 1)
        # The alerts' own expressions: their inputs are there, and they select nothing.
        rules = yaml.safe_load((tmp_path / "generated" / "rules" / "secure_endpoint.rules.yml").read_text())
        stale = {r["alert"]: r["expr"] for g in rules["groups"] for r in g["rules"]
                 if r.get("alert") in ("SecureEndpointTextfileStale", "SecureEndpointEvaluationStale")}
        assert len(stale) == 2
        for name, expr in stale.items():
            assert prometheus.query(expr.rsplit(">", 1)[0]), name
            assert prometheus.query(expr) == [], name
    finally:
        prometheus.stop()
