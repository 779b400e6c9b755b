"""The two tiers from the command line, through real pipes: ``fail2entra --edge`` on the hosts'
logs, piped into ``fail2entra --accept-summaries`` (and into two shards) beside the sign-ins,
gives the rule's rows; an edge emits within its flush interval while its input stays open; bad
summaries are refused with a clear notice and cost nothing else; options that contradict the
role are refused at start."""

import json
import os
import random
import subprocess
import time

import msgpack
import pytest

from cli import CHILD_ENV, COMMAND, StdoutReader, alerts_of, per_kind, run_cli, stats_summary
from kql_oracle import rule_rows
from scenario import START, random_rows, raw_line
from test_parity import KQL, keys, write_by_source


def pipe(edge_args, central_args, timeout=60):
    """``fail2entra EDGE_ARGS | fail2entra CENTRAL_ARGS``: both exit statuses, the central's
    stdout and both stderrs."""
    edge = subprocess.Popen([COMMAND, *edge_args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    central = subprocess.Popen([COMMAND, *central_args], stdin=edge.stdout, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    edge.stdout.close()  # the central holds the only read end: it sees the end when the edge exits
    out, central_err = central.communicate(timeout=timeout)
    edge_err = edge.stderr.read()
    edge.wait(timeout)
    return edge.returncode, central.returncode, out, edge_err.decode(), central_err.decode()


def test_edge_piped_into_a_central_gives_the_rules_rows(tmp_path):
    rows = random_rows(random.Random(21))
    auth_log, security_xml, signins = write_by_source(rows, tmp_path)
    edge_status, status, out, edge_err, err = pipe(
        KQL + ["--edge", "--stats", auth_log, security_xml],
        KQL + ["--accept-summaries", "--stats", signins, "-"])
    assert (edge_status, status) == (0, 0), edge_err + err
    assert keys(alerts_of(out)) == rule_rows(rows) != []
    assert int(stats_summary(edge_err)["summaries emitted"]) > 0
    assert per_kind(stats_summary(err)["summaries refused"]) == {}


def test_an_edge_split_into_two_shards_gives_the_alerts_of_one_process(tmp_path):
    """Each shard reads every summary (as through tee) and keeps its own IPs: together they
    alert exactly as one process reading everything does (hardened, IPv6 included)."""
    rows = random_rows(random.Random(22))
    auth_log, security_xml, signins = write_by_source(rows, tmp_path)
    whole = run_cli(["--suppress", "0", auth_log, security_xml, signins])
    assert whole.returncode == 0
    expected = keys(alerts_of(whole.stdout))
    edge = run_cli(["--edge", "--shards", "2", "--record-tag-key", "tag", auth_log, security_xml])
    records = [json.loads(line) for line in edge.stdout.splitlines()]
    assert {record["tag"] for record in records} <= {"security.summary.fail2entra.shard.0",
                                                     "security.summary.fail2entra.shard.1"}
    found, ignored = [], 0
    for shard in (0, 1):
        result = run_cli(["--suppress", "0", "--accept-summaries", "--shard", f"{shard}/2", "--stats", signins, "-"],
                         stdin=edge.stdout)
        assert result.returncode == 0, result.stderr
        found += alerts_of(result.stdout)
        ignored += per_kind(stats_summary(result.stderr.decode())["other shard"])["summaries"]
    assert keys(found) == expected != []
    assert ignored == sum(len(record["fail2entra_summaries"]["summaries"]) for record in records)


def test_msgpack_from_the_edge_into_a_central_reading_msgpack(tmp_path):
    rows = random_rows(random.Random(23))
    auth_log, security_xml, signins = write_by_source(rows, tmp_path)
    edge = run_cli(KQL + ["--edge", "--output", "msgpack", auth_log, security_xml])
    stream = edge.stdout + b"".join(msgpack.packb(json.loads(line)) for line in open(signins, encoding="utf-8"))
    result = run_cli(KQL + ["--input", "msgpack", "--accept-summaries"], stdin=stream)
    assert result.returncode == 0, result.stderr
    assert keys(alerts_of(result.stdout)) == rule_rows(rows)


def test_an_edge_emits_within_its_flush_interval_while_its_input_stays_open():
    edge = subprocess.Popen([COMMAND, "--edge", "--flush-interval", "200ms", "--timezone", "UTC"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0,
                            env=CHILD_ENV)
    reader = StdoutReader(edge.stdout, encoding="json")
    reader.start()
    try:
        written = time.monotonic()
        edge.stdin.write(b"Nov 27 10:00:01 web1 sshd[7]: Invalid user x from 203.0.113.9 port 22\n")
        [(arrival, record)] = reader.wait_for(lambda records: len(records) >= 1, 5.0, "the summary")
        assert arrival - written < 2.0
        assert record["fail2entra_summaries"]["summaries"][0][:3] == ["Syslog", "203.0.113.9", 1]
    finally:
        edge.stdin.close()
        edge.wait(10)
    assert edge.returncode == 0


def summary_line(items, **header):
    batch = {"version": 1, "edge": "web7", "profile": "hardened", "bucket_seconds": 60, **header, "summaries": items}
    return json.dumps({"fail2entra_summaries": batch})


def test_bad_summaries_are_refused_with_a_clear_notice_and_nothing_else_is_lost():
    at = START + 3600  # 2026-11-27T01:00:00Z
    good = ["Syslog", "203.0.113.7", 6, at, at + 30, ["web1"], ["root"]]
    lines = [
        summary_line([["Syslog", "203.0.113.8", -2, at, at, ["web1"], ["root"]], good]),  # negative count; the good one stays
        summary_line([["Syslog", "203.0.113.8", 10 ** 9, at, at, ["web1"], ["root"]]]),  # huge count
        summary_line([["AuditLogs", "203.0.113.8", 3, at, at, ["web1"], ["root"]]]),  # unknown source
        summary_line([["Syslog", "203.0.113.8", 3, at, at, ["web1"] * 6, ["root"]]]),  # oversized host list
        summary_line([["Syslog", "203.0.113.8", 3, 4e9, 4e9, ["web1"], ["root"]]]),  # future-dated
        summary_line([["Syslog", "203.0.113.8", 3, at, at, ["web1"], ["root"]]], version=7),  # another schema
        summary_line([["Syslog", "203.0.113.8", 3, at, at, ["web1"], ["root"]]], profile="kql"),  # another profile
        '{"fail2entra_summaries": {"version": 1, "edge": "web7"',  # cut short
        summary_line([["Syslog", "203.0.113.8", 3, at, at, ["web1"], ["x" * 500]] for _ in range(3000)]),  # oversized record
        json.dumps({"time": "2026-11-27T01:05:00Z", "category": "SignInLogs", "resultType": "0",
                    "properties": {"id": "s1", "userPrincipalName": "bob@contoso.com", "ipAddress": "203.0.113.7"}}),
    ]
    result = run_cli(["--accept-summaries", "--stats", "--max-record-bytes", "100000"],
                     stdin=("\n".join(lines) + "\n").encode())
    assert result.returncode == 0
    [alert] = alerts_of(result.stdout)
    assert alert["IPAddress"] == "203.0.113.7" and alert["Evidence"][0]["FailureCount"] == 6
    notices = result.stderr.decode()
    for expected in ("summary 0 (ip '203.0.113.8'): count: Expected `int` >= 1", "count: Expected `int` <= 1000000",
                     "source: Invalid enum value 'AuditLogs'", "hosts: Expected `array` of length <= 5",
                     "schema version 7; this fail2entra reads version 1",
                     "ahead of this clock", "counted with profile 'kql', this central uses 'hardened'",
                     "over the size limit"):
        assert expected in notices, expected
    figures = stats_summary(notices)
    assert per_kind(figures["malformed"]) == {"fail2entra-summary": 5, "json": 1}
    assert per_kind(figures["summaries refused"]) == {"future": 1, "profile": 1}
    assert figures["summaries merged"] == "1" and figures["oversized"] == "1"


def test_summaries_without_accept_summaries_are_counted_and_not_merged():
    at = START + 3600
    line = summary_line([["Syslog", "203.0.113.7", 9, at, at, ["web1"], ["root"]]])
    result = run_cli(["--stats"], stdin=(line + "\n").encode())
    assert result.returncode == 0 and result.stdout == b""
    assert "--accept-summaries is off" in result.stderr.decode()
    figures = stats_summary(result.stderr.decode())
    assert per_kind(figures["summaries refused"]) == {"not-accepted": 1}
    assert per_kind(figures["failures counted"])["Syslog"] == 0


@pytest.mark.parametrize("args, message", [
    (["--edge", "--accept-summaries"], "--accept-summaries is not for an edge"),
    (["--edge", "--shard", "0/2"], "--shard is not for an edge"),
    (["--shards", "4"], "--shards is for an edge"),
    (["--shard", "2/2"], "K must be 0 to N-1"),
    (["--edge", "--forward", "192.0.2.10:24224"], "only with --forward-tls and --forward-shared-key-file"),
    (["--forward-tls"], "--forward-tls needs --forward"),
    (["--forward", "127.0.0.1:24224", "--forward-username", "edge"], "need --forward-shared-key-file"),
    (["--forward", "127.0.0.1:24224", "--forward-shared-key-file", "/nonexistent/key"], "cannot read the shared key"),
])
def test_options_that_contradict_the_role_are_refused(args, message):
    result = run_cli(args)
    assert result.returncode == 2
    assert message in result.stderr.decode()


def test_an_edge_may_send_to_the_local_collector_without_tls(tmp_path):
    """Loopback and unix sockets stay on the host: the local Fluent Bit / Fluentd forwards securely."""
    for address in ("127.0.0.1:1", "[::1]:1", "localhost:1", f"unix://{tmp_path}/fluent.sock"):
        result = run_cli(["--edge", "--forward", address], timeout=30)
        assert result.returncode == 0, (address, result.stderr)


def test_explain_mode_shows_a_summary_for_what_it_is():
    at = START + 3600
    line = summary_line([["Syslog", "203.0.113.7", 6, at, at + 30, ["web1"], ["root"]]])
    result = run_cli(["--explain", "--accept-summaries"], stdin=(line + "\n").encode())
    assert result.returncode == 0
    assert "SUMMARY of 6 failure(s) from edge 'web7'" in result.stdout.decode()
