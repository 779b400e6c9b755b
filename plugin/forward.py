"""Alerts to a Fluentd or Fluent Bit ``forward`` input, delivered at least once.

Each alert is spooled before :meth:`ForwardOutput.emit` returns and leaves the spool only when
the server has answered ``{"ack": chunk}`` for a chunk that carried it. A background thread sends
the spool oldest first in Forward mode (``[tag, [[EventTime, record], ...], {"chunk", "size"}]``),
one chunk in flight at a time, and reconnects with capped exponential back-off. Re-sends can
repeat an alert; the record's ``AlertId`` lets the receiver recognise repeats. With ``compress``
chunks go gzip-compressed (CompressedPackedForward); ``security`` adds TLS and the shared-key
handshake (forward_security.py).

fluent-logger supplies :class:`fluent.sender.EventTime`; its sender cannot be used for the rest
(no ack, no IPv6, it reads and discards whatever the server sends): see docs/forwarding.md.
"""

import base64
import gzip
import logging
import os
import socket
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass
from typing import BinaryIO, Callable, NamedTuple, Optional

import msgpack
from fluent.sender import EventTime

from .files import lock_beside, replace_atomically
from .forward_security import ForwardSecurity

_DEFAULT_LOG = logging.getLogger("fail2entra.forward")

BACKOFF_MIN_SECONDS = 0.1
BACKOFF_MAX_SECONDS = 5.0
# Fluent Bit's in_forward grows its buffer in Buffer_Chunk_Size steps (1,024,000 bytes by
# default) and drops the connection past Buffer_Max_Size; half a MiB per chunk stays well inside.
CHUNK_MAX_BYTES = 512 * 1024
CHUNK_MAX_ALERTS = 1000
# Rewrite the spool once acknowledged bytes outweigh the live ones (and exceed this), so each
# byte is rewritten O(1) times on average and small steady traffic rarely pays an fsync.
COMPACTION_MIN_DEAD_BYTES = 64 * 1024
# A full spool is compacted for a new alert only once acknowledged bytes make up an eighth of
# it: a spool kept full by a flood while it drains is rewritten at most every max/8 bytes.
COMPACT_WHEN_FULL_FRACTION = 8
ERROR_LOG_INTERVAL_SECONDS = 10.0
_MAX_REPLY_BYTES = 64 * 1024  # an ack is a few dozen bytes; a larger reply is not a forward server

_ALERT_FRAME = "f2e-alert"
_ACKED_FRAME = "f2e-acked"
# What the first bytes of each frame look like on disk; reading resumes at one after damage.
_FRAME_STARTS = (
    msgpack.Packer().pack_array_header(4) + msgpack.packb(_ALERT_FRAME),
    msgpack.Packer().pack_array_header(2) + msgpack.packb(_ACKED_FRAME),
)




@dataclass(frozen=True)
class ForwardAddress:
    """Where the forward server listens: ``host`` and ``port``, or a unix socket path."""

    host: str = ""
    port: int = 0
    unix_path: str = ""

    def __str__(self) -> str:
        if self.unix_path:
            return f"unix://{self.unix_path}"
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_address(text: str) -> ForwardAddress:
    """Read ``HOST:PORT``, ``[v6addr]:PORT`` or ``unix:///path/to/socket``; ValueError otherwise.

    >>> parse_address("[::1]:24224"), parse_address("unix:///run/fluent.sock").unix_path
    (ForwardAddress(host='::1', port=24224, unix_path=''), '/run/fluent.sock')
    """
    if text.startswith("unix://"):
        path = text[len("unix://"):]
        if not path:
            raise ValueError(f"forward address {text!r}: no socket path after unix://")
        return ForwardAddress(unix_path=path)
    if text.startswith("["):
        host, bracket, port_text = text[1:].partition("]")
        if not bracket or not port_text.startswith(":"):
            raise ValueError(f"forward address {text!r}: expected [v6addr]:PORT")
        port_text = port_text[1:]
    else:
        host, _, port_text = text.rpartition(":")
        if ":" in host:
            raise ValueError(f"forward address {text!r}: write an IPv6 address as [addr]:PORT")
    if not host:
        raise ValueError(f"forward address {text!r}: expected HOST:PORT")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"forward address {text!r}: port must be 1-65535")
    return ForwardAddress(host=host, port=int(port_text))


class SpooledAlert(NamedTuple):
    """One unacknowledged alert: its spool sequence number and packed ``[EventTime, record]``."""

    seq: int
    payload: bytes  # a Forward-mode entry, sent as is
    frame_size: int  # bytes it takes in the spool file, the unit of the size bound


class _Throttle:
    """Lets a repeated error through at most once per interval, counting the ones held back."""

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._next_report = 0.0
        self.held_back = 0

    def occurred(self) -> Optional[int]:
        """Record one occurrence; return how many to report now (held back + this), or None."""
        self.held_back += 1
        now = time.monotonic()
        if now < self._next_report:
            return None
        count, self.held_back = self.held_back, 0
        self._next_report = now + self._interval
        return count


def _alert_frame(seq: int, payload: bytes) -> bytes:
    return msgpack.packb([_ALERT_FRAME, seq, payload, zlib.crc32(payload)])


def _is_valid_frame(frame: object) -> bool:
    if not isinstance(frame, list) or not frame:
        return False
    if frame[0] == _ALERT_FRAME and len(frame) == 4:
        _, seq, payload, crc = frame
        return isinstance(seq, int) and isinstance(payload, bytes) and crc == zlib.crc32(payload)
    return frame[0] == _ACKED_FRAME and len(frame) == 2 and isinstance(frame[1], int)


def _decode_frames(data: bytes) -> tuple[list[list], list[tuple[int, int]]]:
    """Split spool bytes into valid frames and the unreadable ``(offset, length)`` ranges.

    After damage (a torn last write, a bad checksum, garbage), reading resumes at the next
    frame start, so a damaged entry costs only itself. The tight unpacker limits make garbage
    fail fast instead of allocating what a random length header claims.
    """
    frames: list[list] = []
    unreadable: list[tuple[int, int]] = []
    offset = 0
    while offset < len(data):
        unpacker = msgpack.Unpacker(
            raw=False, max_buffer_size=len(data), max_bin_len=len(data), max_str_len=16,
            max_array_len=4, max_map_len=0, max_ext_len=0,
        )
        unpacker.feed(memoryview(data)[offset:])
        good_end = offset
        try:
            for frame in unpacker:  # stops quietly at a truncated last frame
                if not _is_valid_frame(frame):
                    break
                frames.append(frame)
                good_end = offset + unpacker.tell()
        except (msgpack.UnpackException, ValueError):
            pass
        if good_end == len(data):
            break
        resume = min((i for i in (data.find(s, good_end + 1) for s in _FRAME_STARTS) if i >= 0),
                     default=len(data))
        unreadable.append((good_end, resume - good_end))
        offset = resume
    return frames, unreadable


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class AlertSpool:
    """Unacknowledged alerts, oldest first, in memory and (with a path) in an append-only file.

    File format: a sequence of msgpack arrays, ``["f2e-alert", seq, payload, crc32(payload)]``
    for each alert (payload: the packed ``[EventTime, record]``) and ``["f2e-acked", seq]``
    recording that every alert up to ``seq`` is acknowledged (acks come oldest first, so they
    always cover a prefix).

    Crash safety: :meth:`append` writes the whole frame with ``os.write`` before it returns, so
    the bytes are in the kernel once ``emit()`` returns and a kill -9 cannot lose them; the sender
    thread fsyncs before each send, so power loss costs at most what arrived since. A write torn
    by a crash leaves a truncated last frame, which loading discards with a warning (the crc and
    the frame markers catch damage elsewhere, losing only the damaged entries). An ack frame that
    is lost only causes a re-send. Compaction writes the live alerts to ``path.tmp``, fsyncs it,
    renames it over the spool and fsyncs the directory: a crash leaves the old file or the new
    one, each complete. Opening a spool compacts it, so appends never follow a torn frame.

    Size bound: the file never exceeds ``max_bytes``. When an alert does not fit, acknowledged
    bytes are compacted away first if they are worth a rewrite (COMPACT_WHEN_FULL_FRACTION);
    otherwise the *new* alert is refused. Dropping the newest keeps the file append-only (no
    rewrite per alert under pressure, nothing in flight disappears) and keeps the alerts that
    show how an incident began; every refusal is counted and logged by the caller.
    """

    def __init__(self, path: Optional[str], max_bytes: int, log: logging.Logger) -> None:
        self._path = path
        self._max_bytes = max_bytes
        self._log = log
        self._lock = threading.Lock()
        self._alerts: deque[SpooledAlert] = deque()
        self._live_bytes = 0  # frame bytes of the alerts in self._alerts
        self._file_bytes = 0  # bytes in the spool file: live alerts, acknowledged ones, ack frames
        self._next_seq = 0
        self._fd: Optional[int] = None
        self._lock_fd: Optional[int] = None
        self._unsynced = False
        self._write_errors = _Throttle(ERROR_LOG_INTERVAL_SECONDS)
        if path is not None:
            self._lock_fd = lock_beside(path, "forward spool")
            try:
                self._load(path)
                self._rewrite(path)
            except BaseException:
                os.close(self._lock_fd)
                raise
        # Alerts left by an earlier process may have been sent already: re-sends from here on.
        self.inherited_through_seq = self._next_seq - 1

    @property
    def path(self) -> Optional[str]:
        return self._path

    @property
    def max_bytes(self) -> int:
        return self._max_bytes

    def __len__(self) -> int:
        with self._lock:
            return len(self._alerts)

    def _load(self, path: str) -> None:
        try:
            with open(path, "rb") as spool_file:
                data = spool_file.read()
        except FileNotFoundError:
            return
        frames, unreadable = _decode_frames(data)
        for offset, length in unreadable:
            self._log.warning(
                "forward spool %s: discarded %d unreadable bytes at offset %d (a write torn by a "
                "crash, or damage); the readable alerts around them are kept", path, length, offset)
        acked_through = max((f[1] for f in frames if f[0] == _ACKED_FRAME), default=-1)
        for _, seq, payload, _ in (f for f in frames if f[0] == _ALERT_FRAME):
            if seq > acked_through:
                self._keep(SpooledAlert(seq, payload, len(_alert_frame(seq, payload))))
        self._next_seq = max((alert.seq for alert in self._alerts), default=-1) + 1

    def _keep(self, alert: SpooledAlert) -> None:
        self._alerts.append(alert)
        self._live_bytes += alert.frame_size

    def append(self, payload: bytes) -> bool:
        """Spool one packed alert; False (nothing stored) when it would exceed the size bound."""
        with self._lock:
            frame = _alert_frame(self._next_seq, payload)
            if self._live_bytes + len(frame) > self._max_bytes:
                return False
            if self._fd is not None and self._file_bytes + len(frame) > self._max_bytes:
                dead_bytes = self._file_bytes - self._live_bytes
                if dead_bytes < max(len(frame), self._max_bytes // COMPACT_WHEN_FULL_FRACTION):
                    return False
                self._compact()
            self._append_to_file(frame)
            self._keep(SpooledAlert(self._next_seq, payload, len(frame)))
            self._next_seq += 1
            return True

    def _append_to_file(self, frame: bytes) -> None:
        """Append a frame; on failure (disk full) cut the file back so later frames stay aligned.

        The alert is still kept in memory and sent: losing it because the disk is full while the
        network works would be worse. The next successful compaction persists it.
        """
        if self._fd is None:
            return
        try:
            _write_all(self._fd, frame)
        except OSError as error:
            try:
                os.ftruncate(self._fd, self._file_bytes)
            except OSError:
                pass  # the torn frame is skipped when the spool is next loaded
            count = self._write_errors.occurred()
            if count:
                self._log.error("forward spool %s: %d write(s) failed (%s); those alerts are kept "
                                "in memory only until delivered", self._path, count, error)
            return
        self._file_bytes += len(frame)
        self._unsynced = True

    def oldest(self, max_alerts: int, max_payload_bytes: int) -> list[SpooledAlert]:
        """The oldest alerts, as many as fit the limits (at least one if any is pending)."""
        batch: list[SpooledAlert] = []
        size = 0
        with self._lock:
            for alert in self._alerts:
                too_many = len(batch) >= max_alerts
                if batch and (too_many or size + len(alert.payload) > max_payload_bytes):
                    break
                batch.append(alert)
                size += len(alert.payload)
        return batch

    def acknowledge(self, through_seq: int) -> int:
        """Drop every alert up to ``through_seq``; record it by an ack frame or by compaction.

        Returns how many alerts were dropped. Runtime: O(alerts dropped), plus an amortised
        O(1) rewrite cost per byte when compaction runs.
        """
        with self._lock:
            acknowledged = 0
            while self._alerts and self._alerts[0].seq <= through_seq:
                self._live_bytes -= self._alerts.popleft().frame_size
                acknowledged += 1
            if self._fd is None or not acknowledged:
                return acknowledged
            acked_frame = msgpack.packb([_ACKED_FRAME, through_seq])
            dead_bytes = self._file_bytes - self._live_bytes
            if dead_bytes >= max(self._live_bytes, COMPACTION_MIN_DEAD_BYTES):
                self._compact()
            elif self._file_bytes + len(acked_frame) <= self._max_bytes:
                self._append_to_file(acked_frame)
            # else no room for the ack frame: a crash before the next compaction re-sends these
            return acknowledged

    def sync(self) -> None:
        """fsync appended frames, on a duplicate descriptor so emit() never waits for the disk."""
        with self._lock:
            if self._fd is None or not self._unsynced:
                return
            fd = os.dup(self._fd)
            self._unsynced = False
        try:
            os.fsync(fd)
        except OSError as error:
            self._log.error("forward spool %s: fsync failed: %s", self._path, error)
        finally:
            os.close(fd)

    def _rewrite(self, path: str) -> None:
        """Replace the spool file by the live alerts (atomically, see files.replace_atomically)."""
        def write_live(temp: BinaryIO) -> None:
            for alert in self._alerts:
                temp.write(_alert_frame(alert.seq, alert.payload))

        replace_atomically(path, write_live)
        if self._fd is not None:
            os.close(self._fd)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        self._file_bytes = self._live_bytes
        self._unsynced = False

    def _compact(self) -> None:
        """Rewrite while running; on failure keep appending to the old file, which stays valid."""
        assert self._path is not None
        try:
            self._rewrite(self._path)
        except OSError as error:
            self._log.error("forward spool %s: compaction failed (%s); the spool keeps "
                            "acknowledged alerts, which may be sent again after a restart",
                            self._path, error)

    def close(self) -> None:
        """Compact away acknowledged alerts, close the file and release the lock. Idempotent."""
        with self._lock:
            if self._fd is not None:
                if self._file_bytes > self._live_bytes:
                    self._compact()
                try:
                    os.fsync(self._fd)
                finally:
                    os.close(self._fd)
                    self._fd = None
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    def _check(self) -> None:
        """Assert the invariants (for tests): byte accounting, order, bound, file size."""
        with self._lock:
            seqs = [a.seq for a in self._alerts]
            assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
            assert all(a.seq < self._next_seq for a in self._alerts)
            assert self._live_bytes == sum(a.frame_size for a in self._alerts)
            if self._fd is not None:
                assert self._live_bytes <= self._file_bytes
                assert self._file_bytes <= max(self._max_bytes, self._live_bytes)
                assert os.fstat(self._fd).st_size == self._file_bytes


class _Connection:
    """One socket to the forward server and the replies read from it; ``keepalive`` False when
    the server closes it after each answer (its HELO said so)."""

    def __init__(self, sock: socket.socket, keepalive: bool = True) -> None:
        self._socket = sock
        self.keepalive = keepalive
        self._replies = msgpack.Unpacker(raw=False, max_buffer_size=_MAX_REPLY_BYTES)

    def deliver(self, message: bytes, chunk_id: str, ack_timeout: float,
                bounded: Callable[[float], float]) -> None:
        """Send one chunk and wait for ``{"ack": chunk_id}``; OSError (TimeoutError) otherwise."""
        self._socket.settimeout(bounded(ack_timeout))
        self._socket.sendall(message)
        ack_deadline = time.monotonic() + ack_timeout
        while True:
            remaining = ack_deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no ack within {ack_timeout:g} s")
            self._socket.settimeout(bounded(remaining))
            data = self._socket.recv(4096)
            if not data:
                raise ConnectionError("the server closed the connection before acknowledging")
            try:
                self._replies.feed(data)
                replies = list(self._replies)
            except (msgpack.UnpackException, ValueError) as error:
                raise ConnectionError(f"unreadable reply from the server: {error}") from None
            for reply in replies:
                if isinstance(reply, list) and reply[:1] == ["HELO"]:
                    raise ConnectionError("the server requires shared-key authentication "
                                          "(<security>): give --forward-shared-key-file")
                if isinstance(reply, dict) and reply.get("ack") == chunk_id:
                    return

    def close(self) -> None:
        try:
            self._socket.close()
        except OSError:
            pass


class ForwardOutput:
    """Forward alerts to a Fluentd/Fluent Bit ``forward`` input with at-least-once delivery.

    ``emit()`` spools the alert and returns; a daemon thread does all network I/O. Without
    ``spool_path`` pending alerts live in memory only (same size bound) and are lost on exit.
    """

    def __init__(self, address: str, tag: str, spool_path: Optional[str],
                 spool_max_bytes: int = 64 * 1024 * 1024, log: logging.Logger = _DEFAULT_LOG,
                 connect_timeout: float = 3.0, ack_timeout: float = 30.0,
                 security: Optional[ForwardSecurity] = None, compress: bool = False) -> None:
        if not tag:
            raise ValueError("forward tag must not be empty")
        self._address = parse_address(address)
        if security is not None and security.tls_context is not None and self._address.unix_path:
            raise ValueError("TLS is for TCP: a unix socket stays on this host (drop --forward-tls)")
        self._security = security
        self._compress = compress
        self._tag = tag
        self._log = log
        self._connect_timeout = connect_timeout
        self._ack_timeout = ack_timeout
        self._spool = AlertSpool(spool_path, spool_max_bytes, log)
        self._counts_lock = threading.Lock()
        self._counts = dict.fromkeys(("emitted", "acknowledged", "resent", "reconnects",
                                      "spool_full_dropped"), 0)
        self._spool_full = _Throttle(ERROR_LOG_INTERVAL_SECONDS)
        self._wake = threading.Event()  # set by emit() and close()
        self._closing = threading.Event()
        self._deadline = float("inf")  # when close() stops trying
        self._thread = threading.Thread(target=self._send_loop, name="fail2entra-forward",
                                        daemon=True)
        self._thread.start()

    @property
    def stats(self) -> dict:
        """Counters: ``emitted`` (emit() calls), ``acknowledged``, ``resent`` (alerts sent again
        after a failed attempt or left by an earlier process), ``reconnects`` (connections
        opened after the first), ``spool_full_dropped`` (refused by the size bound), ``pending``
        (spooled, not yet acknowledged)."""
        with self._counts_lock:
            counts = dict(self._counts)
        counts["pending"] = len(self._spool)
        return counts

    def _count(self, name: str, amount: int = 1) -> None:
        with self._counts_lock:
            self._counts[name] += amount

    def emit(self, record: dict, event_time: float) -> None:
        """Spool one alert (``event_time``: seconds since the epoch) and return; the network is
        left to the sender thread. The alert is in the kernel's hands (the spool file) on return.

        When the spool is full the alert is dropped, counted and logged (rate-limited error).
        A record msgpack cannot encode raises TypeError here, before anything is spooled.
        """
        if self._closing.is_set():
            raise RuntimeError("ForwardOutput.emit() after close()")
        payload = msgpack.packb([EventTime(event_time), record])
        stored = self._spool.append(payload)
        to_report = total_dropped = None
        with self._counts_lock:
            self._counts["emitted"] += 1
            if not stored:
                self._counts["spool_full_dropped"] += 1
                to_report = self._spool_full.occurred()
                total_dropped = self._counts["spool_full_dropped"]
        if stored:
            self._wake.set()
        elif to_report:
            self._log.error(
                "forward spool full (%d bytes) while %s does not acknowledge: dropped %d new "
                "alert(s), latest AlertId %s; %d dropped in total", self._spool.max_bytes,
                self._address, to_report, record.get("AlertId"), total_dropped)

    def close(self, timeout: float = 5.0) -> None:
        """Try to deliver what is pending for up to ``timeout`` seconds, then stop.

        Whatever is unacknowledged stays in the spool for the next ForwardOutput on that path.
        """
        if self._closing.is_set():
            return
        self._deadline = time.monotonic() + timeout
        self._closing.set()
        self._wake.set()
        self._thread.join(timeout)
        self._spool.close()
        pending = len(self._spool)
        if pending and self._spool.path:
            self._log.warning("forward: %d alert(s) not acknowledged by %s stay in spool %s",
                              pending, self._address, self._spool.path)
        elif pending:
            self._log.error("forward: %d alert(s) not acknowledged by %s are lost (no spool_path)",
                            pending, self._address)
        with self._counts_lock:
            unreported = self._spool_full.held_back
        if unreported:
            self._log.error("forward spool full: %d more alert(s) dropped since the last report",
                            unreported)

    def _bounded(self, limit: float) -> float:
        """A socket timeout: ``limit``, cut short by close()'s deadline (never 0: non-blocking)."""
        return max(0.001, min(limit, self._deadline - time.monotonic()))

    def _connect(self) -> _Connection:
        timeout = self._bounded(self._connect_timeout)
        if self._address.unix_path:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                sock.connect(self._address.unix_path)
            except OSError:
                sock.close()
                raise
        else:
            sock = socket.create_connection((self._address.host, self._address.port), timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._security is None:
            return _Connection(sock)
        return _Connection(*self._security.secure(sock, self._address.host))

    def _forward_message(self, batch: list[SpooledAlert], chunk_id: str) -> bytes:
        """Forward mode ``[tag, [entries], {"chunk", "size"}]`` from the already packed entries,
        or with compression CompressedPackedForward ``[tag, gzip(entries), {..., "compressed"}]``."""
        packer = msgpack.Packer()
        if self._compress:
            entries = gzip.compress(b"".join(alert.payload for alert in batch), compresslevel=6)
            return packer.pack([self._tag, entries, {"chunk": chunk_id, "size": len(batch), "compressed": "gzip"}])
        return b"".join((
            packer.pack_array_header(3), packer.pack(self._tag),
            packer.pack_array_header(len(batch)), *(alert.payload for alert in batch),
            packer.pack({"chunk": chunk_id, "size": len(batch)}),
        ))

    def _send_loop(self) -> None:
        """Deliver the spool oldest first, one chunk in flight, until close() says stop."""
        connection: Optional[_Connection] = None
        connected_before = False
        failures = 0
        backoff = BACKOFF_MIN_SECONDS
        sent_through_seq = self._spool.inherited_through_seq
        try:
            while True:
                self._wake.clear()
                self._spool.sync()
                batch = self._spool.oldest(CHUNK_MAX_ALERTS, CHUNK_MAX_BYTES)
                if not batch:
                    if self._closing.is_set():
                        return
                    self._wake.wait()
                    continue
                if time.monotonic() >= self._deadline:
                    return
                try:
                    if connection is None:
                        connection = self._connect()
                        if connected_before:
                            self._count("reconnects")
                        connected_before = True
                    chunk_id = base64.b64encode(os.urandom(16)).decode("ascii")
                    self._count("resent", sum(1 for a in batch if a.seq <= sent_through_seq))
                    sent_through_seq = max(sent_through_seq, batch[-1].seq)
                    connection.deliver(self._forward_message(batch, chunk_id), chunk_id,
                                       self._ack_timeout, self._bounded)
                except Exception as error:  # noqa: BLE001 - the thread must outlive any failure
                    if connection is not None:
                        connection.close()
                        connection = None
                    if time.monotonic() >= self._deadline:
                        return
                    failures += 1
                    self._log_failure(error, failures, backoff)
                    pause = min(backoff, max(0.0, self._deadline - time.monotonic()))
                    if self._closing.is_set():
                        time.sleep(pause)
                    else:  # close() cuts the pause short: a shutdown after an outage gets its try
                        self._closing.wait(pause)
                    backoff = min(backoff * 2, BACKOFF_MAX_SECONDS)
                    continue
                self._count("acknowledged", self._spool.acknowledge(batch[-1].seq))
                if not connection.keepalive:  # the server closes after each answer: reconnect next time
                    connection.close()
                    connection = None
                if failures:
                    self._log.info("forward: %s acknowledges again after %d failed attempt(s)",
                                   self._address, failures)
                failures = 0
                backoff = BACKOFF_MIN_SECONDS
        finally:
            if connection is not None:
                connection.close()

    def _log_failure(self, error: Exception, failures: int, backoff: float) -> None:
        """Warn when delivery starts failing, then stay quiet (debug) until it recovers."""
        if not isinstance(error, OSError):
            self._log.exception("forward: unexpected error; alerts stay spooled and are retried")
        elif failures == 1:
            self._log.warning("forward to %s failed (%s); %d alert(s) stay spooled, retrying "
                              "with back-off up to %g s", self._address, error,
                              len(self._spool), BACKOFF_MAX_SECONDS)
        else:
            self._log.debug("forward to %s failed again (%s); next try in %g s",
                            self._address, error, backoff)
