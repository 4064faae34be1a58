"""The faults as data: the single source for every text, label and severity.

Documented faults carry the connector's numeric id (as a string); the checks
this project adds beyond Cisco's tables carry a word id such as
``not_installed``. ``FAULTS`` holds Cisco's faults and this project's that are
judged like them (``documented=False``: exported, alerted and shown per fault);
``HEALTH_CHECKS`` the connector's own health, each with metrics of its own.
Every renderer, the alert rules and the dashboards read from here.

Some 430 lines, nearly all of it data: each fault's English texts (the Dutch is in locale/nl.po). One
concern; the length is the catalogue's.
"""

from __future__ import annotations

from typing import NamedTuple

from .messages import Msg, msg, printable
from .textenum import TextEnum
from .translation import translate


class Platform(TextEnum):
    LINUX = "linux"
    MACOS = "macos"


class Severity(TextEnum):
    """Default Nagios state when the fault is active."""

    CRITICAL = "critical"  # protection is switched off
    WARNING = "warning"  # protection is degraded


LINUX_FAULTS_URL = (
    "https://www.cisco.com/c/en/us/support/docs/security/amp-endpoints/"
    "214523-amp-for-endpoints-linux-connector-faults.html"
)
MACOS_FAULTS_URL = (
    "https://www.cisco.com/c/en/us/support/docs/security/amp-endpoints/"
    "214896-amp-for-endpoints-connector-for-mac-faul.html"
)
# Cisco's own article on fault 18 (it covers the connector for macOS and Linux).
FAULT_18_URL = (
    "https://www.cisco.com/c/en/us/support/docs/security/secure-endpoint-private-cloud/"
    "220575-cisco-secure-endpoint-linux-connector-fa.html"
)
# How the connector restarts (Cisco's articles; launchd label from Cisco's own uninstall and MDM scripts).
RESTART_LINUX = "systemctl restart cisco-amp"
RESTART_MACOS = "sudo launchctl kickstart -k system/com.cisco.amp.daemon"
RESTART_BOTH = f"Linux: {RESTART_LINUX}; macOS: {RESTART_MACOS}"
# Where the checks beyond Cisco's tables are explained: docs/runbook.md, at the path where the .deb and
# the .rpm install it (pkg/build.py). The report's doc_url and the default --runbook-url of
# ``python -m secure_endpoint_monitoring.exporter.generate`` both use it; the anchors are the check names.
PROJECT_RUNBOOK_URL = "file:///usr/share/doc/secure-endpoint-monitoring/runbook.md"


class Text(NamedTuple):
    """A text of the catalogue, in English; other languages come from the gettext catalogue, where it is the
    msgid (or from ``message``, for a text made of values)."""

    en: str
    message: Msg | None = None

    def get(self, lang: str) -> str:
        return self.message.render(lang) if self.message is not None else translate(self.en, lang)


class Fault(NamedTuple):
    id: str
    slug: str
    platforms: frozenset[Platform]
    severity: Severity
    title: Text
    meaning: Text
    fix: Text
    documented: bool = True
    article: str = ""  # Cisco's article on this one fault, where there is one
    detected: str = ""  # how the checks tell it, for docs/faults.md (Markdown; the Mac's where only the Mac has it)
    detected_macos: str = ""  # the Mac's, where it differs from ``detected``
    alert_for: str = ""  # how long the alert waits before it fires, where not the generator's default

    def doc_url(self, platform: Platform) -> str:
        if not self.documented:
            return f"{PROJECT_RUNBOOK_URL}#{self.slug}"
        if self.article:
            return self.article
        return MACOS_FAULTS_URL if platform is Platform.MACOS else LINUX_FAULTS_URL


BOTH = frozenset({Platform.LINUX, Platform.MACOS})
LINUX = frozenset({Platform.LINUX})
MACOS = frozenset({Platform.MACOS})
CRIT = Severity.CRITICAL
WARN = Severity.WARNING

_LOGS = Text("Details are in ampdaemon.log and ampscansvc.log (/var/log/cisco on Linux, /Library/Logs/Cisco on macOS).")


def _with_logs(text: Text) -> Text:
    return Text(f"{text.en} {_LOGS.en}")


FAULTS: tuple[Fault, ...] = (
    Fault(
        "1", "system_extension_not_approved", MACOS, CRIT,
        Text("System extension not approved"),
        Text("macOS keeps the connector's system extension from running until someone approves it."),
        Text("Approve the Cisco extension under System Settings > Privacy & Security, or push an MDM "
             "system-extension profile that allows team DE8Y96K9QP."),
        detected=("a Cisco extension in `/Library/SystemExtensions/db.plist` is "
                  "`activated_waiting_for_user` (no `db.plist`: nothing registered, clear)"),
    ),
    Fault(
        "2", "system_extension_version_mismatch", MACOS, CRIT,
        Text("System extension version mismatch"),
        Text("The running system extension is not the version that came with the installed connector, "
             "so the installation is damaged."),
        Text("Restart the Mac first (from connector 1.14.0 on that often clears it); if it stays, "
             "reinstall the connector."),
        detected=("an enabled Cisco extension's `CFBundleVersion` differs from the Service app's "
                  "`Contents/Info.plist`"),
    ),
    Fault(
        "3", "full_disk_access_missing", MACOS, CRIT,
        Text("Full Disk Access not granted"),
        Text("The connector service may not read users' files, so it cannot scan them."),
        Text("Grant Full Disk Access to the Secure Endpoint Service (before connector 1.14: "
             "/opt/cisco/amp/ampdaemon) in Privacy & Security, or through an MDM PPPC profile."),
        detected=("`com.cisco.endpoint.svc` (before connector 1.14: `/opt/cisco/amp/ampdaemon`) has no Full "
                  "Disk Access in `TCC.db` or `MDMOverrides.plist` (an MDM grant counts when `TCC.db` "
                  "cannot be read)"),
    ),
    Fault(
        "4", "kernel_extension_not_loaded", MACOS, CRIT,
        Text("Kernel extension not loaded"),
        Text("On macOS 10.15 and older the connector's kernel extension is approved and of the right "
             "version but is not loaded."),
        _with_logs(Text("Reinstall the connector.")),
        detected=("macOS 10.15 or older, or a connector before 1.14, and `com.cisco.amp.fileop` not in "
                  "`kextstat` (live Mac only; not judged under another root)"),
    ),
    Fault(
        "5", "scan_service_user_unavailable", BOTH, WARN,
        Text("Scan service user unavailable"),
        Text("The cisco-amp-scan-svc user or group is missing or its directories have wrong "
             "permissions, so files are scanned as root instead of as that unprivileged user."),
        _with_logs(Text(
            "Reinstall the connector to create the user and group again (on Linux with USERGROUPS_ENAB "
            "set to yes in /etc/login.defs while the installer runs). Put directories under /opt/cisco "
            "back to mode 0755, then restart the connector "
            f"({RESTART_BOTH}).",
        )),
        detected=("user or group `cisco-amp-scan-svc` is missing (hint: `USERGROUPS_ENAB no` in "
                  "`/etc/login.defs`), or `/opt/cisco`, or a directory at or below `/opt/cisco/amp` (down "
                  "to 3 levels below `/opt/cisco`), is not `r-x` for group and others, or is "
                  "group/world-writable; every offending path is named (other Cisco products' folders "
                  "beside `amp`, such as Secure Client's or Orbital's, are not judged)"),
        detected_macos=("`cisco-amp-scan-svc` missing from `/var/db/dslocal/nodes/Default/{users,groups}` (live: "
                        "the directory service)"),
    ),
    Fault(
        "6", "scan_service_restarting_frequently", BOTH, WARN,
        Text("Scan service restarting frequently"),
        Text("The file scanner keeps failing and being restarted; a file on the host may crash it. "
             "Scanning goes on as well as it can."),
        _with_logs(Text("Wait ten minutes after a connector restart: it usually clears by itself. If it does not, "
            "find the file that crashes the scanner in the logs.")),
        detected=("the connector reports it, or 3 distinct `ampscansvc` processes started within 10 minutes "
                  "(kept between runs in the state file)"),
        detected_macos=("as on Linux, from the live Mac's processes (from a copied Mac tree: `not_applicable`, "
                        '"not judged from a copied tree")'),
        alert_for="15m",  # it clears by itself within ten minutes of a restart (the fault tables' own guidance)
    ),
    Fault(
        "7", "scan_service_not_started", BOTH, CRIT,
        Text("Scan service not started"),
        Text("The file scanner does not run, so files are not scanned. Corrupt virus definitions or "
             "too little free memory are the usual causes."),
        _with_logs(Text(
            f"Restart the connector ({RESTART_BOTH}); it removes definition files that fail their checks. "
            "If the fault "
            "returns after every definitions update, or memory is short, contact Cisco support or add memory.",
        )),
        detected=("`ampdaemon` runs and `ampscansvc` does not; names a `.cvd` whose MD5 does not match its "
                  "header, and `MemAvailable` below `--min-available-memory`"),
        detected_macos=("as on Linux, from the live Mac's processes (from a copied Mac tree: `not_applicable`)"),
    ),
    Fault(
        "8", "file_monitor_not_started", LINUX, CRIT,
        Text("Real-time file system monitor not started"),
        Text("The policy enables file monitoring but no kernel module or eBPF program watches the file "
             "system, so file copies and moves are not seen."),
        Text("Turn UEFI Secure Boot off, install the kernel headers for the running kernel, or build the "
             "ampfsm module for this kernel (connector 1.16.0 and later); check /var/log/messages. As a "
             "last resort disable file monitoring in the policy."),
        detected=("the policy has file monitoring on, no file-monitoring module (`--file-module`, default "
                  "`ampfsm`, `redirfs`, `avflt`, `ampavflt`) is in `/proc/modules` and `ampdaemon` "
                  "(`--bpf-process`) holds no eBPF program; names Secure Boot (EFI variable) and missing "
                  "kernel headers"),
    ),
    Fault(
        "9", "network_monitor_not_started", LINUX, CRIT,
        Text("Real-time network monitor not started"),
        Text("The policy enables Device Flow Correlation but no kernel module or eBPF program watches "
             "network activity."),
        Text("Turn UEFI Secure Boot off, install the kernel headers for the running kernel, or build the "
             "connector's modules for this kernel; check /var/log/messages. As a last resort disable "
             "Device Flow Correlation in the policy."),
        detected=("the policy has Device Flow Correlation on, no network module (`--network-module`, "
                  "default `ampnetworkflow`) and no eBPF program held by `ampdaemon` (`--bpf-process`)"),
    ),
    Fault(
        "10", "reboot_required", MACOS, CRIT,
        Text("Reboot required to load system extensions"),
        Text("macOS will only load the connector's system extension after a restart."),
        Text("Restart the Mac. If the fault stays, reinstall the connector, and on connector 1.14.1 and "
             "later check for too many network content filters (fault 13)."),
        detected=("a Cisco extension waits for a reboot and none of that identifier is enabled (an upgrade "
                  "waiting beside the enabled newer version is fine)"),
        alert_for="30m",  # it waits for a planned reboot (the fault tables' own guidance)
    ),
    Fault(
        "11", "kernel_headers_missing", LINUX, CRIT,
        Text("Kernel headers package missing"),
        Text("The connector needs the running kernel's headers to build its eBPF monitoring for file "
             "monitoring or Device Flow Correlation, and they are not installed."),
        Text(
             "Install the headers package for the running kernel (kernel-devel, kernel-uek-devel on "
             "Oracle UEK, linux-headers on Debian and Ubuntu) and restart the connector "
             f"({RESTART_LINUX}).",
        ),
        detected=("file monitoring or Device Flow Correlation is on, `/lib/modules/<release>/build` is not "
                  "a directory, no connector kernel module is loaded (EL6/EL7 and other older kernels run "
                  "modules, which need no headers) and the connector does not load CO-RE eBPF (1.25 or "
                  "later on a kernel with BTF: `/sys/kernel/btf/vmlinux` or `CONFIG_DEBUG_INFO_BTF=y` in "
                  "`/boot/config-<release>`; `unknown` when the version or the BTF cannot be told); names "
                  "the package: `kernel-devel-<r>` (RHEL family), `kernel-uek-devel-<r>` (Oracle UEK), "
                  "`linux-headers-<r>` (Debian family)"),
    ),
    Fault(
        "12", "network_filter_not_allowed", MACOS, CRIT,
        Text("Network content filter not allowed"),
        Text("Device Flow Correlation needs the connector's network content filter, and it is not "
             "allowed or not enabled."),
        Text("Allow the Secure Endpoint Service to filter network content (the connector's menu shows the "
             "prompt), or allow it with an MDM web content filter profile."),
        detected=("Device Flow Correlation is on and the Service's content filter in "
                  "`com.apple.networkextension.plist` is missing or off, with fewer than 4 other "
                  "firewall-grade filters enabled"),
    ),
    Fault(
        "13", "too_many_network_filters", MACOS, CRIT,
        Text("Too many network content filters"),
        Text("macOS allows only a few firewall-grade content filters and others already take the slots, "
             "so the connector's filter for Device Flow Correlation cannot start."),
        Text(
             "Restart the Mac (on connector 1.14.0 a macOS bug causes this). If it stays, remove the "
             "content filters you no longer need and restart the connector "
             f"({RESTART_MACOS}).",
        ),
        detected=("as 12, with 4 or more other firewall-grade filters enabled: macOS allows 4 per grade (12 "
                  "and 13 are never both active)"),
        alert_for="30m",  # it can follow a reboot on connector 1.14.0 (the fault tables' own guidance)
    ),
    Fault(
        "14", "too_many_endpoint_security_extensions", MACOS, CRIT,
        Text("Too many Endpoint Security extensions"),
        Text("macOS limits how many Endpoint Security extensions may run; the connector needs one for "
             "file and process monitoring."),
        Text(
             "Remove the system extensions that are no longer needed and restart the connector "
             f"({RESTART_MACOS}).",
        ),
        detected=("the connector reports it; the count of enabled Endpoint Security extensions is exported "
                  "as `secure_endpoint_endpoint_security_extensions_enabled`"),
    ),
    Fault(
        "15", "security_extension_full_disk_access_missing", MACOS, CRIT,
        Text("Security extension lacks Full Disk Access"),
        Text("On macOS 11 and later the connector's security extension may not read users' files."),
        Text("Grant Full Disk Access to the Secure Endpoint security extension in Privacy & Security or "
             "through an MDM PPPC profile. On macOS 11.0.0 a bug can drop the grant at restart: update macOS."),
        detected=("macOS 11 or later and `com.cisco.endpoint.svc.securityextension` has no Full Disk Access"),
    ),
    Fault(
        "16", "kernel_incompatible", LINUX, CRIT,
        Text("Kernel not supported"),
        Text("The running kernel is not supported by this connector version, so file monitoring and "
             "Device Flow Correlation cannot run."),
        Text("Upgrade the connector to a version that supports this kernel, or boot a supported kernel "
             "(see Cisco's Linux connector OS compatibility list)."),
        detected=("the connector reports it; the host adds the running kernel"),
    ),
    Fault(
        "17", "orbital_full_disk_access_missing", MACOS, WARN,
        Text("Orbital lacks Full Disk Access"),
        Text("Cisco Orbital is installed but may not read protected files, so its queries return "
             "incomplete answers."),
        Text("Grant Full Disk Access to Cisco Orbital in Privacy & Security or through an MDM PPPC profile."),
        detected=("`/opt/cisco/orbital` exists and no `com.cisco.orbital*` or `com.cisco.endpoint.orbital*` "
                  "client or path under `/opt/cisco/orbital/` (`--orbital-client`) has Full Disk Access"),
    ),
    Fault(
        "18", "event_monitoring_overloaded", BOTH, WARN,
        Text("Event monitoring overloaded"),
        Text("So many system events arrive that the connector runs degraded. At severity Major it is "
             "overloaded but still watches everything; at Critical it only watches a reduced set of "
             "events. A very busy program, Behavioral Protection, or malicious activity can cause this."),
        Text("Find the busy process. If it is trusted, add a process exclusion for it; if not, "
             "investigate it. A short burst clears by itself; if it keeps coming back, give the host "
             "more capacity."),
        article=FAULT_18_URL,
        detected=("the connector reports it (Major: overloaded; Critical: only a reduced set of events "
                  "watched, and CRITICAL then), or `ampcli status` says `Mode: Degraded`"),
        detected_macos=("as on Linux (Cisco's fault-18 article covers both)"),
        alert_for="15m",  # it can be a short burst (the fault tables' own guidance)
    ),
    Fault(
        "19", "selinux_policy_missing", LINUX, CRIT,
        Text("SELinux policy module missing or disabled"),
        Text("SELinux is enforcing and the cisco-secure-bpf policy module, which lets the connector load "
             "its eBPF monitoring, is not installed or is disabled."),
        Text(
             "Reinstall or upgrade the connector so it installs cisco-secure-bpf (or enable it with "
             "'semodule -e cisco-secure-bpf'), or add the bpf allow rule for unconfined_service_t to the "
             f"policy yourself, then restart the connector ({RESTART_LINUX}).",
        ),
        detected=("SELinux is enforcing (`/sys/fs/selinux/enforce`; in a tree copied without `/sys`, "
                  "`SELINUX=` in `/etc/selinux/config`) and `cisco-secure-bpf` (`--selinux-module`) is not "
                  "in the active module store (`/etc/selinux/<type>` or `/var/lib/selinux/<type>`), or is "
                  "disabled"),
    ),
    Fault(
        "next_kernel_headers_missing", "next_kernel_headers_missing", LINUX, WARN,
        Text("Next boot's kernel lacks headers"),
        Text("A newer kernel is installed and the next boot will run it, but without its headers the connector "
             "cannot build its eBPF programs for it: after the reboot kernel monitoring stops (fault 11)."),
        Text("Install the headers package of the newest installed kernel (kernel-devel, kernel-uek-devel on "
             "Oracle UEK, linux-headers on Debian and Ubuntu) before the reboot, or remove that kernel."),
        documented=False,
        detected=("file monitoring or Device Flow Correlation is on, the newest installed kernel (a folder in "
                  "`/lib/modules` with its `vmlinuz` there or in `/boot`, of the running one's kind, ordered as "
                  "rpm orders versions) is newer than the running one, and it would raise fault 11: no "
                  "`/lib/modules/<release>/build`, no "
                  "connector kernel module loaded, and no CO-RE eBPF (connector 1.25 or later and "
                  "`CONFIG_DEBUG_INFO_BTF=y` in `/boot/config-<release>` or `/lib/modules/<release>/config`)"),
    ),
)

HEALTH_CHECKS: tuple[Fault, ...] = (
    Fault(
        "not_installed", "not_installed", BOTH, CRIT,
        Text("Connector not installed"),
        Text("The Secure Endpoint connector is not installed on this host."),
        Text("Install the connector from the Secure Endpoint console."),
        documented=False,
        detected=("no `ampdaemon` (Linux `/opt/cisco/amp/bin/ampdaemon`; macOS `/opt/cisco/amp/ampdaemon` "
                  "or the Service app); `--not-installed` sets the state it gives"),
    ),
    Fault(
        "daemon_not_running", "daemon_not_running", BOTH, CRIT,
        Text("Connector daemon not running"),
        Text("ampdaemon is not running, so the connector protects nothing and reports no faults."),
        Text(f"Start the connector service ({RESTART_BOTH}) and read ampdaemon.log if it stops again."),
        documented=False,
        detected=("`ampdaemon` is not running"),
    ),
    Fault(
        "ampcli_failed", "ampcli_failed", BOTH, WARN,
        Text("Connector status unavailable"),
        Text("ampcli status is missing, failed, hung or printed something unreadable, so the faults "
              "the connector itself reports cannot be read."),
        Text(f"Run ampcli status by hand; restart the connector if it hangs ({RESTART_BOTH})."),
        documented=False,
        detected=("`ampcli` is missing, exits non-zero, prints something that is not a status report, or "
                  "does not answer within `--ampcli-timeout` (5 s)"),
    ),
    Fault(
        "not_connected", "not_connected", BOTH, WARN,
        Text("Connector not connected to the cloud"),
        Text("The connector is not connected to the Secure Endpoint cloud: it gets no policy or "
              "definition updates and the console shows stale state."),
        Text("Check the network path and proxy to the Secure Endpoint cloud servers, then ampdaemon.log."),
        documented=False,
        detected=("`ampcli status` says anything but `Status: Connected`"),
    ),
    Fault(
        "definitions_stale", "definitions_stale", BOTH, WARN,
        Text("Virus definitions out of date"),
        Text("The newest virus definition file is older than the allowed age, so new threats are missed."),
        Text("Check that the connector is connected and can reach the update servers; restart it to "
              "force an update."),
        documented=False,
        detected=("`ampcli policy`'s `Definitions Last Updated` (else the newest CVD's build time) is more "
                  "than `--definitions-max-age` days ago (7)"),
    ),
)

_BY_ID: dict[str, Fault] = {f.id: f for f in FAULTS + HEALTH_CHECKS}


def get(fault_id: str) -> Fault | None:
    return _BY_ID.get(fault_id)


def faults_for(platform: Platform) -> tuple[Fault, ...]:
    """The faults of a platform, Cisco's in id order, then this project's judged like them."""
    return tuple(f for f in FAULTS if platform in f.platforms)


def fault_order(fault: Fault) -> tuple[int, int, str]:
    """Cisco's faults by their number, then this project's (word ids) by name."""
    return (0, int(fault.id), "") if fault.documented else (1, 0, fault.id)


def all_ids() -> frozenset[str]:
    return frozenset(_BY_ID)


def unknown_fault(fault_id: str, text: str, severity: Severity) -> Fault:
    """A fault the connector reported that this catalogue does not know."""
    text = printable(text.strip().rstrip("."))
    title = Text(text) if text else Text(f"Fault {fault_id}", msg("fault_n", id=fault_id))
    return Fault(
        fault_id, "unknown", BOTH, severity, title,
        Text("The connector reports a fault this project does not know yet."),
        Text("See Cisco's fault table for the platform."),
    )
