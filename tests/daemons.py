"""Starts the real programs the tests talk to (the exporter, Prometheus) on 127.0.0.1 and stops them."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.commands import script


class Exporter:
    def __init__(self, process: subprocess.Popen[str], addresses: list[str], log: Path) -> None:
        self.process = process
        self.addresses = addresses
        self.log = log

    @property
    def address(self) -> str:
        return self.addresses[0]


@contextlib.contextmanager
def exporter(root: Path, *args: str, log: Path, listen: tuple[str, ...] = ("127.0.0.1:0",),
             tls: bool = False, run_from_rootfs: bool = True) -> Iterator[Exporter]:
    """The exporter serving ``root`` (and running its ampcli, unless not ``run_from_rootfs``); yields once it
    has said where it listens."""
    command = [script("secure-endpoint-exporter"), "--path.rootfs", str(root)]
    command += ["--ampcli.run-from-rootfs"] if run_from_rootfs else []
    for address in listen:
        command += ["--web.listen-address", address]
    with open(log, "w") as sink:
        process = subprocess.Popen([*command, *args], stdout=sink, stderr=subprocess.STDOUT, text=True)
    try:
        addresses = _wait_for(log, process, len(listen))
        yield Exporter(process, addresses, log)
    finally:
        stop(process)


def stop(process: subprocess.Popen[Any], timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL if the program has not ended within ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_for(log: Path, process: subprocess.Popen[str], count: int, timeout: float = 15) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.findall(r"listening on (\S+)", log.read_text())
        if len(found) >= count:
            return found
        if process.poll() is not None:
            raise AssertionError(f"exporter exited with {process.returncode}: {log.read_text()}")
        time.sleep(0.02)
    raise AssertionError(f"exporter did not start within {timeout} s: {log.read_text()}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Prometheus:
    """A real Prometheus (Debian's package) with a temporary storage dir, on 127.0.0.1."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise AssertionError("prometheus is missing: install Debian's prometheus package (.ci/test does)")
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = workdir / "prometheus.yml"
        self.process: subprocess.Popen[bytes] | None = None

    def write_config(self, targets: dict[str, list[str]], rule_files: list[Path] | None = None) -> None:
        jobs = [{"job_name": job, "static_configs": [{"targets": addresses}]} for job, addresses in targets.items()]
        config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                  "rule_files": [str(p) for p in rule_files or []], "scrape_configs": jobs}
        self.config.write_text(json.dumps(config))  # JSON is YAML

    def start(self) -> None:
        log = open(self.workdir / "prometheus.log", "w")  # noqa: SIM115 - lives as long as the process
        self.process = subprocess.Popen(
            [self.binary, f"--config.file={self.config}", f"--storage.tsdb.path={self.workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-lifecycle", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if urllib.request.urlopen(f"{self.url}/-/ready", timeout=1).status == 200:
                    return
            if self.process.poll() is not None:
                raise AssertionError(f"prometheus exited: {(self.workdir / 'prometheus.log').read_text()}")
            time.sleep(0.05)
        raise AssertionError("prometheus did not become ready")

    def reload(self) -> None:
        request = urllib.request.Request(f"{self.url}/-/reload", method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=5) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return list(self.api("query", query=expr)["result"])

    def wait_for(self, expr: str, count: int, timeout: float = 30) -> list[dict[str, Any]]:
        """Poll until ``expr`` returns at least ``count`` series (the first scrape takes ~5 s in 2.x)."""
        deadline = time.monotonic() + timeout
        found: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            found = self.query(expr)
            if len(found) >= count:
                return found
            time.sleep(0.2)
        raise AssertionError(f"{expr} gave {len(found)} series, wanted {count}")
