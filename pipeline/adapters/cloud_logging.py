"""Cloud Logging's ``entries.write``: the structured outcome entries of a run on Dataflow.

A plain REST call with google-auth's ``AuthorizedSession`` (both already dependencies of
the GCS adapter); Dataflow's worker service account may write logs (``roles/dataflow.worker``).
An endpoint other than Google's is a local stand-in and is called with anonymous credentials,
as the storage emulator is.
"""

from __future__ import annotations

from typing import Any

ENDPOINT = "https://logging.googleapis.com"
SCOPE = "https://www.googleapis.com/auth/logging.write"
TIMEOUT_S = 30


class WriteFailed(Exception):
    """Cloud Logging refused or did not answer; the message says which."""


def make_session(endpoint: str = ENDPOINT):
    import google.auth
    from google.auth.credentials import AnonymousCredentials
    from google.auth.transport.requests import AuthorizedSession

    if endpoint.rstrip("/") != ENDPOINT:
        return AuthorizedSession(AnonymousCredentials())
    credentials, _ = google.auth.default(scopes=[SCOPE])
    return AuthorizedSession(credentials)


def write_entries(session, entries: list[dict[str, Any]], endpoint: str = ENDPOINT) -> None:
    if not entries:
        return
    url = f"{endpoint.rstrip('/')}/v2/entries:write"
    try:
        response = session.post(url, json={"entries": entries}, timeout=TIMEOUT_S)
    except Exception as err:  # a connection refused, a timeout: one line, not the transport's frames
        raise WriteFailed(f"{url}: {type(err).__name__}: {err}") from None
    if response.status_code >= 300:
        raise WriteFailed(f"{url}: HTTP {response.status_code}: {response.text[:300]}")
