"""Which shard owns an IP: a hash of the profile's list key that every process, machine and
Python version computes alike (never Python's ``hash()``, which is salted per process)::

    shard = int.from_bytes(sha256(key.encode("utf-8")).digest()[:8], "big") % shards

The key is what the profile counts failures and looks sign-ins up by: the canonical address in
``hardened`` (``192.0.2.7`` for ``::ffff:192.0.2.7``, compressed lower-case IPv6), the address
as written in ``kql``. So an IP's failures, summaries and sign-ins all meet in one shard.
"""

import hashlib
import re
from typing import NamedTuple, Optional


def shard_of(key: str, shards: int) -> int:
    """The shard of ``key`` among ``shards``.

    >>> shard_of("203.0.113.7", 4), shard_of("2001:db8::5", 4)
    (3, 0)
    """
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") % shards


class Shard(NamedTuple):
    """Shard ``index`` of ``count`` (``--shard K/N``)."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, key: str) -> bool:
        """Whether this shard owns ``key``."""
        return shard_of(key, self.count) == self.index


_SHARD = re.compile(r"(\d{1,6})/(\d{1,6})")


def parse_shard(text: str) -> Optional[Shard]:
    """``K/N`` (0 <= K < N) as a Shard; empty text is None (every IP). ValueError otherwise."""
    if not text:
        return None
    found = _SHARD.fullmatch(text.strip())
    if found is None:
        raise ValueError(f"{text!r} is not K/N (this central owns shard K of N, counted from 0)")
    index, count = int(found.group(1)), int(found.group(2))
    if not 0 <= index < count:
        raise ValueError(f"{text!r}: K must be 0 to N-1")
    return Shard(index, count)
