"""Run the installed ``fail2entra`` command the way users and Fluentd do: through real pipes."""

import ast
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from typing import Callable, List, Optional, Sequence

COMMAND = shutil.which("fail2entra") or "fail2entra"


def run_cli(args: Sequence[str], stdin: Optional[bytes] = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([COMMAND, *args], input=stdin if stdin is not None else b"", capture_output=True,
                          timeout=timeout)


def alerts_of(stdout: bytes) -> List[dict]:
    """Every stdout line must be one JSON alert record."""
    records = [json.loads(line) for line in stdout.decode("utf-8").splitlines()]
    for record in records:
        assert record["AlertName"] == "Failed host logons but success logon to AzureAD", record
    return records


def wait_for_signal_handler(pid: int, signum: int, timeout: float = 30.0) -> None:
    """Wait until process ``pid`` catches ``signum`` (Linux: SigCgt in /proc/PID/status), i.e. it
    has started up; like Fluentd, the tests then signal a child that is running, not starting."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("SigCgt:") and int(line.split()[1], 16) >> (signum - 1) & 1:
                    return
        time.sleep(0.01)
    raise TimeoutError(f"process {pid} never installed a handler for signal {signum}")


def _logged_health(log_path: str) -> List[str]:
    """The figures of every complete ``health:`` line in the log file (SIGUSR1 writes one)."""
    try:
        with open(log_path, encoding="utf-8") as log:
            complete = log.read().split("\n")[:-1]
    except FileNotFoundError:
        return []
    return [line.split(" health: ", 1)[1] for line in complete if " health: " in line]


def request_health(pid: int, log_path: str, timeout: float = 5.0) -> dict:
    """Send SIGUSR1 to a running ``fail2entra --log-file log_path`` and return the health
    figures it logs in answer (a dict, as ``--stats`` shows them)."""
    before = len(_logged_health(log_path))
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    while True:
        logged = _logged_health(log_path)
        if len(logged) > before:
            return ast.literal_eval(logged[before])
        if time.monotonic() > deadline:
            raise AssertionError(f"process {pid} logged no health figures within {timeout} s")
        time.sleep(0.01)


def wait_for_health(pid: int, log_path: str, condition: Callable[[dict], bool], timeout: float = 10.0) -> dict:
    """Ask for the health figures (SIGUSR1) until ``condition(figures)``; AssertionError after
    ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        figures = request_health(pid, log_path, max(0.5, deadline - time.monotonic()))
        if condition(figures):
            return figures
        if time.monotonic() > deadline:
            raise AssertionError(f"health figures never met the condition; last: {figures}")
        time.sleep(0.02)


# ru_maxrss is inherited through fork and exec (Linux keeps the old address space's peak), so
# the command is started by a small Python that forks it and reports the grandchild's own peak.
_MEASURE = (
    "import os, sys\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    os.execvp(sys.argv[2], sys.argv[2:])\n"
    "_, status, usage = os.wait4(pid, 0)\n"
    "with open(sys.argv[1], 'w') as out:\n"
    "    out.write(str(usage.ru_maxrss))\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


def measured_command(args, rss_path: str) -> list:
    """The command line that runs fail2entra ``args`` and writes its peak RSS (KB) to ``rss_path``."""
    return [sys.executable, "-c", _MEASURE, rss_path, COMMAND, *args]
