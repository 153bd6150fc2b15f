"""Which of the buckets Cloud Asset Inventory found are GCR buckets, and what to say when it refuses.

Pure: the adapter (``pipeline.adapters.asset_inventory``) does the HTTP; this module reads
what ``searchAllResources`` answered (v1, ``ResourceSearchResult``: ``name`` is the full
resource name ``//storage.googleapis.com/BUCKET``, ``project`` is ``projects/NUMBER``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.values import gcr_project

API = "cloudasset.googleapis.com"
ROLE = "roles/cloudasset.viewer"
PERMISSION = "cloudasset.assets.searchAllResources"
BUCKET_ASSET_TYPE = "storage.googleapis.com/Bucket"
_BUCKET_RESOURCE_PREFIX = "//storage.googleapis.com/"
# scope kind -> (flag, config key, the command that lists its numbers)
_NAMED_BY = {
    "organizations": ("--scan-org", "source.organizations", "gcloud organizations list"),
    "folders": ("--scan-folder", "source.folders", "gcloud resource-manager folders list --organization=ORG_ID"),
}


@dataclass(frozen=True)
class Scope:
    """An organisation or folder to search, and the flag and key that named it (for messages)."""

    kind: str  # "organizations" | "folders"
    number: str

    @property
    def name(self) -> str:
        return f"{self.kind}/{self.number}"

    @property
    def where(self) -> str:
        flag, key, _ = _NAMED_BY[self.kind]
        return f"{self.name} ({flag} / {key})"


def scopes_of(organizations: tuple[str, ...], folders: tuple[str, ...]) -> list[Scope]:
    return [Scope("organizations", n) for n in organizations] + [Scope("folders", n) for n in folders]


def bucket_name(result: dict[str, Any]) -> str | None:
    """The bucket a search result names, or None when it names no bucket."""
    if not isinstance(result, dict) or result.get("assetType") not in (None, BUCKET_ASSET_TYPE):
        return None
    name = result.get("name")
    if isinstance(name, str) and name.startswith(_BUCKET_RESOURCE_PREFIX):
        bucket = name[len(_BUCKET_RESOURCE_PREFIX) :]
        return bucket if bucket and "/" not in bucket else None
    return None


def gcr_buckets(results: list[dict[str, Any]]) -> list[str]:
    """The GCR buckets among the results, sorted, each once; every other bucket is skipped."""
    return sorted({b for b in map(bucket_name, results) if b and gcr_project(b)})


def refusal(scope: Scope, status: int, body: Any) -> str:
    """One line for an answer other than 200: what was refused, and the API or role that fixes it."""
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    message = str(error.get("message") or "").strip().splitlines()[0:1]
    message = message[0][:300] if message else f"HTTP {status}"
    state = error.get("status") or f"HTTP {status}"
    reasons = {}
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and detail.get("reason"):
            reasons[detail["reason"]] = detail.get("metadata") or {}
    where = f"{scope.where}: Cloud Asset Inventory ({API})"
    if "SERVICE_DISABLED" in reasons or "has not been used in project" in message or "is disabled" in message:
        consumer = str(reasons.get("SERVICE_DISABLED", {}).get("consumer") or "")
        project = consumer.rpartition("/")[2]
        in_project = f" --project={project}" if project else ""
        return (
            f"{where} is not enabled in the project the credentials bill the call to ({message}); "
            f"enable it with `gcloud services enable {API}{in_project}`, or name the projects with --scan-project"
        )
    if status == 403:
        return (
            f"{where} refused the search ({state}: {message}); the identity needs {ROLE} "
            f"(permission {PERMISSION}) on {scope.name}"
        )
    if status == 404:
        return f"{where}: {scope.name} not found ({message}); check the number with `{_NAMED_BY[scope.kind][2]}`"
    if status == 401:
        return f"{where} refused the credentials ({message}); run `gcloud auth application-default login`"
    return f"{where} answered {state} ({message})"
