"""The benchmark kept in the repository (tests/benchmark.py) still runs: one invocation at tiny
sizes, through the installed command, checked for figures and for input it failed to read.
Targets are not checked here: a few thousand lines measure start-up, not throughput."""

import json
import os
import re
import shutil
import subprocess
import sys

BENCHMARK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "benchmark.py")


def test_benchmark_runs_at_tiny_scale(tmp_path):
    results_path = tmp_path / "results.json"
    # "startup" is left out: two more process start-ups for no code path the others lack.
    completed = subprocess.run([sys.executable, BENCHMARK, "--tiny", "--only",
                                "auth-log,windows-xml,signin-json,memory,exec-filter,spray,state,exclusions,"
                                "edge,central,shards",
                                "--json", str(results_path)],
                               capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert re.search(r"fail2entra --profile hardened .* [\d,]+ lines/s", completed.stdout), completed.stdout

    results = json.loads(results_path.read_text())["results"]
    runs = {run["label"]: run for run in results["auth-log"]["runs"]}
    for profile in ("hardened", "kql"):
        run = runs[f"fail2entra --profile {profile}"]
        assert run["exit_status"] == 0 and run["rate_wall"] > 0 and run["rate_cpu"] > 0
        assert run["stats"]["lines"] == run["items"]
        assert run["summary"]["failures_counted"] > 0
    if shutil.which("fail2ban-regex"):
        assert runs["fail2ban-regex sshd"]["fail2ban"]["matched"] > 0
        assert results["auth-log"]["derived"]["hardened_over_fail2ban_wall"] > 0
    else:
        assert "fail2ban-regex sshd" not in runs
    memory = results["memory"]["derived"]
    assert memory["tracked_ips"] == memory["distinct_ips"]
    assert memory["peak_rss_bytes"] > memory["baseline_rss_bytes"]
    exec_filter = results["exec-filter"]["derived"]
    assert exec_filter["throughput_records_per_s_wall"] > 0
    assert exec_filter["latency_alerts_measured"] > 0 and exec_filter["latency_max_ms"] >= exec_filter["latency_p50_ms"] > 0
    spray = results["spray"]["derived"]
    assert spray["attacker_alerts"] == spray["attackers"] == spray["alerts_total"] == 50
    assert spray["ips_evicted"] > 0 and spray["tracked_ips_at_exit"] <= spray["max_ips"]
    state = results["state"]["derived"]
    assert state["restored_ips"] == state["tracked_ips"] and state["snapshot_bytes"] > 0
    exclusions = results["exclusions"]["derived"]
    assert exclusions["with_over_without_wall_percent"] > 0 and exclusions["failures_counted"] > 0
    edge = results["edge"]["derived"]
    assert edge["summaries"] > 0 and edge["raw_bytes"] > edge["summaries_json_bytes"] > edge["summaries_msgpack_bytes"]
    assert 0 < edge["forward_gzip_wire_bytes"] < edge["summaries_msgpack_bytes"]
    assert results["central"]["runs"][0]["stats"]["summaries_merged"] == results["central"]["derived"]["summaries"]
    shards = results["shards"]["derived"]
    assert sum(shards["shard_ips"]) == shards["ips"] and len(shards["shard_ips"]) == shards["shards"]
    for name, outcome in results.items():
        assert outcome["runs"] and not outcome["anomalies"], (name, outcome["anomalies"])


def test_the_hostile_input_measurements_run_at_tiny_scale(tmp_path):
    """hostile-cost (the fuzz generators' costliest items replayed through the CLI) and
    spray-at-cap give their figures."""
    results_path = tmp_path / "results.json"
    completed = subprocess.run([sys.executable, BENCHMARK, "--tiny", "--only", "hostile-cost,spray-at-cap",
                                "--json", str(results_path)], capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    assert completed.returncode == 0, completed.stdout + completed.stderr
    results = json.loads(results_path.read_text())["results"]
    hostile = results["hostile-cost"]
    assert hostile["derived"]["normal_line_us"] >= 0 and hostile["checks"][0]["value"] is not None  # tiny: start-up noise
    assert {key for key in hostile["derived"] if key.endswith("_worst_normal_lines")} >= {
        "syslog_worst_normal_lines", "journald_worst_normal_lines", "windows-xml_worst_normal_lines",
        "msgpack_worst_normal_lines"}
    spray = results["spray-at-cap"]["derived"]
    assert spray["ipv4_ips_evicted"] > 0 and spray["ipv4_capped_over_uncapped_cpu"] > 0
    for name, outcome in results.items():
        assert outcome["runs"] and not outcome["anomalies"], (name, outcome["anomalies"])
