"""Durable, bounded state: snapshots survive restarts (SIGTERM, kill -9), unusable snapshot
files never stop a start, and an IP spray under the cap keeps every real attacker's alert."""

import json
import os
import random
import signal
import subprocess
import time

import msgpack
import pytest

from cli import COMMAND, alerts_of, run_cli, wait_for_signal_handler
from samples import SAMPLE_DIR
from scenario import random_rows, raw_line


def time_ordered_lines(seed):
    rows = random_rows(random.Random(seed))
    rows.sort(key=lambda row: row["TimeGenerated"])
    return [raw_line(row) + "\n" for row in rows]


def run_until_sigterm(args, lines):
    """Feed ``lines`` through a pipe, close stdin and send SIGTERM at once (as Fluentd does)."""
    process = subprocess.Popen([COMMAND, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for_signal_handler(process.pid, signal.SIGTERM)
    process.stdin.write("".join(lines).encode())
    process.stdin.close()
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.stdout.read(), process.stderr.read()
    assert process.wait(timeout=60) == 0, stderr
    return alerts_of(stdout)


@pytest.mark.parametrize("profile", ["hardened", "kql"])
@pytest.mark.parametrize("suppress", ["0", "1h"])
def test_a_stream_cut_in_two_runs_gives_the_alerts_of_one_run(tmp_path, profile, suppress):
    lines = time_ordered_lines(11)
    args = ["--profile", profile, "--suppress", suppress]
    whole = alerts_of(run_cli(args, stdin="".join(lines).encode()).stdout)
    assert whole, "the scenario holds alerts"
    state = str(tmp_path / "state")
    for cut in (len(lines) // 3, len(lines) // 2):
        if os.path.exists(state):
            os.remove(state)
        first = run_until_sigterm(args + ["--state", state], lines[:cut])
        second = run_until_sigterm(args + ["--state", state], lines[cut:])
        assert first + second == whole


def test_retained_signins_and_suppression_survive_a_restart(tmp_path):
    state = str(tmp_path / "state")
    signin = json.dumps({"Type": "SigninLogs", "TimeGenerated": "2026-11-27T10:00:00Z", "Id": "s1",
                         "IPAddress": "203.0.113.9", "UserPrincipalName": "bob@contoso.com", "ResultType": "0"})
    failures = "".join(f"2026-11-27T10:0{i}:00+00:00 web1 sshd[1]: Failed password for root from 203.0.113.9 port 1 ssh2\n"
                       for i in range(6))
    assert run_cli(["--state", state], stdin=(signin + "\n").encode()).stdout == b""
    late = alerts_of(run_cli(["--state", state], stdin=failures.encode()).stdout)
    assert [(alert["Id"], alert["Late"]) for alert in late] == [("s1", True)]
    again = signin.replace('"s1"', '"s2"').replace("10:00:00", "10:30:00")
    assert run_cli(["--state", state], stdin=(again + "\n").encode()).stdout == b""  # suppressed (1h)


def test_kill_9_at_random_points_forgets_at_most_the_last_interval(tmp_path):
    """After a kill -9 the state file is the last complete snapshot: it loads, and it holds a
    prefix of the input (never more failures than were fed, never a torn file)."""
    lines = time_ordered_lines(12) * 3
    state = str(tmp_path / "state")
    rng = random.Random(5)
    for attempt in range(4):
        process = subprocess.Popen([COMMAND, "--state", state, "--snapshot-interval", "0.05", "--profile", "kql"],
                                   stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_signal_handler(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + rng.uniform(0.05, 0.6)
        for line in lines:
            process.stdin.write(line.encode())
            process.stdin.flush()
            if time.monotonic() > deadline:
                break
            time.sleep(0.0005)
        process.kill()
        process.wait()
        restart = run_cli(["--state", state, "--profile", "kql", "--stats"], stdin=b"")
        assert restart.returncode == 0
        assert b"UNUSABLE" not in restart.stderr, restart.stderr
    with open(state, "rb") as handle:
        header = next(msgpack.Unpacker(handle, raw=False))
    assert header["format"] == "fail2entra-state"
    assert not os.path.exists(state + ".tmp") or os.path.getsize(state + ".tmp") >= 0


def _unusable(tmp_path, content):
    state = tmp_path / "state"
    if content is not None:
        state.write_bytes(content)
    result = run_cli(["--state", str(state), "--stats"], stdin=open(os.path.join(SAMPLE_DIR, "auth.log"), "rb").read())
    return state, result


def _good_snapshot(tmp_path):
    state = tmp_path / "good"
    run_cli(["--state", str(state)], stdin=b"2026-11-27T10:00:00+00:00 web1 sshd[1]: Failed password for root from 203.0.113.9 port 1 ssh2\n")
    return state.read_bytes()


@pytest.mark.parametrize("damage", ["corrupt", "truncated", "empty", "foreign-version", "other-profile", "garbage-tail"])
def test_an_unusable_snapshot_is_moved_aside_and_the_run_starts_empty(tmp_path, damage):
    good = _good_snapshot(tmp_path)
    header, *rest = list(msgpack.Unpacker(__import__("io").BytesIO(good), raw=False))
    content = {
        "corrupt": good[:10] + bytes(range(256)) * 4,
        "truncated": good[: len(good) * 2 // 3],
        "empty": b"",
        "foreign-version": msgpack.packb({**header, "version": 99}) + b"".join(msgpack.packb(item) for item in rest),
        "other-profile": msgpack.packb({**header, "profile": "kql"}) + b"".join(msgpack.packb(item) for item in rest),
        "garbage-tail": good + b"\x92\xa3abc",
    }[damage]
    state, result = _unusable(tmp_path, content)
    assert result.returncode == 0
    assert b"IS UNUSABLE" in result.stderr and b"starting with EMPTY state" in result.stderr
    aside = [name for name in os.listdir(tmp_path) if name.startswith("state.unusable-")]
    assert len(aside) == 1 and (tmp_path / aside[0]).read_bytes() == content
    assert len(alerts_of(result.stdout)) == 0
    assert b"tracked ips: SecurityEvent 0, WindowsEvent 0, Syslog 5" in result.stderr
    # and the run wrote a good snapshot in its place
    assert run_cli(["--state", str(state)], stdin=b"").stderr.count(b"UNUSABLE") == 0


def test_a_missing_snapshot_is_a_first_start(tmp_path):
    state, result = _unusable(tmp_path, None)
    assert result.returncode == 0 and b"UNUSABLE" not in result.stderr and state.exists()


def test_an_unwritable_snapshot_is_reported_and_the_run_goes_on(tmp_path):
    """A path under a regular file cannot be written by anyone (root ignores directory modes)."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run_cli(["--state", str(blocker / "state"), "--stats", os.path.join(SAMPLE_DIR, "auth.log"),
                      os.path.join(SAMPLE_DIR, "signins.jsonl")])
    assert result.returncode == 0 and len(alerts_of(result.stdout)) == 2
    assert b"cannot write the state snapshot" in result.stderr and b"failures 1" in result.stderr


def spray_lines(addresses, attackers, seed=3):
    """``addresses`` distinct sources with 1 to 3 failures each (IPv4 and IPv6), mixed with
    ``attackers`` sources over the threshold and their successful sign-ins."""
    rng = random.Random(seed)
    base = 1795750000  # 2026-11-27
    lines = []
    attacker_ips = [f"198.51.100.{index}" for index in range(1, attackers + 1)]
    attack_at = {rng.randrange(addresses): ip for ip in attacker_ips}
    for index in range(addresses):
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(base + index * 0.01))
        source = f"2001:db8:{index >> 16:x}:{index & 0xffff:x}::1" if index % 3 == 0 else \
            f"10.{index >> 16 & 255}.{index >> 8 & 255}.{index & 255}"
        for _ in range(rng.choice((1, 1, 2, 3))):
            lines.append(f"{stamp} web1 sshd[1]: Failed password for root from {source} port 22 ssh2\n")
        attacker = attack_at.get(index)
        if attacker:
            lines.extend(f"{stamp} web1 sshd[2]: Invalid user admin from {attacker} port 22\n" for _ in range(6))
            lines.append(json.dumps({"Type": "SigninLogs", "TimeGenerated": stamp, "Id": attacker,
                                     "IPAddress": attacker, "UserPrincipalName": "bob@contoso.com",
                                     "ResultType": "0"}) + "\n")
    return lines, attacker_ips


def test_a_spray_under_the_cap_keeps_every_real_attacker(tmp_path):
    """Scaled down for CI (the benchmark runs 10M addresses under a 1M cap)."""
    lines, attackers = spray_lines(60_000, 50)
    path = tmp_path / "spray.log"
    path.write_text("".join(lines))
    result = run_cli(["--max-ips", "5000", "--stats", str(path)])
    assert result.returncode == 0
    assert sorted(alert["IPAddress"] for alert in alerts_of(result.stdout)) == sorted(attackers)
    stats = result.stderr.decode()
    evicted = int(stats.split("ips evicted: ")[1].split()[0])
    assert evicted > 50_000
    assert "tracked IPs passed --max-ips 5000" in stats
    tracked = int(stats.split("tracked ips: SecurityEvent 0, WindowsEvent 0, Syslog ")[1].split()[0])
    assert tracked <= 5000


def test_one_process_at_a_time_holds_a_state_file(tmp_path, monkeypatch):
    """Two runs on one --state would overwrite each other's snapshots: the second waits for the
    lock (a respawned child waits for the old one to finish), then stops with exit status 2."""
    from plugin import state as state_module
    from plugin.files import FileInUseError

    monkeypatch.setattr(state_module, "LOCK_WAIT_SECONDS", 0.2)
    path = str(tmp_path / "state")
    first = state_module.StateFile(path)
    with pytest.raises(FileInUseError):
        state_module.StateFile(path)
    os.close(first._lock)
    os.close(state_module.StateFile(path)._lock)  # released: the next one takes it
    holder = subprocess.Popen([COMMAND, "--state", path], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_for_signal_handler(holder.pid, signal.SIGTERM)
        started = time.monotonic()
        second = run_cli(["--state", path], stdin=b"")
        assert second.returncode == 2 and b"in use by another fail2entra" in second.stderr
        assert time.monotonic() - started >= 10.0  # the CLI waited LOCK_WAIT_SECONDS for the holder
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
