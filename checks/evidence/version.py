"""The connector's identity: its version from ``global.xml``, its GUID from ``local.xml``.

global.xml is public knowledge (Linux ``/opt/cisco/amp/etc/global.xml``, macOS
``/opt/cisco/amp/global.xml``), the element that carries the version is not:
it is looked up by local name from a configurable list, and only a value that
looks like a connector version (three or four numbers) counts. When nothing
fits, the version comes from ``ampcli`` instead (see ``checks.collect``).

The GUID is what Cisco's cloud calls the computer's ``connector_guid``:
``/config/agent/uuid`` of local.xml (Cisco's integration workflows name the
path on both platforms). Only a value in the UUID form counts, lower-cased, so
that it joins the cloud's series; a local.xml that cannot be read leaves the
GUID unknown and the collector says why, while the version still serves.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from ..catalog import Platform
from ..host import DeadlineExceeded, Host
from . import Collector, ascii_number
from .policy import POLICY_PATHS, PolicyError, load_xml

GLOBAL_XML = {
    Platform.LINUX: "opt/cisco/amp/etc/global.xml",
    Platform.MACOS: "opt/cisco/amp/global.xml",
}
# local.xml sits in the connector's configuration folder: where its policy.xml may be, in that order.
LOCAL_XML = {platform: tuple(path.rsplit("/", 1)[0] + "/local.xml" for path in paths)
             for platform, paths in POLICY_PATHS.items()}
GUID_PATH = ("config", "agent", "uuid")
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
DEFAULT_ELEMENTS = ("version", "agent_version", "connector_version", "product_version")
VERSION_DIGITS = (6, 6, 6, 9)  # three or four numbers, at most this many digits each


class VersionFacts(NamedTuple):
    path: str | None  # global.xml as shown on the host; None when there is none
    version: str  # "" when the file names no version
    guid: str = ""  # "" when local.xml is missing, names none, or could not be read (see unread)
    unread: tuple[Exception, ...] = ()


def probe(host: Host, platform: Platform, elements: tuple[str, ...] = DEFAULT_ELEMENTS) -> VersionFacts:
    guid, unread = read_guid(host, platform)
    rel = GLOBAL_XML[platform]
    try:
        data = host.read_bytes(rel)
    except FileNotFoundError:
        return VersionFacts(None, "", guid, unread)
    return VersionFacts(host.display(rel), parse(data, host.display(rel), elements), guid, unread)


def read_guid(host: Host, platform: Platform) -> tuple[str, tuple[Exception, ...]]:
    """local.xml's GUID, or "" with the reason when the file is there but cannot be read or parsed."""
    for rel in LOCAL_XML[platform]:
        try:
            return guid_of(host.read_bytes(rel), host.display(rel)), ()
        except FileNotFoundError:
            continue
        except DeadlineExceeded:
            raise  # the collector's time is up: that is the collector's failure, not an unread GUID
        except (OSError, PolicyError) as error:
            return "", (error,)
    return "", ()


def guid_of(data: bytes, where: str) -> str:
    """The text at /config/agent/uuid, lower-cased, if it is a UUID; else ""."""
    element = load_xml(data, where)
    if element.name.lower() != GUID_PATH[0]:
        return ""
    for name in GUID_PATH[1:]:
        found = next((child for child in element.children if child.name.lower() == name), None)
        if found is None:
            return ""
        element = found
    value = (element.text or "").strip().lower()
    return value if GUID.fullmatch(value) else ""


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
