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

from ...checks import __version__
from .credentials import Credentials

REGIONS = {"nam": "https://api.amp.cisco.com", "eu": "https://api.eu.amp.cisco.com",
           "apjc": "https://api.apjc.amp.cisco.com"}
MAX_BODY = 32 * 1024 * 1024  # a page of 500 computers is some 1 MB; a bigger answer is refused, not read
USER_AGENT = f"secure-endpoint-cloud-exporter/{__version__}"


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
    return parts.hostname, port, parts.path.rstrip("/")


def _header_int(value: str | None) -> int | None:
    if value is None or not value.strip().isdigit() or len(value.strip()) > 12:
        return None
    return int(value.strip())


def _rate_header(headers: http.client.HTTPMessage, name: str) -> int | None:
    # real answers spell them x-ratelimit-*, Cisco's API reference X-Rate-Limit-*: either is read
    return _header_int(headers.get(f"X-RateLimit-{name}") or headers.get(f"X-Rate-Limit-{name}"))


def rate_limit(headers: http.client.HTTPMessage, now: float) -> RateLimit:
    reset = _rate_header(headers, "Reset")  # seconds until the budget is full again (at most 3600)
    return RateLimit(_rate_header(headers, "Limit"), _rate_header(headers, "Remaining"),
                     float(reset) if reset is not None else None, now)


def _error_text(data: bytes) -> str:
    """The API's own words from an error body (``errors[].description``), short, or ""."""
    try:
        body = json.loads(data[:65536])
        first = body["errors"][0]
        text = f"{first.get('description', '')} {' '.join(str(d) for d in first.get('details', []))}".strip()
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return ""
    return "".join(ch for ch in text if ch.isprintable())[:200]


class Client:
    """GETs to one API host over one kept-alive connection; not thread-safe (the poller is its one user)."""

    def __init__(self, url: str, credentials: Credentials, ca_file: str | None = None, timeout: float = 30.0) -> None:
        self.host, self.port, self.prefix = base_url(url)
        self.context = ssl.create_default_context(cafile=ca_file)  # verification on; raises when unreadable
        token = base64.b64encode(f"{credentials.client_id}:{credentials.api_key}".encode()).decode("ascii")
        self._authorization = f"Basic {token}"
        self.timeout = timeout
        self._connection: http.client.HTTPSConnection | None = None

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
        target = f"{self.prefix}{path}" + (f"?{urlencode(params)}" if params else "")
        connection = self._connection or http.client.HTTPSConnection(
            self.host, self.port, context=self.context, timeout=deadline - now)
        self._connection = None  # given back only after a complete answer on a connection that stays open
        watchdog = threading.Timer(deadline - now, _shut, (connection,))
        watchdog.daemon = True
        watchdog.start()
        try:
            try:
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
                if time.monotonic() >= deadline - 0.01:
                    raise APIError(f"no complete answer within {self.timeout:g} s", "timeout") from None
                raise APIError(f"{type(error).__name__}: {error}") from None
        finally:
            watchdog.cancel()
        rate = rate_limit(response.headers, time.monotonic())
        if response.will_close:
            connection.close()
        else:
            self._connection = connection
        return _answer(response.status, data, rate)


def _shut(connection: http.client.HTTPSConnection) -> None:
    """The deadline passed: end the request's reads and writes at once (called from the timer's thread)."""
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _read(response: http.client.HTTPResponse, limit: int) -> bytes:
    length = response.getheader("Content-Length")
    if length is not None and length.strip().isdigit() and int(length) > limit:
        raise Malformed(f"the answer is {int(length)} bytes, more than {limit}", str(response.status))
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
    if length is not None and length.strip().isdigit() and size != int(length):
        raise http.client.IncompleteRead(b"", int(length) - size)
    return b"".join(chunks)


def _answer(status: int, data: bytes, rate: RateLimit) -> Answer:
    code = str(status)
    said = _error_text(data)
    if status in (401, 403):
        raise Rejected(f"HTTP {status}: the client id and API key were refused {said}".strip(), code, rate)
    if status == 429:
        raise RateLimited(f"HTTP 429: the hour's requests are spent {said}".strip(), code, rate)
    if status != 200:
        raise APIError(f"HTTP {status} {said}".strip(), code, rate)
    try:
        body = json.loads(data)
    except ValueError as problem:  # UnicodeDecodeError is one
        raise Malformed(f"the answer is not JSON: {problem}", code) from None
    if not isinstance(body, dict):
        raise Malformed("the answer is not a JSON object", code)
    return Answer(body, rate)
