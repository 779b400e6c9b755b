"""Run the installed ``fail2entra`` command the way users and Fluentd do: through real pipes."""

import ast
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple, Union

import msgpack

COMMAND = shutil.which("fail2entra") or "fail2entra"
# Fluentd's environment, not a developer's: PYTHONUNBUFFERED would hide a missing flush.
CHILD_ENV = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}


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
# the command is started by a small Python that forks it and reports the grandchild's own peak
# (KB) and CPU seconds (user, system).
_MEASURE = (
    "import os, sys\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    os.execvp(sys.argv[2], sys.argv[2:])\n"
    "_, status, usage = os.wait4(pid, 0)\n"
    "with open(sys.argv[1], 'w') as out:\n"
    "    out.write(f'{usage.ru_maxrss} {usage.ru_utime} {usage.ru_stime}')\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


def measured_command(args, figures_path: str) -> list:
    """The command line that runs fail2entra ``args`` and writes its own figures to
    ``figures_path`` (see measured_figures)."""
    return measured_argv([COMMAND, *args], figures_path)


def measured_argv(argv, figures_path: str) -> list:
    """The command line that runs ``argv`` and writes its own figures to ``figures_path``."""
    return [sys.executable, "-c", _MEASURE, figures_path, *argv]


def measured_figures(text: str) -> Tuple[int, float, float]:
    """Peak RSS (KB), user and system CPU seconds of a command run by measured_argv, from what
    it wrote; zeros if it wrote nothing (it could not start)."""
    rss, user, system = (text.split() or ["0", "0", "0"])
    return int(rss), float(user), float(system)


def stats_summary(stderr: str) -> Dict[str, str]:
    """The ``--stats`` figures on stderr, as text by name (``malformed``: ``"json 1, windows-xml 2"``)."""
    lines = stderr.split("fail2entra summary\n", 1)[1].splitlines()
    return dict(line.strip().split(": ", 1) for line in lines if line.startswith("  "))


def per_kind(value: str) -> Dict[str, int]:
    """A per-kind figure of the summary (``"json 1, windows-xml 2"``) as a dict (``none`` is empty)."""
    if value == "none":
        return {}
    return {kind: int(count) for kind, count in (item.rsplit(" ", 1) for item in value.split(", "))}


class Result(NamedTuple):
    returncode: int
    stdout: bytes
    stderr: bytes
    peak_rss_kb: int  # the child's own peak resident set (ru_maxrss of wait4)

    @property
    def text(self) -> str:
        return self.stderr.decode("utf-8", "replace")

    def summary(self) -> Dict[str, str]:
        return stats_summary(self.text)

    def counts(self, name: str) -> Dict[str, int]:
        return per_kind(self.summary()[name])


Source = Union[None, bytes, Iterable[bytes]]


def _write_and_close(pipe, source: Source) -> None:
    try:
        if source is not None:
            for chunk in ([source] if isinstance(source, bytes) else source):
                pipe.write(chunk)
    except BrokenPipeError:
        pass
    finally:
        try:
            pipe.close()
        except BrokenPipeError:
            pass


def run_measured(args: Sequence[str], stdin: Source = None, timeout: float = 120) -> Result:
    """Run the installed command with ``stdin`` written into a pipe (bytes, or chunks from an
    iterable); stdout and stderr go to files so nothing blocks. Reaped with wait4 to read the
    child's peak RSS."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as rss:
        process = subprocess.Popen(measured_command(args, rss.name), stdin=subprocess.PIPE, stdout=out, stderr=err)
        writer = threading.Thread(target=_write_and_close, args=(process.stdin, stdin), daemon=True)
        writer.start()
        killer = threading.Timer(timeout, process.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            killer.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        writer.join(timeout=30)
        out.seek(0)
        err.seek(0)
        return Result(process.returncode, out.read(), err.read(), measured_figures(rss.read())[0] or usage.ru_maxrss)


# -- a child through pipes, as Fluentd's exec_filter runs it -----------------------------------

def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd`` (one flush of a Fluentd buffer chunk)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class StdoutReader(threading.Thread):
    """Reads the child's stdout as it comes (os.read, like Fluentd) and decodes it incrementally:
    msgpack maps, or JSON lines. Keeps each record with the ``clock()`` time it was read."""

    def __init__(self, stream, encoding: str = "msgpack", clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(daemon=True)
        self._fd = stream.fileno()
        self._encoding = encoding
        self._clock = clock
        self._unpacker = msgpack.Unpacker(raw=False, strict_map_key=True)
        self._pending = b""
        self.raw = bytearray()
        self.records: List[tuple] = []  # (arrival, record)
        self.error: Optional[str] = None
        self._changed = threading.Condition()

    def run(self) -> None:
        while True:
            data = os.read(self._fd, 65536)
            arrival = self._clock()
            if not data:
                break
            self.raw += data
            try:
                new = self._decode(data)
            except Exception as error:  # a stray byte: what makes Fluentd stop reading
                self.error = f"undecodable stdout ({error!r}) after {bytes(self.raw[-200:])!r}"
                new = []
            with self._changed:
                self.records.extend((arrival, record) for record in new)
                self._changed.notify_all()
        with self._changed:
            if self._encoding == "msgpack" and self._unpacker.tell() != len(self.raw):
                self.error = self.error or f"stdout ends inside a record: {bytes(self.raw[self._unpacker.tell():])!r}"
            if self._encoding == "json" and self._pending:
                self.error = self.error or f"stdout ends without a newline: {self._pending!r}"
            self._changed.notify_all()

    def _decode(self, data: bytes) -> list:
        if self._encoding == "msgpack":
            self._unpacker.feed(data)
            return list(self._unpacker)
        lines = (self._pending + data).split(b"\n")
        self._pending = lines.pop()
        return [json.loads(line) for line in lines]

    def wait_for(self, condition: Callable[[list], bool], timeout: float, what: str) -> list:
        """Wait until ``condition(records)``; AssertionError after ``timeout``."""
        with self._changed:
            if not self._changed.wait_for(lambda: condition(self.records) or self.error is not None, timeout):
                raise AssertionError(f"timed out after {timeout} s waiting for {what}; got {self.records}")
            assert self.error is None, self.error
            return list(self.records)
