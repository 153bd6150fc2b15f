"""The read path's connections: TLS as requests would verify it, client certificates, token refresh, pools closed.

The media reads bypass requests (``pipeline.adapters.media_http``), so what requests would
have decided (CA bundle, ``verify=False``, client certificate, the session's token request)
is redone by ``pipeline.adapters.gcs``; these tests check each against real servers. TLS
needs a server that speaks it, which the emulator does not: a loopback HTTPS server serves
one object's bytes with a throwaway CA made here. Token refresh reads through the fault
proxy in front of the real emulator.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import hashlib
import http.server
import ipaddress
import shutil
import ssl
import subprocess
import threading
import warnings

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from google.auth.transport.requests import AuthorizedSession, Request
from google.oauth2.credentials import Credentials

from pipeline.adapters import gcs
from pipeline.core.blobs import ListedObject, ReadFailure
from pipeline.core.shards import KeyRange
from tests.support.http_server import BODY, RecordingHandler, send_json
from tests.support.proxy import FaultyProxy

PREFIX = "containers/images/"
SHA = hashlib.sha256(BODY).hexdigest()
OBJECT = ListedObject("artifacts.p.appspot.com", PREFIX + "sha256:" + SHA, 7, len(BODY))


# --- a throwaway PKI ------------------------------------------------------------------------


def _certificate(subject: str, key, issuer: str, issuer_key, *, ca: bool):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write_key(path, key) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA (as a bundle file, and as a hashed folder as ``c_rehash`` makes), the server's
    certificate for 127.0.0.1, and a client certificate (as a pair, and as one combined file)."""
    work = tmp_path_factory.mktemp("pki")
    ca_key, server_key, client_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = _certificate("registry-scrub test CA", ca_key, "registry-scrub test CA", ca_key, ca=True)
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    (work / "ca.pem").write_bytes(ca_pem)
    folder = work / "ca-folder"
    folder.mkdir()
    shutil.copy(work / "ca.pem", folder / "ca.pem")
    subprocess.run(["openssl", "rehash", str(folder)], check=True, capture_output=True)
    for name, key in (("server", server_key), ("client", client_key)):
        cert = _certificate(f"registry-scrub test {name}", key, "registry-scrub test CA", ca_key, ca=False)
        (work / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(work / f"{name}.key", key)
    (work / "client-combined.pem").write_bytes((work / "client.pem").read_bytes() + (work / "client.key").read_bytes())
    return work


class ObjectHandler(RecordingHandler):
    """Serves ``BODY`` as the object to any GET, keeping the connection alive; records each
    connection's end in ``closed``."""

    closed = threading.Event()

    def do_GET(self) -> None:
        self.record()
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def finish(self) -> None:
        super().finish()
        type(self).closed.set()


@contextlib.contextmanager
def running(handler: type[RecordingHandler], tls: ssl.SSLContext | None = None):
    """A loopback server for ``handler``, over TLS when given ``tls``; yields its endpoint."""
    handler.peers = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls is not None:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    # A short poll: shutdown() waits for it, and each test starts and stops a server.
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def https_serving(pki, client_ca: bool = False):
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(pki / "server.pem", pki / "server.key")
    if client_ca:
        tls.verify_mode = ssl.CERT_REQUIRED
        tls.load_verify_locations(pki / "ca.pem")
    return running(ObjectHandler, tls)


def read_with(session: requests.Session, endpoint: str):
    try:
        return gcs.read_and_hash(
            session, endpoint, OBJECT, chunk_size=4096, max_attempts=1, expected_sha256=SHA, sleep=lambda s: None
        )
    finally:
        session.close()


@pytest.fixture
def no_ca_bundle(monkeypatch):
    """No CA bundle from the environment: what the session says is what requests would use."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)


def session_with(**settings) -> requests.Session:
    session = gcs.make_session("http://unused", 2)[0]
    for name, value in settings.items():
        setattr(session, name, value)
    return session


# --- TLS --------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["ca.pem", "ca-folder"])
def test_https_reads_trust_the_ca_bundle_or_folder_the_session_names(pki, no_ca_bundle, where):
    with https_serving(pki) as endpoint:
        result = read_with(session_with(verify=str(pki / where)), endpoint)
    assert (result.ok, result.sha256, result.attempts) == (True, SHA, 1)


def test_https_reads_trust_the_ca_bundle_named_by_the_environment(pki, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki / "ca.pem"))
    with https_serving(pki) as endpoint:
        result = read_with(session_with(), endpoint)
    assert (result.ok, result.sha256) == (True, SHA)


def test_https_reads_verify_the_server_against_certifi_by_default(pki, no_ca_bundle):
    # An unknown CA is a failed read (its reason says why), never a read that skipped verification.
    with https_serving(pki) as endpoint:
        result = read_with(session_with(), endpoint)
    assert result.failure is ReadFailure.UNREADABLE and result.attempts == 1
    assert result.reason.startswith("HttpProtocolError: SSLCertVerificationError: "), result.reason
    assert "certificate verify failed: unable to get local issuer certificate" in result.reason


def test_verify_false_reads_from_a_server_no_ca_vouches_for(pki, no_ca_bundle):
    with https_serving(pki) as endpoint:
        result = read_with(session_with(verify=False), endpoint)
    assert (result.ok, result.sha256) == (True, SHA)


@pytest.mark.parametrize("cert", [("client.pem", "client.key"), "client-combined.pem"])
def test_the_sessions_client_certificate_is_presented(pki, no_ca_bundle, cert):
    chosen = tuple(str(pki / name) for name in cert) if isinstance(cert, tuple) else str(pki / cert)
    with https_serving(pki, client_ca=True) as endpoint:
        result = read_with(session_with(verify=str(pki / "ca.pem"), cert=chosen), endpoint)
        refused = read_with(session_with(verify=str(pki / "ca.pem")), endpoint)
    assert (result.ok, result.sha256) == (True, SHA)
    assert refused.failure is ReadFailure.UNREADABLE  # the server does require one


# --- sessions made elsewhere ------------------------------------------------------------------


def test_a_plain_session_keeps_its_connection_and_closes_it_when_collected():
    # A requests.Session not made by make_session has no _ReadAdapter to hold the media
    # connections: they live with the session, and are closed (not left to the garbage
    # collector's unclosed-socket warning) when it is collected.
    ObjectHandler.closed = threading.Event()
    with running(ObjectHandler) as endpoint:
        session = requests.Session()
        results = [
            gcs.read_and_hash(session, endpoint, OBJECT, chunk_size=4096, max_attempts=1, expected_sha256=SHA)
            for _ in range(2)
        ]
        assert [(r.ok, r.sha256) for r in results] == [(True, SHA)] * 2
        (_, first), (_, second) = ObjectHandler.peers
        assert first == second  # one connection, reused
        assert not ObjectHandler.closed.is_set()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            del session
            gc.collect()
        assert ObjectHandler.closed.wait(2)
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_an_expired_token_is_refreshed_through_the_sessions_own_auth_request(storage_client, bucket, emulator):
    # AuthorizedSession takes an auth_request (its proxy, its CA bundle, its headers) for token
    # refreshes; the direct path must refresh through that, as AuthorizedSession.request does.
    content = b"a token is refreshed before this read"
    bucket.blob(PREFIX + "sha256:" + hashlib.sha256(content).hexdigest()).upload_from_string(content)
    (obj,) = list(gcs.list_range(storage_client, bucket.name, KeyRange(PREFIX)))

    class TokenHandler(RecordingHandler):
        seen: list = []

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            type(self).seen.append(self.headers.get("X-Auth-Path"))
            send_json(self, 200, {"access_token": "fresh-token", "expires_in": 3600})

    with running(TokenHandler) as token_server, FaultyProxy(emulator.port) as proxy:
        token_uri = f"{token_server}/token"
        credentials = Credentials(None, refresh_token="r", token_uri=token_uri, client_id="c", client_secret="s")
        auth_session = requests.Session()
        auth_session.headers["X-Auth-Path"] = "the session's own"
        session = gcs._pooled(AuthorizedSession(credentials, auth_request=Request(auth_session)), 2)
        results = [
            gcs.read_and_hash(
                session, proxy.endpoint, obj, chunk_size=4096, max_attempts=1, expected_sha256=obj.name[-64:]
            )
            for _ in range(2)
        ]
        session.close()
    assert [r.ok for r in results] == [True, True]
    assert TokenHandler.seen == ["the session's own"]  # once: the token is still valid for the second read
    assert [record.headers.get("authorization") for record in proxy.stats.media_reads()] == ["Bearer fresh-token"] * 2
