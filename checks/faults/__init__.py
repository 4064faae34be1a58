"""One small function per fault: evidence in, the host's verdict out.

A function asks ``Evidence`` for facts; ``Unavailable`` raised from there
turns its verdict into ``unknown``. Whether the connector reported the fault
is combined with this verdict in ``checks.evaluate``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from ..collect import Evidence, Unavailable
from ..evidence.policy import POLICY_PATHS
from ..messages import Msg, foreign, msg
from ..report import State
from ..textenum import TextEnum

FILE_MONITORING = "file monitoring"
DEVICE_FLOW = "Device Flow Correlation"


class Detection(TextEnum):
    HOST = "host"  # the host evidence decides on its own
    BOTH = "both"  # the host sees part of it; a clear needs the connector's word too
    CONNECTOR = "connector"  # only the connector can tell


class Verdict(NamedTuple):
    state: State
    evidence: tuple[Msg, ...] = ()
    causes: tuple[Msg, ...] = ()
    remedy: Msg | None = None
    reason: Msg | None = None


def active(*evidence: Msg, causes: tuple[Msg, ...] = (), remedy: Msg | None = None) -> Verdict:
    return Verdict(State.ACTIVE, evidence, causes, remedy)


def clear(*evidence: Msg) -> Verdict:
    return Verdict(State.CLEAR, evidence)


def not_applicable(reason: Msg) -> Verdict:
    return Verdict(State.NOT_APPLICABLE, reason=reason)


FaultCheck = Callable[[Evidence], Verdict]
# Each fault's check and who can see it, by fault id (``checks/catalog.py``), filled by ``judges``.
CHECKS: dict[str, tuple[FaultCheck, Detection]] = {}


def judges(fault_id: str, detection: Detection = Detection.HOST) -> Callable[[FaultCheck], FaultCheck]:
    """Makes the function the check of one fault of the catalogue: declared beside the function, so a new
    fault needs no list edited elsewhere (``checks.evaluate`` reads ``CHECKS``)."""
    def register(check: FaultCheck) -> FaultCheck:
        if fault_id in CHECKS:
            raise ValueError(f"fault {fault_id} has a check already: {CHECKS[fault_id][0].__name__}")
        CHECKS[fault_id] = (check, detection)
        return check
    return register


def policy_option(ev: Evidence, name: str) -> bool:
    """A policy option that must be known; raises ``Unavailable`` when the policy does not say."""
    facts = ev.policy()
    if facts.path is None:
        raise Unavailable(msg("no_policy", path=ev.host.display(POLICY_PATHS[ev.platform][0])))
    value = facts.file_monitoring if name == FILE_MONITORING else facts.device_flow_correlation
    if value is None:
        raise Unavailable(msg("option_unset", option=foreign(name)))
    return value
