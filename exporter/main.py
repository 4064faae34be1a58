"""``secure-endpoint-exporter``: the HTTP exporter, or one-shot exposition (stdout, textfile) and JSON.

Flags and logs follow node_exporter: ``--collector.NAME`` / ``--no-collector.NAME``
with ``--collector.disable-defaults``, ``--web.systemd-socket``,
``--web.disable-exporter-metrics``, ``--log.level`` and ``--log.format``
(``exporter.logs``), and ``--version`` printed as Prometheus's ``version.Print``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..checks import __version__
from ..checks.collectors import COLLECTORS, EvidenceCache, Settings
from ..checks.evaluate import evaluate
from ..checks.host import Host
from ..checks.options import add_evaluation_arguments, rootfs_problem, settings_from
from ..checks.programs import Stopped, adopt_orphans, end_programs, handle_stop_signals
from ..checks.report import Report
from ..checks.state import StateStore, open_state
from . import logs, serving
from .logs import kv

if TYPE_CHECKING:

    pass

log = logging.getLogger("secure_endpoint_exporter")
PROG = "secure-endpoint-exporter"
DISTRIBUTION = "secure-endpoint-monitoring"
DEFAULT_LISTEN = ":9982"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Prometheus exporter for Cisco Secure Endpoint connector faults.",
    )
    add_evaluation_arguments(parser)
    serving.add_web_arguments(parser, DEFAULT_LISTEN, "secure-endpoint-exporter.socket", "; never written by --once")
    collectors = parser.add_argument_group(
        "collectors", "Every collector is on unless --collector.disable-defaults is given; --collector.NAME turns "
        "one on, --no-collector.NAME turns it off (the last of the two wins). The faults of a collector that is "
        "off are not_applicable.")
    collectors.add_argument("--collector.disable-defaults", dest="collectors_disable_defaults", action="store_true",
                            help="turn every collector off, except those named with --collector.NAME")
    for name in COLLECTORS:
        # default None: "not named", so that --collector.disable-defaults decides (node_exporter's semantics)
        collectors.add_argument(f"--collector.{name}", dest=f"collector_{name}", action=argparse.BooleanOptionalAction,
                                default=None, help=f"the {name} collector (on unless --collector.disable-defaults)")
    once = parser.add_argument_group("one-shot mode")
    once.add_argument("--once", action="store_true", help="evaluate once, print or write the result and exit")
    # Defaults of None: given without --once they are refused, not silently dropped (main).
    once.add_argument("--output", metavar="FILE",
                      help="with --once: write atomically to FILE (for node_exporter's textfile collector)")
    once.add_argument("--format", choices=("prometheus", "json"),
                      help="with --once: Prometheus exposition (the default) or the whole report as JSON")
    once.add_argument("--state-file", metavar="FILE",
                      help="with --once: remember scan service starts and definition checks between runs "
                      "(the server keeps them in memory)")
    parser.add_argument("--lang", choices=("en", "nl"), default="en", help="language of the JSON texts")
    logs.add_arguments(parser)
    parser.add_argument("--version", action=serving.VersionAction, nargs=0,
                        help="print the version, the Python it runs on and the platform, then exit")
    return parser


def disabled_collectors(args: argparse.Namespace) -> frozenset[str]:
    """The collectors that are off: named with --no-collector.NAME, or not named with --collector.NAME
    when --collector.disable-defaults is given."""
    default = not args.collectors_disable_defaults
    named = {name: getattr(args, f"collector_{name}") for name in COLLECTORS}
    return frozenset(name for name, on in named.items() if not (default if on is None else on))


def revision() -> str:
    return serving.revision(DISTRIBUTION)


def version_text() -> str:
    return serving.version_text(PROG, DISTRIBUTION)


def _json_escaped(text: str) -> str:
    """JSON text with every character ``str.isprintable`` rejects as a ``\\u`` escape (they only occur inside
    strings: the structure is spaces and newlines)."""
    if text.replace("\n", " ").isprintable():
        return text

    def escape(ch: str) -> str:
        code = ord(ch)
        if code < 0x10000:
            return f"\\u{code:04x}"
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"

    return "".join(ch if ch.isprintable() or ch == "\n" else escape(ch) for ch in text)


def render(report: Report, fmt: str, lang: str) -> bytes:
    if fmt == "json":
        import json

        # Host texts are sanitised where they enter; the JSON escapes the same characters again
        # (U+2028, bidi controls, a lone surrogate), so no reader of it meets one raw whatever slipped by.
        text = json.dumps(report.to_dict(lang), indent=2, ensure_ascii=False)
        return (_json_escaped(text) + "\n").encode("utf-8")
    from prometheus_client import generate_latest

    from .collector import report_registry

    return generate_latest(report_registry(report))


def run_once(args: argparse.Namespace, settings: Settings) -> int:
    host = Host(args.rootfs, run_programs=args.ampcli_run_from_rootfs)
    try:
        with open_state(args.state_file, host.rootfs) as store:
            report = evaluate(host, settings, store)
    except Exception as error:  # one clear line for cron, not a traceback (that only at debug, in the line)
        log.error("evaluation failed", exc_info=error)
        return 1
    data = render(report, args.format, args.lang)
    if args.output:
        from ..checks import safefile

        try:  # a new file renamed over the old one: readers never see half a file (checks.safefile)
            safefile.write(args.output, data, 0o644)
        except safefile.Refused as why:
            log.error("cannot write %s", args.output, extra=kv(file=args.output, err=str(why)))
            return 1
        except OSError as error:
            log.error("cannot write %s", args.output, extra=kv(file=args.output, err=error.strerror or str(error)))
            return 1
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return 0


def run_server(args: argparse.Namespace, settings: Settings) -> int:
    from . import server, webconfig  # the one-shot mode needs none of them

    log.info("starting %s", PROG, extra=kv(version=__version__, python=sys.version.split()[0], rootfs=args.rootfs))
    enabled = [name for name in COLLECTORS if name not in settings.disabled_collectors]
    log.info("enabled collectors: %s", ",".join(enabled) or "none", extra=kv(collectors=",".join(enabled)))
    sockets = serving.adopted_sockets(args)
    if sockets is None:
        return 1
    host = Host(args.rootfs, run_programs=args.ampcli_run_from_rootfs)
    store = StateStore(rootfs=host.rootfs)
    cache = EvidenceCache()  # what one scrape read and the next need not read again
    try:
        limits = server.Limits(read_timeout=args.read_timeout, max_connections=args.max_connections,
                               scrape_timeout=args.scrape_timeout, timeout_offset=args.timeout_offset)
        app = server.Exporter(lambda deadline: evaluate(host, settings, store, deadline=deadline, cache=cache),
                              args.telemetry_path, args.web_config, args.max_requests, limits,
                              exporter_metrics=args.exporter_metrics)
    except webconfig.WebConfigError as error:
        log.error("%s", error)
        return 1
    return serving.serve(app, args, sockets, DEFAULT_LISTEN, on_stop=end_programs)


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.setup(args.log_level, args.log_format)
    problem = rootfs_problem(args.rootfs)
    if problem:
        parser.error(problem)
    serving.check_web_arguments(parser, args)
    once_only = [flag for flag, value in (("--output", args.output), ("--format", args.format),
                                          ("--state-file", args.state_file)) if value is not None]
    if once_only and not args.once:
        parser.error(f"{once_only[0]} applies only with --once (the server answers {args.telemetry_path} "
                     "and keeps its state in memory)")
    args.format = args.format or "prometheus"
    settings = settings_from(args, disabled_collectors(args))
    handle_stop_signals()
    adopt_orphans()
    try:
        code = run_once(args, settings) if args.once else run_server(args, settings)
    except Stopped as stop:  # in --once: nothing was written, and the file in place stays as it was
        log.info("received %s before the evaluation finished, stopping", stop.signal_name,
                 extra=kv(signal=stop.signal_name))
        end_programs()
        code = 0
    sys.exit(code)


if __name__ == "__main__":
    main()
