"""The block scanner reads what the per-line reading reads: every failure a profile counts when
every line is parsed in full is counted, identically, when only the scan's candidates are."""

import os
from datetime import timezone
from typing import List

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsers.reader import LineReader
from parsers.timestamps import Rfc3164Clock
from plugin.profiles import PROFILES, Failure
from samples import FIXTURES, READING_TIME


class FailureRecorder:
    """A sink that keeps what a profile counts (and the event it came from)."""

    def __init__(self, profile) -> None:
        self.profile = profile
        self.counted: List[tuple] = []
        self.malformed_lines: List[int] = []
        self.lines = 0

    def event(self, event) -> None:
        verdict = self.profile.failure(event)
        if isinstance(verdict, Failure):
            self.counted.append((verdict, event.time, event.computer, event.program, event.process_id, event.facility,
                                 event.message, event.kind))

    def ignored(self, kind: str, why: str) -> None:
        pass

    def malformed(self, kind: str, reason: str, line_number: int) -> None:
        self.malformed_lines.append(line_number)

    def unrecognised(self, text: str, line_number: int) -> None:
        pass

    def oversized(self, size: int, line_number: int) -> None:
        pass

    def invalid_text(self, line_number: int) -> None:
        pass


def read(data: bytes, profile_name: str, scanned: bool) -> FailureRecorder:
    profile = PROFILES[profile_name]()
    recorder = FailureRecorder(profile)
    reader = LineReader(recorder, Rfc3164Clock(timezone.utc, now=lambda: READING_TIME),
                        interest=profile.interest if scanned else None)
    reader.feed(data)
    reader.finish()
    recorder.lines = reader.line_number
    return recorder


def _fixture_lines() -> List[str]:
    lines = []
    for name in ("sshd.log", "syslog.log"):
        with open(os.path.join(FIXTURES, name), encoding="utf-8") as handle:
            lines += [line for line in handle.read().split("\n") if line and not line.startswith("#")]
    return lines


FIXTURE_LINES = _fixture_lines()
BODIES = sorted({line.split(": ", 1)[1] for line in FIXTURE_LINES if ": " in line})
HEADERS = (
    "Nov 28 05:01:02 web1 {program}[1234]: ", "Nov  2 05:01:02 web1 {program}[1234]: ", "Jun 7 01:10:56 web1 {program}[1]: ",
    "Feb 17 17:40:17 {program}[19725]: ", "Nov 28 05:01:02 web1 {program}: ", "Nov 28 05:01:02 web1 {program}[1234]:",
    "<38>Nov 28 05:01:02 web1 {program}[1]: ", "<13>Nov 28 05:01:02 web1 {program}[1]: ", "<999>Nov 28 05:01:02 h {program}[1]: ",
    "2026-11-28T05:01:12.123456+00:00 web1 {program}[1250]: ", "2026-11-28T05:01:12Z {program}[1]: ",
    "<86>2026-11-28T05:01:12+01:00 web1 {program}[1]: ", "<86>1 2026-11-28T05:01:12.123Z web1 {program} 1250 - - ",
    "<86>1 2026-11-28T05:01:12.123Z web1 {program} 1250 - [m k=\"v\\] x\"] ", "Mar  5 12:00:00 sol1 {program}[1234]: [ID 800047 auth.info] ",
    "Mar  5 12:00:00 sol1 {program}[1234]: [ID 1 daemon.notice] ", "Nov 28 05:01:02 sshd[1]: {program}[2]: ",
    "Nov 28 05:01:02 web1: {program}[1]: ", "Nov 31 05:01:02 web1 {program}[1]: ", "2026-02-30T05:01:12Z web1 {program}[1]: ",
)
PROGRAMS = ("sshd", "sshd-session", "sshd-auth", "sshdx", "dropbear", "sudo", "sshd-sessionx")
WRAPPERS = ("{}", "message repeated 3 times: [ {}]", "error: {}", "message repeated 2 times: [ error: {}]", "{}  ",
            "{}\r", "{} [preauth]", "{}\t", "{}\u3000", "{}\x1c", " {}", "{}" + " x" * 600, "fatal: {}")


@st.composite
def syslog_lines(draw) -> str:
    header = draw(st.sampled_from(HEADERS)).format(program=draw(st.sampled_from(PROGRAMS)))
    body = draw(st.sampled_from(BODIES))
    if draw(st.booleans()):
        cut = draw(st.integers(min_value=0, max_value=len(body)))
        body = body[:cut] + draw(st.sampled_from(["", " from 192.0.2.9 port 22 ssh2", " from ", "\t", "Failed ",
                                                   "ü", " from 10.9.8.7"])) + body[cut:]
    return header + draw(st.sampled_from(WRAPPERS)).format(body)


def _same_reading(data: bytes, profile_name: str) -> None:
    """Same failures, same lines read; a line the scan leaves unparsed cannot be reported
    malformed (its bad date is not seen), so the scan's notices are a subset."""
    full, scanned = read(data, profile_name, scanned=False), read(data, profile_name, scanned=True)
    assert scanned.counted == full.counted
    assert scanned.lines == full.lines
    assert set(scanned.malformed_lines) <= set(full.malformed_lines)


COUNTED_BODIES = ("Failed password for root from 203.0.113.5 port 52211 ssh2", "Invalid user admin from 203.0.113.6",
                  "banner exchange: Connection from 2001:db8::40 port 34389: invalid format",
                  "Did not receive identification string from 203.0.113.7 port 1",
                  "PAM: authentication error for root from 203.0.113.8 via 192.168.local")


def test_fixture_lines_count_alike_scanned_and_whole():
    data = "\n".join(FIXTURE_LINES).encode()
    for profile_name in PROFILES:
        _same_reading(data, profile_name)
    assert read(data, "hardened", scanned=True).counted, "the fixtures hold counted failures"


def test_every_header_and_wrapper_counts_alike_scanned_and_whole():
    """Each header form (with and without hostname, priority, a tag where a hostname could be)
    with each wrapper around counted bodies, each line alone."""
    for header in HEADERS:
        for program in PROGRAMS[:3]:
            for wrapper in WRAPPERS:
                for body in COUNTED_BODIES:
                    line = header.format(program=program) + wrapper.format(body)
                    for profile_name in PROFILES:
                        _same_reading(line.encode(), profile_name)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(syslog_lines(), min_size=1, max_size=12), profile_name=st.sampled_from(sorted(PROFILES)))
def test_generated_lines_count_alike_scanned_and_whole(lines, profile_name):
    _same_reading("\n".join(lines).encode(), profile_name)
