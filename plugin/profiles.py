"""What counts: the rule's qualification of failures and successes, in two profiles.

``kql`` is the Sentinel rule exactly, weaknesses included (rule.md, first section), so that
its output can be checked row for row against Sentinel. ``hardened`` (the default) keeps the
rule's sources, threshold and successes but reads sshd lines by template, counts repeats and
IPv6, and compares canonical addresses. A profile answers, for each event, the failure it
stands for, or a short reason why it does not count (the explain mode prints that reason).
"""

import re
from typing import Dict, NamedTuple, Optional, Type, Union

from parsers.address import canonical_ip, is_loopback
from parsers.event import FAILURE_TABLES, SIGNIN_TABLES, SYSLOG, Event
from parsers.scan import Interest
from parsers.sshd import SSHD_PROGRAMS, read_sshd_message
from parsers.windows import LOGON_FAILURE

from .kql import has_any_matcher

SUCCESS_RESULT_TYPES = frozenset(("0", "50125", "50140"))
REMOTE_LOGON_TYPES = frozenset((3, 7, 10))  # Network, Unlock, RemoteInteractive (RDP)


class Failure(NamedTuple):
    """A qualifying failed logon: which list it counts on, for which IP, how many times."""

    source: str  # the failure table: SecurityEvent, WindowsEvent or Syslog
    ip: str  # the list key (as written in kql, canonical in hardened)
    count: int  # failures this event stands for ("message repeated 3 times" is 3)
    host: str  # target host, for the evidence
    user: str  # target account, for the evidence and exclusions


Verdict = Union[Failure, str]  # a Failure, or the reason the event does not count

# Reasons shared by both profiles (constants: the hot path returns them without building text).
NOT_A_FAILURE_TABLE = "not a failure source"
NOT_4625 = "EventID is not 4625"
NOT_REMOTE_LOGON = "LogonType is not 3, 7 or 10"
NO_WINDOWS_ADDRESS = 'IpAddress is "-"'
NOT_AUTH_FACILITY = "facility does not contain 'auth'"
AMBIGUOUS = "sshd line can be read two ways; not counted"


_new_failure = tuple.__new__  # Failure without NamedTuple's argument handling (hot path)
_auth_facilities: Dict[str, bool] = {}


def _is_auth(facility: str) -> bool:
    """The rule's ``Facility contains 'auth'`` (case-insensitive), remembered per name."""
    found = _auth_facilities.get(facility)
    if found is None:
        if len(_auth_facilities) > 1000:
            _auth_facilities.clear()
        found = _auth_facilities[facility] = "auth" in facility.lower()
    return found


def _windows_failure(event: Event) -> Verdict:
    """The rule's Windows qualification, identical in both profiles (address not yet keyed)."""
    if event.event_id != LOGON_FAILURE:
        return NOT_4625
    if event.logon_type not in REMOTE_LOGON_TYPES:
        return NOT_REMOTE_LOGON
    if event.ip == "-":
        return NO_WINDOWS_ADDRESS
    return _new_failure(Failure, (event.table, event.ip, 1, event.computer, event.target_user))


class KqlProfile:
    """The rule exactly: term ``has``, first dotted quad anywhere, string comparison of IPs."""

    name = "kql"
    interest = Interest(term="from")  # a line without "from" in any case never counts
    _has_from = staticmethod(has_any_matcher(("from",)))
    _has_exclusion = staticmethod(has_any_matcher(("Disconnecting", "Disconnected", "Accepted", "disconnect", "[preauth]")))
    _first_dotted_quad = re.compile(r"(([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.(([0-9]{1,3})))").search

    def failure(self, event: Event) -> Verdict:
        """The failure ``event`` counts as on one of the rule's lists, or why it does not."""
        if event.table != SYSLOG:
            return _windows_failure(event) if event.table in FAILURE_TABLES else NOT_A_FAILURE_TABLE
        if not _is_auth(event.facility):
            return NOT_AUTH_FACILITY
        if event.process_name == "sudo":
            return "ProcessName is 'sudo'"
        message = event.message
        if not self._has_from(message):
            return "SyslogMessage does not have the term 'from'"
        if self._has_exclusion(message):
            return "SyslogMessage has an excluded term (Disconnect*, Accepted, [preauth])"
        found = self._first_dotted_quad(message)
        if found is None:
            return "no dotted quad in SyslogMessage"
        address = found.group(1)
        if address == "127.0.0.1":
            return "SourceIP is 127.0.0.1"
        # The rule reads no user; the evidence and the exclusions' UserName get the sshd
        # template's, when the message has exactly one reading.
        reading = event.sshd or read_sshd_message(message)
        user = reading.user if reading is not None and not reading.ambiguous else ""
        return _new_failure(Failure, (SYSLOG, address, 1, event.computer, user))

    def success_ip(self, event: Event) -> Optional[str]:
        """The list key a sign-in is looked up with, or None when it is not a success."""
        if event.table in SIGNIN_TABLES and event.result_type in SUCCESS_RESULT_TYPES:
            return event.ip
        return None


class HardenedProfile:
    """The rule's sources and threshold, read so that an attacker cannot steer them."""

    name = "hardened"
    interest = Interest(sshd=True)  # only sshd lines that open with a counted template's first word

    def failure(self, event: Event) -> Verdict:
        """The failure ``event`` counts as, keyed by canonical address, or why it does not."""
        if event.table != SYSLOG:
            if event.table not in FAILURE_TABLES:
                return NOT_A_FAILURE_TABLE
            verdict = _windows_failure(event)
            if type(verdict) is str:
                return verdict
            address = canonical_ip(event.ip)
            if address is None:
                return "IpAddress is not an IP address"
            return _new_failure(Failure, (event.table, address, 1, event.computer, event.target_user))
        if not (_auth_facilities.get(event.facility) or _is_auth(event.facility)):  # the hot path: one lookup
            return NOT_AUTH_FACILITY
        if event.program not in SSHD_PROGRAMS:
            return "program is not sshd (syslog header; journald: _EXE of a root process)"
        reading = event.sshd or read_sshd_message(event.message)
        if reading is None:
            return "not a known sshd message"
        if reading.ambiguous:
            return AMBIGUOUS
        if not reading.counts:
            return f"sshd '{reading.template}' is not a counted failure"
        address = reading.address
        if address.startswith("127.") or address == "::1":  # is_loopback, inline on the hot path
            return "loopback address"
        return _new_failure(Failure, (SYSLOG, address, reading.repeat, event.computer, reading.user))

    def success_ip(self, event: Event) -> Optional[str]:
        """The canonical address of a successful sign-in, or None."""
        if event.table in SIGNIN_TABLES and event.result_type in SUCCESS_RESULT_TYPES:
            return canonical_ip(event.ip)
        return None


PROFILES: Dict[str, Type] = {"hardened": HardenedProfile, "kql": KqlProfile}
