"""The installed command driven through real pipes exactly as Fluentd's out_exec_filter drives it
(see /work/shared/docs/fluent.md and conf/fluentd.conf): an unframed stream of msgpack maps on
stdin with ``tag`` and ``time`` appended by ``<inject>``, stdout parsed as msgpack (or JSON lines
with conf/fluentd-json.conf), stderr discarded, and at shutdown stdin closed then SIGTERM at once.

The command line is the one in the shipped configuration (paths moved to the test's directory),
so a change there is tested here."""

import copy
import json
import os
import re
import shlex
import signal
import struct
import subprocess
import time
from datetime import datetime, timezone
from typing import Dict, List, NamedTuple, Optional, Sequence

import msgpack
import pytest

from cli import CHILD_ENV, COMMAND, StdoutReader, wait_for_signal_handler, write_all
from samples import fixture_files, load_samples
from scenario import iso

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALERT_NAME = "Failed host logons but success logon to AzureAD"
ALERT_TAG = "security.alert.fail2entra"
STATS_TAG = "security.stats.fail2entra"
T0 = 1795842062.0  # 2026-11-28T05:01:02Z, the time of the collector fixtures
LATENCY_LIMIT = 2.0  # seconds from writing a sign-in to reading its alert


# -- the command line of the shipped configuration ------------------------------------------

def conf_command(conf_name: str, tmp_path, overrides: Optional[Dict[str, Optional[str]]] = None,
                 extra: Sequence[str] = ()) -> List[str]:
    """The exec_filter ``command`` of conf/<conf_name>, with this test's paths for --state and
    --log-file; ``overrides`` replaces option values (None drops the option)."""
    with open(os.path.join(ROOT, "conf", conf_name), encoding="utf-8") as handle:
        line = next(text.strip() for text in handle if text.strip().startswith("command "))
    words = shlex.split(line)[2:]  # drop "command" and the program path
    options: Dict[str, str] = {}
    for flag, value in zip(words[::2], words[1::2]):
        assert flag.startswith("--") and not value.startswith("--"), f"unexpected command line: {line}"
        options[flag] = value
    assert len(words) % 2 == 0, f"unexpected command line: {line}"
    options["--state"] = str(tmp_path / "state")
    options["--log-file"] = str(tmp_path / "fail2entra.log")
    for flag, value in (overrides or {}).items():
        if value is None:
            options.pop(flag, None)
        else:
            options[flag] = value
    return [item for pair in options.items() for item in pair] + list(extra)


def fluentd_args(tmp_path, overrides=None, extra: Sequence[str] = ()) -> List[str]:
    return conf_command("fluentd.conf", tmp_path, overrides, extra)


def test_the_shipped_command_lines_are_what_these_tests_assume(tmp_path):
    args = fluentd_args(tmp_path)
    for pair in (["--input", "msgpack"], ["--output", "msgpack"], ["--time-key", "time"],
                 ["--tag-key", "tag"], ["--record-tag-key", "tag"], ["--tag", ALERT_TAG],
                 ["--stats-tag", STATS_TAG]):
        assert pair[1] == args[args.index(pair[0]) + 1], (pair, args)
    json_args = conf_command("fluentd-json.conf", tmp_path)
    assert json_args[json_args.index("--input") + 1] == "json"
    assert json_args[json_args.index("--output") + 1] == "json"


# -- records as Fluentd hands them to the child ------------------------------------------------

def _fixture_records(name: str) -> List[dict]:
    return [json.loads(sample.text) for sample in load_samples(fixture_files("collectors/" + name)[0])]


SYSLOG_RECORD = _fixture_records("fluentd-syslog.jsonl")[0]  # sshd failure, tag and time at the end
WINDOWS_RECORD = _fixture_records("fluentd-windows-eventlog2.jsonl")[0]  # 4625, LogonType 3
SIGNIN_WRAPPER = next(record for record in _fixture_records("wrapped-raw.jsonl")
                      if "message" in record and '"category":"SignInLogs"' in record["message"])


def inject(record: dict, tag: str, when, tag_key: str = "tag", time_key: str = "time") -> dict:
    """What <inject> does: tag and time appended at the end of the map (an existing key of the
    same name is overwritten, so it moves to the end)."""
    record = {key: value for key, value in record.items() if key not in (tag_key, time_key)}
    record[tag_key] = tag
    record[time_key] = when
    return record


def syslog_failure(ip: str, when: float, number: int = 0) -> dict:
    """in_tail + @type syslog: the syslog timestamp is only in the injected time."""
    record = {key: value for key, value in SYSLOG_RECORD.items() if key not in ("tag", "time")}
    record["pid"] = str(4000 + number)
    record["message"] = f"Failed password for invalid user admin from {ip} port {50000 + number} ssh2"
    return inject(record, "host.linux.auth", when)


def windows_failure(ip: str, when: float, number: int = 0) -> dict:
    """in_windows_eventlog2 (hash rendering): every value a string, TimeCreated in UTC with the
    nanoseconds not zero-padded; the injected time is the read time (2 s later)."""
    record = copy.deepcopy({key: value for key, value in WINDOWS_RECORD.items() if key not in ("tag", "time")})
    whole = int(when)
    nanoseconds = round((when - whole) * 1e9)
    record["TimeCreated"] = datetime.fromtimestamp(whole, timezone.utc).strftime("%Y/%m/%d %H:%M:%S") + f".{nanoseconds}"
    record["EventRecordID"] = str(1900000 + number)
    record["EventData"][19] = ip
    record["EventData"][20] = str(50000 + number)
    return inject(record, "host.windows.security", when + 2.0)


def signin(ip: str, upn: str, when: float, sign_in_id: str) -> dict:
    """in_tail @type none of an Event Hub line: the JSON text wrapped in ``message``."""
    body = json.loads(SIGNIN_WRAPPER["message"])
    entry = body["records"][0]
    stamp = datetime.fromtimestamp(when, timezone.utc)
    entry["time"] = stamp.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"
    entry["callerIpAddress"] = ip
    entry["properties"].update(id=sign_in_id, createdDateTime=stamp.isoformat(), userPrincipalName=upn,
                               ipAddress=ip)
    return inject({"message": json.dumps(body, separators=(",", ":"))}, "entra.signin", when + 30.25)


def attack(ip: str, start: float, count: int = 6, windows: bool = False) -> List[dict]:
    """More failures than the default threshold (5) from ``ip``, one source."""
    make = windows_failure if windows else syslog_failure
    return [make(ip, start + index * 1.25 + 0.5, index) for index in range(count)]


SSH_ATTACKER = "203.0.113.5"
RDP_ATTACKER = "198.51.100.77"


def two_attacks() -> "tuple[List[dict], List[dict], Dict[str, str]]":
    """Failures (sshd and Windows), then the two sign-ins that make alerts; expected IP -> UPN."""
    failures = attack(SSH_ATTACKER, T0) + attack(RDP_ATTACKER, T0, windows=True)
    signins = [signin(SSH_ATTACKER, "alice@example.com", T0 + 38.123456, "signin-ssh"),
               signin(RDP_ATTACKER, "bob@example.com", T0 + 39.654321, "signin-rdp")]
    return failures, signins, {SSH_ATTACKER: "alice@example.com", RDP_ATTACKER: "bob@example.com"}


def as_bytes(value, keys: bool):
    """What in_tail sends without ``encoding UTF-8``: strings as msgpack bin (and keys too)."""
    if isinstance(value, dict):
        return {(key.encode() if keys and isinstance(key, str) else key): as_bytes(item, keys)
                for key, item in value.items()}
    if isinstance(value, list):
        return [as_bytes(item, keys) for item in value]
    return value.encode() if isinstance(value, str) else value


def event_time(seconds: float) -> msgpack.ExtType:
    """Fluent's EventTime: msgpack ext type 0, uint32 seconds + uint32 nanoseconds."""
    whole = int(seconds)
    return msgpack.ExtType(0, struct.pack(">II", whole, round((seconds - whole) * 1e9)))


def packed(records: Sequence[object]) -> List[bytes]:
    return [msgpack.packb(record) for record in records]


# -- the child, through real pipes ---------------------------------------------------------------

class Child:
    """``fail2entra`` as Fluentd's child: stdin and stdout pipes, stderr to a file or /dev/null."""

    def __init__(self, args: Sequence[str], tmp_path, encoding: str = "msgpack", stderr: str = "file") -> None:
        self.args = list(args)
        self.encoding = encoding
        self.stderr_path = tmp_path / "stderr"
        self._stderr_file = open(self.stderr_path, "wb") if stderr == "file" else None
        self.process = subprocess.Popen(
            [COMMAND, *self.args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._stderr_file if stderr == "file" else subprocess.DEVNULL, bufsize=0, env=CHILD_ENV)
        self.reader = StdoutReader(self.process.stdout, encoding)
        self.reader.start()

    def wait_until_running(self) -> "Child":
        """Like Fluentd, talk to a child that runs, not one that starts (the SIGTERM handler is
        installed last, after the input is open)."""
        wait_for_signal_handler(self.process.pid, signal.SIGTERM)
        return self

    def write(self, data: bytes) -> float:
        """One write to the pipe (as one flush of a Fluentd buffer chunk); returns when it was done."""
        write_all(self.process.stdin.fileno(), data)
        return time.monotonic()

    def send(self, records: Sequence[object], per_write: int = 3, pause: float = 0.05) -> float:
        """A few records per write, with pauses, like a trickle of log lines; returns the time the
        last write was done."""
        chunks = packed(records) if self.encoding == "msgpack" else \
            [json.dumps(record).encode() + b"\n" for record in records]
        done = time.monotonic()
        for start in range(0, len(chunks), per_write):
            if start:
                time.sleep(pause)
            done = self.write(b"".join(chunks[start:start + per_write]))
        return done

    def finish(self, terminate: bool = False, timeout: float = 30) -> int:
        """Close stdin (and, like Fluentd at shutdown, SIGTERM at once); the exit status."""
        self.process.stdin.close()
        if terminate:
            self.process.send_signal(signal.SIGTERM)
        status = self.process.wait(timeout=timeout)
        self.reader.join(timeout)
        assert not self.reader.is_alive()
        return status

    def alerts(self) -> List[dict]:
        """Every stdout record, checked: valid, and an alert or a health record by its tag."""
        assert self.reader.error is None, self.reader.error
        found = []
        for _, record in self.reader.records:
            assert isinstance(record, dict), record
            if record.get("tag") == STATS_TAG:
                assert "uptime_seconds" in record, record
                continue
            assert record.get("tag") == ALERT_TAG and record.get("AlertName") == ALERT_NAME, record
            found.append(record)
        return found

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace") if self._stderr_file else ""

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.reader.join(5)
        for pipe in (self.process.stdin, self.process.stdout):
            try:
                pipe.close()
            except OSError:
                pass
        if self._stderr_file is not None:
            self._stderr_file.close()

    def __enter__(self) -> "Child":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def ips_and_upns(alerts: List[dict]) -> Dict[str, str]:
    return {alert["IPAddress"]: alert["UserPrincipalName"] for alert in alerts}


def summary_value(stderr: str, name: str) -> str:
    """A line of the --stats summary on stderr, without its label."""
    match = re.search(rf"^  {name}: (.*)$", stderr, re.MULTILINE)
    assert match, f"no '{name}' in the --stats summary:\n{stderr}"
    return match.group(1)


# -- latency: an alert is written as soon as its sign-in is read -------------------------------

@pytest.mark.parametrize("conf_name,encoding", [("fluentd.conf", "msgpack"), ("fluentd-json.conf", "json")])
def test_the_alert_comes_out_before_stdin_is_closed_and_without_delay(tmp_path, conf_name, encoding):
    failures, signins, expected = two_attacks()
    with Child(conf_command(conf_name, tmp_path), tmp_path, encoding) as child:
        child.wait_until_running()
        child.send(failures)  # 3 maps per write, 50 ms apart
        for number, record in enumerate(signins, start=1):
            written = child.send([record])
            records = child.reader.wait_for(lambda found: len(found) >= number, LATENCY_LIMIT + 3,
                                            f"the alert for sign-in {number}")
            latency = records[number - 1][0] - written
            assert latency < LATENCY_LIMIT, f"alert {number} came {latency:.3f} s after its sign-in was written"
            assert child.process.poll() is None  # stdin is still open: nothing waited for its end
        alerts = child.alerts()
        assert ips_and_upns(alerts) == expected
        assert [alert["timestamp"] for alert in alerts] == ["2026-11-28T05:01:40.123456Z", "2026-11-28T05:01:41.654321Z"]
        assert child.finish() == 0
        assert len(child.alerts()) == 2  # nothing more at the end


# -- shutdown: stdin closed, SIGTERM at once --------------------------------------------------------

def test_stdin_closed_and_sigterm_at_once_still_gives_every_alert(tmp_path):
    count = 300
    failures = attack(SSH_ATTACKER, T0)
    last_write = [signin(SSH_ATTACKER, f"user{number}@example.com", T0 + 40 + number / 1000, f"id-{number}")
                  for number in range(count)]
    with Child(fluentd_args(tmp_path), tmp_path) as child:
        child.wait_until_running()
        child.send(failures)
        child.write(b"".join(packed(last_write)))  # Fluentd's flush at shutdown: one big write
        assert child.finish(terminate=True) == 0, child.stderr()
        alerts = child.alerts()
    assert sorted(alert["Id"] for alert in alerts) == sorted(f"id-{number}" for number in range(count))


# -- msgpack bin instead of str --------------------------------------------------------------------

class Finished(NamedTuple):
    alerts: List[dict]
    stderr: str
    log: str


def run_at_once(tmp_path, runs: Dict[str, tuple], encoding: str = "msgpack") -> Dict[str, Finished]:
    """Start one child per run at the same time (start-up is most of a run's cost), give each
    its input ``(args for its directory, bytes)`` in one write, close stdin, collect."""
    children: Dict[str, Child] = {}
    try:
        for name, (make_args, _) in runs.items():
            directory = tmp_path / name
            directory.mkdir()
            children[name] = Child(make_args(directory), directory, encoding)
        finished = {}
        for name, child in children.items():
            child.write(runs[name][1])
            assert child.finish() == 0, child.stderr()
            log_path = child.stderr_path.parent / "fail2entra.log"
            finished[name] = Finished(child.alerts(), child.stderr(), log_path.read_text() if log_path.exists() else "")
        return finished
    finally:
        for child in children.values():
            child.close()


def test_bytes_valued_records_give_the_same_alerts_as_text(tmp_path):
    """in_tail without ``encoding UTF-8`` sends msgpack bin for every string; keys may be bin too."""
    failures, signins, expected = two_attacks()
    records = failures + signins
    variants = {
        "text": records,
        "bytes-values": [as_bytes(record, keys=False) for record in records],
        "bytes-keys-and-values": [as_bytes(record, keys=True) for record in records],
    }
    assert isinstance(variants["bytes-values"][0]["message"], bytes)
    assert isinstance(variants["bytes-keys-and-values"][0][b"message"], bytes)
    args = lambda directory: fluentd_args(directory, extra=["--stats"])
    results = run_at_once(tmp_path, {name: (args, b"".join(packed(items))) for name, items in variants.items()})
    assert ips_and_upns(results["text"].alerts) == expected
    for name, result in results.items():
        assert summary_value(result.stderr, "malformed") == "none", (name, result.log)
        assert summary_value(result.stderr, "unrecognised") == "0", (name, result.log)
        assert result.alerts == results["text"].alerts, name


# -- garbage in the stream -------------------------------------------------------------------------

GARBAGE = [msgpack.packb([1, 2]), msgpack.packb({"neither": "a log nor a sign-in", "tag": "x", "time": T0}),
           b"\xc1"]  # a non-map value, a map of no known shape, a byte msgpack never uses


@pytest.mark.parametrize("delivery", ["garbage-in-its-own-writes", "garbage-inside-one-write"])
def test_garbage_is_counted_and_the_records_around_it_still_alert(tmp_path, delivery):
    """Fluentd writes a whole buffer chunk at once, and a pipe joins writes as it likes (a child
    that is still starting reads everything in one go): garbage in the middle of what one read
    returns must not take the good records after it down with it."""
    before = attack(SSH_ATTACKER, T0) + [signin(SSH_ATTACKER, "alice@example.com", T0 + 38.5, "before")]
    after = attack(RDP_ATTACKER, T0, windows=True) + [signin(RDP_ATTACKER, "bob@example.com", T0 + 39.5, "after")]
    with Child(fluentd_args(tmp_path, {"--stats-interval": "1s"}, extra=["--stats"]), tmp_path) as child:
        child.wait_until_running()
        if delivery == "garbage-in-its-own-writes":
            child.send(before)
            for item in GARBAGE:
                time.sleep(0.05)
                child.write(item)
            time.sleep(0.05)
            child.send(after)
        else:
            child.write(b"".join(packed(before) + GARBAGE + packed(after)))
        assert child.finish() == 0
        stderr = child.stderr()
        alerts = child.alerts()  # stdout: only alerts and health records, all valid msgpack maps
    log = (tmp_path / "fail2entra.log").read_text()
    assert [alert["Id"] for alert in alerts] == ["before", "after"], log
    assert summary_value(stderr, "malformed") == "msgpack 2", log  # the list and the bad byte
    assert summary_value(stderr, "unrecognised") == "1", log  # the map of no known shape
    assert summary_value(stderr, "recognised") == "eventhub 2, fluentd-syslog 6, fluentd-windows-eventlog2 6"
    assert "malformed msgpack record: a list, not a map" in log
    assert "malformed msgpack record: undecodable bytes" in log
    assert "unrecognised input" in log


def test_the_records_figure_counts_the_maps_read(tmp_path):
    """The health figure ``records`` (msgpack maps read) must count them."""
    failures, signins, _ = two_attacks()
    with Child(fluentd_args(tmp_path, extra=["--stats"]), tmp_path) as child:
        child.write(b"".join(packed(failures + signins)))
        assert child.finish() == 0
        stderr = child.stderr()
    assert summary_value(stderr, "records") == str(len(failures) + len(signins)), stderr


# -- event time from the injected key ----------------------------------------------------------------

TIME_TYPES = {
    "int": lambda seconds: int(seconds),  # time_type unixtime
    "float": lambda seconds: seconds,  # time_type float
    "EventTime": event_time,  # Fluentd's own event time, ext type 0
}
TIMED_ATTACKERS = {"int": "203.0.113.10", "float": "203.0.113.11", "EventTime": "203.0.113.12"}


def timed_attack(ip: str, convert, time_key: str, tag_key: str) -> "tuple[List[dict], List[float]]":
    """Six sshd failures whose only right time is under ``time_key``; any ``time`` key besides
    it is a decoy 3 days earlier, outside the window."""
    times = [T0 + 0.5 + index * 1.25 for index in range(6)]
    records = []
    for index, when in enumerate(times):
        record = syslog_failure(ip, 0, index)
        del record["tag"], record["time"]
        if time_key != "time":
            record["time"] = when - 3 * 86400
        record[tag_key] = "host.linux.auth"
        record[time_key] = convert(when)
        records.append(record)
    return records, times


@pytest.mark.parametrize("input_format", ["msgpack", "json"])
def test_event_time_comes_from_the_injected_key(tmp_path, input_format):
    """int, float and EventTime times (one attacker each), under the default keys or under
    --time-key/--tag-key, with text or bytes keys: the failures' times show up, to the
    microsecond, in the alert's evidence, so they were read from the configured key."""
    runs, expected = {}, {}
    variants = [("default-keys", "time", "tag"), ("custom-keys", "ts", "fluent_tag")]
    key_types = ["str", "bytes"] if input_format == "msgpack" else ["str"]  # JSON has no bin
    time_types = list(TIME_TYPES) if input_format == "msgpack" else ["int", "float"]  # nor ext types
    for name, time_key, tag_key in variants:
        for key_type in key_types:
            records = []
            for time_type in time_types:
                ip = TIMED_ATTACKERS[time_type]
                failures, times = timed_attack(ip, TIME_TYPES[time_type], time_key, tag_key)
                records += failures + [signin(ip, f"{time_type}@example.com", T0 + 38.5, f"s-{time_type}")]
                first, last = (int(times[0]), int(times[-1])) if time_type == "int" else (times[0], times[-1])
                expected[f"{name}-{key_type}", ip] = (iso(first), iso(last))
            if key_type == "bytes":
                records = [as_bytes(record, keys=True) for record in records]
            data = b"".join(json.dumps(record).encode() + b"\n" for record in records) \
                if input_format == "json" else b"".join(packed(records))
            args = (lambda directory, time_key=time_key, tag_key=tag_key: fluentd_args(
                directory, {"--input": input_format, "--time-key": time_key, "--tag-key": tag_key}, extra=["--stats"]))
            runs[f"{name}-{key_type}"] = (args, data)
    results = run_at_once(tmp_path, runs)
    problems = []
    for run, result in results.items():
        evidence = {alert["IPAddress"]: alert["Evidence"] for alert in result.alerts}
        for time_type in time_types:
            ip = TIMED_ATTACKERS[time_type]
            want = expected[run, ip]
            got = [(item["FirstFailure"], item["LastFailure"], item["FailureCount"]) for item in evidence.get(ip, [])]
            if got != [(*want, 6)]:
                problems.append(f"{run} {time_type}: evidence {got}, expected {[(*want, 6)]}; "
                                f"malformed: {summary_value(result.stderr, 'malformed')}")
    assert not problems, "\n".join(problems)


def test_a_fluentd_syslog_record_without_a_time_key_is_malformed(tmp_path):
    failures = attack(SSH_ATTACKER, T0)
    for record in failures:
        del record["time"]  # <inject> without time_key
    with Child(fluentd_args(tmp_path, extra=["--stats"]), tmp_path) as child:
        child.write(b"".join(packed(failures + [signin(SSH_ATTACKER, "alice@example.com", T0 + 38.5, "s1")])))
        assert child.finish() == 0
        assert child.alerts() == []
        stderr = child.stderr()
    assert summary_value(stderr, "malformed") == "fluentd-syslog 6"
    assert summary_value(stderr, "recognised") == "eventhub 1"
    assert "malformed fluentd-syslog record: no event time" in (tmp_path / "fail2entra.log").read_text()


# -- diagnostics: the log file, since Fluentd discards stderr ----------------------------------------

def test_diagnostics_go_to_the_log_file_when_stderr_is_discarded(tmp_path):
    no_time = syslog_failure(SSH_ATTACKER, T0, 1)
    del no_time["time"]
    failures, signins, expected = two_attacks()
    with Child(fluentd_args(tmp_path), tmp_path, stderr="devnull") as child:
        child.wait_until_running()
        child.send(failures[:3] + [no_time])
        child.write(b"\xc1")
        time.sleep(0.05)
        child.send(failures[3:] + signins)
        assert child.finish(terminate=True) == 0
        assert ips_and_upns(child.alerts()) == expected
    log = (tmp_path / "fail2entra.log").read_text()
    assert "stdin:4: malformed fluentd-syslog record: no event time" in log, log
    assert "(tag host.linux.auth)" in log, log  # the injected tag names where the record came from
    assert "malformed msgpack record: undecodable bytes" in log, log


# -- health records on stdout, told apart by the tag key ---------------------------------------------

def test_health_records_on_stdout_carry_the_stats_tag_and_alerts_the_alert_tag(tmp_path):
    failures, signins, expected = two_attacks()
    args = fluentd_args(tmp_path, {"--stats-interval": "1s", "--record-tag-key": "tag"})

    def health_after_the_alerts(found: list) -> bool:
        tags = [record.get("tag") for _, record in found]
        return tags.count(ALERT_TAG) == 2 and STATS_TAG in tags[max(i for i, tag in enumerate(tags) if tag == ALERT_TAG):]

    with Child(args, tmp_path) as child:
        child.wait_until_running()
        started = time.monotonic()
        child.send(failures + signins)
        records = child.reader.wait_for(health_after_the_alerts, 5, "a health record after the two alerts")
        first_health = next(arrival for arrival, record in records if record.get("tag") == STATS_TAG)
        health = [record for _, record in records if record.get("tag") == STATS_TAG][-1]
        assert child.finish() == 0
        alerts = child.alerts()  # checks that every other record is an alert tagged ALERT_TAG
    assert first_health - started < 2.5, f"first health record {first_health - started:.2f} s after start"
    assert ips_and_upns(alerts) == expected
    assert all(alert["tag"] == ALERT_TAG for alert in alerts)
    assert health["alerts"] == 2 and health["successes"] == 2, health
    assert health["recognised"] == {"eventhub": 2, "fluentd-syslog": 6, "fluentd-windows-eventlog2": 6}
    assert "AlertName" not in health
