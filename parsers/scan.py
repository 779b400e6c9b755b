"""Block scanning of syslog: the regexes that let the reader skip, in C, every line a profile
can never count, and read the commonest counted lines together with their header.

A block of text is cut into *runs*: consecutive lines whose start has one syslog shape (RFC 3164,
RFC 3339, either behind a ``<PRI>``, or RFC 5424). Within a run only *candidates* are read in
Python; every other line is counted as read, by its shape. What a candidate is comes from the
profile's :class:`Interest`:

- ``Interest(sshd=True)`` (the hardened profile): a line whose program is sshd and whose message
  starts (after rsyslog's repeat wrapper, Solaris' ``[ID ...]`` and sshd's ``error:``) with the
  first word of a counted template. One regex per run shape, anchored at the newline, matches
  the header and, for the counted forms with one reading (``sshd.FAST_FORMS``), the whole
  message, so that their lines need no further regex. Other candidates are parsed like any line.
- ``Interest(term="from")`` (the kql profile): a line holding the term, in any case. Found with
  ``str.find`` over a lower-cased copy of the run (ASCII text) or a case-insensitive regex.

The scan is a superset by construction (tests/test_scan.py checks it against the per-line reading
of every sample and of generated lines): a line that can count is always a candidate.
"""

import re
from typing import Dict, NamedTuple, Optional, Tuple

from .sshd import COUNTED_WORDS, FAST_FORMS, SSHD_PROGRAMS, Template, block_pattern
from .syslog import RFC3164_KIND, RFC3339_KIND, RFC5424_KIND


class Interest(NamedTuple):
    """What a profile can count in a syslog line: counted sshd templates, or a term."""

    sshd: bool = False  # only sshd's counted templates (the hardened profile)
    term: str = ""  # only lines holding this term, in any case (the kql profile: "from")

    def admits(self, program: str, message: str) -> bool:
        """Whether a syslog message (of a record: journald, a collector's, a Sentinel row) may
        count: the same superset as the block scan's, applied to fields read already."""
        if self.sshd:
            return program in SSHD_PROGRAMS and _SSHD_MESSAGE_START.match(message) is not None
        return self.term in message.lower()


_PRI = r"<([0-9]{1,3})>"
_STAMPS = {
    RFC3164_KIND: r"([A-Z][a-z]{2} [ 0-9]?[0-9] [0-9]{2}:[0-9]{2}:[0-9]{2}) ",
    RFC3339_KIND: r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?(?:Z|[+-][0-9]{2}:[0-9]{2})) ",
}


class RunShape(NamedTuple):
    """One shape of syslog line start, as a run is made of."""

    name: str  # "rfc3164", "pri-rfc3164", ...
    kind: str  # the event kind its lines are read as
    start: str  # regex of the start of such a line
    has_priority: bool


RUN_SHAPES: Tuple[RunShape, ...] = (
    RunShape("rfc3164", RFC3164_KIND, r"[A-Z][a-z]{2} [ 0-9]?[0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} ", False),
    RunShape("rfc3339", RFC3339_KIND, r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}", False),
    RunShape("pri-rfc3164", RFC3164_KIND, r"<[0-9]{1,3}>[A-Z][a-z]{2} [ 0-9]?[0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} ", True),
    RunShape("pri-rfc3339", RFC3339_KIND, r"<[0-9]{1,3}>[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}", True),
    RunShape("rfc5424", RFC5424_KIND, r"<[0-9]{1,3}>1 ", True),
)
RUN_SHAPES_BY_NAME = {shape.name: shape for shape in RUN_SHAPES}
# Which shape the line at a newline has (the group that matched names it).
RUN_START = re.compile(r"\n(?:" + "|".join(f"(?P<{shape.name.replace('-', '_')}>{shape.start})" for shape in RUN_SHAPES) + ")")
RUN_NAMES = {shape.name.replace("-", "_"): shape for shape in RUN_SHAPES}
# The newline before the first line of another shape (or an empty line) ends a run.
RUN_END = {shape.name: re.compile(r"\n(?!" + shape.start + ")") for shape in RUN_SHAPES}
# A line that begins a record of its own: ends an XML event, comment or DTD left open.
NEW_RECORD = re.compile(r"\n(?:[ \t]*<(?:\w+:)?Event[\s>]|<\?xml|<!DOCTYPE|\{|"
                        + "|".join(shape.start for shape in RUN_SHAPES) + ")")

# sshd's own prefixes before the template's first word: Solaris' message id, rsyslog's repeat
# wrapper, the log level (as sshd.read_sshd_message unwraps them).
_SSHD_PREFIXES = r"(?:\[ID [0-9]+ [^\]\n]*\] )?(?:message repeated [0-9]+ times: \[ ?)?(?:(?:error|fatal): )?"
_COUNTED_WORD = "(?:" + "|".join(re.escape(word) for word in COUNTED_WORDS) + ") "
_SSHD_PROGRAM = "(" + "|".join(sorted(SSHD_PROGRAMS, reverse=True)) + ")"
_SSHD_MESSAGE_START = re.compile(_SSHD_PREFIXES + _COUNTED_WORD)
# A fast form ends the line, but for ASCII blanks. read_sshd_message strips every kind of
# blank first (str.rstrip: what \s matches), and a message that then ends in " [preauth]" does
# not count: such lines, and lines ending in another kind of blank, go the generic way.
_LINE_END = r"(?<!\s)(?<! \[preauth\])[ \t\r\f\v]*(?=\n|\Z)"


class FastForm(NamedTuple):
    """A counted form read in the scan: its template and the match groups of its slots."""

    template: Template
    user_group: int  # 0 when the form has no username slot
    addr_group: int


class SshdScan(NamedTuple):
    """The block regex of one run shape for Interest(sshd=True), and how to read its matches.

    A match starts at the newline before a candidate line. Groups: the priority (shapes with a
    ``<PRI>``), the timestamp, the hostname, the program, the pid, an empty group at the start of
    the message, then one alternative per fast form. ``match.lastindex`` names the fast form that
    matched (its address group closes last); any other value means a generic candidate, which
    the reader parses like any line (so does a match whose hostname ends with ":": the line may
    have no hostname, see parsers.syslog).
    """

    pattern: "re.Pattern[str]"
    message_group: int
    fast: Dict[int, FastForm]  # lastindex -> the fast form


def _sshd_scan(shape: RunShape) -> SshdScan:
    if shape.name == "rfc5424":  # no fast forms: its structured data is parsed per line
        head = r"\n<[0-9]{1,3}>1 \S+ \S+ " + _SSHD_PROGRAM + r" ()[^\n]*?" + _COUNTED_WORD
        return SshdScan(re.compile(head), 2, {})
    stamp = _STAMPS[shape.kind]
    # The hostname is optional (macOS and some relays write none). Where the first word after
    # the timestamp is itself a tag with its colon ("sshd[1]: "), the line has no hostname:
    # the reader sends a match whose hostname ends with ":" the generic way, to be sure.
    head = (r"\n" + (_PRI if shape.has_priority else "") + stamp + r"(?:(\S+) )?"
            + _SSHD_PROGRAM + r"(?:\[([0-9]*)\])?: ?()")
    alternatives = [block_pattern(form, str(number)) + _LINE_END for number, (_, form) in enumerate(FAST_FORMS)]
    alternatives.append("(?=" + _SSHD_PREFIXES + _COUNTED_WORD + ")")
    pattern = re.compile(head + "(?:" + "|".join(alternatives) + ")")
    fast = {}
    for number, (template, form) in enumerate(FAST_FORMS):
        user = pattern.groupindex.get(f"user{number}", 0)
        fast[pattern.groupindex[f"addr{number}"]] = FastForm(template, user, pattern.groupindex[f"addr{number}"])
    message_group = 6 if shape.has_priority else 5
    return SshdScan(pattern, message_group, fast)


SSHD_SCANS: Dict[str, SshdScan] = {shape.name: _sshd_scan(shape) for shape in RUN_SHAPES}


def term_pattern(term: str) -> "re.Pattern[str]":
    """The case-insensitive search for ``term`` in text that is not ASCII (lower() may change
    its length there, so the lower-cased copy cannot be used)."""
    return re.compile(re.escape(term), re.IGNORECASE)


def run_shape_at(text: str, newline: int) -> Optional[RunShape]:
    """The shape of the line after the newline at ``newline``, or None when it has none."""
    match = RUN_START.match(text, newline)
    return None if match is None else RUN_NAMES[match.lastgroup]
