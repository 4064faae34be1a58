"""The one report every renderer reads: each fault's state, sources, evidence, cause and fix."""

from __future__ import annotations

from typing import Any, NamedTuple

from .catalog import Fault, Platform
from .messages import Msg
from .textenum import TextEnum


class State(TextEnum):
    ACTIVE = "active"
    CLEAR = "clear"
    UNKNOWN = "unknown"  # the evidence could not be read; ``reason`` says why
    NOT_APPLICABLE = "not_applicable"  # other platform, or the policy option it needs is off


class FaultResult(NamedTuple):
    fault: Fault
    state: State
    reported: bool | None = None  # what ampcli said; None when its status is unavailable
    detected: bool | None = None  # what the host evidence says; None when it cannot tell
    evidence: tuple[Msg, ...] = ()
    causes: tuple[Msg, ...] = ()
    remedy: Msg | None = None  # a fix specific to this host, beside the catalogue's
    reason: Msg | None = None  # why unknown or not applicable
    severity: str = ""  # as the connector reported it, for faults it reported

    @property
    def sources(self) -> list[str]:
        return [name for name, said in (("connector", self.reported), ("host", self.detected)) if said]


class CollectorRun(NamedTuple):
    name: str
    success: bool
    duration: float
    error: str | None = None


class Report:
    """Everything one evaluation found. Mutable while ``evaluate`` fills it in."""

    def __init__(self, platform: Platform, os_name: str, os_version: str, kernel_release: str | None,
                 installed: bool) -> None:
        self.platform = platform
        self.os_name = os_name
        self.os_version = os_version
        self.kernel_release = kernel_release
        self.installed = installed
        self.connector_version = ""
        self.connector_guid = ""  # local.xml's /config/agent/uuid: Cisco's cloud knows the computer by it
        self.connected: bool | None = None
        self.connector_status: dict[str, str] = {}
        self.processes: dict[str, bool | None] = {}
        self.process_lookup = ""  # how they were found: "cgroup", "scan" (all of proc) or "psutil"; "" unread
        self.definitions_build_time: float | None = None  # newest CVD header
        self.definitions_updated_time: float | None = None  # ampcli policy's "Definitions Last Updated"
        self.definition_version = ""  # ampcli policy's "Definition Version"
        self.endpoint_security_extensions: int | None = None  # macOS: enabled Endpoint Security extensions
        self.faults: list[FaultResult] = []  # documented and connector-reported ids
        self.checks: list[FaultResult] = []  # checks beyond the documents
        self.collectors: list[CollectorRun] = []
        self.duration = 0.0
        self.evaluated_at = 0.0  # Unix time the evaluation ended: what staleness alerts watch

    def all_results(self) -> list[FaultResult]:
        return self.checks + self.faults

    def active(self) -> list[FaultResult]:
        return [r for r in self.all_results() if r.state is State.ACTIVE]

    def to_dict(self, lang: str = "en") -> dict[str, Any]:
        """The whole report as plain data, for ``--format json``."""
        return {
            "platform": str(self.platform),
            "os": {"name": self.os_name, "version": self.os_version, "kernel_release": self.kernel_release},
            "connector": {
                "installed": self.installed,
                "version": self.connector_version,
                "guid": self.connector_guid or None,
                "connected": self.connected,
                "status": self.connector_status,
                "processes": self.processes,
                "process_lookup": self.process_lookup or None,
                "definitions_build_time": self.definitions_build_time,
                "definitions_updated_time": self.definitions_updated_time,
                "definition_version": self.definition_version,
                "endpoint_security_extensions": self.endpoint_security_extensions,
            },
            "checks": [_result_dict(r, self.platform, lang) for r in self.checks],
            "faults": [_result_dict(r, self.platform, lang) for r in self.faults],
            "collectors": [
                {"name": c.name, "success": c.success, "duration_seconds": round(c.duration, 6), "error": c.error}
                for c in self.collectors
            ],
            "duration_seconds": round(self.duration, 6),
            "evaluated_at": round(self.evaluated_at, 3),
        }


def _result_dict(result: FaultResult, platform: Platform, lang: str) -> dict[str, Any]:
    fault = result.fault
    return {
        "id": fault.id,
        "slug": fault.slug,
        "title": fault.title.get(lang),
        "severity": str(fault.severity),
        "state": str(result.state),
        "sources": result.sources,
        "reported": result.reported,
        "detected": result.detected,
        "evidence": [m.render(lang) for m in result.evidence],
        "causes": [m.render(lang) for m in result.causes],
        "reason": result.reason.render(lang) if result.reason else None,
        "meaning": fault.meaning.get(lang),
        "fix": fault.fix.get(lang),
        "remedy": result.remedy.render(lang) if result.remedy else None,
        "doc_url": fault.doc_url(platform),
    }
