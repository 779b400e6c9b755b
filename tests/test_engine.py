"""The engine with each profile: the rule's thresholds, sources, exclusions and successes,
retained successes, suppression, expiry and the future-timestamp guard."""

import pytest

from events import BASE, logon_failure, signin, sshd
from plugin.engine import Engine, Settings
from plugin.profiles import PROFILES


def run(events, profile="kql", wall=BASE + 3 * 86400, **settings):
    """Alerts produced by feeding ``events`` in order; the engine checks its counters' invariants."""
    alerts = []
    engine = Engine(Settings(**{"suppress": 0.0, **settings}), PROFILES[profile](), lambda alert, when: alerts.append(alert),
                    wall_clock=lambda: wall)
    for event in events:
        engine.process(event)
    for counter in engine.counters.values():
        counter._check()
    return alerts, engine


BOTH = pytest.mark.parametrize("profile", ["kql", "hardened"])


@BOTH
def test_five_failures_is_not_an_alert_six_is(profile):
    five = [sshd("203.0.113.5", at=i) for i in range(5)]
    alerts, _ = run(five + [signin("203.0.113.5", at=100)], profile)
    assert alerts == []
    alerts, _ = run(five + [sshd("203.0.113.5", at=6), signin("203.0.113.5", at=100)], profile)
    assert [alert["IPAddress"] for alert in alerts] == ["203.0.113.5"]
    assert alerts[0]["Evidence"][0]["Source"] == "Syslog" and alerts[0]["Evidence"][0]["FailureCount"] == 6
    assert alerts[0]["Late"] is False


@BOTH
def test_sources_are_counted_apart(profile):
    """4 Windows + 4 sshd failures: no list holds more than 5, no alert."""
    events = [logon_failure("203.0.113.5", at=i) for i in range(4)]
    events += [sshd("203.0.113.5", at=10 + i) for i in range(4)]
    events += [logon_failure("203.0.113.5", at=20 + i, table="WindowsEvent") for i in range(4)]
    alerts, _ = run(events + [signin("203.0.113.5", at=100)], profile)
    assert alerts == []


@BOTH
@pytest.mark.parametrize("table", ["SecurityEvent", "WindowsEvent"])
@pytest.mark.parametrize("logon_type,counts", [(3, True), (7, True), (10, True), (2, False), (4, False),
                                               (5, False), (8, False), (11, False), (None, False)])
def test_only_remote_logon_types_count(profile, table, logon_type, counts):
    events = [logon_failure("192.0.2.50", at=i, logon_type=logon_type, table=table) for i in range(6)]
    alerts, _ = run(events + [signin("192.0.2.50", at=60)], profile)
    assert len(alerts) == (1 if counts else 0)


@BOTH
def test_windows_dash_address_and_other_event_ids_do_not_count(profile):
    dashes = [logon_failure("-", at=i) for i in range(6)]
    others = [logon_failure("192.0.2.51", at=i, event_id=4624) for i in range(6)]
    alerts, engine = run(dashes + others + [signin("-", at=60), signin("192.0.2.51", at=60)], profile)
    assert alerts == [] and engine.counts.failures["SecurityEvent"] == 0


@BOTH
@pytest.mark.parametrize("facility,counts", [("auth", True), ("authpriv", True), ("AUTH", True),
                                             ("daemon", False), ("user", False), ("", False)])
def test_only_auth_facilities_count(profile, facility, counts):
    events = [sshd("198.51.100.7", at=i, facility=facility) for i in range(6)]
    alerts, _ = run(events + [signin("198.51.100.7", at=60)], profile)
    assert len(alerts) == (1 if counts else 0)


@BOTH
def test_sudo_does_not_count(profile):
    message = "pam_unix(sudo:auth): authentication failure from 198.51.100.9 port 1"
    events = [sshd("198.51.100.9", at=i, program="sudo", message=message) for i in range(6)]
    alerts, _ = run(events + [signin("198.51.100.9", at=60)], profile)
    assert alerts == []


@BOTH
@pytest.mark.parametrize("message", [
    "Accepted password for bob from 198.51.100.10 port 22 ssh2",
    "Received disconnect from 198.51.100.10 port 22:11: Bye Bye [preauth]",
    "Disconnected from invalid user bob 198.51.100.10 port 22 [preauth]",
    "Disconnecting invalid user bob 198.51.100.10 port 22: Too many authentication failures [preauth]",
    "error: maximum authentication attempts exceeded for root from 198.51.100.10 port 22 ssh2 [preauth]",
])
def test_the_rules_exclusion_words_do_not_count(profile, message):
    events = [sshd("198.51.100.10", at=i, message=message) for i in range(6)]
    alerts, _ = run(events + [signin("198.51.100.10", at=60)], profile)
    assert alerts == []


def test_kql_counts_connection_from_but_hardened_does_not():
    message = "Connection from 198.51.100.11 port 50000 on 192.0.2.1 port 22 rdomain \"\""
    events = [sshd("198.51.100.11", at=i, message=message) for i in range(6)] + [signin("198.51.100.11", at=60)]
    assert len(run(events, "kql")[0]) == 1
    assert run(events, "hardened")[0] == []


def test_kql_falls_for_an_injected_address_and_hardened_does_not():
    """A username holding an innocent address charges the failure to it under the rule."""
    message = "Invalid user x from 192.0.2.200 port 22 from 203.0.113.66 port 4242"
    events = [sshd("", at=i, message=message) for i in range(6)] + [signin("192.0.2.200", at=60)]
    assert [alert["IPAddress"] for alert in run(events, "kql")[0]] == ["192.0.2.200"]
    assert run(events, "hardened")[0] == []
    attacker = [sshd("", at=i, message=message) for i in range(6)] + [signin("203.0.113.66", at=60)]
    assert [alert["IPAddress"] for alert in run(attacker, "hardened")[0]] == ["203.0.113.66"]


def test_hardened_counts_repeats_ipv6_and_canonical_addresses():
    repeated = "message repeated 6 times: [ Failed password for root from 2001:DB8::9 port 22 ssh2]"
    alerts, _ = run([sshd("", message=repeated), signin("2001:db8::9", at=60)], "hardened")
    assert [alert["IPAddress"] for alert in alerts] == ["2001:db8::9"]
    assert run([sshd("", message=repeated), signin("2001:db8::9", at=60)], "kql")[0] == []
    mapped = [logon_failure("::ffff:192.0.2.80", at=i) for i in range(6)] + [signin("192.0.2.80", at=60)]
    assert len(run(mapped, "hardened")[0]) == 1 and run(mapped, "kql")[0] == []


def test_hardened_drops_every_loopback_kql_only_127_0_0_1():
    events = [sshd("127.0.0.2", at=i) for i in range(6)] + [signin("127.0.0.2", at=60)]
    assert len(run(events, "kql")[0]) == 1
    assert run(events, "hardened")[0] == []


@BOTH
@pytest.mark.parametrize("result,alerts", [("0", 1), ("50125", 1), ("50140", 1), ("50126", 0), ("50074", 0), ("", 0)])
@pytest.mark.parametrize("table", ["SigninLogs", "AADNonInteractiveUserSignInLogs"])
def test_success_codes_and_both_signin_tables(profile, result, alerts, table):
    events = [sshd("203.0.113.5", at=i) for i in range(6)]
    found, _ = run(events + [signin("203.0.113.5", at=60, result=result, table=table)], profile)
    assert len(found) == alerts
    if alerts:
        assert found[0]["Type"] == table and found[0]["ResultType"] == result


@BOTH
def test_a_success_seen_before_its_failures_alerts_late(profile):
    events = [signin("203.0.113.5", at=0)] + [sshd("203.0.113.5", at=10 + i) for i in range(6)]
    alerts, engine = run(events, profile)
    assert len(alerts) == 1 and alerts[0]["Late"] is True
    assert engine.counts.late_alerts == 1 and engine.retained_signins() == 0


@BOTH
def test_failures_outside_the_window_do_not_count(profile):
    events = [sshd("203.0.113.5", at=i) for i in range(6)]
    alerts, _ = run(events + [signin("203.0.113.5", at=3 * 3600)], profile, window=3600.0)
    assert alerts == []
    alerts, _ = run(events + [signin("203.0.113.5", at=3000)], profile, window=3600.0)
    assert len(alerts) == 1
    # and after the sign-in: the window is on both sides
    alerts, _ = run([signin("203.0.113.5", at=0)] + [sshd("203.0.113.5", at=1800 + i) for i in range(6)],
                    profile, window=3600.0)
    assert len(alerts) == 1


def test_suppression_per_ip_and_upn():
    events = [sshd("203.0.113.5", at=i) for i in range(6)]
    signins = [signin("203.0.113.5", at=60), signin("203.0.113.5", at=120),
               signin("203.0.113.5", at=180, upn="eve@contoso.com"), signin("203.0.113.5", at=4000)]
    alerts, engine = run(events + signins, "kql", suppress=3600.0)
    assert [(alert["UserPrincipalName"], alert["timestamp"][11:19]) for alert in alerts] == [
        ("bob@contoso.com", "14:01:00"), ("eve@contoso.com", "14:03:00"), ("bob@contoso.com", "15:06:40")]
    assert engine.counts.suppressed == 1
    assert len(run(events + signins, "kql", suppress=0.0)[0]) == 4


def test_state_older_than_the_window_is_dropped():
    events = [sshd("203.0.113.5", at=i) for i in range(6)] + [sshd("198.51.100.1", at=2 * 86400)]
    alerts, engine = run(events, "kql")
    assert engine.tracked_ips()["Syslog"] == 1
    alerts, engine = run(events + [signin("203.0.113.5", at=2 * 86400)], "kql")
    assert alerts == []


def test_a_forged_future_time_does_not_flush_state():
    wall = BASE + 100
    events = [sshd("203.0.113.5", at=i) for i in range(6)]
    events += [sshd("198.51.100.1", at=10 * 86400)]  # ten days ahead of the wall clock
    alerts, engine = run(events + [signin("203.0.113.5", at=60)], "kql", wall=wall)
    assert len(alerts) == 1
    assert engine.counts.future == 1 and engine.newest == BASE + 60


@BOTH
def test_the_alert_record(profile):
    events = [sshd("203.0.113.5", at=i, user=f"user{i}", host=f"web{i % 2}") for i in range(7)]
    alerts, _ = run(events + [signin("203.0.113.5", at=60, upn="bob@contoso.com", record_id="abc")], profile)
    alert = alerts[0]
    assert list(alert) == ["TimeGenerated", "timestamp", "Type", "Id", "IPAddress", "UserPrincipalName",
                           "ResultType", "AccountName", "AccountUPNSuffix", "Reason", "AlertName", "RuleId",
                           "Severity", "Tactics", "Techniques", "Entities", "Evidence", "Late", "AlertId"]
    assert alert["TimeGenerated"] == alert["timestamp"] == "2026-11-27T14:01:00.000000Z"
    assert (alert["AccountName"], alert["AccountUPNSuffix"], alert["Id"]) == ("bob", "contoso.com", "abc")
    assert alert["Reason"] == "Multiple failed host logins from IP address with successful Azure AD login"
    assert alert["RuleId"] == "1ce5e766-26ab-4616-b7c8-3b33ae321e80" and alert["Severity"] == "Medium"
    assert alert["Entities"] == [{"Type": "account", "Name": "bob", "UPNSuffix": "contoso.com"},
                                 {"Type": "ip", "Address": "203.0.113.5"}]
    evidence = alert["Evidence"][0]
    assert (evidence["FailureCount"], evidence["FirstFailure"], evidence["LastFailure"]) == (
        7, "2026-11-27T14:00:00.000000Z", "2026-11-27T14:00:06.000000Z")
    assert evidence["Hosts"] == ["web0", "web1"]
    assert evidence["Users"] == [f"user{i}" for i in range(5)]
    again, _ = run(events + [signin("203.0.113.5", at=60, upn="bob@contoso.com", record_id="abc")], profile)
    assert again[0]["AlertId"] == alert["AlertId"]


def test_account_parts_follow_kql_split():
    from plugin.alerts import account_parts
    assert account_parts("bob@contoso.com") == ("bob", "contoso.com")
    assert account_parts("bob") == ("bob", "")
    assert account_parts("a@b@c") == ("a", "b")
    assert account_parts("") == ("", "")


def test_retained_successes_are_bounded():
    signins = [signin(f"192.0.2.{i}", at=i) for i in range(10)]
    _, engine = run(signins, "kql", max_signins=4)
    assert engine.retained_signins() == 4 and engine.counts.signins_evicted == 6


def test_the_ip_cap_evicts_the_least_important_first():
    """Past --max-ips, single-failure idle IPs go first; IPs over the threshold and IPs with a
    retained sign-in stay."""
    attacker = [sshd("203.0.113.5", at=float(i)) for i in range(6)]
    waiting = [signin("198.51.100.50", at=10.0), sshd("198.51.100.50", at=11.0)]
    spray = [sshd(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", at=20.0 + i / 100) for i in range(500)]
    late = [sshd("203.0.113.5", at=30.0), signin("203.0.113.5", at=31.0)]
    alerts, engine = run(attacker + waiting + spray + late, "kql", max_ips=100)
    assert engine.tracked_total() <= 100
    assert engine.counts.ips_evicted >= 400
    assert engine.counters["Syslog"].total("203.0.113.5") == 7
    assert "198.51.100.50" in engine.counters["Syslog"]
    assert "10.0.1.243" in engine.counters["Syslog"]  # the newest spray address is kept
    assert "10.0.0.0" not in engine.counters["Syslog"]  # the oldest is gone
    assert [alert["IPAddress"] for alert in alerts] == ["203.0.113.5"]


def test_suppression_never_lets_two_alerts_through_within_one_period():
    """Suppression compares with every alerted sign-in of the (IP, UPN), so a late sign-in
    between two others cannot open a gap: 100 min, then 30 min, then 150 min (50 min after 100)."""
    failures = [sshd("203.0.113.5", at=float(i)) for i in range(6)]
    signins = [signin("203.0.113.5", at=100 * 60.0), signin("203.0.113.5", at=30 * 60.0),
               signin("203.0.113.5", at=150 * 60.0)]
    alerts, engine = run(failures + signins, "kql", suppress=3600.0)
    assert [alert["timestamp"][11:16] for alert in alerts] == ["15:40", "14:30"]
    assert engine.counts.suppressed == 1


def test_a_signin_a_window_behind_the_clock_still_meets_late_failures():
    """Failures are accepted down to a window behind the newest event, and such a failure can
    match a sign-in up to a window before it: sign-ins are kept two windows."""
    hour = 3600.0
    events = [sshd("198.51.100.1", at=2 * hour),  # the clock moves to 2 h
              signin("203.0.113.5", at=0.5 * hour)]  # older than the clock minus the window
    events += [sshd("203.0.113.5", at=1.2 * hour + i) for i in range(6)]  # accepted: within 1 h of 2 h
    alerts, engine = run(events, "kql", window=hour)
    assert [(alert["IPAddress"], alert["Late"]) for alert in alerts] == [("203.0.113.5", True)]
    assert engine.counts.stale == 0
