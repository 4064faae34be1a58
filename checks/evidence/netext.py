"""Network content filters from ``com.apple.networkextension.plist`` (an NSKeyedArchiver archive)."""

from __future__ import annotations

from typing import Any, NamedTuple

from ..host import Host
from ..messages import said
from . import Collector
from .macapp import load_plist

PLIST = "Library/Preferences/com.apple.networkextension.plist"
FIREWALL_GRADE = 1
MAX_OBJECTS = 100_000
MAX_HOPS = 16  # references followed to resolve one value; an archiver writes one, two for an NSMutableString


class ContentFilter(NamedTuple):
    application: str
    name: str
    enabled: bool
    grade: int


class NetextFacts(NamedTuple):
    filters: tuple[ContentFilter, ...]


def probe(host: Host) -> NetextFacts:
    try:
        data = host.read_bytes(PLIST, limit=16 << 20)
    except FileNotFoundError:
        return NetextFacts(())  # no network extension was ever configured
    return parse(data, host.display(PLIST))


def parse(data: bytes, where: str) -> NetextFacts:
    archive = load_plist(data, where)
    objects = archive.get("$objects")
    if not isinstance(objects, list):
        raise ValueError(said("not_keyed_archive", path=where))
    if len(objects) > MAX_OBJECTS:
        raise ValueError(said("archive_too_big", path=where, count=MAX_OBJECTS))
    unarchiver = _Objects(objects, where)
    found = []
    for item in objects:
        if not isinstance(item, dict) or unarchiver.class_name(item) != "NEConfiguration":
            continue
        content = unarchiver.get(item, "ContentFilter")
        if not isinstance(content, dict):
            continue
        provider = unarchiver.get(content, "Provider")
        grade = unarchiver.get(content, "FilterGrade")
        if grade is None and isinstance(provider, dict):
            grade = unarchiver.get(provider, "FilterGrade")
        found.append(ContentFilter(
            application=_text(unarchiver.get(item, "Application")),
            name=_text(unarchiver.get(item, "Name")),
            enabled=unarchiver.get(content, "Enabled") in (True, 1),
            grade=grade if isinstance(grade, int) and not isinstance(grade, bool) else FIREWALL_GRADE,
        ))
    return NetextFacts(tuple(found))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


class _Objects:
    """Dereferences the UIDs of an NSKeyedArchiver ``$objects`` table."""

    def __init__(self, objects: list[Any], where: str) -> None:
        self.objects = objects
        self.where = where

    def resolve(self, value: Any) -> Any:
        """The object a value names, through UIDs and an NSMutableString's ``NS.string``; a chain that comes
        back to an object it passed, or runs longer than an archiver writes, raises ``ValueError``."""
        import plistlib

        seen: set[int] = set()
        for _hop in range(MAX_HOPS):
            if isinstance(value, plistlib.UID):
                index = value.data
                if index in seen:
                    raise ValueError(said("archive_loop", path=self.where, index=index))
                seen.add(index)
                value = self.objects[index] if 0 <= index < len(self.objects) else None
            elif isinstance(value, dict) and "NS.string" in value:
                value = value["NS.string"]
            else:
                return None if value == "$null" else value
        raise ValueError(said("archive_chain", path=self.where, count=MAX_HOPS))

    def get(self, item: dict[str, Any], key: str) -> Any:
        return self.resolve(item.get(key))

    def class_name(self, item: dict[str, Any]) -> str:
        described = self.resolve(item.get("$class"))
        return str(described.get("$classname", "")) if isinstance(described, dict) else ""


COLLECTOR = Collector("network_extensions", lambda p: probe(p.host))
