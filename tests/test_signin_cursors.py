"""The sign-in poller's place in each log (plugin/signins/cursors.py): pages come newest first,
some sign-ins arrive late, the process stops after any page, and still every sign-in is handed
exactly once; the place survives in the state snapshot, and a snapshot of the version before
the poller still loads."""

import os
import random
import shutil
import subprocess
from collections import Counter
from typing import List

import msgpack
import pytest

from cli import COMMAND
from graph_server import iso7, signin
from parsers.event import SIGNIN_LOGS
from plugin.engine import Engine, Settings
from plugin.profiles import PROFILES
from plugin.signins import cursors as cursors_module
from plugin.signins.cursors import SigninCursors, signin_key
from plugin.signins.graph import Page
from plugin.signins.poller import poll_batches
from plugin.state import StateFile

T0 = 1_796_000_000.0
OVERLAP = 600.0


class ListedSignins:
    """Graph's sign-in list as the poller sees it: each sign-in visible from its arrival on,
    filtered on createdDateTime, newest first, in pages."""

    def __init__(self, clock, page_size: int) -> None:
        self.clock = clock
        self.page_size = page_size
        self.arrivals: List[tuple] = []  # (arrival time, created time, item)

    def add(self, created: float, arrival: float, upn: str = "bob@contoso.com") -> dict:
        item = signin(upn, "203.0.113.5", created)
        self.arrivals.append((arrival, created, item))
        return item

    def first_url(self, table: str, since: float) -> str:
        return f"{int(since)} 0"  # Graph's filter works in whole seconds

    def page(self, url: str) -> Page:
        since, start = map(int, url.split())
        listed = sorted(((created, item) for arrival, created, item in self.arrivals
                         if arrival <= self.clock() and created >= since), key=lambda pair: -pair[0])
        end = start + self.page_size
        return Page([item for _, item in listed[start:end]], f"{since} {end}" if end < len(listed) else None)


def restarted(cursors: SigninCursors, clock) -> SigninCursors:
    """A new process taking the place a snapshot holds (the rows go through msgpack)."""
    rows = msgpack.unpackb(msgpack.packb([cursors.cursor_rows(), list(cursors.id_rows())]))
    fresh = SigninCursors([SIGNIN_LOGS], OVERLAP, 86400, clock=clock)
    fresh.restore(*rows)
    return fresh


@pytest.mark.parametrize("seed", range(6))
def test_every_sign_in_is_handed_exactly_once_whatever_page_a_restart_comes_after(seed):
    rng = random.Random(seed)
    now = [T0]
    clock = lambda: now[0]  # noqa: E731
    graph = ListedSignins(clock, page_size=rng.choice([2, 3, 7]))
    items = []
    for _ in range(120):
        created = T0 + rng.uniform(0, 3600)
        late = rng.random() < 0.2  # Entra ID delivers some sign-ins minutes late, up to the overlap
        items.append(graph.add(created, created + (rng.uniform(60, OVERLAP) if late else rng.uniform(0, 30))))
    cursors = SigninCursors([SIGNIN_LOGS], OVERLAP, 86400, clock=clock)
    handed: Counter = Counter()
    restarts = 0
    while now[0] < T0 + 3600 + 2 * OVERLAP:
        now[0] += rng.uniform(20, 90)
        # now and then the process stops after some page, or inside one (a snapshot is taken
        # on the way out) and the next one starts from the snapshot
        stop_at = (rng.randrange(4), rng.randrange(graph.page_size + 1)) if rng.random() < 0.3 else None
        for number, batch in enumerate(poll_batches(graph, SIGNIN_LOGS, cursors.query_start(SIGNIN_LOGS))):
            stopping = stop_at is not None and number == stop_at[0]
            for position, item in enumerate(cursors.take(batch)):
                handed[item["id"]] += 1
                if stopping and position + 1 == stop_at[1]:
                    break
            if stopping:
                cursors = restarted(cursors, clock)
                restarts += 1
                break
    assert restarts > 3
    assert {item["id"] for item in items} == set(handed), "a sign-in was missed"
    assert [key for key, count in handed.items() if count > 1] == [], "a sign-in was handed twice"


def test_the_next_poll_reads_from_the_overlap_before_the_newest_sign_in_of_a_complete_poll():
    now = [T0 + 100]
    graph = ListedSignins(lambda: now[0], page_size=2)
    for offset in (10, 20, 30, 40, 50):
        graph.add(T0 + offset, T0 + offset)
    cursors = SigninCursors([SIGNIN_LOGS], OVERLAP, 3600, clock=lambda: now[0])
    assert cursors.query_start(SIGNIN_LOGS) == T0 + 100 - 3600  # first start: the look-back
    batches = list(poll_batches(graph, SIGNIN_LOGS, cursors.query_start(SIGNIN_LOGS)))
    assert [batch.last for batch in batches] == [False, False, True]
    for batch in batches[:2]:
        list(cursors.take(batch))
        assert cursors.query_start(SIGNIN_LOGS) == T0 + 100 - 3600, "moved before the poll's last page"
    list(cursors.take(batches[2]))
    assert cursors.query_start(SIGNIN_LOGS) == T0 + 50 - OVERLAP
    assert cursors.received[SIGNIN_LOGS] == 5


def test_a_sign_in_stamped_in_the_future_does_not_move_the_cursor_past_now():
    now = [T0]
    graph = ListedSignins(lambda: now[0], page_size=5)
    graph.add(T0 + 86400, T0)  # a clock gone wrong, or a forged record
    cursors = SigninCursors([SIGNIN_LOGS], OVERLAP, 3600, clock=lambda: now[0])
    for batch in poll_batches(graph, SIGNIN_LOGS, cursors.query_start(SIGNIN_LOGS)):
        list(cursors.take(batch))
    assert cursors.query_start(SIGNIN_LOGS) == T0 - OVERLAP
    now[0] += 60
    normal = graph.add(T0 + 30, T0 + 40)
    taken = [item for batch in poll_batches(graph, SIGNIN_LOGS, cursors.query_start(SIGNIN_LOGS))
             for item in cursors.take(batch)]
    assert taken == [normal]


def test_remembered_ids_are_bounded_and_the_forgotten_counted(monkeypatch):
    monkeypatch.setattr(cursors_module, "MAX_REMEMBERED", 100)
    now = [T0 + 1000]
    cursors = SigninCursors([SIGNIN_LOGS], OVERLAP, 3600, clock=lambda: now[0])
    for number in range(250):
        assert cursors.admit(SIGNIN_LOGS, f"id-{number}", T0 + number)
    assert cursors.remembered() <= 100
    assert cursors.forgotten == 250 - cursors.remembered()
    assert not cursors.admit(SIGNIN_LOGS, "id-249", T0 + 249), "the newest are the ones kept"


def test_an_item_without_an_id_is_told_apart_by_its_content():
    first, second = {"createdDateTime": iso7(T0), "ipAddress": "203.0.113.5"}, {"createdDateTime": iso7(T0 + 1)}
    assert signin_key(first) == signin_key(dict(first)) != signin_key(second)
    assert signin_key({"id": "abc"}) == "abc"


# -- in the state snapshot ---------------------------------------------------------------------

def engine() -> Engine:
    return Engine(Settings(threshold=5, window=86400, suppress=3600, future_skew=600, max_signins=1000,
                           max_ips=1000), PROFILES["hardened"](), lambda record, when: None)


def test_the_place_survives_a_snapshot(tmp_path):
    now = [T0 + 100]
    cursors = SigninCursors([SIGNIN_LOGS], OVERLAP, 3600, clock=lambda: now[0])
    graph = ListedSignins(lambda: now[0], page_size=10)
    for offset in (10, 20):
        graph.add(T0 + offset, T0 + offset)
    for batch in poll_batches(graph, SIGNIN_LOGS, cursors.query_start(SIGNIN_LOGS)):
        list(cursors.take(batch))
    state = StateFile(str(tmp_path / "state"))
    state.save(engine(), cursors)
    assert state.failures == 0
    shutil.copy(tmp_path / "state", tmp_path / "state-copy")  # the first StateFile holds its lock
    again = SigninCursors([SIGNIN_LOGS], OVERLAP, 3600, clock=lambda: now[0])
    StateFile(str(tmp_path / "other")).load(engine(), again)  # no file: stays empty
    assert again.remembered() == 0
    StateFile(str(tmp_path / "state-copy")).load(engine(), again)
    assert again.query_start(SIGNIN_LOGS) == T0 + 20 - OVERLAP
    assert sorted(row[1] for row in again.id_rows()) == sorted(item["id"] for _, _, item in graph.arrivals)


def test_a_snapshot_of_the_version_before_the_poller_still_loads(tmp_path):
    """tests/snapshots/state-v1.msgpack was written by fail2entra before this version (from the
    Quickstart's auth.log and security.xml): its engine state comes back, and the next save
    writes the current version."""
    path = tmp_path / "state"
    shutil.copy(os.path.join(os.path.dirname(__file__), "snapshots", "state-v1.msgpack"), path)
    result = subprocess.run([COMMAND, "--state", str(path), "--stats"], input=b"", capture_output=True, timeout=60)
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr
    assert "UNUSABLE" not in stderr and "state restored" in stderr, stderr
    assert "tracked ips: SecurityEvent 2, WindowsEvent 0, Syslog 5" in stderr, stderr
    state = StateFile(str(tmp_path / "copy"))
    loaded = engine()
    shutil.copy(path, tmp_path / "copy")
    state.load(loaded)
    assert loaded.tracked_total() == 7
    header = next(iter(msgpack.Unpacker(open(path, "rb"), raw=False)))
    assert header["version"] == 1, "nothing changed, so nothing was written"
