"""Programs started under the root: run with a hard timeout, their output bounded, every descendant reaped,
and all of them ended on SIGTERM, SIGHUP or Ctrl-C.

Each program gets its own process group, so a hung shell script and its children are killed together; as
a child subreaper (``adopt_orphans``) this process also collects what escaped the group (``setsid``).

The stop signals (SIGTERM, SIGHUP, Ctrl-C) end the programs in flight, then the run unwinds once, without a
traceback.

Python's default for SIGTERM kills the process on the spot: an ``ampcli`` it started keeps running,
orphaned, and nothing is logged. Its default for Ctrl-C raises ``KeyboardInterrupt`` wherever the
code is, a second Ctrl-C raises it again inside the clean-up, and both end in a traceback. After
``handle_stop_signals``, the first SIGTERM, SIGHUP or SIGINT kills every program ``start_program`` started
and raises ``Stopped`` in the main thread (``start_program`` raises it itself when the signal lands
between its fork and the new program's registration); the entry points catch it and end with their
own line. Any further one while stopping is ignored, and so is one that arrives while the plugin
writes its verdict. SIGHUP's default would kill the process as SIGTERM's does (a closed terminal, a
``kill -HUP``): the plugin and ``--once`` stop on it like on SIGTERM; the server reloads its web
config instead (``exporter.server``), as exporter-toolkit's users expect.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from types import FrameType
from typing import NamedTuple

from .host import MAX_READ, HostError
from .messages import said

MAX_LATE_READS = 64  # reads of output already waiting when a program's time is up (64 KiB each)
EXIT_POLL = 0.05  # seconds between looks at a program's exit where no pidfd tells it


class CommandResult(NamedTuple):
    returncode: int
    stdout: bytes
    stderr: bytes
    truncated: bool


class CommandTimeout(HostError):
    pass


class ProgramRefused(HostError):
    """A program under a root other than / that the operator did not allow to run."""


def start_program(program: str, args: list[str], shown: str, deadline: float | None = None) -> Running:
    """Start ``program`` (a path on this machine; ``shown``: as the operator knows it) in a process group
    of its own, with a plain environment; ``deadline`` bounds its ``result``."""
    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        _children.starting += 1  # a stop signal now waits until the program is registered (handle_stop_signals)
    try:
        with _children.lock:  # a sweep running meanwhile must not take the new program for a stray
            if _children.stop_signal:  # asked under the lock: end_programs, holding it, then sees all
                raise _stopping(in_main)
            proc = subprocess.Popen(
                [program, *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"},
            )
            _children.started.add(proc.pid)
    except Exception:
        if in_main and _children.stop_signal:  # the signal that waited for this start
            raise Stopped(_children.stop_signal) from None
        raise
    finally:
        if in_main:
            _children.starting -= 1
    running = Running(proc, shown, deadline)
    if _children.stop_signal:  # stopped while it started (here, or in the main thread meanwhile)
        running.kill()
        raise _stopping(in_main)
    return running


class Running:
    """A started program: its output is read, bounded, until it exits or the deadline passes."""

    def __init__(self, proc: subprocess.Popen[bytes], shown: str, deadline: float | None = None) -> None:
        self.proc = proc
        self.shown = shown
        self.started = time.monotonic()
        self.deadline = deadline  # the evaluation's own, when it comes before the program's timeout
        self.ended = False

    def result(self, timeout: float, max_output: int = MAX_READ) -> CommandResult:
        """Wait at most ``timeout`` seconds from the start; past that the program is killed and this raises."""
        proc = self.proc
        until = self.started + timeout
        why = said("no_answer", program=self.shown, seconds=f"{timeout:g}")
        if self.deadline is not None and self.deadline < until:
            until = self.deadline
            why = said("no_answer_left", program=self.shown, seconds=f"{max(until - self.started, 0.0):.1f}")
        try:
            out, err = _read_bounded(proc, until, max_output)
        except subprocess.TimeoutExpired:
            self.kill()
            raise CommandTimeout(why) from None
        except BaseException:
            self.kill()
            raise
        self.kill()  # whatever it left behind in its group or session goes too
        return CommandResult(proc.returncode, bytes(out[:max_output]), bytes(err[:4096]), len(out) > max_output)

    def kill(self) -> None:
        """End the program, its group and any stray it left; only the first call does anything."""
        if self.ended:
            return
        self.ended = True
        _kill_group(self.proc)
        with _children.lock:
            _children.started.discard(self.proc.pid)
        if _children.adopting:
            reap_strays()


# -- descendants that leave the process group ---------------------------------
class _Children:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started: set[int] = set()  # programs started by start_program and not yet killed
        self.adopting = False
        self.stop_signal = 0  # the stop signal that arrived (stop_programs), 0 while none has
        self.starting = 0  # start_program calls of the main thread between Popen and registration


_children = _Children()
PR_SET_CHILD_SUBREAPER = 36
MAX_REAP_ROUNDS = 20


def adopt_orphans() -> bool:
    """Make this process a child subreaper (Linux), so ``setsid prog &`` cannot outlive a timeout.

    The orphans of the programs we start (ampcli's background children, in
    their own session) are re-parented to us instead of init, and every
    program's end kills them. Only the plugin's and exporter's entry points
    call this: a library caller may have children of its own.
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    _children.adopting = libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    return _children.adopting


def reap_strays() -> int:
    """Kill and reap our children that no running program accounts for; how many there were."""
    killed = 0
    for _round in range(MAX_REAP_ROUNDS):
        with _children.lock:
            try:
                strays = [pid for pid in _direct_children() if pid not in _children.started]
            except OSError:
                return killed
        if not strays:
            break
        for pid in strays:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        for pid in strays:
            _wait_briefly(pid)
        killed += len(strays)
    return killed


class Stopped(BaseException):
    """A stop signal arrived (handle_stop_signals); a BaseException so that no ``except Exception`` of a
    probe swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signal_name = signal.Signals(signum).name


def stop_programs(signum: int) -> bool:
    """Kill every program ``start_program`` started and not yet ended, with its group, and start none from
    now on; True when the main thread is inside ``start_program``, which then raises ``Stopped`` itself
    once its program is registered (and killed).

    Safe in a signal handler: it takes no lock (the main thread may hold ``_children.lock`` when the
    signal arrives), copying the set in one step instead. Reaping is left to the ``Running`` objects,
    whose waits end as the programs die.
    """
    _children.stop_signal = signum
    for pid in list(_children.started):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    return _children.starting > 0


def end_programs() -> None:
    """After a stop, just before the exit: kill what ``stop_programs`` could not reach.

    A scrape's thread may have been inside ``start_program`` when the signal came, its program not yet
    registered, or a killed program's child may have been orphaned to us (the child subreaper). Taken
    under the lock, which ``start_program`` holds from fork to registration, so no start is half-done
    here; any later start refuses, since the stop is recorded. Not for a signal handler.
    """
    with _children.lock:
        pids = set(_children.started)
        with contextlib.suppress(OSError):
            pids.update(_direct_children())
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)  # a program we started leads its own group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)  # an orphan leads none
    for pid in pids:
        _wait_briefly(pid)


def stopping() -> bool:
    """Whether a stop signal arrived: an answer built meanwhile lacks what its killed programs said."""
    return _children.stop_signal != 0


def _stopping(in_main: bool) -> BaseException:
    """What ``start_program`` raises once stopping: ``Stopped`` in the main thread, where the entry points
    catch it; in a worker thread (a scrape) an error its collector reports, never a traceback."""
    if in_main:
        return Stopped(_children.stop_signal)
    return HostError("not started: the program is stopping")


def _direct_children() -> list[int]:
    """This process's children (the live kernel's, not the host under test's).

    ``/proc/self/task/*/children`` is a few small files; psutil would read the stat file of every
    process on the machine, three times a scrape. It is the fallback where those files are missing.
    """
    try:
        found: list[int] = []
        for task in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{task}/children", "rb") as handle:
                found += [int(pid) for pid in handle.read(1 << 20).split()]
        return found
    except (OSError, ValueError):
        import psutil

        try:
            return [child.pid for child in psutil.Process().children()]
        except psutil.Error as error:
            raise OSError(str(error)) from None


def _wait_briefly(pid: int, limit: float = 1.0) -> None:
    """Reap one killed child, giving up after ``limit`` seconds (a process stuck in the kernel)."""
    until = time.monotonic() + limit
    while time.monotonic() < until:
        try:
            done, _status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if done:
            return
        time.sleep(0.005)


def _read_bounded(proc: subprocess.Popen[bytes], deadline: float, cap: int) -> tuple[bytearray, bytearray]:
    """Both pipes until the program exits or they close, keeping at most ``cap`` bytes of each.

    The program's exit ends the wait: what it wrote by then is read, but a child it left running with
    the pipes open (``nohup prog &``) is not waited for; ``Running.kill`` ends that child. The exit is
    seen through a pidfd (Linux 5.3 and later); elsewhere the program is polled between reads.
    """
    assert proc.stdout is not None and proc.stderr is not None
    buffers = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    exit_fd = _pidfd(proc.pid)
    try:
        with selectors.DefaultSelector() as selector:
            for fd in buffers:
                selector.register(fd, selectors.EVENT_READ)
            if exit_fd is not None:
                selector.register(exit_fd, selectors.EVENT_READ)
            late_reads = 0
            while any(fd in buffers for fd in selector.get_map()):  # a pipe is still open
                # Past the deadline, output already written (or a pipe already closed) still counts:
                # reads go on while something is ready at once, a bounded number of times, so a program
                # that keeps writing cannot hold the caller.
                remaining = deadline - time.monotonic()
                wait = max(remaining, 0)
                if exit_fd is None:
                    wait = min(wait, EXIT_POLL)
                ready = selector.select(wait)
                if remaining <= 0:
                    if not ready or late_reads >= MAX_LATE_READS:
                        raise subprocess.TimeoutExpired(proc.args, 0)
                    late_reads += 1
                exited = exit_fd is None and proc.poll() is not None
                for key, _ in ready:
                    if key.fd == exit_fd:
                        exited = True
                        selector.unregister(exit_fd)
                    else:
                        _read_into(selector, key.fd, buffers[key.fd], cap)
                if exited:
                    # What it wrote before it exited is waiting in the pipes; whoever still holds them is
                    # not waited for.
                    for _ in range(MAX_LATE_READS):
                        ready = selector.select(0)
                        if not ready:
                            break
                        for key, _ in ready:
                            _read_into(selector, key.fd, buffers[key.fd], cap)
                    break
    finally:
        if exit_fd is not None:
            os.close(exit_fd)
    proc.wait(max(deadline - time.monotonic(), 0.001))
    return buffers[proc.stdout.fileno()], buffers[proc.stderr.fileno()]


def _read_into(selector: selectors.BaseSelector, fd: int, buffer: bytearray, cap: int) -> None:
    """One read of a ready pipe into ``buffer`` (at most ``cap`` + 1 bytes kept); at its end it is unregistered."""
    chunk = os.read(fd, 65536)
    if not chunk:
        selector.unregister(fd)
    elif len(buffer) <= cap:
        buffer += chunk[: cap + 1 - len(buffer)]


def _pidfd(pid: int) -> int | None:
    """A descriptor that becomes readable when the process exits (Linux 5.3+); None where there is none."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        return int(opener(pid))
    except OSError:  # an older kernel, or a seccomp filter that refuses the call
        return None


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        proc.communicate(timeout=1)


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def handle_stop_signals() -> None:
    """Install the handler (main thread only); a signal ignored by whoever started us stays ignored
    (a job in the background of a shell has SIGINT ignored)."""
    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _on_stop_signal)


def ignore_stop_signals() -> None:
    """From here on a stop signal changes nothing: the verdict is being written (a second line
    saying "stopped" after it would contradict it)."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def _on_stop_signal(signum: int, _frame: FrameType | None) -> None:
    ignore_stop_signals()
    if stop_programs(signum):
        return  # inside start_program, between fork and registration: it raises Stopped itself
    raise Stopped(signum)
