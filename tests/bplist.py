"""Hand-built binary plists: the shapes plistlib.dumps never writes (cycles, shared references, lying trailers)."""

from __future__ import annotations

import struct
from collections.abc import Sequence


def _count(marker: int, n: int) -> bytes:
    """An object marker with its count: in the low nibble, or 0xF and an int object after it."""
    if n < 15:
        return bytes([marker | n])
    return bytes([marker | 0xF]) + integer(n)


def integer(value: int) -> bytes:
    for power, size in ((0, 1), (1, 2), (2, 4), (3, 8)):
        if value < 1 << (8 * size):
            return bytes([0x10 | power]) + value.to_bytes(size, "big")
    raise ValueError(value)


def ascii_string(text: str) -> bytes:
    return _count(0x50, len(text)) + text.encode("ascii")


def array(refs: Sequence[int], ref_size: int = 1) -> bytes:
    return _count(0xA0, len(refs)) + b"".join(r.to_bytes(ref_size, "big") for r in refs)


def dictionary(keys: Sequence[int], values: Sequence[int], ref_size: int = 1) -> bytes:
    return _count(0xD0, len(keys)) + b"".join(r.to_bytes(ref_size, "big") for r in (*keys, *values))


def build(objects: Sequence[bytes], top: int = 0, *, ref_size: int = 1, offset_size: int = 0,
          count: int | None = None, table: int | None = None, offsets: Sequence[int] | None = None) -> bytes:
    """A binary plist of already encoded ``objects``; the keywords write a trailer or table that lies."""
    body = bytearray(b"bplist00")
    real = []
    for item in objects:
        real.append(len(body))
        body += item
    table_at = len(body)
    offsets = real if offsets is None else offsets
    size = offset_size or max(1, (max(offsets, default=0).bit_length() + 7) // 8)
    for offset in offsets:
        body += offset.to_bytes(size, "big")
    body += bytes(6) + bytes([size, ref_size])
    body += struct.pack(">QQQ", len(objects) if count is None else count, top, table_at if table is None else table)
    return bytes(body)


def self_array() -> bytes:
    """An array that holds itself."""
    return build([array([0])])


def dag_bomb(levels: int = 40, width: int = 2) -> bytes:
    """Each level an array referring ``width`` times to the next: a few hundred bytes, width**levels leaves."""
    objects = [array([i + 1] * width) for i in range(levels)]
    objects.append(ascii_string("leaf"))
    return build(objects)


def deep(levels: int) -> bytes:
    """Arrays nested ``levels`` deep, each holding the next."""
    ref_size = 1 if levels < 256 else 2 if levels < 1 << 16 else 4
    objects = [array([i + 1], ref_size) for i in range(levels)]
    objects.append(integer(1))
    return build(objects, ref_size=ref_size)
