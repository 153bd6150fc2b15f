"""Manifest cross-check: from fetched manifests to references, and from a join by digest to findings.

Three kinds of plain-dict records flow through the pipeline (all picklable):

* a manifest record: one fetched (or unfetchable) manifest in one repository,
  with the tags and parent indexes that lead to it; several records for the same
  ``(repository, digest)`` (listed twice, or both listed and reached as an index
  child) are merged into one by ``merge_records``;
* a reference: ``(blob digest, ref)`` for every config, layer and schema 1
  ``blobSum`` a manifest names, carrying the images and tags that need it;
* a blob fact: ``(digest, {bucket, object, generation, size, crc32c, storage_class,
  time_created, intact})`` for every listed object (``intact`` is None when the object
  was listed but not hashed).

``classify_joined`` turns one ``CoGroupByKey`` group into findings.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pipeline.core.findings import Kind, finding
from pipeline.core.manifests import (
    MAX_INDEX_DEPTH,
    SCHEMA1_TYPES,
    Manifest,
    ManifestError,
    normalise_media_type,
    parse_manifest,
    verify,
)
from pipeline.core.migration import registry_only_finding, split_successor

Row = dict[str, Any]
Record = dict[str, Any]

OK = "ok"
UNAVAILABLE = "unavailable"
INVALID = "invalid"
# A reference that only says "this digest is a manifest": it keeps a manifest
# stored in the bucket from counting as unreferenced, but is never missing.
MANIFEST_ROLE = "manifest"
# A foreign (non-distributable) layer: fetched from its ``urls``, so never missing,
# but a copy in the bucket is still referenced (and size-checked), not reclaimable.
FOREIGN_ROLE = "foreign_layer"
OPTIONAL_ROLES = frozenset({MANIFEST_ROLE, FOREIGN_ROLE})


def image_name(repository: str, digest: str) -> str:
    return f"{repository}@{digest}"


def tag_name(repository: str, tag: str) -> str:
    return f"{repository}:{tag}"


def new_record(
    repository: str,
    digest: str,
    *,
    tags: Iterable[str] = (),
    parents: Iterable[str] = (),
    bucket: str | None = None,
    source: str | None = None,
    source_index: int | None = None,
) -> Record:
    """A manifest record before its outcome is known. ``tags`` are ``repo:tag`` strings;
    ``source_index`` is the manifest source's place in the run's source list."""
    return {
        "repository": repository,
        "digest": digest,
        "claimed": digest is not None,  # False: a file that names no digest, keyed by its own hash
        "tags": sorted(set(tags)),
        "parents": sorted(set(parents)),
        "bucket": bucket,
        "source": source,
        "sources": [] if source_index is None else [source_index],
        "status": None,
        "http_status": None,
        "detail": None,
        "mismatch": None,  # {"actual": digest, "claimed_by": what claimed the expected one}
        "media_type": None,
        "size": None,
        "blobs": [],  # [role, digest, size, foreign]
        "children": [],  # [digest, size, platform, media type]
        "declared": [],  # [index digest, size, media type]: what each index that lists it declares
    }


def evaluate(
    record: Record,
    data: bytes,
    media_type: str | None,
    header_digest: str | None = None,
    *,
    claimed_by: str = "reference digest",
    max_bytes: int | None = None,
) -> Manifest | None:
    """Fill ``record`` from the fetched bytes: digest check, then parse. Returns the Manifest, if parsed.

    The digest the manifest was asked for (``record["digest"]``: the reference
    digest, the ``manifest`` map key, the file name) and the server's
    ``Docker-Content-Digest`` must both equal the SHA-256 of the bytes.
    """
    record["size"] = len(data)
    actual = verify(data, record["digest"], media_type)
    if actual is not None:
        record["mismatch"] = {"actual": actual, "claimed_by": claimed_by}
    elif header_digest and header_digest != record["digest"]:
        record["mismatch"] = {
            "actual": record["digest"],
            "claimed_by": "Docker-Content-Digest header",
            "expected": header_digest,
        }
    try:
        kwargs = {} if max_bytes is None else {"max_bytes": max_bytes}
        manifest = parse_manifest(data, media_type, **kwargs)
    except ManifestError as err:
        record["status"] = INVALID
        record["detail"] = str(err)
        record["media_type"] = normalise_media_type(media_type)
        return None
    record["status"] = OK
    record["media_type"] = manifest.media_type
    record["blobs"] = [[d.role, d.digest, d.size, d.foreign] for d in manifest.blobs]
    record["children"] = [[d.digest, d.size, d.platform, d.media_type] for d in manifest.children]
    if len(record["parents"]) >= MAX_INDEX_DEPTH and manifest.is_index:
        record["status"] = INVALID
        record["detail"] = f"index nested more than {MAX_INDEX_DEPTH} levels deep; children not followed"
        record["children"] = []
        record["chain_cut"] = True
    return manifest


def mark_unavailable(record: Record, detail: str, http_status: int | None = None) -> Record:
    record["status"] = UNAVAILABLE
    record["detail"] = detail
    record["http_status"] = http_status
    return record


def child_record(parent: Record, child_digest: str, size: int | None = None, media_type: str | None = None) -> Record:
    """The record of an index's child: same repository, the parent's tags, the parent chain,
    and the ``size`` and ``media_type`` the index's descriptor declares for it."""
    record = new_record(
        parent["repository"],
        child_digest,
        tags=parent["tags"],
        parents=[*parent["parents"], parent["digest"]],
        bucket=parent["bucket"],
        source=parent["source"],
    )
    record["sources"] = list(parent.get("sources", ()))
    record["declared"] = [[parent["digest"], size, media_type]]
    return record


def merge_records(records: Iterable[Record]) -> Record:
    """One record per (repository, digest): the best outcome, with every tag and parent that leads to it."""
    records = list(records)
    rank = {OK: 0, INVALID: 1, UNAVAILABLE: 2, None: 3}
    # A chain cut at the depth cap (or a loop) outweighs the same index read whole elsewhere (a
    # directory reads every file as a root too): the images above the cut were not checked
    # through it, and must never read as intact (reference_checks.stop_deep_or_cyclic_chain).
    cut = [r for r in records if r.get("chain_cut")]
    best = dict(min(cut or records, key=lambda r: (rank[r["status"]], r["mismatch"] is None)))
    best["tags"] = sorted({t for r in records for t in r["tags"]})
    best["parents"] = sorted({p for r in records for p in r["parents"]})
    best["sources"] = sorted({i for r in records for i in r.get("sources", ())})
    scopes = {r["bucket"] for r in records}
    best["buckets"] = [None] if None in scopes else sorted(scopes)
    declared = {tuple(d) for r in records for d in r.get("declared", ())}
    best["declared"] = [list(d) for d in sorted(declared, key=repr)]
    return best


def images_of(record: Record) -> list[str]:
    """The image itself and every index that leads to it, as ``repo@digest``."""
    if not record.get("claimed", True) and record["status"] != OK:
        return []  # an object that is not a manifest names no image
    repo = record["repository"]
    return sorted({image_name(repo, record["digest"]), *(image_name(repo, p) for p in record["parents"])})


def _reference(record: Record) -> str:
    own = [t for t in record["tags"]]
    return own[0].rsplit(":", 1)[1] if own else record["digest"]


# Manifest-level findings that mean a manifest was not read, parsed or verified, or names a
# blob by a digest no bucket object can be matched with: reclaim is not proven where they
# occur (pipeline/core/reclaim.py).
UNREAD_KINDS = frozenset(
    {
        Kind.MANIFEST_UNAVAILABLE.value,
        Kind.INVALID_MANIFEST.value,
        Kind.MANIFEST_DIGEST_MISMATCH.value,
        Kind.UNVERIFIABLE_DIGEST.value,
    }
)


def manifest_label(record: Record) -> str:
    """How a blocker names a manifest: ``repo@digest``, or the file when no digest names it."""
    if record["digest"] and record.get("claimed", True):
        return image_name(record["repository"], record["digest"])
    return record["source"] or image_name(record["repository"], record["digest"])


def _location(record: Record) -> dict[str, Any]:
    """Where a manifest file lives: a file in the bucket the record's blobs use (legacy metadata)
    is named by ``bucket`` and ``object``; any other file by its full path in ``object``."""
    source, bucket = record["source"], record["bucket"]
    if source and bucket and source.startswith(f"gs://{bucket}/"):
        return {"bucket": bucket, "object": source[len(f"gs://{bucket}/") :]}
    return {"object": source}


def record_findings(record: Record) -> list[Row]:
    """Manifest-level findings: manifest_unavailable, invalid_manifest, manifest_digest_mismatch."""
    manifest_digest = record["digest"] if images_of(record) else None
    common = dict(
        **_location(record),
        repository=record["repository"],
        repositories=[record["repository"]],
        reference=_reference(record),
        manifest_digest=manifest_digest,
        manifest_digests=[manifest_digest] if manifest_digest else [],
        digest=record["digest"],
        images=images_of(record),
        tags=record["tags"],
    )
    rows = []
    parents = f" (child of {', '.join(record['parents'])})" if record["parents"] else ""
    if record["status"] == UNAVAILABLE:
        rows.append(
            finding(
                Kind.MANIFEST_UNAVAILABLE,
                **common,
                http_status=record["http_status"],
                detail=f"{record['detail']}{parents}",
            )
        )
    if record["mismatch"]:
        mismatch = record["mismatch"]
        rows.append(
            finding(
                Kind.MANIFEST_DIGEST_MISMATCH,
                **common,
                size=record["size"],
                expected=mismatch.get("expected", record["digest"]),
                actual=mismatch["actual"],
                detail=f"SHA-256 of the {record['size']} bytes served differs from the {mismatch['claimed_by']}"
                f"{parents}",
            )
        )
    if record["status"] == INVALID:
        rows.append(
            finding(
                Kind.INVALID_MANIFEST,
                **common,
                size=record["size"],
                actual=record["media_type"],
                detail=f"{record['detail']}{parents}",
            )
        )
    rows.extend(_declaration_findings(record, common))
    return rows


def _same_type(declared: str, actual: str | None) -> bool:
    return declared == actual or (declared in SCHEMA1_TYPES and actual in SCHEMA1_TYPES)


def _declaration_findings(record: Record, common: dict[str, Any]) -> list[Row]:
    """An index's descriptor that disagrees with the child manifest it names (only for a parsed child).

    The digest matched, so the served bytes are the right ones and the index is what lies:
    a wrong ``size`` is a ``size_mismatch`` (as for a blob), a wrong ``mediaType`` an
    ``invalid_manifest``. Clients that trust the descriptor reject or misread the image.
    """
    if record["status"] != OK or record["size"] is None:
        return []
    rows = []
    for index, size, media_type in record.get("declared", ()):
        if size is not None and size != record["size"]:
            rows.append(
                finding(
                    Kind.SIZE_MISMATCH,
                    **common,
                    size=record["size"],
                    expected=str(size),
                    actual=str(record["size"]),
                    detail=f"index {index} declares this child manifest as {size} bytes; "
                    f"the {record['size']} bytes served hash to the declared digest",
                )
            )
        if media_type and not _same_type(media_type, record["media_type"]):
            rows.append(
                finding(
                    Kind.INVALID_MANIFEST,
                    **common,
                    size=record["size"],
                    expected=media_type,
                    actual=record["media_type"],
                    detail=f"index {index} declares this child manifest as {media_type}; it is {record['media_type']}",
                )
            )
    return rows


def counts_as_scanned(record: Record) -> bool:
    """A manifest that was read: fetched and either parsed or claimed by a digest."""
    return record["status"] == OK or (record["status"] == INVALID and record.get("claimed", True))


def record_references(record: Record) -> list[tuple[str, dict[str, Any]]]:
    """``(blob digest, ref)`` for every blob the manifest names, plus the manifest's own digest.

    Foreign layers get the role ``foreign_layer``: never missing, but a copy in the bucket stays referenced.
    """
    base = {
        "repository": record["repository"],
        "manifest_digest": record["digest"],
        "images": images_of(record),
        "tags": record["tags"],
    }
    refs = []
    # The same manifest listed by sources of different buckets protects its blobs in each of them.
    for bucket in record.get("buckets") or [record["bucket"]]:
        refs.append((record["digest"], {**base, "bucket": bucket, "role": MANIFEST_ROLE, "size": None}))
        for role, digest, size, foreign in record["blobs"]:
            role = FOREIGN_ROLE if foreign else role
            refs.append((digest, {**base, "bucket": bucket, "role": role, "size": size}))
    return refs


def _in_scope(ref: dict[str, Any], bucket: str) -> bool:
    return ref.get("bucket") in (None, bucket)


def _named(refs: list[dict[str, Any]]) -> dict[str, Any]:
    """The image and tag names of a set of refs: every repository and manifest in the lists, and
    ``repository`` / ``manifest_digest`` only when there is exactly one (a column keeps one type)."""
    repositories = sorted({r["repository"] for r in refs})
    manifests = sorted({r["manifest_digest"] for r in refs})
    return {
        "images": sorted({i for r in refs for i in r["images"]}),
        "tags": sorted({t for r in refs for t in r["tags"]}),
        "repositories": repositories,
        "manifest_digests": manifests,
        "repository": repositories[0] if len(repositories) == 1 else None,
        "manifest_digest": manifests[0] if len(manifests) == 1 else None,
    }


def _declared_size(refs: list[dict[str, Any]], actual: int | None) -> int | None:
    """The size the manifests declare for a blob, when they agree on one that differs from ``actual``."""
    sizes = {r["size"] for r in refs if r["size"] is not None}
    if len(sizes) == 1 and actual not in sizes:
        return next(iter(sizes))
    return None


def _object_fields(blob: dict[str, Any]) -> dict[str, Any]:
    keys = ("bucket", "object", "generation", "size", "crc32c", "storage_class", "time_created")
    return {key: blob.get(key) for key in keys}


def classify_joined(
    digest: str, refs: Iterable[dict[str, Any]], blobs: Iterable[dict[str, Any]], damaged: Iterable[Row] = ()
) -> list[Row]:
    """Findings for one digest, given what references it, the listed objects that carry it,
    and the object findings (digest_mismatch, read_error, vanished) already made for them.

    * referenced, no object in scope -> ``missing_blob`` naming every image and tag
      (not for a manifest's own digest, nor for a foreign layer, which lives at its ``urls``);
    * object size differs from a descriptor's size -> ``size_mismatch`` (unless the object
      is already known to be corrupt, which says more);
    * an object nobody references -> ``unreferenced_blob`` with its size and generation
      (reclaimable only where pipeline/core/reclaim.py proves it);
    * an object finding is passed on, naming the manifests and images the damaged blob
      breaks, and the size the manifests declare (``expected_size``) when it differs.
    """
    refs, blobs, damaged = list(refs), list(blobs), list(damaged)
    blob_refs = [r for r in refs if r["role"] != MANIFEST_ROLE]
    required = [r for r in refs if r["role"] not in OPTIONAL_ROLES]
    rows: list[Row] = []

    damaged_objects = set()
    for row in damaged:
        scoped = [r for r in blob_refs if _in_scope(r, row["bucket"])]
        out = dict(row)
        if scoped:
            named = _named(scoped)
            out.update(named)
            note = f"breaks {len(named['images'])} image(s)"
            declared = _declared_size(scoped, row.get("size"))
            if declared is not None:
                out["expected_size"] = declared
                note += f"; the manifest declares {declared} bytes"
            out["detail"] = f"{row['detail']}; {note}" if row.get("detail") else note
        damaged_objects.add((row["bucket"], row["object"]))
        rows.append(out)

    for blob in blobs:
        scoped_all = [r for r in refs if _in_scope(r, blob["bucket"])]
        if not scoped_all:
            rows.append(
                finding(
                    Kind.UNREFERENCED_BLOB,
                    **_object_fields(blob),
                    digest=digest,
                    detail="referenced by no manifest that was scanned",
                )
            )
            continue
        if blob.get("intact") is False or (blob["bucket"], blob["object"]) in damaged_objects:
            continue
        by_size: dict[int, list] = {}
        for ref in scoped_all:
            if ref["role"] != MANIFEST_ROLE and ref["size"] is not None and ref["size"] != blob["size"]:
                by_size.setdefault(ref["size"], []).append(ref)
        for declared, group in sorted(by_size.items()):
            named = _named(group)
            rows.append(
                finding(
                    Kind.SIZE_MISMATCH,
                    **_object_fields(blob),
                    digest=digest,
                    expected=str(declared),
                    actual=str(blob["size"]),
                    expected_size=declared,
                    **named,
                    detail=f"manifest says {declared} bytes, the object has {blob['size']}; "
                    f"{len(named['images'])} image(s) affected",
                )
            )

    # Missing: per bucket scope, a reference with no object in that scope.
    scopes: dict[str | None, list] = {}
    for ref in required:
        scopes.setdefault(ref.get("bucket"), []).append(ref)
    for scope, group in sorted(scopes.items(), key=lambda item: item[0] or ""):
        present = any(scope is None or blob["bucket"] == scope for blob in blobs)
        if present:
            continue
        group, successor = split_successor(group)
        if not group:  # only images of the successor registry need it (docs/recovery.md)
            rows.append(registry_only_finding(digest, scope, successor, _named(successor)))
            continue
        named = _named(group)
        roles = sorted({r["role"] for r in group})
        sizes = sorted({r["size"] for r in group if r["size"] is not None})
        rows.append(
            finding(
                Kind.MISSING_BLOB,
                bucket=scope,
                digest=digest,
                size=sizes[0] if len(sizes) == 1 else None,
                expected=digest,
                **named,
                detail=f"{'/'.join(roles)} referenced by {len(named['images'])} image(s) "
                f"is not in {'bucket ' + scope if scope else 'any scanned bucket'}",
            )
        )
    return rows
