"""The exporter's log lines: a strict logfmt parser (used by the other exporter tests), and the encoder held to it.

The parser is written from the logfmt grammar as go-logfmt reads it, independently of
``exporter.logs``, and stricter than go-logfmt: every pair is ``key=value``, separated by one
space; a bare value has no space, ``=``, ``"``, backslash or unprintable character; a quoted value
knows only the escapes ``\\" \\\\ \\n \\r \\t \\uXXXX``; no key appears twice.
"""

from __future__ import annotations

import io
import json
import logging
import re
import sys
import threading
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secure_endpoint_monitoring.exporter import logs

KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
LEVELS = ("debug", "info", "warn", "error")
SIMPLE_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t"}


class LogfmtError(ValueError):
    pass


def parse_logfmt(line: str) -> dict[str, str]:
    """The pairs of one logfmt line, or LogfmtError saying where it is not strict logfmt."""
    found: dict[str, str] = {}
    at = 0
    while True:
        key_match = KEY.match(line, at)
        if key_match is None:
            raise LogfmtError(f"no key at {at}: {line!r}")
        key = key_match.group()
        at = key_match.end()
        if key in found:
            raise LogfmtError(f"key {key!r} twice: {line!r}")
        if line[at:at + 1] != "=":
            raise LogfmtError(f"no = after {key!r}: {line!r}")
        at += 1
        if line[at:at + 1] == '"':
            value, at = _quoted(line, at + 1)
        else:
            start = at
            while at < len(line) and line[at] != " ":
                ch = line[at]
                if ch in '="\\' or not ch.isprintable():
                    raise LogfmtError(f"{ch!r} in the bare value of {key!r}: {line!r}")
                at += 1
            value = line[start:at]
            if not value:
                raise LogfmtError(f"empty bare value for {key!r} (an empty value is written \"\"): {line!r}")
        found[key] = value
        if at == len(line):
            return found
        if line[at] != " " or at + 1 == len(line) or line[at + 1] == " ":
            raise LogfmtError(f"pairs must be separated by one space, at {at}: {line!r}")
        at += 1


def _quoted(line: str, at: int) -> tuple[str, int]:
    out: list[str] = []
    while True:
        if at >= len(line):
            raise LogfmtError(f"unterminated quoted value: {line!r}")
        ch = line[at]
        if ch == '"':
            return "".join(out), at + 1
        if ch == "\\":
            escape = line[at + 1:at + 2]
            if escape in SIMPLE_ESCAPES:
                out.append(SIMPLE_ESCAPES[escape])
                at += 2
            elif escape == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", line[at + 2:at + 6]):
                out.append(chr(int(line[at + 2:at + 6], 16)))
                at += 6
            else:
                raise LogfmtError(f"unknown escape \\{escape} at {at}: {line!r}")
            continue
        if not ch.isprintable():
            raise LogfmtError(f"raw {ch!r} inside a quoted value: {line!r}")
        out.append(ch)
        at += 1


def _joined(text: str) -> str:
    """UTF-16 surrogate pairs (as \\uD83D\\uDE00 writes an emoji) joined back into one character."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16")


def parse_record(line: str) -> dict[str, str]:
    """One log line of the exporter: strict logfmt, ``ts level [caller] msg`` first, in that order."""
    pairs = parse_logfmt(line)
    keys = list(pairs)
    expected = ["ts", "level", "caller", "msg"] if "caller" in pairs else ["ts", "level", "msg"]
    if keys[:len(expected)] != expected:
        raise LogfmtError(f"keys start {keys[:4]}, not {expected}: {line!r}")
    if not TS.fullmatch(pairs["ts"]):
        raise LogfmtError(f"ts {pairs['ts']!r} is not RFC 3339 UTC with milliseconds")
    if pairs["level"] not in LEVELS:
        raise LogfmtError(f"level {pairs['level']!r} is not one of {LEVELS}")
    return {key: _joined(value) for key, value in pairs.items()}


def parse_log(text: str) -> list[dict[str, str]]:
    """Every line of a log; each must be a strict logfmt record (no blank lines, no tracebacks)."""
    assert text.endswith("\n") or not text, text[-200:]
    return [parse_record(line) for line in text.split("\n")[:-1]]


def parse_json_log(text: str) -> list[dict[str, object]]:
    records = []
    for line in text.split("\n")[:-1]:
        record = json.loads(line)
        assert isinstance(record, dict), line
        assert list(record)[:4] == ["ts", "level", "caller", "msg"], line
        assert TS.fullmatch(str(record["ts"])) and record["level"] in LEVELS, line
        records.append(record)
    return records


# -- the parser is strict --------------------------------------------------------------------------
@pytest.mark.parametrize("line", [
    'ts=2024-05-01T12:00:00.123Z level=info msg=listening on',  # a space in a bare value
    'ts=x level=info msg="a" msg="b"',  # a key twice
    'ts=x level=info msg',  # no value
    'ts=x level=info msg="open',  # unterminated
    'ts=x level=info msg="a\\qb"',  # unknown escape
    'ts=x  level=info msg=a',  # two spaces
    'ts=x level=info msg=a ',  # trailing space
    'ts=x level=info msg=',  # empty bare value
    'ts=x level=info msg=a"b',  # quote in a bare value
    'ts=x level=info msg="a\nb"',  # raw newline
    'ts=x level=info msg=a=b',
])
def test_the_parser_refuses_what_is_not_strict_logfmt(line: str) -> None:
    with pytest.raises(LogfmtError):
        parse_logfmt(line)


def test_the_parser_reads_quoted_values() -> None:
    assert parse_logfmt('a=1 msg="listening on 127.0.0.1:9982" e="x\\"y\\\\z\\n\\u001b" f=""') == {
        "a": "1", "msg": "listening on 127.0.0.1:9982", "e": 'x"y\\z\n\x1b', "f": ""}


@pytest.mark.parametrize("line", [
    'level=info ts=2024-05-01T12:00:00.123Z msg=a',  # order
    'ts=2024-05-01 12:00:00 level=info msg=a',
    'ts=2024-05-01T12:00:00.123Z level=warning msg=a',
    'ts=2024-05-01T12:00:00Z level=info msg=a',
])
def test_a_record_needs_ts_level_msg(line: str) -> None:
    with pytest.raises(LogfmtError):
        parse_record(line)


# -- the encoder ------------------------------------------------------------------------------------
@pytest.fixture
def capture() -> Iterator[io.StringIO]:
    """The root logger writing to a buffer through exporter.logs; the previous setup restored afterwards."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, sys.excepthook, threading.excepthook)
    stream = io.StringIO()
    try:
        yield stream
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
        sys.excepthook, threading.excepthook = saved[2], saved[3]


def test_a_record_with_fields(capture: io.StringIO) -> None:
    logs.setup("info", "logfmt", capture)
    log = logging.getLogger("secure_endpoint_exporter")
    log.info("listening on %s (TLS %s)", "127.0.0.1:9982", "off", extra=logs.kv(address="127.0.0.1:9982", tls=False))
    log.debug("not written at info")
    [record] = parse_log(capture.getvalue())
    assert record["msg"] == "listening on 127.0.0.1:9982 (TLS off)"
    assert (record["level"], record["address"], record["tls"]) == ("info", "127.0.0.1:9982", "false")
    assert re.fullmatch(r"test_exporter_logfmt\.py:\d+", record["caller"])
    assert 'msg="listening on 127.0.0.1:9982 (TLS off)"' in capture.getvalue()


def test_the_timestamp_is_rfc3339_utc_with_milliseconds() -> None:
    assert logs.timestamp(1714564800.1239) == "2024-05-01T12:00:00.123Z"
    assert logs.timestamp(0.0) == "1970-01-01T00:00:00.000Z"


def test_a_field_cannot_take_the_place_of_ts_level_or_msg(capture: io.StringIO) -> None:
    logs.setup("info", "logfmt", capture)
    logging.getLogger("x").warning("real", extra=logs.kv(msg="forged", level="error", **{"bad key=": "v"}))
    [record] = parse_log(capture.getvalue())
    assert (record["msg"], record["level"]) == ("real", "warn")
    assert record["field_msg"] == "forged" and record["bad_key_"] == "v"


texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=300, deadline=None)
@given(message=texts, value=texts)
def test_any_text_stays_on_one_line_and_reads_back(message: str, value: str) -> None:
    formatter = logs.OneLineFormatter("logfmt")
    record = logging.LogRecord("x", logging.ERROR, "f.py", 1, "%s", (message,), None)
    record.kv = {"path": value}
    line = formatter.format(record)
    assert len(line.splitlines()) == 1 and line.isprintable(), repr(line)
    parsed = parse_record(line)
    assert (parsed["msg"], parsed["path"]) == (message, value)
    json_line = logs.OneLineFormatter("json").format(record)
    assert len(json_line.splitlines()) == 1
    assert json.loads(json_line)["path"] == value


def _raise_and_log(log: logging.Logger, level: int) -> None:
    try:
        dict[str, int]()["missing"]
    except KeyError:
        log.log(level, "lookup failed", exc_info=True)


def test_an_exception_is_one_line_with_err_and_no_traceback_at_info(capture: io.StringIO) -> None:
    logs.setup("info", "logfmt", capture)
    _raise_and_log(logging.getLogger("x"), logging.ERROR)
    [record] = parse_log(capture.getvalue())
    assert record["err"] == "KeyError: 'missing'"
    assert "trace" not in record and "Traceback" not in capture.getvalue()


def test_at_debug_the_traceback_is_escaped_into_the_line(capture: io.StringIO) -> None:
    logs.setup("debug", "logfmt", capture)
    _raise_and_log(logging.getLogger("x"), logging.WARNING)
    [record] = parse_log(capture.getvalue())
    assert record["err"] == "KeyError: 'missing'"
    assert record["trace"].startswith("Traceback (most recent call last):\n")
    assert "_raise_and_log" in record["trace"]


def test_json_lines(capture: io.StringIO) -> None:
    logs.setup("debug", "json", capture)
    log = logging.getLogger("x")
    log.info('a "quoted"\nmessage', extra=logs.kv(count=3, ok=True, none=None, obj=object))
    _raise_and_log(log, logging.ERROR)
    first, second = parse_json_log(capture.getvalue())
    assert first["msg"] == 'a "quoted"\nmessage' and first["level"] == "info"
    assert (first["count"], first["ok"], first["none"]) == (3, True, None)
    assert first["obj"] == str(object)
    assert second["err"] == "KeyError: 'missing'" and "Traceback" in str(second["trace"])


def test_an_uncaught_exception_in_a_thread_is_one_line(capture: io.StringIO) -> None:
    logs.setup("info", "logfmt", capture)

    def fail() -> None:
        raise RuntimeError("thread broke\nbadly")

    thread = threading.Thread(target=fail, name="worker")
    thread.start()
    thread.join()
    [record] = parse_log(capture.getvalue())
    assert (record["level"], record["msg"], record["thread"]) == ("error", "uncaught exception in a thread", "worker")
    assert record["err"] == "RuntimeError: thread broke\nbadly"


def test_setup_twice_writes_each_line_once(capture: io.StringIO) -> None:
    logs.setup("info", "logfmt", capture)
    logs.setup("info", "logfmt", capture)
    logging.getLogger("x").info("once")
    assert len(parse_log(capture.getvalue())) == 1


@pytest.mark.parametrize(("level", "fmt"), [("verbose", "logfmt"), ("info", "xml")])
def test_setup_refuses_unknown_levels_and_formats(level: str, fmt: str) -> None:
    with pytest.raises(ValueError, match="is not one of"):
        logs.setup(level, fmt, io.StringIO())
