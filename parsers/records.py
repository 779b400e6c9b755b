"""JSON objects and msgpack maps to events: each shape is recognised by its keys, unconfigured.

Shapes (formats.md): Sentinel / Log Analytics rows of the five tables (``Type``), Entra ID
sign-ins as Event Hub diagnostic records (``category``, also in ``{"records": [...]}``) and as
Microsoft Graph ``signIn`` objects (also in ``{"value": [...]}``), journald JSON, and the
collector shapes: Fluentd ``in_tail`` + syslog parser, Fluentd ``in_windows_eventlog2``, Fluent
Bit ``winevtlog``, Winlogbeat / ECS, records wrapping a whole raw line in ``log`` or
``message``, and the failure summaries of fail2entra's edge mode (parsers/summary.py).

JSON lines and msgpack maps are decoded by msgspec straight into :class:`Record`, a struct that
names only the keys some shape reads: the decoder skips everything else without building it.
The sign-in fields are typed (a status and a location are small structs, not dicts), and the
parts that may be large are left undecoded (``msgspec.Raw``) until read: the items of an Event
Hub ``records`` list or a Graph ``value`` page are decoded one at a time, so a bad item costs
only itself and a list of a million items never exists as a million structs, and an edge's
summaries are decoded by their own typed struct. :class:`Codec` says how, for JSON and msgpack.
"""

import math
import re
from typing import Any, Callable, List, NamedTuple, Optional, Tuple, TypeVar, Union

import msgspec

from .event import (
    NON_INTERACTIVE_SIGNIN_LOGS, SECURITY_EVENT, SIGNIN_LOGS, SUMMARY_KIND, SYSLOG, TABLES, WINDOWS_EVENT,
    Event, MalformedRecord, short_reason, signin, syslog_event,
)
from .summary import SUMMARY_KEY, TypedSummaryBatch, read_summaries
from .syslog import FACILITIES
from .timestamps import parse_iso8601, plausible_time
from .windows import (
    LOGON_FAILURE, LOGON_FAILURE_FIELDS, logon_failure_event, small_number, named_event_data, text_value,
)

_UNSET: Any = None
NO_RAW = msgspec.Raw()  # an undecoded part the record does not have
INJECTED_TIME_KEY = "__fail2entra_injected_time"


class SignInStatus(msgspec.Struct):
    """A Graph / Event Hub sign-in's ``status``: only its error code is read."""

    errorCode: Any = _UNSET


class SignInLocation(msgspec.Struct):
    """A Graph / Event Hub sign-in's ``location`` object: only its country is read."""

    countryOrRegion: Any = _UNSET


class SignInProperties(msgspec.Struct):
    """``properties`` of an Event Hub sign-in record: the columns the alert reads."""

    id: Any = _UNSET
    createdDateTime: Any = _UNSET
    userPrincipalName: Any = _UNSET
    ipAddress: Any = _UNSET
    status: Union[SignInStatus, str, int, float, bool, None] = _UNSET
    appDisplayName: Any = _UNSET
    clientAppUsed: Any = _UNSET
    userAgent: Any = _UNSET
    location: Union[str, SignInLocation, None] = _UNSET  # a country (Event Hub's top level) or an object
    isInteractive: Any = _UNSET


class Winlog(msgspec.Struct):
    """``winlog`` of a Winlogbeat / ECS document."""

    event_id: Any = _UNSET
    channel: Any = _UNSET
    computer_name: Any = _UNSET
    event_data: Any = _UNSET


class Record(SignInProperties):
    """Every key any recognised shape reads; values are untyped because field types drift.
    A Microsoft Graph signIn has the keys of a sign-in's ``properties``, and an Event Hub
    record has ``location`` and ``isInteractive`` at its top level too: those are inherited."""

    # wrappers, undecoded until read
    records: msgspec.Raw = NO_RAW  # Event Hub / storage delivery
    value: msgspec.Raw = NO_RAW  # Graph list response (a list) — or an unrelated key
    # Sentinel / Log Analytics rows (columns)
    Type: Any = _UNSET
    TimeGenerated: Any = _UNSET
    EventID: Any = _UNSET
    Computer: Any = _UNSET
    TargetUserName: Any = _UNSET
    TargetDomainName: Any = _UNSET
    SubjectUserName: Any = _UNSET
    LogonType: Any = _UNSET
    IpAddress: Any = _UNSET
    WorkstationName: Any = _UNSET
    ProcessName: Any = _UNSET
    LogonProcessName: Any = _UNSET
    AuthenticationPackageName: Any = _UNSET
    Status: Any = _UNSET
    SubStatus: Any = _UNSET
    EventData: Any = _UNSET
    Facility: Any = _UNSET
    ProcessID: Any = _UNSET
    SyslogMessage: Any = _UNSET
    HostName: Any = _UNSET
    IPAddress: Any = _UNSET
    ResultType: Any = _UNSET
    UserPrincipalName: Any = _UNSET
    Id: Any = _UNSET
    AppDisplayName: Any = _UNSET
    ClientAppUsed: Any = _UNSET
    UserAgent: Any = _UNSET
    Location: Any = _UNSET
    CreatedDateTime: Any = _UNSET
    # Event Hub diagnostic records
    time: Any = _UNSET  # also where Fluentd's <inject> puts the event time by default
    category: Any = _UNSET
    resultType: Any = _UNSET
    callerIpAddress: Any = _UNSET
    properties: Optional[SignInProperties] = None
    signInEventTypes: Any = _UNSET
    # journald (journalctl -o json)
    MESSAGE: Any = _UNSET
    SYSLOG_IDENTIFIER: Any = _UNSET
    SYSLOG_FACILITY: Any = _UNSET
    SYSLOG_PID: Any = _UNSET
    comm: Any = msgspec.field(default=_UNSET, name="_COMM")
    exe: Any = msgspec.field(default=_UNSET, name="_EXE")
    uid: Any = msgspec.field(default=_UNSET, name="_UID")
    pid: Any = msgspec.field(default=_UNSET, name="_PID")
    hostname: Any = msgspec.field(default=_UNSET, name="_HOSTNAME")
    realtime: Any = msgspec.field(default=_UNSET, name="__REALTIME_TIMESTAMP")
    # Fluentd in_tail + syslog parser; Fluent Bit / Fluentd raw-line wrappers
    host: Any = _UNSET
    ident: Any = _UNSET
    fluentd_pid: Any = msgspec.field(default=_UNSET, name="pid")
    message: Any = _UNSET
    pri: Any = _UNSET
    log: Any = _UNSET
    tag: Any = _UNSET  # Fluentd's <inject> tag_key default
    # where a --time-key other than "time" is moved, so that a record's own "time" stays its own
    injected_time: Any = msgspec.field(default=_UNSET, name=INJECTED_TIME_KEY)
    # Windows collectors
    ProviderName: Any = _UNSET
    Channel: Any = _UNSET
    TimeCreated: Any = _UNSET
    StringInserts: Any = _UNSET  # Fluent Bit winevtlog
    winlog: Optional[Winlog] = None  # Winlogbeat / ECS
    timestamp: Any = msgspec.field(default=_UNSET, name="@timestamp")
    source: Any = _UNSET  # ECS: source.ip (and source.domain: the workstation)
    user: Any = _UNSET  # ECS: user.name (the target account)
    process: Any = _UNSET  # ECS: process.executable
    # Fluentd in_windows_eventlog2 with parse_description true
    description_logon_type: Any = msgspec.field(default=_UNSET, name="logon_type")
    description_source_address: Any = msgspec.field(
        default=_UNSET, name="network_information.source_network_address")
    description_account_name: Any = msgspec.field(
        default=_UNSET, name="account_for_which_logon_failed.account_name")
    description_account_domain: Any = msgspec.field(
        default=_UNSET, name="account_for_which_logon_failed.account_domain")
    description_workstation: Any = msgspec.field(
        default=_UNSET, name="network_information.workstation_name")
    description_process_name: Any = msgspec.field(
        default=_UNSET, name="process_information.caller_process_name")
    # fail2entra --edge: a batch of failure summaries (parsers/summary.py), undecoded until read
    summaries: msgspec.Raw = msgspec.field(default=NO_RAW, name=SUMMARY_KEY)


# JSON may escape a lone surrogate ("\ud800": JavaScript and .NET write one for a string that
# holds it). msgspec refuses the whole document then, so one bad string in one item would lose
# every record of an Event Hub body. Such escapes are replaced by \ufffd (U+FFFD) and the
# document decoded again; an escaped backslash is a token of its own, so "\\ud800" stays text.
_SURROGATE_ESCAPES = re.compile(
    r"\\\\|\\u[dD][89abAB][0-9a-fA-F]{2}(?:\\u[dD][c-fC-F][0-9a-fA-F]{2})?|\\u[dD][c-fC-F][0-9a-fA-F]{2}")
Decoded = TypeVar("Decoded")


def decode_json(decode: Callable[[str], Decoded], text: str) -> Decoded:
    """``decode(text)`` with a msgspec decoder; a document that escapes a lone surrogate is
    decoded with U+FFFD in its place instead of being refused (its other errors stand)."""
    try:
        return decode(text)
    except msgspec.DecodeError:
        repaired = _SURROGATE_ESCAPES.sub(_lone_surrogate_replaced, text)
        if repaired == text:
            raise
    return decode(repaired)


def _lone_surrogate_replaced(match: "re.Match[str]") -> str:
    token = match.group()
    return "\\ufffd" if len(token) == 6 else token  # a pair (12) or an escaped backslash (2) stays


def event_time_ext(code: int, data: Any) -> object:
    """msgpack ext type 0 is Fluent's EventTime (uint32 seconds, uint32 nanoseconds)."""
    if code == 0 and len(data) == 8:
        return int.from_bytes(data[:4], "big") + int.from_bytes(data[4:], "big") / 1e9
    return msgspec.msgpack.Ext(code, bytes(data))


class Codec(NamedTuple):
    """How a record and its undecoded parts are decoded: JSON or msgpack, as the record came."""

    name: str
    record: Callable[[Any], Record]  # a whole record (raises msgspec.DecodeError / ValidationError)
    items: Callable[[Any], List[msgspec.Raw]]  # a list, its items left undecoded
    summaries: Callable[[Any], TypedSummaryBatch]  # an edge's batch of summaries, typed
    value: Callable[[Any], Any]  # anything, as plain values (to say what is wrong with it)


def _codec(name: str, module: Any, **options: Any) -> Codec:
    def decoder(kind: Any = Any) -> Callable[[Any], Any]:
        return module.Decoder(kind, **options).decode

    return Codec(name, decoder(Record), decoder(List[msgspec.Raw]), decoder(TypedSummaryBatch), decoder())


JSON = _codec("json", msgspec.json)
_EMPTY_MAPS = frozenset((b"{}", b"\x80"))  # an empty item of a wrapper list, in JSON and msgpack
MSGPACK = _codec("msgpack", msgspec.msgpack, ext_hook=event_time_ext)


# Parsing a wrapped raw line is the reader's job (it knows every line format); it registers
# itself here so that this module does not import the reader.
# (text, events, problems) -> whether the text is of a known shape; events and problems are appended
RawLineParser = Callable[[str, List[Event], List[MalformedRecord]], bool]

SIGNIN_CATEGORIES = {
    "SignInLogs": SIGNIN_LOGS,
    "NonInteractiveUserSignInLogs": NON_INTERACTIVE_SIGNIN_LOGS,
}


def _time_of(value: Any, kind: str, what: str) -> float:
    """An event time from an ISO string, or from Fluentd's injected epoch number."""
    if type(value) is str:  # the usual case, first
        when = parse_iso8601(value)
        if when is not None:
            return when
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not (isinstance(value, int) or math.isfinite(value)) or not plausible_time(value):
            raise MalformedRecord(kind, f"{what} {value!r} is not a time between 1970 and 2106")
        return float(value)
    when = parse_iso8601(text_value(value).strip()) if value is not None else None
    if when is None:
        raise MalformedRecord(kind, f"{what} {value!r} is not a time")
    return when


def _injected_time(record: Record) -> Any:
    """The time Fluentd's <inject> added, for shapes that have no time of their own."""
    return record.injected_time if record.injected_time is not None else record.time


def _result_code(value: Any) -> str:
    """ResultType as the rule compares it: a string; Graph's errorCode 0 is ``"0"``."""
    if type(value) is SignInStatus:
        value = value.errorCode
    return "" if value is None or isinstance(value, (bool, dict, list)) else text_value(value)


def _location_text(value: Any) -> str:
    """A sign-in's location: a country code string, or Graph's object with countryOrRegion."""
    if type(value) is SignInLocation:
        value = value.countryOrRegion
    return "" if isinstance(value, (dict, list)) else text_value(value)


def signin_event(table: str, kind: str, when: float, ip: Any, upn: Any, result: str, record_id: Any,
                 app: Any, client_app: Any, user_agent: Any, location: Any) -> Event:
    """The Event for one Entra ID sign-in, whatever shape it came in."""
    return signin(  # each field tested for text before any call: the usual case costs none
        table, when, kind, ip if type(ip) is str else text_value(ip),
        upn if type(upn) is str else text_value(upn), result,
        record_id if type(record_id) is str else text_value(record_id),
        app if type(app) is str else text_value(app), client_app if type(client_app) is str else text_value(client_app),
        user_agent if type(user_agent) is str else text_value(user_agent),
        location if type(location) is str else _location_text(location),
    )


def _sentinel_row(row: Record) -> Optional[Event]:
    """A Log Analytics row; the ``Type`` column names its table."""
    kind = "sentinel-row"
    table = row.Type
    when = _time_of(row.TimeGenerated, kind, "TimeGenerated")
    if table in (SECURITY_EVENT, WINDOWS_EVENT) and small_number(text_value(row.EventID)) != LOGON_FAILURE:
        return None
    if table == SECURITY_EVENT:
        data = {name: text_value(getattr(row, name)) for name in LOGON_FAILURE_FIELDS}
        return logon_failure_event(table, kind, when, text_value(row.Computer), data)
    if table == WINDOWS_EVENT:
        if not isinstance(row.EventData, dict):
            raise MalformedRecord(kind, "WindowsEvent 4625 row without an EventData object")
        data = {name: text_value(value) for name, value in row.EventData.items()}
        return logon_failure_event(table, kind, when, text_value(row.Computer), data)
    if table == SYSLOG:
        program = text_value(row.ProcessName)
        return syslog_event(when, kind, text_value(row.HostName or row.Computer), program, text_value(row.ProcessID),
                            text_value(row.Facility), text_value(row.SyslogMessage), program)
    return signin_event(
        table, kind, when, row.IPAddress, row.UserPrincipalName, _result_code(row.ResultType), row.Id,
        row.AppDisplayName, row.ClientAppUsed, row.UserAgent, row.Location,
    )


def _eventhub_signin(record: Record) -> Optional[Event]:
    """An Entra ID diagnostic-settings record (Event Hub, storage); other categories: None."""
    table = SIGNIN_CATEGORIES.get(record.category)
    if table is None:
        return None
    kind = "eventhub"
    properties = record.properties or SignInProperties()
    stamp = record.time if record.time is not None else properties.createdDateTime
    result = record.resultType if record.resultType is not None else properties.status
    return signin_event(
        table, kind, _time_of(stamp, kind, "time"), properties.ipAddress or record.callerIpAddress,
        properties.userPrincipalName, _result_code(result), properties.id, properties.appDisplayName,
        properties.clientAppUsed, properties.userAgent, record.location or properties.location,
    )


def _graph_signin(record: Record) -> Event:
    """A Microsoft Graph ``signIn``; the beta API marks non-interactive ones."""
    kind = "graph"
    event_types = record.signInEventTypes if isinstance(record.signInEventTypes, list) else ()
    interactive = record.isInteractive is not False and "nonInteractiveUser" not in event_types
    return signin_event(
        SIGNIN_LOGS if interactive else NON_INTERACTIVE_SIGNIN_LOGS, kind,
        _time_of(record.createdDateTime, kind, "createdDateTime"), record.ipAddress,
        record.userPrincipalName, _result_code(record.status), record.id, record.appDisplayName,
        record.clientAppUsed, record.userAgent, record.location,
    )


def _journald_program(record: Record) -> str:
    """The program of a journald entry as the kernel vouches for it (docs/hostile-input.md).

    journald takes ``_UID`` from the socket's credentials (the kernel's word) and ``_EXE`` and
    ``_COMM`` from /proc; a client cannot set fields that start with ``_``. ``_COMM`` is no
    identity: any process renames itself (``prctl(PR_SET_NAME)``) or is run as a file named
    ``sshd``. ``_EXE`` is the binary the kernel runs, but a user may run /usr/sbin/sshd himself
    (his own config, port and host key; with LD_PRELOAD it writes anything) - as himself, never
    as root, and sshd logs its failures from processes running as root. So the program is the
    file name of ``_EXE`` (``_COMM`` when journald could not read ``_EXE``: the process had
    exited), and an entry not logged by root (``_UID`` other than 0, or none: not from a local
    process) names its uid too, which no sshd program name matches.
    """
    exe = text_value(record.exe)
    name = exe.rpartition("/")[2].removesuffix(" (deleted)") if exe else text_value(record.comm)
    uid = text_value(record.uid)
    return name if uid == "0" else f"{name} (uid {uid or 'unknown'})"


def _journald(record: Record) -> Event:
    """A ``journalctl -o json`` entry; the trusted program is :func:`_journald_program`'s,
    ``SYSLOG_IDENTIFIER`` (the client's word) is Sentinel's ProcessName."""
    kind = "journald"
    message = record.MESSAGE
    if isinstance(message, list):  # journald writes non-UTF-8 messages as an array of bytes
        try:
            message = bytes(message).decode("utf-8", "replace")
        except (TypeError, ValueError) as error:
            raise MalformedRecord(kind, f"MESSAGE array is not bytes: {error}") from None
    micros, injected = text_value(record.realtime), _injected_time(record)
    if micros.isdigit() and micros.isascii() and len(micros) < 20 and plausible_time(int(micros) / 1_000_000):
        when = int(micros) / 1_000_000
    elif injected is not None:
        when = _time_of(injected, kind, "time")
    else:
        raise MalformedRecord(kind, "no __REALTIME_TIMESTAMP")
    facility_number = text_value(record.SYSLOG_FACILITY)
    number = small_number(facility_number)
    facility = FACILITIES[number] if number is not None and number < 24 else ""
    return syslog_event(when, kind, text_value(record.hostname), text_value(record.SYSLOG_IDENTIFIER),
                        text_value(record.SYSLOG_PID or record.pid), facility, text_value(message),
                        _journald_program(record))


def _fluentd_syslog(record: Record, default_facility: str) -> Event:
    """Fluentd ``in_tail`` + ``@type syslog``: the parser moved the timestamp into the event
    time, so the time comes from the key ``<inject>`` added (``time`` by default)."""
    kind = "fluentd-syslog"
    injected = _injected_time(record)
    if injected is None:
        raise MalformedRecord(kind, "no event time: add <inject> time_key to the exec_filter")
    if not isinstance(record.message, (str, bytes)):
        raise MalformedRecord(kind, "no message")
    pri = text_value(record.pri)
    number = small_number(pri)
    facility = FACILITIES[number >> 3] if number is not None and number < 192 else default_facility
    program = text_value(record.ident)
    return syslog_event(_time_of(injected, kind, "time"), kind, text_value(record.host), program,
                        text_value(record.fluentd_pid), facility, text_value(record.message), program)


# winevt_c (Fluentd in_windows_eventlog2, hash rendering) writes UTC as
# "%04d/%02d/%02d %02d:%02d:%02d.%llu" where the last number is nanoseconds NOT zero-padded:
# "05:01:36.45000000" is 0.045 s. The XML rendering and Fluent Bit write ISO-like times.
_WINEVT_TIME = re.compile(r"(\d{4})/(\d\d)/(\d\d) (\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?")


def _windows_collector_time(text: str) -> Optional[float]:
    """TimeCreated of a Windows collector record, in whichever of its forms."""
    match = _WINEVT_TIME.fullmatch(text)
    if match is None:
        return parse_iso8601(text) if text else None
    *fields, nanoseconds = match.groups()
    whole = parse_iso8601("{}-{}-{}T{}:{}:{}Z".format(*fields))
    return None if whole is None else whole + int(nanoseconds or 0) / 1e9


def _windows_collector_kind(record: Record) -> str:
    return "fluentbit-winevtlog" if record.StringInserts is not None else "fluentd-windows-eventlog2"


def _windows_collector(record: Record) -> Optional[Event]:
    """Fluentd ``in_windows_eventlog2`` (all strings, EventData positional or parsed from the
    description) and Fluent Bit ``winevtlog`` (StringInserts typed)."""
    kind = _windows_collector_kind(record)
    if small_number(text_value(record.EventID)) != LOGON_FAILURE:
        return None
    when = _windows_collector_time(text_value(record.TimeCreated))
    if when is None:
        raise MalformedRecord(kind, f"TimeCreated {record.TimeCreated!r} is not a time")
    table = WINDOWS_EVENT if text_value(record.Channel) == "ForwardedEvents" else SECURITY_EVENT
    computer = text_value(record.Computer)
    inserts = record.StringInserts if record.StringInserts is not None else record.EventData
    if isinstance(inserts, list):
        data = named_event_data(inserts, kind)
    elif record.description_logon_type is not None:
        data = {
            "LogonType": text_value(record.description_logon_type),
            "IpAddress": text_value(record.description_source_address),
            "TargetUserName": text_value(record.description_account_name),
            "TargetDomainName": text_value(record.description_account_domain),
            "WorkstationName": text_value(record.description_workstation),
            "ProcessName": text_value(record.description_process_name),
        }
    else:
        raise MalformedRecord(kind, "4625 without EventData / StringInserts")
    return logon_failure_event(table, kind, when, computer, data)


def _winlogbeat(record: Record) -> Event:
    """Winlogbeat / ECS: a valid IpAddress was moved to ``source.ip``, ``-`` stayed in event_data."""
    kind = "winlogbeat"
    winlog = record.winlog
    if small_number(text_value(winlog.event_id)) != LOGON_FAILURE:
        return None
    when = _time_of(record.timestamp, kind, "@timestamp")
    table = WINDOWS_EVENT if text_value(winlog.channel) == "ForwardedEvents" else SECURITY_EVENT
    computer = text_value(winlog.computer_name)
    event_data = winlog.event_data if isinstance(winlog.event_data, dict) else {}
    data = {name: text_value(value) for name, value in event_data.items()}
    # Winlogbeat's processors move valid values out of event_data into ECS fields
    for ecs_object, ecs_key, name in _ECS_MOVED:
        container = getattr(record, ecs_object)
        if isinstance(container, dict) and container.get(ecs_key) is not None:
            data[name] = text_value(container[ecs_key])
    return logon_failure_event(table, kind, when, computer, data)


_ECS_MOVED = (
    ("source", "ip", "IpAddress"),
    ("source", "domain", "WorkstationName"),
    ("user", "name", "TargetUserName"),
    ("process", "executable", "ProcessName"),
)


class RecordReader:
    """Turns one decoded record into events, reporting what it recognised.

    ``raw_line`` parses a string that holds a whole raw line (syslog, XML event, JSON), for the
    records collectors wrap around one. The result of :meth:`read` is ``(kind, events,
    problems)``: kind ``""`` means unrecognised; no events and no problems means recognised but
    nothing the rule reads (another EventID, another sign-in category). A wrapper list with
    broken items still yields its good ones.
    """

    def __init__(self, default_facility: str, raw_line: RawLineParser) -> None:
        self._default_facility = default_facility
        self._raw_line = raw_line

    def read(self, record: Record, codec: Codec) -> Tuple[str, List[Event], List[MalformedRecord]]:
        """Recognise ``record`` by its keys and read it; its undecoded parts (wrapper items,
        summaries) are decoded with ``codec``, the format the record came in."""
        events: List[Event] = []
        problems: List[MalformedRecord] = []
        try:
            kind = self._read_into(record, codec, events, problems)
        except RecursionError:  # wrapper lists nested hundreds deep: the items found so far stay
            kind = "eventhub" if record.records else "graph"
            problems.append(MalformedRecord(kind, "wrapper lists nested too deeply"))
        return kind, events, problems

    def _read_into(self, record: Record, codec: Codec, events: List[Event], problems: List[MalformedRecord]) -> str:
        if record.records or (record.value and record.Type is None):
            wrapper = self._read_list(record, codec, events, problems)
            if wrapper:
                return wrapper
        kind, reader = self._shape(record)
        if kind == SUMMARY_KIND:  # each summary of the batch is read alone: a bad one costs only itself
            read_summaries(record.summaries, codec.summaries, codec.value, events, problems)
            return kind
        if kind == "wrapped":  # a whole raw line inside: read like any line, problems and all
            wrapped = record.log if record.log is not None else record.message
            return kind if self._raw_line(text_value(wrapped), events, problems) else ""
        if reader is not None:
            try:
                found = reader(record)
            except MalformedRecord as problem:
                problems.append(problem.detached())
            except (ValueError, OverflowError, TypeError) as error:  # a "number" int() refuses, a list as a key
                problems.append(MalformedRecord(kind, short_reason(error)))
            else:
                if isinstance(found, Event):
                    events.append(found)
                elif found:
                    events.extend(found)
        return kind

    def _read_list(self, wrapper: Record, codec: Codec, events: List[Event], problems: List[MalformedRecord]) -> str:
        """The records of an Event Hub ``records`` or a Graph ``value`` list, each decoded and
        read alone: a bad item is reported by itself and the others are read. '' when
        ``value`` is no list (a key of another shape, which is read as that shape)."""
        kind, raw = ("eventhub", wrapper.records) if wrapper.records else ("graph", wrapper.value)
        try:
            items = codec.items(raw)
        except msgspec.ValidationError:  # not a list
            if kind == "graph":
                return ""
            problems.append(MalformedRecord(kind, "records is not a list"))
            return kind
        except (msgspec.DecodeError, RecursionError) as error:  # nested past the decoder's depth
            problems.append(MalformedRecord(kind, short_reason(error)))
            return kind
        for number, item in enumerate(items):
            if len(item) <= 2 and bytes(item) in _EMPTY_MAPS:  # no shape: cheaper to pass over unread
                continue
            try:
                record = codec.record(item)
            except (msgspec.DecodeError, RecursionError) as error:
                problems.append(MalformedRecord(kind, f"list item {number}: {short_reason(error)}"))
                continue
            self._read_into(record, codec, events, problems)
        return kind

    def _shape(self, record: Record) -> Tuple[str, Optional[Callable[[Record], Any]]]:
        """The shape of ``record`` and the function that reads it (None: nothing to read)."""
        if record.Type is not None:
            return "sentinel-row", (_sentinel_row if record.Type in TABLES else None)
        if record.summaries:
            return SUMMARY_KIND, None
        if record.category is not None:
            return "eventhub", _eventhub_signin
        if record.createdDateTime is not None and (record.userPrincipalName is not None or record.ipAddress is not None):
            return "graph", _graph_signin
        if record.MESSAGE is not None:
            return "journald", _journald
        if record.winlog is not None:
            return "winlogbeat", _winlogbeat
        if record.ProviderName is not None and record.EventID is not None:
            return _windows_collector_kind(record), _windows_collector
        if record.ident is not None:
            return "fluentd-syslog", self._fluentd_syslog
        wrapped = record.log if record.log is not None else record.message
        return ("wrapped", None) if isinstance(wrapped, (str, bytes)) else ("", None)

    def _fluentd_syslog(self, record: Record) -> Event:
        return _fluentd_syslog(record, self._default_facility)
