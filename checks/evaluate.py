"""One evaluation of every fault: host evidence and the connector's own word, combined.

A fault is active when either source says so. A clear from the host alone
counts only for faults the host can see in full; the others need the
connector's status too, or they are ``unknown``.
"""

from __future__ import annotations

import contextlib
import time

from . import catalog
from .catalog import Fault, Platform, Severity
from .collect import Evidence, Unavailable
from .collectors import EvidenceCache, Settings
from .evidence.ampcli import ReportedFault
from .evidence.processes import WATCHED
from .faults import CHECKS, Detection, FaultCheck, Verdict, clear, not_applicable
from .host import Host
from .messages import Msg, msg
from .report import FaultResult, Report, State
from .state import StateStore


def fault_checks(platform: Platform) -> dict[str, tuple[FaultCheck, Detection]]:
    """Each fault id of the platform: its check, and who can see it (a Linux run never loads the Mac's)."""
    from .faults import common, connector, linux  # noqa: F401 -- importing a module registers its checks

    if platform is Platform.MACOS:
        from .faults import macos  # noqa: F401
    return {fault.id: CHECKS[fault.id] for fault in catalog.faults_for(platform)}


# The checks beyond Cisco's tables, but "not installed", which decides whether the others are judged.
HEALTH_CHECKS = tuple(check.id for check in catalog.HEALTH_CHECKS if check.id != "not_installed")


def evaluate(host: Host, settings: Settings | None = None, store: StateStore | None = None,
             now: float | None = None, deadline: float | None = None, cache: EvidenceCache | None = None) -> Report:
    """Judge every fault; ``deadline`` (a ``time.monotonic()`` value) bounds the collectors' work, and
    ``cache`` carries what a long-running exporter keeps between evaluations."""
    start = time.perf_counter()
    ev = Evidence(host, settings or Settings(), store or StateStore(rootfs=host.rootfs), now, deadline, cache)
    ev.collect_all()
    report = _skeleton(ev)
    if ev.installed:
        reported = _reported(ev)
        if ev.install_marker is not None:
            installed = _result(catalog.get("not_installed"), clear(msg("installed_at", path=ev.install_marker)))
        else:
            installed = _result(catalog.get("not_installed"), Verdict(State.UNKNOWN, reason=ev.install_error))
        checks = fault_checks(ev.platform)
        report.checks = [installed] + [_health(ev, fault_id) for fault_id in HEALTH_CHECKS]
        report.faults = [_judge(ev, fault, checks[fault.id], reported) for fault in catalog.faults_for(ev.platform)]
        known = {r.fault.id for r in report.faults}
        for fault_id, said in sorted((reported or {}).items(), key=lambda item: int(item[0])):
            if fault_id not in known:
                report.faults.append(_unknown_reported(said))
    else:
        reason = not_applicable(msg("not_installed"))
        report.checks = [_result(catalog.get("not_installed"), Verdict(State.ACTIVE))]
        report.checks += [_result(catalog.get(i), reason) for i in HEALTH_CHECKS]
        report.faults = [_result(f, reason) for f in catalog.faults_for(ev.platform)]
    report.collectors = list(ev.runs)
    report.duration = time.perf_counter() - start
    report.evaluated_at = time.time()  # the wall clock when it ended: ev.now plus a monotonic span can pass it
    return report


def _skeleton(ev: Evidence) -> Report:
    try:
        facts = ev.system()
        os_name, os_version, release = facts.os_name, facts.os_version, facts.kernel_release
    except Unavailable:
        os_name, os_version, release = "", "", None
    report = Report(ev.platform, os_name, os_version, release, ev.installed)
    try:
        status = ev.status_or_none()
    except Unavailable:
        status = None
    if status is not None:
        report.connected = status.connected
        report.connector_status = dict(status.fields)
        report.definitions_updated_time = status.definitions_updated
        report.definition_version = status.definition_version
    report.connector_version = ev.connector_version()
    with contextlib.suppress(Unavailable):
        report.connector_guid = ev.version_file().guid
    try:
        procs = ev.processes()
        report.processes = {name: procs.running(name) for name in WATCHED}
        report.process_lookup = procs.lookup
    except Unavailable:
        report.processes = dict.fromkeys(WATCHED)
    with contextlib.suppress(Unavailable):
        report.definitions_build_time = ev.definitions().newest_build_time(ev.now)
    if ev.platform is Platform.MACOS:
        with contextlib.suppress(Unavailable):
            report.endpoint_security_extensions = ev.system_extensions().endpoint_security_enabled
    return report


def _reported(ev: Evidence) -> dict[str, ReportedFault] | None:
    """Faults ampcli reports; None when its status is unavailable."""
    try:
        return ev.status().faults
    except Unavailable:
        return None


def _verdict(check: FaultCheck, ev: Evidence) -> Verdict:
    try:
        return check(ev)
    except Unavailable as error:
        # A collector the operator switched off is a choice, not a failure.
        state = State.NOT_APPLICABLE if error.disabled else State.UNKNOWN
        return Verdict(state, reason=error.reason)


def _judge(ev: Evidence, fault: Fault, how: tuple[FaultCheck, Detection],
           reported: dict[str, ReportedFault] | None) -> FaultResult:
    check, detection = how
    verdict = _verdict(check, ev)
    said = (reported or {}).get(fault.id)
    if said is not None:
        evidence = (msg("reported", text=said.text or said.severity or fault.id), *verdict.evidence)
        return FaultResult(fault, State.ACTIVE, True, _detected(verdict.state), evidence, verdict.causes,
                           verdict.remedy, severity=said.severity)
    state, reason = verdict.state, verdict.reason
    if state is State.CLEAR and reported is None and detection is not Detection.HOST:
        state, reason = State.UNKNOWN, _status_error(ev)
    result = _result(fault, Verdict(state, verdict.evidence, verdict.causes, verdict.remedy, reason),
                     reported=None if reported is None else False)
    if detection is Detection.CONNECTOR and state is not State.ACTIVE:
        result = result._replace(detected=None)  # the host has no say on these faults
    return result


def _status_error(ev: Evidence) -> Msg:
    """Why the connector's word is missing (only called when its status is unavailable)."""
    try:
        ev.status()
    except Unavailable as error:
        return msg("connector_unavailable", error=error.reason)
    raise AssertionError("the connector status is available")


def _health(ev: Evidence, check_id: str) -> FaultResult:
    return _result(catalog.get(check_id), _verdict(CHECKS[check_id][0], ev))


def _result(fault: Fault | None, verdict: Verdict, reported: bool | None = None) -> FaultResult:
    assert fault is not None, "every check id is in the catalogue"
    return FaultResult(fault, verdict.state, reported, _detected(verdict.state), verdict.evidence,
                       verdict.causes, verdict.remedy, verdict.reason)


def _detected(state: State) -> bool | None:
    return {State.ACTIVE: True, State.CLEAR: False}.get(state)


def _unknown_reported(said: ReportedFault) -> FaultResult:
    severity = Severity.CRITICAL if said.severity.lower() == "critical" else Severity.WARNING
    fault = catalog.unknown_fault(said.id, said.text, severity)
    return FaultResult(fault, State.ACTIVE, True, None, (msg("reported", text=said.text or said.id),),
                       severity=said.severity)
