"""Kernel monitoring evidence: the running release, loaded modules, Secure Boot, the build headers and BTF, and
the same of the newest installed kernel, which the next boot runs."""

from __future__ import annotations

import contextlib
import functools
import re
from typing import NamedTuple

from ..host import DeadlineExceeded, Host, HostError
from ..messages import os_reason, said
from . import Collector, lines
from .system import kernel_release

# ampfsm and ampavflt are named in Cisco's Linux fault table (faults 8 and 9); redirfs with avflt is what
# older connectors load (Cisco's Linux primer). The list is a setting: --file-module.
FILE_MODULES = ("ampfsm", "redirfs", "avflt", "ampavflt")
DEFAULT_NETWORK_MODULES = ("ampnetworkflow",)
SECURE_BOOT_VAR = "sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"
# Kernels that carry BTF type information (which CO-RE eBPF programs need instead of headers) show it here.
BTF_VMLINUX = "sys/kernel/btf/vmlinux"
BTF_CONFIG = "CONFIG_DEBUG_INFO_BTF=y"
MODULES_DIR = "lib/modules"
MAX_KERNELS = 4096  # folders in lib/modules: a handful on a real host


class KernelFacts(NamedTuple):
    release: str | None  # the running kernel's, from proc (None: not readable)
    modules: frozenset[str]
    secure_boot: bool | None  # None: not an EFI system or not readable
    headers_path: str | None  # as shown on the host; None without a kernel release
    headers_present: bool | None  # None: not known (see headers_error)
    headers_error: str = ""
    btf: bool | None = None  # the kernel carries BTF; None: neither sys nor the boot config tells
    # The newest installed kernel when it is not the running one (the next boot's, as bootloaders default to
    # the newest): its release, whether its headers are there, whether it carries BTF (its boot config).
    next_release: str | None = None
    next_headers_path: str | None = None
    next_headers_present: bool | None = None
    next_btf: bool | None = None
    next_error: str = ""  # why the installed kernels, or the next one's headers, could not be read


def probe(host: Host) -> KernelFacts:
    """Read on its own (the release too): a kernel verdict never waits on the system collector."""
    release = kernel_release(host)
    text = host.read_text("proc/modules", limit=4 << 20)
    modules = frozenset(line.split()[0] for line in lines(text) if line.strip())
    headers_path = headers_present = None
    error = said("no_kernel_release")
    if release and "/" not in release:
        rel = f"lib/modules/{release}/build"
        headers_path = host.display(rel)
        try:
            headers_present = host.is_dir(rel)
        except PermissionError:
            error = said("permission_denied", path=headers_path)  # a 0700 lib/modules/<release> is not "missing"
        except OSError as problem:
            error = said("path_error", path=headers_path, reason=os_reason(problem))
    # BTF matters only when the headers are not known to be there (fault 11): else the boot config is not read.
    return KernelFacts(release, modules, _secure_boot(host), headers_path, headers_present, error,
                       None if headers_present else _btf(host, release), *_next_kernel(host, release))


def compare_releases(a: str, b: str) -> int:
    """-1, 0 or 1 as ``a`` is older than, as old as or newer than ``b``: rpm's version comparison (rpmvercmp),
    which orders a RHEL update (``553.5.1.el8_10``) after its GA kernel (``553.el8_10``), where ``sort -V``
    does not, and Debian's and Ubuntu's kernel releases by their numbers. Written here as no PyPI library
    offers rpm's comparison (rpm's own bindings are not on PyPI); kernels use none of its ``~``/``^``."""
    left, right = _SEGMENT.findall(a), _SEGMENT.findall(b)
    for x, y in zip(left, right):
        order = _segment_order(x, y)
        if order:
            return order
    return (len(left) > len(right)) - (len(left) < len(right))  # what has segments left over is newer


def _segment_order(x: str, y: str) -> int:
    if x.isdigit() and y.isdigit():  # by value, without int(): a name may hold thousands of digits
        x_key, y_key = _number_key(x), _number_key(y)
        return (x_key > y_key) - (x_key < y_key)
    if x.isdigit() or y.isdigit():
        return 1 if x.isdigit() else -1  # a number is newer than letters
    return (x > y) - (x < y)


def _number_key(digits: str) -> tuple[int, str]:
    value = digits.lstrip("0") or "0"
    return len(value), value


_SEGMENT = re.compile(r"[0-9]+|[A-Za-z]+")  # ASCII only: rpm's segments; anything else separates them
release_order = functools.cmp_to_key(compare_releases)


def flavour(release: str) -> str:
    """What stays of a release without its numbers: the kernel's kind, which an update keeps and the next
    boot keeps too (``generic``, ``lowlatency``, ``cloud-amd``; ``+debug``, ``rt``, ``uek`` beside the RHEL
    kernel): another kind installed beside it is not the default one. A RHEL minor's ``el8_7`` is the
    same kind as ``el8``, and Debian's backports (``6.6.13+bpo-amd64``) as their base (``6.1.0-18-amd64``)."""
    return re.sub(r"-+", "-", re.sub(r"[0-9._]|\+bpo", "", release)).strip("-")


def newer_kernel(host: Host, running: str) -> str | None:
    """The newest kernel of the running one's kind that is newer than it and installed: a folder in
    ``lib/modules`` and its ``vmlinuz`` there (the RHEL family and Fedora) or in ``boot``
    (``vmlinuz-<release>``: every distribution); a folder alone is what a removed kernel often leaves
    (extra modules). Only those candidates are looked at, newest first."""
    kind = flavour(running)
    candidates = [name for name in host.listdir(MODULES_DIR, limit=MAX_KERNELS)
                  if "/" not in name and name.isprintable() and not name.startswith(".")
                  and flavour(name) == kind and compare_releases(name, running) > 0]
    for name in sorted(candidates, key=release_order, reverse=True):
        if host.exists(f"{MODULES_DIR}/{name}/vmlinuz") or host.exists(f"boot/vmlinuz-{name}"):
            return name
    return None


def _next_kernel(host: Host, running: str | None) -> tuple[str | None, str | None, bool | None, bool | None, str]:
    """The newest installed kernel, its headers path and presence and its BTF, when it is newer than
    ``running`` (an older one boots only by choice; the running kernel's own image may be gone already)."""
    if running is None:
        return None, None, None, None, said("no_kernel_release")
    try:
        newest = newer_kernel(host, running)
    except DeadlineExceeded:
        raise  # the evaluation's time is up: the whole collector ends, as for any read
    except OSError as problem:  # no lib/modules at all included: which kernels are installed is not known
        return None, None, None, None, _problem(host, MODULES_DIR, problem)
    if newest is None:
        return None, None, None, None, ""  # only a newer kernel of its kind is one the next boot starts
    rel = f"{MODULES_DIR}/{newest}/build"
    try:
        present: bool | None = host.is_dir(rel)
        error = ""
    except DeadlineExceeded:
        raise
    except OSError as problem:
        present, error = None, _problem(host, rel, problem)
    return newest, host.display(rel), present, None if present else _config_btf(host, newest), error


def _btf(host: Host, release: str | None) -> bool | None:
    """``sys/kernel/btf/vmlinux`` (the live kernel's), else ``CONFIG_DEBUG_INFO_BTF`` in its boot config."""
    with contextlib.suppress(OSError):  # unreadable sys: the boot config may still tell
        if host.exists(BTF_VMLINUX):
            return True
    if not release or "/" in release:
        return None
    return _config_btf(host, release)


def _config_btf(host: Host, release: str) -> bool | None:
    """``CONFIG_DEBUG_INFO_BTF`` in the kernel's config (``boot/config-<release>``, else the RHEL family's
    copy in ``lib/modules/<release>/config``); None when neither can be read."""
    for rel in (f"boot/config-{release}", f"{MODULES_DIR}/{release}/config"):
        try:
            config = host.read_optional(rel)
        except DeadlineExceeded:
            raise
        except OSError:
            continue
        if config is not None:
            return any(line.strip() == BTF_CONFIG for line in lines(config))
    return None


def _secure_boot(host: Host) -> bool | None:
    """The EFI SecureBoot variable: 4 attribute bytes, then one data byte (1 = on)."""
    try:
        data = host.read_head(SECURE_BOOT_VAR, 5)
    except OSError:
        return None
    if len(data) < 5:
        return None
    return data[4] == 1


def _problem(host: Host, rel: str, problem: OSError) -> str:
    """Why a path could not be read, naming the path that failed (a folder below ``rel`` too)."""
    if isinstance(problem, HostError):
        return str(problem)
    return said("path_error", path=problem.filename or host.display(rel), reason=os_reason(problem))


COLLECTOR = Collector("kernel", lambda p: probe(p.host))
