"""What every generated output shares: the options, the fault order, names, selectors and runbook links."""

from __future__ import annotations

import argparse
import json

from ...checks import catalog
from ...checks.catalog import LINUX_FAULTS_URL, MACOS_FAULTS_URL, Fault, Platform, Severity
from . import config

FLEET_UID = "secure-endpoint-fleet"
HOST_UID = "secure-endpoint-host"
CLOUD_UID = "secure-endpoint-cloud"
PREFIX = "SecureEndpoint"


class Options(argparse.Namespace):
    selector: str = config.SELECTOR
    cloud_selector: str = config.CLOUD_SELECTOR
    runbook_url: str = config.RUNBOOK_URL
    for_default: str = config.FAULT_FOR
    grafana_datasource_uid: str = "prometheus"
    out: str = "."
    no_grafana: bool = False


def all_faults() -> list[Fault]:
    """Every fault once (5, 6 and 7 are on both platforms): Cisco's in id order, then this project's."""
    return sorted(catalog.FAULTS, key=catalog.fault_order)


def alert_name(fault: Fault) -> str:
    return PREFIX + "".join(part.capitalize() for part in fault.slug.split("_"))


def severity_ids(severity: Severity) -> list[str]:
    return [f.id for f in all_faults() if f.severity is severity]


def platforms_of(fault: Fault) -> str:
    """"linux", "macos" or "linux and macos", for texts."""
    return " and ".join(sorted(str(p) for p in fault.platforms))


def fault_runbook(fault: Fault, options: Options) -> str:
    """Cisco's page for the fault; for a fault on both platforms, a template that picks the table by label;
    for this project's own, its section of the runbook."""
    if not fault.documented:
        return f"{options.runbook_url}#{fault.slug}"
    if fault.article:
        return fault.article
    if fault.platforms == frozenset({Platform.MACOS}):
        return MACOS_FAULTS_URL
    if fault.platforms == frozenset({Platform.LINUX}):
        return LINUX_FAULTS_URL
    return f'{{{{ if eq $labels.platform "macos" }}}}{MACOS_FAULTS_URL}{{{{ else }}}}{LINUX_FAULTS_URL}{{{{ end }}}}'


def selector(options: Options, *extra: str) -> str:
    """The user's selector plus extra matchers, as a PromQL ``{...}``."""
    return "{" + ", ".join([options.selector, *extra]) + "}"


def equals(name: str, value: str) -> str:
    """One PromQL equality matcher with the value quoted."""
    return f"{name}={json.dumps(value)}"
