"""Transport security for the forward client (forward.py): TLS, and the forward protocol's
shared-key handshake that Fluentd's ``in_forward`` asks for with ``<security>``.

TLS (the ``ssl`` module: the server's certificate checked against ``--forward-ca-file`` or the
system's CAs and against the host name, TLS 1.2 or later, a client certificate when given) wraps
the TCP stream first. Then, with a shared key, the server speaks first (Fluentd's in_forward.rb
and out_forward/handshake_protocol.rb; ``+`` is byte concatenation, digests are hex SHA-512)::

    server  ["HELO", {"nonce": nonce, "auth": auth_salt, "keepalive": bool}]
    client  ["PING", client_hostname, salt, sha512(salt + client_hostname + nonce + shared_key),
             username, sha512(auth_salt + username + password)]       (username, digest: "" when auth is "")
    server  ["PONG", true, "", server_hostname, sha512(salt + server_hostname + nonce + shared_key)]
            ["PONG", false, reason, "", ""]                              (refused; the server closes)

The client checks the PONG's digest too: the server proves it holds the key as well, so
something in the middle without the key never gets the records. Secrets come from files,
never from the command line (which every user of the machine can read in /proc).
"""

import hashlib
import os
import socket
import ssl
from typing import Any, Optional, Tuple

import msgpack

_MAX_HANDSHAKE_BYTES = 64 * 1024  # a HELO or PONG is a few hundred bytes


class HandshakeError(ConnectionError):
    """The server refused the handshake, or did not prove it holds the shared key."""


def _digest(*parts: Any) -> str:
    data = b"".join(part if isinstance(part, bytes) else str(part).encode("utf-8") for part in parts)
    return hashlib.sha512(data).hexdigest()


def read_secret(path: str, what: str) -> str:
    """The secret in ``path`` (one line; the newline is not part of it). ValueError when it
    cannot be read or is empty."""
    try:
        with open(path, encoding="utf-8") as handle:
            secret = handle.read().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read the {what} from {path}: {getattr(error, 'strerror', None) or error}") from None
    if not secret:
        raise ValueError(f"the {what} file {path} is empty")
    return secret


class ForwardSecurity:
    """How the forward client secures a connection: TLS (a context), a shared key, or both."""

    def __init__(self, tls: bool = False, ca_file: str = "", cert_file: str = "", key_file: str = "",
                 shared_key: str = "", username: str = "", password: str = "",
                 hostname: Optional[str] = None) -> None:
        self.tls_context = self._context(ca_file, cert_file, key_file) if tls else None
        self.shared_key = shared_key
        self.username = username
        self.password = password
        self.hostname = hostname or socket.gethostname()

    @staticmethod
    def _context(ca_file: str, cert_file: str, key_file: str) -> ssl.SSLContext:
        """A client context that checks the server; ValueError on a file it cannot use."""
        try:
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file or None)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            if cert_file:
                context.load_cert_chain(cert_file, key_file or None)
        except (OSError, ssl.SSLError) as error:
            raise ValueError(f"TLS: {getattr(error, 'strerror', None) or error} "
                             f"(CA file {ca_file or 'none'}, certificate {cert_file or 'none'})") from None
        return context

    @classmethod
    def from_options(cls, tls: bool, ca_file: str, cert_file: str, key_file: str, shared_key_file: str,
                     username: str, password_file: str) -> Optional["ForwardSecurity"]:
        """From the --forward-* options; None when none is set. ValueError on a bad one."""
        if not (tls or shared_key_file):
            if ca_file or cert_file or key_file:
                raise ValueError("--forward-ca-file / --forward-cert-file / --forward-key-file need --forward-tls")
            if username or password_file:
                raise ValueError("--forward-username / --forward-password-file need --forward-shared-key-file")
            return None
        if bool(cert_file) != bool(key_file):
            raise ValueError("--forward-cert-file and --forward-key-file go together (the client certificate and its key)")
        if (username or password_file) and not shared_key_file:
            raise ValueError("--forward-username / --forward-password-file need --forward-shared-key-file")
        shared_key = read_secret(shared_key_file, "shared key") if shared_key_file else ""
        password = read_secret(password_file, "password") if password_file else ""
        return cls(tls, ca_file, cert_file, key_file, shared_key, username, password)

    def secure(self, sock: socket.socket, server_name: str) -> Tuple[socket.socket, bool]:
        """TLS around ``sock`` and the handshake over it, within the socket's timeout: the socket
        to use and whether the server keeps the connection open (keepalive). OSError
        (ssl.SSLError, HandshakeError, TimeoutError) when it fails; ``sock`` is then closed."""
        keepalive = True
        try:
            if self.tls_context is not None:
                sock = self.tls_context.wrap_socket(sock, server_hostname=server_name)
            if self.shared_key:
                keepalive = self._handshake(sock)
        except BaseException:
            sock.close()
            raise
        return sock, keepalive

    def _handshake(self, sock: socket.socket) -> bool:
        replies = msgpack.Unpacker(raw=False, max_buffer_size=_MAX_HANDSHAKE_BYTES)
        helo = _next_message(sock, replies)
        if not (isinstance(helo, list) and len(helo) == 2 and helo[0] == "HELO" and isinstance(helo[1], dict)):
            raise HandshakeError(f"expected the server's HELO, got {str(helo)[:100]!r} (is <security> on?)")
        options = helo[1]
        nonce, auth = options.get("nonce") or b"", options.get("auth") or b""
        salt = os.urandom(16).hex()
        ping = ["PING", self.hostname, salt, _digest(salt, self.hostname, nonce, self.shared_key)]
        if auth:
            ping += [self.username, _digest(auth, self.username, self.password)]
        else:
            ping += ["", ""]
        sock.sendall(msgpack.packb(ping))
        pong = _next_message(sock, replies)
        if not (isinstance(pong, list) and len(pong) == 5 and pong[0] == "PONG"):
            raise HandshakeError(f"expected the server's PONG, got {str(pong)[:100]!r}")
        _, accepted, reason, server_hostname, digest = pong
        if accepted is not True:
            raise HandshakeError(f"the server refused the handshake: {reason}")
        if digest != _digest(salt, server_hostname, nonce, self.shared_key):
            raise HandshakeError("the server's PONG does not prove it holds the shared key")
        return options.get("keepalive", True) is not False


def _next_message(sock: socket.socket, replies: "msgpack.Unpacker") -> Any:
    """The next msgpack message the server sends (ConnectionError if it closes first)."""
    while True:
        try:
            return next(replies)
        except StopIteration:
            pass
        except (msgpack.UnpackException, ValueError) as error:
            raise HandshakeError(f"unreadable handshake message: {error}") from None
        data = sock.recv(4096)
        if not data:
            raise ConnectionError("the server closed the connection during the handshake")
        try:
            replies.feed(data)
        except msgpack.BufferFull:
            raise HandshakeError("the server's handshake message is too long") from None
