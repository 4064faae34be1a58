"""Virus definition files (ClamAV CVD/CLD): build time and integrity.

A CVD starts with a 512-byte ASCII header
``ClamAV-VDB:<time>:<version>:<sigs>:<flevel>:<md5>:<dsig>:<builder>:<stime>``
(space padded); for a ``.cvd`` the MD5 of everything after the header must
equal ``<md5>``. A ``.cld`` is the unpacked local form whose body changes with
incremental updates, so only its header is checked.
"""

from __future__ import annotations

import contextlib
import stat
from collections.abc import MutableMapping
from typing import NamedTuple

from ..catalog import Platform
from ..host import Host
from ..messages import reason_of, said
from ..walk import WalkCache, walk
from . import Collector, ascii_number

HEADER_SIZE = 512
ROOTS = {
    Platform.LINUX: ("opt/cisco/amp",),
    Platform.MACOS: ("opt/cisco/amp", "Library/Application Support/Cisco"),
}
MAX_DEPTH = 6
MAX_ENTRIES = 1_000_000  # files and folders below one root; the walk's time is bounded by the deadline
SUFFIXES = (".cvd", ".cld")
DAY = 86400.0
FUTURE_TOLERANCE = DAY  # clocks and time zones differ; more than a day ahead is impossible


MD5_MISMATCH = "MD5 of the body does not match its header"
HEADER_ONLY = "file holds a header and nothing else"


class HeaderError(ValueError):
    pass


class CvdHeader(NamedTuple):
    time: str
    version: int
    signatures: int
    flevel: int
    md5: str
    builder: str
    build_time: float | None  # seconds since the epoch


class DefinitionFile(NamedTuple):
    rel: str
    path: str  # as shown on the host
    size: int
    mtime_ns: int
    header: CvdHeader | None
    header_error: str | None
    # With size and mtime, what tells a replaced file apart: mtime can be set back, inode and ctime cannot.
    ino: int = 0
    ctime_ns: int = 0


class DefinitionsFacts(NamedTuple):
    files: tuple[DefinitionFile, ...]

    def newest_build_time(self, now: float) -> float | None:
        """The newest build time that is possible at ``now``: a date in the future proves nothing."""
        times = [t for t in self._build_times() if t <= now + FUTURE_TOLERANCE]
        return max(times) if times else None

    def future_dated(self, now: float) -> list[tuple[str, float]]:
        """(path, build time) of files that claim to be built more than a day after ``now``."""
        return [(f.path, f.header.build_time) for f in self.files
                if f.header and f.header.build_time and f.header.build_time > now + FUTURE_TOLERANCE]

    def _build_times(self) -> list[float]:
        return [f.header.build_time for f in self.files if f.header and f.header.build_time]


def parse_header(raw: bytes) -> CvdHeader:
    """Parse a CVD header; anything else raises ``HeaderError``."""
    if not raw.startswith(b"ClamAV-VDB:"):
        raise HeaderError(said("cvd_no_header"))
    try:
        text = raw[:HEADER_SIZE].decode("ascii").rstrip(" \x00\n")
    except UnicodeDecodeError:
        raise HeaderError(said("cvd_not_ascii")) from None
    fields = text.split(":")
    if len(fields) < 9:
        raise HeaderError(said("cvd_fields", count=len(fields)))
    try:
        version, sigs, flevel = int(fields[2]), int(fields[3]), int(fields[4])
    except ValueError:
        raise HeaderError(said("cvd_numbers")) from None
    md5 = fields[5].lower()
    return CvdHeader(fields[1], version, sigs, flevel, md5, fields[7], _build_time(fields[1], fields[8]))


def _build_time(time_text: str, stime: str) -> float | None:
    if ascii_number(stime.strip(), 12):
        return float(stime.strip())
    from datetime import datetime  # rarely needed: most headers carry stime

    try:
        return datetime.strptime(time_text.strip(), "%d %b %Y %H-%M %z").timestamp()
    except ValueError:
        return None


def probe(host: Host, platform: Platform, roots: tuple[str, ...] = (),
          walks: dict[str, WalkCache] | None = None) -> DefinitionsFacts:
    """Every CVD/CLD below ``roots`` (default: the connector's folders; where the connector keeps
    them is not public, so the folders are a setting). ``walks`` keeps each root's folder listings
    for the next probe (a long-running exporter), so only folders that changed are listed again."""
    files: list[DefinitionFile] = []
    for root in [r.strip("/") for r in roots or ROOTS[platform]]:
        if not host.is_dir(root):
            continue
        cache = walks.setdefault(root, WalkCache()) if walks is not None else None
        for folder in walk(host, root, MAX_DEPTH, keep=_is_definition, cache=cache, limit=MAX_ENTRIES):
            files.extend(_read(host, f"{folder.rel}/{name}") for name in folder.files)
            files.extend(_read(host, rel) for rel in _linked_files(host, folder.rel, folder.links))
    return DefinitionsFacts(tuple(files))


def _is_definition(name: str) -> bool:
    return name.endswith(SUFFIXES)


def _linked_files(host: Host, rel: str, links: tuple[str, ...]) -> list[str]:
    """The links named like definition files that lead (inside the root) to a regular file."""
    found = []
    for name in links:
        if _is_definition(name):
            with contextlib.suppress(FileNotFoundError):  # a dangling link holds no definitions
                if stat.S_ISREG(host.stat(f"{rel}/{name}").st_mode):
                    found.append(f"{rel}/{name}")
    return found


def _read(host: Host, rel: str) -> DefinitionFile:
    st = host.stat(rel)
    try:
        header: CvdHeader | None = parse_header(host.read_head(rel, HEADER_SIZE))
        error = None
    except HeaderError as problem:
        header, error = None, reason_of(problem) or str(problem)
    return DefinitionFile(rel, host.display(rel), st.st_size, st.st_mtime_ns, header, error, st.st_ino,
                          st.st_ctime_ns)


def integrity_problem(host: Host, item: DefinitionFile, cache: MutableMapping[str, str]) -> str | None:
    """Why the file fails its integrity check, or None when it passes.

    Verdicts are cached per (path, size, mtime, inode, ctime) so no file is hashed twice, and a file
    swapped in with the old size and mtime is hashed again.
    """
    if item.header is None:
        return item.header_error
    if not item.rel.endswith(".cvd"):
        return None
    key = f"{item.path}|{item.size}|{item.mtime_ns}|{item.ino}|{item.ctime_ns}"
    if key in cache:
        return cache[key] or None
    import hashlib  # only when a file must actually be hashed

    digest = hashlib.md5(usedforsecurity=False)
    with host.open_regular(item.rel) as handle:
        handle.seek(HEADER_SIZE)
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    problem = "" if digest.hexdigest() == item.header.md5 else MD5_MISMATCH
    if item.size <= HEADER_SIZE:
        problem = HEADER_ONLY
    cache[key] = problem
    return problem or None


COLLECTOR = Collector("definitions",
                      lambda p: probe(p.host, p.platform, p.settings.definitions_dirs, p.cache.definitions))
