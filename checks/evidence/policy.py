"""The connector policy XML: which monitoring options the policy switches on."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import NamedTuple

from checks.catalog import Platform
from checks.host import Host

POLICY_PATHS = {
    Platform.LINUX: ("opt/cisco/amp/etc/policy.xml",),
    Platform.MACOS: (
        "Library/Application Support/Cisco/Secure Endpoint/policy.xml",
        "Library/Application Support/Cisco/AMP for Endpoints Connector/policy.xml",
    ),
}
FILE_MONITORING = ".//agent/driver/protmode/file"
DEVICE_FLOW = ".//agent/nfm/enable"


class PolicyError(ValueError):
    pass


class PolicyFacts(NamedTuple):
    path: str | None  # None: no policy file found
    file_monitoring: bool | None  # None: the policy does not say
    device_flow_correlation: bool | None
    name: str = ""


def probe(host: Host, platform: Platform) -> PolicyFacts:
    for rel in POLICY_PATHS[platform]:
        try:
            data = host.read_bytes(rel, limit=16 << 20)
        except FileNotFoundError:
            continue
        return parse(data, host.display(rel))
    return PolicyFacts(None, None, None)


def parse(data: bytes, path: str) -> PolicyFacts:
    """Read the two options; a document that is not XML raises ``PolicyError``."""
    if b"<!ENTITY" in data:
        raise PolicyError(f"{path} declares XML entities, which a connector policy never does")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as error:
        raise PolicyError(f"{path} is not well-formed XML ({error})") from None
    name = root.findtext(".//policy/name") or root.findtext(".//name") or ""
    return PolicyFacts(path, _flag(root, FILE_MONITORING), _flag(root, DEVICE_FLOW), name.strip())


def _flag(root: ET.Element, xpath: str) -> bool | None:
    element = root.find(xpath)
    if element is None or element.text is None:
        return None
    text = element.text.strip()
    if text not in ("0", "1"):
        return None
    return text == "1"
