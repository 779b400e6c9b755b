"""Syslog lines (RFC 3164 with or without ``<PRI>``, rsyslog RFC 3339, RFC 5424) to events.

Only the header is matched by regex; the message is the rest of the line, sliced, because
scanning every message with a regex would cost more than everything else on the line.
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

# Nov 28 05:01:02 web1 sshd[1234]: message          (auth.log; <PRI> in front is read apart)
_RFC3164 = re.compile(r"([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) (\S+) ([^\s\[:]+)(?:\[(\d*)\])?: ?")
# 2026-11-28T05:01:12.123456+00:00 web1 sshd[1250]: message   (rsyslog's high-precision format)
_RFC3339 = re.compile(
    r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)) (\S+) ([^\s\[:]+)(?:\[(\d*)\])?: ?"
)
_PRIORITY = re.compile(r"<(\d{1,3})>")
# <86>1 2026-11-28T05:01:12.123Z web1 sshd 1250 - [meta k="v \] x"] message  (after the <PRI>)
_RFC5424 = re.compile(
    r'1 (\S+) (\S+) (\S+) (\S+) \S+ (?:-|(?:\[[^\]"]*(?:"(?:[^"\\]|\\.)*"[^\]"]*)*\])+)(?: \ufeff?|$)'
)


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
    rfc3339 = line[start:start + 1].isdigit()
    match = (_RFC3339 if rfc3339 else _RFC3164).match(line, start)
    if match is None:
        return None
    stamp, host, tag, pid = match.groups()
    when = parse_iso8601(stamp) if rfc3339 else clock(stamp)
    if when is None:
        raise MalformedRecord(KIND, f"timestamp {stamp!r} is not a date")
    return syslog_event(when, RFC3339_KIND if rfc3339 else RFC3164_KIND, host, tag, pid or "", facility,
                        line[match.end():], tag)


def _rfc5424(line: str, start: int, facility: str) -> Optional[Event]:
    """The rest of an RFC 5424 line, from its version field on."""
    match = _RFC5424.match(line, start)
    if match is None:
        return None
    stamp, host, app, procid = match.groups()
    when = parse_iso8601(stamp)
    if when is None:
        raise MalformedRecord(KIND, f"RFC 5424 timestamp {stamp!r} is not a date")
    app = "" if app == "-" else app
    return syslog_event(when, RFC5424_KIND, "" if host == "-" else host, app, "" if procid == "-" else procid,
                        facility, line[match.end():], app)
