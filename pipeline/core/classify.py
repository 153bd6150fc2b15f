"""Turn what was listed and read into report rows: one verified row or one finding per object."""

from __future__ import annotations

from typing import Any

from pipeline.core.blobs import ListedObject, ReadFailure, ReadResult
from pipeline.core.digests import digest_of_hex, parse_blob_name
from pipeline.core.findings import Kind, finding, object_fields, verified

Row = dict[str, Any]


def classify_name(obj: ListedObject, prefix: str) -> tuple[str | None, Row | None]:
    """``(digest, None)`` when the name is a well-formed digest, else ``(None, malformed_name finding)``."""
    parsed = parse_blob_name(obj.name, prefix)
    if parsed.digest is not None:
        return parsed.digest, None
    return None, finding(
        Kind.MALFORMED_NAME,
        **object_fields(obj),
        expected="sha256:<64 lowercase hex>",
        actual=obj.name[len(prefix) :] if obj.name.startswith(prefix) else obj.name,
        detail=parsed.problem,
    )


def blob_fact(digest: str, obj: ListedObject, intact: bool | None) -> tuple[str, Row]:
    """What the manifest cross-check joins on: the object a digest names, keyed by that digest.

    ``intact`` is None when the object was not hashed (``manifests`` mode).
    """
    return digest, {**object_fields(obj), "intact": intact}


def classify_read(obj: ListedObject, claimed_digest: str, result: ReadResult) -> tuple[Row | None, Row | None]:
    """``(verified_row, finding)``: exactly one of the two is set.

    ``result`` comes from the read protocol (``pipeline.core.read_verdict``): a
    successful result whose digest is not the name's was confirmed by a second
    complete read, so only then is it damage, and only then is its crc32c compared.
    """
    common = {**object_fields(obj), "digest": claimed_digest, "reads": result.reads}
    if result.failure is ReadFailure.VANISHED:
        return None, finding(
            Kind.VANISHED,
            **common,
            http_status=result.http_status,
            detail=result.reason or "listed, then not found when read",
        )
    if result.failure in (ReadFailure.UNREADABLE, ReadFailure.UNSTABLE):
        return None, finding(
            Kind.READ_ERROR,
            **common,
            http_status=result.http_status,
            detail=f"{result.reason} (after {result.attempts} attempt(s), {result.reads} complete read(s))",
        )

    actual = digest_of_hex(result.sha256)
    if actual == claimed_digest:
        return (
            verified(
                bucket=obj.bucket,
                object=obj.name,
                generation=obj.generation,
                size=result.size,
                crc32c=result.crc32c,
                sha256=result.sha256,
                storage_class=obj.storage_class,
                time_created=obj.time_created,
            ),
            None,
        )
    crc32c_match = None if obj.crc32c is None else result.crc32c == obj.crc32c
    return None, finding(
        Kind.DIGEST_MISMATCH,
        **{**common, "size": result.size},
        expected=claimed_digest,
        actual=actual,
        crc32c_match=crc32c_match,
        detail=_mismatch_story(obj, result, crc32c_match),
    )


def _mismatch_story(obj: ListedObject, result: ReadResult, crc32c_match: bool | None) -> str:
    parts = [f"confirmed by {result.reads} complete reads that agree"] if result.reads > 1 else []
    if result.size != obj.size:
        parts.append(f"read {result.size} bytes, listing said {obj.size}")
    if crc32c_match is True:
        parts.append("bytes match the crc32c GCS stored: the object was written with wrong content")
    elif crc32c_match is False:
        parts.append("bytes differ from the crc32c GCS stored: the object was damaged after it was written")
    else:
        parts.append("GCS stored no crc32c to tell a bad write from later damage")
    if result.server_crc32c is not None and obj.crc32c is not None and result.server_crc32c != obj.crc32c:
        parts.append(f"GCS sent x-goog-hash crc32c {result.server_crc32c}, the listing says {obj.crc32c}")
    return "; ".join(parts)
