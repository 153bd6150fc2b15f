"""Manifests from files: a directory (local or ``gs://``), an OCI image layout, or a bucket's legacy metadata.

Each store enumerates manifest requests (plain dicts) and fetches a manifest's
exact bytes by location or by digest. What cannot be understood is reported, not
raised: enumeration yields finding rows for files that are not manifests.

Directory layout (local or ``gs://BUCKET/PATH/``):

* ``<repo path>/<digest>`` where the name is ``sha256:<hex>``, ``sha256-<hex>``,
  ``sha256_<hex>`` or the bare 64 hex digits, optionally with ``.json``; or any file
  ``NAME`` accompanied by ``NAME.digest`` holding its digest;
* optional ``<repo path>/tags.json``: ``{"tag": "sha256:…"}``;
* the repository is the source's ``repository`` (default: the folder's name)
  followed by the sub-folder path.

OCI image layout: ``oci-layout``, ``index.json`` (tags from
``org.opencontainers.image.ref.name``) and ``blobs/<algorithm>/<hex>``.

Local trees are hostile ground: only regular files are ever opened (a FIFO would
block ``open()`` for ever), a symbolic link that resolves outside the source root
is refused, and a name that is not UTF-8 is reported with a safe escape. Each of
these is a finding naming the path, never a crash, a hang or a silent skip.

Legacy GCR metadata (pre-2017) under ``containers/repositories/`` of a scanned
bucket, best effort: ``<repo>/manifests/<digest>`` are manifests,
``<repo>/tags/<tag>`` or ``<repo>/tag_<tag>`` hold a digest; any other object is
tried as a manifest and reported as ``invalid_manifest`` when it is not one.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline.core import media_types, oci_rules
from pipeline.core.crosscheck import image_name, tag_name
from pipeline.core.digests import is_digest
from pipeline.core.findings import Kind, finding
from pipeline.core.legacy_metadata import is_v1_metadata, legacy_tag_detail
from pipeline.core.manifests import MAX_MANIFEST_BYTES, ManifestError, load_json, unicode_problem
from pipeline.values import GCR_BUCKET_PATTERN

LEGACY_PREFIX = "containers/repositories/"
_DIGEST_NAME = re.compile(r"(?:sha256[:_-])?([0-9a-f]{64})(?:\.json)?")
DIGEST_SIDECAR = ".digest"
TAGS_FILE = "tags.json"
MAX_TAGS_BYTES = 1024 * 1024
REF_NAME = "org.opencontainers.image.ref.name"
LAYOUT_MARKER = "oci-layout"
# image-spec annotations.md: the grammar of org.opencontainers.image.ref.name.
_REF_NAME = re.compile(
    r"[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*(?:/[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*)*"
)
# A tag as distribution accepts it.
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


class Unavailable(Exception):
    """A manifest that cannot be read: ``status`` and a reason.

    ``status`` is the HTTP status of an answer about it (a GCS 404), None when no HTTP was
    involved: a file missing from a local folder, or a digest its source never listed. It
    becomes the finding's ``http_status``, which must never claim an answer that was not given."""

    def __init__(self, status: int | None, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


# --- trees: local folders and gs:// prefixes ------------------------------------------------


def safe_name(name: str) -> str:
    """A file name as text that can always be written out: bytes that are not UTF-8
    (``os.walk`` hands them over as surrogate escapes) become ``\\xNN``."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def _not_regular(mode: int) -> str:
    for test, what in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISDIR, "a folder"),
    ):
        if test(mode):
            return what
    return "not a regular file"


class LocalTree:
    """A local folder, read defensively: only regular files inside the root are ever opened."""

    def __init__(self, root: str):
        self.root = Path(root).expanduser().resolve()
        self.label = str(self.root)

    def walk(self) -> Iterator[tuple[str, int | None, str | None]]:
        """``(relative path, size, problem)`` for every entry below the root, folders descended.

        ``problem`` is None for a regular file (or a link to one inside the root); otherwise it
        says why the entry is refused, and the entry is never opened. Nothing is skipped silently.
        """
        if not self.root.is_dir():
            raise Unavailable(None, f"{self.root} is not a directory")
        folders = [""]
        while folders:
            folder = folders.pop()
            try:
                with os.scandir(self.root / folder if folder else self.root) as listing:
                    entries = sorted(listing, key=lambda e: e.name)
            except OSError as err:
                yield folder or ".", None, f"folder cannot be listed: {err.strerror or err}"
                continue
            below = []
            for entry in entries:
                rel = f"{folder}/{entry.name}" if folder else entry.name
                if unicode_problem(entry.name):
                    yield safe_name(rel), None, "name is not valid UTF-8; not read"
                    continue
                try:
                    mode = entry.stat(follow_symlinks=False).st_mode
                except OSError as err:
                    yield rel, None, f"cannot be examined: {err.strerror or err}"
                    continue
                if stat.S_ISDIR(mode):
                    below.append(rel)
                elif stat.S_ISLNK(mode):
                    size, problem = self._link(rel)
                    yield rel, size, problem
                elif stat.S_ISREG(mode):
                    yield rel, entry.stat(follow_symlinks=False).st_size, None
                else:
                    yield rel, None, f"{_not_regular(mode)}, not a regular file; never opened"
            folders.extend(reversed(below))

    def _inside(self, rel: str) -> Path | None:
        real = Path(os.path.realpath(self.root / rel))
        return real if real == self.root or real.is_relative_to(self.root) else None

    def _link(self, rel: str) -> tuple[int | None, str | None]:
        real = self._inside(rel)
        if real is None:
            return None, "symbolic link resolves outside the source root; refused"
        try:
            info = os.stat(real)
        except OSError as err:
            return None, f"symbolic link cannot be followed: {err.strerror or err}"
        if stat.S_ISDIR(info.st_mode):
            return None, "symbolic link to a folder; not followed (the folder is read under its own path)"
        if not stat.S_ISREG(info.st_mode):
            return None, f"symbolic link to {_not_regular(info.st_mode)}, not a regular file; never opened"
        return info.st_size, None

    def _regular(self, rel: str) -> tuple[Path, os.stat_result]:
        """The real path of ``rel`` and its stat, when it is a regular file inside the root."""
        real = self._inside(rel)
        if real is None:
            raise Unavailable(None, f"{safe_name(rel)} resolves outside the source root; refused")
        try:
            info = os.stat(real)
        except FileNotFoundError:
            raise Unavailable(None, f"{safe_name(rel)} not found in {self.label}") from None
        except OSError as err:
            raise Unavailable(None, f"{safe_name(rel)}: {err.strerror or err}") from None
        if not stat.S_ISREG(info.st_mode):
            raise Unavailable(
                None, f"{safe_name(rel)} is {_not_regular(info.st_mode)}, not a regular file; never opened"
            )
        return real, info

    def size(self, rel: str) -> int:
        return self._regular(rel)[1].st_size

    def read(self, rel: str, max_bytes: int) -> bytes:
        real, _ = self._regular(rel)
        try:
            # O_NONBLOCK: should a FIFO replace the file after the check, open() still returns at once.
            fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
        except OSError as err:
            raise Unavailable(None, f"{safe_name(rel)}: {err.strerror or err}") from None
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise Unavailable(None, f"{safe_name(rel)} is not a regular file; not read")
            return handle.read(max_bytes + 1)


class GcsTree:
    def __init__(self, bucket: str, prefix: str, client):
        self.bucket, self.prefix = bucket, prefix if not prefix or prefix.endswith("/") else prefix + "/"
        self._client = client
        self.label = f"gs://{bucket}/{self.prefix}"

    def walk(self) -> Iterator[tuple[str, int, None]]:
        for blob in self._client.list_blobs(self.bucket, prefix=self.prefix, fields="items(name,size),nextPageToken"):
            if not blob.name.endswith("/"):
                yield blob.name[len(self.prefix) :], int(blob.size or 0), None

    def size(self, rel: str) -> int:
        from google.api_core import exceptions as gapi

        try:
            blob = self._client.bucket(self.bucket).get_blob(self.prefix + rel)
        except gapi.GoogleAPICallError as err:
            raise Unavailable(getattr(err, "code", None), f"{rel}: {err.message}") from None
        if blob is None:
            raise Unavailable(404, f"{rel} not found in {self.label}")
        return int(blob.size or 0)

    def read(self, rel: str, max_bytes: int) -> bytes:
        from google.api_core import exceptions as gapi

        try:
            bucket = self._client.bucket(self.bucket)
            blob = bucket.get_blob(self.prefix + rel)
            if blob is None:
                raise Unavailable(404, f"{rel} not found in {self.label}")
            if (blob.size or 0) > max_bytes:
                return b"\0" * (max_bytes + 1)  # only the size matters: refused as too large
            # Downloaded from the client's own endpoint, not the resource's mediaLink: an emulator
            # restarted on another port over the same data still serves links naming the old one
            # (docs/recovery.md, "Try it on the demo"), which were retried for minutes per file.
            pinned = bucket.blob(blob.name, generation=blob.generation)
            return pinned.download_as_bytes(raw_download=True)
        except gapi.NotFound:
            raise Unavailable(404, f"{rel} not found in {self.label}") from None
        except gapi.GoogleAPICallError as err:
            raise Unavailable(getattr(err, "code", None), f"{rel}: {err.message}") from None


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


def read_tags(data: bytes) -> list[tuple[str, str]]:
    """``tags.json``: ``{"tag": "sha256:…"}``, read with the same caps as a manifest."""
    mapping = load_json(data, max_bytes=MAX_TAGS_BYTES)
    if not isinstance(mapping, dict):
        raise ManifestError("expected an object of tag -> digest")
    pairs = []
    for tag, digest in mapping.items():
        if not (isinstance(tag, str) and _TAG.fullmatch(tag)):
            raise ManifestError(f"entry {tag[:80]!r}: not a tag ([A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})")
        if not is_digest(digest):
            raise ManifestError(f"entry {tag!r}: expected a sha256 digest, got {str(digest)[:80]!r}")
        pairs.append((tag, digest))
    return pairs


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
        files: dict[str, int | None] = {}
        for rel, size, problem in self._tree.walk():
            if problem is None:
                files[rel] = size
            else:
                yield _file_finding(self._tree.label, rel, problem, size)
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
                    for tag, digest in read_tags(self._tree.read(rel, MAX_TAGS_BYTES)):
                        tags.setdefault((repo, digest), set()).add(tag_name(repo, tag))
                except (ManifestError, Unavailable) as err:
                    yield _file_finding(
                        self._tree.label, rel, f"tags file not understood, its tags are not used: {err}", size
                    )
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
                raise Unavailable(None, f"{digest} not found in {self._tree.label} for {repository}")
        return self._tree.read(location, self._max), None, None


class OciLayoutStore(_TreeStore):
    """An OCI image layout: ``oci-layout`` marks it, ``index.json`` names the manifests,
    ``blobs/<algorithm>/<hex>`` holds them.

    Checked as oci-image-tool would: the marker file, the index against the image-spec rules
    (entry by entry, so one bad entry does not hide the others), and each entry's ``size``
    against the byte count of the blob it names.
    """

    default_repository = "oci-layout"

    def units(self) -> Iterator[Any]:
        yield self._tree.label

    def _finding(self, rel: str, detail: str, size: int | None = None):
        return _file_finding(self._tree.label, rel, detail, size, repository=self._repo)

    def enumerate(self, unit: Any) -> Iterator[dict[str, Any]]:
        refused = {rel: (size, problem) for rel, size, problem in self._tree.walk() if problem is not None}
        yield from self._marker_findings()
        try:
            document = load_json(self._tree.read("index.json", self._max), max_bytes=self._max, allow_surrogates=True)
            if not isinstance(document, dict):
                raise ManifestError("expected a JSON object")
            entries = document.get("manifests")
            if not isinstance(entries, list):
                raise ManifestError("image-spec index: manifests must be a list of descriptors")
        except Unavailable as err:
            yield finding(
                Kind.MANIFEST_UNAVAILABLE,
                object=f"{self._tree.label}/index.json",
                repository=self._repo,
                http_status=err.status,
                detail=err.reason,
            )
            entries = []
        except ManifestError as err:
            yield self._finding("index.json", f"OCI layout index not understood: {err}")
            entries = []
        else:
            for problem in _index_document_problems(document):
                yield self._finding("index.json", f"OCI layout index: {problem}")
        referenced = {"index.json", LAYOUT_MARKER}
        by_digest: dict[str, tuple[set, str | None]] = {}
        for i, entry in enumerate(entries):
            where = f"manifests[{i}]"
            digest = entry.get("digest") if isinstance(entry, dict) else None
            problems = oci_rules.check_descriptor(entry, where, index_entry=True)
            digest_problems = oci_rules.check_digest(digest, f"{where}.digest")
            problems += [p for p in _string_problems(entry, where) if p not in problems]
            for problem in problems:
                yield self._finding("index.json", f"OCI layout index: {problem}")
            if digest_problems:
                continue  # already named above: there is nothing to read
            if not oci_rules.is_verifiable(digest):
                yield finding(
                    Kind.UNVERIFIABLE_DIGEST,
                    object=f"{self._tree.label}/index.json",
                    repository=self._repo,
                    digest=digest,
                    detail=f"OCI layout index: {where}.digest: algorithm {oci_rules.digest_algorithm(digest)!r} is "
                    "not registered in the image-spec (sha256, sha512); the manifest cannot be verified, not read",
                )
                continue
            path = _blob_path(digest)
            referenced.add(path)
            tags, _ = by_digest.setdefault(digest, (set(), entry.get("mediaType")))
            ref = (entry.get("annotations") or {}).get(REF_NAME) if isinstance(entry.get("annotations"), dict) else None
            tag = None
            if isinstance(ref, str) and unicode_problem(ref) is None:
                if _REF_NAME.fullmatch(ref):
                    tag = tag_name(self._repo, ref)
                    tags.add(tag)
                else:
                    yield self._finding(
                        "index.json",
                        f"OCI layout index: {where}.annotations: {REF_NAME} {ref[:80]!r} does not follow the "
                        "image-spec ref grammar; not used as a tag",
                    )
            yield from self._size_findings(path, digest, entry.get("size"), where, tag)
        for rel, (size, problem) in sorted(refused.items()):
            if rel not in referenced:
                yield self._finding(rel, problem, size)
        for digest, (tags, media_type) in by_digest.items():
            yield request(
                self._index,
                self._repo,
                digest,
                tags=tags,
                media_type=media_type if isinstance(media_type, str) and not unicode_problem(media_type) else None,
                location=_blob_path(digest),
                bucket=self._bucket,
            )

    def _marker_findings(self) -> Iterator[dict[str, Any]]:
        """image-layout.md: an ``oci-layout`` file holding ``{"imageLayoutVersion": "1.0.0"}``."""
        try:
            marker = load_json(self._tree.read(LAYOUT_MARKER, 64 * 1024), max_bytes=64 * 1024)
        except Unavailable as err:
            yield self._finding(LAYOUT_MARKER, f"OCI layout: the oci-layout file cannot be read: {err.reason}")
            return
        except ManifestError as err:
            yield self._finding(LAYOUT_MARKER, f"OCI layout: the oci-layout file is not valid: {err}")
            return
        for problem in oci_rules.check_layout_marker(marker):
            yield self._finding(LAYOUT_MARKER, f"OCI layout: {problem}")

    def _size_findings(
        self, path: str, digest: str, declared: Any, where: str, tag: str | None
    ) -> Iterator[dict[str, Any]]:
        """The descriptor's size against the blob's byte count (a missing blob is reported when fetched)."""
        if not oci_rules.is_int64(declared) or declared < 0:
            return  # named by the descriptor rules
        try:
            actual = self._tree.size(path)
        except Unavailable:
            return
        if actual != declared:
            yield finding(
                Kind.SIZE_MISMATCH,
                object=f"{self._tree.label}/{path}",
                repository=self._repo,
                manifest_digest=digest,
                images=[image_name(self._repo, digest)],
                tags=[tag] if tag else [],
                digest=digest,
                expected=str(declared),
                actual=str(actual),
                size=actual,
                detail=f"index.json {where} declares {declared} bytes; the blob has {actual} "
                "(image-spec descriptor: size is the content's length)",
            )

    def fetch(self, repository: str, digest: str, location: str | None) -> tuple[bytes, str | None, str | None]:
        return self._tree.read(location or _blob_path(digest), self._max), None, None


def _index_document_problems(document: dict) -> list[str]:
    """The index.json document's own rules (its entries are checked one by one)."""
    problems = []
    if document.get("schemaVersion") != 2 or isinstance(document.get("schemaVersion"), bool):
        problems.append(
            f"schemaVersion: image-spec index: schemaVersion must be 2 (got {document.get('schemaVersion')!r})"
        )
    media_type = document.get("mediaType")
    if media_type is not None and media_type != media_types.OCI_INDEX:
        problems.append(f"mediaType: image-spec index: mediaType, when set, must be {media_types.OCI_INDEX}")
    problems += oci_rules.check_annotations(document.get("annotations"), "annotations")
    problems += [p for p in _string_problems({k: v for k, v in document.items() if k != "manifests"}, "") if p]
    return problems


def _string_problems(value: Any, where: str) -> list[str]:
    """Strings with lone surrogates in an index entry (read with ``allow_surrogates``)."""
    found = []
    stack = [(where, value)]
    while stack:
        at, item = stack.pop()
        if isinstance(item, str):
            problem = unicode_problem(item)
            if problem:
                found.append(f"{at or 'the document'}: {problem}")
        elif isinstance(item, dict):
            for key, sub in item.items():
                stack.extend(
                    [
                        (f"{at}.{safe_key(key)}" if at else safe_key(key), key),
                        (f"{at}.{safe_key(key)}" if at else safe_key(key), sub),
                    ]
                )
        elif isinstance(item, list):
            stack.extend((f"{at}[{i}]", sub) for i, sub in enumerate(item))
    return found


def safe_key(key: str) -> str:
    return key.encode("utf-8", "backslashreplace").decode("utf-8")


def _blob_path(digest: str) -> str:
    algorithm, _, encoded = digest.partition(":")
    return f"blobs/{algorithm}/{encoded}"


def legacy_repository_prefix(bucket: str) -> str:
    """``artifacts.P.appspot.com`` -> ``gcr.io/P``; other buckets -> ``gs://bucket``."""
    match = GCR_BUCKET_PATTERN.fullmatch(bucket)
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
        for rel, size, _ in self._tree.walk():
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
                        legacy_tag_detail(target),
                        size,
                        repository=repo,
                        bucket=self._bucket,
                        kind=Kind.LEGACY_METADATA_UNPARSED,
                    )
                continue
            if is_v1_metadata(name):
                yield _file_finding(
                    self._tree.label,
                    rel,
                    f"pre-2017 v1 registry metadata ({name}): names v1 image ids, never a sha256 blob; not a manifest",
                    size,
                    repository=repo,
                    bucket=self._bucket,
                    kind=Kind.LEGACY_METADATA_UNPARSED,
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
                raise Unavailable(None, f"{digest} not found in {self._tree.label} for {repository}")
        return self._tree.read(location, self._max), None, None


def _file_finding(
    label: str,
    rel: str,
    detail: str,
    size: int | None,
    repository: str | None = None,
    bucket: str | None = None,
    kind: Kind = Kind.INVALID_MANIFEST,
):
    path = f"{label.rstrip('/')}/{rel}"
    where = {"object": path}
    if bucket and path.startswith(f"gs://{bucket}/"):  # legacy metadata: the bucket in `bucket`
        where = {"bucket": bucket, "object": path[len(f"gs://{bucket}/") :]}
    return finding(kind, **where, size=size, repository=repository, detail=detail)
