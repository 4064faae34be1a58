"""The fault tables of docs/faults.md, written from the catalogue between the page's markers, so the page
cannot drift from the faults the checks know (a test fails when a table is stale)."""

from __future__ import annotations

import re

from ...checks import catalog
from ...checks.catalog import Fault, Platform

# <!-- generated: linux --> ... <!-- end generated -->: what lies between is this module's.
MARKED = re.compile(r"(<!-- generated: (\w+) -->\n).*?(<!-- end generated -->)", re.S)
HEAD = "| {0} | check | default | detected from the host when |\n|---|---|---|---|\n"


def _row(fault: Fault, detected: str, shown_id: str) -> str:
    cells = (shown_id, fault.title.en, fault.severity.value.upper(), detected)
    if any("|" in cell or "\n" in cell for cell in cells):
        raise ValueError(f"fault {fault.id}: a table cell may hold no '|' and no line break")
    return "| " + " | ".join(cells) + " |\n"


def table(kind: str) -> str:
    """One table: ``linux`` or ``macos`` (Cisco's faults of that platform) or ``beyond`` (this project's)."""
    if kind == "beyond":
        ours = [f for f in catalog.FAULTS if not f.documented] + list(catalog.HEALTH_CHECKS)
        return HEAD.format("name") + "".join(_row(f, f.detected, f"`{f.id}`") for f in ours)
    platform = Platform(kind)
    rows = [_row(f, (f.detected_macos or f.detected) if platform is Platform.MACOS else f.detected, f.id)
            for f in sorted(catalog.faults_for(platform), key=catalog.fault_order) if f.documented]
    return HEAD.format("id") + "".join(rows)


def fill(text: str) -> str:
    """``text`` with every marked table written anew."""
    return MARKED.sub(lambda m: m.group(1) + table(m.group(2)) + m.group(3), text)
