"""Kernel monitoring evidence: loaded modules, Secure Boot and the kernel's build headers."""

from __future__ import annotations

from checks.host import Host
from checks.messages import os_reason, said
from checks.records import Record

# ampfsm and ampavflt are named in Cisco's Linux fault table (faults 8 and 9); redirfs with avflt is what
# older connectors load (Cisco's Linux primer). The list is a setting: --file-module.
FILE_MODULES = ("ampfsm", "redirfs", "avflt", "ampavflt")
DEFAULT_NETWORK_MODULES = ("ampnetworkflow",)
SECURE_BOOT_VAR = "sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"


class KernelFacts(Record):
    modules: frozenset[str]
    secure_boot: bool | None  # None: not an EFI system or not readable
    headers_path: str | None  # as shown on the host; None without a kernel release
    headers_present: bool | None  # None: not known (see headers_error)
    headers_error: str = ""


def probe(host: Host, release: str | None) -> KernelFacts:
    text = host.read_text("proc/modules", limit=4 << 20)
    modules = frozenset(line.split()[0] for line in text.splitlines() if line.strip())
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
    return KernelFacts(modules, _secure_boot(host), headers_path, headers_present, error)


def _secure_boot(host: Host) -> bool | None:
    """The EFI SecureBoot variable: 4 attribute bytes, then one data byte (1 = on)."""
    try:
        data = host.read_head(SECURE_BOOT_VAR, 5)
    except OSError:
        return None
    if len(data) < 5:
        return None
    return data[4] == 1
