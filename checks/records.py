"""``Record``: what ``typing.NamedTuple`` is to mypy, a plain ``collections.namedtuple`` when the code runs.

Every fact, verdict and result here is a named tuple. ``typing.NamedTuple`` turns each field's
annotation into a ``ForwardRef`` when the class is made, compiling its text (with ``from __future__
import annotations`` every annotation is text): the ~130 fields a plugin run loads cost it some
3 ms, of a run that lasts some 70. The classes ``Record`` makes have the same fields, defaults,
methods and docstrings; only their annotations stay text, as the rest of the code's do.
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING, Any

__all__ = ["Record"]

if TYPE_CHECKING:
    from typing import NamedTuple as Record
else:
    _CLASS_KEYS = ("__module__", "__qualname__", "__annotations__")

    class _RecordType(type):
        def __new__(mcls, name: str, bases: tuple[type, ...], ns: dict[str, Any]) -> type:
            if not bases:  # Record itself
                return super().__new__(mcls, name, bases, ns)
            fields = list(ns.get("__annotations__", {}))
            defaults = [ns[field] for field in fields if field in ns]
            if any(field not in ns for field in fields[len(fields) - len(defaults):]):
                raise TypeError(f"{name}: a field without a default follows one with a default")
            made = collections.namedtuple(name, fields, defaults=defaults, module=ns["__module__"])
            made.__qualname__ = ns.get("__qualname__", name)
            for key, value in ns.items():
                if key not in _CLASS_KEYS and key not in fields:
                    setattr(made, key, value)
            made.__annotations__ = ns.get("__annotations__", {})
            return made

    class Record(metaclass=_RecordType):
        pass
