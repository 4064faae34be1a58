"""Evidence for one evaluation: each collector runs at most once, its time and failure recorded.

A fault check asks for the facts it needs; when a collector failed (or is
disabled), asking raises ``Unavailable`` with the reason, and the fault
becomes ``unknown``. Collectors are the units the exporter reports as
``secure_endpoint_scrape_collector_success{collector}``.

Which collectors exist and what they read is ``checks.collectors``; this module runs them for one
evaluation: one typed accessor each, and the time share and failure record of each run.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar, cast

from .catalog import Platform
from .collectors import COLLECTORS, REGISTRY, EvidenceCache, Settings
from .evidence import (
    Collector,
    Probe,
    ampcli,
    definitions,
    kernel,
    policy,
    processes,
    scan_user,
    selinux,
    system,
    version,
)
from .host import DeadlineExceeded, Host
from .messages import Msg, foreign, msg, os_reason, printable, reason_of, said
from .report import CollectorRun
from .state import StateStore

if TYPE_CHECKING:  # the macOS readers are imported only when a Mac is checked
    from .evidence import kext, macapp, netext, sysext, tcc

log = logging.getLogger(__name__)

Facts = TypeVar("Facts")
COLLECTOR_RESERVE = 1.0  # seconds of the evaluation's time one collector leaves to the others

LINUX_INSTALL_MARKERS = ("opt/cisco/amp/bin/ampdaemon",)
# What only the running Mac can tell (its process table, its loaded kexts): a copied Mac tree has no such
# thing, so the checks that need it are not judged there instead of being unknown.
MACOS_LIVE_ONLY = frozenset({"processes", "kernel_extensions"})
FIRST_SYSEXT_MACOS = (11,)  # macOS from which every connector of 1.14 or later uses system extensions


def install_markers(platform: Platform) -> tuple[str, ...]:
    """The paths that mean "the connector is installed", in the order they are looked for."""
    if platform is Platform.LINUX:
        return LINUX_INSTALL_MARKERS
    from .evidence import macapp

    return ("opt/cisco/amp/ampdaemon", *macapp.SERVICE_APPS, *macapp.LEGACY_APPS)


class Unavailable(Exception):
    """Evidence a verdict needs could not be read; ``disabled``: it is not there to be read by design (the
    collector is switched off, or a copied Mac tree has no processes), so the verdict is not_applicable."""

    def __init__(self, reason: Msg, disabled: bool = False) -> None:
        super().__init__(str(reason))
        self.reason = reason
        self.disabled = disabled


class Evidence:
    def __init__(self, host: Host, settings: Settings, store: StateStore, now: float | None = None,
                 deadline: float | None = None, cache: EvidenceCache | None = None) -> None:
        self.host = host
        self.deadline = deadline
        self.settings = settings
        self.store = store
        self.cache = cache or EvidenceCache()
        self.now = time.time() if now is None else now
        self.platform = system.detect_platform(host)
        self.install_marker, self.install_error = self._install_marker()
        self.runs: list[CollectorRun] = []
        self._memo: dict[str, object] = {}
        self._status: tuple[float, ampcli.Pending | None] | None = None  # started early (see collect_all)
        # ampcli's status: no module's collector, since it finishes the run collect_all started first
        self._status_collector = Collector("connector_status", lambda probe: self._finish_status(probe.host))

    def _install_marker(self) -> tuple[str | None, Msg | None]:
        """The first install marker found, as shown on the host; else why none could be looked for.

        A marker that cannot be looked up (permission denied) leaves the
        installation unknown: it is never taken for "not installed".
        """
        error: Msg | None = None
        for rel in install_markers(self.platform):
            try:
                if self.host.exists(rel):
                    return self.host.display(rel), None
            except OSError as problem:
                error = error or msg("collector_failed", collector="installation", error=describe(problem))
        return None, error

    @property
    def installed(self) -> bool:
        """True when installed or when that cannot be told (the faults are judged, unknown where unreadable)."""
        return self.install_marker is not None or self.install_error is not None

    def collectors(self) -> tuple[str, ...]:
        """The collectors that apply to this platform and are enabled."""
        return tuple(
            name for name in COLLECTORS
            if name not in self.settings.disabled_collectors
            and self.platform in REGISTRY[name].platforms
            and not self._copied_mac(name)
            and not (name == "kernel_extensions" and not self._needs_kexts())
        )

    def _copied_mac(self, name: str) -> bool:
        """Whether ``name`` is a collector of what only a running Mac can tell, and this is a copied Mac tree."""
        return self.platform is Platform.MACOS and not self.host.live and name in MACOS_LIVE_ONLY

    def _needs_kexts(self) -> bool:
        """Only a connector that uses kexts (``mac_uses_kexts``) needs them read (a copied Mac tree has no
        loaded kexts at all: ``_copied_mac``)."""
        try:
            return self.mac_uses_kexts()
        except Unavailable:
            return False

    def mac_uses_kexts(self) -> bool:
        """Whether the Mac connector uses kernel extensions rather than system extensions: before 1.14
        always; 1.14.0 on macOS before 10.15.5; later ones on macOS 10.15 and older (Cisco's advisory 216089)."""
        from .evidence import version_tuple

        if self.legacy_mac_connector():
            return True
        macos = version_tuple(self.system().os_version)
        if macos >= FIRST_SYSEXT_MACOS:
            return False
        return not (version_tuple(self.connector_version())[:3] == (1, 14, 0) and macos >= (10, 15, 5))

    def collect_all(self) -> None:
        """Run every enabled collector once, so each reports success or failure.

        ``ampcli`` is started first and collected last: the connector answers while the others
        read the host. Whatever happens (the plugin's -t included), no ampcli is left running.
        """
        names = self.collectors()
        if "connector_status" in names:
            self._start_status()
        try:
            for name in sorted(names, key=lambda name: name == "connector_status"):
                with contextlib.suppress(Unavailable):
                    self._facts(self._collector(name))
        finally:
            if self._status is not None and self._status[1] is not None:
                self._status[1].kill()
        self.runs.sort(key=lambda run: COLLECTORS.index(run.name))

    # -- typed access --------------------------------------------------------
    def system(self) -> system.SystemFacts:
        return self._facts(system.COLLECTOR)

    def status_or_none(self) -> ampcli.ConnectorStatus | None:
        """ampcli's status; None when ampcli is not installed at all."""
        return self._facts(self._status_collector)

    def status(self) -> ampcli.ConnectorStatus:
        found = self.status_or_none()
        if found is None:
            raise Unavailable(msg("ampcli_missing", path=self.host.display(ampcli.AMPCLI_PATHS[self.platform])))
        return found

    def version_file(self) -> version.VersionFacts:
        return self._facts(version.COLLECTOR)

    def connector_version(self) -> str:
        """The connector's version: global.xml first, then what ampcli says, then the macOS app; "" if none
        (worked out once an evaluation: several faults ask)."""
        if "version_text" not in self._memo:  # not a collector's name: those share the memo
            self._memo["version_text"] = self._connector_version()
        return cast(str, self._memo["version_text"])

    def _connector_version(self) -> str:
        sources: list[Callable[[], str]] = [
            lambda: self.version_file().version,
            lambda: self.status().version,
        ]
        if self.platform is Platform.MACOS:
            sources.append(lambda: self.connector_app().short_version or self.connector_app().build_version)
        for source in sources:
            with contextlib.suppress(Unavailable):
                found = source()
                if found:
                    return found
        return ""

    def legacy_mac_connector(self) -> bool:
        """A Mac connector before 1.14: no Service app and no system extensions.

        What is installed decides first (a Service app, or a registered Cisco system extension,
        exist only from 1.14 on); the version only when neither is there, since the element of
        global.xml that holds it is a guess; without a version, the Connector app alone means legacy.
        """
        app = self.connector_app()
        if app.service_app:
            return False
        with contextlib.suppress(Unavailable):
            if self.system_extensions().cisco():
                return False
        from .evidence import version_tuple
        from .evidence.macapp import FIRST_SYSEXT_VERSION

        known = version_tuple(self.connector_version())
        if len(known) >= 2:
            return known[:2] < FIRST_SYSEXT_VERSION
        if app.path is None:
            raise Unavailable(msg("version_unknown"))
        return app.legacy

    def processes(self) -> processes.ProcessFacts:
        return self._facts(processes.COLLECTOR)

    def scan_user(self) -> scan_user.ScanUserFacts:
        return self._facts(scan_user.COLLECTOR)

    def policy(self) -> policy.PolicyFacts:
        return self._facts(policy.COLLECTOR)

    def kernel(self) -> kernel.KernelFacts:
        return self._facts(kernel.COLLECTOR)

    def selinux(self) -> selinux.SelinuxFacts:
        return self._facts(selinux.COLLECTOR)

    def definitions(self) -> definitions.DefinitionsFacts:
        return self._facts(definitions.COLLECTOR)

    def definition_problems(self) -> list[tuple[str, str]]:
        """(path, problem) for each definition file that fails its integrity check.

        Hashing is the one costly read, so it runs only when a verdict asks
        (fault 7 naming its cause) and each file's verdict is cached in the store.
        """
        if "definition_problems" not in self._memo:
            cache = self.store.cvd_cache()
            found = []
            for item in self.definitions().files:
                try:
                    problem = definitions.integrity_problem(self.host.within(self.deadline), item, cache)
                except OSError as error:
                    problem = said("cvd_unreadable", reason=os_reason(error))
                if problem:
                    found.append((item.path, problem))
            self._memo["definition_problems"] = found
        return cast("list[tuple[str, str]]", self._memo["definition_problems"])

    def connector_app(self) -> macapp.AppFacts:
        from .evidence import macapp

        return self._facts(macapp.COLLECTOR)

    def system_extensions(self) -> sysext.SysextFacts:
        from .evidence import sysext

        return self._facts(sysext.COLLECTOR)

    def tcc(self) -> tcc.TccFacts:
        from .evidence import tcc

        return self._facts(tcc.COLLECTOR)

    def network_extensions(self) -> netext.NetextFacts:
        from .evidence import netext

        return self._facts(netext.COLLECTOR)

    def kernel_extensions(self) -> kext.KextFacts:
        from .evidence import kext

        return self._facts(kext.COLLECTOR)

    # -- machinery -----------------------------------------------------------
    def _collector(self, name: str) -> Collector[object]:
        """The collector of that name, from its module (imported now: a Mac's only when a Mac is checked)."""
        if name == "connector_status":
            return self._status_collector
        found: Collector[object] = importlib.import_module(f"{__package__}.evidence.{REGISTRY[name].module}").COLLECTOR
        return found

    def _wants_about(self) -> bool:
        """``ampcli about`` only tells the version, wanted only when global.xml does not."""
        try:
            return not self.version_file().version
        except Unavailable:
            return True

    def _start_status(self) -> None:
        """Start ampcli now (its answer is collected by the connector_status collector)."""
        if self.settings.ampcli_status_file or not self.host.may_run:
            return  # nothing to start: the collector reads the saved status, or says it did not ask
        start = time.perf_counter()
        try:
            pending = ampcli.start(self._host_for_collector(), self.platform, self._wants_about())
        except Exception as error:
            if _is_plugin_timeout(error):
                raise
            self._failed("connector_status", start, error)
            return
        self._status = (start, pending)

    def _finish_status(self, host: Host) -> ampcli.ConnectorStatus | None:
        if self.settings.ampcli_status_file:
            return ampcli.read_saved(self.settings.ampcli_status_file, host.deadline)
        if not host.may_run:
            rel = ampcli.AMPCLI_PATHS[self.platform]
            if not host.exists(rel):
                return None  # not installed, as on any root: that needs no program run
            raise Unavailable(msg("ampcli_not_asked", path=host.display(rel)), disabled=True)
        if self._status is None:  # asked for before collect_all started it
            self._status = (time.perf_counter(), ampcli.start(host, self.platform, self._wants_about()))
        pending = self._status[1]
        return None if pending is None else pending.finish(self.settings.ampcli_timeout)

    def _facts(self, collector: Collector[Facts]) -> Facts:
        """The collector's facts, read once an evaluation; ``Unavailable`` when it failed or is off."""
        name = collector.name
        if name in self._memo:
            found = self._memo[name]
            if isinstance(found, Unavailable):
                raise found
            return cast(Facts, found)  # what collector.read returned for this name
        if name in self.settings.disabled_collectors:
            raise Unavailable(msg("collector_disabled", collector=name), disabled=True)
        if self._copied_mac(name):
            raise Unavailable(msg("copied_mac_tree", collector=name), disabled=True)
        start = time.perf_counter()
        if name == "connector_status" and self._status is not None:
            start = self._status[0]  # its time runs from when ampcli was started
        try:
            value = collector.read(Probe(self._host_for_collector(), self.platform, self.settings, self.cache))
        except Unavailable as error:
            # A collector that needs another one that failed fails with its reason.
            self._record(name, start, error, str(error))
            raise
        except Exception as error:
            if _is_plugin_timeout(error):
                raise  # the plugin's -t: the whole run ends, nothing may swallow it
            raise self._failed(name, start, error) from None
        self._memo[name] = value
        unread = getattr(value, "unread", ())  # partial facts: they serve, and the collector says what it missed
        self.runs.append(CollectorRun(name, not unread, time.perf_counter() - start,
                                      describe(unread[0]) if unread else None))
        return value

    def _failed(self, name: str, start: float, error: Exception) -> Unavailable:
        log.debug("collector %s failed", name, exc_info=True)
        text = describe(error)
        unavailable = Unavailable(msg("collector_failed", collector=name, error=text))
        self._record(name, start, unavailable, text)
        return unavailable

    def _host_for_collector(self) -> Host:
        """The host with reads bounded by this collector's share of the time left.

        A collector may use what remains but a reserve (a second, or half of what
        remains when that is less), so one that hangs leaves time for the others.
        """
        if self.deadline is None:
            return self.host
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise DeadlineExceeded(said("no_time_left"))
        return self.host.within(time.monotonic() + remaining - min(COLLECTOR_RESERVE, remaining / 2))

    def _record(self, name: str, start: float, error: Unavailable, text: str) -> None:
        self._memo[name] = error
        self.runs.append(CollectorRun(name, False, time.perf_counter() - start, text))


def _is_plugin_timeout(error: BaseException) -> bool:
    """nagiosplugin's -t alarm (a RuntimeError), without importing nagiosplugin: the exporter never loads it,
    and where it is not loaded no such alarm can be raised."""
    module = sys.modules.get("nagiosplugin.error")
    return module is not None and isinstance(error, module.Timeout)


def describe(error: Exception) -> str:
    """One printable line (it may name a path that is not UTF-8 or holds a newline), English, knowing its Dutch."""
    known = reason_of(error)
    if known is not None:
        return known
    if isinstance(error, PermissionError):
        return said("permission_denied", path=error.filename or str(error))
    if isinstance(error, OSError) and error.strerror:
        if error.filename:
            return said("os_error_at", reason=os_reason(error), path=error.filename)
        return os_reason(error)
    text = str(error).strip().splitlines()
    return foreign(printable(text[0])) if text else type(error).__name__
