"""The exporter follows node_exporter's conventions: self-metrics, collector flags, logs, --version, HEAD,
systemd socket activation. Real processes on 127.0.0.1 unless a test says otherwise."""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import platform
import re
import resource
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from prometheus_client.process_collector import ProcessCollector

from secure_endpoint_monitoring.checks import __version__
from secure_endpoint_monitoring.checks.collectors import COLLECTORS, REGISTRY
from secure_endpoint_monitoring.checks.report import Report
from secure_endpoint_monitoring.exporter import logs, main, selfmetrics
from tests.commands import run, script
from tests.daemons import exporter, free_port, stop
from tests.hosttree import LinuxTree
from tests.test_exporter_hostile_http import _serving
from tests.test_exporter_http import get, scrape
from tests.test_exporter_logfmt import capture, parse_json_log, parse_log, parse_record  # noqa: F401 - a fixture

ROOT = Path(__file__).resolve().parents[1]
# What Prometheus 2.42 (Debian 12's) sends.
PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                     "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
SELF_FAMILIES = {"process_virtual_memory_bytes", "process_resident_memory_bytes", "process_start_time_seconds",
                 "process_cpu_seconds_total", "process_open_fds", "process_max_fds"}
GC_FAMILIES = {"python_gc_objects_collected_total", "python_gc_objects_uncollectable_total",
               "python_gc_collections_total"}


def names(found: dict[tuple[str, Any], float]) -> set[str]:
    return {name for name, _ in found}


def _own(found: dict[tuple[str, Any], float]) -> set[str]:
    return {name for name in names(found) if name.startswith(("process_", "python_"))}


# -- self-metrics ----------------------------------------------------------------------------------
def test_self_metrics_are_served_by_default(healthy: LinuxTree, tmp_path: Path) -> None:
    with exporter(healthy.root, log=tmp_path / "log") as running:
        first = scrape(running.address)
        second = scrape(running.address)
        started = psutil.Process(running.process.pid).create_time()
        rss = psutil.Process(running.process.pid).memory_info().rss
    assert SELF_FAMILIES | GC_FAMILIES | {"python_info"} <= names(first)
    value = {name: v for (name, labels), v in second.items() if not labels}
    assert abs(value["process_start_time_seconds"] - started) < 1.5
    assert 0.5 * rss < value["process_resident_memory_bytes"] < 2 * rss
    assert value["process_virtual_memory_bytes"] >= value["process_resident_memory_bytes"]
    assert value["process_max_fds"] == resource.getrlimit(resource.RLIMIT_NOFILE)[0]  # inherited from us
    assert 3 < value["process_open_fds"] < value["process_max_fds"]
    assert 0 < value["process_cpu_seconds_total"] < 60
    implementation = platform.python_implementation()
    info = [dict(labels) for (name, labels), _ in first.items() if name == "python_info"]
    assert info == [{"implementation": implementation, "major": str(sys.version_info[0]),
                     "minor": str(sys.version_info[1]), "patchlevel": platform.python_version_tuple()[2],
                     "version": platform.python_version()}]
    assert second[("python_gc_collections_total", (("generation", "0"),))] >= 0


def test_self_metrics_in_openmetrics(healthy: LinuxTree, tmp_path: Path) -> None:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    with exporter(healthy.root, log=tmp_path / "log") as running:
        status, headers, body = get(running.address, headers={"Accept": PROMETHEUS_ACCEPT})
    assert status == 200 and headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    text = body.decode()
    assert text.endswith("\n# EOF\n") and text.count("# EOF") == 1
    families = {family.name: family for family in text_string_to_metric_families(text)}  # strict: raises on error
    assert {"process_cpu_seconds", "process_open_fds", "python_gc_collections", "python_info",
            "secure_endpoint_fault_active"} <= set(families)
    assert families["process_cpu_seconds"].type == "counter" and families["python_info"].type == "gauge"


def test_disable_exporter_metrics(healthy: LinuxTree, tmp_path: Path) -> None:
    with exporter(healthy.root, "--web.disable-exporter-metrics", log=tmp_path / "log") as running:
        found = scrape(running.address)
        status, _, open_metrics = get(running.address, headers={"Accept": "application/openmetrics-text"})
    assert _own(found) == set()
    assert "secure_endpoint_fault_active" in names(found)
    assert status == 200 and b"\nprocess_" not in open_metrics and b"\npython_" not in open_metrics


def test_once_never_writes_self_metrics(healthy: LinuxTree) -> None:
    done = run("secure-endpoint-exporter", "--path.rootfs", str(healthy.root), "--ampcli.run-from-rootfs", "--once")
    assert done.returncode == 0, done.stderr
    assert "secure_endpoint_fault_active" in done.stdout
    assert not re.search(r"(?m)^(# (HELP|TYPE) )?(process|python)_", done.stdout)


def test_the_portable_process_collector_agrees_with_proc() -> None:
    """What a Mac gets (psutil and resource) against prometheus_client's /proc reader, in this process."""
    def read(collector: Any) -> dict[str, float]:
        return {family.name: family.samples[0].value for family in collector.collect()}

    portable = selfmetrics.PortableProcessCollector()
    proc, ours = read(ProcessCollector(registry=None)), read(portable)
    # CounterMetricFamily names the family without _total; both collectors do the same.
    assert set(ours) == set(proc) == {name.removesuffix("_total") for name in SELF_FAMILIES}
    assert abs(ours["process_start_time_seconds"] - proc["process_start_time_seconds"]) < 1.5
    assert abs(ours["process_resident_memory_bytes"] - proc["process_resident_memory_bytes"]) < 32 * 2**20
    assert abs(ours["process_virtual_memory_bytes"] - proc["process_virtual_memory_bytes"]) < 256 * 2**20
    assert abs(ours["process_cpu_seconds"] - proc["process_cpu_seconds"]) < 1
    assert ours["process_max_fds"] == proc["process_max_fds"]
    assert abs(ours["process_open_fds"] - proc["process_open_fds"]) <= 2


def test_without_proc_the_portable_collector_is_used(tmp_path: Path) -> None:
    assert isinstance(selfmetrics.process_collector(str(tmp_path / "no-proc")),
                      selfmetrics.PortableProcessCollector)
    assert isinstance(selfmetrics.process_collector("/proc"), ProcessCollector)
    served = {family.name for family in selfmetrics.ExporterMetrics(str(tmp_path)).collect()}
    assert {name.removesuffix("_total") for name in SELF_FAMILIES} <= served


ACCEPTS = [
    "",
    "*/*",
    "text/plain",
    "text/plain; version=0.0.4",
    "text/plain; version=1.0.0; escaping=underscores",
    "text/plain; version=1.0.0; escaping=allow-utf-8",
    "text/plain; version=1.0.0; escaping=dots",
    PROMETHEUS_ACCEPT,
    "application/openmetrics-text; version=1.0.0",
    "application/openmetrics-text; version=0.0.1",
    "application/openmetrics-text",
    "application/openmetrics-text; version=1.0.0; escaping=allow-utf-8",
    "application/openmetrics-text; version=1.0.0; escaping=underscores",
    "application/openmetrics-text; version=1.0.0; escaping=values",
    "application/openmetrics-text; version=1.0.0; escaping=dots",
    # What Prometheus 3 sends by default.
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;"
    "version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
]


OPENMETRICS = "application/openmetrics-text; version=1.0.0"


@pytest.mark.parametrize("accept", ACCEPTS)
def test_every_format_prometheus_asks_for_holds_the_self_metrics(report: Report, accept: str) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from secure_endpoint_monitoring.exporter.server import Exporter

    app = Exporter(lambda deadline: report, "/metrics", None, 0)
    body, content_type = app.exposition(report, accept)
    text = body.decode()
    if "escaping=dots" in content_type or "escaping=values" in content_type:  # every name rewritten
        same_kind = "text/plain; version=0.0.4" if content_type.startswith("text/plain") else OPENMETRICS
        plain, _ = app.exposition(report, same_kind)
        assert len(text.splitlines()) == len(plain.decode().splitlines())
        return
    assert "process_cpu_seconds_total" in text and "python_info{" in text
    assert "secure_endpoint_fault_active{" in text
    if content_type.startswith("application/openmetrics-text"):
        assert text.endswith("# EOF\n")
    else:
        assert content_type.startswith("text/plain")
        families = {family.name for family in text_string_to_metric_families(text)}
        assert {"process_cpu_seconds", "secure_endpoint_fault_active"} <= families


# -- collectors ------------------------------------------------------------------------------------
ALL = set(COLLECTORS)


@pytest.mark.parametrize(("args", "enabled"), [
    ([], ALL),
    (["--collector.disable-defaults"], set()),
    (["--collector.disable-defaults", "--collector.policy"], {"policy"}),
    (["--collector.policy", "--collector.disable-defaults"], {"policy"}),
    (["--collector.disable-defaults", "--collector.policy", "--no-collector.policy"], set()),
    (["--no-collector.policy"], ALL - {"policy"}),
    (["--no-collector.policy", "--collector.policy"], ALL),
    (["--collector.policy"], ALL),
    (["--collector.disable-defaults", "--no-collector.kernel", "--collector.selinux"], {"selinux"}),
])
def test_collector_flags_compose_as_in_node_exporter(args: list[str], enabled: set[str]) -> None:
    assert ALL - main.disabled_collectors(main.build_parser().parse_args(args)) == enabled


def test_each_collector_is_declared_where_the_registry_says() -> None:
    """REGISTRY names the module of each collector; the module declares that very name (ampcli's status is
    collected by Evidence itself, from the run it starts first)."""
    for name, entry in REGISTRY.items():
        module = importlib.import_module(f"secure_endpoint_monitoring.checks.evidence.{entry.module}")
        if name == "connector_status":
            assert not hasattr(module, "COLLECTOR") and callable(module.start)
        else:
            assert module.COLLECTOR.name == name, entry


def test_a_linux_evaluation_imports_no_macos_reader(healthy: LinuxTree) -> None:
    """The registry names the macOS modules without importing them: a Linux run loads none."""
    code = ("import sys\nfrom secure_endpoint_monitoring.checks import nagios\n"
            "from secure_endpoint_monitoring.checks.collectors import MACOS, REGISTRY\n"
            "try:\n    nagios.main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "sys.stderr.write(repr(sorted(e.module for e in REGISTRY.values() if e.platforms == MACOS "
            "and 'secure_endpoint_monitoring.checks.evidence.' + e.module in sys.modules)))\n")
    done = subprocess.run([sys.executable, "-c", code, "--path.rootfs", str(healthy.root), "--ampcli.run-from-rootfs",
                           "--state-file", ""], capture_output=True, text=True, check=False, cwd=ROOT, timeout=60)
    assert done.stdout.startswith("SECURE ENDPOINT OK") and done.stderr == "[]", done.stdout + done.stderr


def test_nothing_imports_the_packages_by_their_folder_names() -> None:
    """checks/ and exporter/ are importable only as secure_endpoint_monitoring.checks and .exporter (what
    the wheel installs): a top-level ``import checks`` would load a second copy of every module from a
    checkout, and fail once installed."""
    import ast

    from secure_endpoint_monitoring import checks, exporter

    wrong = []
    folders = [Path(checks.__file__).parent, Path(exporter.__file__).parent,
               *(ROOT / name for name in ("tests", "bench", "examples", "pkg", ".ci"))]
    read = 0
    for folder in folders:
        for path in folder.rglob("*.py"):
            if "node_modules" in path.parts:
                continue
            read += 1
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
                wrong += [f"{path}:{node.lineno}" for name in names
                          if name.split(".")[0] in ("checks", "exporter")]
    assert wrong == [] and read > 100


@pytest.mark.parametrize("name", ["checks", "exporter", "checks.collect", "exporter.main"])
def test_the_folders_refuse_their_own_names(name: str) -> None:
    """From a checkout's root ``import checks`` finds the folder; it refuses, rather than load a second copy."""
    done = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True, check=False,
                          cwd=ROOT, timeout=30)
    assert done.returncode == 1 and "ImportError: import secure_endpoint_monitoring." in done.stderr, done.stderr


def test_help_shows_both_forms_of_every_collector_flag() -> None:
    done = run("secure-endpoint-exporter", "--help")
    assert done.returncode == 0
    for name in COLLECTORS:
        assert f"--collector.{name}, --no-collector.{name}" in done.stdout, name
    for flag in ("--collector.disable-defaults", "--web.systemd-socket", "--web.disable-exporter-metrics",
                 "--log.format", "--log.level", "--version"):
        assert flag in done.stdout, flag


def _collectors_reported(found: dict[tuple[str, Any], float]) -> set[str]:
    return {dict(labels)["collector"] for name, labels in found if name == "secure_endpoint_scrape_collector_success"}


def test_disable_defaults_with_one_collector_runs_only_that_one(healthy: LinuxTree, tmp_path: Path) -> None:
    with exporter(healthy.root, "--collector.disable-defaults", "--collector.policy", log=tmp_path / "log") as running:
        found = scrape(running.address)
    assert _collectors_reported(found) == {"policy"}
    assert found[("secure_endpoint_scrape_collector_success", (("collector", "policy"),))] == 1
    records = parse_log((tmp_path / "log").read_text())
    assert any(r["msg"] == "enabled collectors: policy" and r["collectors"] == "policy" for r in records)
    once = run("secure-endpoint-exporter", "--path.rootfs", str(healthy.root), "--ampcli.run-from-rootfs",
               "--once", "--collector.disable-defaults",
               "--collector.kernel", "--collector.selinux", "--no-collector.kernel")
    assert once.returncode == 0, once.stderr
    assert re.findall(r'secure_endpoint_scrape_collector_success\{collector="(\w+)"\}', once.stdout) == ["selinux"]


# -- logs ------------------------------------------------------------------------------------------
def _raw(address: str, request: bytes) -> socket.socket:
    host, _, port = address.rpartition(":")
    sock = socket.create_connection((host, int(port)), timeout=15)
    sock.sendall(request)
    return sock


def _head(stream: Any) -> tuple[int, dict[str, str]]:
    """Status and headers of the next answer on ``stream`` (the bytes after them are left unread)."""
    status_line = stream.readline().decode("latin-1")
    assert status_line.startswith("HTTP/1.1 "), status_line
    headers: dict[str, str] = {}
    while True:
        line = stream.readline().decode("latin-1").rstrip("\r\n")
        if not line:
            return int(status_line.split()[1]), headers
        name, _, text = line.partition(":")
        headers[name.strip().lower()] = text.strip()


def test_every_log_line_is_strict_logfmt(healthy: LinuxTree, tmp_path: Path) -> None:
    log = tmp_path / "log"
    with exporter(healthy.root, "--log.level", "debug", log=log) as running:
        scrape(running.address)
        assert get(running.address, "/nope")[0] == 404
        sock = _raw(running.address, b'GET /x"y HTTP/1.1\r\nContent-Length: nope\r\n\r\n')  # a 400 with a quote
        sock.recv(65536)
        sock.close()
        sock = _raw(running.address, b"BREW /metrics HTTP/1.1\r\n\r\n")  # 501
        sock.recv(65536)
        sock.close()
        get(running.address)
    records = parse_log(log.read_text())
    assert len(records) > 10
    [listening] = [r for r in records if r["msg"].startswith("listening on ")]
    assert listening["msg"] == f"listening on {running.address} (TLS off)"
    assert (listening["address"], listening["tls"], listening["level"]) == (running.address, "false", "info")
    assert re.fullmatch(r"serving\.py:\d+", listening["caller"])
    assert records[0]["msg"] == "starting secure-endpoint-exporter" and records[0]["version"] == __version__
    requests = [r.get("request", "") for r in records]
    assert 'GET /x"y HTTP/1.1' in requests and "GET /nope HTTP/1.1" in requests
    assert all(r["level"] in ("debug", "info") for r in records), records


def test_json_logs(healthy: LinuxTree, tmp_path: Path) -> None:
    log = tmp_path / "log"
    process = subprocess.Popen([script("secure-endpoint-exporter"), "--path.rootfs", str(healthy.root),
                                "--ampcli.run-from-rootfs", "--web.listen-address", "127.0.0.1:0",
                                "--log.format", "json"],
                               stdout=subprocess.DEVNULL, stderr=log.open("w"))
    try:
        address = _wait_for_record(log, process, json_format=True)["address"]
        assert get(str(address))[0] == 200
    finally:
        stop(process)
    records = parse_json_log(log.read_text())
    assert [r["msg"] for r in records][:2] == ["starting secure-endpoint-exporter",
                                               "enabled collectors: " + ",".join(COLLECTORS)]
    assert records[2]["tls"] is False


def _wait_for_record(log: Path, process: subprocess.Popen[bytes], json_format: bool = False,
                     prefix: str = "listening on ") -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        text = log.read_text()
        complete = text[:text.rfind("\n") + 1]
        lines = [line for line in complete.split("\n")[:-1] if line.startswith(("ts=", "{"))]
        for line in lines:
            record: dict[str, Any] = json.loads(line) if json_format else parse_record(line)
            if str(record["msg"]).startswith(prefix):
                return record
        assert process.poll() is None, text
        time.sleep(0.02)
    raise AssertionError(f"no {prefix!r} record: {log.read_text()}")


def test_once_logs_one_strict_line_per_event(healthy: LinuxTree, tmp_path: Path) -> None:
    link = tmp_path / "state.json"
    link.symlink_to(tmp_path / "elsewhere")
    done = run("secure-endpoint-exporter", "--path.rootfs", str(healthy.root), "--ampcli.run-from-rootfs",
               "--once", "--state-file", str(link),
               "--output", str(tmp_path / "missing" / "x.prom"))
    assert done.returncode == 1
    records = parse_log(done.stderr)
    assert [r["level"] for r in records] == ["warn", "error"], done.stderr
    assert "symbolic link" in records[0]["msg"]
    assert records[1]["msg"] == f"cannot write {tmp_path / 'missing' / 'x.prom'}"
    assert records[1]["err"] == "No such file or directory"
    as_json = run("secure-endpoint-exporter", "--path.rootfs", str(healthy.root), "--ampcli.run-from-rootfs",
                  "--once", "--log.format", "json",
                  "--output", str(tmp_path / "missing" / "x.prom"))
    [record] = parse_json_log(as_json.stderr)
    assert record["err"] == "No such file or directory" and as_json.returncode == 1


def test_a_failing_scrape_is_one_error_line_with_err(report: Report, capture: io.StringIO) -> None:  # noqa: F811
    calls = []

    def broken(deadline: float) -> Report:
        calls.append(deadline)
        raise RuntimeError('ampcli said "no"\nand more')

    logs.setup("info", "logfmt", capture)
    with _serving(broken) as address:
        status, _, body = get(address)
    assert status == 500 and body.startswith(b"scrape failed: ")
    [record] = [r for r in parse_log(capture.getvalue()) if r["msg"] == "scrape failed"]
    assert record["level"] == "error" and record["err"] == 'RuntimeError: ampcli said "no"\nand more'
    assert record["client"] == "127.0.0.1" and "trace" not in record and calls


@pytest.fixture
def report(healthy: LinuxTree) -> Report:
    from secure_endpoint_monitoring.checks.evaluate import evaluate
    from secure_endpoint_monitoring.checks.host import Host

    return evaluate(Host(str(healthy.root), run_programs=True))


def test_bad_log_flags_are_usage_errors() -> None:
    for args in (["--log.format", "xml"], ["--log.level", "verbose"]):
        done = run("secure-endpoint-exporter", *args)
        assert done.returncode == 2 and "invalid choice" in done.stderr and "Traceback" not in done.stderr


# -- --version -------------------------------------------------------------------------------------
def test_version_prints_build_details() -> None:
    done = run("secure-endpoint-exporter", "--version")
    assert done.returncode == 0 and done.stderr == ""
    lines = done.stdout.splitlines()
    assert re.fullmatch(rf"secure-endpoint-exporter, version {re.escape(__version__)}"
                        r"( \(revision: [0-9a-f]{7,40}\))?", lines[0]), lines[0]
    assert lines[1] == f"  python version:   {platform.python_version()} ({platform.python_implementation()})"
    assert lines[2] == f"  platform:         {platform.system().lower()}/{platform.machine()}"
    assert len(lines) == 3


def test_the_revision_comes_from_what_pip_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import metadata

    commit = "0123456789abcdef0123456789abcdef01234567"

    class Recorded:
        def __init__(self, text: str | None) -> None:
            self.text = text

        def read_text(self, name: str) -> str | None:
            assert name == "direct_url.json"
            return self.text

    record = {"url": "https://example.invalid/repo.git", "vcs_info": {"vcs": "git", "commit_id": commit}}
    monkeypatch.setattr(metadata, "distribution", lambda name: Recorded(json.dumps(record)))
    first = main.version_text().splitlines()[0]
    assert first == f"secure-endpoint-exporter, version {__version__} (revision: {commit})"
    monkeypatch.setattr(metadata, "distribution", lambda name: Recorded('{"url": "file:///src", "dir_info": {}}'))
    assert main.version_text().splitlines()[0] == f"secure-endpoint-exporter, version {__version__}"
    monkeypatch.setattr(metadata, "distribution", lambda name: Recorded("not json"))
    assert main.revision() == ""


# -- HEAD and the landing page ---------------------------------------------------------------------
def test_head_is_answered_like_get_without_a_body(healthy: LinuxTree, tmp_path: Path) -> None:
    with exporter(healthy.root, log=tmp_path / "log") as running:
        get_status, get_headers, page = get(running.address, "/")
        # HEAD, then GET on the same kept-alive connection: a body after HEAD would be read as the next answer.
        sock = _raw(running.address, b"HEAD /metrics HTTP/1.1\r\nHost: a\r\n\r\nHEAD / HTTP/1.1\r\nHost: a\r\n\r\n"
                                     b"HEAD /nope HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
        stream = sock.makefile("rb")
        try:
            metrics_status, metrics_headers = _head(stream)
            landing_status, landing_headers = _head(stream)
            missing_status, missing_headers = _head(stream)
            last_status, last_headers = _head(stream)
            last_body = stream.read(int(last_headers["content-length"]))
        finally:
            stream.close()
            sock.close()
    assert (metrics_status, landing_status, missing_status, last_status) == (200, 200, 404, 200)
    assert metrics_headers["content-type"].startswith("text/plain; version=0.0.4")
    assert int(metrics_headers["content-length"]) > 1000
    assert get_status == 200 and {k: v for k, v in landing_headers.items() if k != "date"} == {
        k: v for k, v in get_headers.items() if k != "date"}
    assert int(landing_headers["content-length"]) == len(page)
    assert int(missing_headers["content-length"]) == len(b"Not Found\n")
    assert last_body == page and b"<h1>Secure Endpoint Exporter</h1>" in page


def test_head_needs_the_same_credentials(healthy: LinuxTree, tmp_path: Path) -> None:
    import bcrypt

    config = tmp_path / "web.yml"
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
    config.write_text(f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    with exporter(healthy.root, "--web.config.file", str(config), log=tmp_path / "log") as running:
        answers = []
        for path in (b"/metrics", b"/"):
            # Pipelined: the second request is never answered, the 401 closes the connection.
            second = b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"
            sock = _raw(running.address, b"HEAD " + path + b" HTTP/1.1\r\nHost: a\r\n\r\n" + second)
            stream = sock.makefile("rb")
            try:
                answers.append(_head(stream))
                assert stream.read() == b""
            finally:
                stream.close()
                sock.close()
    for status, headers in answers:
        assert status == 401 and headers["www-authenticate"].startswith("Basic") and headers["connection"] == "close"


# -- systemd socket activation ---------------------------------------------------------------------
# What systemd does between fork and exec: the sockets at descriptors 3..., LISTEN_PID the service's own pid.
AS_SYSTEMD = """import os, sys
fd = int(sys.argv[1])
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.environ.update(LISTEN_FDS=sys.argv[2], LISTEN_PID=str(os.getpid()) if sys.argv[3] == "self" else sys.argv[3],
                  LISTEN_FDNAMES="secure-endpoint-exporter.socket")
os.execv(sys.argv[4], sys.argv[4:])
"""


@contextlib.contextmanager
def _activated(sock: socket.socket | io.BufferedReader, root: Path, log: Path, *args: str, count: str = "1",
               pid: str = "self") -> Iterator[subprocess.Popen[bytes]]:
    fd = sock.fileno()
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-c", AS_SYSTEMD, str(fd), count, pid, script("secure-endpoint-exporter"),
             "--path.rootfs", str(root), "--ampcli.run-from-rootfs", "--web.systemd-socket", *args],
            pass_fds=(fd,), stdout=sink, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        stop(process)


def test_socket_activation_serves_the_inherited_socket(healthy: LinuxTree, tmp_path: Path) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    address = f"127.0.0.1:{listener.getsockname()[1]}"
    log = tmp_path / "log"
    with _activated(listener, healthy.root, log) as process:
        listener.close()  # only the exporter holds it now
        record = _wait_for_record(log, process)
        found = scrape(address)
        assert get(address, "/")[0] == 200
    assert record["msg"] == f"listening on {address} (TLS off, socket from systemd)"
    assert (record["address"], record["fd"], record["name"]) == (address, "3", "secure-endpoint-exporter.socket")
    assert found[("secure_endpoint_connector_installed", ())] == 1
    assert "process_open_fds" in names(found)
    parse_log(log.read_text())


def test_socket_activation_by_systemd_socket_activate(healthy: LinuxTree, tmp_path: Path) -> None:
    """systemd's own tool for this: it binds, and on the first connection execs the exporter with the socket."""
    activate = shutil.which("systemd-socket-activate")
    assert activate is not None, "systemd-socket-activate (Debian's systemd package) is missing"
    port = free_port()
    log = tmp_path / "log"
    with log.open("w") as sink:
        process = subprocess.Popen([activate, "--listen", f"127.0.0.1:{port}", script("secure-endpoint-exporter"),
                                    "--path.rootfs", str(healthy.root), "--ampcli.run-from-rootfs",
                                    "--web.systemd-socket"],
                                   stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while "Listening on" not in log.read_text():  # the tool's own line: the socket is bound
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.02)
        found = scrape(f"127.0.0.1:{port}", timeout=30)  # this connection starts the exporter
    finally:
        stop(process)
    assert found[("secure_endpoint_connector_installed", ())] == 1
    ours = [line for line in log.read_text().splitlines() if line.startswith("ts=")]
    assert any(parse_record(line)["msg"] == f"listening on 127.0.0.1:{port} (TLS off, socket from systemd)"
               for line in ours), log.read_text()


def _refused(root: Path, env: dict[str, str], *args: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}
    done = subprocess.run([script("secure-endpoint-exporter"), "--path.rootfs", str(root), "--ampcli.run-from-rootfs",
                           "--web.systemd-socket",
                           *args], env={**environ, **env}, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    return parse_log(done.stderr)[-1]


@pytest.mark.parametrize(("env", "message"), [
    ({}, "--web.systemd-socket: systemd passed no socket (LISTEN_FDS is not set)"),
    ({"LISTEN_FDS": "1", "LISTEN_PID": "1"}, "the sockets were passed to process '1' (LISTEN_PID), not to this one"),
    ({"LISTEN_FDS": "1"}, "the sockets were passed to process None (LISTEN_PID)"),
])
def test_socket_activation_without_sockets_is_refused(healthy: LinuxTree, env: dict[str, str], message: str) -> None:
    record = _refused(healthy.root, env)
    assert record["level"] == "error" and record["msg"].startswith("--web.systemd-socket: ")
    assert message in record["msg"], record


def _udp() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def _unlistened() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def _devnull() -> io.BufferedReader:
    return open(os.devnull, "rb")  # closed by the test


def _unix() -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(f"\0secure-endpoint-test-{os.getpid()}")  # abstract: no file to clean up
    sock.listen(1)
    return sock


@pytest.mark.parametrize(("make", "count", "message"), [
    (_udp, "1", "is not a stream socket: use ListenStream=, not ListenDatagram="),
    (_unlistened, "1", "is not listening: the .socket unit needs Accept=no"),
    (_unix, "1", "is an AF_UNIX socket; only TCP over IPv4 or IPv6"),
    (_devnull, "1", "descriptor 3 (secure-endpoint-exporter.socket) is not a socket"),
    (_unlistened, "0", "LISTEN_FDS is '0', not a number of sockets"),
    (_unlistened, "two", "LISTEN_FDS is 'two', not a number of sockets"),
])
def test_socket_activation_refuses_what_it_cannot_serve(healthy: LinuxTree, tmp_path: Path, make: Any, count: str,
                                                         message: str) -> None:
    log = tmp_path / "log"
    thing = make()
    try:
        with _activated(thing, healthy.root, log, count=count) as process:
            assert process.wait(timeout=30) == 1
    finally:
        thing.close()
    record = parse_log(log.read_text())[-1]
    assert record["level"] == "error" and message in record["msg"], record


def test_socket_activation_for_another_process_is_refused(healthy: LinuxTree, tmp_path: Path) -> None:
    listener = _unlistened()
    listener.listen(1)
    log = tmp_path / "log"
    try:
        with _activated(listener, healthy.root, log, pid=str(os.getpid())) as process:
            assert process.wait(timeout=30) == 1
    finally:
        listener.close()
    assert f"passed to process '{os.getpid()}' (LISTEN_PID)" in parse_log(log.read_text())[-1]["msg"]


def test_socket_activation_and_a_listen_address_are_not_both_taken(healthy: LinuxTree) -> None:
    done = run("secure-endpoint-exporter", "--path.rootfs", str(healthy.root), "--ampcli.run-from-rootfs",
               "--web.systemd-socket",
               "--web.listen-address", "127.0.0.1:0")
    assert done.returncode == 2 and "leave out --web.listen-address" in done.stderr


def test_listen_variables_are_not_passed_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read once and removed, as sd_listen_fds(1) does: ampcli and other children never see them."""
    from secure_endpoint_monitoring.exporter import systemd

    environ = {"LISTEN_FDS": "1", "LISTEN_PID": "999999", "LISTEN_FDNAMES": "x", "PATH": "/bin"}
    with pytest.raises(systemd.SocketActivationError):
        systemd.listen_sockets(environ, pid=1)
    assert environ == {"PATH": "/bin"}


def test_importing_the_exporter_leaves_logging_alone() -> None:
    """exporter.logs changes nothing at import: a library user's logging stays as it is until setup()."""
    program = ("import logging, sys, threading; hook = threading.excepthook; "
               "import secure_endpoint_monitoring.exporter.logs, secure_endpoint_monitoring.exporter.server; "
               "print(len(logging.getLogger().handlers), threading.excepthook is hook, "
               "sys.excepthook is sys.__excepthook__)")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=30, check=False)
    assert done.stdout == "0 True True\n", done.stderr
