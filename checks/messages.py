"""Texts built while evaluating (evidence, causes, reasons): English in the code, Dutch through gettext.

Verdicts and errors carry a ``Msg`` (a template key and its values) rather than a string, so each
renderer picks the language at the last moment. The English template is the gettext msgid; the Dutch
is in ``checks/locale/nl.po``, which ``checks.translation`` reads. The same catalogue holds what other
code writes in English: strerror texts, expat's and SQLite's messages, our log lines.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .translation import catalogue, translate

TEMPLATES: dict[str, str] = {
    # reasons a check could not judge or does not apply
    "collector_failed": "could not read {collector} evidence: {error}",
    "not_installed": "the connector is not installed",
    "option_off": "the policy has {option} switched off",
    "options_off": "the policy has neither file monitoring nor Device Flow Correlation on",
    "no_policy": "no connector policy found at {path}",
    "option_unset": "the policy does not say whether {option} is on",
    "daemon_down_na": "ampdaemon is not running, so it has nothing to start (see daemon_not_running)",
    "connector_unavailable": "the host shows no sign of it, but the connector's own status is unavailable: {error}",
    "collector_disabled": "the {collector} collector is disabled",
    "ampcli_not_asked": "not asked: {path} is not run under a root other than / without --ampcli.run-from-rootfs (or "
                        "give --ampcli.status-file)",
    "program_refused": "{path} not run: programs under a root other than / run only with --ampcli.run-from-rootfs",
    # evidence and causes
    "reported": "the connector reports it ({text})",
    "user_missing": "user {name} does not exist",
    "group_missing": "group {name} does not exist",
    "usergroups_enab": "USERGROUPS_ENAB is 'no' in /etc/login.defs, which blocks creating the user's group",
    "dir_mode": "{path} has mode {mode} ({problem}); it should be 0755",
    "mode_not_readable": "not readable and searchable for group and others",
    "mode_writable": "writable by group or others",
    "scan_restarts": "{count} scan service processes started within {minutes} minutes",
    "processes_running": "running: {names}",
    "process_missing": "{name} is not running",
    "cvd_corrupt": "definition file {path} fails its integrity check: {problem}",
    "cvd_md5": "the MD5 of its body does not match its header",
    "cvd_header_only": "it holds a header and nothing else",
    "low_memory": "only {available} MiB of memory is available (minimum {minimum} MiB)",
    "modules_loaded": "kernel modules loaded: {names}",
    "no_modules": "none of the kernel modules {names} is loaded",
    "bpf_held": "{names} holds {count} eBPF programs",
    "no_bpf": "{names} holds no eBPF program",
    "secure_boot": "UEFI Secure Boot is on, which blocks the connector's unsigned kernel modules",
    "headers_missing_cause": "the kernel headers for {release} are missing (fault 11)",
    "kernel_release": "running kernel {release}",
    "headers_missing": "{path} does not lead to a directory",
    "headers_present": "kernel headers found at {path}",
    "next_kernel": "newest installed kernel {release}, which the next boot runs",
    "next_kernel_running": "no kernel newer than the running {release} is installed",
    "install_before_reboot": "install the package {package} before the next reboot",
    "core_unknown": "the kernel headers are missing, and whether connector {version} needs them cannot be told (CO-RE "
                    "eBPF from 1.25 on a kernel with BTF; BTF: {btf})",
    "core_ebpf": "connector {version} loads prebuilt (CO-RE) eBPF programs on this kernel with BTF: no headers needed",
    "install_package": "install the package {package} and restart the connector (systemctl restart cisco-amp)",
    "selinux_permissive": "SELinux is not enforcing",
    "selinux_module_missing": "SELinux ({type}) is enforcing and module {module} is not installed",
    "selinux_module_disabled": "SELinux ({type}) is enforcing and module {module} is disabled",
    "selinux_module_present": "module installed in {path}",
    "status": "connector status: {status}",
    "mode_degraded": "the connector runs in mode {mode}",
    "ampcli_missing": "ampcli not found at {path}",
    "definitions_age": "newest definitions were built {days} days ago (limit {limit} days)",
    "definitions_future": "{path} claims to be built {days} days from now; that date is ignored",
    "no_definitions": "no definition files found",
    "installed_at": "connector found at {path}",
    # macOS
    "extension_state": "system extension {identifier} is {state}",
    "no_service_app": "the connector's Service app (with its Info.plist) was not found",
    "no_enabled_extension": "no Cisco system extension is enabled",
    "extension_unversioned": "db.plist names no version for the enabled extension {identifier}, so it cannot be "
                             "compared with the Service app",
    "extension_version": "{identifier} runs version {version} but the Service app is {app_version}",
    "extension_versions_match": "the enabled extensions match the Service app ({version})",
    "fda_granted": "Full Disk Access granted to {client}",
    "fda_missing": "{client} has no Full Disk Access",
    "connector_uses_sysext": "connector {version} uses system extensions on this macOS, not kernel extensions",
    "macos_kext_connector": "on macOS {version} the connector uses kernel extensions, not system extensions",
    "macos_older_only": "applies only to macOS {version} and older",
    "macos_newer_only": "applies only to macOS {version} and later",
    "kext_loaded": "kernel extension com.cisco.amp.fileop is loaded",
    "kext_missing": "kernel extension com.cisco.amp.fileop is not loaded",
    "filter_enabled": "the connector's content filter is enabled",
    "filter_missing": "the connector has no content filter configured",
    "filter_disabled": "the connector's content filter is not enabled",
    "other_filters": "{count} other firewall-grade content filters are enabled ({names})",
    "too_many_filters": "macOS allows 4 content filters per grade",
    "see_fault": "the cause decides: see fault {id}",
    "es_extensions": "{count} Endpoint Security extensions are enabled",
    "orbital_absent": "Cisco Orbital is not installed",
    "version_unknown": "neither global.xml, ampcli nor the connector app says which connector version this is",
    "legacy_connector": "connector {version} predates 1.14 and uses kernel extensions, not system extensions",
    "no_sysext_db": "no system extension is registered ({path} does not exist)",
    "definitions_updated": "definitions were last updated {days} days ago, says ampcli policy (limit {limit} days)",
    # the plugin's own words
    "summary_ok": "no active faults ({checked} checked){extra}",
    "summary_connected": ", connector connected",
    "fault_label": "{title} (fault {id})",
    "state_unknown": "{label}: state unknown",
    "and_more": "and {count} more",
    "line": "{state}: {label}",
    "line_evidence": "Seen: {items}",
    "line_cause": "Cause: {items}",
    "line_fix": "Fix: {text}",
    "line_reason": "Why unknown: {text}",
    "line_na": "not applicable: {text}",
    "line_clear": "clear",
    "bad_arguments": "bad arguments: {reason}",
    "plugin_timeout": "the check was stopped after {seconds} s (-t {seconds})",
    "plugin_stopped": "stopped by {signal} before the checks finished",
    "timeout_negative": "--timeout must not be negative",
    "both_severities": "fault {id} is given to both --critical and --warning",
    "not_a_fault": "{value} is not a fault id or name in the catalogue (ids {first} to {last}, names such as "
                   "{example} or not_installed)",
    "argument": "argument {option}: {reason}",
    # command-line values (shared with the exporter)
    "rootfs_unusable": "--path.rootfs {path} cannot be used: {reason}",
    "rootfs_not_dir": "--path.rootfs {path} is not a directory",
    "not_a_number": "{value} is not a number",
    "not_positive": "{value} must be a number greater than 0 and at most 1e9",
    "not_a_unit": "{value} is not a systemd unit name",
    "empty_value": "must not be empty",
    # why evidence could not be read (collectors and readers)
    "permission_denied": "permission denied: {path}",
    "os_error_at": "{reason} ({path})",
    "path_error": "{path}: {reason}",
    "no_time_left": "no time left in this evaluation",
    "no_kernel_release": "no kernel release in /proc",
    "headers_any_package": "the kernel headers for {release}",
    "ampcli_no_status": "ampcli printed no 'Status:' line",
    "ampcli_fault_not_understood": "ampcli printed a fault in a shape it does not document ({text}): the status is "
                                   "not understood",
    "ampcli_flood": "ampcli listed more than {count} fault ids, which is not a status report",
    "ampcli_exit": "ampcli {command} exited with code {code}{detail}",
    "ampcli_too_long": "ampcli {command} printed more than 1 MiB, which no {command} report does",
    "ampcli_not_utf8": "ampcli {command} printed bytes that are not UTF-8 (at offset {offset})",
    "saved_status_not_utf8": "the saved status {path} holds bytes that are not UTF-8 (at offset {offset})",
    "cvd_no_header": "no ClamAV-VDB header",
    "cvd_not_ascii": "header is not ASCII",
    "cvd_fields": "header has {count} fields, expected 9",
    "cvd_numbers": "header version, signature count or level is not a number",
    "cvd_unreadable": "cannot be read ({reason})",
    "copied_mac_tree": "not judged from a copied tree: only the running Mac can tell ({collector})",
    "kext_live_only": "loaded kernel extensions can only be read on the live Mac",
    "kextstat_exit": "kextstat exited with code {code}",
    "not_keyed_archive": "{path} is not a keyed archive (no $objects list)",
    "archive_too_big": "{path} archives more than {count} objects",
    "archive_loop": "{path}: the keyed archive's references loop through object {index}",
    "archive_chain": "{path}: a chain of more than {count} references in the keyed archive",
    "xml_entities": "{path} declares XML entities, which the connector's files never do",
    "xml_undefined_entity": "{path} is not well-formed XML (undefined entity &{name};)",
    "xml_malformed": "{path} is not well-formed XML ({reason})",
    "macos_processes_live_only": "processes of a macOS host can only be read on the live root",
    "proc_not_mounted": "{path} is not mounted",
    "proc_hidepid": "{path} does not show process 1 (mounted with hidepid?)",
    "proc_stat_format": "{path} is not in the kernel's format",
    "proc_no_btime": "{path} has no btime line",
    "extensions_not_list": "{path}: 'extensions' is not a list",
    "no_os_release": "neither {first} nor {second} exists",
    "tcc_missing": "{path} does not exist, so Full Disk Access cannot be judged",
    "tcc_denied": "{path}: permission denied{hint}",
    "tcc_unreadable": "{path} cannot be read ({reason}){hint}",
    "tcc_needs_fda": " (on a Mac, reading TCC.db needs Full Disk Access for the monitoring process: grant it to the "
                     "exporter or plugin, e.g. by an MDM PPPC profile)",
    "tcc_unopenable": "{path} cannot be opened ({reason})",
    "tcc_no_table": "{path} has no 'access' table",
    "tcc_no_columns": "{path}: the access table has neither auth_value nor allowed",
    # kinds of file (checks/safefile.py kind)
    "kind_link": "a symbolic link",
    "kind_dir": "a directory",
    "kind_fifo": "a FIFO",
    "kind_chr": "a character device",
    "kind_blk": "a block device",
    "kind_sock": "a socket",
    "kind_other": "not a regular file",
    # reading the root (checks/host.py, checks/walk.py, checks/programs.py)
    "not_regular": "{path} is {kind}, not a regular file",
    "too_large": "{path} is larger than {limit} bytes",
    "too_large_gib": "{path} is larger than {limit} GiB",
    "link_loop_at": "too many levels of symbolic links at {path}",
    "link_loop_in": "too many levels of symbolic links in {path}",
    "replaced": "{path} was replaced while being opened",
    "too_many_entries": "{path} holds more than {limit} entries",
    "too_many_below": "more than {limit} entries under {path}",
    "out_of_time": "ran out of time",
    "no_answer": "{program} did not answer within {seconds} s",
    "no_answer_left": "{program} did not answer in the {seconds} s left of the evaluation's time",
    # checks/plist.py
    "plist_refused": "{path} is refused: {reason}",
    "plist_invalid": "{path} is not a valid plist ({detail})",
    "plist_error": "{type}: {detail}",
    "plist_not_dict": "{path} does not hold a dictionary",
    "plist_depth": "nests deeper than {count} levels",
    "plist_values": "expands to more than {count} values",
    "plist_bytes": "expands to more than {count} bytes of strings and data",
    "plist_entity": "declares an XML entity (plistlib refuses those too)",
    "bplist_short": "binary plist too short to hold an object and the trailer",
    "bplist_offset_size": "trailer: offset size {size} (1 to 8 expected)",
    "bplist_ref_size": "trailer: reference size {size} (1 to 8 expected)",
    "bplist_count": "trailer: {count} objects (1 to {limit} allowed)",
    "bplist_top": "trailer: top object {top} of only {count}",
    "bplist_table": "trailer: offset table at {at} for {count} objects lies outside the file",
    "bplist_self": "object {index} refers to itself (a reference cycle)",
    "bplist_cycle": "object {index} refers to object {other}, which holds it (a reference cycle)",
    "bplist_outside": "object {index} lies at {offset}, outside the objects",
    "bplist_integer": "object {index} is an integer of {size} bytes",
    "bplist_marker": "object {index} has an unknown marker {marker}",
    "bplist_length": "object {index} has a damaged length",
    "bplist_entries": "object {index} ({kind}) declares {count} entries, past the objects",
    "bplist_reference": "object {index} ({kind}) refers to object {other} of only {count}",
    "bplist_past": "object {index} ({kind}) runs past the objects, to byte {end}",
    # why a state file is not used (checks/state.py, checks/safefile.py)
    "no_home": "no home folder to keep it in",
    "home_missing": "home folder {path} does not exist",
    "home_unreachable": "home folder {path} cannot be reached ({reason})",
    "home_not_folder": "home folder {path} is not a folder",
    "home_read_only": "home folder {path} is on a read-only file system",
    "home_not_writable": "home folder {path} is not writable by this user",
    "folder_owner": "its folder {path} is owned by uid {owner}, neither root nor this user (uid {uid})",
    "folder_writable": "its folder {path} is writable by others and not sticky (mode {mode})",
    "link_chain": "{path} leads through more than {count} links",
    "link_owner": "{path} is a symbolic link owned by uid {owner}, neither root nor this user (uid {uid})",
    "names_folder": "it names a folder, not a file",
    "not_replaceable": "{path} is {kind}, not a file to replace",
    "it_is": "it is {kind}",
    "file_owner": "it is owned by uid {owner}, not by this user (uid {uid})",
    "file_writable": "it is writable by group or others (mode {mode})",
    "hard_links": "it has {count} hard links",
    "keeps_changing": "it keeps changing while being opened",
    "keeps_replaced": "it keeps being replaced while being locked",
    # texts of the OS and of libraries, where the catalogue does not know them
    "system_error": "system error {name}",
    "xml_error_code": "XML error {code}",
    "at_line": "{message}: line {line}, column {column}",
    "sqlite_no_table": "no such table: {name}",
    "sqlite_no_column": "no such column: {name}",
    "sqlite_error": "SQLite error {name}",
    "sqlite_error_unnamed": "SQLite error",
    # checks/catalog.py
    "fault_n": "Fault {id}",
}


class Msg(NamedTuple):
    key: str
    params: dict[str, Any]

    def render(self, lang: str = "en") -> str:
        template = translate(TEMPLATES[self.key], lang)
        values = {k: _show(v, lang) for k, v in self.params.items()}
        return template.format(**values)

    def __str__(self) -> str:
        return self.render("en")


def msg(key: str, **params: Any) -> Msg:
    if key not in TEMPLATES:
        raise KeyError(f"no message template {key!r}")
    return Msg(key, params)


def _show(value: Any, lang: str) -> str:
    if isinstance(value, (Msg, Localized)):
        return value.render(lang)
    if isinstance(value, (list, tuple)):
        # Sentences (messages) read better apart; names sit in a comma list.
        separator = "; " if any(isinstance(v, (Msg, Localized)) for v in value) else ", "
        return separator.join(_show(v, lang) for v in value)
    return printable(str(value))


class Localized(str):
    """A text that is English where a plain ``str`` is wanted (an exception's text, a fact's field, a
    dictionary key, a metric's label) and can be said in another language by a renderer that asks.

    ``message`` is the ``Msg`` it was rendered from; without one, the text itself is looked up in the
    catalogue, and ``otherwise`` is said when the catalogue does not know it (an errno it lacks).
    ``str()`` keeps it as it is, so it survives being passed through exceptions and argparse.
    """

    message: Msg | None
    otherwise: Msg | str | None

    def __new__(cls, en: str, message: Msg | None = None, otherwise: Msg | str | None = None) -> Localized:
        made = super().__new__(cls, en)
        made.message, made.otherwise = message, otherwise
        return made

    def __str__(self) -> str:
        return self

    def render(self, lang: str = "en") -> str:
        english = str.__str__(self)
        if lang == "en":
            return printable(english)
        if self.message is not None:
            return self.message.render(lang)
        known = catalogue(lang).get(english)
        if known is None and self.otherwise is not None:
            return _show(self.otherwise, lang)
        return printable(known if known is not None else english)


def said(key: str, **params: Any) -> Localized:
    """The message as a ``Localized`` text: for an exception or a field that holds a ``str``."""
    message = msg(key, **params)
    return Localized(message.render("en"), message)


def foreign(text: str, otherwise: Msg | str | None = None) -> Localized:
    """A text written in English elsewhere (the OS, a library): the catalogue's, else ``otherwise``'s Dutch."""
    return text if isinstance(text, Localized) else Localized(text, otherwise=otherwise)


def reason_of(error: BaseException) -> Localized | None:
    """The ``Localized`` text an exception was raised with, if it was."""
    args = error.args
    return args[0] if len(args) == 1 and isinstance(args[0], Localized) else None


def os_reason(error: OSError) -> Localized:
    """``strerror`` (the OS's English); a text the catalogue lacks (another libc's, a rare errno) is named by
    its errno symbol in Dutch."""
    text = printable(error.strerror or str(error))
    if error.errno is None:
        return foreign(text)
    import errno

    return foreign(text, msg("system_error", name=errno.errorcode.get(error.errno, str(error.errno))))


def expat_reason(error: Exception) -> Localized:
    """An ``ExpatError`` ("<message>: line L, column C"); its message is looked up by expat's own text."""
    from xml.parsers.expat import errors

    code = getattr(error, "code", None)
    english = errors.messages.get(code, "") if isinstance(code, int) else ""
    message = foreign(english, msg("xml_error_code", code=code))
    line, column = getattr(error, "lineno", None), getattr(error, "offset", None)
    if line is not None and column is not None:
        return foreign(printable(str(error)), msg("at_line", message=message, line=line, column=column))
    return foreign(printable(str(error)), msg("xml_error_code", code=code))


def sqlite_reason(error: Exception) -> Localized:
    """A ``sqlite3.Error``'s text; one the catalogue lacks is named by its error code."""
    text = printable(str(error))
    for prefix, key in (("no such table: ", "sqlite_no_table"), ("no such column: ", "sqlite_no_column")):
        if text.startswith(prefix):
            return foreign(text, msg(key, name=text[len(prefix):]))
    name = getattr(error, "sqlite_errorname", "")
    return foreign(text, msg("sqlite_error", name=name) if name else msg("sqlite_error_unnamed"))


def log_line(template: str, args: tuple[Any, ...], lang: str) -> str:
    """A log line (its %-format and arguments) in ``lang``; its texts are looked up in the catalogue too."""
    shown = tuple(foreign(str(a)).render(lang) if isinstance(a, (str, BaseException)) else a for a in args)
    return translate(template, lang) % shown


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
