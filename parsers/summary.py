"""Failure summaries from edge collectors (``fail2entra --edge``): the record's schema, and its
reading with every field checked, since a summary can blame any address.

One record carries what one edge counted since its last flush (for one shard), under the key
``fail2entra_summaries``; each item stands for the failures of one (source, IP, time bucket)::

    {"fail2entra_summaries": {"version": 1, "edge": "web1", "profile": "hardened", "bucket_seconds": 60,
                              "shard": 0, "summaries": [[source, ip, count, first, last, hosts, users], ...]}}

docs/edge.md documents every field. A bad header refuses the record; a bad item refuses only
itself (its reason names it and the field), and the other items of the record are read. Types
and bounds are checked by msgspec while it converts (in C); what types cannot say (first not
after last, both in one bucket) is checked here. Whether the central takes a summary (its
profile, its bucket width, its clock, its shard) is the engine's decision.
"""

import re
from typing import Annotated, Any, Callable, List, Literal, Optional, Tuple

import msgspec
import msgspec.inspect
from msgspec import Meta

from .event import SUMMARY_KIND, Event, FailureSummaries, MalformedRecord, short_reason, summary_event
from .timestamps import LATEST_TIME

SUMMARY_KEY = "fail2entra_summaries"  # the record key that marks the shape
SCHEMA_VERSION = 1
MAX_COUNT = 1_000_000  # failures one summary may stand for (one IP, one bucket, one flush)
MAX_TARGETS = 5  # hosts and users a summary names, as the central keeps them
MAX_NAME = 256  # characters of a host, user or edge name
MAX_ADDRESS = 64  # characters of an IP address (an IPv6 address has at most 45)
MAX_PROFILE = 32

Name = Annotated[str, Meta(max_length=MAX_NAME)]
Targets = Annotated[Tuple[Name, ...], Meta(min_length=1, max_length=MAX_TARGETS)]
Time = Annotated[float, Meta(ge=0.0, lt=LATEST_TIME)]  # 1970 to 2106, as every event time


class SummaryItem(msgspec.Struct, array_like=True, gc=False):
    """One summary: ``[source, ip, count, first, last, hosts, users]``."""

    source: Literal["SecurityEvent", "WindowsEvent", "Syslog"]  # the failure list it counts on
    ip: Annotated[str, Meta(min_length=1, max_length=MAX_ADDRESS)]  # the list key
    count: Annotated[int, Meta(ge=1, le=MAX_COUNT)]
    first: Time
    last: Time
    hosts: Targets
    users: Targets


ITEM_FIELDS = SummaryItem.__struct_fields__


class SummaryBatch(msgspec.Struct):
    """The value under ``fail2entra_summaries``: who counted, how, and the items."""

    version: int
    edge: Name
    profile: Annotated[str, Meta(min_length=1, max_length=MAX_PROFILE)]
    bucket_seconds: Annotated[float, Meta(gt=0.0, lt=LATEST_TIME)]
    summaries: List[Any]
    shard: Optional[Annotated[int, Meta(ge=0)]] = None  # with --shards: the shard the items belong to


# msgspec works out a struct's layout when it first converts to it, leaving reference cycles
# behind: done at import, with what start-up builds (and freezes), not by the first summary.
msgspec.inspect.multi_type_info((SummaryBatch, SummaryItem))

_AT_ITEM_FIELD = re.compile(r"(.*) - at `\$\[(\d+)\](.*)`", re.DOTALL)


class TypedSummaryBatch(msgspec.Struct):
    """SummaryBatch with its items typed: what a good record decodes to in one call."""

    version: int
    edge: Name
    profile: Annotated[str, Meta(min_length=1, max_length=MAX_PROFILE)]
    bucket_seconds: Annotated[float, Meta(gt=0.0, lt=LATEST_TIME)]
    summaries: List[SummaryItem]
    shard: Optional[Annotated[int, Meta(ge=0)]] = None


msgspec.inspect.multi_type_info((TypedSummaryBatch,))


def read_summaries(raw: Any, decode_typed: Callable[[Any], TypedSummaryBatch], decode_value: Callable[[Any], Any],
                   events: List[Event], problems: List[MalformedRecord]) -> None:
    """Append one event holding the good summaries in ``raw`` (the record's undecoded
    ``fail2entra_summaries``) and a problem per bad one, or one problem when the header itself
    is bad. The usual record decodes typed in one call; one that does not is decoded as plain
    values and read item by item, to say which item is bad and keep the others."""
    try:
        batch = decode_typed(raw)
    except (msgspec.DecodeError, RecursionError):  # a ValidationError too
        batch = None
    if batch is not None and batch.version == SCHEMA_VERSION:
        items: List[Optional[SummaryItem]] = batch.summaries
    else:
        try:
            value = decode_value(raw)
        except (msgspec.DecodeError, RecursionError) as error:  # a number past 64 bits, nesting
            problems.append(MalformedRecord(SUMMARY_KIND, short_reason(error)))
            return
        if not isinstance(value, dict):
            problems.append(MalformedRecord(SUMMARY_KIND, f"{SUMMARY_KEY} is a {type(value).__name__}, not a map"))
            return
        version = value.get("version")
        if version != SCHEMA_VERSION or type(version) is not int:
            problems.append(MalformedRecord(
                SUMMARY_KIND, f"schema version {version!r}; this fail2entra reads version {SCHEMA_VERSION}"))
            return
        try:
            batch = msgspec.convert(value, SummaryBatch)
        except msgspec.ValidationError as error:
            problems.append(MalformedRecord(SUMMARY_KIND, f"header: {short_reason(error)}"))
            return
        items = [_converted(index, item, problems) for index, item in enumerate(batch.summaries)]
    bucket = batch.bucket_seconds
    good = []
    latest = 0.0
    for index, item in enumerate(items):
        if item is None:
            continue
        first, last = item.first, item.last
        if first > last:
            problems.append(_problem(index, item, f"first {first!r} is after last {last!r}"))
        elif first // bucket != last // bucket:
            problems.append(_problem(index, item, f"first and last are not in one bucket of {bucket:g} s"))
        else:
            good.append(item)
            if last > latest:
                latest = last
    if good:
        events.append(summary_event(FailureSummaries(good, batch.profile, bucket, batch.edge), latest))


def _converted(index: int, item: Any, problems: List[MalformedRecord]) -> Optional[SummaryItem]:
    """One item, or None with its problem recorded (naming the field msgspec refused)."""
    try:
        return msgspec.convert(item, SummaryItem)
    except msgspec.ValidationError as error:
        text = str(error)
        found = _AT_ITEM_FIELD.fullmatch(text)
        if found is not None:
            message, position, rest = found.groups()
            text = f"{ITEM_FIELDS[int(position)]}{rest}: {message}"
        problems.append(_problem(index, item, text))
        return None


def _problem(index: int, item: Any, reason: str) -> MalformedRecord:
    ip = item.ip if isinstance(item, SummaryItem) else item[1] if isinstance(item, list) and len(item) > 1 else None
    about = f" (ip {ip!r:.70})" if isinstance(ip, str) else ""
    return MalformedRecord(SUMMARY_KIND, short_reason(ValueError(f"summary {index}{about}: {reason}")))
