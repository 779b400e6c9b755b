"""Per-IP failure counts of one source, in time buckets, for any window around a sign-in.

Layout (chosen for memory: at a million sprayed addresses every byte per IP counts):

- ``_buckets``: a SortedDict from bucket number (event time // bucket width) to a plain dict
  ``ip -> failures in that bucket``. Expiry pops whole buckets from the old end; a window
  query walks only the buckets it covers. No IP owns a list of buckets.
- ``tallies``: ``ip -> Tally`` with the IP's total over all buckets and its exact first and
  last failure times, so the common question, "are all of this IP's failures inside the
  window?", is answered without touching a bucket, and answered exactly. Public for reading:
  the engine asks it for every sign-in, and a method call per source costs more than the lookup.

A sprayed IP with one failure costs one entry in each dict plus one small Tally. Eviction
under the cap (:class:`EvictionQueue`) keeps nothing per IP: it ranks the IPs now and then.
"""

import bisect
import itertools
import math
from typing import Dict, Iterator, List, NamedTuple, Sequence, Tuple

import msgspec
from sortedcontainers import SortedDict

MAX_TARGETS = 5  # hosts and usernames kept per IP for the alert's evidence


class Tally(msgspec.Struct, gc=False):
    """One IP's failures in this source: total, exact first / last time, a few targets, and the
    IP itself (the very string object that keys the buckets, so that a snapshot restores one
    string per IP, not one per dict). A msgspec struct without garbage-collector tracking: it
    holds only strings, numbers and tuples of strings (no cycle can run through it), and at a
    million IPs the collector's walks over untracked tallies cost nothing, and each is 16 bytes
    smaller than a slotted object."""

    ip: str
    total: int
    first: float
    last: float
    hosts: Tuple[str, ...]
    users: Tuple[str, ...]


class Evidence(NamedTuple):
    """What one source holds against an IP inside a window: the alert's Evidence entry."""

    count: int
    first: float
    last: float
    hosts: Tuple[str, ...]
    users: Tuple[str, ...]


class FailureCounter:
    """Time-bucketed failure counts per IP for one failure source (one of the rule's lists).

    ``bucket_seconds`` is the resolution of window edges: a window query is exact when all of
    the IP's retained failures fall inside it (the usual case for a stream read in order), and
    otherwise counts whole buckets that overlap the window, i.e. may include failures up to one
    bucket outside it.

    >>> counter = FailureCounter(60)
    >>> totals = [counter.add("192.0.2.7", 1000.0 + second, 1, "web1", "root") for second in range(6)]
    >>> counter.count("192.0.2.7", 900.0, 1100.0)  # all inside: exact
    6
    >>> counter.count("192.0.2.7", 1003.0, 1100.0)  # edge inside the bucket 960-1020: whole bucket
    6
    """

    def __init__(self, bucket_seconds: float) -> None:
        self.bucket_seconds = bucket_seconds
        self._buckets: SortedDict = SortedDict()
        self.tallies: Dict[str, Tally] = {}  # read it freely; change it only through the methods
        self._interned: Dict[Tuple[str, ...], Tuple[str, ...]] = {}

    def __len__(self) -> int:
        """Number of IPs tracked."""
        return len(self.tallies)

    def __contains__(self, ip: str) -> bool:
        return ip in self.tallies

    def add(self, ip: str, when: float, count: int, host: str, user: str) -> int:
        """Record ``count`` failures of ``ip`` at ``when``; return the IP's new total.

        Runtime complexity: O(1) amortised when the bucket exists, O(log b) to create one.
        """
        bucket_number = int(when // self.bucket_seconds)
        bucket = self._buckets.get(bucket_number)
        if bucket is None:
            bucket = self._buckets[bucket_number] = {}
        tally = self.tallies.get(ip)
        if tally is None:
            bucket[ip] = bucket.get(ip, 0) + count
            targets = self._intern((host,)), self._intern((user,))
            self.tallies[ip] = Tally(ip, count, when, when, *targets)
            return count
        ip = tally.ip  # one string object per IP, whatever the line it came from
        bucket[ip] = bucket.get(ip, 0) + count
        tally.total += count
        if when < tally.first:
            tally.first = when
        elif when > tally.last:
            tally.last = when
        if host not in tally.hosts and len(tally.hosts) < MAX_TARGETS:
            tally.hosts = self._intern(tally.hosts + (host,))
        if user not in tally.users and len(tally.users) < MAX_TARGETS:
            tally.users = self._intern(tally.users + (user,))
        return tally.total

    def add_summary(self, ip: str, count: int, first: float, last: float, hosts: Tuple[str, ...],
                    users: Tuple[str, ...]) -> int:
        """Merge an edge's summary of ``count`` failures between ``first`` and ``last`` (one
        bucket: the edge's width divides this counter's); return the IP's new total. The count
        goes to the bucket of ``first``, the times and targets into the tally, exactly as the
        failures themselves would have.

        Runtime complexity: as :meth:`add`, plus O(targets) when they are new to the IP.
        """
        bucket_number = int(first // self.bucket_seconds)
        bucket = self._buckets.get(bucket_number)
        if bucket is None:
            bucket = self._buckets[bucket_number] = {}
        tally = self.tallies.get(ip)
        if tally is None:
            bucket[ip] = bucket.get(ip, 0) + count
            self.tallies[ip] = Tally(ip, count, first, last, self._merged((), hosts), self._merged((), users))
            return count
        ip = tally.ip
        bucket[ip] = bucket.get(ip, 0) + count
        tally.total += count
        if first < tally.first:
            tally.first = first
        if last > tally.last:
            tally.last = last
        if hosts != tally.hosts:
            tally.hosts = self._merged(tally.hosts, hosts)
        if users != tally.users:
            tally.users = self._merged(tally.users, users)
        return tally.total

    def _merged(self, kept: Tuple[str, ...], more: Tuple[str, ...]) -> Tuple[str, ...]:
        """``kept`` and then those of ``more`` it lacks, each once, up to MAX_TARGETS (interned)."""
        if len(kept) >= MAX_TARGETS:
            return kept
        if not kept and len(more) == 1:  # the usual new IP
            return self._intern(more)
        return self._intern(tuple(dict.fromkeys(kept + more))[:MAX_TARGETS])

    def _intern(self, targets: Tuple[str, ...]) -> Tuple[str, ...]:
        """Share equal target tuples: a spray hits the same few hosts and usernames."""
        shared = self._interned.get(targets)
        if shared is None:
            if len(self._interned) >= 100_000:
                self._interned.clear()
            shared = self._interned[targets] = targets
        return shared

    def total(self, ip: str) -> int:
        """All retained failures of ``ip``, whatever their time. O(1)."""
        tally = self.tallies.get(ip)
        return tally.total if tally is not None else 0

    def count(self, ip: str, start: float, end: float) -> int:
        """Failures of ``ip`` with event times in ``[start, end]`` (see the class note on edges).

        Runtime complexity: O(1) when all the IP's failures are inside, else O(buckets spanned).
        """
        return self.evidence(ip, start, end).count

    def evidence(self, ip: str, start: float, end: float) -> Evidence:
        """Count, first / last time and targets of ``ip``'s failures in ``[start, end]``."""
        tally = self.tallies.get(ip)
        if tally is None or tally.last < start or tally.first > end:
            return Evidence(0, 0.0, 0.0, (), ())
        if start <= tally.first and tally.last <= end:
            return Evidence(tally.total, tally.first, tally.last, tally.hosts, tally.users)
        width = self.bucket_seconds
        first_bucket = int(max(start, tally.first) // width)
        last_bucket = int(min(end, tally.last) // width)
        count, first, last = 0, None, 0.0
        buckets = self._buckets
        for number in buckets.irange(first_bucket, last_bucket):
            hits = buckets[number].get(ip)
            if hits:
                count += hits
                if first is None:
                    first = number * width
                last = (number + 1) * width
        if first is None:
            return Evidence(0, 0.0, 0.0, (), ())
        return Evidence(count, max(first, tally.first, start), min(last, tally.last, end), tally.hosts, tally.users)

    def expire(self, horizon: float) -> int:
        """Forget failures in buckets that end at or before ``horizon``; return IPs dropped.

        Runtime complexity: O(failure entries removed).
        """
        width = self.bucket_seconds
        buckets, tallies = self._buckets, self.tallies
        dropped = 0
        while buckets and (buckets.peekitem(0)[0] + 1) * width <= horizon:
            number, bucket = buckets.popitem(0)
            bucket_end = (number + 1) * width
            for ip, hits in bucket.items():
                tally = tallies[ip]
                tally.total -= hits
                if tally.total <= 0:
                    del tallies[ip]
                    dropped += 1
                elif tally.first < bucket_end:
                    tally.first = bucket_end  # a lower bound: the earliest retained failure is later
        return dropped

    def forget(self, ip: str) -> int:
        """Drop every failure of ``ip`` (eviction); return how many there were."""
        tally = self.tallies.pop(ip, None)
        if tally is None:
            return 0
        width = self.bucket_seconds
        buckets = self._buckets
        first, last = int(tally.first // width), int(tally.last // width)
        for number in (first,) if first == last else list(buckets.irange(first, last)):
            bucket = buckets[number]
            if bucket.pop(ip, None) is not None and not bucket:
                del buckets[number]
        return tally.total

    def dump(self) -> Iterator[list]:
        """Everything the counter holds, as plain lists for a snapshot: first one list per IP
        ``[ip, total, first, last, hosts, users]``, then one per bucket ``[number, [ip, count, ...]]``.
        ``len(self)`` and ``self.bucket_count()`` tell how many of each come."""
        for ip, tally in self.tallies.items():
            yield [ip, tally.total, tally.first, tally.last, list(tally.hosts), list(tally.users)]
        for number, bucket in self._buckets.items():
            yield [number, [item for pair in bucket.items() for item in pair]]

    def bucket_count(self) -> int:
        return len(self._buckets)

    def restore_tally(self, ip: str, total: int, first: float, last: float, hosts: list, users: list) -> None:
        """Put back one IP's tally from a snapshot (its buckets follow)."""
        self.tallies[ip] = Tally(ip, total, first, last, self._intern(tuple(hosts)), self._intern(tuple(users)))

    def verify(self) -> None:
        """A cheap consistency check after a restore (``_check`` is the thorough one): the
        buckets hold exactly the tallied failures. Raises ValueError."""
        in_buckets = sum(sum(bucket.values()) for bucket in self._buckets.values())
        tallied = sum(tally.total for tally in self.tallies.values())
        if in_buckets != tallied:
            raise ValueError(f"buckets hold {in_buckets} failures, tallies {tallied}")

    def restore_bucket(self, number: int, flat: list) -> None:
        """Put back one bucket from a snapshot: ``flat`` is ``[ip, count, ip, count, ...]``; its
        IPs are keyed by their tallies' string objects (restored first), not by fresh copies."""
        tallies = self.tallies
        self._buckets[number] = {tallies[ip].ip: count for ip, count in zip(flat[::2], flat[1::2])}

    def _check(self) -> None:
        """Assert the invariants that tie the buckets to the tallies (tests call this)."""
        width = self.bucket_seconds
        totals: Dict[str, int] = {}
        spans: Dict[str, List[int]] = {}
        for number, bucket in self._buckets.items():
            assert bucket, f"bucket {number} is empty and should have been removed"
            for ip, hits in bucket.items():
                assert hits > 0, f"{ip} has {hits} failures in bucket {number}"
                totals[ip] = totals.get(ip, 0) + hits
                spans.setdefault(ip, []).append(number)
        assert totals.keys() == self.tallies.keys(), "IPs in buckets and in tallies differ"
        for number, bucket in self._buckets.items():
            for ip in bucket:
                assert self.tallies[ip].ip is ip, f"{ip}: bucket {number} keys it by another string object"
        for ip, tally in self.tallies.items():
            assert tally.ip is ip, f"{ip}: the tally holds another string object than its key"
            assert tally.total == totals[ip], f"{ip}: tally {tally.total} != buckets {totals[ip]}"
            assert tally.first <= tally.last, f"{ip}: first {tally.first} > last {tally.last}"
            assert int(tally.first // width) <= spans[ip][0], f"{ip}: first failure after its first bucket"
            assert int(tally.last // width) == spans[ip][-1], f"{ip}: last failure not in its last bucket"
            assert 1 <= len(tally.hosts) <= MAX_TARGETS and 1 <= len(tally.users) <= MAX_TARGETS


def eviction_score(tally: Tally, now: float, threshold: int) -> float:
    """How little an IP matters: (failures still needed to pass the threshold) x (time since
    its last failure). High for an IP far below the threshold AND long idle; 0 for a fresh IP
    or one just over the threshold, below 0 further over it."""
    return (threshold + 1 - tally.total) * (now - tally.last)


class EvictionQueue:
    """The IPs to forget when the cap on tracked IPs is passed, highest eviction_score first,
    over the counters of every failure source.

    Scores change with the clock, each at its own rate, so no order of the IPs holds for long.
    Ranking looks at every tracked IP, so it is done only when the queue runs dry: it keeps the
    quarter of the tracked IPs that score highest (at least the number asked for), in about a
    thousand bins of equal size whose edges are quantiles of a sample of the scores, and the
    evictions that follow take them bin by bin, highest first (in score order to within a bin).
    One ranking of n IPs costs O(n) (a bisection among the bins for each IP it keeps) and serves
    n / 4 evictions: amortised O(1) per eviction, besides forgetting the IP. No object is made
    per IP: the queue holds one reference (8 bytes) per IP in it, and nothing is kept per IP
    outside it. When its turn comes, an IP is skipped if it is gone (expired,
    forgotten), if its score at the ranking time is now below its bin (a failure came since: it
    is active again, and is ranked anew next time), or if it has a retained sign-in. IPs that
    first failed after the ranking wait for the next one: fresh IPs go last, as they would by
    their score.
    """

    BINS = 1024
    SAMPLE = 4096

    def __init__(self) -> None:
        self._bins: List[List[List[str]]] = []  # [counter index][bin] -> IPs; bin 0 is never used
        self._edges: List[float] = []  # ascending: bin b holds the scores from _edges[b - 1] up
        self._bin = 0  # the highest bin that may still hold IPs (0: the queue is empty)
        self._ranked_at = 0.0

    def __len__(self) -> int:
        """IPs in the queue, the ones that will be skipped included (for tests)."""
        return sum(len(entries) for binned in self._bins for entries in binned[1:self._bin + 1])

    def evict(self, counters: Sequence[FailureCounter], wanted: int, protected: Dict[str, object], now: float,
              threshold: int) -> int:
        """Forget up to ``wanted`` IPs that matter least, none of those in ``protected``;
        return how many were forgotten (fewer only when fewer IPs can go)."""
        evicted = 0
        rankings = 0
        while evicted < wanted:
            if not self._bin:
                if rankings == 2:
                    break  # every IP left is protected
                # a ranking's quarter comes from a sample: should it fall short, the next takes every IP
                self._rank(counters, protected, now, threshold, wanted, everything=rankings == 1)
                rankings += 1
                continue
            for index, binned in enumerate(self._bins):
                entries = binned[self._bin]
                if entries:
                    ip = entries.pop()
                    break
            else:
                self._bin -= 1
                continue
            counter = counters[index]
            tally = counter.tallies.get(ip)
            if tally is None or ip in protected or \
                    eviction_score(tally, self._ranked_at, threshold) < self._edges[self._bin - 1]:
                continue
            counter.forget(ip)
            evicted += 1
        return evicted

    def _rank(self, counters: Sequence[FailureCounter], protected: Dict[str, object], now: float, threshold: int,
              at_least: int, everything: bool = False) -> None:
        """Put the highest-scoring quarter of the tracked IPs (at least ``at_least``; all of
        them with ``everything``) in bins."""
        tracked = sum(len(counter) for counter in counters)
        limit = threshold + 1
        step = max(1, tracked // self.SAMPLE)
        sample = sorted((limit - tally.total) * (now - tally.last)  # eviction_score, inlined
                        for counter in counters for tally in itertools.islice(counter.tallies.values(), 0, None, step))
        if not sample:
            self._bin = 0
            return
        share = 1.0 if everything else min(1.0, max(at_least, tracked // 4) / tracked)
        above = sample[min(len(sample) - 1, int(len(sample) * (1.0 - share))):]
        edges = sorted(set(above[::max(1, len(above) // self.BINS)]) | {above[0]})
        if everything:
            edges[0] = -math.inf
        cut = edges[0]
        bins = [[[] for _ in range(len(edges) + 1)] for _ in counters]
        for index, counter in enumerate(counters):
            binned = bins[index]
            for ip, tally in counter.tallies.items():
                score = (limit - tally.total) * (now - tally.last)  # eviction_score, inlined
                if score >= cut and ip not in protected:
                    binned[bisect.bisect_right(edges, score)].append(ip)
        self._bins, self._edges, self._bin, self._ranked_at = bins, edges, len(edges), now
