"""The server's connections: capped, and closed when they hold a place without sending a request, so idle
or slow clients cannot use up threads and file descriptors."""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import time

from .logs import kv

log = logging.getLogger("secure_endpoint_exporter")
FD_RESERVE = 32  # descriptors kept for the evaluation and the listeners when the open-file limit is low


class Connection:
    __slots__ = ("busy", "since", "sock")

    def __init__(self, sock: socket.socket, since: float) -> None:
        self.sock = sock
        self.since = since  # when it began waiting for its current request
        self.busy = False  # a complete request is being answered


class ConnectionLimiter:
    """Caps open connections and closes those that hold a place without sending a request.

    Every connection costs a thread and a file descriptor; without a cap, some 1,000 idle sockets
    exhaust the usual limit of 1,024 descriptors and the real scrape cannot even be accepted. A
    connection is *waiting* from its accept (TLS handshake, headers, body) and again between
    keep-alive requests, and *busy* from a complete request until the answer is written.

    - A waiting connection is closed once it has waited ``read_timeout`` in all, however slowly it
      trickles bytes; the socket timeout alone would start again at every byte.
    - When the cap is reached, a new connection evicts the oldest waiting one instead of being
      refused. A client that parks sockets cannot lock the scraper out: the scraper's request
      follows its connect within a millisecond and its connection is busy from then on, while an
      attacker would have to open ``max_connections`` new sockets within that millisecond.
    - Busy connections are never evicted: the scrape deadline and the socket timeout on writes
      bound them. Only when every place is busy is a new connection closed at once.
    """

    def __init__(self, max_connections: int, read_timeout: float) -> None:
        self.max_connections = max_connections
        self.read_timeout = read_timeout
        self._lock = threading.Lock()
        self._open: dict[int, Connection] = {}
        self._stop = threading.Event()
        self._reaper: threading.Thread | None = None

    def __len__(self) -> int:
        return len(self._open)

    def admit(self, sock: socket.socket) -> Connection | None:
        """Take ``sock`` on, evicting the oldest waiting connection when full; None: all places are busy."""
        with self._lock:
            if len(self._open) >= self.max_connections and not self._evict_oldest():
                return None
            connection = Connection(sock, time.monotonic())
            self._open[id(connection)] = connection
            return connection

    def evict_oldest(self) -> bool:
        with self._lock:
            return self._evict_oldest()

    def _evict_oldest(self) -> bool:
        waiting = [c for c in self._open.values() if not c.busy]
        if not waiting:
            return False
        self._drop(min(waiting, key=lambda c: c.since), "evicted to make room")
        return True

    def _drop(self, connection: Connection, why: str) -> None:
        """Under the lock. Its thread closes the socket only after ``release``, so the descriptor
        shut down here can never be one that was meanwhile reused for another connection."""
        del self._open[id(connection)]
        with contextlib.suppress(OSError):  # not SSLSocket.shutdown, which would also drop its TLS state
            socket.socket.shutdown(connection.sock, socket.SHUT_RDWR)
        log.debug("connection closed: %s", why, extra=kv(reason=why))

    def wrap(self, connection: Connection, context: ssl.SSLContext) -> ssl.SSLSocket:
        """The connection's socket wrapped for TLS (no handshake yet). Under the lock: once wrapped, the
        plain socket no longer owns the descriptor, and an eviction must never find it in between."""
        with self._lock:
            wrapped = context.wrap_socket(connection.sock, server_side=True, do_handshake_on_connect=False)
            connection.sock = wrapped
            return wrapped

    def busy(self, connection: Connection) -> None:
        with self._lock:
            connection.busy = True

    def waiting(self, connection: Connection) -> None:
        with self._lock:
            connection.busy = False
            connection.since = time.monotonic()

    def release(self, connection: Connection) -> None:
        with self._lock:
            self._open.pop(id(connection), None)

    def reap(self) -> None:
        limit = time.monotonic() - self.read_timeout
        with self._lock:
            for connection in [c for c in self._open.values() if not c.busy and c.since <= limit]:
                self._drop(connection, f"no complete request within {self.read_timeout:g} s")

    def start(self) -> None:
        if self._reaper is None:
            self._reaper = threading.Thread(target=self._reap_forever, name="reaper", daemon=True)
            self._reaper.start()

    def stop(self) -> None:
        self._stop.set()

    def _reap_forever(self) -> None:
        tick = min(0.5, max(0.05, self.read_timeout / 4))
        while not self._stop.wait(tick):
            self.reap()


def fd_room(wanted: int, reserve: int = FD_RESERVE) -> int:
    """``wanted`` connections, or fewer if the open-file limit leaves less room beside ``reserve``
    descriptors for the evaluation (ampcli pipes, files) and the listeners."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return wanted
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - reserve))
