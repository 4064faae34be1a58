"""The macOS kit: the payload of the installer package, its scripts, and the Full Disk Access profile.

A Mac is needed to make the ``.pkg`` itself (pkgbuild, productbuild, productsign, the notary
service), so this builds on any host everything that goes into it, laid out as it installs, and a
``build-pkg.sh`` that turns the kit into a (signed) package on a Mac. docs/macos.md has the rollout.

Outputs in the dist folder:

- ``secure-endpoint-monitoring-<version>-macos.tar.gz``: ``payload/`` (the contents of the program's
  folder), ``scripts/`` (preinstall, postinstall), ``distribution.xml``, ``build-pkg.sh`` and the profile;
- the PPPC profile, for upload to the MDM. By default it is
  ``secure-endpoint-monitoring-fda-grants-all-apple-python3.mobileconfig``: Full Disk Access for every
  launchd job on the Mac that runs Apple's python3, which the file name says on purpose (docs/macos.md
  weighs it). ``--fda-identifier ID --fda-requirement REQ`` makes the profile for an interpreter of
  your own instead, ``secure-endpoint-monitoring-fda-<ID>.mobileconfig``; ``--profile-only`` writes
  just that profile.

The program lives in ``/Library/Application Support/secure-endpoint-monitoring``: root-owned all the
way up (``/usr/local`` may belong to a Homebrew user, and the daemon runs what is there as root),
outside what SIP protects, kept by macOS upgrades. The package installs into that folder alone
(``pkgbuild --install-location``), so its payload holds no system folder whose owner or mode Installer
could change; postinstall copies the launch daemon's plist from ``launchd/`` into
``/Library/LaunchDaemons``. ``lib/arm64`` and ``lib/x86_64`` hold the dependencies as pip installs
them for Python 3.9 on each architecture (psutil and PyYAML publish no universal2 wheels), with this
project's own wheel.

Standalone: ``python3 pkg/macos_pkg.py --dist dist --wheel dist/<wheel>``.
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import plistlib
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "macos"
LOCK = HERE / "requirements.lock"
PLIST = HERE.parent / "deploy" / "launchd" / "com.github.secure-endpoint-monitoring.exporter.plist"

HOME = "/Library/Application Support/secure-endpoint-monitoring"
IDENTIFIER = "com.github.secure-endpoint-monitoring"
LABEL = PLIST.stem
COMPONENT = "secure-endpoint-monitoring-component.pkg"
COMMANDS = ("check_secure_endpoint", "secure-endpoint-exporter")
PROFILE_IDENTIFIER = f"{IDENTIFIER}.fda"
# The interpreter that reads TCC.db for the daemon by default: the Command Line Tools' Python.app
# (docs/macos.md). A grant to it covers every launchd job that runs that Python, hence the name.
PYTHON_BUNDLE = "com.apple.python3"
PYTHON_REQUIREMENT = 'identifier "com.apple.python3" and anchor apple'
BROAD_PROFILE_NAME = "secure-endpoint-monitoring-fda-grants-all-apple-python3.mobileconfig"

PYTHON_VERSION = "3.9"
# pip widens each tag to the older macOS releases and to universal2 wheels.
PLATFORMS = {"arm64": "macosx_11_0_arm64", "x86_64": "macosx_10_15_x86_64"}
EXECUTABLE = 0o755
REGULAR = 0o644


def substitute(text: str, version: str, **extra: str) -> str:
    """Fill a template's @NAME@ fields; one left unfilled is a mistake in the template."""
    fields = {"VERSION": version, "HOME": HOME, "LABEL": LABEL, "IDENTIFIER": IDENTIFIER, "COMPONENT": COMPONENT,
              **extra}
    for key, value in fields.items():
        text = text.replace(f"@{key}@", value)
    leftover = re.findall(r"@[A-Z]+@", text)
    if leftover:
        raise ValueError(f"unfilled template fields: {sorted(set(leftover))}")
    return text


def write(path: Path, text: str, mode: int = REGULAR) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def pip_install(target: Path, wheel: Path, platform: str, pip: list[str]) -> None:
    """Our wheel and its dependencies as pip would install them on a Mac's Python 3.9.

    The dependencies at the versions and hashes of pkg/requirements.lock, as in the .deb and the .rpm;
    binary wheels only (nothing is compiled here), no byte code (the Mac's own Python writes it at
    install time), no console scripts (the package has its own launchers).
    """
    command = [*pip, "install", "--quiet", "--disable-pip-version-check", "--no-compile", "--no-deps",
               "--target", str(target), "--only-binary=:all:", "--platform", platform, "--python-version",
               PYTHON_VERSION, "--implementation", "cp", "--abi", f"cp{PYTHON_VERSION.replace('.', '')}",
               "--abi", "abi3", "--abi", "none"]
    for args in (["--require-hashes", "-r", str(LOCK)], [str(wheel)]):
        done = subprocess.run([*command, *args], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"pip could not fetch the macOS wheels for {platform}:\n{done.stderr.strip()}")
    shutil.rmtree(target / "bin", ignore_errors=True)
    for cache in list(target.rglob("__pycache__")):
        shutil.rmtree(cache)


def slug(identifier: str) -> str:
    """An identifier or a path as one safe file-name and profile-identifier part."""
    part = re.sub(r"[^A-Za-z0-9.-]+", "-", identifier).strip("-.")
    if not part:
        raise ValueError(f"{identifier!r} cannot name a profile")
    return part


def profile_name(grant_identifier: str = PYTHON_BUNDLE) -> str:
    """The profile's file name: the broad default says what it grants; another names its program."""
    if grant_identifier == PYTHON_BUNDLE:
        return BROAD_PROFILE_NAME
    return f"secure-endpoint-monitoring-fda-{slug(grant_identifier)}.mobileconfig"


def pppc_profile(identifier: str | None = None, grant_identifier: str = PYTHON_BUNDLE,
                 requirement: str = PYTHON_REQUIREMENT) -> bytes:
    """A PPPC profile granting Full Disk Access to one program: Apple's python3 unless told otherwise.

    ``grant_identifier`` is a bundle identifier, or the full path of a program outside any app bundle
    (PPPC's ``path`` type); ``requirement`` is that program's designated requirement (``codesign -dr -``).
    The UUIDs derive from the profile identifier: every build gives the same profile, so the MDM
    replaces it rather than installing a second one. The default identifier is the same for the broad
    grant as before and gains the program's name for any other grant, so the two are separate profiles.
    """
    if not requirement.strip():
        raise ValueError("a Full Disk Access grant needs the program's code requirement (codesign -dr -)")
    broad = grant_identifier == PYTHON_BUNDLE
    if identifier is None:
        identifier = PROFILE_IDENTIFIER if broad else f"{PROFILE_IDENTIFIER}.{slug(grant_identifier)}"

    def stable(name: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_DNS, name)).upper()

    grant = {
        "Identifier": grant_identifier,
        "IdentifierType": "path" if grant_identifier.startswith("/") else "bundleID",
        "CodeRequirement": requirement,
        "Allowed": True,
        "StaticCode": False,
        "Comment": "secure-endpoint-monitoring reads TCC.db and MDMOverrides.plist (faults 3, 15, 17)",
    }
    if broad:
        title = "Full Disk Access for EVERY launchd job running Apple's python3 (Secure Endpoint monitoring)"
        description = ("Grants Full Disk Access to Apple's Command Line Tools python3 as such: the monitoring's "
                       "launch daemon, and any other launch daemon or launch agent on this Mac that runs that "
                       "Python, including one a local user writes. Read docs/macos.md before deploying.")
    else:
        title = f"Full Disk Access for {grant_identifier} (Secure Endpoint monitoring)"
        description = (f"Grants Full Disk Access to the program {grant_identifier} signed as required, which "
                       "the monitoring uses to read which apps have Full Disk Access (TCC.db).")
    policy: dict[str, Any] = {
        "PayloadType": "com.apple.TCC.configuration-profile-policy",
        "PayloadIdentifier": f"{identifier}.tcc",
        "PayloadUUID": stable(f"{identifier}.tcc"),
        "PayloadVersion": 1,
        "PayloadDisplayName": title,
        "Services": {"SystemPolicyAllFiles": [grant]},
    }
    profile: dict[str, Any] = {
        "PayloadType": "Configuration",
        "PayloadIdentifier": identifier,
        "PayloadUUID": stable(identifier),
        "PayloadVersion": 1,
        "PayloadScope": "System",
        "PayloadDisplayName": title,
        "PayloadDescription": description,
        "PayloadContent": [policy],
    }
    return plistlib.dumps(profile, fmt=plistlib.FMT_XML, sort_keys=True)


def stage(kit: Path, wheel: Path, version: str,
          grant: tuple[str, str] = (PYTHON_BUNDLE, PYTHON_REQUIREMENT)) -> Path:
    """Write the kit, unpacked, into ``kit`` (a new folder); returns it.

    ``payload/`` is what lands in HOME, nothing above it: no system folder is in the package.
    """
    pip = [sys.executable, "-m", "pip"]
    home = kit / "payload"
    for command in COMMANDS:
        write(home / "bin" / command, substitute((TEMPLATES / "launcher.sh").read_text(), version, NAME=command),
              EXECUTABLE)
    write(home / "libexec" / "launch.py", (TEMPLATES / "launch.py").read_text())
    write(home / "libexec" / "python.sh", (TEMPLATES / "python.sh").read_text())
    write(home / "uninstall.sh", substitute((TEMPLATES / "uninstall.sh").read_text(), version), EXECUTABLE)
    write(home / "VERSION", f"{version}\n")
    with ThreadPoolExecutor(len(PLATFORMS)) as pool:  # mostly waiting on the network: both at once
        jobs = [pool.submit(pip_install, home / "lib" / arch, wheel, platform, pip)
                for arch, platform in PLATFORMS.items()]
        for job in jobs:
            job.result()
    write(home / "launchd" / PLIST.name, PLIST.read_text())
    for script in ("preinstall", "postinstall"):
        write(kit / "scripts" / script, substitute((TEMPLATES / "scripts" / script).read_text(), version), EXECUTABLE)
    write(kit / "distribution.xml", substitute((TEMPLATES / "distribution.xml").read_text(), version))
    write(kit / "build-pkg.sh", substitute((TEMPLATES / "build-pkg.sh").read_text(), version), EXECUTABLE)
    write_profile(kit, grant)
    return kit


def _normalise(info: tarfile.TarInfo, mtime: int) -> tarfile.TarInfo:
    """root:wheel, fixed time, 0755 for folders and executables and 0644 for the rest."""
    info.uid = info.gid = 0
    info.uname, info.gname = "root", "wheel"
    info.mtime = mtime
    if info.isdir() or (info.isfile() and info.mode & 0o100):
        info.mode = EXECUTABLE
    elif info.isfile():
        info.mode = REGULAR
    return info


def archive(kit: Path, tarball: Path) -> Path:
    """A reproducible tarball of the kit (SOURCE_DATE_EPOCH for the time when set)."""
    mtime = int(os.environ.get("SOURCE_DATE_EPOCH", time.time()))
    paths = sorted(kit.rglob("*"))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in [kit, *paths]:
            info = tar.gettarinfo(str(path), arcname=str(Path(kit.name) / path.relative_to(kit)))
            info = _normalise(info, mtime)
            if info.isfile():
                with path.open("rb") as data:
                    tar.addfile(info, data)
            else:
                tar.addfile(info)
    tarball.write_bytes(gzip.compress(buffer.getvalue(), mtime=mtime))
    return tarball


def write_profile(dist_dir: Path, grant: tuple[str, str] = (PYTHON_BUNDLE, PYTHON_REQUIREMENT)) -> Path:
    """The PPPC profile for ``grant`` (identifier, code requirement) in dist_dir; returns its path."""
    dist_dir.mkdir(parents=True, exist_ok=True)
    profile = dist_dir / profile_name(grant[0])
    profile.write_bytes(pppc_profile(grant_identifier=grant[0], requirement=grant[1]))
    return profile


def build(dist_dir: Path, wheel: Path, version: str,
          grant: tuple[str, str] = (PYTHON_BUNDLE, PYTHON_REQUIREMENT)) -> list[Path]:
    """Write the macOS kit tarball and the PPPC profile into dist_dir; returns their paths."""
    dist_dir.mkdir(parents=True, exist_ok=True)
    name = f"secure-endpoint-monitoring-{version}-macos"
    with tempfile.TemporaryDirectory() as tmp:
        kit = stage(Path(tmp) / name, wheel.resolve(), version, grant=grant)
        tarball = archive(kit, dist_dir / f"{name}.tar.gz")
    return [tarball, write_profile(dist_dir, grant)]


def version_of(wheel: Path) -> str:
    """The version in a wheel's file name (name-version-python-abi-platform.whl)."""
    parts = wheel.name.split("-")
    if len(parts) < 5 or not wheel.name.endswith(".whl"):
        raise ValueError(f"{wheel.name} is not a wheel's file name")
    return parts[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the macOS kit (payload, scripts, PPPC profile).")
    parser.add_argument("--dist", type=Path, required=True, help="folder to write the kit and the profile into")
    parser.add_argument("--wheel", type=Path, help="this project's wheel (needed unless --profile-only)")
    parser.add_argument("--version", help="package version (default: the wheel's)")
    parser.add_argument("--fda-identifier", metavar="ID",
                        help="grant Full Disk Access to this bundle identifier, or to this full path for a program "
                             "outside an app bundle, instead of Apple's python3 (docs/macos.md)")
    parser.add_argument("--fda-requirement", metavar="REQ",
                        help="the designated requirement of that program, as codesign -dr - prints it after "
                             "'designated => ' (needed with --fda-identifier)")
    parser.add_argument("--profile-only", action="store_true", help="write only the PPPC profile")
    args = parser.parse_args(argv)
    if (args.fda_identifier is None) != (args.fda_requirement is None):
        parser.error("--fda-identifier and --fda-requirement go together")
    if args.wheel is None and not args.profile_only:
        parser.error("--wheel is needed unless --profile-only")
    grant = (args.fda_identifier or PYTHON_BUNDLE, args.fda_requirement or PYTHON_REQUIREMENT)
    try:
        if args.profile_only:
            outputs = [write_profile(args.dist, grant)]
        else:
            outputs = build(args.dist, args.wheel, args.version or version_of(args.wheel), grant)
        for path in outputs:
            print(path)
    except (RuntimeError, ValueError, OSError) as error:
        print(f"macos_pkg: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
