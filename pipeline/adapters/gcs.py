"""Cloud Storage: clients, sharded listing, and streaming reads hashed on the fly.

Reads go straight to the JSON API's media endpoint with ``Accept-Encoding: gzip``
and undecoded bodies, so the bytes hashed are the bytes stored (no decompressive
transcoding), in chunks of a chosen size, pinned to the listed generation, and
resumed with a ``Range`` after a transient failure instead of starting over.
This module only moves bytes; what they prove (complete, confirmed, unstable)
is decided in ``pipeline.core.read_verdict``. See docs/reliability.md.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import itertools
import json
import logging
import os
import random
import socket
import ssl
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import replace
from urllib.parse import quote, urlsplit

import google.auth
import google.auth.transport.requests
import google_crc32c
import requests
import requests.certs
import urllib3
import urllib3.exceptions
from google.auth.credentials import AnonymousCredentials
from google.auth.transport.requests import AuthorizedSession
from google.cloud import storage
from google.cloud._helpers import _rfc3339_nanos_to_datetime
from google.cloud.storage import retry as storage_retry
from requests.adapters import HTTPAdapter

from pipeline.adapters.media_http import MediaConnections
from pipeline.adapters.registry import retry_after_seconds
from pipeline.compat import parse_iso_datetime
from pipeline.core.blobs import ListedObject, ReadFailure, ReadResult
from pipeline.core.layer_sniff import ChunkObserver
from pipeline.core.read_verdict import (
    DEFAULT_MIN_READ_RATE,
    DEFAULT_READ_TIMEOUT_S,
    CompleteRead,
    Transfer,
    Verdict,
    attempt_deadline,
    body_outcome,
    decide,
    plan_body,
    retry_wait,
    server_crc32c,
)
from pipeline.core.shards import KeyRange

log = logging.getLogger(__name__)

GCS_ENDPOINT = "https://storage.googleapis.com"
READ_ONLY_SCOPE = "https://www.googleapis.com/auth/devstorage.read_only"
LOCAL_PROJECT = "registry-scrub-local"

# 408 and 429 are throttling or timeouts; 5xx are GCS's own transient failures.
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
TRANSIENT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    # Raised by the raw body reads: truncated stream (IncompleteRead), read timeout, reset.
    urllib3.exceptions.HTTPError,
    ConnectionError,
)
TIMEOUT_ERRORS = (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)
# Seconds to connect; each socket read waits at most scan.read_timeout, and no longer than
# what is left of the attempt's deadline.
CONNECT_TIMEOUT_S = 10.0
# An error's body is read only this far for its message: a hostile server's page is not kept.
ERROR_BODY_LIMIT = 64 * 1024
USER_AGENT = "registry-scrub (gzip)"


def make_client(emulator_endpoint: str | None = None, project: str | None = None) -> storage.Client:
    """A read-scoped client; against an emulator, anonymous so google-auth never probes for credentials."""
    if emulator_endpoint:
        return storage.Client(
            project=project or LOCAL_PROJECT,
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": emulator_endpoint.rstrip("/")},
        )
    credentials, default_project = google.auth.default(scopes=[READ_ONLY_SCOPE])
    return storage.Client(project=project or default_project, credentials=credentials)


def make_session(emulator_endpoint: str | None, pool_size: int) -> tuple[requests.Session, str]:
    """An HTTP session sized for ``pool_size`` concurrent reads, and the endpoint it talks to."""
    if emulator_endpoint:
        session: requests.Session = requests.Session()
        endpoint = emulator_endpoint.rstrip("/")
    else:
        credentials, _ = google.auth.default(scopes=[READ_ONLY_SCOPE])
        session = AuthorizedSession(credentials)
        endpoint = GCS_ENDPOINT
    return _pooled(session, pool_size), endpoint


class _ReadAdapter(HTTPAdapter):
    """requests' adapter, also holding the media reads' own connections (``media_http``),
    so that closing the session closes them too."""

    def __init__(self, pool_size: int):
        super().__init__(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        self.media_pools: dict[tuple[str, str, int], MediaConnections] = {}

    def close(self) -> None:
        super().close()
        pools, self.media_pools = self.media_pools, {}
        for pool in pools.values():
            pool.close()


def _pooled(session: requests.Session, pool_size: int) -> requests.Session:
    """``session`` keeping up to ``pool_size`` connections, and never retrying on its own:
    the read protocol counts every attempt."""
    adapter = _ReadAdapter(pool_size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _listing_fault(err: BaseException) -> bool:
    """What the client retries, and a page that does not parse: a body cut by a clean close
    (no ``Content-Length`` to tell it was short) ends mid-JSON, as transient as a reset."""
    return storage_retry._should_retry(err) or isinstance(err, json.JSONDecodeError)


# The client's own policy (backoff and overall deadline) with the predicate above.
LISTING_RETRY = storage_retry.DEFAULT_RETRY.with_predicate(_listing_fault)


def list_range(client: storage.Client, bucket: str, key_range: KeyRange) -> Iterator[ListedObject]:
    """Every object of ``bucket`` in ``key_range``.

    Offsets narrow the listing on GCS; the ``contains`` filter keeps the range exact
    against stores that honour only the prefix.
    """
    blobs = client.list_blobs(
        bucket,
        prefix=key_range.prefix,
        start_offset=key_range.start,
        end_offset=key_range.end,
        fields="items(name,generation,size,crc32c,storageClass,timeCreated,updated),nextPageToken",
        retry=LISTING_RETRY,
    )
    # The resources as GCS sent them: building a Blob for each costs more than the listing itself.
    blobs.item_to_value = _resource
    for item in blobs:
        name = item["name"]
        if key_range.contains(name):
            generation = item.get("generation")
            yield ListedObject(
                bucket=bucket,
                name=name,
                generation=None if generation is None else int(generation),
                size=int(item.get("size") or 0),
                crc32c=item.get("crc32c"),
                storage_class=item.get("storageClass"),
                time_created=_rfc3339(_listed_time(item.get("timeCreated"))),
                updated=_rfc3339(_listed_time(item.get("updated"))),
            )


def _resource(iterator, item: dict) -> dict:
    return item


def _listed_time(value: str | None):
    """A resource's RFC 3339 timestamp as the datetime a Blob would give.

    GCS writes UTC with a ``Z``, which ``parse_iso_datetime`` reads exactly as the Blob's parser
    does (nanoseconds truncated to microseconds) in a hundredth of its time: two per object.
    Anything else goes to the Blob's own parser, errors included.
    """
    if value is None:
        return None
    if value.endswith("Z"):
        try:
            return parse_iso_datetime(value)
        except ValueError:
            pass
    return _rfc3339_nanos_to_datetime(value)


def estimate_objects(client: storage.Client, bucket: str, prefix: str, up_to: int) -> int:
    """About how many objects ``prefix`` holds, when that is at most about ``up_to``; more otherwise.

    Blob names spread evenly over the first hex digit of their digest, so one sixteenth
    of the names is listed (and no more than ``up_to // 16 + 1`` of them), never the
    whole bucket: the estimate is sixteen times that count.
    """
    limit = up_to // 16 + 1
    sample = client.list_blobs(bucket, prefix=f"{prefix}sha256:0", max_results=limit, fields="items(name)")
    sample.item_to_value = _resource
    # max_results sizes the pages asked for; a store that ignores it (the emulator) is cut short here.
    return 16 * sum(1 for _ in itertools.islice(sample, limit))


def prefix_size(client: storage.Client, bucket: str, prefix: str, up_to: int) -> dict:
    """Objects and bytes under ``prefix`` from the listing alone (no object is read).

    Exact when the prefix holds at most ``up_to`` objects (``basis: listed``). Beyond that, the
    names under ``sha256:0`` (one sixteenth, as blob names spread evenly over the first hex
    digit) are listed, at most ``up_to`` of them, and multiplied by 16 (``basis: sampled``);
    when even that sixteenth is longer, the first ``up_to`` objects are a lower bound (``basis: at least``).
    """

    def listed(under: str) -> tuple[int, int, bool]:
        pages = client.list_blobs(bucket, prefix=under, fields="items(size),nextPageToken")
        pages.item_to_value = _resource
        objects = size = 0
        for item in itertools.islice(pages, up_to + 1):
            if objects == up_to:
                return objects, size, False
            objects += 1
            size += int(item.get("size") or 0)
        return objects, size, True

    objects, size, complete = listed(prefix)
    if complete:
        return {"objects": objects, "bytes": size, "basis": "listed"}
    sampled, sampled_size, complete = listed(f"{prefix}sha256:0")
    if complete:
        return {"objects": 16 * sampled, "bytes": 16 * sampled_size, "basis": "sampled"}
    return {"objects": objects, "bytes": size, "basis": "at least"}  # what the first listing counted


def _rfc3339(moment) -> str | None:
    """A listing timestamp as plain text (rows must be JSON), UTC with a ``Z``."""
    if moment is None:
        return None
    return moment.astimezone(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def bucket_facts(client: storage.Client, bucket: str) -> dict:
    """Location, default storage class and soft-delete retention of one bucket (a bucket GET).

    Needs ``storage.buckets.get``, which ``roles/storage.objectViewer`` does not grant: a
    refusal is recorded as the reason, never fatal. A field the server leaves out stays None.
    """
    from google.api_core import exceptions as gapi

    facts: dict = {
        "location": None,
        "location_type": None,
        "storage_class": None,
        "soft_delete_retention_seconds": None,
        "soft_delete_reported": False,
        "error": None,
    }
    try:
        found = client.get_bucket(bucket)
    except gapi.GoogleAPICallError as err:
        facts["error"] = f"bucket GET answered HTTP {getattr(err, 'code', None)}: {err.message}"
        return facts
    except Exception as err:  # metadata is informative only: it must never stop a scan
        facts["error"] = f"bucket GET failed: {type(err).__name__}: {err}"
        return facts
    facts["location"] = found.location
    facts["location_type"] = found.location_type
    facts["storage_class"] = found.storage_class
    policy = found._properties.get("softDeletePolicy")
    if isinstance(policy, dict) and "retentionDurationSeconds" in policy:
        facts["soft_delete_reported"] = True
        try:
            facts["soft_delete_retention_seconds"] = int(policy["retentionDurationSeconds"])
        except (TypeError, ValueError):
            facts["soft_delete_reported"] = False
    return facts


def discover_gcr_buckets(
    client: storage.Client, project: str, is_gcr_bucket: Callable[[str], bool], **call
) -> list[str]:
    """The GCR buckets of ``project``; ``call`` passes the client's ``retry``/``timeout`` through."""
    return sorted(b.name for b in client.list_buckets(project=project, **call) if is_gcr_bucket(b.name))


def media_url(endpoint: str, obj: ListedObject) -> str:
    url = f"{endpoint}/download/storage/v1/b/{quote(obj.bucket, safe='')}/o/{quote(obj.name, safe='')}?alt=media"
    if obj.generation is not None:
        url += f"&generation={obj.generation}"
    return url


class _Digests:
    """SHA-256 and crc32c of one stream, fed chunk by chunk; ``observer`` sees the same bytes, and
    a ``reset()`` each time the digests start over from byte 0."""

    def __init__(self, observer: ChunkObserver | None = None) -> None:
        self.sha256 = hashlib.sha256()
        self.crc32c = google_crc32c.Checksum()
        self.size = 0
        self.observer = observer
        if observer is not None:
            observer.reset()

    def update(self, chunk: bytes) -> None:
        self.sha256.update(chunk)
        self.crc32c.update(chunk)
        self.size += len(chunk)
        if self.observer is not None:
            self.observer.update(chunk)

    def complete_read(self, fresh: bool, server_crc32c: str | None) -> CompleteRead:
        return CompleteRead(
            sha256=self.sha256.hexdigest(),
            crc32c=base64.b64encode(self.crc32c.digest()).decode("ascii"),
            size=self.size,
            fresh=fresh,
            server_crc32c=server_crc32c,
        )


class _Transient(Exception):
    def __init__(self, status: int | None, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.retry_after = retry_after


def fresh_session(session: requests.Session) -> requests.Session:
    """A session authorised as ``session`` is, with no connection of its own yet."""
    fresh = AuthorizedSession(session.credentials) if isinstance(session, AuthorizedSession) else requests.Session()
    return _pooled(fresh, 1)


def read_and_hash(
    session: requests.Session,
    endpoint: str,
    obj: ListedObject,
    *,
    chunk_size: int,
    max_attempts: int,
    expected_sha256: str,
    read_timeout: float = DEFAULT_READ_TIMEOUT_S,
    min_read_rate: int = DEFAULT_MIN_READ_RATE,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_bytes: Callable[[int], None] | None = None,
    observer: ChunkObserver | None = None,
) -> ReadResult:
    """Stream one object through SHA-256 and crc32c in constant memory, and say what the reads prove.

    A read whose SHA-256 is ``expected_sha256`` (hex: the digest the name
    claims) settles it at once, so a healthy object costs one GET.
    Any other complete read is read again from byte 0 on a fresh connection
    (``pipeline.core.read_verdict.decide``), up to ``MAX_READS`` complete reads.
    Each read gets ``max_attempts`` attempts for transient failures, each
    attempt a deadline of ``read_timeout + size / min_read_rate`` seconds.

    ``observer`` (recovery's LayerSniffer) sees every chunk hashed, and a ``reset()``
    whenever the digests restart from byte 0; it ends holding the read that settled it.

    Never raises for the object's own sake: a 404 is ``VANISHED``; disagreeing
    reads are ``UNSTABLE``; anything that still fails after ``max_attempts`` (or
    fails permanently) is ``UNREADABLE``.
    """
    url = media_url(endpoint, obj)
    reads: list[CompleteRead] = []
    attempts = 0
    # decide() settles every object by its MAX_READS-th complete read.
    for number in itertools.count(1):
        # A read after the first checks the one before: from byte 0, on a connection of its own.
        own = None if number == 1 else fresh_session(session)
        try:
            used, outcome = _read_once(
                own or session,
                url,
                obj,
                chunk_size=chunk_size,
                max_attempts=max_attempts,
                read_timeout=read_timeout,
                deadline_s=attempt_deadline(obj.size, read_timeout, min_read_rate),
                sleep=sleep,
                clock=clock,
                on_bytes=on_bytes,
                fresh=own is not None,
                observer=observer,
            )
        finally:
            if own is not None:
                own.close()
        attempts += used
        if isinstance(outcome, ReadResult):
            reason = outcome.reason
            if reads:
                reason = f"{reason}; {len(reads)} earlier complete read(s) did not match the name, unconfirmed"
            return replace(outcome, reason=reason, attempts=attempts, reads=len(reads))
        reads.append(outcome)
        decision = decide(expected_sha256, obj.crc32c, reads)
        if decision.verdict in (Verdict.VERIFIED, Verdict.CONFIRMED):
            read = decision.read
            return ReadResult(
                sha256=read.sha256,
                crc32c=read.crc32c,
                size=read.size,
                attempts=attempts,
                reads=len(reads),
                server_crc32c=read.server_crc32c,
            )
        if decision.verdict is Verdict.UNSTABLE:
            return ReadResult(failure=ReadFailure.UNSTABLE, reason=decision.reason, attempts=attempts, reads=len(reads))
        log.info("reading %s again from byte 0 on a fresh connection: %s", url, decision.reason)  # pragma: no mutate


def _read_once(
    session: requests.Session,
    url: str,
    obj: ListedObject,
    *,
    chunk_size: int,
    max_attempts: int,
    read_timeout: float,
    deadline_s: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    on_bytes: Callable[[int], None] | None,
    fresh: bool,
    observer: ChunkObserver | None = None,
) -> tuple[int, CompleteRead | ReadResult]:
    """One complete read from byte 0, resumed with ``Range`` where that is valid: (attempts, outcome)."""
    digests = _Digests(observer)
    claimed_crc32c: str | None = None
    last: _Transient | None = None
    for attempt in range(1, max_attempts + 1):
        if attempt > 1:
            sleep(retry_wait(attempt, last.status, last.retry_after, random.random()))
        asked_from = digests.size
        headers = {"Accept-Encoding": "gzip"}
        if asked_from:
            headers["Range"] = f"bytes={asked_from}-"
        deadline = clock() + deadline_s
        try:
            with _open(session, url, headers, read_timeout, deadline, clock) as response:
                status = response.status
                if status == 404:
                    return attempt, ReadResult(
                        failure=ReadFailure.VANISHED,
                        http_status=404,
                        reason=(
                            f"generation {obj.generation} not found when read: deleted or overwritten since listing"
                            if obj.generation is not None
                            else "object not found when read"
                        ),
                    )
                if status in TRANSIENT_STATUSES:
                    retry_after = retry_after_seconds(response.headers.get("Retry-After"))
                    raise _Transient(status, f"HTTP {status} {response.reason}", retry_after)
                if status not in (200, 206):
                    return attempt, ReadResult(
                        failure=ReadFailure.UNREADABLE,
                        http_status=status,
                        reason=f"HTTP {status} {response.reason}: {_error_text(response)}",
                    )
                plan = plan_body(asked_from, status, response.headers.get("Content-Range"), obj.size)
                if plan.refused:
                    # The server mishandles Range: the next attempt asks for the whole object.
                    digests = _Digests(observer)
                    raise _Transient(status, plan.problem)
                if plan.offset != asked_from:
                    digests = _Digests(observer)  # a 200 to a ranged request: the body starts at byte 0
                crc32c = server_crc32c(response.headers.get("x-goog-hash"))
                if crc32c is not None and (claimed_crc32c is None or crc32c != obj.crc32c):
                    claimed_crc32c = crc32c
                try:
                    _stream(
                        response, digests, obj.size, chunk_size, read_timeout, deadline, deadline_s, clock, on_bytes
                    )
                    transfer = body_outcome(digests.size, obj.size)
                    if transfer is not Transfer.COMPLETE:
                        raise _Transient(
                            status, f"{transfer} body: {digests.size} bytes received, the listing says {obj.size}"
                        )
                except (_Transient, *TRANSIENT_ERRORS):
                    if not plan.prefix_trusted or digests.size > obj.size:
                        digests = _Digests(observer)
                    raise
            return attempt, digests.complete_read(fresh, claimed_crc32c)
        except _Transient as err:
            last = err
        except (urllib3.exceptions.NewConnectionError, ConnectionRefusedError) as err:
            # urllib3 files a refused connection under connect timeouts; requests called it what it is.
            last = _Transient(None, f"ConnectionError: {err}")
        except TIMEOUT_ERRORS:
            past_deadline = clock() >= deadline
            last = _Transient(None, timeout_reason(past_deadline, deadline_s, read_timeout, digests.size, obj.size))
        except TRANSIENT_ERRORS as err:
            last = _Transient(None, f"{type(err).__name__}: {err}")
        except Exception as err:
            # One object must never take the run down with it: record it and go on.
            log.warning("unexpected error reading %s", url, exc_info=True)  # pragma: no mutate
            return attempt, ReadResult(failure=ReadFailure.UNREADABLE, reason=f"{type(err).__name__}: {err}")
        log.debug("retrying %s after attempt %d: %s", url, attempt, last.reason)  # pragma: no mutate
    return max_attempts, ReadResult(
        failure=ReadFailure.UNREADABLE,
        http_status=last.status,
        reason=last.reason,
    )


def timeout_reason(past_deadline: bool, deadline_s: float, read_timeout: float, received: int, size: int) -> str:
    """What ended an attempt that timed out: its whole deadline (a server that sends a byte now and
    then, headers included), or one socket read that waited ``read_timeout`` for nothing."""
    if past_deadline:
        return f"timeout: the attempt passed its {deadline_s:.1f} s deadline after {received} of {size} bytes"
    return f"timeout: no byte for {read_timeout:g} s after {received} of {size} bytes"


def _stream(
    response: urllib3.BaseHTTPResponse,
    digests: _Digests,
    listed_size: int,
    chunk_size: int,
    read_timeout: float,
    deadline: float,
    deadline_s: float,
    clock: Callable[[], float],
    on_bytes: Callable[[int], None] | None,
) -> None:
    """Hash the body until it ends, runs past the listed size, or the attempt's deadline passes.

    ``read1`` returns after a single socket read, and each socket read may wait
    only until the deadline, so a server that sends a byte now and then (which
    resets every per-read timeout) cannot hold an attempt past its deadline.
    """
    sock = _body_socket(response)
    while True:
        left = deadline - clock()
        if left <= 0:
            raise _Transient(None, timeout_reason(True, deadline_s, read_timeout, digests.size, listed_size))
        if sock is not None:
            sock.settimeout(min(read_timeout, left))
        # One byte past the listed end is enough to know the body is too long.
        chunk = response.read1(min(chunk_size, listed_size - digests.size + 1), decode_content=False)
        if not chunk:
            return
        digests.update(chunk)
        if on_bytes:
            on_bytes(len(chunk))
        if digests.size > listed_size:
            return


def _body_socket(raw) -> socket.socket | None:
    """The socket a streamed body arrives on, when its timeout can still be set.

    None when the server will close after the response (HTTP/1.0, the emulator):
    http.client then detaches the socket from the connection, and only the
    per-read timeout bounds each socket read (the deadline is still checked
    between reads).
    """
    return getattr(getattr(raw, "connection", None), "sock", None)


def _error_text(response: urllib3.BaseHTTPResponse) -> str:
    body = response.read(ERROR_BODY_LIMIT, decode_content=True) or b""
    try:
        return json.loads(body)["error"]["message"]
    except Exception:
        return body.decode("utf-8", errors="replace")[:200]


def _open(
    session: requests.Session,
    url: str,
    headers: dict[str, str],
    read_timeout: float,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
):
    """GET ``url`` with a streamed, undecoded body, on connections kept for the media reads.

    The request goes out on the read path's own HTTP/1.1 client (``media_http``): requests'
    per-call work (merging settings, reading proxy variables from the environment, re-parsing
    the URL) and urllib3's and http.client's (headers parsed with the ``email`` package) cost
    several times the CPU of reading a small blob. What requests would decide (TLS
    verification, client certificate, proxy) is resolved once per session instead
    (``_direct_pool``); a session that needs a proxy takes requests' own path, whose
    response (urllib3's) reads the same way.
    """
    pool = _direct_pool(session, url)
    if pool is None:
        return session.get(url, headers=headers, stream=True, timeout=(CONNECT_TIMEOUT_S, read_timeout)).raw
    if isinstance(session, AuthorizedSession):
        # What AuthorizedSession.request does first: a token, refreshed ahead of its expiry.
        session.credentials.before_request(_auth_request(session), "GET", url, headers)
    parts = urlsplit(url)
    headers.setdefault("User-Agent", USER_AGENT)
    path = f"{parts.path}?{parts.query}" if parts.query else parts.path
    return pool.get(path, headers, read_timeout, deadline, clock)


_NO_POOL = object()


def _direct_pool(session: requests.Session, url: str) -> MediaConnections | None:
    """The media connections for ``url``'s host, set up once per session as requests would
    connect (its TLS verification and client certificate); None when the environment
    names a proxy for it."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    key = (scheme, parts.hostname or "", parts.port or (443 if scheme == "https" else 80))
    adapter = session.get_adapter(url)
    pools = adapter.media_pools if isinstance(adapter, _ReadAdapter) else _session_pools(session)
    pool = pools.get(key)
    if pool is None:
        settings = session.merge_environment_settings(url, {}, None, None, None)
        if any(settings["proxies"].values()):
            pool = _NO_POOL
        else:
            size = getattr(adapter, "_pool_maxsize", 1)
            context = _tls_context(settings["verify"], settings["cert"]) if scheme == "https" else None
            pool = MediaConnections(scheme, key[1], key[2], size, context, CONNECT_TIMEOUT_S)
        pools[key] = pool
    return None if pool is _NO_POOL else pool


def _session_pools(session: requests.Session) -> dict:
    """Media connections of a session not made by ``_pooled``: closed when the session is collected."""
    pools = getattr(session, "_registry_scrub_media", None)
    if pools is None:
        pools = session._registry_scrub_media = {}
        weakref.finalize(session, _close_pools, pools)
    return pools


def _close_pools(pools: dict) -> None:
    for pool in pools.values():
        if pool is not _NO_POOL:
            pool.close()


def _tls_context(verify, cert) -> ssl.SSLContext:
    """The TLS settings requests would use: its CA bundle (certifi's), a bundle or folder named
    by ``verify`` (REQUESTS_CA_BUNDLE included), or no verification for ``verify=False``."""
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        where = verify if isinstance(verify, str) else requests.certs.where()
        context = (
            ssl.create_default_context(capath=where)
            if os.path.isdir(where)
            else ssl.create_default_context(cafile=where)
        )
    if cert:
        context.load_cert_chain(*cert) if isinstance(cert, tuple) else context.load_cert_chain(cert)
    return context


def _auth_request(session: AuthorizedSession) -> google.auth.transport.requests.Request:
    request = getattr(session, "_auth_request", None)
    return request if request is not None else google.auth.transport.requests.Request()
