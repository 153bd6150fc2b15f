"""The read path's own HTTP transport: straight to the session's urllib3 pool, as requests would send it.

Real emulator behind the fault proxy, which records each request's headers and connection.
"""

import hashlib

import requests
from google.auth.transport.requests import AuthorizedSession
from google.oauth2.credentials import Credentials

from pipeline.adapters import gcs
from pipeline.core.shards import KeyRange
from tests.support.proxy import FaultyProxy

PREFIX = "containers/images/"


def test_an_authorized_session_sends_its_token_on_the_direct_path(storage_client, bucket, emulator):
    content = b"authorized read"
    bucket.blob(PREFIX + "sha256:" + hashlib.sha256(content).hexdigest()).upload_from_string(content)
    (obj,) = list(gcs.list_range(storage_client, bucket.name, KeyRange(PREFIX)))
    with FaultyProxy(emulator.port) as proxy:
        session = gcs._pooled(AuthorizedSession(Credentials(token="t0ken")), 2)
        results = [
            gcs.read_and_hash(
                session, proxy.endpoint, obj, chunk_size=4096, max_attempts=1, expected_sha256=obj.name[-64:]
            )
            for _ in range(2)
        ]
        session.close()
    assert [(r.ok, r.sha256) for r in results] == [(True, hashlib.sha256(content).hexdigest())] * 2
    reads = proxy.stats.media_reads()
    assert [record.headers.get("authorization") for record in reads] == ["Bearer t0ken"] * 2
    assert len({record.connection for record in reads}) == 1  # one pooled connection, kept alive


def test_a_session_that_needs_a_proxy_keeps_requests_own_path():
    direct = requests.Session()
    assert gcs._direct_pool(direct, "http://127.0.0.1:9/x") is not None
    proxied = requests.Session()
    proxied.proxies = {"http": "http://127.0.0.1:3128"}
    assert gcs._direct_pool(proxied, "http://127.0.0.1:9/x") is None
