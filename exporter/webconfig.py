"""``--web.config.file`` in the Prometheus exporter-toolkit format: TLS and basic auth.

The same file works for node_exporter and this exporter. Paths in it are
relative to the file. Settings this exporter cannot honour are refused at
load, never silently ignored.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import ssl
import threading
from typing import Any, NamedTuple

import bcrypt
import yaml

CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
TLS_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
TLS_KEYS = {"cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version", "max_version"}
UNSUPPORTED_TLS_KEYS = {"cipher_suites", "curve_preferences", "prefer_server_cipher_suites", "client_allowed_sans",
                        "cert", "key", "client_ca"}
TOP_KEYS = {"tls_server_config", "http_server_config", "basic_auth_users"}


class WebConfigError(ValueError):
    pass


class WebConfig(NamedTuple):
    tls: ssl.SSLContext | None
    users: dict[str, bytes]  # user -> bcrypt hash
    headers: dict[str, str]


def load(path: str) -> WebConfig:
    try:
        with open(path, "rb") as handle:
            raw = yaml.safe_load(handle.read(1 << 20))
    except OSError as error:
        raise WebConfigError(f"cannot read {path}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise WebConfigError(f"{path} is not valid YAML: {str(error).splitlines()[0]}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise WebConfigError(f"{path} must hold a mapping")
    _only(raw, TOP_KEYS, path)
    base = os.path.dirname(os.path.abspath(path))
    tls = _tls(raw.get("tls_server_config"), base, path)
    return WebConfig(tls, _users(raw.get("basic_auth_users"), path), _headers(raw.get("http_server_config"), path))


def _only(section: dict[str, Any], allowed: set[str], where: str) -> None:
    for key in section:
        if key not in allowed:
            raise WebConfigError(f"{where}: unknown setting {key!r}")


def _tls(section: Any, base: str, path: str) -> ssl.SSLContext | None:
    if section is None:
        return None
    if not isinstance(section, dict):
        raise WebConfigError(f"{path}: tls_server_config must be a mapping")
    for key in section:
        if key in UNSUPPORTED_TLS_KEYS:
            raise WebConfigError(f"{path}: tls_server_config.{key} is not supported by this exporter")
    _only(section, TLS_KEYS, f"{path}: tls_server_config")
    if not section.get("cert_file") or not section.get("key_file"):
        raise WebConfigError(f"{path}: tls_server_config needs both cert_file and key_file")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _version(section.get("min_version", "TLS12"), path)
    if "max_version" in section:
        context.maximum_version = _version(section["max_version"], path)
    cert, key = (os.path.join(base, str(section[k])) for k in ("cert_file", "key_file"))
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as error:
        raise WebConfigError(f"{path}: cannot load cert_file/key_file: {error}") from None
    auth = section.get("client_auth_type", "NoClientCert")
    if auth not in CLIENT_AUTH:
        raise WebConfigError(f"{path}: client_auth_type {auth!r} is not one of {', '.join(CLIENT_AUTH)}")
    context.verify_mode = CLIENT_AUTH[auth]
    if section.get("client_ca_file"):
        try:
            context.load_verify_locations(os.path.join(base, str(section["client_ca_file"])))
        except (OSError, ssl.SSLError) as error:
            raise WebConfigError(f"{path}: cannot load client_ca_file: {error}") from None
    elif auth in ("VerifyClientCertIfGiven", "RequireAndVerifyClientCert"):
        raise WebConfigError(f"{path}: client_auth_type {auth} needs client_ca_file")
    return context


def _version(name: Any, path: str) -> ssl.TLSVersion:
    if name not in TLS_VERSIONS:
        raise WebConfigError(f"{path}: TLS version {name!r} is not one of {', '.join(TLS_VERSIONS)}")
    return TLS_VERSIONS[name]


def _users(section: Any, path: str) -> dict[str, bytes]:
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise WebConfigError(f"{path}: basic_auth_users must map user names to bcrypt hashes")
    users = {}
    for user, hashed in section.items():
        text = str(hashed)
        if not text.startswith(("$2a$", "$2b$", "$2y$")):
            raise WebConfigError(f"{path}: the password of {user!r} is not a bcrypt hash")
        users[str(user)] = text.encode()
    return users


def _headers(section: Any, path: str) -> dict[str, str]:
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise WebConfigError(f"{path}: http_server_config must be a mapping")
    for key in section:
        if key == "http2":
            continue  # HTTP/2 is not served; the setting is harmless
        if key != "headers":
            raise WebConfigError(f"{path}: unknown setting http_server_config.{key}")
    headers = section.get("headers") or {}
    if not isinstance(headers, dict):
        raise WebConfigError(f"{path}: http_server_config.headers must be a mapping")
    return {str(k): str(v) for k, v in headers.items()}


class Authenticator:
    """Checks basic-auth credentials; a verified pair is remembered so bcrypt runs once per user and password."""

    def __init__(self, users: dict[str, bytes]) -> None:
        self.users = users
        self._verified: set[bytes] = set()
        self._lock = threading.Lock()

    def check(self, user: str, password: str) -> bool:
        hashed = self.users.get(user)
        if hashed is None:
            bcrypt.checkpw(b"x", b"$2b$10$" + b"." * 53)  # the same work as for a real user
            return False
        token = hashlib.sha256(user.encode() + b"\0" + password.encode() + b"\0" + hashed).digest()
        with self._lock:
            if any(hmac.compare_digest(token, seen) for seen in self._verified):
                return True
        if not bcrypt.checkpw(password.encode(), hashed):
            return False
        with self._lock:
            self._verified.add(token)
        return True
