"""Shared fixtures: host trees and a one-call evaluation."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from secure_endpoint_monitoring.checks.collectors import Settings
from secure_endpoint_monitoring.checks.evaluate import evaluate
from secure_endpoint_monitoring.checks.host import Host
from secure_endpoint_monitoring.checks.report import FaultResult, Report
from secure_endpoint_monitoring.checks.state import StateStore
from tests.daemons import Prometheus, exporter
from tests.hosttree import LinuxTree, faults_status
from tests.mactree import NETWORK, SECURITY, MacTree, extension

RULES = Path(__file__).resolve().parents[1] / "rules" / "secure_endpoint.rules.yml"


@pytest.fixture
def tree(tmp_path: Path) -> LinuxTree:
    """A bare Linux host without the connector."""
    return LinuxTree(tmp_path / "host")


@pytest.fixture
def healthy(tmp_path: Path) -> LinuxTree:
    return LinuxTree(tmp_path / "host").healthy()


Evaluate = Callable[..., Report]


@pytest.fixture
def shared() -> Iterator[Path]:
    """A folder in /tmp the nobody user may enter (pytest's own is root-only), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="se-shared-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


@pytest.fixture
def run() -> Evaluate:
    def _run(tree: LinuxTree, store: StateStore | None = None, **settings: Any) -> Report:
        settings.setdefault("ampcli_timeout", 2.0)
        return evaluate(Host(str(tree.root), run_programs=True), Settings(**settings), store)
    return _run


def result(report: Report, fault_id: str) -> FaultResult:
    for item in report.all_results():
        if item.fault.id == fault_id:
            return item
    raise AssertionError(f"no result for {fault_id}: {[r.fault.id for r in report.all_results()]}")


def texts(item: FaultResult) -> str:
    """Every message of a result in English, for assertions on what the operator reads."""
    parts = [m.render("en") for m in (*item.evidence, *item.causes)]
    parts += [m.render("en") for m in (item.reason, item.remedy) if m is not None]
    return " | ".join(parts)


class Fleet:
    """Exporters on four fixture hosts and one real Prometheus that scrapes them with the shipped rules."""

    def __init__(self, prometheus: Prometheus, hosts: dict[str, str]) -> None:
        self.prometheus = prometheus
        self.hosts = hosts  # name -> address (the instance label)


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    base = tmp_path_factory.mktemp("fleet")
    healthy = LinuxTree(base / "healthy").healthy()
    faulty = LinuxTree(base / "faulty").healthy()
    faulty.ampcli(faults_status((18, "Major", "overloaded"), status="Disconnected"))
    faulty.selinux(enforcing=True, module="missing")
    bare = LinuxTree(base / "not-installed", distro="debian")
    mac = MacTree(base / "mac").healthy()
    mac.tcc({SECURITY: True})  # fault 3: the Service lacks Full Disk Access
    # Fault 2 unknown: an extension without a version gives nothing to compare (the panels of unknown
    # checks need one somewhere in the fleet).
    mac.extensions(extension(SECURITY, version=""), extension(NETWORK))
    trees = {"healthy": healthy.root, "faulty": faulty.root, "not-installed": bare.root, "mac": mac.root}
    with contextlib.ExitStack() as stack:
        hosts = {name: stack.enter_context(exporter(root, log=base / f"{name}.log")).address
                 for name, root in trees.items()}
        prometheus = Prometheus(base)
        prometheus.write_config({"secure_endpoint": list(hosts.values())}, [RULES])
        prometheus.start()
        stack.callback(prometheus.stop)
        yield Fleet(prometheus, hosts)
