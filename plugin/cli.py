"""The ``fail2entra`` command: read logs (files, stdin, a Fluentd exec_filter stream), correlate,
write alerts. Exit status 0 on success (also on SIGTERM / SIGINT after finishing what was read,
and when the reader of stdout goes away), 2 on bad usage or configuration."""

import argparse
import errno
import fcntl
import gc
import os
import select
import signal
import sys
import time
from typing import List, Optional, Sequence


from parsers.reader import LineReader, MsgpackReader
from parsers.timestamps import Rfc3164Clock, resolve_zone

from . import __version__
from .config import OPTIONS, Config, ConfigError, _flag, read_config_file, resolve
from .engine import Settings
from .exclusions import ExclusionError, load_exclusions
from .explain import ExplainingLineReader, Explainer
from .logs import LOG, RateLimitedLog, configure_logging
from .files import FileInUseError
from .outputs import ForwardAlerts, OutputClosed, StdoutOutput
from .pipeline import Pipeline
from .profiles import PROFILES
from .state import StateFile
from .tiers.roles import build_engine, check_role, record_tags

PROG = "fail2entra"
READ_SIZE = 1024 * 1024
PROGRESS_PERIOD = 0.5
# Python's cyclic garbage collector now and then walks every object that has lived long: start-up's
# modules and grammar, and the engine's state, which holds no reference cycles. Those walks were
# the alert latency's worst pauses (tens of milliseconds). Start-up's objects, then once a
# period whatever survived, are frozen (gc.freeze: never walked again, still freed by
# reference counting); the collector keeps finding new cycles as it always did.
GARBAGE_COLLECTION_PERIOD = 60.0
# A cycle frozen while alive is never collected once it dies; every so often everything is
# unfrozen and walked once (a pause of about 0.15 s per million tracked IPs, once an hour).
UNFREEZE_EVERY = 60
DRAIN_SECONDS = 10.0
SIGNIN_WAKE_PERIOD = 1.0  # with --signins graph the main loop looks at least this often


class _ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a usage error as an exception (one line, exit status 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigError(message)


def build_parser() -> argparse.ArgumentParser:
    """The command line, generated from the option table (config.OPTIONS)."""
    parser = _ArgumentParser(
        prog=PROG,
        description="Alert on successful Entra ID sign-ins from IPs that failed more than N host "
                    "logons (Windows 4625, sshd): the Sentinel rule 'Failed host logons but success "
                    "logon to AzureAD', streamed.",
    )
    parser.add_argument("files", nargs="*", metavar="FILE", help="log files read in order; '-' or none: stdin")
    parser.add_argument("--config", metavar="PATH", help="TOML config (see conf/fail2entra.toml); options override it")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    for option in OPTIONS:
        help_text = f"{option.help} (default: {option.default!r})"
        if option.convert is _flag:
            parser.add_argument(option.flag, dest=option.name, action="store_true", default=None, help=help_text)
        else:
            choices = getattr(option.convert, "choices", None)
            parser.add_argument(option.flag, dest=option.name, default=None, choices=choices,
                                metavar=None if choices else option.metavar, help=help_text)
    return parser


def load_config(argv: Optional[Sequence[str]]) -> "tuple[Config, List[str]]":
    """Parse the command line and the config file it names; ConfigError on any bad value."""
    args = build_parser().parse_args(argv)
    file_values = read_config_file(args.config) if args.config else {}
    return resolve(file_values, vars(args)), args.files


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the console script."""
    try:
        config, files = load_config(argv)
        for name in files:
            if name != "-" and not os.access(name, os.R_OK):
                raise ConfigError(f"cannot read {name}: {os.strerror(errno.ENOENT if not os.path.exists(name) else errno.EACCES)}")
        configure_logging(config.log_file or None)
        runner = Runner(config)
    except ConfigError as error:
        sys.stderr.write(f"{PROG}: error: {error}\n")
        return 2
    except OSError as error:  # e.g. the log file cannot be opened
        sys.stderr.write(f"{PROG}: error: {error}\n")
        return 2
    return runner.run(files or ["-"])


class Runner:
    """One run: wires reader, pipeline, engine and output, and drives them over the inputs."""

    def __init__(self, config: Config) -> None:
        self.config = config
        try:
            zone = resolve_zone(config.timezone)
        except ValueError as error:
            raise ConfigError(f"--timezone: {error}") from None
        try:
            check_role(config)
        except ValueError as error:
            raise ConfigError(str(error)) from None
        self.notices = RateLimitedLog()
        settings = Settings(
            threshold=config.threshold, window=config.window, suppress=config.suppress,
            future_skew=config.future_skew, max_signins=config.max_signins, max_ips=config.max_ips,
        )
        try:
            self.exclusions = load_exclusions(config.exclusion)
        except ExclusionError as error:
            raise ConfigError(str(error)) from None
        self.signins = self._open_signins()
        self.output = self._open_output()
        self.engine = build_engine(
            config, settings, PROFILES[config.profile](), self._emit_alert, self.notices.warning,
            failure_exclusions=[e for e in self.exclusions if e.applies_to in ("failures", "both")],
            signin_exclusions=[e for e in self.exclusions if e.applies_to in ("signins", "both")],
        )
        self.pipeline = Pipeline(self.engine, self.notices)
        try:
            self.state = StateFile(config.state) if config.state else None
        except FileInUseError as error:
            raise ConfigError(f"--state: {error}") from None
        if self.state is not None:
            self.state.load(self.engine, self.signins.cursors if self.signins else None)
        self._next_snapshot = time.monotonic() + config.snapshot_interval
        self._saved_changes = self._changes()
        self._next_collection = time.monotonic() + GARBAGE_COLLECTION_PERIOD
        self._collections = 0
        reader_type, sink = LineReader, self.pipeline
        if config.explain:
            sink = self.output = Explainer(self.pipeline, sys.stdout, lambda: self.reader.line_number)
            reader_type = ExplainingLineReader
        self.reader = reader_type(sink, Rfc3164Clock(zone), config.facility,
                                  json_only=config.input == "json", max_record_bytes=config.max_record_bytes,
                                  interest=None if config.explain else self.engine.profile.interest,
                                  time_key=config.time_key, tag_key=config.tag_key)
        self.stream_reader = MsgpackReader(self.reader) if config.input == "msgpack" else self.reader
        self._lines_done = 0
        self._stopping = False
        self._health_requested = False
        self._output_closed = False
        self._next_stats = time.monotonic() + config.stats_interval if config.stats_interval else None
        self._progress = None

    def _open_signins(self):
        if self.config.signins == "none":
            return None
        if self.config.explain:
            raise ConfigError("--explain reads files and stdin; it does not go with --signins graph")
        from .signins import GraphSignins  # only now: msal and requests take a while to import
        return GraphSignins(self.config)

    def _open_output(self):
        config = self.config
        if config.forward:
            from .forward_security import ForwardSecurity  # only now: ssl takes 5 MB

            try:
                security = ForwardSecurity.from_options(
                    config.forward_tls, config.forward_ca_file, config.forward_cert_file, config.forward_key_file,
                    config.forward_shared_key_file, config.forward_username, config.forward_password_file)
                return ForwardAlerts(config.forward, record_tags(config), config.stats_tag, config.spool or None,
                                     config.spool_max_bytes, security, config.forward_compress == "gzip")
            except (ValueError, FileInUseError) as error:
                raise ConfigError(f"--forward / --spool: {error}") from None
        given = [option for option in ("forward_tls", "forward_shared_key_file") if getattr(config, option)]
        if given:
            raise ConfigError(f"--{given[0].replace('_', '-')} needs --forward")
        return StdoutOutput(sys.stdout.buffer, config.output, record_tags(config)[0], config.stats_tag,
                            config.record_tag_key)

    def _emit_alert(self, record: dict, event_time: float, tag: Optional[str] = None) -> None:
        self.output.alert(record, event_time, tag)

    # -- running -------------------------------------------------------------------------

    def run(self, inputs: List[str]) -> int:
        """Read every input, then finish: close outputs, print stats. Returns the exit status."""
        wakeup_read, wakeup_write = self._install_signals()
        if self.signins is not None:
            self.signins.start(lambda: _poke(wakeup_write))
        gc.collect()
        gc.freeze()  # what start-up built (modules, compiled exclusions, a restored state) stays
        self._progress = _Progress(self) if inputs != ["-"] and sys.stderr.isatty() and not self.config.explain else None
        try:
            for name in inputs:
                if self._stopping and name != "-":  # stdin still gives what is already in the pipe
                    continue
                self._read_input(name, wakeup_read)
        except OutputClosed:
            self._output_closed = True
        finally:
            self._finish()
        return 0

    def _read_input(self, name: str, wakeup_read: int) -> None:
        self.pipeline.input_name = "stdin" if name == "-" else name
        self.reader.line_number = 0
        if name == "-":
            self._read_fd(0, wakeup_read)
        else:
            try:
                fd = os.open(name, os.O_RDONLY)
            except OSError as error:
                LOG.error("cannot read %s: %s", name, error.strerror)
                return
            try:
                self._read_fd(fd, None)
            finally:
                os.close(fd)
        self.stream_reader.finish()
        self._lines_done += self.reader.line_number
        self.reader.line_number = 0

    def _read_fd(self, fd: int, wakeup_read: Optional[int]) -> None:
        """Read ``fd`` to its end. For stdin, wait with select so that signals and periodic
        tasks are served while no input comes; after SIGTERM, drain what is already there."""
        feed = self.stream_reader.feed
        pipeline = self.pipeline
        while not self._stopping:
            if wakeup_read is not None:
                ready, _, _ = select.select([fd, wakeup_read], [], [], self._wait_time())
                if wakeup_read in ready:
                    _drain(wakeup_read)
                if fd not in ready:
                    self._periodic()
                    continue
            data = os.read(fd, READ_SIZE)
            if not data:
                return
            pipeline.bytes += len(data)
            feed(data)
            self._periodic()
        if wakeup_read is not None:
            self._drain_after_signal(fd, feed)

    def _drain_after_signal(self, fd: int, feed) -> None:
        """SIGTERM arrives right after Fluentd closed our stdin: read what is in the pipe, for
        at most DRAIN_SECONDS (a producer that keeps writing must not delay the exit until
        Fluentd's SIGKILL, 60 s later, costs the final snapshot)."""
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
        deadline = time.monotonic() + DRAIN_SECONDS
        try:
            while time.monotonic() < deadline:
                data = os.read(fd, READ_SIZE)
                if not data:
                    return
                self.pipeline.bytes += len(data)
                feed(data)
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.EWOULDBLOCK):
                raise
        finally:
            fcntl.fcntl(fd, fcntl.F_SETFL, flags)

    def _wait_time(self) -> float:
        due = [when for when in (self._next_stats, self._next_snapshot if self.state else None) if when is not None]
        wait = max(0.0, min(due + [self._next_collection, self.engine.next_flush]) - time.monotonic())
        return wait if self.signins is None else min(wait, SIGNIN_WAKE_PERIOD)

    def _periodic(self) -> None:
        """Polled sign-ins; health records, snapshots, SIGUSR1 and progress, when due."""
        if self.signins is not None and self.signins.waiting:
            self._hand_signins()
        now = time.monotonic()
        if now >= self.engine.next_flush:
            self.engine.flush()
        if self._next_stats is not None and now >= self._next_stats:
            self._next_stats = now + self.config.stats_interval
            self._emit_stats()
        if self.state is not None and now >= self._next_snapshot:
            self._snapshot()
        if now >= self._next_collection:
            self._next_collection = now + GARBAGE_COLLECTION_PERIOD
            self._collections += 1
            if self._collections % UNFREEZE_EVERY == 0:
                gc.unfreeze()
            gc.collect()
            gc.freeze()
        if self._health_requested:
            self._health_requested = False
            LOG.info("health: %s", self.figures())
        if self._progress is not None:
            self._progress.update()

    def _hand_signins(self) -> None:
        """Polled sign-ins go through the reader like any record, so a bad one is reported
        and counted like any bad record (notices name them graph:N)."""
        reader, pipeline = self.reader, self.pipeline
        input_name, line_number = pipeline.input_name, reader.line_number
        pipeline.input_name = "graph"
        try:
            for number, item in self.signins.new_signins():
                reader.line_number = number
                reader.read_object(item)
        finally:
            pipeline.input_name, reader.line_number = input_name, line_number

    def _snapshot(self) -> None:
        """Save the state if it changed since the last save (an idle collector does not wear
        its disk); the next save waits at least five times as long as this one took, so that
        even a million-IP snapshot costs the pipeline at most a sixth of its time."""
        self._save_if_changed()
        self._next_snapshot = time.monotonic() + max(self.config.snapshot_interval, 5 * self.state.last_save_seconds)

    def _changes(self) -> tuple:
        return self.engine.changes, self.signins.changes if self.signins else 0

    def _save_if_changed(self) -> None:
        if self._changes() != self._saved_changes:
            self._saved_changes = self._changes()
            self.state.save(self.engine, self.signins.cursors if self.signins else None)

    def figures(self) -> dict:
        state = self.state
        figures = self.pipeline.figures(self.reader.recognised,
                                        None if state is None or state.saved_at is None else time.time() - state.saved_at)
        if state is not None:
            figures["snapshot"] = {"bytes": state.last_size, "write_seconds": round(state.last_save_seconds, 3),
                                   "failures": state.failures}
        read = "records" if self.config.input == "msgpack" else "lines"  # msgpack maps stand for lines
        figures[read] = self._lines_done + self.reader.line_number
        figures["excluded"] = {exclusion.name: exclusion.removed for exclusion in self.exclusions}
        if isinstance(self.output, ForwardAlerts):
            figures["forward"] = self.output.figures()
        if self.signins is not None:
            figures.update(self.signins.figures())
        return figures

    def _emit_stats(self) -> None:
        figures = self.figures()
        if self.output.carries_stats:
            self.output.stats(figures, self.engine.newest)
        else:
            LOG.info("health: %s", figures)

    # -- signals and the end ---------------------------------------------------------------

    def _install_signals(self) -> "tuple[int, int]":
        """SIGTERM / SIGINT: stop reading new input, finish what was read, exit 0. The handler
        only sets a flag; the wakeup pipe interrupts the select that waits for stdin (the
        sign-in poller writes to it too). Returns the pipe's two ends."""
        wakeup_read, wakeup_write = os.pipe()
        os.set_blocking(wakeup_write, False)
        signal.set_wakeup_fd(wakeup_write)

        def stop(signum: int, frame: object) -> None:
            self._stopping = True

        def health(signum: int, frame: object) -> None:
            self._health_requested = True

        signal.signal(signal.SIGUSR1, health)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)  # last: a caught SIGTERM means every handler is in place
        return wakeup_read, wakeup_write

    def _finish(self) -> None:
        if self.signins is not None:
            self.signins.stop()
        if self._progress is not None:
            self._progress.clear()
        try:
            self.engine.flush()
            self.output.close()
        except OutputClosed:
            self._output_closed = True
        if self._output_closed:
            _silence_stdout()
        if self.state is not None:
            self._save_if_changed()
        self.notices.flush()
        if self.config.stats:
            sys.stderr.write(_format_stats(self.figures()))


def _poke(fd: int) -> None:
    """Wake the main loop's select (a full pipe means it is awake already)."""
    try:
        os.write(fd, b"\0")
    except OSError:
        pass


def _drain(fd: int) -> None:
    try:
        os.read(fd, 4096)
    except OSError:
        pass


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the interpreter's final flush is quiet."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _format_stats(figures: dict) -> str:
    lines = [f"{PROG} summary"]
    for key, value in figures.items():
        if isinstance(value, dict):
            value = ", ".join(f"{name} {count}" for name, count in value.items()) or "none"
        lines.append(f"  {key.replace('_', ' ')}: {value}")
    return "\n".join(lines) + "\n"


class _Progress:
    """A progress line on stderr while files are read and stderr is a terminal."""

    def __init__(self, runner: Runner) -> None:
        self._runner = runner
        self._started = time.monotonic()
        self._next = self._started + PROGRESS_PERIOD

    def update(self) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + PROGRESS_PERIOD
        runner = self._runner
        lines = runner._lines_done + runner.reader.line_number
        rate = lines / max(now - self._started, 1e-9)
        sys.stderr.write(f"\r{runner.pipeline.bytes / 1e6:,.1f} MB, {lines:,} lines, {rate:,.0f} lines/s, "
                         f"{runner.engine.counts.alerts} alerts ")
        sys.stderr.flush()

    def clear(self) -> None:
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()
