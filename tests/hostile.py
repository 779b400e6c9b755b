"""Hostile input of every shape fail2entra reads: generators for the fuzz harness
(tests/test_hostile_fuzz.py, driven by hypothesis's seeded randoms) and for the benchmark's
hostile-cost measurement (driven by a seeded random.Random).

Every generator takes ``rng`` (random.Random's interface) and returns one item of its shape:
a line (text), a Windows event (text, which may span lines) or a msgpack stream (bytes).

Addresses: wherever an attacker writes (usernames, identification strings, method info,
workstation names, messages of a program that is not the system's sshd, user agents) the
generators put INNOCENT addresses, which must never be charged. The address slots sshd and
Windows fill hold ATTACKER addresses, or text an attacker can put there that is no address (a
DNS name under UseDNS, a zone index). Some hostile classes are generated apart, because a
finding the lead fixes in the readers still breaks an invariant on them: ``non_ip_slot`` (M1),
``broken_xml`` (D1), ``wrapper_with_bad_items`` (D2) and ``desynchronising_msgpack`` (D3).
"""

import json
import random
from typing import Callable, Dict, List, Optional

import msgpack

NOW = 1796119200.0  # 2026-12-01T10:00:00Z: the wall clock the harness gives the engine and the reader
NOW_ISO = "2026-12-01T10:00:00Z"
NOW_3164 = "Dec  1 10:00:00"

INNOCENT = ("192.0.2.66", "192.0.2.250", "2001:db8:bad::1", "192.0.2.77")  # canonical forms
INNOCENT_TEXT = ("192.0.2.66", "192.0.2.250", "2001:db8:bad::1", "::ffff:192.0.2.77", "2001:DB8:BAD:0::1")
ATTACKERS = ("203.0.113.5", "203.0.113.66", "2001:db8:a77::5")
# What an attacker can make sshd write in a slot that is no address (a PTR name under UseDNS;
# a zone index, a mapped address with one, other digits: none of them is an address).
NOT_AN_ADDRESS = ("192.0.2.66.static.example.net", "192.0.2.250%evil.example.com", "::ffff:192.0.2.77%eth0",
                  "1\u0669\u0662.0.2.250", "host.example.com", "192.000.002.066")
KEEP_IP = "198.51.100.77"  # the good records after the hostile ones: their alert must come

SSHD_PROGRAMS = ("sshd", "sshd-session", "sshd-auth")


def _innocent(rng) -> str:
    return rng.choice(INNOCENT_TEXT)


def _port(rng) -> int:
    return rng.choice((22, 1, 65535, rng.randrange(1024, 65535)))


# -- text an attacker chooses -----------------------------------------------------------------

def client_text(rng, longest: int = 100) -> str:
    """A username, identification string or key ID as a client writes it: sshd's own words,
    addresses, markers of its message forms, quotes, other scripts' digits, bidi controls."""
    pieces = [
        lambda: f" from {_innocent(rng)} port {_port(rng)} ssh2", lambda: f" from {_innocent(rng)}",
        lambda: _innocent(rng), lambda: " port 22", lambda: " ssh2", lambda: ": ", lambda: "Accepted",
        lambda: " [preauth]", lambda: "invalid user ", lambda: "UNKNOWN", lambda: " for ", lambda: "from",
        lambda: "message repeated 3 times: [ ", lambda: "]", lambda: "'", lambda: '"', lambda: "\\",
        lambda: "\u202e", lambda: "\u0669\u0662", lambda: "%eth0", lambda: "&#xD800;", lambda: "\ufeff",
        lambda: "x" * rng.randrange(1, 40), lambda: "root", lambda: " ", lambda: "{", lambda: "<Event>",
    ]
    text = "".join(rng.choice(pieces)() for _ in range(rng.randrange(0, 6)))
    return text[:longest]


def method_info(rng) -> str:
    """What follows ``ssh2: `` in a publickey / hostbased failure: a key ID and fingerprint the
    client chooses, sometimes holding sshd's own trailer many times (the costly case)."""
    if rng.random() < 0.1:
        return f"ED25519-CERT SHA256:x ID {' from 1 port 1 ssh2: ' * rng.randrange(1, 55)}"
    return f"{rng.choice(('RSA', 'ED25519', 'ED25519-CERT'))} SHA256:{client_text(rng, 400)}"


# -- sshd messages ------------------------------------------------------------------------------

def _counted_body(rng, slot: str, opaque_tail_slot: str) -> str:
    """One counted sshd message (or a neighbour that is not counted) with ``slot`` in its
    address slot; forms whose tail holds client text (method info) get ``opaque_tail_slot``."""
    user = client_text(rng)
    invalid = rng.choice(("", "invalid user ", "illegal user "))
    forms = [
        lambda: f"Failed password for {invalid}{user} from {slot} port {_port(rng)} ssh2",
        lambda: f"Failed {rng.choice(('publickey', 'hostbased'))} for {invalid}{user} from {opaque_tail_slot} "
                f"port {_port(rng)} ssh2: {method_info(rng)}",
        lambda: f"Invalid user {user} from {slot} port {_port(rng)}",
        lambda: f"User {user} from {slot} not allowed because not listed in AllowUsers",
        lambda: f"Did not receive identification string from {slot} port {_port(rng)}",
        lambda: f"Bad protocol version identification '{client_text(rng)}' from {slot} port {_port(rng)}",
        lambda: f"banner exchange: Connection from {slot} port {_port(rng)}: {client_text(rng)}",
        lambda: f"error: PAM: Authentication failure for {invalid}{user} from {slot}",
        lambda: f"ROOT LOGIN REFUSED FROM {slot}",
        lambda: f"Accepted publickey for {user} from {opaque_tail_slot} port {_port(rng)} ssh2: {method_info(rng)}",
        lambda: f"Connection closed by invalid user {user} {slot} port {_port(rng)} [preauth]",
        lambda: f"Disconnecting invalid user {user} {slot} port {_port(rng)}: {client_text(rng)}",
    ]
    body = rng.choice(forms)()
    roll = rng.random()
    if roll < 0.1:
        body += " [preauth]"
    elif roll < 0.2:
        body = f"message repeated {rng.choice((2, 3, 10))} times: [ {body}]"
    return body


def sshd_body(rng) -> str:
    """An sshd message whose address slot holds an attacker's address, or (where the form has
    a single reading) text that is no address; innocent addresses only in client text."""
    slot = rng.choice(ATTACKERS) if rng.random() < 0.8 else rng.choice(NOT_AN_ADDRESS)
    return _counted_body(rng, slot, rng.choice(ATTACKERS))


def non_ip_slot(rng) -> str:
    """M1: a form with method info after the slot, the slot not an address (``UNKNOWN`` under
    ``sshd -i``), an innocent address in the method info after the same trailer."""
    slot = rng.choice(("UNKNOWN",) + NOT_AN_ADDRESS)
    return (f"Failed publickey for {client_text(rng)} from {slot} port {_port(rng)} ssh2: ED25519-CERT SHA256:x "
            f"ID k from {_innocent(rng)} port {_port(rng)} ssh2: {client_text(rng)}")


# -- syslog lines -------------------------------------------------------------------------------

def iso_stamp(rng) -> str:
    """Mostly the harness's day; sometimes the edges of time, impossible zones and dates."""
    roll = rng.random()
    if roll < 0.7:
        return f"2026-12-01T{rng.randrange(0, 10):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}" + rng.choice(
            ("Z", "+00:00", "+01:00", "-05:30", ".123456+00:00", ".9278361Z"))
    return rng.choice(("1970-01-01T00:30:00+01:00", "2106-02-07T06:28:15-23:59", "2106-02-07T06:28:15Z",
                       "2026-12-01T10:00:00+99:99", "2026-02-30T10:00:00Z", "2026-12-01T24:00:00Z",
                       "\u0662\u0660\u0662\u0666-12-01T10:00:00Z", "2026-12-01T10:00:00.1234567890Z", "0000-01-01T00:00:00Z"))


def syslog_line(rng, body: Optional[str] = None) -> str:
    """An sshd line (or a forger's) in RFC 3164, RFC 3339 or RFC 5424, hostile header parts included."""
    body = sshd_body(rng) if body is None else body
    odd = rng.random() < 0.3  # a hostile header
    program = rng.choice(("sudo", "logger", "sshd[1]", "") if odd else SSHD_PROGRAMS)
    pid = rng.choice(("[]", "[x]", "") if odd else ("[1234]", ""))
    host = rng.choice(("-", "h" * 300, "web1 web2") if odd else ("web1", "web1.example.com"))
    priority = rng.choice(("<999>", "<-1>", "<13>", "<38") if odd else ("", "<38>", "<86>"))
    roll = rng.random()
    if roll < 0.35:
        return f"{priority}{NOW_3164} {host} {program}{pid}: {body}"
    if roll < 0.7:
        return f"{priority}{iso_stamp(rng)} {host} {program}{pid}: {body}"
    structured = rng.choice(("-", '[x@1 a="b"]', '[x@1 a="\\"]"]', "[" + '""' * rng.randrange(1, 300),
                             '[x@1 a="b"][y@2 c="d\\]"]', "[", '[x@1 a="'))
    return f"<{rng.choice((38, 86, 13, 191))}>1 {iso_stamp(rng)} {host} {program or '-'} 1234 - {structured} {body}"


# -- journald -------------------------------------------------------------------------------------

def journald_entry(rng) -> dict:
    """A journalctl -o json entry: root's sshd (attacker addresses in the slot) or a forger
    (any of the ways a local user names himself sshd: innocent addresses anywhere)."""
    trusted = rng.random() < 0.5
    if trusted:
        exe = rng.choice(("/usr/sbin/sshd", "/usr/lib/openssh/sshd-session", "/usr/sbin/sshd (deleted)", None))
        uid, message = "0", sshd_body(rng)
    else:
        exe, uid = rng.choice((("/home/mallory/sshd", "1000"), ("/usr/sbin/sshd", "1000"), ("/usr/bin/su", "0"),
                               ("/usr/bin/logger", "1000"), ("/usr/sbin/sshd", None), (None, "1000")))
        message = _counted_body(rng, _innocent(rng), _innocent(rng))
    entry: Dict[str, object] = {
        "__REALTIME_TIMESTAMP": str(int(NOW * 1e6) - rng.randrange(10 ** 10)) if rng.random() < 0.8 else
        rng.choice(("9" * 400, "-1", "", "1" + "0" * 19, 1796119200000000)),
        "SYSLOG_FACILITY": rng.choice(("4", "10", "4", "10", "\u00b2", "999", 4)),
        "SYSLOG_IDENTIFIER": "sshd", "_PID": "4242", "_COMM": rng.choice(SSHD_PROGRAMS),
        "MESSAGE": message if rng.random() < 0.9 else list(message.encode("utf-8")) + [255],
    }
    if exe is not None:
        entry["_EXE"] = exe
    if uid is not None:
        entry["_UID"] = uid
    return entry


# -- Windows 4625 --------------------------------------------------------------------------------

_XML_ESCAPES = {"<": "&lt;", ">": "&gt;", "&": "&amp;", "'": "&apos;", '"': "&quot;"}


def _xml_text(text: str) -> str:
    return "".join(_XML_ESCAPES.get(character, character) for character in text)


def _windows_value(rng) -> str:
    """A value an attacker chooses (user, workstation), escaped as Windows writes it, or with
    character references and entities only a forger writes."""
    text = _xml_text(client_text(rng))
    roll = rng.random()
    if roll < 0.15:
        text += rng.choice(("&#xD800;", "&#xD83D;&#xDE00;", "&#x41;", "&#1114112;", "&#0;", "&lol;", "&#x" + "9" * 30 + ";"))
    return text


WINDOWS_FIELDS = ("SubjectUserSid", "SubjectUserName", "SubjectDomainName", "SubjectLogonId", "TargetUserSid",
                  "TargetUserName", "TargetDomainName", "Status", "FailureReason", "SubStatus", "LogonType",
                  "LogonProcessName", "AuthenticationPackageName", "WorkstationName", "TransmittedServices",
                  "LmPackageName", "KeyLength", "ProcessId", "ProcessName", "IpAddress", "IpPort")


def windows_event(rng, address: Optional[str] = None, when: str = "") -> str:
    """A well-formed 4625 event: the attacker's address in IpAddress, his text in the fields
    he chooses; one line (wevtutil) or pretty-printed (Event Viewer)."""
    values = {name: "-" for name in WINDOWS_FIELDS}
    values.update(LogonType=rng.choice(("3", "10", "7", "2", "03", "\u0663")), TargetUserName=_windows_value(rng),
                  WorkstationName=_windows_value(rng), TargetDomainName=_windows_value(rng),
                  IpAddress=address or rng.choice(ATTACKERS + ("-", "")))
    data = "".join(f"<Data Name='{name}'>{value}</Data>" for name, value in values.items())
    system = (f"<System><EventID>4625</EventID><TimeCreated SystemTime='{when or iso_stamp(rng)}'/>"
              f"<Computer>{_windows_value(rng)}</Computer></System>")
    event = f"<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'>{system}<EventData>{data}</EventData></Event>"
    return event.replace("><", ">\n  <") if rng.random() < 0.2 else event


def broken_xml(rng) -> str:
    """D1: XML that opens something it never closes (a comment, a DTD's internal subset, an
    event cut short)."""
    return rng.choice(("<!-- never closed", "<!DOCTYPE x [", "<!DOCTYPE x [ <!ENTITY a 'b'>",
                       windows_event(rng)[:rng.randrange(10, 400)], "<Event><System>"))


# -- sign-ins and collector records -----------------------------------------------------------------

def signin_record(rng, address: Optional[str] = None, record_id: str = "", when: str = NOW_ISO,
                  result: str = "0") -> dict:
    """A successful (or not) sign-in in one of its shapes, the client's text in its free fields."""
    address = address or rng.choice(INNOCENT_TEXT + ATTACKERS)
    record_id = record_id or f"id-{rng.randrange(10 ** 9)}"
    agent = client_text(rng)
    shape = rng.randrange(3)
    if shape == 0:
        return {"category": "SignInLogs", "time": when, "resultType": result, "callerIpAddress": address,
                "properties": {"id": record_id, "ipAddress": address, "userPrincipalName": "bob@contoso.com",
                               "userAgent": agent, "status": {"errorCode": int(result)}}}
    if shape == 1:
        return {"createdDateTime": when, "id": record_id, "ipAddress": address, "userPrincipalName": "bob@contoso.com",
                "status": {"errorCode": int(result)}, "userAgent": agent, "location": {"countryOrRegion": agent}}
    return {"Type": "SigninLogs", "TimeGenerated": when, "Id": record_id, "IPAddress": address,
            "UserPrincipalName": "bob@contoso.com", "ResultType": result, "UserAgent": agent}


def signin_wrapper(rng, good: Optional[dict] = None) -> dict:
    """An Event Hub body or a Graph page of sign-ins, hostile values inside well-formed items."""
    items = [signin_record(rng, result=rng.choice(("0", "50126"))) for _ in range(rng.randrange(0, 4))]
    if good is not None:
        items.append(good)
    return {"records": items} if rng.random() < 0.5 else {"value": items}


def wrapper_with_bad_items(rng, good: Optional[dict] = None) -> dict:
    """D2: a body whose items are broken one way or another (and a lone surrogate escaped in
    a string, which msgspec refuses), then the good item."""
    bad = rng.choice(({"category": "SignInLogs", "properties": "oops"}, {"winlog": "x"}, {"records": 5},
                      {"value": [1, "x"]}, {"category": "SignInLogs", "time": NOW_ISO, "properties": {"userAgent": "\ud800"}}))
    items = [bad] + ([good] if good is not None else [])
    return {"records": items} if rng.random() < 0.5 else {"value": items}


def collector_record(rng) -> dict:
    """A record as a collector forwards it: Fluentd in_tail + syslog parser (the program as the
    line said: forgeable), a raw line in ``log``, Winlogbeat, Fluent Bit winevtlog."""
    roll = rng.randrange(4)
    if roll == 0:
        return {"host": "web1", "ident": rng.choice(SSHD_PROGRAMS), "pid": "1234", "message": sshd_body(rng),
                "pri": rng.choice(("38", "86", "999", "x")), "time": NOW - rng.randrange(36000)}
    if roll == 1:
        return {"log": syslog_line(rng), "tag": "auth"}
    inserts = ["-"] * len(WINDOWS_FIELDS)
    inserts[WINDOWS_FIELDS.index("LogonType")] = rng.choice(("3", 3, "10", None))
    inserts[WINDOWS_FIELDS.index("IpAddress")] = rng.choice(ATTACKERS + ("-",))
    inserts[WINDOWS_FIELDS.index("TargetUserName")] = client_text(rng)
    inserts[WINDOWS_FIELDS.index("WorkstationName")] = client_text(rng)
    if roll == 2:
        data = dict(zip(WINDOWS_FIELDS, inserts))
        return {"@timestamp": iso_stamp(rng), "winlog": {"event_id": 4625, "channel": "Security",
                                                         "computer_name": client_text(rng), "event_data": data},
                "source": {"ip": data["IpAddress"], "domain": client_text(rng)}}
    return {"ProviderName": "Microsoft-Windows-Security-Auditing", "EventID": 4625, "Channel": "Security",
            "TimeCreated": rng.choice((iso_stamp(rng), "2026/12/01 09:00:00.45000000")), "Computer": "DC01",
            "StringInserts": inserts}


# -- msgpack streams --------------------------------------------------------------------------------

def msgpack_record(rng) -> bytes:
    """One map of any record shape, sometimes with bytes, ext types or odd keys; values the
    generators above make."""
    makers: List[Callable[[], dict]] = [lambda: collector_record(rng), lambda: journald_entry(rng),
                                        lambda: signin_record(rng), lambda: signin_wrapper(rng),
                                        lambda: {"log": windows_event(rng).replace("\n", " ")}]
    record = rng.choice(makers)()
    if rng.random() < 0.2:
        record[rng.choice(("time", b"log", 7, ""))] = rng.choice((msgpack.ExtType(0, b"\x00" * 8),
                                                                   msgpack.ExtType(5, b"x"), b"\xff", 2 ** 64 - 1))
    return msgpack.packb(record, use_bin_type=rng.random() < 0.5, unicode_errors="surrogatepass")


def msgpack_stream(rng) -> bytes:
    """A few whole maps (msgpack_record)."""
    return b"".join(msgpack_record(rng) for _ in range(rng.randrange(1, 4)))


def desynchronising_msgpack(rng) -> bytes:
    """D3 (and R3 in small): bytes that are no stream of maps: a string header claiming 4 GiB, a
    map cut short (its next key is the next record), maps nested past the depth limit,
    resynchronisation bait. Not what takes the next record whole as a value, and so is a
    well-formed record (a map cut short before its last value, a string cut short): no reader
    can give that record back (docs/hostile-input.md)."""
    return rng.choice((b"\x81\xa1a\xdb\xff\xff\xff\xff", b"\x83\xa3log\xa1x",
                       b"\x81\xa1a" * rng.randrange(1, 3000) + b"\xc1", b"\xc1", b"\x91" * 100 + b"\xc0",
                       b"\xdf\xff\xff\xff\xff"))


# -- the good records that must survive ------------------------------------------------------------

def good_failures() -> List[str]:
    return [f"2026-12-01T10:00:00+00:00 web1 sshd[1]: Failed password for root from {KEEP_IP} port 22 ssh2"] * 6


def good_signin() -> dict:
    return {"Type": "SigninLogs", "TimeGenerated": NOW_ISO, "Id": "keep", "IPAddress": KEEP_IP,
            "UserPrincipalName": "bob@contoso.com", "ResultType": "0"}


def json_line(record: dict) -> str:
    """A record as one JSON line; a lone surrogate is written as JSON writes it (``\\ud800``)."""
    return json.dumps(record)


LINE_KINDS: Dict[str, Callable[[random.Random], str]] = {
    "syslog": syslog_line,
    "journald": lambda rng: json_line(journald_entry(rng)),
    "windows-xml": windows_event,
    "signin-json": lambda rng: json_line(signin_wrapper(rng) if rng.random() < 0.5 else signin_record(rng)),
    "collector-json": lambda rng: json_line(collector_record(rng)),
    "m1-non-ip-slot": lambda rng: syslog_line(rng, non_ip_slot(rng)),
    "d1-broken-xml": broken_xml,
    "d2-bad-items": lambda rng: json_line(wrapper_with_bad_items(rng)),
}
