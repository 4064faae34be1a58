"""``secure-endpoint-cloud-exporter``: polls Cisco's cloud API in the background and serves the fleet.

The web flags, TLS, basic auth, logging and self-metrics are the host exporter's (``exporter.serving``,
``exporter.server``). A scrape reads the last good snapshot and never calls the API.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import time
from collections.abc import Iterator, Sequence
from email.message import Message

from ...checks import __version__, safefile
from ...checks.programs import handle_stop_signals
from .. import logs, serving
from ..logs import kv
from ..server import Answer, Limits, WebApp
from .api import REGIONS, Client, base_url
from .credentials import Credentials, CredentialsError, from_environment, from_file
from .exposition import CONTENT_TYPE, exposition
from .poller import Poller

log = logging.getLogger("secure_endpoint_exporter.cloud")
PROG = "secure-endpoint-cloud-exporter"
EX_CONFIG = 78  # sysexits.h: a configuration error, which a restart cannot mend (the unit does not restart on it)
DEFAULT_LISTEN = ":9983"
_DURATION = re.compile(r"(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?")
_UNITS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)


def duration(text: str) -> float:
    """A Prometheus duration (``30s``, ``5m``, ``1h30m``) in seconds, longer than zero and at most a day."""
    match = _DURATION.fullmatch(text.strip())
    if not text.strip() or match is None or not any(match.groups()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 30s, 5m or 1h")
    value = sum(int(part) * unit for part, unit in zip(match.groups(), _UNITS) if part)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not longer than zero")
    if value > 86400:
        raise argparse.ArgumentTypeError(f"{text!r} is longer than a day (24h)")
    return float(value)


class CloudExporter(WebApp):
    title = "Secure Endpoint Cloud Exporter"
    about = "Every computer's Secure Endpoint connector as Cisco's cloud API sees it, for Prometheus."

    def __init__(self, poller: Poller, per_computer: bool, telemetry_path: str, web_config: str | None,
                 max_requests: int, limits: Limits | None = None, exporter_metrics: bool = True) -> None:
        super().__init__(telemetry_path, web_config, max_requests, limits, exporter_metrics)
        self.poller = poller
        self.per_computer = per_computer

    def metrics(self, headers: Message, client: str) -> Answer:
        now = time.monotonic()
        deadline = now + self.scrape_budget(headers.get("X-Prometheus-Scrape-Timeout-Seconds"))
        snapshot = self.poller.snapshot  # one reference for the whole answer, however long it takes
        body = exposition(self.poller.status(), snapshot, self.per_computer)
        if self.own is None:
            return Answer(200, b"", CONTENT_TYPE, stream=body, deadline=deadline)
        from prometheus_client import CollectorRegistry, generate_latest

        registry = CollectorRegistry(auto_describe=False)
        registry.register(self.own)
        own = generate_latest(registry)

        def with_own() -> Iterator[bytes]:
            yield own
            yield from body

        return Answer(200, b"", CONTENT_TYPE, stream=with_own(), deadline=deadline)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Prometheus exporter for the Cisco Secure Endpoint fleet as the cloud API sees it.")
    cloud = parser.add_argument_group("cloud API")
    cloud.add_argument("--cloud.region", dest="region", choices=sorted(REGIONS),
                       help="the API's region: nam (api.amp.cisco.com), eu or apjc (default: nam)")
    cloud.add_argument("--cloud.api-url", dest="api_url", metavar="URL",
                       help="the API's base URL without /v1 (default: the region's), e.g. https://api.eu.amp.cisco.com")
    cloud.add_argument("--cloud.credentials-file", dest="credentials_file", metavar="FILE",
                       help="YAML with client_id and api_key that others cannot read (0600, or 0640 with the "
                       "exporter's group); without it "
                       "the environment's SECURE_ENDPOINT_CLIENT_ID and SECURE_ENDPOINT_API_KEY")
    cloud.add_argument("--cloud.poll-interval", dest="poll_interval", type=duration, default=300.0, metavar="DURATION",
                       help="time between polls, stretched when the rate limit needs it (default: 5m)")
    cloud.add_argument("--cloud.request-timeout", dest="request_timeout", type=duration, default=30.0,
                       metavar="DURATION", help="longest one API request may take (default: 30s)")
    cloud.add_argument("--cloud.ca-file", dest="ca_file", metavar="FILE",
                       help="the CA certificates that verify the API (a proxy's private CA); default: the system's")
    cloud.add_argument("--cloud.per-computer", dest="per_computer", action=argparse.BooleanOptionalAction,
                       default=True, help="serve a series set per computer beside the fleet's aggregates "
                       "(--no-cloud.per-computer: the aggregates only)")
    serving.add_web_arguments(parser, DEFAULT_LISTEN, None)
    logs.add_arguments(parser)
    parser.add_argument("--version", action=serving.VersionAction, nargs=0,
                        help="print the version, the Python it runs on and the platform, then exit")
    return parser


def credentials(args: argparse.Namespace) -> Credentials:
    if args.credentials_file:
        return from_file(args.credentials_file)
    found = from_environment()
    if found is None:
        raise CredentialsError("no credentials: give --cloud.credentials-file FILE (client_id, api_key) or set "
                               "SECURE_ENDPOINT_CLIENT_ID and SECURE_ENDPOINT_API_KEY")
    return found


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.setup(args.log_level, args.log_format)
    serving.check_web_arguments(parser, args)
    if args.api_url and args.region:
        parser.error("--cloud.region and --cloud.api-url both name the API: give one")
    url = args.api_url or REGIONS[args.region or "nam"]
    try:
        base_url(url)
    except ValueError as error:
        parser.error(f"--cloud.api-url: {error}")
    sys.exit(run(args, url))


def run(args: argparse.Namespace, url: str) -> int:
    import ssl

    from ..webconfig import WebConfigError

    try:
        first = credentials(args)
        Client(url, first, args.ca_file)  # an unreadable CA file is said now, not at the first poll
    except CredentialsError as error:
        log.error("%s", error)
        return EX_CONFIG
    except (OSError, ssl.SSLError, safefile.Refused) as error:
        log.error("cannot read --cloud.ca-file %s: %s", args.ca_file, getattr(error, "strerror", None) or error,
                  extra=kv(file=args.ca_file))
        return EX_CONFIG
    current = [first]

    def connect() -> Client:
        return Client(url, current[0], args.ca_file, args.request_timeout)

    def reload() -> None:
        try:
            current[0] = credentials(args)
        except CredentialsError as error:
            log.error("credentials not reloaded: %s", error)
            return
        log.info("credentials reloaded")
        poller.resume()

    handle_stop_signals()
    sockets = serving.adopted_sockets(args)
    if sockets is None:
        return 1
    poller = Poller(connect, args.poll_interval)
    try:
        limits = Limits(read_timeout=args.read_timeout, max_connections=args.max_connections,
                        scrape_timeout=args.scrape_timeout, timeout_offset=args.timeout_offset)
        app = CloudExporter(poller, args.per_computer, args.telemetry_path, args.web_config, args.max_requests,
                            limits, exporter_metrics=args.exporter_metrics)
    except WebConfigError as error:
        log.error("%s", error)
        return EX_CONFIG
    log.info("starting %s", PROG, extra=kv(version=__version__, api=url, interval=args.poll_interval,
                                           per_computer=args.per_computer))
    # The first poll only once the listeners are bound: a start that fails on a taken port, restarted by
    # systemd, spends none of the API's hourly budget.
    try:
        return serving.serve(app, args, sockets, DEFAULT_LISTEN, on_reload=reload, on_listening=poller.start)
    finally:
        poller.stop()


if __name__ == "__main__":
    main()
