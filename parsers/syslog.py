"""Syslog lines (RFC 3164 with or without ``<PRI>``, rsyslog RFC 3339, RFC 5424) to events.

Only the header is matched by regex; the message is the rest of the line, sliced, because
scanning every message with a regex would cost more than everything else on the line. Header
variants real hosts write are read too: a day without padding (``Jun 7 01:10:56``), no hostname
(``Feb 17 17:40:17 sshd[19725]: ...``, macOS and some relays), and Solaris' ``[ID 800047
auth.info]`` before the message (taken as part of the header: its facility is the line's).
"""

import re
from typing import Callable, Optional

from .event import Event, MalformedRecord, syslog_event
from .timestamps import parse_iso8601

KIND = "syslog"  # for malformed syslog headers of any form
RFC3164_KIND = "syslog-rfc3164"
RFC3339_KIND = "syslog-rfc3339"
RFC5424_KIND = "syslog-rfc5424"

FACILITIES = (
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
    "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
    "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
)
_FACILITY_NAMES = frozenset(FACILITIES)

# The RFC 3164 / RFC 3339 timestamps, and what follows them: an optional hostname (absent when
# the first word is already the tag with its colon, "sshd[19725]: "), the tag, an optional [pid].
_TAG = r"([^\s\[:]+)(?:\[([0-9]*)\])?: ?"
_HOST_AND_TAG = r" (?:(?![^\s\[:]+(?:\[[0-9]*\])?:(?: |$))(\S+) )?" + _TAG
# Nov 28 05:01:02 web1 sshd[1234]: message, also "Jun 7 01:10:56" (<PRI> in front is read apart)
_RFC3164 = re.compile(r"([A-Z][a-z]{2} [ 0-9]?[0-9] [0-9]{2}:[0-9]{2}:[0-9]{2})" + _HOST_AND_TAG)
# 2026-11-28T05:01:12.123456+00:00 web1 sshd[1250]: message   (rsyslog's high-precision format)
_RFC3339 = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?(?:Z|[+-][0-9]{2}:[0-9]{2}))" + _HOST_AND_TAG
)
_PRIORITY = re.compile(r"<([0-9]{1,3})>")
# <86>1 2026-11-28T05:01:12.123Z web1 sshd 1250 - [meta k="v \] x"] message  (after the <PRI>)
_RFC5424 = re.compile(
    r'1 (\S+) (\S+) (\S+) (\S+) \S+ (?:-|(?:\[[^\]"]*(?:"(?:[^"\\]|\\.)*"[^\]"]*)*\])+)(?: \ufeff?|$)'
)
# Structured data past this is refused: the regex keeps a backtracking mark per quoted value,
# so its memory grows with the data (a line of 500,000 empty values took 228 MB).
MAX_STRUCTURED_DATA = 16 * 1024
_RFC5424_HEAD = re.compile(r"1 \S+ \S+ \S+ \S+ \S+ \[")  # a header whose structured data is not "-"
# Solaris: "[ID <msgid> <facility>.<severity>] " opens the message.
_SOLARIS_ID = re.compile(r"\[ID [0-9]+ ([a-z0-9-]+)\.[a-z]+\] ")


def _facility(pri: str) -> str:
    """Facility name from a ``<PRI>`` (facility * 8 + severity)."""
    value = int(pri)
    if value > 191:
        raise MalformedRecord(KIND, f"priority <{pri}> is above 191")
    return FACILITIES[value >> 3]


def parse_syslog(line: str, default_facility: str, clock: Callable[[str], Optional[float]]) -> Optional[Event]:
    """Read one syslog line; None when it has no syslog header.

    ``default_facility`` applies to lines without ``<PRI>`` (lines read from an auth log are
    auth lines); ``clock`` turns an RFC 3164 ``Mmm dd hh:mm:ss`` into epoch seconds.
    Raises MalformedRecord for a header with an impossible date or priority.
    """
    start, facility = 0, default_facility
    if line[:1] == "<":
        priority = _PRIORITY.match(line)
        if priority is None:
            return None
        start, facility = priority.end(), _facility(priority.group(1))
        if line.startswith("1 ", start):
            return _rfc5424(line, start, facility)
    rfc3339 = "0" <= line[start:start + 1] <= "9"
    match = (_RFC3339 if rfc3339 else _RFC3164).match(line, start)
    if match is None:
        return None
    stamp, host, tag, pid = match.groups()
    if rfc3339:
        when = parse_iso8601(stamp)
    else:
        when = clock(stamp if stamp[5] != " " else f"{stamp[:4]} {stamp[4:]}")  # "Jun 7" is "Jun  7"
    if when is None:
        raise MalformedRecord(KIND, f"timestamp {stamp!r} is not a date")
    message_start = match.end()
    if line.startswith("[ID ", message_start):
        solaris = _SOLARIS_ID.match(line, message_start)
        if solaris is not None and solaris.group(1) in _FACILITY_NAMES:
            facility, message_start = solaris.group(1), solaris.end()
    return syslog_event(when, RFC3339_KIND if rfc3339 else RFC3164_KIND, host or "", tag, pid or "", facility,
                        line[message_start:], tag)


def _rfc5424(line: str, start: int, facility: str) -> Optional[Event]:
    """The rest of an RFC 5424 line, from its version field on."""
    end = min(len(line), start + MAX_STRUCTURED_DATA)
    match = _RFC5424.match(line, start, end)
    if end < len(line) and (match is None or match.end() == end) and _RFC5424_HEAD.match(line, start):
        # the structured data did not end inside the window (or "$" matched where it was cut)
        raise MalformedRecord(KIND, f"RFC 5424 structured data longer than {MAX_STRUCTURED_DATA} characters")
    if match is None:
        return None
    stamp, host, app, procid = match.groups()
    when = parse_iso8601(stamp)
    if when is None:
        raise MalformedRecord(KIND, f"RFC 5424 timestamp {stamp!r} is not a date")
    app = "" if app == "-" else app
    return syslog_event(when, RFC5424_KIND, "" if host == "-" else host, app, "" if procid == "-" else procid,
                        facility, line[match.end():], app)
