"""SIGTERM and Ctrl-C while ampcli hangs: the commands kill it, say why they stop, and exit without a traceback.

Also the exporter's one-shot flags, refused without --once instead of being dropped.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from secure_endpoint_monitoring.checks import programs
from secure_endpoint_monitoring.checks.host import Host, HostError
from secure_endpoint_monitoring.checks.programs import Stopped
from tests.commands import script
from tests.hosttree import LinuxTree


def hung_host(tmp_path: Path) -> tuple[LinuxTree, str]:
    """A healthy host whose ``ampcli status`` sleeps for a number of seconds no other test uses."""
    # pytest's folder names repeat between sessions: the pid and the time make the number this run's own.
    seconds = str(7_000_000 + zlib.crc32(f"{tmp_path} {os.getpid()} {time.time_ns()}".encode()) % 1_000_000)
    tree = LinuxTree(tmp_path / "host").healthy()
    tree.ampcli(hang=float(seconds))
    return tree, seconds


def hung_programs(tree: LinuxTree, seconds: str) -> list[str]:
    """The tree's ampcli and its sleep, while they run."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = proc.info.get("cmdline") or []
        if proc.info.get("status") == psutil.STATUS_ZOMBIE:
            continue
        if any(str(tree.root) in part for part in cmdline) or cmdline[-1:] in ([seconds], [f"{seconds}.0"]):
            found.append(" ".join(cmdline))
    return found


def wait_until_hung(tree: LinuxTree, seconds: str, process: subprocess.Popen[str]) -> None:
    """Until the command has started ampcli and its sleep (a readiness poll, not a fixed sleep)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if len(hung_programs(tree, seconds)) >= 2:
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.02)
    raise AssertionError("ampcli was never started")


Start = Callable[..., "subprocess.Popen[str]"]


@pytest.fixture
def start() -> Iterator[Start]:
    """Starts a command with an ampcli timeout far beyond the bounds below (the callers raise -t and the
    scrape timeout alike): a stop that waited for ampcli, or for a timeout, shows. Whatever the test
    leaves running (it failed before its stop) is killed by its process group afterwards."""
    started: list[subprocess.Popen[str]] = []

    def starting(name: str, tree: LinuxTree, *args: str) -> subprocess.Popen[str]:
        # start_new_session: a Ctrl-C the test sends reaches this command only, as a terminal's would its job.
        process = subprocess.Popen([script(name), "--path.rootfs", str(tree.root), "--ampcli.run-from-rootfs",
                                    "--ampcli-timeout", "60", *args],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   start_new_session=True)
        started.append(process)
        return process

    yield starting
    for process in started:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        process.communicate()


def stopped(process: subprocess.Popen[str], *signals: signal.Signals) -> tuple[int, str, str, float]:
    """Send the signals one after the other (a double Ctrl-C), then wait; code, stdout, stderr, seconds."""
    began = time.monotonic()
    for signum in signals:
        os.kill(process.pid, signum)
        time.sleep(0.005)  # a person's second Ctrl-C comes later still; this one lands during the clean-up
    out, err = process.communicate(timeout=20)
    return process.returncode, out, err, time.monotonic() - began


def gone(tree: LinuxTree, seconds: str) -> None:
    """Nothing of the hung ampcli is left (its sleep included)."""
    deadline = time.monotonic() + 10  # SIGKILLed programs are reaped by init a moment later
    while hung_programs(tree, seconds) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not hung_programs(tree, seconds), hung_programs(tree, seconds)


def status_of(address: str) -> str:
    """The HTTP status of one scrape of /metrics, or "000" when the connection ends without an answer."""
    host, port = address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=20)
    try:
        connection.request("GET", "/metrics")
        return str(connection.getresponse().status)
    except (OSError, http.client.HTTPException):
        return "000"
    finally:
        connection.close()


@pytest.mark.parametrize(("lang", "line"), [
    ("en", "SECURE ENDPOINT UNKNOWN - stopped by SIGTERM before the checks finished"),
    ("nl", "SECURE ENDPOINT UNKNOWN - gestopt door SIGTERM voordat de controles klaar waren"),
])
def test_plugin_stopped_by_sigterm_is_unknown(tmp_path: Path, start: Start, lang: str, line: str) -> None:
    tree, seconds = hung_host(tmp_path)
    process = start("check_secure_endpoint", tree, "-t", "60", "--state-file", "", "--lang", lang)
    wait_until_hung(tree, seconds, process)
    code, out, err, took = stopped(process, signal.SIGTERM)
    assert (code, out.splitlines()[0], err) == (3, line, "")
    assert took < 15, took  # the hung ampcli (60 s timeout) did not hold it
    gone(tree, seconds)


def test_plugin_stopped_by_sighup_is_unknown(tmp_path: Path, start: Start) -> None:
    """A closed terminal or a kill -HUP: the default would kill the plugin and leave ampcli behind."""
    tree, seconds = hung_host(tmp_path)
    process = start("check_secure_endpoint", tree, "-t", "60", "--state-file", "")
    wait_until_hung(tree, seconds, process)
    code, out, err, took = stopped(process, signal.SIGHUP)
    assert (code, out, err) == (3, "SECURE ENDPOINT UNKNOWN - stopped by SIGHUP before the checks finished\n", "")
    assert took < 15, took
    gone(tree, seconds)


def test_once_stopped_by_sighup_exits_0_and_leaves_nothing(tmp_path: Path, start: Start) -> None:
    tree, seconds = hung_host(tmp_path)
    process = start("secure-endpoint-exporter", tree, "--once")
    wait_until_hung(tree, seconds, process)
    code, out, err, _took = stopped(process, signal.SIGHUP)
    assert (code, out) == (0, "")
    assert 'msg="received SIGHUP before the evaluation finished, stopping" signal=SIGHUP' in err, err
    gone(tree, seconds)


def test_server_reloads_its_web_config_on_sighup(tmp_path: Path, start: Start) -> None:
    """exporter-toolkit's users send SIGHUP to reload: the server logs it and reloads at once, without a
    request to notice the change, and keeps serving."""
    tree = LinuxTree(tmp_path / "host").healthy()
    config = tmp_path / "web.yml"
    config.write_text("http_server_config:\n  headers:\n    X-Test: one\n")
    process = start("secure-endpoint-exporter", tree, "--web.listen-address", "127.0.0.1:0",
                    "--web.config.file", str(config))
    assert process.stderr is not None
    address = ""
    while not address:
        line = process.stderr.readline()
        assert line, process.communicate()
        if "listening on" in line:
            address = line.split('address=')[1].split()[0]
    config.write_text("http_server_config:\n  headers:\n    X-Test: two\n")
    os.kill(process.pid, signal.SIGHUP)
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(iter(process.stderr.readline, "")), daemon=True)
    reader.start()
    deadline = time.monotonic() + 15
    while not any("web config reloaded from" in line for line in seen):  # no request was made meanwhile
        assert time.monotonic() < deadline, f"no reload logged within 15 s: {seen}"
        time.sleep(0.02)
    assert any('msg="received SIGHUP, reloading the web config"' in line for line in seen), seen
    assert process.poll() is None
    host, port = address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=20)
    try:
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        assert (response.status, response.getheader("X-Test")) == (200, "two")
    finally:
        connection.close()
    os.kill(process.pid, signal.SIGTERM)
    assert process.wait(timeout=20) == 0
    reader.join(timeout=20)
    assert not any("Traceback" in line for line in seen), seen


def test_plugin_double_ctrl_c_has_no_traceback(tmp_path: Path, start: Start) -> None:
    tree, seconds = hung_host(tmp_path)
    process = start("check_secure_endpoint", tree, "-t", "60", "--state-file", "")
    wait_until_hung(tree, seconds, process)
    code, out, err, _took = stopped(process, signal.SIGINT, signal.SIGINT)
    assert (code, out, err) == (3, "SECURE ENDPOINT UNKNOWN - stopped by SIGINT before the checks finished\n", "")
    gone(tree, seconds)


def test_once_stopped_by_sigterm_writes_nothing_and_exits_0(tmp_path: Path, start: Start) -> None:
    tree, seconds = hung_host(tmp_path)
    output = tmp_path / "out" / "secure_endpoint.prom"
    output.parent.mkdir()
    output.write_text("# the previous run's file\n")
    process = start("secure-endpoint-exporter", tree, "--once", "--output", str(output))
    wait_until_hung(tree, seconds, process)
    code, out, err, took = stopped(process, signal.SIGTERM)
    assert (code, out) == (0, "")
    assert 'msg="received SIGTERM before the evaluation finished, stopping" signal=SIGTERM' in err, err
    assert "Traceback" not in err and took < 15
    assert output.read_text() == "# the previous run's file\n"
    assert sorted(path.name for path in output.parent.iterdir()) == ["secure_endpoint.prom"]  # no temporary
    gone(tree, seconds)


@pytest.mark.parametrize("signals", [(signal.SIGTERM,), (signal.SIGINT, signal.SIGINT)],
                         ids=["sigterm", "double-ctrl-c"])
def test_server_shuts_down_during_a_scrape(tmp_path: Path, start: Start, signals: tuple[signal.Signals, ...]) -> None:
    tree, seconds = hung_host(tmp_path)
    process = start("secure-endpoint-exporter", tree, "--web.listen-address", "127.0.0.1:0",
                    "--web.scrape-timeout", "60")
    assert process.stderr is not None
    address = ""
    while not address:  # the exporter logs where it listens before it serves
        line = process.stderr.readline()
        assert line, process.communicate()
        if "listening on" in line:
            address = line.split('address=')[1].split()[0]
    answers: list[str] = []
    scrape = threading.Thread(target=lambda: answers.append(status_of(address)), daemon=True)
    scrape.start()
    wait_until_hung(tree, seconds, process)
    code, out, err, took = stopped(process, *signals)
    scrape.join(timeout=25)
    assert answers, "the scrape never ended"
    answer = answers[0]
    name = signals[0].name
    assert (code, out) == (0, "")
    # Never a 200 whose ampcli "failed" because the stop killed it: 503, or the connection closed.
    assert answer in ("503", "000"), answer
    assert f'msg="received {name}, shutting down" signal={name}' in err, err
    assert "Traceback" not in err and took < 15, (took, err)
    gone(tree, seconds)


@pytest.mark.parametrize("flags", [["--output", "x.prom"], ["--format", "json"], ["--state-file", ""]])
def test_one_shot_flags_need_once(tmp_path: Path, flags: list[str]) -> None:
    done = subprocess.run([script("secure-endpoint-exporter"), "--path.rootfs", str(tmp_path),
                           "--ampcli.run-from-rootfs", *flags,
                           "--web.listen-address", "127.0.0.1:0"], capture_output=True, text=True, timeout=30,
                          check=False)
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1].endswith(
        f"error: {flags[0]} applies only with --once (the server answers /metrics and keeps its state in memory)")
    assert done.stdout == ""


@pytest.fixture
def stop_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process-wide stop state and signal handlers, as they were, after the test."""
    monkeypatch.setattr(programs._children, "stop_signal", 0)
    handlers = {signum: signal.getsignal(signum) for signum in programs.STOP_SIGNALS}
    yield
    for signum, handler in handlers.items():
        signal.signal(signum, handler)


def test_a_signal_between_fork_and_registration_kills_the_new_program(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop_state: None) -> None:
    """The signal lands right after Popen forked, before the program is in the registry: the handler
    leaves the raise to Host.start, which kills the program it just started."""
    tree, seconds = hung_host(tmp_path)
    real_popen = subprocess.Popen
    started: list[subprocess.Popen[bytes]] = []

    def popen_then_signal(*args: object, **kwargs: object) -> subprocess.Popen[bytes]:
        proc = real_popen(*args, **kwargs)  # type: ignore[call-overload]
        started.append(proc)
        programs._on_stop_signal(signal.SIGTERM, None)  # what the interpreter would run here
        return proc

    monkeypatch.setattr(programs.subprocess, "Popen", popen_then_signal)
    with pytest.raises(Stopped) as caught:
        Host(str(tree.root), run_programs=True).start("opt/cisco/amp/bin/ampcli", ["status"])
    assert caught.value.signal_name == "SIGTERM"
    assert started and started[0].poll() is not None  # killed and reaped, not left running
    assert started[0].pid not in programs._children.started
    gone(tree, seconds)


def test_nothing_starts_once_stopping(tmp_path: Path, stop_state: None) -> None:
    """After a stop signal the main thread gets Stopped, a scrape's thread an error its collector reports."""
    tree, seconds = hung_host(tmp_path)
    programs._children.stop_signal = signal.SIGTERM
    with pytest.raises(Stopped):
        Host(str(tree.root), run_programs=True).start("opt/cisco/amp/bin/ampcli", ["status"])
    errors: list[BaseException] = []

    def in_a_thread() -> None:
        try:
            Host(str(tree.root), run_programs=True).start("opt/cisco/amp/bin/ampcli", ["status"])
        except BaseException as error:  # noqa: BLE001 - the test looks at what it was
            errors.append(error)

    worker = threading.Thread(target=in_a_thread)
    worker.start()
    worker.join(10)
    assert [type(error) for error in errors] == [HostError]
    assert "stopping" in str(errors[0])
    assert not hung_programs(tree, seconds)
