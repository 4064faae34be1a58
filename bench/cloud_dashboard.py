"""The fleet dashboard's queries in a real Prometheus holding a fleet of 100,000 computers (issue 26).

The cloud exporter's series for N computers over the past ``--hours`` are made by the exporter's own
code: ``tests/fakecloud.py``'s fleet goes through ``fleet.Reading`` into a snapshot at every poll
(``--poll``, the exporter's default 300 s), rendered by ``exposition`` with a ``poller.Status`` built for
that poll, and "scraped" every ``--scrape`` seconds (each scrape serves the last poll's snapshot, with
``job="secure_endpoint_cloud", instance="cloud:9983"``, and ``up``; not the process_* and python_*
families). Between polls the fleet stays the same but for ``last_seen``: the computers that report (seen
1 min, 10 min or 1 h before the poll) keep reporting, the silent ones (1 day or 9 days before the range)
do not. All of it goes to one OpenMetrics file, streamed, every family once (counters as counters, their
samples ``_total``), which ``promtool tsdb create-blocks-from openmetrics`` backfills into a fresh TSDB.
A Prometheus serving it lets ``promtool tsdb create-blocks-from rules`` record the recording rules of
rules/secure_endpoint_cloud.rules.yml over the same range (``--eval-interval`` 60 s, Prometheus's
default). Their blocks join the TSDB; Prometheus starts on it again until its compaction (a minute after
the start) has merged the overlapping blocks, then once more to be measured: on the first CPU(s), the
client on the last (``--no-pin``: both on every CPU). It has no targets and no rules of its own.

Then every panel query of grafana/dashboards/secure-endpoint-cloud.json (``$job`` = ``.+``) is timed
through the HTTP API as Grafana sends it (POST, form-encoded): stat and table panels as instant queries
at the end of the range, timeseries panels as range queries over the whole range at a 60 s step; also
the ``$job`` variable (``label_values``: GET label values), and each rule's expression as one instant
query at the end: what Prometheus evaluates over the raw series every evaluation interval, the cost the
recording rules take off the dashboard. One round is not counted (its time is "first"), then
``--rounds`` rounds, every query once a round in turn. Time is from the request to the last byte of the
answer, on a kept-alive connection.

    .venv/bin/python bench/cloud_dashboard.py [--computers 100000] [--hours 2] [--rounds 7] [--keep DIR]

Needs Debian's prometheus (prometheus and promtool 2.42) and taskset. Everything is on 127.0.0.1. Disk:
some 7 GB of OpenMetrics text for each 100,000 computers and hour at a 60 s scrape (deleted once
backfilled), in a temporary folder unless ``--keep DIR``, which keeps the TSDB there.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, pin_client, server_cpus
from secure_endpoint_monitoring.exporter.cloud import exposition, fleet, poller
from secure_endpoint_monitoring.exporter.cloud.api import RateLimit
from tests import fakecloud

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "rules" / "secure_endpoint_cloud.rules.yml"
DASHBOARD = ROOT / "grafana" / "dashboards" / "secure-endpoint-cloud.json"
JOB, INSTANCE = "secure_endpoint_cloud", "cloud:9983"
TARGET = f'job="{JOB}",instance="{INSTANCE}"'
GOAL = 0.5  # seconds a panel may take (issue 26)
STEP = 60  # seconds: the step of the range queries and of the rules' evaluation
SILENT = 86400  # computers last seen this long before the end (or longer) have stopped reporting
RATE_LIMIT = 3000  # requests an hour, the API's default


class Family(NamedTuple):
    """One metric family of the exposition: its series (with the target's labels) and their values a poll."""

    name: str
    kind: str
    keys: list[str]
    values: list[list[str]]  # per poll, per series


class Query(NamedTuple):
    section: str  # "panel", "variable", "record", "alert"
    name: str
    kind: str  # "instant", "range", "labels"
    expr: str


class Timed(NamedTuple):
    first: float
    times: list[float]
    series: int  # series in the answer (values, for label values)
    points: int  # samples in the answer
    value: str  # the value, when the answer is one number


# -- the series ---------------------------------------------------------------
def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def computers(count: int, taken: float, start: float, end: float) -> Iterator[dict[str, Any]]:
    """The fake API's fleet as a poll ending at ``taken`` reads it: fakecloud's fleet of ``end``, whose
    reporting computers were seen as long before ``taken`` as it says before ``end``, and whose silent ones
    were last seen that long before ``start`` (silent since before the range, not on a boundary at its end)."""
    rng = random.Random(7)  # fakecloud.fleet's seed: the same computers at every poll
    for number in range(count):
        computer = fakecloud.computer(number, end, rng)
        ago = end - fleet.timestamp(computer["last_seen"])
        computer["last_seen"] = iso((taken if ago < SILENT else start) - ago)
        yield computer


def status(polls: int, taken: float, interval: float, count: int, events: dict[tuple[str, str], int]) -> poller.Status:
    """What the poller says after its ``polls``-th good poll, which ended at ``taken``."""
    requests = math.ceil(count / poller.PAGE) + 1  # the computers' pages and one of events
    per_hour = math.floor(3600 / interval)
    spent = (polls - 1) % per_hour + 1  # polls in this hour's budget, this one included
    reset = 3600 - (spent - 1) * interval
    figures: dict[str, Any] = {
        "up": True, "polling": True, "polls": polls, "failures": {reason: 0 for reason in poller.REASONS},
        "requests": {"200": polls * requests}, "last_duration": requests * 0.35, "last_requests": requests,
        "rate": RateLimit(RATE_LIMIT, RATE_LIMIT - spent * requests, reset, 0.0), "next_poll": taken + interval,
        "event_counts": dict(events), "events_up": True, "interval": interval}
    unknown = [name for name in poller.Status._fields if name not in figures]
    if unknown:
        raise SystemExit(f"poller.Status has fields this benchmark does not fill: {', '.join(unknown)}")
    return poller.Status(**{name: figures[name] for name in poller.Status._fields})


def exposition_text(snapshot: fleet.Snapshot, state: poller.Status) -> str:
    """What the exporter serves for ``snapshot`` (its process_* and python_* families left out)."""
    head = exposition.status_text(state, snapshot) + exposition.fleet_text(snapshot)
    return head + b"".join(exposition.computer_chunks(snapshot.computers)).decode()


def parse(text: str) -> list[tuple[str, str, list[str], list[str]]]:
    """(family, type, series with the target's labels, values) for each family of a text exposition."""
    found: list[tuple[str, str, list[str], list[str]]] = []
    keys: list[str] = []
    values: list[str] = []
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            keys, values = [], []
            found.append((name, kind, keys, values))
        elif line and not line.startswith("#"):
            head, _, value = line.rpartition(" ")
            keys.append(f"{head[:-1]},{TARGET}}}" if head.endswith("}") else f"{head}{{{TARGET}}}")
            values.append(value)
    return found


def polls(count: int, start: int, end: int, interval: int) -> tuple[list[int], list[Family]]:
    """Every poll's exposition from ``start`` to ``end``: the polls' times, and the families with a value a poll."""
    times = list(range(start, end + 1, interval))
    families: list[Family] = []
    events: dict[tuple[str, str], int] = {(severity, kind): 0 for severity in (*fleet.SEVERITIES, fleet.UNKNOWN)
                                          for kind in ("raised", "cleared")}
    rng = random.Random(26)
    for number, taken in enumerate(times, 1):
        if number > 1:  # fault events since the last poll
            for severity, most in (("critical", 2), ("major", 6), ("minor", 12)):
                raised = rng.randint(0, most)
                events[severity, "raised"] += raised
                events[fleet.UNKNOWN, "cleared"] += rng.randint(0, raised)
        reading = fleet.Reading()
        for computer in computers(count, taken, start, end):
            reading.add(computer)
        text = exposition_text(reading.snapshot(taken), status(number, taken, interval, count, events))
        parsed = parse(text)
        if not families:
            families = [Family(name, kind, keys, [values]) for name, kind, keys, values in parsed]
            continue
        if [(f.name, f.keys) for f in families] != [(name, keys) for name, _, keys, _ in parsed]:
            raise SystemExit(f"the series of the poll at {taken} are not those of the first poll")
        for family, (_, _, _, values) in zip(families, parsed):
            last = family.values[-1]
            family.values.append([old if old == new else new for old, new in zip(last, values)])
    families.append(Family("up", "gauge", [f"up{{{TARGET}}}"], [["1"]] * len(times)))
    return times, families


def write_openmetrics(path: Path, families: list[Family], poll_times: list[int], start: int, end: int,
                      scrape: int) -> int:
    """The families scraped every ``scrape`` seconds from ``start`` to ``end`` as OpenMetrics; returns the samples.
    Every family is written whole, series by series, each series' samples in time order."""
    scrapes = list(range(start, end + 1, scrape))
    # the scrapes that serve each poll's snapshot: those from its end to the next poll's
    served: list[list[str]] = [[] for _ in poll_times]
    for moment in scrapes:
        index = max(i for i, taken in enumerate(poll_times) if taken <= moment)
        served[index].append(str(moment))
    windows = [(index, stamps) for index, stamps in enumerate(served) if stamps]
    samples = 0
    with open(path, "w", encoding="utf-8", buffering=1 << 22) as sink:
        for family in families:
            if family.kind == "counter" and family.name.endswith("_total"):
                sink.write(f"# TYPE {family.name[:-6]} counter\n")
            else:
                sink.write(f"# TYPE {family.name} {family.kind if family.kind == 'gauge' else 'unknown'}\n")
            for series, key in enumerate(family.keys):
                pieces = []
                for index, stamps in windows:
                    prefix = f"{key} {family.values[index][series]} "
                    pieces.append(prefix + ("\n" + prefix).join(stamps) + "\n")
                sink.write("".join(pieces))
            samples += len(family.keys) * len(scrapes)
        sink.write("# EOF\n")
    return samples


# -- Prometheus -----------------------------------------------------------------
def free_port() -> int:  # tests.daemons has it, but imports pytest, which mypy for Python 3.9 cannot read
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Prometheus:
    """Debian's Prometheus on ``data``, without targets or rules, on 127.0.0.1; ``cpus``: where it runs."""

    def __init__(self, workdir: Path, data: Path, cpus: set[int] | None = None) -> None:
        self.port = free_port()
        config = workdir / "prometheus.yml"
        config.write_text(json.dumps({"global": {"scrape_interval": "1m", "evaluation_interval": "1m"}}))
        self.log = workdir / f"prometheus-{self.port}.log"
        command = ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={data}",
                   f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=30d",
                   "--log.level=info"]
        if cpus:
            command = ["taskset", "-c", ",".join(str(cpu) for cpu in sorted(cpus)), *command]
        with open(self.log, "w") as sink:
            self.process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        deadline = time.monotonic() + 300
        while True:
            try:
                if self.get("/-/ready")[0] == 200:
                    return
            except (OSError, http.client.HTTPException):
                self.conn.close()
            if self.process.poll() is not None:
                raise SystemExit(f"prometheus exited: {self.log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise SystemExit("prometheus did not become ready")
            time.sleep(0.1)

    def get(self, path: str) -> tuple[int, bytes]:
        self.conn.request("GET", path)
        response = self.conn.getresponse()
        return response.status, response.read()

    def ask(self, path: str, params: dict[str, str], method: str = "POST") -> tuple[float, Any]:
        """(seconds from the request to the answer's last byte, the answer's data)."""
        body = urllib.parse.urlencode(params)
        begun = time.perf_counter()
        if method == "POST":
            self.conn.request("POST", path, body=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
        else:
            self.conn.request("GET", f"{path}?{body}")
        response = self.conn.getresponse()
        raw = response.read()
        took = time.perf_counter() - begun
        answer = json.loads(raw)
        if response.status != 200 or answer.get("status") != "success":
            raise RuntimeError(f"{path} {params}: {response.status} {raw[:300]!r}")
        return took, answer["data"]

    def metric(self, name: str) -> float:
        """The sum of the samples of ``name`` Prometheus exposes about itself."""
        _, body = self.get("/metrics")
        total = 0.0
        for line in body.decode().splitlines():
            if line.startswith(name) and line[len(name)] in " {":
                total += float(line.rpartition(" ")[2])
        return total

    def version(self) -> str:
        _, body = self.get("/api/v1/status/buildinfo")
        return str(json.loads(body)["data"]["version"])

    def stop(self) -> None:
        self.conn.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def settle(prometheus: Prometheus, blocks: int, timeout: float = 900) -> tuple[float, int]:
    """Waits until Prometheus's compaction (it runs a minute after the start) has merged the overlapping blocks
    of the rules with the raw ones, back to ``blocks``; returns the seconds waited and the blocks loaded."""
    begun = time.monotonic()
    while True:
        loaded = int(prometheus.metric("prometheus_tsdb_blocks_loaded"))
        if 0 < loaded <= blocks or time.monotonic() - begun > timeout:
            time.sleep(2)  # the replaced blocks' deletion
            return time.monotonic() - begun, loaded
        time.sleep(1)


def move_blocks(source: Path, data: Path) -> int:
    moved = 0
    for block in source.iterdir():
        if (block / "meta.json").is_file():
            shutil.move(str(block), str(data / block.name))
            moved += 1
    return moved


def run(command: list[str]) -> float:
    begun = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stdout[-2000:]}{done.stderr[-3000:]}")
    return time.monotonic() - begun


# -- the queries --------------------------------------------------------------
def panel_queries() -> list[Query]:
    dashboard = json.loads(DASHBOARD.read_text())
    panels: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        panels += [panel, *panel.get("panels", [])]  # the panels of a collapsed row are inside it
    queries = []
    for panel in panels:
        for target in panel.get("targets", []):
            expr = target["expr"].replace("${job}", ".+").replace("$job", ".+")
            kind = "range" if panel["type"] == "timeseries" else "instant"
            queries.append(Query("panel", f"{panel['title']} ({panel['type']})", kind, expr))
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        if variable.get("type") == "query" and isinstance(query, str) and query.startswith("label_values("):
            metric, _, label = query[len("label_values("):-1].rpartition(",")
            queries.append(Query("variable", f"${variable['name']}: {query}", "labels",
                                 f"{label.strip()}\n{metric.strip()}"))
    return queries


def rule_queries() -> list[Query]:
    queries = []
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            if "record" in rule:
                labels = ",".join(f"{k}={v}" for k, v in rule.get("labels", {}).items())
                queries.append(Query("record", rule["record"] + (f"{{{labels}}}" if labels else ""), "instant",
                                     rule["expr"]))
            else:
                queries.append(Query("alert", rule["alert"], "instant", rule["expr"]))
    return queries


def ask(prometheus: Prometheus, query: Query, start: int, end: int) -> tuple[float, int, int, str]:
    """(seconds, series, samples, the value when there is one) of one query."""
    if query.kind == "labels":
        label, metric = query.expr.split("\n")
        took, data = prometheus.ask(f"/api/v1/label/{label}/values",
                                    {"match[]": metric, "start": str(start), "end": str(end)}, "GET")
        return took, len(data), len(data), data[0] if len(data) == 1 else ""
    if query.kind == "range":
        took, data = prometheus.ask("/api/v1/query_range", {"query": query.expr, "start": str(start),
                                                             "end": str(end), "step": str(STEP)})
        return took, len(data["result"]), sum(len(series["values"]) for series in data["result"]), ""
    took, data = prometheus.ask("/api/v1/query", {"query": query.expr, "time": str(end)})
    result = data["result"]
    if data["resultType"] == "scalar":
        return took, 1, 1, str(result[1])
    return took, len(result), len(result), str(result[0]["value"][1]) if len(result) == 1 else ""


def take_turns(prometheus: Prometheus, queries: list[Query], rounds: int, start: int, end: int) -> list[Timed]:
    firsts = [ask(prometheus, query, start, end) for query in queries]
    times: list[list[float]] = [[] for _ in queries]
    for _ in range(rounds):
        for index, query in enumerate(queries):
            times[index].append(ask(prometheus, query, start, end)[0])
    return [Timed(first[0], took, first[1], first[2], first[3]) for first, took in zip(firsts, times)]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def table(queries: list[Query], timed: list[Timed], goal: bool) -> None:
    print("| query | kind | series | samples | value | first ms | median ms | max ms |" +
          (" ≤ 500 ms |" if goal else ""))
    print("|---|---|---:|---:|---:|---:|---:|---:|" + ("---|" if goal else ""))
    for query, result in zip(queries, timed):
        median = statistics.median(result.times)
        verdict = ""
        if goal:
            verdict = (" no data |" if result.series == 0 else
                       f" {'yes' if max(result.times) <= GOAL else 'median only' if median <= GOAL else 'NO'} |")
        print(f"| {query.name} | {query.kind} | {result.series} | {result.points} | {result.value} | "
              f"{ms(result.first)} | {ms(median)} | {ms(max(result.times))} |{verdict}")


# -- the run ------------------------------------------------------------------
class Built(NamedTuple):
    series: int
    samples: int
    version: str
    blocks: int  # blocks loaded once compacted


class Phases:
    """How long each step took, said on stderr as it ends."""

    def __init__(self) -> None:
        self.done: list[tuple[str, float]] = []
        self.mark = time.monotonic()

    def end(self, name: str) -> None:
        took = time.monotonic() - self.mark
        self.done.append((name, took))
        print(f"{name}: {took:.1f} s", file=sys.stderr, flush=True)
        self.mark = time.monotonic()


def build(scratch: Path, args: argparse.Namespace, start: int, end: int, phases: Phases) -> Built:
    """The TSDB in ``scratch``/data: the exporter's series backfilled, the rules recorded, compacted."""
    data, recorded = scratch / "data", scratch / "recorded"
    data.mkdir()
    recorded.mkdir()
    poll_times, families = polls(args.computers, start, end, args.poll)
    openmetrics = scratch / "cloud.om.txt"
    samples = write_openmetrics(openmetrics, families, poll_times, start, end, args.scrape)
    series = sum(len(family.keys) for family in families)
    del families
    phases.end(f"series made by the exporter's code, written as OpenMetrics "
               f"({openmetrics.stat().st_size / 1e9:.2f} GB)")
    run(["promtool", "tsdb", "create-blocks-from", "openmetrics", "--quiet", str(openmetrics), str(data)])
    openmetrics.unlink()
    phases.end("promtool tsdb create-blocks-from openmetrics")
    prometheus = Prometheus(scratch, data)
    try:
        version = prometheus.version()
        expr = f'count(secure_endpoint_cloud_computer_info{{job="{JOB}"}})'
        _, check = prometheus.ask("/api/v1/query", {"query": expr, "time": str(end)})
        found = int(float(check["result"][0]["value"][1])) if check["result"] else 0
        if found != args.computers:
            raise SystemExit(f"the backfilled TSDB has {found} computers at the end, not {args.computers}")
        phases.end("Prometheus started on the backfilled TSDB")
        run(["promtool", "tsdb", "create-blocks-from", "rules", "--quiet", f"--url={prometheus.url}",
             f"--start={start}", f"--end={end}", f"--eval-interval={STEP}s", f"--output-dir={recorded}", str(RULES)])
    finally:
        prometheus.stop()
    phases.end("promtool tsdb create-blocks-from rules")
    raw = sum(1 for block in data.iterdir() if (block / "meta.json").is_file())
    blocks = move_blocks(recorded, data)
    prometheus = Prometheus(scratch, data)
    try:
        waited, loaded = settle(prometheus, raw)
    finally:
        prometheus.stop()
    phases.end(f"Prometheus restarted with the {blocks} recorded blocks, until its compaction (after "
               f"{waited:.0f} s) made {loaded} blocks of {raw + blocks}")
    return Built(series, samples, version, loaded)


def report(args: argparse.Namespace, cpus: set[int], built: Built, start: int, end: int, phases: Phases,
           queries: list[Query], timed: list[Timed]) -> None:
    where = f"on CPU(s) {','.join(map(str, sorted(cpus)))}, the client on the last" if args.pin else \
        "and the client on every CPU"
    print(f"machine: {machine()}; Prometheus {built.version} {where}")
    print(f"fleet: {args.computers} computers, {built.series} series, {built.samples} samples, "
          f"{iso(start)} to {iso(end)} ({(end - start) / 3600:g} h): a poll every {args.poll} s, "
          f"a scrape every {args.scrape} s, the recording rules every {STEP} s; {built.blocks} blocks")
    print(f"queries: instant at {iso(end)}, range {iso(start)} to {iso(end)} step {STEP} s; "
          f"1 round not counted (first), then {args.rounds}, in turn\n")
    for name, took in phases.done:
        print(f"- {name}: {took:.1f} s")
    print(f"- total: {sum(took for _, took in phases.done):.1f} s\n")
    sections = (("panel variable", "Dashboard panels and its variable (goal: every panel ≤ 500 ms)", True),
                ("record", "Recording rules, each expression as one instant query at the end (an evaluation)", False),
                ("alert", "Alerting rules, likewise (evaluated whatever the dashboard)", False))
    for kinds, title, goal in sections:
        chosen = [i for i, query in enumerate(queries) if query.section in kinds.split()]
        print(f"{title}:\n")
        table([queries[i] for i in chosen], [timed[i] for i in chosen], goal)
        print()
    slow = [query.name for query, result in zip(queries, timed) if query.section == "panel" and
            (result.series == 0 or max(result.times) > GOAL)]
    print(f"panels over 500 ms or without data: {', '.join(slow) if slow else 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--computers", type=int, default=100000)
    parser.add_argument("--hours", type=float, default=2.0, help="the range backfilled, ending now")
    parser.add_argument("--scrape", type=int, default=60, help="seconds between scrapes of the exporter")
    parser.add_argument("--poll", type=int, default=300, help="seconds between the exporter's polls of the API")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--no-pin", dest="pin", action="store_false",
                        help="the measured Prometheus and the client on every CPU (default: as the other benchmarks)")
    parser.add_argument("--keep", help="build the TSDB in this new folder and keep it (default: a temporary one)")
    args = parser.parse_args()
    for program in ("prometheus", "promtool", "taskset"):
        if shutil.which(program) is None:
            raise SystemExit(f"{program} is missing: install Debian's prometheus package")
    cpus = server_cpus()
    end = int(time.time()) // STEP * STEP
    start = end - int(args.hours * 3600) // STEP * STEP
    if args.keep and Path(args.keep).exists():
        raise SystemExit(f"{args.keep} exists: --keep wants a new folder")
    scratch = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="cloud-dashboard-"))
    scratch.mkdir(parents=True, exist_ok=True)
    phases = Phases()
    try:
        built = build(scratch, args, start, end, phases)
        prometheus = Prometheus(scratch, scratch / "data", cpus if args.pin else None)
        try:
            if args.pin:
                pin_client()
            queries = panel_queries() + rule_queries()
            timed = take_turns(prometheus, queries, args.rounds, start, end)
        finally:
            prometheus.stop()
        phases.end(f"{args.rounds + 1} rounds of {len(queries)} queries")
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    report(args, cpus, built, start, end, phases, queries, timed)


if __name__ == "__main__":
    main()
