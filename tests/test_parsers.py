"""Every annotated sample in tests/fixtures reads as annotated, and every shape has samples."""

import glob
import os

import pytest

import parsers
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
