"""Registry protocol details that no local registry reproduces, against a small local HTTP server.

This is a fake server, on purpose and only for what has no local counterpart:
GCR / Artifact Registry's extended ``tags/list`` (``child`` and ``manifest`` maps,
values as strings, untagged manifests), served from recorded response shapes;
the ``WWW-Authenticate: Bearer`` token flow against a local token endpoint; and
429 answers with ``Retry-After``; and what a well-behaved registry never sends
(relative or foreign ``Link`` targets, bodies broken off, endless answers,
failing nested repositories). Everything else is tested against the real
docker-registry in ``test_registry_scan.py``.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from jobs.images import make_image, make_index, random_layer
from jobs.launcher import run_scan
from pipeline.adapters import gcs
from pipeline.adapters import registry as registry_mod
from pipeline.adapters.registry import (
    RateLimiter,
    RegistryClient,
    RegistryError,
    RegistryStore,
    next_link,
    parse_challenge,
    retry_after_seconds,
)
from pipeline.config import parse_config


class FakeRegistry:
    """Routes ``path -> handler(request) -> (status, headers, body)``; records every request."""

    def __init__(self, host: str = "127.0.0.1"):
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
                if "Content-Length" not in headers:  # a route may lie about it, to break the body off
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = _serve

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}"
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
    """auth: google sends Basic oauth2accesstoken:<access token>; the credentials object is a stub (no ADC here)."""

    class StubCredentials:
        token, valid = "ya29.stub-token", True

    import google.auth

    monkeypatch.setattr(google.auth, "default", lambda scopes=None: (StubCredentials(), "p"))
    expected = "Basic " + base64.b64encode(b"oauth2accesstoken:ya29.stub-token").decode()
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


def test_429_waits_for_retry_after(fake, monkeypatch):
    digest = "sha256:" + "a" * 64
    answers = iter([(429, {"Retry-After": "3"}, {}), (503, {}, {}), (200, {"Content-Type": "x"}, b"{}")])
    fake.routes[f"/v2/r/manifests/{digest}"] = lambda h, q: next(answers)
    jitter_ranges = []
    # Full jitter draws from [0, cap]; record the range and wait its top, so the cap itself is checked.
    monkeypatch.setattr(registry_mod.random, "uniform", lambda low, high: jitter_ranges.append((low, high)) or high)
    sleeps = []
    client = RegistryClient(fake.url, sleep=sleeps.append, requests_per_second=1000)
    assert client.fetch_manifest("r", digest).data == b"{}"
    # Exactly as the server asked for the 429 (no jitter), then one backoff for the 503 of attempt 2.
    assert sleeps == [3.0, 1.0]
    assert jitter_ranges == [(0, 1.0)]
    assert client.requests_made == 3


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


def test_next_link_forms():
    page = "http://r.example:5000/v2/_catalog?n=100"
    assert (
        next_link('</v2/_catalog?last=b&n=100>; rel="next"', page) == "http://r.example:5000/v2/_catalog?last=b&n=100"
    )
    assert next_link('<_catalog?last=b&n=100>; rel="next"', page) == "http://r.example:5000/v2/_catalog?last=b&n=100"
    assert next_link("<https://o.example/x>; rel=next", page) == "https://o.example/x"
    assert next_link('<a>; rel="prev", <b>; title="x"; rel="next"', page) == "http://r.example:5000/v2/b"
    assert next_link('<c>; rel="prev next"', page) == "http://r.example:5000/v2/c"
    assert next_link('<d>; rel="nextpage"', page) is None and next_link(None, page) is None


def _catalog_pages(fake, pages):
    """``/v2/_catalog`` answering page ``last`` with its repositories and the Link the test gives."""

    def catalog(handler, query):
        repos, link = pages[query.get("last", [""])[0]]
        return 200, ({"Link": link} if link else {}), {"repositories": repos}

    fake.routes["/v2/_catalog"] = catalog


def test_catalog_follows_a_relative_link_but_never_another_host(fake):
    _catalog_pages(
        fake,
        {
            "": (["a"], '<_catalog?last=a&n=100>; rel="next"'),  # relative to /v2/, as RFC 3986 resolves it
            "a": (["b"], '<http://127.0.0.2:9/v2/_catalog?last=b>; rel="next"'),
        },
    )
    units = list(RegistryStore(0, RegistryClient(fake.url)).units())
    assert units[:2] == [("repo", "a"), ("repo", "b")]
    (error,) = units[2:]
    assert error[0] == "error" and "another host" in error[3]
    assert all(path == "/v2/_catalog" for _, path, _, _ in fake.requests) and len(fake.requests) == 2


def test_catalog_link_that_loops_stops(fake):
    _catalog_pages(
        fake, {"": (["a"], '</v2/_catalog?last=a>; rel="next"'), "a": (["b"], '</v2/_catalog?last=a>; rel="next"')}
    )
    client = RegistryClient(fake.url)
    with pytest.raises(RegistryError, match="repeats"):
        list(client.catalog())
    assert len(fake.requests) == 2


def test_gcr_walk_goes_on_past_a_repository_that_fails(fake):
    image = make_image([random_layer(21, 300)], oci=False)
    _serve_gcr(fake, {"p/tools": {image.digest: (image.manifest, image.media_type, ["v1"])}}, {"p": ["app", "tools"]})
    fake.routes["/v2/p/app/tags/list"] = lambda h, q: (500, {}, {})
    store = RegistryStore(0, RegistryClient(fake.url, max_attempts=1), gcr_roots=("p",))
    units = list(store.units())
    assert [u[:2] for u in units] == [("error", "p/app"), ("map", "p/tools")]
    (row,) = store.enumerate(units[0])
    assert row["kind"] == "manifest_unavailable" and row["repository"] == f"{fake.host}/p/app"


def test_gcr_walk_resolves_tags_when_there_is_no_manifest_map(fake):
    """A registry that answers the walk with tags but without GCR's manifest map: the tags are not dropped."""
    image = make_image([random_layer(22, 300)], oci=False)
    fake.routes["/v2/p/tags/list"] = lambda h, q: (200, {}, {"name": "p", "tags": ["v1"], "child": []})
    fake.routes["/v2/p/manifests/v1"] = lambda h, q: (
        200,
        {"Content-Type": image.media_type, "Docker-Content-Digest": image.digest},
        image.manifest,
    )
    store = RegistryStore(0, RegistryClient(fake.url), gcr_roots=("p",))
    items = [r for unit in store.units() for r in store.enumerate(unit)]
    # The walk says that this repository's untagged manifests were not listed (reclaim is not proven).
    assert items[0] == {"partial": f"{fake.host}/p"}
    requests = items[1:]
    assert [(r["digest"], r["tags"]) for r in requests] == [(image.digest, [f"{fake.host}/p:v1"])]


def test_a_body_broken_off_is_retried_and_never_escapes_as_a_requests_error(fake):
    digest = "sha256:" + "b" * 64
    broken = (200, {"Content-Type": "x", "Content-Length": "5000"}, b'{"half')
    answers = iter([broken, (200, {"Content-Type": "x"}, b"{}")])
    fake.routes[f"/v2/r/manifests/{digest}"] = lambda h, q: next(answers)
    client = RegistryClient(fake.url, sleep=lambda s: None)
    assert client.fetch_manifest("r", digest).data == b"{}"
    fake.routes[f"/v2/r/manifests/{digest}"] = lambda h, q: broken
    with pytest.raises(RegistryError) as err:
        RegistryClient(fake.url, sleep=lambda s: None, max_attempts=2).fetch_manifest("r", digest)
    assert err.value.status is None and "after 2 attempt(s)" in err.value.reason


def test_endless_listing_is_refused_without_reading_it_all(fake, monkeypatch):
    monkeypatch.setattr(registry_mod, "MAX_JSON_BYTES", 1000)
    fake.routes["/v2/r/tags/list"] = lambda h, q: (200, {}, {"tags": ["t" * 50] * 100})
    with pytest.raises(RegistryError, match="larger than"):
        RegistryClient(fake.url).tags_list("r")


def test_relative_token_realm_and_a_new_token_when_the_old_one_expires(fake, monkeypatch):
    monkeypatch.delenv("REGISTRY_SCRUB_USERNAME", raising=False)
    issued = iter(["tok-1", "tok-2"])
    valid = {"token": None}

    def token(handler, query):
        valid["token"] = next(issued)
        return 200, {}, {"token": valid["token"]}

    def tags(handler, query):
        if handler.headers.get("Authorization") != f"Bearer {valid['token']}":
            return 401, {"WWW-Authenticate": 'Bearer realm="/token",scope="repository:r:pull"'}, {}
        return 200, {}, {"tags": ["v1"]}

    fake.routes["/token"] = token
    fake.routes["/v2/r/tags/list"] = tags
    client = RegistryClient(fake.url)
    assert client.tags_list("r") == {"tags": ["v1"]}
    valid["token"] = "expired"  # the registry stops accepting tok-1
    assert client.tags_list("r") == {"tags": ["v1"]}
    assert valid["token"] == "tok-2"


def test_retry_after_date_without_a_zone_is_gmt(monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert retry_after_seconds("Wed, 21 Oct 2015 07:28:10 -0000", now=1445412480) == 10.0
    finally:
        monkeypatch.undo()
        time.tzset()


def test_rate_cap_holds_across_clients_and_threads(fake, monkeypatch):
    """Each DoFn instance builds its own client; the cap is per process, so they must share one limiter.
    That limiter, fed a fake clock, spaces 20 requests from 4 threads exactly 1/40 s apart."""
    fake.routes["/v2/"] = lambda h, q: (200, {}, {})
    now, lock = [0.0], threading.Lock()

    def sleep(seconds):
        with lock:
            now[0] = max(now[0], seconds)  # each wait is relative to the shared clock's start

    shared = RateLimiter(40, clock=lambda: 0.0, sleep=sleep)
    monkeypatch.setitem(registry_mod._SHARED_LIMITERS, (fake.url.rstrip("/"), 40.0), shared)
    clients = [RegistryClient(fake.url, requests_per_second=40) for _ in range(2)]
    assert clients[0]._limiter is clients[1]._limiter is shared
    assert RegistryClient(fake.url, requests_per_second=41)._limiter is not shared  # another rate, another cap
    threads = [threading.Thread(target=lambda c=c: [c.ping() for _ in range(5)]) for c in clients * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert now[0] == pytest.approx(19 / 40)  # the 20th request waited for 19 intervals


# --- issue 18: where Basic credentials may go --------------------------------------------------


@pytest.fixture
def realm_elsewhere():
    """A token endpoint on another loopback host (127.0.0.2) than the registry (127.0.0.1)."""
    server = FakeRegistry(host="127.0.0.2")
    yield server
    server.close()


def _challenge_to(realm: str) -> dict[str, str]:
    return {"WWW-Authenticate": f'Bearer realm="{realm}",service="fake-registry",scope="repository:r:pull"'}


def _bearer_tags(fake, realm: str, token: str = "tok"):
    def tags(handler, query):
        if handler.headers.get("Authorization") != f"Bearer {token}":
            return 401, _challenge_to(realm), {}
        return 200, {}, {"name": "r", "tags": ["v1"]}

    fake.routes["/v2/r/tags/list"] = tags


@pytest.mark.parametrize("auth", ["auto", "basic"])
def test_credentials_never_go_to_a_realm_on_another_host_over_plain_http(fake, monkeypatch, auth):
    # The realm's name never resolves (.invalid): had the password been sent, the request would fail
    # on the name, not be refused before it, and nothing could leave the machine either way.
    monkeypatch.setenv("REGISTRY_SCRUB_USERNAME", "robot")
    monkeypatch.setenv("REGISTRY_SCRUB_PASSWORD", "s3cret-pa55")
    _bearer_tags(fake, "http://registry-scrub-realm.invalid/token")
    with pytest.raises(registry_mod.CredentialsWithheld) as err:
        RegistryClient(fake.url, auth=auth, max_attempts=1).tags_list("r")
    assert err.value.reason.startswith(
        "the token realm is on another host over plain HTTP (registry-scrub-realm.invalid); "
        "REGISTRY_SCRUB_USERNAME/_PASSWORD go to a realm on another host only over HTTPS"
    )
    assert "s3cret" not in str(err.value)


def test_without_credentials_a_plain_http_realm_elsewhere_still_hands_out_anonymous_tokens(
    fake, realm_elsewhere, monkeypatch
):
    monkeypatch.delenv("REGISTRY_SCRUB_USERNAME", raising=False)
    realm_elsewhere.routes["/token"] = lambda h, q: (
        200,
        {},
        {"token": "tok"} if "Authorization" not in h.headers else {},
    )
    _bearer_tags(fake, f"{realm_elsewhere.url}/token")
    assert RegistryClient(fake.url).tags_list("r")["tags"] == ["v1"]


def test_a_loopback_realm_on_another_host_gets_the_credentials_and_is_named_once(
    fake, realm_elsewhere, monkeypatch, caplog
):
    monkeypatch.setenv("REGISTRY_SCRUB_USERNAME", "robot")
    monkeypatch.setenv("REGISTRY_SCRUB_PASSWORD", "s3cret-pa55")
    monkeypatch.setattr(registry_mod, "_REALMS_LOGGED", set())
    expected = "Basic " + base64.b64encode(b"robot:s3cret-pa55").decode()
    realm_elsewhere.routes["/token"] = lambda h, q: (
        (200, {}, {"token": "tok"}) if h.headers.get("Authorization") == expected else (401, {}, {})
    )
    _bearer_tags(fake, f"{realm_elsewhere.url}/token")
    caplog.set_level(logging.INFO, logger="pipeline.adapters.registry")
    for _ in range(2):  # two clients (two DoFn instances): one line
        assert RegistryClient(fake.url).tags_list("r")["tags"] == ["v1"]
    named = [r.getMessage() for r in caplog.records if "token realm is on another host" in r.getMessage()]
    assert named == [
        f"registry {fake.url}: its token realm is on another host, {realm_elsewhere.host} "
        "(the credentials from the environment go there)"
    ]
    assert len([r for r in realm_elsewhere.requests if r[1] == "/token"]) == 2


def test_token_realm_same_host_refuses_a_realm_elsewhere_before_sending_anything(fake, realm_elsewhere, monkeypatch):
    monkeypatch.setenv("REGISTRY_SCRUB_USERNAME", "robot")
    monkeypatch.setenv("REGISTRY_SCRUB_PASSWORD", "s3cret-pa55")
    realm_elsewhere.routes["/token"] = lambda h, q: (200, {}, {"token": "tok"})
    _bearer_tags(fake, f"{realm_elsewhere.url}/token")
    config = parse_config(
        {
            "source": {"buckets": ["artifacts.realm-1234.appspot.com"]},
            "manifests": {"sources": [{"registry": fake.url, "repositories": ["r"], "token_realm": "same_host"}]},
        },
        "scan.yaml",
    )
    from jobs.launcher import UnusableInput, check_registries

    fake.routes["/v2/"] = lambda h, q: (
        (200, {}, {}) if h.headers.get("Authorization") else (401, _challenge_to(f"{realm_elsewhere.url}/token"), {})
    )
    with pytest.raises(UnusableInput) as err:
        check_registries(config)
    assert str(err.value) == (
        f"manifests.sources[0] ({fake.url}): the token realm is on another host ({realm_elsewhere.host}), "
        "and token_realm: same_host refuses that; nothing was sent there"
    )
    assert realm_elsewhere.requests == []
    # The same realm on the registry's own host is still fine with same_host.
    fake.routes["/token"] = lambda h, q: (200, {}, {"token": "tok"})
    _bearer_tags(fake, f"{fake.url}/token")
    assert RegistryClient(fake.url, token_realm="same_host").tags_list("r")["tags"] == ["v1"]


@pytest.mark.parametrize(
    "realm, base, allowed",
    [
        ("https://auth.docker.io/token", "https://registry-1.docker.io", True),  # Docker Hub: HTTPS elsewhere
        ("http://auth.example.com/token", "http://registry.example.com", False),
        ("http://registry.example.com:5001/token", "http://registry.example.com:5000", True),  # the same host
        ("http://127.0.0.2:5001/token", "http://127.0.0.1:5000", True),  # both loopback
        ("http://localhost:5001/token", "http://[::1]:5000", True),
        ("http://10.0.0.2/token", "http://127.0.0.1:5000", False),  # from loopback to the network
        ("http://127.0.0.1:5001/token", "http://10.0.0.1:5000", False),
    ],
)
def test_which_realms_may_receive_credentials(realm, base, allowed):
    assert registry_mod.may_receive_credentials(realm, base) is allowed
