"""The guarded HTTP sender on its own: HTTPS to a pinned address with the name's certificate, refusals."""
from __future__ import annotations

import datetime
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from devops.notifications.base import PermanentFailure, SendOptions
from devops.notifications.safehttp import post_json, resolve, url_problem


def self_signed(tmp_path, name: str):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def https_server(tmp_path):
    cert, key = self_signed(tmp_path, "localhost")
    got: list[tuple[str, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            got.append((self.headers["Host"], self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], cert, got
    server.shutdown()
    server.server_close()


OPEN = SendOptions(allow_private=True, timeout=10)


def test_https_checks_the_certificate_of_the_name(https_server, monkeypatch):
    port, cert, got = https_server
    with pytest.raises(PermanentFailure, match="TLS: CERTIFICATE_VERIFY_FAILED"):
        post_json(f"https://localhost:{port}/x", b"{}", {}, OPEN)
    assert got == []
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trust it: the same request now goes through
    assert post_json(f"https://localhost:{port}/x", b'{"a":1}', {}, OPEN) == "HTTP 204"
    assert got == [(f"localhost:{port}", b'{"a":1}')]


@pytest.mark.parametrize(("url", "problem"), [
    ("http://127.1/", "loopback"),
    ("http://0x7f.1/", "loopback"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://100.64.0.1/", "not public"),
    ("http://224.0.0.1/", "multicast"),
    ("http://192.168.1.1:8080/", "private"),
    ("http://[fe80::1]/", "link-local"),
    ("http://a.localhost/", "this machine"),
    ("http://example.com:0/", "port 0"),
    ("http:///nohost", "no host"),
])
def test_refused_addresses(url, problem):
    assert problem in (url_problem(url, allow_private=False) or "")


def test_public_names_and_addresses_may_be_saved():
    assert url_problem("https://hooks.slack.com/services/T/B/X", allow_private=False) is None
    assert url_problem("http://93.184.215.14/hook", allow_private=False) is None
    assert url_problem("http://10.1.2.3/", allow_private=True) is None


def test_every_resolved_address_is_checked_at_send_time():
    # Names are checked when sent, on what they resolve to (here without DNS: a numeric form).
    with pytest.raises(PermanentFailure, match=r"127\.0\.0\.1 is a loopback address"):
        resolve("2130706433", 80, allow_private=False, timeout=5)
    assert resolve("2130706433", 80, allow_private=True, timeout=5) == ("127.0.0.1", 80)
