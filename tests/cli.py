"""Run the installed ``fail2entra`` command the way users and Fluentd do: through real pipes."""

import json
import shutil
import subprocess
import time
from typing import List, Optional, Sequence

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
