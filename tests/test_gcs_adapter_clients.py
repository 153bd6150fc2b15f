"""How the storage client and the read session are made: anonymous on the emulator, else ADC with a read-only scope.

Outside the emulator both take Application Default Credentials: here a throwaway service-account
key whose token endpoint is a loopback server, which records the scope each token asks for.
``API_ENDPOINT_OVERRIDE`` points the client at the fault proxy in front of the real emulator,
so every request it sends is seen with its bearer token.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import threading
from urllib.parse import parse_qs

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth.transport.requests import AuthorizedSession

from pipeline.adapters import gcs
from pipeline.core.shards import KeyRange
from tests.support.http_server import RecordingHandler, send_json
from tests.support.proxy import FaultyProxy

PREFIX = "containers/images/"
READ_ONLY = "https://www.googleapis.com/auth/devstorage.read_only"


class TokenHandler(RecordingHandler):
    """OAuth 2.0 token endpoint: records the claims of each JWT-bearer assertion it is sent."""

    claims: list = []

    def do_POST(self) -> None:
        form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        payload = form["assertion"][0].split(".")[1]
        type(self).claims.append(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))
        send_json(self, 200, {"access_token": "adc-token", "expires_in": 3600, "token_type": "Bearer"})


@pytest.fixture(scope="module")
def token_server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), TokenHandler)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def key_file(tmp_path_factory, token_server):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path = tmp_path_factory.mktemp("adc") / "scanner.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "adc-project",
                "private_key_id": "k1",
                "private_key": pem.decode(),
                "client_email": "scanner@adc-project.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": f"{token_server}/token",
            }
        )
    )
    return path


@pytest.fixture
def adc(monkeypatch, key_file):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    TokenHandler.claims = []


def stored(bucket, content: bytes) -> str:
    name = PREFIX + "sha256:" + hashlib.sha256(content).hexdigest()
    bucket.blob(name).upload_from_string(content)
    return name


def test_without_an_emulator_the_client_lists_with_a_read_only_token(adc, monkeypatch, bucket, emulator):
    name = stored(bucket, b"listed with ADC")
    with FaultyProxy(emulator.port) as proxy:
        monkeypatch.setenv("API_ENDPOINT_OVERRIDE", proxy.endpoint)
        monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
        client = gcs.make_client()
        assert client.project == "adc-project"  # the key's project when none is named
        assert [o.name for o in gcs.list_range(client, bucket.name, KeyRange(PREFIX))] == [name]
    # The token asked for reads only, never the client's default full_control.
    assert TokenHandler.claims and {claim["scope"] for claim in TokenHandler.claims} == {READ_ONLY}
    assert {record.headers.get("authorization") for record in proxy.stats.log} == {"Bearer adc-token"}


def test_a_named_project_outranks_the_credentials_one(adc):
    assert gcs.make_client(project="named-project").project == "named-project"


def test_without_an_emulator_reads_go_to_gcs_with_a_read_only_token(adc, storage_client, bucket, emulator):
    content = b"read with ADC"
    stored(bucket, content)
    (obj,) = gcs.list_range(storage_client, bucket.name, KeyRange(PREFIX))
    session, endpoint = gcs.make_session(None, 3)
    assert endpoint == "https://storage.googleapis.com"
    assert isinstance(session, AuthorizedSession)
    assert session.get_adapter(endpoint)._pool_maxsize == 3
    with FaultyProxy(emulator.port) as proxy:
        # The same session against the emulator: its token is what GCS would be sent.
        result = gcs.read_and_hash(
            session, proxy.endpoint, obj, chunk_size=4096, max_attempts=1, expected_sha256=obj.name[-64:]
        )
        session.close()
    assert (result.ok, result.sha256) == (True, hashlib.sha256(content).hexdigest())
    assert [claim["scope"] for claim in TokenHandler.claims] == [READ_ONLY]
    assert [record.headers.get("authorization") for record in proxy.stats.media_reads()] == ["Bearer adc-token"]


def test_the_emulator_client_is_anonymous_in_the_local_project_unless_named(emulator):
    client = gcs.make_client(emulator.endpoint)
    assert client.project == "registry-scrub-local"
    assert gcs.make_client(emulator.endpoint, project="named-project").project == "named-project"


def test_an_emulator_endpoint_with_a_trailing_slash_is_the_same_endpoint(storage_client, bucket, emulator):
    name = stored(bucket, b"slash")
    with FaultyProxy(emulator.port) as proxy:
        client = gcs.make_client(proxy.endpoint + "/")
        assert [o.name for o in gcs.list_range(client, bucket.name, KeyRange(PREFIX))] == [name]
    # Not "//storage/v1/...": a stricter server than the emulator would not find that.
    paths = [path.split("?")[0] for path in proxy.stats.paths]
    assert f"/storage/v1/b/{bucket.name}/o" in paths and all(path.startswith("/storage/v1/b/") for path in paths)
    session, endpoint = gcs.make_session(emulator.endpoint + "/", 2)
    assert endpoint == emulator.endpoint
    assert type(session).__name__ == "Session" and session.get_adapter(endpoint)._pool_maxsize == 2
