"""The one normalised event every parser returns and the engine alone consumes."""

from typing import Any, List, NamedTuple, Optional, Tuple

SECURITY_EVENT = "SecurityEvent"
WINDOWS_EVENT = "WindowsEvent"
SYSLOG = "Syslog"
SIGNIN_LOGS = "SigninLogs"
NON_INTERACTIVE_SIGNIN_LOGS = "AADNonInteractiveUserSignInLogs"

FAILURE_TABLES = (SECURITY_EVENT, WINDOWS_EVENT, SYSLOG)
SIGNIN_TABLES = (SIGNIN_LOGS, NON_INTERACTIVE_SIGNIN_LOGS)
TABLES = FAILURE_TABLES + SIGNIN_TABLES
LOGON_FAILURE = 4625  # the Windows event ID of a failed logon


class Event(NamedTuple):
    """One log record, reduced to the columns the rule, the exclusions and the alert read.

    Field names follow the Sentinel column each one stands for (in the comment). Strings are
    as written in the log (never canonicalised here: the profile decides how to compare), ``''``
    when the record has no such value. A NamedTuple because it is immutable and about three
    times cheaper to build than a frozen dataclass, which matters at 400k lines/s.
    """

    table: str  # Type: one of TABLES
    time: float  # TimeGenerated: event time from the record, seconds since the epoch, UTC
    kind: str  # the input shape it was read from ("syslog", "windows-xml", "eventhub", ...)
    ip: str = ""  # IpAddress (4625) / IPAddress (sign-in); syslog keeps its address in message
    computer: str = ""  # Computer (Windows) / HostName (syslog)
    # Windows event 4625
    event_id: int = 0  # EventID
    logon_type: Optional[int] = None  # LogonType; None when absent or not a number
    target_user: str = ""  # TargetUserName
    target_domain: str = ""  # TargetDomainName
    subject_user: str = ""  # SubjectUserName
    workstation: str = ""  # WorkstationName
    process_name: str = ""  # ProcessName: Windows process path, or the syslog program (tag)
    logon_process: str = ""  # LogonProcessName
    auth_package: str = ""  # AuthenticationPackageName
    status: str = ""  # Status
    sub_status: str = ""  # SubStatus
    # Syslog
    facility: str = ""  # Facility ("auth", "authpriv", ...)
    process_id: str = ""  # ProcessID
    program: str = ""  # trusted program: syslog header, or journald _EXE of a root process (never SYSLOG_IDENTIFIER)
    message: str = ""  # SyslogMessage
    # Entra ID sign-ins
    user_principal_name: str = ""  # UserPrincipalName
    result_type: str = ""  # ResultType, as a string ("0", "50126")
    record_id: str = ""  # Id of the sign-in
    app_display_name: str = ""  # AppDisplayName
    client_app: str = ""  # ClientAppUsed
    user_agent: str = ""  # UserAgent
    location: str = ""  # Location (country or region)
    # Read ahead: the sshd template reading of ``message``, when the reader already matched it
    # (the block scanner reads the commonest failures with the header); None: read on demand.
    sshd: Optional[tuple] = None  # a parsers.sshd.SshdMessage
    # An edge's summary record (parsers/summary.py): its good items, each a (source, IP, bucket)
    # of failures; table is the first item's source, time the latest failure; None for every
    # event read from a log
    summary: Optional["FailureSummaries"] = None


class FailureSummaries(NamedTuple):
    """What one record of an edge collector (``--edge``) carries: for each (failure source, IP,
    time bucket), the failures it counted since its last flush. Read as one event, merged item
    by item: a central takes hundreds of thousands of summaries a second."""

    items: List[Any]  # parsers.summary.SummaryItem: source, ip, count, first, last, hosts, users
    profile: str  # the profile the edge counted with ("hardened", "kql")
    bucket_seconds: float  # the edge's bucket width: each item's first and last lie in one bucket
    edge: str  # the edge's name (--edge-name)


_build = tuple.__new__


def syslog_event(when: float, kind: str, host: str, program: str, process_id: str, facility: str,
                 message: str, trusted_program: str, sshd: Optional[tuple] = None) -> Event:
    """A Syslog event; built without NamedTuple's keyword handling, four times cheaper, since
    it runs for every counted line of an auth log."""
    return _build(Event, (SYSLOG, when, kind, "", host, 0, None, "", "", "", "", program, "", "", "", "",
                          facility, process_id, trusted_program, message, "", "", "", "", "", "", "", sshd, None))


def logon_failure(table: str, when: float, kind: str, ip: str, computer: str, logon_type: Optional[int],
                  target_user: str, target_domain: str, subject_user: str, workstation: str,
                  process_name: str, logon_process: str, auth_package: str, status: str, sub_status: str) -> Event:
    """A Windows 4625 event (built like syslog_event, for the same reason)."""
    return _build(Event, (table, when, kind, ip, computer, LOGON_FAILURE, logon_type, target_user, target_domain,
                          subject_user, workstation, process_name, logon_process, auth_package, status,
                          sub_status, "", "", "", "", "", "", "", "", "", "", "", None, None))


def signin(table: str, when: float, kind: str, ip: str, user_principal_name: str, result_type: str,
           record_id: str, app_display_name: str, client_app: str, user_agent: str, location: str) -> Event:
    """An Entra ID sign-in event (built like syslog_event, for the same reason)."""
    return _build(Event, (table, when, kind, ip, "", 0, None, "", "", "", "", "", "", "", "", "", "", "", "", "",
                          user_principal_name, result_type, record_id, app_display_name, client_app,
                          user_agent, location, None, None))


SUMMARY_KIND = "fail2entra-summary"


def summary_event(summaries: FailureSummaries, latest: float) -> Event:
    """An edge's summary record as one event (built like syslog_event); its table is the first
    item's source and its time ``latest``, the latest failure it stands for."""
    return _build(Event, (summaries.items[0].source, latest, SUMMARY_KIND, "",
                          "", 0, None, "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "",
                          "", None, summaries))


def short_reason(error: BaseException) -> str:
    """An exception as a one-line reason for a notice."""
    text = str(error) or type(error).__name__
    return text if len(text) <= 200 else text[:197] + "..."


class MalformedRecord(ValueError):
    """A record of a recognised shape that cannot be read; counted and reported with its line."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = reason

    def detached(self) -> "MalformedRecord":
        """This problem without its traceback and chained exceptions, fit to be kept in a list:
        the traceback holds the frame that holds the list, a cycle reference counting never frees."""
        self.__traceback__ = self.__context__ = self.__cause__ = None
        return self
