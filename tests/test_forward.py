"""ForwardOutput against a real forward server on real sockets: delivery, acks, spool, restarts."""

import logging
import os
import random
import select
import socket
import subprocess
import sys
import time

import msgpack
import pytest

from plugin.files import FileInUseError
from plugin.forward import (
    COMPACTION_MIN_DEAD_BYTES, AlertSpool, ForwardAddress, ForwardOutput,
    parse_address,
)
from forward_server import ForwardServer, wait_until

TAG = "fail2entra.alert"
BASE_TIME = 1700000000.0
LOG = logging.getLogger("test.forward")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def alert(n: int, padding: str = "") -> dict:
    return {"AlertId": f"alert-{n}", "IpAddress": "203.0.113.7", "FailureCount": n, "Note": padding}


def alert_time(n: int) -> float:
    return BASE_TIME + n + 0.123456


def alert_ids(events: list) -> list:
    return [record["AlertId"] for _, _, record in events]


@pytest.fixture
def server():
    with ForwardServer() as running:
        yield running


@pytest.fixture
def down_server():
    """A server that was started once (so its port is known and free) and is now down."""
    stopped = ForwardServer().start()
    stopped.stop()
    yield stopped
    stopped.stop()


@pytest.fixture
def make_output():
    """ForwardOutput factory with short timeouts; closes leftovers at teardown."""
    created = []

    def make(address: str, spool_path, **options) -> ForwardOutput:
        options.setdefault("ack_timeout", 2.0)
        options.setdefault("connect_timeout", 0.5)
        output = ForwardOutput(address, TAG, spool_path and str(spool_path), log=LOG, **options)
        created.append(output)
        return output

    yield make
    for output in created:
        output.close(timeout=0)


def warnings_about(caplog, text: str, level: int = logging.WARNING) -> list:
    return [r for r in caplog.records if r.levelno == level and text in r.getMessage()]


def test_alerts_arrive_with_tag_subsecond_time_and_record(server, make_output, tmp_path, capfd):
    spool = tmp_path / "spool"
    output = make_output(server.address, spool)
    for n in range(5):
        output.emit(alert(n), alert_time(n))
    events = server.wait_for_events(5)
    wait_until(lambda: output.stats["acknowledged"] == 5, message="5 acks")
    output.close()

    assert [(tag, record) for tag, _, record in events] == [(TAG, alert(n)) for n in range(5)]
    for n, (_, event_time, _) in enumerate(events):
        assert event_time == pytest.approx(alert_time(n), abs=1e-6)
    assert all(set(option) == {"chunk", "size"} for option in server.options)
    assert sum(option["size"] for option in server.options) == 5
    assert output.stats == {"emitted": 5, "acknowledged": 5, "resent": 0, "reconnects": 0,
                            "spool_full_dropped": 0, "pending": 0}
    assert os.path.getsize(spool) == 0  # acknowledged alerts compacted away at close
    assert capfd.readouterr().out == ""  # stdout carries records only


def test_alerts_wait_for_a_server_that_is_down_at_start(down_server, make_output, tmp_path, caplog):
    output = make_output(down_server.address, tmp_path / "spool")
    for n in range(3):
        output.emit(alert(n), alert_time(n))
    wait_until(lambda: warnings_about(caplog, "Connection refused"), message="a refusal")
    assert output.stats["pending"] == 3

    down_server.start()
    assert alert_ids(down_server.wait_for_events(3)) == [f"alert-{n}" for n in range(3)]
    wait_until(lambda: output.stats["pending"] == 0, message="all acknowledged")
    assert output.stats["reconnects"] == 0  # the first connection is not a reconnect


def test_server_killed_mid_run_and_restarted_gets_every_alert(server, make_output, tmp_path):
    output = make_output(server.address, tmp_path / "spool")
    for n in range(5):
        output.emit(alert(n), alert_time(n))
    wait_until(lambda: output.stats["acknowledged"] == 5, message="first acks")

    server.send_acks = False  # the next alerts arrive but the server dies before acknowledging
    for n in range(5, 10):
        output.emit(alert(n), alert_time(n))
    server.wait_for_events(10)
    server.stop()
    for n in range(10, 15):
        output.emit(alert(n), alert_time(n))
    server.send_acks = True
    server.start()
    wait_until(lambda: output.stats["acknowledged"] == 15, message="all acknowledged")

    received = {}
    for _, event_time, record in server.events:
        received.setdefault(record["AlertId"], []).append((event_time, record))
    assert set(received) == {f"alert-{n}" for n in range(15)}
    for copies in received.values():  # a repeat is the same alert, recognisable by AlertId
        assert all(copy == copies[0] for copy in copies)
    # the unacknowledged ones came again (more than once if an ack timeout fell before the stop)
    assert all(len(received[f"alert-{n}"]) >= 2 for n in range(5, 10))
    assert all(len(received[f"alert-{n}"]) == 1 for n in range(5))
    assert output.stats["resent"] >= 5 and output.stats["reconnects"] >= 1


def test_chunk_without_its_own_ack_is_resent_after_ack_timeout(server, make_output):
    server.ack_reply = lambda chunk: {"ack": "another chunk"}  # a reply, but not this chunk's ack
    output = make_output(server.address, None, ack_timeout=0.1)
    output.emit(alert(0), alert_time(0))
    server.wait_for_events(2)  # the first send and the re-send on a new connection
    assert output.stats["acknowledged"] == 0
    server.ack_reply = lambda chunk: {"ack": chunk}
    wait_until(lambda: output.stats["acknowledged"] == 1, message="ack after re-send")
    assert set(alert_ids(server.events)) == {"alert-0"}
    assert server.connections_accepted >= 2
    assert output.stats["resent"] >= 1


def test_new_output_sends_what_a_closed_unacknowledged_one_left(server, make_output, tmp_path,
                                                                caplog):
    spool = tmp_path / "spool"
    server.send_acks = False
    first = make_output(server.address, spool, ack_timeout=5.0)
    for n in range(3):
        first.emit(alert(n), alert_time(n))
    server.wait_for_events(3)
    first.close(timeout=0.2)
    assert first.stats["pending"] == 3
    assert warnings_about(caplog, "stay in spool")

    server.send_acks = True
    second = make_output(server.address, spool)
    wait_until(lambda: second.stats["acknowledged"] == 3, message="restarted output delivers")
    assert alert_ids(server.events) == [f"alert-{n}" for n in range(3)] * 2
    assert second.stats["resent"] == 3  # left by an earlier process: possibly sent before
    second.close()
    assert os.path.getsize(spool) == 0


CHILD = """
import sys, time
sys.path.insert(0, sys.argv[3])
from plugin.forward import ForwardOutput
output = ForwardOutput(sys.argv[1], "fail2entra.alert", sys.argv[2])
for n in range(50):
    output.emit({"AlertId": f"alert-{n}"}, 1700000000.25 + n)
sys.stdout.write("emitted\\n")
sys.stdout.flush()
time.sleep(60)
"""


def test_kill_9_after_emit_returned_loses_no_alert(down_server, make_output, tmp_path):
    spool = tmp_path / "spool"
    child = subprocess.Popen([sys.executable, "-c", CHILD, down_server.address, str(spool), ROOT],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "emitted\n"
    finally:
        child.kill()  # SIGKILL: no finally, no atexit, no flush
        child.wait()
        child.stdout.close()

    down_server.start()
    output = make_output(down_server.address, spool)
    wait_until(lambda: output.stats["acknowledged"] == 50, message="the killed process's alerts")
    assert sorted(alert_ids(down_server.events)) == sorted(f"alert-{n}" for n in range(50))


def spooled_alerts(down_server, spool, count: int) -> bytes:
    """Leave ``count`` unacknowledged alerts in ``spool``; return the file's bytes."""
    output = ForwardOutput(down_server.address, TAG, str(spool), log=LOG)
    for n in range(count):
        output.emit(alert(n), alert_time(n))
    output.close(timeout=0)
    return spool.read_bytes()


def frame_ends(data: bytes) -> list:
    unpacker = msgpack.Unpacker()
    unpacker.feed(data)
    ends = []
    for _ in unpacker:
        ends.append(unpacker.tell())
    return ends


def test_torn_last_spool_entry_is_discarded_with_warning(down_server, make_output, tmp_path,
                                                         caplog):
    spool = tmp_path / "spool"
    data = spooled_alerts(down_server, spool, 3)
    spool.write_bytes(data + data[:frame_ends(data)[0] - 7])  # a write cut short by a crash

    output = make_output(down_server.address, spool)
    assert output.stats["pending"] == 3
    assert len(warnings_about(caplog, "unreadable bytes")) == 1
    output._spool._check()
    output.emit(alert(3), alert_time(3))  # appended after the repaired end, so it stays readable
    output.close(timeout=0)

    caplog.clear()
    down_server.start()
    reopened = make_output(down_server.address, spool)
    wait_until(lambda: reopened.stats["acknowledged"] == 4, message="4 alerts delivered")
    assert not warnings_about(caplog, "unreadable bytes")
    assert alert_ids(down_server.events) == [f"alert-{n}" for n in range(4)]


def test_damaged_spool_entries_are_skipped_and_the_rest_kept(down_server, make_output, tmp_path,
                                                             caplog):
    spool = tmp_path / "spool"
    data = spooled_alerts(down_server, spool, 4)
    first_end, second_end = frame_ends(data)[:2]
    damaged = bytearray(data)
    damaged[second_end - 8] ^= 0xFF  # inside the second alert: its crc no longer matches
    spool.write_bytes(bytes(damaged[:first_end]) + b"\xc1garbage\xdd\xff\xff\xff\xff"
                      + bytes(damaged[first_end:]))

    output = make_output(down_server.address, spool)
    assert output.stats["pending"] == 3  # read before the server is up: nothing sent yet
    assert warnings_about(caplog, "unreadable bytes")
    down_server.start()
    wait_until(lambda: output.stats["acknowledged"] == 3, message="the readable alerts delivered")
    assert alert_ids(down_server.events) == ["alert-0", "alert-2", "alert-3"]


def test_spool_of_pure_garbage_starts_empty_with_warning(server, make_output, tmp_path, caplog):
    spool = tmp_path / "spool"
    spool.write_bytes(bytes(range(256)) * 8)
    output = make_output(server.address, spool)
    assert output.stats["pending"] == 0
    assert warnings_about(caplog, "unreadable bytes")
    output.emit(alert(0), alert_time(0))
    assert alert_ids(server.wait_for_events(1)) == ["alert-0"]


def test_full_spool_drops_newest_counts_and_logs_once(down_server, make_output, tmp_path, caplog):
    spool = tmp_path / "spool"
    output = make_output(down_server.address, spool, spool_max_bytes=2000)
    for n in range(40):
        output.emit(alert(n), alert_time(n))
    stats = output.stats
    kept = stats["pending"]
    assert 0 < kept < 40 and stats["spool_full_dropped"] == 40 - kept and stats["emitted"] == 40
    assert os.path.getsize(spool) <= 2000
    full_errors = warnings_about(caplog, "spool full", logging.ERROR)
    assert len(full_errors) == 1  # rate-limited, not one line per dropped alert
    assert "alert-%d" % kept in full_errors[0].getMessage()  # the first refused alert is named

    down_server.start()
    wait_until(lambda: output.stats["acknowledged"] == kept, message="kept alerts delivered")
    assert alert_ids(down_server.events) == [f"alert-{n}" for n in range(kept)]  # oldest kept
    output.emit(alert(99), alert_time(99))  # room again once acknowledged
    wait_until(lambda: output.stats["acknowledged"] == kept + 1, message="room after delivery")
    output._spool._check()
    output.close()
    late_report = "more alert(s) dropped since the last report"
    assert len(warnings_about(caplog, late_report, logging.ERROR)) == 1


def test_memory_only_output_is_bounded_and_says_what_it_loses(down_server, make_output, caplog):
    output = make_output(down_server.address, None, spool_max_bytes=2000)
    for n in range(40):
        output.emit(alert(n), alert_time(n))
    assert 0 < output.stats["pending"] < 40
    assert output.stats["spool_full_dropped"] == 40 - output.stats["pending"]
    output._spool._check()
    output.close(timeout=0.1)
    assert warnings_about(caplog, "are lost (no spool_path)", logging.ERROR)


def test_unix_socket(make_output, tmp_path):
    with ForwardServer(unix_path=str(tmp_path / "forward.sock")) as server:
        output = make_output(server.address, tmp_path / "spool")
        output.emit(alert(0), alert_time(0))
        (tag, event_time, record), = server.wait_for_events(1)
        assert (tag, record) == (TAG, alert(0))
        assert event_time == pytest.approx(alert_time(0), abs=1e-6)
        wait_until(lambda: output.stats["acknowledged"] == 1, message="ack over unix socket")


def ipv6_loopback_works() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not ipv6_loopback_works(), reason="no IPv6 loopback")
def test_ipv6_address(make_output):
    with ForwardServer(host="::1") as server:
        assert server.address.startswith("[::1]:")
        output = make_output(server.address, None)
        output.emit(alert(0), alert_time(0))
        assert alert_ids(server.wait_for_events(1)) == ["alert-0"]


def test_emit_and_close_do_not_wait_for_a_silent_server(make_output, tmp_path):
    with socket.socket() as silent:  # accepts, then never reads nor answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        silent.settimeout(5)
        output = make_output("127.0.0.1:%d" % silent.getsockname()[1], tmp_path / "spool",
                             ack_timeout=30.0)
        output.emit(alert(0), alert_time(0))
        connection, _ = silent.accept()
        with connection:
            # readable: the chunk was sent and the output now waits for its ack
            assert select.select([connection], [], [], 5)[0]
            started = time.monotonic()
            for n in range(1, 200):
                output.emit(alert(n), alert_time(n))
            assert time.monotonic() - started < 0.5
            started = time.monotonic()
            output.close(timeout=0.3)
            assert time.monotonic() - started < 1.0
        assert output.stats["pending"] == 200


def test_acknowledged_alerts_are_compacted_while_running(server, make_output, tmp_path):
    spool = tmp_path / "spool"
    output = make_output(server.address, spool)
    for n in range(300):
        output.emit(alert(n, padding="x" * 1024), alert_time(n))
    wait_until(lambda: output.stats["acknowledged"] == 300, message="300 acks")
    output._spool._check()
    assert os.path.getsize(spool) < COMPACTION_MIN_DEAD_BYTES + 1024  # 300 KiB were written


def abandon(spool: AlertSpool) -> None:
    """Leave the spool as kill -9 would: the file as written, no compaction, lock released."""
    os.close(spool._fd)
    os.close(spool._lock_fd)


def test_spool_random_appends_acks_and_restarts_keep_invariants(tmp_path, caplog):
    """Seeded stress of the spool alone: bound, compaction, ack frames, clean and crashed
    restarts agree with a plain list of what should be pending."""
    rng = random.Random(20240601)
    path = str(tmp_path / "spool")
    spool = AlertSpool(path, 8000, LOG)
    pending = []
    unrecorded_acks = []  # acknowledged, but neither an ack frame nor a compaction says so yet
    refused = crashes_with_repeats = ack_frames = 0
    for _ in range(1200):
        choice = rng.random()
        size_before = os.path.getsize(path)
        if choice < 0.8:  # appends outpace acks, so the bound is reached often
            payload = rng.randbytes(rng.randint(1, 400))
            if spool.append(payload):
                pending.append(payload)
                if os.path.getsize(path) <= size_before:  # compacted to make room
                    unrecorded_acks = []
            else:
                refused += 1
        elif choice < 0.96:
            batch = spool.oldest(rng.randint(1, 12), 10**6)
            if batch:
                count = rng.randint(1, len(batch))
                assert spool.acknowledge(batch[count - 1].seq) == count
                size_after = os.path.getsize(path)
                if size_after == size_before:  # no room left for the ack frame
                    unrecorded_acks += pending[:count]
                else:  # an ack frame or a compaction records every acknowledgement so far
                    unrecorded_acks = []
                    ack_frames += size_after > size_before
                del pending[:count]
        elif choice < 0.98:
            spool.close()
            spool = AlertSpool(path, 8000, LOG)
            unrecorded_acks = []
        else:
            abandon(spool)
            spool = AlertSpool(path, 8000, LOG)
            pending = unrecorded_acks + pending  # they come back: sent again after the crash
            crashes_with_repeats += bool(unrecorded_acks)
            unrecorded_acks = []
        spool._check()
        assert [alert.payload for alert in spool.oldest(10**6, 10**9)] == pending
    spool.close()
    assert refused > 100 and crashes_with_repeats > 0 and ack_frames > 100
    assert not warnings_about(caplog, "unreadable bytes")


def test_second_output_on_the_same_spool_is_refused(down_server, make_output, tmp_path):
    spool = tmp_path / "spool"
    first = make_output(down_server.address, spool)
    with pytest.raises(FileInUseError):
        make_output(down_server.address, spool)
    first.close(timeout=0)
    make_output(down_server.address, spool)  # free again once closed


@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1:24224", ForwardAddress(host="127.0.0.1", port=24224)),
    ("fluentd.example:24224", ForwardAddress(host="fluentd.example", port=24224)),
    ("[2001:db8::1]:24224", ForwardAddress(host="2001:db8::1", port=24224)),
    ("unix:///run/fluent-bit.sock", ForwardAddress(unix_path="/run/fluent-bit.sock")),
])
def test_address_forms(text, expected):
    assert parse_address(text) == expected
    assert str(expected) == text


@pytest.mark.parametrize("text", [
    "", "localhost", "localhost:", ":24224", "host:0", "host:65536", "host:port",
    "2001:db8::1:24224", "[::1]24224", "[::1", "unix://",
])
def test_bad_addresses_are_refused(text):
    with pytest.raises(ValueError):
        parse_address(text)
