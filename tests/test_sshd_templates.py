"""parsers/sshd.py against annotated sample lines (fixtures/sshd.log), fail2ban style, and
against generated messages: the address comes from the template's slot or the line does not
count, whatever the client writes into the fields it controls."""

import json
import re
import signal
import string
import time
from pathlib import Path
from typing import Callable, Iterator, List, NamedTuple, Optional, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kql_oracle import nix_key
from parsers.address import canonical_ip
from parsers.sshd import LEVELS, MAX_MESSAGE_LENGTH, PREAUTH, SSHD_PROGRAMS, TEMPLATES, Form, each_reading, read_sshd_message
from parsers.syslog import parse_syslog

FIXTURE = Path(__file__).parent / "fixtures" / "sshd.log"
# "Nov 28 05:01:02 web1 sshd[1234]: <message>" (sshd-session since OpenSSH 9.8, sshd-auth 10)
EXPECT = "# expect: "
KEYS = {"template", "counts", "address", "repeat", "ambiguous", "kql"}
REPEATED = re.compile(r"message repeated [0-9]+ times: \[ ?(.*)\]")
TEMPLATE_NAMES = {template.name for template in TEMPLATES}


TEST_DEADLINE = 120.0  # seconds; the slowest test here takes about 15 on a slow machine


@pytest.fixture(autouse=True)
def deadline() -> Iterator[None]:
    """Fail, rather than hang, a test that meets catastrophic backtracking: re checks for
    signals while it matches, so SIGALRM interrupts a runaway regex (POSIX only)."""
    if not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"test ran longer than {TEST_DEADLINE} seconds")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, TEST_DEADLINE)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class Sample(NamedTuple):
    line: int  # line number in the fixture, for the test id
    expect: dict
    message: str  # the syslog message: what follows "sshd[pid]: "


def load_samples() -> List[Sample]:
    """Every annotated line of the fixture; a sample without annotation (or the reverse) fails."""
    samples: List[Sample] = []
    expect: Optional[dict] = None
    for number, line in enumerate(FIXTURE.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith(EXPECT):
            assert expect is None, f"line {number}: two annotations in a row"
            expect = json.loads(line[len(EXPECT):])
            assert set(expect) <= KEYS and {"template", "counts", "address", "kql"} <= set(expect), f"line {number}: keys"
        elif line and not line.startswith("#"):
            assert expect is not None, f"line {number}: sample without an annotation"
            found = parse_syslog(line, "auth", lambda stamp: 0.0)  # the header as the reader reads it
            assert found is not None and found.program in SSHD_PROGRAMS, f"line {number}: not an sshd syslog line"
            samples.append(Sample(number, expect, found.message))
            expect = None
    assert expect is None, "annotation at the end of the file without a sample"
    return samples


SAMPLES = load_samples()


def body_of(message: str) -> str:
    """The text the templates match: without trailing space, rsyslog's repeat wrapper, level
    and " [preauth]"."""
    wrapped = REPEATED.fullmatch(message.rstrip())
    body = wrapped.group(1) if wrapped else message.rstrip()
    level, _, rest = body.partition(" ")
    body = rest if level in LEVELS else body
    return body[: -len(PREAUTH)] if body.endswith(PREAUTH) else body


def matching_templates(body: str) -> List[str]:
    """Every template one of whose forms matches ``body`` whole (dispatch not involved)."""
    return [template.name for template in TEMPLATES if any(form.whole.fullmatch(body) for form in template.forms)]


@pytest.mark.parametrize("sample", SAMPLES, ids=[f"line{sample.line}" for sample in SAMPLES])
def test_sample_reads_as_annotated(sample: Sample) -> None:
    reading = read_sshd_message(sample.message)
    expect = sample.expect
    got = {
        "template": reading.template if reading else None,
        "counts": bool(reading and reading.counts),
        "address": (reading.address or None) if reading else None,
        "repeat": reading.repeat if reading else 1,
        "ambiguous": bool(reading and reading.ambiguous),
    }
    wanted = {key: expect[key] for key in ("template", "counts", "address")}
    wanted.update(repeat=expect.get("repeat", 1), ambiguous=expect.get("ambiguous", False))
    assert got == wanted


@pytest.mark.parametrize("sample", SAMPLES, ids=[f"line{sample.line}" for sample in SAMPLES])
def test_kql_annotation_is_the_rules_answer(sample: Sample) -> None:
    """The "kql" key says what the original rule charges, so the fixture documents the gap."""
    row = {"Facility": "auth", "ProcessName": "sshd", "SyslogMessage": sample.message}
    assert (nix_key(row) or None) == sample.expect["kql"]


@pytest.mark.parametrize("sample", SAMPLES, ids=[f"line{sample.line}" for sample in SAMPLES])
def test_at_most_one_template_matches(sample: Sample) -> None:
    """Templates never overlap, so the first match in dispatch order is the only one."""
    assert matching_templates(body_of(sample.message)) == ([sample.expect["template"]] if sample.expect["template"] else [])


def test_every_template_and_wording_has_a_sample() -> None:
    bodies = [body_of(sample.message) for sample in SAMPLES]
    missing = [
        f"{template.name} form {index}: {form.whole.pattern}"
        for template in TEMPLATES
        for index, form in enumerate(template.forms)
        if not any(form.whole.fullmatch(body) for body in bodies)
    ]
    assert not missing, "wordings without a sample in fixtures/sshd.log:\n" + "\n".join(missing)


def test_annotations_name_known_templates() -> None:
    unknown = {sample.expect["template"] for sample in SAMPLES} - TEMPLATE_NAMES - {None}
    assert not unknown


def test_counted_templates_have_counted_samples_and_the_others_do_not() -> None:
    counted = {sample.expect["template"] for sample in SAMPLES if sample.expect["counts"]}
    assert counted == {template.name for template in TEMPLATES if template.counts}


def test_template_names_are_unique_and_examples_read_back() -> None:
    assert len(TEMPLATE_NAMES) == len(TEMPLATES)
    for template in TEMPLATES:
        reading = read_sshd_message(template.example)
        assert reading is not None and reading.template == template.name


# --- generated messages -------------------------------------------------------------------------

PRINTABLE = string.ascii_letters + string.digits + string.punctuation + " "  # what strnvis() leaves
# Pieces of sshd's own wording, so that generated client text imitates fixed text often.
FRAGMENTS = [
    " from ", " port ", "port 22", " ssh2", " ssh2: ", ": ", "10.9.8.7", "192.0.2.1", "2001:db8::9",
    " [preauth]", "[preauth]", "'", "' from ", " rhost=", "  user=", " for ", "invalid user ", "Accepted",
    "disconnect", " not allowed because listed in DenyUsers", " ", "x", "22",
]
client_text = st.one_of(
    st.text(alphabet=PRINTABLE, max_size=100),
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(alphabet=PRINTABLE, max_size=5)), max_size=30).map(
        lambda parts: "".join(parts)[:100]
    ),
)
addresses = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
    st.ip_addresses(v=4).map(lambda address: f"::ffff:{address}"),
)
ports = st.integers(min_value=1, max_value=65535)

Builder = Callable[[str, str, str, int], str]  # (username, other client text, address, port)
# One builder per wording of every counted template; True when the text after the slot is
# fixed to the end of the message, so that the reading must be unique and must count.
COUNTED_MESSAGES: List[Tuple[str, bool, Builder]] = [
    ("failed-auth", True, lambda u, t, a, p: f"Failed password for {u} from {a} port {p} ssh2"),
    ("failed-auth", True, lambda u, t, a, p: f"Failed password for invalid user {u} from {a} port {p} ssh2"),
    ("failed-auth", True, lambda u, t, a, p: f"Failed keyboard-interactive/pam for {u} from {a} port {p} ssh2"),
    ("failed-auth", True, lambda u, t, a, p: f"Failed none for invalid user {u} from {a} port {p}"),
    ("failed-auth", False, lambda u, t, a, p: f"Failed publickey for {u} from {a} port {p} ssh2: RSA-CERT SHA256:x ID {t} (serial 1) CA ED25519 SHA256:y"),
    ("failed-auth", False, lambda u, t, a, p: f"Failed hostbased for {u} from {a} port {p} ssh2: RSA SHA256:x, client user \"{t}\", client host \"h\""),
    ("invalid-user", True, lambda u, t, a, p: f"Invalid user {u} from {a} port {p}"),
    ("invalid-user", True, lambda u, t, a, p: f"Invalid user {u} from {a}"),
    ("invalid-user", True, lambda u, t, a, p: f"Illegal user {u} from {a}"),
    ("user-not-allowed", True, lambda u, t, a, p: f"User {u} from {a} not allowed because not listed in AllowUsers"),
    ("no-identification", True, lambda u, t, a, p: f"Did not receive identification string from {a} port {p}"),
    ("bad-protocol-version", True, lambda u, t, a, p: f"Bad protocol version identification '{t}' from {a} port {p}"),
    ("bad-protocol-version", True, lambda u, t, a, p: f"Bad protocol version identification '{t}' from {a}"),
    ("banner-exchange", False, lambda u, t, a, p: f"banner exchange: Connection from {a} port {p}: {t}"),
    ("pam-auth-failure", True, lambda u, t, a, p: f"error: PAM: Authentication failure for illegal user {u} from {a}"),
    ("root-login-refused", True, lambda u, t, a, p: f"ROOT LOGIN REFUSED FROM {a} port {p}"),
    ("failed-auth", True, lambda u, t, a, p: f"message repeated 5 times: [ Failed password for {u} from {a} port {p} ssh2]"),
]


def test_every_counted_template_is_generated() -> None:
    assert {name for name, _, _ in COUNTED_MESSAGES} == {t.name for t in TEMPLATES if t.counts}


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(COUNTED_MESSAGES), client_text, client_text, addresses, ports)
def test_address_is_the_slot_or_nothing(case: Tuple[str, bool, Builder], user: str, text: str, address: str, port: int) -> None:
    """Whatever the client writes, a counted reading carries the address sshd wrote."""
    name, fixed_tail, build = case
    message = build(user, text, address, port)
    reading = read_sshd_message(message)
    assert len(matching_templates(body_of(message))) <= 1
    if fixed_tail:  # one reading only: it must be found, and it must count
        assert reading is not None and reading.template == name and reading.counts
    if reading is not None and reading.counts:
        assert reading.template == name
        assert reading.address == canonical_ip(address)


MARKED_FORMS: List[Tuple[str, Form]] = [(t.name, f) for t in TEMPLATES for f in t.forms if f.marker]
ADDRESS_TEXT = re.compile(r"[0-9a-f]*:[0-9a-f:.]+|[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+|host\.example\.com")


def samples_of(form: Form) -> List[str]:
    """The fixture bodies ``form`` matches (every wording has one, see above)."""
    return [body for body in (body_of(sample.message) for sample in SAMPLES) if form.whole.fullmatch(body)]


@st.composite
def forged_bodies(draw: Callable) -> Tuple[str, Form, str]:
    """A real body of a form with copies of its own tail (marker onwards, another address in
    the slot, maybe cut short) pasted at its markers or at its end: what a client does with a
    username, an identification string or a key ID to plant a second reading."""
    name, form = draw(st.sampled_from(MARKED_FORMS))
    body = draw(st.sampled_from(samples_of(form)))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        markers = [found.start() for found in re.finditer(re.escape(form.marker), body)]
        piece = body[draw(st.sampled_from(markers)):]
        planted = draw(st.sampled_from(["10.9.8.7", "2001:db8::9", "host", "203.0.113.5"]))
        piece = ADDRESS_TEXT.sub(planted, piece, count=1)
        if draw(st.booleans()):
            piece = piece[: draw(st.integers(min_value=0, max_value=len(piece)))]
        where = draw(st.sampled_from(markers + [len(body)]))
        body = body[:where] + piece + body[where:]
    return name, form, body


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(forged_bodies())
def test_fast_path_agrees_with_every_reading(case: Tuple[str, Form, str]) -> None:
    """The single regex finds a reading exactly when one exists; a tail without client text
    leaves at most one (which lets the hot path skip the all-readings check); and two
    readings with different slots make the message ambiguous, whatever the slots hold."""
    name, form, body = case
    body = body.rstrip()  # as read_sshd_message sees it: trailing blanks (copies, CRLF) go first
    assert len(matching_templates(body)) <= 1
    readings = list(each_reading(form, body))
    matched = form.whole.fullmatch(body)
    assert (matched is not None) == bool(readings)
    if matched is not None:
        fields = matched.groupdict()
        assert ((fields.get("addr") or ""), (fields.get("user") or "")) in readings
    slots = {canonical_ip(slot) or slot for slot, _ in readings}
    if not form.tail_opaque:
        assert len({slot for slot, _ in readings}) <= 1
    elif len(slots) > 1:
        reading = read_sshd_message(body)
        if len(body) > MAX_MESSAGE_LENGTH:
            assert reading is None
        else:
            assert reading is not None and reading.template == name and reading.ambiguous and not reading.counts


@pytest.mark.parametrize("message, user", [
    ("Failed password for invalid user a b  c from 203.0.113.5 port 1 ssh2", "a b  c"),
    ("Failed password for invalid user  from 203.0.113.5 port 1 ssh2", ""),
    ("Invalid user x from 10.9.8.7 port 22 from 203.0.113.5 port 1", "x from 10.9.8.7 port 22"),
    ("message repeated 2 times: [ Invalid user root from 203.0.113.5 port 1]", "root"),
    ("Connection closed by invalid user a 192.0.2.1 203.0.113.5 port 1 [preauth]", "a 192.0.2.1"),
    ("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.5  user=bob", "bob"),
    ("Did not receive identification string from 203.0.113.5 port 1", ""),
    ("Invalid user bob from 203.0.113.5 port 1\r", "bob"),
])
def test_user_slot(message: str, user: str) -> None:
    reading = read_sshd_message(message)
    assert reading is not None and reading.user == user


# --- cost ----------------------------------------------------------------------------------------

SLOW = 0.05  # seconds: generous for this machine; catastrophic backtracking takes far longer


def _timed(message: str) -> float:
    """Seconds one read_sshd_message() call takes."""
    started = time.perf_counter()
    read_sshd_message(message)
    return time.perf_counter() - started


FILLERS = [
    " from", " from 1.1.1.1 port 1 ssh2:", " port 1:", " rhost=1.1.1.1  user=", " (1.1.1.1)", " " * 7,
    " for x from", " [1.1.1.1] failed", "' from 1.1.1.1", " user x 1.1.1.1 port 1",
]


def pathological_messages() -> List[str]:
    """A real body of every wording with a filler (its markers, spaces, "from"s) repeated up
    to sshd's length limit at each word boundary, where the opaque spans are; and the same
    with a character after the end, so that the regexes fail as late as they can."""
    messages = []
    for template in TEMPLATES:
        for form in template.forms:
            words = samples_of(form)[0].split(" ")
            for cut in range(1, len(words) + 1):
                head, tail = " ".join(words[:cut]), " ".join(words[cut:])
                for filler in FILLERS:
                    times = (MAX_MESSAGE_LENGTH - len(head) - len(tail) - 3) // len(filler)
                    body = head + filler * times + (" " + tail if tail else "")
                    messages += [body, body + " \\"]  # the second fails only at its very end
    return messages


def test_pathological_messages_stay_fast() -> None:
    messages = pathological_messages()
    assert len(messages) > 1000 and max(map(len, messages)) <= MAX_MESSAGE_LENGTH
    slow = [(round(seconds, 3), message[:80]) for message in messages if (seconds := _timed(message)) > SLOW]
    assert not slow


def test_long_usernames_and_huge_messages_stay_fast() -> None:
    spaces_and_froms = " from" * 20  # 100 characters
    cases = [
        f"Failed publickey for {spaces_and_froms} from 203.0.113.5 port 1 ssh2: RSA {spaces_and_froms}",
        f"Invalid user {' ' * 100} from 203.0.113.5 port 1",
        "Failed publickey for " + " from 1.1.1.1 port 1 ssh2: x" * 40,
        "Failed password for " + "x" * 1_000_000 + " from 203.0.113.5 port 1 ssh2",
        "Failed publickey for u from 203.0.113.5 port 1 ssh2: " + " from 1.1.1.1 port 1 ssh2:" * 40_000,
    ]
    for message in cases:
        assert _timed(message) < SLOW, message[:80]
    assert read_sshd_message(cases[3]) is None  # longer than sshd can write


def test_a_message_just_within_the_limit_is_read() -> None:
    user = "u" * (MAX_MESSAGE_LENGTH - len("Invalid user  from 203.0.113.5 port 1"))
    reading = read_sshd_message(f"Invalid user {user} from 203.0.113.5 port 1")
    assert reading is not None and reading.counts and reading.user == user
    assert read_sshd_message(f"Invalid user {user}x from 203.0.113.5 port 1") is None


@pytest.mark.parametrize("written, canonical", [
    ("::FFFF:203.0.113.5", "203.0.113.5"), ("fe80::1%eth0", "fe80::1"), ("2001:0DB8::0001", "2001:db8::1"),
    ("203.0.113.05", ""), ("256.0.0.1", ""), ("1.2.3", ""),
])
def test_slot_address_is_canonical_or_empty(written: str, canonical: str) -> None:
    reading = read_sshd_message(f"Invalid user a from {written} port 1")
    assert reading is not None and reading.address == canonical and reading.counts == bool(canonical)
