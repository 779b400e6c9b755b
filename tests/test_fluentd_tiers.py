"""The two tiers through a real Fluentd (set FLUENTD to a Fluentd 1.16 binary; skipped otherwise):
the shipped conf/fluentd-aggregator.conf and conf/fluentd-shard.conf run as three Fluentd
processes (an aggregator and two shards, each a fail2entra --accept-summaries --shard K/2 child
of exec_filter), with TLS and the shared key on every in_forward (certificates made at test
time). An edge (fail2entra --edge --shards 2 --forward, TLS + key) sends its summaries, a
forward client the sign-ins: the shards' alerts are those of one process reading everything.
A wrong shared key is refused by the real in_forward."""

import glob
import json
import logging
import os
import random
import re
import signal
import socket
import subprocess
import time

import pytest

from certificates import make_certificates
from cli import COMMAND, alerts_of, per_kind, run_cli, stats_summary
from forward_server import wait_until
from plugin.forward import ForwardOutput
from plugin.forward_security import ForwardSecurity
from scenario import random_rows
from test_parity import keys, write_by_source

FLUENTD = os.environ.get("FLUENTD")
pytestmark = pytest.mark.skipif(not FLUENTD, reason="set FLUENTD to a Fluentd 1.16 binary to run these")
CONF = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "conf")
KEY = "aggregator-and-shards-share-this"
LOG = logging.getLogger("test.fluentd_tiers")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def substituted(name: str, replacements) -> str:
    """A shipped config with test paths and ports; every pattern must be found (the configs and
    this test cannot drift apart silently)."""
    with open(os.path.join(CONF, name), encoding="utf-8") as handle:
        text = handle.read()
    for pattern, replacement in replacements:
        text, found = re.subn(pattern, replacement, text)
        assert found, f"{name}: {pattern!r} not found"
    return text


class Fluentd:
    """A Fluentd process on a config, its output in a log file."""

    def __init__(self, directory: str, name: str, config: str) -> None:
        self.log_path = os.path.join(directory, f"{name}.log")
        config_path = os.path.join(directory, f"{name}.conf")
        with open(config_path, "w", encoding="utf-8") as handle:
            handle.write(config)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen([FLUENTD, "-c", config_path], stdout=log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def wait_running(self, timeout: float = 60.0) -> None:
        wait_until(lambda: "fluentd worker is now running" in self.log() or self.process.poll() is not None,
                   timeout, "Fluentd to start")
        assert self.process.poll() is None, self.log()[-3000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("tiers"))
    certificates = make_certificates(directory)
    key_path = os.path.join(directory, "forward.key")
    with open(key_path, "w") as handle:
        handle.write(KEY + "\n")
    ports = {name: free_port() for name in ("aggregator", "shard0", "shard1")}
    common = [(r"/etc/fluent/forward\.key", key_path)]
    processes = []
    for shard in (0, 1):
        work = os.path.join(directory, f"shard{shard}")
        os.makedirs(os.path.join(work, "log", "fail2entra"))
        processes.append(Fluentd(directory, f"shard{shard}", substituted("fluentd-shard.conf", common + [
            (r"bind 0\.0\.0\.0\n(\s*)port 24224", rf"bind 127.0.0.1\n\g<1>port {ports[f'shard{shard}']}"),
            (r"/etc/fluent/tls/shard\.crt", certificates.server_cert),
            (r"/etc/fluent/tls/shard\.key", certificates.server_key),
            (r"self_hostname shard0\.example\.net", f"self_hostname shard{shard}.example.net"),
            (r"/usr/local/bin/fail2entra --accept-summaries --shard 0/2", f"{COMMAND} --accept-summaries --shard {shard}/2"),
            (r"--profile hardened", "--profile hardened --suppress 0"),
            (r"/var/lib/fail2entra", work),
            (r"/var/log/fluent", os.path.join(work, "log")),
        ])))
    processes.append(Fluentd(directory, "aggregator", substituted("fluentd-aggregator.conf", common + [
        (r"bind 0\.0\.0\.0\n(\s*)port 24224", rf"bind 127.0.0.1\n\g<1>port {ports['aggregator']}"),
        (r"/etc/fluent/tls/ca\.crt", certificates.ca),
        (r"/etc/fluent/tls/aggregator\.crt", certificates.server_cert),
        (r"/etc/fluent/tls/aggregator\.key", certificates.server_key),
        (r"name shard(\d)\n(\s*)host shard\d\.example\.net\n(\s*)port 24224",
         lambda found: f"name localhost\n{found.group(2)}host 127.0.0.1\n{found.group(3)}port {ports['shard' + found.group(1)]}"),
        (r"/var/lib/fluent/buffer", os.path.join(directory, "buffer")),
    ])))
    try:
        for process in processes:
            process.wait_running()
        yield {"directory": directory, "certificates": certificates, "key_path": key_path,
               "aggregator": f"127.0.0.1:{ports['aggregator']}", "processes": processes}
    finally:
        for process in processes:
            process.stop()


def test_a_wrong_shared_key_is_refused_by_fluentd(deployment, caplog):
    aggregator = deployment["processes"][-1]
    output = ForwardOutput(deployment["aggregator"], "entra.signin", None, log=LOG, connect_timeout=5.0,
                           security=ForwardSecurity(tls=True, ca_file=deployment["certificates"].ca, shared_key="guess"))
    try:
        with caplog.at_level(logging.WARNING, logger=LOG.name):
            output.emit({"message": "{}"}, time.time())
            wait_until(lambda: "refused the handshake: shared_key mismatch" in caplog.text, 20.0, "the refusal")
        assert output.stats["acknowledged"] == 0
        assert "Shared key mismatch" in aggregator.log()
    finally:
        output.close(0.0)


def test_edge_summaries_through_an_aggregator_and_two_shards_give_the_alerts_of_one_process(deployment, tmp_path):
    rows = random_rows(random.Random(31))
    auth_log, security_xml, signins = write_by_source(rows, tmp_path)
    whole = run_cli(["--suppress", "0", auth_log, security_xml, signins])
    expected = keys(alerts_of(whole.stdout))
    assert expected

    certificates = deployment["certificates"]
    sender = ForwardOutput(deployment["aggregator"], "entra.signin", None, log=LOG, connect_timeout=5.0,
                           security=ForwardSecurity(tls=True, ca_file=certificates.ca, shared_key=KEY))
    try:
        for line in open(signins, encoding="utf-8"):  # as the shipped in_tail (@type none) would
            sender.emit({"message": line.rstrip("\n")}, time.time())
        edge = run_cli(["--edge", "--shards", "2", "--edge-name", "edge1", "--stats", "--forward", deployment["aggregator"],
                        "--forward-tls", "--forward-ca-file", certificates.ca,
                        "--forward-shared-key-file", deployment["key_path"], "--forward-compress", "gzip",
                        auth_log, security_xml])
        assert edge.returncode == 0, edge.stderr
        delivered = per_kind(stats_summary(edge.stderr.decode())["forward"])
        assert delivered["emitted"] >= 2 and delivered["acknowledged"] == delivered["emitted"], delivered
        wait_until(lambda: sender.stats["acknowledged"] == sender.stats["emitted"], 30.0, "the sign-ins acknowledged")
    finally:
        sender.close(5.0)

    wait_until(lambda: len(shard_alerts(deployment["directory"])) >= len(expected), 60.0, "the shards' alerts")
    time.sleep(1.0)  # nothing more should come
    found = shard_alerts(deployment["directory"])
    assert keys([alert for _, alert in found]) == expected
    assert {shard for shard, _ in found} == {0, 1}, "both shards alert (the data has several attackers)"


def shard_alerts(directory: str):
    """(shard, alert) of every alert the shards wrote so far."""
    found = []
    for shard in (0, 1):
        for path in glob.glob(os.path.join(directory, f"shard{shard}", "log", "fail2entra", "alerts*")):
            with open(path, encoding="utf-8") as handle:
                found += [(shard, json.loads(line)) for line in handle if line.strip()]
    return found


def test_the_shipped_fluentd_edge_config_passes_a_dry_run(deployment):
    config = substituted("fluentd-edge.conf", [
        (r"/etc/fluent/forward\.key", deployment["key_path"]),
        (r"/etc/fluent/tls/ca\.crt", deployment["certificates"].ca),
        (r"/usr/local/bin/fail2entra", COMMAND),
        (r"host aggregator\.example\.net", "host 127.0.0.1"),  # a dry run resolves it
    ])
    path = os.path.join(deployment["directory"], "edge-dry-run.conf")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(config)
    result = subprocess.run([FLUENTD, "--dry-run", "-c", path], capture_output=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]


FLUENT_BIT = os.environ.get("FLUENT_BIT")


@pytest.mark.skipif(not FLUENT_BIT, reason="set FLUENT_BIT to a Fluent Bit binary to run this")
def test_an_edge_through_its_own_fluent_bit_and_the_aggregator(deployment, tmp_path):
    """conf/fluent-bit-edge.conf: the edge sends over loopback to Fluent Bit, which forwards to
    the aggregator over TLS with the shared key, gzip-compressed."""
    # addresses and sign-in ids of their own: the shards already hold another test's failures and alerts
    rows = [json.loads(json.dumps(row).replace("203.0.113.", "198.18.7.").replace("2001:db8::", "2001:db8:7::")
                       .replace("127.0.0.1", "127.0.7.1")
                       .replace('"signin-', '"fluent-bit-signin-')) for row in random_rows(random.Random(32))]
    auth_log, security_xml, signins = write_by_source(rows, tmp_path)
    expected = keys(alerts_of(run_cli(["--suppress", "0", auth_log, security_xml, signins]).stdout))
    assert expected
    port = free_port()
    aggregator_port = deployment["aggregator"].rsplit(":", 1)[1]
    config = substituted("fluent-bit-edge.conf", [
        (r"Port               24224", f"Port               {port}"),
        (r"Host                  aggregator\.example\.net\n(\s*)Port                  24224",
         rf"Host                  127.0.0.1\n\g<1>Port                  {aggregator_port}"),
        (r"/etc/fluent-bit/tls/ca\.crt", deployment["certificates"].ca),
        (r"/var/lib/fluent-bit/storage", str(tmp_path / "storage")),
    ])
    (tmp_path / "fluent-bit.conf").write_text(config)
    with open(tmp_path / "fluent-bit.log", "wb") as log:
        fluent_bit = subprocess.Popen([FLUENT_BIT, "-c", str(tmp_path / "fluent-bit.conf")], stdout=log,
                                      stderr=subprocess.STDOUT, env={**os.environ, "FAIL2ENTRA_FORWARD_KEY": KEY})
    sender = ForwardOutput(deployment["aggregator"], "entra.signin", None, log=LOG, connect_timeout=5.0,
                           security=ForwardSecurity(tls=True, ca_file=deployment["certificates"].ca, shared_key=KEY))
    try:
        for line in open(signins, encoding="utf-8"):
            sender.emit({"message": line.rstrip("\n")}, time.time())
        edge = run_cli(["--edge", "--shards", "2", "--stats", "--forward", f"127.0.0.1:{port}", auth_log, security_xml],
                       timeout=60)
        assert edge.returncode == 0, edge.stderr
        ours = lambda: [alert for _, alert in shard_alerts(deployment["directory"])  # noqa: E731
                        if alert["Id"].startswith("fluent-bit-")]
        wait_until(lambda: len(ours()) >= len(expected), 60.0, "the shards' alerts")
        time.sleep(1.0)
        assert keys(ours()) == expected
    finally:
        sender.close(5.0)
        fluent_bit.send_signal(signal.SIGTERM)
        fluent_bit.wait(30)
