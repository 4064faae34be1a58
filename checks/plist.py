"""Bounded plist loading (XML or binary) for the files read from a Mac's root.

plistlib alone is not enough: it has no bounds. A binary plist refers to its objects by number, and
plistlib returns shared references as shared Python objects and self references as cyclic ones. So
200 bytes in which each of 40 levels of arrays refers twice to the next parse in a millisecond into
a value 2**40 leaves wide as a tree, and the first ``str()`` of it takes all the memory it is given
(50 s and 2 GB before a MemoryError under a 2 GB limit); a cycle ends any hand-written recursive walk
of the value in ``RecursionError``. Deep binary nesting makes plistlib itself raise
``RecursionError``, not its documented InvalidFileException; deep XML it builds to any depth.

So a binary plist is checked from its trailer and offset table before plistlib sees it: sane sizes,
every reachable object inside the file, its references in range, no cycle, and the nesting depth,
the values and the string/data bytes of the tree it expands to within bounds (computed once per
object, so a bomb is refused without being expanded). XML cannot share or cycle and plistlib refuses
entity declarations, but 15 MB of nested arrays cost plistlib 2 s and 260 MB; expat counts the
elements and their depth first and stops at a bound (an eighth of a second for 16 MB of plain XML).
Anything damaged or over a bound raises ``ValueError`` with a one-line reason naming the file.
"""

from __future__ import annotations

import plistlib
import struct
from typing import Any
from xml.parsers.expat import ExpatError

from .messages import Localized, expat_reason, foreign, said

MAX_DEPTH = 64  # values on the longest path from the top, the top and the leaf included
MAX_OBJECTS = 200_000  # objects in a binary file (XML has no objects apart from its values)
MAX_EXPANDED = 1_000_000  # values in the tree the plist expands to (dictionary keys included)
MAX_BYTES = 64 << 20  # string and data bytes (characters) in that tree

HEADER = b"bplist00"
TRAILER = struct.Struct(">6xBBQQQ")
_UNPACK = {1: "B", 2: "H", 4: "L", 8: "Q"}
_CONTAINERS = {0xA0: "array", 0xB0: "set", 0xC0: "set", 0xD0: "dictionary"}
_FIXED = {0x00: 0, 0x08: 0, 0x09: 0, 0x0F: 0, 0x22: 4, 0x23: 8, 0x33: 8}  # null, booleans, fill, reals, date


class _Refused(ValueError):
    """Damage or a bound found before plistlib runs."""


class _Bounds:
    def __init__(self, depth: int, objects: int, expanded: int, size: int) -> None:
        self.depth, self.objects, self.expanded, self.bytes = depth, objects, expanded, size

    def check(self, depth: int, values: int, size: int) -> None:
        if depth > self.depth:
            raise _Refused(said("plist_depth", count=self.depth))
        if values > self.expanded:
            raise _Refused(said("plist_values", count=self.expanded))
        if size > self.bytes:
            raise _Refused(said("plist_bytes", count=self.bytes))


def load(data: bytes, where: str, *, max_depth: int = MAX_DEPTH, max_objects: int = MAX_OBJECTS,
         max_expanded: int = MAX_EXPANDED, max_bytes: int = MAX_BYTES) -> Any:
    """The plist's value; ``ValueError`` naming ``where`` when it is damaged or over a bound."""
    bounds = _Bounds(max_depth, max_objects, max_expanded, max_bytes)
    binary = data[:len(HEADER)] == HEADER
    try:
        if binary:
            _Binary(data, bounds).check()
        else:
            _check_xml(data, bounds)
    except _Refused as error:
        raise ValueError(said("plist_refused", path=where, reason=error.args[0])) from None
    try:
        return plistlib.loads(data, fmt=plistlib.FMT_BINARY if binary else plistlib.FMT_XML)
    except Exception as error:  # noqa: BLE001 - plistlib raises many types on damaged input
        raise ValueError(said("plist_invalid", path=where, detail=_plistlib_reason(error))) from None


def _plistlib_reason(error: Exception) -> Localized:
    """plistlib's word on the damage: the exception's name and the first line of its text. A text the
    catalogue does not know is said by the name alone in another language."""
    name = type(error).__name__
    lines = str(error).strip().splitlines()
    if not lines:
        return foreign(name)
    if isinstance(error, ExpatError):
        return said("plist_error", type=name, detail=expat_reason(error))
    detail = lines[0][:100]
    if isinstance(error, plistlib.InvalidFileException):  # its text is always "Invalid file"
        return said("plist_error", type=name, detail=foreign(detail))
    return foreign(f"{name}: {detail}", otherwise=name)


def load_dict(data: bytes, where: str) -> dict[str, Any]:
    """A plist whose top level is a dictionary; anything else raises ``ValueError``."""
    value = load(data, where)
    if not isinstance(value, dict):
        raise ValueError(said("plist_not_dict", path=where))
    return value


def _check_xml(data: bytes, bounds: _Bounds) -> None:
    """Counts an XML plist's elements and their depth with expat, stopping at a bound before plistlib builds
    anything. XML cannot share values, so its strings and data are no larger than the file."""
    from xml.parsers.expat import ParserCreate

    depth = values = 0

    def start(name: str, _attributes: object) -> None:
        nonlocal depth, values
        if name != "plist":  # the wrapper holds no value
            depth += 1
            values += 1
            bounds.check(depth, values, 0)

    def end(name: str) -> None:
        nonlocal depth
        if name != "plist":
            depth -= 1

    def entity(*_declaration: object) -> None:
        raise _Refused(said("plist_entity"))

    parser = ParserCreate()
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.EntityDeclHandler = entity
    try:
        parser.Parse(data, True)
    except _Refused:
        raise
    except Exception:  # noqa: BLE001 - damage (ExpatError, an unknown encoding...): plistlib meets it
        pass  # at the same place and reports it


class _Binary:
    """Checks a binary plist's trailer, offset table and object graph without building any value."""

    def __init__(self, data: bytes, bounds: _Bounds) -> None:
        self.data, self.bounds = data, bounds
        self.edges = 0  # references read so far: each shows up at least once in the tree
        if len(data) < len(HEADER) + 1 + TRAILER.size:
            raise _Refused(said("bplist_short"))
        self.offset_size, self.ref_size, self.count, self.top, self.table = TRAILER.unpack_from(data, len(data) - 32)
        self.end = len(data) - TRAILER.size
        if not 1 <= self.offset_size <= 8:
            raise _Refused(said("bplist_offset_size", size=self.offset_size))
        if not 1 <= self.ref_size <= 8:
            raise _Refused(said("bplist_ref_size", size=self.ref_size))
        if not 1 <= self.count <= bounds.objects:
            raise _Refused(said("bplist_count", count=self.count, limit=bounds.objects))
        if self.top >= self.count:
            raise _Refused(said("bplist_top", top=self.top, count=self.count))
        if not len(HEADER) < self.table <= self.end - self.count * self.offset_size:
            raise _Refused(said("bplist_table", at=self.table, count=self.count))

    def check(self) -> None:
        """Walks the graph from the top object, reading each object once: cycles, depth, values and bytes."""
        bounds = self.bounds
        done: dict[int, tuple[int, int, int]] = {}  # object -> (height, values, bytes) of the tree below it
        path = {self.top}  # the containers being walked, from the top down
        suspended: list[tuple[int, list[int], int, int, int, int]] = []  # their state, but for the innermost
        index, (refs, size), at, height, values = self.top, self._read(self.top), 0, 1, 1
        while True:
            while at < len(refs):
                child = refs[at]
                below = done.get(child)
                if below is None:
                    if child in path:
                        raise _Refused(said("bplist_self", index=index) if child == index
                                       else said("bplist_cycle", index=index, other=child))
                    child_refs, child_size = self._read(child)
                    if child_refs:  # walk the container, then come back to this reference
                        bounds.check(len(suspended) + 2, 0, 0)
                        suspended.append((index, refs, at, height, values, size))
                        path.add(child)
                        index, refs, size, at, height, values = child, child_refs, child_size, 0, 1, 1
                        continue
                    below = done[child] = (1, 1, child_size)
                at += 1
                height = max(height, below[0] + 1)
                values += below[1]
                size += below[2]
                if values > bounds.expanded or size > bounds.bytes or len(suspended) + height > bounds.depth:
                    bounds.check(len(suspended) + height, values, size)
            done[index] = (height, values, size)
            if not suspended:
                bounds.check(height, values, size)  # a top without references was not counted above
                return
            path.discard(index)
            index, refs, at, height, values, size = suspended.pop()

    def _read(self, index: int) -> tuple[list[int], int]:
        """Object ``index``'s references (none for a leaf) and string or data length."""
        data = self.data
        at = self.table + index * self.offset_size
        offset = int.from_bytes(data[at:at + self.offset_size], "big")
        if not len(HEADER) <= offset < self.table:
            raise _Refused(said("bplist_outside", index=index, offset=offset))
        marker = data[offset]
        kind, low = marker & 0xF0, marker & 0x0F
        start = offset + 1
        if marker in _FIXED:
            return self._leaf(index, start + _FIXED[marker], 0, "value")
        if kind == 0x10:  # integer of 2**low bytes
            if low > 4:
                raise _Refused(said("bplist_integer", index=index, size=1 << low))
            return self._leaf(index, start + (1 << low), 0, "integer")
        if kind == 0x80:  # UID of low + 1 bytes
            return self._leaf(index, start + low + 1, 0, "UID")
        if kind not in (0x40, 0x50, 0x60) and kind not in _CONTAINERS:
            raise _Refused(said("bplist_marker", index=index, marker=f"0x{marker:02x}"))
        length = low
        if low == 0x0F:  # the length follows as an integer object
            if start >= self.table or data[start] & 0xF0 != 0x10 or data[start] & 0x0F > 3:
                raise _Refused(said("bplist_length", index=index))
            width = 1 << (data[start] & 0x03)
            length = int.from_bytes(data[start + 1:start + 1 + width], "big")
            start += 1 + width
        if kind in (0x40, 0x50):  # data, ASCII string
            return self._leaf(index, start + length, length, "data" if kind == 0x40 else "string")
        if kind == 0x60:  # UTF-16 string
            return self._leaf(index, start + 2 * length, length, "string")
        refs_count = 2 * length if kind == 0xD0 else length
        end = start + refs_count * self.ref_size
        if end > self.table:
            raise _Refused(said("bplist_entries", index=index, kind=foreign(_CONTAINERS[kind]), count=length))
        self.edges += refs_count
        if self.edges >= self.bounds.expanded:
            raise _Refused(said("plist_values", count=self.bounds.expanded))
        if self.ref_size in _UNPACK:
            refs = list(struct.unpack_from(f">{refs_count}{_UNPACK[self.ref_size]}", data, start))
        else:
            size = self.ref_size
            refs = [int.from_bytes(data[i:i + size], "big") for i in range(start, end, size)]
        if refs and max(refs) >= self.count:
            raise _Refused(said("bplist_reference", index=index, kind=foreign(_CONTAINERS[kind]), other=max(refs),
                                 count=self.count))
        return refs, 0

    def _leaf(self, index: int, end: int, size: int, kind: str) -> tuple[list[int], int]:
        if end > self.table:
            raise _Refused(said("bplist_past", index=index, kind=foreign(kind), end=end))
        return [], size
