"""``secure-endpoint-cloud-exporter`` as a program: its flags, credentials, /metrics and signals, against the
local fake API (tests/fakecloud.py) over real HTTPS on 127.0.0.1."""

from __future__ import annotations

import contextlib
import gzip
import http.client
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import fakecloud, pki
from tests.commands import run, script
from tests.daemons import _wait_for, stop
from tests.test_host_strings import run_promtool

PROG = "secure-endpoint-cloud-exporter"
EX_CONFIG = 78  # a configuration error: the unit does not restart on it


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pki")
    pki.make(folder)
    return folder


def credentials_file(folder: Path, key: str = fakecloud.API_KEY, mode: int = 0o600) -> Path:
    path = folder / "credentials.yml"
    path.write_text(f'client_id: "{fakecloud.CLIENT_ID}"\napi_key: "{key}"\n')
    path.chmod(mode)
    return path


class Running:
    def __init__(self, process: subprocess.Popen[str], address: str, log: Path) -> None:
        self.process, self.address, self.log = process, address, log

    def get(self, path: str = "/metrics", headers: dict[str, str] | None = None,
            method: str = "GET") -> tuple[int, dict[str, str], bytes]:
        host, port = self.address.rsplit(":", 1)
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            connection.request(method, path, headers=headers or {})
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    def wait_up(self, timeout: float = 15) -> bytes:
        """Polls /metrics until the first poll succeeded (a readiness poll, not a sleep)."""
        deadline = time.monotonic() + timeout
        body = b""
        while time.monotonic() < deadline:
            try:
                body = self.get()[2]
            except http.client.IncompleteRead as cut:  # an answer cut at its deadline: its first lines came
                body = cut.partial
            if b"\nsecure_endpoint_cloud_up 1\n" in body:
                return body
            time.sleep(0.05)
        raise AssertionError(f"never up: {self.log.read_text()}")


@contextlib.contextmanager
def exporter(cloud: fakecloud.FakeCloud, certs: Path, tmp_path: Path, *args: str,
             credentials: Path | None = None) -> Iterator[Running]:
    log = tmp_path / "cloud-exporter.log"
    creds = credentials or credentials_file(tmp_path)
    command = [script(PROG), "--cloud.api-url", cloud.url, "--cloud.credentials-file", str(creds),
               "--cloud.ca-file", str(certs / "ca.pem"), "--web.listen-address", "127.0.0.1:0", *args]
    with open(log, "w") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, text=True)
    try:
        [address] = _wait_for(log, process, 1)
        yield Running(process, address, log)
    finally:
        stop(process)


@pytest.fixture
def cloud(certs: Path) -> Iterator[fakecloud.FakeCloud]:
    with fakecloud.FakeCloud(certs, fakecloud.fleet(1234)) as server:
        yield server


def series(body: bytes, name: str) -> list[str]:
    return [line for line in body.decode().splitlines() if line.startswith(name + "{") or line.startswith(name + " ")]


def test_metrics_hold_every_computer_and_pass_promtool(cloud: fakecloud.FakeCloud, certs: Path,
                                                        tmp_path: Path) -> None:
    hostile = dict(cloud.computers[0], hostname='a"b\\c\nd\u2028e', operating_system="\x00OS")
    cloud.computers[0] = hostile
    with exporter(cloud, certs, tmp_path) as running:
        body = running.wait_up()
        status, headers, _ = running.get()
    assert status == 200 and headers["transfer-encoding"] == "chunked"
    assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert run_promtool(body.decode()) == ""
    info = series(body, "secure_endpoint_cloud_computer_info")
    assert len(info) == 1234
    assert {re.search(r'connector_guid="([^"]+)"', line)[1] for line in info} == {  # type: ignore[index]
        c["connector_guid"] for c in cloud.computers}
    assert 'hostname="a\\"b\\\\c\ufffdd\ufffde"' in info[0]
    for name in ("last_seen_timestamp_seconds", "active", "isolated", "compromised", "faults"):
        assert len(series(body, f"secure_endpoint_cloud_computer_{name}")) == 1234, name
    total = sum(float(line.rsplit(" ", 1)[1]) for line in series(body, "secure_endpoint_cloud_computers"))
    assert total == 1234
    assert series(body, "secure_endpoint_cloud_api_requests_total") == [
        'secure_endpoint_cloud_api_requests_total{code="200"} 4']
    assert series(body, "process_resident_memory_bytes")


def test_aggregates_only(cloud: fakecloud.FakeCloud, certs: Path, tmp_path: Path) -> None:
    with exporter(cloud, certs, tmp_path, "--no-cloud.per-computer", "--web.disable-exporter-metrics") as running:
        body = running.wait_up()
    assert b"secure_endpoint_cloud_computer_" not in body and b"process_" not in body
    assert len(series(body, "secure_endpoint_cloud_group_computers")) == len(fakecloud.GROUPS)
    assert run_promtool(body.decode()) == ""


def test_gzip_head_and_http_1_0(cloud: fakecloud.FakeCloud, certs: Path, tmp_path: Path) -> None:
    with exporter(cloud, certs, tmp_path) as running:
        plain = running.wait_up()
        info = series(plain, "secure_endpoint_cloud_computer_info")
        status, headers, packed = running.get(headers={"Accept-Encoding": "gzip"})
        assert status == 200 and headers["content-encoding"] == "gzip"
        unpacked = gzip.decompress(packed)
        assert series(unpacked, "secure_endpoint_cloud_computer_info") == info
        status, headers, body = running.get(method="HEAD")
        assert status == 200 and body == b"" and headers["transfer-encoding"] == "chunked"
        host, port = running.address.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as sock:  # HEAD, then GET on the same
            sock.sendall(b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n"
                         b"Connection: close\r\n\r\n")
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
        head, _, after = received.partition(b"\r\n\r\n")
        assert b"Transfer-Encoding: chunked" in head and after.startswith(b"HTTP/1.1 200 "), after[:40]
        host, port = running.address.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
        head, _, rest = received.partition(b"\r\n\r\n")
        assert b"Connection: close" in head and b"Transfer-Encoding" not in head
        assert series(rest, "secure_endpoint_cloud_computer_info") == info


def test_a_scrape_past_its_deadline_is_cut_off(certs: Path, tmp_path: Path) -> None:
    with fakecloud.FakeCloud(certs, fakecloud.fleet(20000)) as big, \
            exporter(big, certs, tmp_path, "--web.scrape-timeout", "0.02", "--web.timeout-offset", "0") as running:
        running.wait_up(timeout=60)
        host, port = running.address.rsplit(":", 1)
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        assert response.status == 200
        time.sleep(0.2)  # a client that reads slowly: the deadline passes while the answer waits for it
        with pytest.raises(http.client.IncompleteRead):
            response.read()
        connection.close()


def test_basic_auth_from_the_web_config(cloud: fakecloud.FakeCloud, certs: Path, tmp_path: Path) -> None:
    import bcrypt

    config = tmp_path / "web.yml"
    hashed = bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds=4)).decode()
    config.write_text(f"basic_auth_users:\n  prometheus: {hashed}\n")
    with exporter(cloud, certs, tmp_path, "--web.config.file", str(config)) as running:
        assert running.get()[0] == 401
        import base64

        token = base64.b64encode(b"prometheus:secret").decode()
        status, _, body = running.get(headers={"Authorization": f"Basic {token}"})
        assert status == 200 and b"secure_endpoint_cloud_up" in body


def test_head_and_cut_connections_give_their_request_slots_back(cloud: fakecloud.FakeCloud, certs: Path,
                                                                  tmp_path: Path) -> None:
    def answered(method: str) -> None:
        """200 soon: a 503 while the answer before still gives its slot back (a millisecond) is fine, one that
        lasts is a slot lost."""
        deadline = time.monotonic() + 10
        while running.get(method=method)[0] != 200:
            assert time.monotonic() < deadline, f"{method} answered 503 for 10 s: request slots lost"
            time.sleep(0.05)

    with exporter(cloud, certs, tmp_path, "--web.max-requests", "2") as running:
        running.wait_up()
        for _ in range(5):
            answered("HEAD")
        host, port = running.address.rsplit(":", 1)
        for _ in range(5):  # a client that asks and goes away before the answer
            with socket.create_connection((host, int(port)), timeout=10) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        for _ in range(3):  # the cut answers end within their write timeout
            answered("GET")


def test_a_taken_port_costs_no_api_request(cloud: fakecloud.FakeCloud, certs: Path, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        done = run(PROG, "--cloud.api-url", cloud.url, "--cloud.credentials-file", str(credentials_file(tmp_path)),
                   "--cloud.ca-file", str(certs / "ca.pem"), "--web.listen-address", address)
    assert done.returncode == 1 and "cannot listen" in done.stderr  # 1: systemd tries again, within its limit
    assert cloud.statuses() == []


def test_a_group_readable_credentials_file_is_taken(cloud: fakecloud.FakeCloud, certs: Path, tmp_path: Path) -> None:
    with exporter(cloud, certs, tmp_path, credentials=credentials_file(tmp_path, mode=0o640)) as running:
        running.wait_up()


def test_no_credential_text_in_the_messages(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    for text in (f"client_id: abc\n{fakecloud.API_KEY}: x\n", f"client_id: !{fakecloud.API_KEY} x\n",
                 f"client_id: *{fakecloud.API_KEY}\n", "[" * 20000):
        path.write_text(text)
        path.chmod(0o600)
        done = run(PROG, "--cloud.credentials-file", str(path))
        assert done.returncode == EX_CONFIG, done.stderr
        assert fakecloud.API_KEY not in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_a_readable_credentials_file_is_refused(cloud: fakecloud.FakeCloud, tmp_path: Path, certs: Path) -> None:
    for mode in (0o644, 0o604, 0o660):
        path = credentials_file(tmp_path, mode=mode)
        done = run(PROG, "--cloud.api-url", cloud.url, "--cloud.credentials-file", str(path))
        assert done.returncode == EX_CONFIG and "chmod 600" in done.stdout + done.stderr
    assert fakecloud.API_KEY not in done.stdout + done.stderr
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    done = run(PROG, "--cloud.api-url", cloud.url, "--cloud.credentials-file", str(fifo), timeout=10)
    assert done.returncode == EX_CONFIG and "regular file" in done.stderr
    assert cloud.statuses() == []


@pytest.mark.parametrize(("text", "said"), [
    ("client_id: abc\n", "api_key is missing"),
    ("client_id: abc\napi_key: 0123\n", "not a (quoted) string"),
    ("client_id: abc\napi_key: k\nsecret: x\n", "1 field(s) other than client_id and api_key"),
    ("[1, 2\n", "not YAML at line 2, column 1"),
    ("- a\n", "must hold client_id and api_key"),
])
def test_bad_credentials_files_are_said(tmp_path: Path, text: str, said: str) -> None:
    path = tmp_path / "c.yml"
    path.write_text(text)
    path.chmod(0o600)
    done = run(PROG, "--cloud.credentials-file", str(path))
    assert done.returncode == EX_CONFIG and said in done.stderr, done.stderr


def test_credentials_from_the_environment(cloud: fakecloud.FakeCloud, certs: Path, tmp_path: Path) -> None:
    log = tmp_path / "env.log"
    env = {**os.environ, "SECURE_ENDPOINT_CLIENT_ID": fakecloud.CLIENT_ID, "SECURE_ENDPOINT_API_KEY": fakecloud.API_KEY}
    with open(log, "w") as sink:
        process = subprocess.Popen([script(PROG), "--cloud.api-url", cloud.url, "--cloud.ca-file",
                                    str(certs / "ca.pem"), "--web.listen-address", "127.0.0.1:0", "--log.level",
                                    "debug"], stdout=sink, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        [address] = _wait_for(log, process, 1)
        Running(process, address, log).wait_up()
    finally:
        stop(process)
    assert fakecloud.API_KEY not in log.read_text()
    done = subprocess.run([script(PROG)], capture_output=True, text=True, timeout=30, check=False,
                          env={k: v for k, v in env.items() if k != "SECURE_ENDPOINT_API_KEY"})
    assert done.returncode == EX_CONFIG and "api_key is missing" in done.stderr


@pytest.mark.parametrize(("args", "said"), [
    (["--cloud.api-url", "http://api.amp.cisco.com"], "https only"),
    (["--cloud.poll-interval", "5 minutes"], "is not a duration"),
    (["--cloud.poll-interval", "0s"], "not longer than zero"),
    (["--cloud.poll-interval", "1000y"], "longer than a day"),
    (["--cloud.region", "mars"], "invalid choice"),
    (["--cloud.api-key", "x"], "unrecognized arguments"),
    (["--cloud.api-url", "https://api.amp.cisco.com/v1"], "without the API version"),
    (["--cloud.region", "eu", "--cloud.api-url", "https://proxy.example"], "give one"),
])
def test_bad_flags_are_usage_errors(args: list[str], said: str) -> None:
    done = run(PROG, *args)
    assert done.returncode == 2 and said in done.stderr, done.stderr


def test_refused_credentials_stop_polling_and_sighup_reloads_them(cloud: fakecloud.FakeCloud, certs: Path,
                                                                 tmp_path: Path) -> None:
    path = credentials_file(tmp_path, key="wrong")
    with exporter(cloud, certs, tmp_path, "--cloud.poll-interval", "1s", credentials=path) as running:
        deadline = time.monotonic() + 15
        while b"\nsecure_endpoint_cloud_polling 0\n" not in running.get()[2]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        body = running.get()[2]
        assert b"\nsecure_endpoint_cloud_up 0\n" in body
        assert series(body, "secure_endpoint_cloud_api_requests_total") == [
            'secure_endpoint_cloud_api_requests_total{code="401"} 1']
        credentials_file(tmp_path)
        running.process.send_signal(signal.SIGHUP)
        running.wait_up()
        log = running.log.read_text()
    assert log.count("refused the credentials") == 1 and "wrong" not in log
    assert cloud.statuses()[0] == 401


def test_sigterm_ends_it_at_once(cloud: fakecloud.FakeCloud, certs: Path, tmp_path: Path) -> None:
    with exporter(cloud, certs, tmp_path) as running:
        running.wait_up()
        started = time.monotonic()
        running.process.terminate()
        assert running.process.wait(timeout=10) == 0
        assert time.monotonic() - started < 5
