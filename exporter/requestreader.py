"""What the HTTP server reads of a request's head: bounded in bytes, and every line checked as it comes.

``http.server`` reads up to 100 header lines of 64 KiB each for one request, so 64 connections could
make the exporter hold some 400 MB. Here the request line and the header fields together may take
``MAX_HEAD`` bytes (Prometheus sends well under 1 KiB); past that the request is answered 431, before
anything more is read. With at most ``--web.max-connections`` connections, that bounds what all
requests' heads can hold at once: 256 × 32 KiB = 8 MiB.

A CR inside a line, or a NUL, is read one way by the e-mail parser ``http.server`` uses (it ends a
line at a bare CR) and another way by a proxy in front: such a request is marked and refused.
"""

from __future__ import annotations

import http.client
from typing import Any, BinaryIO

MAX_HEAD = 32 * 1024  # bytes of the request line and header fields of one request


class HeadTooLarge(http.client.LineTooLong):
    """Raised while the head is read; ``http.server`` answers a ``LineTooLong`` with 431."""


class RequestReader:
    """The connection's buffered reader, with each request's head counted and checked line by line.

    ``start`` begins a request; ``body`` ends the head (what is read after it is a body, bounded
    by the handler). Everything else is passed to the reader it wraps.
    """

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._left = MAX_HEAD
        self._in_head = True
        self.malformed = ""  # why a line of this request's head is refused, or ""

    def start(self) -> None:
        self._left, self._in_head, self.malformed = MAX_HEAD, True, ""

    def body(self) -> None:
        self._in_head = False

    def readline(self, size: int = -1) -> bytes:
        if not self._in_head:
            return self._raw.readline(size)
        if self._left <= 0:
            raise HeadTooLarge(f"more than {MAX_HEAD} bytes")
        limit = self._left + 1 if size < 0 else min(size, self._left + 1)
        line = self._raw.readline(limit)
        self._left -= len(line)
        if self._left < 0:
            raise HeadTooLarge(f"more than {MAX_HEAD} bytes")
        text = line[:-2] if line.endswith(b"\r\n") else line.rstrip(b"\n")
        if not self.malformed and (b"\r" in text or b"\0" in text):
            self.malformed = "a CR or NUL inside a line"
        return line

    def read(self, size: int = -1) -> bytes:
        return self._raw.read(size)

    def __getattr__(self, name: str) -> Any:  # close, closed, peek ...: the wrapped reader's own
        return getattr(self._raw, name)
