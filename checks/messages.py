"""Texts built while evaluating (evidence, causes, reasons), in English and Dutch.

Verdicts carry a ``Msg`` (a template key and its values) rather than a
string, so each renderer picks the language at the last moment.

Some 640 lines holding two concerns: the templates, and the back-translation of English raised by
lower layers (host, plist, argparse) into Dutch. The second is what gettext (issue 25, item 2) is to
remove; until then both stay here, where a new text needs its translation.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

TEMPLATES: dict[str, tuple[str, str]] = {
    # reasons a check could not judge or does not apply
    "collector_failed": ("could not read {collector} evidence: {error}",
                         "kon de gegevens van de collector {collector} niet lezen: {error}"),
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
    "ampcli_not_asked": ("not asked: {path} is not run under a root other than / without "
                         "--ampcli.run-from-rootfs (or give --ampcli.status-file)",
                         "niet gevraagd: {path} wordt onder een andere root dan / niet gestart zonder "
                         "--ampcli.run-from-rootfs (of geef --ampcli.status-file)"),
    "program_refused": ("{path} not run: programs under a root other than / run only with "
                        "--ampcli.run-from-rootfs",
                        "{path} niet gestart: programma's onder een andere root dan / draaien alleen met "
                        "--ampcli.run-from-rootfs"),
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
    "next_kernel": ("newest installed kernel {release}, which the next boot runs",
                    "nieuwste geïnstalleerde kernel {release}, die bij de volgende start draait"),
    "next_kernel_running": ("no kernel newer than the running {release} is installed",
                            "er is geen nieuwere kernel dan de draaiende {release} geïnstalleerd"),
    "install_before_reboot": ("install the package {package} before the next reboot",
                              "installeer het pakket {package} vóór de volgende herstart"),
    "core_unknown": ("the kernel headers are missing, and whether connector {version} needs them cannot be told "
                     "(CO-RE eBPF from 1.25 on a kernel with BTF; BTF: {btf})",
                     "de kernelheaders ontbreken, en of connector {version} ze nodig heeft is niet te zeggen "
                     "(CO-RE eBPF vanaf 1.25 op een kernel met BTF; BTF: {btf})"),
    "core_ebpf": ("connector {version} loads prebuilt (CO-RE) eBPF programs on this kernel with BTF: no headers "
                  "needed", "connector {version} laadt vooraf gebouwde (CO-RE) eBPF-programma's op deze kernel met "
                  "BTF: geen headers nodig"),
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
    "connector_uses_sysext": ("connector {version} uses system extensions on this macOS, not kernel extensions",
                              "connector {version} gebruikt op deze macOS systeemextensies, geen kernelextensies"),
    "macos_kext_connector": ("on macOS {version} the connector uses kernel extensions, not system extensions",
                             "op macOS {version} gebruikt de connector kernelextensies, geen systeemextensies"),
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
    "bad_arguments": ("bad arguments: {reason}", "ongeldige argumenten: {reason}"),
    "plugin_timeout": ("the check was stopped after {seconds} s (-t {seconds})",
                       "de controle is na {seconds} s afgebroken (-t {seconds})"),
    "plugin_stopped": ("stopped by {signal} before the checks finished",
                       "gestopt door {signal} voordat de controles klaar waren"),
    "timeout_negative": ("--timeout must not be negative", "--timeout mag niet negatief zijn"),
    "both_severities": ("fault {id} is given to both --critical and --warning",
                        "fout {id} staat zowel bij --critical als bij --warning"),
    "not_a_fault": ("{value} is not a fault id or name in the catalogue (ids {first} to {last}, names such as "
                    "{example} or not_installed)",
                    "{value} is geen fout-id of foutnaam uit de catalogus (id's {first} tot en met {last}, "
                    "namen zoals {example} of not_installed)"),
    "argument": ("argument {option}: {reason}", "argument {option}: {reason}"),
    # command-line values (shared with the exporter)
    "rootfs_unusable": ("--path.rootfs {path} cannot be used: {reason}",
                        "--path.rootfs {path} is niet te gebruiken: {reason}"),
    "rootfs_not_dir": ("--path.rootfs {path} is not a directory", "--path.rootfs {path} is geen map"),
    "not_a_number": ("{value} is not a number", "{value} is geen getal"),
    "not_positive": ("{value} must be a number greater than 0 and at most 1e9",
                     "{value} moet een getal groter dan 0 en hoogstens 1e9 zijn"),
    "not_a_unit": ("{value} is not a systemd unit name", "{value} is geen naam van een systemd-unit"),
    "empty_value": ("must not be empty", "mag niet leeg zijn"),
    # why evidence could not be read (collectors and readers)
    "permission_denied": ("permission denied: {path}", "toegang geweigerd: {path}"),
    "os_error_at": ("{reason} ({path})", "{reason} ({path})"),
    "path_error": ("{path}: {reason}", "{path}: {reason}"),
    "no_time_left": ("no time left in this evaluation", "de tijd voor deze evaluatie is op"),
    "no_kernel_release": ("no kernel release in /proc", "geen kernelrelease in /proc"),
    "headers_any_package": ("the kernel headers for {release}", "de kernelheaders voor {release}"),
    "ampcli_no_status": ("ampcli printed no 'Status:' line", "ampcli gaf geen regel 'Status:'"),
    "ampcli_fault_not_understood": ("ampcli printed a fault in a shape it does not document ({text}): the status "
                                    "is not understood",
                                    "ampcli gaf een fout in een vorm die het niet documenteert ({text}): de status "
                                    "is niet te begrijpen"),
    "ampcli_flood": ("ampcli listed more than {count} fault ids, which is not a status report",
                     "ampcli noemde meer dan {count} fout-id's; zo ziet geen statusrapport eruit"),
    "ampcli_exit": ("ampcli {command} exited with code {code}{detail}",
                    "ampcli {command} stopte met afsluitcode {code}{detail}"),
    "ampcli_too_long": ("ampcli {command} printed more than 1 MiB, which no {command} report does",
                        "ampcli {command} gaf meer dan 1 MiB uitvoer, wat geen echt {command}-rapport doet"),
    "ampcli_not_utf8": ("ampcli {command} printed bytes that are not UTF-8 (at offset {offset})",
                        "ampcli {command} gaf bytes die geen UTF-8 zijn (vanaf positie {offset})"),
    "saved_status_not_utf8": ("the saved status {path} holds bytes that are not UTF-8 (at offset {offset})",
                              "de bewaarde status {path} bevat bytes die geen UTF-8 zijn (vanaf positie {offset})"),
    "cvd_no_header": ("no ClamAV-VDB header", "geen kop ClamAV-VDB"),
    "cvd_not_ascii": ("header is not ASCII", "de kop is geen ASCII"),
    "cvd_fields": ("header has {count} fields, expected 9", "de kop heeft {count} velden in plaats van 9"),
    "cvd_numbers": ("header version, signature count or level is not a number",
                    "versie, aantal signaturen of niveau in de kop is geen getal"),
    "cvd_unreadable": ("cannot be read ({reason})", "onleesbaar ({reason})"),
    "copied_mac_tree": ("not judged from a copied tree: only the running Mac can tell ({collector})",
                        "niet beoordeeld vanuit een gekopieerde boom: alleen de draaiende Mac kan dit zien "
                        "({collector})"),
    "kext_live_only": ("loaded kernel extensions can only be read on the live Mac",
                       "geladen kernelextensies zijn alleen op de draaiende Mac zelf te lezen"),
    "kextstat_exit": ("kextstat exited with code {code}", "kextstat stopte met afsluitcode {code}"),
    "not_keyed_archive": ("{path} is not a keyed archive (no $objects list)",
                          "{path} is geen keyed archive (geen lijst $objects)"),
    "archive_too_big": ("{path} archives more than {count} objects", "{path} bevat meer dan {count} objecten"),
    "archive_loop": ("{path}: the keyed archive's references loop through object {index}",
                     "{path}: de verwijzingen in het keyed archive draaien rond via object {index}"),
    "archive_chain": ("{path}: a chain of more than {count} references in the keyed archive",
                      "{path}: een keten van meer dan {count} verwijzingen in het keyed archive"),
    "xml_entities": ("{path} declares XML entities, which the connector's files never do",
                     "{path} declareert XML-entiteiten; dat doen de bestanden van de connector nooit"),
    "xml_undefined_entity": ("{path} is not well-formed XML (undefined entity &{name};)",
                             "{path} is geen geldige XML (onbekende entiteit &{name};)"),
    "xml_malformed": ("{path} is not well-formed XML ({reason})", "{path} is geen geldige XML ({reason})"),
    "macos_processes_live_only": ("processes of a macOS host can only be read on the live root",
                                  "processen van een macOS-host zijn alleen op de draaiende machine zelf te lezen"),
    "proc_not_mounted": ("{path} is not mounted", "{path} is niet aangekoppeld"),
    "proc_hidepid": ("{path} does not show process 1 (mounted with hidepid?)",
                     "{path} toont proces 1 niet (aangekoppeld met hidepid?)"),
    "proc_stat_format": ("{path} is not in the kernel's format", "{path} heeft niet de opmaak van de kernel"),
    "proc_no_btime": ("{path} has no btime line", "{path} heeft geen regel btime"),
    "extensions_not_list": ("{path}: 'extensions' is not a list", "{path}: 'extensions' is geen lijst"),
    "no_os_release": ("neither {first} nor {second} exists", "{first} en {second} bestaan geen van beide"),
    "tcc_missing": ("{path} does not exist, so Full Disk Access cannot be judged",
                    "{path} bestaat niet, dus volledige schijftoegang is niet te beoordelen"),
    "tcc_denied": ("{path}: permission denied{hint}", "{path}: toegang geweigerd{hint}"),
    "tcc_unreadable": ("{path} cannot be read ({reason}){hint}", "{path} is niet te lezen ({reason}){hint}"),
    "tcc_needs_fda": (" (on a Mac, reading TCC.db needs Full Disk Access for the monitoring process: "
                      "grant it to the exporter or plugin, e.g. by an MDM PPPC profile)",
                      " (op een Mac moet het bewakingsproces volledige schijftoegang hebben om TCC.db te lezen: "
                      "geef die aan de exporter of de plugin, bijvoorbeeld met een MDM PPPC-profiel)"),
    "tcc_unopenable": ("{path} cannot be opened ({reason})", "{path} is niet te openen ({reason})"),
    "tcc_no_table": ("{path} has no 'access' table", "{path} heeft geen tabel 'access'"),
    "tcc_no_columns": ("{path}: the access table has neither auth_value nor allowed",
                       "{path}: de tabel access heeft geen kolom auth_value en ook geen kolom allowed"),
}


class Msg(NamedTuple):
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
    if isinstance(value, Localized):
        return value.render(lang)
    if isinstance(value, (list, tuple)):
        # Sentences (messages) read better apart; names sit in a comma list.
        separator = "; " if any(isinstance(v, (Msg, Localized)) for v in value) else ", "
        return separator.join(_show(v, lang) for v in value)
    if lang == "nl" and isinstance(value, str) and value in TERMS:
        return TERMS[value]
    return printable(str(value))


class Localized(str):
    """A text that is English where a plain ``str`` is wanted (an exception's text, a fact's field, a
    dictionary key, a metric's label) and knows its Dutch for a renderer that asks.

    ``str()`` keeps it as it is, so the Dutch survives being passed through exceptions and f-strings.
    """

    nl: Msg | str

    def __new__(cls, en: str, nl: Msg | str) -> Localized:
        made = super().__new__(cls, en)
        made.nl = nl
        return made

    def __str__(self) -> str:
        return self

    def render(self, lang: str = "en") -> str:
        if lang != "nl":
            return printable(str.__str__(self))
        return self.nl.render("nl") if isinstance(self.nl, Msg) else printable(self.nl)


def said(key: str, **params: Any) -> Localized:
    """The message as a ``Localized`` text: for an exception or a field that holds a ``str``."""
    message = msg(key, **params)
    return Localized(message.render("en"), message)


def reason_of(error: BaseException) -> Localized | None:
    """The ``Localized`` text an exception was raised with, if it was."""
    args = error.args
    return args[0] if len(args) == 1 and isinstance(args[0], Localized) else None


# -- texts written in English elsewhere (the OS, libraries, modules that do not use the templates) -------
# Plain strings other modules hand over as message values.
TERMS: dict[str, str] = {
    "file monitoring": "bestandsbewaking",
    "no kernel release in /proc": "geen kernelrelease in /proc",
    "no macOS version in SystemVersion.plist": "geen macOS-versie in SystemVersion.plist",
}

# strerror in Dutch, by errno name; an errno not listed is named by its symbol.
ERRNO_NL: dict[str, str] = {
    "EPERM": "bewerking niet toegestaan", "ENOENT": "bestand of map bestaat niet",
    "ESRCH": "proces bestaat niet", "EINTR": "systeemaanroep onderbroken", "EIO": "invoer-/uitvoerfout",
    "ENXIO": "apparaat of adres bestaat niet", "E2BIG": "argumentenlijst te lang",
    "ENOEXEC": "geen uitvoerbaar bestandsformaat", "EBADF": "ongeldige bestandsdescriptor",
    "ECHILD": "geen kindprocessen", "EAGAIN": "bron tijdelijk niet beschikbaar",
    "ENOMEM": "onvoldoende geheugen", "EACCES": "toegang geweigerd", "EFAULT": "ongeldig adres",
    "EBUSY": "apparaat of bron bezet", "EEXIST": "bestand bestaat al",
    "EXDEV": "koppeling tussen apparaten niet mogelijk", "ENODEV": "apparaat bestaat niet",
    "ENOTDIR": "geen map", "EISDIR": "is een map", "EINVAL": "ongeldig argument",
    "ENFILE": "te veel open bestanden in het systeem", "EMFILE": "te veel open bestanden",
    "ENOTTY": "ongeschikte ioctl voor dit apparaat", "ETXTBSY": "programmabestand in gebruik",
    "EFBIG": "bestand te groot", "ENOSPC": "geen ruimte meer op het apparaat",
    "EROFS": "bestandssysteem is alleen-lezen", "EMLINK": "te veel harde koppelingen",
    "EPIPE": "pijp verbroken", "ENAMETOOLONG": "bestandsnaam te lang",
    "ELOOP": "te veel niveaus van symbolische koppelingen", "ENOTEMPTY": "map is niet leeg",
    "EOVERFLOW": "waarde te groot voor het gegevenstype", "ETIMEDOUT": "verbinding verlopen",
    "ESTALE": "verouderde bestandsverwijzing (NFS)", "EOPNOTSUPP": "bewerking niet ondersteund",
    "ENOTSUP": "bewerking niet ondersteund", "ENOSYS": "functie niet geïmplementeerd",
    "EDEADLK": "impasse vermeden", "ENOLCK": "geen vergrendelingen beschikbaar",
    "ENOMEDIUM": "geen medium gevonden", "EWOULDBLOCK": "bron tijdelijk niet beschikbaar",
}


def os_reason(error: OSError) -> str:
    """``strerror`` (the OS's English), with its Dutch by errno."""
    text = error.strerror or str(error)
    if error.errno is None:
        return foreign(text)
    import errno

    name = errno.errorcode.get(error.errno, str(error.errno))
    return Localized(printable(text), ERRNO_NL.get(name, f"systeemfout {name}"))


def strerror_nl(text: str) -> str | None:
    """The Dutch for a bare strerror text (a log message's argument), if it is one."""
    import errno
    import os

    for number, name in errno.errorcode.items():
        if os.strerror(number) == text:
            return ERRNO_NL.get(name, f"systeemfout {name}")
    return None


# Kinds of file and of plist object, as the readers name them.
KINDS_NL = {
    "a FIFO": "een FIFO", "a character device": "een tekenapparaat", "a block device": "een blokapparaat",
    "a socket": "een socket", "a directory": "een map", "a symbolic link": "een symbolische koppeling",
    "not a regular file": "geen gewoon bestand",
    "value": "waarde", "integer": "geheel getal", "UID": "UID", "data": "data", "string": "tekenreeks",
    "array": "lijst", "set": "verzameling", "dictionary": "woordenboek",
}

# expat's messages (xml.parsers.expat.errors) in Dutch; a message not listed is named by its code.
EXPAT_NL = {
    "out of memory": "onvoldoende geheugen", "syntax error": "syntaxisfout",
    "no element found": "geen element gevonden", "not well-formed (invalid token)": "ongeldig teken",
    "unclosed token": "onafgesloten teken", "partial character": "onvolledig teken",
    "mismatched tag": "begin- en eindtag verschillen", "duplicate attribute": "dubbel attribuut",
    "junk after document element": "tekst na het documentelement",
    "illegal parameter entity reference": "ongeldige verwijzing naar een parameterentiteit",
    "undefined entity": "onbekende entiteit", "recursive entity reference": "recursieve entiteitsverwijzing",
    "asynchronous entity": "asynchrone entiteit",
    "reference to invalid character number": "verwijzing naar een ongeldig tekennummer",
    "reference to binary entity": "verwijzing naar een binaire entiteit",
    "reference to external entity in attribute": "verwijzing naar een externe entiteit in een attribuut",
    "XML or text declaration not at start of entity": "XML- of tekstdeclaratie niet aan het begin",
    "unknown encoding": "onbekende tekenset",
    "encoding specified in XML declaration is incorrect": "de tekenset in de XML-declaratie klopt niet",
    "unclosed CDATA section": "onafgesloten CDATA-sectie",
    "error in processing external entity reference": "fout bij een externe entiteitsverwijzing",
    "document is not standalone": "document staat niet op zichzelf", "unbound prefix": "ongebonden voorvoegsel",
    "must not undeclare prefix": "voorvoegsel mag niet worden ingetrokken",
    "incomplete markup in parameter entity": "onvolledige opmaak in een parameterentiteit",
    "XML declaration not well-formed": "XML-declaratie ongeldig", "text declaration not well-formed":
    "tekstdeclaratie ongeldig", "illegal character(s) in public id": "ongeldige tekens in de public id",
}


def expat_reason(error: Exception) -> str:
    """An ``ExpatError`` ("<message>: line L, column C"), with its Dutch."""
    from xml.parsers.expat import errors

    code = getattr(error, "code", None)
    english = errors.messages.get(code, "") if isinstance(code, int) else ""
    dutch = EXPAT_NL.get(english, f"XML-fout {code}")
    line, column = getattr(error, "lineno", None), getattr(error, "offset", None)
    if line is not None and column is not None:
        dutch = f"{dutch}: regel {line}, kolom {column}"
    return Localized(printable(str(error)), dutch)


# SQLite's messages (sqlite3.Error) in Dutch; another is named by its error code where Python has it.
SQLITE_NL = {
    "file is not a database": "het bestand is geen database",
    "database disk image is malformed": "het databasebestand is beschadigd",
    "unable to open database file": "het databasebestand kan niet worden geopend",
    "database is locked": "de database is vergrendeld", "disk I/O error": "invoer-/uitvoerfout",
    "interrupted": "afgebroken (te veel rekenstappen)", "out of memory": "onvoldoende geheugen",
}


def sqlite_reason(error: Exception) -> str:
    text = str(error)
    dutch = SQLITE_NL.get(text)
    if dutch is None and text.startswith("no such table: "):
        dutch = f"tabel {printable(text[15:])} bestaat niet"
    if dutch is None and text.startswith("no such column: "):
        dutch = f"kolom {printable(text[16:])} bestaat niet"
    if dutch is None:
        dutch = f"SQLite-fout {getattr(error, 'sqlite_errorname', '')}".rstrip()
    return Localized(printable(text), dutch)


# English texts of the host reader, the folder walk, the plist reader, the state file and argparse:
# (pattern, Dutch). A group named reason, kind or detail is translated in turn.
_FOREIGN: tuple[tuple[str, str], ...] = (
    # checks/host.py and checks/walk.py
    (r"(?P<path>.+) is (?P<kind>a FIFO|a character device|a block device|a socket|a directory|a symbolic link), "
     r"not a regular file", "{path} is {kind}, geen gewoon bestand"),
    (r"(?P<path>.+) is not a regular file, not a regular file", "{path} is geen gewoon bestand"),
    (r"(?P<path>.+) is larger than (?P<limit>\d+) (?P<unit>bytes|GiB)", "{path} is groter dan {limit} {unit}"),
    (r"too many levels of symbolic links (?:at|in) (?P<path>.+)",
     "te veel niveaus van symbolische koppelingen in {path}"),
    (r"(?P<path>.+) was replaced while being opened", "{path} is vervangen terwijl het werd geopend"),
    (r"(?P<path>.+) holds more than (?P<limit>\d+) entries", "{path} bevat meer dan {limit} items"),
    (r"more than (?P<limit>\d+) entries under (?P<path>.+)", "meer dan {limit} items onder {path}"),
    (r"(?P<program>.+) did not answer within (?P<seconds>\S+) s", "{program} gaf binnen {seconds} s geen antwoord"),
    (r"(?P<program>.+) did not answer in the (?P<seconds>\S+) s left of the evaluation's time",
     "{program} gaf geen antwoord in de {seconds} s die de evaluatie nog had"),
    (r"ran out of time", "de tijd is op"),
    # checks/plist.py
    (r"(?P<path>.+) is refused: (?P<reason>.+)", "{path} is geweigerd: {reason}"),
    (r"(?P<path>.+) is not a valid plist \((?P<detail>.+)\)", "{path} is geen geldige plist ({detail})"),
    (r"(?P<path>.+) does not hold a dictionary", "{path} bevat geen woordenboek (dict)"),
    (r"nests deeper than (?P<count>\d+) levels", "nest dieper dan {count} niveaus"),
    (r"expands to more than (?P<count>\d+) values", "groeit uit tot meer dan {count} waarden"),
    (r"expands to more than (?P<count>\d+) bytes of strings and data",
     "groeit uit tot meer dan {count} bytes aan tekst en data"),
    (r"declares an XML entity \(plistlib refuses those too\)",
     "declareert een XML-entiteit (die weigert plistlib ook)"),
    (r"binary plist too short to hold an object and the trailer",
     "binaire plist te kort voor een object en het slotstuk"),
    (r"trailer: (?P<what>offset|reference) size (?P<size>\d+) \(1 to 8 expected\)",
     "slotstuk: {what}grootte {size} (1 tot en met 8 verwacht)"),
    (r"trailer: (?P<count>\d+) objects \(1 to (?P<limit>\d+) allowed\)",
     "slotstuk: {count} objecten (1 tot en met {limit} toegestaan)"),
    (r"trailer: top object (?P<top>\d+) of only (?P<count>\d+)", "slotstuk: bovenste object {top} van maar {count}"),
    (r"trailer: offset table at (?P<at>\d+) for (?P<count>\d+) objects lies outside the file",
     "slotstuk: de offsettabel op {at} voor {count} objecten ligt buiten het bestand"),
    (r"object (?P<index>\d+) refers to itself \(a reference cycle\)",
     "object {index} verwijst naar zichzelf (een kringverwijzing)"),
    (r"object (?P<index>\d+) refers to object (?P<other>\d+), which holds it \(a reference cycle\)",
     "object {index} verwijst naar object {other}, dat het zelf bevat (een kringverwijzing)"),
    (r"object (?P<index>\d+) lies at (?P<offset>\d+), outside the objects",
     "object {index} ligt op {offset}, buiten de objecten"),
    (r"object (?P<index>\d+) is an integer of (?P<size>\d+) bytes",
     "object {index} is een geheel getal van {size} bytes"),
    (r"object (?P<index>\d+) has an unknown marker (?P<marker>0x[0-9a-f]+)",
     "object {index} heeft een onbekende markering {marker}"),
    (r"object (?P<index>\d+) has a damaged length", "object {index} heeft een beschadigde lengte"),
    (r"object (?P<index>\d+) \((?P<kind>\w+)\) declares (?P<count>\d+) entries, past the objects",
     "object {index} ({kind}) noemt {count} items, voorbij de objecten"),
    (r"object (?P<index>\d+) \((?P<kind>\w+)\) refers to object (?P<other>\d+) of only (?P<count>\d+)",
     "object {index} ({kind}) verwijst naar object {other} van maar {count}"),
    (r"object (?P<index>\d+) \((?P<kind>\w+)\) runs past the objects, to byte (?P<end>\d+)",
     "object {index} ({kind}) loopt voorbij de objecten, tot byte {end}"),
    (r"(?P<type>InvalidFileException): Invalid file", "{type}: ongeldig bestand"),
    (r"(?P<type>ExpatError): (?P<detail>.+)", "{type}: {detail}"),
    (r"(?P<message>[^:]+): line (?P<line>\d+), column (?P<column>\d+)", "{message}: regel {line}, kolom {column}"),
    (r"(?P<type>[A-Z]\w*(?:Error|Exception))(?:: .*)?", "{type}"),
    # checks/state.py: why a state file is not used
    (r"no home folder to keep it in", "er is geen thuismap om het in te bewaren"),
    (r"home folder (?P<path>.+) does not exist", "thuismap {path} bestaat niet"),
    (r"home folder (?P<path>.+) cannot be reached \((?P<reason>.+)\)", "thuismap {path} is onbereikbaar ({reason})"),
    (r"home folder (?P<path>.+) is not a folder", "thuismap {path} is geen map"),
    (r"home folder (?P<path>.+) is on a read-only file system", "thuismap {path} staat op een alleen-lezen "
     "bestandssysteem"),
    (r"home folder (?P<path>.+) is not writable by this user", "deze gebruiker mag niet in thuismap {path} "
     "schrijven"),
    (r"its folder (?P<path>.+) is owned by uid (?P<owner>\d+), neither root nor this user \(uid (?P<uid>\d+)\)",
     "de map {path} is van uid {owner}, niet van root en niet van deze gebruiker (uid {uid})"),
    (r"its folder (?P<path>.+) is writable by others and not sticky \(mode (?P<mode>\d+)\)",
     "anderen mogen in de map {path} schrijven en die is niet sticky (modus {mode})"),
    (r"it is owned by uid (?P<owner>\d+), not by this user \(uid (?P<uid>\d+)\)",
     "het is van uid {owner}, niet van deze gebruiker (uid {uid})"),
    (r"it is writable by group or others \(mode (?P<mode>\d+)\)",
     "groep of anderen mogen erin schrijven (modus {mode})"),
    (r"it has (?P<count>\d+) hard links", "het heeft {count} harde koppelingen"),
    (r"it names a folder, not a file", "het is een map, geen bestand"),
    (r"it is (?P<kind>a FIFO|a character device|a block device|a socket|a directory|a symbolic link|"
     r"not a regular file)", "het is {kind}"),
    (r"it keeps changing while being opened", "het verandert steeds terwijl het wordt geopend"),
    (r"it keeps being replaced while being locked", "het wordt steeds vervangen terwijl het wordt vergrendeld"),
    # argparse's own messages
    (r"unrecognized arguments: (?P<arguments>.+)", "onbekende argumenten: {arguments}"),
    (r"the following arguments are required: (?P<arguments>.+)", "deze argumenten ontbreken: {arguments}"),
    (r"ambiguous option: (?P<option>\S+) could match (?P<matches>.+)",
     "dubbelzinnige optie: {option} kan {matches} zijn"),
    (r"argument (?P<option>\S+): invalid choice: (?P<value>.+?) \(choose from (?P<choices>.+)\)",
     "argument {option}: ongeldige keuze: {value} (kies uit {choices})"),
    (r"argument (?P<option>\S+): invalid (?P<type>\w+) value: (?P<value>.+)",
     "argument {option}: ongeldige {type}-waarde: {value}"),
    (r"argument (?P<option>\S+): expected one argument", "argument {option}: verwacht één waarde"),
    (r"argument (?P<option>\S+): expected at most one argument", "argument {option}: verwacht hoogstens één waarde"),
    (r"argument (?P<option>\S+): expected at least one argument", "argument {option}: verwacht minstens één waarde"),
    (r"argument (?P<option>\S+): ignored explicit argument (?P<value>.+)",
     "argument {option}: waarde {value} is hier niet toegestaan"),
    (r"argument (?P<option>\S+): not allowed with argument (?P<other>\S+)",
     "argument {option}: niet toegestaan samen met {other}"),
    (r"argument (?P<option>\S+): (?P<reason>.+)", "argument {option}: {reason}"),
)
_TRANSLATED_GROUPS = frozenset({"reason", "detail", "kind"})
_compiled: list[tuple[re.Pattern[str], str]] = []
_SAID: dict[str, Localized] = {}  # Localized texts handed over as plain strings (argparse keeps only str)


def remember(text: Localized) -> Localized:
    """Keep ``text`` so that ``foreign`` finds its Dutch when it comes back as a plain ``str``."""
    _SAID[str.__str__(text)] = text
    return text


def foreign(text: str) -> str:
    """A text written in English elsewhere, with its Dutch when it is one this project knows (else as it is)."""
    if isinstance(text, Localized):
        return text
    return Localized(text, _dutch(text))


def _dutch(text: str) -> str:
    if isinstance(text, Localized):
        return text.render("nl")
    known = _SAID.get(text)
    if known is not None:
        return known.render("nl")
    if not _compiled:  # compiled at the first text that needs it: most runs have none
        _compiled.extend((re.compile(pattern), dutch) for pattern, dutch in _FOREIGN)
    for pattern, dutch in _compiled:
        found = pattern.fullmatch(text)
        if found:
            values = {name: _dutch_value(name, value) for name, value in found.groupdict().items()}
            return dutch.format(**values)
    return strerror_nl(text) or text


def _dutch_value(name: str, value: str | None) -> str:
    if value is None:
        return ""
    if name == "kind":
        return KINDS_NL.get(value, value)
    if name == "message":
        return EXPAT_NL.get(value, value)
    if name == "what":
        return {"offset": "offset", "reference": "referentie"}.get(value, value)
    if name in _TRANSLATED_GROUPS:
        return _dutch(value)
    return value


# The plugin's log lines (logger ``checks``), by their format: what the state file does.
LOG_NL: dict[str, str] = {
    "processes found through the cgroup of %s": "processen gevonden via de cgroup van %s",
    "processes found by listing all of /proc: the cgroup of %s did not show every one":
        "processen gevonden door heel /proc te doorlopen: de cgroup van %s toonde ze niet allemaal",
    "state file %s is locked by another run; this run's state is kept in memory only":
        "statusbestand %s is vergrendeld door een andere controle; de status van deze controle blijft alleen in "
        "het geheugen",
    "state file %s cannot be locked (%s); this run's state is kept in memory only":
        "statusbestand %s kan niet worden vergrendeld (%s); de status van deze controle blijft alleen in het "
        "geheugen",
    "state file %s is larger than %d bytes and has been reset":
        "statusbestand %s is groter dan %d bytes en is opnieuw begonnen",
    "state file %s was damaged and has been reset": "statusbestand %s was beschadigd en is opnieuw begonnen",
    "state file %s cannot be used (%s); state is kept for this run only":
        "statusbestand %s is niet te gebruiken (%s); de status geldt alleen voor deze controle",
    "state file %s cannot be made (%s); state is kept for this run only":
        "statusbestand %s kan niet worden gemaakt (%s); de status geldt alleen voor deze controle",
    "state file %s cannot be saved (%s); this run's state is lost":
        "statusbestand %s kan niet worden opgeslagen (%s); de status van deze controle gaat verloren",
}


def log_line_nl(template: str, args: tuple[Any, ...]) -> str | None:
    """A log line (its %-format and arguments) in Dutch, or None when its format is not one of ``LOG_NL``."""
    dutch = LOG_NL.get(template)
    if dutch is None:
        return None
    return dutch % tuple(_dutch(str(a)) if isinstance(a, (str, BaseException)) else a for a in args)


def printable(text: str) -> str:
    """Text that came from the host, safe in a plugin line, a label or JSON: the one sanitiser, applied where
    a host's string enters (evidence) and again wherever one is shown (it leaves its own output alone).

    Every character ``str.isprintable`` rejects becomes an escape: controls (a newline or CR would forge an
    output line, ESC a terminal sequence), format characters (bidi overrides such as U+202E, zero-width
    ones), line and paragraph separators (U+2028/9, a line end to JavaScript), other spaces than " ",
    lone surrogates (a file name byte that is not UTF-8) and unassigned code points; and "|", Nagios's
    perfdata separator.
    """
    if text.isprintable() and "|" not in text:
        return text  # nearly always
    return "".join(ch if ch.isprintable() and ch != "|" else _escape(ord(ch)) for ch in text)


def _escape(code: int) -> str:
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"  # the byte os.fsdecode turned into a surrogate
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
