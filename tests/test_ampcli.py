"""The ampcli status parser: the documented output, variations, and no crash on any input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from checks.evidence.ampcli import AmpcliError, parse_status

DOCUMENTED = """\
Status: Connected
Mode: Degraded
Scan: Ready for scan
Last Scan: 2023-06-19 02:02:03 PM
Policy: Audit Policy for FireAMP Linux (#1)
Command-line: Enabled
Orbital: Disabled
Behavioural Protection: Protect
Faults: 1 Major
Fault IDs: 18
ID 18 - Major: Connector event monitoring is overloaded. Check the system load.
"""


def test_documented_output() -> None:
    status = parse_status(DOCUMENTED)
    assert status.connected and status.mode == "Degraded"
    assert status.fields["last scan"] == "2023-06-19 02:02:03 PM"
    assert status.policy == "Audit Policy for FireAMP Linux (#1)"
    assert list(status.faults) == ["18"]
    assert status.faults["18"].severity == "Major"
    assert status.faults["18"].text.startswith("Connector event monitoring is overloaded")


def test_no_faults() -> None:
    status = parse_status("Status: Connected\nFaults: None\n")
    assert status.faults == {}


def test_ids_without_detail_lines_take_the_summary_severity() -> None:
    status = parse_status("Status: Disconnected\nFaults: 2 Critical\nFault IDs: 7, 99\n")
    assert not status.connected
    assert set(status.faults) == {"7", "99"}
    assert status.faults["99"].severity == "Critical"


def test_extra_fields_case_and_spacing() -> None:
    status = parse_status("  STATUS :  Connected  \r\nVersion: 1.24.1.1234\nSomething New: yes\n")
    assert status.connected
    assert status.version == "1.24.1.1234"
    assert status.fields["something new"] == "yes"


@pytest.mark.parametrize("text", ["", "garbage", "Segmentation fault (core dumped)\n", "ID 5 - Major: x\n"])
def test_not_a_status_report(text: str) -> None:
    with pytest.raises(AmpcliError):
        parse_status(text)


@given(st.text())
def test_any_text_parses_or_raises_ampcli_error(text: str) -> None:
    try:
        status = parse_status(text)
    except AmpcliError:
        return
    assert all(key.isdigit() for key in status.faults)


@given(st.lists(st.integers(min_value=0, max_value=10**6), max_size=8))
def test_fault_id_lists_round_trip(ids: list[int]) -> None:
    text = "Status: Connected\nFault IDs: " + ", ".join(map(str, ids)) + "\n"
    assert set(parse_status(text).faults) == {str(i) for i in ids}
