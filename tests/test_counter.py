"""FailureCounter and EvictionQueue: unit behaviour and a seeded random stress test checked
against a naive model, with the invariants (``_check``) asserted after every change."""

import random

import pytest

from plugin.counter import MAX_TARGETS, EvictionQueue, FailureCounter, eviction_score


def test_counts_exactly_when_all_failures_are_inside_the_window():
    counter = FailureCounter(60)
    for second in range(6):
        counter.add("192.0.2.7", 1000.0 + second, 1, "web1", "root")
        counter._check()
    assert counter.count("192.0.2.7", 1000.0, 1005.0) == 6
    assert counter.count("192.0.2.7", 0.0, 999.0) == 0
    assert counter.count("198.51.100.1", 0.0, 5000.0) == 0


def test_repeated_failures_count_their_number():
    counter = FailureCounter(60)
    counter.add("192.0.2.7", 1000.0, 3, "web1", "root")
    counter.add("192.0.2.7", 1001.0, 3, "web1", "root")
    counter._check()
    assert counter.total("192.0.2.7") == 6


def test_window_edges_are_resolved_to_buckets():
    counter = FailureCounter(60)
    counter.add("192.0.2.7", 0.0, 1, "h", "u")
    counter.add("192.0.2.7", 600.0, 1, "h", "u")
    counter.add("192.0.2.7", 1200.0, 1, "h", "u")
    counter._check()
    # [590, 1210] leaves out the failure at 0, which is in a bucket outside the window
    assert counter.count("192.0.2.7", 590.0, 1210.0) == 2
    # the bucket of 1200 ends at 1260: a window ending at 1190 leaves it out
    assert counter.count("192.0.2.7", 0.0, 1190.0) == 2


def test_evidence_keeps_first_last_and_a_few_targets():
    counter = FailureCounter(60)
    for index in range(8):
        counter.add("192.0.2.7", 100.0 + index, 1, f"host{index % 7}", f"user{index}")
    evidence = counter.evidence("192.0.2.7", 0.0, 1000.0)
    assert (evidence.count, evidence.first, evidence.last) == (8, 100.0, 107.0)
    assert len(evidence.hosts) == MAX_TARGETS and evidence.hosts[0] == "host0"
    assert evidence.users == tuple(f"user{index}" for index in range(MAX_TARGETS))


def test_expire_drops_old_buckets_and_ips():
    counter = FailureCounter(60)
    counter.add("192.0.2.1", 10.0, 1, "h", "u")
    counter.add("192.0.2.2", 10.0, 1, "h", "u")
    counter.add("192.0.2.2", 200.0, 2, "h", "u")
    assert counter.expire(100.0) == 1
    counter._check()
    assert "192.0.2.1" not in counter
    assert counter.total("192.0.2.2") == 2
    assert counter.count("192.0.2.2", 0.0, 1000.0) == 2


def test_forget_removes_an_ip_everywhere():
    counter = FailureCounter(60)
    counter.add("192.0.2.1", 10.0, 1, "h", "u")
    counter.add("192.0.2.1", 500.0, 1, "h", "u")
    counter.add("192.0.2.2", 500.0, 1, "h", "u")
    assert counter.forget("192.0.2.1") == 2
    counter._check()
    assert len(counter) == 1 and counter.total("192.0.2.1") == 0


def test_check_catches_a_broken_invariant():
    counter = FailureCounter(60)
    counter.add("192.0.2.1", 10.0, 1, "h", "u")
    counter.tallies["192.0.2.1"].total = 5
    with pytest.raises(AssertionError):
        counter._check()


@pytest.mark.parametrize("seed", range(5))
def test_stress_against_a_naive_model(seed):
    """Random adds, queries, expiries and evictions; compared with a list of every failure."""
    rng = random.Random(seed)
    width = rng.choice([1.0, 7.0, 60.0])
    counter = FailureCounter(width)
    queue = EvictionQueue()
    failures = []  # (ip, time, count) still retained
    ips = [f"192.0.2.{index}" for index in range(12)] + ["2001:db8::1", "2001:db8::2"]
    horizon = 0.0
    for _ in range(1500):
        action = rng.random()
        if action < 0.6:
            ip, when, count = rng.choice(ips), horizon + rng.uniform(0, 600), rng.choice([1, 1, 1, 3])
            counter.add(ip, when, count, rng.choice("abc"), rng.choice("xyz"))
            failures.append((ip, when, count))
        elif action < 0.8:
            ip = rng.choice(ips)
            start = rng.uniform(horizon - 100, horizon + 700)
            end = start + rng.uniform(0, 400)
            exact = sum(count for f_ip, when, count in failures if f_ip == ip and start <= when <= end)
            near = sum(count for f_ip, when, count in failures
                       if f_ip == ip and start - width <= when <= end + width)
            got = counter.count(ip, start, end)
            assert exact <= got <= near, (ip, start, end, exact, got, near)
            inside = [when for f_ip, when, _ in failures if f_ip == ip]
            if inside and start <= min(inside) and max(inside) <= end:
                assert got == exact  # every failure inside: exact
        elif action < 0.93:
            horizon += rng.uniform(0, 120)
            counter.expire(horizon)
            failures = [f for f in failures if (f[1] // width + 1) * width > horizon]
        elif action < 0.96:
            ip = rng.choice(ips)
            counter.forget(ip)
            failures = [f for f in failures if f[0] != ip]
        else:  # evictions from a queue ranked now or earlier, some IPs protected
            before = {ip for ip in ips if ip in counter}
            protected = set(rng.sample(ips, 3))
            wanted = rng.randint(1, 4)
            evicted = queue.evict([counter], wanted, dict.fromkeys(protected), horizon + 600, 5)
            gone = before - {ip for ip in ips if ip in counter}
            assert len(gone) == evicted <= wanted and not gone & protected
            assert evicted == min(wanted, len(before - protected))
            failures = [f for f in failures if f[0] not in gone]
        counter._check()
        for ip in ips:
            assert counter.total(ip) == sum(count for f_ip, _, count in failures if f_ip == ip)


def _sprayed(count, start=0.0):
    counter = FailureCounter(60)
    for index in range(count):
        counter.add(f"10.0.{index // 256}.{index % 256}", start + index, 1 + index % 3, "web1", "root")
    return counter


def test_the_queue_evicts_the_highest_scores_first_and_skips_what_changed():
    """The first eviction ranks every IP: the highest eviction scores go, protected IPs never.
    An IP that fails again after the ranking is skipped (it is active again); one that is
    already over the threshold when ranked stays unless nothing else can go."""
    counter = _sprayed(400)
    for second in range(7):
        counter.add("203.0.113.5", 10.0 + second, 1, "web1", "root")  # over the threshold, and old
    now = 1000.0
    protected = {"10.0.0.0": [], "10.0.0.3": []}
    scores = {ip: eviction_score(tally, now, 5) for ip, tally in counter.tallies.items() if ip not in protected}
    queue = EvictionQueue()
    assert queue.evict([counter], 20, protected, now, 5) == 20
    ranking = sorted(scores, key=lambda ip: (scores[ip], ip), reverse=True)
    assert all(ip not in counter for ip in ranking[:20]) and "10.0.0.0" in counter and "10.0.0.3" in counter
    assert all(ip in counter for ip in ranking[20:])
    assert 90 <= len(queue) + 20 <= 101  # about a quarter of the 401 IPs was ranked
    next_in_line = ranking[20]
    counter.add(next_in_line, 2000.0, 1, "web1", "root")  # it fails again after the ranking
    assert queue.evict([counter], 5, protected, now + 1, 5) == 5
    assert next_in_line in counter and "203.0.113.5" in counter
    assert all(ip not in counter for ip in ranking[21:26])
    counter._check()


def test_the_queue_ranks_again_only_when_it_runs_dry():
    """One ranking (O(n) for n tracked IPs) serves the next n / 4 evictions, whatever the
    batch: an eviction costs amortised O(1), besides forgetting the IP."""
    counter = _sprayed(2000)
    queue = EvictionQueue()
    rankings = []
    rank = queue._rank
    queue._rank = lambda *args, **options: rankings.append(len(counter)) or rank(*args, **options)
    while len(counter) > 20:
        queue.evict([counter], 10, {}, 5000.0, 5)
        counter._check()
    assert rankings[:4] == [2000, 1500, 1125, 844]
