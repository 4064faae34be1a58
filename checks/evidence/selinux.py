"""SELinux mode and whether the connector's ``cisco-secure-bpf`` policy module is active (fault 19)."""

from __future__ import annotations

from typing import NamedTuple

from ..host import Host
from . import Collector, lines

MODULE = "cisco-secure-bpf"
STORES = ("etc/selinux/{type}/active/modules", "var/lib/selinux/{type}/active/modules")


class SelinuxFacts(NamedTuple):
    enforcing: bool
    policy_type: str
    module_path: str | None  # where the module is installed, as shown on the host
    module_disabled: bool


def probe(host: Host, module: str = MODULE) -> SelinuxFacts:
    """SELinux's mode and where ``module`` (Cisco's name for it is a setting) is installed or disabled."""
    enforce = host.read_optional("sys/fs/selinux/enforce")
    config = host.read_optional("etc/selinux/config") or ""
    if enforce is None and not host.exists("sys"):
        # A tree copied without sys (a live host always has it): the mode it boots into, from its config.
        enforcing = _setting(config, "SELINUX") == "enforcing"
    else:
        enforcing = enforce is not None and enforce.strip() == "1"
    policy_type = _setting(config, "SELINUXTYPE") or "targeted"
    if not enforcing:
        return SelinuxFacts(False, policy_type, None, False)
    found: str | None = None
    disabled = False
    for template in STORES:
        store = template.format(type=policy_type)
        if not host.is_dir(store):
            continue
        for entry in host.listdir(store):
            if entry == "disabled":
                disabled = disabled or host.exists(f"{store}/disabled/{module}")
            elif host.is_dir(f"{store}/{entry}/{module}") and found is None:
                found = host.display(f"{store}/{entry}/{module}")
    return SelinuxFacts(True, policy_type, found, disabled)


def _setting(config: str, name: str) -> str:
    """``<name>=<value>`` from the text of ``/etc/selinux/config`` (the first line that gives one); "" without."""
    for line in lines(config):
        key, sep, value = line.partition("=")
        if sep and key.strip() == name:
            value = value.lstrip()
            end = next((i for i, c in enumerate(value) if not (c.isascii() and (c.isalnum() or c in "_.-"))),
                       len(value))
            if end:
                return value[:end]
    return ""


COLLECTOR = Collector("selinux", lambda p: probe(p.host, p.settings.selinux_module))
