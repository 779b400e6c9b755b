"""``fail2entra --forward`` through the installed command, against the real loopback forward
server of tests/forward_server.py: tags, event times and records as on stdout, a server that
comes up late or restarts, a restart of our own process with alerts unacknowledged, and unix
sockets. Alerts are delivered at least once; a repeat carries the same AlertId."""

import functools
import json
import os
import signal
import socket
import subprocess
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Dict, List

import pytest

from cli import COMMAND, alerts_of, run_cli, wait_for_health, wait_for_signal_handler
from forward_server import ForwardServer, wait_until
from samples import SAMPLE_DIR
from parsers.timestamps import parse_iso8601

FAILURES = open(os.path.join(SAMPLE_DIR, "auth.log"), "rb").read()  # 203.0.113.5 attacks
ATTACKER = "203.0.113.5"
TAG = "test.forward.alert"
SIGNIN_START = datetime(2026, 11, 27, 13, 0, 0, 123456, tzinfo=timezone.utc)
CLOSE_TIMEOUT = 5.0  # what the CLI gives the forward output at exit to deliver what is pending
EXIT_MARGIN = 20.0


def signins(first: int, count: int) -> bytes:
    """Event Hub sign-ins from the attacker, one user each (so none is suppressed), with
    sub-second times, as JSON lines."""
    lines = []
    for number in range(first, first + count):
        when = SIGNIN_START + timedelta(seconds=number, microseconds=number * 1111)
        iso = when.isoformat()
        lines.append(json.dumps({
            "time": when.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z", "category": "SignInLogs", "resultType": "0",
            "callerIpAddress": ATTACKER, "operationName": "Sign-in activity",
            "properties": {"id": f"signin-{number:04d}", "createdDateTime": iso, "ipAddress": ATTACKER,
                           "userPrincipalName": f"user{number}@contoso.com", "status": {"errorCode": 0}},
        }))
    return ("\n".join(lines) + "\n").encode()


@functools.lru_cache(maxsize=None)
def stdout_alerts(count: int) -> List[dict]:
    """The alerts that the failures and ``count`` sign-ins give on stdout, without --forward."""
    result = run_cli(["-"], stdin=FAILURES + signins(0, count))
    assert result.returncode == 0, result.stderr
    alerts = alerts_of(result.stdout)
    assert len(alerts) == count
    return alerts


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def by_alert_id(events) -> Dict[str, List[dict]]:
    grouped = defaultdict(list)
    for _, _, record in events:
        grouped[record["AlertId"]].append(record)
    return grouped


class Running:
    """``fail2entra --forward ...`` reading a pipe, with its log file for health figures."""

    def __init__(self, args: List[str], tmp_path) -> None:
        self.log = str(tmp_path / "fail2entra.log")
        self.stderr_path = tmp_path / "stderr"
        self._stderr = open(self.stderr_path, "wb")
        self.process = subprocess.Popen([COMMAND, *args, "--log-file", self.log, "--stats", "-"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr)
        wait_for_signal_handler(self.process.pid, signal.SIGTERM)

    def write(self, data: bytes) -> None:
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def wait_for_alerts(self, count: int, timeout: float = 10.0) -> dict:
        """Wait until ``count`` alerts were handed to the forward output (health figures)."""
        return wait_for_health(self.process.pid, self.log, lambda figures: figures["alerts"] >= count, timeout)

    def finish(self, timeout: float = CLOSE_TIMEOUT + EXIT_MARGIN) -> "tuple[int, bytes]":
        self.process.stdin.close()
        status = self.process.wait(timeout=timeout)
        return status, self.process.stdout.read()

    def text(self) -> str:
        return self.stderr_path.read_text() + open(self.log).read()

    def __enter__(self) -> "Running":
        return self

    def __exit__(self, *exc_info) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            try:
                pipe.close()
            except OSError:
                pass
        self._stderr.close()


@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_every_alert_arrives_with_its_tag_sign_in_time_and_record(tmp_path, transport):
    expected = stdout_alerts(3)
    server = ForwardServer(unix_path=str(tmp_path / "forward.sock")) if transport == "unix" else ForwardServer()
    with server:
        if transport == "unix":
            assert server.address.startswith("unix:///")
        result = run_cli(["--forward", server.address, "--tag", TAG, "-"], stdin=FAILURES + signins(0, 3))
        assert result.returncode == 0, result.stderr
        assert result.stdout == b""  # alerts go to the server only
        events = server.wait_for_events(len(expected))
    assert len(events) == len(expected), events  # acknowledged at once: no repeats
    assert [tag for tag, _, _ in events] == [TAG] * len(expected)
    assert [record for _, _, record in events] == expected
    for event_time, record in ((when, record) for _, when, record in events):
        sign_in_time = parse_iso8601(record["timestamp"])
        assert sign_in_time % 1, record["timestamp"]  # the test's sign-ins have fractions
        assert abs(event_time - sign_in_time) < 2e-6, (event_time, record["timestamp"])


def test_a_server_that_comes_up_later_still_gets_every_alert_before_exit(tmp_path):
    expected = stdout_alerts(3)
    port = free_port()
    server = ForwardServer(port=port)
    with Running(["--forward", f"127.0.0.1:{port}", "--tag", TAG], tmp_path) as cli:
        cli.write(FAILURES + signins(0, 3))
        figures = cli.wait_for_alerts(3)
        assert figures["forward"]["acknowledged"] == 0 and figures["forward"]["pending"] == 3, figures
        wait_until(lambda: "failed" in open(cli.log).read(), message="a failed delivery in the log")
        with server:  # up only now
            status, stdout = cli.finish()
            assert status == 0, cli.text()
            assert stdout == b""
            events = server.events  # as the process exited: nothing may come later
    assert sorted(by_alert_id(events)) == sorted(alert["AlertId"] for alert in expected), cli.text()
    assert all(tag == TAG for tag, _, _ in events)
    assert "pending 0" in cli.stderr_path.read_text()


def test_a_server_killed_and_restarted_mid_run_gets_every_alert_at_least_once(tmp_path):
    expected = {alert["AlertId"]: alert for alert in stdout_alerts(60)}
    with ForwardServer() as server, \
            Running(["--forward", server.address, "--tag", TAG, "--spool", str(tmp_path / "spool")], tmp_path) as cli:
        cli.write(FAILURES + signins(0, 20))
        server.wait_for_events(20)
        server.stop()  # killed: listener and connections gone
        cli.write(signins(20, 20))
        cli.wait_for_alerts(40)
        server.start()  # back on the same port
        cli.write(signins(40, 20))
        status, stdout = cli.finish()
        assert status == 0, cli.text()
        events = server.events
    received = by_alert_id(events)
    assert sorted(received) == sorted(expected), f"missing: {sorted(set(expected) - set(received))}"
    for alert_id, copies in received.items():
        assert all(copy == expected[alert_id] for copy in copies), alert_id  # a repeat is the same alert
    summary = cli.stderr_path.read_text()
    assert "pending 0" in summary and "reconnects 0" not in summary, summary


def test_unacknowledged_alerts_survive_a_restart_in_the_spool(tmp_path):
    expected = sorted(alert["AlertId"] for alert in stdout_alerts(3))
    spool = str(tmp_path / "alerts.spool")
    args = ["--forward", None, "--tag", TAG, "--spool", spool, "--stats", "-"]
    with ForwardServer() as server:
        args[1] = server.address
        server.send_acks = False
        first = run_cli(args, stdin=FAILURES + signins(0, 3), timeout=CLOSE_TIMEOUT + EXIT_MARGIN)
        assert first.returncode == 0, first.stderr
        assert sorted(by_alert_id(server.events)) == expected  # sent, never acknowledged
        assert "pending 3" in first.stderr.decode(), first.stderr
        assert os.path.getsize(spool) > 0
        server.send_acks = True
        already = len(server.events)
        second = run_cli(args, stdin=b"", timeout=CLOSE_TIMEOUT + EXIT_MARGIN)  # no new input at all
        assert second.returncode == 0, second.stderr
        resent = server.events[already:]
    assert sorted(by_alert_id(resent)) == expected
    assert all(tag == TAG for tag, _, _ in resent)
    summary = second.stderr.decode()
    assert "emitted 0, acknowledged 3, resent 3" in summary and "pending 0" in summary, summary
