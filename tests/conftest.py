"""Shared fixtures: host trees and a one-call evaluation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from checks.collect import Settings
from checks.evaluate import evaluate
from checks.host import Host
from checks.report import FaultResult, Report
from checks.state import StateStore
from tests.hosttree import LinuxTree


@pytest.fixture
def tree(tmp_path: Path) -> LinuxTree:
    """A bare Linux host without the connector."""
    return LinuxTree(tmp_path / "host")


@pytest.fixture
def healthy(tmp_path: Path) -> LinuxTree:
    return LinuxTree(tmp_path / "host").healthy()


Evaluate = Callable[..., Report]


@pytest.fixture
def run() -> Evaluate:
    def _run(tree: LinuxTree, store: StateStore | None = None, **settings: Any) -> Report:
        settings.setdefault("ampcli_timeout", 2.0)
        return evaluate(Host(str(tree.root)), Settings(**settings), store)
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
