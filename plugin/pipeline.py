"""The reader's sink: counts what was read, reports bad input, hands events to the engine."""

import time
from typing import Dict, Optional

from parsers.event import Event

from .engine import Engine
from .logs import RateLimitedLog


class Pipeline:
    """Implements the reader's Sink: health counters per kind, rate-limited notices with the
    input name and line number, and every event passed to the engine."""

    def __init__(self, engine: Engine, notices: RateLimitedLog) -> None:
        self.engine = engine
        self.notices = notices
        self.input_name = "-"
        self.recognised: Dict[str, int] = {}
        self.ignored_records: Dict[str, int] = {}
        self.malformed_records: Dict[str, int] = {}
        self.unrecognised_lines = 0
        self.oversized_records = 0
        self.invalid_text_lines = 0
        self.lines = 0
        self.records = 0  # msgpack maps
        self.bytes = 0
        self.started = time.time()
        self._process = engine.process

    def event(self, event: Event) -> None:
        recognised = self.recognised
        kind = event.kind
        if kind in recognised:
            recognised[kind] += 1
        else:
            recognised[kind] = 1
        self._process(event)

    def ignored(self, kind: str, why: str) -> None:
        self.ignored_records[kind] = self.ignored_records.get(kind, 0) + 1

    def malformed(self, kind: str, reason: str, line_number: int) -> None:
        self.malformed_records[kind] = self.malformed_records.get(kind, 0) + 1
        self.notices.warning("malformed", f"{self.input_name}:{line_number}: malformed {kind} record: {reason}")

    def unrecognised(self, text: str, line_number: int) -> None:
        self.unrecognised_lines += 1
        self.notices.warning("unrecognised", f"{self.input_name}:{line_number}: unrecognised input: {text[:120]!r}")

    def oversized(self, size: int, line_number: int) -> None:
        self.oversized_records += 1
        self.notices.warning("oversized", f"{self.input_name}:{line_number}: record of {size} bytes is over the size limit; skipped")

    def invalid_text(self, line_number: int) -> None:
        self.invalid_text_lines += 1
        self.notices.warning("invalid-utf8", f"{self.input_name}:{line_number}: invalid UTF-8 replaced by U+FFFD")

    def figures(self, snapshot_age: Optional[float] = None, skipped: Optional[Dict[str, int]] = None) -> dict:
        """The health figures, as one flat-ish record (the stats record and ``--stats``);
        ``skipped`` are the syslog lines the reader recognised but did not parse, per kind."""
        engine = self.engine
        counts = engine.counts
        now = time.time()
        recognised = dict(self.recognised)
        for kind, count in (skipped or {}).items():
            recognised[kind] = recognised.get(kind, 0) + count
        return {
            "lines": self.lines,
            "records": self.records,
            "bytes": self.bytes,
            "recognised": dict(sorted(recognised.items())),
            "ignored": dict(sorted(self.ignored_records.items())),
            "unrecognised": self.unrecognised_lines,
            "malformed": dict(sorted(self.malformed_records.items())),
            "oversized": self.oversized_records,
            "invalid_utf8": self.invalid_text_lines,
            "failures_counted": dict(counts.failures),
            "successes": counts.successes,
            "alerts": counts.alerts,
            "alerts_late": counts.late_alerts,
            "alerts_suppressed": counts.suppressed,
            "ambiguous": counts.ambiguous,
            "future_timestamps": counts.future,
            "stale_events": counts.stale,
            "tracked_ips": engine.tracked_ips(),
            "retained_signins": engine.retained_signins(),
            "signins_evicted": counts.signins_evicted,
            "ips_evicted": counts.ips_evicted,
            "event_time_lag_seconds": round(now - engine.newest, 3) if engine.newest else None,
            "snapshot_age_seconds": None if snapshot_age is None else round(snapshot_age, 3),
            "uptime_seconds": round(now - self.started, 3),
        }
