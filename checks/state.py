"""State kept between runs: scan service starts seen (fault 6) and CVD integrity verdicts.

The plugin keeps it in a nagiosplugin ``Cookie`` (a JSON file, locked while
open); the exporter server keeps it in memory. Entries are keyed by the root
so one state file can serve several ``--path.rootfs`` trees.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, MutableMapping
from typing import Any

import nagiosplugin

log = logging.getLogger(__name__)
MAX_CVD_ENTRIES = 256


class StateStore:
    def __init__(self, data: MutableMapping[str, Any] | None = None, rootfs: str = "/") -> None:
        self.data: MutableMapping[str, Any] = data if data is not None else {}
        self.rootfs = rootfs

    def _section(self) -> dict[str, Any]:
        section = self.data.get(self.rootfs)
        if not isinstance(section, dict):
            section = {}
            self.data[self.rootfs] = section
        return section

    def scan_starts(self, seen: list[tuple[int, float]], now: float, window: float) -> list[tuple[int, float]]:
        """Distinct scan service (pid, start time) pairs started within ``window`` seconds of ``now``.

        Adds the processes seen now to those remembered from earlier runs.
        """
        section = self._section()
        remembered = section.get("scan_starts", [])
        starts: set[tuple[int, float]] = set()
        if isinstance(remembered, list):
            for item in remembered:
                with contextlib.suppress(TypeError, ValueError):
                    pid, started = item
                    starts.add((int(pid), round(float(started), 1)))
        starts.update((pid, round(started, 1)) for pid, started in seen)
        recent = sorted(s for s in starts if now - window <= s[1] <= now + 60)
        section["scan_starts"] = [list(s) for s in recent]
        return recent

    def cvd_cache(self) -> MutableMapping[str, str]:
        section = self._section()
        cache = section.get("cvd")
        if not isinstance(cache, dict) or len(cache) > MAX_CVD_ENTRIES:
            cache = {}
            section["cvd"] = cache
        return cache


@contextlib.contextmanager
def open_state(path: str | None, rootfs: str) -> Iterator[StateStore]:
    """A store backed by the state file at ``path``; in memory when None or unusable."""
    if not path:
        yield StateStore(rootfs=rootfs)
        return
    cookie = _open_cookie(os.path.abspath(path))
    if cookie is None:
        yield StateStore(rootfs=rootfs)
        return
    try:
        yield StateStore(cookie, rootfs)
        cookie.commit()
    finally:
        cookie.close()


def _open_cookie(path: str) -> nagiosplugin.Cookie | None:
    for _attempt in range(2):
        cookie = nagiosplugin.Cookie(path)
        try:
            return cookie.open()
        except ValueError:
            # nagiosplugin has truncated the damaged file; the second try starts afresh.
            log.warning("state file %s was damaged and has been reset", path)
            cookie.close()
        except OSError as error:
            log.warning("state file %s cannot be used (%s); state is kept for this run only", path, error)
            return None
    return None
