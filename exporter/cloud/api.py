"""One GET to Cisco's Secure Endpoint API, bounded in bytes and time, with what its rate-limit headers say.

The standard library's ``http.client`` is enough for GETs on one kept-alive HTTPS connection, so the
fleets' Python needs no further package for it. What it lacks is a bound on a whole request: a server
that sends a byte every few seconds never trips a socket timeout. A timer therefore shuts the socket
at the request's deadline, which ends any read at once. Redirects are never followed: the credentials
go to the configured host only. TLS is always verified, against ``--cloud.ca-file`` or the system's CAs.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import socket
import ssl
import threading
import time
from typing import Any, NamedTuple
from urllib.parse import urlencode, urlsplit

from ...checks import __version__, safefile
from .credentials import Credentials

REGIONS = {"nam": "https://api.amp.cisco.com", "eu": "https://api.eu.amp.cisco.com",
           "apjc": "https://api.apjc.amp.cisco.com"}
# A page of 500 computers is some 1 MB; a bigger answer is refused, not read. JSON of tiny objects takes
# some 25 times its size in memory, so this also bounds what one hostile page can cost (about 100 MB).
MAX_BODY = 4 * 1024 * 1024
USER_AGENT = f"secure-endpoint-cloud-exporter/{__version__}"
RESET_MAX = 3600  # the limit is an hour's: a longer X-RateLimit-Reset is not believed


class RateLimit(NamedTuple):
    """What the last answer's ``X-RateLimit-*`` headers said; None where a header was missing or bad."""

    limit: int | None = None
    remaining: int | None = None
    reset_seconds: float | None = None  # until the budget is full again
    seen_at: float = 0.0  # time.monotonic() of the answer


class APIError(Exception):
    """A request that gave no usable answer. ``code`` is the HTTP status, or "error" when none came."""

    reason = "unavailable"  # which of the poll failures (self-metrics) this is

    def __init__(self, message: str, code: str = "error", rate: RateLimit | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.rate = rate  # what the error answer's headers said, if one came


class Rejected(APIError):
    """401 or 403: the credentials are wrong or lack the right. Polling stops until they change."""

    reason = "rejected"


class RateLimited(APIError):
    """429: the hour's budget is spent."""

    reason = "rate_limited"


class Malformed(APIError):
    """An answer that is not the JSON object expected, or too large."""

    reason = "malformed"


class Answer(NamedTuple):
    body: dict[str, Any]
    rate: RateLimit


def base_url(url: str) -> tuple[str, int, str]:
    """The host, port and path prefix of ``--cloud.api-url``; only https, without user, query or fragment."""
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise ValueError(f"{url!r}: the API is reached over https only (the key must not travel in clear)")
    if not parts.hostname or parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError(f"{url!r} is not a base URL such as https://api.eu.amp.cisco.com")
    try:
        port = parts.port or 443
    except ValueError as error:
        raise ValueError(f"{url!r}: {error}") from None
    prefix = parts.path.rstrip("/")
    if prefix.lower().endswith(("/v0", "/v1", "/v3")):
        raise ValueError(f"{url!r}: give the base without the API version (the exporter adds /v1)")
    return parts.hostname, port, prefix


def _digits(value: str | None) -> int | None:
    """A header's value as a plain decimal number (ASCII digits only: ``str.isdigit`` also takes "²")."""
    text = (value or "").strip()
    if not text or len(text) > 12 or not (text.isascii() and text.isdigit()):
        return None
    return int(text)


def _rate_header(headers: http.client.HTTPMessage, name: str) -> int | None:
    # real answers spell them x-ratelimit-*, Cisco's API reference X-Rate-Limit-*: either is read
    return _digits(headers.get(f"X-RateLimit-{name}") or headers.get(f"X-Rate-Limit-{name}"))


def rate_limit(headers: http.client.HTTPMessage, now: float) -> RateLimit:
    reset = _rate_header(headers, "Reset")  # seconds until the budget is full again: at most the hour
    limit = _rate_header(headers, "Limit")
    return RateLimit(limit if limit else None, _rate_header(headers, "Remaining"),
                     float(min(reset, RESET_MAX)) if reset is not None else None, now)


def _error_text(data: bytes) -> str:
    """The API's own words from an error body (``errors[].description``), short, or ""."""
    try:
        body = json.loads(data[:65536])
        first = body["errors"][0]
        text = f"{first.get('description', '')} {' '.join(str(d) for d in first.get('details', []))}".strip()
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError):
        return ""
    return "".join(ch for ch in text if ch.isprintable())[:200]


MAX_CA_FILE = 1024 * 1024  # a CA bundle (Debian's whole one is some 200 KB)


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """Verification always on, against ``ca_file`` (read as a bounded regular file: a FIFO there must not hang
    the start) or the system's CAs. Raises OSError, ssl.SSLError or safefile.Refused."""
    if ca_file is None:
        return ssl.create_default_context()
    data = safefile.read(ca_file, MAX_CA_FILE)
    return ssl.create_default_context(cadata=data.decode("ascii", "replace") if data.lstrip().startswith(b"-----")
                                      else data)  # PEM as text, DER as bytes


class Client:
    """GETs to one API host over one kept-alive connection; not thread-safe (the poller is its one user)."""

    def __init__(self, url: str, credentials: Credentials, ca_file: str | None = None, timeout: float = 30.0) -> None:
        self.host, self.port, self.prefix = base_url(url)
        self.context = tls_context(ca_file)
        token = base64.b64encode(f"{credentials.client_id}:{credentials.api_key}".encode()).decode("ascii")
        self._authorization = f"Basic {token}"
        self.timeout = timeout
        self._connection: http.client.HTTPSConnection | None = None
        self._in_flight: http.client.HTTPSConnection | None = None

    def abort(self) -> None:
        """Ends the request in flight at once (from another thread: the exporter is stopping)."""
        connection = self._in_flight
        if connection is not None:
            _shut(connection)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def get(self, path: str, params: list[tuple[str, str]], deadline: float | None = None) -> Answer:
        """``path`` below /v1 or /v3 and its query; ``deadline``: a time.monotonic() the request ends by
        (at most ``timeout`` from now). Raises APIError (or a subclass) unless the answer is 200 with a
        JSON object; the rate limit of an error answer is on the error as ``rate``."""
        now = time.monotonic()
        deadline = min(deadline or now + self.timeout, now + self.timeout)
        if deadline <= now:
            raise APIError("no time left for the request")
        # "[]" as the API's own examples write it (event_type[]=...), not percent-encoded
        target = f"{self.prefix}{path}" + (f"?{urlencode(params, safe='[]')}" if params else "")
        connection = self._connection or http.client.HTTPSConnection(
            self.host, self.port, context=self.context, timeout=deadline - now)
        self._connection = None  # given back only after a complete answer on a connection that stays open
        fired = threading.Event()

        def cut() -> None:
            fired.set()
            _shut(connection)

        watchdog = threading.Timer(deadline - now, cut)
        watchdog.daemon = True
        watchdog.start()
        self._in_flight = connection
        try:
            try:
                if connection.sock is None:
                    connection.connect()  # name lookup, TCP and TLS; the watchdog cannot cut a lookup short
                    if time.monotonic() >= deadline:
                        raise TimeoutError("connecting took the whole request's time")
                connection.request("GET", target, headers={
                    "Authorization": self._authorization, "Accept": "application/json",
                    "Accept-Encoding": "identity", "User-Agent": USER_AGENT})
                response = connection.getresponse()
                data = _read(response, MAX_BODY)
            except Malformed:
                connection.close()
                raise
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                if isinstance(error, TimeoutError) or time.monotonic() >= deadline - 0.01:
                    raise APIError(f"{self.host}{path}: no complete answer within {self.timeout:g} s",
                                   "timeout") from None
                raise APIError(f"{self.host}{path}: {type(error).__name__}: {error}") from None
        finally:
            watchdog.cancel()
            self._in_flight = None
        rate = rate_limit(response.headers, time.monotonic())
        if response.will_close or fired.is_set():  # the deadline came just as the answer ended: socket shut
            connection.close()
        else:
            self._connection = connection
        return _answer(response.status, data, rate, f"{self.host}{path}", response.getheader("Content-Type") or "",
                       response.getheader("Content-Encoding") or "")


def _shut(connection: http.client.HTTPSConnection) -> None:
    """The deadline passed: end the request's reads and writes at once (called from the timer's thread)."""
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _read(response: http.client.HTTPResponse, limit: int) -> bytes:
    length = _digits(response.getheader("Content-Length"))
    if length is not None and length > limit:
        raise Malformed(f"the answer is {length} bytes, more than {limit}", str(response.status))
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = response.read1(65536)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise Malformed(f"the answer is more than {limit} bytes", str(response.status))
        chunks.append(chunk)
    response.close()  # read to its end: the connection may carry the next request (read1 does not mark it)
    if length is not None and size != length:
        raise http.client.IncompleteRead(b"", length - size)
    return b"".join(chunks)


def _answer(status: int, data: bytes, rate: RateLimit, where: str = "", content_type: str = "",
            encoding: str = "") -> Answer:
    code = str(status)
    said = _error_text(data)
    if status in (401, 403):
        raise Rejected(f"{where}: HTTP {status}: the client id and API key were refused {said}".strip(), code, rate)
    if status == 429:
        raise RateLimited(f"{where}: HTTP 429: the hour's requests are spent {said}".strip(), code, rate)
    if status == 407:
        raise APIError(f"{where}: HTTP 407: a proxy between here and the API wants its own credentials", code, rate)
    if status != 200:
        raise APIError(f"{where}: HTTP {status} {said or _glimpse(data, content_type)}".strip(), code, rate)
    if encoding and encoding.lower() != "identity":
        raise Malformed(f"{where}: the answer is {encoding}-encoded (a proxy?), though identity was asked for",
                        code)
    try:
        body = json.loads(data)
    except (ValueError, RecursionError) as problem:  # UnicodeDecodeError is a ValueError
        raise Malformed(f"{where}: the answer is not JSON ({type(problem).__name__}): "
                        f"{_glimpse(data, content_type)}", code) from None
    if not isinstance(body, dict):
        raise Malformed(f"{where}: the answer is not a JSON object", code)
    return Answer(body, rate)


def _glimpse(data: bytes, content_type: str) -> str:
    """What an answer that is not the API's looks like: its type and first printable characters."""
    start = "".join(ch for ch in data[:120].decode("utf-8", "replace") if ch.isprintable())
    return f"({content_type or 'no Content-Type'}) {start!r}"
