"""``secure-endpoint-exporter``: one-shot exposition (stdout or a textfile) or JSON report."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, generate_latest

from checks import __version__
from checks.evaluate import evaluate
from checks.host import Host
from checks.options import add_evaluation_arguments, settings_from
from checks.report import Report
from checks.state import open_state
from exporter.collector import ReportCollector

log = logging.getLogger("secure_endpoint_exporter")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="secure-endpoint-exporter",
        description="Prometheus exporter for Cisco Secure Endpoint connector faults.",
    )
    add_evaluation_arguments(parser)
    group = parser.add_argument_group("one-shot mode")
    group.add_argument("--once", action="store_true", help="evaluate once, print or write the result and exit")
    group.add_argument("--output", metavar="FILE",
                       help="with --once: write atomically to FILE (for node_exporter's textfile collector)")
    group.add_argument("--format", choices=("prometheus", "json"), default="prometheus",
                       help="with --once: Prometheus exposition or the whole report as JSON")
    group.add_argument("--state-file", default="", metavar="FILE",
                       help="with --once: remember scan service starts and definition checks between runs")
    parser.add_argument("--lang", choices=("en", "nl"), default="en", help="language of the JSON texts")
    parser.add_argument("--log.level", dest="log_level", default="info",
                        choices=("debug", "info", "warn", "error"), help="log level (default: %(default)s)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def render(report: Report, fmt: str, lang: str) -> bytes:
    if fmt == "json":
        return (json.dumps(report.to_dict(lang), indent=2, ensure_ascii=False) + "\n").encode()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ReportCollector(lambda: report))
    return generate_latest(registry)


def write_atomically(path: str, data: bytes) -> None:
    """Temporary file in the same folder, then rename: readers never see half a file."""
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


def run_once(args: argparse.Namespace) -> int:
    host = Host(args.rootfs)
    try:
        with open_state(args.state_file, host.rootfs) as store:
            report = evaluate(host, settings_from(args), store)
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


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper().replace("WARN", "WARNING"),
                        format="ts=%(asctime)s level=%(levelname)s msg=%(message)s", stream=sys.stderr)
    if not os.path.isdir(args.rootfs):
        parser.error(f"--path.rootfs {args.rootfs} is not a directory")
    if not args.once:
        parser.error("serving HTTP is not available in this version; use --once")
    sys.exit(run_once(args))


if __name__ == "__main__":
    main()
