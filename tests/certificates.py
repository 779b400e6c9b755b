"""Certificates made at test time with the ``openssl`` command: a CA, a server certificate for
127.0.0.1 and localhost signed by it, a client certificate signed by it, and an unrelated CA
(whose trust must not be enough). EC keys: made in milliseconds."""

import os
import subprocess
from typing import NamedTuple


class Certificates(NamedTuple):
    directory: str
    ca: str  # the CA certificate that signed the others
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str
    other_ca: str  # a CA that signed nothing here


def _openssl(*args: str, cwd: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _key(name: str, cwd: str) -> None:
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", name, cwd=cwd)


def _ca(name: str, cwd: str) -> None:
    _key(f"{name}.key", cwd)
    _openssl("req", "-x509", "-new", "-key", f"{name}.key", "-out", f"{name}.crt", "-days", "2",
             "-subj", f"/CN={name}", cwd=cwd)


def _signed(name: str, subject: str, extensions: str, cwd: str) -> None:
    _key(f"{name}.key", cwd)
    _openssl("req", "-new", "-key", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={subject}", cwd=cwd)
    with open(os.path.join(cwd, f"{name}.ext"), "w") as handle:
        handle.write(extensions)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext", cwd=cwd)


def make_certificates(directory: str) -> Certificates:
    """Write the certificates and keys into ``directory``."""
    _ca("ca", directory)
    _ca("other-ca", directory)
    _signed("server", "localhost", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n", directory)
    _signed("client", "edge1", "extendedKeyUsage=clientAuth\n", directory)
    path = lambda name: os.path.join(directory, name)  # noqa: E731
    return Certificates(directory, path("ca.crt"), path("server.crt"), path("server.key"), path("client.crt"),
                        path("client.key"), path("other-ca.crt"))
