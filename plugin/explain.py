"""Explain mode: for each input line, how it was read and whether it counts (like
fail2ban-regex), for people checking what their own logs will do."""

from typing import Callable, Optional, TextIO

from parsers.event import SIGNIN_TABLES, Event
from parsers.reader import LineReader

from .outputs import closed_output
from .pipeline import Pipeline
from .profiles import Failure


class Explainer:
    """A Sink that prints a verdict per line, then hands everything on to the real pipeline
    (so counts, alerts and the closing summary are those of a normal run)."""

    def __init__(self, pipeline: Pipeline, out: TextIO, line_number: Callable[[], int]) -> None:
        self._pipeline = pipeline
        self._profile = pipeline.engine.profile
        if hasattr(out, "reconfigure"):  # quoted input may hold what the terminal's encoding cannot
            out.reconfigure(errors="backslashreplace")
        self._out = out
        self._line_number = line_number
        self.text = ""  # the line being read, set by ExplainingLineReader

    def _say(self, verdict: str) -> None:
        text = self.text if len(self.text) <= 160 else self.text[:157] + "..."
        self._write(f"{self._line_number():>6} | {text}\n       => {verdict}\n")

    def _write(self, text: str) -> None:
        try:
            self._out.write(text)
        except (BrokenPipeError, ValueError) as error:  # e.g. piped into head
            raise closed_output(self._out, error) from None

    def event(self, event: Event) -> None:
        if event.ip or event.user_principal_name or event.result_type:
            what = f"{event.kind} {event.table} ip={event.ip!r}"
        else:
            what = f"{event.kind} {event.table} program={event.program!r} facility={event.facility!r}"
        if event.summary is not None:
            summaries = event.summary
            for item in summaries.items:
                self._say(f"{event.kind} {item.source} ip={item.ip!r}: SUMMARY of {item.count} failure(s) from edge "
                          f"{summaries.edge!r} (merged with --accept-summaries)")
            self._pipeline.event(event)
            return
        verdict = self._profile.failure(event)
        if isinstance(verdict, Failure):
            self._say(f"{what}: FAILURE counted x{verdict.count} for {verdict.ip} on the {verdict.source} list")
        elif event.table in SIGNIN_TABLES:
            ip = self._profile.success_ip(event)
            if ip is None:
                self._say(f"{what}: sign-in, not a success the rule checks (ResultType {event.result_type!r} or address)")
            else:
                self._say(f"{what}: SUCCESS from {ip} ({event.user_principal_name}), checked against the lists")
        else:
            self._say(f"{what}: not counted: {verdict}")
        self._pipeline.event(event)

    def ignored(self, kind: str, why: str) -> None:
        self._say(f"{kind}: recognised, ignored ({why})")
        self._pipeline.ignored(kind, why)

    def malformed(self, kind: str, reason: str, line_number: int) -> None:
        self._say(f"{kind}: MALFORMED: {reason}")
        self._pipeline.malformed(kind, reason, line_number)

    def unrecognised(self, text: str, line_number: int) -> None:
        self._say("unrecognised: no known shape")
        self._pipeline.unrecognised(text, line_number)

    def oversized(self, size: int, line_number: int) -> None:
        self._say(f"over the size limit ({size} bytes): skipped")
        self._pipeline.oversized(size, line_number)

    def invalid_text(self, line_number: int) -> None:
        self._pipeline.invalid_text(line_number)

    def alert(self, record: dict, event_time: float, tag: Optional[str] = None) -> None:
        late = " (late: the failures came after the sign-in)" if record["Late"] else ""
        sources = ", ".join(f"{entry['Source']}={entry['FailureCount']}" for entry in record["Evidence"])
        self._write(f"       => ALERT {record['IPAddress']} {record['UserPrincipalName']} [{sources}]{late}\n")

    def stats(self, record: dict, event_time: float) -> None:
        pass

    def close(self, timeout: float = 0.0) -> None:
        try:
            self._out.flush()
        except (BrokenPipeError, ValueError) as error:
            raise closed_output(self._out, error) from None

    carries_stats = False


class ExplainingLineReader(LineReader):
    """A LineReader that reads one line at a time and lets its Explainer quote the line each
    verdict is about."""

    def _read_text(self, text: str) -> None:
        for line in text[1:].split("\n"):
            self.sink.text = line
            super()._read_text("\n" + line)
