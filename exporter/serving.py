"""The web flags and the serving loop both exporters share (host and cloud), in node_exporter's words.

Kept free of the socket and HTTP modules at import: the host exporter's one-shot mode imports this
module for its flags and never serves.
"""

from __future__ import annotations

import argparse
import logging
import math
import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..checks import __version__
from ..checks.programs import Stopped
from .logs import kv

if TYPE_CHECKING:
    import socket

    from .server import WebApp
    from .webconfig import WebConfigWatcher

log = logging.getLogger("secure_endpoint_exporter")
DISTRIBUTION = "secure-endpoint-monitoring"


def revision(distribution: str) -> str:
    """The git commit the installed distribution was built from, when pip recorded one (``pip install
    git+https://...``: ``direct_url.json``); "" otherwise. Read from the installed metadata, never from git."""
    import json
    from importlib import metadata

    try:
        text = metadata.distribution(distribution).read_text("direct_url.json")
        found = json.loads(text or "{}").get("vcs_info", {}).get("commit_id", "")
    except (metadata.PackageNotFoundError, OSError, ValueError, AttributeError):
        return ""
    return found if isinstance(found, str) else ""


def version_text(prog: str, distribution: str) -> str:
    """As Prometheus's ``version.Print``: the program, its version and revision, then the build details."""
    import platform

    commit = revision(distribution)
    head = f"{prog}, version {__version__}" + (f" (revision: {commit})" if commit else "")
    system = platform.system().lower()
    lines = [head,
             f"  python version:   {platform.python_version()} ({platform.python_implementation()})",
             f"  platform:         {system}/{platform.machine() or 'unknown'}"]
    return "\n".join(lines) + "\n"


class VersionAction(argparse.Action):
    """``--version``: prints ``version_text`` of the parser's ``prog`` and exits."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        import sys

        sys.stdout.write(version_text(parser.prog, DISTRIBUTION))
        parser.exit()


def _seconds(text: str, zero: bool) -> float:
    value = float(text)  # argparse turns the ValueError into a usage error naming the flag
    if not (math.isfinite(value) and (value >= 0 if zero else value > 0)):
        raise argparse.ArgumentTypeError(f"{text!r} is not {'zero or ' if zero else ''}a positive number of seconds")
    return value


def seconds(text: str) -> float:
    return _seconds(text, zero=False)


def offset(text: str) -> float:
    return _seconds(text, zero=True)


def count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


def add_web_arguments(parser: argparse.ArgumentParser, default_listen: str, socket_unit: str | None,
                      exporter_metrics_note: str = "") -> None:
    """The web flags; ``socket_unit``: the .socket unit this project ships for the command, if any."""
    activation = f"socket activation: {socket_unit}" if socket_unit else "socket activation, a .socket unit of yours"
    web = parser.add_argument_group("HTTP server")
    web.add_argument("--web.listen-address", dest="listen", action="append", metavar="ADDRESS",
                     help=f"host:port, :port or [v6]:port to listen on (repeatable; default {default_listen})")
    web.add_argument("--web.systemd-socket", dest="systemd_socket", action="store_true",
                     help=f"serve on the listening sockets systemd passes ({activation}) instead of "
                     "--web.listen-address")
    web.add_argument("--web.disable-exporter-metrics", dest="exporter_metrics", action="store_false",
                     help="leave out the exporter's own process_* and python_* metrics (served by default"
                     f"{exporter_metrics_note})")
    web.add_argument("--web.telemetry-path", dest="telemetry_path", default="/metrics", metavar="PATH",
                     help="path of the metrics (default: %(default)s)")
    web.add_argument("--web.config.file", dest="web_config", metavar="FILE",
                     help="exporter-toolkit web config: TLS and basic auth (reloaded when it changes)")
    web.add_argument("--web.max-requests", dest="max_requests", type=int, default=40, metavar="N",
                     help="concurrent scrapes served before answering 503; 0 for no limit (default: %(default)s)")
    web.add_argument("--web.max-connections", dest="max_connections", type=count, default=256, metavar="N",
                     help="open connections at most; when full, a new one evicts the oldest that has not sent a "
                     "complete request (default: %(default)s)")
    web.add_argument("--web.read-timeout", dest="read_timeout", type=seconds, default=10.0, metavar="SECONDS",
                     help="time a connection gets to send a complete request, also between keep-alive requests, "
                     "and for each write (default: %(default)s)")
    web.add_argument("--web.scrape-timeout", dest="scrape_timeout", type=seconds, default=10.0, metavar="SECONDS",
                     help="longest a scrape may take; Prometheus's X-Prometheus-Scrape-Timeout-Seconds lowers it "
                     "(default: %(default)s)")
    web.add_argument("--web.timeout-offset", dest="timeout_offset", type=offset, default=0.5, metavar="SECONDS",
                     help="kept back from the scrape timeout so the answer reaches Prometheus in time; a scrape "
                     "still running then is answered 503 (default: %(default)s)")


def check_web_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not args.telemetry_path.startswith("/") or args.telemetry_path == "/":
        parser.error("--web.telemetry-path must start with / and not be / itself")
    if args.systemd_socket and args.listen:
        parser.error("--web.systemd-socket serves the sockets systemd passes: leave out --web.listen-address "
                     "(set the addresses with ListenStream= in the .socket unit)")


def adopted_sockets(args: argparse.Namespace) -> list[tuple[socket.socket, str]] | None:
    """The sockets systemd passes with --web.systemd-socket ([] without it); None (logged) when they fail."""
    if not args.systemd_socket:
        return []
    from . import systemd

    try:
        return systemd.listen_sockets()
    except systemd.SocketActivationError as error:
        log.error("%s", error)
        return None


def _shown(bound: tuple[Any, ...]) -> str:
    bound_host, bound_port = str(bound[0]), int(bound[1])
    return f"[{bound_host}]:{bound_port}" if ":" in bound_host else f"{bound_host}:{bound_port}"


def reload_on_sighup(web: WebConfigWatcher, also: Callable[[], None] | None = None) -> None:
    """SIGHUP reloads the web config, and runs ``also`` (a signal ignored by whoever started us, nohup's,
    stays ignored).

    The handler only wakes one reload thread: it may interrupt the main thread anywhere, even inside a
    log write (logging from it would re-enter the stream), and signals that come faster than reloads
    run are coalesced instead of each starting a thread.
    """
    if signal.getsignal(signal.SIGHUP) is signal.SIG_IGN:
        return
    wanted = threading.Event()

    def reloading() -> None:
        while True:
            wanted.wait()
            wanted.clear()
            log.info("received SIGHUP, reloading the web config", extra=kv(signal="SIGHUP"))
            try:
                web.refresh(force=True)
                if also is not None:
                    also()
            except Exception as error:  # the next SIGHUP must find this thread alive
                log.error("reload failed", exc_info=error)

    threading.Thread(target=reloading, name="sighup-reload", daemon=True).start()
    signal.signal(signal.SIGHUP, lambda _signum, _frame: wanted.set())


def serve(app: WebApp, args: argparse.Namespace, sockets: list[tuple[socket.socket, str]], default_listen: str,
          on_stop: Callable[[], None] | None = None, on_reload: Callable[[], None] | None = None,
          on_listening: Callable[[], None] | None = None) -> int:
    """Listens (or adopts systemd's sockets), runs ``on_listening`` once every listener is bound, and serves
    until a stop signal; the exit code."""
    reload_on_sighup(app.web, on_reload)
    tls = "on" if app.web.config.tls else "off"
    for sock, name in sockets:
        shown = _shown(app.adopt(sock).server_address)
        log.info("listening on %s (TLS %s, socket from systemd)", shown, tls,
                 extra=kv(address=shown, tls=tls == "on", fd=sock.fileno(), name=name))
    for address in [] if sockets else args.listen or [default_listen]:
        try:
            bound = app.listen(address).server_address
        except (ValueError, OSError) as error:
            reason = getattr(error, "strerror", None) or str(error)
            log.error("cannot listen on %s: %s", address, reason, extra=kv(address=address, err=reason))
            app.shutdown()
            return 1
        shown = _shown(bound)
        log.info("listening on %s (TLS %s)", shown, tls, extra=kv(address=shown, tls=tls == "on"))
    if on_listening is not None:
        on_listening()
    try:
        app.serve_forever()
    except (Stopped, KeyboardInterrupt) as stop:
        name = stop.signal_name if isinstance(stop, Stopped) else "SIGINT"
        log.info("received %s, shutting down", name, extra=kv(signal=name))
        app.shutdown()  # the host exporter's programs in flight were killed by the handler: scrapes end at once
        if on_stop is not None:
            on_stop()
    return 0
