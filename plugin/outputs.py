"""Where alerts go: stdout as JSON lines or a msgpack stream (Fluentd exec_filter, Fluent Bit
in_exec, pipes), flushed per record, and nothing but records ever."""

import time
from typing import TYPE_CHECKING, BinaryIO, Callable, Dict, Optional, Sequence, Union

import msgpack
import msgspec

from .logs import LOG

if TYPE_CHECKING:  # loaded only with --forward (ssl alone is 5 MB a process)
    from .forward import ForwardOutput
    from .forward_security import ForwardSecurity


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

    def alert(self, record: dict, event_time: float, tag: Optional[str] = None) -> None:
        """An alert (or an edge's summary record, under its own ``tag``)."""
        self._write(record, tag or self._alert_tag)

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
    replaced by the next) to a Fluentd / Fluent Bit forward input, each under its own tag.

    An edge's summary records go the same way, under one tag per shard (``alert_tags`` lists
    them; the first is the default): each tag has its own sender and spool (``PATH.K`` for tag K
    when there are several), since a forward message carries one tag.
    """

    carries_stats = True

    def __init__(self, address: str, alert_tags: Union[str, Sequence[str]], stats_tag: str,
                 spool_path: Optional[str], spool_max_bytes: int, security: "Optional[ForwardSecurity]" = None,
                 compress: bool = False) -> None:
        tags = [alert_tags] if isinstance(alert_tags, str) else list(alert_tags)
        self._default_tag = tags[0]
        from .forward import ForwardOutput

        self._records: Dict[str, "ForwardOutput"] = {}
        try:
            for index, tag in enumerate(tags):
                spool = spool_path if not spool_path or len(tags) == 1 else f"{spool_path}.{index}"
                self._records[tag] = ForwardOutput(address, tag, spool, spool_max_bytes, log=LOG,
                                                   security=security, compress=compress)
            self._stats = ForwardOutput(address, stats_tag, None, 1024 * 1024, log=LOG, security=security,
                                        compress=compress)
        except BaseException:
            for output in self._records.values():
                output.close(0.0)
            raise

    def alert(self, record: dict, event_time: float, tag: Optional[str] = None) -> None:
        self._records[tag or self._default_tag].emit(record, event_time)

    def stats(self, record: dict, event_time: float) -> None:
        self._stats.emit(record, event_time)

    def figures(self) -> dict:
        """The senders' counters, summed over the tags."""
        figures: Dict[str, int] = {}
        for output in self._records.values():
            for name, value in output.stats.items():
                figures[name] = figures.get(name, 0) + value
        return figures

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is pending within ``timeout``; unacknowledged alerts stay spooled."""
        deadline = time.monotonic() + timeout
        for output in self._records.values():
            output.close(max(0.0, deadline - time.monotonic()))
        self._stats.close(0.5)
