"""The streaming correlation: failures counted per source and IP, each successful sign-in
checked against the window around it, successes retained so that order does not matter.

Time is event time. The engine's clock is the newest event time seen, except that a time more
than ``future_skew`` ahead of the wall clock never moves it (a forged future line must not
expire everyone's state). State older than the window behind that clock is dropped.

A central of the two-tier setup (docs/edge.md) also merges the failure summaries of edge
collectors (``accept_summaries``), and a shard keeps only the IPs it ``owns``; the edge itself
is plugin/tiers/edge.py, an engine that summarises failures instead of counting them.
"""

import math
import time as _time
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from parsers.event import FAILURE_TABLES, Event, FailureSummaries

from .alerts import build_alert
from .counter import EvictionQueue, Evidence, FailureCounter
from .exclusions import ExclusionChain
from .profiles import AMBIGUOUS, Failure
from .retention import RetainedSignins

# Window edges are resolved to 1/1440 of the window (a minute for the default day): fine
# enough to be exact in practice, coarse enough that a day holds at most 1440 buckets.
BUCKETS_PER_WINDOW = 1440


def _signin_time(signin: Event) -> float:
    return signin.time


class Settings:
    """The engine's tunables; the CLI fills them from options and the config file."""

    def __init__(self, threshold: int = 5, window: float = 86400.0, suppress: float = 3600.0,
                 future_skew: float = 600.0, max_signins: int = 100_000, max_ips: int = 1_000_000) -> None:
        self.threshold = threshold
        self.window = window
        self.suppress = suppress
        self.future_skew = future_skew
        self.max_signins = max_signins
        self.max_ips = max_ips


class EngineCounts:
    """What the engine decided, for the health figures."""

    def __init__(self) -> None:
        self.failures: Dict[str, int] = {table: 0 for table in FAILURE_TABLES}
        self.successes = 0
        self.alerts = 0
        self.late_alerts = 0
        self.suppressed = 0
        self.ambiguous = 0
        self.future = 0
        self.stale = 0
        self.signins_evicted = 0
        self.ips_evicted = 0
        self.summaries_merged = 0
        self.summaries_refused: Dict[str, int] = {}  # by reason: not-accepted, profile, bucket, future, ...
        self.other_shard = {"failures": 0, "summaries": 0, "signins": 0}  # ignored: another shard's IPs


class Engine:
    """Decides, event by event, which successful sign-ins are alerts.

    ``profile`` says what counts (see profiles.py); the exclusions are plugin.exclusions
    entries (``predicate`` and a ``removed`` counter); ``emit`` receives each alert record with
    its sign-in's event time; ``report(category, text)`` receives notices (ambiguous lines,
    evictions), which the CLI rate-limits per category. ``accept_summaries`` lets edge
    summaries in; ``owns(list key)``, when given, says which IPs are this shard's (the others'
    failures, summaries and sign-ins are counted and ignored).
    """

    next_flush = math.inf  # when flush() is due (time.monotonic()); the central holds nothing back

    def __init__(self, settings: Settings, profile, emit: Callable[[dict, float], None],
                 report: Callable[[str, str], None] = lambda category, text: None,
                 failure_exclusions: Sequence = (), signin_exclusions: Sequence = (),
                 wall_clock: Callable[[], float] = _time.time, accept_summaries: bool = False,
                 owns: Optional[Callable[[str], bool]] = None) -> None:
        self.settings = settings
        self.profile = profile
        self.counts = EngineCounts()
        self._emit = emit
        self._report = report
        self._failure_exclusions = ExclusionChain(failure_exclusions)
        self._has_failure_exclusions = bool(failure_exclusions)  # a plain flag: checked on every failure
        self._signin_exclusions = ExclusionChain(signin_exclusions)
        self._has_signin_exclusions = bool(signin_exclusions)
        self._window = settings.window
        self._wall_clock = wall_clock
        self._accept_summaries = accept_summaries
        self._owns = owns
        bucket = self._bucket_width = max(1.0, settings.window / BUCKETS_PER_WINDOW)
        self.counters: Dict[str, FailureCounter] = {table: FailureCounter(bucket) for table in FAILURE_TABLES}
        self.newest = 0.0  # the engine's clock: newest trusted event time
        self.next_expiry = 0.0  # when the clock passes it, old state is dropped (once per bucket width)
        self.changes = 0  # grows with every change of state: a snapshot is written only after one
        self._future_limit = 0.0  # wall clock + skew, refreshed only when an event passes it
        # successes not (yet) alerts, waiting for failures that may come later
        self._retained = RetainedSignins(bucket, settings.max_signins)
        # (ip, upn) -> the times of the sign-ins already alerted, for suppression
        self._alerted: Dict[Tuple[str, str], List[float]] = {}
        self._eviction_queue = EvictionQueue()  # past --max-ips: who goes first

    # -- input ---------------------------------------------------------------------------

    def process(self, event: Event) -> None:
        """Take one event into account (any table; what does not count is ignored)."""
        if event.table in FAILURE_TABLES:
            if event.summary is not None:
                self._merge_summaries(event)
                return
            verdict = self.profile.failure(event)
            if type(verdict) is not str:
                self._take_failure(event, verdict)
            elif verdict is AMBIGUOUS:
                self.counts.ambiguous += 1
                self._report("ambiguous", f"ambiguous sshd line not counted: {event.message[:200]!r}")
            return
        ip = self.profile.success_ip(event)
        if ip is not None:
            if self._owns is not None and not self._owns(ip):
                self.counts.other_shard["signins"] += 1
                return
            self._check_signin(event, ip)

    def _take_failure(self, event: Event, failure: Failure) -> None:
        """A failure that qualifies: counted unless another shard owns its IP or an exclusion removes it."""
        if self._owns is not None and not self._owns(failure.ip):
            self.counts.other_shard["failures"] += 1
            return
        if self._has_failure_exclusions:
            excluded = self._failure_exclusions.first_match(event, failure.ip, failure.user)
            if excluded is not None:
                excluded.removed += 1
                return
        self._count_failure(event.time, failure)

    def _count_failure(self, when: float, failure: Failure) -> None:
        """Count it, unless it is older than the window behind the clock (an edge summarises it instead)."""
        if when > self.newest:
            self._advance_clock(when)
        elif when < self.newest - self._window:
            self.counts.stale += 1
            return
        source, ip, count, host, user = failure
        self._counted(source, ip, count, self.counters[source].add(ip, when, count, host, user))

    def _counted(self, source: str, ip: str, count: int, total: int) -> None:
        """``count`` failures of ``ip`` were added to ``source`` (``total`` now): evict past the
        cap if the IP is new, and recheck its waiting sign-ins."""
        self.changes += 1
        self.counts.failures[source] += count
        if total == count and self.tracked_total() > self.settings.max_ips:
            self._evict()
        waiting = self._retained.by_ip.get(ip)
        if waiting:
            self._recheck(ip, waiting)

    def _merge_summaries(self, event: Event) -> None:
        """An edge's summary record: each item merged as the failures it stands for, if this
        central takes it. What the header decides (accepted at all, profile, bucket width) is
        decided once for the record; clock and shard for each item."""
        summaries = event.summary
        if not self._accept_summaries:
            self._refuse_summaries("not-accepted", summaries.items, summaries, "--accept-summaries is off (a summary "
                                   "can blame any IP: accept them only from a trusted path)")
            return
        if summaries.profile != self.profile.name:
            self._refuse_summaries("profile", summaries.items, summaries, f"counted with profile "
                                   f"{summaries.profile!r}, this central uses {self.profile.name!r}")
            return
        width = summaries.bucket_seconds
        if width != self._bucket_width and not self._divides(width):
            self._refuse_summaries("bucket", summaries.items, summaries, f"buckets of {width:g} s do not divide "
                                   f"this central's {self._bucket_width:g} s (give both the same --window)")
            return
        counts, counters, owns, window = self.counts, self.counters, self._owns, self._window
        newest, merged = self.newest, 0
        for item in summaries.items:
            ip = item.ip
            if owns is not None and not owns(ip):
                counts.other_shard["summaries"] += 1
                continue
            when = item.last
            if when > newest:
                if when > self._future_limit and self._is_future(when):
                    counts.future += 1
                    self._refuse_summaries("future", [item], summaries, f"the last failure is more than "
                                           f"--future-skew {self.settings.future_skew:g} s ahead of this clock")
                    continue
                self._advance_clock(when)
                newest = when
            elif when < newest - window:
                counts.stale += 1
                continue
            merged += 1
            source, count = item.source, item.count
            self._counted(source, ip, count, counters[source].add_summary(
                ip, count, item.first, when, item.hosts, item.users))
        counts.summaries_merged += merged

    def _divides(self, width: float) -> bool:
        """Whether edge buckets of ``width`` seconds tile this central's buckets exactly."""
        ratio = self._bucket_width / width
        return ratio >= 1 and abs(ratio - round(ratio)) <= 1e-9 * ratio

    def _refuse_summaries(self, reason: str, items: list, summaries: FailureSummaries, why: str) -> None:
        """Count ``items`` as refused for ``reason`` and say so once (rate-limited like every notice)."""
        refused = self.counts.summaries_refused
        refused[reason] = refused.get(reason, 0) + len(items)
        shown = ", ".join(f"{item.count} {item.source} of {item.ip}" for item in items[:3])
        more = f" and {len(items) - 3} more" if len(items) > 3 else ""
        self._report("summary-refused", f"{len(items)} summar{'y' if len(items) == 1 else 'ies'} ({shown}{more}) from "
                                        f"edge {summaries.edge!r} refused: {why}")

    def _check_signin(self, signin: Event, ip: str) -> None:
        if self._has_signin_exclusions:
            excluded = self._signin_exclusions.first_match(signin, ip, signin.user_principal_name)
            if excluded is not None:
                excluded.removed += 1
                return
        self.counts.successes += 1
        self.changes += 1
        self._advance_clock(signin.time)
        evidence = self._evidence(ip, signin.time)
        if evidence is not None:
            self._alert(signin, ip, evidence, late=False)
        elif signin.time >= self.newest - 2 * self.settings.window:
            # a failure still accepted (up to a window behind the clock) may yet match it
            self._retain(signin, ip)
        else:
            self.counts.stale += 1

    # -- correlation ---------------------------------------------------------------------

    def _evidence(self, ip: str, when: float) -> Optional[Dict[str, Evidence]]:
        """Per-source evidence around ``when`` if some source is over the threshold, else None."""
        threshold = self.settings.threshold
        counters = self.counters
        for counter in counters.values():
            tally = counter.tallies.get(ip)
            if tally is not None and tally.total > threshold:
                break
        else:
            return None  # the usual case: nothing, or not enough, anywhere
        window = self.settings.window
        found = {}
        over = False
        for source, counter in counters.items():
            evidence = counter.evidence(ip, when - window, when + window)
            if evidence.count:
                found[source] = evidence
                over = over or evidence.count > threshold
        return found if over else None

    def _alert(self, signin: Event, ip: str, evidence: Dict[str, Evidence], late: bool) -> None:
        period = self.settings.suppress
        if period > 0:
            key = (ip, signin.user_principal_name)
            alerted = self._alerted.get(key)
            if alerted is None:
                alerted = self._alerted[key] = []
            elif any(abs(signin.time - when) < period for when in alerted):
                self.counts.suppressed += 1
                return
            alerted.append(signin.time)
        self.counts.alerts += 1
        if late:
            self.counts.late_alerts += 1
        self._emit(build_alert(signin, evidence, late), signin.time)

    def _retain(self, signin: Event, ip: str) -> None:
        """Keep a success that is not an alert yet; the oldest goes first past the cap."""
        if self._retained.add(ip, signin):
            self.counts.signins_evicted += 1

    def _recheck(self, ip: str, waiting: List[Event]) -> None:
        """A failure arrived for an IP with retained successes: some may be alerts now. They are
        tried oldest first, so that suppression picks the same ones whatever their arrival order
        (and in an engine restored from a snapshot)."""
        for signin in sorted(waiting, key=_signin_time):
            evidence = self._evidence(ip, signin.time)
            if evidence is not None:
                self._retained.remove(ip, signin)
                self._alert(signin, ip, evidence, late=True)

    def _evict(self) -> None:
        """The cap on tracked IPs is passed: forget a batch (1 % of the cap) of the IPs that
        matter least, furthest below the threshold and longest idle together (see
        counter.EvictionQueue). IPs with a retained sign-in are kept; IPs over the threshold and
        fresh IPs go last. Amortised O(log n) per IP evicted, forgetting it included."""
        batch = max(1, self.settings.max_ips // 100)
        evicted = self._eviction_queue.evict(tuple(self.counters.values()), batch, self._retained.by_ip,
                                             self.newest, self.settings.threshold)
        self.counts.ips_evicted += evicted
        self._report("eviction", f"tracked IPs passed --max-ips {self.settings.max_ips}: evicted {evicted} "
                                 f"(furthest below the threshold and longest idle); {self.counts.ips_evicted} so far")

    # -- time ----------------------------------------------------------------------------

    def _advance_clock(self, when: float) -> None:
        """Move the clock to ``when`` if it is newer and believable."""
        if when <= self.newest:
            return
        if when > self._future_limit and self._is_future(when):
            self.counts.future += 1  # counted, but it does not move the clock
            return
        self.newest = when
        if when >= self.next_expiry:
            self._expire()

    def _is_future(self, when: float) -> bool:
        """Whether ``when`` is more than future_skew ahead of the wall clock (read again only
        when an event passes the last limit)."""
        self._future_limit = self._wall_clock() + self.settings.future_skew
        return when > self._future_limit

    def _expire(self) -> None:
        """Drop what is older than the window behind the clock; runs once per bucket width."""
        self.changes += 1
        horizon = self.newest - self.settings.window
        for counter in self.counters.values():
            counter.expire(horizon)
        self._retained.expire(horizon - self.settings.window)  # still matchable a window longer
        suppress_horizon = horizon - self.settings.window - self.settings.suppress
        if len(self._alerted) > 1024:
            self._alerted = {key: kept for key, kept in (
                (key, [when for when in alerted if when >= suppress_horizon]) for key, alerted in self._alerted.items())
                if kept}
        self.next_expiry = self.newest + self.bucket_seconds()

    # -- figures -------------------------------------------------------------------------

    def tracked_ips(self) -> Dict[str, int]:
        """IPs tracked per failure source."""
        return {source: len(counter) for source, counter in self.counters.items()}

    def tracked_total(self) -> int:
        """IPs tracked over all sources (what --max-ips caps)."""
        security, windows, syslog = self.counters.values()
        return len(security.tallies) + len(windows.tallies) + len(syslog.tallies)  # no method call: once per new IP

    def retained_signins(self) -> int:
        return len(self._retained)

    def tier_figures(self) -> dict:
        """The two-tier figures, where they apply: summaries merged and refused, and what
        another shard owns."""
        counts = self.counts
        figures: dict = {}
        if self._accept_summaries or counts.summaries_refused:
            figures["summaries_merged"] = counts.summaries_merged
            figures["summaries_refused"] = dict(sorted(counts.summaries_refused.items()))
        if self._owns is not None:
            figures["other_shard"] = dict(counts.other_shard)
        return figures

    def flush(self) -> None:
        """Hand on what is held back for later (an edge's summaries); a central holds nothing."""

    # -- snapshots -------------------------------------------------------------------------

    def retained(self) -> Iterator[Tuple[str, Event]]:
        """(list key, sign-in) of every success waiting for late failures, oldest first."""
        return iter(self._retained)

    def suppression(self) -> Iterator[Tuple[str, str, float]]:
        """(ip, upn, sign-in time) of the alerts that suppress repeats."""
        return ((ip, upn, when) for (ip, upn), alerted in self._alerted.items() for when in alerted)

    def restore(self, newest: float, next_expiry: float, counters: Dict[str, FailureCounter],
                retained: Sequence[Tuple[str, Event]], suppression: Sequence[Tuple[str, str, float]]) -> None:
        """Take over state read from a snapshot (the counters already hold their IPs)."""
        self.newest = newest
        self.counters = counters
        self._retained = RetainedSignins(self.bucket_seconds(), self.settings.max_signins)
        for ip, signin in retained:
            self._retained.add(ip, signin)
        self._alerted = {}
        for ip, upn, when in suppression:
            self._alerted.setdefault((ip, upn), []).append(when)
        self.next_expiry = next_expiry

    def bucket_seconds(self) -> float:
        return self.counters[FAILURE_TABLES[0]].bucket_seconds
