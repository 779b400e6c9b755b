"""conf/fluentd.conf (msgpack pipes) and conf/fluentd-json.conf (JSON pipes) under a real
Fluentd: the sample day, its auth log in every syslog form, gives its alerts; alerts and health
records leave the child under their own tags; a child that dies is respawned and resumes from
its --state.

Besides paths, one change: --stats-interval 60s becomes 1s, so that health records show within
a test's few seconds."""

import os
import signal
import time
from typing import Dict

import pytest

from collectors import (LINUX_ALERTS, SYSLOG_FORMS, FluentdSetup, SampleDay, append, by_alert_id, ips_and_upns,
                        needs_fluentd, reference_alerts, wait_until)

pytestmark = needs_fluentd

ALERT_TAG = "security.alert.fail2entra"
STATS_TAG = "security.stats.fail2entra"


def routed(log: str) -> Dict[str, int]:
    """Records Fluentd's stdout outputs printed, by tag."""
    counts: Dict[str, int] = {}
    for line in log.splitlines():
        parts = line.split(" ", 4)
        if len(parts) == 5 and parts[4].startswith("{") and parts[3].endswith(":"):
            counts[parts[3][:-1]] = counts.get(parts[3][:-1], 0) + 1
    return counts


@pytest.mark.parametrize("conf_name,form", [("fluentd.conf", form) for form in SYSLOG_FORMS]
                         + [("fluentd-json.conf", form) for form in ("rfc3164", "rfc3339")])
def test_the_sample_day_gives_its_alerts_and_health_records_under_their_own_tags(tmp_path, conf_name, form):
    day = SampleDay(form)
    expected = reference_alerts(day.auth, day.signins)
    assert ips_and_upns(expected) == LINUX_ALERTS
    setup = FluentdSetup(tmp_path, conf_name)
    with setup.start() as fluentd:
        setup.feed_failures(day)
        append(setup.signins, day.signins)
        alerts = setup.wait_for_alerts(len(expected))
        wait_until(lambda: routed(fluentd.log()).get(STATS_TAG, 0) >= 2, 10, "two health records on Fluentd's stdout")
        running = fluentd.log()
        assert fluentd.stop(whole_group=False) == 0  # Fluentd's own shutdown: flush, close, SIGTERM the child
        log = fluentd.log()
    assert by_alert_id(alerts) == by_alert_id(expected)
    assert len(alerts) == len(expected)
    tags = routed(log)
    assert tags[ALERT_TAG] == len(expected) and set(tags) == {ALERT_TAG, STATS_TAG}, tags
    assert "invalid line found" not in running and "[error]" not in running, running


def test_a_child_that_dies_is_respawned_and_resumes_from_its_state(tmp_path):
    """kill -9 of the child once its snapshot holds the failures: Fluentd starts another
    (child_respawn), which loads --state, so the sign-ins that come next still alert."""
    day = SampleDay("rfc3339")
    expected = reference_alerts(day.auth, day.signins)
    setup = FluentdSetup(tmp_path)
    with setup.start() as fluentd:
        setup.feed_failures(day)
        counted = time.time()
        wait_until(lambda: os.path.exists(setup.state) and os.stat(setup.state).st_mtime > counted, 30,
                   "a snapshot written after the failures were read (--snapshot-interval 10s)")
        first = setup.child()
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: setup.child() != first, 30, "a respawned child")
        fluentd.wait_for_log("respawning child process")
        append(setup.signins, day.signins)
        alerts = setup.wait_for_alerts(len(expected))
        assert fluentd.stop(whole_group=False) == 0
    assert by_alert_id(alerts) == by_alert_id(expected)
