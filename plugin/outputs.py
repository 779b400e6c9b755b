"""Where alerts go: stdout as JSON lines or a msgpack stream (Fluentd exec_filter, Fluent Bit
in_exec, pipes), flushed per record, and nothing but records ever."""

from typing import BinaryIO, Callable, Dict, Optional

import msgpack
import msgspec

from .forward import ForwardOutput
from .logs import LOG


class OutputClosed(Exception):
    """The reader of stdout went away (broken pipe): the process ends quietly."""


def closed_output(stream, error: Exception) -> OutputClosed:
    """``error``, raised in writing to ``stream``, as OutputClosed when it says the stream is
    gone (a broken pipe, or a write to a closed file); any other error is raised again: an
    encoding error must never pass for a reader that went away (and stop the run quietly)."""
    if isinstance(error, BrokenPipeError) or getattr(stream, "closed", False):
        return OutputClosed(str(error))
    raise error


def _json_line(record: dict) -> bytes:
    return msgspec.json.encode(record) + b"\n"


ENCODERS: Dict[str, Callable[[dict], bytes]] = {
    "json": _json_line,
    "msgpack": msgpack.packb,
}


class StdoutOutput:
    """Writes each record whole and flushes it at once (an alert must not wait for a buffer).

    With ``record_tag_key`` every record carries its tag under that key, so Fluentd's
    ``<extract> tag_key`` routes alerts and health records apart; without it health records
    are not written here (they would look like alerts downstream).
    """

    def __init__(self, stream: BinaryIO, encoding: str, alert_tag: str, stats_tag: str, record_tag_key: str = "") -> None:
        self._stream = stream
        self._encode = ENCODERS[encoding]
        self._alert_tag = alert_tag
        self._stats_tag = stats_tag
        self._tag_key = record_tag_key

    @property
    def carries_stats(self) -> bool:
        """True when health records can go to stdout (they can be told apart by their tag)."""
        return bool(self._tag_key)

    def alert(self, record: dict, event_time: float) -> None:
        self._write(record, self._alert_tag)

    def stats(self, record: dict, event_time: float) -> None:
        self._write(record, self._stats_tag)

    def _write(self, record: dict, tag: str) -> None:
        if self._tag_key:
            record = {**record, self._tag_key: tag}
        data = self._encode(record)  # alerts are encodable (alerts.build_alert), health figures are ours
        try:
            self._stream.write(data)
            self._stream.flush()
        except (BrokenPipeError, ValueError) as error:  # ValueError: a write to a closed file
            raise closed_output(self._stream, error) from None

    def close(self, timeout: float = 0.0) -> None:
        try:
            self._stream.flush()
        except (BrokenPipeError, ValueError) as error:
            closed_output(self._stream, error)  # raises unless the reader is gone (then nothing is left to flush)


class ForwardAlerts:
    """Alerts (spooled, acknowledged) and health records (in memory only: a lost one is
    replaced by the next) to a Fluentd / Fluent Bit forward input, each under its own tag."""

    carries_stats = True

    def __init__(self, address: str, alert_tag: str, stats_tag: str, spool_path: Optional[str],
                 spool_max_bytes: int) -> None:
        self._alerts = ForwardOutput(address, alert_tag, spool_path, spool_max_bytes, log=LOG)
        self._stats = ForwardOutput(address, stats_tag, None, 1024 * 1024, log=LOG)

    def alert(self, record: dict, event_time: float) -> None:
        self._alerts.emit(record, event_time)

    def stats(self, record: dict, event_time: float) -> None:
        self._stats.emit(record, event_time)

    def figures(self) -> dict:
        return self._alerts.stats

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is pending within ``timeout``; unacknowledged alerts stay spooled."""
        self._alerts.close(timeout)
        self._stats.close(0.5)
