"""Manifests from files: a directory (local or ``gs://``), an OCI image layout, or a bucket's legacy metadata.

Each store enumerates manifest requests (plain dicts) and fetches a manifest's
exact bytes by location or by digest. What cannot be understood is reported, not
raised: enumeration yields finding rows for files that are not manifests.

Directory layout (local or ``gs://BUCKET/PATH/``):

* ``<repo path>/<digest>`` where the name is ``sha256:<hex>``, ``sha256-<hex>`` or
  ``sha256_<hex>``, optionally with ``.json``; or any file ``NAME`` accompanied by
  ``NAME.digest`` holding its digest;
* optional ``<repo path>/tags.json``: ``{"tag": "sha256:…"}``;
* the repository is the source's ``repository`` (default: the folder's name)
  followed by the sub-folder path.

OCI image layout: ``index.json`` (tags from ``org.opencontainers.image.ref.name``)
and ``blobs/sha256/<hex>``.

Legacy GCR metadata (pre-2017) under ``containers/repositories/`` of a scanned
bucket, best effort: ``<repo>/manifests/<digest>`` are manifests,
``<repo>/tags/<tag>`` or ``<repo>/tag_<tag>`` hold a digest; any other object is
tried as a manifest and reported as ``invalid_manifest`` when it is not one.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline.core.crosscheck import tag_name
from pipeline.core.digests import is_digest
from pipeline.core.findings import Kind, finding
from pipeline.core.manifests import MAX_MANIFEST_BYTES

LEGACY_PREFIX = "containers/repositories/"
_DIGEST_NAME = re.compile(r"sha256[:_-]([0-9a-f]{64})(?:\.json)?")
_GCR_BUCKET = re.compile(r"(?:(us|eu|asia)\.)?artifacts\.([a-z0-9.:-]+)\.appspot\.com")
DIGEST_SIDECAR = ".digest"
TAGS_FILE = "tags.json"
REF_NAME = "org.opencontainers.image.ref.name"


class Unavailable(Exception):
    """A manifest that cannot be read: ``status`` (HTTP-like, 404 for absent) and a reason."""

    def __init__(self, status: int | None, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


# --- trees: local folders and gs:// prefixes ------------------------------------------------


class LocalTree:
    def __init__(self, root: str):
        self.root = Path(root).expanduser().resolve()
        self.label = str(self.root)

    def walk(self) -> Iterator[tuple[str, int | None]]:
        if not self.root.is_dir():
            raise Unavailable(404, f"{self.root} is not a directory")
        for folder, dirs, files in os.walk(self.root):
            dirs.sort()
            for name in sorted(files):
                path = Path(folder, name)
                try:
                    size = path.stat().st_size
                except OSError:  # a dangling link, a file gone: listed here, reported when read
                    size = None
                yield path.relative_to(self.root).as_posix(), size

    def read(self, rel: str, max_bytes: int) -> bytes:
        path = self.root / rel
        try:
            with path.open("rb") as handle:
                return handle.read(max_bytes + 1)
        except FileNotFoundError:
            raise Unavailable(404, f"{rel} not found in {self.label}") from None
        except OSError as err:
            raise Unavailable(None, f"{rel}: {err.strerror or err}") from None

    def exists(self, rel: str) -> bool:
        return (self.root / rel).is_file()


class GcsTree:
    def __init__(self, bucket: str, prefix: str, client):
        self.bucket, self.prefix = bucket, prefix if not prefix or prefix.endswith("/") else prefix + "/"
        self._client = client
        self.label = f"gs://{bucket}/{self.prefix}"

    def walk(self) -> Iterator[tuple[str, int]]:
        for blob in self._client.list_blobs(self.bucket, prefix=self.prefix, fields="items(name,size),nextPageToken"):
            if not blob.name.endswith("/"):
                yield blob.name[len(self.prefix) :], int(blob.size or 0)

    def read(self, rel: str, max_bytes: int) -> bytes:
        from google.api_core import exceptions as gapi

        try:
            blob = self._client.bucket(self.bucket).get_blob(self.prefix + rel)
            if blob is None:
                raise Unavailable(404, f"{rel} not found in {self.label}")
            if (blob.size or 0) > max_bytes:
                return b"\0" * (max_bytes + 1)  # only the size matters: refused as too large
            return blob.download_as_bytes(raw_download=True)
        except gapi.NotFound:
            raise Unavailable(404, f"{rel} not found in {self.label}") from None
        except gapi.GoogleAPICallError as err:
            raise Unavailable(getattr(err, "code", None), f"{rel}: {err.message}") from None

    def exists(self, rel: str) -> bool:
        return self._client.bucket(self.bucket).blob(self.prefix + rel).exists()


def open_tree(location: str, client_factory=None):
    if location.startswith("gs://"):
        bucket, _, prefix = location[5:].partition("/")
        return GcsTree(bucket, prefix, client_factory())
    return LocalTree(location)


def request(
    source: int,
    repository: str,
    digest: str | None,
    *,
    tags=(),
    location: str | None = None,
    media_type: str | None = None,
    bucket: str | None = None,
) -> dict[str, Any]:
    """A manifest to fetch: ``digest`` is the claimed one (None: whatever the bytes hash to)."""
    return {
        "source": source,
        "repository": repository,
        "digest": digest,
        "tags": sorted(set(tags)),
        "location": location,
        "media_type": media_type,
        "bucket": bucket,
    }


def digest_from_name(name: str) -> str | None:
    match = _DIGEST_NAME.fullmatch(name)
    return f"sha256:{match.group(1)}" if match else None


def _join(repo: str, sub: str) -> str:
    return f"{repo}/{sub}" if sub else repo


# --- stores --------------------------------------------------------------------------------


class _TreeStore:
    """A manifest store read from a local folder or a ``gs://`` prefix."""

    default_repository = "manifests"

    def __init__(
        self,
        index: int,
        location: str,
        repository: str | None,
        bucket: str | None,
        client_factory=None,
        max_bytes: int = MAX_MANIFEST_BYTES,
    ):
        self._index, self._bucket, self._max = index, bucket, max_bytes
        self._tree = open_tree(location, client_factory)
        self.label = self._tree.label
        self._repo = repository or os.path.basename(location.rstrip("/")) or self.default_repository


class DirectoryStore(_TreeStore):
    """Manifests in a folder tree, named by digest or with a ``.digest`` sidecar."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._by_digest: dict[tuple[str, str], str] | None = None

    def units(self) -> Iterator[Any]:
        yield self._tree.label

    def enumerate(self, unit: Any) -> Iterator[dict[str, Any]]:
        files = dict(self._tree.walk())
        self._by_digest = {}
        tags: dict[tuple[str, str], set[str]] = {}
        pending = []
        for rel, size in sorted(files.items()):
            folder, _, name = rel.rpartition("/")
            repo = _join(self._repo, folder)
            if name.endswith(DIGEST_SIDECAR) and rel[: -len(DIGEST_SIDECAR)] in files:
                continue
            if name == TAGS_FILE:
                try:
                    mapping = json.loads(self._tree.read(rel, 1024 * 1024))
                    if not isinstance(mapping, dict):
                        raise ValueError("expected an object of tag -> digest")
                    for tag, digest in mapping.items():
                        if not (isinstance(tag, str) and is_digest(digest)):
                            raise ValueError(f"entry {tag!r}: expected a tag and a sha256 digest")
                        tags.setdefault((repo, digest), set()).add(tag_name(repo, tag))
                except (ValueError, Unavailable) as err:
                    yield _file_finding(self._tree.label, rel, f"tags file not understood: {err}", size)
                continue
            digest = digest_from_name(name)
            if digest is None and rel + DIGEST_SIDECAR in files:
                try:
                    claimed = self._tree.read(rel + DIGEST_SIDECAR, 200).decode("utf-8", "replace").strip()
                except Unavailable as err:
                    yield _file_finding(self._tree.label, rel, f"{name}{DIGEST_SIDECAR} cannot be read: {err}", size)
                    continue
                if not is_digest(claimed):
                    yield _file_finding(
                        self._tree.label, rel, f"{name}{DIGEST_SIDECAR} does not hold a sha256 digest", size
                    )
                    continue
                digest = claimed
            if digest is None:
                yield _file_finding(
                    self._tree.label,
                    rel,
                    f"neither named by a sha256 digest nor accompanied by {name}{DIGEST_SIDECAR}; not checked",
                    size,
                )
                continue
            self._by_digest[(repo, digest)] = rel
            pending.append((repo, digest, rel))
        for repo, digest, rel in pending:
            yield request(
                self._index, repo, digest, tags=tags.get((repo, digest), ()), location=rel, bucket=self._bucket
            )

    def fetch(self, repository: str, digest: str, location: str | None) -> tuple[bytes, str | None, str | None]:
        if location is None:
            if self._by_digest is None:
                list(self.enumerate(None))
            location = self._by_digest.get((repository, digest))
            if location is None:
                raise Unavailable(404, f"{digest} not found in {self._tree.label} for {repository}")
        return self._tree.read(location, self._max), None, None


class OciLayoutStore(_TreeStore):
    """An OCI image layout: ``index.json`` names the manifests, ``blobs/sha256/`` holds them."""

    default_repository = "oci-layout"

    def units(self) -> Iterator[Any]:
        yield self._tree.label

    def enumerate(self, unit: Any) -> Iterator[dict[str, Any]]:
        try:
            raw = self._tree.read("index.json", self._max)
            document = json.loads(raw.decode("utf-8"))
            entries = document["manifests"]
            if not isinstance(entries, list):
                raise ValueError("manifests is not a list")
        except Unavailable as err:
            yield finding(
                Kind.MANIFEST_UNAVAILABLE,
                object=f"{self._tree.label}/index.json",
                repository=self._repo,
                http_status=err.status,
                detail=err.reason,
            )
            return
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as err:
            yield _file_finding(
                self._tree.label, "index.json", f"OCI layout index not understood: {err}", None, repository=self._repo
            )
            return
        by_digest: dict[str, tuple[set, str | None]] = {}
        for i, entry in enumerate(entries):
            digest = entry.get("digest") if isinstance(entry, dict) else None
            if not is_digest(digest):
                yield _file_finding(
                    self._tree.label,
                    "index.json",
                    f"manifests[{i}].digest: {str(digest)[:80]!r} is not sha256:<64 hex>",
                    None,
                    repository=self._repo,
                )
                continue
            annotations = entry.get("annotations") if isinstance(entry.get("annotations"), dict) else {}
            tags, _ = by_digest.setdefault(digest, (set(), entry.get("mediaType")))
            if isinstance(annotations.get(REF_NAME), str):
                tags.add(tag_name(self._repo, annotations[REF_NAME]))
        for digest, (tags, media_type) in by_digest.items():
            yield request(
                self._index,
                self._repo,
                digest,
                tags=tags,
                media_type=media_type,
                location=_blob_path(digest),
                bucket=self._bucket,
            )

    def fetch(self, repository: str, digest: str, location: str | None) -> tuple[bytes, str | None, str | None]:
        return self._tree.read(location or _blob_path(digest), self._max), None, None


def _blob_path(digest: str) -> str:
    return "blobs/sha256/" + digest.split(":", 1)[1]


def legacy_repository_prefix(bucket: str) -> str:
    """``artifacts.P.appspot.com`` -> ``gcr.io/P``; other buckets -> ``gs://bucket``."""
    match = _GCR_BUCKET.fullmatch(bucket)
    if not match:
        return f"gs://{bucket}"
    region, project = match.groups()
    project = project.replace(".", "/") if ":" not in project else project.replace(":", "/")
    return f"{region + '.' if region else ''}gcr.io/{project}"


class LegacyStore:
    """Pre-2017 GCR metadata under ``containers/repositories/`` of one scanned bucket (best effort)."""

    def __init__(self, index: int, bucket: str, client_factory, max_bytes: int = MAX_MANIFEST_BYTES):
        self._index, self._bucket, self._max = index, bucket, max_bytes
        self._tree = GcsTree(bucket, LEGACY_PREFIX, client_factory())
        self.label = self._tree.label
        self._repo_prefix = legacy_repository_prefix(bucket)
        self._by_digest: dict[tuple[str, str], str] = {}

    def units(self) -> Iterator[Any]:
        yield self._bucket

    def _repo(self, folder: str) -> str:
        parts = [p for p in folder.split("/") if p]
        while parts and parts[-1] in ("manifests", "tags", "_manifests", "revisions", "sha256"):
            parts.pop()
        return _join(self._repo_prefix, "/".join(parts))

    def enumerate(self, unit: Any) -> Iterator[dict[str, Any]]:
        tags: dict[tuple[str, str], set[str]] = {}
        manifests: list[tuple[str, str | None, str]] = []
        for rel, size in self._tree.walk():
            folder, _, name = rel.rpartition("/")
            repo = self._repo(folder)
            tag = None
            if folder.endswith("tags") or folder == "tags":
                tag = name
            elif name.startswith("tag_"):
                tag = name[4:]
            if tag is not None:
                try:
                    target = self._tree.read(rel, 1024).decode("utf-8", "replace").strip()
                except Unavailable:
                    continue
                if is_digest(target):
                    tags.setdefault((repo, target), set()).add(tag_name(repo, tag))
                else:
                    yield _file_finding(
                        self._tree.label,
                        rel,
                        "legacy tag object does not hold a sha256 digest (a v1 image id?); not checked",
                        size,
                        repository=repo,
                        bucket=self._bucket,
                    )
                continue
            digest = digest_from_name(name)
            if digest:
                self._by_digest[(repo, digest)] = rel
            manifests.append((repo, digest, rel))
        for repo, digest, rel in manifests:
            yield request(
                self._index,
                repo,
                digest,
                tags=tags.get((repo, digest), ()) if digest else (),
                location=rel,
                bucket=self._bucket,
            )

    def fetch(self, repository: str, digest: str, location: str | None) -> tuple[bytes, str | None, str | None]:
        if location is None:
            if not self._by_digest:
                for _ in self.enumerate(None):
                    pass
            location = self._by_digest.get((repository, digest))
            if location is None:
                raise Unavailable(404, f"{digest} not found in {self._tree.label} for {repository}")
        return self._tree.read(location, self._max), None, None


def _file_finding(
    label: str, rel: str, detail: str, size: int | None, repository: str | None = None, bucket: str | None = None
):
    path = f"{label.rstrip('/')}/{rel}"
    where = {"object": path}
    if bucket and path.startswith(f"gs://{bucket}/"):  # legacy metadata: the bucket in `bucket`
        where = {"bucket": bucket, "object": path[len(f"gs://{bucket}/") :]}
    return finding(Kind.INVALID_MANIFEST, **where, size=size, repository=repository, detail=detail)
