"""Every annotated sample in tests/fixtures reads as annotated, and every shape has samples."""

import glob
import json
import os

import pytest

import parsers
from parsers.timestamps import format_iso8601
from samples import FIXTURES, check_outcome, load_samples, read_text

FIXTURE_FILES = sorted(
    path for path in glob.glob(os.path.join(FIXTURES, "**", "*"), recursive=True)
    if os.path.isfile(path) and not path.endswith("sshd.log")  # sshd.log annotates templates: test_sshd_templates
)
SAMPLES = [sample for path in FIXTURE_FILES for sample in load_samples(path)]


@pytest.mark.parametrize("sample", SAMPLES, ids=str)
def test_sample_reads_as_annotated(sample):
    recorder = read_text(sample.text.encode("utf-8"))
    assert check_outcome(sample, recorder) == []


def test_every_kind_has_a_sample():
    annotated = set()
    for sample in SAMPLES:
        for expected in sample.expect.get("events", [sample.expect]):
            annotated.add(expected.get("kind"))
    missing = sorted(set(parsers.KINDS) - annotated)
    assert missing == [], f"shapes without an annotated sample: {missing}"


def test_annotations_name_only_known_kinds():
    unknown = {
        (str(sample), expected["kind"])
        for sample in SAMPLES
        for expected in sample.expect.get("events", [sample.expect])
        if "kind" in expected and expected["kind"] not in parsers.KINDS
    }
    assert unknown == set()


def test_fixtures_hold_negative_samples():
    """Each family of fixtures holds broken input as well as good (the tests can fail)."""
    assert sum(1 for sample in SAMPLES if sample.expect.get("malformed")) >= 8
    assert sum(1 for sample in SAMPLES if sample.expect.get("unrecognised")) >= 3


def test_the_local_zone_follows_summer_time(monkeypatch):
    """``--timezone local`` reads each RFC 3164 timestamp with the machine's rules for its own
    date: in Paris, noon is 11:00Z in winter and 10:00Z in summer."""
    import time

    from parsers.timestamps import Rfc3164Clock, format_iso8601, resolve_zone
    monkeypatch.setenv("TZ", "Europe/Paris")
    time.tzset()
    try:
        reading = 1795842096.0  # 2026-11-28
        clock = Rfc3164Clock(resolve_zone("local"), now=lambda: reading)
        assert format_iso8601(clock("Jul 14 12:00:00")) == "2026-07-14T10:00:00.000000Z"
        assert format_iso8601(clock("Nov 27 12:00:00")) == "2026-11-27T11:00:00.000000Z"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_a_custom_time_key_never_replaces_a_records_own_time():
    """With --time-key ts, Fluentd's read time goes to its own place: a sign-in keeps its own
    ``time``, a Fluentd syslog record (which has none) takes the injected one."""
    signin = {"time": "2026-11-28T06:10:00Z", "category": "SignInLogs", "resultType": "0", "ts": 1795900000.0,
              "properties": {"id": "own-time", "ipAddress": "203.0.113.5"}}
    syslog = {"host": "web1", "ident": "sshd", "message": "Invalid user x from 203.0.113.5 port 1", "ts": 1795842096.0}
    data = (json.dumps(signin) + "\n" + json.dumps(syslog) + "\n").encode()
    recorder = read_text(data, time_key="ts")
    assert [format_iso8601(event.time) for event in recorder.events] == [
        "2026-11-28T06:10:00.000000Z", "2026-11-28T05:01:36.000000Z"]
