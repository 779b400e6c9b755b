"""Successful sign-ins that are not alerts yet, kept until failures that may still come could
make them alerts, or until they leave the window: what makes the order of events irrelevant."""

from typing import Dict, Iterator, List, Tuple

from sortedcontainers import SortedDict

from parsers.event import Event


class RetainedSignins:
    """Sign-ins by list key (the IP) and by time bucket, bounded by ``limit``.

    Buckets (sign-in time // ``bucket_seconds``, in a SortedDict) make adding O(1) amortised and
    let expiry and eviction take the oldest first; the IP index answers "does this IP have
    sign-ins waiting?" on every counted failure.
    """

    def __init__(self, bucket_seconds: float, limit: int) -> None:
        self.bucket_seconds = bucket_seconds
        self.limit = limit
        self.by_ip: Dict[str, List[Event]] = {}
        self._buckets: SortedDict = SortedDict()  # bucket number -> [(ip, sign-in), ...] in arrival order
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Tuple[str, Event]]:
        """(ip, sign-in), oldest bucket first."""
        for entries in self._buckets.values():
            yield from entries

    def add(self, ip: str, signin: Event) -> bool:
        """Keep ``signin``; True when the oldest had to go to make room (the cap)."""
        evicted = self._count >= self.limit
        if evicted:
            number, entries = self._buckets.peekitem(0)
            old_ip, old = entries.pop(0)
            if not entries:
                del self._buckets[number]
            self._forget(old_ip, old)
        number = int(signin.time // self.bucket_seconds)
        entries = self._buckets.get(number)
        if entries is None:
            entries = self._buckets[number] = []
        entries.append((ip, signin))
        self.by_ip.setdefault(ip, []).append(signin)
        self._count += 1
        return evicted

    def remove(self, ip: str, signin: Event) -> None:
        """Stop keeping ``signin`` (it became an alert)."""
        number = int(signin.time // self.bucket_seconds)
        entries = self._buckets[number]
        entries.remove((ip, signin))
        if not entries:
            del self._buckets[number]
        self._forget(ip, signin)

    def expire(self, horizon: float) -> None:
        """Drop the sign-ins of buckets that end at or before ``horizon``."""
        width = self.bucket_seconds
        buckets = self._buckets
        while buckets and (buckets.peekitem(0)[0] + 1) * width <= horizon:
            for ip, signin in buckets.popitem(0)[1]:
                self._forget(ip, signin)

    def _forget(self, ip: str, signin: Event) -> None:
        waiting = self.by_ip[ip]
        waiting.remove(signin)
        if not waiting:
            del self.by_ip[ip]
        self._count -= 1
