"""Event times from the strings logs carry, fast: every parser turns its time field through here.

Logs repeat their timestamps (many lines per second), so conversions are cached per string;
the cache is cleared when it grows past ``_CACHE_LIMIT`` entries to bound memory.
"""

import calendar
import re
import time as _time
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Callable, Dict, Optional

try:
    from zoneinfo import ZoneInfo
except ImportError:  # pragma: no cover - Python 3.8 is not supported; kept for clear errors
    ZoneInfo = None  # type: ignore[assignment]

_CACHE_LIMIT = 100_000
# Event times outside 1970 .. 2106 (what an unsigned 32-bit EventTime holds) are not believed:
# an alert could not carry them, and Fluent's forward protocol could not send them.
LATEST_TIME = float(2 ** 32)


def plausible_time(seconds: float) -> bool:
    """True for an event time fail2entra can carry: from 1970 to 2106."""
    return 0.0 <= seconds < LATEST_TIME

# 2026-11-28T05:01:36.9278361Z, 2026-11-28 05:01:36+01:00, 2026-11-28T05:01:36.123+0000:
# the first 16 characters (to the minute) are converted once and cached; seconds, fraction and
# zone are read on each call (fractions make almost every full string unique).
_WHOLE_MINUTE = re.compile(r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d)", re.ASCII)
_FRACTION_AND_ZONE = re.compile(r"(?:[.,](\d{1,9}))?\s*(Z|z|[+-]\d\d:?\d\d|UTC|GMT)?\s*", re.ASCII)
_minute_cache: Dict[str, Optional[float]] = {}
_zone_cache: Dict[str, Optional[int]] = {}  # zone text -> seconds east of UTC, None if not a zone
_MISSING = object()


def parse_iso8601(text: str) -> Optional[float]:
    """Seconds since the epoch for an ISO 8601 / RFC 3339 timestamp, or None if it is not one.

    Accepts 0 to 9 fraction digits (Windows writes 7 or 9, .NET 7), ``Z``, ``+hh:mm``,
    ``+hhmm`` and a space instead of ``T``; a timestamp without a zone is UTC (as Sentinel,
    Windows and Entra ID write them). Python 3.9's ``fromisoformat`` reads few of these.

    >>> parse_iso8601("2026-11-28T05:01:36.5Z"), parse_iso8601("2026-11-28 06:01:36+01:00")
    (1795842096.5, 1795842096.0)
    """
    head = text[:16]
    base = _minute_cache.get(head, _MISSING)
    if base is _MISSING:
        base = _whole_minute(head)
        if len(_minute_cache) >= _CACHE_LIMIT:
            _minute_cache.clear()
        _minute_cache[head] = base
    second = text[17:19]
    if base is None or text[16:17] != ":" or len(second) != 2 or not (second.isascii() and second.isdigit()) \
            or second > "59":
        return None
    base += int(second)
    rest = text[19:]
    if not rest or rest == "Z":
        return base if base < LATEST_TIME else None  # the minute is plausible; its last second may not be
    if rest[0] == "." and rest[-1] == "Z":  # ".9278361Z", the commonest: no regex
        digits = rest[1:-1]
        if 0 < len(digits) <= 9 and digits.isdigit() and digits.isascii():
            value = base + int(digits) / 10 ** len(digits)
            return value if value < LATEST_TIME else None
    match = _FRACTION_AND_ZONE.fullmatch(rest)
    if match is None:
        return None
    fraction, zone = match.groups()
    value = base
    if zone:
        offset = _zone_cache.get(zone, _MISSING)
        if offset is _MISSING:
            offset = _zone_cache[zone] = _zone_offset(zone)  # at most 40,000 spellings: bounded
        if offset is None:
            return None
        value -= offset
    if fraction:
        value += int(fraction) / 10 ** len(fraction)
    return value if 0.0 <= value < LATEST_TIME else None  # checked in UTC, after the zone


def _whole_minute(head: str) -> Optional[float]:
    """UTC epoch seconds of ``YYYY-MM-DDTHH:MM``, or None when it is not a valid time."""
    match = _WHOLE_MINUTE.fullmatch(head)
    if match is None:
        return None
    try:
        moment = datetime(*map(int, match.groups()))
    except ValueError:
        return None
    seconds = float(calendar.timegm(moment.timetuple()))
    return seconds if plausible_time(seconds) else None


def _zone_offset(zone: str) -> Optional[int]:
    """Seconds east of UTC for ``Z``, ``UTC``, ``+01:00`` or ``-0530``; None for hours past 23
    or minutes past 59 (``+99:99`` is no zone)."""
    if zone in ("Z", "z", "UTC", "GMT"):
        return 0
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:])
    if hours > 23 or minutes > 59:
        return None
    return sign * (hours * 3600 + minutes * 60)


def format_iso8601(seconds: float) -> str:
    """ISO 8601 UTC with microseconds and ``Z``: the form every alert time is written in."""
    moment = datetime(1970, 1, 1) + timedelta(microseconds=round(seconds * 1_000_000))
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def resolve_zone(name: str) -> Optional[tzinfo]:
    """A zone from a setting: ``local`` (None: this machine's rules, summer time included),
    ``UTC``, ``+02:00`` or an IANA name. Raises ValueError with a readable message for an
    unknown name."""
    if name == "local":
        return None
    if name in ("UTC", "utc", "Z"):
        return timezone.utc
    if re.fullmatch(r"[+-]\d\d:?\d\d", name, re.ASCII):
        offset = _zone_offset(name)
        if offset is None:
            raise ValueError(f"time zone {name!r} is out of range (hours up to 23, minutes up to 59)")
        return timezone(timedelta(seconds=offset))
    try:
        return ZoneInfo(name)
    except Exception as error:  # ZoneInfoNotFoundError, ValueError for malformed keys
        raise ValueError(f"unknown time zone {name!r}") from error


_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}


class Rfc3164Clock:
    """Reads ``Nov 28 05:01:02`` timestamps, which carry neither a year nor a zone.

    The zone is a setting (None: this machine's local rules); the year is the one that puts the
    timestamp nearest to, and not more than a day after, the time of reading (so a December
    line read on 1 January belongs to the year before). ``now`` is injectable for tests.
    Each distinct timestamp is converted once (a log writes many lines per second); the
    conversions are forgotten when the wall clock has moved an hour, so that a long run never
    reads a line with the year it inferred long ago.
    """

    def __init__(self, zone: Optional[tzinfo], now: Callable[[], float] = _time.time) -> None:
        self._zone = zone
        self._now = now
        self.seconds: Dict[str, float] = {}  # conversions so far: readers may look a stamp up here first
        self._hour_starts: Dict[str, Optional[float]] = {}
        self._filled_at = now()

    def __call__(self, stamp: str) -> Optional[float]:
        """Seconds since the epoch for ``Mmm dd hh:mm:ss``, or None when it is not a valid time."""
        seconds = self.seconds.get(stamp)
        return seconds if seconds is not None else self._convert(stamp)

    def _convert(self, stamp: str) -> Optional[float]:
        now = self._now()
        if len(self.seconds) >= _CACHE_LIMIT or now - self._filled_at > 3600:
            self.seconds.clear()
            self._hour_starts.clear()
            self._filled_at = now
        day_hour = stamp[:9]
        if day_hour not in self._hour_starts:
            self._hour_starts[day_hour] = self._hour_start(day_hour, now)
        base = self._hour_starts[day_hour]
        minute, second = stamp[10:12], stamp[13:15]
        if base is None or len(stamp) != 15 or stamp[12] != ":" or not (minute.isdigit() and second.isdigit()):
            return None
        seconds = self.seconds[stamp] = base + int(minute) * 60 + int(second)
        return seconds

    def _hour_start(self, day_hour: str, reading: float) -> Optional[float]:
        """Epoch of ``Mmm dd hh`` in the chosen zone and inferred year; None if not a date."""
        month = _MONTHS.get(day_hour[:3])
        day, hour = day_hour[4:6].strip(), day_hour[7:9]
        if month is None or not day.isdigit() or not hour.isdigit() or day_hour[3] != " ":
            return None
        this_year = datetime.fromtimestamp(reading, self._zone).year
        best = None
        for year in (this_year + 1, this_year, this_year - 1):
            try:
                moment = datetime(year, month, int(day), int(hour), tzinfo=self._zone).timestamp()
            except ValueError:  # 29 Feb in a common year, hour 24
                continue
            if moment <= reading + 86400 and (best is None or abs(moment - reading) < abs(best - reading)):
                best = moment
        return best
