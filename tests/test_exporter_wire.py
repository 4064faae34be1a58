"""How answers go over the wire: one write each, no Nagle delay, keep-alive as HTTP/1.0 clients expect it,
and the one-shot text format read back by a parser as the report holds it, odd texts included."""

from __future__ import annotations

import math
import socket
import socketserver
from pathlib import Path

import pytest

from secure_endpoint_monitoring.checks.catalog import Platform, Severity, unknown_fault
from secure_endpoint_monitoring.checks.evaluate import evaluate
from secure_endpoint_monitoring.checks.host import Host
from secure_endpoint_monitoring.checks.report import CollectorRun, FaultResult, Report, State
from secure_endpoint_monitoring.exporter import metrics
from secure_endpoint_monitoring.exporter.main import render
from tests.hosttree import LinuxTree, faults_status
from tests.mactree import MacTree
from tests.test_exporter_hostile_http import _connect, _read_response, _serving


@pytest.fixture
def report(healthy: LinuxTree) -> Report:
    return evaluate(Host(str(healthy.root), run_programs=True))


def test_an_answer_is_one_write_on_a_socket_without_nagle(report: Report, monkeypatch: pytest.MonkeyPatch) -> None:
    """Headers and body in two writes would let Nagle hold the body until the client's delayed ACK."""
    writes: list[tuple[int, int]] = []
    write = socketserver._SocketWriter.write

    def recording(self: socketserver._SocketWriter, data: bytes) -> int:
        writes.append((len(data), self._sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)))
        return write(self, data)

    monkeypatch.setattr(socketserver._SocketWriter, "write", recording)
    with _serving(lambda deadline: report) as address:
        sock = _connect(address)
        for _ in range(3):  # kept alive: the second and third are where Nagle would stall
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n")
            head = _read_response(sock)
            assert head.startswith(b"HTTP/1.1 200 ")
        sock.close()
    assert len(writes) == 3 and all(nodelay for _, nodelay in writes), writes


def test_http_1_0_keep_alive_is_answered_as_kept(report: Report) -> None:
    with _serving(lambda deadline: report) as address:
        sock = _connect(address)
        for _ in range(2):
            sock.sendall(b"GET /metrics HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            head = _read_response(sock)
            assert head.startswith(b"HTTP/1.1 200 ") and b"\r\nConnection: keep-alive" in head, head
        sock.close()


def test_http_1_0_without_keep_alive_is_told_of_the_close(report: Report) -> None:
    with _serving(lambda deadline: report) as address:
        sock = _connect(address, b"GET /metrics HTTP/1.0\r\n\r\n")
        head = _read_response(sock)
        assert b"\r\nConnection: close" in head
        sock.settimeout(5)
        assert sock.recv(65536) == b""  # closed right after the answer, not at the read timeout
        sock.close()


# -- the one-shot text format ----------------------------------------------------------------------
def _odd_report() -> Report:
    """Every kind of value and label text the format has to escape."""
    report = Report(Platform.LINUX, 'Odd "Linux"\\', "9\n1", "5.14.0-ü", True)
    report.connector_version = "1.24.1"
    report.connected = False
    report.connector_status = {"policy": 'a "quoted" \\ policy\nwith a newline | and a bar'}
    report.processes = {"ampdaemon": True, "ampscansvc": None}
    report.definitions_build_time = 1_700_000_000.0
    report.definitions_updated_time = 1.5
    fault = unknown_fault("77", 'text with "quotes"', Severity.WARNING)
    report.faults = [FaultResult(fault, State.ACTIVE, True, None, severity="Critical"),
                     FaultResult(fault._replace(id="78", slug="x"), State.UNKNOWN)]
    report.collectors = [CollectorRun("system", True, 1.25e-05), CollectorRun("policy", False, 12345678.9, "x"),
                         CollectorRun("kernel", True, math.inf), CollectorRun("tcc", True, -0.0)]
    return report


def _hosts(tmp_path: Path) -> dict[str, Path]:
    faulty = LinuxTree(tmp_path / "faulty").healthy()
    faulty.ampcli(faults_status((18, "Critical", "reduced set"), (99, "Major", "new")))
    return {"healthy": LinuxTree(tmp_path / "healthy").healthy().root, "faulty": faulty.root,
            "bare": LinuxTree(tmp_path / "bare").root, "mac": MacTree(tmp_path / "mac").healthy().root}


def test_the_one_shot_text_reads_back_as_the_report_says(tmp_path: Path) -> None:
    """Every label text and value, escapes included, as Prometheus's text parser reads it."""
    from prometheus_client.parser import text_string_to_metric_families

    reports = [evaluate(Host(str(root), run_programs=True)) for root in _hosts(tmp_path).values()] + [_odd_report()]
    for report in reports:
        written = {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
                   for family in text_string_to_metric_families(render(report, "prometheus", "en").decode())
                   for sample in family.samples}
        wanted = {(f"{family.name}_info" if family.kind == "info" else family.name,
                   tuple(sorted(zip(family.labels, values)))): value
                  for family in metrics.families(report) for values, value in family.samples}
        assert written.keys() == wanted.keys()
        assert all(written[key] == value or (math.isnan(value) and math.isnan(written[key]))
                   for key, value in wanted.items())
    odd = render(_odd_report(), "prometheus", "en").decode()
    assert 'policy="a \\"quoted\\" \\\\ policy\\nwith a newline | and a bar"' in odd
