"""Real Fluentd and Fluent Bit running the shipped configs of conf/, with their paths moved into
the test's directory and nothing else changed (each test names any other change it makes), fed
the bundled sample day. The tests run when FLUENTD / FLUENT_BIT name the binaries and are
skipped otherwise."""

import json
import os
import re
import signal
import subprocess
import time
from datetime import datetime, timedelta, timezone
from typing import Callable, Dict, List, Optional, Sequence

import pytest

from cli import COMMAND, request_health, wait_for_signal_handler
from forward_server import wait_until
from samples import SAMPLE_DIR

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONF_DIR = os.path.join(ROOT, "conf")
FLUENTD = os.environ.get("FLUENTD", "")
FLUENT_BIT = os.environ.get("FLUENT_BIT", "")
needs_fluentd = pytest.mark.skipif(
    not FLUENTD, reason="FLUENTD is not set: name a Fluentd 1.16 binary to run the shipped Fluentd configs")
needs_fluent_bit = pytest.mark.skipif(
    not FLUENT_BIT, reason="FLUENT_BIT is not set: name a Fluent Bit 4.0 binary to run the shipped Fluent Bit configs")

# Collectors and fail2entra read RFC 3164 times (no zone) in UTC, and so does the reference run.
COLLECTOR_ENV = dict(os.environ, TZ="UTC")
# The sample day's alerts from the Linux side (auth.log + sign-ins), IP -> UPN; the third
# alert of the Quickstart needs the Windows log, which no shipped Linux collector reads.
LINUX_ALERTS = {"203.0.113.5": "bob@contoso.com", "203.0.113.66": "mallory@contoso.com"}
SYSLOG_FORMS = ("rfc3164", "rfc3339", "rfc5424")
SAMPLE_DATE = "2026-11-27"
_SAMPLE_LINE = re.compile(r"^(\S+) (\S+) ([^\s\[:]+)(?:\[(\d+)\])?: (.*)$")
AUTH_PRI = 38  # auth.info


# -- the sample day ------------------------------------------------------------------------------

class SampleDay:
    """The bundled sample day moved to yesterday (UTC), so that RFC 3164 lines, which carry no
    year, read as this year's and no time lies in the future; the auth log in one syslog form."""

    def __init__(self, form: str = "rfc3339", extra_signins: Sequence[dict] = ()) -> None:
        self.day = (datetime.now(timezone.utc) - timedelta(days=1)).date()
        self.auth_lines = [_auth_line(line, form) for line in self._sample("auth.log").splitlines()]
        self.signin_lines = self._sample("signins.jsonl").splitlines() + [json.dumps(item) for item in extra_signins]

    def _sample(self, name: str) -> str:
        with open(os.path.join(SAMPLE_DIR, name), encoding="utf-8") as handle:
            return handle.read().replace(SAMPLE_DATE, self.day.isoformat())

    @property
    def auth(self) -> bytes:
        return "".join(line + "\n" for line in self.auth_lines).encode()

    @property
    def signins(self) -> bytes:
        return "".join(line + "\n" for line in self.signin_lines).encode()

    def signin(self, number: int, upn: str, minute: int) -> dict:
        """Another successful sign-in of the sshd attacker (203.0.113.5), for ``upn``."""
        record = json.loads(self.signin_lines[0])
        stamp = f"{self.day.isoformat()}T13:{minute:02d}:00"
        record["time"] = stamp + ".0000000Z"
        record["properties"].update(id=f"extra-{number:04d}", userPrincipalName=upn,
                                    createdDateTime=stamp + ".0000000+00:00")
        return record


def _auth_line(line: str, form: str) -> str:
    """A line of the sample auth log (rsyslog's RFC 3339 form) in ``form``."""
    if form == "rfc3339":
        return line
    stamp, host, program, pid, message = _SAMPLE_LINE.match(line).groups()
    when = datetime.fromisoformat(stamp)
    if form == "rfc3164":
        header = f"{when:%b} {when.day:2d} {when:%H:%M:%S} {host} {program}" + (f"[{pid}]" if pid else "")
        return f"{header}: {message}"
    assert form == "rfc5424", form
    return f"<{AUTH_PRI}>1 {stamp} {host} {program} {pid or '-'} - - {message}"


def reference_alerts(*inputs: bytes) -> List[dict]:
    """What fail2entra itself makes of the same input, read directly from stdin."""
    result = subprocess.run([COMMAND, "--timezone", "UTC", "-"], input=b"".join(inputs), capture_output=True,
                            timeout=120, env=COLLECTOR_ENV)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def by_alert_id(alerts: Sequence[dict]) -> Dict[str, dict]:
    """Alerts by AlertId (a repeat after a resend carries the same one and the same record)."""
    found: Dict[str, dict] = {}
    for alert in alerts:
        assert found.setdefault(alert["AlertId"], alert) == alert, f"two records for {alert['AlertId']}"
    return found


def ips_and_upns(alerts: Sequence[dict]) -> Dict[str, str]:
    return {alert["IPAddress"]: alert["UserPrincipalName"] for alert in alerts}


# -- the shipped configs ---------------------------------------------------------------------------

def adapted(conf_name: str, replacements: Dict[str, str]) -> str:
    """conf/<conf_name> with each text replaced; each must occur, so that a change of the shipped
    config cannot make the test silently run something else."""
    with open(os.path.join(CONF_DIR, conf_name), encoding="utf-8") as handle:
        text = handle.read()
    for old, new in replacements.items():
        assert old in text, f"{old!r} is not in conf/{conf_name}"
        text = text.replace(old, new)
    return text


def json_lines(path: str) -> List[dict]:
    try:
        with open(path, encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]
    except FileNotFoundError:
        return []


def append(path: str, data: bytes) -> None:
    with open(path, "ab") as handle:
        handle.write(data)


# -- Fluentd ----------------------------------------------------------------------------------------

class FluentdSetup:
    """conf/<name> with its files in ``directory``: auth.log, lib/ (sign-ins, state), log/."""

    def __init__(self, directory, conf_name: str = "fluentd.conf", replacements: Dict[str, str] = None) -> None:
        self.directory = str(directory)
        self.auth_log = os.path.join(self.directory, "auth.log")
        self.signins = os.path.join(self.directory, "lib", "signins.jsonl")
        self.state = os.path.join(self.directory, "lib", "state")
        self.child_log = os.path.join(self.directory, "log", "fail2entra", "fail2entra.log")
        os.makedirs(os.path.join(self.directory, "lib"))
        os.makedirs(os.path.join(self.directory, "log", "fail2entra"))
        for path in (self.auth_log, self.signins):  # in_tail looks for new files only once a minute
            open(path, "wb").close()
        self.config = os.path.join(self.directory, conf_name)
        with open(self.config, "w", encoding="utf-8") as handle:
            handle.write(adapted(conf_name, {
                "/var/log/auth.log": self.auth_log,
                "/var/log/fluent/": os.path.join(self.directory, "log") + "/",
                "/var/lib/fail2entra/": os.path.join(self.directory, "lib") + "/",
                "/usr/local/bin/fail2entra": COMMAND,
                "--stats-interval 60s": "--stats-interval 1s",
                **(replacements or {}),
            }))

    def start(self, env: Optional[dict] = None) -> "Collector":
        fluentd = Collector([FLUENTD, "-c", self.config], self.directory, "fluentd", env)
        fluentd.wait_for_log(f"following tail of {self.signins}")
        fluentd.wait_for_log(f"following tail of {self.auth_log}")
        return fluentd

    def child(self) -> int:
        return fail2entra_pid(self.state)

    def feed_failures(self, day: SampleDay) -> None:
        """Append the auth log and wait until the child has read every line of it, so that the
        sign-ins come after their failures, as in the reference run."""
        append(self.auth_log, day.auth)
        wait_for_figures(self.child(), self.child_log, lambda figures: lines_read(figures) >= len(day.auth_lines))

    def alerts(self):
        folder = os.path.join(self.directory, "log", "fail2entra")
        return [alert for name in sorted(os.listdir(folder)) if name.startswith("alerts.")
                for alert in json_lines(os.path.join(folder, name))]

    def wait_for_alerts(self, count: int, timeout: float = 30.0):
        wait_until(lambda: len(self.alerts()) >= count, timeout, f"{count} alerts in {self.directory}/log/fail2entra")
        return self.alerts()



# -- processes ----------------------------------------------------------------------------------

class Collector:
    """A collector process in a session of its own (so that the pipelines it starts can be
    stopped with it), its stdout and stderr in one file."""

    def __init__(self, argv: Sequence[str], directory: str, name: str, env: Optional[dict] = None) -> None:
        self.log_path = os.path.join(directory, f"{name}.log")
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(list(argv), stdout=self._log, stderr=subprocess.STDOUT, cwd=directory,
                                        env=env or COLLECTOR_ENV, start_new_session=True)

    def log(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def wait_for_log(self, pattern: str, timeout: float = 30.0) -> None:
        """Wait until the collector's log matches ``pattern`` (a regex)."""
        wait_until(lambda: re.search(pattern, self.log()) is not None or self.process.poll() is not None,
                   timeout, f"{pattern!r} in {self.log_path}")
        assert re.search(pattern, self.log()), f"exited ({self.process.returncode}) before {pattern!r}:\n{self.log()}"

    def wait(self, timeout: float = 30.0) -> int:
        return self.process.wait(timeout=timeout)

    def stop(self, timeout: float = 30.0, whole_group: bool = True) -> int:
        """SIGTERM to every process of the session, as systemd stops a service (or to the
        collector alone, which stops what it started); the exit status."""
        if self.process.poll() is None:
            if whole_group:
                os.killpg(self.process.pid, signal.SIGTERM)
            else:
                self.process.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def close(self) -> None:
        """Kill whatever is left of the session (the collector, a pipeline it started)."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        self._log.close()

    def __enter__(self) -> "Collector":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def pids_with(fragment: str) -> List[int]:
    """Processes whose command line holds ``fragment`` (a path unique to the test)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if fragment in cmdline:
            found.append(int(entry))
    return found


def fail2entra_pid(state_path: str, timeout: float = 30.0) -> int:
    """The fail2entra process running with ``--state state_path``, once it has started (its
    signal handlers are in place: SIGUSR1 before that would kill it)."""
    found: List[int] = []

    def running() -> bool:
        found[:] = [pid for pid in pids_with(f"--state {state_path}") if _is_python(pid)]
        return len(found) == 1

    wait_until(running, timeout, f"one fail2entra with --state {state_path}")
    wait_for_signal_handler(found[0], signal.SIGTERM, timeout)
    return found[0]


def _is_python(pid: int) -> bool:
    try:
        return "python" in os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return False


def opened(path: str) -> bool:
    """Whether some process holds ``path`` open (tail -F has started following it)."""
    target = os.path.realpath(path)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            descriptors = os.listdir(f"/proc/{entry}/fd")
        except OSError:
            continue
        for descriptor in descriptors:
            try:
                if os.readlink(f"/proc/{entry}/fd/{descriptor}") == target:
                    return True
            except OSError:
                continue
    return False


def wait_for_figures(pid: int, log_path: str, condition: Callable[[dict], bool], timeout: float = 30.0) -> dict:
    """Ask fail2entra for its health figures (SIGUSR1, answered in its log) until ``condition``."""
    deadline = time.monotonic() + timeout
    while True:
        figures = request_health(pid, log_path, timeout=max(1.0, deadline - time.monotonic()))
        if condition(figures):
            return figures
        assert time.monotonic() < deadline, f"health figures never met the condition; last: {figures}"
        time.sleep(0.1)


def lines_read(figures: dict) -> int:
    """Lines (or, from a msgpack stream, records) fail2entra has read."""
    return figures.get("records", figures.get("lines", 0))
