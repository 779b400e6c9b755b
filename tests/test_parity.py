"""``fail2entra --profile kql --suppress 0`` returns exactly the rows the Sentinel rule returns,
keyed by sign-in table and id, on data within one day: inputs as separate files in any order,
or as one shuffled stream on stdin, raw shapes or Sentinel rows."""

import itertools
import json
import random

import pytest

from cli import alerts_of, run_cli
from kql_oracle import rule_rows
from scenario import random_rows, raw_line

KQL = ["--profile", "kql", "--suppress", "0"]


def keys(alerts):
    return sorted((alert["Type"], alert["Id"]) for alert in alerts)


def write_by_source(rows, directory):
    """Syslog lines, Windows XML and sign-in JSON in separate files, as a collector would have them."""
    files = {"auth.log": [], "security.xml": [], "signins.jsonl": []}
    for row in rows:
        name = "auth.log" if row["Type"] == "Syslog" else "signins.jsonl" if "Id" in row else "security.xml"
        files[name].append(raw_line(row))
    paths = []
    for name, lines in files.items():
        path = directory / name
        path.write_text("\n".join(lines) + "\n")
        paths.append(str(path))
    return paths


@pytest.mark.parametrize("seed", range(4))
def test_separate_files_in_any_order(tmp_path, seed):
    rows = random_rows(random.Random(seed))
    expected = rule_rows(rows)
    assert expected, "the scenario should hold alerts"
    paths = write_by_source(rows, tmp_path)
    for order in itertools.permutations(paths):
        result = run_cli(KQL + list(order))
        assert result.returncode == 0, result.stderr
        assert keys(alerts_of(result.stdout)) == expected


@pytest.mark.parametrize("seed", range(4, 8))
def test_one_shuffled_stream_on_stdin(seed):
    rng = random.Random(seed)
    rows = random_rows(rng)
    lines = [raw_line(row) for row in rows]
    rng.shuffle(lines)
    result = run_cli(KQL, stdin=("\n".join(lines) + "\n").encode())
    assert result.returncode == 0, result.stderr
    assert keys(alerts_of(result.stdout)) == rule_rows(rows)


def test_sentinel_rows_as_input():
    rows = random_rows(random.Random(99))
    result = run_cli(KQL + ["-"], stdin="".join(json.dumps(row) + "\n" for row in rows).encode())
    assert result.returncode == 0, result.stderr
    assert keys(alerts_of(result.stdout)) == rule_rows(rows)
