"""Google auth for Artifact Registry (``*-docker.pkg.dev``), end to end against the real docker-registry.

What is real here: Debian's ``docker-registry`` (distribution 2.8.2) configured with
``auth: token:`` verifies every registry token's signature, issuer, audience, expiry and
access; google-auth loads a service-account key through ``GOOGLE_APPLICATION_CREDENTIALS``
(Application Default Credentials) and performs its own signed JWT-bearer exchange, and its
own expiry rule decides when to refresh; ``requests`` reaches ``https://us-docker.pkg.dev``
through an ``HTTPS_PROXY`` and verifies TLS against ``REQUESTS_CA_BUNDLE``; the scan is the
``registry-scrub`` command.

Two stand-ins, because no local counterpart exists, and only for these two roles:

* ``OAuthStandIn`` plays Google's OAuth token endpoint (``token_uri`` of the key file): it
  checks the assertion's RS256 signature against the key's public half and answers with an
  access token, as ``oauth2.googleapis.com/token`` does.
* ``ArtifactRegistryFront`` plays Artifact Registry's token service at
  ``https://us-docker.pkg.dev/v2/token``: it takes Basic ``oauth2accesstoken:<access token>``
  or ``_token:<access token>`` (the forms gcr.io and Artifact Registry document and
  go-containerregistry sends), checks the access token with the OAuth stand-in, and issues a
  pull-only JWT that the real registry verifies (RS256, ``x5c`` chain to its
  ``rootcertbundle``). Every other request it forwards, unchanged, to the real registry.

``LoopbackConnectProxy`` is routing, not a fake: it answers ``CONNECT us-docker.pkg.dev:443``
by connecting to the front on loopback, as any forward proxy would reach the real host.
Keys and certificates are generated per test session with ``cryptography``.
"""

from __future__ import annotations

import base64
import datetime
import http.client
import json
import select
import socket
import socketserver
import ssl
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from jobs.images import make_image, random_layer
from pipeline.adapters.registry import RegistryClient, RegistryError, access_problem
from tests import registry_fixtures
from tests.support.http_server import send_json
from tests.test_cli import cli_env, one_line, run_cli

AR_HOST = "us-docker.pkg.dev"
AR_URL = f"https://{AR_HOST}"
REPOSITORY = "scrub-test/successor/app"  # PROJECT/REPO/IMAGE, as Artifact Registry names images
SERVICE_ACCOUNT = "scanner@scrub-test.iam.gserviceaccount.com"
ISSUER = "loopback-artifact-registry-token-service"
# What the scanner must ask for: the scope gcr.io documents for pulls, which Artifact Registry
# honours for reads too (docs/manifest-sources.md#auth). Never cloud-platform, never read_write.
READ_ONLY_SCOPE = "https://www.googleapis.com/auth/devstorage.read_only"


# --- keys and certificates ------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _certificate(subject: str, key, issuer_name: str, issuer_key, *, ca: bool, dns: str | None = None):
    now = datetime.datetime.now(datetime.timezone.utc)  # datetime.UTC is 3.11+
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True
        )
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _sign_rs256(key, header: dict, claims: dict) -> str:
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
    signature = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64url(signature)}"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A TLS CA and the server certificate of us-docker.pkg.dev; the token signer and its bundle;
    and a service-account key. All throwaway, made for this module."""
    work = tmp_path_factory.mktemp("pki")
    ca_key, server_key, signer_key, sa_key = _key(), _key(), _key(), _key()
    ca = _certificate("registry-scrub test CA", ca_key, "registry-scrub test CA", ca_key, ca=True)
    server = _certificate(AR_HOST, server_key, "registry-scrub test CA", ca_key, ca=False, dns=AR_HOST)
    signer = _certificate(ISSUER, signer_key, ISSUER, signer_key, ca=True)
    (work / "ca.pem").write_bytes(_pem(ca))
    (work / "server.pem").write_bytes(_pem(server))
    (work / "server.key").write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (work / "token-signer.pem").write_bytes(_pem(signer))
    return {
        "dir": work,
        "ca": work / "ca.pem",
        "server": (work / "server.pem", work / "server.key"),
        "signer_key": signer_key,
        "signer_x5c": base64.b64encode(signer.public_bytes(serialization.Encoding.DER)).decode("ascii"),
        "rootcertbundle": work / "token-signer.pem",
        "sa_key": sa_key,
    }


# --- the servers ----------------------------------------------------------------------------


class _Server:
    """A ThreadingHTTPServer on a free loopback port, in a daemon thread."""

    def __init__(self, handler, tls: ssl.SSLContext | None = None):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class OAuthStandIn:
    """Google's OAuth token endpoint for a service account (a stand-in: nothing local serves it).

    Verifies the JWT-bearer assertion that google-auth signs with the key file's private key,
    records its claims, and issues ``ya29.loopback-N`` with the next lifetime from ``lifetimes``
    (then 3600 s)."""

    def __init__(self, public_key):
        self.public_key = public_key
        self.grants: list[dict] = []
        self.issued: list[str] = []
        self.lifetimes: list[int] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                form = parse_qs(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())
                send_json(self, *stand_in.grant(form))

            def log_message(self, *args):
                pass

        self._server = _Server(Handler)
        self.token_uri = f"http://127.0.0.1:{self._server.port}/token"

    def grant(self, form: dict) -> tuple[int, dict]:
        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
            return 400, {"error": "unsupported_grant_type"}
        header, claims, signature = form["assertion"][0].split(".")
        try:
            self.public_key.verify(
                _b64url_decode(signature), f"{header}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except Exception:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        self.grants.append(json.loads(_b64url_decode(claims)))
        token = f"ya29.loopback-{len(self.issued) + 1}"
        self.issued.append(token)
        lifetime = self.lifetimes.pop(0) if self.lifetimes else 3600
        return 200, {"access_token": token, "expires_in": lifetime, "token_type": "Bearer"}

    def close(self):
        self._server.close()


class ArtifactRegistryFront:
    """``https://us-docker.pkg.dev``: Artifact Registry's token service (a stand-in) at ``/v2/token``,
    and the real docker-registry behind it for everything else."""

    def __init__(self, pki, oauth: OAuthStandIn):
        self.pki, self.oauth = pki, oauth
        self.registry_port: int | None = None
        self.refuse_all = False  # the realm answers 401 to every access token (an identity without access)
        self.realm_requests: list[dict] = []
        self.forwarded: list[tuple[str, str, str, int]] = []  # method, path, Authorization, status
        self.issued: list[str] = []
        front = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self):
                parts = urlsplit(self.path)
                if parts.path == "/v2/token":
                    status, headers, body = front.token(self.headers.get("Authorization", ""), parse_qs(parts.query))
                else:
                    status, headers, body = front.forward(self.command, self.path, self.headers)
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = _serve

            def log_message(self, *args):
                pass

        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(*map(str, pki["server"]))
        self._server = _Server(Handler, tls)
        self.port = self._server.port

    def token(self, authorization: str, query: dict) -> tuple[int, list, bytes]:
        user, token = None, None
        if authorization.startswith("Basic "):
            user, _, token = base64.b64decode(authorization[6:]).decode().partition(":")
        self.realm_requests.append({"user": user, "token": token, "scope": query.get("scope", [None])[0]})
        known = user in ("oauth2accesstoken", "_token") and token in self.oauth.issued
        if not known or self.refuse_all:
            body = json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": "access denied"}]}).encode()
            return 401, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))], body
        access = []
        for scope in query.get("scope", []):
            kind, name, actions = scope.split(":")
            # Read-only, as for an identity with roles/artifactregistry.reader: pull and nothing else.
            access.append({"type": kind, "name": name, "actions": [a for a in actions.split(",") if a == "pull"]})
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": SERVICE_ACCOUNT,
            "aud": AR_HOST,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.pki["signer_x5c"]]}
        jwt = _sign_rs256(self.pki["signer_key"], header, claims)
        self.issued.append(jwt)
        body = json.dumps({"token": jwt, "access_token": jwt, "expires_in": 300}).encode()
        return 200, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))], body

    def forward(self, method: str, path: str, headers) -> tuple[int, list, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.registry_port, timeout=30)
        sent = {k: v for k, v in headers.items() if k.lower() in ("authorization", "accept")}
        try:
            connection.request(method, path, headers=sent)
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        self.forwarded.append((method, urlsplit(path).path, headers.get("Authorization", ""), response.status))
        kept = [(k, v) for k, v in response.getheaders() if k.lower() not in ("connection", "transfer-encoding")]
        if not any(k.lower() == "content-length" for k, _ in kept):
            kept.append(("Content-Length", str(len(body))))
        return response.status, kept, body

    def close(self):
        self._server.close()


class LoopbackConnectProxy:
    """An HTTPS forward proxy: ``CONNECT host:443`` is tunnelled to ``target_port`` on loopback."""

    def __init__(self, target_port: int):
        self.connects: list[str] = []
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = self.request.recv(4096)
                    if not chunk:
                        return
                    head += chunk
                method, target = head.split(b" ", 2)[:2]
                if method != b"CONNECT":
                    self.request.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                    return
                proxy.connects.append(target.decode())
                upstream = socket.create_connection(("127.0.0.1", target_port))
                self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                try:
                    _pipe(self.request, upstream)
                finally:
                    upstream.close()

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def close(self):
        self._server.shutdown()
        self._server.server_close()


def _pipe(a: socket.socket, b: socket.socket) -> None:
    sockets = [a, b]
    while True:
        readable, _, _ = select.select(sockets, [], [], 30)
        if not readable:
            return
        for sock in readable:
            data = sock.recv(65536)
            if not data:
                return
            (b if sock is a else a).sendall(data)


# --- the setup ------------------------------------------------------------------------------

TOKEN_AUTH = """\
auth:
  token:
    realm: {realm}
    service: {service}
    issuer: {issuer}
    rootcertbundle: {bundle}
"""


@pytest.fixture(scope="module")
def artifact_registry(tmp_path_factory, pki, emulator):
    """us-docker.pkg.dev/scrub-test/successor/app with two images, behind Google auth; and a bucket
    that holds the blobs of the first (migrated) one."""
    from pipeline.adapters import gcs

    work = tmp_path_factory.mktemp("artifact-registry")
    migrated = make_image([random_layer(7101, 3000), random_layer(7102, 2000)], oci=False)
    newer = make_image([random_layer(7103, 2500)], oci=False)
    # Pushed while the registry is open (skopeo would need push tokens), then auth is switched on.
    with registry_fixtures.Registry(work / "registry") as seeding:
        seeding.push(migrated, REPOSITORY, "v1")
        seeding.push(newer, REPOSITORY, "v2")
    bucket_name = "artifacts.scrub-test.appspot.com"
    storage = gcs.make_client(emulator.endpoint)
    bucket = storage.lookup_bucket(bucket_name) or storage.create_bucket(bucket_name)
    for digest, data in migrated.blobs.items():
        bucket.blob(f"containers/images/{digest}").upload_from_string(data)

    oauth = OAuthStandIn(pki["sa_key"].public_key())
    front = ArtifactRegistryFront(pki, oauth)
    proxy = LoopbackConnectProxy(front.port)
    plain = registry_fixtures.CONFIG
    registry_fixtures.CONFIG = plain + TOKEN_AUTH.format(
        realm=f"{AR_URL}/v2/token", service=AR_HOST, issuer=ISSUER, bundle=pki["rootcertbundle"]
    )
    try:
        registry = registry_fixtures.Registry(work / "registry").start()  # the same storage, now with auth
    finally:
        registry_fixtures.CONFIG = plain
    front.registry_port = registry.port
    key_file = work / "scanner-key.json"
    key_file.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "scrub-test",
                "private_key_id": "loopback-key-1",
                "private_key": pki["sa_key"]
                .private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
                .decode(),
                "client_email": SERVICE_ACCOUNT,
                "client_id": "1",
                "token_uri": oauth.token_uri,
            }
        )
    )
    env = {
        "GOOGLE_APPLICATION_CREDENTIALS": str(key_file),
        "HTTPS_PROXY": proxy.url,
        "REQUESTS_CA_BUNDLE": str(pki["ca"]),
    }
    try:
        yield {
            "oauth": oauth,
            "front": front,
            "proxy": proxy,
            "registry": registry,
            "env": env,
            "images": {"migrated": migrated, "newer": newer},
            "bucket": bucket_name,
            "emulator": emulator,
            "work": work,
        }
    finally:
        registry.stop()
        proxy.close()
        front.close()
        oauth.close()


@pytest.fixture
def ar(artifact_registry, monkeypatch):
    """The module's Artifact Registry with fresh records, and its environment set for this test."""
    for name, value in artifact_registry["env"].items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("REGISTRY_SCRUB_USERNAME", raising=False)
    oauth, front = artifact_registry["oauth"], artifact_registry["front"]
    oauth.grants.clear()
    oauth.lifetimes.clear()
    front.realm_requests.clear()
    front.forwarded.clear()
    front.refuse_all = False
    artifact_registry["proxy"].connects.clear()
    return artifact_registry


def _config(ar, tmp_path: Path, run_id: str) -> Path:
    config = tmp_path / "post-shutdown.yaml"
    config.write_text(
        f"source:\n  buckets: [{ar['bucket']}]\n  emulator_endpoint: {ar['emulator'].endpoint}\n"
        f"scan:\n  mode: manifests\n"
        f"report:\n  output: {tmp_path / 'out'}\n  run_id: {run_id}\n"
        "manifests:\n"
        "  requests_per_second: 500\n"
        "  legacy_metadata: false\n"
        "  sources:\n"
        f"    - registry: {AR_URL}\n"
        f"      repositories: [{REPOSITORY}]\n"
        "      role: successor\n"
    )
    return config


def _rows(run_dir: Path, prefix: str) -> list[dict]:
    return [json.loads(line) for p in sorted(run_dir.glob(f"{prefix}-*.jsonl")) for line in p.read_text().splitlines()]


# --- the tests ------------------------------------------------------------------------------


def test_a_successor_scan_of_artifact_registry_end_to_end(ar, tmp_path):
    """``registry-scrub`` against ``https://us-docker.pkg.dev`` with ``auth: auto``: ADC through
    google-auth, a read-only scope, the realm's Bearer token at the registry, and the migration
    audit of the bucket."""
    env = cli_env(**ar["env"])
    proc = run_cli(
        "--config", str(_config(ar, tmp_path, "ar")), "--direct_running_mode=in_memory", cwd=tmp_path, env=env
    )
    assert proc.returncode == 0, proc.stderr
    run_dir = tmp_path / "out" / "ar"
    migrated, newer = ar["images"]["migrated"], ar["images"]["newer"]
    name = f"{AR_HOST}/{REPOSITORY}"

    # google-auth's own JWT-bearer exchange, for the service account of the key file, read-only.
    assert ar["oauth"].grants, "google-auth never asked the token URI"
    for grant in ar["oauth"].grants:
        # (google-auth names Google's endpoint as the audience, whatever token_uri it posts to)
        assert (grant["iss"], grant["aud"]) == (SERVICE_ACCOUNT, "https://oauth2.googleapis.com/token")
        assert grant["scope"] == READ_ONLY_SCOPE
    # The realm got the access token as Basic oauth2accesstoken:<token>: first for the preflight's
    # GET /v2/ (no scope), then for pulls. Each client (the preflight's, each DoFn's) made one exchange.
    realm = ar["front"].realm_requests
    assert {(r["user"], r["token"] in ar["oauth"].issued) for r in realm} == {("oauth2accesstoken", True)}
    assert [r["scope"] for r in realm[:1]] == [None]
    assert {r["scope"] for r in realm[1:]} == {f"repository:{REPOSITORY}:pull"}
    assert len(ar["oauth"].grants) == len(realm)
    # Every request the registry answered 200 carried a JWT the realm issued: it verified each one.
    answered = [(method, path, auth) for method, path, auth, status in ar["front"].forwarded if status == 200]
    manifests = f"/v2/{REPOSITORY}/manifests"
    assert sorted((method, path) for method, path, _ in answered) == sorted(
        [
            ("GET", "/v2/"),
            ("GET", f"/v2/{REPOSITORY}/tags/list"),
            ("HEAD", f"{manifests}/v1"),
            ("HEAD", f"{manifests}/v2"),
            ("GET", f"{manifests}/{migrated.digest}"),
            ("GET", f"{manifests}/{newer.digest}"),
        ]
    )
    assert all(auth.startswith("Bearer ") and auth[7:] in ar["front"].issued for _, _, auth in answered)
    # Reached as us-docker.pkg.dev itself (through the proxy): the name decides the Google flow.
    assert set(ar["proxy"].connects) == {f"{AR_HOST}:443"}

    findings = _rows(run_dir, "findings")
    assert sorted((r["kind"], r["digest"]) for r in findings) == sorted(
        ("in_registry_only", digest) for digest in newer.blobs
    )
    assert all(r["images"] == [f"{name}@{newer.digest}"] for r in findings)
    [row] = _rows(run_dir, "migrated")
    assert (row["bucket"], row["repository"], row["manifest_digest"], row["tags"]) == (
        ar["bucket"],
        name,
        migrated.digest,
        [f"{name}:v1"],
    )
    assert row["blobs_in_bucket"] == len(migrated.blobs)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["successor"][ar["bucket"]]["successor_blobs"] == len(migrated.blobs)
    assert summary["exit_status"] == 0
    # One line per bucket, the same in the terminal summary and in report.html.
    [line] = [text for text in proc.stdout.splitlines() if text.startswith(f"{ar['bucket']}: ")]
    assert line.startswith(f"{ar['bucket']}: {len(migrated.blobs)} blobs / ")
    assert line.endswith("belong to images in the successor registry; 0 blobs / 0 B belong to no image there")
    assert f'<ul id="successor-lines"><li>{line}</li></ul>' in (run_dir / "report.html").read_text()


def test_a_refused_identity_stops_the_scan_before_it_starts(ar, tmp_path):
    """The realm answers 401 to the access token (an identity without access): exit 2, one line."""
    ar["front"].refuse_all = True
    before = len(ar["oauth"].issued)
    env = cli_env(**ar["env"])
    proc = run_cli(
        "--config", str(_config(ar, tmp_path, "refused")), "--direct_running_mode=in_memory", cwd=tmp_path, env=env
    )
    assert proc.returncode == 2
    assert one_line(proc.stderr) == (
        f"registry-scrub: manifests.sources[0] ({AR_URL}): refused the Google credentials (token endpoint "
        "answered HTTP 401 for scope '(none)'); the identity needs roles/artifactregistry.reader on the "
        "repositories (gcloud auth application-default login, or GOOGLE_APPLICATION_CREDENTIALS)"
    )
    # A real access token was fetched (one exchange), offered to the realm, refused, and never printed.
    assert len(ar["oauth"].issued) == before + 1
    refused = ar["oauth"].issued[-1]
    assert [r["token"] for r in ar["front"].realm_requests] == [refused]
    assert refused not in proc.stderr and refused not in proc.stdout
    assert not (tmp_path / "out").exists()


def test_an_expired_access_token_is_refreshed_through_google_auth(ar):
    """google-auth refreshes an access token that is expired or about to be (its REFRESH_THRESHOLD,
    minutes): the first token lives 1 s, so before its next use a new one comes from the token URI,
    and the stale one never reaches the realm."""
    ar["oauth"].lifetimes.extend([1, 3600])
    first = len(ar["oauth"].issued)
    client = RegistryClient(AR_URL, requests_per_second=1000)
    try:
        assert client.tags_list(REPOSITORY)["tags"] == ["v1", "v2"]
        assert client.fetch_manifest(REPOSITORY, ar["images"]["newer"].digest).data == ar["images"]["newer"].manifest
        assert client.ping() == 200  # another scope: another realm request
    finally:
        client.close()
    stale, fresh = ar["oauth"].issued[first:]
    assert len(ar["oauth"].grants) == 2
    assert {grant["scope"] for grant in ar["oauth"].grants} == {READ_ONLY_SCOPE}
    # The stale token went once, directly to the registry (which wants a realm token instead) ...
    basic = "Basic " + base64.b64encode(f"oauth2accesstoken:{stale}".encode()).decode()
    assert ar["front"].forwarded[0][1:] == (f"/v2/{REPOSITORY}/tags/list", basic, 401)
    # ... and the realm only ever saw the refreshed one.
    assert [(r["token"], r["scope"]) for r in ar["front"].realm_requests] == [
        (fresh, f"repository:{REPOSITORY}:pull"),
        (fresh, None),
    ]


def test_the_google_token_never_goes_to_a_realm_on_another_host(ar):
    """A registry whose challenge names a realm on another (non-Google) host gets no token request:
    the access token opens everything the identity can read."""

    class Challenge(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Bearer realm="https://auth.example.net/token",service="x"')
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    other = _Server(Challenge)
    client = RegistryClient(f"http://127.0.0.1:{other.port}", auth="google", requests_per_second=1000)
    try:
        with pytest.raises(RegistryError, match=r"token realm is on another host \(auth.example.net\)"):
            client.tags_list(REPOSITORY)
        # The preflight says so, and the run stops with status 2 before any worker starts.
        assert access_problem(client) == (
            "the token realm is on another host (auth.example.net); Google credentials are not sent there"
        )
    finally:
        client.close()
        other.close()
    assert ar["proxy"].connects == [] and ar["front"].realm_requests == []


def test_auth_google_forces_the_flow_for_a_registry_under_another_name(ar):
    """``auth: google`` on a host the name rule does not know (here the registry's loopback address):
    the same flow, and a realm on a Google host over HTTPS may receive the access token."""
    client = RegistryClient(ar["registry"].url, auth="google", requests_per_second=1000)
    try:
        assert client.tags_list(REPOSITORY)["tags"] == ["v1", "v2"]
    finally:
        client.close()
    assert [(r["user"], r["scope"]) for r in ar["front"].realm_requests] == [
        ("oauth2accesstoken", f"repository:{REPOSITORY}:pull")
    ]
    assert ar["proxy"].connects == [f"{AR_HOST}:443"]  # only the realm went through the proxy
    assert ar["front"].forwarded == []  # the registry itself was reached directly
    with pytest.raises(RegistryError) as refused:  # without auth: google, it gets nothing
        RegistryClient(ar["registry"].url, auth="anonymous", requests_per_second=1000).tags_list(REPOSITORY)
    assert refused.value.status == 401


def test_a_repository_url_as_registry_says_where_its_path_goes():
    """People copy Artifact Registry's repository URL; the config error says how to write it."""
    from pipeline.config import ConfigError, parse_config

    source = {"registry": "https://us-docker.pkg.dev/my-project/my-repo", "role": "successor"}
    with pytest.raises(ConfigError) as err:
        parse_config(
            {"source": {"buckets": ["artifacts.my-project.appspot.com"]}, "manifests": {"sources": [source]}},
            "post-shutdown.yaml",
        )
    assert str(err.value).endswith(
        "registry: expected http(s)://HOST[:PORT] with no path, got 'https://us-docker.pkg.dev/my-project/my-repo'; "
        "name the images under repositories: registry: https://us-docker.pkg.dev, "
        "repositories: [my-project/my-repo/IMAGE]"
    )
