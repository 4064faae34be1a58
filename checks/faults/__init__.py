"""One small function per fault: evidence in, the host's verdict out.

A function asks ``Evidence`` for facts; ``Unavailable`` raised from there
turns its verdict into ``unknown``. Whether the connector reported the fault
is combined with this verdict in ``checks.evaluate``.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import NamedTuple

from checks.collect import Evidence
from checks.messages import Msg
from checks.report import State


class Detection(StrEnum):
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
