"""The exporter's HTTP server as a real process: series, landing page, load, hung ampcli, TLS and auth."""

from __future__ import annotations

import base64
import concurrent.futures
import gzip
import http.client
import os
import shutil
import ssl
import subprocess
import time
from pathlib import Path

import bcrypt
import pytest

from tests import pki
from tests.commands import run
from tests.daemons import exporter
from tests.hosttree import LinuxTree, faults_status
from tests.test_exporter_logfmt import parse_log
from tests.test_exporter_once import samples, value


def get(address: str, path: str = "/metrics", headers: dict[str, str] | None = None,
        context: ssl.SSLContext | None = None, timeout: float = 15) -> tuple[int, dict[str, str], bytes]:
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    if context is None:
        conn: http.client.HTTPConnection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    else:
        conn = http.client.HTTPSConnection(host, int(port), timeout=timeout, context=context)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def scrape(address: str, **kwargs: object) -> dict:
    status, _, body = get(address, **kwargs)  # type: ignore[arg-type]
    assert status == 200, body
    return samples(body.decode())


def test_series_and_values(healthy: LinuxTree, tmp_path: Path) -> None:
    healthy.ampcli(faults_status((18, "Major", "overloaded")))
    healthy.selinux(enforcing=True, module="disabled")
    with exporter(healthy.root, log=tmp_path / "log") as running:
        found = scrape(running.address)
    assert value(found, "secure_endpoint_fault_active", fault_id="18", fault="event_monitoring_overloaded",
                 platform="linux") == 1
    assert value(found, "secure_endpoint_fault_active", fault_id="19", fault="selinux_policy_missing",
                 platform="linux") == 1
    assert value(found, "secure_endpoint_fault_active", fault_id="5", fault="scan_service_user_unavailable",
                 platform="linux") == 0
    assert value(found, "secure_endpoint_connector_installed") == 1


def test_what_changes_between_scrapes_is_seen_although_the_server_caches(healthy: LinuxTree, tmp_path: Path) -> None:
    """The server keeps the processes and folder listings it read; each change below must still show."""
    for folder, _dirs, _files in os.walk(healthy.root / "opt"):
        os.utime(folder, (time.time() - 3600, time.time() - 3600))  # listings old enough to be trusted
    scanner = "secure_endpoint_process_running"
    with exporter(healthy.root, log=tmp_path / "log") as running:
        assert value(scrape(running.address), scanner, process="ampscansvc") == 1
        healthy.stop("ampscansvc")
        assert value(scrape(running.address), scanner, process="ampscansvc") == 0
        healthy.process("ampscansvc", started_ago=5)
        assert value(scrape(running.address), scanner, process="ampscansvc") == 1
        newest = time.time() - 60
        healthy.definitions("bytecode.cvd", build_time=newest)
        found = scrape(running.address)
        assert value(found, "secure_endpoint_definitions_build_timestamp_seconds") == int(newest)
        healthy.chmod("opt/cisco/amp/var", 0o700)
        assert value(scrape(running.address), "secure_endpoint_fault_active", fault_id="5",
                     fault="scan_service_user_unavailable", platform="linux") == 1


def test_landing_page_paths_and_ipv6(healthy: LinuxTree, tmp_path: Path) -> None:
    with exporter(healthy.root, "--web.telemetry-path", "/probe", log=tmp_path / "log",
                  listen=("127.0.0.1:0", "[::1]:0")) as running:
        status, headers, body = get(running.address, "/")
        assert status == 200 and headers["content-type"].startswith("text/html")
        assert b'<a href="/probe">Metrics</a>' in body
        assert get(running.address, "/metrics")[0] == 404
        v6 = running.addresses[1]
        assert v6.startswith("[::1]:")
        assert value(scrape(v6, path="/probe"), "secure_endpoint_connector_installed") == 1


def test_openmetrics_and_gzip(healthy: LinuxTree, tmp_path: Path) -> None:
    with exporter(healthy.root, log=tmp_path / "log") as running:
        status, headers, body = get(running.address, headers={
            "Accept": "application/openmetrics-text; version=1.0.0", "Accept-Encoding": "gzip"})
    assert status == 200
    assert headers["content-encoding"] == "gzip"
    assert headers["content-type"].startswith("application/openmetrics-text")
    assert gzip.decompress(body).rstrip().endswith(b"# EOF")


def _counting_ampcli(tree: LinuxTree, seconds: float) -> Path:
    """An ampcli that notes each ``status`` run in a file and takes ``seconds`` to answer."""
    counter = tree.root / "ampcli-runs"
    tree.write("opt/cisco/amp/bin/ampcli",
               f'#!/bin/sh\n[ "$1" = status ] && echo run >> "{counter}"\nsleep {seconds}\n'
               'cat "$(dirname "$0")/ampcli.$1"\n', mode=0o755)
    return counter


def test_64_parallel_scrapes_share_evaluations(healthy: LinuxTree, tmp_path: Path) -> None:
    counter = _counting_ampcli(healthy, 0.5)
    with (exporter(healthy.root, "--web.max-requests", "0", log=tmp_path / "log") as running,
          concurrent.futures.ThreadPoolExecutor(max_workers=64) as pool):
        results = list(pool.map(lambda _: get(running.address), range(64)))
    assert [status for status, _, _ in results] == [200] * 64
    assert all(b"secure_endpoint_fault_active" in body for _, _, body in results)
    runs = len(counter.read_text().splitlines())
    assert 1 <= runs <= 8, f"{runs} ampcli runs for 64 scrapes"


def test_max_requests(healthy: LinuxTree, tmp_path: Path) -> None:
    counter = _counting_ampcli(healthy, 1.5)
    with (exporter(healthy.root, "--web.max-requests", "1", log=tmp_path / "log") as running,
          concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool):
        first = pool.submit(get, running.address)
        deadline = time.monotonic() + 5
        while not (counter.exists() and counter.read_text()) and time.monotonic() < deadline:
            time.sleep(0.01)  # poll: the first scrape is inside ampcli and holds the only slot
        second = get(running.address)
        assert (first.result()[0], second[0]) == (200, 503)


def test_hung_ampcli_answers_within_ten_seconds(healthy: LinuxTree, tmp_path: Path) -> None:
    healthy.ampcli(hang=60)
    healthy.write("etc/group", "root:x:0:\n")
    with exporter(healthy.root, log=tmp_path / "log") as running:
        started = time.monotonic()
        found = scrape(running.address)
        assert time.monotonic() - started < 10
    assert value(found, "secure_endpoint_scrape_collector_success", collector="connector_status") == 0
    assert value(found, "secure_endpoint_fault_active", fault_id="5", fault="scan_service_user_unavailable",
                 platform="linux") == 1
    assert value(found, "secure_endpoint_fault_check_success", fault_id="19", fault="selinux_policy_missing") == 1


def test_disabled_collector(healthy: LinuxTree, tmp_path: Path) -> None:
    healthy.selinux(enforcing=True, module="missing")
    with exporter(healthy.root, log=tmp_path / "on.log") as running:
        assert value(scrape(running.address), "secure_endpoint_fault_active", fault_id="19",
                     fault="selinux_policy_missing", platform="linux") == 1
    with exporter(healthy.root, "--no-collector.selinux", log=tmp_path / "log") as running:
        found = scrape(running.address)
    assert value(found, "secure_endpoint_fault_active", fault_id="19", fault="selinux_policy_missing",
                 platform="linux") == 0
    assert value(found, "secure_endpoint_fault_check_success", fault_id="19", fault="selinux_policy_missing") == 1
    assert ("secure_endpoint_scrape_collector_success", (("collector", "selinux"),)) not in found


# -- TLS and basic auth ----------------------------------------------------------
@pytest.fixture
def certs(tmp_path: Path) -> Path:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise AssertionError("openssl is missing: .ci/test installs it")
    folder = tmp_path / "certs"
    folder.mkdir()
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(folder / "key.pem"),
                    "-out", str(folder / "cert.pem"), "-subj", "/CN=127.0.0.1", "-days", "2",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return folder


def _web_config(path: Path, password: str, tls: bool = True) -> None:
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=6)).decode()
    text = ""
    if tls:
        text += "tls_server_config:\n  cert_file: certs/cert.pem\n  key_file: certs/key.pem\n"
    text += f"basic_auth_users:\n  prometheus: '{hashed}'\n"
    path.write_text(text)


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_tls_and_basic_auth(healthy: LinuxTree, tmp_path: Path, certs: Path) -> None:
    config = tmp_path / "web.yml"
    _web_config(config, "s3cret")
    context = ssl.create_default_context(cafile=str(certs / "cert.pem"))
    with exporter(healthy.root, "--web.config.file", str(config), log=tmp_path / "log") as running:
        assert get(running.address, context=context)[0] == 401
        assert get(running.address, context=context, headers=_basic("prometheus", "wrong"))[0] == 401
        assert get(running.address, context=context, headers=_basic("nobody", "s3cret"))[0] == 401
        assert get(running.address, context=context, headers={"Authorization": "Basic !!!"})[0] == 401
        status, _, body = get(running.address, context=context, headers=_basic("prometheus", "s3cret"))
        assert status == 200 and b"secure_endpoint_fault_active" in body
        with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):
            get(running.address, timeout=5)  # plain HTTP on the TLS port is refused

        # The file changes: the next request uses the new password.
        time.sleep(0.01)
        _web_config(config, "n3w-secret")
        assert get(running.address, context=context, headers=_basic("prometheus", "s3cret"))[0] == 401
        assert get(running.address, context=context, headers=_basic("prometheus", "n3w-secret"))[0] == 200

        # A broken edit is logged and the last good config stays.
        config.write_text("basic_auth_users: [\n")
        assert get(running.address, context=context, headers=_basic("prometheus", "n3w-secret"))[0] == 200
    records = parse_log((tmp_path / "log").read_text())  # every line strict logfmt
    [refused] = [r for r in records if r["msg"].startswith("web config not reloaded")]
    assert refused["level"] == "error" and refused["file"] == str(config) and "is not valid YAML" in refused["err"]


def test_client_certificates(healthy: LinuxTree, tmp_path: Path) -> None:
    """RequireAndVerifyClientCert: only clients with a certificate from client_ca_file get in."""
    d = tmp_path / "pki"
    d.mkdir()
    pki.make(d)
    config = tmp_path / "web.yml"
    config.write_text("tls_server_config:\n  cert_file: pki/server.pem\n  key_file: pki/server.key\n"
                      "  client_ca_file: pki/ca.pem\n  client_auth_type: RequireAndVerifyClientCert\n")
    with exporter(healthy.root, "--web.config.file", str(config), log=tmp_path / "log") as running:
        anonymous = ssl.create_default_context(cafile=str(d / "ca.pem"))
        with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException, OSError)):
            get(running.address, context=anonymous, timeout=5)
        with_cert = ssl.create_default_context(cafile=str(d / "ca.pem"))
        with_cert.load_cert_chain(str(d / "client.pem"), str(d / "client.key"))
        assert get(running.address, context=with_cert)[0] == 200


@pytest.mark.parametrize(("text", "message"), [
    ("tls_server_config:\n  cert_file: nope.pem\n  key_file: nope.key\n", "cannot load cert_file/key_file"),
    ("basic_auth_users:\n  admin: plaintext\n", "is not a bcrypt hash"),
    ("tls_config: {}\n", "unknown setting 'tls_config'"),
    ("basic_auth_users: [\n", "is not valid YAML"),
    ("tls_server_config:\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n", "cipher_suites is not supported"),
    ('http_server_config:\n  headers:\n    X-Frame-Options: "deny\\r\\nSet-Cookie: a=b"\n',
     "printable ASCII on one line"),
    ("http_server_config:\n  headers:\n    Content-Length: '5'\n", "cannot set 'Content-Length'"),
    ("http_server_config:\n  headers:\n    'Bad Name': x\n", "cannot set 'Bad Name'"),
    ("a: &x [1, 2]\nb: *x\n", "anchors and aliases"),
    ("tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n  min_version: [TLS12]\n",
     "TLS version ['TLS12'] is not one of"),
])
def test_malformed_web_config_is_a_clear_error_at_start(healthy: LinuxTree, tmp_path: Path, text: str,
                                                        message: str) -> None:
    config = tmp_path / "web.yml"
    config.write_text(text)
    done = run("secure-endpoint-exporter", "--path.rootfs", str(healthy.root), "--ampcli.run-from-rootfs",
               "--web.config.file", str(config),
               "--web.listen-address", "127.0.0.1:0", timeout=20)
    assert done.returncode == 1
    assert message in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("address", "message"), [("localhost", "is not host:port"),
                                                  ("::1:9100", "put an IPv6 address in brackets")])
def test_bad_listen_address(healthy: LinuxTree, address: str, message: str) -> None:
    done = run("secure-endpoint-exporter", "--path.rootfs", str(healthy.root), "--ampcli.run-from-rootfs",
               "--web.listen-address", address)
    assert done.returncode == 1 and message in done.stderr
