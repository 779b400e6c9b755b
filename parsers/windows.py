"""Windows Security event 4625 ("An account failed to log on") in every shape it arrives in.

XML events are read with a few flat regexes, never with an XML parser: nothing is expanded,
no DTD is honoured (a document that declares one is rejected by the reader), and a 2 KB event
costs a few microseconds. Collector shapes (Fluentd, Fluent Bit, Winlogbeat, Sentinel rows)
are mapped onto the same named EventData fields and built by :func:`logon_failure_event`.
"""

import re
from operator import itemgetter
from typing import Any, Dict, Mapping, Optional, Sequence

from .event import LOGON_FAILURE, SECURITY_EVENT, WINDOWS_EVENT, Event, MalformedRecord, logon_failure
from .timestamps import parse_iso8601

XML_KIND = "windows-xml"

# EventData of 4625, in the order Windows writes it (formats.md): collectors that drop the
# names (Fluentd in_windows_eventlog2, Fluent Bit StringInserts) keep this order.
EVENT_DATA_NAMES = (
    "SubjectUserSid", "SubjectUserName", "SubjectDomainName", "SubjectLogonId", "TargetUserSid",
    "TargetUserName", "TargetDomainName", "Status", "FailureReason", "SubStatus", "LogonType",
    "LogonProcessName", "AuthenticationPackageName", "WorkstationName", "TransmittedServices",
    "LmPackageName", "KeyLength", "ProcessId", "ProcessName", "IpAddress", "IpPort",
)

# Each System field is found with str.find (memchr speed) and then matched where it stands:
# a regex search over a 2 KB event costs ten times more on a slow CPU.
_EVENT_ID = re.compile(r"EventID(?:\s[^>]*)?>\s*([0-9]+)\s*</")
_TIME_CREATED = re.compile(r"TimeCreated\s+SystemTime\s*=\s*(['\"])([^'\"<>]+)\1")
_COMPUTER = re.compile(r"Computer>([^<]*)</")
# The 21 items in Windows' own order and spelling (what wevtutil, Get-WinEvent and Event
# Viewer write): one match reads them all. Anything else falls back to _DATA_ITEM, item by item.
_DATA_IN_ORDER = re.compile("".join(
    r"<Data Name=(['\"])%s\%d>([^<]*)</Data>\s*" % (name, 2 * index + 1)
    for index, name in enumerate(EVENT_DATA_NAMES)
))
# The EventData fields an Event keeps, in logon_failure()'s order.
LOGON_FAILURE_FIELDS = (
    "IpAddress", "LogonType", "TargetUserName", "TargetDomainName", "SubjectUserName", "WorkstationName",
    "ProcessName", "LogonProcessName", "AuthenticationPackageName", "Status", "SubStatus",
)
_READ_FIELDS = frozenset(LOGON_FAILURE_FIELDS)
# Those fields picked from _DATA_IN_ORDER's groups, (quote, value) * 21: item i's value is group 2i+1.
_EVENT_FIELDS_IN_ORDER = itemgetter(*(2 * EVENT_DATA_NAMES.index(name) + 1 for name in LOGON_FAILURE_FIELDS))
_DATA_ITEM = re.compile(r"<(?:\w+:)?Data\s+Name\s*=\s*(['\"])(\w+)\1\s*(?:/>|>([^<]*)</(?:\w+:)?Data>)")
_ENTITY = re.compile(r"&(#x[0-9A-Fa-f]+|#[0-9]+|\w+);")
_PREDEFINED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}


def _is_xml_character(code: int) -> bool:
    """XML 1.0's Char production: no NUL, no other C0 control but tab and newlines, no lone
    surrogate (which no encoder could write back out), no U+FFFE / U+FFFF."""
    return code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD or 0x10000 <= code <= 0x10FFFF


def _unescape(text: str) -> str:
    """XML's five predefined entities and character references; anything else is malformed."""
    if "&" not in text:
        return text

    def replace(match: "re.Match[str]") -> str:
        name = match.group(1)
        if name[0] == "#":
            code = int(name[2:], 16) if name[1] in "xX" else int(name[1:]) if len(name) < 10 else -1
            if not _is_xml_character(code):
                raise MalformedRecord(XML_KIND, f"character reference &{name}; is not an XML character")
            return chr(code)
        if name not in _PREDEFINED:
            raise MalformedRecord(XML_KIND, f"undeclared entity &{name}; (no DTD is read)")
        return _PREDEFINED[name]

    return _ENTITY.sub(replace, text)


def parse_event_xml(text: str) -> Optional[Event]:
    """One ``<Event>...</Event>`` element to an Event; None for another EventID (ignored).

    ``<RenderingInfo>`` marks an event forwarded by Windows Event Forwarding (Sentinel's
    WindowsEvent table); without it the event came from a host's own Security log
    (SecurityEvent). Raises MalformedRecord when EventID or TimeCreated is missing or broken.
    """
    found = _EVENT_ID.match(text, text.find("EventID"))
    if found is None:
        raise MalformedRecord(XML_KIND, "no EventID")
    event_id = small_number(found.group(1))
    if event_id is None:
        raise MalformedRecord(XML_KIND, f"EventID {found.group(1)[:20]!r} is not a number")
    if event_id != LOGON_FAILURE:
        return None
    stamp = _TIME_CREATED.match(text, text.find("TimeCreated"))
    when = parse_iso8601(stamp.group(2)) if stamp else None
    if when is None:
        raise MalformedRecord(XML_KIND, "no readable TimeCreated SystemTime")
    # the element, not the word: a '<' in a value is always escaped, a client-chosen
    # WorkstationName "RenderingInfo" is not (it would move the event to the other list)
    table = WINDOWS_EVENT if "<RenderingInfo" in text else SECURITY_EVENT
    computer = _COMPUTER.match(text, text.find("Computer>"))
    computer_name = _unescape(computer.group(1)) if computer else ""
    start = text.find("<Data ")
    in_order = _DATA_IN_ORDER.match(text, start) if start >= 0 and "&" not in text else None
    if in_order is not None and text.find("<Data ", in_order.end()) < 0:  # the usual event: no dict
        ip, logon_type, *others = _EVENT_FIELDS_IN_ORDER(in_order.groups())
        return logon_failure(table, when, XML_KIND, ip, computer_name, small_number(logon_type), *others)
    return logon_failure_event(table, XML_KIND, when, computer_name, _event_data(text))


def _event_data(text: str) -> Mapping[str, str]:
    """EventData items by name, unescaped, item by item (any order, spelling or escaping). A
    field the rule or the alert reads that appears twice makes the event malformed: Windows
    never writes one twice, and either copy could be the one an attacker meant to count."""
    data: Dict[str, str] = {}
    for _, name, value in _DATA_ITEM.findall(text):
        if name in data and name in _READ_FIELDS:
            raise MalformedRecord(XML_KIND, f"EventData item {name} appears twice")
        data[name] = value
    if "&" in text:
        data = {name: _unescape(value) for name, value in data.items()}
    return data


def text_value(value: Any) -> str:
    """A collector's field value as text: strings, numbers, or msgpack bin (bytes)."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else str(value)


def small_number(text: str) -> Optional[int]:
    """A LogonType, EventID, facility or priority written as a number; None when it is not one:
    only ASCII digits, few, no leading zero or space (KQL compares ``tostring(LogonType)`` with
    "3", "7", "10": ``"03"`` and ``" 3"`` are not among them; ``"²"`` and 5,000-digit numbers
    are not numbers here)."""
    if text.isdigit() and text.isascii() and len(text) < 10 and (text[0] != "0" or text == "0"):
        return int(text)
    return None


def logon_failure_event(table: str, kind: str, when: float, computer: str, data: Mapping[str, str]) -> Event:
    """The Event for a 4625 whose EventData fields are known by name, values already text.

    A missing IpAddress is kept as ``''`` (not ``'-'``): Sentinel stores an absent value as an
    empty string, and the rule's ``IpAddress != "-"`` lets it through.
    """
    get = data.get
    return logon_failure(
        table, when, kind, get("IpAddress", ""), computer, small_number(get("LogonType", "")),
        get("TargetUserName", ""), get("TargetDomainName", ""), get("SubjectUserName", ""),
        get("WorkstationName", ""), get("ProcessName", ""), get("LogonProcessName", ""),
        get("AuthenticationPackageName", ""), get("Status", ""), get("SubStatus", ""),
    )


def named_event_data(values: Sequence[Any], kind: str) -> Mapping[str, str]:
    """Positional 4625 EventData (Fluentd, Fluent Bit) to names and text; too short is malformed."""
    if len(values) < len(EVENT_DATA_NAMES):
        raise MalformedRecord(kind, f"4625 EventData has {len(values)} items, expected {len(EVENT_DATA_NAMES)}")
    return {name: text_value(value) for name, value in zip(EVENT_DATA_NAMES, values)}
