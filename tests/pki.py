"""A throw-away CA with a server certificate for 127.0.0.1 and a client certificate, made by openssl.

The CA carries basicConstraints and keyUsage, both critical, and the certificates it signs their key
identifiers: Python 3.13's default client context verifies strictly (VERIFY_X509_STRICT) and refuses
a CA without a key usage. EC keys, because they are quick to make.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

CURVE = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
LEAVES = {
    "server": "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    "client": "extendedKeyUsage=clientAuth\n",
}


def openssl(*args: str) -> None:
    program = shutil.which("openssl")
    assert program is not None, "openssl is missing: .ci/test installs it"
    subprocess.run([program, *args], check=True, capture_output=True)


def make(folder: Path) -> None:
    """ca.pem/ca.key, server.pem/server.key and client.pem/client.key in ``folder``."""
    openssl("req", "-x509", *CURVE, "-keyout", str(folder / "ca.key"), "-out", str(folder / "ca.pem"),
            "-subj", "/CN=Test CA", "-days", "2", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    for name, extensions in LEAVES.items():
        openssl("req", *CURVE, "-keyout", str(folder / f"{name}.key"), "-out", str(folder / f"{name}.csr"),
                "-subj", f"/CN={name}")
        (folder / f"{name}.ext").write_text(
            extensions + "keyUsage=critical,digitalSignature\nsubjectKeyIdentifier=hash\n"
            "authorityKeyIdentifier=keyid\n")
        openssl("x509", "-req", "-in", str(folder / f"{name}.csr"), "-CA", str(folder / "ca.pem"), "-CAkey",
                str(folder / "ca.key"), "-CAcreateserial", "-out", str(folder / f"{name}.pem"), "-days", "2",
                "-extfile", str(folder / f"{name}.ext"))
