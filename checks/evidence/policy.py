"""The connector policy XML: which monitoring options the policy switches on.

The real file is an XML-Signature document: ``<Signature>`` (namespace
``http://www.w3.org/2000/09/xmldsig#``) holds ``SignedInfo``, ``SignatureValue``
and ``<Object>`` -> ``<config>``, and every element below inherits that default
namespace. Elements are matched by their local name whatever the namespace,
so an unsigned ``<config>`` document (or one in another namespace) reads too.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import NamedTuple

from checks.catalog import Platform
from checks.host import Host

POLICY_PATHS = {
    Platform.LINUX: ("opt/cisco/amp/etc/policy.xml",),
    Platform.MACOS: (
        "Library/Application Support/Cisco/AMP for Endpoints Connector/policy.xml",
        "Library/Application Support/Cisco/Secure Endpoint/policy.xml",
    ),
}
# Paths below <config>, by local element name.
FILE_MONITORING = ("agent", "driver", "protmode", "file")
DEVICE_FLOW = ("agent", "nfm", "enable")
POLICY_NAME = ("janus", "policy", "name")
MAX_POLICY_BYTES = 16 << 20


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
            data = host.read_bytes(rel, limit=MAX_POLICY_BYTES)
        except FileNotFoundError:
            continue
        return parse(data, host.display(rel))
    return PolicyFacts(None, None, None)


def parse(data: bytes, path: str) -> PolicyFacts:
    """Read the two options and the policy name; a document that is not XML raises ``PolicyError``."""
    config = _config(load_xml(data, path))
    if config is None:
        return PolicyFacts(path, None, None, "")
    return PolicyFacts(path, _flag(_text(config, FILE_MONITORING)), _flag(_text(config, DEVICE_FLOW)),
                       (_text(config, POLICY_NAME) or "").strip())


def load_xml(data: bytes, where: str) -> ET.Element:
    """One of the connector's XML files; anything else (entities included) raises ``PolicyError``."""
    if b"<!ENTITY" in data:
        raise PolicyError(f"{where} declares XML entities, which the connector's files never do")
    try:
        return ET.fromstring(data)
    except ET.ParseError as error:
        raise PolicyError(f"{where} is not well-formed XML ({error})") from None


def local_name(tag: object) -> str:
    """``{namespace}name`` -> ``name``; comments and processing instructions have no name."""
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _config(root: ET.Element) -> ET.Element | None:
    """The ``<config>`` element: the root itself, or the one in the signature's ``<Object>``.

    When the signature references an Object by id (``Reference URI="#id"``), only that Object
    counts, so an unsigned Object put in front of the signed one is not read instead.
    """
    if local_name(root.tag) == "config":
        return root
    objects = [e for e in root.iter() if local_name(e.tag) == "Object"]
    signed = {r.get("URI", "")[1:] for r in root.iter()
              if local_name(r.tag) == "Reference" and r.get("URI", "").startswith("#")}
    chosen = [o for o in objects if o.get("Id") in signed] or objects
    for element in chosen:
        found = next((c for c in element if local_name(c.tag) == "config"), None)
        if found is not None:
            return found
    return None


def _text(parent: ET.Element, path: tuple[str, ...]) -> str | None:
    """Text of the first element down ``path`` (local names), or None."""
    current = parent
    for step in path:
        child = next((c for c in current if local_name(c.tag) == step), None)
        if child is None:
            return None
        current = child
    return current.text


def _flag(text: str | None) -> bool | None:
    if text is None:
        return None
    value = text.strip()
    if value not in ("0", "1"):
        return None
    return value == "1"
