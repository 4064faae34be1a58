"""``check_secure_endpoint``: the Nagios/Icinga plugin (Resource -> Context -> Summary).

First line ``SECURE ENDPOINT <STATE> - <summary> | <perfdata>``, then one
line per active (or unknown) fault with what was seen, the likely cause and
the fix. States rank OK < UNKNOWN < WARNING < CRITICAL: a check that could not
read one piece of evidence never hides a fault that was seen.

Some 440 lines: the plugin's Resource, Contexts, Summary, output and arguments, which only it uses, in
one file as check_systemd keeps its own.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple, NoReturn

import nagiosplugin
from nagiosplugin.output import Output
from nagiosplugin.state import Critical, Ok, ServiceState, Unknown, Warn

from . import __version__, catalog
from .evaluate import evaluate
from .evidence.definitions import DAY, FUTURE_TOLERANCE  # as the staleness check
from .host import Host
from .messages import foreign, log_line, msg, said
from .options import add_evaluation_arguments, fault_list, rootfs_problem, settings_from
from .programs import Stopped, adopt_orphans, end_programs, handle_stop_signals, ignore_stop_signals
from .report import FaultResult, Report, State
from .state import default_path, open_state
from .translation import argparse_in

NAME = "Secure Endpoint"
SEVERITY_STATES: dict[str, ServiceState] = {"ok": Ok, "warning": Warn, "critical": Critical, "unknown": Unknown}
# Worst last: a fault that was seen outranks a check that could not tell, so
# one unreadable piece of evidence never hides a real problem.
RANK = {Ok.code: 0, Unknown.code: 1, Warn.code: 2, Critical.code: 3}
SUMMARY_ITEMS = 3


log = logging.getLogger(__name__)
LOOKUP_LINES = {
    "cgroup": "processes found through the cgroup of %s",
    "scan": "processes found by listing all of /proc: the cgroup of %s did not show every one",
}

class UsageError(Exception):
    """Bad arguments; its text is English and knows its Dutch."""


class ArgumentParser(argparse.ArgumentParser):
    """Bad arguments end in UNKNOWN (exit 3) with one line, as the plugin guidelines ask; so do --help and
    --version (they print to stdout, as argparse does)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(foreign(message))

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        super().exit(3 if status == 0 else status, message)


class SeverityPolicy(NamedTuple):
    critical: frozenset[str] = frozenset()
    warning: frozenset[str] = frozenset()
    ignore: frozenset[str] = frozenset()
    not_installed: str = "critical"

    def state_of(self, result: FaultResult) -> ServiceState:
        fault_id = result.fault.id
        if fault_id in self.ignore or result.state in (State.CLEAR, State.NOT_APPLICABLE):
            return Ok
        if result.state is State.UNKNOWN:
            return Unknown
        if fault_id == "not_installed":
            return SEVERITY_STATES[self.not_installed]
        if fault_id in self.critical:
            return Critical
        if fault_id in self.warning:
            return Warn
        if result.reported and result.severity:
            # The connector's own word on how bad it is (fault 18: Major overloaded, Critical reduced).
            return Critical if result.severity.lower() == "critical" else Warn
        return Critical if result.fault.severity is catalog.Severity.CRITICAL else Warn


class SecureEndpoint(nagiosplugin.Resource):  # type: ignore[misc]
    """Acquire: one evaluation of the host, every fault a metric."""

    def __init__(self, args: argparse.Namespace, policy: SeverityPolicy) -> None:
        self.args = args
        self.policy = policy

    @property
    def name(self) -> str:
        return NAME

    def probe(self) -> Iterator[nagiosplugin.Metric]:
        args = self.args
        # ampcli must finish well inside the plugin's own timeout.
        ampcli_timeout = min(args.ampcli_timeout, max(args.timeout - 1.0, 0.5)) if args.timeout else None
        settings = settings_from(args, ampcli_timeout=ampcli_timeout)
        host = Host(args.rootfs, run_programs=args.ampcli_run_from_rootfs)
        # The evaluation ends itself a little before -t, so what could be judged is still shown;
        # -t itself (nagiosplugin's alarm) stays the hard bound.
        deadline = time.monotonic() + args.timeout - min(1.0, args.timeout * 0.2) if args.timeout else None
        with open_state(args.state_file, host.rootfs) as store:
            report = evaluate(host, settings, store, deadline=deadline)
        if report.process_lookup in LOOKUP_LINES:  # at -v: why a run was slow (all of proc listed)
            log.info(LOOKUP_LINES[report.process_lookup], settings.connector_unit)
        results = [r for r in report.all_results() if r.fault.id not in self.policy.ignore]
        for result in results:
            yield nagiosplugin.Metric(f"fault {result.fault.id}", result, context="fault")
        states = [self.policy.state_of(r) for r in results]
        judged = [r for r in report.faults if r.fault.documented and r.fault.id not in self.policy.ignore]
        total = len(judged)
        yield nagiosplugin.Metric("active", sum(r.state is State.ACTIVE for r in judged), min=0, max=total,
                                  context="count")
        checked = len(results)
        yield nagiosplugin.Metric("critical", states.count(Critical), min=0, max=checked, context="count")
        yield nagiosplugin.Metric("warning", states.count(Warn), min=0, max=checked, context="count")
        yield nagiosplugin.Metric("unknown", sum(r.state is State.UNKNOWN for r in results), min=0, max=checked,
                                  context="count")
        age = definitions_age(report)
        if age is not None:
            yield nagiosplugin.Metric("definitions_age", age, uom="s", min=0, context="age")


def definitions_age(report: Report) -> int | None:
    """Seconds from the definitions' last update (ampcli policy), else the newest CVD's build, to the end of the
    evaluation; None when neither is known. An update dated in the future counts as unknown, as it does for
    the staleness check; a build a little ahead (clocks differ) is age 0."""
    when = report.definitions_updated_time
    if when is not None and when > report.evaluated_at + FUTURE_TOLERANCE:
        when = None
    if when is None:
        when = report.definitions_build_time
    if when is None:
        return None
    return max(round(report.evaluated_at - when), 0)


class FaultContext(nagiosplugin.Context):  # type: ignore[misc]
    """Judge: a fault's state and the severity policy give the service state."""

    def __init__(self, policy: SeverityPolicy) -> None:
        super().__init__("fault")
        self.policy = policy

    def evaluate(self, metric: nagiosplugin.Metric, resource: Any) -> nagiosplugin.Result:
        result: FaultResult = metric.value
        return nagiosplugin.Result(self.policy.state_of(result), result.fault.title.en, metric)

    def performance(self, metric: nagiosplugin.Metric, resource: Any) -> None:
        return None


class AgeContext(nagiosplugin.Context):  # type: ignore[misc]
    """The definitions' age: perfdata with the staleness limit as its warning threshold (the fault
    definitions_stale decides the state; when it is ignored there is no threshold)."""

    def __init__(self, max_age_days: float, ignored: bool) -> None:
        super().__init__("age")
        limit = max_age_days * DAY
        self.warn = "" if ignored else (str(int(limit)) if limit == int(limit) else f"{limit:.3f}")

    def evaluate(self, metric: nagiosplugin.Metric, resource: Any) -> nagiosplugin.Result:
        return nagiosplugin.Result(Ok, metric=metric)

    def performance(self, metric: nagiosplugin.Metric, resource: Any) -> nagiosplugin.Performance:
        return nagiosplugin.Performance(metric.name, metric.value, metric.uom or "", warn=self.warn, min=metric.min)


class CountContext(nagiosplugin.Context):  # type: ignore[misc]
    """Counts only feed the perfdata; the faults themselves decide the state."""

    def __init__(self) -> None:
        super().__init__("count")

    def evaluate(self, metric: nagiosplugin.Metric, resource: Any) -> nagiosplugin.Result:
        return nagiosplugin.Result(Ok, metric=metric)

    def performance(self, metric: nagiosplugin.Metric, resource: Any) -> nagiosplugin.Performance:
        return nagiosplugin.Performance(metric.name, metric.value, metric.uom or "", min=metric.min,
                                        max=metric.max)


class EndpointSummary(nagiosplugin.Summary):  # type: ignore[misc]
    """Present: the worst faults on the first line, one line per fault below."""

    def __init__(self, lang: str, verbosity: int) -> None:
        self.lang = lang
        self.verbosity = verbosity

    def _faults(self, results: nagiosplugin.Results) -> list[tuple[ServiceState, FaultResult]]:
        found = [(r.state, r.metric.value) for r in results if r.metric is not None and r.metric.context == "fault"]
        return sorted(found, key=lambda item: -RANK[item[0].code])

    def _label(self, result: FaultResult) -> str:
        title = result.fault.title.get(self.lang)
        if result.fault.documented:
            return msg("fault_label", title=title, id=result.fault.id).render(self.lang)
        return title

    def ok(self, results: nagiosplugin.Results) -> str:
        faults = [f for _, f in self._faults(results)]
        checked = sum(1 for f in faults if f.fault.documented and f.state is not State.NOT_APPLICABLE)
        extra = ""
        connected = next((f for f in faults if f.fault.id == "not_connected"), None)
        if connected is not None and connected.state is State.CLEAR:
            extra = msg("summary_connected").render(self.lang)
        installed = next((f for f in faults if f.fault.id == "not_installed"), None)
        if installed is not None and installed.state is State.ACTIVE:
            return self._label(installed)
        return msg("summary_ok", checked=checked, extra=extra).render(self.lang)

    def problem(self, results: nagiosplugin.Results) -> str:
        bad = [(s, f) for s, f in self._faults(results) if s != Ok]
        items = []
        for _state, fault in bad[:SUMMARY_ITEMS]:
            label = self._label(fault)
            unknown = fault.state is State.UNKNOWN
            items.append(msg("state_unknown", label=label).render(self.lang) if unknown else label)
        if len(bad) > SUMMARY_ITEMS:
            items.append(msg("and_more", count=len(bad) - SUMMARY_ITEMS).render(self.lang))
        return ", ".join(items)

    def verbose(self, results: nagiosplugin.Results) -> list[str]:
        lines = []
        for state, fault in self._faults(results):
            if state != Ok:
                lines.append(self._problem_line(state, fault))
            elif self.verbosity >= 1:
                lines.append(self._ok_line(fault))
        return lines

    def _problem_line(self, state: ServiceState, result: FaultResult) -> str:
        lang = self.lang
        parts = [msg("line", state=str(state).upper(), label=self._label(result)).render(lang)]
        if result.state is State.UNKNOWN and result.reason is not None:
            parts.append(msg("line_reason", text=result.reason).render(lang))
        if result.evidence:
            parts.append(msg("line_evidence", items=list(result.evidence)).render(lang))
        if result.causes:
            parts.append(msg("line_cause", items=list(result.causes)).render(lang))
        if result.state is State.ACTIVE:
            fix = result.remedy.render(lang) if result.remedy else result.fault.fix.get(lang)
            parts.append(msg("line_fix", text=fix).render(lang))
        return _sentences(parts)

    def _ok_line(self, result: FaultResult) -> str:
        lang = self.lang
        if result.state is State.NOT_APPLICABLE and result.reason is not None:
            status = msg("line_na", text=result.reason).render(lang)
        else:
            status = msg("line_clear").render(lang)
        parts = [f"OK: {self._label(result)}: {status}"]
        if self.verbosity >= 2 and result.evidence:
            parts.append(msg("line_evidence", items=list(result.evidence)).render(lang))
        return _sentences(parts)


def _sentences(parts: list[str]) -> str:
    return " ".join(p if p.endswith((".", ":")) else p + "." for p in parts)


class EndpointCheck(nagiosplugin.Check):  # type: ignore[misc]
    """A check whose overall state ranks CRITICAL above UNKNOWN."""

    def _worst(self) -> ServiceState:
        states = [r.state for r in self.results]
        return max(states, key=lambda s: RANK[s.code]) if states else Unknown

    @property
    def state(self) -> ServiceState:
        return self._worst()

    @property
    def summary_str(self) -> str:
        if self.state == Ok:
            return str(self.summary.ok(self.results) or "")
        return str(self.summary.problem(self.results) or "")

    @property
    def exitcode(self) -> int:
        return int(self._worst().code)


class PluginOutput(Output):  # type: ignore[misc]
    """Perfdata always on the first line, the per-fault lines always below it."""

    def add(self, check: nagiosplugin.Check) -> None:
        ignore_stop_signals()  # the verdict is complete: a signal now must not add a second status line
        self.status = self.format_status(check)
        perfdata = self.format_perfdata(check)
        if perfdata:
            self.status += " " + perfdata
        self.add_longoutput(check.verbose_str)


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="check_secure_endpoint",
        exit_on_error=False,  # a bad value's reason keeps its Dutch (see parse_args)
        description="Check the Cisco Secure Endpoint connector on this host for every documented fault.",
    )
    add_evaluation_arguments(parser)
    group = parser.add_argument_group("plugin")
    group.add_argument("-t", "--timeout", type=int, default=10, metavar="SECONDS",
                       help="abort with UNKNOWN after this many seconds (default: %(default)s; 0: never)")
    group.add_argument("-v", "--verbose", action="count", default=0,
                       help="-v lists every fault, -vv adds the evidence, -vvv adds debug logging")
    faults = ("comma-separated fault ids or names (the metrics' fault label, e.g. 18 or "
              "event_monitoring_overloaded; repeatable)")
    group.add_argument("--critical", type=fault_list, action="append", default=[], metavar="FAULTS",
                       help=f"{faults} that are CRITICAL when active")
    group.add_argument("--warning", type=fault_list, action="append", default=[], metavar="FAULTS",
                       help=f"{faults} that are WARNING when active")
    group.add_argument("--ignore", type=fault_list, action="append", default=[], metavar="FAULTS",
                       help=f"{faults} never to alert on")
    group.add_argument("--not-installed", choices=sorted(SEVERITY_STATES), default="critical",
                       help="state when the connector is not installed (default: %(default)s)")
    group.add_argument("--lang", choices=("en", "nl"), default="en", help="language of the output")
    group.add_argument("--state-file", default=default_path(), metavar="FILE",
                       help="where scan service starts and definition checks are remembered between runs "
                       "(default: %(default)s; root uses /var/lib/secure-endpoint-monitoring/, other users "
                       "$XDG_STATE_HOME or ~/.local/state, then secure-endpoint-monitoring/); a file another "
                       "user owns or may write is not used; '' keeps nothing; a user without a home folder it "
                       "can write keeps nothing between runs (-v says so): set XDG_STATE_HOME or --state-file to "
                       "a folder that user owns")
    group.add_argument("-V", "--version", action="version", version=f"%(prog)s {__version__}",
                       help="print the version and exit (with 3, UNKNOWN, as --help does)")
    return parser


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, SeverityPolicy]:
    """The arguments, or ``UsageError`` saying what is wrong in the language asked for (argparse's own
    messages too)."""
    with argparse_in(requested_lang(sys.argv[1:] if argv is None else argv)):
        try:
            args = build_parser().parse_args(argv)
        except argparse.ArgumentError as error:  # exit_on_error=False: a bad value, with its own reason
            if error.argument_name is None:
                raise UsageError(foreign(error.message)) from None
            raise UsageError(said("argument", option=error.argument_name, reason=foreign(error.message))) from None
    if args.timeout < 0:
        raise UsageError(said("timeout_negative"))
    problem = rootfs_problem(args.rootfs)
    if problem:
        raise UsageError(problem)
    policy = SeverityPolicy(
        critical=frozenset().union(*args.critical),
        warning=frozenset().union(*args.warning),
        ignore=frozenset().union(*args.ignore),
        not_installed=args.not_installed,
    )
    both = policy.critical & policy.warning
    if both:
        raise UsageError(said("both_severities", id=sorted(both)[0]))
    return args, policy


def requested_lang(argv: Sequence[str]) -> str:
    """The --lang asked for, read before the arguments are parsed (to say what is wrong with them)."""
    lang = "en"
    for at, word in enumerate(argv):
        option, equals, value = word.partition("=")
        if len(option) >= 3 and "--lang".startswith(option):
            lang = value if equals else (argv[at + 1] if at + 1 < len(argv) else lang)
    return lang


def main(argv: Sequence[str] | None = None) -> None:
    try:
        args, policy = parse_args(argv)
    except UsageError as error:
        reason = error.args[0] if error.args else str(error)
        lang = requested_lang(sys.argv[1:] if argv is None else argv)
        print(f"{NAME.upper()} UNKNOWN - {msg('bad_arguments', reason=reason).render(lang)}")
        sys.exit(3)
    handle_stop_signals()
    adopt_orphans()
    try:
        run(args, policy)
    except Stopped as stop:  # a half-done check proves nothing: UNKNOWN, never a verdict
        end_programs()
        print(f"{NAME.upper()} UNKNOWN - {msg('plugin_stopped', signal=stop.signal_name).render(args.lang)}")
        sys.exit(3)


class LogLines(logging.Formatter):
    """Our log lines (the state file's) as the plugin prints them: in Dutch for ``--lang nl``. The record
    itself is left as it is, for any other handler."""

    def __init__(self, lang: str) -> None:
        super().__init__("%(message)s")
        self.lang = lang

    def format(self, record: logging.LogRecord) -> str:
        if self.lang != "en" and isinstance(record.msg, str) and isinstance(record.args, tuple):
            return log_line(record.msg, record.args, self.lang)
        return super().format(record)


def run(args: argparse.Namespace, policy: SeverityPolicy) -> None:
    """One check under nagiosplugin's runtime; -t ends in UNKNOWN with one line in the chosen language."""
    runtime = nagiosplugin.Runtime()
    try:
        _check(runtime, args, policy)
    except nagiosplugin.Timeout:
        print(f"{NAME.upper()} UNKNOWN - {msg('plugin_timeout', seconds=args.timeout).render(args.lang)}")
        sys.exit(3)
    except Exception:  # noqa: BLE001 - a bug: nagiosplugin's UNKNOWN, with the traceback at -v
        runtime._handle_exception()


def _check(runtime: nagiosplugin.Runtime, args: argparse.Namespace, policy: SeverityPolicy) -> None:
    runtime.output = PluginOutput(runtime.logchan)
    runtime.logchan.setFormatter(LogLines(args.lang))
    # Our own lines go into the plugin output, not stderr: warnings (a damaged state file, ...) always,
    # info lines (no home for the default state file) from -v on. nagiosplugin's logchan would hold
    # those back until -vv, so they get a handler of their own on its stream.
    ours = logging.StreamHandler(runtime.logchan.stream)
    ours.setFormatter(LogLines(args.lang))
    ours.setLevel(logging.INFO if args.verbose >= 1 else logging.WARNING)
    logger = logging.getLogger(__package__)
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(ours)
    check = EndpointCheck(
        SecureEndpoint(args, policy),
        FaultContext(policy),
        CountContext(),
        AgeContext(args.definitions_max_age, "definitions_stale" in policy.ignore),
        EndpointSummary(args.lang, args.verbose),
    )
    try:
        check.main(verbose=args.verbose, timeout=args.timeout)
    finally:  # main() ends in SystemExit; a later run in this process starts clean
        logger.removeHandler(ours)
        logger.setLevel(level)


if __name__ == "__main__":
    main()
