"""Walks of the connector's folders that a long-running exporter repeats cheaply.

A folder's listing only changes when its own modification or change time
does, so a walk given the listings of the last one lists again only the
folders whose times moved; the others cost one ``stat`` each. Scrapes then
cost what the number of folders costs, not what the number of files does
(``/opt/cisco/amp`` may hold tens of thousands of files).

A listing is trusted only once the folder has been listed twice with the same
stamp and the same entries: a change within the same tick of the file
system's clock as the first listing could leave the times as they were (git
calls such entries "racily clean"), but not a change after the second one,
a scrape later. This asks nothing of the clocks: a file server's may differ
from ours. Setting the mtime back by hand moves the ctime, which is part of
the stamp too.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from typing import NamedTuple

from .host import Folder, Host, HostError
from .messages import said

MAX_ENTRIES = 1_000_000  # entries in all; a walk's time is bounded by the evaluation's deadline
MAX_LISTINGS = 200_000  # folders kept from walks cut short; past that only the last walk's


class Listing(NamedTuple):
    stamp: tuple[int, int, int, int]  # device, inode, mtime and ctime (ns) of the folder when listed
    folders: tuple[str, ...]
    files: tuple[str, ...]  # only the names the walk keeps
    links: tuple[str, ...]  # symbolic links, never followed by the walk (its caller may resolve them in the root)
    entries: int  # everything the folder held, for the walk's limit
    confirmed: bool  # the listing before this one had the same stamp and entries (see the module's docstring)


class Found(NamedTuple):
    rel: str
    status: os.stat_result  # the folder's own
    depth: int
    files: tuple[str, ...]
    links: tuple[str, ...]


class WalkCache:
    """The listings of one walk's folders, by path, for the next walk of the same folder.

    The whole dict is replaced when a walk ends, so two walks at once (an exporter's stuck
    evaluation beside a fresh one) never read each other's half-done work.
    """

    def __init__(self) -> None:
        self.listings: dict[str, Listing] = {}


class _Walk:
    """One walk below an open top folder.

    A folder is looked at with one ``stat`` by its path below the top; it is opened (one component at
    a time, no symlink followed) only to be listed, when its stamp is not that of a trusted listing.
    A path ``stat`` that a swapped-in symlink led elsewhere finds another inode, so a stamp never
    matches by mistake: the folder is then opened and listed the safe way.
    """

    def __init__(self, top: Folder, shown: str, max_depth: int, keep: Callable[[str], bool] | None,
                 old: dict[str, Listing], limit: int) -> None:
        self.top = top
        self.shown = shown  # the walk's top, as shown on the host
        self.max_depth = max_depth
        self.keep = keep
        self.old = old
        self.limit = limit
        self.fresh: dict[str, Listing] = {}
        self.found: list[Found] = []
        self.seen = 0
        self.denied: list[OSError] = []  # folders below the top that could not be listed, in walk order

    def visit(self, below: tuple[str, ...], rel: str, status: os.stat_result) -> None:
        depth = len(below)
        # The deepest folders are listed only for the files they may hold.
        listing = None
        try:
            if depth < self.max_depth or self.keep:
                listing, status = self.listing(below, rel, status)
            elif below:
                # Judged without a listing: its status must come from the folder itself, opened without
                # following a symlink, not from the path stat a swapped-in link could lead out of the root.
                with self.top.child(*below) as folder:
                    status = folder.status()
        except PermissionError as error:
            if not below:
                raise
            # Its mode is known from the folder above (what fault 5 judges), its content is not:
            # the walk goes on with the folders beside it, and says what it could not list.
            self.denied.append(PermissionError(error.errno, error.strerror, self.top.display(*below)))
            self.found.append(Found(rel, status, depth, (), ()))
            return
        self.found.append(Found(rel, status, depth, listing.files if listing else (), listing.links if listing else ()))
        if listing is None or depth >= self.max_depth:
            return
        for name in listing.folders:
            inner = (*below, name)
            self.top.host.tick()
            try:
                found = os.stat("/".join(inner), dir_fd=self.top.fd, follow_symlinks=False)
            except (FileNotFoundError, NotADirectoryError):
                continue  # removed since the listing
            except PermissionError as error:  # listed but not searchable: what is inside stays unread
                self.denied.append(PermissionError(error.errno, error.strerror, self.top.display(*inner)))
                continue
            except OSError as error:  # anything else is not "no folder" either: the walk fails, naming it
                raise OSError(error.errno, error.strerror, self.top.display(*inner)) from None
            if stat.S_ISDIR(found.st_mode):  # else replaced by something that is not a folder
                self.visit(inner, f"{rel}/{name}", found)

    def listing(self, below: tuple[str, ...], rel: str, status: os.stat_result) -> tuple[Listing, os.stat_result]:
        """The folder's listing, and its status (from the descriptor, when it had to be opened)."""
        listing = self.old.get(rel)
        if listing is None or listing.stamp != _stamp(status) or not listing.confirmed:
            before = listing
            with self.top.child(*below) as folder:
                status = folder.status()  # before the listing: a change during it shows next time
                folders, files, links, entries = [], [], [], 0
                for entry in folder.scan(self.limit):
                    entries += 1
                    if self.seen + entries > self.limit:
                        break  # said below
                    if entry.is_symlink():
                        links.append(entry.name)
                    elif entry.is_dir(follow_symlinks=False):
                        folders.append(entry.name)
                    elif self.keep is not None and self.keep(entry.name):
                        files.append(entry.name)
            listing = Listing(_stamp(status), tuple(sorted(folders)), tuple(sorted(files)), tuple(sorted(links)),
                              entries, False)
            if before is not None and before._replace(confirmed=False) == listing:
                listing = listing._replace(confirmed=True)
        self.seen += listing.entries
        if self.seen > self.limit:
            raise HostError(said("too_many_below", limit=self.limit, path=self.shown))
        self.fresh[rel] = listing
        return listing, status


def _stamp(status: os.stat_result) -> tuple[int, int, int, int]:
    return status.st_dev, status.st_ino, status.st_mtime_ns, status.st_ctime_ns


def walk(host: Host, rel: str, max_depth: int, keep: Callable[[str], bool] | None = None,
         cache: WalkCache | None = None, limit: int = MAX_ENTRIES) -> list[Found]:
    """Every folder from ``rel`` down to ``max_depth`` levels below it, top first, with the files ``keep``
    wants. Symlinked folders are not entered: a walk stays in the tree. A folder that cannot be listed
    raises (permission denied is not "empty").

    With a ``cache``, unchanged folders are not listed again. A walk cut short (the deadline, an
    unreadable folder) still leaves what it listed, so the next one goes on from there.
    """
    found, denied = walk_partly(host, rel, max_depth, keep, cache, limit)
    if denied:
        raise denied[0]
    return found


def walk_partly(host: Host, rel: str, max_depth: int, keep: Callable[[str], bool] | None = None,
                cache: WalkCache | None = None, limit: int = MAX_ENTRIES) -> tuple[list[Found], list[OSError]]:
    """As ``walk``, but a folder below ``rel`` that cannot be listed (permission denied) is reported with
    its status (known from the folder above) and no content, and the walk goes on beside it: partial
    evidence of bad modes still proves them. The errors come second."""
    old = cache.listings if cache is not None else {}
    state: _Walk | None = None
    complete = False
    try:
        with host.folder(rel) as top:
            state = _Walk(top, host.display(rel), max_depth, keep, old, limit)
            state.visit((), rel.strip("/"), top.status())
        complete = not state.denied
    except PermissionError as error:
        if state is not None:
            raise
        # The top itself cannot be entered: its own status may still be known from the folder above.
        return [Found(rel.strip("/"), host.stat(rel), 0, (), ())], [error]
    finally:
        if cache is not None and state is not None:
            kept = state.fresh if complete else {**old, **state.fresh}
            cache.listings = kept if len(kept) <= MAX_LISTINGS else state.fresh
    return state.found, state.denied
