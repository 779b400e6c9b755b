"""ExclusionChain remembers answers per combination of the values its exclusions read (except
for exclusions that read values which rarely repeat): the answer must always be the one the
conditions give, in the order they are written."""

import os
import random
import sys

import pytest
from hypothesis import given, settings, strategies as st

from parsers.event import Event
from plugin.exclusions import ExclusionChain, load_exclusions

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

EXCLUSIONS = [
    {"name": "office", "applies_to": "failures",
     "where": 'ipv4_is_in_range(IpAddress, "10.0.0.0/8") and TargetUserName !in~ ("root")'},
    {"name": "veeam", "applies_to": "failures", "where": 'ProcessName has "veeam" or WorkstationName =~ "BACKUP01"'},
    {"name": "late-night", "applies_to": "failures", "where": "TimeGenerated > 1000 and LogonType == 3"},
    {"name": "typos", "applies_to": "failures", "where": 'SyslogMessage has "typo" or LogonType == 10'},
]


def direct(exclusions, event, ip, user):
    return next((exclusion for exclusion in exclusions if exclusion.predicate(event, ip, user)), None)


event_strategy = st.builds(
    lambda table, time, process, workstation, logon_type, message: Event(
        table, time, "test", process_name=process, workstation=workstation, logon_type=logon_type, message=message),
    st.sampled_from(["SecurityEvent", "Syslog"]), st.sampled_from([10.0, 2000.0]),
    st.sampled_from(["", "C:\\Veeam\\agent.exe", "sshd"]), st.sampled_from(["", "backup01", "KALI"]),
    st.sampled_from([None, 3, 10]), st.sampled_from(["", "a typo"]))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(event_strategy, st.sampled_from(["10.1.2.3", "203.0.113.5", ""]),
                          st.sampled_from(["root", "ROOT", "alice"])), min_size=1, max_size=30))
def test_remembered_answers_are_the_conditions_answers(cases):
    exclusions = load_exclusions(EXCLUSIONS)
    chain = ExclusionChain(exclusions)
    for event, ip, user in cases + cases:  # the second round is answered from memory
        assert chain.first_match(event, ip, user) is direct(exclusions, event, ip, user)


def test_the_memory_is_bounded_and_answers_survive_clearing():
    exclusions = load_exclusions(EXCLUSIONS)
    chain = ExclusionChain(exclusions)
    chain.MEMO_LIMIT = 10
    rng = random.Random(4)
    for _ in range(200):
        event = Event("SecurityEvent", rng.choice([10.0, 2000.0]), "test", logon_type=rng.choice([3, 10]))
        ip = rng.choice(["10.0.0.%d" % rng.randrange(50), "203.0.113.%d" % rng.randrange(50)])
        assert chain.first_match(event, ip, "alice") is direct(exclusions, event, ip, "alice")
        assert len(chain._candidates) <= 10


@pytest.mark.parametrize("where,gated", [
    ('ipv4_is_in_range(IpAddress, "10.0.0.0/8") and TargetUserName == "x"', {"10.1.2.3": True, "203.0.113.5": False}),
    ('IpAddress in ("10.0.0.1") or ProcessName has "veeam"', None),  # the other side needs no address
    ('IpAddress == "10.0.0.1" or ipv4_is_private(IpAddress)', {"192.168.1.1": True, "203.0.113.5": False}),
    ('not(ipv4_is_private(IpAddress)) and LogonType == 3', {"192.168.1.1": False, "203.0.113.5": True}),
    ('not(ipv4_is_private(IpAddress) and LogonType == 3)', None),  # a negated mixed condition
    ('ipv4_is_in_range(IpAddress, "10.0.0.0/8")', {"2001:db8::1": False, "": False, "10.9.9.9": True}),
])
def test_ip_gates_are_necessary_parts_of_the_condition(where, gated):
    (exclusion,) = load_exclusions([{"name": "x", "applies_to": "failures", "where": where}])
    if gated is None:
        assert exclusion.ip_gate is None
    else:
        assert {ip: exclusion.ip_gate(ip) for ip in gated} == gated


def test_every_shipped_example_has_an_ip_gate_or_reads_no_address():
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "conf", "exclusions.example.toml")
    with open(path, "rb") as handle:
        examples = load_exclusions(tomllib.load(handle)["exclusion"])
    assert sum(example.ip_gate is not None for example in examples) >= len(examples) - 2
