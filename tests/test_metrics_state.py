"""The fault state set and the staleness series in the exposition: what tells not_applicable from clear, and
stale data from fresh."""

from __future__ import annotations

import time
from pathlib import Path

from secure_endpoint_monitoring.checks.evaluate import evaluate
from secure_endpoint_monitoring.checks.host import Host
from secure_endpoint_monitoring.checks.report import State
from secure_endpoint_monitoring.exporter.metrics import Family, families
from tests.hosttree import LinuxTree, faults_status

STATES = {str(s) for s in State}


def by_name(tree: LinuxTree) -> dict[str, Family]:
    return {family.name: family for family in families(evaluate(Host(str(tree.root), run_programs=True)))}


def current_states(found: dict[str, Family]) -> dict[str, str]:
    """fault id -> the one state whose series is 1, after checking there is exactly one."""
    family = found["secure_endpoint_fault_state"]
    assert family.labels == ("fault_id", "fault", "platform", "state")
    states: dict[str, set[str]] = {}
    seen: dict[str, set[str]] = {}
    for (fault_id, _slug, _platform, state), value in family.samples:
        seen.setdefault(fault_id, set()).add(state)
        if value == 1.0:
            states.setdefault(fault_id, set()).add(state)
        else:
            assert value == 0.0
    assert all(names == STATES for names in seen.values()), seen  # every state is always exported
    assert all(len(names) == 1 for names in states.values()), states
    assert set(states) == set(seen)
    return {fault_id: names.pop() for fault_id, names in states.items()}


def test_a_host_without_the_connector_is_not_applicable_not_clear(tmp_path: Path) -> None:
    found = by_name(LinuxTree(tmp_path / "bare", distro="debian"))
    states = current_states(found)
    assert states and set(states.values()) == {"not_applicable"}
    assert {value for _, value in found["secure_endpoint_fault_active"].samples} == {0.0}


def test_the_state_set_follows_the_verdicts(tmp_path: Path) -> None:
    tree = LinuxTree(tmp_path / "faulty").healthy()
    tree.ampcli(faults_status((18, "Major", "overloaded")))
    report = evaluate(Host(str(tree.root), run_programs=True))
    found = {f.name: f for f in families(report)}
    states = current_states(found)
    assert states == {r.fault.id: str(r.state) for r in report.faults}
    assert states["18"] == "active"
    assert "clear" in states.values()
    active = {values[0] for values, value in found["secure_endpoint_fault_active"].samples if value == 1.0}
    assert active == {fid for fid, state in states.items() if state == "active"}


def test_the_last_evaluation_time_is_when_it_ended(tmp_path: Path) -> None:
    before = time.time()
    found = by_name(LinuxTree(tmp_path / "healthy").healthy())
    after = time.time()
    (((), stamp),) = found["secure_endpoint_last_evaluation_timestamp_seconds"].samples
    (((), took),) = found["secure_endpoint_evaluation_duration_seconds"].samples
    assert before <= stamp <= after and 0 < took <= after - before
