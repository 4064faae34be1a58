"""Kernel monitoring evidence: the running release, loaded modules, Secure Boot, the build headers and BTF."""

from __future__ import annotations

import contextlib
from typing import NamedTuple

from checks.evidence import lines
from checks.evidence.system import kernel_release
from checks.host import Host
from checks.messages import os_reason, said

# ampfsm and ampavflt are named in Cisco's Linux fault table (faults 8 and 9); redirfs with avflt is what
# older connectors load (Cisco's Linux primer). The list is a setting: --file-module.
FILE_MODULES = ("ampfsm", "redirfs", "avflt", "ampavflt")
DEFAULT_NETWORK_MODULES = ("ampnetworkflow",)
SECURE_BOOT_VAR = "sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"
# Kernels that carry BTF type information (which CO-RE eBPF programs need instead of headers) show it here.
BTF_VMLINUX = "sys/kernel/btf/vmlinux"
BTF_CONFIG = "CONFIG_DEBUG_INFO_BTF=y"


class KernelFacts(NamedTuple):
    release: str | None  # the running kernel's, from proc (None: not readable)
    modules: frozenset[str]
    secure_boot: bool | None  # None: not an EFI system or not readable
    headers_path: str | None  # as shown on the host; None without a kernel release
    headers_present: bool | None  # None: not known (see headers_error)
    headers_error: str = ""
    btf: bool | None = None  # the kernel carries BTF; None: neither sys nor the boot config tells


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
                       None if headers_present else _btf(host, release))


def _btf(host: Host, release: str | None) -> bool | None:
    """``sys/kernel/btf/vmlinux`` (the live kernel's), else ``CONFIG_DEBUG_INFO_BTF`` in its boot config."""
    with contextlib.suppress(OSError):  # unreadable sys: the boot config may still tell
        if host.exists(BTF_VMLINUX):
            return True
    if not release or "/" in release:
        return None
    try:
        config = host.read_optional(f"boot/config-{release}")
    except OSError:
        return None
    if config is None:
        return None
    return any(line.strip() == BTF_CONFIG for line in lines(config))


def _secure_boot(host: Host) -> bool | None:
    """The EFI SecureBoot variable: 4 attribute bytes, then one data byte (1 = on)."""
    try:
        data = host.read_head(SECURE_BOOT_VAR, 5)
    except OSError:
        return None
    if len(data) < 5:
        return None
    return data[4] == 1
