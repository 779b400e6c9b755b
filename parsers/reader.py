"""Framing: a byte stream in, one call per record to a sink out.

Handles what real streams do: records split across reads, multi-line Windows XML events
(an event ends at ``</Event>``), invalid UTF-8, CRLF, lines past the size limit (skipped to
their end and reported once), a stream that stops in the middle of a record, and msgpack
streams from Fluentd's exec_filter. Each line is recognised by itself (``auto``): ``{`` starts
JSON, ``<Event``/``<?xml`` XML, a syslog timestamp a syslog line.

Text is read a block at a time (what one read returns, cut at its last newline), not a line at
a time: runs of syslog lines are scanned with the regexes of parsers.scan, so that only the
lines the profile can count cost Python code (see that module); JSON lines and XML events are
found with ``str.find``. A line that begins a record of its own ends whatever XML construct is
still open (an event, a comment, a DTD), with a notice: no good line is lost to a bad one.
"""

import re
from typing import Any, Callable, Dict, List, Optional, Protocol, Tuple

import msgpack
import msgspec

from .address import canonical_ip
from .event import SYSLOG, Event, MalformedRecord, short_reason, syslog_event
from .records import INJECTED_TIME_KEY, JSON, MSGPACK, NO_RAW, Codec, Record, RecordReader, decode_json, event_time_ext
from .scan import NEW_RECORD, RUN_END, SSHD_SCANS, Interest, RunShape, run_shape_at, term_pattern
from .sshd import MAX_MESSAGE_LENGTH, SshdMessage
from .syslog import RFC3164_KIND, _facility, parse_syslog
from .timestamps import parse_iso8601
from .windows import XML_KIND, parse_event_xml

DEFAULT_MAX_RECORD_BYTES = 1024 * 1024
_XML_STARTS = ("<Event", "<?xml", "<!", "</Event")
_PREFIXED_XML_START = re.compile(r"</?\w+:Event")  # <e:Event xmlns:e="...">
_EVENT_START = re.compile(r"<(\w+:)?Event[\s>]")
_CACHE_LIMIT = 100_000  # timestamps and addresses remembered per text (a log repeats both)


class Sink(Protocol):
    """Where the reader delivers what it read; the engine, the explainer and tests implement it."""

    def event(self, event: Event) -> None:
        """A record read into an event."""

    def ignored(self, kind: str, why: str) -> None:
        """A recognised record the rule has no use for (another EventID or sign-in category)."""

    def malformed(self, kind: str, reason: str, line_number: int) -> None:
        """A record of a recognised shape that cannot be read."""

    def unrecognised(self, text: str, line_number: int) -> None:
        """A line of no shape we know."""

    def oversized(self, size: int, line_number: int) -> None:
        """A line or record past the size limit, skipped."""

    def invalid_text(self, line_number: int) -> None:
        """A line with invalid UTF-8, read with U+FFFD in place of the bad bytes."""


class _OpenXml:
    """An XML construct that began and has not ended yet: an event, a comment or a DTD."""

    __slots__ = ("what", "closing", "parts", "size")

    def __init__(self, what: str, closing: str) -> None:
        self.what = what  # "event", "comment" or "DTD"
        self.closing = closing  # the text that ends it
        self.parts: Optional[List[str]] = []  # an event's text so far; None once it is over the limit
        self.size = 0


class LineReader:
    """Reads lines of any supported shape (``--input auto``) or JSON only (``--input json``).

    ``interest`` (the profile's) lets syslog lines that cannot count go unparsed; None reads
    every line in full (explain mode). ``line_number`` is the number of the line being read
    (1-based), for sinks that report.
    """

    def __init__(self, sink: Sink, clock: Callable[[str], Optional[float]], default_facility: str = "auth",
                 json_only: bool = False, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
                 interest: Optional[Interest] = None, time_key: str = "time", tag_key: str = "tag") -> None:
        self.sink = sink
        self.recognised: Dict[str, int] = {}  # records read per kind, events and lines of no interest alike
        self._sshd_scan = interest is not None and interest.sshd
        self._term = interest.term.lower() if interest is not None else ""
        self._term_regex = term_pattern(self._term) if self._term else None
        self._renames = [(key, key.encode("utf-8"), name)  # msgpack may carry the key as bin
                         for key, name in ((time_key, INJECTED_TIME_KEY), (tag_key, "tag")) if key not in (name, "time")]
        self._clock = clock
        self._facility = default_facility
        self._json_only = json_only
        self._limit = max_record_bytes
        self._records = RecordReader(default_facility, self._wrapped_line)
        self._admits = interest.admits if interest is not None and (interest.sshd or interest.term) else None
        self._pending = b""  # bytes after the last newline
        self._skipping = 0  # > 0 while skipping the rest of an oversized line: bytes skipped so far
        self._open: Optional[_OpenXml] = None  # an XML construct still open at the end of the last text
        self._reject_next_xml = False  # a DTD was declared: the document's event is refused
        self._seconds: Dict[str, Optional[float]] = {}  # RFC 3339 timestamp text -> epoch seconds
        self._clock_seconds: Dict[str, float] = getattr(clock, "seconds", {})  # the RFC 3164 clock's own
        self._addresses: Dict[str, str] = {}  # address text -> canonical form ('' when none)
        self._text = "\n"  # the text being read, and the number of the line before it
        self._base = 0
        self._at = -1  # the newline before the line being read in that text; -1: between texts
        self._counted = (0, 0)  # (newline position, its line number): where _line_at counted to

    @property
    def line_number(self) -> int:
        """The number of the line being read (1-based), or of the last one read between texts.
        Worked out when asked for (a notice, explain mode): counting newlines costs more than
        the reading of most lines."""
        return self._base if self._at < 0 else self._line_at(self._at)

    @line_number.setter
    def line_number(self, value: int) -> None:
        self._base, self._at = value, -1

    # -- bytes --------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Read a chunk of the stream; complete lines are handled now, the rest is kept."""
        if self._skipping:
            newline = data.find(b"\n")
            if newline < 0:
                self._skipping += len(data)
                return
            size, self._skipping = self._skipping + newline, 0
            self._end_oversized(size)
            data = data[newline + 1:]
        buffer = self._pending + data if self._pending else data
        last = buffer.rfind(b"\n")
        if last < 0:
            self._keep_pending(buffer)
            return
        self._keep_pending(buffer[last + 1:])
        self._read_lines(buffer, last)

    def _read_lines(self, buffer: bytes, end: int) -> None:
        """``buffer[:end]``, complete lines, read in pieces of at most the size limit, each cut at
        a newline: a line over the limit is then one that no piece can hold, reported here."""
        start, limit = 0, self._limit
        while start <= end:
            if end - start <= limit:
                self._read_block(buffer[start:end])
                return
            cut = buffer.rfind(b"\n", start, start + limit + 1)
            if cut < 0:  # the line at start is longer than the limit
                cut = buffer.find(b"\n", start, end + 1)
                self._end_oversized(cut - start)
            else:
                self._read_block(buffer[start:cut])
            start = cut + 1

    def finish(self) -> None:
        """End of stream: a last line without newline is read; an open record is truncated."""
        if self._skipping:
            size, self._skipping = self._skipping, 0
            self._end_oversized(size)
        if self._pending:
            pending, self._pending = self._pending, b""
            self._read_lines(pending, len(pending))
        if self._open is not None:
            what, self._open = self._open.what, None
            self.sink.malformed(XML_KIND, "stream ended inside an <Event> (no </Event>)" if what == "event"
                                else f"stream ended inside an XML {what}", self.line_number)
        self._reject_next_xml = False

    def _keep_pending(self, tail: bytes) -> None:
        if len(tail) > self._limit:
            self._pending = b""
            self._skipping = len(tail)
        else:
            self._pending = tail

    def _end_oversized(self, size: int) -> None:
        self.line_number += 1  # not the end of skipping: the lines of a block before a long tail end here too
        self.sink.oversized(size, self.line_number)

    def _read_block(self, block: bytes) -> None:
        """Complete lines, none over the size limit, decoded at once; line by line only where
        the UTF-8 is bad."""
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError:
            lines = []
            for number, raw in enumerate(block.split(b"\n"), self.line_number + 1):
                try:
                    lines.append(raw.decode("utf-8"))
                except UnicodeDecodeError:
                    lines.append(raw.decode("utf-8", "replace"))
                    self.sink.invalid_text(number)
            text = "\n".join(lines)
        self._read_text("\n" + text)

    # -- text ---------------------------------------------------------------------------

    def read_line(self, line: str) -> None:
        """Recognise and read one line (without its newline)."""
        self._read_text("\n" + line)

    def _read_text(self, text: str) -> None:
        """Read complete lines, each after a newline (``text`` starts with one). Positions
        below are those of the newline before a line. Lines are counted as they are read (a
        run's count, one per other line), not by counting every newline of the text again."""
        self._text, self._base = text, self.line_number
        self._counted = (0, self._base + 1)
        position = self._at = 0
        lines = 0
        while position < len(text):
            if self._open is not None:
                after = self._continue_open(text, position)
            else:
                shape = None if self._json_only else run_shape_at(text, position)
                if shape is not None:
                    self._reject_next_xml = False  # another record: a document with a DTD has ended
                    found = RUN_END[shape.name].search(text, position + 1)
                    after = found.start() if found is not None else len(text)
                    lines += self._read_run(text, position, after, shape)
                    position = after
                    continue
                self._at = position
                after = self._read_other(text, position)
                text = self._text  # without the NULs a crash left at the start of a line
            # one line read, or (XML) several: only then are they counted; or none (an XML
            # construct left open by the last text, ended by a new record on this text's first line)
            if after > position:
                lines += 1 if text.find("\n", position + 1, after) < 0 else text.count("\n", position, after)
            position = after
        self._base, self._at = self._base + lines, -1

    def _line_at(self, newline: int) -> int:
        """The number of the line after the newline at ``newline`` of the text being read
        (counted on from the last position asked for: positions mostly grow)."""
        position, line = self._counted
        if newline >= position:
            line += self._text.count("\n", position + 1, newline + 1)
        else:
            line = self._base + self._text.count("\n", 0, newline + 1)
        self._counted = (newline, line)
        return line

    def _read_run(self, text: str, start: int, stop: int, shape: RunShape) -> int:
        """Lines ``start``..``stop`` (newline positions), all of one syslog shape: candidates
        are read, the others counted as read. Returns how many lines there were."""
        lines = text.count("\n", start, stop)
        if self._sshd_scan:
            read = self._read_sshd_candidates(text, start, stop, shape)
        elif self._term:
            read = self._read_term_candidates(text, start, stop)
        else:
            read = lines
            position = start
            while position < stop:
                line_end = text.find("\n", position + 1, stop)
                line_end = stop if line_end < 0 else line_end
                self._read_syslog_line(text[position + 1:line_end], position)
                position = line_end
        if lines > read:
            self.recognised[shape.kind] = self.recognised.get(shape.kind, 0) + lines - read
        return lines

    def _read_sshd_candidates(self, text: str, start: int, stop: int, shape: RunShape) -> int:
        """Interest(sshd=True): the scan's matches, the fast forms read from the match itself
        (the hot loop of an auth log: locals only)."""
        scan = SSHD_SCANS[shape.name]
        fast, message_group = scan.fast, scan.message_group
        seconds = self._seconds if shape.kind != RFC3164_KIND else self._clock_seconds
        addresses, recognised, sink, build = self._addresses, self.recognised, self.sink, tuple.__new__
        kind, priority, candidates = shape.kind, shape.has_priority, 0
        stamp_group, host_group = (1, 2) if priority else (0, 1)
        for match in scan.pattern.finditer(text, start, stop):
            candidates += 1
            form = fast.get(match.lastindex)
            groups = match.groups()
            host = groups[host_group] if form is not None else None
            if form is None or (host is not None and host[-1] == ":"):
                line_end = text.find("\n", match.end())
                self._read_syslog_line(text[match.start() + 1:line_end if line_end >= 0 else len(text)], match.start())
                continue
            stamp = groups[stamp_group]
            when = seconds.get(stamp)
            if when is None:
                when = self._timestamp(stamp, kind)
            self._at = match.start()
            try:
                if when is None:
                    raise MalformedRecord("syslog", f"timestamp {stamp!r} is not a date")
                facility = _facility(groups[0]) if priority else self._facility
            except MalformedRecord as problem:
                sink.malformed(problem.kind, problem.reason, self.line_number)
                continue
            message_end = match.end()
            if text[message_end - 1] == "\r":  # a CRLF line: the reader drops one "\r"
                message_end -= 1
            message = text[match.start(message_group):message_end]
            reading = None
            if len(message) <= MAX_MESSAGE_LENGTH:
                slot = groups[form.addr_group - 1]
                address = addresses.get(slot)
                if address is None:
                    address = self._canonical(slot)
                template = form.template
                reading = build(SshdMessage, (template.name, template.counts and address != "", address,
                                              (groups[form.user_group - 1] or "") if form.user_group else "", 1, False))
            program = groups[stamp_group + 2]
            event = syslog_event(when, kind, host or "", program, groups[stamp_group + 3] or "", facility, message,
                                 program, reading)
            recognised[kind] = recognised.get(kind, 0) + 1
            sink.event(event)
        return candidates

    def _timestamp(self, stamp: str, kind: str) -> Optional[float]:
        """Epoch seconds of a syslog timestamp; RFC 3339 ones are remembered here per text, RFC
        3164 ones by the clock (which renews them hourly: their year depends on the time)."""
        if kind == RFC3164_KIND:
            return self._clock(stamp if stamp[5] != " " else f"{stamp[:4]} {stamp[4:]}")
        when = parse_iso8601(stamp)
        if len(self._seconds) >= _CACHE_LIMIT:
            self._seconds.clear()
        self._seconds[stamp] = when
        return when

    def _canonical(self, text: str) -> str:
        address = canonical_ip(text) or ""
        if len(self._addresses) >= _CACHE_LIMIT:
            self._addresses.clear()
        self._addresses[text] = address
        return address

    def _read_term_candidates(self, text: str, start: int, stop: int) -> int:
        """Interest(term=...): each line holding the term in any case is parsed; lower-cased
        copies serve ASCII text (where lower() keeps every position)."""
        term, candidates = self._term, 0
        if text.isascii():
            lowered = text[start:stop].lower()
            found = lowered.find(term)
            while found >= 0:
                line_start = text.rfind("\n", start, start + found + 1)
                line_end = text.find("\n", start + found, stop)
                line_end = stop if line_end < 0 else line_end
                candidates += 1
                self._read_syslog_line(text[line_start + 1:line_end], line_start)
                found = lowered.find(term, line_end - start)
            return candidates
        position = start
        while True:
            match = self._term_regex.search(text, position, stop)
            if match is None:
                return candidates
            line_start = text.rfind("\n", start, match.start() + 1)
            line_end = text.find("\n", match.end(), stop)
            line_end = stop if line_end < 0 else line_end
            candidates += 1
            self._read_syslog_line(text[line_start + 1:line_end], line_start)
            position = line_end

    def _read_syslog_line(self, line: str, newline: int) -> None:
        """One line tried as syslog, whole."""
        if line[-1:] == "\r":
            line = line[:-1]
        self._at = newline
        try:
            event = parse_syslog(line, self._facility, self._clock)
        except MalformedRecord as problem:
            self.sink.malformed(problem.kind, problem.reason, self.line_number)
            return
        if event is None:
            self.sink.unrecognised(line, self.line_number)
        else:
            self._count(event.kind)
            self.sink.event(event)

    def _read_other(self, text: str, newline: int) -> int:
        """The line after ``newline``, not of a syslog run shape: JSON, XML, blank, or anything
        else tried as syslog. Returns the position of the newline where reading goes on."""
        start = newline + 1
        line_end = text.find("\n", start)
        line_end = len(text) if line_end < 0 else line_end
        first = text[start:start + 1]
        if first == "\x00":
            line = text[start:line_end].lstrip("\x00")
            if line:  # after a crash NULs run into the next line: read it without them
                self._text = text = text[:start] + line + text[line_end:]
                line_end = start + len(line)
                first = line[:1]
        if first == "{":
            self._reject_next_xml = False  # another record: a document with a DTD has ended
            line = text[start:line_end]
            self._read_json(line[:-1] if line[-1:] == "\r" else line, newline)
            return line_end
        if (first.isspace() or not first) and not text[start:line_end].strip():  # only a blank-looking line is copied
            return line_end
        if self._json_only:
            self.sink.malformed("json", "not a JSON object", self._line_at(newline))
            return line_end
        at = start
        if first in (" ", "\t"):
            while text[at] in (" ", "\t"):
                at += 1
        if text.startswith(_XML_STARTS, at) or (text[at] == "<" and _PREFIXED_XML_START.match(text, at)):
            return self._read_xml(text, at)
        self._reject_next_xml = False
        self._read_syslog_line(text[start:line_end], newline)
        return line_end

    def _count(self, kind: str) -> None:
        self.recognised[kind] = self.recognised.get(kind, 0) + 1

    # -- Windows XML --------------------------------------------------------------------

    def _read_xml(self, text: str, at: int) -> int:
        """XML from ``at`` (a ``<``) on: a declaration, a comment, a DTD (refused, and the
        event of its document with it), an event; text outside events is skipped."""
        line_end = text.find("\n", at)
        line_end = len(text) if line_end < 0 else line_end
        if text.startswith("<?xml", at):
            declaration_end = text.find("?>", at, line_end)
            if declaration_end < 0:
                return line_end
            at = declaration_end + 2
            while at < line_end and text[at] in (" ", "\t", "\r"):
                at += 1
            if at == line_end:
                return line_end
        if text.startswith("<!--", at):
            self._open = _OpenXml("comment", "-->")
            return self._continue_open(text, at + 4)
        if text.startswith("<!", at):  # <!DOCTYPE ...> or <!ENTITY ...>: never read, never expanded
            self._reject_next_xml = True
            self.sink.malformed(XML_KIND, "document declares a DTD or entities; refused", self._line_at(text.rfind("\n", 0, at)))
            self._open = _OpenXml("DTD", "]>" if "[" in text[at:line_end] else ">")
            return self._continue_open(text, at + 2)
        end = line_end - 1 if text[line_end - 1] == "\r" else line_end
        if text.startswith("<Event", at) and text[at + 6] in " >" and text.find("</Event>", at, end) == end - 8:
            self._read_xml_event(text[at:end], text.rfind("\n", 0, at))  # one event on its line, as wevtutil prints
            return line_end
        start = _EVENT_START.search(text, at, line_end + 1)
        if start is None:
            return line_end
        self._open = _OpenXml("event", f"</{start.group(1) or ''}Event>")
        return self._continue_open(text, start.start())

    def _continue_open(self, text: str, position: int) -> int:
        """Go on with the open XML construct from ``position``: it ends at its closing text,
        or, with a notice, before a line that begins a new record. An event whose text passes
        the size limit is reported once (at the line where it does) and skipped to its end.
        Returns where reading goes on: the newline before the next line to read, or the end of
        the text while the construct is still open."""
        construct = self._open
        close, new_record = _closing_or_new_record(text, position, construct.closing)
        end = new_record.start() if new_record is not None else close + len(construct.closing) if close >= 0 else len(text)
        if construct.parts is not None and construct.what == "event":
            if construct.size + end - position > self._limit:
                crossing = text.find("\n", position + self._limit - construct.size)
                crossing = end if crossing < 0 or crossing > end else crossing
                self.sink.oversized(construct.size + crossing - position, self._line_at(text.rfind("\n", 0, crossing)))
                construct.parts = None  # skipped to its end from now on
            else:
                construct.parts.append(text[position:end])
                construct.size += end - position
        if new_record is not None:
            self._open = None
            if construct.parts is not None:
                self.sink.malformed(XML_KIND, f"an XML {construct.what} without its end, followed by a new record",
                                    self._line_at(new_record.start()))
            return new_record.start()
        if close < 0:
            return len(text)
        self._open = None
        if construct.parts is not None and construct.what == "event":
            self._read_xml_event("".join(construct.parts), text.rfind("\n", 0, close))
        line_end = text.find("\n", end)
        line_end = len(text) if line_end < 0 else line_end
        rest = end
        while rest < line_end and text[rest] in (" ", "\t", "\r"):
            rest += 1
        if rest < line_end and text[rest] == "<":
            return self._read_xml(text, rest)  # ]><Event ...>, </Event><Event ...>
        return line_end

    def _read_xml_event(self, text: str, newline: int) -> None:
        self._at = newline
        if self._reject_next_xml:
            self._reject_next_xml = False
            self.sink.malformed(XML_KIND, "event of a document that declares a DTD; refused", self._line_at(newline))
            return
        try:
            event = parse_event_xml(text)
        except MalformedRecord as problem:
            self.sink.malformed(problem.kind, problem.reason, self._line_at(newline))
            return
        if event is None:
            self.sink.ignored(XML_KIND, "not a 4625")
        else:
            self._count(XML_KIND)
            self.sink.event(event)

    # -- JSON and decoded records -------------------------------------------------------

    def _read_json(self, text: str, newline: int) -> None:
        self._at = newline
        self._read_json_record(text)

    def _read_json_record(self, text: Any) -> None:
        """One JSON object (text or bytes), numbered self.line_number."""
        try:
            record = self._decode_renamed(text) if self._renames else decode_json(JSON.record, text)
        except (msgspec.DecodeError, RecursionError) as error:  # ValidationError is a DecodeError
            self.sink.malformed("json", short_reason(error), self.line_number)
            return
        self.read_record(record, JSON)

    def read_object(self, item: Any) -> None:
        """A record already decoded into plain values (an item of a Graph page), read like a
        JSON line, numbered self.line_number."""
        try:
            text = msgspec.json.encode(item)
        except (TypeError, ValueError, OverflowError) as error:
            self.sink.malformed("json", short_reason(error), self.line_number)
            return
        self._read_json_record(text)

    def _decode_renamed(self, text: Any) -> Record:
        """A JSON line whose injected time / tag keys have other names (``--time-key``)."""
        item = decode_json(msgspec.json.decode, text)
        if isinstance(item, dict):
            self.rename_injected(item)
        return JSON.record(msgspec.json.encode(item))

    def rename_injected(self, item: dict) -> None:
        """Move the keys Fluentd's ``<inject>`` added (``--time-key``, ``--tag-key``) to the
        names the record shapes read, whether the key came as text or as msgpack bin."""
        for key, raw_key, name in self._renames:
            for spelling in (key, raw_key):
                if spelling in item:
                    item[name] = item.pop(spelling)
                    break

    def read_record(self, record: Record, codec: Codec) -> None:
        """Read one decoded record (from a JSON line or a msgpack map, as ``codec`` says). A
        syslog message the profile can never count is counted as recognised and goes no
        further, as in a block of raw lines."""
        kind, events, problems = self._records.read(record, codec)
        sink, admits, recognised = self.sink, self._admits, self.recognised
        for event in events:
            summaries = event.summary
            if summaries is not None:  # an edge's record: one event, each summary recognised
                recognised[event.kind] = recognised.get(event.kind, 0) + len(summaries.items)
                sink.event(event)
                continue
            recognised[event.kind] = recognised.get(event.kind, 0) + 1
            if admits is None or event.table != SYSLOG or admits(event.program, event.message):
                sink.event(event)
        if problems or not kind:  # say which Fluentd tag the record came under, when it has one
            tag = f" (tag {record.tag})" if isinstance(record.tag, str) else ""
            for problem in problems:
                sink.malformed(problem.kind, problem.reason + tag, self.line_number)
            if not kind:
                sink.unrecognised(_describe(record) + tag, self.line_number)
        elif not events:
            sink.ignored(kind, "nothing the rule reads")

    def _wrapped_line(self, text: str, events: List[Event], problems: List[MalformedRecord]) -> bool:
        """A raw line carried in a collector's ``log`` / ``message`` field, read like a line:
        its events and problems are appended (a wrapped Event Hub body with one broken record
        still yields the others). False when the text is of no known shape."""
        text = text.strip()
        try:
            if text.startswith(_XML_STARTS) or _PREFIXED_XML_START.match(text):
                start = _EVENT_START.search(text)
                if start is None or f"</{start.group(1) or ''}Event>" not in text:
                    raise MalformedRecord(XML_KIND, "wrapped XML event without its </Event>")
                event = parse_event_xml(text[start.start():])
                if event is not None:
                    events.append(event)
                return True
            if text.startswith("{"):
                try:
                    kind, found, found_problems = self._records.read(decode_json(JSON.record, text), JSON)
                except (msgspec.DecodeError, RecursionError) as error:
                    raise MalformedRecord("json", short_reason(error)) from None
                events.extend(found)
                problems.extend(found_problems)
                return bool(kind)
            event = parse_syslog(text, self._facility, self._clock)
        except MalformedRecord as problem:
            problems.append(problem.detached())
            return True
        if event is None:
            return False
        events.append(event)
        return True


_FIRST_HORIZON = 4096  # characters searched first for the end of an open XML construct


def _closing_or_new_record(text: str, position: int, closing: str) -> "Tuple[int, Optional[re.Match]]":
    """Where the open construct ends in ``text`` from ``position``: the offset of ``closing``
    (-1 if not in the text) or, when a line that begins a new record comes first, that line's
    match. Searched in growing stretches, so that a construct never closed costs the distance
    to the next record, not to the end of the block (thousands of broken events in one block)."""
    size = len(text)
    horizon = min(position + _FIRST_HORIZON, size)
    while True:
        close = text.find(closing, position, horizon)
        new_record = NEW_RECORD.search(text, position, close if close >= 0 else horizon)
        if close >= 0 or new_record is not None or horizon == size:
            return (-1 if new_record is not None else close), new_record
        horizon = min(position + 2 * (horizon - position), size)


def _describe(record: Record) -> str:
    """A record we do not recognise, as the names of the keys it has."""
    keys = [field for field in record.__struct_fields__ if getattr(record, field) not in (None, NO_RAW)]
    return "{" + ", ".join(keys) + ", ...}" if keys else "{...}"


class _Corrupt(Exception):
    """The bytes at a record's start are no record: the stream is resynchronised after them."""


class MsgpackReader:
    """Reads the unframed stream of msgpack maps Fluentd's exec_filter writes (``--input msgpack``).

    Every map is handled as soon as its last byte arrives: the stream is framed with msgpack's
    ``Unpacker.skip()`` (no objects built) and each record decoded by msgspec into the Record
    struct. Keys injected by ``<inject>`` are renamed as the LineReader it feeds says. A value
    that is not a map, a map no shape fits, or bytes that are not msgpack are counted and
    reported. A record past the size limit is skipped to its end (its headers walked, its
    strings never held) and reported once.

    Bytes that are no record (a bad byte, nesting past msgpack's depth limit, a string
    declaring more than 128 times the size limit, a map whose keys are not text) are reported
    and the stream is resynchronised at the next map header after them; while it is, records
    are framed in small windows, so that garbage costs time in proportion to its length.
    """

    def __init__(self, lines: LineReader) -> None:
        self._lines = lines
        self._limit = lines._limit
        self._skipping: Optional[_ObjectSkipper] = None  # walking past a record over the limit
        self._buffer = b""  # bytes of records not read yet (an unfinished one at the end)
        self._window = _WINDOW_MAX  # bytes framed at a time; small while resynchronising
        self._walk: Optional[_ObjectSkipper] = None  # the headers walked of the unfinished record

    @property
    def line_number(self) -> int:
        """The number of the record being read (records play the part of lines)."""
        return self._lines.line_number

    def feed(self, data: bytes) -> None:
        """Read a chunk of the stream; every complete map in it is handled now."""
        if self._skipping is not None:
            position = self._skipping.skip(data, 0)
            if position < 0:
                return
            self._end_oversized()
            data = data[position:]
        buffer = self._buffer + data if self._buffer else data
        walk, self._walk = self._walk, None  # of the unfinished record at the buffer's start
        self._buffer = buffer[self._read_records(buffer, walk):]

    def finish(self) -> None:
        """End of stream: bytes of an unfinished map are reported as a truncated record, and not
        searched for maps (a record cut short holds its own nested maps, no records), unless
        they cannot be a record (_unfinished)."""
        if self._skipping is not None:
            self._end_oversized()
        while self._buffer:
            buffer, self._buffer = self._buffer, b""
            walk = _ObjectSkipper(self._limit)
            walk.skip(buffer, 0)
            if not walk.corrupt:
                self._note_problem(f"stream ended inside a record ({len(buffer)} bytes)")
                break
            resume = self._resync_after(buffer, max(walk.corrupt_at, 1) - 1,
                                        "a map whose keys are not text; resynchronising")
            if resume >= 0:
                self._buffer = buffer[resume + self._read_records(buffer[resume:]):]

    def _read_records(self, buffer: bytes, walk: "Optional[_ObjectSkipper]" = None) -> int:
        """Frame and read the whole records of ``buffer``; return where the unread rest starts.
        ``walk``: the headers walked so far of the record at its start, when it was unfinished."""
        start, size = 0, len(buffer)
        view = memoryview(buffer)
        while start < size:
            window = self._window
            unpacker = _unpacker(self._limit)
            unpacker.feed(view[start:start + window])
            framed = 0  # bytes of the window read as whole records
            try:
                while True:
                    try:
                        unpacker.skip()
                    except msgpack.OutOfData:
                        break
                    end = unpacker.tell()
                    self._read_record(view[start + framed:start + end])
                    framed = end
            except (_Corrupt, msgpack.StackError, ValueError, msgpack.UnpackException) as error:
                start = self._resynchronise(buffer, start + framed, start + window, error, unpacker.tell() - framed)
                if start < 0:
                    return size
                continue
            if framed:
                start += framed
                self._window = min(window * 2, _WINDOW_MAX)
            elif start + window < size:
                self._window = window * 4  # a record longer than the window
            else:
                return self._unfinished(buffer, start, walk if start == 0 else None)
        return start

    def _unfinished(self, buffer: bytes, start: int, walk: "Optional[_ObjectSkipper]") -> int:
        """The record at ``start`` has not ended yet. Its headers are walked and its keys read,
        since skip() waits for whatever they declare: bytes that cannot be a record (an array of
        four billion items, a map cut short whose next key is the next record) are
        resynchronised after at once, which gives back the records they would hold back; a
        record over the size limit is skipped; any other waits for its end. The walk goes on
        from where it stopped when more of the record arrives (a 1 MB record of a million items
        read 64 KB at a time is walked once, not sixteen times)."""
        walk = walk or _ObjectSkipper(self._limit)
        end = walk.skip(buffer, start + walk.size + len(walk.pending_header))
        if walk.corrupt:
            resume = self._resync_after(buffer, max(walk.corrupt_at, start + 1) - 1,
                                        "bytes that cannot start a record; resynchronising")
            return len(buffer) if resume < 0 else resume + self._read_records(buffer[resume:])
        if len(buffer) - start > self._limit:
            self._skipping = walk
            if end < 0:
                return len(buffer)
            self._end_oversized()
            return end + self._read_records(buffer[end:])
        if end < 0:
            self._walk = walk
        return start

    def _resynchronise(self, buffer: bytes, start: int, fed: int, error: Exception, consumed: int) -> int:
        """Bytes at ``start`` that are no record (``error`` says why): a record over the size
        limit is skipped; anything else is reported and reading goes on at the next map header
        from where they break (the records a broken structure swallowed as values before that
        point go with it: trying every map header inside it again would cost time quadratic in
        its length). ``fed``: where the bytes the unpacker failed in end. Returns that
        position, or -1 when the rest of the buffer is gone."""
        if isinstance(error, msgpack.StackError):  # nested past the depth limit: all the unpacker walked is garbage
            return self._resync_after(buffer, start + max(consumed, 1) - 1, _undecodable(error))
        stopped_at = consumed if isinstance(error, msgpack.FormatError) else -1  # the unpacker says where
        failed_at, failure = _strict_failure(buffer[start:fed], self._limit, stopped_at)
        if failure is not None and not _is_key_error(failure):  # the byte it breaks at, found in C
            return self._resync_after(buffer, start + max(failed_at - 1, 1) - 1, _undecodable(error))
        walk = _ObjectSkipper(self._limit)  # a key that is not text: where it starts, or an honest giant
        end = walk.skip(buffer, start)
        if walk.corrupt:
            resume = max(walk.corrupt_at, start + 1)
        elif not isinstance(error, _Corrupt) and (end < 0 or end - start > self._limit):
            self._skipping = walk
            if end < 0:  # an honest record over the limit, still arriving
                return -1
            self._end_oversized()
            return end
        else:
            resume = start + 1
        return self._resync_after(buffer, resume - 1, _undecodable(error))

    def _resync_after(self, buffer: bytes, position: int, reason: str) -> int:
        self._note_problem(reason)
        self._window = _WINDOW_MIN
        found = _MAP_HEADER.search(buffer, position + 1)
        if found is None:
            return -1
        return found.start()

    def _note_problem(self, reason: str) -> None:
        self._lines.line_number += 1
        self._lines.sink.malformed("msgpack", reason, self._lines.line_number)

    def _end_oversized(self) -> None:
        self._lines.line_number += 1
        self._lines.sink.oversized(self._skipping.size, self._lines.line_number)
        self._skipping = None

    def _read_record(self, raw: memoryview) -> None:
        """One framed record: decoded straight into a Record; a map with bytes keys (Fluentd
        in_tail without ``encoding UTF-8``), invalid UTF-8 or renamed injected keys goes
        through a dict.
        Raises _Corrupt for a map whose keys are not text: a map cut short that swallowed the
        records after it, which resynchronising gives back."""
        lines = self._lines
        lines.line_number += 1
        if len(raw) > self._limit:
            lines.sink.oversized(len(raw), lines.line_number)
            return
        try:
            record = None if lines._renames else MSGPACK.record(raw)
        except (msgspec.DecodeError, RecursionError):  # a ValidationError too; invalid UTF-8
            record = None
        if record is None:
            record = self._record_of_map(raw)
            if record is None:
                return
        lines.read_record(record, MSGPACK)

    def _record_of_map(self, raw: memoryview) -> Optional[Record]:
        """The slow way, for what msgspec refused: unpack, fix the keys, convert."""
        lines = self._lines
        try:
            item = msgpack.unpackb(raw, raw=False, strict_map_key=True, ext_hook=event_time_ext,
                                   unicode_errors="replace")
        except ValueError:  # a key that is no text: not a record Fluentd wrote
            lines.line_number -= 1
            raise _Corrupt("a map whose keys are not text") from None
        except (msgpack.UnpackException, TypeError, RecursionError) as error:
            lines.sink.malformed("msgpack", f"undecodable record ({short_reason(error)})", lines.line_number)
            return None
        if not isinstance(item, dict):
            lines.sink.malformed("msgpack", f"a {type(item).__name__}, not a map", lines.line_number)
            return None
        lines.rename_injected(item)
        try:
            return MSGPACK.record(msgspec.msgpack.encode(_text_keys(item)))
        except (msgspec.DecodeError, RecursionError, TypeError, OverflowError) as error:
            lines.sink.malformed("msgpack", short_reason(error), lines.line_number)
            return None


_WINDOW_MAX = 256 * 1024  # bytes framed at a time
_WINDOW_MIN = 1024  # ... right after undecodable bytes
_MAP_HEADER = re.compile(b"[\\x80-\\x8f\\xde\\xdf]")  # fixmap, map 16, map 32


def _undecodable(error: Exception) -> str:
    return f"undecodable bytes ({short_reason(error)}); resynchronising"


def _reading_error(data: bytes, limit: int, strict: bool = False) -> Optional[Exception]:
    """Why reading the object at the start of ``data`` fails in C, or None when it does not
    (whole, or waiting for more bytes). ``strict``: keys must be text; lengths and counts are held
    to what _ObjectSkipper lets pass either way."""
    unpacker = msgpack.Unpacker(raw=True, strict_map_key=True, max_buffer_size=0,
                                max_str_len=LONGEST_SKIPPED * limit, max_bin_len=LONGEST_SKIPPED * limit,
                                max_ext_len=LONGEST_SKIPPED * limit, max_array_len=2 * limit, max_map_len=limit)
    unpacker.feed(data)
    try:
        unpacker.unpack() if strict else unpacker.skip()
    except msgpack.OutOfData:
        return None
    except (ValueError, TypeError, msgpack.UnpackException) as error:  # FormatError, StackError, a key, a length
        return error.with_traceback(None)  # kept by the caller: its frames would make a cycle
    return None


def _strict_failure(data: bytes, limit: int, stopped_at: int = -1) -> Tuple[int, Optional[Exception]]:
    """Where a strict reading of the object at the start of ``data`` fails: the offset just
    past the byte it fails at, and the error; (-1, None) when it does not fail. ``stopped_at``:
    the byte the framing unpacker stopped at, when it says (a byte no msgpack has); otherwise the
    byte is found by bisecting the prefixes with skip() in C (a walk in Python costs ten times
    more per byte). One strict reading of the bytes before it then looks for a key that is not
    text, which fails where the key ends."""
    if stopped_at >= 0:
        low = stopped_at + 1
    else:
        high = len(data)
        if high < 1:
            return -1, None
        if _reading_error(data, limit) is None:  # whole or waiting for more: only a key can be wrong
            key_error = _reading_error(data, limit, strict=True)
            return (high, key_error) if key_error is not None else (-1, None)
        low = 1
        while low < high:
            middle = (low + high) // 2
            if _reading_error(data[:middle], limit) is None:
                low = middle + 1
            else:
                high = middle
    key_error = _reading_error(data[:low - 1], limit, strict=True)
    return (low - 1, key_error) if key_error is not None else (low, _reading_error(data[:low], limit))


def _is_key_error(error: Exception) -> bool:
    """A map key that is not text: the reading fails where the key ends, not where it starts."""
    return type(error) is ValueError and "map key" in str(error)


def _unpacker(limit: int) -> "msgpack.Unpacker":
    """A framing unpacker: strings, binaries and exts over the size limit, and counts beyond
    what the limit could hold, raise at their header instead of being waited for."""
    return msgpack.Unpacker(raw=False, max_buffer_size=0, max_str_len=limit, max_bin_len=limit,
                            max_ext_len=limit, max_array_len=limit, max_map_len=limit)


# msgpack headers by first byte, for walking past a record too big to decode (the spec's formats)
_FIXED_SIZE = {0xc0: 0, 0xc2: 0, 0xc3: 0, 0xca: 4, 0xcb: 8, 0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8, 0xd0: 1,
               0xd1: 2, 0xd2: 4, 0xd3: 8, 0xd4: 2, 0xd5: 3, 0xd6: 5, 0xd7: 9, 0xd8: 17}
_LENGTH_BYTES = {0xc4: (1, 0), 0xc5: (2, 0), 0xc6: (4, 0), 0xc7: (1, 1), 0xc8: (2, 1), 0xc9: (4, 1),
                 0xd9: (1, 0), 0xda: (2, 0), 0xdb: (4, 0)}  # str, bin, ext: (length bytes, type bytes)
_COUNT_BYTES = {0xdc: (2, 1), 0xdd: (4, 1), 0xde: (2, 2), 0xdf: (4, 2)}  # array, map: (count bytes, items each)
_EXT_BYTES = frozenset((0xc7, 0xc8, 0xc9))
LONGEST_SKIPPED = 128  # a string longer than this many size limits is corruption, not a record to skip


class _ObjectSkipper:
    """Walks past one msgpack object, chunk by chunk, reading only its headers: a string of any
    length costs nothing. A header no record can have ends the walk as ``corrupt`` (skipping it
    would swallow what follows): the unused byte 0xc1, a count past twice the size limit, a
    length past LONGEST_SKIPPED size limits, a key that is not text (Fluentd writes str keys,
    bin ones without ``encoding``; a map in a key's place is a map cut short that swallowed the
    next record)."""

    def __init__(self, limit: int) -> None:
        self.size = 0  # bytes walked
        self.corrupt = False
        self.corrupt_at = -1  # with corrupt: where the header no record can have starts
        self._open: List[List[int]] = [[1, 0]]  # per open container: [items still to pass, 1 for a map]
        self._payload = 0  # bytes of the current str / bin / ext / number still to pass
        self.pending_header = b""  # a header cut at the end of the last chunk
        self._max_items = 2 * limit
        self._max_length = LONGEST_SKIPPED * limit

    def skip(self, data: bytes, position: int) -> int:
        """Walk ``data`` from ``position``: the offset just past the object, or -1 (not ended)."""
        shift = 0  # joined to a cut header: offsets in data are offsets here plus shift
        if self.pending_header:
            shift = position - len(self.pending_header)
            data, position, self.pending_header = self.pending_header + data[position:], 0, b""
        start = header = position
        end = len(data)
        opened = self._open
        while not self.corrupt:
            if self._payload:
                step = min(self._payload, end - position)
                position += step
                self._payload -= step
                if self._payload:
                    break
            while opened and not opened[-1][0]:
                opened.pop()
            if not opened or position >= end:
                break
            header = position
            byte = data[position]
            top = opened[-1]
            key = top[1] and top[0] % 2 == 0  # a map's items alternate key, value; the count ends on a value
            top[0] -= 1
            if byte <= 0x7f or byte >= 0xe0:  # fixint
                position += 1
                self.corrupt = key
            elif byte <= 0x9f:  # fixmap, fixarray
                position += 1
                opened.append([(byte & 0x0f) * (2 if byte <= 0x8f else 1), int(byte <= 0x8f)])
                self.corrupt = key
            elif byte <= 0xbf:  # fixstr
                self._payload = byte & 0x1f
                position += 1
            elif byte in _FIXED_SIZE:
                self._payload = _FIXED_SIZE[byte]
                position += 1
                self.corrupt = key
            elif byte in _LENGTH_BYTES or byte in _COUNT_BYTES:
                width, each = _LENGTH_BYTES[byte] if byte in _LENGTH_BYTES else _COUNT_BYTES[byte]
                if position + 1 + width > end:  # the header goes on in the next chunk
                    top[0] += 1
                    self.pending_header = data[position:]
                    self.size += position - start
                    return -1
                number = int.from_bytes(data[position + 1:position + 1 + width], "big")
                position += 1 + width
                if byte in _LENGTH_BYTES:
                    self._payload = number + each
                    self.corrupt = number > self._max_length or (key and byte in _EXT_BYTES)
                else:
                    opened.append([number * each, int(each == 2)])
                    self.corrupt = key or number * each > self._max_items
            else:  # 0xc1 is never used: not msgpack
                self.corrupt = True
        self.size += position - start
        if self.corrupt:
            if self.corrupt_at < 0:
                self.corrupt_at = header + shift
            return -1
        if opened or self._payload:
            return -1
        return position + shift


def _text_keys(value: object) -> object:
    """Maps with bytes keys or values (Fluentd in_tail without ``encoding UTF-8`` sends msgpack
    bin) to text, recursively, so the record shapes can read them."""
    if isinstance(value, dict):
        return {_text_keys(key): _text_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_text_keys(item) for item in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value
