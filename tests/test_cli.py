"""The installed command, driven through real pipes: usage errors, stats, explain mode, what
stdout may carry, and the bundled sample data (the README's Quickstart)."""

import os
import signal
import subprocess

import pytest

from cli import COMMAND, alerts_of, run_cli, wait_for_signal_handler
from samples import SAMPLE_DIR

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = [os.path.join(SAMPLE_DIR, name) for name in ("auth.log", "security.xml", "signins.jsonl")]


def test_sample_data_alerts_real_attackers_and_not_near_misses():
    result = run_cli(SAMPLE)
    assert result.returncode == 0, result.stderr
    alerts = alerts_of(result.stdout)
    assert sorted(alert["IPAddress"] for alert in alerts) == ["192.0.2.50", "203.0.113.5", "203.0.113.66"]
    assert result.stderr == b""  # no terminal: no progress line, and the sample is clean


def test_sample_data_under_the_kql_profile_charges_the_injected_address():
    alerts = alerts_of(run_cli(["--profile", "kql"] + SAMPLE).stdout)
    assert sorted(alert["IPAddress"] for alert in alerts) == ["192.0.2.200", "192.0.2.50", "203.0.113.5"]


@pytest.mark.parametrize("args,message", [
    (["--threshold", "many"], "--threshold: 'many' is not a whole number"),
    (["--window", "0"], "--window: '0' must be longer than 0"),
    (["--max-record-bytes", "0"], "--max-record-bytes: '0' must be 1 or more"),
    (["--max-signins", "0"], "--max-signins: '0' must be 1 or more"),
    (["--suppress", "an hour"], "--suppress: 'an hour' is not a duration"),
    (["--profile", "strict"], "argument --profile: invalid choice"),
    (["--timezone", "Mars/Olympus"], "--timezone: unknown time zone 'Mars/Olympus'"),
    (["--no-such-option"], "unrecognized arguments: --no-such-option"),
    (["/no/such/file.log"], "cannot read /no/such/file.log"),
    (["--config", "/no/such/config.toml"], "cannot read config /no/such/config.toml"),
])
def test_bad_usage_exits_2_with_one_line(args, message):
    result = run_cli(args)
    assert result.returncode == 2
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fail2entra: error: ") and message in lines[0], lines
    assert result.stdout == b""


def test_bad_config_values_and_keys_exit_2(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('threshold = "five"\n')
    result = run_cli(["--config", str(config)])
    assert result.returncode == 2 and b"config key 'threshold'" in result.stderr
    config.write_text('treshold = 5\n')
    result = run_cli(["--config", str(config)])
    assert result.returncode == 2 and b"unknown key 'treshold'" in result.stderr
    config.write_text('threshold = [\n')
    assert run_cli(["--config", str(config)]).returncode == 2


def test_the_shipped_config_runs_and_options_override_it():
    config = os.path.join(ROOT, "conf", "fail2entra.toml")
    result = run_cli(["--config", config] + SAMPLE)
    assert result.returncode == 0, result.stderr
    assert len(alerts_of(result.stdout)) == 3
    result = run_cli(["--config", config, "--threshold", "20"] + SAMPLE)
    assert alerts_of(result.stdout) == []


def test_stats_summary_on_stderr():
    result = run_cli(["--stats"] + SAMPLE)
    text = result.stderr.decode()
    assert "fail2entra summary" in text
    assert "recognised: eventhub 9, syslog-rfc3339 44, windows-xml 19" in text
    assert "alerts: 3" in text and "lines: 73" in text


def test_bad_input_is_counted_reported_and_never_reaches_stdout():
    garbage = b"\x00\x01garbage\n{\"broken\": \n<Event><System></System></Event>\nhello\n"
    good = open(SAMPLE[0], "rb").read() + open(SAMPLE[2], "rb").read()
    result = run_cli(["--stats", "-"], stdin=garbage + good + garbage)
    assert result.returncode == 0
    alerts = alerts_of(result.stdout)  # every stdout line is an alert record
    assert [alert["IPAddress"] for alert in alerts] == ["203.0.113.5", "203.0.113.66"]
    text = result.stderr.decode()
    assert "unrecognised: 4" in text and "malformed: json 2, windows-xml 2" in text
    assert "stdin:2: malformed json record" in text


def test_explain_mode_shows_each_line_and_its_verdict():
    result = run_cli(["--explain", SAMPLE[0], SAMPLE[2]])
    assert result.returncode == 0
    text = result.stdout.decode()
    assert "FAILURE counted x1 for 203.0.113.5 on the Syslog list" in text
    assert "not counted: sshd 'accepted-auth' is not a counted failure" in text
    assert "FAILURE counted x6 for 198.51.100.9" in text  # message repeated 6 times
    assert "program is not sshd" in text
    assert "SUCCESS from 203.0.113.5 (bob@contoso.com)" in text
    assert "=> ALERT 203.0.113.5 bob@contoso.com [Syslog=11]" in text
    assert "Invalid user x from 192.0.2.200 port 22 from 203.0.113.66" in text


def test_kql_explain_gives_the_rules_reasons():
    text = run_cli(["--explain", "--profile", "kql", SAMPLE[0]]).stdout.decode()
    assert "SyslogMessage has an excluded term" in text
    assert "FAILURE counted x1 for 192.0.2.200 on the Syslog list" in text
    assert "ProcessName is 'sudo'" in text


def test_files_are_read_in_order_and_dash_is_stdin(tmp_path):
    failures = open(SAMPLE[0], "rb").read()
    result = run_cli([SAMPLE[2], "-"], stdin=failures)
    alerts = alerts_of(result.stdout)
    assert len(alerts) == 2 and all(alert["Late"] for alert in alerts)


def test_alerts_are_written_as_they_are_found():
    """The alert for a sign-in is on stdout before stdin is closed."""
    process = subprocess.Popen([COMMAND, "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        process.stdin.write(open(SAMPLE[0], "rb").read())
        process.stdin.write(open(SAMPLE[2], "rb").readline())
        process.stdin.flush()
        line = process.stdout.readline()
        assert alerts_of(line)[0]["IPAddress"] == "203.0.113.5"
    finally:
        process.stdin.close()
        process.wait(timeout=30)
    assert process.returncode == 0


def test_a_closed_stdout_ends_the_process_quietly():
    process = subprocess.Popen([COMMAND, "--suppress", "0", "-"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdin.write(open(SAMPLE[0], "rb").read())
    signin = open(SAMPLE[2], "rb").readline()
    process.stdin.write(signin)
    process.stdin.flush()
    process.stdout.readline()
    process.stdout.close()  # the reader goes away
    try:
        for _ in range(200):
            process.stdin.write(signin)
            process.stdin.flush()
    except BrokenPipeError:
        pass
    assert process.wait(timeout=30) == 0
    assert b"Traceback" not in process.stderr.read()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_finishes_what_was_read_and_exits_0(signum):
    """Fluentd closes the child's stdin and sends SIGTERM at once: every alert still comes out."""
    process = subprocess.Popen([COMMAND, "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for_signal_handler(process.pid, signal.SIGTERM)  # installed last of our handlers
    process.stdin.write(open(SAMPLE[0], "rb").read() + open(SAMPLE[2], "rb").read())
    process.stdin.close()
    process.send_signal(signum)
    stdout, stderr = process.stdout.read(), process.stderr.read()
    assert process.wait(timeout=30) == 0, stderr
    assert len(alerts_of(stdout)) == 2


def test_a_signal_while_a_file_is_read_still_drains_stdin(tmp_path):
    """``fail2entra FIFO FILE -``: a SIGTERM while the FIFO is read skips FILE (the Windows
    sample, whose failures would make a third alert) but still reads what was already written
    to stdin. The first input is a FIFO, so that the signal lands while it is read."""
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)
    process = subprocess.Popen([COMMAND, fifo, SAMPLE[1], "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    wait_for_signal_handler(process.pid, signal.SIGTERM)
    process.stdin.write(open(SAMPLE[0], "rb").read() + open(SAMPLE[2], "rb").read())
    process.stdin.close()
    with open(fifo, "wb") as writer:  # opens once the command opened the FIFO to read it
        writer.write(b"Nov 28 05:01:02 web1 sshd[1]: Connection closed by 192.0.2.1 port 2 [preauth]\n")
        writer.flush()
        process.send_signal(signal.SIGTERM)
    stdout, stderr = process.stdout.read(), process.stderr.read()
    assert process.wait(timeout=30) == 0, stderr
    assert len(alerts_of(stdout)) == 2
