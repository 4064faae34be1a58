"""What the connector says about itself: ``ampcli status``, ``about`` and ``policy``.

The three run at once, each bounded by the same timeout. ``status`` is the one
that matters: when it fails, the collector fails. ``about`` (the connector's
version) and ``policy`` (when the definitions were last updated) only add
facts, and their failure leaves those facts empty.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, NamedTuple

from ..catalog import Platform
from ..host import Host
from ..messages import printable, said
from ..programs import CommandResult, Running
from . import ascii_number, lines

if TYPE_CHECKING:  # datetime is imported where a time is parsed: most runs never need it
    from datetime import datetime

log = logging.getLogger(__name__)

AMPCLI_PATHS = {
    Platform.LINUX: "opt/cisco/amp/bin/ampcli",
    Platform.MACOS: "opt/cisco/amp/ampcli",
}
SEVERITIES = ("Critical", "Major", "Minor")  # the connector's words; anything else is no severity
# Cisco documents about twenty fault ids; a status listing hundreds is not a status report, and
# believing it would turn each id into a series and a line of plugin output.
MAX_FAULTS = 64
MAX_TEXT = 300  # characters of a fault's text or a field's value kept
MAX_FIELDS = 64  # distinct "Key: value" lines kept (the report shows them all)
MAX_SAVED = 1 << 20  # a saved status is a few KiB; a larger file is no status report

PROMPT = "ampcli>"
# The patterns below are compiled at their first use (re keeps them), not at import: a healthy status
# has no fault line, no fault ids and no counts, and a plugin run pays some 0.15 ms for each pattern.
# ASCII digits only, and few of them: ``\d`` also matches other scripts' digits, and a huge number is no id.
# A fault id as the connector prints one: 1 to 999, no sign, no leading zero (Cisco's ids run 1 to 19).
_ID = r"[1-9][0-9]{0,2}"
_FAULT_LINE = r"^ID\s+(" + _ID + r")\s*(?:-\s*([A-Za-z]+))?\s*:\s*(.*)$"
_FAULT_IDS = r"^" + _ID + r"(?:\s*,\s*" + _ID + r")*$"
_KEY_LINE = r"^([A-Za-z][A-Za-z0-9 _/-]{0,40}?)\s*:\s*(.*)$"
_COUNT = r"(?<![0-9])([0-9]{1,9})\s+([A-Za-z]+)"
# Compiled at first use (only ``about`` needs it, and it runs only when global.xml names no version).
_VERSION = r"(?<![0-9.])([0-9]{1,6}\.[0-9]{1,6}\.[0-9]{1,6}(?:\.[0-9]{1,9})?)(?![0-9.])"
# Formats seen or plausible for "Definitions Last Updated" (the real one is not public: see
# docs/connector-facts.md). Times without a zone are read as local time (see ``parse_time``).
_DATE_FORMATS = (
    "%Y-%m-%d %I:%M:%S %p", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%a %b %d %H:%M:%S %Y",
    "%b %d, %Y %I:%M:%S %p", "%b %d %Y %H:%M:%S", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M:%S", "%Y-%m-%d",
)


class AmpcliError(ValueError):
    """ampcli's answer could not be used."""


class ReportedFault(NamedTuple):
    id: str
    severity: str  # one of SEVERITIES as the connector says it, or "" when it says none of them
    text: str


class ConnectorStatus(NamedTuple):
    fields: dict[str, str]
    faults: dict[str, ReportedFault]
    about_version: str = ""  # from ``ampcli about``
    definition_version: str = ""  # from ``ampcli policy``
    definitions_updated: float | None = None  # from ``ampcli policy``, seconds since the epoch

    @property
    def status(self) -> str:
        return self.fields.get("status", "")

    @property
    def connected(self) -> bool:
        return self.status.strip().lower() == "connected"

    @property
    def mode(self) -> str:
        return self.fields.get("mode", "")

    @property
    def version(self) -> str:
        for key in ("version", "connector version", "amp version"):
            if self.fields.get(key):
                return self.fields[key]
        return self.about_version

    @property
    def policy(self) -> str:
        return self.fields.get("policy", "")


def _lines(text: str) -> list[str]:
    """Non-empty lines without an interactive ``ampcli>`` prompt in front."""
    found = []
    for raw in lines(text):
        line = raw.strip()
        while line.startswith(PROMPT):
            line = line[len(PROMPT):].lstrip()
        if line:
            found.append(line)
    return found


def _key_values(found: list[str]) -> dict[str, str]:
    """``Key: value`` lines by lower-case key, the first one winning; log noise such as
    ``[logger] ...`` does not start with a letter and is skipped."""
    fields: dict[str, str] = {}
    for line in found:
        pair = re.match(_KEY_LINE, line)
        if pair and len(fields) < MAX_FIELDS:  # the value is the host's: sanitised where it enters
            fields.setdefault(pair.group(1).strip().lower(), printable(pair.group(2).strip()[:MAX_TEXT]))
    return fields


def parse_status(text: str) -> ConnectorStatus:
    """Parse ``ampcli status`` output tolerantly.

    Unknown keys are kept; fault ids come from ``Fault IDs`` and from
    ``ID n - Severity: text`` lines. Output that has no ``Status`` key at all
    is not a status report and raises ``AmpcliError``.
    """
    faults: dict[str, ReportedFault] = {}
    rest = []
    for line in _lines(text):
        first = line[2:].lstrip()[:1]
        if not (line.startswith("ID") and line[2:3].isspace()) or (first.isascii() and first.isalpha()):
            rest.append(line)  # not a fault line ("ID Token: x" is a field of its own)
            continue
        fault = re.match(_FAULT_LINE, line)
        if fault is None:  # a fault line of another shape: no id taken from it, and no verdict either
            raise AmpcliError(said("ampcli_fault_not_understood", text=line[:80]))  # said() makes it printable
        key = fault.group(1)
        faults[key] = ReportedFault(key, _severity(fault.group(2) or ""), printable(fault.group(3).strip()[:MAX_TEXT]))
        _check_count(faults)
    fields = _key_values(rest)
    if "status" not in fields:
        raise AmpcliError(said("ampcli_no_status"))
    severity = summary_severity(fields.get("faults", ""))
    listed = fields.get("fault ids", "").strip()
    if listed and listed.lower() not in ("none", "n/a", "-"):
        if not re.match(_FAULT_IDS, listed):
            raise AmpcliError(said("ampcli_fault_not_understood", text="Fault IDs: " + listed[:80]))
        for key in (part.strip() for part in listed.split(",")):
            faults.setdefault(key, ReportedFault(key, severity, ""))
            _check_count(faults)
    return ConnectorStatus(fields, faults)


def _check_count(faults: dict[str, ReportedFault]) -> None:
    if len(faults) > MAX_FAULTS:
        raise AmpcliError(said("ampcli_flood", count=MAX_FAULTS))


def summary_severity(summary: str) -> str:
    """The severity of ids listed without their own line: ``Faults:`` counts per severity
    (``1 Critical, 2 Major``); only when exactly one severity has a non-zero count is it known."""
    if not any(c.isdigit() for c in summary):
        return ""  # "None": nothing counted
    present = {_severity(name) for count, name in re.findall(_COUNT, summary) if int(count) > 0}
    return present.pop() if len(present) == 1 and "" not in present else ""


def _severity(word: str) -> str:
    """One of ``SEVERITIES``, or "" for any other word."""
    name = word.capitalize()
    return name if name in SEVERITIES else ""


def parse_about(text: str) -> str:
    """``ampcli about`` names the connector and its version (``AMP for Endpoints Connector 1.24.1``);
    a line that does not name the connector (an engine's version, say) is not its version."""
    for line in _lines(text):
        if "connector" in line.lower():
            match = re.search(_VERSION, line)
            if match:
                return match.group(1)
    return ""


def parse_policy(text: str) -> tuple[str, float | None]:
    """``ampcli policy``: the definition version and when the definitions were last updated."""
    fields = _key_values(_lines(text))
    updated = fields.get("definitions last updated", "")
    return fields.get("definition version", ""), parse_time(updated) if updated else None


def parse_time(text: str) -> float | None:
    """A time as ampcli may print it; None when no known format fits.

    A time without a zone is the local time of the machine running the check
    (the host's own zone is not known under ``--path.rootfs``)."""
    value = " ".join(text.split())
    if ascii_number(value, 12):
        return float(value)
    fields = _numeric_fields(value)
    if fields is not None:
        from datetime import datetime

        try:
            return _timestamp(datetime(*fields))
        except ValueError:  # no such date
            return None
    return _strptime_time(value)


def _numeric_fields(value: str) -> tuple[int, int, int, int, int, int] | None:
    """``2023-06-19 02:02:03 PM``, ``2023-06-19 14:02:03``, ``2023-06-19T14:02:03`` or ``2023-06-19``, every
    field zero-padded; None for any other shape.

    The shape seen in real output, read without ``strptime``, whose first call costs a plugin run
    some 3 ms (it learns the locale's month names); every other shape goes to ``_strptime_time``,
    which gives the same answer for these (``tests/test_ampcli.py`` holds the two equal).
    """
    if len(value) not in (10, 19, 22) or value[4] != "-" or value[7] != "-":
        return None
    parts = [value[0:4], value[5:7], value[8:10]]
    if len(value) > 10:
        separator = " " if len(value) == 22 else " T"
        if value[10] not in separator or value[13] != ":" or value[16] != ":":
            return None
        parts += [value[11:13], value[14:16], value[17:19]]
    if not all(ascii_number(part, len(part)) for part in parts):
        return None
    year, month, day, hour, minute, second = (int(part) for part in (*parts, "0", "0", "0")[:6])
    if len(value) == 22:  # %I:%M:%S %p
        meridiem = value[19:].upper()
        if meridiem not in (" AM", " PM") or not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if meridiem == " PM" else 0)
    return year, month, day, hour, minute, second


def _strptime_time(value: str) -> float | None:
    from datetime import datetime

    for fmt in _DATE_FORMATS:
        try:
            parsed = datetime.strptime(value, fmt)
        except ValueError:
            continue
        return _timestamp(parsed)
    return _iso_time(value)


# ISO 8601 with a fraction and a zone, read alike on every Python: datetime.fromisoformat takes far
# more shapes from 3.11 on (any fraction length, a comma, "Z") than on 3.9 and 3.10.
# Kept as text and compiled on first use (re caches it), like the patterns above: a plugin run rarely needs it.
_ISO = (r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9}))?"
        r" ?(?:(Z)|([+-])(\d\d):?(\d\d))?")


def _iso_time(value: str) -> float | None:
    from datetime import datetime, timedelta, timezone

    found = re.fullmatch(_ISO, value, re.ASCII)
    if found is None:
        return None
    year, month, day, hour, minute, second = (int(part) for part in found.group(1, 2, 3, 4, 5, 6))
    fraction = (found.group(7) or "0").ljust(6, "0")[:6]
    zone = None
    if found.group(8):
        zone = timezone.utc
    elif found.group(9):
        offset = timedelta(hours=int(found.group(10)), minutes=int(found.group(11)))
        if offset >= timedelta(hours=24):
            return None
        zone = timezone(-offset if found.group(9) == "-" else offset)
    try:
        parsed = datetime(year, month, day, hour, minute, second, int(fraction), tzinfo=zone)
    except ValueError:  # no such date or time
        return None
    return _timestamp(parsed)


def _timestamp(moment: datetime) -> float | None:
    """The Unix time of a naive (local) or aware datetime; None when the platform cannot give one (year 1
    in a zone east of UTC falls before year 1)."""
    try:
        return moment.timestamp()
    except (ValueError, OverflowError, OSError):
        return None


class Pending:
    """``ampcli status``, with ``policy`` (and ``about``) beside it, started and not yet collected.

    Started before the other collectors read the host, so the connector answers while they work.
    Its output waits in the pipes meanwhile (64 KiB each on Linux). A status report is a few KiB
    (at most 64 fault lines and 64 fields of 300 characters: some 40 KiB), so a real one is never
    held up; a larger output, which is no status report, can run into the timeout instead.
    """

    def __init__(self, status: Running, extra: dict[str, Running]) -> None:
        self.status = status
        self.extra = extra

    def finish(self, timeout: float) -> ConnectorStatus:
        """The status, each program bounded by ``timeout`` from its start; every program ends here.

        Raises ``AmpcliError`` (or an ``OSError``) for a hang, a failure or status output that is
        not a status report.
        """
        answers: dict[str, str] = {}
        try:
            status = parse_status(_output(self.status.result(timeout), "status"))
            for command, running in self.extra.items():
                answers[command] = _optional(running, command, timeout)
        finally:
            self.kill()
        version = parse_about(answers["about"]) if answers.get("about") else ""
        definition_version, updated = parse_policy(answers["policy"]) if answers.get("policy") else ("", None)
        return status._replace(about_version=version, definition_version=definition_version,
                               definitions_updated=updated)

    def kill(self) -> None:
        """End every program that has not been collected (killing one already collected costs nothing)."""
        for running in (self.status, *self.extra.values()):
            running.kill()


def start(host: Host, platform: Platform, about: bool = True) -> Pending | None:
    """Start ``ampcli status`` and ``policy``, and ``about`` when the version is wanted from it; None when
    ampcli is not there."""
    rel = AMPCLI_PATHS[platform]
    if not host.exists(rel):
        return None
    status = host.start(rel, ["status"])
    extra: dict[str, Running] = {}
    try:
        for command in ("about", "policy") if about else ("policy",):
            try:
                extra[command] = host.start(rel, [command])
            except OSError as error:
                log.debug("ampcli %s could not start: %s", command, error)
    except BaseException:
        Pending(status, extra).kill()
        raise
    return Pending(status, extra)


def read_saved(path: str, deadline: float | None = None) -> ConnectorStatus:
    """A saved ``ampcli status`` output (``--ampcli.status-file``, as a support bundle holds one), read like
    any file of a host: a regular file, bounded, not followed out of a FIFO or device."""
    data = Host("/", deadline).read_bytes(path, MAX_SAVED)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise AmpcliError(said("saved_status_not_utf8", path=path, offset=error.start)) from None
    return parse_status(text)


def _optional(running: Running, command: str, timeout: float) -> str:
    """The text of ``about``/``policy``, or "" when it failed: these only add facts."""
    try:
        return _output(running.result(timeout), command)
    except (OSError, AmpcliError) as error:
        log.debug("ampcli %s gave nothing: %s", command, error)
        return ""


def _output(result: CommandResult, command: str) -> str:
    if result.returncode != 0:
        detail = result.stderr.decode("utf-8", "replace").strip().splitlines()
        tail = f": {detail[-1][:200]}" if detail else ""
        raise AmpcliError(said("ampcli_exit", command=command, code=result.returncode, detail=tail))
    if result.truncated:
        raise AmpcliError(said("ampcli_too_long", command=command))
    try:
        return result.stdout.decode("utf-8")
    except UnicodeDecodeError as error:
        raise AmpcliError(said("ampcli_not_utf8", command=command, offset=error.start)) from None
