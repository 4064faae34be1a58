"""The exporter's HTTP side against hostile clients and hostile edits of the web config.

Idle, slow and parked connections; a full open-file limit; evaluations that miss the scrape's
deadline; passwords bcrypt cannot take; user names probed by timing; malformed hashes; reloads
that would weaken the protection; a FIFO in place of the web config.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import http.client
import os
import re
import resource
import select
import shutil
import socket
import ssl
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from secure_endpoint_monitoring.checks.evaluate import evaluate
from secure_endpoint_monitoring.checks.host import Host
from secure_endpoint_monitoring.checks.report import Report
from secure_endpoint_monitoring.exporter import webconfig
from secure_endpoint_monitoring.exporter.evaluation import GRACE
from secure_endpoint_monitoring.exporter.server import Exporter, Limits
from tests import pki
from tests.commands import run, script
from tests.daemons import exporter, stop
from tests.hosttree import LinuxTree
from tests.test_exporter_http import get
from tests.test_exporter_logfmt import parse_log


def _hash(password: str, cost: int = 4) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=cost)).decode()


def _basic(user: str, password: str | bytes) -> dict[str, str]:
    secret = password.encode() if isinstance(password, str) else password
    return {"Authorization": "Basic " + base64.b64encode(user.encode() + b":" + secret).decode()}


def _touch(path: Path, text: str) -> None:
    """Write ``text`` and move the mtime on, so the exporter sees a change even within one clock tick."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    os.utime(path, ns=(before + 10**9, before + 10**9))


def _errors(log: Path, text: str) -> int:
    """Error records whose message holds ``text``; every line of the log must be a strict logfmt record."""
    return sum(1 for record in parse_log(log.read_text()) if record["level"] == "error" and text in record["msg"])


# -- raw sockets -------------------------------------------------------------------
def _connect(address: str, first: bytes = b"") -> socket.socket:
    host, _, port = address.rpartition(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    if first:
        sock.sendall(first)
    return sock


def _ended(sock: socket.socket) -> bool:
    """True once the exporter has closed ``sock``; reads (and drops) whatever it sent before."""
    while select.select([sock], [], [], 0)[0]:
        try:
            if not sock.recv(65536):
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False


def _closing_times(socks: dict[str, socket.socket], timeout: float, trickle: tuple[str, ...] = (),
                   enough: int | None = None) -> dict[str, float]:
    """Seconds until each socket is closed by the exporter (missing: still open after ``timeout``, or
    when ``enough`` of them are closed).

    The sockets in ``trickle`` send one byte every 0.2 s meanwhile, so a per-read timeout alone
    would never close them."""
    started = time.monotonic()
    closed: dict[str, float] = {}
    next_byte = started
    while len(closed) < (enough or len(socks)) and time.monotonic() - started < timeout:
        now = time.monotonic()
        if now >= next_byte:
            next_byte = now + 0.2
            for name in trickle:
                if name not in closed:
                    with contextlib.suppress(OSError):
                        socks[name].send(b"a")
        open_ = [s for n, s in socks.items() if n not in closed]
        select.select(open_, [], [], 0.05)
        for name, sock in socks.items():
            if name not in closed and _ended(sock):
                closed[name] = time.monotonic() - started
    return closed


def _read_response(sock: socket.socket) -> bytes:
    """One whole HTTP response with a Content-Length, read from a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    found = re.search(rb"(?i)content-length: *(\d+)", head)
    assert found is not None, head
    while len(body) < int(found.group(1)):
        body += sock.recv(65536)
    return head


def _ec_cert(folder: Path) -> None:
    openssl = shutil.which("openssl")
    assert openssl is not None, "openssl is missing: .ci/test installs it"
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem"), "-subj", "/CN=127.0.0.1",
                    "-days", "2", "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)


# -- idle and slow connections ---------------------------------------------------------
def test_parked_sockets_beyond_the_cap_do_not_lock_out_a_scrape(healthy: LinuxTree, tmp_path: Path) -> None:
    """60 parked sockets against a cap of 20: the oldest are evicted, the newest stay, the scrape gets in."""
    with exporter(healthy.root, "--web.max-connections", "20", "--web.read-timeout", "60",
                  log=tmp_path / "log") as running:
        openings = [b"", b"GET /metrics HTTP/1.1\r\nHost: a\r\n", b"GET /metr"]
        parked = [_connect(running.address, openings[i % 3]) for i in range(60)]
        try:
            started = time.monotonic()
            status, _, body = get(running.address, timeout=5)
            assert status == 200 and b"secure_endpoint_fault_active" in body
            assert time.monotonic() - started < 2
            closed = _closing_times({str(i): s for i, s in enumerate(parked)}, timeout=3, enough=41)
            assert len(closed) == 41, f"{len(closed)} of 60 parked sockets were closed, the cap is 20"
            assert set(closed) == {str(i) for i in range(41)}, "the oldest should go first"
            assert get(running.address, timeout=5)[0] == 200  # and again, with the cap still full
        finally:
            for sock in parked:
                sock.close()


def test_idle_and_slow_connections_are_closed_after_the_read_timeout(healthy: LinuxTree, tmp_path: Path) -> None:
    with exporter(healthy.root, "--web.read-timeout", "0.5", log=tmp_path / "log") as running:
        keep_alive = _connect(running.address, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        assert _read_response(keep_alive).startswith(b"HTTP/1.1 200")
        socks = {
            "idle": _connect(running.address),
            "half header": _connect(running.address, b"GET /metrics HTTP/1.1\r\nHost: a\r\n"),
            "trickled header": _connect(running.address, b"GET /metrics HTTP/1.1\r\nX-Slow: "),
            "trickled body": _connect(running.address, b"GET /metrics HTTP/1.1\r\nContent-Length: 100\r\n\r\nxx"),
            "idle after a request": keep_alive,
        }
        try:
            closed = _closing_times(socks, timeout=3, trickle=("trickled header", "trickled body"))
            assert set(closed) == set(socks), f"still open: {set(socks) - set(closed)}"
            for name, seconds in closed.items():
                assert 0.35 <= seconds <= 1.5, f"{name} closed after {seconds:.2f} s, the read timeout is 0.5 s"
            assert get(running.address)[0] == 200
        finally:
            for sock in socks.values():
                sock.close()


def test_request_bodies(healthy: LinuxTree, tmp_path: Path) -> None:
    """A small body is read and dropped (it is not taken for the next request); big or unsized ones are refused."""
    with exporter(healthy.root, log=tmp_path / "log") as running:
        host, _, port = running.address.rpartition(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        try:
            for _ in range(2):  # the same keep-alive connection twice
                conn.request("GET", "/", body=b"GET /nope HTTP/1.1\r\n\r\n")
                response = conn.getresponse()
                response.read()
                assert response.status == 200
        finally:
            conn.close()
        for head, status in ((b"Content-Length: 100000000\r\n", b"413"), (b"Transfer-Encoding: chunked\r\n", b"411"),
                             (b"Content-Length: -3\r\n", b"400")):
            sock = _connect(running.address, b"GET /metrics HTTP/1.1\r\nHost: a\r\n" + head + b"\r\n")
            try:
                assert _read_response(sock).split(b" ")[1] == status
                assert _closing_times({"s": sock}, timeout=2) != {}
            finally:
                sock.close()


# -- clients that never read, and heads too large ---------------------------------------------
def _rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))


def _flood(address: str, request: bytes, count: int) -> socket.socket:
    """A connection that sends ``count`` pipelined copies of ``request`` (as many as the socket takes
    without blocking for long) and never reads an answer; its small receive buffer makes the exporter's
    writes block after an answer or two."""
    host, _, port = address.rpartition(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(5)
    sock.connect((host, int(port)))
    sock.settimeout(0.2)
    with contextlib.suppress(OSError):
        for _ in range(count):
            sock.sendall(request)
    return sock


def test_heads_are_bounded_in_bytes_per_request_and_in_all(healthy: LinuxTree, tmp_path: Path) -> None:
    """Issue 23: 99 header lines of 64 KB on each of 64 connections made the exporter hold 420 MB."""
    with exporter(healthy.root, log=tmp_path / "log") as running:
        status, _, _ = get(running.address)  # the heap of a running exporter, before
        before = _rss_kib(running.process.pid)
        line = b"X-Big: " + b"a" * 65000 + b"\r\n"
        socks = [_connect(running.address, b"GET /metrics HTTP/1.1\r\nHost: a\r\n") for _ in range(64)]
        try:
            for sock in socks:
                sock.settimeout(0.5)
                with contextlib.suppress(OSError):
                    for _ in range(99):
                        sock.sendall(line)
            peak = _rss_kib(running.process.pid)
            answers = []
            for sock in socks:
                with contextlib.suppress(OSError):
                    answers.append(sock.recv(200).split(b"\r\n")[0])
        finally:
            for sock in socks:
                sock.close()
        assert status == 200
        assert peak - before < 40 * 1024, f"{(peak - before) / 1024:.0f} MiB more for 64 connections' heads"
        assert answers and all(a in (b"HTTP/1.1 431 Line too long", b"") for a in answers), answers[:3]
        assert b"HTTP/1.1 431 Line too long" in answers
        assert get(running.address)[0] == 200


def test_a_head_just_under_the_bound_is_served(report: Report) -> None:
    from secure_endpoint_monitoring.exporter.requestreader import MAX_HEAD

    filler = b"X-Fill: " + b"a" * (MAX_HEAD - 200) + b"\r\n"
    with _serving(lambda deadline: report) as address:
        statuses, _ = _answers(address, b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + filler + b"\r\n")
        assert statuses == [b"HTTP/1.1 200"]
        statuses, closed = _answers(address, b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + filler + filler + b"\r\n")
        assert statuses == [b"HTTP/1.1 431"] and closed


def _auth_config(tmp_path: Path) -> Path:
    config = tmp_path / "web.yml"
    config.write_text(f"basic_auth_users:\n  prometheus: '{_hash('pw')}'\n")
    return config


def test_clients_without_credentials_that_never_read_cannot_starve_a_scrape(healthy: LinuxTree,
                                                                            tmp_path: Path) -> None:
    request = b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n"
    with exporter(healthy.root, "--web.config.file", str(_auth_config(tmp_path)), "--web.max-connections", "8",
                  "--web.read-timeout", "30", log=tmp_path / "log") as running:
        floods = [_flood(running.address, request, 2000) for _ in range(16)]  # twice the cap
        try:
            for _ in range(5):
                started = time.monotonic()
                status, _, body = get(running.address, headers=_basic("prometheus", "pw"), timeout=5)
                assert status == 200 and b"secure_endpoint_fault_active" in body
                assert time.monotonic() - started < 3
                floods.append(_flood(running.address, request, 2000))
        finally:
            for sock in floods:
                sock.close()


AUTHORIZED = (b"GET /metrics HTTP/1.1\r\nHost: a\r\n"
              + "".join(f"{k}: {v}\r\n" for k, v in _basic("prometheus", "pw").items()).encode() + b"\r\n")


def _stuck_writing(log: Path) -> None:
    """Until no more pipelined scrapes are answered (the debug log's count of them has stood still for
    half a second): the floods' buffers are full, and each connection's thread is blocked writing."""
    deadline = time.monotonic() + 15
    count, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now_count = log.read_text().count("took ")
        if now_count != count:
            count, since = now_count, time.monotonic()
        elif time.monotonic() - since > 0.5 and count > 0:
            return
        time.sleep(0.05)
    raise AssertionError(f"the floods were still being answered after 15 s ({count} answers)")


def test_a_scrape_that_is_never_read_does_not_keep_the_request_slot(healthy: LinuxTree, tmp_path: Path) -> None:
    """One request slot, and a client with credentials whose write blocks (it pipelines scrapes and
    never reads): the slot is free before the answer is written, so the next scrape is served."""
    log = tmp_path / "log"
    with exporter(healthy.root, "--web.config.file", str(_auth_config(tmp_path)), "--web.max-requests", "1",
                  "--web.read-timeout", "30", "--log.level", "debug", log=log) as running:
        flood = _flood(running.address, AUTHORIZED, 2000)
        try:
            _stuck_writing(log)
            # Under load the flood may still be making an answer (holding the slot, a fair 503) when the
            # log stood still; once its write blocks, the slot is free. Held through the write, it would
            # stay taken for the whole 30 s read timeout.
            # Until its socket buffers are full the flood may make one more answer now and then (a fair 503);
            # then the slot stays free: three scrapes in a row get in.
            deadline = time.monotonic() + 20
            in_a_row = 0
            while in_a_row < 3:
                assert time.monotonic() < deadline, "the slot stayed taken while the flood's answer was written"
                status = get(running.address, headers=_basic("prometheus", "pw"), timeout=5)[0]
                in_a_row = in_a_row + 1 if status == 200 else 0
                if status != 200:
                    time.sleep(0.2)
        finally:
            flood.close()


def _scrape_gets_in(address: str, within: float = 10) -> None:
    """A scrape is answered 200 within ``within`` seconds (a flood still making an answer is busy that long)."""
    deadline = time.monotonic() + within
    while True:
        with contextlib.suppress(OSError, http.client.HTTPException):
            if get(address, headers=_basic("prometheus", "pw"), timeout=5)[0] == 200:
                return
        assert time.monotonic() < deadline, "no place was freed from writers that do not drain"
        time.sleep(0.2)


@contextlib.contextmanager
def _four_stuck_writers(healthy: LinuxTree, tmp_path: Path, read_timeout: str) -> Iterator[Any]:
    """An exporter with four places, each held by a client with credentials whose answers are not read,
    yielded once their writes block."""
    log = tmp_path / "log"
    with exporter(healthy.root, "--web.config.file", str(_auth_config(tmp_path)), "--web.max-connections", "4",
                  "--web.read-timeout", read_timeout, "--log.level", "debug", log=log) as running:
        floods = [_flood(running.address, AUTHORIZED, 2000) for _ in range(4)]
        try:
            _stuck_writing(log)
            yield running
        finally:
            for sock in floods:
                sock.close()


def test_writers_that_do_not_drain_lose_their_place(healthy: LinuxTree, tmp_path: Path) -> None:
    """Four places, all held by clients whose answers are not read, and a read timeout far off: a new
    scrape takes the place of the oldest writer (a writer counts as waiting, not busy)."""
    with _four_stuck_writers(healthy, tmp_path, "30") as running:
        _scrape_gets_in(running.address)


def test_writers_that_do_not_drain_are_closed_after_the_read_timeout(healthy: LinuxTree, tmp_path: Path) -> None:
    with _four_stuck_writers(healthy, tmp_path, "2") as running:
        # Looked at from the exporter's side: reading the floods' sockets here would drain them.
        deadline = time.monotonic() + 8
        while _open_connections(running.process.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _open_connections(running.process.pid) == 0
        _scrape_gets_in(running.address)


def _open_connections(pid: int) -> int:
    """The exporter's established TCP connections (every one is a client's: it listens and connects nowhere)."""
    import psutil

    process = psutil.Process(pid)
    listing = getattr(process, "net_connections", process.connections)  # psutil before 6: connections
    return sum(1 for c in listing(kind="tcp") if c.status == psutil.CONN_ESTABLISHED)


def test_password_guessing_on_many_connections_does_not_starve_the_scraper(healthy: LinuxTree,
                                                                           tmp_path: Path) -> None:
    """bcrypt runs one check at a time and a connection counts as busy only once its credentials passed:
    64 clients guessing passwords (cost 10, ~70 ms a check) neither take the CPU nor every place."""
    config = tmp_path / "web.yml"
    config.write_text(f"basic_auth_users:\n  prometheus: '{_hash('pw', cost=10)}'\n")
    stop_guessing = threading.Event()

    def guess(number: int) -> None:
        wrong = _basic("prometheus", f"wrong{number}")
        while not stop_guessing.is_set():
            with contextlib.suppress(OSError, http.client.HTTPException):
                get(address, headers=wrong, timeout=10)

    with exporter(healthy.root, "--web.config.file", str(config), "--web.max-connections", "32",
                  log=tmp_path / "log") as running:
        address = running.address
        assert get(address, headers=_basic("prometheus", "pw"))[0] == 200  # verified once, then remembered
        guessers = [threading.Thread(target=guess, args=(n,), daemon=True) for n in range(64)]
        for thread in guessers:
            thread.start()
        try:
            time.sleep(1)
            for _ in range(5):
                started = time.monotonic()
                status, _, _ = get(address, headers=_basic("prometheus", "pw"), timeout=10)
                assert status == 200 and time.monotonic() - started < 5, time.monotonic() - started
        finally:
            stop_guessing.set()
            for thread in guessers:
                thread.join(15)


def _threads(pid: int) -> int:
    return int(next(line.split()[1] for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                    if line.startswith("Threads:")))


def test_guesses_that_hang_up_at_once_do_not_pile_up_threads(healthy: LinuxTree, tmp_path: Path) -> None:
    """Each guess is sent and its connection closed at once: evicted or not, a thread waiting for bcrypt
    is one of at most eight (more fail at once), so the threads stay near the connection cap."""
    config = tmp_path / "web.yml"
    config.write_text(f"basic_auth_users:\n  prometheus: '{_hash('pw', cost=10)}'\n")
    wrong = ("GET /metrics HTTP/1.1\r\nHost: a\r\nAuthorization: "
             + _basic("prometheus", "wrong")["Authorization"] + "\r\n\r\n").encode()
    stop_guessing = threading.Event()

    def guess() -> None:
        while not stop_guessing.is_set():
            with contextlib.suppress(OSError):
                _connect(address, wrong).close()

    with exporter(healthy.root, "--web.config.file", str(config), "--web.max-connections", "16",
                  log=tmp_path / "log") as running:
        address = running.address
        guessers = [threading.Thread(target=guess, daemon=True) for _ in range(16)]
        for thread in guessers:
            thread.start()
        most = 0
        try:
            deadline = time.monotonic() + 4
            while time.monotonic() < deadline:
                most = max(most, _threads(running.process.pid))
                time.sleep(0.02)
        finally:
            stop_guessing.set()
            for thread in guessers:
                thread.join(15)
    # connections, checks waiting for bcrypt, and the few threads that are not a connection's or end now
    assert most <= 16 + 8 + 16, f"{most} threads for a cap of 16 connections"


def test_a_reload_keeps_the_pairs_already_verified(tmp_path: Path) -> None:
    from secure_endpoint_monitoring.exporter.webconfig import WebConfigWatcher

    config = tmp_path / "web.yml"
    hashed = _hash("pw")
    config.write_text(f"basic_auth_users:\n  prometheus: '{hashed}'\n  other: '{hashed}'\n")
    watcher = WebConfigWatcher(str(config))
    assert watcher.auth.check("prometheus", "pw") and watcher.auth.check("other", "pw")
    _touch(config, f"basic_auth_users:\n  prometheus: '{hashed}'\n  other: '{_hash('new')}'\n")
    watcher.refresh()
    fresh = watcher.auth
    with fresh._bcrypt:  # bcrypt is busy: only a remembered pair can pass now
        assert fresh.check("prometheus", "pw")  # its hash is unchanged: remembered across the reload
        assert not fresh.check("other", "pw")  # its hash changed: checked anew (and here it must wait)
    assert fresh.check("other", "new") and not fresh.check("other", "pw")


@pytest.mark.parametrize("value", [b"Basic \xe9", b"Basic \xff\xfe", "Basic é".encode(), b"Basic =", b"Basic"])
def test_odd_authorization_values_get_401(report: Report, tmp_path: Path, value: bytes) -> None:
    config = tmp_path / "web.yml"
    config.write_text(f"basic_auth_users:\n  prometheus: '{_hash('pw')}'\n")
    app = Exporter(lambda deadline: report, "/metrics", str(config), 0)
    server = app.listen("127.0.0.1:0")
    thread = threading.Thread(target=app.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        statuses, closed = _answers(f"127.0.0.1:{server.server_address[1]}",
                                    b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: " + value + b"\r\n\r\n")
    finally:
        app.shutdown()
        thread.join(5)
    assert statuses == [b"HTTP/1.1 401"] and closed


def test_tls_handshake_within_the_read_timeout(healthy: LinuxTree, tmp_path: Path) -> None:
    _ec_cert(tmp_path)
    config = tmp_path / "web.yml"
    config.write_text("tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n")
    with exporter(healthy.root, "--web.config.file", str(config), "--web.read-timeout", "0.5",
                  log=tmp_path / "log") as running:
        socks = {"silent": _connect(running.address),
                 "trickled hello": _connect(running.address, b"\x16\x03\x01\x02\x00\x01")}
        try:
            closed = _closing_times(socks, timeout=3, trickle=("trickled hello",))
            assert set(closed) == set(socks)
            assert all(0.35 <= seconds <= 1.5 for seconds in closed.values()), closed
        finally:
            for sock in socks.values():
                sock.close()
        context = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
        assert get(running.address, context=context)[0] == 200


@contextlib.contextmanager
def _exporter_with_prefix(prefix: list[str], root: Path, *args: str, log: Path) -> Iterator[str]:
    command = [*prefix, script("secure-endpoint-exporter"), "--path.rootfs", str(root), "--ampcli.run-from-rootfs",
               "--web.listen-address", "127.0.0.1:0", *args]
    with open(log, "w") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while not (found := re.search(r"listening on (\S+)", log.read_text())):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.02)
        yield found.group(1)
    finally:
        stop(process)


def test_scrape_under_a_64_file_limit(healthy: LinuxTree, tmp_path: Path) -> None:
    """With 64 descriptors, 100 parked sockets would leave none for the scrape without the cap."""
    prlimit = shutil.which("prlimit")
    assert prlimit is not None, "prlimit (util-linux) is missing"
    log = tmp_path / "log"
    with _exporter_with_prefix([prlimit, "--nofile=64:64", "--"], healthy.root, "--web.read-timeout", "60",
                               log=log) as address:
        parked = [_connect(address, b"GET / HTTP/1.1\r\n" if i % 2 else b"") for i in range(100)]
        try:
            for _ in range(3):
                started = time.monotonic()
                status, _, body = get(address, timeout=5)
                assert status == 200 and b"secure_endpoint_fault_active" in body
                assert time.monotonic() - started < 3
        finally:
            for sock in parked:
                sock.close()
    assert "room for 32 connections, not 256" in log.read_text()


# -- scrape deadlines and stuck evaluations -------------------------------------------------
@pytest.fixture
def report(healthy: LinuxTree) -> Report:
    return evaluate(Host(str(healthy.root), run_programs=True))


@contextlib.contextmanager
def _serving(produce: Callable[[float], Report], limits: Limits | None = None) -> Iterator[str]:
    """A real ExporterServer in this process, on 127.0.0.1."""
    app = Exporter(produce, "/metrics", None, 0, limits)
    server = app.listen("127.0.0.1:0")
    thread = threading.Thread(target=app.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        app.shutdown()
        thread.join(5)


SMUGGLED = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"


def _answers(address: str, request: bytes) -> tuple[list[bytes], bool]:
    """The status lines the exporter sends for ``request`` (and whatever follows it), and whether it then
    closed the connection."""
    sock = _connect(address, request)
    received = b""
    closed = False
    deadline = time.monotonic() + 10
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([sock], [], [], 0.5)
            if not ready:
                if received:
                    break  # answered, and quiet since: kept open
                continue
            chunk = sock.recv(65536)
            if not chunk:
                closed = True
                break
            received += chunk
    except (ConnectionResetError, BrokenPipeError):
        closed = True
    finally:
        sock.close()
    return re.findall(rb"^HTTP/1\.[01] \d{3}", received, re.M), closed


@pytest.mark.parametrize(("headers", "status"), [
    (b"Content-Length: 5\r\nContent-Length: 39\r\n", b"400"),
    (b"Content-Length: 5, 39\r\n", b"400"),
    (b"Content-Length: +39\r\n", b"400"),
    (b"Content-Length: 3_9\r\n", b"400"),
    (b"Content-Length: 0x27\r\n", b"400"),
    (b"Transfer-Encoding : chunked\r\n", b"400"),
    (b"Transfer-Encoding: chunked\r\n", b"411"),
    (b"Content-Length : 39\r\n", b"400"),
    (b"X-A: a\r\n Content-Length: 39\r\n", b"400"),  # obs-fold
    (b"X-A: a\x00b\r\nContent-Length: 39\r\n", b"400"),
    (b"X-A: a\rContent-Length: 39\r\n", b"400"),  # a bare CR, where the e-mail parser would end the line
    (b"X-A: a\rb\r\n", b"400"),
    (b"X-A: a\r\r\n", b"400"),
])
def test_ambiguous_framing_is_refused_and_closed(report: Report, headers: bytes, status: bytes) -> None:
    """Issue 23: such a request's body was served as a smuggled second request. One error answer, then the
    connection is closed: the body after it is never read as a request."""
    with _serving(lambda deadline: report) as address:
        statuses, closed = _answers(address, b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n" + SMUGGLED)
    assert statuses == [b"HTTP/1.1 " + status] and closed, (statuses, closed)


@pytest.mark.parametrize("headers", [b"", b"Content-Length: 0\r\n", b"Content-Length: 2\r\nContent-Length: 2\r\n"])
def test_plain_framing_keeps_the_connection(report: Report, headers: bytes) -> None:
    body = b"ab" if b"2" in headers else b""
    with _serving(lambda deadline: report) as address:
        statuses, closed = _answers(address, b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n" + body
                                    + SMUGGLED)
    assert statuses == [b"HTTP/1.1 200", b"HTTP/1.1 200"] and not closed, (statuses, closed)


@pytest.mark.parametrize(("header", "budget"), [
    (None, 9.5), ("4", 3.5), ("4.25", 3.75), ("30", 9.5), ("0.4", 0.2), ("", 9.5), ("abc", 9.5), ("nan", 9.5),
    ("inf", 9.5), ("-1", 9.5), ("0", 9.5),
])
def test_scrape_budget(header: str | None, budget: float) -> None:
    def never(deadline: float) -> Report:
        raise AssertionError("no scrape here")

    app = Exporter(never, "/metrics", None, 0)
    assert app.scrape_budget(header) == pytest.approx(budget)


def test_the_evaluation_gets_the_scrape_deadline(report: Report) -> None:
    given: list[float] = []

    def produce(deadline: float) -> Report:
        given.append(deadline - time.monotonic())
        return report

    with _serving(produce, Limits(scrape_timeout=10, timeout_offset=0.5)) as address:
        assert get(address, headers={"X-Prometheus-Scrape-Timeout-Seconds": "2"})[0] == 200
        assert get(address)[0] == 200
    assert 1.2 < given[0] <= 1.5 and 9.2 < given[1] <= 9.5, given


def test_a_late_evaluation_is_answered_503_and_the_next_scrape_starts_afresh(report: Report) -> None:
    release = threading.Event()
    calls: list[float] = []

    def produce(deadline: float) -> Report:
        calls.append(deadline)
        if len(calls) == 1:
            release.wait(30)  # only the first evaluation hangs
        return report

    try:
        with _serving(produce, Limits(scrape_timeout=1, timeout_offset=0.5)) as address:
            started = time.monotonic()
            status, _, body = get(address)
            took = time.monotonic() - started
            assert status == 503
            assert body.decode().count("\n") == 1 and "did not finish within this scrape's 0.5 s" in body.decode()
            assert 0.5 <= took < 0.5 + GRACE + 0.4, took
            started = time.monotonic()
            assert get(address)[0] == 200  # not blocked behind the stuck one
            assert time.monotonic() - started < 0.5
            assert len(calls) == 2
    finally:
        release.set()


def test_stuck_evaluations_are_capped_and_scraping_recovers(report: Report) -> None:
    release = threading.Event()
    calls = []

    def produce(deadline: float) -> Report:
        calls.append(deadline)
        release.wait(30)
        return report

    baseline = threading.active_count() + 3  # serve_forever, its listener's loop and the connection reaper
    try:
        with _serving(produce, Limits(scrape_timeout=0.6, timeout_offset=0.3, max_stuck=2)) as address:
            for _ in range(2):  # two evaluations hang, each past its own deadline
                assert get(address)[0] == 503
            assert len(calls) == 2
            started = time.monotonic()
            status, _, body = get(address)
            assert status == 503 and b"2 evaluations are stuck" in body
            assert time.monotonic() - started < 0.2, "the third scrape should not wait"
            with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
                assert list(pool.map(lambda _: get(address)[0], range(40))) == [503] * 40
            assert len(calls) == 2, "no evaluation may start while two are stuck"
            _wait_for_threads(baseline + 2)  # the two stuck workers; the connections' threads have ended

            release.set()
            deadline = time.monotonic() + 3
            while get(address)[0] != 200:
                assert time.monotonic() < deadline, "scraping did not recover"
            assert len(calls) == 3
            _wait_for_threads(baseline)  # the stuck workers ended once released
    finally:
        release.set()


def _wait_for_threads(count: int) -> None:
    deadline = time.monotonic() + 2
    while threading.active_count() > count:
        assert time.monotonic() < deadline, f"{threading.active_count()} threads, expected at most {count}"
        time.sleep(0.01)


def test_a_client_asking_for_little_time_cannot_cut_the_others_short(healthy: LinuxTree, report: Report) -> None:
    """Issue 23: a scrape with a tiny X-Prometheus-Scrape-Timeout-Seconds started the shared evaluation with its
    deadline, and the normal scrapes that joined it got what a cut-short evaluation could judge (fault 7
    missed). They start one of the server's full time instead; the tiny one is its client's problem."""
    healthy.stop("ampscansvc")  # fault 7: found only by an evaluation given its time
    faulty = evaluate(Host(str(healthy.root), run_programs=True))
    allowed: list[float] = []

    def produce(deadline: float) -> Report:
        allowed.append(deadline - time.monotonic())
        time.sleep(0.4)
        return faulty if allowed[-1] >= 2 else report  # too little time: fault 7 not judged

    active = 'secure_endpoint_fault_active{fault="scan_service_not_started",fault_id="7",platform="linux"} 1'
    with _serving(produce) as address, concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        tiny = pool.submit(get, address, headers={"X-Prometheus-Scrape-Timeout-Seconds": "0.01"})
        deadline = time.monotonic() + 5
        while not allowed and time.monotonic() < deadline:
            time.sleep(0.005)  # the tiny scrape's evaluation is running
        normal = list(pool.map(lambda _: get(address), range(6)))
        assert tiny.result()[0] == 503  # its own short time ran out: its problem alone
    assert [status for status, _, _ in normal] == [200] * 6
    assert all(active in body.decode() for _, _, body in normal)
    assert len(allowed) == 2 and allowed[1] > 9  # the normal scrapes shared one of the server's 9.5 s


def test_many_clients_with_different_timeouts_share_one_evaluation(report: Report) -> None:
    """Timeouts of every length do not start an evaluation each (the first fix of issue 23 did: 26 ampclis)."""
    calls: list[float] = []

    def produce(deadline: float) -> Report:
        calls.append(deadline)
        time.sleep(0.5)
        return report

    with _serving(produce) as address, concurrent.futures.ThreadPoolExecutor(max_workers=30) as pool:
        timeouts = [f"{1.5 + 0.3 * i:.1f}" for i in range(29)]
        results = list(pool.map(lambda t: get(address, headers={"X-Prometheus-Scrape-Timeout-Seconds": t}),
                                timeouts))
    assert [status for status, _, _ in results] == [200] * 29
    assert len(calls) <= 2, len(calls)


def test_scrapes_during_an_evaluation_share_it(report: Report) -> None:
    calls = []

    def produce(deadline: float) -> Report:
        calls.append(deadline)
        time.sleep(0.3)
        return report

    with _serving(produce) as address, concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        assert list(pool.map(lambda _: get(address)[0], range(10))) == [200] * 10
    assert len(calls) <= 2


def test_a_failing_evaluation_is_a_500(report: Report) -> None:
    def produce(deadline: float) -> Report:
        raise RuntimeError("boom")

    with _serving(produce) as address:
        status, _, body = get(address)
    assert status == 500 and b"boom" in body


# -- basic auth -------------------------------------------------------------------------------
def test_passwords_bcrypt_cannot_take_are_refused_with_401(healthy: LinuxTree, tmp_path: Path) -> None:
    """Over 72 bytes bcrypt 5 raises (the connection used to drop) and older versions cut the rest off;
    with a NUL byte some versions stop reading. Either way: 401, on every version."""
    config = tmp_path / "web.yml"
    config.write_text(f"basic_auth_users:\n  prometheus: '{_hash('s3cret')}'\n  long: '{_hash('a' * 72)}'\n")
    with exporter(healthy.root, "--web.config.file", str(config), log=tmp_path / "log") as running:
        for password in ("a" * 72 + "b", "a" * 73, "é" * 40, "x" * 5000, "s3cret\0", "s3cret\0junk", "\0",
                         "s3c\0ret"):
            for user in ("prometheus", "long", "nobody"):
                assert get(running.address, headers=_basic(user, password))[0] == 401, (user, password)
        assert get(running.address, headers=_basic("long", "a" * 72))[0] == 200
        assert get(running.address, headers=_basic("prometheus", "s3cret"))[0] == 200


def _median_seconds(address: str, *headers: dict[str, str], count: int = 9) -> list[float]:
    """The median time of a refused request with each of ``headers``; taken in turns, so that a burst
    of load on the machine weighs on all of them alike."""
    times: list[list[float]] = [[] for _ in headers]
    for _ in range(count):
        for index, header in enumerate(headers):
            started = time.perf_counter()
            assert get(address, headers=header)[0] == 401
            times[index].append(time.perf_counter() - started)
    return [statistics.median(t) for t in times]


@pytest.mark.parametrize("costs", [{"prometheus": 8}, {"low": 4, "prometheus": 8}])
def test_unknown_users_cost_as_much_as_known_ones(healthy: LinuxTree, tmp_path: Path,
                                                  costs: dict[str, int]) -> None:
    """Timing must not tell whether a user exists: an unknown user costs the costliest hash's check."""
    config = tmp_path / "web.yml"
    config.write_text("basic_auth_users:\n" + "".join(f"  {u}: '{_hash('s3cret', c)}'\n" for u, c in costs.items()))
    with exporter(healthy.root, "--web.config.file", str(config), log=tmp_path / "log") as running:
        get(running.address, headers=_basic("prometheus", "warm-up"))
        known, unknown = _median_seconds(running.address, _basic("prometheus", "wrong"), _basic("nobody", "wrong"))
    assert 0.5 <= unknown / known <= 2, f"unknown user {unknown * 1000:.1f} ms, known user {known * 1000:.1f} ms"


GOOD = _hash("s3cret")
MALFORMED = {
    "one character short": GOOD[:-1],
    "one character long": GOOD + "a",
    "truncated": GOOD[:29],
    "bad character": GOOD[:-1] + "!",
    "cost 99": "$2b$99$" + GOOD[7:],
    "cost 03": "$2b$03$" + GOOD[7:],
    "one-digit cost": "$2b$4$" + GOOD[7:],
    "unknown version": "$2x$" + GOOD[4:],
    "too costly": "$2b$17$" + GOOD[7:],
    "a number": 12345,
    "empty": "",
}


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_hashes_are_refused_naming_the_user(tmp_path: Path, name: str) -> None:
    config = tmp_path / "web.yml"
    value = MALFORMED[name]
    config.write_text(f"basic_auth_users:\n  prometheus: '{GOOD}'\n  alice: " +
                      (f"'{value}'" if isinstance(value, str) else str(value)) + "\n")
    with pytest.raises(webconfig.WebConfigError, match="'alice'"):
        webconfig.load(str(config))


def test_every_bcrypt_version_prefix_and_cost_bound_loads(tmp_path: Path) -> None:
    config = tmp_path / "web.yml"
    config.write_text("basic_auth_users:\n" + "".join(
        f"  u{prefix}{cost}: '{prefix}{cost}{GOOD[6:]}'\n" for prefix in ("$2a$", "$2b$", "$2y$")
        for cost in ("04", "16")))
    assert len(webconfig.load(str(config)).users) == 6


@pytest.mark.parametrize("name", ["cost 99", "truncated"])
def test_malformed_hash_at_start_exits_1(healthy: LinuxTree, tmp_path: Path, name: str) -> None:
    config = tmp_path / "web.yml"
    config.write_text(f"basic_auth_users:\n  alice: '{MALFORMED[name]}'\n")
    done = run("secure-endpoint-exporter", "--path.rootfs", str(healthy.root), "--ampcli.run-from-rootfs",
               "--web.config.file", str(config),
               "--web.listen-address", "127.0.0.1:0", timeout=20)
    assert done.returncode == 1
    assert "'alice'" in done.stderr and "Traceback" not in done.stderr


# -- reloads never weaken -------------------------------------------------------------------
def test_a_reload_never_drops_basic_auth(healthy: LinuxTree, tmp_path: Path) -> None:
    config = tmp_path / "web.yml"
    config.write_text(f"basic_auth_users:\n  alice: '{_hash('one')}'\n  bob: '{_hash('two')}'\n")
    log = tmp_path / "log"
    weaker = ["", "# nothing here\n", "basic_auth_users:\n", "basic_auth_users: {}\n",
              "http_server_config:\n  headers:\n    X-Frame-Options: deny\n"]
    with exporter(healthy.root, "--web.config.file", str(config), log=log) as running:
        for count, text in enumerate(weaker, 1):
            _touch(config, text)
            assert get(running.address)[0] == 401, text
            assert get(running.address, headers=_basic("alice", "one"))[0] == 200
            assert _errors(log, "turns basic auth off") == count, text

        # Passwords and users may change while basic auth stays on.
        _touch(config, f"basic_auth_users:\n  alice: '{_hash('three')}'\n  carol: '{_hash('four')}'\n")
        assert get(running.address, headers=_basic("alice", "one"))[0] == 401
        assert get(running.address, headers=_basic("bob", "two"))[0] == 401
        assert get(running.address, headers=_basic("alice", "three"))[0] == 200
        assert get(running.address, headers=_basic("carol", "four"))[0] == 200
        _touch(config, f"basic_auth_users:\n  carol: '{_hash('four')}'\n")
        assert get(running.address, headers=_basic("alice", "three"))[0] == 401
        assert get(running.address, headers=_basic("carol", "four"))[0] == 200
        assert get(running.address)[0] == 401
    assert _errors(log, "turns basic auth off") == len(weaker)


def test_a_reload_never_drops_client_certificate_verification_or_tls(healthy: LinuxTree, tmp_path: Path) -> None:
    pki.make(tmp_path)
    tls = "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  client_ca_file: ca.pem\n"
    config = tmp_path / "web.yml"
    config.write_text(tls + "  client_auth_type: RequireAndVerifyClientCert\n")
    log = tmp_path / "log"
    anonymous = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    with_cert = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    with_cert.load_cert_chain(str(tmp_path / "client.pem"), str(tmp_path / "client.key"))
    weaker = [
        (tls, "client certificates"),
        (tls + "  client_auth_type: NoClientCert\n", "client certificates"),
        (tls + "  client_auth_type: RequireAnyClientCert\n", "client certificates"),
        (tls + "  client_auth_type: VerifyClientCertIfGiven\n", "client certificates"),
        ("", "turns TLS off"),
        (f"basic_auth_users:\n  alice: '{_hash('one')}'\n", "turns TLS off"),
    ]
    with exporter(healthy.root, "--web.config.file", str(config), log=log) as running:
        for text, message in weaker:
            before = _errors(log, message)
            _touch(config, text)
            assert get(running.address, context=with_cert)[0] == 200  # this request makes the exporter look
            assert _errors(log, message) == before + 1, text
            with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException, OSError)):
                get(running.address, context=anonymous, timeout=5)
        # Stronger is fine: basic auth on top of the client certificate.
        _touch(config, tls + f"  client_auth_type: RequireAndVerifyClientCert\nbasic_auth_users:\n"
               f"  alice: '{_hash('one')}'\n")
        assert get(running.address, context=with_cert)[0] == 401
        assert get(running.address, context=with_cert, headers=_basic("alice", "one"))[0] == 200


@pytest.mark.parametrize(("text", "message"), [
    ("tls_server_config:\n  client_auth_type: VerifyClientCertIfGiven\n", "turns TLS on"),
    ("tls_server_config:\n  client_auth_type: RequireAndVerifyClientCert\n", "turns TLS on"),
])
def test_weakens_on_its_own(tmp_path: Path, text: str, message: str) -> None:
    """The comparison without files: TLS on is also refused, it needs a restart like TLS off."""
    pki.make(tmp_path)
    config = tmp_path / "web.yml"
    config.write_text(text.replace("tls_server_config:\n", "tls_server_config:\n  cert_file: server.pem\n"
                                   "  key_file: server.key\n  client_ca_file: ca.pem\n"))
    new = webconfig.load(str(config))
    assert message in (webconfig.weakens(webconfig.WebConfig(None, {}, {}), new) or "")
    assert webconfig.weakens(new, new) is None


# -- the web config file itself -----------------------------------------------------------------
def test_a_fifo_as_web_config_is_refused_at_start(healthy: LinuxTree, tmp_path: Path) -> None:
    config = tmp_path / "web.yml"
    os.mkfifo(config)
    done = run("secure-endpoint-exporter", "--path.rootfs", str(healthy.root), "--ampcli.run-from-rootfs",
               "--web.config.file", str(config),
               "--web.listen-address", "127.0.0.1:0", timeout=15)
    assert done.returncode == 1
    assert "is a FIFO, not a regular file" in done.stderr and "Traceback" not in done.stderr


def test_web_config_files_that_are_no_regular_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "dir.yml").mkdir()
    os.mkfifo(tmp_path / "cert.pem")
    (tmp_path / "key.pem").write_text("")
    (tmp_path / "tls.yml").write_text("tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n")
    (tmp_path / "big.yml").write_text("# padding\n" * 200_000)
    for name, message in (("dir.yml", "dir.yml is a directory, not a regular file"),
                          ("tls.yml", "cert.pem is not a regular file"),
                          ("big.yml", "big.yml is larger than 1048576 bytes")):
        with pytest.raises(webconfig.WebConfigError, match=message):
            webconfig.load(str(tmp_path / name))


BILLION_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 10) + "]\n" for i in range(9))


@pytest.mark.parametrize(("text", "message"), [
    (BILLION_LAUGHS, "anchors and aliases"),
    ("basic_auth_users: &u {}\nhttp_server_config: *u\n", "anchors and aliases"),
    ("basic_auth_users: " + "[" * 1500 + "]" * 1500 + "\n", "nested more than 16 levels"),
    ("a:\n" + "".join(" " * (2 * i + 2) + f"k{i}:\n" for i in range(40)) + " " * 84 + "v\n", "nested more than"),
    ("tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n  min_version: [TLS12]\n", "TLS version"),
    ("tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n  max_version: {a: b}\n", "TLS version"),
])
def test_web_configs_that_would_expand_or_mistype_are_refused(tmp_path: Path, text: str, message: str) -> None:
    """Issue 23: a billion-laughs document froze the server and took 890 MB; a list where a TLS version belongs
    escaped as TypeError. Both are refused before anything expands, with the reason."""
    config = tmp_path / "web.yml"
    config.write_text(text)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(webconfig.WebConfigError, match=re.escape(message)):
        webconfig.load(str(config))
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KiB: nothing expanded


def test_broken_edits_keep_the_last_good_config(healthy: LinuxTree, tmp_path: Path) -> None:
    """A malformed hash, a FIFO (which must not hang the request) and an oversized file: each is logged
    once and the last good config stays."""
    config = tmp_path / "web.yml"
    good = f"basic_auth_users:\n  alice: '{_hash('one')}'\n"
    config.write_text(good)
    log = tmp_path / "log"
    with exporter(healthy.root, "--web.config.file", str(config), log=log) as running:
        for count, name in enumerate(("cost 99", "truncated", "bad character"), 1):
            _touch(config, f"basic_auth_users:\n  alice: '{MALFORMED[name]}'\n")
            assert get(running.address)[0] == 401
            assert get(running.address, headers=_basic("alice", "one"))[0] == 200
            assert _errors(log, "'alice'") == count
        config.unlink()
        os.mkfifo(config)
        assert get(running.address, timeout=5)[0] == 401
        assert get(running.address, headers=_basic("alice", "one"), timeout=5)[0] == 200
        assert _errors(log, "is a FIFO, not a regular file") == 1
        config.unlink()
        config.write_text(good + "# padding\n" * 200_000)
        assert get(running.address, timeout=5)[0] == 401
        assert get(running.address, headers=_basic("alice", "one"), timeout=5)[0] == 200
        assert _errors(log, "is larger than") == 1
        config.unlink()
        _touch(config, good + BILLION_LAUGHS)  # on reload too: refused, logged, the last good config kept
        assert get(running.address, timeout=5)[0] == 401
        assert get(running.address, headers=_basic("alice", "one"), timeout=5)[0] == 200
        assert _errors(log, "anchors and aliases") == 1
