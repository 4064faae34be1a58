"""Which platform the root holds, its OS release, kernel and free memory."""

from __future__ import annotations

import contextlib
import shlex
import sys
from typing import NamedTuple

from ..catalog import Platform
from ..host import Host, HostError
from ..messages import printable, said
from . import Collector, ascii_number, lines

MAC_VERSION_PLIST = "System/Library/CoreServices/SystemVersion.plist"
RHEL_FAMILY = {"rhel", "centos", "fedora", "rocky", "almalinux", "ol", "oracle", "amzn", "scientific", "cloudlinux"}
DEBIAN_FAMILY = {"debian", "ubuntu", "linuxmint", "raspbian", "pop", "elementary", "kali"}
SUSE_FAMILY = {"sles", "suse", "opensuse", "opensuse-leap", "opensuse-tumbleweed"}
OS_RELEASE_FILES = ("etc/os-release", "usr/lib/os-release")  # the order os-release(5) gives
# EL6 and older have no os-release, only these one-line files ("CentOS release 6.10 (Final)").
RELEASE_FILES = ("etc/redhat-release", "etc/system-release")
RELEASE_NAMES = (("red hat enterprise linux", "rhel"), ("centos", "centos"), ("oracle linux", "ol"),
                 ("scientific linux", "scientific"), ("amazon linux", "amzn"), ("cloudlinux", "cloudlinux"),
                 ("fedora", "fedora"))
NORMALISED_IDS = {"ol": "oracle", "opensuse-leap": "opensuse"}  # as the distro package names them


class SystemFacts(NamedTuple):
    platform: Platform
    os_id: str  # "debian", "rhel", "macos", ...
    os_name: str
    os_version: str
    family: str  # "debian", "rhel", "suse", "macos" or ""
    kernel_release: str | None
    mem_available_bytes: int | None


def detect_platform(host: Host) -> Platform:
    """A root with macOS's version plist is a Mac; when that cannot be told, the machine we run on decides."""
    try:
        return Platform.MACOS if host.exists(MAC_VERSION_PLIST) else Platform.LINUX
    except OSError:
        return Platform.MACOS if sys.platform == "darwin" else Platform.LINUX


def probe(host: Host) -> SystemFacts:
    if detect_platform(host) is Platform.MACOS:
        return _macos(host)
    return _linux(host)


def _macos(host: Host) -> SystemFacts:
    from .macapp import load_plist  # only macOS roots need it

    info = load_plist(host.read_bytes(MAC_VERSION_PLIST), host.display(MAC_VERSION_PLIST))
    version = printable(str(info.get("ProductVersion", "")))
    return SystemFacts(Platform.MACOS, "macos", "macOS", version, "macos", None, None)


def _linux(host: Host) -> SystemFacts:
    fields = os_release(host)
    raw_id = fields.get("ID", "linux").lower().replace(" ", "_")
    os_id = NORMALISED_IDS.get(raw_id, raw_id)
    like = set(fields.get("ID_LIKE", "").lower().split())
    family = ""
    for name, members in (("rhel", RHEL_FAMILY), ("debian", DEBIAN_FAMILY), ("suse", SUSE_FAMILY)):
        if os_id in members or raw_id in members or like & members:
            family = name
            break
    release = kernel_release(host)
    return SystemFacts(  # the host's strings, sanitised where they enter
        Platform.LINUX, printable(os_id), printable(fields.get("NAME") or "Linux"),
        printable(fields.get("VERSION_ID", "")), family, printable(release) if release is not None else None,
        _mem_available(host),
    )


def kernel_release(host: Host) -> str | None:
    """The running kernel's release, from ``proc`` (the kernel collector reads it too, on its own)."""
    found = host.read_optional("proc/sys/kernel/osrelease")
    return found.strip() if found else None


def os_release(host: Host) -> dict[str, str]:
    """The first os-release file's fields, read through the rooted host; on EL6 and older, which have
    none, the same fields from ``/etc/redhat-release`` or ``/etc/system-release``.

    The ``distro`` package is not used: it opens the file itself, following a
    symlink out of the root to the machine running the check.
    """
    for rel in OS_RELEASE_FILES:
        text = host.read_optional(rel)
        if text is not None:
            return parse_os_release(text)
    for rel in RELEASE_FILES:
        text = host.read_optional(rel)
        if text is not None and text.strip():
            return parse_release_line(text)
    raise HostError(said("no_os_release", first=host.display(OS_RELEASE_FILES[0]),
                         second=host.display(OS_RELEASE_FILES[1])))


def parse_os_release(text: str) -> dict[str, str]:
    """``KEY=value`` lines, values quoted as in a shell; lines that do not parse are skipped."""
    fields = {}
    for line in lines(text):
        key, sep, value = line.strip().partition("=")
        if not sep or not _is_key(key):
            continue
        with contextlib.suppress(ValueError):
            words = shlex.split(value, comments=False, posix=True)
            fields[key] = words[0] if len(words) == 1 else " ".join(words)
    return fields


def parse_release_line(text: str) -> dict[str, str]:
    """'CentOS release 6.10 (Final)' as os-release fields: ID, NAME, VERSION_ID, and ID_LIKE of the family
    that writes such a file (Red Hat's)."""
    name, _, rest = lines(text.strip())[0].partition(" release ")
    words = rest.split()
    lowered = name.lower()
    os_id = next((known for prefix, known in RELEASE_NAMES if lowered.startswith(prefix)), "linux")
    return {"ID": os_id, "NAME": name.strip()[:64], "VERSION_ID": words[0] if words else "", "ID_LIKE": "rhel"}


def _is_key(key: str) -> bool:
    """An os-release key: an upper-case ASCII letter, then upper-case letters, digits and ``_`` (64 at most)."""
    return len(key) <= 64 and key.isascii() and key[:1].isalpha() and key == key.upper() and \
        key.replace("_", "").isalnum()


def _mem_available(host: Host) -> int | None:
    """``MemAvailable:   8000000 kB`` from meminfo, in bytes."""
    text = host.read_optional("proc/meminfo")
    if text is None:
        return None
    for line in lines(text):
        if line.startswith("MemAvailable:"):
            number, _, unit = line[len("MemAvailable:"):].strip().partition(" ")
            if unit.strip() == "kB" and ascii_number(number, 15):
                return int(number) * 1024
    return None


def headers_package(family: str, release: str) -> str:
    """The package that provides the running kernel's build headers on this distribution."""
    if "uek" in release:
        return f"kernel-uek-devel-{release}"
    if family == "rhel":
        return f"kernel-devel-{release}"
    if family == "debian":
        return f"linux-headers-{release}"
    if family == "suse":
        return "kernel-default-devel"
    return said("headers_any_package", release=release)


COLLECTOR = Collector("system", lambda p: probe(p.host))
