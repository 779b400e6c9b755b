"""Annotated samples (fail2ban style): ``# expect: {json}`` on the line above each sample.

A sample runs from the line after its annotation to the next line starting with ``#`` (blank
lines at its end dropped, blank lines inside kept: an XML message may hold some). The
expectation names fields of ``parsers.event.Event`` (``time`` as ISO 8601 UTC), or says
``{"malformed": true}``, ``{"ignored": true}``, ``{"unrecognised": true}``, or lists several
events with ``{"events": [...]}``.
"""

import json
import os
from datetime import datetime, timezone
from typing import Any, Dict, List, NamedTuple

from parsers.event import Event
from parsers.reader import LineReader
from parsers.timestamps import Rfc3164Clock, format_iso8601, parse_iso8601

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
SAMPLE_DIR = os.path.join(os.path.dirname(__file__), "sample")  # the Quickstart's data
# RFC 3164 samples are read as if at this moment, in UTC, so their inferred year is fixed.
READING_TIME = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc).timestamp()


class Sample(NamedTuple):
    path: str
    line: int  # line of the annotation
    expect: Dict[str, Any]
    text: str

    def __str__(self) -> str:
        return f"{os.path.relpath(self.path, FIXTURES)}:{self.line}"


def load_samples(path: str) -> List[Sample]:
    """Every annotated sample of one fixture file."""
    samples: List[Sample] = []
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line.startswith("# expect:"):
            continue
        body: List[str] = []
        while index < len(lines) and not lines[index].startswith("#"):
            body.append(lines[index])
            index += 1
        while body and not body[-1].strip():
            body.pop()
        assert body, f"{path}:{index}: annotation without a sample"
        samples.append(Sample(path, index - len(body), json.loads(line[len("# expect:"):]), "\n".join(body)))
    return samples


def fixture_files(*names: str) -> List[str]:
    return [os.path.join(FIXTURES, name) for name in names]


class Recorder:
    """A reader Sink that keeps everything it is given."""

    def __init__(self) -> None:
        self.events: List[Event] = []
        self.ignored_kinds: List[str] = []
        self.problems: List[str] = []
        self.unrecognised_lines: List[int] = []
        self.oversized_lines: List[int] = []
        self.invalid_lines: List[int] = []

    def event(self, event: Event) -> None:
        """Keep it; an edge's summary record (one event) is kept as one event per summary, with
        that summary's source, IP and last failure, so that samples annotate each of them."""
        if event.summary is None:
            self.events.append(event)
            return
        for item in event.summary.items:
            self.events.append(event._replace(table=item.source, ip=item.ip, time=item.last))

    def ignored(self, kind: str, why: str) -> None:
        self.ignored_kinds.append(kind)

    def malformed(self, kind: str, reason: str, line_number: int) -> None:
        self.problems.append(f"{line_number}: {kind}: {reason}")

    def unrecognised(self, text: str, line_number: int) -> None:
        self.unrecognised_lines.append(line_number)

    def oversized(self, size: int, line_number: int) -> None:
        self.oversized_lines.append(line_number)

    def invalid_text(self, line_number: int) -> None:
        self.invalid_lines.append(line_number)


def read_text(data: bytes, **options: Any) -> Recorder:
    """Read ``data`` through a LineReader exactly as the CLI does (auto mode by default)."""
    recorder = Recorder()
    reader = LineReader(recorder, Rfc3164Clock(timezone.utc, now=lambda: READING_TIME), **options)
    reader.feed(data)
    reader.finish()
    return recorder


def mismatches(event: Event, expected: Dict[str, Any]) -> List[str]:
    """Fields of ``event`` that differ from the expectation (times compared to the microsecond)."""
    wrong = []
    for field, want in expected.items():
        got = getattr(event, field)
        if field == "time":
            want_seconds = parse_iso8601(want)
            if want_seconds is None or abs(got - want_seconds) > 1e-6:
                wrong.append(f"time {format_iso8601(got)} != {want}")
        elif got != want:
            wrong.append(f"{field} {got!r} != {want!r}")
    return wrong


def check_outcome(sample: Sample, recorder: Recorder) -> List[str]:
    """What in the reading of ``sample`` contradicts its annotation (empty: all as annotated)."""
    expect = dict(sample.expect)
    problems: List[str] = []
    if expect.pop("malformed", False) != bool(recorder.problems):
        problems.append(f"malformed expected {sample.expect.get('malformed', False)}, got {recorder.problems}")
    if expect.pop("ignored", False) != bool(recorder.ignored_kinds):
        problems.append(f"ignored expected {sample.expect.get('ignored', False)}, got {recorder.ignored_kinds}")
    if expect.pop("unrecognised", False) != bool(recorder.unrecognised_lines):
        problems.append(f"unrecognised expected, got lines {recorder.unrecognised_lines}")
    wanted = expect.pop("events", [expect] if expect else [])
    if len(recorder.events) != len(wanted):
        problems.append(f"{len(recorder.events)} events, expected {len(wanted)}: {recorder.events}")
    else:
        for event, want in zip(recorder.events, wanted):
            problems.extend(mismatches(event, want))
    return problems
