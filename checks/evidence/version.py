"""The connector's version from its ``global.xml``.

The file is public knowledge (Linux ``/opt/cisco/amp/etc/global.xml``, macOS
``/opt/cisco/amp/global.xml``), the element that carries the version is not:
it is looked up by local name from a configurable list, and only a value that
looks like a connector version (three or four numbers) counts. When nothing
fits, the version comes from ``ampcli`` instead (see ``checks.collect``).
"""

from __future__ import annotations

from typing import NamedTuple

from ..catalog import Platform
from ..host import Host
from . import Collector, ascii_number
from .policy import load_xml

GLOBAL_XML = {
    Platform.LINUX: "opt/cisco/amp/etc/global.xml",
    Platform.MACOS: "opt/cisco/amp/global.xml",
}
DEFAULT_ELEMENTS = ("version", "agent_version", "connector_version", "product_version")
VERSION_DIGITS = (6, 6, 6, 9)  # three or four numbers, at most this many digits each


class VersionFacts(NamedTuple):
    path: str | None  # global.xml as shown on the host; None when there is none
    version: str  # "" when the file names no version


def probe(host: Host, platform: Platform, elements: tuple[str, ...] = DEFAULT_ELEMENTS) -> VersionFacts:
    rel = GLOBAL_XML[platform]
    try:
        data = host.read_bytes(rel)
    except FileNotFoundError:
        return VersionFacts(None, "")
    return VersionFacts(host.display(rel), parse(data, host.display(rel), elements))


def parse(data: bytes, where: str, elements: tuple[str, ...] = DEFAULT_ELEMENTS) -> str:
    """The first element named in ``elements`` (in that order of preference) whose text is a version."""
    root = load_xml(data, where)
    wanted = [name.lower() for name in elements]
    found: dict[str, str] = {}
    for element in root.iter():
        name = element.name.lower()
        if name in wanted and name not in found:
            value = connector_version(element.text or "")
            if value:
                found[name] = value
    return next((found[name] for name in wanted if name in found), "")


def connector_version(text: str) -> str:
    """``1.24.1`` or ``1.24.1.1234`` (a ``v`` in front allowed), or "" when ``text`` is not a version."""
    value = text.strip()
    parts = (value[1:] if value.startswith("v") else value).split(".")
    if len(parts) in (3, 4) and all(ascii_number(part, digits) for part, digits in zip(parts, VERSION_DIGITS)):
        return ".".join(parts)
    return ""


COLLECTOR = Collector("connector_version", lambda p: probe(p.host, p.platform, p.settings.version_elements))
