"""The HTTP side of the exporter: listeners, TLS, basic auth, the landing page and /metrics.

Scrapes share one evaluation at a time (``exporter.evaluation``), each answered
by its deadline (Prometheus's scrape timeout less an offset), with 503 if the
evaluation is late. Connections are capped and idle ones closed
(``exporter.connections``). The web config file is checked on every request
and reloaded when it changed (``exporter.webconfig``); a broken or weaker edit
is logged and the last good config stays.
Listeners are bound here, or handed over by systemd (``--web.systemd-socket``,
see ``exporter.systemd``). ``HEAD`` is answered like ``GET``, without the body.
Beside the report, /metrics serves the exporter's own ``process_*`` and
``python_*`` metrics (``exporter.selfmetrics``) unless they are switched off.

Some 430 lines: the request handler (methods, paths, auth, compression, one write per answer) is one
class, and kept whole.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import gzip
import html
import logging
import math
import socket
import socketserver
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from email.message import Message
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import TYPE_CHECKING, Any, NamedTuple

from prometheus_client.exposition import choose_encoder

from ..checks import __version__
from ..checks.programs import stopping
from ..checks.report import Report
from .collector import report_registry
from .connections import Connection, ConnectionLimiter, fd_room
from .evaluation import EvaluationUnavailable, SharedEvaluation
from .logs import kv
from .requestreader import RequestReader
from .webconfig import WebConfigWatcher

if TYPE_CHECKING:  # the module is imported only when the metrics are on
    from .selfmetrics import ExporterMetrics

log = logging.getLogger("secure_endpoint_exporter")
MAX_BODY = 64 * 1024  # a GET body larger than this is refused, not read


class ExporterServer(HTTPServer):
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], family: socket.AddressFamily, app: WebApp,
                 adopted: socket.socket | None = None) -> None:
        """Binds ``address``; or, given ``adopted`` (a listening socket systemd passed), serves that one."""
        self.address_family = family
        self.app = app
        self._emfile_logged = 0.0
        if adopted is None:
            super().__init__(address, Handler)  # type: ignore[arg-type] # _serve_connection makes the handlers
            return
        # TCPServer.__init__ would make a socket of its own (a system call a unit's RestrictAddressFamilies=
        # may refuse) only to drop it: the adopted socket is bound and listening already.
        socketserver.BaseServer.__init__(self, address, Handler)  # type: ignore[arg-type]
        self.socket = adopted
        self.server_address = adopted.getsockname()
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def get_request(self) -> tuple[socket.socket, Any]:
        try:
            return super().get_request()
        except OSError as error:
            if error.errno in (errno.EMFILE, errno.ENFILE):
                # Out of descriptors: make room and pause, or the accept loop would spin on the ready listener.
                if time.monotonic() - self._emfile_logged > 60:
                    self._emfile_logged = time.monotonic()
                    log.warning("out of file descriptors, dropping the oldest waiting connection: raise the "
                                "open-file limit (LimitNOFILE) or lower --web.max-connections",
                                extra=kv(err=error.strerror))
                self.app.connections.evict_oldest()
                time.sleep(0.05)
            raise

    def process_request(self, request: Any, client_address: Any) -> None:
        """One thread per admitted connection; the cap bounds the threads as well as the descriptors."""
        connection = self.app.connections.admit(request)
        if connection is None:
            log.debug("connection from %s refused: every place is busy", client_address[0],
                      extra=kv(client=client_address[0]))
            self.shutdown_request(request)
            return
        thread = threading.Thread(target=self._serve_connection, args=(request, client_address, connection),
                                  daemon=True)
        try:
            thread.start()
        except RuntimeError:
            self.app.connections.release(connection)
            self.shutdown_request(request)

    def _serve_connection(self, request: socket.socket, client_address: Any, connection: Connection) -> None:
        sock = request
        try:
            request.settimeout(self.app.limits.read_timeout)
            with contextlib.suppress(OSError):  # answers go out at once, never held back for an ACK
                request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            tls = self.app.web.config.tls
            if tls is not None:
                # The handshake happens here, in the connection's own thread, not in the accept loop.
                sock = tls_sock = self.app.connections.wrap(connection, tls)
                try:
                    tls_sock.do_handshake()
                except (ssl.SSLError, OSError) as error:
                    log.debug("TLS handshake with %s failed", client_address[0],
                              extra=kv(client=client_address[0], err=str(error)))
                    return
            Handler(sock, client_address, self, connection)
        except Exception:  # noqa: BLE001 - one connection's trouble never reaches the accept loop
            self.handle_error(sock, client_address)
        finally:
            self.app.connections.release(connection)  # before the close: see ConnectionLimiter._drop
            self.shutdown_request(sock)
            if sock is not request:
                request.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s ended with an error", client_address[0], exc_info=True,
                  extra=kv(client=client_address[0]))


class Limits(NamedTuple):
    """The HTTP side's bounds; the defaults are the flags' defaults."""

    read_timeout: float = 10.0  # a connection's wait for a complete request, and each write
    max_connections: int = 256
    scrape_timeout: float = 10.0  # used when Prometheus sends a longer or no X-Prometheus-Scrape-Timeout-Seconds
    timeout_offset: float = 0.5  # kept back from the scrape timeout for the answer to travel
    max_stuck: int = 2  # evaluations past their deadline before scrapes fail at once


class WebApp:
    """The HTTP side every exporter of the distribution shares: listeners, TLS and basic auth, connection
    and request limits, the landing page. What /metrics answers is ``metrics``, the subclass's."""

    title = "Secure Endpoint Exporter"
    about = "Cisco Secure Endpoint connector faults for Prometheus."

    def __init__(self, telemetry_path: str, web_config: str | None, max_requests: int, limits: Limits | None = None,
                 exporter_metrics: bool = True) -> None:
        """``exporter_metrics``: serve the process's own ``process_*`` and ``python_*`` metrics too."""
        self.limits = limits or Limits()
        self.telemetry_path = telemetry_path
        self.web = WebConfigWatcher(web_config)
        self.slots = threading.BoundedSemaphore(max_requests) if max_requests > 0 else None
        room = fd_room(self.limits.max_connections)
        if room < self.limits.max_connections:
            log.warning("the open-file limit leaves room for %d connections, not %d (--web.max-connections): "
                        "raise it (LimitNOFILE in the systemd unit)", room, self.limits.max_connections,
                        extra=kv(connections=room, wanted=self.limits.max_connections))
        self.connections = ConnectionLimiter(room, self.limits.read_timeout)
        self.servers: list[ExporterServer] = []
        self._serving: list[threading.Thread] = []
        self.own: ExporterMetrics | None = None
        if exporter_metrics:
            from .selfmetrics import ExporterMetrics

            self.own = ExporterMetrics()  # made once: a scrape only reads the numbers

    def scrape_budget(self, header: str | None) -> float:
        """Seconds a scrape may take: the lower of Prometheus's X-Prometheus-Scrape-Timeout-Seconds (when
        it is a positive number) and --web.scrape-timeout, less --web.timeout-offset so that the answer
        still reaches Prometheus in time (blackbox_exporter does the same). When the offset would eat
        the whole timeout, half the timeout is used instead."""
        timeout = self.limits.scrape_timeout
        if header:
            try:
                asked = float(header)
            except ValueError:
                asked = 0.0
            if math.isfinite(asked) and asked > 0:
                timeout = min(timeout, asked)
        offset = self.limits.timeout_offset
        return timeout - offset if timeout > offset else timeout / 2

    def metrics(self, headers: Message, client: str) -> Answer:
        """The answer to a scrape (its request's ``headers``, from ``client``)."""
        raise NotImplementedError

    def listen(self, address: str) -> ExporterServer:
        host, port, family = parse_listen_address(address)
        server = ExporterServer((host, port), family, self)
        self.servers.append(server)
        return server

    def adopt(self, sock: socket.socket) -> ExporterServer:
        """Serve on ``sock``, a listening TCP socket bound by someone else (systemd)."""
        bound = sock.getsockname()
        server = ExporterServer((str(bound[0]), int(bound[1])), sock.family, self, adopted=sock)
        self.servers.append(server)
        return server

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """``poll_interval``: how soon ``shutdown`` is noticed."""
        self.connections.start()
        self._serving = [threading.Thread(target=s.serve_forever, args=(poll_interval,), daemon=True)
                         for s in self.servers]
        for thread in self._serving:
            thread.start()
        # Joined in short waits, not one: CPython runs signal handlers (SIGTERM, SIGHUP) only in the main
        # thread, and a signal the kernel hands to another thread does not wake a main thread blocked in an
        # endless join. Seen as a SIGHUP left unhandled, at random, while the cloud exporter's threads ran.
        alive = self._serving
        while alive:
            alive[0].join(poll_interval)
            alive = [thread for thread in alive if thread.is_alive()]

    def shutdown(self) -> None:
        self.connections.stop()
        for server in self.servers:
            if self._serving:  # BaseServer.shutdown waits forever for a loop that never ran
                server.shutdown()
            server.server_close()


class Exporter(WebApp):
    """The host exporter: a scrape shares the evaluation running (``exporter.evaluation``), by its deadline."""

    def __init__(self, produce: Callable[[float], Report], telemetry_path: str, web_config: str | None,
                 max_requests: int, limits: Limits | None = None, exporter_metrics: bool = True) -> None:
        """``produce(deadline)`` evaluates the host; ``deadline`` is a ``time.monotonic()`` value."""
        super().__init__(telemetry_path, web_config, max_requests, limits, exporter_metrics)
        self.evaluation = SharedEvaluation(produce, self.limits.max_stuck)

    def exposition(self, report: Report, accept: str) -> tuple[bytes, str]:
        """The body and content type of a scrape that sent ``accept``: the report's families and the
        exporter's own (unless switched off), in the format prometheus_client chooses for it."""
        registry = report_registry(report)
        if self.own is not None:
            registry.register(self.own)
        encoder, content_type = choose_encoder(accept)
        return encoder(registry), content_type

    def metrics(self, headers: Message, client: str) -> Answer:
        started = time.perf_counter()
        now = time.monotonic()
        budget = self.scrape_budget(headers.get("X-Prometheus-Scrape-Timeout-Seconds"))
        try:
            report = self.evaluation.get(now + budget, now + self.scrape_budget(None))
            if stopping():  # its ampcli was killed by the stop, not broken: no "unknown" for Prometheus
                raise EvaluationUnavailable("the exporter is shutting down")
            body, content_type = self.exposition(report, headers.get("Accept", ""))
        except EvaluationUnavailable as error:
            log.warning("scrape from %s answered 503", client, extra=kv(client=client, err=str(error)))
            return Answer(503, f"{error}\n".encode(), TEXT)
        except Exception as error:  # the evaluation itself broke: say so, keep serving
            log.error("scrape failed", exc_info=error, extra=kv(client=client))
            return Answer(500, f"scrape failed: {error}\n".encode(), TEXT)
        extra = {}
        if "gzip" in headers.get("Accept-Encoding", ""):
            body = gzip.compress(body, compresslevel=5)
            extra["Content-Encoding"] = "gzip"
        took = time.perf_counter() - started
        log.debug("scrape from %s took %.3f s", client, took, extra=kv(client=client, seconds=round(took, 6)))
        return Answer(200, body, content_type, extra)


def parse_listen_address(address: str) -> tuple[str, int, socket.AddressFamily]:
    """``host:port``, ``:port`` (all IPv4 and IPv6 addresses) or ``[v6]:port``."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"listen address {address!r} is not host:port")
    if host.startswith("[") and host.endswith("]"):
        return host[1:-1], int(port_text), socket.AF_INET6
    if ":" in host:
        raise ValueError(f"listen address {address!r}: put an IPv6 address in brackets, e.g. [::1]:9990")
    if host == "":
        if socket.has_ipv6:
            return "::", int(port_text), socket.AF_INET6  # IPv4 too, unless the kernel sets bindv6only
        return "0.0.0.0", int(port_text), socket.AF_INET
    return host, int(port_text), socket.AF_INET


LANDING = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body>
<h1>{title}</h1>
<p>{about} Version {version}.</p>
<ul><li><a href="{path}">Metrics</a></li></ul>
</body></html>
"""


TEXT = "text/plain; charset=utf-8"


class Answer(NamedTuple):
    code: int
    body: bytes
    content_type: str
    extra: dict[str, str] | None = None
    # A body too large to hold whole (the cloud exporter's fleet): sent as it is made, chunked, and cut
    # off at ``deadline`` (a time.monotonic()), so a client that reads slowly holds it no longer than that.
    stream: Iterator[bytes] | None = None
    deadline: float = 0.0
    release: Callable[[], None] | None = None  # gives back the request slot a streamed answer holds


def _is_token(name: str) -> bool:
    """An HTTP field name: one or more token characters (RFC 9110 section 5.1), so no white space."""
    return bool(name) and all(c.isascii() and (c.isalnum() or c in "!#$%&'*+-.^_`|~") for c in name)


class Handler(BaseHTTPRequestHandler):
    server: ExporterServer
    protocol_version = "HTTP/1.1"
    server_version = f"secure-endpoint-exporter/{__version__}"

    rfile: RequestReader  # type: ignore[assignment]

    def __init__(self, request: Any, client_address: Any, server: ExporterServer, slot: Connection) -> None:
        self.slot = slot  # the socket timeout (--web.read-timeout) is set in _serve_connection
        super().__init__(request, client_address, server)

    def setup(self) -> None:
        super().setup()
        self.rfile = RequestReader(self.rfile)  # type: ignore[arg-type]

    def handle_one_request(self) -> None:
        self.rfile.start()
        try:
            super().handle_one_request()
        finally:
            self.server.app.connections.waiting(self.slot)  # the keep-alive wait for the next request starts

    def parse_request(self) -> bool:
        """Headers, then any body (read and dropped), all while the connection counts as waiting (it is
        busy only once its credentials are checked: see ``_answer``)."""
        if not super().parse_request():
            return False
        if self.rfile.malformed:
            return self._refuse(400, "Bad request line or header field")
        self.rfile.body()
        return not (self.command in ("GET", "HEAD") and not self._drop_body())

    def _drop_body(self) -> bool:
        """A GET needs no body; one that comes anyway is read (it must not pass for the next request)
        within the connection's read deadline, or refused when it is large or has no length.

        Framing that two parsers could read two ways (RFC 9112 section 6) is refused and the
        connection closed, so no body can pass for a second request: a field name with white space
        before its colon, Content-Length values that differ or are not plain digits, and any
        Transfer-Encoding (a GET's body needs none).
        """
        # A line that is no "name: value" (white space before the colon) ends the parsed fields: the lines
        # from there on sit in the message's payload, and its defects say so.
        if self.headers.defects or self.headers.get_payload() or not all(_is_token(name) for name in self.headers):
            return self._refuse(400, "Bad header field")
        # A value folded over lines (obs-fold), or holding CR, LF or NUL, is read one way here and another
        # by a proxy in front (RFC 9112 section 5.2): refused too.
        if any(c in value for value in self.headers.values() for c in "\r\n\0"):
            return self._refuse(400, "Bad header field value")
        if "Transfer-Encoding" in self.headers:
            return self._refuse(411, "A request body needs a Content-Length")
        values = {part.strip() for text in self.headers.get_all("Content-Length") or () for part in text.split(",")}
        if not values:
            return True
        if len(values) > 1 or not all(value.isascii() and value.isdigit() and len(value) <= 18 for value in values):
            return self._refuse(400, "Bad Content-Length")
        length = int(values.pop())
        if length > MAX_BODY:
            return self._refuse(413, "Request body too large")
        if length and len(self.rfile.read(length)) < length:
            self.close_connection = True
            return False
        return True

    def _refuse(self, code: int, message: str) -> bool:
        """An error answer, after which the connection is closed: what follows on it cannot be trusted.
        (``send_error`` answers with ``Connection: close`` and sets ``close_connection``.)"""
        self.send_error(code, message)
        return False

    def do_HEAD(self) -> None:
        """The same status and headers as GET (the scrape runs, so Content-Length is the real one), no body."""
        self.do_GET()

    def do_GET(self) -> None:
        answer = self._answer(self.server.app)
        if answer.stream is None:
            self._send(answer.code, answer.body, answer.content_type, answer.extra)
            return
        try:
            self._stream(answer)
        finally:  # however it ended (sent, HEAD, a client gone mid-write, the deadline), the slot is free
            close = getattr(answer.stream, "close", None)
            if close is not None:
                close()
            if answer.release is not None:
                answer.release()

    def _answer(self, app: WebApp) -> Answer:
        """The answer, made before anything is written: the request's slot is free again by then, so a
        client that does not read what it asked for holds no slot (only its connection, see ``_send``).
        A streamed answer holds its slot until it is sent, within its deadline."""
        app.web.refresh()
        if not self._authorized(app):
            # Closed after the answer: a client without credentials cannot keep a place with requests
            # it pipelines and never reads, while the scraper with credentials waits for one. Until its
            # credentials passed the connection counts as waiting, so it may lose its place to a new one.
            self.close_connection = True
            return Answer(401, b"Unauthorized\n", TEXT, {"WWW-Authenticate": 'Basic realm="secure-endpoint-exporter"'})
        app.connections.busy(self.slot)
        path = self.path.split("?", 1)[0]
        if path == app.telemetry_path:
            if app.slots is not None and not app.slots.acquire(blocking=False):
                return Answer(503, b"Too many concurrent requests\n", TEXT)
            answer = None
            try:
                answer = app.metrics(self.headers, self.client_address[0])
            finally:
                if app.slots is not None and (answer is None or answer.stream is None):
                    app.slots.release()
            if app.slots is not None and answer.stream is not None:
                return answer._replace(release=app.slots.release)
            return answer
        if path == "/":
            page = LANDING.format(title=html.escape(app.title), about=html.escape(app.about),
                                  version=html.escape(__version__), path=html.escape(app.telemetry_path, True))
            return Answer(200, page.encode(), "text/html; charset=utf-8")
        return Answer(404, b"Not Found\n", TEXT)

    def _authorized(self, app: WebApp) -> bool:
        auth = app.web.auth
        if not auth.users:
            return True
        header = self.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, ValueError):  # not base64, not ASCII, or not UTF-8 (UnicodeDecodeError)
            return False
        return auth.check(user, password)

    def _send(self, code: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        """The whole answer in one write: headers and body in two would let Nagle's algorithm hold the
        body back until the client's delayed ACK (some 40 ms) on a kept-alive connection.

        While it is written the connection counts as waiting again: a client that does not read its
        answer is closed when it has not taken it within --web.read-timeout (the reaper), or sooner
        when a new connection needs its place; a scraper takes its answer within a millisecond."""
        self.server.app.connections.waiting(self.slot)
        self.log_request(code)
        head = [f"{self.protocol_version} {code} {self.responses[code][0]}", f"Server: {self.version_string()}",
                f"Date: {self.date_time_string()}", f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
        head += [f"{name}: {value}" for name, value in {**self.server.app.web.config.headers, **(extra or {})}.items()]
        if self.close_connection:
            head.append("Connection: close")
        elif self.request_version == "HTTP/1.0":
            # A 1.0 client that asked to keep the connection waits for the close unless told it is kept.
            head.append("Connection: keep-alive")
        if self.command == "HEAD":
            body = b""  # the headers (Content-Length included) are GET's; RFC 9110 section 9.3.2
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)

    def _stream(self, answer: Answer) -> None:
        """A streamed answer: chunked on HTTP/1.1 (the end is marked, so a cut-off answer is seen as one),
        until the connection closes on 1.0; gzip'ed as it goes when the client takes it (level 1: a fleet's
        70 MB go out in well under a second). Past the deadline the connection is cut, mid-answer."""
        assert answer.stream is not None
        self.server.app.connections.waiting(self.slot)
        self.log_request(answer.code)
        chunked = self.request_version != "HTTP/1.0"
        if not chunked:
            self.close_connection = True
        head = [f"{self.protocol_version} {answer.code} {self.responses[answer.code][0]}",
                f"Server: {self.version_string()}", f"Date: {self.date_time_string()}",
                f"Content-Type: {answer.content_type}"]
        packer = None
        if "gzip" in self.headers.get("Accept-Encoding", ""):
            packer = zlib.compressobj(1, zlib.DEFLATED, 31)  # wbits 31: the gzip wrapper
            head.append("Content-Encoding: gzip")
        head += [f"{name}: {value}" for name, value in {**self.server.app.web.config.headers,
                                                         **(answer.extra or {})}.items()]
        head.append("Transfer-Encoding: chunked" if chunked else "Connection: close")
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        if self.command == "HEAD":  # GET's headers and no body at all, not even the last chunk (RFC 9110 9.3.2)
            return
        for piece in answer.stream:
            self._chunk(piece if packer is None else packer.compress(piece), chunked, answer.deadline)
        if packer is not None:
            self._chunk(packer.flush(), chunked, answer.deadline)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def _chunk(self, data: bytes, chunked: bool, deadline: float) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            self.close_connection = True
            raise TimeoutError("the answer was not taken before its deadline")
        if not data:
            return
        self.connection.settimeout(min(left, self.server.app.limits.read_timeout))
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s", self.address_string(), self.requestline,
                      extra=kv(client=self.address_string(), request=self.requestline,
                               code=int(code) if isinstance(code, int) else code))

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args, extra=kv(client=self.address_string()))
