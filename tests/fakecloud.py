"""A local fake of Cisco's Secure Endpoint API v1: a real HTTPS server on 127.0.0.1, for tests and bench/.

It implements the shapes docs/connector-facts.md lists: basic auth (401 with its ``errors[]`` body),
``GET /v1/computers`` and ``GET /v1/events`` with ``limit``/``offset`` pages and ``metadata.results``,
the ``X-RateLimit-*`` headers and 429 past the limit. ``script`` makes a request misbehave: a 5xx, a
slow or dripping answer, a truncated or huge body, a computer appearing or vanishing between pages.

    python -m tests.fakecloud --computers 100000 --folder DIR   # bench/: prints its port, runs until killed
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import ssl
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

CLIENT_ID, API_KEY = "a1b2c3d4e5f6a7b8c9d0", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
OPERATING_SYSTEMS = ("Windows 10 Enterprise", "Windows 11 Pro", "Windows Server 2022", "Ubuntu 22.04",
                     "Red Hat Enterprise Linux 9.4", "macOS 14.5")
VERSIONS = ("8.4.2.30123", "8.4.1.30110", "1.25.0.1062", "1.24.3.1030")
GROUPS = tuple(str(uuid.UUID(int=0x6866586300000000000000000000 + n)) for n in range(20))
# faults[] elements of several shapes: the API does not document one
FAULT_SHAPES: tuple[Any, ...] = ({"id": 2, "severity": "Critical", "title": "System extension not approved"},
                                 {"fault_id": 8, "level": "major"}, {"severity": "minor"}, "scan service down",
                                 {"severity": 3}, ["nested"], None)


def computer(n: int, now: float, rng: random.Random) -> dict[str, Any]:
    seen = now - rng.choice((60, 600, 3600, 86400, 86400 * 9))
    faults = [rng.choice(FAULT_SHAPES) for _ in range(rng.choice((0, 0, 0, 0, 0, 0, 0, 1, 2)))]
    return {
        "connector_guid": str(uuid.UUID(int=n + 0x10000000000000000000000000000000)),
        "hostname": f"host-{n:06d}.example.com", "windows_processor_id": f"{n:015x}", "active": rng.random() > 0.05,
        "links": {"computer": f"https://api.example/v1/computers/{n}"},
        "connector_version": rng.choice(VERSIONS), "operating_system": rng.choice(OPERATING_SYSTEMS),
        "os_version": "10.0.19045", "internal_ips": [f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"],
        "external_ip": "203.0.113.7", "group_guid": GROUPS[n % len(GROUPS)],
        "install_date": "2024-02-17T08:47:17Z", "is_compromised": rng.random() < 0.01,
        "network_addresses": [{"mac": "cd:e0:30:42:21:f7", "ip": "10.0.0.1"}],
        "policy": {"guid": "75f5a2b7-0000-4000-8000-000000000001", "name": "Protect Policy"},
        "groups": [{"guid": GROUPS[n % len(GROUPS)], "name": "Servers"}],
        "last_seen": datetime.fromtimestamp(seen, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "faults": faults,
        "isolation": {"available": True, "status": rng.choice(("not_isolated",) * 30 + ("isolated",))},
        "orbital": {"status": "not_enabled"}, "a_field_nobody_documented": {"x": [1, 2]},
    }


def fleet(size: int, seed: int = 7, now: float | None = None) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    moment = time.time() if now is None else now
    return [computer(n, moment, rng) for n in range(size)]


class FakeCloud(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, folder: Path, computers: list[dict[str, Any]], limit: int = 3000,
                 window: float = 3600.0) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(folder / "server.pem"), str(folder / "server.key"))
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.computers = computers
        self.events: list[dict[str, Any]] = []
        self.limit, self.window = limit, window
        self.used = 0
        self.window_start = time.monotonic()
        self.script: deque[str] = deque()  # one entry per request to come: how it misbehaves
        self.between_pages: Callable[[FakeCloud], None] | None = None  # runs after each computers page
        self.requests: list[tuple[str, int]] = []  # path, status
        self.lock = threading.Lock()
        self.url = f"https://127.0.0.1:{self.server_address[1]}"
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def __enter__(self) -> FakeCloud:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.shutdown()
        self.server_close()

    def statuses(self, path: str = "/v1/computers") -> list[int]:
        with self.lock:
            return [status for each, status in self.requests if each == path]

    def budget(self) -> tuple[int, float]:
        """Spends one request: (remaining after it, seconds until the reset); -1 remaining: over the limit."""
        with self.lock:
            now = time.monotonic()
            if now - self.window_start >= self.window:
                self.window_start, self.used = now, 0
            self.used += 1
            return self.limit - self.used, self.window - (now - self.window_start)


def event(ident: int, event_type_id: int, when: float, guid: str, severity: str = "High") -> dict[str, Any]:
    names = {2164260931: "Critical Fault Raised", 1090519107: "Major Fault Raised", 553648195: "Minor Fault Raised",
             553648196: "Fault Cleared"}
    return {"id": ident, "timestamp": int(when), "timestamp_nanoseconds": 0,
            "date": datetime.fromtimestamp(when, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00"),
            "event_type": names.get(event_type_id, "Threat Detected"), "event_type_id": event_type_id,
            "connector_guid": guid, "group_guids": [GROUPS[0]], "severity": severity,
            "computer": {"connector_guid": guid, "hostname": "host", "active": True}}


class _Handler(BaseHTTPRequestHandler):
    server: FakeCloud
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        with self.server.lock:
            act = self.server.script.popleft() if self.server.script else ""
        token = base64.b64encode(f"{CLIENT_ID}:{API_KEY}".encode()).decode()
        if self.headers.get("Authorization") != f"Basic {token}":
            return self._json(401, {"version": "v1.2.0", "data": {}, "errors": [
                {"error_code": 401, "description": "Unauthorized", "details": ["Unknown API key or Client ID"]}]})
        remaining, reset = self.server.budget()
        rate = {"X-RateLimit-Limit": str(self.server.limit), "X-RateLimit-Remaining": str(max(remaining, 0)),
                "X-RateLimit-Reset": str(int(reset) + 1),
                "X-RateLimit-ResetDate": datetime.fromtimestamp(time.time() + reset, timezone.utc).isoformat()}
        if remaining < 0 or act == "429":
            return self._json(429, {"errors": [{"error_code": 429, "description": "Too Many Requests"}]}, rate)
        if act.startswith("status:"):
            return self._json(int(act.split(":")[1]), {"errors": [{"error_code": 500, "description": "boom"}]}, rate)
        if act.startswith("sleep:"):
            time.sleep(float(act.split(":")[1]))
        if parts.path == "/v1/computers":
            items = self.server.computers
        elif parts.path == "/v1/events":
            wanted = {int(t) for t in query.get("event_type[]", [])}
            start = datetime.fromisoformat(query.get("start_date", ["1970-01-01T00:00:00+00:00"])[0]
                                           .replace("Z", "+00:00")).timestamp()
            items = sorted((e for e in self.server.events if e["timestamp"] >= start and
                            (not wanted or e["event_type_id"] in wanted)), key=lambda e: -e["timestamp"])
        else:
            return self._json(404, {"errors": [{"error_code": 404, "description": "Not Found"}]}, rate)
        limit = min(int(query.get("limit", ["500"])[0]), 500)
        offset = int(query.get("offset", ["0"])[0])
        page = items[offset:offset + limit]
        links = {"self": self.path}
        if offset + limit < len(items):  # as the API: "next" only where another page follows
            links["next"] = f"{self.server.url}{parts.path}?offset={offset + limit}&limit={limit}"
        body = {"version": "v1.2.0", "metadata": {
            "links": links, "results": {"total": len(items), "current_item_count": len(page),
                                        "index": offset // max(limit, 1), "items_per_page": limit}},
            "data": page}
        self._json(200, body, rate, act)
        if parts.path == "/v1/computers" and self.server.between_pages is not None:
            self.server.between_pages(self.server)

    def _json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None, act: str = "") -> None:
        data = json.dumps(body).encode()
        with self.server.lock:
            self.server.requests.append((urlsplit(self.path).path, status))
        if act == "huge":
            data = b'{"data": [' + b'{"a": 1},' * (8 * 1024 * 1024) + b'{}]}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if act == "truncate":
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
            return
        if act == "notjson":
            data = b"<html>502 Bad Gateway</html>"
        if act == "deep":
            data = b"[" * 200000 + b"]" * 200000
        if act == "superscript":  # a length in a digit int() does not take: read to the close instead
            self.send_header("Content-Length", "\u00b2")
            self.end_headers()
            self.wfile.write(data)
            self.close_connection = True
            return
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if act.startswith("drip:"):
            for byte in range(len(data)):
                self.wfile.write(data[byte:byte + 1])
                self.wfile.flush()
                time.sleep(float(act.split(":")[1]))
            return
        self.wfile.write(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--computers", type=int, default=100000)
    parser.add_argument("--folder", required=True, help="holds server.pem and server.key (tests/pki.py)")
    parser.add_argument("--limit", type=int, default=3000)
    args = parser.parse_args()
    server = FakeCloud(Path(args.folder), fleet(args.computers), args.limit)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
