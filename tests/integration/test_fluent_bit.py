"""conf/fluent-bit.conf (+ conf/parsers.conf: exec input on a `tail -F` pipe, rewrite_tag,
modify, parser) and conf/fluent-bit-forward.conf (forward input, acks, storage.type filesystem)
under a real Fluent Bit: the sample day, its auth log in every syslog form, gives its alerts;
health records get their own tag; fail2entra's exit ends the exec setup with its status and
loses nothing it wrote; a restart of the forward setup's Fluent Bit, stopped or killed, loses no
alert.

Besides paths (and the forward port), one change: --stats-interval 60s becomes 1s (or less), so
that health records show within a test's few seconds."""

import json
import os
import re
import shlex
import shutil
import signal
import socket
import stat
import time
from typing import Dict, List

import pytest

from collectors import (CONF_DIR, COMMAND, FLUENT_BIT, LINUX_ALERTS, SYSLOG_FORMS, Collector, SampleDay, adapted,
                        append, by_alert_id, fail2entra_pid, ips_and_upns, json_lines, lines_read, needs_fluent_bit,
                        opened, reference_alerts, wait_for_figures, wait_until)

pytestmark = needs_fluent_bit


def stdout_records(log: str) -> List[dict]:
    """The records Fluent Bit's stdout outputs printed (Format json_lines), without the "date"
    they add."""
    records = [json.loads(line) for line in log.splitlines() if line.startswith('{"date":')]
    return [{key: value for key, value in record.items() if key != "date"} for record in records]


def health_records(log: str) -> List[dict]:
    return [record for record in stdout_records(log) if "uptime_seconds" in record]


class Files:
    """The paths a Fluent Bit setup reads and writes, under the test's directory."""

    def __init__(self, directory) -> None:
        self.directory = str(directory)
        self.auth_log = os.path.join(self.directory, "auth.log")
        self.lib = os.path.join(self.directory, "lib")
        self.logs = os.path.join(self.directory, "log")
        self.signins = os.path.join(self.lib, "signins.jsonl")
        self.state = os.path.join(self.lib, "state")
        self.child_log = os.path.join(self.logs, "fail2entra.log")
        self.alerts_file = os.path.join(self.logs, "alerts.jsonl")
        os.makedirs(self.lib, exist_ok=True)
        os.makedirs(self.logs, exist_ok=True)
        for path in (self.auth_log, self.signins):
            open(path, "ab").close()

    def paths(self) -> Dict[str, str]:
        return {"/var/log/auth.log": self.auth_log, "/var/lib/fail2entra": self.lib, "/var/log/fail2entra": self.logs}

    def alerts(self) -> List[dict]:
        return json_lines(self.alerts_file)

    def wait_for_alerts(self, count: int, timeout: float = 30.0) -> List[dict]:
        wait_until(lambda: len(self.alerts()) >= count, timeout, f"{count} alerts in {self.alerts_file}")
        return self.alerts()

    def feed_failures(self, day: SampleDay) -> None:
        """Append the auth log once tail follows it; wait until fail2entra has read every line."""
        wait_until(lambda: opened(self.auth_log) and opened(self.signins), 30, "tail -F following both files")
        append(self.auth_log, day.auth)
        wait_for_figures(fail2entra_pid(self.state), self.child_log,
                         lambda figures: lines_read(figures) >= len(day.auth_lines))


# -- the exec setup ---------------------------------------------------------------------------------

def exec_setup(files: Files, fail2entra: str = COMMAND, stats_interval: str = "1s") -> str:
    """conf/fluent-bit.conf and conf/parsers.conf side by side in the test's directory."""
    shutil.copy(os.path.join(CONF_DIR, "parsers.conf"), files.directory)
    config = os.path.join(files.directory, "fluent-bit.conf")
    with open(config, "w", encoding="utf-8") as handle:
        handle.write(adapted("fluent-bit.conf", {"/usr/local/bin/fail2entra": fail2entra,
                                                 "--stats-interval 60s": f"--stats-interval {stats_interval}",
                                                 **files.paths()}))
    return config


@pytest.mark.parametrize("form", SYSLOG_FORMS)
def test_exec_the_sample_day_gives_its_alerts_and_health_records_get_their_own_tag(tmp_path, form):
    day = SampleDay(form)
    expected = reference_alerts(day.auth, day.signins)
    assert ips_and_upns(expected) == LINUX_ALERTS
    files = Files(tmp_path)
    with Collector([FLUENT_BIT, "-c", exec_setup(files)], files.directory, "fluent-bit") as fluent_bit:
        files.feed_failures(day)
        append(files.signins, day.signins)
        alerts = files.wait_for_alerts(len(expected))
        wait_until(lambda: len(health_records(fluent_bit.log())) >= 2, 10, "two health records on stdout")
        assert fluent_bit.stop() == 0
        log = fluent_bit.log()
    assert by_alert_id(alerts) == by_alert_id(expected) and len(alerts) == len(expected)
    # The alert file takes only the alert tag: health records reached stdout under the other.
    assert all("uptime_seconds" not in alert for alert in alerts)
    assert health_records(log) and all("tag" not in record for record in health_records(log))
    assert by_alert_id([record for record in stdout_records(log) if "AlertId" in record]) == by_alert_id(expected)
    assert "[error]" not in log, log


def recording_wrapper(directory: str) -> "tuple[str, str]":
    """A stand-in for /usr/local/bin/fail2entra that runs the real one and keeps a copy of
    everything it writes to Fluent Bit; exits with its status."""
    copy = os.path.join(directory, "written.jsonl")
    wrapper = os.path.join(directory, "fail2entra-recorded")
    with open(wrapper, "w", encoding="utf-8") as handle:
        handle.write(f"#!/bin/bash\nset -o pipefail\n{shlex.quote(COMMAND)} \"$@\" | tee -a {shlex.quote(copy)}\n")
    os.chmod(wrapper, os.stat(wrapper).st_mode | stat.S_IXUSR)
    return wrapper, copy


def test_exec_when_fail2entra_dies_the_loop_restarts_it_from_its_state_and_nothing_written_is_lost(tmp_path):
    """fail2entra killed (kill -9) under the exec input, once its snapshot holds the failures:
    the pipeline ends when tail next writes, the command's loop starts another a second later,
    which resumes from --state, so the sign-ins that come next still alert. Fluent Bit itself
    keeps running, and every record the dead fail2entra wrote reaches the outputs, health
    records written just before its death included (which Exit_After_Oneshot would lose).
    A stop as systemd does it (SIGTERM to every process) ends Fluent Bit at once."""
    day = SampleDay("rfc3339")
    expected = reference_alerts(day.auth, day.signins)
    files = Files(tmp_path)
    wrapper, copy = recording_wrapper(files.directory)
    config = exec_setup(files, fail2entra=wrapper, stats_interval="100ms")
    with Collector([FLUENT_BIT, "-c", config], files.directory, "fluent-bit") as fluent_bit:
        files.feed_failures(day)
        counted = time.time()
        wait_until(lambda: os.path.exists(files.state) and os.stat(files.state).st_mtime > counted, 30,
                   "a snapshot written after the failures were read (--snapshot-interval 10s)")
        first = fail2entra_pid(files.state)
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: not os.path.exists(f"/proc/{first}"), 30, "fail2entra to die")
        append(files.auth_log, day.auth_lines[0].encode() + b"\n")  # tail writes, meets the closed pipe
        wait_until(lambda: fail2entra_pid(files.state) != first, 30, "the loop's next fail2entra")
        append(files.signins, day.signins)
        alerts = files.wait_for_alerts(len(expected))
        written_before_death = first_run(json_lines(copy))
        assert len(written_before_death) >= 3, written_before_death
        wait_until(lambda: health_records(fluent_bit.log())[:len(written_before_death)] == written_before_death, 10,
                   "every health record the killed fail2entra wrote, on Fluent Bit's stdout")
        assert fluent_bit.process.poll() is None
        stopping = time.monotonic()
        assert fluent_bit.stop(timeout=10) == 0
        assert time.monotonic() - stopping < 5
    assert by_alert_id(alerts) == by_alert_id(expected)


def first_run(written: List[dict]) -> List[dict]:
    """The health records of the first fail2entra (uptime grows until the next one starts)."""
    health = [record for record in written if "uptime_seconds" in record]
    restart = next((index for index in range(1, len(health))
                    if health[index]["uptime_seconds"] < health[index - 1]["uptime_seconds"]), len(health))
    return [{key: value for key, value in record.items() if key != "tag"} for record in health[:restart]]


# -- the forward setup ------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def documented_command(conf_name: str) -> str:
    """The fail2entra pipeline given in the comment at the top of conf/<conf_name>."""
    with open(os.path.join(CONF_DIR, conf_name), encoding="utf-8") as handle:
        text = handle.read()
    block = re.search(r"^#   (tail .*?)\n#\n", text, re.S | re.M).group(1)
    return " ".join(line.lstrip("#").strip().rstrip("\\").strip() for line in block.splitlines())


class ForwardSetup:
    """conf/fluent-bit-forward.conf on a free port, and the fail2entra pipeline its comment gives."""

    def __init__(self, files: Files) -> None:
        self.files = files
        self.port = free_port()
        self.config = os.path.join(files.directory, "fluent-bit-forward.conf")
        with open(self.config, "w", encoding="utf-8") as handle:
            handle.write(adapted("fluent-bit-forward.conf", {
                "/var/lib/fluent-bit/storage": os.path.join(files.directory, "storage"),
                "24224": str(self.port), **files.paths()}))
        command = documented_command("fluent-bit-forward.conf")
        for old, new in {"/usr/local/bin/fail2entra": COMMAND, "24224": str(self.port),
                         "--stats-interval 60s": "--stats-interval 1s", **files.paths()}.items():
            assert old in command, old
            command = command.replace(old, new)
        self.command = command
        self.runs = 0

    def fluent_bit(self) -> Collector:
        self.runs += 1
        collector = Collector([FLUENT_BIT, "-c", self.config], self.files.directory, f"fluent-bit-{self.runs}")
        collector.wait_for_log(r"\[input:forward:forward\.0\] listening on 127\.0\.0\.1:" + str(self.port))
        return collector

    def fail2entra(self) -> Collector:
        return Collector(["/bin/sh", "-c", self.command], self.files.directory, "fail2entra")

    def acknowledged(self, count: int) -> dict:
        return wait_for_figures(fail2entra_pid(self.files.state), self.files.child_log,
                                lambda figures: figures["forward"]["acknowledged"] >= count)


def test_forward_the_sample_day_gives_its_alerts_and_health_records_get_their_own_tag(tmp_path):
    day = SampleDay("rfc3164")
    expected = reference_alerts(day.auth, day.signins)
    assert ips_and_upns(expected) == LINUX_ALERTS
    setup = ForwardSetup(Files(tmp_path))
    with setup.fluent_bit() as fluent_bit, setup.fail2entra() as fail2entra:
        setup.files.feed_failures(day)
        append(setup.files.signins, day.signins)
        alerts = setup.files.wait_for_alerts(len(expected))
        wait_until(lambda: len(health_records(fluent_bit.log())) >= 2, 10, "two health records on stdout")
        fail2entra.stop()  # sh, killed by the SIGTERM as systemd would; fail2entra exits 0
        assert fluent_bit.stop() == 0
        log = fluent_bit.log()
    assert by_alert_id(alerts) == by_alert_id(expected) and len(alerts) == len(expected)
    assert all("uptime_seconds" not in alert for alert in alerts)
    assert "[error]" not in log, log


def test_forward_a_restart_of_fluent_bit_loses_no_alert(tmp_path):
    """Alerts made while Fluent Bit is stopped wait in fail2entra's spool and are sent when it
    is back; alerts acknowledged just before Fluent Bit is killed (kill -9) come back from its
    filesystem storage. Repeats are allowed (at least once), each with its AlertId."""
    day = SampleDay("rfc3339")
    batches = [[day.signin(number, f"user{number}@contoso.com", number) for number in range(first, first + 3)]
               for first in (10, 20, 30)]
    expected = reference_alerts(day.auth, *(json.dumps(item).encode() + b"\n" for batch in batches for item in batch))
    assert len(expected) == 9
    setup = ForwardSetup(Files(tmp_path))
    files = setup.files
    with setup.fail2entra():
        with setup.fluent_bit() as fluent_bit:
            files.feed_failures(day)
            append(files.signins, b"".join(json.dumps(item).encode() + b"\n" for item in batches[0]))
            setup.acknowledged(3)
            assert fluent_bit.stop() == 0
        append(files.signins, b"".join(json.dumps(item).encode() + b"\n" for item in batches[1]))
        wait_for_figures(fail2entra_pid(files.state), files.child_log,
                         lambda figures: figures["alerts"] >= 6 and figures["forward"]["pending"] >= 3)
        with setup.fluent_bit() as fluent_bit:
            setup.acknowledged(6)
            append(files.signins, b"".join(json.dumps(item).encode() + b"\n" for item in batches[2]))
            setup.acknowledged(9)
            os.killpg(fluent_bit.process.pid, signal.SIGKILL)  # the moment its last ack went out
        with setup.fluent_bit() as fluent_bit:
            alerts = files.wait_for_alerts(9)
            assert fluent_bit.stop() == 0
    assert by_alert_id(alerts) == by_alert_id(expected)
