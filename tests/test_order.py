"""Order does not matter: any permutation of the same events gives the same alerts."""

import random

from hypothesis import given, settings, strategies as st

from events import logon_failure, signin, sshd
from plugin.engine import Engine, Settings
from plugin.profiles import PROFILES

ADDRESSES = ["203.0.113.1", "203.0.113.2", "2001:db8::3"]


def alert_keys(events, profile):
    alerts = []
    engine = Engine(Settings(suppress=0.0), PROFILES[profile](), lambda alert, when: alerts.append(alert), wall_clock=lambda: 4e9)
    for event in events:
        engine.process(event)
    return sorted((alert["Type"], alert["Id"], alert["IPAddress"]) for alert in alerts)


event_strategy = st.one_of(
    st.builds(sshd, st.sampled_from(ADDRESSES), st.floats(0, 80000)),
    st.builds(logon_failure, st.sampled_from(ADDRESSES), st.floats(0, 80000), st.sampled_from([3, 10, 2])),
    st.builds(logon_failure, st.sampled_from(ADDRESSES), st.floats(0, 80000), st.just(7), st.just("WindowsEvent")),
    st.builds(signin, st.sampled_from(ADDRESSES), st.floats(0, 80000), st.sampled_from(["0", "50126"])),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(event_strategy, min_size=1, max_size=40), st.randoms(use_true_random=False), st.sampled_from(["kql", "hardened"]))
def test_any_permutation_gives_the_same_alerts(events, rng, profile):
    # enough failures on one address that alerts actually happen in many examples
    events = events + [sshd(ADDRESSES[0], at=100.0 + index) for index in range(6)] + [signin(ADDRESSES[0], 50.0)]
    expected = alert_keys(events, profile)
    assert expected, "the scenario always holds one alert"
    for _ in range(3):
        shuffled = list(events)
        rng.shuffle(shuffled)
        assert alert_keys(shuffled, profile) == expected


def test_late_and_on_time_alerts_cover_the_same_signins():
    events = [sshd("203.0.113.1", at=float(index)) for index in range(6)] + [signin("203.0.113.1", at=3.5)]
    forward = alert_keys(events, "kql")
    backward = alert_keys(list(reversed(events)), "kql")
    assert forward == backward and len(forward) == 1
    random.Random(7).shuffle(events)
    assert alert_keys(events, "kql") == forward
