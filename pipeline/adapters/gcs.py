"""Cloud Storage: clients, sharded listing, and streaming reads hashed on the fly.

Reads go straight to the JSON API's media endpoint with ``Accept-Encoding: gzip``
and undecoded bodies, so the bytes hashed are the bytes stored (no decompressive
transcoding), in chunks of a chosen size, pinned to the listed generation, and
resumed with a ``Range`` after a transient failure instead of starting over.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import logging
import random
import time
from collections.abc import Callable, Iterator
from urllib.parse import quote

import google.auth
import google_crc32c
import requests
import urllib3.exceptions
from google.auth.credentials import AnonymousCredentials
from google.auth.transport.requests import AuthorizedSession
from google.cloud import storage
from requests.adapters import HTTPAdapter

from pipeline.core.blobs import ListedObject, ReadFailure, ReadResult
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
# (connect, read) seconds: a stalled read is retried rather than waited on forever.
HTTP_TIMEOUT = (10, 120)


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
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session, endpoint


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
    )
    for blob in blobs:
        if key_range.contains(blob.name):
            yield ListedObject(
                bucket=bucket,
                name=blob.name,
                generation=blob.generation,
                size=int(blob.size or 0),
                crc32c=blob.crc32c,
                storage_class=blob.storage_class,
                time_created=_rfc3339(blob.time_created),
                updated=_rfc3339(blob.updated),
            )


def _rfc3339(moment) -> str | None:
    """A listing timestamp as plain text (rows must be JSON), UTC with a ``Z``."""
    if moment is None:
        return None
    return moment.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


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


def discover_gcr_buckets(client: storage.Client, project: str, is_gcr_bucket: Callable[[str], bool]) -> list[str]:
    return sorted(b.name for b in client.list_buckets(project=project) if is_gcr_bucket(b.name))


def media_url(endpoint: str, obj: ListedObject) -> str:
    url = f"{endpoint}/download/storage/v1/b/{quote(obj.bucket, safe='')}/o/{quote(obj.name, safe='')}?alt=media"
    if obj.generation is not None:
        url += f"&generation={obj.generation}"
    return url


class _Digests:
    """SHA-256 and crc32c of one stream, fed chunk by chunk."""

    def __init__(self) -> None:
        self.sha256 = hashlib.sha256()
        self.crc32c = google_crc32c.Checksum()
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self.sha256.update(chunk)
        self.crc32c.update(chunk)
        self.size += len(chunk)

    def result(self, attempts: int) -> ReadResult:
        return ReadResult(
            sha256=self.sha256.hexdigest(),
            crc32c=base64.b64encode(self.crc32c.digest()).decode("ascii"),
            size=self.size,
            attempts=attempts,
        )


class _Transient(Exception):
    def __init__(self, status: int | None, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def read_and_hash(
    session: requests.Session,
    endpoint: str,
    obj: ListedObject,
    *,
    chunk_size: int,
    max_attempts: int,
    sleep: Callable[[float], None] = time.sleep,
    on_bytes: Callable[[int], None] | None = None,
) -> ReadResult:
    """Stream one object through SHA-256 and crc32c in constant memory.

    Never raises for the object's own sake: a 404 is ``VANISHED``, anything that
    still fails after ``max_attempts`` (or fails permanently) is ``UNREADABLE``.
    """
    digests = _Digests()
    url = media_url(endpoint, obj)
    last: _Transient | None = None
    for attempt in range(1, max_attempts + 1):
        if attempt > 1:
            # Exponential backoff with full jitter, as GCS's retry guidance asks.
            sleep(random.uniform(0, min(32.0, 0.5 * 2 ** (attempt - 2))))
        headers = {"Accept-Encoding": "gzip"}
        if digests.size:
            headers["Range"] = f"bytes={digests.size}-"
        try:
            with session.get(url, headers=headers, stream=True, timeout=HTTP_TIMEOUT) as response:
                status = response.status_code
                if status == 404:
                    return ReadResult(
                        failure=ReadFailure.VANISHED,
                        http_status=404,
                        reason=(
                            f"generation {obj.generation} not found when read: deleted or overwritten since listing"
                            if obj.generation is not None
                            else "object not found when read"
                        ),
                        attempts=attempt,
                    )
                if status in TRANSIENT_STATUSES:
                    raise _Transient(status, f"HTTP {status} {response.reason}")
                if digests.size and status == 200:
                    # The server ignored the Range: start the digests over on the whole body.
                    digests = _Digests()
                elif status not in (200, 206):
                    return ReadResult(
                        failure=ReadFailure.UNREADABLE,
                        http_status=status,
                        reason=f"HTTP {status} {response.reason}: {_error_text(response)}",
                        attempts=attempt,
                    )
                while True:
                    chunk = response.raw.read(chunk_size, decode_content=False)
                    if not chunk:
                        break
                    digests.update(chunk)
                    if on_bytes:
                        on_bytes(len(chunk))
            return digests.result(attempt)
        except _Transient as err:
            last = err
        except TRANSIENT_ERRORS as err:
            last = _Transient(None, f"{type(err).__name__}: {err}")
        except Exception as err:
            # One object must never take the run down with it: record it and go on.
            log.warning("unexpected error reading %s", url, exc_info=True)
            return ReadResult(failure=ReadFailure.UNREADABLE, reason=f"{type(err).__name__}: {err}", attempts=attempt)
        log.debug("retrying %s after attempt %d: %s", url, attempt, last.reason)
    return ReadResult(
        failure=ReadFailure.UNREADABLE, http_status=last.status, reason=last.reason, attempts=max_attempts
    )


def _error_text(response: requests.Response) -> str:
    try:
        return response.json()["error"]["message"]
    except Exception:
        return (response.text or "")[:200]
