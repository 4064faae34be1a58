"""The API's client id and key: from a file only its owner can read, or from the environment; never argv.

A key on the command line is in every ``ps`` listing, so there is no flag for it. The file is YAML
(``client_id``, ``api_key``) of the operator's, read as a bounded regular file; one that others may
read or its group change is refused, as ssh refuses a private key others can read (the group may
read it: root:secure-endpoint-exporter 0640 is how configuration management hands such files over).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping
from typing import NamedTuple

import yaml

from ...checks import safefile

ENV_ID = "SECURE_ENDPOINT_CLIENT_ID"
ENV_KEY = "SECURE_ENDPOINT_API_KEY"
MAX_FILE = 64 * 1024


class CredentialsError(ValueError):
    """The credentials cannot be used; the text says why and never holds the key."""


class Credentials(NamedTuple):
    client_id: str
    api_key: str

    def __repr__(self) -> str:  # a traceback or a debug log never shows the key
        return f"Credentials(client_id={self.client_id!r}, api_key=<hidden>)"


def _field(value: object, name: str, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        # a number is refused too: YAML reads 0123 as 123, and a key that lost a digit fails much later
        raise CredentialsError(f"{where}: {name} is missing or not a (quoted) string")
    text = value.strip()
    if not text.isprintable() or (name == "client_id" and ":" in text):
        raise CredentialsError(f"{where}: {name} holds characters an API credential cannot have")
    return text


def _private(path: str) -> Callable[[os.stat_result], None]:
    def check(st: os.stat_result) -> None:
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o027:  # the group may read (root:exporter 0640, as config management makes it), no more
            raise safefile.Refused(f"{path} is mode {mode:04o}: others than its owner and group may read it, or its "
                                   f"group may change it (chmod 600 {path}, or 640 with the exporter's group)")
        if st.st_uid not in (0, os.geteuid()):
            raise safefile.Refused(f"{path} belongs to uid {st.st_uid}, not to this user or root")

    return check


def from_file(path: str) -> Credentials:
    try:
        data = safefile.read(path, MAX_FILE, _private(path))
    except safefile.Refused as why:
        raise CredentialsError(str(why)) from None
    except OSError as error:
        raise CredentialsError(f"cannot read {path}: {error.strerror}") from None
    try:
        loaded = yaml.safe_load(data.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError, RecursionError) as error:
        # where, never what: the text around a YAML error may be the key
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise CredentialsError(f"{path} is not YAML{where}") from None
    if not isinstance(loaded, dict):
        raise CredentialsError(f"{path} must hold client_id and api_key")
    unknown = [key for key in loaded if key not in ("client_id", "api_key")]
    if unknown:  # not named: a key pasted on a line of its own would be the "field"
        raise CredentialsError(f"{path}: {len(unknown)} field(s) other than client_id and api_key")
    return Credentials(_field(loaded.get("client_id"), "client_id", path),
                       _field(loaded.get("api_key"), "api_key", path))


def from_environment(environ: Mapping[str, str] = os.environ) -> Credentials | None:
    """Both variables, or None when neither is set; one without the other is an error."""
    client_id, api_key = environ.get(ENV_ID), environ.get(ENV_KEY)
    if client_id is None and api_key is None:
        return None
    where = f"the environment ({ENV_ID}, {ENV_KEY})"
    return Credentials(_field(client_id, "client_id", where), _field(api_key, "api_key", where))
