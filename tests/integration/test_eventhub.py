"""The Event Hub readers: conf/fluent-bit-eventhub.conf (Fluent Bit kafka input) and
conf/fluentd-eventhub.conf (Fluentd kafka_group, from fluent-plugin-kafka). No Kafka broker can
run here, so what can be checked is: every option is one the plugin has; a real start accepts
all of them (Fluent Bit's --dry-run checks plugin names only) and keeps running while the
brokers cannot be reached; what the reader hands on reaches fail2entra as sign-ins.

Changes besides paths: the brokers become a closed loopback port; in one test the kafka input
is replaced by a dummy input that emits what the kafka input would emit for one message; for
Fluentd, the include and `workers 2` that fluentd.conf says to set."""

import json
import os
import re
import shutil
import socket
import subprocess
import uuid
from typing import Dict, List

import msgpack
import pytest

from collectors import (CONF_DIR, FLUENT_BIT, FLUENTD, LINUX_ALERTS, COLLECTOR_ENV, Collector, FluentdSetup,
                        SampleDay, adapted, by_alert_id, ips_and_upns, json_lines, needs_fluent_bit,
                        needs_fluentd, reference_alerts, wait_until)

CONNECTION_STRING = "Endpoint=sb://example.servicebus.windows.net/;SharedAccessKeyName=fail2entra;SharedAccessKey=secret"
WITH_SECRET = dict(COLLECTOR_ENV, FAIL2ENTRA_EVENTHUB_CONNECTION_STRING=CONNECTION_STRING)
WITHOUT_SECRET = {name: value for name, value in COLLECTOR_ENV.items() if name != "FAIL2ENTRA_EVENTHUB_CONNECTION_STRING"}
BROKERS = "NAMESPACE.servicebus.windows.net:9093"


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def event_hub_body(day: SampleDay) -> dict:
    """One Event Hub message of the diagnostic setting: the day's sign-ins in "records", one
    display name with non-ASCII letters."""
    records = [json.loads(line) for line in day.signin_lines]
    records[0]["properties"]["userDisplayName"] = "Bob Müller-Čapek"
    return {"records": records}


# -- Fluent Bit -------------------------------------------------------------------------------------

def kafka_section(text: str) -> str:
    return re.search(r"^\[INPUT\]\n(.*?)(?=^\[)", text, re.S | re.M).group(1)


def section_keys(section: str) -> List[str]:
    return [line.split()[0].lower() for line in section.splitlines() if line.strip() and not line.strip().startswith("#")]


class FluentBitEventHub:
    """conf/fluent-bit-eventhub.conf and conf/parsers.conf side by side in the test's directory."""

    def __init__(self, directory, replacements: Dict[str, str] = None) -> None:
        self.directory = str(directory)
        self.lib = os.path.join(self.directory, "lib")
        os.makedirs(self.lib)
        shutil.copy(os.path.join(CONF_DIR, "parsers.conf"), self.directory)
        self.config = os.path.join(self.directory, "fluent-bit-eventhub.conf")
        with open(self.config, "w", encoding="utf-8") as handle:
            handle.write(adapted("fluent-bit-eventhub.conf", {
                "/var/lib/fluent-bit/eventhub-storage": os.path.join(self.directory, "storage"),
                "/var/lib/fail2entra": self.lib, **(replacements or {})}))

    def start(self, env: dict) -> Collector:
        return Collector([FLUENT_BIT, "-c", self.config], self.directory, "fluent-bit", env)


@needs_fluent_bit
def test_fluent_bit_lists_every_option_the_kafka_input_is_given():
    described = json.loads(subprocess.run([FLUENT_BIT, "-i", "kafka", "-J"], capture_output=True, text=True,
                                          check=True).stdout)["properties"]
    known = {option["name"].lower() for group in ("global_options", "options") for option in described[group]}
    with open(os.path.join(CONF_DIR, "fluent-bit-eventhub.conf"), encoding="utf-8") as handle:
        keys = section_keys(kafka_section(handle.read()))
    assert "rdkafka." in known and {"brokers", "topics", "group_id", "format"} <= set(keys)
    unknown = [key for key in keys if key != "name" and key not in known and not key.startswith("rdkafka.")]
    assert unknown == []


@needs_fluent_bit
def test_fluent_bit_starts_with_every_option_accepted_and_keeps_running_without_a_broker(tmp_path):
    port = closed_port()
    setup = FluentBitEventHub(tmp_path, {BROKERS: f"127.0.0.1:{port}"})
    with setup.start(WITH_SECRET) as fluent_bit:
        # librdkafka tries the broker with TLS and SASL PLAIN: the consumer exists, configured.
        fluent_bit.wait_for_log(rf"sasl_ssl://127\.0\.0\.1:{port}/bootstrap: Connect to ipv4#127\.0\.0\.1:{port} failed")
        fluent_bit.wait_for_log(r"SASL mechanism configured: PLAIN")
        assert fluent_bit.process.poll() is None
        assert fluent_bit.stop() == 0
        log = fluent_bit.log()
    refused = [line for line in log.splitlines()
               if "unknown configuration property" in line or "cannot configure" in line or "[error]" in line]
    assert refused == []


@needs_fluent_bit
def test_fluent_bit_refuses_to_start_without_the_connection_string(tmp_path):
    setup = FluentBitEventHub(tmp_path, {BROKERS: f"127.0.0.1:{closed_port()}"})
    with setup.start(WITHOUT_SECRET) as fluent_bit:
        assert fluent_bit.wait() != 0
        log = fluent_bit.log()
    assert "variable ${FAIL2ENTRA_EVENTHUB_CONNECTION_STRING} is used but not set" in log
    assert "sasl.username and sasl.password must be set" in log


@needs_fluent_bit
def test_fluent_bit_writes_each_event_hub_message_as_one_sign_in_line_that_fail2entra_reads(tmp_path):
    """The kafka input replaced by a dummy input emitting the record the kafka input makes of
    one message ({"topic", "partition", "offset", "error", "key", "payload": <body>}); the
    parser filter and the file output are the shipped ones."""
    day = SampleDay("rfc3339")
    body = event_hub_body(day)
    kafka_record = {"topic": "insights-logs-signinlogs", "partition": 0, "offset": 42, "error": None, "key": None,
                    "payload": json.dumps(body, ensure_ascii=False)}
    with open(os.path.join(CONF_DIR, "fluent-bit-eventhub.conf"), encoding="utf-8") as handle:
        kafka = kafka_section(handle.read())
    dummy = f"    Name     dummy\n    Tag      entra.signin\n    Samples  1\n    Dummy    {json.dumps(kafka_record)}\n\n"
    setup = FluentBitEventHub(tmp_path, {kafka: dummy})
    signins = os.path.join(setup.lib, "signins.jsonl")
    with setup.start(WITH_SECRET) as fluent_bit:
        wait_until(lambda: json_lines(signins), 15, f"a line in {signins}")
        assert fluent_bit.stop() == 0
    assert json_lines(signins) == [body]
    expected = reference_alerts(day.auth, day.signins)
    with open(signins, "rb") as handle:
        assert by_alert_id(reference_alerts(day.auth, handle.read())) == by_alert_id(expected)
    assert ips_and_upns(expected) == LINUX_ALERTS


# -- Fluentd ----------------------------------------------------------------------------------------

def send_forward(port: int, tag: str, records: List[dict]) -> None:
    """One Forward-mode message, as worker 1's out_forward sends it; returns once acknowledged."""
    chunk = uuid.uuid4().hex
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(msgpack.packb([tag, [[0, record] for record in records], {"chunk": chunk}]))
        unpacker = msgpack.Unpacker(raw=False)
        while True:
            data = connection.recv(4096)
            assert data, "the connection closed before the ack"
            unpacker.feed(data)
            for answer in unpacker:
                assert answer == {"ack": chunk}, answer
                return


def kafka_group_loads(directory: str) -> bool:
    config = os.path.join(directory, "kafka-group-probe.conf")
    with open(config, "w") as handle:
        handle.write("<source>\n  @type kafka_group\n  consumer_group probe\n  topics probe\n</source>\n")
    result = subprocess.run([FLUENTD, "--dry-run", "-c", config], capture_output=True, text=True, timeout=120)
    return "Unknown input plugin 'kafka_group'" not in result.stdout + result.stderr


@needs_fluentd
def test_fluentd_accepts_every_parameter_and_a_broker_down_never_stops_the_detector(tmp_path):
    """fluentd.conf with fluentd-eventhub.conf included as its comments say. kafka_group cannot
    reach its brokers, so worker 1 exits and is restarted, again and again; worker 0 keeps its
    fail2entra child, and sign-ins handed over on the forward port, as worker 1 would, alert."""
    if not kafka_group_loads(str(tmp_path)):
        pytest.skip("fluent-plugin-kafka is not installed for this Fluentd (fluent-package ships it; for a "
                    "Fluentd from source, put fluent-plugin-kafka, ruby-kafka and digest-crc on RUBYLIB)")
    forward_port = closed_port()
    with open(os.path.join(tmp_path, "fluentd-eventhub.conf"), "w", encoding="utf-8") as handle:
        handle.write(adapted("fluentd-eventhub.conf", {
            BROKERS: f"127.0.0.1:{closed_port()}", "/var/log/fluent/": os.path.join(tmp_path, "log") + "/",
            "24231": str(forward_port)}))
    setup = FluentdSetup(tmp_path, replacements={"\n  workers 1\n": "\n  workers 2\n",
                                                 "# @include fluentd-eventhub.conf": "@include fluentd-eventhub.conf"})
    day = SampleDay("rfc3339")
    body = event_hub_body(day)
    expected = reference_alerts(day.auth, json.dumps(body).encode() + b"\n")
    with setup.start(WITH_SECRET) as fluentd:
        fluentd.wait_for_log(r"Worker 1 exited unexpectedly")
        child = setup.child()
        setup.feed_failures(day)
        send_forward(forward_port, "entra.insights-logs-signinlogs", [body])
        alerts = setup.wait_for_alerts(len(expected))
        fluentd.wait_for_log(r"(?s)Worker 1 exited unexpectedly.*Worker 1 exited unexpectedly")  # restarted, failed again
        assert setup.child() == child  # worker 0 and its child never restarted
        assert fluentd.stop(whole_group=False) == 0
        log = fluentd.log()
    assert by_alert_id(alerts) == by_alert_id(expected)
    assert ips_and_upns(expected) == LINUX_ALERTS
    assert "Could not connect to any of the seed brokers" in log
    assert not re.search(r"parameter '[^']+' in <|config error|Unknown", log), log
