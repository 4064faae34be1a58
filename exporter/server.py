"""The HTTP side of the exporter: listeners, TLS, basic auth, the landing page and /metrics.

Scrapes that arrive while an evaluation runs wait for that evaluation and
share its result, so a burst of scrapes never starts a pile of ampcli
processes. The web config file is checked on every request and reloaded when
it changed; a broken edit is logged and the last good config stays.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import html
import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from checks import __version__
from checks.report import Report
from exporter import webconfig
from exporter.collector import ReportCollector

log = logging.getLogger("secure_endpoint_exporter")


class _Flight:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Report | None = None
        self.error: Exception | None = None


class SharedEvaluation:
    """One evaluation in flight at a time; callers that arrive meanwhile get its result."""

    def __init__(self, produce: Callable[[], Report]) -> None:
        self._produce = produce
        self._lock = threading.Lock()
        self._flight: _Flight | None = None

    def get(self) -> Report:
        with self._lock:
            flight = self._flight
            leader = flight is None
            if flight is None:
                flight = self._flight = _Flight()
        if leader:
            try:
                flight.result = self._produce()
            except Exception as error:  # noqa: BLE001 - handed to every scrape waiting on this flight
                flight.error = error
            finally:
                with self._lock:
                    self._flight = None
                flight.done.set()
        else:
            flight.done.wait()
        if flight.error is not None:
            raise flight.error
        assert flight.result is not None
        return flight.result


class WebConfigWatcher:
    """The current web config, reloaded when the file's size or mtime changes."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self.config = webconfig.WebConfig(None, {}, {})
        self.auth = webconfig.Authenticator({})
        if path:
            self._stamp = self._stat()
            self._apply(webconfig.load(path))  # errors at start are fatal, with a clear message

    def _stat(self) -> tuple[int, int] | None:
        assert self.path is not None
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def _apply(self, config: webconfig.WebConfig) -> None:
        self.config = config
        self.auth = webconfig.Authenticator(config.users)

    def refresh(self) -> None:
        if not self.path:
            return
        stamp = self._stat()
        if stamp == self._stamp:
            return
        with self._lock:
            if stamp == self._stamp:
                return
            self._stamp = stamp
            try:
                config = webconfig.load(self.path)
            except webconfig.WebConfigError as error:
                log.error("web config not reloaded, keeping the last good one: %s", error)
                return
            if (config.tls is None) != (self.config.tls is None):
                log.error("web config not reloaded: turning TLS on or off needs a restart")
                return
            self._apply(config)
            log.info("web config reloaded from %s", self.path)


class ExporterServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], family: socket.AddressFamily, app: Exporter) -> None:
        self.address_family = family
        self.app = app
        super().__init__(address, Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        """The TLS handshake happens here, in the request's own thread, not in the accept loop."""
        tls = self.app.web.config.tls
        if tls is not None:
            request.settimeout(10)
            try:
                request = tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as error:
                log.debug("TLS handshake with %s failed: %s", client_address[0], error)
                return
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s ended with an error", client_address[0], exc_info=True)


class Exporter:
    def __init__(self, produce: Callable[[], Report], telemetry_path: str, web_config: str | None,
                 max_requests: int) -> None:
        self.evaluation = SharedEvaluation(produce)
        self.telemetry_path = telemetry_path
        self.web = WebConfigWatcher(web_config)
        self.slots = threading.BoundedSemaphore(max_requests) if max_requests > 0 else None
        self.servers: list[ExporterServer] = []

    def registry(self) -> CollectorRegistry:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(ReportCollector(self.evaluation.get))
        return registry

    def listen(self, address: str) -> ExporterServer:
        host, port, family = parse_listen_address(address)
        server = ExporterServer((host, port), family, self)
        self.servers.append(server)
        return server

    def serve_forever(self) -> None:
        threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in self.servers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def shutdown(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()


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
<html lang="en"><head><meta charset="utf-8"><title>Secure Endpoint Exporter</title></head>
<body>
<h1>Secure Endpoint Exporter</h1>
<p>Cisco Secure Endpoint connector faults for Prometheus. Version {version}.</p>
<ul><li><a href="{path}">Metrics</a></li></ul>
</body></html>
"""


class Handler(BaseHTTPRequestHandler):
    server: ExporterServer
    protocol_version = "HTTP/1.1"
    server_version = f"secure-endpoint-exporter/{__version__}"

    def do_GET(self) -> None:
        app = self.server.app
        app.web.refresh()
        if not self._authorized(app):
            self._send(401, b"Unauthorized\n", "text/plain; charset=utf-8",
                       {"WWW-Authenticate": 'Basic realm="secure-endpoint-exporter"'})
            return
        path = self.path.split("?", 1)[0]
        if path == app.telemetry_path:
            if app.slots is not None and not app.slots.acquire(blocking=False):
                self._send(503, b"Too many concurrent requests\n", "text/plain; charset=utf-8")
                return
            try:
                self._metrics(app)
            finally:
                if app.slots is not None:
                    app.slots.release()
        elif path == "/":
            page = LANDING.format(version=html.escape(__version__), path=html.escape(app.telemetry_path, True))
            self._send(200, page.encode(), "text/html; charset=utf-8")
        else:
            self._send(404, b"Not Found\n", "text/plain; charset=utf-8")

    def _authorized(self, app: Exporter) -> bool:
        auth = app.web.auth
        if not auth.users:
            return True
        header = self.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return auth.check(user, password)

    def _metrics(self, app: Exporter) -> None:
        started = time.perf_counter()
        encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
        try:
            body = encoder(app.registry())
        except Exception as error:  # the evaluation itself broke: say so, keep serving
            log.error("scrape failed: %s", error, exc_info=log.isEnabledFor(logging.DEBUG))
            self._send(500, f"scrape failed: {error}\n".encode(), "text/plain; charset=utf-8")
            return
        extra = {}
        if "gzip" in self.headers.get("Accept-Encoding", ""):
            body = gzip.compress(body, compresslevel=5)
            extra["Content-Encoding"] = "gzip"
        self._send(200, body, content_type, extra)
        log.debug("scrape from %s took %.3f s", self.client_address[0], time.perf_counter() - started)

    def _send(self, code: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in {**self.server.app.web.config.headers, **(extra or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)
