"""The reader's sink: counts what was read, reports bad input, hands events to the engine."""

import time
from typing import Dict, Optional

from .engine import Engine
from .logs import RateLimitedLog


class Pipeline:
    """Implements the reader's Sink: every event goes straight to the engine (the reader counts
    them per kind), problems are counted and noticed (rate-limited) with the input name and
    line number."""

    def __init__(self, engine: Engine, notices: RateLimitedLog) -> None:
        self.engine = engine
        self.notices = notices
        self.input_name = "-"
        self.event = engine.process  # the hot path: no hop through this object
        self.ignored_records: Dict[str, int] = {}
        self.malformed_records: Dict[str, int] = {}
        self.unrecognised_lines = 0
        self.oversized_records = 0
        self.invalid_text_lines = 0
        self.bytes = 0
        self.started = time.time()

    def ignored(self, kind: str, why: str) -> None:
        self.ignored_records[kind] = self.ignored_records.get(kind, 0) + 1  # also recognised: see figures

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

    def figures(self, recognised_by_reader: Dict[str, int], snapshot_age: Optional[float] = None) -> dict:
        """The health figures, as one flat-ish record (the stats record and ``--stats``):
        recognised per kind is what the reader read into events or skipped as of no interest,
        plus the records recognised and ignored."""
        engine = self.engine
        counts = engine.counts
        now = time.time()
        recognised = dict(recognised_by_reader)
        for kind, count in self.ignored_records.items():
            recognised[kind] = recognised.get(kind, 0) + count
        return {
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
            **engine.tier_figures(),
            "event_time_lag_seconds": round(now - engine.newest, 3) if engine.newest else None,
            "snapshot_age_seconds": None if snapshot_age is None else round(snapshot_age, 3),
            "uptime_seconds": round(now - self.started, 3),
        }
