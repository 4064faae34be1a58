"""Builds realistic host trees for ``--path.rootfs``: the tests' own fixture writer.

A ``LinuxTree`` starts as a bare Linux machine (os-release, kernel, proc);
methods add the connector and its parts one by one, and ``healthy()`` builds
a host where every check is clear. Faults are made by changing one part.

The connector's files copy the shapes public material shows (see
docs/connector-facts.md): the policy is a signed XML-Signature document with
every element in the xmldsig namespace, ``ampcli`` prints log noise before its
answer, and ``global.xml`` sits beside the policy.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
BOOT_ID = "4f8d1b52-0c1e-4b7e-9a53-2d7c0e5b6a11"  # every LinuxTree's proc/sys/kernel/random/boot_id
SCAN_ACCOUNT = "cisco-amp-scan-svc"
RELEASE = "5.14.0-362.8.1.el9_3.x86_64"

LOG_NOISE = "[logger] Set minimum reported log level to notice\n"
CONNECTOR_VERSION = "1.24.1.1234"
CONNECTOR_GUID = "5d1b9c1e-2f3a-4b5c-8d6e-7f8091a2b3c4"  # made up, in the form the cloud gives it
HEALTHY_STATUS = LOG_NOISE + """\
Status: Connected
Mode: Normal
Scan: Ready for scan
Last Scan: 2023-06-19 02:02:03 PM
Policy: Protect Policy for Linux (#1234)
Command-line: Enabled
Orbital: Disabled
Behavioural Protection: Protect
Faults: None
"""

OS_RELEASES = {
    "rhel": 'NAME="Red Hat Enterprise Linux"\nID="rhel"\nID_LIKE="fedora"\nVERSION_ID="9.3"\n',
    "ol": 'NAME="Oracle Linux Server"\nID="ol"\nID_LIKE="fedora"\nVERSION_ID="8.9"\n',
    "debian": 'NAME="Debian GNU/Linux"\nID=debian\nVERSION_ID="12"\n',
    "ubuntu": 'NAME="Ubuntu"\nID=ubuntu\nID_LIKE=debian\nVERSION_ID="22.04"\n',
    "rocky": 'NAME="Rocky Linux"\nID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.3"\n',
    "amzn2023": 'NAME="Amazon Linux"\nID="amzn"\nID_LIKE="fedora"\nVERSION_ID="2023"\n',
    "centos7": 'NAME="CentOS Linux"\nID="centos"\nID_LIKE="rhel fedora"\nVERSION_ID="7"\n',
}
# EL6 has no os-release: only these one-line release files (as CentOS 6 writes them).
EL6_RELEASE = "CentOS release 6.10 (Final)\n"


def faults_status(*faults: tuple[int, str, str], mode: str = "Degraded", status: str = "Connected") -> str:
    """An ``ampcli status`` text reporting the given (id, severity, text) faults, as the connector prints it:
    log noise, the fields, ``Faults:`` counting per severity, the ids, then one line per fault."""
    counts: dict[str, int] = {}
    for _, severity, _ in faults:
        counts[severity] = counts.get(severity, 0) + 1
    summary = ", ".join(f"{n} {sev}" for sev, n in counts.items()) or "None"
    lines = [f"Status: {status}", f"Mode: {mode}", "Scan: Ready for scan", "Last Scan: 2023-06-19 02:02:03 PM",
             "Policy: Audit Policy for FireAMP Linux (#1)", "Command-line: Enabled", "Orbital: Disabled",
             "Behavioural Protection: Protect", f"Faults: {summary}",
             "Fault IDs: " + ", ".join(str(f[0]) for f in faults)]
    lines += [f"ID {fid} - {sev}: {text}" for fid, sev, text in faults]
    return LOG_NOISE + "\n".join(lines) + "\n"


def about_output(version: str = CONNECTOR_VERSION) -> str:
    return LOG_NOISE + f"AMP for Endpoints Connector {version}\n"


def policy_output(updated: float | None = None) -> str:
    """``ampcli policy``: the definitions' version and when they were last updated (local time)."""
    when = time.localtime(updated if updated is not None else time.time() - 7200)
    return LOG_NOISE + (
        "Policy: Audit Policy for FireAMP Linux (#1)\n"
        "Definition Version: ClamAV daily.cvd 27100\n"
        f"Definitions Last Updated: {time.strftime('%Y-%m-%d %I:%M:%S %p', when)}\n"
        "Last Updated: 2023-06-19 02:02:03 PM\n"
    )


XMLDSIG = "http://www.w3.org/2000/09/xmldsig#"


def policy_document(file_monitoring: bool | None = True, device_flow: bool | None = True,
                    name: str = "Protect Policy for Linux", signed: bool = True) -> str:
    """A connector policy: by default the signed XML-Signature document the connector keeps, every
    element in the xmldsig default namespace; ``signed=False`` gives a bare ``<config>``."""
    protmode = "" if file_monitoring is None else f"<file>{int(file_monitoring)}</file>"
    nfm = "" if device_flow is None else f"<nfm><enable>{int(device_flow)}</enable></nfm>"
    config = (
        "<config>"
        "<janus><business><uuid>7f3a1c2e-0000-4000-8000-000000000001</uuid></business>"
        f"<policy><uuid>5c1e9d7a-0000-4000-8000-000000000002</uuid><name>{name}</name>"
        "<serial_number>1234</serial_number><updated>1687180000000</updated></policy></janus>"
        f"<agent><driver><protmode>{protmode}<process>1</process><qaction>0</qaction>"
        f"<activeexec>0</activeexec></protmode></driver>{nfm}</agent>"
        "<scansettings><clamav><enable>1</enable></clamav></scansettings>"
        "</config>"
    )
    if not signed:
        return config
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<Signature xmlns="{XMLDSIG}"><SignedInfo>'
        '<CanonicalizationMethod Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/>'
        f'<SignatureMethod Algorithm="{XMLDSIG}rsa-sha1"/><Reference URI="#policy">'
        f'<DigestMethod Algorithm="{XMLDSIG}sha1"/><DigestValue>q1Zl0c2lnbmVk</DigestValue></Reference>'
        "</SignedInfo><SignatureValue>c2lnbmF0dXJl</SignatureValue>"
        f'<Object Id="policy">{config}</Object></Signature>\n'
    )


def global_xml(version: str = CONNECTOR_VERSION) -> str:
    """global.xml: its version element's name is not public; this shape is an assumption."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<config><agent><version>{version}</version>'
            "<cloud><identity>ampcloud</identity></cloud></agent></config>\n")


def local_xml(guid: str = CONNECTOR_GUID) -> str:
    """local.xml: Cisco names /config/agent/uuid for the GUID; the rest of the file is left out."""
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<config><agent><uuid>{guid}</uuid></agent></config>\n'


def cvd_bytes(body: bytes = b"signatures" * 100, build_time: float | None = None, corrupt: bool = False) -> bytes:
    """A CVD file: 512-byte header with the body's MD5 (or a wrong one), then the body."""
    build = int(build_time if build_time is not None else time.time() - 3600)
    md5 = hashlib.md5(body).hexdigest()
    if corrupt:
        md5 = hashlib.md5(body + b"x").hexdigest()
    stamp = time.strftime("%d %b %Y %H-%M +0000", time.gmtime(build))
    header = f"ClamAV-VDB:{stamp}:27100:2048000:90:{md5}:dsig:cisco:{build}".encode()
    return header.ljust(512, b" ") + body


class Tree:
    """What every host tree has: a root folder and ways to write into it."""

    AMPCLI = "opt/cisco/amp/bin/ampcli"
    POLICY = "opt/cisco/amp/etc/policy.xml"
    GLOBAL = "opt/cisco/amp/etc/global.xml"
    LOCAL = "opt/cisco/amp/etc/local.xml"
    DEFINITIONS = "opt/cisco/amp/var/clamav"

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, rel: str, data: str | bytes, mode: int | None = None) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            data = data.encode()
        path.write_bytes(data)
        if mode is not None:
            path.chmod(mode)
        return path

    def append(self, rel: str, text: str) -> None:
        with open(self.root / rel, "a") as handle:
            handle.write(text)

    def remove(self, rel: str) -> None:
        path = self.root / rel
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)

    def symlink(self, rel: str, target: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() or path.exists():
            path.unlink()
        os.symlink(target, path)

    def chmod(self, rel: str, mode: int) -> None:
        (self.root / rel).chmod(mode)

    def ampcli(self, output: str | bytes = HEALTHY_STATUS, exit_code: int = 0, hang: float = 0.0,
               about: str | None = None, policy: str | None = None) -> None:
        """An ``ampcli`` script: ``status`` prints ``output`` (kept in a file beside it) or hangs;
        ``about`` and ``policy`` print theirs (by default a version and fresh definitions), or fail
        with exit 1 when given as ""."""
        self.write(f"{self.AMPCLI}.status", output)
        self.write(f"{self.AMPCLI}.about", about_output() if about is None else about)
        self.write(f"{self.AMPCLI}.policy", policy_output() if policy is None else policy)
        # One shell and one cat, as cheap as the real ampcli's single program: no subshell or
        # dirname, and cat takes the shell's place when nothing follows it.
        script = "#!/bin/sh\n"
        if hang:
            script += f"sleep {hang}\n"
        script += (
            'out="${0%/*}/ampcli.$1"\n'
            'if [ "$1" != status ] && [ ! -s "$out" ]; then echo "unknown command $1" >&2; exit 1; fi\n'
        )
        script += 'exec cat "$out"\n' if exit_code == 0 else f'cat "$out"\nexit {exit_code}\n'
        self.write(self.AMPCLI, script, mode=0o755)

    def policy(self, file_monitoring: bool | None = True, device_flow: bool | None = True,
               signed: bool = True) -> None:
        self.write(self.POLICY, policy_document(file_monitoring, device_flow, signed=signed))

    def global_config(self, version: str = CONNECTOR_VERSION, text: str | None = None) -> None:
        self.write(self.GLOBAL, global_xml(version) if text is None else text)

    def local_config(self, guid: str = CONNECTOR_GUID, text: str | None = None) -> None:
        self.write(self.LOCAL, local_xml(guid) if text is None else text)

    def definitions(self, name: str = "daily.cvd", corrupt: bool = False, build_time: float | None = None,
                    data: bytes | None = None) -> str:
        rel = f"{self.DEFINITIONS}/{name}"
        self.write(rel, data if data is not None else cvd_bytes(build_time=build_time, corrupt=corrupt))
        return rel


# Where each cgroup layout keeps the connector's unit (see checks.evidence.processes.CGROUP_ROOTS).
UNIT_CGROUPS = {
    "v2": "sys/fs/cgroup/system.slice/cisco-amp.service",
    "hybrid": "sys/fs/cgroup/unified/system.slice/cisco-amp.service",
    "v1": "sys/fs/cgroup/systemd/system.slice/cisco-amp.service",
}


class LinuxTree(Tree):
    def __init__(self, root: Path, distro: str = "rhel", release: str = RELEASE, cgroup: str | None = "v2") -> None:
        """``cgroup``: the layout in which systemd keeps the connector's unit (``UNIT_CGROUPS``), None for a host
        without systemd (EL6, a container): its processes are then found by listing proc."""
        super().__init__(root)
        self.release = release
        self.cgroup_layout = cgroup
        self.unit_cgroup = UNIT_CGROUPS[cgroup] if cgroup else None
        self.boot = time.time() - 86400
        self._pid = 1000
        self.write("etc/os-release", OS_RELEASES[distro])
        self.write("proc/sys/kernel/osrelease", release + "\n")
        self.write("proc/stat", f"cpu  1 2 3 4\nbtime {int(self.boot)}\n")
        # No proc/uptime: a tree's would stand still while the tests' processes start later; without it
        # the time since boot is worked out from btime, as in a copied tree.
        self.write("proc/sys/kernel/random/boot_id", BOOT_ID + "\n")
        self.write("proc/meminfo", "MemTotal:       16000000 kB\nMemAvailable:    8000000 kB\n")
        self.write("proc/modules", "xfs 2000000 2 - Live 0x0000000000000000\n")
        self.write("etc/passwd", "root:x:0:0:root:/root:/bin/bash\n")
        self.write("etc/group", "root:x:0:\n")
        self.write("etc/login.defs", "UID_MIN 1000\nUSERGROUPS_ENAB yes\n")
        self.process("systemd", pid=1)

    # -- parts -----------------------------------------------------------------
    def process(self, name: str, pid: int | None = None, started_ago: float = 3600.0, bpf_programs: int = 0,
                argv: list[str] | None = None, uid: int = 0, exe: str | None = None,
                in_unit: bool | None = None) -> int:
        """A process in ``proc/<pid>``: stat, status (its uids), comm, cmdline, the exe link (by default the
        connector's folder for its own names) and fd links; ``exe=""`` leaves the link out. ``in_unit``
        (by default for root's processes of the connector's names) lists it in the unit's cgroup as systemd
        would."""
        if pid is None:
            self._pid += 1
            pid = self._pid
        ticks = int((time.time() - started_ago - self.boot) * CLK_TCK)
        fields = [str(pid), f"({name[:15]})", "S", "1", str(pid), str(pid), "0", "-1", "4194560"]
        fields += ["0"] * 12 + [str(ticks)] + ["0"] * 30
        self.write(f"proc/{pid}/stat", " ".join(fields) + "\n")
        self.write(f"proc/{pid}/comm", name[:15] + "\n")
        self.write(f"proc/{pid}/status", f"Name:\t{name[:15]}\nState:\tS (sleeping)\nPid:\t{pid}\n"
                   f"Uid:\t{uid}\t{uid}\t{uid}\t{uid}\nGid:\t{uid}\t{uid}\t{uid}\t{uid}\n")
        if exe is None:
            exe = f"/opt/cisco/amp/bin/{name}" if name.startswith("amp") else f"/usr/bin/{name}"
        if exe:
            self.symlink(f"proc/{pid}/exe", exe)
        self.write(f"proc/{pid}/cmdline", "\0".join(argv or [f"/opt/cisco/amp/bin/{name}"]) + "\0")
        fd_dir = self.root / f"proc/{pid}/fd"
        fd_dir.mkdir(parents=True, exist_ok=True)
        for number in range(3):
            self.symlink(f"proc/{pid}/fd/{number}", "/dev/null")
        for number in range(bpf_programs):
            self.symlink(f"proc/{pid}/fd/{10 + number}", "anon_inode:bpf-prog")
        if (name.startswith("amp") and uid == 0 if in_unit is None else in_unit) and self.unit_cgroup:
            self.in_unit(pid)
        return pid

    def in_unit(self, pid: int, cgroup: str = "") -> None:
        """List ``pid`` in the unit's cgroup (``cgroup``: a child cgroup of it, as a service may make)."""
        assert self.unit_cgroup is not None, "a tree without systemd has no unit cgroup"
        procs = self.root / self.unit_cgroup / cgroup / "cgroup.procs"
        procs.parent.mkdir(parents=True, exist_ok=True)
        with open(procs, "a") as handle:
            handle.write(f"{pid}\n")
        # ... and the process's own view of it, as the kernel shows it for each layout
        path = "/system.slice/cisco-amp.service" + (f"/{cgroup}" if cgroup else "")
        own = {"v2": f"0::{path}\n", "hybrid": f"1:name=systemd:{path}\n0::{path}\n",
               "v1": f"3:cpu,cpuacct:/system.slice/cisco-amp.service\n1:name=systemd:{path}\n"}
        self.write(f"proc/{pid}/cgroup", own[self.cgroup_layout or "v2"])

    def start_entry(self, pid: int, started_ago: float) -> list[str | int]:
        """A scan service start as the state file keeps it: [boot id, pid, start ticks after boot]."""
        return [BOOT_ID, pid, int((time.time() - started_ago - self.boot) * CLK_TCK)]

    def kill(self, pid: int) -> None:
        shutil.rmtree(self.root / f"proc/{pid}")
        if self.unit_cgroup and (self.root / self.unit_cgroup).is_dir():  # systemd drops it from the cgroup too
            for procs in (self.root / self.unit_cgroup).rglob("cgroup.procs"):
                if procs.is_file() and not procs.is_symlink():
                    kept = [line for line in procs.read_text().split() if line != str(pid)]
                    procs.write_text("".join(f"{line}\n" for line in kept))

    def stop(self, name: str) -> None:
        """Every process of that name is gone."""
        for entry in list((self.root / "proc").iterdir()):
            comm = entry / "comm"
            if comm.exists() and comm.read_text().strip() == name:
                self.kill(int(entry.name))

    def scan_account(self, user: bool = True, group: bool = True) -> None:
        if user:
            self.append("etc/passwd", f"{SCAN_ACCOUNT}:x:990:990::/opt/cisco/amp:/sbin/nologin\n")
        if group:
            self.append("etc/group", f"{SCAN_ACCOUNT}:x:990:\n")

    def modules(self, *names: str) -> None:
        lines = [f"{name} 40960 1 - Live 0xffffffffc0a00000" for name in ("xfs", *names)]
        self.write("proc/modules", "\n".join(lines) + "\n")

    def kernel_headers(self, present: bool = True) -> None:
        """``lib/modules/<r>/build`` as an absolute symlink, resolved inside the root."""
        target = f"/usr/src/kernels/{self.release}"
        self.symlink(f"lib/modules/{self.release}/build", target)
        if present:
            (self.root / target.lstrip("/")).mkdir(parents=True, exist_ok=True)

    def btf(self, where: str = "sys") -> None:
        """A kernel with BTF: ``sys/kernel/btf/vmlinux`` (the live kernel's), or only its boot config's line;
        ``none``: a boot config that says the kernel has none."""
        if where == "sys":
            self.write("sys/kernel/btf/vmlinux", b"\x9f\xeb\x01\x00")  # BTF's magic, then nothing more
        elif where == "boot":
            self.write(f"boot/config-{self.release}", "CONFIG_BPF=y\nCONFIG_DEBUG_INFO_BTF=y\n")
        elif where != "none":
            raise ValueError(f"btf: {where!r} is none of sys, boot, none")
        else:
            self.write(f"boot/config-{self.release}", "CONFIG_BPF=y\n# CONFIG_DEBUG_INFO_BTF is not set\n")

    def el6(self) -> None:
        """CentOS 6: no os-release, the release in ``/etc/redhat-release`` and ``/etc/system-release``."""
        self.remove("etc/os-release")
        self.write("etc/redhat-release", EL6_RELEASE)
        self.write("etc/system-release", EL6_RELEASE)

    def secure_boot(self, on: bool) -> None:
        self.write("sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c",
                   b"\x06\x00\x00\x00" + (b"\x01" if on else b"\x00"))

    def selinux(self, enforcing: bool, module: str = "installed", store: str = "var/lib",
                policy_type: str = "targeted") -> None:
        """SELinux state; ``module`` is installed, missing or disabled."""
        self.write("sys/fs/selinux/enforce", "1" if enforcing else "0")
        self.write("etc/selinux/config", f"SELINUX=enforcing\nSELINUXTYPE={policy_type}\n")
        base = f"{store}/selinux/{policy_type}/active/modules"
        if (self.root / base).exists():
            shutil.rmtree(self.root / base)
        (self.root / base / "100" / "base").mkdir(parents=True, exist_ok=True)
        if module in ("installed", "disabled"):
            (self.root / base / "400" / "cisco-secure-bpf").mkdir(parents=True, exist_ok=True)
            self.write(f"{base}/400/cisco-secure-bpf/cil", "(allow unconfined_service_t self (bpf (prog_load)))")
        if module == "disabled":
            self.write(f"{base}/disabled/cisco-secure-bpf", "")

    def install_connector(self) -> None:
        self.write("opt/cisco/amp/bin/ampdaemon", "#!/bin/sh\n", mode=0o755)
        for rel in ("opt", "opt/cisco", "opt/cisco/amp", "opt/cisco/amp/bin", "opt/cisco/amp/etc",
                    "opt/cisco/amp/var"):
            (self.root / rel).mkdir(parents=True, exist_ok=True)
            (self.root / rel).chmod(0o755)

    def daemons(self, daemon_bpf: int = 4, scanner: bool = True) -> None:
        self.process("ampdaemon", bpf_programs=daemon_bpf)
        if scanner:
            self.process("ampscansvc", started_ago=1800)

    def healthy(self) -> LinuxTree:
        """A host where the connector runs and every check is clear."""
        self.install_connector()
        self.global_config()
        self.local_config()
        self.scan_account()
        self.ampcli()
        self.policy()
        self.kernel_headers()
        self.secure_boot(False)
        self.selinux(enforcing=True)
        self.modules("ampfsm", "ampnetworkflow")
        self.definitions("main.cvd")
        self.definitions("daily.cvd")
        self.daemons()
        return self



def pid_of(tree: LinuxTree, name: str) -> int:
    """The pid of the fixture process called ``name``."""
    for entry in (tree.root / "proc").iterdir():
        comm = entry / "comm"
        if comm.is_file() and comm.read_text().strip() == name:
            return int(entry.name)
    raise AssertionError(f"no {name} in the tree")
