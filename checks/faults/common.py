"""Faults that exist on both platforms: the scan service and its account (5, 6, 7), overload (18)."""

from __future__ import annotations

from ..collect import Evidence, Unavailable, describe
from ..evidence import definitions
from ..evidence.processes import CLOCK_TICKS, DAEMON, SCANNER
from ..evidence.scan_user import SCAN_ACCOUNT
from ..messages import Msg, msg
from . import Detection, Verdict, active, clear, judges, not_applicable


@judges("5")
def scan_user_unavailable(ev: Evidence) -> Verdict:
    """Fault 5: the scan account is missing, or a connector directory has the wrong mode."""
    facts = ev.scan_user()
    found: list[Msg] = []
    if facts.user_exists is False:
        found.append(msg("user_missing", name=SCAN_ACCOUNT))
    if facts.group_exists is False:
        found.append(msg("group_missing", name=SCAN_ACCOUNT))
    causes: tuple[Msg, ...] = ()
    if found and facts.usergroups_enab is False:
        causes = (msg("usergroups_enab"),)
    for bad in facts.bad_directories:
        problems = []
        if bad.not_readable:
            problems.append(msg("mode_not_readable"))
        if bad.writable:
            problems.append(msg("mode_writable"))
        found.append(msg("dir_mode", path=bad.path, mode=f"{bad.mode:04o}", problem=problems))
    if found:  # what was read proves it, whatever could not be read
        return active(*found, causes=causes)
    if facts.unread:
        raise Unavailable(msg("collector_failed", collector="scan_user", error=describe(facts.unread[0])))
    return clear()


@judges("6", Detection.BOTH)
def scan_service_restarting(ev: Evidence) -> Verdict:
    """Fault 6: several scan service processes started within a short window."""
    settings = ev.settings
    facts = ev.processes()
    seen = [(p.pid, p.start_ticks) for p in facts.by_name.get(SCANNER, [])]
    starts = ev.store.scan_starts(seen, facts.boot_id, facts.uptime_ticks,
                                  int(settings.scan_restart_window * CLOCK_TICKS))
    minutes = round(settings.scan_restart_window / 60)
    evidence = msg("scan_restarts", count=len(starts), minutes=minutes)
    if len(starts) >= settings.scan_restart_count:
        return active(evidence)
    return clear(evidence)


@judges("7")
def scan_service_not_started(ev: Evidence) -> Verdict:
    """Fault 7: ampdaemon runs without its scan service; names corrupt definitions or low memory."""
    procs = ev.processes()
    if not procs.running(DAEMON):
        return not_applicable(msg("daemon_down_na"))
    if procs.running(SCANNER):
        return clear(msg("processes_running", names=[DAEMON, SCANNER]))
    return active(msg("process_missing", name=SCANNER), causes=tuple(_scan_failure_causes(ev)))


def _scan_failure_causes(ev: Evidence) -> list[Msg]:
    causes: list[Msg] = []
    try:
        problems = ev.definition_problems()
    except Unavailable:  # a cause we cannot name is left out; the fault stands
        problems = []
    known = {definitions.MD5_MISMATCH: msg("cvd_md5"), definitions.HEADER_ONLY: msg("cvd_header_only")}
    causes += [msg("cvd_corrupt", path=path, problem=known.get(problem, problem)) for path, problem in problems]
    try:
        available = ev.system().mem_available_bytes
    except Unavailable:
        available = None
    minimum = ev.settings.min_available_mib
    if available is not None and available < minimum * 1024 * 1024:
        causes.append(msg("low_memory", available=available // (1024 * 1024), minimum=minimum))
    return causes



@judges("18", Detection.CONNECTOR)
def event_monitoring_overloaded(ev: Evidence) -> Verdict:
    """Fault 18: reported by the connector (Major: overloaded; Critical: a reduced set of events
    watched), or its status says it runs degraded."""
    mode = ev.status().mode
    if mode.strip().lower() == "degraded":
        return active(msg("mode_degraded", mode=mode))
    return clear()
