"""A Registry API v2 client: auth, catalog and tag walks, and manifests fetched as exact bytes.

Auth, in order of preference for ``auth: auto``:

* ``gcr.io``, ``*.gcr.io`` and ``*-docker.pkg.dev`` (or any host with ``auth: google``):
  an access token from google-auth application default credentials, with a read-only
  scope, sent as Basic ``oauth2accesstoken:<access token>``, to the registry and, when it
  answers with a ``Bearer`` challenge, to its token realm (the same host, as on gcr.io and
  Artifact Registry) for a registry token;
* a username and password from the environment (``<PREFIX>_USERNAME`` and
  ``<PREFIX>_PASSWORD``, ``REGISTRY_SCRUB`` unless the source names another
  prefix), sent to the token realm or as Basic when the registry asks for it; to a realm
  on another host only over HTTPS (or with both on loopback), and not at all with
  ``token_realm: same_host``;
* otherwise anonymous, following ``WWW-Authenticate: Bearer realm=…`` challenges
  (Docker Hub and most registries hand out anonymous pull tokens).

Secrets are read on the worker that makes the request, never from the YAML file,
and never appear in logs, exceptions or findings.

Every request goes through one rate cap (requests per second, shared by every
client of the same registry in the process: the process's share of the job's
budget, see ``pipeline.core.budget``) and one retry policy: 429 waits for
``Retry-After``; 408, 5xx and connection errors back off exponentially; other
statuses are final.
"""

from __future__ import annotations

import base64
import datetime
import email.utils
import ipaddress
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter

from pipeline.core.crosscheck import tag_name
from pipeline.core.digests import is_digest
from pipeline.core.manifests import ACCEPT, MAX_MANIFEST_BYTES, load_json, manifest_digest

log = logging.getLogger(__name__)

DEFAULT_CREDENTIALS_ENV = "REGISTRY_SCRUB"
# Read-only. Container Registry documents devstorage.read_only as the scope an access token needs
# to pull, and Artifact Registry (which serves gcr.io now) lets a token with only this scope pull
# from its repositories, as on a VM with the default read-only Storage scope. cloud-platform.read-only
# is the Artifact Registry *API*'s scope, which gcr.io does not document; the scanner needs no more.
GOOGLE_SCOPE = "https://www.googleapis.com/auth/devstorage.read_only"
# The user name gcr.io and Artifact Registry document for an access token as password
# (they also take "_token", which go-containerregistry sends).
GOOGLE_TOKEN_USER = "oauth2accesstoken"
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
HTTP_TIMEOUT = (10, 60)
MAX_RETRY_AFTER_S = 120.0
CATALOG_PAGE = 100
_GOOGLE_HOST = re.compile(r"(?:[a-z0-9-]+\.)?gcr\.io|[a-z0-9-]+-docker\.pkg\.dev")
_CHALLENGE_PARAM = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))')
_LINK = re.compile(r"<([^>]*)>([^<]*)")
_LINK_REL = re.compile(r';\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,"]+))', re.I)
# Bodies other than manifests (tags/list, _catalog, tokens): GCR's tags/list of a big
# repository runs to megabytes, but a server that never stops must not exhaust memory.
MAX_JSON_BYTES = 64 * 1024 * 1024


class RegistryError(Exception):
    """A request that failed for good: ``status`` (None for a connection failure) and a safe reason."""

    def __init__(self, status: int | None, reason: str, attempts: int = 1):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.attempts = attempts


class CredentialsWithheld(RegistryError):
    """The registry asked us to send credentials where they must not go; nothing was sent."""

    def __init__(self, reason: str):
        super().__init__(None, reason)


# Transport failures worth another attempt: the connection, a timeout, a body broken off.
_RETRIED_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


@dataclass(frozen=True)
class Answer:
    """A response whose body has been read (at most ``limit`` bytes; ``too_large`` when there was more)."""

    status_code: int
    headers: Any
    content: bytes
    too_large: bool = False

    def json(self) -> Any:
        # Bounded and strict like a manifest: a registry's answer is input too (ManifestError is a ValueError).
        return load_json(self.content, max_bytes=MAX_JSON_BYTES)


def _read_capped(response: requests.Response, limit: int) -> tuple[bytes, bool]:
    chunks, total = [], 0
    for chunk in response.iter_content(64 * 1024):
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            return b"".join(chunks), True
    return b"".join(chunks), False


@dataclass(frozen=True)
class Fetched:
    """A manifest as served: exact bytes, Content-Type and ``Docker-Content-Digest`` (if sent)."""

    data: bytes
    media_type: str | None
    header_digest: str | None
    too_large: bool = False


def is_google_host(host: str) -> bool:
    return _GOOGLE_HOST.fullmatch(host.split(":")[0].lower()) is not None


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="…",service="…",scope="…"`` -> ("bearer", {realm, service, scope})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {
        m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
        for m in _CHALLENGE_PARAM.finditer(rest)
    }
    return scheme.lower(), params


def next_link(header: str | None, current_url: str) -> str | None:
    """The ``rel="next"`` target of a ``Link`` header, resolved against the URL that returned it (RFC 8288)."""
    for match in _LINK.finditer(header or ""):
        rel = _LINK_REL.search(match.group(2))
        if rel and "next" in (rel.group(1) if rel.group(1) is not None else rel.group(2)).lower().split():
            return urljoin(current_url, match.group(1).strip())
    return None


def is_loopback_host(hostname: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1): a realm there never leaves the machine."""
    name = (hostname or "").lower().strip("[]")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def same_host(url: str, base: str) -> bool:
    return (urlsplit(url).hostname or "").lower() == (urlsplit(base).hostname or "").lower()


def may_receive_credentials(realm: str, base: str) -> bool:
    """A token realm may receive the user's Basic credentials: on the registry's own host, over
    HTTPS, or with both on loopback (as careful clients do: a realm on another host over plain
    HTTP would put the password on the network in the clear)."""
    if same_host(realm, base) or urlsplit(realm).scheme.lower() == "https":
        return True
    return is_loopback_host(urlsplit(realm).hostname or "") and is_loopback_host(urlsplit(base).hostname or "")


_REALMS_LOGGED: set[tuple[str, str]] = set()
_REALMS_LOCK = threading.Lock()


def log_realm_once(base: str, realm: str, with_credentials: bool) -> None:
    """Name, once per process, a token realm on another host than its registry, and what went there."""
    host = urlsplit(realm).netloc
    with _REALMS_LOCK:
        if (base, host) in _REALMS_LOGGED:
            return
        _REALMS_LOGGED.add((base, host))
    sent = "the credentials from the environment go there" if with_credentials else "anonymous"
    log.info("registry %s: its token realm is on another host, %s (%s)", base, host, sent)


def same_origin(url: str, base: str) -> bool:
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme.lower(), a.netloc.lower()) == (b.scheme.lower(), b.netloc.lower())


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: either a number or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" or no zone: HTTP dates are always GMT (RFC 9110)
        when = when.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class RateLimiter:
    """At most ``per_second`` requests per second through this limiter (spaced evenly, thread-safe)."""

    def __init__(
        self,
        per_second: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._interval = 1.0 / per_second if per_second else 0.0
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._next = 0.0

    def wait(self) -> None:
        with self._lock:
            now = self._clock()
            delay = self._next - now
            self._next = max(now, self._next) + self._interval
        if delay > 0:
            self._sleep(delay)


_SHARED_LIMITERS: dict[tuple[str, float], RateLimiter] = {}
_SHARED_LIMITERS_LOCK = threading.Lock()


def shared_limiter(base: str, per_second: float) -> RateLimiter:
    """One limiter per registry and rate in this process: every client (one per DoFn instance and
    thread) draws from it, so ``per_second`` caps the whole worker process. The launcher sets it to
    the process's share of ``manifests.requests_per_second`` (``ManifestsConfig.requests_per_process``)."""
    with _SHARED_LIMITERS_LOCK:
        key = (base, per_second)
        if key not in _SHARED_LIMITERS:
            _SHARED_LIMITERS[key] = RateLimiter(per_second)
        return _SHARED_LIMITERS[key]


class RegistryClient:
    """One registry (``url`` = ``http(s)://host[:port]``); repositories are named without the host."""

    def __init__(
        self,
        url: str,
        *,
        auth: str = "auto",
        credentials_env: str | None = None,
        tls_verify: bool = True,
        requests_per_second: float = 20.0,
        max_attempts: int = 5,
        max_manifest_bytes: int = MAX_MANIFEST_BYTES,
        sleep: Callable[[float], None] = time.sleep,
        session: requests.Session | None = None,
        limiter: RateLimiter | None = None,
        token_realm: str = "any_host",
    ):
        parts = urlsplit(url.rstrip("/"))
        self.base = f"{parts.scheme}://{parts.netloc}"
        self.host = parts.netloc
        self._auth_mode = auth
        self._token_realm = token_realm  # "same_host" refuses a realm on another host (docs/manifest-sources.md)
        self._credentials_env = credentials_env or DEFAULT_CREDENTIALS_ENV
        self._max_attempts = max_attempts
        self._max_manifest_bytes = max_manifest_bytes
        self._sleep = sleep
        self._limiter = limiter or shared_limiter(self.base, requests_per_second)
        self._session = session or requests.Session()
        self._session.verify = tls_verify
        adapter = HTTPAdapter(pool_maxsize=8, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._tokens: dict[str, str] = {}  # scope -> bearer token
        self._basic: tuple[str, str] | None = None  # set once the registry asked for Basic
        self._google_credentials = None
        self.requests_made = 0

    # --- auth -----------------------------------------------------------------------------

    def _uses_google(self) -> bool:
        return self._auth_mode == "google" or (self._auth_mode == "auto" and is_google_host(self.host))

    def _env_credentials(self) -> tuple[str, str] | None:
        if self._auth_mode in ("anonymous", "google"):
            return None
        user = os.environ.get(f"{self._credentials_env}_USERNAME")
        password = os.environ.get(f"{self._credentials_env}_PASSWORD")
        if self._auth_mode == "basic" and not (user and password):
            raise RegistryError(
                None,
                f"auth is 'basic' but {self._credentials_env}_USERNAME and "
                f"{self._credentials_env}_PASSWORD are not both set",
            )
        return (user, password) if user and password else None

    def _google_access_token(self) -> str:
        """A current access token: google-auth refreshes it (for real, at its token URI) once it is
        expired or about to be, so a scan that outlives one token keeps going."""
        import google.auth
        import google.auth.transport.requests

        if self._google_credentials is None:
            self._google_credentials, _ = google.auth.default(scopes=[GOOGLE_SCOPE])
        if not self._google_credentials.valid:
            self._google_credentials.refresh(google.auth.transport.requests.Request())
        return self._google_credentials.token

    def _realm_credentials(self) -> tuple[str, str] | None:
        if self._uses_google():
            return GOOGLE_TOKEN_USER, self._google_access_token()
        return self._env_credentials()

    def _auth_header(self, scope: str | None) -> str | None:
        if (scope or "") in self._tokens:
            return f"Bearer {self._tokens[scope or '']}"
        if self._uses_google():  # gcr.io and Artifact Registry also take the access token directly
            return _basic_header(GOOGLE_TOKEN_USER, self._google_access_token())
        if self._basic:
            return _basic_header(*self._basic)
        return None

    def _answer_challenge(self, response: Answer, scope: str | None) -> bool:
        """Learn how to authenticate from a 401; True when a retry can succeed."""
        scheme, params = parse_challenge(response.headers.get("WWW-Authenticate", ""))
        if scheme == "bearer" and params.get("realm"):
            self._tokens[scope or ""] = self._fetch_token(params)
            return True
        if scheme == "basic" and not self._uses_google() and self._basic is None:
            credentials = self._env_credentials()
            if credentials:
                self._basic = credentials
                return True
        return False  # Google credentials went with the request already: they were refused

    def _fetch_token(self, params: dict[str, str]) -> str:
        query = {k: params[k] for k in ("service", "scope") if params.get(k)}
        realm = urljoin(self.base + "/", params["realm"])  # a relative realm is on the registry itself
        if self._uses_google() and not _may_receive_google_token(realm, self.base):
            # An access token opens every registry and bucket the identity can read: it goes only to
            # the registry's own host (as gcr.io's and Artifact Registry's realms are) or to Google.
            raise CredentialsWithheld(
                f"the token realm is on another host ({urlsplit(realm).netloc}); Google credentials are not sent there"
            )
        elsewhere = not same_host(realm, self.base)
        if elsewhere and self._token_realm == "same_host":
            raise CredentialsWithheld(
                f"the token realm is on another host ({urlsplit(realm).netloc}), and token_realm: same_host "
                "refuses that; nothing was sent there"
            )
        credentials = self._realm_credentials()
        if credentials and not self._uses_google() and not may_receive_credentials(realm, self.base):
            raise CredentialsWithheld(
                f"the token realm is on another host over plain HTTP ({urlsplit(realm).netloc}); "
                f"{self._credentials_env}_USERNAME/_PASSWORD go to a realm on another host only over HTTPS "
                "(or with registry and realm both on loopback); nothing was sent there"
            )
        if elsewhere:
            log_realm_once(self.base, realm, credentials is not None)
        url = realm + ("&" if "?" in realm else "?") + urlencode(query)
        headers = {"Authorization": _basic_header(*credentials)} if credentials else {}
        response = self._send("GET", url, headers, what="token request")
        if response.status_code != 200:
            raise RegistryError(
                response.status_code,
                f"token endpoint answered HTTP {response.status_code} for scope {params.get('scope', '(none)')!r}",
            )
        try:
            body = response.json()
            token = body.get("token") or body["access_token"]
        except (ValueError, KeyError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise RegistryError(200, "token endpoint answered without a token")
        return token

    # --- transport ------------------------------------------------------------------------

    def _send(self, method: str, url: str, headers: dict[str, str], *, what: str, limit: int | None = None) -> Answer:
        """One logical request with the rate cap and retries; the final answer, its body read up to ``limit``.

        Every failure of the transport becomes a ``RegistryError`` whose reason names the
        exception type only (a requests message may carry URLs and headers). Connection
        errors, timeouts and bodies broken off mid-way are retried like 5xx.
        """
        last: RegistryError | None = None
        for attempt in range(1, self._max_attempts + 1):
            self._limiter.wait()
            self.requests_made += 1
            try:
                with self._session.request(
                    method, url, headers=headers, timeout=HTTP_TIMEOUT, allow_redirects=True, stream=True
                ) as response:
                    status = response.status_code
                    wait = retry_after_seconds(response.headers.get("Retry-After")) if status == 429 else None
                    if status not in TRANSIENT_STATUSES:
                        data, too_large = _read_capped(response, MAX_JSON_BYTES if limit is None else limit)
                        return Answer(status, response.headers, data, too_large)
            except _RETRIED_ERRORS as err:
                last = RegistryError(None, f"{what}: {type(err).__name__}", attempt)
                self._backoff(attempt)
                continue
            except requests.RequestException as err:
                raise RegistryError(None, f"{what}: {type(err).__name__}", attempt) from None
            last = RegistryError(status, f"{what}: HTTP {status}", attempt)
            if attempt < self._max_attempts:
                if wait is not None:
                    log.info("%s: 429, waiting %.1fs as Retry-After asks", what, min(wait, MAX_RETRY_AFTER_S))
                    self._sleep(min(wait, MAX_RETRY_AFTER_S))
                else:
                    self._backoff(attempt)
        assert last is not None
        last.reason = f"{last.reason} (after {self._max_attempts} attempt(s))"
        raise last

    def _backoff(self, attempt: int) -> None:
        if attempt < self._max_attempts:
            self._sleep(random.uniform(0, min(30.0, 0.5 * 2 ** (attempt - 1))))

    def request(
        self, method: str, path: str, *, scope: str | None, accept: str | None = None, limit: int | None = None
    ) -> Answer:
        """An authenticated request to ``path`` (or an absolute URL on this registry)."""
        url = path if path.startswith(("http://", "https://")) else urljoin(self.base + "/", path.lstrip("/"))
        what = f"{method} {urlsplit(url).path}"
        headers = {"Accept": accept} if accept else {}
        auth = self._auth_header(scope)
        if auth:
            headers["Authorization"] = auth
        response = self._send(method, url, headers, what=what, limit=limit)
        if response.status_code != 401:
            return response
        # Learn from the challenge (a new or expired token, or Basic) and try once more.
        if not self._answer_challenge(response, scope):
            return response
        headers["Authorization"] = self._auth_header(scope)
        return self._send(method, url, headers, what=what, limit=limit)

    # --- API ------------------------------------------------------------------------------

    def ping(self) -> int:
        return self.request("GET", "/v2/", scope=None).status_code

    def catalog(self) -> Iterator[str]:
        """Every repository, following ``Link`` pagination."""
        url: str | None = f"{self.base}/v2/_catalog?n={CATALOG_PAGE}"
        seen: set[str] = set()
        pages: set[str] = set()
        while url:
            pages.add(url)
            response = self.request("GET", url, scope="registry:catalog:*")
            body = _json_or_raise(response, "catalog")
            repositories = body.get("repositories") or []
            if not isinstance(repositories, list):
                raise RegistryError(200, "catalog: 'repositories' is not a list")
            for repo in repositories:
                if isinstance(repo, str) and repo not in seen:
                    seen.add(repo)
                    yield repo
            url = next_link(response.headers.get("Link"), url)
            if url is not None and not same_origin(url, self.base):
                # Never send this registry's credentials to another host.
                raise RegistryError(200, "catalog: the next page is on another host; not followed")
            if url in pages:
                raise RegistryError(200, "catalog: the next page repeats an earlier one; stopped")

    def tags_list(self, repository: str) -> dict:
        response = self.request("GET", f"/v2/{repository}/tags/list", scope=_pull(repository))
        return _json_or_raise(response, f"tags of {repository}")

    def walk_gcr(self, root: str) -> Iterator[tuple[str, dict | RegistryError]]:
        """``(repository, tags/list body)`` for ``root`` and every ``child`` below it, depth first.

        A repository that cannot be listed comes as ``(repository, RegistryError)`` and the
        walk goes on with its siblings: one broken repository must not hide the rest.
        """
        stack, seen = [root.strip("/")], set()
        while stack:
            repo = stack.pop()
            if repo in seen:
                continue
            seen.add(repo)
            try:
                body = self.tags_list(repo)
            except RegistryError as err:
                yield repo, err
                continue
            children = body.get("child") or []
            if not isinstance(children, list):
                yield repo, RegistryError(200, f"tags of {repo}: 'child' is not a list; nested repositories not walked")
                children = []
            yield repo, body
            stack.extend(f"{repo}/{child}" for child in reversed(children) if isinstance(child, str) and child)

    def resolve(self, repository: str, reference: str) -> str:
        """The digest a tag points at (``Docker-Content-Digest`` of a HEAD; GET and hash if absent)."""
        response = self.request(
            "HEAD", f"/v2/{repository}/manifests/{reference}", scope=_pull(repository), accept=ACCEPT
        )
        if response.status_code != 200:
            raise RegistryError(
                response.status_code, f"HEAD manifest {repository}:{reference}: HTTP {response.status_code}"
            )
        digest = response.headers.get("Docker-Content-Digest")
        if digest and is_digest(digest):
            return digest
        fetched = self.fetch_manifest(repository, reference)
        return manifest_digest(fetched.data, fetched.media_type)

    def fetch_manifest(self, repository: str, reference: str) -> Fetched:
        """GET a manifest by digest (or tag) with every media type accepted; the exact bytes served."""
        response = self.request(
            "GET",
            f"/v2/{repository}/manifests/{reference}",
            scope=_pull(repository),
            accept=ACCEPT,
            limit=self._max_manifest_bytes,
        )
        if response.status_code != 200:
            raise RegistryError(
                response.status_code,
                f"GET manifest {repository}@{reference}: HTTP {response.status_code}{_error_code(response)}",
            )
        content_type = response.headers.get("Content-Type")
        if response.too_large:
            return Fetched(response.content, content_type, None, too_large=True)
        return Fetched(response.content, content_type, response.headers.get("Docker-Content-Digest"))

    def close(self) -> None:
        self._session.close()


GOOGLE_ACCESS_NEEDED = (
    "the identity needs roles/artifactregistry.reader on the repositories (gcloud auth application-default "
    "login, or GOOGLE_APPLICATION_CREDENTIALS)"
)


def access_problem(client: RegistryClient) -> str | None:
    """Before a scan: why this client's credentials cannot get into the registry, else None.

    Only missing credentials and a 401 or 403 (from ``/v2/`` or its token endpoint) count:
    they would fail every request of the scan the same way. Any other failure is left to
    the scan, which reports it per manifest.
    """
    import google.auth.exceptions

    env = client._credentials_env
    wanted = f"set {env}_USERNAME and {env}_PASSWORD"
    try:
        have_credentials = client._env_credentials() is not None
        status = client.ping()
    except RegistryError as err:
        if isinstance(err, CredentialsWithheld) or (err.status is None and err.reason.startswith("auth is 'basic'")):
            return err.reason
        if err.status in (401, 403) and client._uses_google():
            return f"refused the Google credentials ({err.reason}); {GOOGLE_ACCESS_NEEDED}"
        if err.status in (401, 403):
            return f"refused our credentials ({err.reason}); check {env}_USERNAME and {env}_PASSWORD"
        return None
    except google.auth.exceptions.GoogleAuthError as err:  # no application default credentials, or refused
        return f"no usable Google credentials ({type(err).__name__}); run `gcloud auth application-default login`"
    if status not in (401, 403):
        return None
    if client._uses_google():
        return f"GET /v2/ answered HTTP {status} to the Google credentials; {GOOGLE_ACCESS_NEEDED}"
    if have_credentials:
        return f"GET /v2/ answered HTTP {status}: the registry refused {env}_USERNAME / {env}_PASSWORD"
    return f"GET /v2/ answered HTTP {status}: the registry needs credentials; {wanted} (or credentials_env)"


def _may_receive_google_token(realm: str, base: str) -> bool:
    parts = urlsplit(realm)
    return same_origin(realm, base) or (parts.scheme == "https" and is_google_host(parts.netloc))


def _pull(repository: str) -> str:
    return f"repository:{repository}:pull"


def _basic_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _json_or_raise(response: Answer, what: str) -> dict:
    if response.status_code != 200:
        raise RegistryError(response.status_code, f"{what}: HTTP {response.status_code}{_error_code(response)}")
    if response.too_large:
        raise RegistryError(200, f"{what}: the answer is larger than {MAX_JSON_BYTES:,} bytes; not read")
    try:
        body = response.json()
    except ValueError as err:
        raise RegistryError(200, f"{what}: the answer is not JSON we accept: {err}") from None
    if not isinstance(body, dict):
        raise RegistryError(200, f"{what}: the answer is not a JSON object")
    return body


def _error_code(response: Answer) -> str:
    """The registry's error code (``MANIFEST_UNKNOWN`` …), never the body verbatim."""
    try:
        codes = [e.get("code") for e in response.json().get("errors", []) if isinstance(e, dict)]
    except Exception:
        return ""
    codes = [c for c in codes if isinstance(c, str)]
    return f" {', '.join(codes)}" if codes else ""


class RegistryStore:
    """A registry as a manifest source: units of work, the manifests in each, and fetch by digest.

    Units: one per repository (``repositories`` given, or every ``_catalog`` entry), or,
    for a GCR / Artifact Registry walk, one per repository found under each root with its
    ``manifest`` map (untagged manifests included). Failures become findings, never exceptions.
    """

    def __init__(
        self,
        index: int,
        client: RegistryClient,
        *,
        gcr_roots: tuple[str, ...] = (),
        repositories: tuple[str, ...] = (),
        bucket: str | None = None,
    ):
        self._index, self._client, self._bucket = index, client, bucket
        self._gcr_roots, self._repositories = gcr_roots, repositories
        self.host = client.host

    def name(self, repository: str) -> str:
        return f"{self.host}/{repository}"

    def units(self) -> Iterator[tuple]:
        if self._gcr_roots:
            for root in self._gcr_roots:
                for repo, body in self._client.walk_gcr(root):
                    if isinstance(body, RegistryError):
                        yield ("error", repo, body.status, body.reason)
                        continue
                    manifests, tags = body.get("manifest"), body.get("tags")
                    if manifests and isinstance(manifests, dict):
                        yield ("map", repo, manifests)
                    elif manifests:
                        yield ("error", repo, 200, f"tags of {repo}: 'manifest' is not a map of digests")
                    elif tags:  # tags without GCR's map: resolve them one by one, as for any registry
                        yield ("repo", repo)
            return
        if self._repositories:
            yield from (("repo", repo) for repo in self._repositories)
            return
        try:  # every repository of the pages read so far is scanned, even if a later page fails
            for repo in self._client.catalog():
                yield ("repo", repo)
        except RegistryError as err:
            yield ("error", "", err.status, err.reason)

    def enumerate(self, unit: tuple) -> Iterator[dict]:
        from pipeline.adapters.manifest_files import request
        from pipeline.core.findings import Kind, finding

        kind, repo = unit[0], unit[1]
        full = self.name(repo) if repo else self.host
        if kind == "error":
            yield finding(
                Kind.MANIFEST_UNAVAILABLE, repository=full, http_status=unit[2], detail=f"cannot enumerate: {unit[3]}"
            )
            return
        if kind == "repo":
            try:
                body = self._client.tags_list(repo)
            except RegistryError as err:
                yield finding(
                    Kind.MANIFEST_UNAVAILABLE,
                    repository=full,
                    http_status=err.status,
                    detail=f"cannot list tags: {err.reason}",
                )
                return
            if isinstance(body.get("manifest"), dict) and body["manifest"]:
                kind, unit = "map", ("map", repo, body["manifest"])
            else:
                if self._gcr_roots:  # a walk meant to list every manifest, untagged too: this one cannot
                    yield {"partial": full}
                by_digest: dict[str, set[str]] = {}
                tags = body.get("tags") or []
                for tag in tags if isinstance(tags, list) else []:
                    try:
                        digest = self._client.resolve(repo, tag)
                    except RegistryError as err:
                        yield finding(
                            Kind.MANIFEST_UNAVAILABLE,
                            repository=full,
                            reference=tag,
                            tags=[tag_name(full, tag)],
                            http_status=err.status,
                            detail=f"tag listed but its manifest cannot be read: {err.reason}",
                        )
                        continue
                    by_digest.setdefault(digest, set()).add(tag_name(full, tag))
                for digest, tag_names in sorted(by_digest.items()):
                    yield request(self._index, full, digest, tags=tag_names, bucket=self._bucket)
                return
        for digest, info in sorted(unit[2].items()):
            info = info if isinstance(info, dict) else {}
            if not is_digest(digest):
                yield finding(
                    Kind.INVALID_MANIFEST,
                    repository=full,
                    reference=str(digest)[:100],
                    detail="tags/list 'manifest' map key is not a sha256 digest",
                )
                continue
            tags = info.get("tag") if isinstance(info.get("tag"), list) else []
            media_type = info.get("mediaType") if isinstance(info.get("mediaType"), str) else None
            yield request(
                self._index,
                full,
                digest,
                tags=[tag_name(full, t) for t in tags if isinstance(t, str)],
                media_type=media_type,
                bucket=self._bucket,
            )

    def fetch(self, repository: str, digest: str, location: str | None) -> tuple[bytes, str | None, str | None]:
        from pipeline.adapters.manifest_files import Unavailable

        name = repository[len(self.host) + 1 :] if repository.startswith(self.host + "/") else repository
        try:
            fetched = self._client.fetch_manifest(name, digest)
        except RegistryError as err:
            raise Unavailable(err.status, err.reason) from None
        return fetched.data, fetched.media_type, fetched.header_digest
