"""``--signins graph``: the installed fail2entra, driven through pipes, polls a Graph-compatible
HTTPS server on 127.0.0.1 (tests/graph_server.py) with the real msal client, and alerts when
the sign-ins it fetches meet host failures from stdin: both sign-in logs, paging, late
sign-ins inside the overlap, throttling, server errors, malformed pages, token expiry, restarts
with --state, and an idle stdin. The same under a real Fluentd exec_filter when FLUENTD names
its binary."""

import calendar
import json
import os
import signal
import subprocess
import time
from typing import Dict, List, Optional, Sequence

import msgpack
import pytest

from cli import CHILD_ENV, COMMAND, StdoutReader, request_health, wait_for_health, wait_for_signal_handler
from graph_server import CLIENT_ID, SECRET, TENANT, GraphServer, make_client_certificate, signin
from scenario import iso

from parsers.event import NON_INTERACTIVE_SIGNIN_LOGS, SIGNIN_LOGS
from plugin.cli import Runner, load_config
from plugin.config import ConfigError

ATTACKER, SECOND_ATTACKER, BYSTANDER = "203.0.113.7", "203.0.113.8", "198.51.100.9"
V1, BETA = "/v1.0/auditLogs/signIns", "/beta/auditLogs/signIns"


def failures(ip: str, count: int = 6) -> bytes:
    """sshd failures from ``ip`` a few minutes ago (RFC 3339 syslog lines)."""
    start = time.time() - 300
    return "".join(f"<38>{iso(start + index)[:-1]}+00:00 web1 sshd[{4000 + index}]: Failed password for root "
                   f"from {ip} port {50000 + index} ssh2\n" for index in range(count)).encode()


def graph_args(graph: GraphServer, tmp_path, *extra: str) -> List[str]:
    return ["--signins", "graph", "--tenant-id", TENANT, "--client-id", CLIENT_ID, "--login-url", graph.url,
            "--graph-url", graph.url, "--ca-file", graph.ca_file, "--poll-interval", "0.2s",
            "--log-file", str(tmp_path / "fail2entra.log"), *extra]


class Fail2entra:
    """The command with stdin and stdout as pipes (stdout read as it comes); stdin stays open
    until :meth:`finish`."""

    def __init__(self, args: Sequence[str], tmp_path, secret: Optional[str] = SECRET) -> None:
        self.log = str(tmp_path / "fail2entra.log")
        environment = dict(CHILD_ENV)
        environment.pop("FAIL2ENTRA_CLIENT_SECRET", None)
        if secret is not None:
            environment["FAIL2ENTRA_CLIENT_SECRET"] = secret
        self._stderr = open(tmp_path / "stderr", "w+b")
        self.process = subprocess.Popen([COMMAND, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self._stderr, env=environment)
        self.reader = StdoutReader(self.process.stdout, "json")
        self.reader.start()
        wait_for_signal_handler(self.process.pid, signal.SIGTERM)

    def __enter__(self) -> "Fail2entra":
        return self

    def __exit__(self, *exc) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._stderr.close()

    def write(self, data: bytes) -> None:
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def alerts(self) -> List[dict]:
        return [record for _, record in self.reader.records]

    def wait_for_alerts(self, count: int, timeout: float = 10.0) -> List[dict]:
        self.reader.wait_for(lambda found: len(found) >= count, timeout, f"{count} alerts")
        return self.alerts()

    def health(self) -> dict:
        return request_health(self.process.pid, self.log)

    def wait_for_health(self, condition, timeout: float = 10.0) -> dict:
        return wait_for_health(self.process.pid, self.log, condition, timeout)

    def finish(self, terminate: bool = False) -> int:
        """Close stdin (and send SIGTERM, as Fluentd does); the exit status. Every stdout
        line must have been a JSON alert."""
        self.process.stdin.close()
        if terminate:
            self.process.send_signal(signal.SIGTERM)
        status = self.process.wait(timeout=30)
        self.reader.join(timeout=10)
        assert self.reader.error is None, self.reader.error
        for alert in self.alerts():
            assert alert["AlertName"] == "Failed host logons but success logon to AzureAD", alert
        return status

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")


def who(alerts: List[dict]) -> List[tuple]:
    return sorted((alert["IPAddress"], alert["UserPrincipalName"], alert["Type"]) for alert in alerts)


def eventually(condition, timeout: float, what) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s: {what()}")
        time.sleep(0.02)


def saved_signin_ids(path: str) -> int:
    """How many handed sign-ins the state snapshot at ``path`` remembers (0: none yet)."""
    try:
        with open(path, "rb") as handle:
            return next((item[1] for item in msgpack.Unpacker(handle, raw=False, strict_map_key=False)
                         if isinstance(item, list) and item[:1] == ["signin-ids"]), 0)
    except FileNotFoundError:
        return 0


def polls_done(table: str, at_least: int):
    return lambda figures: figures["signin_polls"][table] >= at_least


# -- the whole path --------------------------------------------------------------------------------

def test_sign_ins_of_both_logs_meet_host_failures_from_stdin(tmp_path):
    """Authenticated with a certificate; paging through @odata.nextLink; a failed sign-in and
    a success from an address without failures do not alert."""
    certificate_file, certificate = make_client_certificate(tmp_path)
    with GraphServer(tmp_path, page_size=2, certificate=certificate) as graph:
        now = time.time()
        graph.add(signin("alice@contoso.com", ATTACKER, now - 40))
        graph.add(signin("alice@contoso.com", ATTACKER, now - 35, error_code=50126))
        graph.add(signin("carol@contoso.com", BYSTANDER, now - 30))
        graph.add(signin("dave@contoso.com", BYSTANDER, now - 25))
        graph.add(signin("bob@contoso.com", SECOND_ATTACKER, now - 20, interactive=False))
        with Fail2entra(graph_args(graph, tmp_path, "--client-certificate", certificate_file), tmp_path,
                        secret=None) as run:
            run.write(failures(ATTACKER) + failures(SECOND_ATTACKER))
            alerts = run.wait_for_alerts(2)
            figures = run.wait_for_health(polls_done(SIGNIN_LOGS, 2))
            assert run.finish() == 0
        first = graph.signin_requests()[0]
        paged = [request for request in graph.signin_requests() if request.path == V1 and request.skiptoken]
    assert who(alerts) == [(ATTACKER, "alice@contoso.com", SIGNIN_LOGS),
                           (SECOND_ATTACKER, "bob@contoso.com", NON_INTERACTIVE_SIGNIN_LOGS)]
    assert paged, "the second page was fetched through @odata.nextLink"
    since = calendar.timegm(time.strptime(first.filter.split(" ge ")[1][:19], "%Y-%m-%dT%H:%M:%S"))
    assert abs(since - (now - 86400)) < 30, f"the first poll reads back --window: {first.filter}"
    assert figures["signins_received"] == {SIGNIN_LOGS: 4, NON_INTERACTIVE_SIGNIN_LOGS: 1}, figures
    assert not any(figures["signin_errors"].values()), figures
    assert figures["recognised"]["graph"] == 5


def test_a_sign_in_that_shows_up_late_inside_the_overlap_is_alerted_once(tmp_path):
    with GraphServer(tmp_path) as graph:
        newest = time.time() - 30
        graph.add(signin("alice@contoso.com", ATTACKER, newest))
        args = graph_args(graph, tmp_path, "--signins-overlap", "5m", "--signin-tables", SIGNIN_LOGS,
                          "--suppress", "0")
        with Fail2entra(args, tmp_path) as run:
            run.write(failures(ATTACKER) + failures(SECOND_ATTACKER))
            run.wait_for_alerts(1)
            floor = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(newest - 300)))
            # after a complete poll, the next reads from the overlap before the newest sign-in
            eventually(lambda: graph.signin_requests()[-1].filter == f"createdDateTime ge {floor}", 5,
                       lambda: f"polls from the floor {floor}: {graph.signin_requests()[-3:]}")
            late = graph.add(signin("bob@contoso.com", SECOND_ATTACKER, newest - 120))  # older than the newest
            alerts = run.wait_for_alerts(2)
            polls = run.health()["signin_polls"][SIGNIN_LOGS]
            figures = run.wait_for_health(polls_done(SIGNIN_LOGS, polls + 5))
            assert run.finish() == 0
    assert [alert["Id"] for alert in run.alerts()][1:] == [late["id"]]
    assert len(run.alerts()) == 2 and len(alerts) == 2, "with --suppress 0, a repeat would alert again"
    assert figures["signins_received"][SIGNIN_LOGS] == 2
    assert figures["signins_duplicate"][SIGNIN_LOGS] > 5, "the overlap is read again and again"


def test_throttling_server_errors_and_a_malformed_page_lose_no_sign_in(tmp_path):
    with GraphServer(tmp_path, page_size=1) as graph:
        now = time.time()
        graph.add(signin("alice@contoso.com", ATTACKER, now - 40))
        graph.add(signin("erin@contoso.com", BYSTANDER, now - 38))
        graph.add(signin("bob@contoso.com", SECOND_ATTACKER, now - 30, interactive=False))
        graph.add(signin("frank@contoso.com", BYSTANDER, now - 28, interactive=False))
        graph.fail(V1, 429, {"Retry-After": "2"}, b'{"error": {"code": "TooManyRequests", "message": "slow down"}}')
        graph.fail(V1, 500, body=b'{"error": {"code": "InternalServerError", "message": "oops"}}')
        graph.fail(BETA, 200, body=b'{"value": [{"id": "cut', paged=True)  # the second page, cut short
        graph.fail(BETA, 503, {"Retry-After": "1"})
        with Fail2entra(graph_args(graph, tmp_path, "--suppress", "0"), tmp_path) as run:
            run.write(failures(ATTACKER) + failures(SECOND_ATTACKER))
            alerts = run.wait_for_alerts(2, timeout=15)
            figures = run.wait_for_health(lambda found: all(count >= 2 for count in found["signin_polls"].values()))
            assert run.finish() == 0
        requests = graph.signin_requests()
    assert who(alerts) == [(ATTACKER, "alice@contoso.com", SIGNIN_LOGS),
                           (SECOND_ATTACKER, "bob@contoso.com", NON_INTERACTIVE_SIGNIN_LOGS)]
    assert len(run.alerts()) == 2, "nothing handed twice after the retries"
    errors = figures["signin_errors"]
    assert (errors["throttled"], errors["http"], errors["malformed_page"], errors["unavailable"]) == (1, 1, 1, 1), errors
    throttled = next(index for index, request in enumerate(requests) if request.status == 429)
    after = next(request for request in requests[throttled + 1:] if request.path == V1)
    assert after.at - requests[throttled].at >= 1.95, "Retry-After: 2 was honoured (not the first back-off, 1 s)"
    log = open(run.log).read()
    for text in ("throttled: HTTP 429: TooManyRequests: slow down", "http: HTTP 500: InternalServerError: oops",
                 "malformed_page: not JSON", "unavailable: HTTP 503"):
        assert text in log, log


def test_an_expiring_token_is_renewed_and_a_rejected_one_retried_once(tmp_path):
    with GraphServer(tmp_path) as graph:
        # msal takes a token as expired 5 minutes early: this one serves it for 1 s; the
        # server refuses it after 4 s (3 s of margin for a loaded machine between msal's check
        # and the request's arrival), so a client that kept it would see 401s
        graph.token_lifetime, graph.token_max_age = 301, 4.0
        graph.add(signin("alice@contoso.com", ATTACKER, time.time() - 30))
        with Fail2entra(graph_args(graph, tmp_path, "--signin-tables", SIGNIN_LOGS), tmp_path) as run:
            run.write(failures(ATTACKER) + failures(SECOND_ATTACKER))
            run.wait_for_alerts(1)
            time.sleep(5.0)
            renewed, polled = len(graph.tokens), len(graph.signin_requests(200))
            assert not graph.signin_requests(401), "the token was renewed before the server refused it"
            assert 2 <= renewed and polled >= 2 * renewed, (renewed, polled, "tokens are cached between polls")
            issued = len(graph.tokens)
            graph.token_lifetime, graph.token_max_age = 3600, None
            # the token cached now is one of an hour, or the next poll would just renew it
            eventually(lambda: len(graph.tokens) > issued, 10, lambda: "a token of an hour")
            graph.revoke_tokens()  # refused before it expires: 401, a new token, the same request again
            graph.add(signin("bob@contoso.com", SECOND_ATTACKER, time.time() - 5))
            run.wait_for_alerts(2)
            figures = run.health()
            assert run.finish() == 0
        requests = graph.signin_requests()
    refused = next(index for index, request in enumerate(requests) if request.status == 401)
    retried = requests[refused + 1]
    assert retried.status == 200 and retried.token != requests[refused].token
    assert retried.at - requests[refused].at < 1.0, "retried at once, not after a back-off"
    assert not any(figures["signin_errors"].values()), figures


def test_a_restart_with_state_neither_misses_nor_repeats_a_sign_in(tmp_path):
    """kill -9 in the middle of a poll (after two pages were handed and saved), then a clean
    restart with SIGTERM: every sign-in alerts exactly once over the three runs, including
    those that came while the process was down and one that came late."""
    state = str(tmp_path / "state")
    args_for = lambda graph: graph_args(graph, tmp_path, "--state", state, "--snapshot-interval", "100ms",  # noqa: E731
                                        "--suppress", "0", "--signin-tables", SIGNIN_LOGS)
    with GraphServer(tmp_path, page_size=2) as graph:
        now = time.time()
        expected = [graph.add(signin("alice@contoso.com", ATTACKER, now - 60 + index))["id"] for index in range(5)]
        released = graph.hold(V1, skiptoken="4")  # the third page waits
        with Fail2entra(args_for(graph), tmp_path) as first:
            first.write(failures(ATTACKER))
            first.wait_for_alerts(4)
            eventually(lambda: saved_signin_ids(state) == 4, 10, lambda: "a snapshot after the fourth sign-in")
            first.process.kill()
            first.process.wait()
        expected.append(graph.add(signin("alice@contoso.com", ATTACKER, now - 90))["id"])  # late, while down
        expected.append(graph.add(signin("alice@contoso.com", ATTACKER, now - 2))["id"])  # new, while down
        released.set()
        with Fail2entra(args_for(graph), tmp_path) as second:  # the failures come from the state
            second.wait_for_alerts(3)
            second.wait_for_health(polls_done(SIGNIN_LOGS, 2))
            assert second.finish(terminate=True) == 0
        with Fail2entra(args_for(graph), tmp_path) as third:
            third.wait_for_health(polls_done(SIGNIN_LOGS, 3))
            expected.append(graph.add(signin("alice@contoso.com", ATTACKER, time.time() - 1))["id"])
            third.wait_for_alerts(1)
            third.wait_for_health(polls_done(SIGNIN_LOGS, 6))
            assert third.finish(terminate=True) == 0
    alerted = [alert["Id"] for run in (first, second, third) for alert in run.alerts()]
    assert sorted(alerted) == sorted(expected), "each sign-in alerts exactly once"
    assert len(first.alerts()) == 4 and len(third.alerts()) == 1


def test_a_sign_in_alerts_within_2_s_of_the_poll_that_brought_it_while_stdin_is_idle(tmp_path):
    with GraphServer(tmp_path) as graph:
        args = graph_args(graph, tmp_path, "--poll-interval", "1s", "--signin-tables", SIGNIN_LOGS)
        with Fail2entra(args, tmp_path) as run:
            run.write(failures(ATTACKER))
            run.wait_for_health(polls_done(SIGNIN_LOGS, 1))
            item = graph.add(signin("alice@contoso.com", ATTACKER, time.time() - 5))
            arrival, _ = run.reader.wait_for(lambda found: found, 5, "the alert")[0]
            served = next(request.at for request in graph.signin_requests() if item["id"] in request.ids)
            assert run.finish() == 0
    assert arrival - served < 2.0, f"alert {arrival - served:.2f} s after the poll"


# -- settings ----------------------------------------------------------------------------------

@pytest.mark.parametrize("args, secret, message", [
    (["--client-id", CLIENT_ID], SECRET, "needs --tenant-id and --client-id"),
    (["--tenant-id", TENANT, "--client-id", CLIENT_ID], None, "needs exactly one of"),
    (["--tenant-id", TENANT, "--client-id", CLIENT_ID, "--client-certificate", "/etc/hostname"], SECRET,
     "got FAIL2ENTRA_CLIENT_SECRET and --client-certificate"),
    (["--tenant-id", TENANT, "--client-id", CLIENT_ID, "--client-certificate", "/etc/hostname"], None,
     "must hold a certificate and an unencrypted private key"),
    (["--tenant-id", TENANT, "--client-id", CLIENT_ID, "--client-secret-file", "/nonexistent"], None,
     "--client-secret-file /nonexistent: No such file or directory"),
    (["--tenant-id", TENANT, "--client-id", CLIENT_ID, "--graph-url", "http://graph.microsoft.com"], SECRET,
     "--graph-url: 'http://graph.microsoft.com' is not an https:// URL"),
    (["--tenant-id", TENANT, "--client-id", CLIENT_ID, "--ca-file", "/etc/hostname"], SECRET, "--ca-file /etc/hostname"),
    (["--tenant-id", TENANT, "--client-id", CLIENT_ID, "--explain"], SECRET, "does not go with --signins graph"),
    (["--signin-tables", "SigninLogs,AuditLogs"], SECRET, "--signin-tables: 'SigninLogs,AuditLogs': give one or more of"),
])
def test_bad_sign_in_settings_stop_the_start(monkeypatch, args, secret, message):
    monkeypatch.delenv("FAIL2ENTRA_CLIENT_SECRET", raising=False)
    if secret is not None:
        monkeypatch.setenv("FAIL2ENTRA_CLIENT_SECRET", secret)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        config, _ = load_config(["--signins", "graph", *args])
        Runner(config)


def test_the_secret_file_is_read_and_a_wrong_secret_is_a_counted_token_error(tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("a wrong secret\n")
    secret_file.chmod(0o600)
    with GraphServer(tmp_path) as graph:
        args = graph_args(graph, tmp_path, "--client-secret-file", str(secret_file), "--signin-tables", SIGNIN_LOGS)
        with Fail2entra(args, tmp_path, secret=None) as run:
            figures = run.wait_for_health(lambda found: found["signin_errors"]["token"] >= 1)
            assert run.finish() == 0
    assert figures["signin_polls"][SIGNIN_LOGS] == 0
    assert "token: invalid_client: AADSTS7000215" in open(run.log).read()


# -- under a real Fluentd ------------------------------------------------------------------------------

FLUENTD = os.environ.get("FLUENTD")

FLUENTD_CONF = """
<source>
  @type tail
  path {directory}/auth.log
  pos_file {directory}/auth.pos
  tag host.linux.auth
  read_from_head true
  encoding UTF-8
  <parse>
    @type none
  </parse>
</source>
<match host.**>
  @type exec_filter
  @label @FAIL2ENTRA
  command {command}
  num_children 1
  child_respawn inf
  tag security.unrouted.fail2entra
  <format>
    @type msgpack
  </format>
  <inject>
    tag_key tag
    time_key time
    time_type float
  </inject>
  <parse>
    @type msgpack
  </parse>
  <extract>
    tag_key tag
    time_key timestamp
    keep_time_key true
    time_type string
    time_format %iso8601
  </extract>
  <buffer>
    @type memory
    flush_mode immediate
  </buffer>
</match>
<label @FAIL2ENTRA>
  <match security.alert.fail2entra>
    @type stdout
  </match>
  <match **>
    @type stdout
  </match>
</label>
"""


@pytest.mark.skipif(not FLUENTD, reason="set FLUENTD to a fluentd binary to run")
def test_a_polled_sign_in_alerts_through_a_real_fluentd_exec_filter(tmp_path):
    """Host failures tailed by Fluentd and piped to the exec_filter child; the child polls the
    sign-ins itself and writes the alert back to Fluentd, while its stdin is idle."""
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET)
    secret_file.chmod(0o600)
    with GraphServer(tmp_path) as graph:
        command = " ".join([COMMAND, "--input", "msgpack", "--output", "msgpack", "--time-key", "time", "--tag-key",
                            "tag", "--record-tag-key", "tag", "--state", str(tmp_path / "state"),
                            *graph_args(graph, tmp_path, "--client-secret-file", str(secret_file),
                                        "--poll-interval", "0.5s")])
        (tmp_path / "fluent.conf").write_text(FLUENTD_CONF.format(directory=tmp_path, command=command))
        (tmp_path / "auth.log").write_bytes(failures(ATTACKER))
        fluentd = subprocess.Popen([FLUENTD, "-c", str(tmp_path / "fluent.conf"), "--no-supervisor"],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=CHILD_ENV)
        try:
            lines: List[str] = []
            deadline = time.monotonic() + 60
            while not any("fluentd worker is now running" in line for line in lines):
                assert time.monotonic() < deadline and fluentd.poll() is None, "".join(lines)
                lines.append(fluentd.stdout.readline().decode())
            wait_for_health_in_log(tmp_path / "fail2entra.log", 30)
            item = graph.add(signin("alice@contoso.com", ATTACKER, time.time() - 5))
            alert = read_alert(fluentd, lines, deadline=time.monotonic() + 20)
        finally:
            fluentd.send_signal(signal.SIGTERM)
            rest = fluentd.communicate(timeout=60)[0].decode()
    assert alert["Id"] == item["id"] and alert["IPAddress"] == ATTACKER, alert
    assert "Evidence" in alert and alert["timestamp"].endswith("Z")
    output = "".join(lines) + rest
    assert "security.unrouted.fail2entra: {" not in output and "[error]" not in output, output


def wait_for_health_in_log(log_path, timeout: float) -> None:
    """Until the child has logged that it polls (it started, and so did its poller)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(log_path) and "polling Microsoft Graph" in open(log_path).read():
            return
        time.sleep(0.1)
    raise AssertionError("the exec_filter child never started polling")


def read_alert(fluentd: subprocess.Popen, lines: List[str], deadline: float) -> Dict:
    """The first alert Fluentd's stdout output prints (``<time> security.alert.fail2entra: {...}``)."""
    while time.monotonic() < deadline:
        line = fluentd.stdout.readline().decode()
        lines.append(line)
        if "security.alert.fail2entra: " in line:
            return json.loads(line.split("security.alert.fail2entra: ", 1)[1])
    raise AssertionError("no alert from Fluentd: " + "".join(lines[-30:]))
