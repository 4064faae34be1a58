"""Which platform the root holds, its OS release, kernel and free memory."""

from __future__ import annotations

import re
from typing import NamedTuple

import distro

from checks.catalog import Platform
from checks.host import Host

MAC_VERSION_PLIST = "System/Library/CoreServices/SystemVersion.plist"
RHEL_FAMILY = {"rhel", "centos", "fedora", "rocky", "almalinux", "ol", "oracle", "amzn", "scientific", "cloudlinux"}
DEBIAN_FAMILY = {"debian", "ubuntu", "linuxmint", "raspbian", "pop", "elementary", "kali"}
SUSE_FAMILY = {"sles", "suse", "opensuse", "opensuse-leap", "opensuse-tumbleweed"}


class SystemFacts(NamedTuple):
    platform: Platform
    os_id: str  # "debian", "rhel", "macos", ...
    os_name: str
    os_version: str
    family: str  # "debian", "rhel", "suse", "macos" or ""
    kernel_release: str | None
    mem_available_bytes: int | None


def detect_platform(host: Host) -> Platform:
    return Platform.MACOS if host.exists(MAC_VERSION_PLIST) else Platform.LINUX


def probe(host: Host) -> SystemFacts:
    if detect_platform(host) is Platform.MACOS:
        return _macos(host)
    return _linux(host)


def _macos(host: Host) -> SystemFacts:
    import plistlib  # only macOS roots need it

    try:
        info = plistlib.loads(host.read_bytes(MAC_VERSION_PLIST))
    except (plistlib.InvalidFileException, ValueError) as error:
        raise ValueError(f"{host.display(MAC_VERSION_PLIST)} is not a valid plist ({error})") from None
    version = str(info.get("ProductVersion", "")) if isinstance(info, dict) else ""
    return SystemFacts(Platform.MACOS, "macos", "macOS", version, "macos", None, None)


def _linux(host: Host) -> SystemFacts:
    if host.live:
        dist = distro.LinuxDistribution(include_lsb=False, include_uname=False)
    else:
        dist = distro.LinuxDistribution(include_lsb=False, include_uname=False, root_dir=host.path("/"))
    os_id = dist.id()
    like = set(dist.like().split())
    family = ""
    for name, members in (("rhel", RHEL_FAMILY), ("debian", DEBIAN_FAMILY), ("suse", SUSE_FAMILY)):
        if os_id in members or like & members:
            family = name
            break
    release = host.read_optional("proc/sys/kernel/osrelease")
    return SystemFacts(
        Platform.LINUX, os_id, dist.name() or "Linux", dist.version(), family,
        release.strip() if release else None, _mem_available(host),
    )


def _mem_available(host: Host) -> int | None:
    text = host.read_optional("proc/meminfo")
    if text is None:
        return None
    match = re.search(r"^MemAvailable:\s+([0-9]{1,15})\s*kB", text, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else None


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
    return f"the kernel headers for {release}"
