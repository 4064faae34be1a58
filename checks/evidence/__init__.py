"""Evidence: facts read from the host, one module per source, no verdicts.

Each module that is a collector declares it as ``COLLECTOR``: its name (the ``collector`` label and
``--collector.NAME``) and how it reads its facts from a ``Probe``. checks/collectors.py lists which
module holds which collector on which platform, and runs them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, NamedTuple, TypeVar

if TYPE_CHECKING:
    from ..catalog import Platform
    from ..collectors import EvidenceCache, Settings
    from ..host import Host

Facts_co = TypeVar("Facts_co", covariant=True)


class Probe(NamedTuple):
    """What a collector reads with: the host (bounded by the collector's share of the time), the platform,
    the settings, and what a long-running exporter keeps between evaluations."""

    host: Host
    platform: Platform
    settings: Settings
    cache: EvidenceCache


class Collector(Generic[Facts_co]):
    """One source of evidence; ``read`` gets its facts (raising is the collector's failure)."""

    def __init__(self, name: str, read: Callable[[Probe], Facts_co]) -> None:
        self.name = name
        self.read = read


def ascii_number(text: str, digits: int) -> bool:
    """Whether ``text`` is 1 to ``digits`` ASCII digits (``str.isdigit`` alone takes other scripts' digits).

    A plain test rather than a regular expression: compiling one costs a plugin run some 0.1 ms.
    """
    return 0 < len(text) <= digits and text.isascii() and text.isdigit()


def lines(text: str) -> list[str]:
    """The lines of a host's file or a program's output: split at "\\n" only (a "\\r" before it dropped).

    ``str.splitlines`` also splits at U+2028, U+0085, form feeds and more, so a value holding one
    (a policy name, an os-release NAME) would become a line of its own and could pose as a field or a
    fault line; the files and programs read here end their lines with "\\n".
    """
    return [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]


def version_tuple(text: str) -> tuple[int, ...]:
    """'1.14.1.123' -> (1, 14, 1, 123); stops at the first part that is not a number."""
    parts: list[int] = []
    for part in text.strip().split("."):
        if not ascii_number(part, 9):
            break
        parts.append(int(part))
    return tuple(parts)
