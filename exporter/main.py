"""``secure-endpoint-exporter``: the HTTP exporter, or one-shot exposition (stdout, textfile) and JSON."""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from collections.abc import Sequence

from checks import __version__
from checks.collect import COLLECTORS, EvidenceCache, Settings
from checks.evaluate import evaluate
from checks.host import Host, adopt_orphans
from checks.options import add_evaluation_arguments, rootfs_problem, settings_from
from checks.report import Report
from checks.state import StateStore, open_state
from exporter import metrics, textformat

log = logging.getLogger("secure_endpoint_exporter")
DEFAULT_LISTEN = ":9982"
LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="secure-endpoint-exporter",
        description="Prometheus exporter for Cisco Secure Endpoint connector faults.",
    )
    add_evaluation_arguments(parser)
    web = parser.add_argument_group("HTTP server")
    web.add_argument("--web.listen-address", dest="listen", action="append", metavar="ADDRESS",
                     help=f"host:port, :port or [v6]:port to listen on (repeatable; default {DEFAULT_LISTEN})")
    web.add_argument("--web.telemetry-path", dest="telemetry_path", default="/metrics", metavar="PATH",
                     help="path of the metrics (default: %(default)s)")
    web.add_argument("--web.config.file", dest="web_config", metavar="FILE",
                     help="exporter-toolkit web config: TLS and basic auth (reloaded when it changes)")
    web.add_argument("--web.max-requests", dest="max_requests", type=int, default=40, metavar="N",
                     help="concurrent scrapes served before answering 503; 0 for no limit (default: %(default)s)")
    web.add_argument("--web.max-connections", dest="max_connections", type=_count, default=256, metavar="N",
                     help="open connections at most; when full, a new one evicts the oldest that has not sent a "
                     "complete request (default: %(default)s)")
    web.add_argument("--web.read-timeout", dest="read_timeout", type=_seconds, default=10.0, metavar="SECONDS",
                     help="time a connection gets to send a complete request, also between keep-alive requests, "
                     "and for each write (default: %(default)s)")
    web.add_argument("--web.scrape-timeout", dest="scrape_timeout", type=_seconds, default=10.0, metavar="SECONDS",
                     help="longest a scrape may take; Prometheus's X-Prometheus-Scrape-Timeout-Seconds lowers it "
                     "(default: %(default)s)")
    web.add_argument("--web.timeout-offset", dest="timeout_offset", type=_offset, default=0.5, metavar="SECONDS",
                     help="kept back from the scrape timeout so the answer reaches Prometheus in time; a scrape "
                     "still running then is answered 503 (default: %(default)s)")
    collectors = parser.add_argument_group("collectors")
    for name in COLLECTORS:
        collectors.add_argument(f"--collector.{name}", dest=f"collector_{name}", action="store_true", default=True,
                                help=f"enable the {name} collector (default: enabled)")
        collectors.add_argument(f"--no-collector.{name}", dest=f"collector_{name}", action="store_false",
                                help=argparse.SUPPRESS)
    once = parser.add_argument_group("one-shot mode")
    once.add_argument("--once", action="store_true", help="evaluate once, print or write the result and exit")
    once.add_argument("--output", metavar="FILE",
                      help="with --once: write atomically to FILE (for node_exporter's textfile collector)")
    once.add_argument("--format", choices=("prometheus", "json"), default="prometheus",
                      help="with --once: Prometheus exposition or the whole report as JSON")
    once.add_argument("--state-file", default="", metavar="FILE",
                      help="with --once: remember scan service starts and definition checks between runs "
                      "(the server keeps them in memory)")
    parser.add_argument("--lang", choices=("en", "nl"), default="en", help="language of the JSON texts")
    parser.add_argument("--log.level", dest="log_level", default="info", choices=sorted(LOG_LEVELS),
                        help="log level (default: %(default)s)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def _seconds(text: str) -> float:
    value = float(text)  # argparse turns the ValueError into a usage error naming the flag
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def _offset(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not zero or a positive number of seconds")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


def render(report: Report, fmt: str, lang: str) -> bytes:
    if fmt == "json":
        import json

        # Texts are made printable where they are built; backslashreplace is the last guard, so a
        # stray surrogate becomes a JSON escape instead of a traceback.
        text = json.dumps(report.to_dict(lang), indent=2, ensure_ascii=False) + "\n"
        return text.encode("utf-8", "backslashreplace")
    return textformat.render(metrics.families(report))


def write_atomically(path: str, data: bytes) -> None:
    """Temporary file in the same folder, then rename: readers never see half a file."""
    import tempfile

    folder = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def run_once(args: argparse.Namespace, settings: Settings) -> int:
    host = Host(args.rootfs)
    try:
        with open_state(args.state_file, host.rootfs) as store:
            report = evaluate(host, settings, store)
    except Exception as error:  # one clear line for cron, not a traceback
        log.error("evaluation failed: %s", error, exc_info=log.isEnabledFor(logging.DEBUG))
        return 1
    data = render(report, args.format, args.lang)
    if args.output:
        try:
            write_atomically(args.output, data)
        except OSError as error:
            log.error("cannot write %s: %s", args.output, error.strerror or error)
            return 1
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return 0


def run_server(args: argparse.Namespace, settings: Settings) -> int:
    from exporter import server, webconfig  # the one-shot mode needs neither

    host = Host(args.rootfs)
    store = StateStore(rootfs=host.rootfs)
    cache = EvidenceCache()  # what one scrape read and the next need not read again
    try:
        limits = server.Limits(read_timeout=args.read_timeout, max_connections=args.max_connections,
                               scrape_timeout=args.scrape_timeout, timeout_offset=args.timeout_offset)
        app = server.Exporter(lambda deadline: evaluate(host, settings, store, deadline=deadline, cache=cache),
                              args.telemetry_path, args.web_config, args.max_requests, limits)
    except webconfig.WebConfigError as error:
        log.error("%s", error)
        return 1
    for address in args.listen or [DEFAULT_LISTEN]:
        try:
            bound = app.listen(address).server_address
        except (ValueError, OSError) as error:
            log.error("cannot listen on %s: %s", address, getattr(error, "strerror", None) or error)
            app.shutdown()
            return 1
        bound_host, bound_port = str(bound[0]), int(bound[1])
        shown = f"[{bound_host}]:{bound_port}" if ":" in bound_host else f"{bound_host}:{bound_port}"
        log.info("listening on %s (TLS %s)", shown, "on" if app.web.config.tls else "off")
    try:
        app.serve_forever()
    except KeyboardInterrupt:
        app.shutdown()
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=LOG_LEVELS[args.log_level], stream=sys.stderr,
                        format="ts=%(asctime)s level=%(levelname)s msg=%(message)s")
    problem = rootfs_problem(args.rootfs)
    if problem:
        parser.error(problem)
    if not args.telemetry_path.startswith("/") or args.telemetry_path == "/":
        parser.error("--web.telemetry-path must start with / and not be / itself")
    disabled = frozenset(name for name in COLLECTORS if not getattr(args, f"collector_{name}"))
    settings = settings_from(args, disabled)
    adopt_orphans()
    sys.exit(run_once(args, settings) if args.once else run_server(args, settings))


if __name__ == "__main__":
    main()
