"""ExclusionChain remembers answers per combination of the values its exclusions read: the
remembered answer must always be the one the conditions give."""

import os
import random
import sys

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
]


def direct(exclusions, event, ip, user):
    return next((exclusion for exclusion in exclusions if exclusion.predicate(event, ip, user)), None)


event_strategy = st.builds(
    lambda table, time, process, workstation, logon_type: Event(
        table, time, "test", process_name=process, workstation=workstation, logon_type=logon_type),
    st.sampled_from(["SecurityEvent", "Syslog"]), st.sampled_from([10.0, 2000.0]),
    st.sampled_from(["", "C:\\Veeam\\agent.exe", "sshd"]), st.sampled_from(["", "backup01", "KALI"]),
    st.sampled_from([None, 3, 10]))


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
        ip = f"10.0.0.{rng.randrange(50)}"
        assert chain.first_match(event, ip, "alice") is direct(exclusions, event, ip, "alice")
        assert len(chain._memo) <= 10


def test_the_key_holds_only_what_the_conditions_read():
    exclusions = load_exclusions(EXCLUSIONS[:1])
    chain = ExclusionChain(exclusions)
    chain.first_match(Event("Syslog", 1.0, "test", message="a"), "10.0.0.1", "alice")
    chain.first_match(Event("Syslog", 2.0, "test", message="b"), "10.0.0.1", "alice")
    assert len(chain._memo) == 1  # time and message are not read by "office"


def test_every_shipped_example_reads_the_fields_it_names():
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "conf", "exclusions.example.toml")
    with open(path, "rb") as handle:
        examples = load_exclusions(tomllib.load(handle)["exclusion"])
    assert all(example.reads for example in examples)
