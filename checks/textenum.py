"""``TextEnum``: ``enum.StrEnum`` (Python 3.11) for the Pythons fleets run, 3.9 and 3.10 included.

Members are strings: they compare equal to their value, and ``str()`` and f-strings give the value
(a plain ``(str, Enum)`` would give ``State.ACTIVE`` from ``str()``).
"""

from __future__ import annotations

from enum import Enum

__all__ = ["TextEnum"]


class TextEnum(str, Enum):
    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)
