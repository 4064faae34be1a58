"""Texts built while evaluating (evidence, causes, reasons), in English and Dutch.

Verdicts carry a ``Msg`` (a template key and its values) rather than a
string, so each renderer picks the language at the last moment.
"""

from __future__ import annotations

import re
from typing import Any

from checks.records import Record

TEMPLATES: dict[str, tuple[str, str]] = {
    # reasons a check could not judge or does not apply
    "collector_failed": ("could not read {collector} evidence: {error}",
                         "kon gegevens voor {collector} niet lezen: {error}"),
    "not_installed": ("the connector is not installed", "de connector is niet geïnstalleerd"),
    "option_off": ("the policy has {option} switched off", "het beleid heeft {option} uitgeschakeld"),
    "options_off": ("the policy has neither file monitoring nor Device Flow Correlation on",
                    "het beleid heeft bestandsbewaking noch Device Flow Correlation aan"),
    "no_policy": ("no connector policy found at {path}", "geen connectorbeleid gevonden in {path}"),
    "option_unset": ("the policy does not say whether {option} is on",
                     "het beleid zegt niet of {option} aan staat"),
    "daemon_down_na": ("ampdaemon is not running, so it has nothing to start (see daemon_not_running)",
                       "ampdaemon draait niet en kan dus niets starten (zie daemon_not_running)"),
    "connector_unavailable": ("the host shows no sign of it, but the connector's own status is "
                              "unavailable: {error}",
                              "de host toont geen teken ervan, maar de eigen status van de connector is "
                              "niet beschikbaar: {error}"),
    "collector_disabled": ("the {collector} collector is disabled", "de collector {collector} staat uit"),
    # evidence and causes
    "reported": ("the connector reports it ({text})", "de connector meldt het ({text})"),
    "user_missing": ("user {name} does not exist", "gebruiker {name} bestaat niet"),
    "group_missing": ("group {name} does not exist", "groep {name} bestaat niet"),
    "usergroups_enab": ("USERGROUPS_ENAB is 'no' in /etc/login.defs, which blocks creating the user's group",
                        "USERGROUPS_ENAB staat op 'no' in /etc/login.defs, wat het aanmaken van de groep blokkeert"),
    "dir_mode": ("{path} has mode {mode} ({problem}); it should be 0755",
                 "{path} heeft modus {mode} ({problem}); dat hoort 0755 te zijn"),
    "mode_not_readable": ("not readable and searchable for group and others",
                          "niet leesbaar en doorzoekbaar voor groep en anderen"),
    "mode_writable": ("writable by group or others", "schrijfbaar voor groep of anderen"),
    "scan_restarts": ("{count} scan service processes started within {minutes} minutes",
                      "{count} scanserviceprocessen gestart binnen {minutes} minuten"),
    "processes_running": ("running: {names}", "draait: {names}"),
    "process_missing": ("{name} is not running", "{name} draait niet"),
    "cvd_corrupt": ("definition file {path} fails its integrity check: {problem}",
                    "definitiebestand {path} komt niet door de integriteitscontrole: {problem}"),
    "cvd_md5": ("the MD5 of its body does not match its header", "de MD5 van de inhoud klopt niet met de kop"),
    "cvd_header_only": ("it holds a header and nothing else", "het bevat alleen een kop"),
    "low_memory": ("only {available} MiB of memory is available (minimum {minimum} MiB)",
                   "er is maar {available} MiB geheugen beschikbaar (minimum {minimum} MiB)"),
    "modules_loaded": ("kernel modules loaded: {names}", "geladen kernelmodules: {names}"),
    "no_modules": ("none of the kernel modules {names} is loaded", "geen van de kernelmodules {names} is geladen"),
    "bpf_held": ("{names} holds {count} eBPF programs", "{names} houdt {count} eBPF-programma's vast"),
    "no_bpf": ("{names} holds no eBPF program", "{names} houdt geen eBPF-programma vast"),
    "secure_boot": ("UEFI Secure Boot is on, which blocks the connector's unsigned kernel modules",
                    "UEFI Secure Boot staat aan en blokkeert de niet-ondertekende kernelmodules van de connector"),
    "headers_missing_cause": ("the kernel headers for {release} are missing (fault 11)",
                              "de kernelheaders voor {release} ontbreken (fout 11)"),
    "kernel_release": ("running kernel {release}", "draaiende kernel {release}"),
    "headers_missing": ("{path} does not lead to a directory", "{path} leidt niet naar een map"),
    "headers_present": ("kernel headers found at {path}", "kernelheaders gevonden in {path}"),
    "install_package": ("install the package {package} and restart the connector (systemctl restart cisco-amp)",
                        "installeer het pakket {package} en herstart de connector (systemctl restart cisco-amp)"),
    "selinux_permissive": ("SELinux is not enforcing", "SELinux dwingt niet af"),
    "selinux_module_missing": ("SELinux ({type}) is enforcing and module {module} is not installed",
                               "SELinux ({type}) dwingt af en module {module} is niet geïnstalleerd"),
    "selinux_module_disabled": ("SELinux ({type}) is enforcing and module {module} is disabled",
                                "SELinux ({type}) dwingt af en module {module} staat uit"),
    "selinux_module_present": ("module installed in {path}", "module geïnstalleerd in {path}"),
    "status": ("connector status: {status}", "connectorstatus: {status}"),
    "mode_degraded": ("the connector runs in mode {mode}", "de connector draait in modus {mode}"),
    "ampcli_missing": ("ampcli not found at {path}", "ampcli niet gevonden in {path}"),
    "definitions_age": ("newest definitions were built {days} days ago (limit {limit} days)",
                        "nieuwste definities zijn {days} dagen geleden gebouwd (grens {limit} dagen)"),
    "definitions_future": ("{path} claims to be built {days} days from now; that date is ignored",
                           "{path} zegt over {days} dagen gebouwd te zijn; die datum telt niet"),
    "no_definitions": ("no definition files found", "geen definitiebestanden gevonden"),
    "installed_at": ("connector found at {path}", "connector gevonden in {path}"),
    # macOS
    "extension_state": ("system extension {identifier} is {state}", "systeemextensie {identifier} is {state}"),
    "no_service_app": ("the connector's Service app (with its Info.plist) was not found",
                       "de Service-app van de connector (met Info.plist) is niet gevonden"),
    "no_enabled_extension": ("no Cisco system extension is enabled", "geen Cisco-systeemextensie staat aan"),
    "extension_unversioned": ("db.plist names no version for the enabled extension {identifier}, so it cannot be "
                              "compared with the Service app",
                              "db.plist noemt geen versie voor de ingeschakelde extensie {identifier}, dus die is "
                              "niet met de Service-app te vergelijken"),
    "extension_version": ("{identifier} runs version {version} but the Service app is {app_version}",
                          "{identifier} draait versie {version} maar de Service-app is {app_version}"),
    "extension_versions_match": ("the enabled extensions match the Service app ({version})",
                                 "de actieve extensies passen bij de Service-app ({version})"),
    "fda_granted": ("Full Disk Access granted to {client}", "volledige schijftoegang gegeven aan {client}"),
    "fda_missing": ("{client} has no Full Disk Access", "{client} heeft geen volledige schijftoegang"),
    "macos_older_only": ("applies only to macOS {version} and older", "geldt alleen voor macOS {version} en ouder"),
    "macos_newer_only": ("applies only to macOS {version} and later", "geldt alleen voor macOS {version} en nieuwer"),
    "kext_loaded": ("kernel extension com.cisco.amp.fileop is loaded",
                    "kernelextensie com.cisco.amp.fileop is geladen"),
    "kext_missing": ("kernel extension com.cisco.amp.fileop is not loaded",
                     "kernelextensie com.cisco.amp.fileop is niet geladen"),
    "filter_enabled": ("the connector's content filter is enabled", "het inhoudfilter van de connector staat aan"),
    "filter_missing": ("the connector has no content filter configured",
                       "de connector heeft geen inhoudfilter ingesteld"),
    "filter_disabled": ("the connector's content filter is not enabled",
                        "het inhoudfilter van de connector staat niet aan"),
    "other_filters": ("{count} other firewall-grade content filters are enabled ({names})",
                      "{count} andere inhoudfilters van firewallniveau staan aan ({names})"),
    "too_many_filters": ("macOS allows 4 content filters per grade", "macOS staat 4 inhoudfilters per niveau toe"),
    "see_fault": ("the cause decides: see fault {id}", "de oorzaak beslist: zie fout {id}"),
    "es_extensions": ("{count} Endpoint Security extensions are enabled",
                      "{count} Endpoint Security-extensies staan aan"),
    "orbital_absent": ("Cisco Orbital is not installed", "Cisco Orbital is niet geïnstalleerd"),
    "version_unknown": ("neither global.xml, ampcli nor the connector app says which connector version this is",
                        "global.xml, ampcli noch de connector-app zegt welke connectorversie dit is"),
    "legacy_connector": ("connector {version} predates 1.14 and uses kernel extensions, not system extensions",
                         "connector {version} is ouder dan 1.14 en gebruikt kernelextensies, geen systeemextensies"),
    "no_sysext_db": ("no system extension is registered ({path} does not exist)",
                     "er is geen systeemextensie geregistreerd ({path} bestaat niet)"),
    "definitions_updated": ("definitions were last updated {days} days ago, says ampcli policy (limit {limit} days)",
                            "definities zijn {days} dagen geleden bijgewerkt, volgens ampcli policy "
                            "(grens {limit} dagen)"),
    # the plugin's own words
    "summary_ok": ("no active faults ({checked} checked){extra}",
                   "geen actieve fouten ({checked} gecontroleerd){extra}"),
    "summary_connected": (", connector connected", ", connector verbonden"),
    "fault_label": ("{title} (fault {id})", "{title} (fout {id})"),
    "state_unknown": ("{label}: state unknown", "{label}: toestand onbekend"),
    "and_more": ("and {count} more", "en nog {count}"),
    "line": ("{state}: {label}", "{state}: {label}"),
    "line_evidence": ("Seen: {items}", "Gezien: {items}"),
    "line_cause": ("Cause: {items}", "Oorzaak: {items}"),
    "line_fix": ("Fix: {text}", "Oplossing: {text}"),
    "line_reason": ("Why unknown: {text}", "Waarom onbekend: {text}"),
    "line_na": ("not applicable: {text}", "niet van toepassing: {text}"),
    "line_clear": ("clear", "in orde"),
}


class Msg(Record):
    key: str
    params: dict[str, Any]

    def render(self, lang: str = "en") -> str:
        en, nl = TEMPLATES[self.key]
        template = nl if lang == "nl" else en
        values = {k: _show(v, lang) for k, v in self.params.items()}
        return template.format(**values)

    def __str__(self) -> str:
        return self.render("en")


def msg(key: str, **params: Any) -> Msg:
    if key not in TEMPLATES:
        raise KeyError(f"no message template {key!r}")
    return Msg(key, params)


def _show(value: Any, lang: str) -> str:
    if isinstance(value, Msg):
        return value.render(lang)
    if isinstance(value, (list, tuple)):
        # Sentences (messages) read better apart; names sit in a comma list.
        separator = "; " if any(isinstance(v, Msg) for v in value) else ", "
        return separator.join(_show(v, lang) for v in value)
    return printable(str(value))


# Control characters (a newline would forge an output line), "|" (Nagios's perfdata separator) and
# lone surrogates (a file name byte that is not UTF-8: it cannot be written as UTF-8 at all).
_UNPRINTABLE = "[\x00-\x1f\x7f-\x9f|\ud800-\udfff]"


def printable(text: str) -> str:
    """Text that came from the host, safe in a plugin line, a label or JSON: odd characters as escapes."""
    if text.isprintable() and "|" not in text:
        return text  # nearly always: the pattern is compiled only for a text that needs it
    return re.sub(_UNPRINTABLE, _escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"  # the byte os.fsdecode turned into a surrogate
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
