"""Loaded kernel extensions on a live Mac (macOS 10.15 and older use the connector's kext)."""

from __future__ import annotations

from typing import NamedTuple

from ..host import Host, HostError
from ..messages import said
from . import Collector

CISCO_KEXT = "com.cisco.amp.fileop"
KEXTSTAT = "usr/sbin/kextstat"


class KextFacts(NamedTuple):
    cisco_loaded: bool


def probe(host: Host, timeout: float) -> KextFacts:
    if not host.live:
        raise HostError(said("kext_live_only"))
    result = host.run(KEXTSTAT, ["-l", "-b", CISCO_KEXT], timeout=timeout)
    if result.returncode != 0:
        raise HostError(said("kextstat_exit", code=result.returncode))
    return KextFacts(CISCO_KEXT in result.stdout.decode("utf-8", "replace"))


COLLECTOR = Collector("kernel_extensions", lambda p: probe(p.host, p.settings.ampcli_timeout))
