"""The summary records an edge writes (their schema, and their reading, are parsers/summary.py's):
what an edge holds at a flush, as records of at most SUMMARIES_PER_RECORD items, one series
per shard, each with its tag."""

from typing import Dict, Iterator, List, NamedTuple, Tuple

from parsers.summary import SCHEMA_VERSION, SUMMARY_KEY

from .shards import shard_of

# Items per record: about 5.5 KB of msgpack (7 KB of JSON), so the header is paid once per
# hundred. Larger records cost the central more, not less: all of a record's events are alive at
# once before the engine takes them, and a thousand of them push the garbage collector into
# promoting and walking them (measured: 140,000 summaries/s at 1,000 a record, 218,000 at 100).
SUMMARIES_PER_RECORD = 100


PendingKey = Tuple[str, str, int]  # (failure source, list key, bucket number)


class SummaryRecord(NamedTuple):
    record: dict
    tag: str
    newest: float  # the latest failure it holds: the record's event time


def summary_tag(base: str, shard: int, shards: int) -> str:
    """``base``, and with several shards ``base.shard.K``, the suffix an aggregator routes on."""
    return base if shards == 1 else f"{base}.shard.{shard}"


def _time(seconds: float) -> float:
    """Whole seconds (what RFC 3164 lines have) as an int: 5 bytes of msgpack instead of 9."""
    return int(seconds) if seconds == int(seconds) else seconds


def summary_records(pending: Dict[PendingKey, list], edge: str, profile: str, bucket_seconds: float,
                    shards: int, base_tag: str) -> Iterator[SummaryRecord]:
    """The records for what an edge holds (key -> [count, first, last, hosts, users]), shard by shard."""
    by_shard: List[List[list]] = [[] for _ in range(shards)]
    newest = [0.0] * shards
    for (source, ip, _), (count, first, last, hosts, users) in pending.items():
        shard = shard_of(ip, shards) if shards > 1 else 0
        by_shard[shard].append([source, ip, count, _time(first), _time(last), list(hosts), list(users)])
        if last > newest[shard]:
            newest[shard] = last
    for shard, items in enumerate(by_shard):
        tag = summary_tag(base_tag, shard, shards)
        for start in range(0, len(items), SUMMARIES_PER_RECORD):
            header = {"version": SCHEMA_VERSION, "edge": edge, "profile": profile, "bucket_seconds": _time(bucket_seconds)}
            if shards > 1:
                header["shard"] = shard
            header["summaries"] = items[start:start + SUMMARIES_PER_RECORD]
            yield SummaryRecord({SUMMARY_KEY: header}, tag, newest[shard])
