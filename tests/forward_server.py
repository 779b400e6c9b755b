"""A real forward-protocol server on loopback TCP or a unix socket, for tests.

It decodes the bytes that arrive with ``msgpack.Unpacker`` (EventTime becomes float seconds),
accepts Message, Forward, PackedForward and CompressedPackedForward, records ``(tag, time,
record)`` tuples in arrival order and answers ``{"ack": chunk}`` when a message asks for it,
unless ``send_acks`` is False (``ack_reply`` can make it answer something else). ``stop()``
drops every connection like a killed server; ``start()`` listens again on the same port (or
path). Events survive a restart.

With ``tls`` (a server-side ``ssl.SSLContext``) every connection is TLS; with ``shared_key`` it
runs the server side of the shared-key handshake first, as Fluentd's in_forward does with
``<security>``: HELO, then the client's PING checked (and ``users`` name -> password when set),
then PONG, or a refusal and the connection closed. ``handshakes`` records each outcome
(``"ok"`` or the refusal's reason); ``keepalive=False`` closes each connection after an answer.
``bytes_received`` counts what arrived on the wire; ``keep_events=False`` keeps only the count
of events (a benchmark measuring bytes must not grow).

    with ForwardServer() as server:
        output = ForwardOutput(server.address, "tag", None)
        ...
        (tag, time, record), = server.wait_for_events(1)
"""

import gzip
import hashlib
import io
import os
import socket
import ssl
import struct
import threading
import time
from typing import Callable, Dict, Optional

import msgpack

_POLL_SECONDS = 0.05  # how soon accept/recv loops notice stop()


def decode_event_time(code: int, data: bytes) -> object:
    """msgpack ext_hook: EventTime (ext type 0, uint32 seconds + uint32 nanoseconds) to float."""
    if code == 0 and len(data) == 8:
        seconds, nanoseconds = struct.unpack(">II", data)
        return seconds + nanoseconds / 1e9
    return msgpack.ExtType(code, data)


class ForwardServer:
    """Loopback forward server: TCP on ``host`` (port 0 picks one), or a unix socket."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, unix_path: Optional[str] = None,
                 tls: Optional[ssl.SSLContext] = None, shared_key: str = "", users: Optional[Dict[str, str]] = None,
                 keepalive: bool = True, hostname: str = "forward-server", keep_events: bool = True) -> None:
        self.host = host
        self.port = port
        self.unix_path = unix_path
        self.tls = tls
        self.shared_key = shared_key
        self.users = users
        self.keepalive = keepalive
        self.hostname = hostname
        self.pong_key = shared_key  # what the PONG's digest is made with (a server without the key: another)
        self.handshakes: list[str] = []
        self.keep_events = keep_events
        self.bytes_received = 0
        self.events_received = 0
        self.send_acks = True
        self.ack_reply: Callable[[object], object] = lambda chunk: {"ack": chunk}
        self.connections_accepted = 0
        self._events: list[tuple[str, float, dict]] = []
        self._options: list[dict] = []
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._listener: Optional[socket.socket] = None
        self._threads: list[threading.Thread] = []

    @property
    def address(self) -> str:
        """The address in ForwardOutput's syntax; the TCP port is known once started."""
        if self.unix_path:
            return f"unix://{self.unix_path}"
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def events(self) -> list[tuple[str, float, dict]]:
        """Every ``(tag, time, record)`` received so far, in arrival order (a copy)."""
        with self._changed:
            return list(self._events)

    @property
    def options(self) -> list[dict]:
        """The option map of every message received (``{}`` when it had none)."""
        with self._changed:
            return list(self._options)

    def wait_for_events(self, count: int, timeout: float = 5.0) -> list[tuple[str, float, dict]]:
        """Wait until at least ``count`` events arrived; AssertionError after ``timeout``."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._events) >= count, timeout):
                raise AssertionError(f"{len(self._events)} events arrived, expected {count}")
            return list(self._events)

    def start(self) -> "ForwardServer":
        if self.unix_path:
            if os.path.exists(self.unix_path):
                os.unlink(self.unix_path)
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(self.unix_path)
        else:
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            listener = socket.socket(family, socket.SOCK_STREAM)
            # SO_REUSEADDR: restart on the same port while old connections sit in TIME_WAIT
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self.host, self.port))
            self.port = listener.getsockname()[1]
        listener.listen(16)
        listener.settimeout(_POLL_SECONDS)
        self._listener = listener
        self._stopping.clear()
        self._spawn(self._accept_loop, listener)
        return self

    def stop(self) -> None:
        """Close the listener and every connection at once, as a killed server would."""
        self._stopping.set()
        for thread in self._threads:
            thread.join()
        self._threads = []
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self.unix_path and os.path.exists(self.unix_path):
            os.unlink(self.unix_path)

    def __enter__(self) -> "ForwardServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = listener.accept()
            except socket.timeout:
                continue
            self.connections_accepted += 1
            self._spawn(self._serve, connection)

    def _serve(self, connection: socket.socket) -> None:
        unpacker = msgpack.Unpacker(raw=False, ext_hook=decode_event_time)
        try:
            connection = self._secure(connection, unpacker)
        except (OSError, ValueError) as error:
            connection.close()
            with self._changed:
                self.handshakes.append(f"failed: {error}")
                self._changed.notify_all()
            return
        if connection is None:
            return
        connection.settimeout(_POLL_SECONDS)
        with connection:
            while not self._stopping.is_set():
                try:
                    data = connection.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    return
                if not data:
                    return
                self.bytes_received += len(data)
                unpacker.feed(data)
                for message in unpacker:
                    self._receive(message, connection)
                    if not self.keepalive:
                        return

    def _secure(self, connection: socket.socket, unpacker: "msgpack.Unpacker") -> Optional[socket.socket]:
        """TLS, then the handshake; the connection to serve, or None (refused and closed)."""
        if self.tls is not None:
            connection.settimeout(5.0)
            connection = self.tls.wrap_socket(connection, server_side=True)
        if not self.shared_key:
            return connection
        connection.settimeout(5.0)
        nonce, auth = os.urandom(16), os.urandom(16)
        connection.sendall(msgpack.packb(["HELO", {"nonce": nonce, "auth": auth if self.users else b"",
                                                    "keepalive": self.keepalive}]))
        ping = _next_message(connection, unpacker)
        reason = _check_ping(ping, nonce, auth, self.shared_key, self.users)
        with self._changed:
            self.handshakes.append(reason or "ok")
            self._changed.notify_all()
        if reason:
            connection.sendall(msgpack.packb(["PONG", False, reason, "", ""]))
            connection.close()
            return None
        salt = ping[2]
        connection.sendall(msgpack.packb(["PONG", True, "", self.hostname,
                                          _sha512(salt, self.hostname, nonce, self.pong_key)]))
        return connection

    def _receive(self, message: list, connection: socket.socket) -> None:
        """Record one message's events, then acknowledge it (after, as in_forward does)."""
        tag, second = message[0], message[1]
        if isinstance(second, bytes):  # PackedForward, maybe gzip-compressed
            option = message[2] if len(message) > 2 else {}
            packed = gzip.decompress(second) if option.get("compressed") == "gzip" else second
            entries = list(msgpack.Unpacker(io.BytesIO(packed), raw=False,
                                            ext_hook=decode_event_time))
        elif isinstance(second, list):  # Forward
            option = message[2] if len(message) > 2 else {}
            entries = second
        else:  # Message
            option = message[3] if len(message) > 3 else {}
            entries = [[second, message[2]]]
        with self._changed:
            self.events_received += len(entries)
            if self.keep_events:
                self._events.extend((tag, event_time, record) for event_time, record in entries)
                self._options.append(option)
            self._changed.notify_all()
        if "chunk" in option and self.send_acks:
            try:
                connection.sendall(msgpack.packb(self.ack_reply(option["chunk"])))
            except OSError:
                pass  # the client went away; it will re-send


def _sha512(*parts) -> str:
    return hashlib.sha512(b"".join(part if isinstance(part, bytes) else part.encode() for part in parts)).hexdigest()


def _check_ping(ping: object, nonce: bytes, auth: bytes, shared_key: str, users: Optional[Dict[str, str]]) -> str:
    """Why a PING is refused ("" when it is good), with in_forward's reasons."""
    if not (isinstance(ping, list) and len(ping) == 6 and ping[0] == "PING"):
        return "invalid ping message"
    _, hostname, salt, digest, username, password_digest = ping
    if digest != _sha512(salt, hostname, nonce, shared_key):
        return "shared_key mismatch"
    if users is not None and (username not in users or password_digest != _sha512(auth, username, users[username])):
        return "username/password mismatch"
    return ""


def _next_message(connection: socket.socket, unpacker: "msgpack.Unpacker") -> object:
    for message in unpacker:
        return message
    while True:
        data = connection.recv(4096)
        if not data:
            raise ConnectionError("closed during the handshake")
        unpacker.feed(data)
        for message in unpacker:
            return message


def wait_until(condition, timeout: float = 5.0, message: str = "condition") -> None:
    """Poll ``condition()`` every few milliseconds until true; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(0.005)
