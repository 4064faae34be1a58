"""``--web.config.file`` in the Prometheus exporter-toolkit format: TLS and basic auth.

The same file works for node_exporter and this exporter. Paths in it are
relative to the file. Settings this exporter cannot honour are refused at
load, never silently ignored.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import ssl
import stat
import threading
from typing import Any, NamedTuple

import bcrypt
import yaml

from ..checks import safefile
from .logs import kv

log = logging.getLogger("secure_endpoint_exporter")

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
# How strongly client certificates are checked: 2 required and verified, 1 verified when given, 0 not verified.
CLIENT_VERIFICATION = {"VerifyClientCertIfGiven": 1, "RequireAndVerifyClientCert": 2}
MAX_FILE_SIZE = 1 << 20
MAX_DEPTH = 16  # levels of mappings and lists in the YAML: the web config needs three
# The modular-crypt form of bcrypt: version, two-digit cost, then 22 characters of salt and 31 of hash.
BCRYPT_HASH = re.compile(r"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")
# Each step doubles the work; at 17 one check already takes several seconds (more than a scrape's time),
# and at 31 about a day, during which the request holds its thread.
MAX_COST = 16
BCRYPT_WAIT = 2.0  # seconds a basic-auth check may wait for bcrypt (one check at a time) before it fails
MAX_VERIFIED = 64  # user and password pairs remembered as verified
MAX_WAITING = 8  # basic-auth checks that may wait for bcrypt at once; more fail at once (401)
BCRYPT_MAX_PASSWORD = 72  # bcrypt reads no further; recent versions raise ValueError, older ones cut silently


class WebConfigError(ValueError):
    pass


class WebConfig(NamedTuple):
    tls: ssl.SSLContext | None
    users: dict[str, bytes]  # user -> bcrypt hash
    headers: dict[str, str]
    client_auth: str = "NoClientCert"


def load(path: str) -> WebConfig:
    try:
        raw = _yaml(_read(path), path)
    except OSError as error:
        raise WebConfigError(f"cannot read {path}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise WebConfigError(f"{path} is not valid YAML: {str(error).splitlines()[0]}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise WebConfigError(f"{path} must hold a mapping")
    try:
        _only(raw, TOP_KEYS, path)
        base = os.path.dirname(os.path.abspath(path))
        tls, client_auth = _tls(raw.get("tls_server_config"), base, path)
        return WebConfig(tls, _users(raw.get("basic_auth_users"), path),
                         _headers(raw.get("http_server_config"), path), client_auth)
    except (TypeError, AttributeError) as error:  # a value of a type no check above foresaw: refused all the same
        raise WebConfigError(f"{path}: a setting has a value of the wrong type ({error})") from None


def _read(path: str) -> bytes:
    """The file's bytes, if it is a regular file of at most MAX_FILE_SIZE (a FIFO would hang the start or
    the request that triggered a reload)."""
    try:
        return safefile.read(path, MAX_FILE_SIZE)
    except safefile.Refused as why:
        raise WebConfigError(str(why.args[0])) from None


def _yaml(text: bytes, path: str) -> Any:
    """The document, once its events show no anchor or alias: a "billion laughs" file of a few KB expands to
    gigabytes when its aliases are built, and a web config has no use for them. The events cost no more
    than the text (at most MAX_FILE_SIZE); nothing is expanded before the check."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
                raise WebConfigError(f"{path}: YAML anchors and aliases (& and *) are not accepted")
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:  # a web config is three levels deep; parsing deeper costs seconds
                    raise WebConfigError(f"{path}: YAML nested more than {MAX_DEPTH} levels deep")
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
        return yaml.safe_load(text)
    except RecursionError:
        raise WebConfigError(f"{path}: YAML nested too deeply") from None


def _regular(file: str, what: str, path: str) -> str:
    """``file`` if it is a regular file: OpenSSL would wait forever on a FIFO."""
    try:
        mode = os.stat(file).st_mode
    except OSError as error:
        raise WebConfigError(f"{path}: cannot load {what}: {file}: {error.strerror or error}") from None
    if not stat.S_ISREG(mode):
        raise WebConfigError(f"{path}: cannot load {what}: {file} is not a regular file")
    return file


def weakens(old: WebConfig, new: WebConfig) -> str | None:
    """Why ``new`` protects less than ``old``, or None. Changing passwords, users or certificates is fine."""
    if (old.tls is None) != (new.tls is None):
        return "it turns TLS " + ("off" if new.tls is None else "on")
    if old.users and not new.users:
        return "it turns basic auth off"
    before, after = CLIENT_VERIFICATION.get(old.client_auth, 0), CLIENT_VERIFICATION.get(new.client_auth, 0)
    if after < before:
        return (f"it weakens the verification of client certificates (client_auth_type {old.client_auth} "
                f"-> {new.client_auth})")
    return None


def _only(section: dict[str, Any], allowed: set[str], where: str) -> None:
    for key in section:
        if key not in allowed:
            raise WebConfigError(f"{where}: unknown setting {key!r}")


def _tls(section: Any, base: str, path: str) -> tuple[ssl.SSLContext | None, str]:
    if section is None:
        return None, "NoClientCert"
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
    cert, key = (_regular(os.path.join(base, str(section[k])), "cert_file/key_file", path)
                 for k in ("cert_file", "key_file"))
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as error:
        raise WebConfigError(f"{path}: cannot load cert_file/key_file: {error}") from None
    auth = section.get("client_auth_type", "NoClientCert")
    if not isinstance(auth, str) or auth not in CLIENT_AUTH:
        raise WebConfigError(f"{path}: client_auth_type {auth!r} is not one of {', '.join(CLIENT_AUTH)}")
    context.verify_mode = CLIENT_AUTH[auth]
    if section.get("client_ca_file"):
        try:
            context.load_verify_locations(
                _regular(os.path.join(base, str(section["client_ca_file"])), "client_ca_file", path))
        except (OSError, ssl.SSLError) as error:
            raise WebConfigError(f"{path}: cannot load client_ca_file: {error}") from None
    elif auth in ("VerifyClientCertIfGiven", "RequireAndVerifyClientCert"):
        raise WebConfigError(f"{path}: client_auth_type {auth} needs client_ca_file")
    return context, str(auth)


def _version(name: Any, path: str) -> ssl.TLSVersion:
    if not isinstance(name, str) or name not in TLS_VERSIONS:
        raise WebConfigError(f"{path}: TLS version {name!r} is not one of {', '.join(TLS_VERSIONS)}")
    return TLS_VERSIONS[name]


def _users(section: Any, path: str) -> dict[str, bytes]:
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise WebConfigError(f"{path}: basic_auth_users must map user names to bcrypt hashes")
    users = {}
    for user, hashed in section.items():
        users[str(user)] = _bcrypt_hash(str(user), hashed, path)
    return users


def _bcrypt_hash(user: str, hashed: Any, path: str) -> bytes:
    """A hash refused here would fail every login of ``user`` later, or make bcrypt raise mid-request.

    The trial check runs on the same hash with the cost set to 04: bcrypt accepts or refuses a hash
    by its form, and the cost is already checked, so this proves the form without paying the cost.
    """
    if not isinstance(hashed, str) or not BCRYPT_HASH.fullmatch(hashed):
        raise WebConfigError(f"{path}: the password of {user!r} is not a bcrypt hash "
                             "($2a$, $2b$ or $2y$, a two-digit cost, then 53 characters of [./A-Za-z0-9])")
    cost = int(hashed[4:6])
    if cost > MAX_COST:
        raise WebConfigError(f"{path}: the bcrypt cost of {user!r} is {cost}; above {MAX_COST} one login takes "
                             "longer than a scrape may")
    try:
        bcrypt.checkpw(b"", (hashed[:4] + "04" + hashed[6:]).encode())
    except ValueError as error:
        raise WebConfigError(f"{path}: bcrypt refuses the password hash of {user!r}: {error}") from None
    return hashed.encode()


OWN_HEADERS = frozenset({"connection", "content-length", "content-type", "content-encoding", "date", "server",
                         "transfer-encoding", "www-authenticate"})  # the exporter's own, per answer


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
    found = {str(k): str(v) for k, v in headers.items()}
    for name, value in found.items():
        if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}", name) or name.lower() in OWN_HEADERS:
            raise WebConfigError(f"{path}: http_server_config.headers cannot set {name!r}")
        if not value.replace("\t", " ").isprintable() or not value.isascii():
            raise WebConfigError(f"{path}: the value of header {name} must be printable ASCII on one line")
    return found


def _checkpw(password: bytes, hashed: bytes) -> bool:
    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:  # bcrypt 5 and later: a password over 72 bytes; older ones: a NUL byte
        return False


def _cost(hashed: bytes) -> int:
    return int(hashed[4:6])


class Authenticator:
    """Checks basic-auth credentials; a verified pair is remembered so bcrypt runs once per user and password.

    An unknown user costs one bcrypt check against the costliest configured hash (its result ignored),
    as much as a wrong password for a known user, so the time of an answer does not tell which user
    names exist (when all hashes have one cost, as they usually do). Passwords bcrypt cannot take
    whole (over 72 bytes, or with a NUL byte, where some versions stop reading) are refused outright,
    the same on every bcrypt version.

    bcrypt runs one check at a time (as exporter-toolkit does): clients guessing passwords on many
    connections would otherwise take every CPU, while the scraper, whose pair is remembered, needs
    none. A check that waits longer than ``BCRYPT_WAIT`` for its turn, or finds ``MAX_WAITING`` waiting
    already, fails (401), so such clients never pile up threads behind it. A reload keeps the verified
    pairs of users whose hash did not change.
    """

    def __init__(self, users: dict[str, bytes], verified: Authenticator | None = None) -> None:
        """``verified``: the authenticator this one replaces (a reload), whose verified pairs still hold
        where the user's hash is unchanged (a pair's token includes the hash)."""
        self.users = users
        self._decoy = max(users.values(), key=_cost) if users else None
        self._verified: set[bytes] = set(verified._verified) if verified is not None else set()
        self._lock = threading.Lock()
        self._bcrypt = threading.Lock()
        self._waiting = threading.BoundedSemaphore(MAX_WAITING)

    def check(self, user: str, password: str) -> bool:
        secret = password.encode()
        usable = len(secret) <= BCRYPT_MAX_PASSWORD and b"\0" not in secret
        hashed = self.users.get(user)
        if hashed is None or not usable:
            if self._decoy is not None:
                self._bcrypt_check(secret if usable else b"x", self._decoy)  # the same work as for a real user
            return False
        token = hashlib.sha256(user.encode() + b"\0" + secret + b"\0" + hashed).digest()
        with self._lock:
            if any(hmac.compare_digest(token, seen) for seen in self._verified):
                return True
        if not self._bcrypt_check(secret, hashed):
            return False
        with self._lock:
            if len(self._verified) >= MAX_VERIFIED:
                self._verified.clear()  # bounded: a pair dropped is only checked again
            self._verified.add(token)
        return True

    def _bcrypt_check(self, password: bytes, hashed: bytes) -> bool:
        """False at once when ``MAX_WAITING`` checks wait already, so threads cannot pile up behind bcrypt
        (a connection waiting here may lose its place, its thread does not end before its turn)."""
        if not self._waiting.acquire(blocking=False):
            return False
        try:
            if not self._bcrypt.acquire(timeout=BCRYPT_WAIT):
                return False
            try:
                return _checkpw(password, hashed)
            finally:
                self._bcrypt.release()
        finally:
            self._waiting.release()


class WebConfigWatcher:
    """The current web config, reloaded when the file changes (size, mtime, ctime or inode).

    A reload that would lower the protection in force (basic auth off, TLS off, client
    certificates no longer verified) is refused and logged: whoever can write the file must not
    be able to open the exporter up without anyone noticing. Such a change needs a restart, and
    so does turning TLS on.
    """

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, ...] | None = None
        self.config = WebConfig(None, {}, {})
        self.auth = Authenticator({})
        if path:
            self._stamp = self._stat()
            self._apply(load(path))  # errors at start are fatal, with a clear message

    def _stat(self) -> tuple[int, ...] | None:
        assert self.path is not None
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino

    def _apply(self, config: WebConfig) -> None:
        self.config = config
        self.auth = Authenticator(config.users, self.auth)  # verified pairs of unchanged users stay

    def refresh(self, force: bool = False) -> None:
        """Reload when the file changed (``force``: in any case, as SIGHUP asks)."""
        if not self.path:
            return
        stamp = self._stat()
        if stamp == self._stamp and not force:
            return
        with self._lock:
            if stamp == self._stamp and not force:
                return
            self._stamp = stamp
            try:
                config = load(self.path)
            except WebConfigError as error:
                log.error("web config not reloaded, keeping the last good one: %s", error,
                          extra=kv(file=self.path, err=str(error)))
                return
            weaker = weakens(self.config, config)
            if weaker is not None:
                log.error("web config not reloaded, keeping the last good one: %s; that needs a restart", weaker,
                          extra=kv(file=self.path, err=weaker))
                return
            self._apply(config)
            log.info("web config reloaded from %s", self.path, extra=kv(file=self.path))
