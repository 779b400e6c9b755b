"""--forward over TLS with the shared-key handshake, against a real loopback server that speaks
the server side (tests/forward_server.py) over a real socket: records arrive only when the
certificate, the key (and the user's password, when asked) are right; a wrong key is refused
and nothing crosses; a server that does not hold the key cannot take them either."""

import logging
import shutil
import ssl

import pytest

from certificates import make_certificates
from cli import run_cli
from forward_server import ForwardServer, wait_until
from plugin.forward import ForwardOutput
from plugin.forward_security import ForwardSecurity, read_secret

LOG = logging.getLogger("test.forward_security")
KEY = "s3cret shared key"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command makes the test certificates")
    return make_certificates(str(tmp_path_factory.mktemp("certificates")))


def server_tls(certificates, client_certificates: bool = False) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates.server_cert, certificates.server_key)
    if client_certificates:
        context.load_verify_locations(certificates.ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


@pytest.fixture
def make_output():
    created = []

    def make(server: ForwardServer, security: ForwardSecurity, **options) -> ForwardOutput:
        output = ForwardOutput(server.address, "security.summary.fail2entra", None, log=LOG, security=security,
                               connect_timeout=1.0, ack_timeout=2.0, **options)
        created.append(output)
        return output

    yield make
    for output in created:
        output.close(0.0)


def test_tls_and_the_shared_key_carry_records(certificates, make_output):
    with ForwardServer(tls=server_tls(certificates), shared_key=KEY) as server:
        output = make_output(server, ForwardSecurity(tls=True, ca_file=certificates.ca, shared_key=KEY))
        output.emit({"n": 1}, 1795788000.5)
        output.emit({"n": 2}, 1795788001.0)
        events = server.wait_for_events(2)
        wait_until(lambda: output.stats["acknowledged"] == 2)
    assert [record for _, _, record in events] == [{"n": 1}, {"n": 2}]
    assert server.handshakes == ["ok"]


def test_a_wrong_shared_key_is_refused_and_nothing_crosses(certificates, make_output, caplog):
    with ForwardServer(tls=server_tls(certificates), shared_key=KEY) as server:
        output = make_output(server, ForwardSecurity(tls=True, ca_file=certificates.ca, shared_key="guessed"))
        with caplog.at_level(logging.WARNING, logger=LOG.name):
            output.emit({"n": 1}, 1795788000.5)
            wait_until(lambda: server.handshakes, message="a handshake")
            wait_until(lambda: "refused the handshake: shared_key mismatch" in caplog.text, message="the refusal logged")
        assert server.events == [] and output.stats["acknowledged"] == 0 and output.stats["pending"] == 1
    assert server.handshakes[0] == "shared_key mismatch"


def test_a_server_without_the_key_cannot_take_the_records(certificates, make_output, caplog):
    """It accepts any PING, but its PONG cannot prove it holds the key: the client sends nothing."""
    with ForwardServer(tls=server_tls(certificates), shared_key=KEY) as server:
        server.pong_key = "not the key"
        output = make_output(server, ForwardSecurity(tls=True, ca_file=certificates.ca, shared_key=KEY))
        with caplog.at_level(logging.WARNING, logger=LOG.name):
            output.emit({"n": 1}, 1795788000.5)
            wait_until(lambda: "does not prove it holds the shared key" in caplog.text, message="the refusal logged")
        assert server.events == [] and output.stats["acknowledged"] == 0


def test_a_certificate_from_another_ca_is_refused(certificates, make_output, caplog):
    with ForwardServer(tls=server_tls(certificates), shared_key=KEY) as server:
        output = make_output(server, ForwardSecurity(tls=True, ca_file=certificates.other_ca, shared_key=KEY))
        with caplog.at_level(logging.WARNING, logger=LOG.name):
            output.emit({"n": 1}, 1795788000.5)
            wait_until(lambda: "CERTIFICATE_VERIFY_FAILED" in caplog.text, message="the refusal logged")
        assert server.events == [] and "ok" not in server.handshakes


def test_a_client_certificate_when_the_server_asks_for_one(certificates, make_output):
    with ForwardServer(tls=server_tls(certificates, client_certificates=True), shared_key=KEY) as server:
        without = make_output(server, ForwardSecurity(tls=True, ca_file=certificates.ca, shared_key=KEY))
        without.emit({"n": 1}, 1795788000.5)
        wait_until(lambda: server.handshakes, message="a TLS refusal")
        assert server.events == [] and server.handshakes[0].startswith("failed")
        without.close(0.0)
        output = make_output(server, ForwardSecurity(tls=True, ca_file=certificates.ca, cert_file=certificates.client_cert,
                                                     key_file=certificates.client_key, shared_key=KEY))
        output.emit({"n": 2}, 1795788000.5)
        assert [record for _, _, record in server.wait_for_events(1)] == [{"n": 2}]


def test_a_user_and_password_when_the_server_asks_for_them(make_output):
    with ForwardServer(shared_key=KEY, users={"edge": "pa55"}) as server:
        wrong = make_output(server, ForwardSecurity(shared_key=KEY, username="edge", password="guess"))
        wrong.emit({"n": 1}, 1795788000.5)
        wait_until(lambda: server.handshakes, message="a handshake")
        assert server.handshakes[0] == "username/password mismatch" and server.events == []
        wrong.close(0.0)
        right = make_output(server, ForwardSecurity(shared_key=KEY, username="edge", password="pa55"))
        right.emit({"n": 2}, 1795788000.5)
        assert [record for _, _, record in server.wait_for_events(1)] == [{"n": 2}]


def test_gzip_chunks_and_a_server_that_closes_after_each_answer(make_output):
    with ForwardServer(shared_key=KEY, keepalive=False) as server:
        output = make_output(server, ForwardSecurity(shared_key=KEY), compress=True)
        for number in range(3):
            output.emit({"n": number}, 1795788000.5)
            wait_until(lambda: output.stats["acknowledged"] == number + 1, message=f"ack {number}")
        assert [record for _, _, record in server.events] == [{"n": 0}, {"n": 1}, {"n": 2}]
        assert all(option.get("compressed") == "gzip" for option in server.options)
        assert output.stats["reconnects"] == 2 and server.handshakes == ["ok"] * 3


def test_secrets_come_from_files(tmp_path):
    (tmp_path / "key").write_text("k3y\n")
    (tmp_path / "empty").write_text("\n")
    assert read_secret(str(tmp_path / "key"), "shared key") == "k3y"
    for name, message in (("empty", "is empty"), ("missing", "cannot read")):
        with pytest.raises(ValueError, match=message):
            read_secret(str(tmp_path / name), "shared key")
    with pytest.raises(ValueError, match="need --forward-tls"):
        ForwardSecurity.from_options(False, "ca.crt", "", "", "", "", "")
    with pytest.raises(ValueError, match="TLS"):
        ForwardSecurity.from_options(True, str(tmp_path / "no-such-ca"), "", "", "", "", "")


def test_the_command_forwards_an_edges_summaries_over_tls_with_the_key(certificates, tmp_path):
    (tmp_path / "key").write_text(KEY + "\n")
    lines = "".join(f"Nov 27 10:00:0{second} web1 sshd[7]: Failed password for root from 203.0.113.9 port 22 ssh2\n"
                    for second in range(6))
    with ForwardServer(tls=server_tls(certificates), shared_key=KEY) as server:
        result = run_cli(["--edge", "--edge-name", "web1", "--timezone", "UTC", "--forward", server.address,
                          "--forward-tls", "--forward-ca-file", certificates.ca,
                          "--forward-shared-key-file", str(tmp_path / "key"), "--forward-compress", "gzip"],
                         stdin=lines.encode())
        assert result.returncode == 0, result.stderr
        [(tag, _, record)] = server.wait_for_events(1)
    assert tag == "security.summary.fail2entra"
    [summary] = record["fail2entra_summaries"]["summaries"]
    assert summary[:3] == ["Syslog", "203.0.113.9", 6] and record["fail2entra_summaries"]["edge"] == "web1"
