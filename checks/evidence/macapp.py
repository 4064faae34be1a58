"""The connector's app on macOS: where it is and which version its Info.plist names.

From connector 1.14 on, a Service app carries the system extensions; before
that a Connector app sat beside a kernel extension and no Service app existed.
"""

from __future__ import annotations

from typing import NamedTuple

from ..host import Host
from ..messages import os_reason, printable, said
from . import Collector

SERVICE_APPS = (
    "Applications/Cisco Secure Endpoint/Secure Endpoint Service.app",
    "Applications/Cisco AMP for Endpoints/AMP for Endpoints Service.app",
)
# The Connector app: the only app of connectors before 1.14; later ones keep it beside the Service app,
# which is looked for first.
LEGACY_APPS = (
    "Applications/Cisco AMP for Endpoints/AMP for Endpoints Connector.app",
    "Applications/Cisco AMP/AMP for Endpoints Connector.app",
)
SERVICE_BUNDLE_ID = "com.cisco.endpoint.svc"
FIRST_SYSEXT_VERSION = (1, 14)
ORBITAL_DIR = "opt/cisco/orbital"


class AppFacts(NamedTuple):
    path: str | None  # as shown on the host; None when no connector app is installed
    short_version: str  # CFBundleShortVersionString, e.g. 1.24.1
    build_version: str  # CFBundleVersion
    orbital_installed: bool | None  # None: /opt/cisco could not be looked into (see orbital_error)
    legacy: bool = False  # a Connector app and no Service app: what a connector before 1.14 has
    orbital_error: str = ""

    @property
    def service_app(self) -> bool:
        return self.path is not None and not self.legacy


def probe(host: Host) -> AppFacts:
    orbital: bool | None = None
    orbital_error = ""
    try:
        orbital = host.is_dir(ORBITAL_DIR)
    except OSError as error:  # a 0700 /opt/cisco hides Orbital from a non-root run: unknown, not absent
        orbital_error = said("path_error", path=host.display(ORBITAL_DIR), reason=os_reason(error))
    for app in (*SERVICE_APPS, *LEGACY_APPS):
        rel = f"{app}/Contents/Info.plist"
        try:
            data = host.read_bytes(rel)
        except FileNotFoundError:
            continue
        info = load_plist(data, host.display(rel))
        return AppFacts(host.display(app), printable(str(info.get("CFBundleShortVersionString", ""))),
                        printable(str(info.get("CFBundleVersion", ""))), orbital, app in LEGACY_APPS, orbital_error)
    return AppFacts(None, "", "", orbital, orbital_error=orbital_error)


def load_plist(data: bytes, where: str) -> dict[str, object]:
    """A plist (XML or binary) whose top level is a dictionary, within the bounds of ``checks.plist``;
    anything else raises ``ValueError``."""
    from .. import plist  # Linux hosts never need it (nor plistlib): kept off the plugin's start-up

    return plist.load_dict(data, where)


COLLECTOR = Collector("connector_app", lambda p: probe(p.host))
