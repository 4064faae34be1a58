"""Linux-only faults: kernel monitoring (8, 9, 11, 16, and 11 for the next boot's kernel) and SELinux (19)."""

from __future__ import annotations

import contextlib

from ..collect import Evidence, Unavailable
from ..evidence import version_tuple
from ..evidence.processes import DAEMON
from ..evidence.system import headers_package
from ..messages import Msg, foreign, msg
from . import (
    DEVICE_FLOW,
    FILE_MONITORING,
    Detection,
    Verdict,
    active,
    clear,
    judges,
    not_applicable,
    policy_option,
)

CORE_EBPF_FROM = (1, 25)  # the first Linux connector that loads CO-RE eBPF programs (Cisco's article 215549)


def _monitor(ev: Evidence, option: str, modules: tuple[str, ...]) -> Verdict:
    """Faults 8 and 9: the option is on, yet neither a module nor ampdaemon's eBPF does the work."""
    if not policy_option(ev, option):
        return not_applicable(msg("option_off", option=foreign(option)))
    loaded = sorted(ev.kernel().modules & set(modules))
    if loaded:
        return clear(msg("modules_loaded", names=loaded))
    procs = ev.processes()
    if not procs.running(DAEMON):
        return not_applicable(msg("daemon_down_na"))
    if procs.bpf_programs is None:
        raise Unavailable(msg("collector_failed", collector="processes", error=procs.bpf_error))
    if procs.bpf_programs:
        return clear(msg("bpf_held", count=procs.bpf_programs, names=list(ev.settings.bpf_processes)))
    return active(msg("no_modules", names=list(modules)), msg("no_bpf", names=list(ev.settings.bpf_processes)),
                  causes=tuple(_load_causes(ev)))


def _load_causes(ev: Evidence) -> list[Msg]:
    facts = ev.kernel()
    causes = []
    if facts.secure_boot:
        causes.append(msg("secure_boot"))
    if facts.headers_present is False and facts.release and _core_ebpf(ev, facts.btf) is False:
        causes.append(msg("headers_missing_cause", release=facts.release))
    return causes


def _core_ebpf(ev: Evidence, btf: bool | None) -> bool | None:
    """Whether the connector loads eBPF programs built once (CO-RE), which need no headers: connector 1.25 and
    later on a kernel with BTF (Cisco's article 215549). None when that cannot be told: a version 1.25 or
    later (or none known) and a kernel whose BTF is not known, or BTF and no known version."""
    version = version_tuple(ev.connector_version())[:2]
    if btf is False or (version and version < CORE_EBPF_FROM):
        return False
    if btf is True and version:
        return True
    return None


@judges("8")
def file_monitor_not_started(ev: Evidence) -> Verdict:
    """Fault 8 (module names are configurable: they differ between connector versions)."""
    return _monitor(ev, FILE_MONITORING, ev.settings.file_modules)


@judges("9")
def network_monitor_not_started(ev: Evidence) -> Verdict:
    """Fault 9 (module names are configurable: they differ between connector versions)."""
    return _monitor(ev, DEVICE_FLOW, ev.settings.network_modules)


@judges("11")
def kernel_headers_missing(ev: Evidence) -> Verdict:
    """Fault 11: an option that needs kernel monitoring is on, and the connector would have to build its eBPF
    programs for a kernel whose headers (``lib/modules/<release>/build``) are missing.

    No headers are needed while the connector's kernel modules are loaded (EL6/EL7 and other older
    kernels), or for CO-RE eBPF (``_core_ebpf``). eBPF programs that are loaded do not clear it: an older
    connector built them once and cannot build them again, at its next start, without the headers.
    """
    unwanted = _kernel_monitoring_off(ev)
    if unwanted is not None:
        return unwanted
    facts = ev.kernel()
    if facts.release is None or facts.headers_path is None:
        raise Unavailable(msg("collector_failed", collector="kernel", error=msg("no_kernel_release")))
    if facts.headers_present:
        return clear(msg("headers_present", path=facts.headers_path))
    loaded = sorted(facts.modules & {*ev.settings.file_modules, *ev.settings.network_modules})
    if loaded:
        return clear(msg("modules_loaded", names=loaded))
    core = _core_ebpf(ev, facts.btf)
    if core:
        return clear(msg("core_ebpf", version=ev.connector_version()))
    if facts.headers_present is None:
        raise Unavailable(msg("collector_failed", collector="kernel", error=facts.headers_error))
    if core is None:  # headers missing, and whether they are needed cannot be told: no false alarm
        raise Unavailable(msg("core_unknown", version=ev.connector_version() or "?",
                              btf="?" if facts.btf is None else ("yes" if facts.btf else "no")))
    family = ""
    with contextlib.suppress(Unavailable):
        family = ev.system().family
    return active(
        msg("kernel_release", release=facts.release),
        msg("headers_missing", path=facts.headers_path),
        remedy=msg("install_package", package=headers_package(family, facts.release)),
    )


def _kernel_monitoring_off(ev: Evidence) -> Verdict | None:
    """not_applicable when the policy has neither option that needs kernel monitoring on; None when one is on.
    Raises ``Unavailable`` when neither is known on and one cannot be read."""
    wanted: list[bool] = []
    unknown: Unavailable | None = None
    for option in (FILE_MONITORING, DEVICE_FLOW):
        try:
            wanted.append(policy_option(ev, option))
        except Unavailable as error:
            unknown = error
    if any(wanted):
        return None
    if unknown is not None:
        raise unknown
    return not_applicable(msg("options_off"))


@judges("next_kernel_headers_missing")
def next_kernel_headers_missing(ev: Evidence) -> Verdict:
    """Fault 11 after the next reboot, seen before it: the newest installed kernel, which the next boot runs
    (the bootloaders' default), is newer than the running one and lacks what the connector needs to build its eBPF
    programs, judged as fault 11 judges the running kernel. Cisco's console can show it only after the reboot."""
    unwanted = _kernel_monitoring_off(ev)
    if unwanted is not None:
        return unwanted
    facts = ev.kernel()
    if facts.next_error:
        raise Unavailable(msg("collector_failed", collector="kernel", error=facts.next_error))
    if facts.next_release is None or facts.next_headers_path is None:
        return clear(msg("next_kernel_running", release=facts.release or "?"))
    seen = msg("next_kernel", release=facts.next_release)
    loaded = sorted(facts.modules & {*ev.settings.file_modules, *ev.settings.network_modules})
    if loaded:
        return clear(seen, msg("modules_loaded", names=loaded))
    if facts.next_headers_present:
        return clear(seen, msg("headers_present", path=facts.next_headers_path))
    core = _core_ebpf(ev, facts.next_btf)
    if core:
        return clear(seen, msg("core_ebpf", version=ev.connector_version()))
    if facts.next_headers_present is None:
        raise Unavailable(msg("collector_failed", collector="kernel", error=facts.next_error))
    if core is None:
        raise Unavailable(msg("core_unknown", version=ev.connector_version() or "?",
                              btf="?" if facts.next_btf is None else ("yes" if facts.next_btf else "no")))
    family = ""
    with contextlib.suppress(Unavailable):
        family = ev.system().family
    return active(seen, msg("headers_missing", path=facts.next_headers_path),
                  remedy=msg("install_before_reboot", package=headers_package(family, facts.next_release)))


@judges("16", Detection.CONNECTOR)
def kernel_incompatible(ev: Evidence) -> Verdict:
    """Fault 16: only the connector knows its supported kernels; the host names the running one."""
    ev.status()
    release = None
    with contextlib.suppress(Unavailable):  # the running kernel is context here, not evidence
        release = ev.kernel().release
    return clear(msg("kernel_release", release=release)) if release else clear()


@judges("19")
def selinux_policy_missing(ev: Evidence) -> Verdict:
    """Fault 19: SELinux enforcing and the ``cisco-secure-bpf`` module missing or disabled."""
    facts = ev.selinux()
    if not facts.enforcing:
        return clear(msg("selinux_permissive"))
    if facts.module_disabled:
        return active(msg("selinux_module_disabled", type=facts.policy_type, module=ev.settings.selinux_module))
    if facts.module_path is None:
        return active(msg("selinux_module_missing", type=facts.policy_type, module=ev.settings.selinux_module))
    return clear(msg("selinux_module_present", path=facts.module_path))
