"""The fleet dashboard's queries in a real Prometheus holding a fleet of 100,000 computers (issue 26).

The cloud exporter's series for N computers over the past ``--hours`` are made by the exporter's own
code: ``tests/fakecloud.py``'s fleet goes through ``fleet.Reading`` into a snapshot at every poll
(``--poll``, the exporter's default 300 s), rendered by ``exposition`` with a ``poller.Status`` built for
that poll, and "scraped" every ``--scrape`` seconds (each scrape serves the last poll's snapshot, with
``job="secure_endpoint_cloud", instance="cloud:9983"`` and ``up``). Between polls the fleet stays the
same except for ``last_seen``: computers that report (seen 1 min, 10 min or 1 h before the poll) keep
reporting, the silent ones (1 day, 9 days) do not. That goes to one OpenMetrics file (streamed, every
family once), which ``promtool tsdb create-blocks-from openmetrics`` backfills into a fresh TSDB. A
Prometheus serving it lets ``promtool tsdb create-blocks-from rules`` record the recording rules of
rules/secure_endpoint_cloud.rules.yml over the same range (``--eval-interval`` 60 s, Prometheus's
default); their blocks join the TSDB and Prometheus starts again on it, once its compaction of the
overlapping blocks is done, on the first CPU(s), the client on the last.

Then every panel query of grafana/dashboards/secure-endpoint-cloud.json (``$job`` = ``.+``) is timed
through the HTTP API as Grafana sends it (POST, form-encoded): stat and table panels as instant queries
at the end of the range, timeseries panels as range queries over the whole range at a 60 s step; also
the ``$job`` variable (``label_values``), and every rule's expression as one instant query at the end:
what Prometheus evaluates over the raw series each evaluation interval, the cost the recording rules
take off the dashboard. One round not counted (its time is "first"), then ``--rounds`` rounds, every
query once a round in turn. Time is from the request to the last byte of the answer, kept-alive.

    .venv/bin/python bench/cloud_dashboard.py [--computers 100000] [--hours 2] [--rounds 7] [--keep DIR]

Needs Debian's prometheus (prometheus and promtool 2.42). Everything is on 127.0.0.1. Disk: about
6 GB of OpenMetrics text a 100,000 computers and hour at a 60 s scrape (deleted once backfilled).
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import random
import shutil
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
from tests.daemons import free_port, stop

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


# -- the series ---------------------------------------------------------------
def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def computers(count: int, taken: float, end: float) -> Iterator[dict[str, Any]]:
    """The fake API's fleet as a poll ending at ``taken`` reads it: the fleet of ``end``, the reporting
    computers seen as long before ``taken`` as before ``end``."""
    rng = random.Random(7)  # fakecloud.fleet's seed: the same computers at every poll
    for number in range(count):
        computer = fakecloud.computer(number, end, rng)
        ago = end - fleet.timestamp(computer["last_seen"])
        if ago < SILENT:
            computer["last_seen"] = iso(taken - ago)
        yield computer


def status(polls: int, taken: float, interval: float, count: int, events: dict[tuple[str, str], int]) -> poller.Status:
    """What the poller says after its ``polls``-th good poll, which ended at ``taken``."""
    requests = math.ceil(count / poller.PAGE) + 1  # the computers' pages and one of events
    per_hour = math.floor(3600 / interval)
    spent = (polls - 1) % per_hour + 1  # polls in this hour's budget, this one included
    reset = 3600 - (spent - 1) * interval
    return poller.Status(True, True, polls, {reason: 0 for reason in poller.REASONS}, {"200": polls * requests},
                         requests * 0.35, requests, RateLimit(RATE_LIMIT, RATE_LIMIT - spent * requests, reset, 0.0),
                         taken + interval, dict(events))


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
        for computer in computers(count, taken, end):
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

    def post(self, path: str, params: dict[str, str]) -> tuple[float, Any]:
        """(seconds from the request to the answer's last byte, the answer's data)."""
        body = urllib.parse.urlencode(params)
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        begun = time.perf_counter()
        self.conn.request("POST", path, body=body, headers=headers)
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
        stop(self.process, timeout=60)


def settle(prometheus: Prometheus, timeout: float = 900) -> float:
    """Waits for Prometheus's first compaction (it runs a minute after the start and merges the overlapping
    blocks of the rules with the raw ones) to end; returns the seconds waited."""
    begun = time.monotonic()
    while prometheus.metric("prometheus_tsdb_compactions_triggered_total") < 1:
        if time.monotonic() - begun > timeout:
            raise SystemExit("no compaction was triggered")
        time.sleep(1)
    # The trigger is counted before the compaction; the blocks loaded change once it has replaced them.
    # Wait until the log says the overlapping blocks are compacted and deleted, or nothing was to do.
    while True:
        log = prometheus.log.read_text()
        done = "Deleting obsolete block" in log or ("compact blocks" in log and "deleting" in log.lower())
        idle = time.monotonic() - begun > 75 and "compact" not in log.lower()
        if done or idle:
            break
        if time.monotonic() - begun > timeout:
            raise SystemExit("the compaction did not end")
        time.sleep(1)
    time.sleep(2)
    return time.monotonic() - begun


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


def ask(prometheus: Prometheus, query: Query, start: int, end: int) -> tuple[float, int, int]:
    """(seconds, series, samples) of one query."""
    if query.kind == "labels":
        label, metric = query.expr.split("\n")
        took, data = prometheus.post(f"/api/v1/label/{label}/values",
                                     {"match[]": metric, "start": str(start), "end": str(end)})
        return took, len(data), len(data)
    if query.kind == "range":
        took, data = prometheus.post("/api/v1/query_range", {"query": query.expr, "start": str(start),
                                                             "end": str(end), "step": str(STEP)})
        return took, len(data["result"]), sum(len(series["values"]) for series in data["result"])
    took, data = prometheus.post("/api/v1/query", {"query": query.expr, "time": str(end)})
    result = data["result"]
    if data["resultType"] == "scalar":
        return took, 1, 1
    return took, len(result), len(result)


def take_turns(prometheus: Prometheus, queries: list[Query], rounds: int, start: int, end: int) -> list[Timed]:
    firsts = [ask(prometheus, query, start, end) for query in queries]
    times: list[list[float]] = [[] for _ in queries]
    for _ in range(rounds):
        for index, query in enumerate(queries):
            times[index].append(ask(prometheus, query, start, end)[0])
    return [Timed(first[0], took, first[1], first[2]) for first, took in zip(firsts, times)]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def table(queries: list[Query], timed: list[Timed], goal: bool) -> None:
    print("| query | kind | series | samples | first ms | median ms | max ms |" + (" ≤ 500 ms |" if goal else ""))
    print("|---|---|---:|---:|---:|---:|---:|" + ("---|" if goal else ""))
    for query, result in zip(queries, timed):
        median = statistics.median(result.times)
        verdict = ""
        if goal:
            verdict = (" no data |" if result.series == 0 else
                       f" {'yes' if max(result.times) <= GOAL else 'median only' if median <= GOAL else 'NO'} |")
        print(f"| {query.name} | {query.kind} | {result.series} | {result.points} | {ms(result.first)} | "
              f"{ms(median)} | {ms(max(result.times))} |{verdict}")


# -- the run ------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--computers", type=int, default=100000)
    parser.add_argument("--hours", type=float, default=2.0, help="the range backfilled, ending now")
    parser.add_argument("--scrape", type=int, default=60, help="seconds between scrapes of the exporter")
    parser.add_argument("--poll", type=int, default=300, help="seconds between the exporter's polls of the API")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--keep", help="build the TSDB in this new folder and keep it (default: a temporary one)")
    args = parser.parse_args()
    for program in ("prometheus", "promtool", "taskset"):
        if shutil.which(program) is None:
            raise SystemExit(f"{program} is missing: install Debian's prometheus package")
    began = time.monotonic()
    end = int(time.time()) // STEP * STEP
    start = end - int(args.hours * 3600) // STEP * STEP
    phases: list[tuple[str, float]] = []
    scratch = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="cloud-dashboard-"))
    scratch.mkdir(parents=True, exist_ok=True)
    data, recorded = scratch / "data", scratch / "recorded"
    if data.exists():
        raise SystemExit(f"{data} exists: --keep wants a new folder")
    data.mkdir()
    recorded.mkdir()
    prometheus: Prometheus | None = None
    try:
        mark = time.monotonic()
        poll_times, families = polls(args.computers, start, end, args.poll)
        openmetrics = scratch / "cloud.om.txt"
        samples = write_openmetrics(openmetrics, families, poll_times, start, end, args.scrape)
        series = sum(len(family.keys) for family in families)
        size = openmetrics.stat().st_size
        del families
        phases.append((f"series made by the exporter's code, written as OpenMetrics ({size / 1e9:.2f} GB)",
                       time.monotonic() - mark))
        phases.append(("promtool tsdb create-blocks-from openmetrics",
                       run(["promtool", "tsdb", "create-blocks-from", "openmetrics", "--quiet", str(openmetrics),
                            str(data)])))
        openmetrics.unlink()
        mark = time.monotonic()
        prometheus = Prometheus(scratch, data)
        version = prometheus.version()
        _, check = prometheus.post("/api/v1/query", {"query": f'count(secure_endpoint_cloud_computer_info{{job="{JOB}"}})',
                                                     "time": str(end)})
        found = int(float(check["result"][0]["value"][1])) if check["result"] else 0
        if found != args.computers:
            raise SystemExit(f"the backfilled TSDB has {found} computers at the end, not {args.computers}")
        phases.append(("Prometheus started on the backfilled TSDB", time.monotonic() - mark))
        phases.append(("promtool tsdb create-blocks-from rules",
                       run(["promtool", "tsdb", "create-blocks-from", "rules", "--quiet", f"--url={prometheus.url}",
                            f"--start={start}", f"--end={end}", f"--eval-interval={STEP}s",
                            f"--output-dir={recorded}", str(RULES)])))
        prometheus.stop()
        prometheus = None
        blocks = move_blocks(recorded, data)
        mark = time.monotonic()
        prometheus = Prometheus(scratch, data, server_cpus())
        waited = settle(prometheus)
        phases.append((f"Prometheus restarted with the {blocks} recorded blocks, its compaction done",
                       time.monotonic() - mark))
        loaded = prometheus.metric("prometheus_tsdb_blocks_loaded")
        pin_client()
        panels, rules = panel_queries(), rule_queries()
        mark = time.monotonic()
        timed = take_turns(prometheus, panels + rules, args.rounds, start, end)
        phases.append((f"{args.rounds + 1} rounds of {len(panels) + len(rules)} queries", time.monotonic() - mark))
    finally:
        if prometheus is not None:
            prometheus.stop()
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    print(f"machine: {machine()}; Prometheus {version} on CPU(s) {','.join(map(str, sorted(server_cpus())))}, "
          f"the client on the last")
    print(f"fleet: {args.computers} computers, {series} series, {samples} samples: "
          f"{iso(start)} to {iso(end)} ({(end - start) / 3600:g} h), a poll every {args.poll} s, "
          f"a scrape every {args.scrape} s; recording rules every {STEP} s; {int(loaded)} blocks "
          f"(compaction waited {waited:.0f} s)")
    print(f"queries: instant at {iso(end)}, range {iso(start)} to {iso(end)} step {STEP} s; "
          f"1 round not counted (first), then {args.rounds}, in turn\n")
    for name, took in phases:
        print(f"- {name}: {took:.1f} s")
    print(f"- total: {time.monotonic() - began:.1f} s\n")
    count = len(panels)
    print("Dashboard panels and variable (goal: every panel ≤ 500 ms):\n")
    table(panels, timed[:count], goal=True)
    records = [i for i, q in enumerate(rules) if q.section == "record"]
    alerts = [i for i, q in enumerate(rules) if q.section == "alert"]
    print("\nRecording rules, their expression as one instant query at the end (what each evaluation costs):\n")
    table([rules[i] for i in records], [timed[count + i] for i in records], goal=False)
    print("\nAlerting rules, likewise (evaluated whatever the dashboard):\n")
    table([rules[i] for i in alerts], [timed[count + i] for i in alerts], goal=False)
    slow = [q.name for q, t in zip(panels, timed) if q.section == "panel" and (t.series == 0 or max(t.times) > GOAL)]
    print(f"\npanels over 500 ms or without data: {', '.join(slow) if slow else 'none'}")


if __name__ == "__main__":
    main()
