"""The connector policy XML: which monitoring options the policy switches on.

The real file is an XML-Signature document: ``<Signature>`` (namespace
``http://www.w3.org/2000/09/xmldsig#``) holds ``SignedInfo``, ``SignatureValue``
and ``<Object>`` -> ``<config>``, and every element below inherits that default
namespace. Elements are matched by their local name whatever the namespace,
so an unsigned ``<config>`` document (or one in another namespace) reads too.
"""

from __future__ import annotations

import pyexpat  # the module xml.parsers.expat re-exports; importing it directly skips the xml package
from collections.abc import Iterator
from typing import NamedTuple

from ..catalog import Platform
from ..host import Host
from ..messages import expat_reason, said
from . import Collector

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


class Element:
    """An element of the connector's XML files: local name, attributes, children and leading text.

    Built from expat's events directly: ``xml.etree`` parses with the same expat but costs a
    plugin run some 2 ms more to import, for a tree of which these files need this much.
    """

    __slots__ = ("attrib", "children", "name", "text")

    def __init__(self, name: str, attrib: dict[str, str]) -> None:
        self.name = name.rpartition("}")[2]  # ``namespace}name`` -> ``name``: matched whatever the namespace
        self.attrib = attrib
        self.children: list[Element] = []
        self.text: str | None = None  # the text before the first child, as ElementTree's ``text``

    def iter(self) -> Iterator[Element]:
        """This element and all below it, in document order (without recursion: nesting may be deep)."""
        todo = [self]
        while todo:
            element = todo.pop()
            yield element
            todo.extend(reversed(element.children))


def load_xml(data: bytes, where: str) -> Element:
    """One of the connector's XML files; anything else (entities included) raises ``PolicyError``."""
    if b"<!ENTITY" in data:
        raise PolicyError(said("xml_entities", path=where))
    parser = pyexpat.ParserCreate(namespace_separator="}")
    parser.buffer_text = True
    open_elements: list[Element] = []
    roots: list[Element] = []

    def start(name: str, attrib: dict[str, str]) -> None:
        element = Element(name, attrib)
        (open_elements[-1].children if open_elements else roots).append(element)
        open_elements.append(element)

    def end(_name: str) -> None:
        open_elements.pop()

    def text(data: str) -> None:
        current = open_elements[-1] if open_elements else None
        if current is not None and not current.children:
            current.text = data if current.text is None else current.text + data

    def entity(*_declared: object) -> None:  # a declaration in any encoding, not only the bytes looked for
        raise PolicyError(said("xml_entities", path=where))

    def undefined(name: str, _is_parameter: bool) -> None:  # what a DOCTYPE with an external subset allows
        raise PolicyError(said("xml_undefined_entity", path=where, name=name))

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    parser.EntityDeclHandler = entity
    parser.SkippedEntityHandler = undefined
    try:
        parser.Parse(data, True)
    except pyexpat.ExpatError as error:
        raise PolicyError(said("xml_malformed", path=where, reason=expat_reason(error))) from None
    return roots[0]


def _config(root: Element) -> Element | None:
    """The ``<config>`` element: the root itself, or the one in the signature's ``<Object>``.

    When the signature references an Object by id (``Reference URI="#id"``), only that Object
    counts, so an unsigned Object put in front of the signed one is not read instead.
    """
    if root.name == "config":
        return root
    objects = [e for e in root.iter() if e.name == "Object"]
    signed = {r.attrib.get("URI", "")[1:] for r in root.iter()
              if r.name == "Reference" and r.attrib.get("URI", "").startswith("#")}
    chosen = [o for o in objects if o.attrib.get("Id") in signed] or objects
    for element in chosen:
        found = next((c for c in element.children if c.name == "config"), None)
        if found is not None:
            return found
    return None


def _text(parent: Element, path: tuple[str, ...]) -> str | None:
    """Text of the first element down ``path`` (local names), or None."""
    current = parent
    for step in path:
        child = next((c for c in current.children if c.name == step), None)
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


COLLECTOR = Collector("policy", lambda p: probe(p.host, p.platform))
