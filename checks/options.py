"""Command-line options shared by the plugin and the exporter: where the host is and how to judge it."""

from __future__ import annotations

import argparse
import math
import os
import stat

from . import catalog
from .collectors import COLLECTORS, Settings
from .evidence.kernel import DEFAULT_NETWORK_MODULES
from .messages import os_reason, said

DEFAULTS = Settings()


def rootfs_problem(path: str) -> str | None:
    """Why ``--path.rootfs`` cannot be used; a permission error is said as such, not as "not a directory"."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        mode = 0
    except OSError as error:
        return said("rootfs_unusable", path=path, reason=os_reason(error))
    return None if stat.S_ISDIR(mode) else said("rootfs_not_dir", path=path)


def type_error(key: str, **params: object) -> argparse.ArgumentTypeError:
    """A bad value's reason for argparse: a ``Localized`` text, which argparse hands on as it is."""
    return argparse.ArgumentTypeError(said(key, **params))


# Past this a number of days or seconds means nothing, and days * 86400 would no longer be an integer.
MAX_NUMBER = 1e9


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise type_error("not_a_number", value=repr(text)) from None
    if not (value > 0 and math.isfinite(value)) or value > MAX_NUMBER:
        raise type_error("not_positive", value=repr(text))
    return value


def non_empty(text: str) -> str:
    if not text.strip():
        raise type_error("empty_value")
    return text


def unit_name(text: str) -> str:
    """A systemd unit's name: one path component below system.slice, never a path."""
    if not text.strip() or "/" in text or text in (".", "..") or not text.isprintable():
        raise type_error("not_a_unit", value=repr(text))
    return text


def fault_of(word: str) -> str | None:
    """The catalogue id a fault id or name (the slug of the metrics' ``fault`` label) stands for, else None.

    Ids may carry leading zeros ("018"); names may be written in any case and with "-" for "_".
    """
    word = word.strip()
    if word.isascii() and word.isdigit():
        word = str(int(word))
        return word if word in catalog.all_ids() else None
    slug = word.lower().replace("-", "_")
    for fault in catalog.FAULTS + catalog.HEALTH_CHECKS:
        if slug in (fault.slug, fault.id):
            return fault.id
    return None


def fault_list(text: str) -> frozenset[str]:
    """``--critical``/``--warning``/``--ignore``: comma-separated fault ids or names of the catalogue, as ids."""
    found = set()
    for word in (part.strip() for part in text.split(",")):
        if not word:
            continue
        fault_id = fault_of(word)
        if fault_id is None:
            numbered = sorted((f for f in catalog.FAULTS if f.documented), key=catalog.fault_order)
            raise type_error("not_a_fault", value=repr(word), first=numbered[0].id, last=numbered[-1].id,
                             example=next(f.slug for f in numbered if len(f.platforms) > 1))
        found.add(fault_id)
    return frozenset(found)


def add_evaluation_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("host evidence")
    group.add_argument("--path.rootfs", dest="rootfs", default="/", metavar="DIR",
                       help="root of the host to check: / for this machine, or a copy of another host's files")
    group.add_argument("--ampcli.run-from-rootfs", dest="ampcli_run_from_rootfs", action="store_true",
                       help="run the ampcli found under a --path.rootfs other than / (it runs as this user: "
                       "only for a tree nobody else can write); without it the connector's status is not asked")
    group.add_argument("--ampcli.status-file", dest="ampcli_status_file", type=non_empty, metavar="FILE",
                       help="read a saved 'ampcli status' output (as a support bundle holds it) instead of "
                       "running ampcli")
    group.add_argument("--ampcli-timeout", type=positive_float, default=5.0, metavar="SECONDS",
                       help="how long 'ampcli status' may take (default: %(default)s)")
    group.add_argument("--definitions-max-age", type=positive_float, default=Settings().definitions_max_age_days,
                       metavar="DAYS",
                       help="virus definitions older than this are stale (default: %(default)s)")
    group.add_argument("--min-available-memory", type=positive_float, default=256, metavar="MIB",
                       help="below this MemAvailable, low memory is named as a cause of fault 7 (default: %(default)s)")
    group.add_argument("--file-module", action="append", dest="file_modules", metavar="NAME",
                       help="kernel module that does file monitoring (repeatable; default: "
                       + ", ".join(DEFAULTS.file_modules) + ")")
    group.add_argument("--network-module", action="append", dest="network_modules", metavar="NAME",
                       help="kernel module that does network monitoring (repeatable; default: "
                       + ", ".join(DEFAULT_NETWORK_MODULES) + ")")
    # Facts about the connector that no public source confirms (docs/connector-facts.md): settings.
    assumed = parser.add_argument_group("connector facts not confirmed by public sources (see docs/connector-facts.md)")
    assumed.add_argument("--connector-version-element", action="append", dest="version_elements", metavar="NAME",
                         type=non_empty,
                         help="element of global.xml that holds the connector version (repeatable, in order of "
                         "preference; default: " + ", ".join(DEFAULTS.version_elements) + ")")
    assumed.add_argument("--definitions-dir", action="append", dest="definitions_dirs", metavar="DIR", type=non_empty,
                         help="folder searched for ClamAV .cvd/.cld files, relative to the root (repeatable; "
                         "default: /opt/cisco/amp, and on macOS also /Library/Application Support/Cisco)")
    assumed.add_argument("--bpf-process", action="append", dest="bpf_processes", metavar="NAME", type=non_empty,
                         help="process that holds the connector's eBPF programs (repeatable; default: "
                         + ", ".join(DEFAULTS.bpf_processes) + ")")
    group.add_argument("--connector.unit", dest="connector_unit", default=DEFAULTS.connector_unit, metavar="UNIT",
                       type=unit_name, help="the connector's systemd service, whose cgroup names its processes "
                       "(default: %(default)s)")
    assumed.add_argument("--selinux-module", default=DEFAULTS.selinux_module, metavar="NAME", type=non_empty,
                         help="the connector's SELinux policy module (default: %(default)s)")
    assumed.add_argument("--orbital-client", action="append", dest="orbital_clients", metavar="PREFIX", type=non_empty,
                         help="Full Disk Access client (bundle id or path prefix) that counts as Cisco Orbital "
                         "(repeatable; default: " + ", ".join(DEFAULTS.orbital_clients) + ")")


def settings_from(args: argparse.Namespace, disabled: frozenset[str] = frozenset(),
                  ampcli_timeout: float | None = None) -> Settings:
    unknown = disabled - set(COLLECTORS)
    if unknown:
        raise ValueError(f"unknown collector {sorted(unknown)[0]!r}")
    return Settings(
        ampcli_timeout=ampcli_timeout if ampcli_timeout is not None else args.ampcli_timeout,
        network_modules=tuple(args.network_modules or DEFAULT_NETWORK_MODULES),
        file_modules=tuple(args.file_modules or DEFAULTS.file_modules),
        min_available_mib=int(args.min_available_memory),
        definitions_max_age_days=args.definitions_max_age,
        disabled_collectors=disabled,
        version_elements=tuple(args.version_elements or DEFAULTS.version_elements),
        definitions_dirs=tuple(args.definitions_dirs or ()),
        bpf_processes=tuple(args.bpf_processes or DEFAULTS.bpf_processes),
        selinux_module=args.selinux_module,
        connector_unit=args.connector_unit,
        orbital_clients=tuple(args.orbital_clients or DEFAULTS.orbital_clients),
        ampcli_status_file=os.path.abspath(args.ampcli_status_file) if args.ampcli_status_file else "",
    )
