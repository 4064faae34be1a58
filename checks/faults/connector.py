"""Checks beyond Cisco's tables: what the connector cannot report about itself."""

from __future__ import annotations

import contextlib

from ..collect import Evidence, Unavailable
from ..evidence.ampcli import AMPCLI_PATHS
from ..evidence.definitions import DAY, FUTURE_TOLERANCE
from ..evidence.processes import DAEMON
from ..messages import Msg, msg
from . import Verdict, active, clear, judges


@judges("daemon_not_running")
def daemon_not_running(ev: Evidence) -> Verdict:
    if ev.processes().running(DAEMON):
        return clear(msg("processes_running", names=[DAEMON]))
    return active(msg("process_missing", name=DAEMON))


@judges("ampcli_failed")
def ampcli_failed(ev: Evidence) -> Verdict:
    try:
        status = ev.status_or_none()
    except Unavailable as error:
        # Switched off, or not asked under another root: a choice, not a failure; a saved status the
        # operator gave that cannot be used says nothing about ampcli either.
        if error.disabled or ev.settings.ampcli_status_file:
            raise
        return active(error.reason)
    if status is None:
        return active(msg("ampcli_missing", path=ev.host.display(AMPCLI_PATHS[ev.platform])))
    return clear(msg("status", status=status.status))


@judges("not_connected")
def not_connected(ev: Evidence) -> Verdict:
    status = ev.status()
    evidence = msg("status", status=status.status or "?")
    return clear(evidence) if status.connected else active(evidence)


@judges("definitions_stale")
def definitions_stale(ev: Evidence) -> Verdict:
    """The connector's own "Definitions Last Updated" when ampcli says it; else the newest CVD's build time."""
    limit = ev.settings.definitions_max_age_days
    key, newest = "definitions_updated", None
    with contextlib.suppress(Unavailable):
        newest = ev.status().definitions_updated
    if newest is not None and newest > ev.now + FUTURE_TOLERANCE:
        newest = None  # an update in the future is no evidence of fresh definitions
    suspect: list[Msg] = []
    if newest is None:
        facts = ev.definitions()
        key, newest = "definitions_age", facts.newest_build_time(ev.now)
        suspect = [msg("definitions_future", path=path, days=f"{(built - ev.now) / DAY:.1f}")
                   for path, built in facts.future_dated(ev.now)]
    if newest is None:
        # Only impossible dates: suspect, never fresh.
        raise Unavailable(suspect[0] if suspect else msg("no_definitions"))
    age_days = max(ev.now - newest, 0.0) / DAY
    evidence = msg(key, days=f"{age_days:.1f}", limit=f"{limit:g}")
    return active(evidence, *suspect) if age_days > limit else clear(evidence, *suspect)
