"""Linux-only faults: kernel monitoring (8, 9, 11, 16) and SELinux (19)."""

from __future__ import annotations

from checks.collect import Evidence, Unavailable
from checks.evidence.processes import DAEMON
from checks.evidence.system import headers_package
from checks.faults import DEVICE_FLOW, FILE_MONITORING, Verdict, active, clear, not_applicable, policy_option
from checks.messages import Msg, msg


def _monitor(ev: Evidence, option: str, modules: tuple[str, ...]) -> Verdict:
    """Faults 8 and 9: the option is on, yet neither a module nor ampdaemon's eBPF does the work."""
    if not policy_option(ev, option):
        return not_applicable(msg("option_off", option=option))
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
    release = ev.system().kernel_release
    if facts.headers_present is False and release:
        causes.append(msg("headers_missing_cause", release=release))
    return causes


def file_monitor_not_started(ev: Evidence) -> Verdict:
    """Fault 8 (module names are configurable: they differ between connector versions)."""
    return _monitor(ev, FILE_MONITORING, ev.settings.file_modules)


def network_monitor_not_started(ev: Evidence) -> Verdict:
    """Fault 9 (module names are configurable: they differ between connector versions)."""
    return _monitor(ev, DEVICE_FLOW, ev.settings.network_modules)


def kernel_headers_missing(ev: Evidence) -> Verdict:
    """Fault 11: an option that needs eBPF is on and ``lib/modules/<release>/build`` is not a directory."""
    wanted: list[bool] = []
    unknown: Unavailable | None = None
    for option in (FILE_MONITORING, DEVICE_FLOW):
        try:
            wanted.append(policy_option(ev, option))
        except Unavailable as error:
            unknown = error
    if not any(wanted):
        if unknown is not None:
            raise unknown
        return not_applicable(msg("options_off"))
    sysfacts = ev.system()
    release = sysfacts.kernel_release
    facts = ev.kernel()
    if release is None or facts.headers_path is None:
        raise Unavailable(msg("collector_failed", collector="kernel", error="no kernel release in /proc"))
    if facts.headers_present is None:
        raise Unavailable(msg("collector_failed", collector="kernel", error=facts.headers_error))
    if facts.headers_present:
        return clear(msg("headers_present", path=facts.headers_path))
    package = headers_package(sysfacts.family, release)
    return active(
        msg("kernel_release", release=release),
        msg("headers_missing", path=facts.headers_path),
        remedy=msg("install_package", package=package),
    )


def kernel_incompatible(ev: Evidence) -> Verdict:
    """Fault 16: only the connector knows its supported kernels; the host names the running one."""
    ev.status()
    release = ev.system().kernel_release
    return clear(msg("kernel_release", release=release)) if release else clear()


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
