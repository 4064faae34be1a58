"""What the connector says about itself: ``ampcli status``, run with a timeout and parsed by key."""

from __future__ import annotations

import re
from typing import NamedTuple

from checks.catalog import Platform
from checks.host import Host

AMPCLI_PATHS = {
    Platform.LINUX: "opt/cisco/amp/bin/ampcli",
    Platform.MACOS: "opt/cisco/amp/ampcli",
}

_FAULT_LINE = re.compile(r"^ID\s+(\d+)\s*(?:-\s*([A-Za-z]+))?\s*:?\s*(.*)$")
_KEY_LINE = re.compile(r"^([A-Za-z][A-Za-z0-9 _/-]{0,40}?)\s*:\s*(.*)$")


class AmpcliError(ValueError):
    """ampcli's answer could not be used."""


class ReportedFault(NamedTuple):
    id: str
    severity: str  # as the connector says it: Critical, Major, Minor, ... or ""
    text: str


class ConnectorStatus(NamedTuple):
    fields: dict[str, str]
    faults: dict[str, ReportedFault]

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
        return ""

    @property
    def policy(self) -> str:
        return self.fields.get("policy", "")


def parse_status(text: str) -> ConnectorStatus:
    """Parse ``ampcli status`` output tolerantly.

    Unknown keys are kept; fault ids come from ``Fault IDs`` and from
    ``ID n - Severity: text`` lines. Output that has no ``Status`` key at all
    is not a status report and raises ``AmpcliError``.
    """
    fields: dict[str, str] = {}
    faults: dict[str, ReportedFault] = {}
    listed: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        fault = _FAULT_LINE.match(line)
        if fault:
            fault_id, severity, rest = fault.group(1), fault.group(2) or "", fault.group(3).strip()
            faults[str(int(fault_id))] = ReportedFault(str(int(fault_id)), severity.capitalize(), rest)
            continue
        pair = _KEY_LINE.match(line)
        if not pair:
            continue
        key, value = pair.group(1).strip().lower(), pair.group(2).strip()
        fields.setdefault(key, value)
        if key == "fault ids":
            listed = re.findall(r"\d+", value)
    if "status" not in fields:
        raise AmpcliError("ampcli printed no 'Status:' line")
    severity = _summary_severity(fields.get("faults", ""))
    for fault_id in listed:
        key = str(int(fault_id))
        faults.setdefault(key, ReportedFault(key, severity, ""))
    return ConnectorStatus(fields, faults)


def _summary_severity(summary: str) -> str:
    match = re.search(r"\d+\s+([A-Za-z]+)", summary)
    return match.group(1).capitalize() if match else ""


def probe(host: Host, platform: Platform, timeout: float) -> ConnectorStatus | None:
    """Run ``ampcli status``; None when ampcli is not there at all.

    Raises ``AmpcliError`` (or an ``OSError``) for a hang, a failure or
    output that is not a status report.
    """
    rel = AMPCLI_PATHS[platform]
    if not host.exists(rel):
        return None
    result = host.run(rel, ["status"], timeout=timeout)
    if result.returncode != 0:
        detail = result.stderr.decode("utf-8", "replace").strip().splitlines()
        tail = f": {detail[-1][:200]}" if detail else ""
        raise AmpcliError(f"ampcli status exited with code {result.returncode}{tail}")
    if result.truncated:
        raise AmpcliError("ampcli status printed more than 1 MiB, which no status report does")
    try:
        text = result.stdout.decode("utf-8")
    except UnicodeDecodeError as error:
        raise AmpcliError(f"ampcli status printed bytes that are not UTF-8 (at offset {error.start})") from None
    return parse_status(text)
