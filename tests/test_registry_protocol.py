"""Registry protocol details that no local registry reproduces, against a small local HTTP server.

This is a fake server, on purpose and only for what has no local counterpart:
GCR / Artifact Registry's extended ``tags/list`` (``child`` and ``manifest`` maps,
values as strings, untagged manifests), served from recorded response shapes;
the ``WWW-Authenticate: Bearer`` token flow against a local token endpoint; and
429 answers with ``Retry-After``. Everything else is tested against the real
docker-registry in ``test_registry_scan.py``.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from jobs.images import make_image, make_index, random_layer
from jobs.launcher import run_scan
from pipeline.adapters import gcs
from pipeline.adapters.registry import (
    RateLimiter,
    RegistryClient,
    RegistryError,
    RegistryStore,
    parse_challenge,
    retry_after_seconds,
)
from pipeline.config import parse_config


class FakeRegistry:
    """Routes ``path -> handler(request) -> (status, headers, body)``; records every request."""

    def __init__(self):
        self.routes = {}
        self.requests = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self):
                parts = urlsplit(self.path)
                fake.requests.append((self.command, parts.path, parse_qs(parts.query), dict(self.headers)))
                route = fake.routes.get(parts.path)
                status, headers, body = route(self, parse_qs(parts.query)) if route else (404, {}, b"{}")
                if isinstance(body, (dict, list)):
                    body = json.dumps(body).encode()
                    headers = {"Content-Type": "application/json", **headers}
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = _serve

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.host = self.url[len("http://") :]
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake():
    server = FakeRegistry()
    yield server
    server.close()


def _gcr_entry(media_type, tags, size="1234"):
    # GCR's recorded shape: every value is a string, untagged manifests have "tag": [].
    return {
        "imageSizeBytes": size,
        "layerId": "",
        "mediaType": media_type,
        "tag": tags,
        "timeCreatedMs": "1500000000000",
        "timeUploadedMs": "1500000001000",
    }


def _serve_gcr(fake, manifests_by_repo, children):
    """tags/list per repository with ``child`` and ``manifest`` maps, and manifests by digest."""
    for repo in set(manifests_by_repo) | set(children):
        entries = manifests_by_repo.get(repo, {})
        body = {
            "child": children.get(repo, []),
            "name": repo,
            "manifest": {d: _gcr_entry(mt, tags) for d, (data, mt, tags) in entries.items()},
            "tags": sorted({t for _, _, tags in entries.values() for t in tags}),
        }
        fake.routes[f"/v2/{repo}/tags/list"] = lambda h, q, body=body: (200, {}, body)
        for digest, (data, media_type, _) in entries.items():
            fake.routes[f"/v2/{repo}/manifests/{digest}"] = (
                lambda h, q, data=data, media_type=media_type, digest=digest: (
                    200,
                    {"Content-Type": media_type, "Docker-Content-Digest": digest},
                    data,
                )
            )


def test_gcr_walk_follows_children_and_takes_untagged_manifests(fake):
    tagged, untagged, nested = (make_image([random_layer(s, 500)], oci=False) for s in (1, 2, 3))
    mt = tagged.media_type
    _serve_gcr(
        fake,
        {
            "proj/app": {
                tagged.digest: (tagged.manifest, mt, ["latest", "v1"]),
                untagged.digest: (untagged.manifest, mt, []),
            },
            "proj/app/nested": {nested.digest: (nested.manifest, mt, ["x"])},
        },
        {"proj": ["app", "tools"], "proj/app": ["nested"], "proj/tools": []},
    )
    store = RegistryStore(0, RegistryClient(fake.url, requests_per_second=1000), gcr_roots=("proj",))
    units = list(store.units())
    assert [u[1] for u in units] == ["proj/app", "proj/app/nested"]  # proj and proj/tools hold no manifest
    requests = [r for unit in units for r in store.enumerate(unit)]
    got = {(r["repository"], r["digest"]): r["tags"] for r in requests}
    h = fake.host
    assert got == {
        (f"{h}/proj/app", tagged.digest): [f"{h}/proj/app:latest", f"{h}/proj/app:v1"],
        (f"{h}/proj/app", untagged.digest): [],
        (f"{h}/proj/app/nested", nested.digest): [f"{h}/proj/app/nested:x"],
    }
    assert {r["media_type"] for r in requests} == {mt}
    walked = [path for method, path, _, _ in fake.requests if path.endswith("tags/list")]
    assert walked == [
        "/v2/proj/tags/list",
        "/v2/proj/app/tags/list",
        "/v2/proj/app/nested/tags/list",
        "/v2/proj/tools/tags/list",
    ]


def test_gcr_map_with_a_bad_key_is_a_finding_not_a_crash(fake):
    fake.routes["/v2/p/tags/list"] = lambda h, q: (200, {}, {"child": [], "manifest": {"sha256:nope": {}}})
    store = RegistryStore(0, RegistryClient(fake.url), gcr_roots=("p",))
    (row,) = [r for u in store.units() for r in store.enumerate(u)]
    assert row["kind"] == "invalid_manifest" and "not a sha256 digest" in row["detail"]


@pytest.mark.slow
def test_scan_of_a_gcr_style_project(fake, emulator, tmp_path):
    """A whole scan through the GCR walk: untagged manifests and index children keep their blobs referenced."""
    tagged, untagged = (make_image([random_layer(s, 800)], oci=False) for s in (11, 12))
    kid = make_image([random_layer(13, 800)], oci=True, architecture="arm64")
    index = make_index([(kid, "linux", "arm64")], oci=True)
    from pipeline.core.manifests import OCI_INDEX, sha256_of

    _serve_gcr(
        fake,
        {
            "scan-proj/app": {
                tagged.digest: (tagged.manifest, tagged.media_type, ["v1"]),
                untagged.digest: (untagged.manifest, untagged.media_type, []),
            },
            "scan-proj/app/multi": {sha256_of(index): (index, OCI_INDEX, ["latest"])},
        },
        {"scan-proj": ["app"], "scan-proj/app": ["multi"]},
    )
    fake.routes[f"/v2/scan-proj/app/multi/manifests/{kid.digest}"] = lambda h, q: (
        200,
        {"Content-Type": kid.media_type},
        kid.manifest,
    )
    client = gcs.make_client(emulator.endpoint)
    bucket = client.lookup_bucket("artifacts.scan-proj.appspot.com") or client.create_bucket(
        "artifacts.scan-proj.appspot.com"
    )
    for digest, data in {**tagged.blobs, **untagged.blobs, **kid.blobs}.items():
        bucket.blob(f"containers/images/{digest}").upload_from_string(data)
    orphan = random_layer(14, 300)
    bucket.blob(f"containers/images/{orphan.digest}").upload_from_string(orphan.blob)
    config = parse_config(
        {
            "source": {"buckets": [bucket.name], "emulator_endpoint": emulator.endpoint},
            "report": {"output": str(tmp_path), "run_id": "gcr"},
            "manifests": {
                "sources": [{"registry": fake.url, "gcr_projects": ["scan-proj"], "bucket": bucket.name}],
                "requests_per_second": 1000,
            },
        },
        "test",
    )
    summary = run_scan(config, ["--direct_running_mode=in_memory"])
    rows = [
        json.loads(line) for p in (tmp_path / "gcr").glob("findings-*.jsonl") for line in p.read_text().splitlines()
    ]
    assert [(r["kind"], r["digest"]) for r in rows] == [("unreferenced_blob", orphan.digest)]
    assert summary["manifests_scanned"] == 4 and summary["reclaimable_bytes"] == len(orphan.blob)


def _challenge(fake, token_path="/token"):
    realm = f"{fake.url}{token_path}"
    return {"WWW-Authenticate": f'Bearer realm="{realm}",service="fake-registry",scope="repository:r:pull"'}


def test_bearer_challenge_flow_with_credentials_from_the_environment(fake, monkeypatch, caplog):
    """401 -> token from the realm (Basic user:password from env) -> retried with the Bearer token, cached."""
    monkeypatch.setenv("MYREG_USERNAME", "robot")
    monkeypatch.setenv("MYREG_PASSWORD", "s3cret-pa55")
    expected_basic = "Basic " + base64.b64encode(b"robot:s3cret-pa55").decode()
    issued = []

    def token(handler, query):
        if handler.headers.get("Authorization") != expected_basic:
            return 401, {}, {"errors": [{"code": "UNAUTHORIZED"}]}
        issued.append(query)
        return 200, {}, {"token": "tok-r", "expires_in": 300}

    def tags(handler, query):
        if handler.headers.get("Authorization") != "Bearer tok-r":
            return 401, _challenge(fake), {"errors": [{"code": "UNAUTHORIZED"}]}
        return 200, {}, {"name": "r", "tags": ["v1"]}

    fake.routes["/token"] = token
    fake.routes["/v2/r/tags/list"] = tags
    caplog.set_level(logging.DEBUG)
    client = RegistryClient(fake.url, credentials_env="MYREG")
    assert client.tags_list("r")["tags"] == ["v1"]
    assert client.tags_list("r")["tags"] == ["v1"]  # the token is reused
    assert issued == [{"service": ["fake-registry"], "scope": ["repository:r:pull"]}]
    assert "s3cret-pa55" not in caplog.text


def test_bearer_challenge_anonymous_and_refused(fake, monkeypatch):
    monkeypatch.delenv("REGISTRY_SCRUB_USERNAME", raising=False)
    fake.routes["/token"] = lambda h, q: (200, {}, {"access_token": "anon"} if "Authorization" not in h.headers else {})
    fake.routes["/v2/r/tags/list"] = lambda h, q: (
        (200, {}, {"tags": []}) if h.headers.get("Authorization") == "Bearer anon" else (401, _challenge(fake), {})
    )
    assert RegistryClient(fake.url).tags_list("r") == {"tags": []}
    fake.routes["/v2/r/tags/list"] = lambda h, q: (401, _challenge(fake), {})
    with pytest.raises(RegistryError) as err:
        RegistryClient(fake.url).tags_list("r")
    assert err.value.status == 401


def test_google_hosts_use_the_access_token_as_basic(fake, monkeypatch):
    """auth: google sends Basic _token:<access token>; the credentials object is a stub (no ADC here)."""

    class StubCredentials:
        token, valid = "ya29.stub-token", True

    import google.auth

    monkeypatch.setattr(google.auth, "default", lambda scopes=None: (StubCredentials(), "p"))
    expected = "Basic " + base64.b64encode(b"_token:ya29.stub-token").decode()
    fake.routes["/v2/p/tags/list"] = lambda h, q: (
        (200, {}, {"child": []}) if h.headers.get("Authorization") == expected else (403, {}, {})
    )
    assert RegistryClient(fake.url, auth="google").tags_list("p") == {"child": []}


def test_basic_auth_needs_both_variables(fake, monkeypatch):
    monkeypatch.delenv("REGISTRY_SCRUB_USERNAME", raising=False)
    monkeypatch.delenv("REGISTRY_SCRUB_PASSWORD", raising=False)
    fake.routes["/v2/r/tags/list"] = lambda h, q: (401, {"WWW-Authenticate": 'Basic realm="x"'}, {})
    with pytest.raises(RegistryError, match="REGISTRY_SCRUB_USERNAME and REGISTRY_SCRUB_PASSWORD"):
        RegistryClient(fake.url, auth="basic").tags_list("r")


def test_429_waits_for_retry_after(fake):
    digest = "sha256:" + "a" * 64
    answers = iter([(429, {"Retry-After": "3"}, {}), (503, {}, {}), (200, {"Content-Type": "x"}, b"{}")])
    fake.routes[f"/v2/r/manifests/{digest}"] = lambda h, q: next(answers)
    sleeps = []
    client = RegistryClient(fake.url, sleep=sleeps.append, requests_per_second=1000)
    assert client.fetch_manifest("r", digest).data == b"{}"
    assert sleeps[0] == 3.0  # as the server asked, then a jittered backoff for the 503
    assert len([s for s in sleeps if s > 0.01]) >= 1 and client.requests_made == 3


def test_429_forever_gives_up_with_the_status(fake):
    fake.routes["/v2/r/tags/list"] = lambda h, q: (429, {"Retry-After": "1"}, {})
    sleeps = []
    with pytest.raises(RegistryError) as err:
        RegistryClient(fake.url, sleep=sleeps.append, max_attempts=3, requests_per_second=1000).tags_list("r")
    assert err.value.status == 429 and "after 3 attempt(s)" in err.value.reason
    assert sleeps == [1.0, 1.0]


def test_retry_after_forms():
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480) == 10.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_rate_limiter_spaces_requests():
    now = [0.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(10, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        limiter.wait()
    assert now[0] == pytest.approx(0.4)


def test_parse_challenge():
    scheme, params = parse_challenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/alpine:pull"'
    )
    assert scheme == "bearer" and params == {
        "realm": "https://auth.docker.io/token",
        "service": "registry.docker.io",
        "scope": "repository:library/alpine:pull",
    }
