"""Builds macOS host trees: binary plists, TCC.db in both schemas, MDM overrides, a keyed archive."""

from __future__ import annotations

import plistlib
import sqlite3
from pathlib import Path
from typing import Any

from tests.hosttree import LOG_NOISE, Tree, policy_document

TEAM = "DE8Y96K9QP"
SECURITY = "com.cisco.endpoint.svc.securityextension"
NETWORK = "com.cisco.endpoint.svc.networkextension"
SERVICE = "com.cisco.endpoint.svc"
ES_CATEGORY = "com.apple.system_extension.endpoint_security"
NE_CATEGORY = "com.apple.system_extension.network_extension"
APP = "Applications/Cisco Secure Endpoint/Secure Endpoint Service.app"
AMP_SERVICE_APP = "Applications/Cisco AMP for Endpoints/AMP for Endpoints Service.app"
# Connectors before 1.14: a Connector app, a kernel extension, no Service app and no system extensions.
CONNECTOR_APP = "Applications/Cisco AMP for Endpoints/AMP for Endpoints Connector.app"
TCC = "Library/Application Support/com.apple.TCC"
MAC_STATUS = LOG_NOISE + (
    "Status: Connected\nMode: Normal\nScan: Ready for scan\nLast Scan: 2024-05-02 09:12:44 AM\n"
    "Policy: Protect Policy for Mac (#7)\nCommand-line: Enabled\nOrbital: Disabled\n"
    "Behavioural Protection: Protect\nFaults: None\n"
)


def extension(identifier: str, state: str = "activated_enabled", version: str = "1.24.1.1234",
              team: str = TEAM, categories: tuple[str, ...] | None = None) -> dict[str, Any]:
    """One entry of db.plist's ``extensions`` list."""
    if categories is None:
        categories = (ES_CATEGORY,) if identifier.endswith("securityextension") else (NE_CATEGORY,)
    return {
        "identifier": identifier, "teamID": team, "state": state, "categories": list(categories),
        "bundleVersion": {"CFBundleVersion": version, "CFBundleShortVersionString": version.rsplit(".", 1)[0]},
        "uniqueID": f"{identifier}-{state}-{version}",
    }


def keyed_archive(filters: list[tuple[str, str, bool, int]]) -> bytes:
    """A com.apple.networkextension.plist: NSKeyedArchiver with one NEConfiguration per (app, name, on, grade)."""
    objects: list[Any] = ["$null"]

    def add(value: Any) -> plistlib.UID:
        objects.append(value)
        return plistlib.UID(len(objects) - 1)

    config_class = add({"$classname": "NEConfiguration", "$classes": ["NEConfiguration", "NSObject"]})
    filter_class = add({"$classname": "NEContentFilter", "$classes": ["NEContentFilter", "NSObject"]})
    provider_class = add({"$classname": "NEFilterProviderConfiguration", "$classes": ["NSObject"]})
    configs = []
    for application, name, enabled, grade in filters:
        provider = add({"$class": provider_class, "FilterGrade": grade, "FilterSockets": True})
        content = add({"$class": filter_class, "Enabled": enabled, "Provider": provider})
        configs.append(add({"$class": config_class, "Application": add(application), "Name": add(name),
                            "ContentFilter": content, "VPN": plistlib.UID(0)}))
    root = add({"ConfigurationsByIdentifier": configs, "Version": 1})
    archive = {"$archiver": "NSKeyedArchiver", "$version": 100000, "$top": {"Root": root}, "$objects": objects}
    return plistlib.dumps(archive, fmt=plistlib.FMT_BINARY)


class MacTree(Tree):
    AMPCLI = "opt/cisco/amp/ampcli"
    POLICY = "Library/Application Support/Cisco/AMP for Endpoints Connector/policy.xml"
    GLOBAL = "opt/cisco/amp/global.xml"
    LOCAL = "Library/Application Support/Cisco/AMP for Endpoints Connector/local.xml"
    DEFINITIONS = "Library/Application Support/Cisco/AMP for Endpoints Connector/clamav"

    def __init__(self, root: Path, version: str = "14.4") -> None:
        super().__init__(root)
        self.write("System/Library/CoreServices/SystemVersion.plist", plistlib.dumps(
            {"ProductName": "macOS", "ProductVersion": version, "ProductBuildVersion": "23E214"}))
        self.write("var/db/dslocal/nodes/Default/users/root.plist", plistlib.dumps({"name": ["root"]}))

    def plist(self, rel: str, value: Any, binary: bool = True) -> None:
        self.write(rel, plistlib.dumps(value, fmt=plistlib.FMT_BINARY if binary else plistlib.FMT_XML))

    def install_connector(self, version: str = "1.24.1", build: str = "1.24.1.1234", amp_app: bool = False) -> None:
        """A connector of 1.14 or later: ampdaemon, the Service app (AMP-era name with ``amp_app``),
        and global.xml naming the version."""
        self.write("opt/cisco/amp/ampdaemon", "#!/bin/sh\n", mode=0o755)
        app = AMP_SERVICE_APP if amp_app else APP
        self.plist(f"{app}/Contents/Info.plist", {"CFBundleIdentifier": SERVICE,
                                                  "CFBundleShortVersionString": version, "CFBundleVersion": build})
        self.global_config(build)

    def install_legacy_connector(self, version: str = "1.12.7", build: str = "1.12.7.811") -> None:
        """A connector before 1.14: ampdaemon and the Connector app, nothing else of the later layout."""
        self.write("opt/cisco/amp/ampdaemon", "#!/bin/sh\n", mode=0o755)
        self.plist(f"{CONNECTOR_APP}/Contents/Info.plist", {
            "CFBundleIdentifier": "com.cisco.amp.connector", "CFBundleShortVersionString": version,
            "CFBundleVersion": build})
        self.global_config(build)

    def policy(self, file_monitoring: bool | None = True, device_flow: bool | None = True,
               signed: bool = True) -> None:
        self.write(self.POLICY, policy_document(file_monitoring, device_flow, "Protect Policy for Mac", signed))

    def scan_account(self, user: bool = True, group: bool = True) -> None:
        for kind, wanted in (("users", user), ("groups", group)):
            rel = f"var/db/dslocal/nodes/Default/{kind}/cisco-amp-scan-svc.plist"
            if wanted:
                self.plist(rel, {"name": ["cisco-amp-scan-svc"]})
            else:
                self.remove(rel)

    def extensions(self, *items: dict[str, Any], binary: bool = True) -> None:
        self.plist("Library/SystemExtensions/db.plist", {"extensions": list(items), "version": 1}, binary)

    def tcc(self, grants: dict[str, bool], schema: str = "modern") -> None:
        """TCC.db with Full Disk Access rows: modern (auth_value) or older (allowed) schema."""
        path = self.root / TCC / "TCC.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        with sqlite3.connect(path) as db:
            if schema == "modern":
                db.execute("CREATE TABLE access (service TEXT, client TEXT, client_type INTEGER, auth_value INTEGER,"
                           " auth_reason INTEGER, auth_version INTEGER, csreq BLOB, last_modified INTEGER)")
                rows = [("kTCCServiceSystemPolicyAllFiles", c, 1 if c.startswith("/") else 0, 2 if ok else 0, 4, 1,
                         None, 0) for c, ok in grants.items()]
                rows.append(("kTCCServiceCamera", SERVICE, 0, 2, 4, 1, None, 0))
                db.executemany("INSERT INTO access VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
            else:
                db.execute("CREATE TABLE access (service TEXT, client TEXT, client_type INTEGER, allowed INTEGER,"
                           " prompt_count INTEGER, csreq BLOB)")
                old_rows = [("kTCCServiceSystemPolicyAllFiles", c, 0, int(ok), 1, None) for c, ok in grants.items()]
                db.executemany("INSERT INTO access VALUES (?, ?, ?, ?, ?, ?)", old_rows)
        db.close()

    def mdm(self, *clients: str) -> None:
        self.plist(f"{TCC}/MDMOverrides.plist", {
            client: {"kTCCServiceSystemPolicyAllFiles": {"Allowed": True, "IdentifierType": "bundleID"}}
            for client in clients})

    def content_filters(self, *filters: tuple[str, str, bool, int]) -> None:
        self.write("Library/Preferences/com.apple.networkextension.plist", keyed_archive(list(filters)))

    def orbital(self) -> None:
        (self.root / "opt/cisco/orbital").mkdir(parents=True, exist_ok=True)

    def healthy_legacy(self) -> MacTree:
        """A healthy Mac with a connector before 1.14: Full Disk Access for ampdaemon's path, no db.plist."""
        self.install_legacy_connector()
        self.scan_account()
        self.ampcli(MAC_STATUS)
        self.policy()
        self.tcc({"/opt/cisco/amp/ampdaemon": True})
        self.definitions("main.cvd")
        self.definitions("daily.cvd")
        return self

    def healthy(self) -> MacTree:
        self.install_connector()
        self.local_config()
        self.scan_account()
        self.ampcli(MAC_STATUS)
        self.policy()
        self.extensions(extension(SECURITY), extension(NETWORK))
        self.tcc({SERVICE: True, SECURITY: True})
        self.content_filters((SERVICE, "Cisco Secure Endpoint", True, 1))
        self.definitions("main.cvd")
        self.definitions("daily.cvd")
        return self
