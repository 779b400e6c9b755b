"""Edge mode (``--edge``): failures are read, qualified by the profile and filtered by the failure
exclusions exactly as a single process would, then summarised per (source, IP, time bucket)
instead of correlated: count, first and last time, up to five hosts and users. What is held is
flushed as summary records every ``--flush-interval`` (an IP's failures never wait longer), when
more than ``--max-ips`` keys are held, and at the end of input.

The bucket is the central's (the window / 1440, as the engine's), so that a summary lands in
one bucket of the central's counter and gives it the same answer as the lines it stands for.
"""

import time
from typing import Callable, Dict, Sequence

from parsers.event import FAILURE_TABLES, Event
from parsers.summary import MAX_TARGETS

from ..engine import Engine, Settings
from ..profiles import Failure
from .summary import PendingKey, summary_records


class EdgeEngine(Engine):
    """An engine that summarises failures instead of counting them, and correlates nothing:
    sign-ins belong to the central (they are counted and ignored here, with a notice), and so
    do summaries. ``emit(record, event_time, tag)`` receives each summary record."""

    def __init__(self, settings: Settings, profile, emit: Callable[[dict, float, str], None],
                 report: Callable[[str, str], None] = lambda category, text: None,
                 failure_exclusions: Sequence = (), signin_exclusions: Sequence = (), *,
                 edge_name: str, shards: int = 1, flush_interval: float = 1.0,
                 summary_tag: str = "security.summary.fail2entra",
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(settings, profile, lambda record, when: None, report, failure_exclusions, signin_exclusions)
        self._emit_summary = emit
        self._edge_name = edge_name
        self._shards = shards
        self._flush_interval = flush_interval
        self._summary_tag = summary_tag
        self._clock = clock
        self._width = self.bucket_seconds()
        self._pending: Dict[PendingKey, list] = {}  # -> [count, first, last, hosts, users]
        self.next_flush = clock() + flush_interval
        self.summaries_emitted = 0
        self.summary_records = 0
        self.signins_ignored = 0

    def _count_failure(self, when: float, failure: Failure) -> None:
        """Add the failure to its (source, IP, bucket) summary."""
        source, ip, count = failure.source, failure.ip, failure.count
        self.counts.failures[source] += count
        if when > self.newest:
            self.newest = when  # for the event-time lag figure only: the central keeps the clock
        key = (source, ip, int(when // self._width))
        held = self._pending.get(key)
        if held is None:
            self._pending[key] = [count, when, when, (failure.host,), (failure.user,)]
            if len(self._pending) > self.settings.max_ips:
                self.flush()
            return
        held[0] += count
        if when < held[1]:
            held[1] = when
        elif when > held[2]:
            held[2] = when
        hosts, users = held[3], held[4]
        if failure.host not in hosts and len(hosts) < MAX_TARGETS:
            held[3] = hosts + (failure.host,)
        if failure.user not in users and len(users) < MAX_TARGETS:
            held[4] = users + (failure.user,)

    def _check_signin(self, signin: Event, ip: str) -> None:
        self.signins_ignored += 1
        self._report("edge-signin", f"edge mode: sign-in of {signin.user_principal_name!r} from {ip} ignored; "
                                    f"sign-ins go to the central, not to an edge (docs/edge.md)")

    def _merge_summaries(self, event: Event) -> None:
        summaries = event.summary
        self._refuse_summaries("edge", summaries.items, summaries, "an edge does not merge summaries; send them to a central")

    def flush(self) -> None:
        """Emit everything held, as summary records, and start a new interval."""
        self.next_flush = self._clock() + self._flush_interval
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        for summary in summary_records(pending, self._edge_name, self.profile.name, self._width, self._shards,
                                       self._summary_tag):
            self.summary_records += 1
            self._emit_summary(summary.record, summary.newest, summary.tag)
        self.summaries_emitted += len(pending)

    def tracked_ips(self) -> Dict[str, int]:
        """Summaries held per failure source (an edge tracks nothing longer than a flush)."""
        held = dict.fromkeys(FAILURE_TABLES, 0)
        for source, _, _ in self._pending:
            held[source] += 1
        return held

    def tracked_total(self) -> int:
        return len(self._pending)

    def tier_figures(self) -> dict:
        return {"summaries_emitted": self.summaries_emitted, "summary_records": self.summary_records,
                "signins_ignored_at_edge": self.signins_ignored, **super().tier_figures()}
