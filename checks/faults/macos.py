"""macOS-only faults: system extensions, Full Disk Access, kext, network filters (1-4, 10, 12-15, 17)."""

from __future__ import annotations

from ..collect import FIRST_SYSEXT_MACOS, Evidence, Unavailable
from ..evidence import sysext, version_tuple
from ..evidence.macapp import SERVICE_BUNDLE_ID
from ..evidence.netext import FIREWALL_GRADE
from ..evidence.sysext import DB
from ..evidence.tcc import TccFacts
from ..messages import Msg, foreign, msg
from . import DEVICE_FLOW, Detection, Verdict, active, clear, judges, not_applicable, policy_option

LEGACY_DAEMON = "/opt/cisco/amp/ampdaemon"  # the Full Disk Access client before connector 1.14
MAX_FILTERS_PER_GRADE = 4


def _macos_version(ev: Evidence) -> tuple[int, ...]:
    version = version_tuple(ev.system().os_version)
    if not version:
        no_version = foreign("no macOS version in SystemVersion.plist")
        raise Unavailable(msg("collector_failed", collector="system", error=no_version))
    return version


def _cisco_extensions(ev: Evidence) -> list[sysext.Extension]:
    return ev.system_extensions().cisco()


def _before_system_extensions(ev: Evidence) -> Verdict | None:
    """Not applicable where the connector uses kernel extensions, not system extensions (nor a content
    filter): connectors before 1.14 on any macOS, 1.14.1 and later on macOS 10.15 and older, 1.14.0 before
    macOS 10.15.5 (``Evidence.mac_uses_kexts``; Cisco's advisory 216089)."""
    if ev.legacy_mac_connector():
        return not_applicable(msg("legacy_connector", version=ev.connector_version() or "?"))
    _macos_version(ev)  # no version: unknown, not a guess
    if ev.mac_uses_kexts():
        return not_applicable(msg("macos_kext_connector", version=ev.system().os_version))
    return None


def _registered(ev: Evidence) -> tuple[Msg, ...]:
    """Evidence for a clear: each Cisco extension's state, or that nothing is registered at all."""
    if ev.system_extensions().db_path is None:
        return (msg("no_sysext_db", path=ev.host.display(DB)),)
    return tuple(msg("extension_state", **_named(e)) for e in _cisco_extensions(ev))


def _named(extension: sysext.Extension) -> dict[str, str]:
    return {"identifier": extension.identifier, "state": extension.state}


@judges("1")
def system_extension_not_approved(ev: Evidence) -> Verdict:
    """Fault 1: a Cisco system extension waits for the user's approval."""
    legacy = _before_system_extensions(ev)
    if legacy is not None:
        return legacy
    waiting = [e for e in _cisco_extensions(ev) if e.state == "activated_waiting_for_user"]
    if waiting:
        return active(*(msg("extension_state", **_named(e)) for e in waiting))
    return clear(*_registered(ev))


@judges("2")
def system_extension_version_mismatch(ev: Evidence) -> Verdict:
    """Fault 2: the enabled Cisco extension is not the version the installed Service app carries."""
    legacy = _before_system_extensions(ev)
    if legacy is not None:
        return legacy
    app = ev.connector_app()
    if not app.service_app or not (app.build_version or app.short_version):
        raise Unavailable(msg("no_service_app"))
    enabled = [e for e in _cisco_extensions(ev) if e.enabled]
    if not enabled:
        return clear(msg("no_enabled_extension"))
    wrong = []
    unversioned = []
    for extension in enabled:
        if extension.version and app.build_version:
            differs = extension.version != app.build_version
        elif extension.short_version and app.short_version:
            differs = extension.short_version != app.short_version
        else:
            unversioned.append(extension.identifier)  # nothing to compare: no proof it matches
            continue
        if differs:
            wrong.append(msg("extension_version", identifier=extension.identifier,
                             version=extension.version or extension.short_version,
                             app_version=app.build_version or app.short_version))
    if wrong:
        return active(*wrong)
    if unversioned:
        raise Unavailable(msg("extension_unversioned", identifier=unversioned))
    return clear(msg("extension_versions_match", version=app.build_version or app.short_version))


def _full_disk_access(ev: Evidence, client: str) -> Verdict:
    facts = ev.tcc()
    if facts.has_access(client):
        return clear(msg("fda_granted", client=client))
    _require_database(facts)
    return active(msg("fda_missing", client=client))


def _require_database(facts: TccFacts) -> None:
    """No grant was found: that proves a missing one only when TCC.db was read, not MDM's grants alone."""
    if facts.database_error:
        raise Unavailable(msg("collector_failed", collector="tcc", error=facts.database_error))


@judges("3")
def full_disk_access_missing(ev: Evidence) -> Verdict:
    """Fault 3: the Service (before connector 1.14: ampdaemon's path) lacks Full Disk Access.

    Full Disk Access exists from macOS 10.14 on."""
    if _macos_version(ev) < (10, 14):
        return not_applicable(msg("macos_newer_only", version="10.14"))
    return _full_disk_access(ev, LEGACY_DAEMON if ev.legacy_mac_connector() else SERVICE_BUNDLE_ID)


@judges("4")
def kernel_extension_not_loaded(ev: Evidence) -> Verdict:
    """Fault 4: the Cisco kext is not loaded, where the connector uses one (``Evidence.mac_uses_kexts``:
    before 1.14 on any macOS, later ones on macOS 10.15 and older but 1.14.0 from 10.15.5)."""
    if _macos_version(ev) >= FIRST_SYSEXT_MACOS and not ev.legacy_mac_connector():
        return not_applicable(msg("macos_older_only", version="10.15"))
    if not ev.mac_uses_kexts():
        return not_applicable(msg("connector_uses_sysext", version=ev.connector_version()))
    if ev.kernel_extensions().cisco_loaded:
        return clear(msg("kext_loaded"))
    return active(msg("kext_missing"))


@judges("10")
def reboot_required(ev: Evidence) -> Verdict:
    """Fault 10: a Cisco extension waits on a reboot and none of that identifier is enabled."""
    legacy = _before_system_extensions(ev)
    if legacy is not None:
        return legacy
    extensions = _cisco_extensions(ev)
    enabled = {e.identifier for e in extensions if e.enabled}
    waiting = [e for e in extensions if "reboot" in e.state and e.identifier not in enabled]
    if waiting:
        return active(*(msg("extension_state", **_named(e)) for e in waiting))
    return clear()


def _content_filter(ev: Evidence) -> tuple[Verdict | None, tuple[Msg, ...], bool]:
    """Faults 12 and 13 share this; the other filters decide which one it is.

    Returns a final verdict when the filter is fine or not needed; otherwise the
    evidence and whether four other firewall-grade filters crowd ours out.
    """
    legacy = _before_system_extensions(ev)
    if legacy is not None:
        return legacy, (), False
    if not policy_option(ev, DEVICE_FLOW):
        return not_applicable(msg("option_off", option=DEVICE_FLOW)), (), False
    filters = ev.network_extensions().filters
    ours = [f for f in filters if f.application == SERVICE_BUNDLE_ID]
    if any(f.enabled for f in ours):
        return clear(msg("filter_enabled")), (), False
    others = [f for f in filters if f.application != SERVICE_BUNDLE_ID and f.enabled and f.grade == FIREWALL_GRADE]
    evidence = (msg("filter_disabled") if ours else msg("filter_missing"),
                msg("other_filters", count=len(others), names=[f.name or f.application for f in others] or ["-"]))
    return None, evidence, len(others) >= MAX_FILTERS_PER_GRADE


@judges("12")
def network_filter_not_allowed(ev: Evidence) -> Verdict:
    """Fault 12: our filter is missing or off, and the firewall grade still has room."""
    final, evidence, crowded = _content_filter(ev)
    if final is not None:
        return final
    return clear(msg("see_fault", id="13")) if crowded else active(*evidence)


@judges("13")
def too_many_network_filters(ev: Evidence) -> Verdict:
    """Fault 13: our filter is missing or off because four other firewall-grade filters are enabled."""
    final, evidence, crowded = _content_filter(ev)
    if final is not None:
        return final
    return active(*evidence, causes=(msg("too_many_filters"),)) if crowded else clear(msg("see_fault", id="12"))


@judges("14", Detection.CONNECTOR)
def too_many_endpoint_security_extensions(ev: Evidence) -> Verdict:
    """Fault 14: only the connector can tell; the host shows how many ES extensions are enabled."""
    count = ev.system_extensions().endpoint_security_enabled
    ev.status()
    return clear(msg("es_extensions", count=count))


@judges("15")
def security_extension_full_disk_access_missing(ev: Evidence) -> Verdict:
    """Fault 15: on macOS 11 and later the security extension lacks Full Disk Access."""
    if _macos_version(ev) < (11,):
        return not_applicable(msg("macos_newer_only", version="11"))
    legacy = _before_system_extensions(ev)
    if legacy is not None:
        return legacy
    return _full_disk_access(ev, sysext.SECURITY_EXTENSION)


@judges("17")
def orbital_full_disk_access_missing(ev: Evidence) -> Verdict:
    """Fault 17: Orbital is installed and no Orbital client has Full Disk Access."""
    app = ev.connector_app()
    if app.orbital_installed is None:
        raise Unavailable(msg("collector_failed", collector="connector_app", error=app.orbital_error))
    if not app.orbital_installed:
        return not_applicable(msg("orbital_absent"))
    prefixes = ev.settings.orbital_clients  # Orbital's client ids are not public: a setting
    facts = ev.tcc()
    granted = sorted(c for c in facts.allowed if c.startswith(prefixes))
    if granted:
        return clear(msg("fda_granted", client=granted))
    _require_database(facts)
    return active(msg("fda_missing", client="Cisco Orbital (" + ", ".join(f"{p}*" for p in prefixes) + ")"))

