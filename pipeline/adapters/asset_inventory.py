"""Cloud Asset Inventory's ``searchAllResources``: every bucket an organisation or folder holds.

Read-only, on the launcher, through google-auth's ``AuthorizedSession`` (no client library:
one paged GET is all we need). The API accepts only the ``cloud-platform`` scope; what the
identity may do is bounded by its role, ``roles/cloudasset.viewer`` (docs/fleet.md).

``REGISTRY_SCRUB_CLOUDASSET_ENDPOINT`` points the calls at another endpoint (the tests'
stand-in, tests/test_fleet_discovery.py); the credentials are still Application Default
Credentials, so the stand-in sees the same bearer token Google would.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

import google.auth
import google.auth.exceptions
import requests
from google.auth.transport.requests import AuthorizedSession

from pipeline.core.discovery import BUCKET_ASSET_TYPE, Scope, refusal

ENDPOINT = "https://cloudasset.googleapis.com"
ENDPOINT_ENV = "REGISTRY_SCRUB_CLOUDASSET_ENDPOINT"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]  # the only scope the API accepts
PAGE_SIZE = 500  # the API's maximum
TIMEOUT_S = 60.0
ATTEMPTS = 4
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


class DiscoveryError(Exception):
    """Cloud Asset Inventory refused or could not answer; the message is the one line to print."""


def endpoint_from(environ: Mapping[str, str]) -> str:
    return (environ.get(ENDPOINT_ENV) or "").strip().rstrip("/") or ENDPOINT


def make_session() -> AuthorizedSession:
    try:
        credentials, _ = google.auth.default(scopes=SCOPES)
    except google.auth.exceptions.DefaultCredentialsError as err:
        raise DiscoveryError(
            f"Cloud Asset Inventory: no Google Cloud credentials ({err}); run `gcloud auth application-default login`"
        ) from None
    return AuthorizedSession(credentials)


def search_buckets(session: requests.Session, endpoint: str, scope: Scope) -> Iterator[dict[str, Any]]:
    """Every ``storage.googleapis.com/Bucket`` result under ``scope``, page after page.

    No ``query``: its words match tokens of the names, and a bucket it missed would be missed
    silently; the GCR names are picked out of all buckets instead (``core.discovery``).
    """
    url = f"{endpoint}/v1/{scope.name}:searchAllResources"
    params: dict[str, Any] = {"assetTypes": BUCKET_ASSET_TYPE, "pageSize": PAGE_SIZE}
    seen_tokens: set[str] = set()
    while True:
        body = _get(session, url, params, scope)
        results = body.get("results") or []
        if not isinstance(results, list):
            raise DiscoveryError(f"{scope.where}: Cloud Asset Inventory answered results that are not a list")
        yield from results
        token = body.get("nextPageToken")
        if not token:
            return
        if token in seen_tokens:  # a server that hands the same page back would loop for ever
            raise DiscoveryError(f"{scope.where}: Cloud Asset Inventory repeated page token {token!r}")
        seen_tokens.add(token)
        params["pageToken"] = token


def _get(session: requests.Session, url: str, params: dict[str, Any], scope: Scope) -> dict[str, Any]:
    for attempt in range(1, ATTEMPTS + 1):
        try:
            response = session.get(url, params=params, timeout=TIMEOUT_S)
        except google.auth.exceptions.GoogleAuthError as err:
            raise DiscoveryError(f"{scope.where}: no usable Google Cloud credentials ({err})") from None
        except requests.RequestException as err:
            if attempt == ATTEMPTS:
                raise DiscoveryError(
                    f"{scope.where}: cannot reach Cloud Asset Inventory at {url} ({type(err).__name__})"
                ) from None
            time.sleep(min(8.0, 0.5 * 2**attempt))
            continue
        if response.status_code in TRANSIENT_STATUSES and attempt < ATTEMPTS:
            time.sleep(min(8.0, 0.5 * 2**attempt))
            continue
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200:
            raise DiscoveryError(refusal(scope, response.status_code, body))
        if not isinstance(body, dict):
            raise DiscoveryError(f"{scope.where}: Cloud Asset Inventory answered something other than a JSON object")
        return body
    raise AssertionError("unreachable")  # the loop returns or raises
