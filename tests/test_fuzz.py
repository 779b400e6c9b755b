"""Seeded fuzzing: hundreds of thousands of mutated and random lines and msgpack records of
every format through the installed command, and a property test of the framing in process.

The CLI runs must exit 0, write only well-formed alert records, print no traceback and keep
their peak memory bounded. ``FUZZ_LINES`` scales the line run (default 100,000; the msgpack run
is a fifth of it) for a longer local run; ``FUZZ_SEED`` picks another seed.
"""

import gc
import glob
import json
import os
import random
from typing import Callable, Dict, List

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli import run_measured
from parsers.reader import LineReader, MsgpackReader
from parsers.timestamps import Rfc3164Clock
from samples import FIXTURES, READING_TIME, SAMPLE_DIR
from datetime import timezone

FUZZ_LINES = int(os.environ.get("FUZZ_LINES", "100000"))
FUZZ_RECORDS = max(FUZZ_LINES // 5, 20000)
SEED = int(os.environ.get("FUZZ_SEED", "20261128"))
PEAK_RSS_LIMIT_KB = 250 * 1024
ALERT_FIELDS = {"TimeGenerated", "Type", "IPAddress", "UserPrincipalName", "AlertName", "RuleId", "Evidence",
                "AlertId", "Entities"}


def _seed_lines() -> List[bytes]:
    """Every line of the samples and fixtures (annotations dropped): the mutation seeds."""
    paths = sorted(glob.glob(os.path.join(FIXTURES, "**", "*"), recursive=True))
    paths += sorted(glob.glob(os.path.join(SAMPLE_DIR, "*")))
    lines: List[bytes] = []
    for path in paths:
        if os.path.isfile(path):
            with open(path, "rb") as handle:
                lines += [line for line in handle.read().split(b"\n") if line.strip() and not line.startswith(b"#")]
    return lines


SEEDS = _seed_lines()
JSON_SEEDS = [line for line in SEEDS if line.startswith(b"{")]
FRAGMENTS = [b"<", b">", b"</Event>", b"<Event>", b"<?xml version='1.0'?>", b"<!DOCTYPE x [", b"]>", b"<!--",
             b"-->", b'"', b"'", b"{", b"}", b"[", b"]", b":", b",", b"\\", b"\\u0000", b"\x00", b"\r", b"&lol;",
             b"&#x110000;", b"&#" + b"9" * 30 + b";", b"9" * 400, b"1e999", b"-0", b"NaN", b"\xff", b"\xc0\xaf",
             b"\xe2\x82", b"\xed\xa0\x80", b"sshd[1]: ", b"Failed password for ", b" from ", b" port 22 ssh2",
             b"203.0.113.5", b"::ffff:", b"%eth0", b'"records": [', b'"value": [', b"4625", b"\xb2"]


class Mutator:
    """Byte flips, truncation, duplication of fragments, insertions (random bytes, NUL, quotes,
    angle brackets, huge numbers, deep nesting), splices of two seeds, and pure random bytes."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.operations: List[Callable[[bytes], bytes]] = [
            self.flip, self.truncate, self.duplicate, self.insert_fragment, self.insert_random,
            self.nest, self.splice, self.replace_number,
        ]

    def line(self) -> bytes:
        rng = self.rng
        roll = rng.random()
        if roll < 0.05:
            return self.random_bytes(rng.randrange(0, 400))
        data = rng.choice(SEEDS)
        for _ in range(rng.choice((0, 1, 1, 2, 3, 5))):
            data = rng.choice(self.operations)(data)
            if len(data) > 3000:  # keep the corpus small: long lines are rare, as in real logs
                data = data[:3000 if rng.random() < 0.97 else 70000]
        return data

    def random_bytes(self, size: int) -> bytes:
        return bytes(self.rng.getrandbits(8) for _ in range(size))

    def _at(self, data: bytes) -> int:
        return self.rng.randrange(0, len(data) + 1)

    def flip(self, data: bytes) -> bytes:
        if not data:
            return data
        where = self.rng.randrange(len(data))
        return data[:where] + bytes([data[where] ^ (1 << self.rng.randrange(8))]) + data[where + 1:]

    def truncate(self, data: bytes) -> bytes:
        return data[:self._at(data)] if self.rng.random() < 0.7 else data[self._at(data):]

    def duplicate(self, data: bytes) -> bytes:
        start = self._at(data)
        end = min(len(data), start + self.rng.randrange(1, 200))
        where = self._at(data)
        return data[:where] + data[start:end] * self.rng.randrange(1, 6) + data[where:]

    def insert_fragment(self, data: bytes) -> bytes:
        where = self._at(data)
        return data[:where] + self.rng.choice(FRAGMENTS) * self.rng.choice((1, 1, 2, 50)) + data[where:]

    def insert_random(self, data: bytes) -> bytes:
        where = self._at(data)
        return data[:where] + self.random_bytes(self.rng.randrange(1, 16)) + data[where:]

    def nest(self, data: bytes) -> bytes:
        depth = self.rng.choice((10, 600, 3000))
        opener, closer = self.rng.choice(((b"[", b"]"), (b'{"a":', b"}"), (b'{"records":[', b"]}"),
                                          (b"<Event>", b"</Event>")))
        where = self._at(data)
        return data[:where] + opener * depth + closer * depth * self.rng.randrange(0, 2) + data[where:]

    def splice(self, data: bytes) -> bytes:
        other = self.rng.choice(SEEDS)
        return data[:self._at(data)] + other[self._at(other):]

    def replace_number(self, data: bytes) -> bytes:
        digits = [index for index, byte in enumerate(data) if 48 <= byte <= 57]
        if not digits:
            return data
        where = self.rng.choice(digits)
        huge = self.rng.choice((b"9" * 5000, b"99999999999999999999", b"-1", b"1e308", b"0x41", b"\xc2\xb2"))
        return data[:where] + huge + data[where + 1:]


def fuzz_text(rng: random.Random, count: int) -> bytes:
    mutator = Mutator(rng)
    lines = [mutator.line() for _ in range(count)]
    return b"\n".join(line.replace(b"\n", b" ") for line in lines) + b"\n"


def _value_mutations(rng: random.Random, value: object, depth: int = 0) -> object:
    """A decoded record with its values mutated: types swapped, huge numbers, NaN, NUL, bytes."""
    if isinstance(value, dict):
        return {(rng.choice(("", "\x00", "9" * 300, 7, b"\xff", 1.5, None)) if rng.random() < 0.05 else key):
                _value_mutations(rng, item, depth + 1) for key, item in value.items() if rng.random() > 0.05}
    if isinstance(value, list):
        return [_value_mutations(rng, item, depth + 1) for item in value]
    roll = rng.random()
    if roll > 0.15:
        return value
    return rng.choice([
        None, True, 2 ** 64 - 1, -2 ** 63, float("nan"), float("inf"), 1e308, "", "\x00", "9" * 5000,
        b"\xff\xfe\x00", "\u00b2", [], {}, [[[[]]]], {"records": []}, str(value) * 3, 0.5,
        msgpack.ExtType(0, b"\x00\x00\x00\x01\x00\x00\x00\x02"), msgpack.ExtType(0, b"\x01"),
        msgpack.ExtType(5, b"xyz"),
    ])


def fuzz_msgpack(rng: random.Random, count: int) -> bytes:
    records: List[dict] = []
    for line in JSON_SEEDS:
        try:
            records.append(json.loads(line))
        except ValueError:
            pass
    records += [{"log": line.decode("utf-8", "replace")} for line in SEEDS if not line.startswith(b"{")]
    mutator = Mutator(rng)
    out = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.45:
            item = _value_mutations(rng, rng.choice(records))
        elif roll < 0.7:
            item = {"log": mutator.line().decode("utf-8", rng.choice(("replace", "surrogateescape")))
                    .encode("utf-8", "surrogateescape"), "tag": "auth", "time": rng.random() * 2e9}
        else:
            item = rng.choice(records)
        packed = msgpack.packb(item, use_bin_type=rng.random() < 0.5)
        roll = rng.random()
        if roll < 0.1:
            packed = mutator.flip(packed)
        elif roll < 0.13:
            packed = packed[:mutator._at(packed)]
        elif roll < 0.15:
            packed = mutator.random_bytes(rng.randrange(1, 64))
        elif roll < 0.16:
            packed = b"\x91" * 3000 + b"\xc0"
        out.append(packed)
    return b"".join(out)


def run_and_measure(args: List[str], data: bytes):
    """(exit status, stdout, stderr as text, peak RSS in KB) of the command on ``data``."""
    result = run_measured(args, stdin=data, timeout=300)
    return result.returncode, result.stdout, result.text, result.peak_rss_kb


def _check_alert(record: object) -> None:
    assert isinstance(record, dict), record
    missing = ALERT_FIELDS - set(record)
    assert not missing, (missing, record)
    assert record["AlertName"] == "Failed host logons but success logon to AzureAD"


@pytest.mark.parametrize("args", [["--input", "auto"], ["--input", "auto", "--max-record-bytes", "2048"]],
                         ids=["auto", "auto-small-limit"])
def test_fuzzed_lines_through_the_cli(args):
    rng = random.Random(SEED + len(args))
    data = fuzz_text(rng, FUZZ_LINES if len(args) == 2 else FUZZ_LINES // 5)
    returncode, stdout, stderr, peak = run_and_measure(["--stats", "--suppress", "0", *args, "-"], data)
    print(f"fuzz {' '.join(args)}: {len(data) / 1e6:.1f} MB, peak RSS {peak / 1024:.1f} MB")
    assert returncode == 0, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-5000:]
    for line in stdout.decode("utf-8").splitlines():  # every stdout line one alert record
        _check_alert(json.loads(line))
    assert "fail2entra summary" in stderr
    assert peak < PEAK_RSS_LIMIT_KB, f"peak RSS {peak} KB"


@pytest.mark.parametrize("output", ["json", "msgpack"])
def test_fuzzed_msgpack_through_the_cli(output):
    data = fuzz_msgpack(random.Random(SEED + 7), FUZZ_RECORDS if output == "msgpack" else FUZZ_RECORDS // 4)
    returncode, stdout, stderr, peak = run_and_measure(
        ["--stats", "--suppress", "0", "--input", "msgpack", "--output", output, "-"], data)
    print(f"fuzz msgpack -> {output}: {len(data) / 1e6:.1f} MB, peak RSS {peak / 1024:.1f} MB")
    assert returncode == 0, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-5000:]
    if output == "json":
        records = [json.loads(line) for line in stdout.decode("utf-8").splitlines()]
    else:
        unpacker = msgpack.Unpacker(raw=False)
        unpacker.feed(stdout)
        records = list(unpacker)
        assert unpacker.tell() == len(stdout)  # nothing but whole records
    for record in records:
        _check_alert(record)
    assert peak < PEAK_RSS_LIMIT_KB, f"peak RSS {peak} KB"


@pytest.mark.parametrize("stream", ["lines", "msgpack"])
def test_reading_fuzzed_input_leaves_no_reference_cycles(stream):
    """The CLI freezes what survives the garbage collector: a cycle made per record (say a
    problem kept with its traceback) would hold its frames, and the blocks they read, until
    the next collection. Reading must leave nothing for the collector to find."""
    rng = random.Random(SEED + 11)
    recorder = _line_reader(1024 * 1024)
    reader = recorder.reader if stream == "lines" else MsgpackReader(recorder.reader)
    data = fuzz_text(rng, 5000) if stream == "lines" else fuzz_msgpack(rng, 5000)
    gc.collect()
    gc.disable()
    try:
        _feed_in_pieces(reader, data, [len(data) // 3, len(data) // 2])
        assert any("malformed" in found for found in recorder.outcomes.values())
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_fuzz_corpus_holds_what_it_says():
    """The generator produces the hostile shapes it is meant to (the fuzz tests can fail)."""
    data = fuzz_text(random.Random(SEED), 5000)
    for needle in (b"\x00", b"<!DOCTYPE", b"[" * 600, b"9" * 5000, b"\xff", b"</Event>", b"{"):
        assert needle in data, needle
    assert len(data.split(b"\n")) == 5001


# -- in process: the framing accounts for every line ---------------------------------------

class LineRecorder:
    """A sink that notes the line (or record) number of every outcome."""

    def __init__(self) -> None:
        self.reader = None
        self.outcomes: Dict[int, List[str]] = {}

    def _note(self, line_number: int, what: str) -> None:
        self.outcomes.setdefault(line_number, []).append(what)

    def event(self, event) -> None:
        self._note(self.reader.line_number, "event")

    def ignored(self, kind: str, why: str) -> None:
        self._note(self.reader.line_number, "ignored")

    def malformed(self, kind: str, reason: str, line_number: int) -> None:
        self._note(line_number, "malformed")

    def unrecognised(self, text: str, line_number: int) -> None:
        self._note(line_number, "unrecognised")

    def oversized(self, size: int, line_number: int) -> None:
        self._note(line_number, "oversized")

    def invalid_text(self, line_number: int) -> None:
        pass  # not an outcome: the line is still read


def _feed_in_pieces(reader, data: bytes, cuts: List[int]) -> None:
    position = 0
    for cut in sorted(cuts):
        reader.feed(data[position:cut])
        position = max(position, cut)
    reader.feed(data[position:])
    reader.finish()


def _line_reader(limit: int) -> LineRecorder:
    recorder = LineRecorder()
    recorder.reader = LineReader(recorder, Rfc3164Clock(timezone.utc, now=lambda: READING_TIME), max_record_bytes=limit)
    return recorder


def _shape_of(raw: bytes, limit: int) -> str:
    """What the reader must make of one line read alone: blank, oversized, xml or a record."""
    if len(raw) > limit:
        return "oversized"
    text = raw.decode("utf-8", "replace")
    if text.endswith("\r"):
        text = text[:-1]
    if text.startswith("\x00") and text.strip("\x00"):
        text = text.lstrip("\x00")
    if not text.strip():
        return "blank"
    return "xml" if text.lstrip(" \t").startswith("<") else "record"


line_texts = st.one_of(
    st.sampled_from(SEEDS),
    st.binary(max_size=300),
    st.lists(st.sampled_from(FRAGMENTS + SEEDS[:50]), max_size=8).map(b"".join),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(line_texts, max_size=30), cuts=st.lists(st.integers(min_value=0, max_value=20000), max_size=6),
       limit=st.sampled_from([64, 512, 4096, 1024 * 1024]), final_newline=st.booleans())
def test_line_reader_accounts_for_every_line(lines, cuts, limit, final_newline):
    """Arbitrary bytes, split into reads anywhere: no exception escapes, every line is counted,
    and every line outside XML gets an outcome (event, ignored, malformed, unrecognised or
    oversized) unless it is blank; no outcome points at a line that does not exist."""
    lines = [line.replace(b"\n", b"") for line in lines]
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    recorder = _line_reader(limit)
    _feed_in_pieces(recorder.reader, data, cuts)
    assert recorder.reader.line_number == len(lines) - (1 if lines and not final_newline and not lines[-1] else 0)
    assert set(recorder.outcomes) <= set(range(1, len(lines) + 1))
    if any(_shape_of(line, limit) == "xml" for line in lines):
        return  # an open XML event, DTD or comment may take the lines after it
    for number, line in enumerate(lines, 1):
        shape = _shape_of(line, limit)
        if shape == "blank":
            assert number not in recorder.outcomes, (number, line)
        elif shape == "oversized":
            assert recorder.outcomes.get(number) == ["oversized"], (number, line)
        else:
            assert number in recorder.outcomes, (number, line, recorder.outcomes)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=st.lists(st.one_of(
    st.binary(max_size=200),
    st.sampled_from(SEEDS).map(lambda line: msgpack.packb({"log": line.decode("utf-8", "replace")})),
    st.sampled_from(JSON_SEEDS).map(lambda line: msgpack.packb(json.loads(line)) if _is_json(line) else line),
    st.recursive(st.none() | st.booleans() | st.integers(-2 ** 63, 2 ** 64 - 1) | st.floats() | st.text(max_size=20)
                 | st.binary(max_size=20),
                 lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children,
                                                                                   max_size=4),
                 max_leaves=20).map(lambda value: msgpack.packb(value, use_bin_type=True)),
), max_size=20), cuts=st.lists(st.integers(min_value=0, max_value=5000), max_size=6),
    limit=st.sampled_from([64, 300, 1024 * 1024]))
def test_msgpack_reader_accounts_for_every_record(items, cuts, limit):
    """Arbitrary bytes as a msgpack stream, split anywhere: no exception escapes and every
    record number the reader counts has an outcome; a stream of whole maps under the limit is
    read one record per map, nothing lost."""
    recorder = _line_reader(limit)
    reader = MsgpackReader(recorder.reader)
    _feed_in_pieces(reader, b"".join(items), cuts)
    assert set(recorder.outcomes) == set(range(1, reader.line_number + 1))
    if limit == 1024 * 1024 and all(isinstance(_decoded(item), dict) for item in items):
        assert reader.line_number == len(items)
        assert all(what != "oversized" for found in recorder.outcomes.values() for what in found)


def _is_json(line: bytes) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def _decoded(item: bytes) -> object:
    try:
        return msgpack.unpackb(item, raw=False, strict_map_key=False)
    except Exception:
        return None
