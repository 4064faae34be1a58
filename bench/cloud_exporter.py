"""The cloud exporter at fleet size: a poll's CPU and peak memory, /metrics latency, and the API budget.

The fake API (tests/fakecloud.py, real HTTPS on 127.0.0.1, the documented limit of 3,000 requests an
hour) serves N computers from its own process, so its work is not counted. Then:

1. One exporter polls back to back (``--cloud.poll-interval 1s``) for ``--polls`` polls: CPU a poll is
   its CPU time between the first poll's end and the last's, divided by the polls; the peak is its
   VmHWM (the old snapshot is still served while the next is read, so this is two fleets at once).
2. Two exporters, with and without ``--no-cloud.per-computer``, polled once, are scraped in turns as
   Prometheus scrapes (kept-alive connection, gzip): the p50 of each.
3. The budget: the requests a poll took, times the polls an hour at the default interval of 5 minutes,
   against the limit; and whether the fake answered 429 at any time.

    .venv/bin/python bench/cloud_exporter.py [--computers 100000] [--polls 5] [--rounds 30]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import BIN, Served, cpu_seconds, describe, machine, pin_client, take_turns
from tests import fakecloud, pki


def peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for {pid}")


def start_fake(folder: Path, computers: int) -> tuple[subprocess.Popen[str], int]:
    fake = subprocess.Popen([sys.executable, "-m", "tests.fakecloud", "--computers", str(computers),
                             "--folder", str(folder)], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[1])
    assert fake.stdout is not None
    return fake, int(fake.stdout.readline())


def start_exporter(folder: Path, api_port: int, *args: str) -> tuple[subprocess.Popen[bytes], int, Path]:
    log = folder / f"exporter-{time.monotonic_ns()}.log"
    credentials = folder / "credentials.yml"
    credentials.write_text(f'client_id: "{fakecloud.CLIENT_ID}"\napi_key: "{fakecloud.API_KEY}"\n')
    credentials.chmod(0o600)
    with open(log, "w") as sink:
        process = subprocess.Popen([str(BIN / "secure-endpoint-cloud-exporter"), "--cloud.api-url",
                                    f"https://127.0.0.1:{api_port}", "--cloud.credentials-file", str(credentials),
                                    "--cloud.ca-file", str(folder / "ca.pem"), "--web.listen-address",
                                    "127.0.0.1:0", "--log.level", "debug", "--web.scrape-timeout", "60", *args],
                                   stdout=sink, stderr=subprocess.STDOUT)
    port = 0
    while not port:
        found = re.search(r"listening on 127\.0\.0\.1:(\d+)", log.read_text())
        port = int(found[1]) if found else 0
        time.sleep(0.05)
    return process, port, log


def polls_done(log: Path) -> list[tuple[float, int]]:
    """(seconds, requests) of each poll the log records."""
    return [(float(s), int(r)) for r, s in re.findall(r'msg="poll done" computers=\d+ requests=(\d+) seconds=([\d.]+)',
                                                     log.read_text())]


def wait_polls(log: Path, count: int, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while len(polls_done(log)) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"not {count} polls within {timeout} s: {log.read_text()[-2000:]}")
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--computers", type=int, default=100000)
    parser.add_argument("--polls", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    pin_client()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        pki.make(folder)
        fake, api_port = start_fake(folder, args.computers)
        try:
            print(f"machine: {machine()}")
            print(f"fleet: {args.computers} computers from the fake API\n")
            poller, poller_port, log = start_exporter(folder, api_port, "--cloud.poll-interval", "1s")
            wait_polls(log, 1)
            cpu_first = cpu_seconds(poller.pid)
            wait_polls(log, args.polls + 1)
            cpu_per_poll = (cpu_seconds(poller.pid) - cpu_first) / args.polls
            peak = peak_kib(poller.pid) / 1024
            done = polls_done(log)
            limited = [too_many(Served("poller", poller, poller_port).scraper.scrape()[1])]
            poller.terminate()
            poller.wait(timeout=10)
            walls = [seconds for seconds, _ in done[1:]]
            requests = done[-1][1]
            print(f"poll: CPU {cpu_per_poll:.2f} s a poll (mean of {args.polls}), wall p50 "
                  f"{statistics.median(walls):.2f} s, peak RSS {peak:.0f} MiB, {requests} requests a poll")
            per_hour = requests * 3600 / 300
            print(f"budget: {requests} requests a poll x 12 polls an hour (5m) = {per_hour:.0f} of 3000 an hour\n")

            targets = []
            for name, extra in (("per computer", ()), ("aggregates only", ("--no-cloud.per-computer",))):
                process, port, log = start_exporter(folder, api_port, "--cloud.poll-interval", "1h", *extra)
                wait_polls(log, 1)
                targets.append(Served(name, process, port))
            take_turns(targets, args.rounds, warm_up=3)
            for target in targets:
                print(f"/metrics {target.name:16} {describe(target.times)}  CPU {target.cpu * 1000:.0f} ms a "
                      f"scrape, {len(target.body) / 1e6:.1f} MB unzipped, peak RSS "
                      f"{peak_kib(target.process.pid) / 1024:.0f} MiB")
                limited.append(too_many(target.body))
                target.stop()
        finally:
            fake.terminate()
            fake.wait(timeout=10)
        print(f"\n429 answers from the fake API (3,000 requests an hour): {sum(limited)}")


def too_many(body: bytes) -> int:
    found = re.search(rb'secure_endpoint_cloud_api_requests_total\{code="429"\} (\d+)', body)
    return int(found[1]) if found else 0


if __name__ == "__main__":
    main()
