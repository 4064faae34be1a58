"""Log lines as node_exporter writes them: one line per event, logfmt (the default) or JSON.

``--log.format logfmt`` (go-kit and Prometheus's own style)::

    ts=2024-05-01T12:00:00.123Z level=info caller=main.py:180 msg="listening on [::]:9982 (TLS off)" tls=false

``--log.format json``: one object per line with the same keys. The keys are
``ts`` (RFC 3339, milliseconds, UTC), ``level`` (debug, info, warn, error),
``caller`` (file:line), ``msg``, then the structured fields a call passes with
``extra=kv(name=value, ...)``. An exception logged with ``exc_info`` adds
``err`` (its type and text); only at ``--log.level debug`` is the traceback
added too, as ``trace``, escaped into the same line. Uncaught exceptions, in
the main thread or any other, are logged the same way instead of printed as a
multi-line traceback.

The logfmt encoder is written here, not taken from a library: it is some
forty lines, the logfmt packages on PyPI either only parse or bring their own
logging framework, and the one-shot mode (run from cron every minute) should
not import more than it needs. Quoting follows go-logfmt: a value with a
space, ``=``, ``"``, a backslash or a character that is not printable is
written in double quotes with JSON-style escapes (``\\"``, ``\\\\``, ``\\n``,
``\\t``, ``\\uXXXX``), so no text from a host, a client or a file name can
start a new line or forge a field.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any, TextIO

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}
FORMATS = ("logfmt", "json")
FIELDS = "kv"  # the LogRecord attribute ``kv()`` sets
RESERVED = ("ts", "level", "caller", "msg")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def kv(**fields: object) -> dict[str, Any]:
    """Structured fields for one call: ``log.info("listening", extra=kv(address=shown, tls=False))``."""
    return {FIELDS: fields}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log.level", dest="log_level", default="info", choices=list(LEVELS),
                        help="only log messages of this level or above (default: %(default)s)")
    parser.add_argument("--log.format", dest="log_format", default="logfmt", choices=FORMATS,
                        help="one line per event, as logfmt or as a JSON object (default: %(default)s)")


def level_name(levelno: int) -> str:
    if levelno >= logging.ERROR:
        return "error"
    if levelno >= logging.WARNING:
        return "warn"
    if levelno >= logging.INFO:
        return "info"
    return "debug"


def timestamp(created: float) -> str:
    """RFC 3339 in UTC with milliseconds, as Prometheus's components write it: 2024-05-01T12:00:00.123Z."""
    millis = int(created * 1000)
    seconds, ms = divmod(millis, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{ms:03d}Z"


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _needs_quotes(text: str) -> bool:
    return not text or any(ch in ' ="\\' or not ch.isprintable() for ch in text)


def _escape(ch: str) -> str:
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    if ch.isprintable():  # the space included
        return ch
    code = ord(ch)
    if code > 0xFFFF:  # a UTF-16 surrogate pair, as JSON writes it
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def logfmt_value(value: object) -> str:
    text = _text(value)
    if not _needs_quotes(text):
        return text
    return '"' + "".join(_escape(ch) for ch in text) + '"'


def logfmt_key(key: str) -> str:
    """A key is one run of printable characters without space, ``=`` or ``"``; others become ``_``."""
    cleaned = "".join(ch if ch.isprintable() and ch not in ' ="\\' else "_" for ch in key)
    return cleaned or "_"


def logfmt(pairs: Iterator[tuple[str, object]]) -> str:
    return " ".join(f"{logfmt_key(key)}={logfmt_value(value)}" for key, value in pairs)


def _exception_text(info: tuple[type[BaseException], BaseException, TracebackType | None]) -> str:
    kind, error, _ = info
    text = str(error)
    return f"{kind.__name__}: {text}" if text else kind.__name__


class OneLineFormatter(logging.Formatter):
    """Every record as one line of ``ts level caller msg fields... [err] [trace]``."""

    def __init__(self, fmt: str = "logfmt", tracebacks: bool = False) -> None:
        super().__init__()
        if fmt not in FORMATS:
            raise ValueError(f"log format {fmt!r} is not one of {', '.join(FORMATS)}")
        self.json = fmt == "json"
        self.tracebacks = tracebacks  # only at debug level: a traceback is long even on one line

    def pairs(self, record: logging.LogRecord) -> list[tuple[str, object]]:
        found: list[tuple[str, object]] = [
            ("ts", timestamp(record.created)),
            ("level", level_name(record.levelno)),
            ("caller", f"{record.filename}:{record.lineno}"),
            ("msg", record.getMessage()),
        ]
        fields: Mapping[str, object] = getattr(record, FIELDS, None) or {}
        taken = set(RESERVED)
        for key, value in fields.items():
            name = key if key not in taken else f"field_{key}"  # never two ts= or msg= on one line
            taken.add(name)
            found.append((name, value))
        if record.exc_info and record.exc_info[0] is not None:
            # The exception's text is kept even when the caller said err= already.
            found.append(("err" if "err" not in taken else "exc", _exception_text(record.exc_info)))
            if self.tracebacks:
                found.append(("trace", "".join(traceback.format_exception(*record.exc_info)).rstrip()))
        if record.stack_info and self.tracebacks:
            found.append(("stack", record.stack_info))
        return found

    def format(self, record: logging.LogRecord) -> str:
        pairs = self.pairs(record)
        if self.json:
            import json

            return json.dumps({key: _json_value(value) for key, value in pairs}, ensure_ascii=True,
                              separators=(",", ":"))
        return logfmt(iter(pairs))


def _json_value(value: object) -> object:
    """JSON has no NaN or infinity: such a float is written as the string Python gives it."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def setup(level: str = "info", fmt: str = "logfmt", stream: TextIO | None = None) -> logging.Handler:
    """The root logger writes one-line records of ``level`` and above to ``stream`` (stderr).

    Replaces any handler set before, so calling it twice does not write every line twice.
    Uncaught exceptions (main thread and others) are logged as one error line too.
    """
    if level not in LEVELS:
        raise ValueError(f"log level {level!r} is not one of {', '.join(LEVELS)}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(OneLineFormatter(fmt, tracebacks=LEVELS[level] <= logging.DEBUG))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(LEVELS[level])
    sys.excepthook = _uncaught
    threading.excepthook = _uncaught_in_thread
    return handler


_log = logging.getLogger("secure_endpoint_exporter")


def _uncaught(kind: type[BaseException], error: BaseException, trace: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, trace)
        return
    _log.error("uncaught exception", exc_info=(kind, error, trace))


def _uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    name = args.thread.name if args.thread is not None else ""
    _log.error("uncaught exception in a thread", exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
               extra=kv(thread=name))
