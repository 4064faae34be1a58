"""The connector's GUID from local.xml, the key on which the host view joins Cisco's cloud view: read where
Cisco says it is, only in the form of a GUID, and unknown (with the reason) when the file cannot be read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from secure_endpoint_monitoring.checks.report import Report
from secure_endpoint_monitoring.exporter.metrics import families
from tests.conftest import Evaluate
from tests.hosttree import CONNECTOR_GUID, CONNECTOR_VERSION, LinuxTree, local_xml
from tests.mactree import MacTree


def _info(report: Report) -> dict[str, str]:
    family = next(f for f in families(report) if f.name == "secure_endpoint_connector")
    (values, _value), = family.samples
    return dict(zip(family.labels, values))


def _collector(report: Report, name: str) -> tuple[bool, str | None]:
    run = next(c for c in report.collectors if c.name == name)
    return run.success, run.error


def test_the_guid_is_a_label_of_connector_info_and_in_the_report(healthy: LinuxTree, run: Evaluate) -> None:
    report = run(healthy)
    assert _info(report)["connector_guid"] == CONNECTOR_GUID
    assert report.to_dict()["connector"]["guid"] == CONNECTOR_GUID
    assert _collector(report, "connector_version") == (True, None)


def test_a_mac_keeps_it_in_the_connectors_support_folder(tmp_path: Path, run: Evaluate) -> None:
    mac = MacTree(tmp_path / "mac").healthy()
    assert _info(run(mac))["connector_guid"] == CONNECTOR_GUID


def test_a_mac_of_the_secure_endpoint_layout_keeps_it_beside_that_policy(tmp_path: Path, run: Evaluate) -> None:
    """The second support folder the policy is looked for in holds local.xml too."""
    mac = MacTree(tmp_path / "mac").healthy()
    newer = mac.root / "Library/Application Support/Cisco/Secure Endpoint"
    newer.mkdir(parents=True)
    (mac.root / mac.LOCAL).rename(newer / "local.xml")
    assert _info(run(mac))["connector_guid"] == CONNECTOR_GUID


@pytest.mark.parametrize(("text", "guid"), [
    (local_xml(CONNECTOR_GUID.upper()), CONNECTOR_GUID),  # the cloud writes it in lower case
    (local_xml(f"  {CONNECTOR_GUID}\n"), CONNECTOR_GUID),
    (local_xml("not-a-guid"), ""),
    (local_xml(CONNECTOR_GUID + "0"), ""),
    (local_xml('{CONNECTOR_GUID}" injected="1'), ""),  # never a label value that is not a GUID
    (f"<config><uuid>{CONNECTOR_GUID}</uuid></config>", ""),  # only /config/agent/uuid counts
    (f"<other><agent><uuid>{CONNECTOR_GUID}</uuid></agent></other>", ""),
    ("<config><agent/></config>", ""),
])
def test_only_a_guid_at_config_agent_uuid_counts(healthy: LinuxTree, run: Evaluate, text: str, guid: str) -> None:
    healthy.local_config(text=text)
    report = run(healthy)
    assert _info(report)["connector_guid"] == guid
    assert _collector(report, "connector_version") == (True, None)


def test_no_local_xml_means_no_guid_and_nothing_wrong(healthy: LinuxTree, run: Evaluate) -> None:
    (healthy.root / healthy.LOCAL).unlink()
    report = run(healthy)
    assert _info(report)["connector_guid"] == "" and report.to_dict()["connector"]["guid"] is None
    assert _collector(report, "connector_version") == (True, None)


@pytest.mark.parametrize("damage", ["malformed", "fifo", "entities"])
def test_a_local_xml_that_cannot_be_read_leaves_the_guid_unknown_and_says_why(
        healthy: LinuxTree, run: Evaluate, damage: str) -> None:
    """The version still serves; the collector reports what it could not read (a FIFO is refused, not
    waited on)."""
    path = healthy.root / healthy.LOCAL
    if damage == "malformed":
        path.write_text("<config><agent><uuid>")
    elif damage == "fifo":
        path.unlink()
        os.mkfifo(path)
    else:
        path.write_text('<!DOCTYPE c [<!ENTITY e "x">]><config><agent><uuid>&e;</uuid></agent></config>')
    report = run(healthy)
    success, error = _collector(report, "connector_version")
    assert not success and error is not None and "local.xml" in error, error
    assert _info(report)["connector_guid"] == "" and report.connector_version == CONNECTOR_VERSION
