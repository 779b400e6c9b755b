"""Analyst exclusions: named KQL ``where`` predicates, compiled once into plain Python closures.

Analysts tune a Sentinel rule by adding ``where`` lines; an exclusion is such a line, for
example ``ipv4_is_in_range(IpAddress, "10.20.0.0/16") or ProcessName has "veeam"``. The text is
parsed once at start by a pyparsing grammar (built, and pyparsing loaded, only when there is
one to parse: 8 MB and 0.1 s a process without exclusions does not pay), type-checked the way KQL checks
it, and turned into a closure ``predicate(event, ip, user) -> bool``: nothing is parsed, looked
up by name or compiled per event. Constants (needles, regexes, networks) are prepared at start.

KQL semantics kept: each operator's case-sensitivity as KQL documents it (its case-insensitive
operators fold ASCII letters only; ``has`` comes from :mod:`plugin.kql`), KQL's null (an absent
``LogonType`` is null: ``==`` is false, ``!=`` true, ``<`` null, ``not(null)`` null, and a
``where`` drops null), no implicit conversion between strings and numbers except in ``in`` lists.
The syntax and these decisions are described in docs/exclusions.md.
"""

from __future__ import annotations  # pyparsing's types in annotations: not loaded to define them

import difflib
import importlib.util
import ipaddress
import operator
import re
import string
import sys
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Any, Callable, Iterable, Optional, get_type_hints

from parsers.event import Event
from plugin.kql import has_any_matcher


def _loaded_on_first_use(name: str) -> Any:
    """Module ``name``, run only when one of its attributes is first read."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = sys.modules[name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pp = _loaded_on_first_use("pyparsing")

Predicate = Callable[[Event, str, str], bool]
_Reader = Callable[[Event, str, str], Any]

APPLIES_TO = ("failures", "signins", "both")

ATTRIBUTED_IP = "attributed ip"  # the address the profile charged the event to (syslog: message)
ATTRIBUTED_USER = "attributed user"  # the account it charged (sshd user, TargetUserName, UPN)

# Column names an exclusion may use -> where the value comes from: an Event field, or what the
# profile attributed to the event. Names follow the Sentinel tables, so a where line copied
# from a Sentinel query means the same here. Column names are case-sensitive, as in KQL.
FIELDS: dict[str, str] = {
    "IpAddress": ATTRIBUTED_IP,
    "IPAddress": ATTRIBUTED_IP,
    "SourceIP": ATTRIBUTED_IP,
    "TargetUserName": ATTRIBUTED_USER,
    "UserName": ATTRIBUTED_USER,
    "Type": "table",
    "TimeGenerated": "time",
    "Computer": "computer",
    "HostName": "computer",
    "EventID": "event_id",
    "LogonType": "logon_type",
    "TargetDomainName": "target_domain",
    "SubjectUserName": "subject_user",
    "WorkstationName": "workstation",
    "ProcessName": "process_name",
    "LogonProcessName": "logon_process",
    "AuthenticationPackageName": "auth_package",
    "Status": "status",
    "SubStatus": "sub_status",
    "Facility": "facility",
    "ProcessID": "process_id",
    "SyslogMessage": "message",
    "UserPrincipalName": "user_principal_name",
    "ResultType": "result_type",
    "Id": "record_id",
    "AppDisplayName": "app_display_name",
    "ClientAppUsed": "client_app",
    "UserAgent": "user_agent",
    "Location": "location",
}

# Columns that are numbers, as in Sentinel (except TimeGenerated, a datetime there: here seconds
# since the epoch); all others are strings. ResultType is a string in SigninLogs too, where
# ResultType == 0 is a type error as it is here.
NUMBER_FIELDS = frozenset({"EventID", "LogonType", "ProcessID", "TimeGenerated"})


class ExclusionError(ValueError):
    """A bad exclusion, in one line that names it and points at the column of the problem."""


@dataclass(eq=False)
class Exclusion:
    """One compiled exclusion. Its definition is not meant to change after loading;
    ``removed`` is the engine's count of the events it excluded (a plain int attribute: the
    cheapest counter there is, ``exclusion.removed += 1``)."""

    name: str
    applies_to: str  # one of APPLIES_TO
    where: str
    predicate: Predicate = field(repr=False)
    ip_gate: Optional[Callable[[str], bool]] = field(default=None, repr=False)  # see ExclusionChain
    removed: int = 0


def load_exclusions(entries: list[dict]) -> list[Exclusion]:
    """Validate and compile the ``[[exclusion]]`` tables of the configuration, in order.

    Each entry needs exactly ``name`` (non-empty, unique), ``applies_to`` (failures | signins |
    both) and ``where``; anything else is an :class:`ExclusionError` naming the exclusion.
    """
    if not isinstance(entries, list):
        raise ExclusionError("exclusions must be a list of tables: write [[exclusion]] in TOML")
    exclusions = []
    names = set()
    for position, entry in enumerate(entries, 1):
        label = f"exclusion #{position}"
        if not isinstance(entry, dict):
            raise ExclusionError(f"{label}: expected a table with name, applies_to and where")
        unknown = sorted(set(entry) - {"name", "applies_to", "where"})
        if unknown:
            raise ExclusionError(
                f"{label}: unknown key {unknown[0]!r} (expected name, applies_to and where)"
            )
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ExclusionError(f"{label}: 'name' must be a non-empty string")
        label = f'exclusion "{name}"'
        if name in names:
            raise ExclusionError(f"{label}: the name is used by an earlier exclusion")
        names.add(name)
        applies_to = entry.get("applies_to")
        if applies_to not in APPLIES_TO:
            raise ExclusionError(
                f"{label}: 'applies_to' must be failures, signins or both, not {applies_to!r}"
            )
        where = entry.get("where")
        if not isinstance(where, str) or not where.strip():
            raise ExclusionError(f"{label}: 'where' must be a non-empty KQL condition")
        try:
            tree, predicate = _compile_text(where)
        except ExclusionError as error:
            raise ExclusionError(f"{label}: {error}") from None
        exclusions.append(Exclusion(name, applies_to, where, predicate, _ip_gate(tree)))
    return exclusions


def _sources_read(node: "_Node") -> frozenset:
    """The event fields (or the attributed ip / user) a parsed condition reads."""
    if node.kind == "field":
        return frozenset((FIELDS[node.value],))
    found: frozenset = frozenset()
    for child in node.children:
        if isinstance(child, _Node):
            found |= _sources_read(child)
    return found


class ExclusionChain:
    """The exclusions that apply to one kind of event, in order; the first that holds wins.

    Most exclusions name addresses (``ipv4_is_in_range(IpAddress, ...) and ...``): such an
    exclusion cannot hold for an event whose address fails that part. Each exclusion's IP gate
    (a part of its condition that reads only the address and must hold for the whole to hold,
    when it has one) is checked once per address and remembered, so for an attacker's address,
    which passes no gate, an event costs one dict lookup. The gates come from the conditions
    themselves, so nothing is excluded that the conditions would not exclude. The memory is
    bounded (``MEMO_LIMIT`` addresses, then it starts again).
    """

    MEMO_LIMIT = 50_000

    def __init__(self, exclusions: "Iterable[Exclusion]") -> None:
        self.exclusions = tuple(exclusions)
        self._candidates: "dict[str, tuple]" = {}

    def __bool__(self) -> bool:
        return bool(self.exclusions)

    def first_match(self, event: Event, ip: str, user: str) -> Optional[Exclusion]:
        """The first exclusion whose condition holds for the event, or None."""
        candidates = self._candidates.get(ip)
        if candidates is None:
            candidates = self._remember(ip)
        for exclusion in candidates:
            if exclusion.predicate(event, ip, user):
                return exclusion
        return None

    def _remember(self, ip: str) -> tuple:
        """The exclusions, in order, that the address does not rule out."""
        if len(self._candidates) >= self.MEMO_LIMIT:
            self._candidates.clear()
        candidates = self._candidates[ip] = tuple(
            exclusion for exclusion in self.exclusions if exclusion.ip_gate is None or exclusion.ip_gate(ip)
        )
        return candidates


def _ip_gate(node: "_Node") -> Optional[Callable[[str], bool]]:
    """A condition on the attributed address alone that must hold for ``node`` to hold, or None.

    A boolean part that reads only the address is its own gate; ``a and b`` has the gates of
    both (any must hold); ``a or b`` has one only when both sides do (one of them must hold);
    anything else (``not`` of a mixed condition, a comparison of other columns) has none.
    """
    if _sources_read(node) == {ATTRIBUTED_IP}:
        value = _compile(node)
        if value.type == _BOOL:
            predicate = _as_predicate(value)
            return lambda ip: predicate(None, ip, "")
    if node.kind in ("and", "or"):
        gates = [_ip_gate(child) for child in node.children]
        if node.kind == "and":
            gates = [gate for gate in gates if gate is not None]
            if gates:
                return lambda ip: all(gate(ip) for gate in gates)
        elif all(gate is not None for gate in gates):
            return lambda ip: any(gate(ip) for gate in gates)
    return None


def compile_where(text: str) -> Predicate:
    """Compile a KQL ``where`` condition into ``predicate(event, ip, user) -> bool``.

    ``ip`` and ``user`` are what the profile attributed to the event (``IpAddress``,
    ``TargetUserName`` and their aliases read them); every other column reads the event.
    Raises :class:`ExclusionError` with the column of the first problem.

    >>> veeam = compile_where('ProcessName has "veeam" and not(ipv4_is_private(IpAddress))')
    >>> veeam(Event("Syslog", 0.0, "syslog", process_name="veeam-agent"), "203.0.113.9", "root")
    True
    """
    return _compile_text(text)[1]


def _compile_text(text: str) -> "tuple[_Node, Predicate]":
    """The parsed condition and its predicate (see compile_where)."""
    try:
        tree = _where_grammar().parse_string(text)[0]
        condition = _compile(tree)
        if condition.type != _BOOL:
            raise _Problem(
                _start(tree),
                f"the condition must be true or false, but {_describe(tree)} is {condition.type}",
            )
    except _Problem as problem:
        where = _position(text, problem.loc)
        raise ExclusionError(f"{problem.message} at {where}{problem.detail}") from None
    return tree, _as_predicate(condition)


def _as_predicate(condition: "_Value") -> Predicate:
    """A compiled true-or-false condition as ``predicate(event, ip, user) -> bool``."""
    if condition.read is None:
        constant = condition.constant is True
        return lambda event, ip, user: constant
    if condition.nullable:  # a where treats null as false
        read = condition.read
        return lambda event, ip, user: read(event, ip, user) is True
    return condition.read


class _Problem(Exception):
    """A syntax or type error at ``loc``; compile_where turns it into an ExclusionError."""

    def __init__(self, loc: int, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.loc, self.message, self.detail = loc, message, detail


def _position(text: str, loc: int) -> str:
    """``column N`` (1-based), with the line too when the condition spans several."""
    if "\n" in text:
        return f"line {pp.lineno(loc, text)}, column {pp.col(loc, text)}"
    return f"column {pp.col(loc, text)}"


# --- Grammar: text -> tree of _Node -------------------------------------------------------------


@dataclass(frozen=True)
class _Node:
    """One piece of the parsed condition and where it starts, for error messages."""

    kind: str  # literal | list | field | call | compare | and | or
    loc: int
    value: Any = None  # the literal, the field or function name, the operator
    children: tuple = ()


_WORD_END = r"(?![A-Za-z0-9_])"
_COMPARISON_OPERATORS = ("==", "!=", "=~", "!~", "<", "<=", ">", ">=")
_TEXT_OPERATORS = (
    "has", "has_cs", "contains", "contains_cs",
    "startswith", "startswith_cs", "endswith", "endswith_cs",
)  # fmt: skip
_REGEX_OPERATOR = "matches regex"
_LIST_OPERATORS = ("in", "!in", "in~", "!in~", "has_any", "has_all")
_OPERATORS = (
    _COMPARISON_OPERATORS
    + _TEXT_OPERATORS
    + tuple("!" + name for name in _TEXT_OPERATORS)
    + (_REGEX_OPERATOR,)
    + _LIST_OPERATORS
)
_BOOL_WORDS = ("true", "false", "True", "False", "TRUE", "FALSE")
_RESERVED = ("and", "or", "not", "dynamic", "matches") + _BOOL_WORDS + tuple(
    name for name in _OPERATORS if name.isidentifier()
)
_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "t": "\t"}
_INTEGER_TEXT = re.compile(r"[+-]?\d+")
_REAL_TEXT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_TOKEN = re.compile(r"""@?"[^"\n]*"?|@?'[^'\n]*'?|[A-Za-z0-9_.]+|[!=<>]=?~?|\S""")


def _token_at(text: str, loc: int) -> str:
    """The token that stands at ``loc`` (shortened), or 'the end'."""
    token = _TOKEN.match(text, loc)
    if token is None:
        return "the end"
    shown = token.group()
    return repr(shown if len(shown) <= 30 else shown[:27] + "...")


def _required(element: pp.ParserElement, expected: str) -> pp.ParserElement:
    """``element``, or a syntax error saying what was ``expected`` where it is missing."""

    def missing(text: str, loc: int, tokens: pp.ParseResults) -> None:
        raise _Problem(loc, f"expected {expected}", f", found {_token_at(text, loc)}")

    return element | pp.Empty().set_parse_action(missing)


def _unescape(text: str, loc: int, tokens: pp.ParseResults) -> _Node:
    """A quoted KQL string: \\\\ \\" \\' \\n \\t escapes; any other escape is an error."""
    quoted = tokens[0]

    def replace(escape: re.Match) -> str:
        character = escape.group(1)
        if character not in _ESCAPES:
            raise _Problem(
                loc + 1 + escape.start(),
                f"unknown escape '\\{character}' in a string",
                ' (write \\\\ for a backslash, or use a verbatim string @"...")',
            )
        return _ESCAPES[character]

    return _Node("literal", loc, re.sub(r"\\(.)", replace, quoted[1:-1]))


def _verbatim(text: str, loc: int, tokens: pp.ParseResults) -> _Node:
    """A verbatim KQL string ``@"..."``/``@'...'``: no escapes, a doubled quote is one quote."""
    quote = tokens[0][1]
    return _Node("literal", loc, tokens[0][2:-1].replace(quote * 2, quote))


def _number(text: str, loc: int, tokens: pp.ParseResults) -> _Node:
    literal = tokens[0]
    value = int(literal) if _INTEGER_TEXT.fullmatch(literal) else float(literal)
    return _Node("literal", loc, value)


def _unterminated(text: str, loc: int, tokens: pp.ParseResults) -> None:
    raise _Problem(loc, "unterminated string", " (it must end, on the same line, with its quote)")


def _unexpected(text: str, loc: int, tokens: pp.ParseResults) -> None:
    if text[loc] == ")":
        raise _Problem(loc, "unbalanced ')'", " (no '(' before it is open)")
    raise _Problem(loc, f"unexpected {_token_at(text, loc)}", " (expected 'and', 'or' or the end)")


def _chain(kind: str) -> Callable[[str, int, pp.ParseResults], _Node]:
    """Parse action for ``a and b and c``: one node with every operand (or the operand alone)."""

    def build(text: str, loc: int, tokens: pp.ParseResults) -> _Node:
        return tokens[0] if len(tokens) == 1 else _Node(kind, loc, None, tuple(tokens))

    return build


def _predicate(text: str, loc: int, tokens: pp.ParseResults) -> _Node:
    if len(tokens) == 1:
        return tokens[0]
    left, operator_node, right = tokens
    return _Node("compare", operator_node.loc, operator_node.value, (left, right))


def _operator_pattern(spelling: str) -> str:
    if spelling == _REGEX_OPERATOR:
        return r"matches\s+regex" + _WORD_END
    return re.escape(spelling) + (_WORD_END if spelling[-1].isalnum() else "")


@lru_cache(maxsize=None)
def _where_grammar() -> pp.ParserElement:
    """The KQL subset of a where clause; built once, when the first condition is parsed."""
    lpar, rpar, comma, lbracket, rbracket = (pp.Suppress(c) for c in "(),[]")
    keyword = {
        word: pp.Suppress(pp.Regex(word + _WORD_END)) for word in ("and", "or", "not", "dynamic")
    }
    identifier = pp.Regex(f"(?!(?:{'|'.join(_RESERVED)}){_WORD_END})[A-Za-z_][A-Za-z0-9_]*")
    expression = pp.Forward()

    verbatim = pp.Regex(r'@"(?:[^"\n]|"")*"|' r"@'(?:[^'\n]|'')*'")
    quoted = pp.Regex(r'"(?:[^"\\\n]|\\[^\n])*"|' r"'(?:[^'\\\n]|\\[^\n])*'")
    number = pp.Regex(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?(?![A-Za-z0-9_.])")
    boolean = pp.Regex(f"(?:{'|'.join(_BOOL_WORDS)}){_WORD_END}")
    literal = (
        verbatim.set_parse_action(_verbatim)
        | quoted.set_parse_action(_unescape)
        | number.set_parse_action(_number)
        | boolean.set_parse_action(
            lambda text, loc, tokens: _Node("literal", loc, tokens[0].lower() == "true")
        )
    )
    array = pp.Forward()
    array_item = literal | array
    array <<= (
        lbracket
        + pp.Opt(array_item + pp.ZeroOrMore(comma + _required(array_item, "a value after ','")))
        + _required(rbracket, "',' or ']'")
    ).set_parse_action(lambda text, loc, tokens: _Node("list", loc, None, tuple(tokens)))
    dynamic = (
        keyword["dynamic"]
        + _required(lpar, "'(' after 'dynamic'")
        + _required(array, "'[' (KQL writes dynamic([...]))")
        + _required(rpar, "')' to close dynamic(")
    ).set_parse_action(lambda text, loc, tokens: _Node("list", loc, None, tokens[0].children))
    negation = (
        keyword["not"]
        + _required(lpar, "'(' after 'not' (KQL writes not(...))")
        + _required(expression, "a condition inside not(...)")
        + _required(rpar, "')' to close not(")
    ).set_parse_action(lambda text, loc, tokens: _Node("call", loc, "not", tuple(tokens)))
    arguments = expression + pp.ZeroOrMore(comma + _required(expression, "an argument after ','"))
    call = (
        identifier + lpar + pp.Opt(arguments) + _required(rpar, "',' or ')' after the argument")
    ).set_parse_action(lambda text, loc, tokens: _Node("call", loc, tokens[0], tuple(tokens[1:])))
    column = identifier.copy().set_parse_action(
        lambda text, loc, tokens: _Node("field", loc, tokens[0])
    )
    group = lpar + _required(expression, "a condition after '('") + _required(rpar, "')'")
    unterminated = pp.Regex(r"""@?["']""").set_parse_action(_unterminated)
    operand = literal | dynamic | negation | call | column | group | unterminated

    value_list = dynamic | (
        lpar
        + _required(operand, "a value")
        + pp.ZeroOrMore(comma + _required(operand, "a value after ','"))
        + _required(rpar, "',' or ')'")
    ).set_parse_action(lambda text, loc, tokens: _Node("list", loc, None, tuple(tokens)))
    clauses = []
    for spelling in sorted(_OPERATORS, key=len, reverse=True):  # longest first: <= before <
        token = pp.Regex(_operator_pattern(spelling)).set_parse_action(
            lambda text, loc, tokens, spelling=spelling: _Node("operator", loc, spelling)
        )
        if spelling in _LIST_OPERATORS:
            right = _required(value_list, f"a list like ('a', 'b') after '{spelling}'")
        else:
            right = _required(operand, f"a value after '{spelling}'")
        clauses.append(token + right)
    predicate = (operand + pp.Opt(pp.MatchFirst(clauses))).set_parse_action(_predicate)
    # not(...) is an operand, so precedence is not > and > or
    and_part = keyword["and"] + _required(predicate, "a condition after 'and'")
    conjunction = (predicate + pp.ZeroOrMore(and_part)).set_parse_action(_chain("and"))
    or_part = keyword["or"] + _required(conjunction, "a condition after 'or'")
    disjunction = (conjunction + pp.ZeroOrMore(or_part)).set_parse_action(_chain("or"))
    expression <<= disjunction
    end = pp.StringEnd() | pp.Empty().set_parse_action(_unexpected)
    where = _required(expression, "a condition") + end
    where.ignore(pp.Regex(r"//[^\n]*"))  # KQL comments, so lines copied from Sentinel keep them
    # parse_with_tabs: pyparsing would expand tabs, shifting columns and changing strings
    return where.parse_with_tabs()


# --- Compiler: tree -> closures -----------------------------------------------------------------

# Types, spelled as messages use them.
_STRING, _NUMBER, _BOOL, _LIST = "a string", "a number", "true or false", "a list"
_SCALAR = "a value"  # a parameter that takes a string, a number or a bool


@dataclass(frozen=True)
class _Value:
    """A compiled expression: a constant (``read`` is None) or a reader called per event."""

    type: str
    constant: Any = None
    read: Optional[_Reader] = None
    nullable: bool = False  # the reader may return None, KQL's null
    source: Optional[str] = None  # a FIELDS value when this is a bare column: read in place


def _constant(type_: str, value: Any) -> _Value:
    return _Value(type_, constant=value, nullable=value is None)


def _reader(value: _Value) -> _Reader:
    if value.read is not None:
        return value.read
    constant = value.constant
    return lambda event, ip, user: constant


def _apply(
    value: _Value, function: Callable[[Any], Any], type_: str, nullable: bool = False
) -> _Value:
    """``function(value)``: folded now when constant, else one reader; a bare column is read in
    place (an argument or a tuple index), which saves a call per event."""
    if value.read is None:
        return _constant(type_, function(value.constant))
    if value.source == ATTRIBUTED_IP:
        read = lambda event, ip, user: function(ip)
    elif value.source == ATTRIBUTED_USER:
        read = lambda event, ip, user: function(user)
    elif value.source is not None:
        index = Event._fields.index(value.source)
        read = lambda event, ip, user: function(event[index])
    else:
        inner = value.read
        read = lambda event, ip, user: function(inner(event, ip, user))
    return _Value(type_, read=read, nullable=nullable)


def _combine(
    left: _Value, right: _Value, function: Callable[[Any, Any], Any], nullable: bool
) -> _Value:
    """``function(left, right)`` as a condition, binding whichever side is constant."""
    if right.read is None:
        constant = right.constant
        return _apply(left, lambda value: function(value, constant), _BOOL, nullable)
    if left.read is None:
        constant = left.constant
        return _apply(right, lambda value: function(constant, value), _BOOL, nullable)
    read_left, read_right = left.read, right.read

    def read(event: Event, ip: str, user: str) -> Any:
        return function(read_left(event, ip, user), read_right(event, ip, user))

    return _Value(_BOOL, read=read, nullable=nullable)


_EVENT_TYPES = get_type_hints(Event)


def _column_value(name: str, source: str) -> _Value:
    if source == ATTRIBUTED_IP:
        return _Value(_STRING, read=lambda event, ip, user: ip, source=source)
    if source == ATTRIBUTED_USER:
        return _Value(_STRING, read=lambda event, ip, user: user, source=source)
    index = Event._fields.index(source)
    if name not in NUMBER_FIELDS:
        return _Value(_STRING, read=lambda event, ip, user: event[index], source=source)
    if _EVENT_TYPES[source] is str:  # Sentinel's Syslog.ProcessID is a number; the Event keeps text
        read = lambda event, ip, user: _integer_or_null(event[index])
        return _Value(_NUMBER, read=read, nullable=True)
    nullable = type(None) in getattr(_EVENT_TYPES[source], "__args__", ())  # LogonType: Optional
    read = lambda event, ip, user: event[index]
    return _Value(_NUMBER, read=read, nullable=nullable, source=source)


def _integer_or_null(text: str) -> Optional[int]:
    return int(text) if text.isascii() and text.isdigit() else None


_COLUMNS = {name: _column_value(name, source) for name, source in FIELDS.items()}


def _compile(node: _Node) -> _Value:
    if node.kind == "literal":
        return _constant(_type_of(node.value), node.value)
    if node.kind == "field":
        return _column(node)
    if node.kind == "call":
        return _call(node)
    if node.kind in ("and", "or"):
        return _logical(node)
    if node.kind == "list":  # a list literal outside in/has_any/has_all: only its type matters
        return _Value(_LIST)
    return _compare(node)


def _type_of(literal: Any) -> str:
    return _BOOL if isinstance(literal, bool) else _STRING if isinstance(literal, str) else _NUMBER


def _column(node: _Node) -> _Value:
    name = node.value
    if name in _COLUMNS:
        return _COLUMNS[name]
    if name in _FUNCTIONS:
        raise _Problem(node.loc, f"'{name}' is a function", f" (write {name}(...))")
    raise _Problem(node.loc, f"unknown field '{name}'", _suggestion(name, _COLUMNS))


def _suggestion(name: str, known: dict) -> str:
    close = [k for k in known if k.lower() == name.lower()]
    close = close or difflib.get_close_matches(name, known, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _start(node: _Node) -> int:
    """Where an expression begins (a comparison's node sits at its operator)."""
    return _start(node.children[0]) if node.kind == "compare" else node.loc


def _describe(node: _Node) -> str:
    if node.kind == "field":
        return node.value
    if node.kind == "literal":
        value = node.value
        return f'"{value}"' if isinstance(value, str) else str(value).lower()
    if node.kind == "call":
        return f"{node.value}(...)"
    return "the list" if node.kind == "list" else "the condition"


def _expect(value: _Value, type_: str, node: _Node, who: str) -> None:
    if value.type != type_:
        raise _Problem(_start(node), f"{who} needs {type_}, but {_describe(node)} is {value.type}")


def _logical(node: _Node) -> _Value:
    """``a and b and c`` as ``a and (b and c)``: nested pairs cost less per event than a loop."""
    parts = [_compile(child) for child in node.children]
    for part, child in zip(parts, node.children):
        _expect(part, _BOOL, child, f"'{node.kind}'")
    combined = parts[-1]
    for part in reversed(parts[:-1]):
        combined = _pair(part, combined, decisive=node.kind == "or")
    return combined


def _pair(first: _Value, second: _Value, decisive: bool) -> _Value:
    """``first or second`` (``decisive`` True) or ``first and second`` (False), short-circuit;
    with KQL's three-valued logic when a side can be null (null or false is null)."""
    one, other = _reader(first), _reader(second)
    if not (first.nullable or second.nullable):
        if decisive:
            read = lambda event, ip, user: one(event, ip, user) or other(event, ip, user)
        else:
            read = lambda event, ip, user: one(event, ip, user) and other(event, ip, user)
        return _Value(_BOOL, read=read)

    def read_nullable(event: Event, ip: str, user: str) -> Optional[bool]:
        value_first = one(event, ip, user)
        if value_first is decisive:
            return decisive
        value_second = other(event, ip, user)
        if value_second is decisive:
            return decisive
        return None if value_first is None or value_second is None else not decisive

    return _Value(_BOOL, read=read_nullable, nullable=True)


def _null_aware(
    compare: Callable[[Any, Any], bool], equality: bool
) -> Callable[[Any, Any], Optional[bool]]:
    """KQL null: value ==/!= null is false/true, null ==/!= null is null, null < value is null."""
    if equality:
        return lambda left, right: None if left is None and right is None else compare(left, right)
    return lambda left, right: None if left is None or right is None else compare(left, right)


_ORDERINGS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _compare(node: _Node) -> _Value:
    spelling = node.value
    left_node, right_node = node.children
    if spelling in _LIST_OPERATORS:
        return _membership(node)
    left, right = _compile(left_node), _compile(right_node)
    for value, side in ((left, left_node), (right, right_node)):
        if value.type == _LIST:
            message = "a list may only follow in, !in, in~, !in~, has_any or has_all"
            raise _Problem(side.loc, message)
    if spelling.lstrip("!") in _TEXT_OPERATORS or spelling == _REGEX_OPERATOR:
        return _text_match(node, left, right)
    equality = spelling in ("==", "!=", "=~", "!~")
    if spelling in ("=~", "!~"):
        _expect(left, _STRING, left_node, f"'{spelling}'")
        _expect(right, _STRING, right_node, f"'{spelling}'")
        left, right = _apply(left, _fold, _STRING), _apply(right, _fold, _STRING)
        compare = operator.eq if spelling == "=~" else operator.ne
    elif spelling in _ORDERINGS:
        _expect(left, _NUMBER, left_node, f"'{spelling}'")
        _expect(right, _NUMBER, right_node, f"'{spelling}'")
        compare = _ORDERINGS[spelling]
    else:
        if left.type != right.type:
            left_text = f"{_describe(left_node)} ({left.type})"
            right_text = f"{_describe(right_node)} ({right.type})"
            raise _Problem(
                node.loc,
                f"cannot compare {left_text} with {right_text}",
                " (KQL does not convert between types here)",
            )
        compare = operator.eq if spelling == "==" else operator.ne
    return _comparison(left, right, compare, equality)


_SWAPPED = {
    operator.eq: operator.eq,
    operator.ne: operator.ne,
    operator.lt: operator.gt,
    operator.le: operator.ge,
    operator.gt: operator.lt,
    operator.ge: operator.le,
}


def _comparison(
    left: _Value, right: _Value, compare: Callable[[Any, Any], bool], equality: bool
) -> _Value:
    """``left compare right`` with KQL's null rules. The usual shape, a column against a
    constant, costs one reader and a C-level ``partial`` per event."""
    if left.read is not None and right.read is None and not right.nullable:
        constant = right.constant
        if left.nullable and not equality:  # null < 5 is null; null == 5 is false, as in Python
            test = lambda value: None if value is None else compare(value, constant)
            return _apply(left, test, _BOOL, nullable=True)
        return _apply(left, partial(_SWAPPED[compare], constant), _BOOL)
    if left.nullable or right.nullable:
        compare = _null_aware(compare, equality)
    nullable = (left.nullable and right.nullable) if equality else (left.nullable or right.nullable)
    return _combine(left, right, compare, nullable)


# --- String operators ---------------------------------------------------------------------------

_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def _fold(text: str) -> str:
    """Lower-case ASCII letters only: KQL's case-insensitive operators fold ASCII, not Unicode."""
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)


def _contains(needle: str) -> Callable[[str], bool]:
    folded = _fold(needle)
    return lambda text: folded in _fold(text)


def _startswith(needle: str) -> Callable[[str], bool]:
    folded, size = _fold(needle), len(needle)  # ASCII folding keeps lengths, so slice first
    return lambda text: _fold(text[:size]) == folded


def _endswith(needle: str) -> Callable[[str], bool]:
    folded, size = _fold(needle), len(needle)
    if not size:
        return lambda text: True
    return lambda text: _fold(text[-size:]) == folded


_TEXT_TESTS: dict[str, Callable[[str], Callable[[str], bool]]] = {
    "has": lambda needle: has_any_matcher((needle,)),
    "has_cs": lambda needle: has_any_matcher((needle,), True),
    "contains": _contains,
    "contains_cs": lambda needle: lambda text: needle in text,
    "startswith": _startswith,
    "startswith_cs": lambda needle: operator.methodcaller("startswith", needle),
    "endswith": _endswith,
    "endswith_cs": lambda needle: operator.methodcaller("endswith", needle),
}


def _negated(test: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: not test(value)


def _constant_operand(value: _Value, node: _Node, who: str, type_: str) -> Any:
    """The value of an operand that must be known at start (needles, patterns, ranges, lists)."""
    if value.read is not None:
        raise _Problem(
            _start(node), f"{who} needs a constant, but {_describe(node)} changes per event"
        )
    _expect(value, type_, node, who)
    return value.constant


def _text_match(node: _Node, left: _Value, right: _Value) -> _Value:
    spelling = node.value
    left_node, right_node = node.children
    _expect(left, _STRING, left_node, f"'{spelling}'")
    needle = _constant_operand(right, right_node, f"'{spelling}'", _STRING)
    if spelling == _REGEX_OPERATOR:
        try:
            search = re.compile(needle).search
        except re.error as error:
            raise _Problem(right_node.loc, f"bad regex {needle!r}: {error.msg}") from None
        test = lambda text: search(text) is not None
    else:
        test = _TEXT_TESTS[spelling.lstrip("!")](needle)
    return _apply(left, _negated(test) if spelling.startswith("!") else test, _BOOL)


# --- Lists: in, in~, has_any, has_all -----------------------------------------------------------


def _list_items(node: _Node) -> list:
    """The constants of a list node, nested lists flattened as KQL does: (value, node) pairs."""
    items = []
    for child in node.children:
        if child.kind == "list":
            items.extend(_list_items(child))
        else:
            value = _compile(child)
            items.append((_constant_operand(value, child, "a list", value.type), child))
    return items


def _number_text(number: float) -> str:
    """KQL's tostring() of a number: 10 and 10.0 are both "10"."""
    return str(int(number)) if isinstance(number, int) or number.is_integer() else repr(number)



def _list_value(value: Any, node: _Node, type_: str, spelling: str) -> Any:
    """A list item as the left side's type. KQL converts in ``in`` lists (and only there, which
    is why the rule's WindowsEvent string LogonType in (10, 7, 3) works): a number becomes its
    text beside a string, a numeric string its number beside a number."""
    kind = _type_of(value)
    if kind == type_:
        return value
    if type_ == _STRING and kind == _NUMBER:
        return _number_text(value)
    if type_ == _NUMBER and kind == _STRING and _REAL_TEXT.fullmatch(value):
        return int(value) if _INTEGER_TEXT.fullmatch(value) else float(value)
    raise _Problem(node.loc, f"'{spelling}' compares {type_}, but {_describe(node)} is {kind}")


def _membership(node: _Node) -> _Value:
    spelling = node.value
    left_node, list_node = node.children
    left = _compile(left_node)
    if left.type == _LIST:
        raise _Problem(left_node.loc, f"'{spelling}' needs a value on its left, not a list")
    if spelling in ("in", "!in"):
        items = _list_items(list_node)
        values = frozenset(_list_value(value, item, left.type, spelling) for value, item in items)
        test = values.__contains__  # null is in no list: in is false, !in true (as == and !=)
    else:
        _expect(left, _STRING, left_node, f"'{spelling}'")
        items = _list_items(list_node)
        texts = tuple(_list_value(value, item, _STRING, spelling) for value, item in items)
        if spelling in ("in~", "!in~"):
            folded = frozenset(_fold(text) for text in texts)
            test = lambda text: _fold(text) in folded
        elif spelling == "has_any":
            test = has_any_matcher(texts)
        else:
            matchers = tuple(has_any_matcher((text,)) for text in texts)
            test = lambda text: all(matcher(text) for matcher in matchers)
    return _apply(left, _negated(test) if spelling.startswith("!") else test, _BOOL)


# --- Functions ----------------------------------------------------------------------------------


@lru_cache(maxsize=65536)
def _ipv4_number(text: str) -> Optional[int]:
    """The IPv4 address as an int, None when ``text`` is not one. Cached: streams repeat."""
    try:
        return int(ipaddress.IPv4Address(text))
    except ValueError:
        return None


_IPV4_MAPPED = 0xFFFF << 32


@lru_cache(maxsize=65536)
def _ipv6_number(text: str) -> Optional[int]:
    """The IPv6 address as an int; an IPv4 address counts as its IPv4-mapped form, as in KQL."""
    try:
        return int(ipaddress.IPv6Address(text))
    except ValueError:
        number = _ipv4_number(text)
        return None if number is None else _IPV4_MAPPED | number


def _range_test(
    networks: tuple, number_of: Callable[[str], Optional[int]]
) -> Callable[[str], Optional[bool]]:
    """``address in any of networks``, on ints precomputed now; null when not an address."""
    ranges = tuple((int(network.network_address), int(network.netmask)) for network in networks)
    if len(ranges) == 1:
        ((base, mask),) = ranges

        def in_range(text: str) -> Optional[bool]:
            number = number_of(text)
            return None if number is None else number & mask == base

    else:

        def in_range(text: str) -> Optional[bool]:
            number = number_of(text)
            if number is None:
                return None
            for base, mask in ranges:
                if number & mask == base:
                    return True
            return False

    return in_range


def _ipv4_network(value: _Value, node: _Node) -> ipaddress.IPv4Network:
    text = _constant_operand(value, node, "the range", _STRING)
    try:
        return ipaddress.IPv4Network(text, strict=False)
    except ValueError:
        detail = ' (expected "a.b.c.d/n" or "a.b.c.d")'
        raise _Problem(node.loc, f"bad IPv4 range {text!r}", detail) from None


def _ipv6_network(value: _Value, node: _Node) -> ipaddress.IPv6Network:
    text = _constant_operand(value, node, "the range", _STRING)
    try:
        return ipaddress.IPv6Network(text, strict=False)
    except ValueError:
        try:
            network = ipaddress.IPv4Network(text, strict=False)
        except ValueError:
            raise _Problem(node.loc, f"bad IPv6 range {text!r}", ' (expected "prefix/n")') from None
        mapped = _IPV4_MAPPED | int(network.network_address)
        return ipaddress.IPv6Network((mapped, 96 + network.prefixlen))


def _ipv4_is_in_range(args: list, nodes: tuple) -> _Value:
    address, cidr = args
    test = _range_test((_ipv4_network(cidr, nodes[1]),), _ipv4_number)
    return _apply(address, test, _BOOL, nullable=True)


def _ipv6_is_in_range(args: list, nodes: tuple) -> _Value:
    address, prefix = args
    test = _range_test((_ipv6_network(prefix, nodes[1]),), _ipv6_number)
    return _apply(address, test, _BOOL, nullable=True)


# KQL's ipv4_is_private: the RFC 1918 ranges only (not loopback or link-local)
_PRIVATE_IPV4 = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
_IS_PRIVATE_IPV4 = _range_test(tuple(map(ipaddress.IPv4Network, _PRIVATE_IPV4)), _ipv4_number)


def _not(args: list, nodes: tuple) -> _Value:
    (condition,) = args
    if condition.nullable:
        negate = lambda value: None if value is None else not value
        return _apply(condition, negate, _BOOL, nullable=True)
    return _apply(condition, operator.not_, _BOOL)


def _isempty(args: list, nodes: tuple) -> _Value:
    (value,) = args
    return _apply(value, "".__eq__ if value.type == _STRING else (lambda v: v is None), _BOOL)


def _isnotempty(args: list, nodes: tuple) -> _Value:
    (value,) = args
    return _apply(value, "".__ne__ if value.type == _STRING else (lambda v: v is not None), _BOOL)


def _tostring(args: list, nodes: tuple) -> _Value:
    (value,) = args
    if value.type == _STRING:
        return value
    if value.type == _NUMBER:
        return _apply(value, lambda number: "" if number is None else _number_text(number), _STRING)
    return _apply(value, lambda flag: "" if flag is None else str(flag).lower(), _STRING)


# name -> (parameter types, builder(arguments, argument nodes)); the ip functions return null for
# text that is not an address, as KQL does: a where treats it as false, and so does not(null).
_FUNCTIONS: dict[str, tuple] = {
    "not": ((_BOOL,), _not),
    "isempty": ((_SCALAR,), _isempty),
    "isnotempty": ((_SCALAR,), _isnotempty),
    "tolower": ((_STRING,), lambda args, nodes: _apply(args[0], str.lower, _STRING)),
    "toupper": ((_STRING,), lambda args, nodes: _apply(args[0], str.upper, _STRING)),
    "strlen": ((_STRING,), lambda args, nodes: _apply(args[0], len, _NUMBER)),
    "tostring": ((_SCALAR,), _tostring),
    "ipv4_is_in_range": ((_STRING, _STRING), _ipv4_is_in_range),
    "ipv4_is_private": (
        (_STRING,),
        lambda args, nodes: _apply(args[0], _IS_PRIVATE_IPV4, _BOOL, nullable=True),
    ),
    "ipv6_is_in_range": ((_STRING, _STRING), _ipv6_is_in_range),
}


def _call(node: _Node) -> _Value:
    name = node.value
    if name not in _FUNCTIONS:
        raise _Problem(node.loc, f"unknown function '{name}'", _suggestion(name, _FUNCTIONS))
    parameters, build = _FUNCTIONS[name]
    if len(node.children) != len(parameters):
        plural = "s" if len(parameters) > 1 else ""
        raise _Problem(
            node.loc, f"{name}() takes {len(parameters)} argument{plural}, not {len(node.children)}"
        )
    args = [_compile(child) for child in node.children]
    for parameter, value, child in zip(parameters, args, node.children):
        if parameter == _SCALAR:
            if value.type == _LIST:
                raise _Problem(child.loc, f"{name}() needs a single value, not a list")
        else:
            _expect(value, parameter, child, f"{name}()")
    return build(args, node.children)
