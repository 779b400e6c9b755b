"""The app registration's credential, read and checked once at start: a client secret from a
file or the environment (never from an option value, which ``ps`` and shell histories show),
or a certificate with its private key. Anything missing or unreadable is a ConfigError, so a
misconfigured poller stops the start instead of failing quietly later."""

import os
import re
import stat
from typing import Mapping

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ..config import Config, ConfigError
from ..logs import LOG
from .graph import Credential

SECRET_VARIABLE = "FAIL2ENTRA_CLIENT_SECRET"
_PRIVATE_KEY = re.compile(r"-----BEGIN (?:RSA |EC )?PRIVATE KEY-----.+?-----END (?:RSA |EC )?PRIVATE KEY-----", re.S)
_CERTIFICATE = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


def load_credential(config: Config, environment: Mapping[str, str] = os.environ) -> Credential:
    """The client secret, or msal's certificate dict; exactly one of them must be given."""
    if not config.tenant_id or not config.client_id:
        raise ConfigError("--signins graph needs --tenant-id and --client-id (docs/signins.md)")
    secret_from_environment = environment.get(SECRET_VARIABLE, "")
    given = [name for name, value in (("--client-secret-file", config.client_secret_file),
                                       (SECRET_VARIABLE, secret_from_environment),
                                       ("--client-certificate", config.client_certificate)) if value]
    if len(given) != 1:
        raise ConfigError(f"--signins graph needs exactly one of --client-secret-file, {SECRET_VARIABLE} or "
                          f"--client-certificate; {'got ' + ' and '.join(given) if given else 'none is set'}")
    if config.client_certificate:
        return _certificate(config.client_certificate)
    if secret_from_environment:
        return secret_from_environment
    return _secret_file(config.client_secret_file)


def _read(path: str, option: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            text = handle.read()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{option} {path}: {getattr(error, 'strerror', None) or error}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        LOG.warning("%s %s can be read by other users than its owner (chmod 600 it)", option, path)
    return text


def _secret_file(path: str) -> str:
    secret = _read(path, "--client-secret-file").strip()
    if not secret:
        raise ConfigError(f"--client-secret-file {path} is empty")
    return secret


def _certificate(path: str) -> dict:
    """One PEM file holding the certificate uploaded to the app registration and its private
    key, unencrypted (the file's permissions protect it, as they protect a secret file)."""
    text = _read(path, "--client-certificate")
    key, certificate = _PRIVATE_KEY.search(text), _CERTIFICATE.search(text)
    if key is None or certificate is None:
        raise ConfigError(f"--client-certificate {path} must hold a certificate and an unencrypted private key "
                          "(-----BEGIN PRIVATE KEY-----), both PEM")
    try:
        x509.load_pem_x509_certificate(certificate.group(0).encode())
        private_key = serialization.load_pem_private_key(key.group(0).encode(), password=None)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"--client-certificate {path}: {error}") from None
    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise ConfigError(f"--client-certificate {path}: Entra ID takes RSA certificates only")
    # msal signs its client assertions with the key and names the certificate by its SHA-256
    # thumbprint, which it works out from the certificate
    return {"private_key": key.group(0), "public_certificate": certificate.group(0)}
