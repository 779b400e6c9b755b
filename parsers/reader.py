"""Framing: a byte stream in, one call per record to a sink out.

Handles what real streams do: records split across reads, multi-line Windows XML events
(an event ends at ``</Event>``), invalid UTF-8, CRLF, lines past the size limit (skipped to
their end and reported once), a stream that stops in the middle of a record, and msgpack
streams from Fluentd's exec_filter. Each line is recognised by itself (``auto``): ``{`` starts
JSON, ``<Event``/``<?xml`` XML, anything else is tried as syslog.
"""

import re
from typing import Callable, Dict, List, NamedTuple, Optional, Protocol, Tuple

import msgpack
import msgspec

from .event import Event, MalformedRecord, short_reason
from .records import INJECTED_TIME_KEY, Record, RecordReader
from .syslog import RFC3164_KIND, RFC3339_KIND, parse_syslog
from .windows import XML_KIND, parse_event_xml

DEFAULT_MAX_RECORD_BYTES = 1024 * 1024
_XML_STARTS = ("<Event", "<?xml", "<!", "</Event")
_PREFIXED_XML_START = re.compile(r"</?\w+:Event")  # <e:Event xmlns:e="...">
_EVENT_START = re.compile(r"<(\w+:)?Event[\s>]")


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


class Interest(NamedTuple):
    """Text a syslog line must contain (one of the needles) to be worth parsing: what the profile
    can count never lacks it (the rule needs the term "from"; the hardened profile counts a few
    sshd messages). Lines without it are counted as recognised by the shape of their timestamp,
    never parsed: most of an auth log, at a fraction of the cost. Explain mode reads every line."""

    needles: Tuple[str, ...]
    fold_case: bool  # look for the needles in the lower-cased line


_SYSLOG_FIRST = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")  # RFC 3164 month, RFC 3339 year


def _timestamp_kind(line: str) -> Optional[str]:
    """The syslog kind a line's timestamp shape says (``Nov 28 05:01:02 `` or
    ``2026-11-28T05:01:02``), or None: a cheap check for lines that are not parsed."""
    if line[15:16] == " " and line[9:10] == ":" and line[12:13] == ":":
        return RFC3164_KIND
    if line[4:5] == "-" and line[10:11] == "T" and line[13:14] == ":":
        return RFC3339_KIND
    return None


class LineReader:
    """Reads lines of any supported shape (``--input auto``) or JSON only (``--input json``).

    ``line_number`` is the number of the line being read (1-based), for sinks that report.
    """

    def __init__(self, sink: Sink, clock: Callable[[str], Optional[float]], default_facility: str = "auth",
                 json_only: bool = False, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
                 interest: Optional[Interest] = None, time_key: str = "time", tag_key: str = "tag") -> None:
        self.sink = sink
        self.line_number = 0
        self.recognised: Dict[str, int] = {}  # records read per kind, events and lines of no interest alike
        self._interest = interest
        self._renames = [(key, key.encode("utf-8"), name)  # msgpack may carry the key as bin
                         for key, name in ((time_key, INJECTED_TIME_KEY), (tag_key, "tag")) if key not in (name, "time")]
        self._clock = clock
        self._facility = default_facility
        self._json_only = json_only
        self._limit = max_record_bytes
        self._records = RecordReader(default_facility, self._wrapped_line)
        self._decode_json = msgspec.json.Decoder(Record).decode
        self._pending = b""  # bytes after the last newline
        self._skipping = 0  # > 0 while skipping the rest of an oversized line: bytes skipped so far
        self._xml: List[str] = []  # lines of an XML event still open
        self._xml_size = 0
        self._closing = "</Event>"  # the end tag of the open event
        self._reject_next_xml = False  # a DTD was declared: the document's event is refused
        self._in_dtd = False  # inside a multi-line <!DOCTYPE ... [ ... ]>
        self._in_comment = False  # inside a multi-line <!-- ... -->

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
        self._read_block(buffer[:last])

    def finish(self) -> None:
        """End of stream: a last line without newline is read; an open record is truncated."""
        if self._skipping:
            size, self._skipping = self._skipping, 0
            self._end_oversized(size)
        if self._pending:
            pending, self._pending = self._pending, b""
            self._read_block(pending)
        if self._xml:
            self.sink.malformed(XML_KIND, "stream ended inside an <Event> (no </Event>)", self.line_number)
            self._xml = []
        self._in_dtd = self._in_comment = self._reject_next_xml = False

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
        """Complete lines, decoded once per block; per line only where the UTF-8 is bad."""
        try:
            lines = block.decode("utf-8").split("\n")
        except UnicodeDecodeError:
            self._read_lines_with_bad_text(block.split(b"\n"))
            return
        check_size = len(block) > self._limit
        limit = self._limit
        read_line = self.read_line
        for line in lines:
            # a line of n characters holds at most 4n bytes: only a long one is measured
            if check_size and len(line) * 4 > limit:
                size = len(line.encode("utf-8"))
                if size > limit:
                    self._end_oversized(size)
                    continue
            read_line(line)

    def _read_lines_with_bad_text(self, raw_lines: List[bytes]) -> None:
        for raw in raw_lines:
            if len(raw) > self._limit:
                self._end_oversized(len(raw))
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                line = raw.decode("utf-8", "replace")
                self.sink.invalid_text(self.line_number + 1)
            self.read_line(line)

    # -- lines --------------------------------------------------------------------------

    def read_line(self, line: str) -> None:
        """Recognise and read one line (without its newline)."""
        self.line_number += 1
        if line[-1:] == "\r":
            line = line[:-1]
        if line[:1] in _SYSLOG_FIRST and not (self._xml or self._in_dtd or self._in_comment or self._json_only):
            self._reject_next_xml = False  # another record: a document with a DTD has ended
            interest = self._interest
            if interest is not None:
                text = line.lower() if interest.fold_case else line
                for needle in interest.needles:
                    if needle in text:
                        break
                else:
                    kind = _timestamp_kind(line)
                    if kind is not None:
                        self.recognised[kind] = self.recognised.get(kind, 0) + 1
                        return
            self._read_syslog(line)
            return
        self._read_other(line)

    def _read_other(self, line: str) -> None:
        """Everything but a plain syslog line: open XML, JSON, priority, blank, unknown."""
        if self._xml:
            self._continue_xml(line)
            return
        if self._in_dtd:
            end = line.find("]>")
            self._in_dtd = end < 0
            if end >= 0:
                self._open_xml(line[end + 2:])  # ]><Event ...>: the document's event follows
            return
        if self._in_comment:
            self._in_comment = "-->" not in line
            return
        first = line[:1]
        if first == "\x00" and line.strip("\x00"):  # after a crash NULs run into the next line: read it
            line = line.lstrip("\x00")
            first = line[:1]
        if first == "{":
            self._reject_next_xml = False  # another record: a document with a DTD has ended
            self._read_json(line)
        elif not line.strip():
            return
        elif self._json_only:
            self.sink.malformed("json", "not a JSON object", self.line_number)
        elif first == "<" and (line.startswith(_XML_STARTS) or _PREFIXED_XML_START.match(line)):
            self._start_xml(line)
        elif first in (" ", "\t") and line.lstrip().startswith(_XML_STARTS):
            self._start_xml(line.lstrip())
        else:
            self._reject_next_xml = False
            self._read_syslog(line)

    def _read_syslog(self, line: str) -> None:
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

    def _count(self, kind: str) -> None:
        self.recognised[kind] = self.recognised.get(kind, 0) + 1

    def _read_json(self, text: str) -> None:
        try:
            record = self._decode_renamed(text) if self._renames else self._decode_json(text)
        except (msgspec.DecodeError, RecursionError) as error:  # ValidationError is a DecodeError
            self.sink.malformed("json", short_reason(error), self.line_number)
            return
        self.read_record(record)

    def _decode_renamed(self, text: str) -> Record:
        """A JSON line whose injected time / tag keys have other names (``--time-key``)."""
        item = msgspec.json.decode(text)
        if isinstance(item, dict):
            self.rename_injected(item)
        return msgspec.convert(item, Record)

    def rename_injected(self, item: dict) -> None:
        """Move the keys Fluentd's ``<inject>`` added (``--time-key``, ``--tag-key``) to the
        names the record shapes read, whether the key came as text or as msgpack bin."""
        for key, raw_key, name in self._renames:
            for spelling in (key, raw_key):
                if spelling in item:
                    item[name] = item.pop(spelling)
                    break

    def read_record(self, record: Record) -> None:
        """Read one decoded record (from a JSON line or a msgpack map)."""
        kind, events, problems = self._records.read(record)
        sink = self.sink
        for event in events:
            self._count(event.kind)
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
                    kind, found, found_problems = self._records.read(self._decode_json(text))
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

    # -- Windows XML --------------------------------------------------------------------

    def _start_xml(self, line: str) -> None:
        if line.startswith("<?xml"):  # <?xml ...?><!DOCTYPE ...>: a DTD on the declaration's line
            rest = line[line.find("?>") + 2:].lstrip() if "?>" in line else ""
            if rest.startswith("<!") and not rest.startswith("<!--"):
                line = rest
        if line.startswith("<!--"):
            self._in_comment = "-->" not in line
            return
        if line.startswith("<!"):  # <!DOCTYPE ...> or <!ENTITY ...>: never read, never expanded
            self._reject_next_xml = True
            self.sink.malformed(XML_KIND, "document declares a DTD or entities; refused", self.line_number)
            subset = "[" in line
            end = line.find("]>" if subset else ">")
            self._in_dtd = subset and end < 0
            if end >= 0:
                self._open_xml(line[end + (2 if subset else 1):])  # <!DOCTYPE ...><Event ...>: refused too
            return
        self._open_xml(line)

    def _open_xml(self, text: str) -> None:
        if text[6:7] in (" ", ">") and text.startswith("<Event") and text.find("</Event>") == len(text) - 8:
            self._read_xml_event(text)  # one whole event on its line: what wevtutil prints
            return
        if _EVENT_START.search(text) is None:
            return
        self._xml = [text]
        self._xml_size = len(text)
        self._close_xml_events()

    def _continue_xml(self, line: str) -> None:
        self._xml_size += len(line) + 1
        if self._xml_size > self._limit:
            self._xml = []
            self._reject_next_xml = False  # the document's event is dropped with it
            self.sink.oversized(self._xml_size, self.line_number)
            return
        if "Event" in line and _EVENT_START.match(line.lstrip()):  # an event never holds an event
            self._xml = []
            self.sink.malformed(XML_KIND, "an <Event> without its </Event>, followed by another",
                                self.line_number)
            self._start_xml(line.lstrip())
            return
        self._xml.append(line)
        if self._closing in line:  # only the new line can close it: no rescan of the open text
            self._close_xml_events()

    def _close_xml_events(self) -> None:
        """Read every complete event in the open text; keep an unfinished one open. Text outside
        events (an XML declaration, an <Events> root) is skipped."""
        text = "\n".join(self._xml) if len(self._xml) > 1 else self._xml[0]
        position = 0
        while True:
            start = _EVENT_START.search(text, position)
            if start is None:
                self._xml = []
                return
            closing = f"</{start.group(1) or ''}Event>"
            end = text.find(closing, start.end())
            if end < 0:
                self._xml = [text[start.start():]]
                self._xml_size = len(self._xml[0])
                self._closing = closing
                return
            position = end + len(closing)
            self._read_xml_event(text[start.start():position])

    def _read_xml_event(self, text: str) -> None:
        if self._reject_next_xml:
            self._reject_next_xml = False
            self.sink.malformed(XML_KIND, "event of a document that declares a DTD; refused", self.line_number)
            return
        try:
            event = parse_event_xml(text)
        except MalformedRecord as problem:
            self.sink.malformed(problem.kind, problem.reason, self.line_number)
            return
        except (ValueError, OverflowError) as error:  # a "number" int() refuses (5000 digits, "²")
            self.sink.malformed(XML_KIND, short_reason(error), self.line_number)
            return
        if event is None:
            self.sink.ignored(XML_KIND, "not a 4625")
        else:
            self._count(XML_KIND)
            self.sink.event(event)



def _describe(record: Record) -> str:
    """A record we do not recognise, as the names of the keys it has."""
    keys = [field for field in record.__struct_fields__ if getattr(record, field) is not None]
    return "{" + ", ".join(keys) + ", ...}" if keys else "{...}"


def _event_time_ext(code: int, data: bytes) -> object:
    """msgpack ext type 0 is Fluent's EventTime (uint32 seconds, uint32 nanoseconds)."""
    if code == 0 and len(data) == 8:
        return int.from_bytes(data[:4], "big") + int.from_bytes(data[4:], "big") / 1e9
    return msgpack.ExtType(code, data)


class MsgpackReader:
    """Reads the unframed stream of msgpack maps Fluentd's exec_filter writes (``--input msgpack``).

    Every map is handled as soon as its last byte arrives. Keys injected by ``<inject>`` are
    renamed as the LineReader it feeds says (``rename_injected``). A value that is not a map,
    a map no shape fits, or bytes that are not msgpack are counted and reported; after
    undecodable bytes the stream is re-synchronised at the next map header byte. A record past
    the size limit is skipped to its end (its headers walked, its strings never held) and
    reported once.
    """

    def __init__(self, lines: LineReader) -> None:
        self._lines = lines
        self._limit = lines._limit
        self._skipping: Optional[_ObjectSkipper] = None  # walking past a record over the limit
        self._unpacker = self._new_unpacker()

    def _new_unpacker(self) -> "msgpack.Unpacker":
        self._fed = 0  # bytes given to the current unpacker
        self._boundary = 0  # where the unfinished record starts (tell() runs ahead inside one)
        self._held = b""  # the unfinished record's bytes so far
        big = 2 ** 32 - 1  # long strings are bounded by the size limit, not refused as undecodable
        return msgpack.Unpacker(raw=False, strict_map_key=False, ext_hook=_event_time_ext,
                                max_buffer_size=2 * self._limit, max_str_len=big, max_bin_len=big,
                                max_ext_len=big, unicode_errors="replace")

    @property
    def line_number(self) -> int:
        """The number of the record being read (records play the part of lines)."""
        return self._lines.line_number

    def feed(self, data: bytes) -> None:
        """Read a chunk of the stream; every complete map in it is handled now. The chunk goes
        to the unpacker in pieces of at most the size limit, so its buffer (twice the limit)
        never fills before an unfinished record is known to be over the limit."""
        position, limit = 0, min(self._limit, _MSGPACK_PIECE)
        while position < len(data):
            if self._skipping is not None:
                position = self._skipping.skip(data, position)
                if position < 0:
                    return
                self._end_oversized()
            else:
                self._feed_piece(data[position:position + limit] if position or len(data) > limit else data)
                position += limit

    def _feed_piece(self, piece: bytes) -> None:
        lines = self._lines
        sink = lines.sink
        unpacker = self._unpacker
        start, held = self._boundary, self._held + piece if self._held else piece
        try:
            unpacker.feed(piece)
            self._fed += len(piece)
        except msgpack.BufferFull:  # not expected (see feed): skip what is held as oversized
            pass
        while True:
            try:  # only the unpacking: an error in reading a record is not undecodable bytes
                item = next(unpacker)
            except StopIteration:
                break
            except (ValueError, TypeError, msgpack.UnpackException) as error:  # FormatError, StackError; a list as a key
                lines.line_number += 1
                sink.malformed("msgpack", f"undecodable bytes ({short_reason(error)}); resynchronising", lines.line_number)
                # every record is a map: start again at the next map header after the bad record's first byte
                found = _MAP_HEADER.search(held, self._boundary - start + 1)
                held = held[found.start():] if found else b""
                unpacker = self._unpacker = self._new_unpacker()
                start = 0
                unpacker.feed(held)  # less than the limit plus a piece: it fits
                self._fed = len(held)
                continue
            lines.line_number += 1
            end = unpacker.tell()
            size, self._boundary = end - self._boundary, end
            if size > self._limit:
                sink.oversized(size, lines.line_number)
            elif isinstance(item, dict):
                self._read_map(item)
            else:
                sink.malformed("msgpack", f"a {type(item).__name__}, not a map", lines.line_number)
        self._held = held[self._boundary - start:]
        if len(self._held) > self._limit:  # the unfinished record is over the limit: skip it
            self._skipping = _ObjectSkipper(self._limit)
            ended = self._skipping.skip(self._held, 0) >= 0  # only if its counts are absurd
            self._unpacker = self._new_unpacker()
            if ended:
                self._end_oversized()

    def _end_oversized(self) -> None:
        self._lines.line_number += 1
        self._lines.sink.oversized(self._skipping.size, self._lines.line_number)
        self._skipping = None

    def _read_map(self, item: dict) -> None:
        self._lines.rename_injected(item)
        try:
            record = msgspec.convert(item, Record, str_keys=True)
        except (msgspec.ValidationError, RecursionError):
            try:
                record = msgspec.convert(_text_keys(item), Record, str_keys=True)
            except (msgspec.ValidationError, RecursionError) as error:
                self._lines.sink.malformed("msgpack", short_reason(error), self._lines.line_number)
                return
        self._lines.read_record(record)

    def finish(self) -> None:
        """End of stream: bytes of an unfinished map are reported as a truncated record."""
        if self._skipping is not None:
            self._end_oversized()
        leftover = self._fed - self._boundary
        if leftover > 0:
            self._lines.line_number += 1
            self._lines.sink.malformed("msgpack", f"stream ended inside a record ({leftover} bytes)",
                                       self._lines.line_number)
        self._unpacker = self._new_unpacker()


_MSGPACK_PIECE = 64 * 1024  # bytes given to the unpacker at a time
_MAP_HEADER = re.compile(b"[\\x80-\\x8f\\xde\\xdf]")  # fixmap, map 16, map 32

# msgpack headers by first byte, for walking past a record too big to decode (the spec's formats)
_FIXED_SIZE = {0xc0: 0, 0xc2: 0, 0xc3: 0, 0xca: 4, 0xcb: 8, 0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8, 0xd0: 1,
               0xd1: 2, 0xd2: 4, 0xd3: 8, 0xd4: 2, 0xd5: 3, 0xd6: 5, 0xd7: 9, 0xd8: 17}
_LENGTH_BYTES = {0xc4: (1, 0), 0xc5: (2, 0), 0xc6: (4, 0), 0xc7: (1, 1), 0xc8: (2, 1), 0xc9: (4, 1),
                 0xd9: (1, 0), 0xda: (2, 0), 0xdb: (4, 0)}  # str, bin, ext: (length bytes, type bytes)
_COUNT_BYTES = {0xdc: (2, 1), 0xdd: (4, 1), 0xde: (2, 2), 0xdf: (4, 2)}  # array, map: (count bytes, items each)


class _ObjectSkipper:
    """Walks past one msgpack object, chunk by chunk, reading only its headers: a string of any
    length costs nothing. Counts beyond what the unpacker accepts end the walk (resynchronise)."""

    def __init__(self, limit: int) -> None:
        self.size = 0  # bytes walked
        self._items = 1  # items still to pass
        self._payload = 0  # bytes of the current str / bin / ext / number still to pass
        self._header = b""  # a header cut at the end of the last chunk
        self._max_items = 2 * limit

    def skip(self, data: bytes, position: int) -> int:
        """Walk ``data`` from ``position``: the offset just past the object, or -1 (not ended)."""
        shift = 0  # joined to a cut header: offsets in data are offsets here plus shift
        if self._header:
            shift = position - len(self._header)
            data, position, self._header = self._header + data[position:], 0, b""
        start = position
        end = len(data)
        while True:
            if self._payload:
                step = min(self._payload, end - position)
                position += step
                self._payload -= step
                if self._payload:
                    break
            if not self._items or position >= end:
                break
            byte = data[position]
            if byte <= 0x7f or byte >= 0xe0:  # fixint
                position += 1
                self._items -= 1
                continue
            if byte <= 0x9f:  # fixmap, fixarray
                self._items += (byte & 0x0f) * (2 if byte <= 0x8f else 1) - 1
                position += 1
            elif byte <= 0xbf:  # fixstr
                self._payload = byte & 0x1f
                self._items -= 1
                position += 1
            elif byte in _FIXED_SIZE:
                self._payload = _FIXED_SIZE[byte]
                self._items -= 1
                position += 1
            elif byte in _LENGTH_BYTES or byte in _COUNT_BYTES:
                width, each = _LENGTH_BYTES[byte] if byte in _LENGTH_BYTES else _COUNT_BYTES[byte]
                if position + 1 + width > end:  # the header goes on in the next chunk
                    self._header = data[position:]
                    self.size += position - start
                    return -1
                number = int.from_bytes(data[position + 1:position + 1 + width], "big")
                position += 1 + width
                if byte in _LENGTH_BYTES:
                    self._payload = number + each
                    self._items -= 1
                else:
                    self._items += number * each - 1
            else:  # 0xc1 is never used: not msgpack, stop here
                self._items = 0
            if self._items > self._max_items:
                self._items = 0
        self.size += position - start
        if self._items or self._payload:
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
