"""Socket activation (``--web.systemd-socket``): the listening sockets systemd passes, as ``sd_listen_fds`` reads them.

systemd binds the ``ListenStream=`` of ``secure-endpoint-exporter.socket``, starts
the service with the sockets as descriptors 3, 4, ... and sets ``LISTEN_FDS``
(how many), ``LISTEN_PID`` (the process they are meant for) and
``LISTEN_FDNAMES``. The variables are removed from the environment once read,
as ``sd_listen_fds(1)`` does, so no child (``ampcli``) takes them for its own,
and the descriptors are made non-inheritable. Anything else than listening TCP
sockets (IPv4 or IPv6) is refused with a one-line reason.
"""

from __future__ import annotations

import os
import socket
from collections.abc import MutableMapping

from ..checks.evidence import ascii_number

LISTEN_FDS_START = 3  # SD_LISTEN_FDS_START
MAX_FDS = 64  # far more than anyone lists in ListenStream=; a larger count is a broken environment
VARIABLES = ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES")


class SocketActivationError(Exception):
    """systemd passed no usable socket; the message says why in one line."""


def listen_sockets(environ: MutableMapping[str, str] | None = None,
                   pid: int | None = None) -> list[tuple[socket.socket, str]]:
    """(socket, name) for each listening socket systemd passed to this process.

    Raises ``SocketActivationError`` when none was passed (not started by a .socket unit), when
    they were meant for another process, or when one of them is not a listening TCP socket.
    """
    env = os.environ if environ is None else environ
    count_text, pid_text, names_text = (env.get(name) for name in VARIABLES)
    for name in VARIABLES:
        env.pop(name, None)
    own = os.getpid() if pid is None else pid
    if count_text is None:
        raise SocketActivationError("--web.systemd-socket: systemd passed no socket (LISTEN_FDS is not set); start "
                                    "the exporter through secure-endpoint-exporter.socket, or use "
                                    "--web.listen-address instead")
    if pid_text is None or not ascii_number(pid_text.strip(), 10) or int(pid_text) != own:  # not "²": int() fails
        raise SocketActivationError(f"--web.systemd-socket: the sockets were passed to process {pid_text!r} "
                                    f"(LISTEN_PID), not to this one ({own})")
    if not ascii_number(count_text.strip(), 4) or not 1 <= int(count_text) <= MAX_FDS:
        raise SocketActivationError(f"--web.systemd-socket: LISTEN_FDS is {count_text!r}, not a number of sockets "
                                    f"from 1 to {MAX_FDS}; check ListenStream= in the .socket unit")
    count = int(count_text)
    names = (names_text or "").split(":") if names_text else []
    found: list[tuple[socket.socket, str]] = []
    for index in range(count):
        fd = LISTEN_FDS_START + index
        name = names[index] if index < len(names) else ""
        found.append((_listening(fd, name), name))
    return found


def _listening(fd: int, name: str) -> socket.socket:
    shown = f"descriptor {fd}" + (f" ({name})" if name else "")
    try:
        sock = socket.socket(fileno=fd)
    except OSError as error:
        raise SocketActivationError(f"--web.systemd-socket: {shown} is not a socket: "
                                    f"{error.strerror or error}") from None
    problem = None
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        problem = f"is an {sock.family.name} socket; only TCP over IPv4 or IPv6 (ListenStream=[address:]port) is served"
    elif sock.type != socket.SOCK_STREAM:
        problem = "is not a stream socket: use ListenStream=, not ListenDatagram="
    elif hasattr(socket, "SO_ACCEPTCONN") and not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        problem = "is not listening: the .socket unit needs Accept=no (the default)"
    if problem is not None:
        sock.detach()  # leave the descriptor as it was; the exporter exits anyway
        raise SocketActivationError(f"--web.systemd-socket: {shown} {problem}")
    os.set_inheritable(fd, False)
    return sock
