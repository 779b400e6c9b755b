"""Two tiers give the answer of one process: random data in raw shapes, split across random
edges (``--edge``), their summaries delivered in random order and interleaved with the sign-ins
to one central (``--accept-summaries``) and to N shards (``--shard K/N``, routed by the tag
suffix ``.shard.K`` as an aggregator routes them): the alerts are those of one process reading
everything, and so is what the counters hold in the end (per IP: count, first and last failure,
and the count in every bucket). In process, through the real readers and encoders."""

import json
import random
from datetime import timezone
from typing import Dict, List, Optional, Tuple

import msgpack
import msgspec
import pytest
from hypothesis import given, settings, strategies as st

from events import BASE, signin, sshd
from parsers.address import canonical_ip
from parsers.reader import LineReader, MsgpackReader
from parsers.timestamps import Rfc3164Clock
from plugin.counter import FailureCounter
from plugin.engine import Engine, Settings
from plugin.profiles import PROFILES
from plugin.tiers.edge import EdgeEngine
from plugin.tiers.shards import Shard, parse_shard, shard_of
from plugin.tiers.summary import SUMMARIES_PER_RECORD
from scenario import random_rows, raw_line

WALL_CLOCK = 4e9  # after every event time of the data: nothing is "in the future"
SUMMARY_TAG = "security.summary.fail2entra"


class EngineSink:
    """A reader sink that hands events to an engine and keeps every problem (there must be none)."""

    def __init__(self, engine: Engine) -> None:
        self.event = engine.process
        self.problems: List[str] = []

    def ignored(self, kind: str, why: str) -> None:
        pass

    def malformed(self, kind: str, reason: str, line_number: int) -> None:
        self.problems.append(f"{kind}: {reason}")

    def unrecognised(self, text: str, line_number: int) -> None:
        self.problems.append(f"unrecognised: {text[:80]}")

    def oversized(self, size: int, line_number: int) -> None:
        self.problems.append(f"oversized: {size}")

    def invalid_text(self, line_number: int) -> None:
        pass


def reader_for(engine: Engine, profile) -> Tuple[LineReader, EngineSink]:
    sink = EngineSink(engine)
    return LineReader(sink, Rfc3164Clock(timezone.utc), interest=profile.interest), sink


def central(profile_name: str, alerts: List[dict], shard: Optional[Shard] = None) -> Engine:
    return Engine(Settings(suppress=0.0), PROFILES[profile_name](), lambda alert, when: alerts.append(alert),
                  wall_clock=lambda: WALL_CLOCK, accept_summaries=True, owns=shard.owns if shard else None)


def alert_keys(alerts: List[dict]) -> List[tuple]:
    """Which sign-ins alert (the evidence in an alert is what had arrived when it fired, so it
    follows the order of arrival; what the counters hold in the end does not: counter_state)."""
    return sorted((alert["Type"], alert["Id"], alert["IPAddress"]) for alert in alerts)


def counter_state(*engines: Engine) -> Dict[str, tuple]:
    """Per source, what the engines' counters hold together: per IP the total and the first and
    last failure, and every bucket's count per IP (the hosts and users kept are the first five
    met, which follows the order of arrival)."""
    state = {}
    for source in engines[0].counters:
        tallies, buckets = [], []
        for engine in engines:
            counter = engine.counters[source]
            dumped = list(counter.dump())
            tallies += [tuple(item[:4]) for item in dumped[:len(counter)]]
            buckets += [(number, ip, count) for number, flat in dumped[len(counter):]
                        for ip, count in zip(flat[::2], flat[1::2])]
        state[source] = (sorted(tallies), sorted(buckets))
    return state


def one_process(lines: List[str], profile_name: str) -> Tuple[List[dict], Engine]:
    alerts: List[dict] = []
    engine = Engine(Settings(suppress=0.0), PROFILES[profile_name](), lambda alert, when: alerts.append(alert),
                    wall_clock=lambda: WALL_CLOCK)
    reader, sink = reader_for(engine, engine.profile)
    reader.feed(("\n".join(lines) + "\n").encode())
    reader.finish()
    assert sink.problems == []
    return alerts, engine


def run_edge(lines: List[str], profile_name: str, shards: int, flush_after: List[int], name: str) -> List[tuple]:
    """(tag, record) of every summary record an edge emits reading ``lines``, flushing after
    each line index in ``flush_after`` and at the end, as ``--flush-interval`` and the end of input do."""
    records: List[tuple] = []
    engine = EdgeEngine(Settings(suppress=0.0), PROFILES[profile_name](),
                        lambda record, when, tag: records.append((tag, record)),
                        edge_name=name, shards=shards, flush_interval=3600.0, clock=lambda: 0.0)
    reader, sink = reader_for(engine, engine.profile)
    for index, line in enumerate(lines):
        reader.feed(line.encode() + b"\n")
        if index in flush_after:
            engine.flush()
    reader.finish()
    engine.flush()
    assert sink.problems == []
    return records


def deliver(items: List[object], engine: Engine, encoding: str) -> None:
    """Feed sign-in lines (str) and summary records (dict) to a central, as JSON lines or as
    the msgpack stream of Fluentd's exec_filter (which injects the tag and time)."""
    if encoding == "json":
        stream = b"".join((item.encode() if isinstance(item, str) else msgspec.json.encode(item)) + b"\n"
                          for item in items)
        reader, sink = reader_for(engine, engine.profile)
        reader.feed(stream)
        reader.finish()
    else:
        stream = b"".join(msgpack.packb({"tag": "t", "time": 1.5,  # injected, where the record has no such key
                                         **(json.loads(item) if isinstance(item, str) else item)})
                          for item in items)
        lines, sink = reader_for(engine, engine.profile)
        reader = MsgpackReader(lines)
        reader.feed(stream)
        reader.finish()
    assert sink.problems == []


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), profile_name=st.sampled_from(["kql", "hardened"]),
       edges=st.integers(1, 4), shards=st.integers(2, 4), encoding=st.sampled_from(["json", "msgpack"]))
def test_edges_and_shards_give_the_alerts_of_one_process(seed, profile_name, edges, shards, encoding):
    rng = random.Random(seed)
    # over ten minutes many failures share a bucket (the edge sums them); over a day few do
    rows = random_rows(rng, ip_count=rng.randint(2, 6), failures=rng.randint(60, 240), signins=rng.randint(10, 40),
                       span=rng.choice([600.0, 3600.0, 23 * 3600.0]))
    alerts, single = one_process([raw_line(row) for row in rows], profile_name)
    expected, expected_state = alert_keys(alerts), counter_state(single)

    signin_lines = [raw_line(row) for row in rows if "Id" in row]
    per_edge: List[List[str]] = [[] for _ in range(edges)]
    for row in rows:
        if "Id" not in row:
            per_edge[rng.randrange(edges)].append(raw_line(row))
    single_records, sharded_records = [], []
    for number, edge_lines in enumerate(per_edge):
        flush_after = rng.sample(range(len(edge_lines) + 1), k=min(len(edge_lines) + 1, rng.randint(0, 4)))
        single_records += [record for _, record in run_edge(edge_lines, profile_name, 1, flush_after, f"edge{number}")]
        sharded_records += run_edge(edge_lines, profile_name, shards, flush_after, f"edge{number}")

    alerts = []
    items = signin_lines + single_records
    rng.shuffle(items)
    engine = central(profile_name, alerts)
    deliver(items, engine, encoding)
    assert alert_keys(alerts) == expected
    assert counter_state(engine) == expected_state

    routed: Dict[str, List[dict]] = {}
    for tag, record in sharded_records:
        routed.setdefault(tag, []).append(record)
    assert set(routed) <= {f"{SUMMARY_TAG}.shard.{index}" for index in range(shards)}
    shard_alerts: List[dict] = []
    shard_engines: List[Engine] = []
    for index in range(shards):
        found: List[dict] = []
        items = signin_lines + routed.get(f"{SUMMARY_TAG}.shard.{index}", [])
        rng.shuffle(items)
        shard_engines.append(central(profile_name, found, Shard(index, shards)))
        deliver(items, shard_engines[-1], encoding)
        key = (lambda ip: ip) if profile_name == "kql" else canonical_ip
        assert all(shard_of(key(alert["IPAddress"]), shards) == index for alert in found)
        shard_alerts += found
    assert alert_keys(shard_alerts) == expected
    assert counter_state(*shard_engines) == expected_state


def test_the_property_test_sees_alerts():
    """The random data the property test draws alerts in most examples (it can fail)."""
    with_alerts = sum(bool(one_process([raw_line(row) for row in random_rows(random.Random(seed))], profile)[0])
                      for seed in range(10) for profile in ("kql", "hardened"))
    assert with_alerts >= 15


# -- summaries, exactly ---------------------------------------------------------------------

def summarise(events, profile_name="hardened", shards=1, exclusions=()):
    records = []
    engine = EdgeEngine(Settings(), PROFILES[profile_name](), lambda record, when, tag: records.append((tag, record)),
                        failure_exclusions=exclusions, edge_name="web1", shards=shards, clock=lambda: 0.0)
    for event in events:
        engine.process(event)
    engine.flush()
    return engine, records


def test_a_summary_stands_for_its_failures_per_source_ip_and_bucket():
    events = [sshd("203.0.113.7", at=second, user=user, host=host)
              for second, user, host in ((1, "root", "web1"), (2, "admin", "web2"), (3, "root", "web1"), (70, "oracle", "web1"))]
    events.append(sshd("203.0.113.8", at=5))
    _, records = summarise(events)
    [(tag, record)] = records
    assert tag == SUMMARY_TAG
    batch = record["fail2entra_summaries"]
    assert (batch["version"], batch["edge"], batch["profile"], batch["bucket_seconds"]) == (1, "web1", "hardened", 60)
    assert sorted(batch["summaries"]) == sorted([
        ["Syslog", "203.0.113.7", 3, BASE + 1, BASE + 3, ["web1", "web2"], ["root", "admin"]],
        ["Syslog", "203.0.113.7", 1, BASE + 70, BASE + 70, ["web1"], ["oracle"]],
        ["Syslog", "203.0.113.8", 1, BASE + 5, BASE + 5, ["web1"], ["root"]],
    ])


def test_a_merged_summary_leaves_the_counter_as_its_failures_would():
    raw, merged = FailureCounter(60), FailureCounter(60)
    failures = [(10.5, "web1", "root"), (12.0, "web2", "admin"), (30.25, "web1", "root"), (75.0, "web3", "oracle")]
    for when, host, user in failures:
        raw.add("192.0.2.7", when, 1, host, user)
    merged.add_summary("192.0.2.7", 3, 10.5, 30.25, ("web1", "web2"), ("root", "admin"))
    merged.add_summary("192.0.2.7", 1, 75.0, 75.0, ("web3",), ("oracle",))
    merged._check()
    assert list(merged.dump()) == list(raw.dump())
    merged.add_summary("192.0.2.7", 2, 11.0, 11.5, ("web1", "web1", "web4", "web5", "web6"), ("root",))
    merged._check()
    assert merged.evidence("192.0.2.7", 0, 100).hosts == ("web1", "web2", "web3", "web4", "web5")


def test_an_edge_flushes_within_its_interval_and_past_its_cap():
    now = [0.0]
    records = []
    engine = EdgeEngine(Settings(max_ips=3), PROFILES["hardened"](), lambda record, when, tag: records.append(record),
                        edge_name="web1", flush_interval=1.0, clock=lambda: now[0])
    engine.process(sshd("203.0.113.1", at=1))
    assert engine.next_flush == 1.0 and records == []
    now[0] = 1.0
    engine.flush()
    assert len(records) == 1 and engine.next_flush == 2.0
    for index in range(4):  # the fourth key held passes --max-ips 3: flushed at once
        engine.process(sshd(f"203.0.113.{10 + index}", at=1))
    assert len(records) == 2 and engine.tracked_total() == 0


def test_failure_exclusions_apply_at_the_edge_and_sign_ins_stay_out():
    from plugin.exclusions import load_exclusions
    [exclusion] = load_exclusions([{"name": "backup", "applies_to": "failures", "where": 'HostName == "backup1"'}])
    engine, records = summarise([sshd("203.0.113.7", at=1, host="backup1"), sshd("203.0.113.7", at=2, host="web1"),
                                 signin("203.0.113.7", at=3)], exclusions=[exclusion])
    [(_, record)] = records
    [summary] = record["fail2entra_summaries"]["summaries"]
    assert summary[2] == 1 and summary[5] == ["web1"]
    assert exclusion.removed == 1 and engine.signins_ignored == 1


def test_records_hold_at_most_their_share_and_shards_split_by_the_hash():
    events = [sshd(f"10.{index // 65536}.{index // 256 % 256}.{index % 256}", at=1) for index in range(2 * SUMMARIES_PER_RECORD + 5)]
    _, records = summarise(events, shards=3)
    sizes: Dict[str, int] = {}
    for tag, record in records:
        batch = record["fail2entra_summaries"]
        shard = int(tag.rsplit(".", 1)[1])
        assert batch["shard"] == shard and len(batch["summaries"]) <= SUMMARIES_PER_RECORD
        assert all(shard_of(item[1], 3) == shard for item in batch["summaries"])
        sizes[tag] = sizes.get(tag, 0) + len(batch["summaries"])
    assert sum(sizes.values()) == len(events) and len(sizes) == 3


# -- the central's decisions --------------------------------------------------------------------

def summary_record(profile="hardened", bucket=60, last=BASE + 30, count=6, ip="203.0.113.7", source="Syslog"):
    return {"fail2entra_summaries": {"version": 1, "edge": "web1", "profile": profile, "bucket_seconds": bucket,
                                     "summaries": [[source, ip, count, last - 20, last, ["web1"], ["root"]]]}}


def central_reading(records, accept=True, wall_clock=WALL_CLOCK, shard=None, window=86400.0):
    alerts, notices = [], []
    engine = Engine(Settings(window=window), PROFILES["hardened"](), lambda alert, when: alerts.append(alert),
                    report=lambda category, text: notices.append((category, text)), wall_clock=lambda: wall_clock,
                    accept_summaries=accept, owns=shard.owns if shard else None)
    graph_signin = {"id": "s1", "createdDateTime": "2026-11-27T14:00:40Z", "userPrincipalName": "bob@contoso.com",
                    "ipAddress": "203.0.113.7", "status": {"errorCode": 0}}
    deliver(records + [json.dumps(graph_signin)], engine, "json")
    return engine, alerts, notices


def test_a_central_merges_accepted_summaries_into_alerts():
    engine, alerts, notices = central_reading([summary_record()])
    assert len(alerts) == 1 and alerts[0]["Evidence"][0]["FailureCount"] == 6
    assert engine.counts.summaries_merged == 1 and notices == []


@pytest.mark.parametrize("record, accept, wall_clock, reason", [
    (summary_record(), False, WALL_CLOCK, "not-accepted"),
    (summary_record(profile="kql"), True, WALL_CLOCK, "profile"),
    (summary_record(bucket=45), True, WALL_CLOCK, "bucket"),
    (summary_record(last=BASE + 30), True, BASE - 3600, "future"),
])
def test_a_central_refuses_what_it_must_not_merge_with_a_counted_notice(record, accept, wall_clock, reason):
    engine, alerts, notices = central_reading([record], accept=accept, wall_clock=wall_clock)
    assert alerts == [] and engine.counts.summaries_merged == 0
    assert engine.counts.summaries_refused == {reason: 1}
    assert [category for category, _ in notices] == ["summary-refused"]
    assert "203.0.113.7" in notices[0][1] and "edge 'web1'" in notices[0][1]


def test_a_bucket_width_that_divides_the_centrals_is_merged():
    engine, alerts, _ = central_reading([summary_record(bucket=30, last=BASE + 25)])
    assert engine.counts.summaries_merged == 1 and len(alerts) == 1


def test_a_shard_ignores_and_counts_what_another_shard_owns():
    owner = shard_of("203.0.113.7", 2)
    engine, alerts, _ = central_reading([summary_record()], shard=Shard(1 - owner, 2))
    assert alerts == [] and engine.counts.other_shard == {"failures": 0, "summaries": 1, "signins": 1}
    engine, alerts, _ = central_reading([summary_record()], shard=Shard(owner, 2))
    assert len(alerts) == 1 and engine.counts.other_shard == {"failures": 0, "summaries": 0, "signins": 0}


def test_the_shard_hash_is_the_documented_one():
    import hashlib
    for key in ("203.0.113.7", "2001:db8::5", "10.0.0.1", "é"):
        digest = hashlib.sha256(key.encode("utf-8")).digest()
        assert shard_of(key, 7) == int.from_bytes(digest[:8], "big") % 7
    assert [shard_of("203.0.113.7", n) for n in (2, 3, 4, 5)] == [1, 0, 3, 0]  # fixed forever: a change re-shards every IP
    assert parse_shard("2/4") == Shard(2, 4) and parse_shard("") is None
    for bad in ("4/4", "1", "-1/4", "a/b", "1/0"):
        with pytest.raises(ValueError):
            parse_shard(bad)
