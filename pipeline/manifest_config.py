"""The ``manifests`` config section and ``scan.mode``: typed values and their checks.

Kept apart from ``pipeline.config`` so that the manifest cross-check adds keys
without reshaping the scan's own settings. Checkers follow ``pipeline.config``:
they return the clean value or raise ``ValueError("expected …")``, and the
caller prefixes the file and the key.

Secrets never come from YAML: a ``username``, ``password`` or ``token`` key is
refused with the name of the environment variables to set instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pipeline.adapters.registry import DEFAULT_CREDENTIALS_ENV
from pipeline.core.budget import share_per_process
from pipeline.core.manifests import MAX_MANIFEST_BYTES
from pipeline.values import BUCKET_RE, size_in, whole_number_in

MODES = ("names", "manifests", "both")
AUTH_MODES = ("auto", "anonymous", "google", "basic")
# Where a registry's token realm may be: any_host (Docker Hub's is auth.docker.io), or same_host.
TOKEN_REALMS = ("any_host", "same_host")
SOURCE_KINDS = ("registry", "directory", "oci_layout")
DEFAULT_REQUESTS_PER_SECOND = 20.0
DEFAULT_MANIFEST_ATTEMPTS = 5

_REGISTRY_URL = re.compile(r"https?://[A-Za-z0-9.\[\]-]+(?::[0-9]{1,5})?/?")
_REPOSITORY = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*")
_ENV_PREFIX = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
_SECRET_KEYS = ("username", "password", "token", "access_token", "auth_token", "secret")


@dataclass(frozen=True)
class SourceSpec:
    """One manifest source, as plain values a worker can rebuild a client from."""

    kind: str  # registry | directory | oci_layout | legacy (added per scanned bucket, not configured)
    location: str  # registry URL, local path or gs:// prefix, or the bucket for legacy
    repository: str | None = None
    gcr_projects: tuple[str, ...] = ()
    repositories: tuple[str, ...] = ()
    auth: str = "auto"
    credentials_env: str = DEFAULT_CREDENTIALS_ENV
    tls_verify: bool = True
    # registry only: "same_host" refuses a token realm on another host than the registry.
    token_realm: str = "any_host"
    bucket: str | None = None
    # "successor": the registry that took over the bucket's images (Artifact Registry); docs/recovery.md.
    role: str | None = None
    # directory and oci_layout: the folder or layout holds every manifest (untagged too) whose blobs
    # use the bucket named in ``bucket``, so a blob it does not reference may be reclaimed there
    # (pipeline/core/reclaim.py); without ``bucket`` it proves nothing.
    complete: bool = False


@dataclass(frozen=True)
class ManifestsConfig:
    sources: tuple[SourceSpec, ...] = ()
    # A budget for the whole job, per registry: each SDK process takes its share (requests_per_process).
    requests_per_second: float = DEFAULT_REQUESTS_PER_SECOND
    max_attempts: int = DEFAULT_MANIFEST_ATTEMPTS
    max_manifest_size: int = MAX_MANIFEST_BYTES
    legacy_metadata: bool = True
    # Not a YAML key: the launcher sets it from the runner's options (pipeline.fleet).
    processes: int = 1

    @property
    def requests_per_process(self) -> float:
        return share_per_process(self.requests_per_second, self.processes)


def check_mode(value: Any) -> str:
    if value not in MODES:
        raise ValueError(
            f"expected one of {', '.join(MODES)} (names: hash blobs only; manifests: "
            "cross-check without hashing; both: the default when a manifest source is set)"
        )
    return value


def check_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return value


def check_rate(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.1 <= value <= 10_000:
        raise ValueError("expected requests per second from 0.1 to 10000")
    return float(value)


check_attempts = whole_number_in(1, 20)
check_manifest_size = size_in(1024, 64 * 1024**2, "4MiB")


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected {what}")
    return value.strip()


def _names(value: Any, key: str, pattern: re.Pattern, what: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list) or not value:
        raise ValueError(f"{key}: expected a non-empty list of {what}")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not pattern.fullmatch(item.strip("/")):
            raise ValueError(f"{key}[{i}] ({item!r}): expected {what}")
        out.append(item.strip("/"))
    return tuple(dict.fromkeys(out))


_KEYS = {
    "registry": {
        *("registry", "gcr_projects", "repositories", "auth", "credentials_env", "tls_verify", "token_realm"),
        *("bucket", "role"),
    },
    "directory": {"directory", "repository", "bucket", "complete", "role"},
    "oci_layout": {"oci_layout", "repository", "bucket", "complete", "role"},
}


def _path_hint(url: str) -> str:
    """An Artifact Registry repository URL (``https://LOCATION-docker.pkg.dev/PROJECT/REPO``) is the
    shape people copy: say where its path goes."""
    match = re.fullmatch(r"(https?://[^/]+)/+([^?#]*?)/*", url)
    if not match or not match.group(2):
        return ""
    return f"; name the images under repositories: registry: {match.group(1)}, repositories: [{match.group(2)}/IMAGE]"


def check_source(value: Any) -> SourceSpec:
    if not isinstance(value, dict):
        raise ValueError("expected a mapping with one of registry, directory or oci_layout")
    secrets = sorted(k for k in value if str(k).lower() in _SECRET_KEYS)
    if secrets:
        raise ValueError(
            f"{', '.join(secrets)}: secrets never go in the config file; set {DEFAULT_CREDENTIALS_ENV}_USERNAME "
            f"and {DEFAULT_CREDENTIALS_ENV}_PASSWORD (or <credentials_env>_USERNAME/_PASSWORD) in the environment"
        )
    kinds = [k for k in SOURCE_KINDS if k in value]
    if len(kinds) != 1:
        raise ValueError(f"expected exactly one of {', '.join(SOURCE_KINDS)}, got {', '.join(kinds) or 'none'}")
    kind = kinds[0]
    unknown = set(value) - _KEYS[kind]
    if unknown:
        raise ValueError(
            f"unknown key(s) {', '.join(sorted(map(str, unknown)))} for a {kind} source; "
            f"valid keys are {', '.join(sorted(_KEYS[kind]))}"
        )
    fields: dict[str, Any] = {"kind": kind}
    if value.get("bucket") is not None:
        bucket = value["bucket"]
        if not isinstance(bucket, str) or not BUCKET_RE.fullmatch(bucket):
            raise ValueError("bucket: expected a bare GCS bucket name whose blobs these manifests use")
        fields["bucket"] = bucket
    if "role" in value:
        if value["role"] != "successor":
            raise ValueError("role: expected successor (the registry that took over the bucket's images)")
        fields["role"] = "successor"
    if kind == "registry":
        url = _text(value["registry"], "a registry URL, e.g. https://gcr.io or http://127.0.0.1:5000")
        if not _REGISTRY_URL.fullmatch(url):
            raise ValueError(f"registry: expected http(s)://HOST[:PORT] with no path, got {url!r}{_path_hint(url)}")
        fields["location"] = url.rstrip("/")
        if "gcr_projects" in value and "repositories" in value:
            raise ValueError("set gcr_projects (walk a GCR / Artifact Registry project) or repositories, not both")
        if "gcr_projects" in value:
            fields["gcr_projects"] = _names(
                value["gcr_projects"],
                "gcr_projects",
                _REPOSITORY,
                "project ids or repository paths to walk, e.g. my-project",
            )
        if "repositories" in value:
            fields["repositories"] = _names(
                value["repositories"], "repositories", _REPOSITORY, "repository names, e.g. library/alpine"
            )
        if "auth" in value:
            if value["auth"] not in AUTH_MODES:
                raise ValueError(f"auth: expected one of {', '.join(AUTH_MODES)}")
            fields["auth"] = value["auth"]
        if "credentials_env" in value:
            prefix = value["credentials_env"]
            if not isinstance(prefix, str) or not _ENV_PREFIX.fullmatch(prefix):
                raise ValueError(
                    "credentials_env: expected an environment variable prefix such as MY_REGISTRY "
                    "(the scan reads MY_REGISTRY_USERNAME and MY_REGISTRY_PASSWORD)"
                )
            fields["credentials_env"] = prefix
        if "tls_verify" in value:
            fields["tls_verify"] = check_bool(value["tls_verify"])
        if "token_realm" in value:
            if value["token_realm"] not in TOKEN_REALMS:
                raise ValueError(f"token_realm: expected one of {', '.join(TOKEN_REALMS)}")
            fields["token_realm"] = value["token_realm"]
    else:
        fields["location"] = _text(value[kind], "a local directory or gs://BUCKET/PATH")
        if "://" in fields["location"] and not fields["location"].startswith("gs://"):
            raise ValueError(f"{kind}: expected a local directory or gs://BUCKET/PATH")
        if value.get("repository") is not None:
            fields["repository"] = _text(value["repository"], "a repository name, e.g. gcr.io/p/app").strip("/")
        if "complete" in value:
            try:
                fields["complete"] = check_bool(value["complete"])
            except ValueError:
                what = "folder" if kind == "directory" else "layout"
                raise ValueError(
                    f"complete: expected true (the {what} holds every manifest, untagged ones too, whose blobs "
                    "use the bucket named in bucket:) or false"
                ) from None
    return SourceSpec(**fields)


def check_sources(value: Any) -> tuple[SourceSpec, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ValueError("expected a list of sources, e.g. [{registry: https://gcr.io, gcr_projects: [p]}]")
    out = []
    for i, item in enumerate(value):
        try:
            out.append(check_source(item))
        except ValueError as err:
            raise ValueError(f"item {i}: {err}") from None
    return tuple(out)


MANIFESTS_SCHEMA = {
    "sources": check_sources,
    "requests_per_second": check_rate,
    "max_attempts": check_attempts,
    "max_manifest_size": check_manifest_size,
    "legacy_metadata": check_bool,
}


def effective_mode(mode: str | None, manifests: ManifestsConfig) -> str:
    """The mode a scan runs in: as configured, else ``both`` when a manifest source is set, else ``names``."""
    if mode is not None:
        return mode
    return "both" if manifests.sources else "names"


def check_mode_against_sources(mode: str | None, manifests: ManifestsConfig) -> str | None:
    """None when consistent; otherwise the message (without the origin prefix)."""
    if mode in ("manifests", "both") and not manifests.sources and not manifests.legacy_metadata:
        return (
            f"scan.mode: {mode!r} needs a manifest source; add manifests.sources or set manifests.legacy_metadata: true"
        )
    return None
