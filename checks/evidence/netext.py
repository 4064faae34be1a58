"""Network content filters from ``com.apple.networkextension.plist`` (an NSKeyedArchiver archive)."""

from __future__ import annotations

from typing import Any, NamedTuple

from checks.evidence.macapp import load_plist
from checks.host import Host

PLIST = "Library/Preferences/com.apple.networkextension.plist"
FIREWALL_GRADE = 1
MAX_OBJECTS = 100_000


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
    if not isinstance(objects, list) or len(objects) > MAX_OBJECTS:
        raise ValueError(f"{where} is not a keyed archive (no $objects list)")
    unarchiver = _Objects(objects)
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
            application=str(unarchiver.get(item, "Application") or ""),
            name=str(unarchiver.get(item, "Name") or ""),
            enabled=unarchiver.get(content, "Enabled") in (True, 1),
            grade=grade if isinstance(grade, int) and not isinstance(grade, bool) else FIREWALL_GRADE,
        ))
    return NetextFacts(tuple(found))


class _Objects:
    """Dereferences the UIDs of an NSKeyedArchiver ``$objects`` table."""

    def __init__(self, objects: list[Any]) -> None:
        self.objects = objects

    def resolve(self, value: Any) -> Any:
        import plistlib

        for _hop in range(8):  # a UID may point at another UID; never loop forever
            if not isinstance(value, plistlib.UID):
                break
            index = value.data
            value = self.objects[index] if 0 <= index < len(self.objects) else None
        if value == "$null":
            return None
        if isinstance(value, dict) and "NS.string" in value:
            return self.resolve(value["NS.string"])
        return value

    def get(self, item: dict[str, Any], key: str) -> Any:
        return self.resolve(item.get(key))

    def class_name(self, item: dict[str, Any]) -> str:
        described = self.resolve(item.get("$class"))
        return str(described.get("$classname", "")) if isinstance(described, dict) else ""
