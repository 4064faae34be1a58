"""System extensions from ``Library/SystemExtensions/db.plist`` (binary or XML)."""

from __future__ import annotations

from typing import NamedTuple

from ..host import Host
from ..messages import said
from . import Collector
from .macapp import load_plist

DB = "Library/SystemExtensions/db.plist"
CISCO_TEAM = "DE8Y96K9QP"
SECURITY_EXTENSION = "com.cisco.endpoint.svc.securityextension"
NETWORK_EXTENSION = "com.cisco.endpoint.svc.networkextension"
ENDPOINT_SECURITY_CATEGORY = "com.apple.system_extension.endpoint_security"
ENABLED = "activated_enabled"


class Extension(NamedTuple):
    identifier: str
    team: str
    state: str
    categories: tuple[str, ...]
    version: str  # bundleVersion (CFBundleVersion)
    short_version: str  # bundleShortVersion

    @property
    def cisco(self) -> bool:
        return self.team == CISCO_TEAM

    @property
    def enabled(self) -> bool:
        return self.state == ENABLED


class SysextFacts(NamedTuple):
    extensions: tuple[Extension, ...]
    db_path: str | None = None  # as shown on the host; None when db.plist does not exist (nothing registered)

    def cisco(self) -> list[Extension]:
        return [e for e in self.extensions if e.cisco]

    @property
    def endpoint_security_enabled(self) -> int:
        return sum(1 for e in self.extensions if e.enabled and ENDPOINT_SECURITY_CATEGORY in e.categories)


def probe(host: Host) -> SysextFacts:
    """macOS writes db.plist when the first system extension registers: no file, no extension."""
    try:
        data = host.read_bytes(DB, limit=16 << 20)
    except FileNotFoundError:
        return SysextFacts(())
    return parse(data, host.display(DB))


def parse(data: bytes, where: str) -> SysextFacts:
    db = load_plist(data, where)
    items = db.get("extensions", [])
    if not isinstance(items, list):
        raise ValueError(said("extensions_not_list", path=where))
    found = []
    for item in items:
        if not isinstance(item, dict):
            continue
        bundle = item.get("bundleVersion")
        versions = bundle if isinstance(bundle, dict) else {}
        categories = item.get("categories") or []
        found.append(Extension(
            identifier=str(item.get("identifier", "")),
            team=str(item.get("teamID", "")),
            state=str(item.get("state", "")),
            categories=tuple(str(c) for c in categories) if isinstance(categories, list) else (),
            version=str(versions.get("CFBundleVersion", bundle if isinstance(bundle, str) else "")),
            short_version=str(versions.get("CFBundleShortVersionString", "")),
        ))
    return SysextFacts(tuple(found), where)


COLLECTOR = Collector("system_extensions", lambda p: probe(p.host))
