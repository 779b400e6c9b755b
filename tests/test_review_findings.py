"""The outside review of issue 13, finding by finding: each test reproduces a finding as the
review found it and fails on the code it was found in.

sshd lines are written as the review wrote them, after ``2026-12-01T10:00:00+00:00 web1
sshd[1]: ``, and the charged address signs in successfully right after.
"""

import io
import json
import logging
import os
import socket
import sys

import msgpack
import msgspec
import pytest

from cli import alerts_of, run_cli, stats_summary
from events import logon_failure, signin
from forward_server import ForwardServer
from parsers.address import canonical_ip
from parsers.timestamps import parse_iso8601, resolve_zone
from samples import SAMPLE_DIR

SSHD = "2026-12-01T10:00:00+00:00 web1 sshd[1]: "
SURROGATE_USER = "x\ud800y"  # what the XML character reference &#xD800; makes of "x&#xD800;y"


def signin_row(address: str, record_id: str = "s1", when: str = "2026-12-01T10:05:00Z") -> str:
    return json.dumps({"Type": "SigninLogs", "TimeGenerated": when, "Id": record_id, "IPAddress": address,
                       "UserPrincipalName": "bob@contoso.com", "ResultType": "0"}, ensure_ascii=False)


def charged(lines, *args: str) -> list:
    """The addresses alerted when ``lines`` are read (exit status 0, only alerts on stdout)."""
    result = run_cli(["--suppress", "0", *args], stdin=("\n".join(lines) + "\n").encode("utf-8", "surrogatepass"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert b"Traceback" not in result.stderr, result.stderr[-3000:]
    return [alert["IPAddress"] for alert in alerts_of(result.stdout)]


# -- M2: a zone index only on an IPv6 link-local address; ASCII digits only -------------------

def test_m2_a_zone_index_after_an_ipv4_address_is_no_address():
    pam = SSHD + "error: PAM: Authentication failure for root from 192.0.2.250%evil.example.com"
    assert charged([pam] * 6 + [signin_row("192.0.2.250")]) == []
    mapped = SSHD + "Failed password for root from ::ffff:192.0.2.250%eth0 port 22 ssh2"
    assert charged([mapped] * 6 + [signin_row("192.0.2.250")]) == []
    assert canonical_ip("fe80::1%eth0") == "fe80::1" and canonical_ip("2001:db8::1%eth0") is None


def test_m2_non_ascii_digits_are_not_an_address():
    xml = open(os.path.join(SAMPLE_DIR, "security.xml"), encoding="utf-8").read().split("\n")[1]
    forged = xml.replace("192.0.2.50", "1\u0669\u0662.0.2.250")
    assert charged([forged] * 6 + [signin_row("1\u0669\u0662.0.2.250")]) == []
    assert canonical_ip("1\u0669\u0662.0.2.250") is None and canonical_ip("\u0661.2.3.4") is None


# -- M3: program identity is what the kernel vouches for ---------------------------------------

def journald(exe: str, uid: str, comm: str = "sshd") -> str:
    entry = {"__REALTIME_TIMESTAMP": "1796119200000000", "SYSLOG_FACILITY": "4", "SYSLOG_IDENTIFIER": "sshd",
             "_PID": "4242", "_COMM": comm, "MESSAGE": "Failed password for root from 192.0.2.250 port 22 ssh2"}
    entry.update({key: value for key, value in (("_EXE", exe), ("_UID", uid)) if value is not None})
    return json.dumps(entry)


@pytest.mark.parametrize("exe, uid", [
    ("/home/mallory/sshd", "1000"),  # a binary named sshd (or prctl(PR_SET_NAME, "sshd"))
    ("/usr/sbin/sshd", "1000"),  # the real sshd, run by a user as himself
    ("/usr/bin/su", "0"),  # a setuid-root program started through a symlink named sshd
    ("/usr/sbin/sshd", None),  # no credentials: not from a local process
], ids=["renamed-binary", "users-own-sshd", "symlink-to-setuid", "no-uid"])
def test_m3_a_forged_journald_comm_counts_for_nobody(exe, uid):
    assert charged([journald(exe, uid)] * 6 + [signin_row("192.0.2.250")]) == []


def test_m3_root_sshd_in_journald_still_counts():
    genuine = journald("/usr/lib/openssh/sshd-session", "0", comm="sshd-session")
    exited = journald(None, "0")  # journald could not read /proc: _COMM stands in
    assert charged([genuine] * 3 + [exited] * 3 + [signin_row("192.0.2.250")]) == ["192.0.2.250"]


# -- C2: the 1970-2106 check in UTC, after the zone; zones up to +23:59 -----------------------

def test_c2_times_are_checked_after_the_zone_offset():
    assert parse_iso8601("1970-01-01T00:30:00+01:00") is None  # -1800
    assert parse_iso8601("2106-02-07T06:28:15-23:59") is None  # past 2**32
    assert parse_iso8601("2106-02-07T06:28:16Z") is None  # the minute is plausible, its last seconds are not
    assert parse_iso8601("2106-02-07T06:28:15Z") == 2 ** 32 - 1
    assert parse_iso8601("1970-01-01T01:00:00+01:00") == 0.0
    assert parse_iso8601("2026-12-01T10:00:00+99:99") is None
    assert parse_iso8601("2026-12-01T10:00:00+23:59") == parse_iso8601("2026-12-01T10:01:00Z") - 86400
    with pytest.raises(ValueError):
        resolve_zone("+99:99")


def test_c2_an_alert_at_the_edge_of_time_neither_crashes_the_forward_output_nor_says_1969():
    edge = "1970-01-01T00:30:00+01:00 web1 sshd[1]: Failed password for root from 192.0.2.250 port 22 ssh2"
    lines = [edge] * 6 + [signin_row("192.0.2.250", when="1970-01-01T00:30:00+01:00")]
    assert charged(lines) == []
    with ForwardServer() as server:
        result = run_cli(["--forward", server.address, "--stats"], stdin=("\n".join(lines) + "\n").encode())
        assert result.returncode == 0 and b"Traceback" not in result.stderr, result.stderr[-3000:]
        assert server.events == []
    assert stats_summary(result.stderr.decode())["malformed"] == "sentinel-row 1, syslog 6"


# -- C1: no text from input breaks an encoder ----------------------------------------------------

def xml_failures(address: str, user: str) -> list:
    xml = open(os.path.join(SAMPLE_DIR, "security.xml"), encoding="utf-8").read().split("\n")[1]
    event = xml.replace("192.0.2.50", address).replace(">administrator<", f">{user}<")
    return [event.replace("12:00:00", f"12:0{minute}:00") for minute in range(6)]


C1_LINES = (xml_failures("192.0.2.250", "x&#xD800;y") + [signin_row("192.0.2.250", "s1", "2026-11-27T12:06:30Z")]
            + xml_failures("192.0.2.251", "admin") + [signin_row("192.0.2.251", "s2", "2026-11-27T12:07:30Z")])


@pytest.mark.parametrize("output", ["json", "msgpack", "explain", "state", "msgpack-input"])
def test_c1_a_character_reference_to_a_surrogate_stops_nothing(output, tmp_path):
    """The reproducer of the review: the run reads all 14 lines and the alert after the bad
    event is written, whatever the reader makes of the reference (U+FFFD, or a refused event)."""
    args = {"json": [], "msgpack": ["--output", "msgpack"], "explain": ["--explain"],
            "state": ["--state", str(tmp_path / "state")], "msgpack-input": ["--input", "msgpack"]}[output]
    data = ("\n".join(C1_LINES) + "\n").encode()
    if output == "msgpack-input":  # as Fluentd hands them over: the XML in "log", the sign-ins as maps
        data = b"".join(msgpack.packb(json.loads(line) if line.startswith("{") else {"log": line}) for line in C1_LINES)
    result = run_cli(["--stats", *args], stdin=data)
    assert result.returncode == 0 and b"Traceback" not in result.stderr, result.stderr[-3000:]
    summary = stats_summary(result.stderr.decode())
    assert summary["records" if output == "msgpack-input" else "lines"] == "14"
    if output == "msgpack":
        unpacker = msgpack.Unpacker(raw=False)
        unpacker.feed(result.stdout)
        alerted = [record["IPAddress"] for record in unpacker]
    elif output == "explain":
        alerted = [line.split()[2] for line in result.stdout.decode().splitlines() if "=> ALERT" in line]
    else:
        alerted = [alert["IPAddress"] for alert in alerts_of(result.stdout)]
    assert alerted[-1:] == ["192.0.2.251"]
    if output == "state":
        assert summary["snapshot"].endswith("failures 0")
        restart = run_cli(["--state", str(tmp_path / "state"), "--stats"], stdin=b"")
        assert b"UNUSABLE" not in restart.stderr
        assert stats_summary(restart.stderr.decode())["tracked ips"].startswith("SecurityEvent ")


def _alert_with_surrogates():
    from plugin.alerts import build_alert
    from plugin.counter import Evidence
    bad = signin("192.0.2.250", upn="bob\udc00@contoso.com", record_id="id\ud800")
    return build_alert(bad, {"SecurityEvent": Evidence(6, bad.time, bad.time, ("DC\ud83d",), (SURROGATE_USER,))},
                       late=False)


def test_c1_every_encoder_takes_an_alert_built_from_any_text(tmp_path):
    """In process, whatever the readers let through: stdout JSON and msgpack, the forward
    output (to a real loopback server) and the state snapshot all take the text."""
    from plugin.outputs import StdoutOutput
    from plugin.forward import ForwardOutput
    alert = _alert_with_surrogates()
    assert alert["Evidence"][0]["Users"] == ["x\ufffdy"] and alert["UserPrincipalName"] == "bob\ufffd@contoso.com"
    for encoding in ("json", "msgpack"):
        stream = io.BytesIO()
        StdoutOutput(stream, encoding, "alert", "stats").alert(alert, 0.0)
        assert stream.getvalue()
    with ForwardServer() as server:
        output = ForwardOutput(server.address, "security.alert", None)
        output.emit(alert, 1795788000.0)
        (_, _, received), = server.wait_for_events(1)
        output.close(5.0)
    assert received["Evidence"][0]["Users"] == ["x\ufffdy"]


def test_c1_the_state_snapshot_keeps_any_text(tmp_path):
    from plugin.engine import Engine, Settings
    from plugin.profiles import KqlProfile
    from plugin.state import StateFile
    engine = Engine(Settings(), KqlProfile(), lambda record, when: None, wall_clock=lambda: 1795788000.0)
    for second in range(3):
        engine.process(logon_failure("192.0.2.\ud800", at=second, user=SURROGATE_USER, host="DC\udfff"))
    engine.process(signin("192.0.2.\ud800", at=5.0, upn="bob\udc00@contoso.com"))
    state = StateFile(str(tmp_path / "state"))
    state.save(engine)
    assert state.failures == 0
    restored = Engine(Settings(), KqlProfile(), lambda record, when: None, wall_clock=lambda: 1795788000.0)
    StateFile.load(state, restored)
    assert restored.counters["SecurityEvent"].evidence("192.0.2.\ud800", 0, 2e9).users == (SURROGATE_USER,)
    assert [signin.user_principal_name for _, signin in restored.retained()] == ["bob\udc00@contoso.com"]


def test_c1_only_a_closed_or_broken_stdout_ends_the_run_quietly():
    """An encoding error is no closed stdout: it must not stop the run with exit status 0."""
    from plugin.outputs import OutputClosed, StdoutOutput
    output = StdoutOutput(io.BytesIO(), "json", "alert", "stats")
    with pytest.raises(UnicodeEncodeError):
        output.alert({"raw": SURROGATE_USER}, 0.0)  # not an alert built by build_alert
    closed = io.BytesIO()
    closed.close()
    with pytest.raises(OutputClosed):
        StdoutOutput(closed, "json", "alert", "stats").alert({"a": 1}, 0.0)
    reader, writer = socket.socketpair()
    reader.close()
    with pytest.raises(OutputClosed):
        StdoutOutput(writer.makefile("wb"), "msgpack", "alert", "stats").alert({"a": 1}, 0.0)
    writer.close()


def test_c1_notices_that_quote_input_reach_the_log_file_and_syslog(tmp_path, capsys):
    from plugin.logs import LOG, EncodableText, configure_logging
    path = str(tmp_path / "log")
    configure_logging(path)
    try:
        LOG.warning("unrecognised input: %s", SURROGATE_USER)
        socket_path = str(tmp_path / "syslog")
        server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        server.bind(socket_path)
        handler = logging.handlers.SysLogHandler(address=socket_path)
        handler.addFilter(EncodableText())
        LOG.addHandler(handler)
        LOG.warning("unrecognised input: %s", SURROGATE_USER)
        assert server.recv(4096).endswith("unrecognised input: x\ufffdy\x00".encode())
        handler.close()
        server.close()
    finally:
        configure_logging(None)
    assert "Logging error" not in capsys.readouterr().err
    with open(path, encoding="utf-8") as log:
        assert log.read().count("unrecognised input: x\ufffdy") == 2


def test_c1_json_that_escapes_a_lone_surrogate_keeps_its_records():
    """msgspec refuses the document; decode_json reads it with U+FFFD in place, so one bad
    string in one item does not sink the other records of the body."""
    from parsers.records import JSON, Record, decode_json
    body = ('{"records": [{"category": "SignInLogs", "properties": {"userAgent": "a\\ud800b"}},'
            ' {"category": "SignInLogs", "properties": {"userAgent": "\\\\ud800", "id": "\\ud83d\\ude00\\udc00"}}]}')
    decode = msgspec.json.Decoder(Record).decode
    with pytest.raises(msgspec.DecodeError):
        decode(body)
    first, second = map(JSON.record, JSON.items(decode_json(decode, body).records))
    assert first.properties.userAgent == "a\ufffdb"
    assert (second.properties.userAgent, second.properties.id) == ("\\ud800", "\U0001f600\ufffd")
    with pytest.raises(msgspec.DecodeError):
        decode_json(decode, body[:-1])  # other errors stand


def test_c1_json_that_escapes_a_lone_surrogate_through_the_cli():
    failures = [SSHD + "Failed password for root from 192.0.2.250 port 22 ssh2"] * 6
    body = json.dumps({"records": [
        {"category": "SignInLogs", "time": "2026-12-01T10:05:00Z", "resultType": "50126",
         "properties": {"id": "bad", "ipAddress": "192.0.2.9", "userAgent": "PLACEHOLDER"}},
        {"category": "SignInLogs", "time": "2026-12-01T10:05:00Z", "resultType": "0",
         "properties": {"id": "good", "ipAddress": "192.0.2.250", "userPrincipalName": "bob@contoso.com"}},
    ]}).replace("PLACEHOLDER", "\\ud800")
    assert charged(failures + [body]) == ["192.0.2.250"]


# -- R5: eviction at the cap costs amortised O(log n) --------------------------------------------

def _counter_lines(cap: int, addresses: int) -> tuple:
    """(lines of plugin/counter.py executed, IPs evicted) while ``addresses`` fresh addresses
    fail once each, all in the same second as in the review, under ``--max-ips cap``. Lines
    executed are a measure of work that does not depend on the machine."""
    from parsers.event import syslog_event
    from plugin import counter
    from plugin.engine import Engine, Settings
    from plugin.profiles import HardenedProfile
    now = 1796119200.0
    engine = Engine(Settings(max_ips=cap), HardenedProfile(), lambda record, when: None, wall_clock=lambda: now)
    events = [syslog_event(now, "syslog-rfc3339", "web1", "sshd", "1", "auth",
                           f"Failed password for root from 10.{index >> 16}.{index >> 8 & 255}.{index & 255} port 22 ssh2",
                           "sshd") for index in range(addresses)]
    executed = 0

    def count_lines(frame, event, arg):
        nonlocal executed
        executed += event == "line"
        return count_lines

    sys.settrace(lambda frame, event, arg: count_lines if frame.f_code.co_filename == counter.__file__ else None)
    try:
        for event in events:
            engine.process(event)
    finally:
        sys.settrace(None)
    assert engine.tracked_total() <= cap
    return executed, engine.counts.ips_evicted


@pytest.mark.parametrize("cap", [500, 2000])
def test_r5_an_eviction_costs_a_few_dozen_lines_whatever_the_cap(cap):
    """Each eviction used to walk the whole table (every entry of a bucket the spray filled): a
    hundred entries walked per new address past the cap. Now one ranking serves a quarter of
    the table, and an eviction costs what forgetting the address costs plus amortised O(log n)."""
    uncapped, _ = _counter_lines(10 * cap, 4 * cap)
    capped, evicted = _counter_lines(cap, 4 * cap)
    assert evicted >= 2 * cap
    per_eviction = (capped - uncapped) / evicted
    assert per_eviction < 80, per_eviction
