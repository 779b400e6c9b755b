"""The exclusion grammar: every operator and function both ways, KQL's case rules, null,
precedence, literals, error messages with their columns, and the shipped examples."""

import re
from pathlib import Path

import pytest

from parsers.event import SECURITY_EVENT, SIGNIN_LOGS, SYSLOG, WINDOWS_EVENT, Event
from plugin.exclusions import (
    ATTRIBUTED_IP,
    ATTRIBUTED_USER,
    FIELDS,
    NUMBER_FIELDS,
    Exclusion,
    ExclusionError,
    compile_where,
    load_exclusions,
)

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

EXAMPLES = Path(__file__).resolve().parent.parent / "conf" / "exclusions.example.toml"

WINDOWS_FAILURE = Event(
    SECURITY_EVENT,
    1_700_000_000.0,
    "windows-xml",
    ip="10.20.1.2",
    computer="FS01.contoso.local",
    event_id=4625,
    logon_type=3,
    target_user="Administrator",
    target_domain="CONTOSO",
    workstation="KALI",
    process_name=r"C:\Program Files\Veeam\Backup\Veeam.Backup.Service.exe",
    logon_process="NtLmSsp",
    auth_package="NTLM",
    status="0xc000006d",
    sub_status="0xC000006A",
)
SSH_FAILURE = Event(
    SYSLOG,
    1_700_000_100.0,
    "syslog",
    computer="web01",
    process_name="sshd",
    facility="authpriv",
    process_id="4242",
    program="sshd",
    message="Failed password for invalid user admin from 203.0.113.7 port 52144 ssh2",
)
SIGNIN = Event(
    SIGNIN_LOGS,
    1_700_000_200.0,
    "eventhub",
    ip="198.51.100.5",
    user_principal_name="Alice.Admin@contoso.com",
    result_type="0",
    record_id="7d6a1c2e-0000-4000-8000-000000000001",
    app_display_name="Azure Portal",
    client_app="Browser",
    user_agent="Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
    location="GB",
)
NO_LOGON_TYPE = WINDOWS_FAILURE._replace(table=WINDOWS_EVENT, logon_type=None)


def matches(where: str, event: Event = WINDOWS_FAILURE, ip: str = "", user: str = "") -> bool:
    """Compile ``where`` and run it on one event, with the profile's attributed ip and user."""
    return compile_where(where)(event, ip or event.ip, user or event.target_user)


def error_of(where: str) -> str:
    with pytest.raises(ExclusionError) as raised:
        compile_where(where)
    return str(raised.value)


# --- Operators, each both ways, with KQL's case rules -------------------------------------------

OPERATOR_CASES = [
    # == and != are case-sensitive
    ('ProcessName == "sshd"', SSH_FAILURE, True),
    ('ProcessName == "SSHD"', SSH_FAILURE, False),
    ('ProcessName != "SSHD"', SSH_FAILURE, True),
    ('ProcessName != "sshd"', SSH_FAILURE, False),
    # =~ and !~ are not
    ('ProcessName =~ "SSHD"', SSH_FAILURE, True),
    ('ProcessName =~ "ssh"', SSH_FAILURE, False),
    ('ProcessName !~ "ssh"', SSH_FAILURE, True),
    ('ProcessName !~ "SsHd"', SSH_FAILURE, False),
    # numbers, ints against reals
    ("EventID == 4625", WINDOWS_FAILURE, True),
    ("EventID == 4625.0", WINDOWS_FAILURE, True),
    ("EventID != 4625", WINDOWS_FAILURE, False),
    ("LogonType < 10", WINDOWS_FAILURE, True),
    ("LogonType < 3", WINDOWS_FAILURE, False),
    ("LogonType <= 3", WINDOWS_FAILURE, True),
    ("LogonType <= 2", WINDOWS_FAILURE, False),
    ("LogonType > 2", WINDOWS_FAILURE, True),
    ("LogonType > 3", WINDOWS_FAILURE, False),
    ("LogonType >= 3", WINDOWS_FAILURE, True),
    ("LogonType >= 3.5", WINDOWS_FAILURE, False),
    ("TimeGenerated >= 1700000000", WINDOWS_FAILURE, True),
    ("TimeGenerated < 1.7e9", WINDOWS_FAILURE, False),
    ("EventID > -1", WINDOWS_FAILURE, True),
    # in and !in are case-sensitive; in~ and !in~ are not
    ('TargetUserName in ("root", "Administrator")', WINDOWS_FAILURE, True),
    ('TargetUserName in ("root", "administrator")', WINDOWS_FAILURE, False),
    ('TargetUserName !in ("root", "administrator")', WINDOWS_FAILURE, True),
    ('TargetUserName !in ("Administrator")', WINDOWS_FAILURE, False),
    ('TargetUserName in~ ("root", "ADMINISTRATOR")', WINDOWS_FAILURE, True),
    ('TargetUserName in~ ("root", "admin")', WINDOWS_FAILURE, False),
    ('TargetUserName !in~ ("root", "admin")', WINDOWS_FAILURE, True),
    ('TargetUserName !in~ ("ADMINISTRATOR")', WINDOWS_FAILURE, False),
    ("LogonType in (10, 7, 3)", WINDOWS_FAILURE, True),
    ("LogonType in (10, 7)", WINDOWS_FAILURE, False),
    # has: whole terms, any case (plugin/kql.py); has_cs: whole terms, exact case
    ('SyslogMessage has "INVALID"', SSH_FAILURE, True),
    ('SyslogMessage has "pass"', SSH_FAILURE, False),
    ('SyslogMessage !has "pass"', SSH_FAILURE, True),
    ('SyslogMessage !has "failed"', SSH_FAILURE, False),
    ('SyslogMessage has_cs "Failed"', SSH_FAILURE, True),
    ('SyslogMessage has_cs "failed"', SSH_FAILURE, False),
    ('SyslogMessage !has_cs "failed"', SSH_FAILURE, True),
    ('SyslogMessage !has_cs "Failed"', SSH_FAILURE, False),
    ('SyslogMessage has "203.0.113.7"', SSH_FAILURE, True),
    ('SyslogMessage has "203.0.113"', SSH_FAILURE, True),
    ('SyslogMessage has "03.0.113.7"', SSH_FAILURE, False),
    ('SyslogMessage has_any ("Accepted", "INVALID")', SSH_FAILURE, True),
    ('SyslogMessage has_any ("Accepted", "disconnect")', SSH_FAILURE, False),
    ('SyslogMessage has_all ("failed", "PASSWORD", "from")', SSH_FAILURE, True),
    ('SyslogMessage has_all ("failed", "password", "Accepted")', SSH_FAILURE, False),
    # contains: substring, any case; contains_cs: exact case
    ('SyslogMessage contains "PASS"', SSH_FAILURE, True),
    ('SyslogMessage contains "passwd"', SSH_FAILURE, False),
    ('SyslogMessage !contains "passwd"', SSH_FAILURE, True),
    ('SyslogMessage !contains "PASS"', SSH_FAILURE, False),
    ('SyslogMessage contains_cs "pass"', SSH_FAILURE, True),
    ('SyslogMessage contains_cs "PASS"', SSH_FAILURE, False),
    ('SyslogMessage !contains_cs "PASS"', SSH_FAILURE, True),
    ('SyslogMessage !contains_cs "pass"', SSH_FAILURE, False),
    # startswith / endswith: any case; the _cs forms exact case
    ('ProcessName startswith "c:\\\\program files"', WINDOWS_FAILURE, True),
    ('ProcessName startswith "d:\\\\"', WINDOWS_FAILURE, False),
    ('ProcessName !startswith "d:\\\\"', WINDOWS_FAILURE, True),
    ('ProcessName !startswith "C:"', WINDOWS_FAILURE, False),
    ('ProcessName startswith_cs "C:"', WINDOWS_FAILURE, True),
    ('ProcessName startswith_cs "c:"', WINDOWS_FAILURE, False),
    ('ProcessName !startswith_cs "c:"', WINDOWS_FAILURE, True),
    ('ProcessName !startswith_cs "C:"', WINDOWS_FAILURE, False),
    ('ProcessName endswith "SERVICE.EXE"', WINDOWS_FAILURE, True),
    ('ProcessName endswith "service"', WINDOWS_FAILURE, False),
    ('ProcessName !endswith "service"', WINDOWS_FAILURE, True),
    ('ProcessName !endswith ".EXE"', WINDOWS_FAILURE, False),
    ('ProcessName endswith_cs ".exe"', WINDOWS_FAILURE, True),
    ('ProcessName endswith_cs ".EXE"', WINDOWS_FAILURE, False),
    ('ProcessName !endswith_cs ".EXE"', WINDOWS_FAILURE, True),
    ('ProcessName !endswith_cs ".exe"', WINDOWS_FAILURE, False),
    ('ProcessName endswith ""', WINDOWS_FAILURE, True),
    # matches regex: a search, case-sensitive unless the pattern says (?i)
    ('SyslogMessage matches regex "invalid user [a-z]+ from"', SSH_FAILURE, True),
    ('SyslogMessage matches regex "^failed"', SSH_FAILURE, False),
    ('SyslogMessage matches regex "(?i)^failed"', SSH_FAILURE, True),
    ('SyslogMessage  matches   regex  "ssh2$"', SSH_FAILURE, True),
]


@pytest.mark.parametrize("where, event, expected", OPERATOR_CASES)
def test_operator(where: str, event: Event, expected: bool) -> None:
    assert matches(where, event) is expected


def test_every_operator_has_a_true_and_a_false_case() -> None:
    """A new operator without both cases above fails here."""
    spellings = [
        "==", "!=", "=~", "!~", "<", "<=", ">", ">=", "in", "!in", "in~", "!in~",
        "has", "!has", "has_cs", "!has_cs", "has_any", "has_all",
        "contains", "!contains", "contains_cs", "!contains_cs",
        "startswith", "!startswith", "startswith_cs", "!startswith_cs",
        "endswith", "!endswith", "endswith_cs", "!endswith_cs", "matches regex",
    ]  # fmt: skip
    for spelling in spellings:
        pattern = re.compile(rf"(?<![\w!~=<>]){re.escape(spelling)}(?![\w~=])")
        outcomes = {expected for where, _, expected in OPERATOR_CASES if pattern.search(where)}
        assert outcomes == {True, False}, spelling


# --- Case-insensitivity folds ASCII only, as KQL documents ---------------------------------------


def test_caseless_operators_fold_ascii_only() -> None:
    event = WINDOWS_FAILURE._replace(target_user="JÉRÔME")
    assert matches('TargetUserName =~ "jÉrÔme"', event)
    assert not matches('TargetUserName =~ "jérôme"', event)
    assert not matches('TargetUserName in~ ("jérôme")', event)
    assert matches('tolower(TargetUserName) == "jérôme"', event)


# --- Functions ----------------------------------------------------------------------------------

FUNCTION_CASES = [
    ('isempty(WorkstationName)', SSH_FAILURE, True),
    ('isempty(WorkstationName)', WINDOWS_FAILURE, False),
    ('isnotempty(WorkstationName)', WINDOWS_FAILURE, True),
    ('isnotempty(WorkstationName)', SSH_FAILURE, False),
    ('isempty(LogonType)', NO_LOGON_TYPE, True),
    ('isempty(LogonType)', WINDOWS_FAILURE, False),
    ('isnotempty(LogonType)', WINDOWS_FAILURE, True),
    ('isnotempty(LogonType)', NO_LOGON_TYPE, False),
    ('ipv4_is_in_range(IpAddress, "10.20.0.0/16")', WINDOWS_FAILURE, True),
    ('ipv4_is_in_range(IpAddress, "10.21.0.0/16")', WINDOWS_FAILURE, False),
    ('ipv4_is_in_range(IpAddress, "10.20.1.2")', WINDOWS_FAILURE, True),
    ('ipv4_is_in_range(IpAddress, "10.20.1.99/16")', WINDOWS_FAILURE, True),  # host bits ignored
    ('ipv4_is_in_range("10.20.1.2", "10.20.1.0/24")', WINDOWS_FAILURE, True),
    ('ipv4_is_private(IpAddress)', WINDOWS_FAILURE, True),
    ('ipv4_is_private(IPAddress)', SIGNIN, False),
    ('ipv4_is_private("172.31.255.255")', SIGNIN, True),
    ('ipv4_is_private("172.32.0.1")', SIGNIN, False),
    ('ipv4_is_private("127.0.0.1")', SIGNIN, False),
    ('ipv4_is_private("192.168.10.10")', SIGNIN, True),
    ('ipv6_is_in_range(IpAddress, "10.20.0.0/16")', WINDOWS_FAILURE, True),  # IPv4 as mapped
    ('ipv6_is_in_range(IpAddress, "::ffff:10.20.0.0/112")', WINDOWS_FAILURE, True),
    ('ipv6_is_in_range(IpAddress, "fd00::/8")', WINDOWS_FAILURE, False),
    ('tolower(TargetUserName) == "administrator"', WINDOWS_FAILURE, True),
    ('tolower(TargetUserName) == "Administrator"', WINDOWS_FAILURE, False),
    ('toupper(TargetDomainName) == "CONTOSO"', WINDOWS_FAILURE, True),
    ('toupper(WorkstationName) == "kali"', WINDOWS_FAILURE, False),
    ('strlen(TargetUserName) == 13', WINDOWS_FAILURE, True),
    ('strlen(TargetUserName) > 13', WINDOWS_FAILURE, False),
    ('tostring(EventID) startswith "46"', WINDOWS_FAILURE, True),
    ('tostring(LogonType) == ""', NO_LOGON_TYPE, True),
    ('tostring(isempty(Computer)) == "false"', WINDOWS_FAILURE, True),
    ('not(EventID == 4625)', WINDOWS_FAILURE, False),
    ('not(EventID == 4624)', WINDOWS_FAILURE, True),
]


@pytest.mark.parametrize("where, event, expected", FUNCTION_CASES)
def test_function(where: str, event: Event, expected: bool) -> None:
    assert matches(where, event) is expected


def test_ip_functions_read_the_attributed_address_and_are_null_for_other_text() -> None:
    in_range = 'ipv4_is_in_range(IpAddress, "203.0.113.0/24")'
    assert matches(in_range, SSH_FAILURE, ip="203.0.113.7")  # syslog: from the message
    assert not matches(in_range, SSH_FAILURE, ip="2001:db8::7")
    # not IPv4: null, which a where treats as false; not(null) is null too, as in KQL
    assert not matches(f"not({in_range})", SSH_FAILURE, ip="2001:db8::7")
    assert matches(f"not({in_range})", SSH_FAILURE, ip="198.51.100.1")
    assert not matches("not(ipv4_is_private(IpAddress))", SSH_FAILURE, ip="")
    v6 = 'ipv6_is_in_range(IpAddress, "2001:db8::/32")'
    assert matches(v6, SSH_FAILURE, ip="2001:DB8::7")
    assert not matches(v6, SSH_FAILURE, ip="2001:db9::7")
    assert not matches(f"not({v6})", SSH_FAILURE, ip="not-an-address")


# --- KQL null: a missing LogonType, a non-numeric ProcessID --------------------------------------

NULL_CASES = [
    ("LogonType == 3", False),
    ("LogonType != 3", True),
    ("LogonType < 3", False),
    ("not(LogonType < 3)", False),
    ("not(LogonType < 3) or EventID == 4625", True),
    ("not(LogonType < 3) and EventID == 4625", False),
    ("not(not(LogonType < 3) or EventID == 4624)", False),
    ("LogonType in (3, 10)", False),
    ("LogonType !in (3, 10)", True),
    ("LogonType == LogonType", False),
]


@pytest.mark.parametrize("where, expected", NULL_CASES)
def test_null_logon_type(where: str, expected: bool) -> None:
    assert matches(where, NO_LOGON_TYPE) is expected


def test_process_id_is_a_number_as_in_sentinel() -> None:
    assert matches("ProcessID == 4242", SSH_FAILURE)
    assert matches("ProcessID > 4000 and ProcessID in (4242)", SSH_FAILURE)
    assert matches("isempty(ProcessID)", SSH_FAILURE._replace(process_id=""))
    assert not matches("ProcessID >= 0", SSH_FAILURE._replace(process_id="x"))


# --- Columns: each name reads what FIELDS says ---------------------------------------------------


@pytest.mark.parametrize("column", sorted(FIELDS))
def test_column_reads_its_source(column: str) -> None:
    source = FIELDS[column]
    if source in (ATTRIBUTED_IP, ATTRIBUTED_USER):
        predicate = compile_where(f'{column} == "attributed"')
        ip, user = ("attributed", "other") if source == ATTRIBUTED_IP else ("other", "attributed")
        assert predicate(WINDOWS_FAILURE, ip, user)
        assert not predicate(WINDOWS_FAILURE, user, ip)
    elif column in NUMBER_FIELDS:
        event = WINDOWS_FAILURE._replace(**{source: "77" if source == "process_id" else 77})
        assert compile_where(f"{column} == 77")(event, "", "")
        assert not compile_where(f"{column} == 78")(event, "", "")
    else:
        event = WINDOWS_FAILURE._replace(**{source: f"value of {source}"})
        assert compile_where(f'{column} == "value of {source}"')(event, "", "")
        assert not compile_where(f'{column} == "value of {source}"')(WINDOWS_FAILURE, "", "")


def test_event_and_profile_values_are_kept_apart() -> None:
    """IpAddress is the attributed address, not Event.ip: syslog keeps it in the message."""
    same = 'IpAddress == "203.0.113.7" and SourceIP == IPAddress'
    assert matches(same, SSH_FAILURE, ip="203.0.113.7")
    assert not compile_where("isnotempty(IpAddress)")(SSH_FAILURE._replace(ip="10.0.0.1"), "", "")
    assert matches('UserName == "admin"', SSH_FAILURE, user="admin")
    assert matches('Type == "SigninLogs" and UserPrincipalName endswith "@contoso.com"', SIGNIN)


# --- Lists: (a, b), dynamic([...]), flattening, the in-list conversion ---------------------------

LIST_CASES = [
    ('TargetUserName in (dynamic(["root", "Administrator"]))', True),
    ('TargetUserName in dynamic(["root", "administrator"])', False),
    ('TargetUserName in ("root", dynamic(["guest", ["Administrator"]]))', True),
    ("EventID in (dynamic([4624, 4625]))", True),
    ('WorkstationName has_any (dynamic(["kali", "parrot"]))', True),
    ('WorkstationName has_any (dynamic([]))', False),
    ('TargetUserName in~ (dynamic([\'ADMINISTRATOR\']))', True),
    # KQL converts inside in lists only (the rule's WindowsEvent LogonType in (10, 7, 3))
    ('LogonType in ("3", "10")', True),
    ('LogonType in ("3.0")', True),
    ('tostring(LogonType) in (10, 7, 3)', True),
    ('tostring(LogonType) in (10, 7)', False),
    ('EventID in ("4624")', False),
]


@pytest.mark.parametrize("where, expected", LIST_CASES)
def test_lists(where: str, expected: bool) -> None:
    assert matches(where) is expected


# --- Precedence: not > and > or; parentheses override ---------------------------------------------


def test_and_binds_tighter_than_or() -> None:
    # true or (false and false) is true; (true or false) and false would be false
    assert matches('EventID == 4625 or EventID == 1 and EventID == 2')
    assert not matches('(EventID == 4625 or EventID == 1) and EventID == 2')
    # (false and true) or true
    assert matches('EventID == 1 and EventID == 4625 or LogonType == 3')
    assert not matches('EventID == 1 and (EventID == 4625 or LogonType == 3)')


def test_chains_of_three() -> None:
    assert matches('EventID == 4625 and LogonType == 3 and TargetDomainName == "CONTOSO"')
    assert not matches('EventID == 4625 and LogonType == 3 and TargetDomainName == "contoso"')
    assert matches('EventID == 1 or LogonType == 1 or TargetDomainName == "CONTOSO"')
    assert not matches('EventID == 1 or LogonType == 1 or TargetDomainName == "contoso"')


def test_not_binds_tighter_than_and() -> None:
    # not(false) and false is false; not(false and false) would be true
    assert not matches('not(EventID == 1) and EventID == 2')
    assert matches('not(EventID == 1 and EventID == 2)')


def test_bool_literals_and_comparisons() -> None:
    assert matches("true")
    assert not matches("false or FALSE")
    assert matches("isempty(WorkstationName) == false and True")
    assert not matches("isnotempty(Computer) != true")


# --- Literals: escapes, verbatim strings, numbers ------------------------------------------------

STRING_CASES = [
    (r'"say \"hi\""', 'say "hi"'),
    (r"'it\'s'", "it's"),
    (r'"C:\\Temp"', "C:\\Temp"),
    (r'"a\tb"', "a\tb"),
    (r'"a\nb"', "a\nb"),
    (r"""'say "hi"'""", 'say "hi"'),
    (r'@"C:\Temp\"', "C:\\Temp\\"),
    (r'@"say ""hi"""', 'say "hi"'),
    (r"@'it''s'", "it's"),
    (r"@'a\tb'", "a\\tb"),
    ('""', ""),
]


@pytest.mark.parametrize("literal, value", STRING_CASES)
def test_string_literal(literal: str, value: str) -> None:
    event = WINDOWS_FAILURE._replace(workstation=value)
    assert matches(f"WorkstationName == {literal}", event)
    assert not matches(f"WorkstationName == {literal}", event._replace(workstation=value + "x"))


# --- Errors: one line, with the column -----------------------------------------------------------

ERROR_CASES = [
    # unbalanced parentheses
    ('(ProcessName == "a"', "expected ')' at column 20, found the end"),
    ('ProcessName == "a")', "unbalanced ')' at column 19"),
    ('not(ProcessName == "a" or EventID == 1', "expected ')' to close not( at column 39"),
    (
        "strlen(ProcessName Computer",
        "expected ',' or ')' after the argument at column 20, found 'Computer'",
    ),
    ('IpAddress in ("a", "b"', "expected ',' or ')' at column 23, found the end"),
    # unknown field or function
    ('Foo == "a"', "unknown field 'Foo' at column 1"),
    (
        'EventID == 4625 and ipaddress == "a"',
        "unknown field 'ipaddress' at column 21 (did you mean 'IpAddress'?)",
    ),
    (
        'ipv4_in_range(IpAddress, "10.0.0.0/8")',
        "unknown function 'ipv4_in_range' at column 1 (did you mean 'ipv4_is_in_range'?)",
    ),
    ("isempty", "'isempty' is a function at column 1 (write isempty(...))"),
    # missing operand
    ("ProcessName has", "expected a value after 'has' at column 16, found the end"),
    ('ProcessName == and EventID == 1', "expected a value after '==' at column 16, found 'and'"),
    ('and EventID == 1', "expected a condition at column 1, found 'and'"),
    ("EventID == 1 or", "expected a condition after 'or' at column 16, found the end"),
    ('EventID == 1 and or', "expected a condition after 'and' at column 18, found 'or'"),
    ("IpAddress in", "expected a list like ('a', 'b') after 'in' at column 13, found the end"),
    ("IpAddress in ()", "expected a value at column 15, found ')'"),
    (
        "not EventID == 1",
        "expected '(' after 'not' (KQL writes not(...)) at column 5, found 'EventID'",
    ),
    ("IpAddress == 10.1.2.3", "expected a value after '==' at column 14, found '10.1.2.3'"),
    ("", "expected a condition at column 1, found the end"),
    # bad CIDR
    ('ipv4_is_in_range(IpAddress, "10.0.0.0/33")', "bad IPv4 range '10.0.0.0/33' at column 29"),
    ('ipv4_is_in_range(IpAddress, "fd00::/8")', "bad IPv4 range 'fd00::/8' at column 29"),
    ('ipv6_is_in_range(IpAddress, "fd00::/129")', "bad IPv6 range 'fd00::/129' at column 29"),
    (
        "ipv4_is_in_range(IpAddress, SourceIP)",
        "the range needs a constant, but SourceIP changes per event at column 29",
    ),
    # bad regex
    (
        'SyslogMessage matches regex "(unclosed"',
        "bad regex '(unclosed': missing ), unterminated subpattern at column 29",
    ),
    # trailing garbage
    (
        'ProcessName == "a" garbage',
        "unexpected 'garbage' at column 20 (expected 'and', 'or' or the end)",
    ),
    ('ProcessName == "a" AND EventID == 1', "unexpected 'AND' at column 20"),
    ('ProcessName "a"', "unexpected '\"a\"' at column 13"),
    # strings
    ('ProcessName == "abc', "unterminated string at column 16"),
    (r'ProcessName matches regex "\d+"', r"unknown escape '\d' in a string at column 28"),
    # types, as KQL checks them
    ('EventID == "4625"', "cannot compare EventID (a number) with \"4625\" (a string) at column 9"),
    ("ResultType == 0", "cannot compare ResultType (a string) with 0 (a number) at column 12"),
    ('ProcessName < 5', "'<' needs a number, but ProcessName is a string at column 1"),
    ('EventID has "46"', "'has' needs a string, but EventID is a number at column 1"),
    (
        'ProcessName has SyslogMessage',
        "'has' needs a constant, but SyslogMessage changes per event at column 17",
    ),
    ('LogonType in ("ten")', "'in' compares a number, but \"ten\" is a string at column 15"),
    (
        'ProcessName == dynamic(["a"])',
        "a list may only follow in, !in, in~, !in~, has_any or has_all at column 16",
    ),
    ("not(ProcessName)", "not() needs true or false, but ProcessName is a string at column 5"),
    ("ProcessName", "the condition must be true or false, but ProcessName is a string at column 1"),
    (
        'EventID == 1 and strlen(ProcessName)',
        "'and' needs true or false, but strlen(...) is a number at column 18",
    ),
    ("strlen()", "strlen() takes 1 argument, not 0 at column 1"),
    ("tolower(EventID) == \"1\"", "tolower() needs a string, but EventID is a number at column 9"),
]


@pytest.mark.parametrize("where, message", ERROR_CASES)
def test_error_message(where: str, message: str) -> None:
    assert message in error_of(where)
    assert "\n" not in error_of(where)


def test_error_in_a_multi_line_condition_names_line_and_column() -> None:
    assert "at line 2, column 5" in error_of('EventID == 4625\nand Foo == "x"')


def test_kql_comments_are_ignored_outside_strings() -> None:
    event = WINDOWS_FAILURE._replace(workstation="http://a//b")
    assert matches('EventID == 4625 // failures only\nand WorkstationName == "http://a//b"', event)
    assert not matches('WorkstationName == "http://a" // b"', event)
    assert "expected a value after 'has' at column 21" in error_of("ProcessName has // x")


def test_tabs_count_as_one_column() -> None:
    assert "at column 3" in error_of("\t\tFoo == 1")
    assert matches('WorkstationName == "a\tb"', WINDOWS_FAILURE._replace(workstation="a\tb"))


def test_exclusion_error_is_a_value_error() -> None:
    assert issubclass(ExclusionError, ValueError)


# --- load_exclusions ------------------------------------------------------------------------------


def test_load_exclusions_compiles_each_entry_in_order() -> None:
    loaded = load_exclusions(
        [
            {"name": "veeam", "applies_to": "failures", "where": 'ProcessName has "veeam"'},
            {"name": "vpn", "applies_to": "signins", "where": 'IPAddress == "198.51.100.5"'},
        ]
    )
    assert [(e.name, e.applies_to, e.removed) for e in loaded] == [
        ("veeam", "failures", 0),
        ("vpn", "signins", 0),
    ]
    assert loaded[0].predicate(WINDOWS_FAILURE, WINDOWS_FAILURE.ip, "")
    assert not loaded[1].predicate(WINDOWS_FAILURE, WINDOWS_FAILURE.ip, "")
    assert loaded[1].predicate(SIGNIN, SIGNIN.ip, SIGNIN.user_principal_name)


def test_removed_counter_is_per_exclusion() -> None:
    first, second = load_exclusions(
        [
            {"name": "a", "applies_to": "both", "where": "true"},
            {"name": "b", "applies_to": "both", "where": "true"},
        ]
    )
    first.removed += 2
    assert (first.removed, second.removed) == (2, 0)
    assert isinstance(first, Exclusion) and "removed=2" in repr(first)


LOAD_ERRORS = [
    (
        [
            {
                "name": "veeam-backup",
                "applies_to": "failures",
                "where": 'ProcessName has "veam" or ProcessName has',
            }
        ],
        "exclusion \"veeam-backup\": expected a value after 'has' at column 42, found the end",
    ),
    (
        [{"name": "a", "applies_to": "both", "where": "true"}] * 2,
        'exclusion "a": the name is used by an earlier exclusion',
    ),
    (
        [{"name": " ", "applies_to": "both", "where": "true"}],
        "exclusion #1: 'name' must be a non-empty string",
    ),
    ([{"applies_to": "both", "where": "true"}], "exclusion #1: 'name' must be a non-empty string"),
    (
        [{"name": "a", "applies_to": "failure", "where": "true"}],
        "exclusion \"a\": 'applies_to' must be failures, signins or both, not 'failure'",
    ),
    (
        [{"name": "a", "applies_to": "both"}],
        "exclusion \"a\": 'where' must be a non-empty KQL condition",
    ),
    (
        [{"name": "a", "applies_to": "both", "where": "  "}],
        "exclusion \"a\": 'where' must be a non-empty KQL condition",
    ),
    (
        [{"name": "a", "applies_to": "both", "where": "true", "aplies_to": "both"}],
        "exclusion #1: unknown key 'aplies_to' (expected name, applies_to and where)",
    ),
    (["true"], "exclusion #1: expected a table with name, applies_to and where"),
    ({"name": "a"}, "exclusions must be a list of tables: write [[exclusion]] in TOML"),
]


@pytest.mark.parametrize("entries, message", LOAD_ERRORS)
def test_load_exclusions_rejects(entries: object, message: str) -> None:
    with pytest.raises(ExclusionError) as raised:
        load_exclusions(entries)
    assert str(raised.value) == message


# --- The shipped examples: each compiles, and each has a sample it excludes and one it keeps ------

ATTACKER_FAILURE = WINDOWS_FAILURE._replace(
    ip="45.155.205.10", target_user="administrator", workstation="WIN-ATTACK", process_name="-",
    sub_status="0xC0000064",
)  # fmt: skip
ATTACKER_SIGNIN = SIGNIN._replace(ip="45.155.205.10", user_principal_name="alice.admin@contoso.com")

# name -> (an event it must exclude, with its attributed ip and user)
EXAMPLE_SAMPLES = {
    "maintenance-hosts": (WINDOWS_FAILURE, "10.60.1.16", "svc"),
    "maintenance-task-accounts": (
        WINDOWS_FAILURE._replace(workstation="mgmt-sched01"), "10.50.0.12", "SVC-Patching",
    ),
    "aad-connect": (
        WINDOWS_FAILURE._replace(
            process_name=r"C:\Program Files\Microsoft Azure AD Sync\Bin\miiserver.exe"
        ),
        "10.0.5.20",
        "MSOL_0123456789ab",
    ),
    "admin-jump-hosts": (SSH_FAILURE, "10.99.0.14", "root"),
    "admin-signins-from-vpn": (SIGNIN, "198.51.100.5", "Alice.Admin@contoso.com"),
    "backup-servers": (WINDOWS_FAILURE, "fd00:20:30::15", "svc-veeam"),
    "backup-processes": (WINDOWS_FAILURE, "10.20.1.2", "Administrator"),
    "backup-job-accounts": (SSH_FAILURE, "192.168.7.7", "rsync-backup"),
    "office-typos": (
        SSH_FAILURE._replace(message="Failed password for jdoe from 203.0.113.10 port 4 ssh2"),
        "203.0.113.10",
        "jdoe",
    ),
}  # fmt: skip


def load_examples() -> list:
    with EXAMPLES.open("rb") as file:
        return load_exclusions(tomllib.load(file)["exclusion"])


def test_examples_compile_and_each_has_a_sample() -> None:
    assert sorted(exclusion.name for exclusion in load_examples()) == sorted(EXAMPLE_SAMPLES)


@pytest.mark.parametrize("exclusion", load_examples(), ids=lambda exclusion: exclusion.name)
def test_example_excludes_its_sample_and_not_an_attacker(exclusion: Exclusion) -> None:
    event, ip, user = EXAMPLE_SAMPLES[exclusion.name]
    assert exclusion.predicate(event, ip, user)
    assert not exclusion.predicate(ATTACKER_FAILURE, ATTACKER_FAILURE.ip, "administrator")
    attacker_upn = ATTACKER_SIGNIN.user_principal_name
    assert not exclusion.predicate(ATTACKER_SIGNIN, ATTACKER_SIGNIN.ip, attacker_upn)
