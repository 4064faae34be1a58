"""The cloud exporter's rules: its own health, the fleet as the cloud sees it, and where the cloud's view and
the host exporter's disagree (joined on ``connector_guid``); recordings for the cloud dashboard; and their
``promtool test rules`` suite, a firing and a quiet case for every alert."""

from __future__ import annotations

import json
from typing import Any

from . import config
from .common import PREFIX, Options, equals, selector
from .promtool_tests import input_series, minutes_of, selector_labels

Labels = dict[str, str]
NAME = "{{ $labels.hostname }}"
GUID = "{{ $labels.connector_guid }}"
NOT_SEEN = config.CLOUD_NOT_SEEN_HOURS * 3600
SILENT = config.CLOUD_JOIN_SILENT_HOURS * 3600
HAS_GUID = 'connector_guid!=""'
CRITICAL_OR_MAJOR = 'severity=~"critical|major"'


def cloud(options: Options, *extra: str) -> str:
    return "{" + ", ".join([options.cloud_selector, *extra]) + "}"


def _age(options: Options) -> str:
    """Each computer's time since the cloud last heard from it, as of the snapshot served (not of now): while
    polls fail the served last_seen values stand still, and so does their age, so an outage of the API or
    of the exporter raises the exporter's own alerts, not one for every computer."""
    c = cloud(options)
    return (f"(secure_endpoint_cloud_snapshot_timestamp_seconds{c} - on (job, instance) group_right "
            f"secure_endpoint_cloud_computer_last_seen_timestamp_seconds{c})")


def _with_hostname(expr: str, options: Options) -> str:
    """``expr`` (per computer) with the computer's hostname from its info series, for the alert's texts."""
    return (f"({expr}) * on (job, instance, connector_guid) group_left (hostname) "
            f"secure_endpoint_cloud_computer_info{cloud(options)}")


def _host_healthy(options: Options) -> str:
    """Hosts our host exporter sees installed, connected and without an active fault, by connector GUID."""
    sel = selector(options)
    return (f"secure_endpoint_connector_info{selector(options, HAS_GUID)} "
            f"and on (job, instance) secure_endpoint_connector_connected{sel} == 1 "
            f"and on (job, instance) max by (job, instance) (secure_endpoint_fault_active{sel}) == 0")


def _host_faulty(options: Options) -> str:
    sel = selector(options)
    return (f"secure_endpoint_connector_info{selector(options, HAS_GUID)} "
            f"and on (job, instance) max by (job, instance) (secure_endpoint_fault_active{sel}) == 1")


def _alert(name: str, expr: str, severity: str, summary: str, description: str, anchor: str,
           options: Options) -> dict[str, Any]:
    return {"alert": PREFIX + name, "expr": expr, "for": config.CLOUD_FOR[name], "labels": {"severity": severity},
            "annotations": {"summary": summary, "description": description,
                            "runbook_url": f"{options.runbook_url}#{anchor}"}}


def alerts(options: Options) -> list[dict[str, Any]]:
    c = cloud(options)
    age = _age(options)
    hours = config.CLOUD_NOT_SEEN_HOURS
    silent = config.CLOUD_JOIN_SILENT_HOURS
    return [
        _alert("CloudExporterDown", f"up{c} == 0", "warning", "The Secure Endpoint cloud exporter cannot be scraped",
               "Prometheus cannot scrape the cloud exporter, so the fleet as Cisco's cloud sees it is not watched.",
               "cloud-exporter-down", options),
        _alert("CloudPollFailing", f"secure_endpoint_cloud_up{c} == 0 and secure_endpoint_cloud_polling{c} == 1",
               "warning", "The cloud exporter cannot poll Cisco's API",
               "The last polls of the Secure Endpoint API failed (secure_endpoint_cloud_poll_failures_total says "
               "why: unavailable, malformed, churn, rate_limited); the computers served are from the last good "
               "poll.", "cloud-poll-failing", options),
        _alert("CloudCredentialsRejected", f"secure_endpoint_cloud_polling{c} == 0", "critical",
               "Cisco's API refused the cloud exporter's credentials",
               "The API answered 401 or 403: the client id or API key is wrong, revoked or lacks read access. "
               "Polling stopped; fix the credentials file and send the exporter SIGHUP.",
               "cloud-credentials-rejected", options),
        _alert("CloudSnapshotStale",
               f"time() - secure_endpoint_cloud_snapshot_timestamp_seconds{c} > on (job, instance) "
               f"({config.CLOUD_STALE_POLLS} * secure_endpoint_cloud_poll_interval_seconds{c} + "
               f"{config.CLOUD_STALE_GRACE_SECONDS})",
               "warning", "The fleet from Cisco's API is older than "
               f"{config.CLOUD_STALE_POLLS} poll intervals",
               "No poll has succeeded for a while, so every cloud alert works on old data.", "cloud-snapshot-stale",
               options),
        _alert("CloudRateLimited",
               f"increase(secure_endpoint_cloud_api_requests_total{cloud(options, equals('code', '429'))}[1h]) > 0",
               "warning", "Cisco's API answered 429 to the cloud exporter",
               "The hour's request budget of the API client is spent: another program uses the same client, or "
               "the poll interval is too short for the fleet. Give this exporter its own API client.",
               "cloud-rate-limited", options),
        _alert("CloudComputerNotSeen",
               _with_hostname(f"{age} > {NOT_SEEN} and on (job, instance, connector_guid) "
                              f"secure_endpoint_cloud_computer_active{c} == 1", options),
               "warning", f"{NAME} has not been seen by Cisco's cloud for {hours} hours",
               f"The computer {NAME} (connector {GUID}) is active in the console but its connector has not "
               "reported to the cloud: it is off, offline, or its connector stopped.", "cloud-computer-not-seen",
               options),
        _alert("CloudComputerCompromised", _with_hostname(f"secure_endpoint_cloud_computer_compromised{c} == 1",
                                                          options),
               "critical", f"Cisco's cloud marks {NAME} compromised",
               f"The console marks {NAME} (connector {GUID}) compromised. Look at its events and trajectory in "
               "the Secure Endpoint console.", "cloud-computer-compromised", options),
        _alert("CloudComputerFaults", _with_hostname(f"secure_endpoint_cloud_computer_faults{c} > 0", options),
               "warning", f"Cisco's cloud lists faults for {NAME}",
               f"The connector on {NAME} ({GUID}) reports faults to the cloud. On a Linux or Mac host the host "
               "exporter names them; on Windows see the computer in the console.", "cloud-computer-faults", options),
        _alert("CloudFaultsRaised",
               f"sum by (job, instance, severity) (increase(secure_endpoint_cloud_fault_events_total"
               f"{cloud(options, equals('kind', 'raised'), CRITICAL_OR_MAJOR)}[1h])) > 0",
               "warning", "{{ $labels.severity }} connector faults were raised in the fleet in the last hour",
               "Cisco's event stream has fault-raised events of this severity: the alerts per computer "
               "(CloudComputerFaults) name the computers.", "cloud-faults-raised", options),
        _alert("CloudVersionDrift",
               f"count by (job, instance, operating_system) (secure_endpoint_cloud_computers{c} > 0) "
               f"> {config.CLOUD_VERSIONS_PER_OS}", "info",
               f"More than {config.CLOUD_VERSIONS_PER_OS} connector versions run on "
               "{{ $labels.operating_system }}",
               "Computers of one operating system run more connector versions than an update in progress "
               "explains: some are not updated by their policy.", "cloud-version-drift", options),
        _alert("HostNotSeenByCloud",
               _with_hostname(f"{age} > {SILENT} and on (connector_guid) ({_host_healthy(options)})", options),
               "warning", f"{NAME} looks healthy here but Cisco's cloud has not seen it for {silent} hours",
               f"The host exporter sees the connector ({GUID}) installed, connected and without faults, yet the "
               "cloud has not heard from it: a proxy or firewall drops its traffic, or the host was cloned and "
               "two machines share one GUID.", "host-not-seen-by-cloud", options),
        _alert("CloudMissesHostFaults",
               _with_hostname(f"secure_endpoint_cloud_computer_faults{c} == 0 and on (connector_guid) "
                              f"({_host_faulty(options)})", options),
               "warning", f"{NAME} has faults the cloud does not list",
               f"The host exporter sees an active fault on the connector {GUID} that the cloud's faults[] does not "
               "have: the console shows this computer healthy. The host's own fault alert says which.",
               "cloud-misses-host-faults", options),
    ]


def recording_rules(options: Options) -> list[dict[str, Any]]:
    """What the cloud dashboard reads: small series whatever the fleet's size."""
    c = cloud(options)
    age = _age(options)
    found: list[dict[str, Any]] = [
        {"record": "secure_endpoint_cloud:computers:sum", "expr": f"sum by (job) (secure_endpoint_cloud_computers{c})"},
        {"record": "operating_system:secure_endpoint_cloud_computers:sum",
         "expr": f"sum by (job, operating_system) (secure_endpoint_cloud_computers{c})"},
        {"record": "connector_version:secure_endpoint_cloud_computers:sum",
         "expr": f"sum by (job, connector_version) (secure_endpoint_cloud_computers{c})"},
        {"record": "severity_kind:secure_endpoint_cloud_fault_events:rate1h",
         "expr": f"sum by (job, severity, kind) (rate(secure_endpoint_cloud_fault_events_total{c}[1h]))"},
        {"record": "secure_endpoint_cloud:hosts_not_seen_by_cloud:count",
         "expr": f"count by (job) ({age} > {SILENT} and on (connector_guid) "
                 f"({_host_healthy(options)})) or sum by (job) (secure_endpoint_cloud_up{c} * 0)"},
        {"record": "secure_endpoint_cloud:hosts_with_faults_the_cloud_misses:count",
         "expr": f"count by (job) (secure_endpoint_cloud_computer_faults{c} == 0 and on (connector_guid) "
                 f"({_host_faulty(options)})) or sum by (job) (secure_endpoint_cloud_up{c} * 0)"},
    ]
    for within in config.CLOUD_LAST_SEEN_WITHIN:
        found.append({"record": "secure_endpoint_cloud:computers_seen_within:count",
                      "expr": f"sum by (job) ({age} < bool {_seconds(within)})",
                      "labels": {"within": within}})
    return found


def _seconds(duration: str) -> int:
    return int(duration[:-1]) * {"h": 3600, "d": 86400}[duration[-1]]


def rules(options: Options) -> dict[str, Any]:
    return {"groups": [
        {"name": "secure-endpoint-cloud", "rules": alerts(options)},
        {"name": "secure-endpoint-cloud.rules", "rules": recording_rules(options)},
    ]}


# ---- the promtool test suite ----

def _fired(rule: dict[str, Any], labels: Labels) -> dict[str, Any]:
    def fill(text: str) -> str:
        for key, value in labels.items():
            text = text.replace(f"{{{{ $labels.{key} }}}}", value)
        return text

    return {"exp_labels": {**labels, "severity": rule["labels"]["severity"]},
            "exp_annotations": {k: fill(v) for k, v in rule["annotations"].items()}}


def rule_tests(options: Options, rule_file: str) -> dict[str, Any]:
    """Two computers and two hosts: ``bad`` where each alert fires after its ``for``, ``good`` where none does."""
    rules_by_name = {r["alert"][len(PREFIX):]: r for r in alerts(options)}
    exporter = {**selector_labels(options.cloud_selector), "instance": "cloud:9983"}
    host_base = selector_labels(options.selector)
    guid = {"bad": "10000000-0000-4000-8000-00000000000b", "good": "10000000-0000-4000-8000-00000000000a"}
    steps = 6 * 60 + 30  # minutes: past every `for`
    tests: list[dict[str, Any]] = []

    def info(which: str, length: int = steps) -> dict[str, str]:
        return input_series("secure_endpoint_cloud_computer_info",
                       {**exporter, "connector_guid": guid[which], "hostname": f"{which}.example.com",
                        "operating_system": "Ubuntu 22.04", "connector_version": "1.25.0", "group_guid": "g",
                        "policy": "p"}, f"1x{length}")

    def computer(name: str, which: str, values: str) -> dict[str, str]:
        return input_series(f"secure_endpoint_cloud_computer_{name}", {**exporter, "connector_guid": guid[which]},
                            values)

    def labels(which: str) -> Labels:
        return {**exporter, "connector_guid": guid[which], "hostname": f"{which}.example.com"}

    def case(name: str, series: list[dict[str, str]], fired: list[Labels], at: int | None = None) -> None:
        rule = rules_by_name[name]
        when = minutes_of(rule["for"]) + 1 if at is None else at
        tests.append({"interval": "1m", "input_series": series, "alert_rule_test": [
            *([{"eval_time": f"{when - 2}m", "alertname": rule["alert"], "exp_alerts": []}]
              if minutes_of(rule["for"]) >= 2 and at is None else []),
            {"eval_time": f"{when}m", "alertname": rule["alert"],
             "exp_alerts": [_fired(rule, each) for each in fired]}]})

    # promtool's time() is the evaluation time since 0: "seen" times before it are negative
    fresh = f"0+60x{steps}"  # last seen: at each step's own time
    old = f"{-(NOT_SEEN + 3600)}+0x{steps}"  # last seen more than the limit before step 0

    case("CloudExporterDown", [input_series("up", {**exporter}, f"0x{steps}"),
                               input_series("up", {**exporter, "instance": "other:9983"}, f"1x{steps}")], [exporter])
    case("CloudPollFailing", [
        input_series("secure_endpoint_cloud_up", exporter, f"0x{steps}"),
        input_series("secure_endpoint_cloud_polling", exporter, f"1x{steps}"),
        input_series("secure_endpoint_cloud_up", {**exporter, "instance": "stopped:9983"}, f"0x{steps}"),
        input_series("secure_endpoint_cloud_polling", {**exporter, "instance": "stopped:9983"}, f"0x{steps}"),
        input_series("secure_endpoint_cloud_up", {**exporter, "instance": "fine:9983"}, f"1x{steps}"),
        input_series("secure_endpoint_cloud_polling", {**exporter, "instance": "fine:9983"}, f"1x{steps}")], [exporter])
    case("CloudCredentialsRejected", [
        input_series("secure_endpoint_cloud_polling", exporter, f"0x{steps}"),
        input_series("secure_endpoint_cloud_polling", {**exporter, "instance": "fine:9983"}, f"1x{steps}")], [exporter])
    stale = config.CLOUD_STALE_POLLS * 300 + config.CLOUD_STALE_GRACE_SECONDS  # at an interval of 5 minutes
    fine = {**exporter, "instance": "fine:9983"}
    case("CloudSnapshotStale", [
        input_series("secure_endpoint_cloud_snapshot_timestamp_seconds", exporter, f"0x{steps}"),
        input_series("secure_endpoint_cloud_poll_interval_seconds", exporter, f"300x{steps}"),
        # polls an hour apart: its old snapshot is not stale yet
        input_series("secure_endpoint_cloud_snapshot_timestamp_seconds", fine, f"0x{steps}"),
        input_series("secure_endpoint_cloud_poll_interval_seconds", fine, f"3600x{steps}")],
        [exporter], at=stale // 60 + minutes_of(config.CLOUD_FOR["CloudSnapshotStale"]) + 2)
    limited = {**exporter, "code": "429"}
    case("CloudRateLimited", [
        input_series("secure_endpoint_cloud_api_requests_total", limited, f"0x10 1x{steps}"),
        input_series("secure_endpoint_cloud_api_requests_total", {**exporter, "instance": "fine:9983", "code": "429"},
                f"0x{steps}")], [limited], at=12)
    snapshot = input_series("secure_endpoint_cloud_snapshot_timestamp_seconds", exporter, fresh)  # polls that work
    case("CloudComputerNotSeen", [
        info("bad"), info("good"), snapshot,
        computer("last_seen_timestamp_seconds", "bad", old),
        computer("last_seen_timestamp_seconds", "good", fresh),
        computer("active", "bad", f"1x{steps}"), computer("active", "good", f"1x{steps}")], [labels("bad")])
    case("CloudComputerCompromised", [info("bad"), info("good"), computer("compromised", "bad", f"1x{steps}"),
                                      computer("compromised", "good", f"0x{steps}")], [labels("bad")])
    case("CloudComputerFaults", [info("bad"), info("good"), computer("faults", "bad", f"2x{steps}"),
                                 computer("faults", "good", f"0x{steps}")], [labels("bad")])
    raised = {**exporter, "kind": "raised"}
    case("CloudFaultsRaised", [
        input_series("secure_endpoint_cloud_fault_events_total", {**raised, "severity": "critical"}, f"0x5 3x{steps}"),
        input_series("secure_endpoint_cloud_fault_events_total", {**raised, "severity": "minor"}, f"0x5 3x{steps}"),
        input_series("secure_endpoint_cloud_fault_events_total", {**raised, "severity": "major"}, f"0x{steps}")],
        [{**exporter, "severity": "critical"}], at=7)
    versions = [input_series("secure_endpoint_cloud_computers", {**exporter, "operating_system": os_name,
                                                            "connector_version": version}, f"5x{steps}")
                for os_name, count in (("Windows 11 Pro", config.CLOUD_VERSIONS_PER_OS + 1),
                                       ("macOS 14.5", config.CLOUD_VERSIONS_PER_OS))
                for version in (f"8.4.{n}" for n in range(count))]
    case("CloudVersionDrift", versions, [{**exporter, "operating_system": "Windows 11 Pro"}])

    # The join: the host exporter's view of the two computers' hosts.
    def host(which: str, connected: int, fault: int, length: int = steps) -> list[dict[str, str]]:
        at = {**host_base, "instance": f"{which}:9982"}
        return [input_series("secure_endpoint_connector_info",
                             {**at, "connector_guid": guid[which], "version": "1.25.0", "platform": "linux"},
                             f"1x{length}"),
                input_series("secure_endpoint_connector_connected", at, f"{connected}x{length}"),
                input_series("secure_endpoint_fault_active", {**at, "fault_id": "8", "fault": "f", "platform": "linux"},
                        f"{fault}x{length}")]

    silent_from = -(SILENT + 3600)
    case("HostNotSeenByCloud", [
        info("bad"), info("good"), snapshot, *host("bad", 1, 0), *host("good", 1, 0),
        computer("last_seen_timestamp_seconds", "bad", f"{silent_from}+0x{steps}"),
        computer("last_seen_timestamp_seconds", "good", fresh)], [labels("bad")])
    case("CloudMissesHostFaults", [
        info("bad"), info("good"), *host("bad", 1, 1), *host("good", 1, 0),
        computer("faults", "bad", f"0x{steps}"), computer("faults", "good", f"0x{steps}")], [labels("bad")])
    # An outage: the last good poll at 0 saw both computers then; hours later, with no poll since, neither
    # alerts as not seen (the exporter's own alerts say the data is old).
    # Steps of a minute: samples further apart than Prometheus's 5 minutes of lookback would leave gaps in
    # which no alert could fire, and the test would pass whatever the rules said.
    hours_later = (NOT_SEEN + SILENT) // 60 + 120
    tests.append({"interval": "1m", "input_series": [
        info("bad", hours_later), info("good", hours_later), *host("bad", 1, 0, hours_later),
        input_series("secure_endpoint_cloud_snapshot_timestamp_seconds", exporter, f"0x{hours_later}"),
        computer("last_seen_timestamp_seconds", "bad", f"0x{hours_later}"),
        computer("last_seen_timestamp_seconds", "good", f"-60x{hours_later}"),
        computer("active", "bad", f"1x{hours_later}"), computer("active", "good", f"1x{hours_later}")],
        "alert_rule_test": [
            {"eval_time": f"{hours_later - 10}m", "alertname": rules_by_name[name]["alert"], "exp_alerts": []}
            for name in ("CloudComputerNotSeen", "HostNotSeenByCloud")]})
    job = {k: v for k, v in exporter.items() if k == "job"}

    def recorded(name: str, extra: Labels, value: int, at: str = "10m") -> dict[str, Any]:
        """A recording rule's one sample at ``at``; labels: the job (kept by the rules), and ``extra``."""
        selector_text = "{" + ",".join(f"{k}={json.dumps(v)}" for k, v in {**extra}.items()) + "}" if extra else ""
        return {"expr": name + selector_text, "eval_time": at,
                "exp_samples": [{"labels": input_series(name, {**job, **extra}, "")["series"], "value": value}]}
    tests.append({"interval": "1m", "input_series": [
        input_series("secure_endpoint_cloud_up", exporter, f"1x{steps}"), snapshot,
        info("bad"), info("good"), *host("bad", 1, 0), *host("good", 1, 1),
        computer("last_seen_timestamp_seconds", "bad", f"{silent_from}+0x{steps}"),
        computer("last_seen_timestamp_seconds", "good", fresh),
        computer("faults", "bad", f"0x{steps}"), computer("faults", "good", f"0x{steps}")],
        "promql_expr_test": [
            recorded("secure_endpoint_cloud:hosts_not_seen_by_cloud:count", {}, 1),
            recorded("secure_endpoint_cloud:hosts_with_faults_the_cloud_misses:count", {}, 1),
            *(recorded("secure_endpoint_cloud:computers_seen_within:count", {"within": within},
                       1 if _seconds(within) < SILENT + 3600 else 2) for within in config.CLOUD_LAST_SEEN_WITHIN)]})
    # nothing to count: the counts are 0, not absent (a panel shows 0, not "no data")
    tests.append({"interval": "1m", "input_series": [input_series("secure_endpoint_cloud_up", exporter, "1x20")],
                  "promql_expr_test": [recorded("secure_endpoint_cloud:hosts_not_seen_by_cloud:count", {}, 0, "5m")]})
    return {"rule_files": [rule_file], "evaluation_interval": "1m", "tests": tests}

