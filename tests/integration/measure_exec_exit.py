"""Measure what Fluent Bit's exec input loses when its command ends, and whether Fluent Bit stops
on SIGTERM: the figures behind the shape of conf/fluent-bit.conf (docs/fluent-bit.md). Not a
test (no assertion: Fluent Bit's behaviour is what is measured); run it on a new Fluent Bit:

    FLUENT_BIT=/path/to/fluent-bit python tests/integration/measure_exec_exit.py [--runs N]

Two shapes of the exec input, each with the rewrite_tag + modify filters of the shipped config:
- "exit": the command runs once and Fluent Bit exits with it (Oneshot, Threaded,
  Exit_After_Oneshot, Propagate_Exit_Code);
- "loop": the command restarts its pipeline when it ends (while :; do ...; sleep 1; done) and
  Fluent Bit never sees it end (Oneshot, Threaded).
For "exit", a stand-in for fail2entra writes 10 alert lines and 10 health lines (re-tagged by
rewrite_tag), then exits after a pause; the records that reach the outputs are counted. Then
each shape is started with a long-running pipeline and stopped as systemd stops a service
(SIGTERM to every process of the unit), and as `kill PID` stops it (SIGTERM to Fluent Bit
alone)."""

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PARSERS = os.path.join(os.path.dirname(os.path.dirname(HERE)), "conf", "parsers.conf")
WRITER = """import json, random, sys, time
time.sleep(random.uniform(0, 1))
for number in range(10):
    print(json.dumps({"AlertId": number, "timestamp": "2026-11-27T13:00:00.000000Z", "tag": "security.alert.fail2entra"}))
    print(json.dumps({"uptime_seconds": number, "tag": "security.stats.fail2entra"}), flush=True)
time.sleep(float(sys.argv[1]))
"""
CONFIG = """[SERVICE]
    Flush        1
    Log_Level    info
    Parsers_File {parsers}
[INPUT]
    Name               exec
    Tag                security.alert.fail2entra
    Command            {command}
    Parser             fail2entra_alert
    Oneshot            true
    Threaded           true
    Buf_Size           1M
{exit_options}
[FILTER]
    Name          rewrite_tag
    Match         security.alert.fail2entra
    Rule          $tag ^security\\.stats\\.fail2entra$ security.stats.fail2entra false
    Emitter_Name  stats_emitter
[FILTER]
    Name    modify
    Match   security.*.fail2entra
    Remove  tag
[OUTPUT]
    Name    file
    Match   security.alert.fail2entra
    Path    {directory}
    File    alerts
    Format  plain
[OUTPUT]
    Name    file
    Match   security.stats.fail2entra
    Path    {directory}
    File    stats
    Format  plain
"""
EXIT_OPTIONS = "    Exit_After_Oneshot true\n    Propagate_Exit_Code true"


def count(path: str) -> int:
    return sum(1 for _ in open(path)) if os.path.exists(path) else 0


def start(fluent_bit: str, directory: str, command: str, exits: bool) -> subprocess.Popen:
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
    config = os.path.join(directory, "fluent-bit.conf")
    with open(config, "w") as handle:
        handle.write(CONFIG.format(parsers=PARSERS, command=command, directory=directory,
                                   exit_options=EXIT_OPTIONS if exits else ""))
    return subprocess.Popen([fluent_bit, "-c", config], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def records_after_exit(fluent_bit: str, work: str, pause: float) -> "tuple[int, int]":
    """Alerts and health records that arrive when the command exits ``pause`` s after writing."""
    directory = os.path.join(work, "exit")
    process = start(fluent_bit, directory, f"{sys.executable} {work}/writer.py {pause}", exits=True)
    try:
        process.wait(timeout=60)
    finally:
        _kill(process)
    return count(os.path.join(directory, "alerts")), count(os.path.join(directory, "stats"))


def records_in_loop(fluent_bit: str, work: str) -> "tuple[int, int]":
    """The same writer restarted in a loop: records of two passes, Fluent Bit still running."""
    directory = os.path.join(work, "loop")
    process = start(fluent_bit, directory, f"while :; do {sys.executable} {work}/writer.py 0; sleep 1; done",
                    exits=False)
    try:
        deadline = time.monotonic() + 30
        while count(os.path.join(directory, "stats")) < 20 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.5)
    finally:
        _kill(process)
    return count(os.path.join(directory, "alerts")), count(os.path.join(directory, "stats"))


def seconds_to_stop(fluent_bit: str, work: str, exits: bool, whole_group: bool) -> str:
    """How long Fluent Bit takes to exit on SIGTERM while its pipeline runs ('hangs' past 15 s)."""
    tail = f"tail -q -n 0 -F {work}/followed | cat"
    command = tail if exits else f"while :; do {tail}; sleep 1; done"
    process = start(fluent_bit, os.path.join(work, "stop"), command, exits)
    try:
        time.sleep(1.5)
        started = time.monotonic()
        if whole_group:
            os.killpg(process.pid, signal.SIGTERM)
        else:
            process.send_signal(signal.SIGTERM)
        try:
            status = process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            return "hangs (killed after 15 s)"
        return f"exits {status} after {time.monotonic() - started:.1f} s"
    finally:
        _kill(process)


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="runs per pause (default 10)")
    args = parser.parse_args()
    fluent_bit = os.environ["FLUENT_BIT"]
    version = subprocess.run([fluent_bit, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    work = tempfile.mkdtemp(prefix="measure-exec-exit-")
    with open(os.path.join(work, "writer.py"), "w") as handle:
        handle.write(WRITER)
    open(os.path.join(work, "followed"), "w").close()
    random.seed(1)
    print(f"{version}; {args.runs} runs per line; each run writes 10 alerts and 10 health records")
    print("\nexit: Exit_After_Oneshot, the command exits <pause> s after its last record")
    print("pause (s) | runs losing health records | health records lost | alerts lost")
    for pause in (0, 0.1, 0.2, 0.3, 0.5, 1.0):
        results = [records_after_exit(fluent_bit, work, pause) for _ in range(args.runs)]
        losing = sum(1 for _, health in results if health < 10)
        print(f"{pause:9} | {losing:>2} of {args.runs} | {sum(10 - health for _, health in results):>3} of {10 * args.runs}"
              f" | {sum(10 - alerts for alerts, _ in results)} of {10 * args.runs}")
    alerts, health = records_in_loop(fluent_bit, work)
    print(f"\nloop: two passes of the writer, no pause: {alerts} of 20 alerts, {health} of 20 health records")
    print("\nSIGTERM while the pipeline runs:")
    for exits in (True, False):
        for whole_group in (True, False):
            print(f"  {'exit' if exits else 'loop'}, SIGTERM to {'every process' if whole_group else 'Fluent Bit alone'}: "
                  f"{seconds_to_stop(fluent_bit, work, exits, whole_group)}")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
