"""The ampcli status parser: the documented output, variations, and no crash on any input."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secure_endpoint_monitoring.checks.evidence.ampcli import (
    AmpcliError,
    ReportedFault,
    _strptime_time,
    parse_about,
    parse_policy,
    parse_status,
    parse_time,
    summary_severity,
)

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


@given(st.lists(st.integers(min_value=1, max_value=999), min_size=1, max_size=8))
def test_fault_id_lists_round_trip(ids: list[int]) -> None:
    text = "Status: Connected\nFault IDs: " + ", ".join(map(str, ids)) + "\n"
    assert set(parse_status(text).faults) == {str(i) for i in ids}


@given(st.lists(st.integers(min_value=1, max_value=999), max_size=4), st.integers(min_value=-10**6, max_value=10**6))
def test_an_id_out_of_range_makes_the_list_not_understood(ids: list[int], wrong: int) -> None:
    if 1 <= wrong <= 999:
        wrong += 1000
    text = "Status: Connected\nFault IDs: " + ", ".join(map(str, [*ids, wrong])) + "\n"
    with pytest.raises(AmpcliError, match="not understood"):
        parse_status(text)


@pytest.mark.parametrize("line", [
    "ID 0000000050 - Major: overloaded", "ID 05 - Major: x", "ID 5x - Major: x", "ID 5 - Major x",
    "ID -7 - Major: x", "ID 1000 - Major: x", "ID ²: x", "ID ٣ - Minor: x",
    "Fault IDs: -7, +8, 1e9", "Fault IDs: 05", "Fault IDs: 7;8", "Fault IDs: 7 8", "Fault IDs: 1000",
    "Fault IDs: 7,", "Fault IDs: ٣, 18", "Fault IDs: 0",
])
def test_fault_shapes_that_are_not_documented_are_not_understood(line: str) -> None:
    """Only ``Fault IDs: n, n`` and ``ID n - Severity: text`` (n from 1 to 999, plainly written) are faults;
    anything else of that kind makes the status not understood, never a fault."""
    with pytest.raises(AmpcliError, match="not understood"):
        parse_status(f"Status: Connected\nFaults: 1 Major\n{line}\n")


@pytest.mark.parametrize(("line", "ids"), [
    ("Fault IDs: None", set()), ("Fault IDs: 7,8", {"7", "8"}), ("Fault IDs:  6 , 18 ", {"6", "18"}),
    ("ID 18 - Critical: overloaded", {"18"}), ("ID 18: overloaded", {"18"}), ("ID  9 -  Minor:  x", {"9"}),
    ("IDs seen: 4", set()),  # a key of its own, not a fault line
    ("ID Token: abc123", set()), ("Fault IDs: N/A", set()), ("Fault IDs: -", set()),
])
def test_the_documented_fault_shapes(line: str, ids: set[str]) -> None:
    assert set(parse_status(f"Status: Connected\n{line}\n").faults) == ids


# -- what real runs print ----------------------------------------------------------------------------
def test_log_noise_and_an_interactive_prompt() -> None:
    text = ("[logger] Set minimum reported log level to notice\n"
            "ampcli> Status: Connected\nMode: Degraded\nFaults: 1 Critical\nFault IDs: 18\n"
            "ID 18 - Critical: Connector event monitoring is overloaded.\nampcli> \n")
    status = parse_status(text)
    assert status.connected and status.mode == "Degraded"
    assert status.faults["18"] == ReportedFault("18", "Critical", "Connector event monitoring is overloaded.")
    assert not any(key.startswith("[") for key in status.fields)


@pytest.mark.parametrize(("summary", "severity"), [
    ("1 Major", "Major"), ("2 Critical", "Critical"), ("0 Critical, 2 Major, 0 Minor", "Major"),
    ("1 Critical, 1 Major", ""), ("None", ""), ("", ""), ("3 minor", "Minor"),
])
def test_summary_gives_a_severity_only_when_one_is_counted(summary: str, severity: str) -> None:
    assert summary_severity(summary) == severity
    status = parse_status(f"Status: Connected\nFaults: {summary}\nFault IDs: 6, 18\nID 18 - Major: busy\n")
    assert status.faults["6"].severity == severity  # no line of its own: the summary decides
    assert status.faults["18"].severity == "Major"  # its own line wins


@pytest.mark.parametrize(("text", "version"), [
    ("[logger] Set minimum reported log level to notice\nAMP for Endpoints Connector 1.24.1.1234\n", "1.24.1.1234"),
    ("Cisco Secure Endpoint connector 1.25.0\n", "1.25.0"),
    ("ampcli> AMP for Endpoints Connector v1.12.7\n", "1.12.7"),
    ("nothing useful\n", ""),
])
def test_about(text: str, version: str) -> None:
    assert parse_about(text) == version


def test_policy_output() -> None:
    text = ("[logger] Set minimum reported log level to notice\nPolicy: Protect (#7)\n"
            "Definition Version: ClamAV daily.cvd 27100\nDefinitions Last Updated: 2024-05-02 09:12:44 AM\n")
    version, updated = parse_policy(text)
    assert version == "ClamAV daily.cvd 27100"
    assert updated == datetime(2024, 5, 2, 9, 12, 44).timestamp()


@pytest.mark.parametrize("text", ["2024-05-02 21:12:44", "Thu May  2 21:12:44 2024", "05/02/2024 09:12:44 PM",
                                  "2024-05-02T21:12:44"])
def test_time_formats(text: str) -> None:
    assert parse_time(text) == datetime(2024, 5, 2, 21, 12, 44).timestamp()


@pytest.mark.parametrize("text", ["2024-05-02T19:12:44Z", "2024-05-02T19:12:44.12Z", "2024-05-02 21:12:44,000+02:00",
                                  "2024-05-02T19:12:44.1234567+00:00", "2024-05-02T14:12:44-0500"])
def test_iso_times_with_a_zone_read_alike_on_every_python(text: str) -> None:
    """3.9 and 3.10's datetime.fromisoformat refuses most of these; the reading must not depend on it."""
    assert parse_time(text) == pytest.approx(datetime(2024, 5, 2, 19, 12, 44, tzinfo=timezone.utc).timestamp(),
                                             abs=0.2)


@pytest.mark.parametrize("text", ["", "never", "yesterday 25:99", "2024-13-45 10:00:00", "2024-05-02T19:12:44+24:00",
                                  "2024-05-02T19:12:44.Z", "2024-05-02T25:12:44Z"])
def test_unreadable_times_are_none(text: str) -> None:
    assert parse_time(text) is None


@given(st.text(max_size=60))
def test_any_time_text_parses_or_is_none(text: str) -> None:
    assert parse_time(text) is None or isinstance(parse_time(text), float)


@pytest.mark.parametrize("text", ["²", "١٢٣", "9" * 5000])
def test_digits_of_other_scripts_and_huge_numbers_are_not_times(text: str) -> None:
    assert parse_time(text) is None


def test_other_scripts_digits_and_huge_ids_are_not_understood() -> None:
    with pytest.raises(AmpcliError, match="not understood"):
        parse_status("Status: Connected\nFault IDs: 18, " + "9" * 5000 + "\n")



@given(st.tuples(st.integers(0, 10000), st.integers(0, 13), st.integers(0, 32), st.integers(0, 25),
                 st.integers(0, 61), st.integers(0, 61)),
       st.sampled_from(["{Y}-{m}-{d} {H}:{M}:{S} {p}", "{Y}-{m}-{d} {H}:{M}:{S}", "{Y}-{m}-{d}T{H}:{M}:{S}",
                        "{Y}-{m}-{d}", "{Y}-{m}-{d} {H}:{M}:{S}{p}", "{Y}-{m}-{d}X{H}:{M}:{S}",
                        "{m}/{d}/{Y} {H}:{M}:{S}"]),
       st.sampled_from(["AM", "PM", "am", "pm", "XM", ""]), st.booleans())
def test_the_numeric_shapes_read_without_strptime_give_what_strptime_gives(
        fields: tuple[int, ...], shape: str, meridiem: str, padded: bool) -> None:
    year, month, day, hour, minute, second = fields
    width = 2 if padded else 1
    text = shape.format(Y=f"{year:04d}", m=f"{month:0{width}d}", d=f"{day:0{width}d}", H=f"{hour:0{width}d}",
                        M=f"{minute:02d}", S=f"{second:02d}", p=meridiem)
    assert parse_time(text) == _strptime_time(" ".join(text.split()))


@pytest.mark.parametrize("text", ["0001-01-01 00:00:00", "0001-01-01", "01/01/0001 00:00:00"])
def test_a_time_before_unix_time_can_reach_is_unreadable_not_a_crash(text: str) -> None:
    """Hypothesis found it: year 1 has no Unix time in a local zone, and strptime's path raised."""
    assert parse_time(text) is None
