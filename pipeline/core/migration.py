"""Migration audit against a successor registry (``role: successor``): pure, no I/O, no Beam.

The successor is the registry that took over a bucket's images (Artifact Registry behind
``gcr.io``, or ``LOCATION-docker.pkg.dev/PROJECT/REPO``). Images pushed to it after the
migration reference blobs that were never in the bucket: for them a missing blob is
expected, ``in_registry_only`` (info), not ``missing_blob``. For each bucket blob, the
question is whether an image in the successor still uses it (migrated) or not.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from pipeline.core.findings import Kind, finding
from pipeline.values import decimal_size

Row = dict[str, Any]

MANIFEST_ROLE = "manifest"  # as pipeline.core.crosscheck: a manifest's own digest
SUCCESSOR_BLOBS = "successor_blobs"
SUCCESSOR_BYTES = "successor_bytes"
OTHER_BLOBS = "other_blobs"
OTHER_BYTES = "other_bytes"
COLUMNS = (SUCCESSOR_BLOBS, SUCCESSOR_BYTES, OTHER_BLOBS, OTHER_BYTES)


def is_successor(ref: Row) -> bool:
    return bool(ref.get("successor"))


def split_successor(refs: Iterable[Row]) -> tuple[list[Row], list[Row]]:
    """``(others, successor refs)``: a blob needed by any other source is still missing for it."""
    refs = list(refs)
    return [r for r in refs if not is_successor(r)], [r for r in refs if is_successor(r)]


def registry_only_finding(digest: str, scope: str | None, refs: list[Row], named: dict[str, Any]) -> Row:
    """A blob that only successor images reference and that the bucket does not hold."""
    sizes = sorted({r["size"] for r in refs if r.get("size") is not None})
    return finding(
        Kind.IN_REGISTRY_ONLY,
        bucket=scope,
        digest=digest,
        size=sizes[0] if len(sizes) == 1 else None,
        **named,
        detail=f"held by the successor registry only ({len(named['images'])} image(s)); "
        f"not in {'bucket ' + scope if scope else 'any scanned bucket'}, "
        "as expected for images pushed after the migration",
    )


def _in_scope(ref: Row, bucket: str) -> bool:
    return ref.get("bucket") in (None, bucket)


def blob_migration(refs: Iterable[Row], blobs: Iterable[Row]) -> tuple[Counter, list[tuple[tuple[str, str], Row]]]:
    """For one digest: per-bucket counts (``(bucket, column)`` -> n) and, per successor image that
    uses a bucket blob, ``((bucket, image), {repository, manifest_digest, tags, blobs, bytes})``."""
    refs = [r for r in refs if r["role"] != MANIFEST_ROLE]
    counts: Counter = Counter()
    images: list[tuple[tuple[str, str], Row]] = []
    for blob in blobs:
        users = [r for r in refs if is_successor(r) and _in_scope(r, blob["bucket"])]
        size = blob["size"] or 0
        if not users:
            counts.update({(blob["bucket"], OTHER_BLOBS): 1, (blob["bucket"], OTHER_BYTES): size})
            continue
        counts.update({(blob["bucket"], SUCCESSOR_BLOBS): 1, (blob["bucket"], SUCCESSOR_BYTES): size})
        seen = set()
        for ref in users:
            image = f"{ref['repository']}@{ref['manifest_digest']}"
            if image in seen:
                continue
            seen.add(image)
            images.append(
                (
                    (blob["bucket"], image),
                    {
                        "repository": ref["repository"],
                        "manifest_digest": ref["manifest_digest"],
                        "tags": list(ref["tags"]),
                        "blobs": 1,
                        "bytes": size,
                    },
                )
            )
    return counts, images


def migrated_image_row(bucket: str, image: str, parts: Iterable[Row]) -> Row:
    """One successor image's share of a bucket: how many of its blobs and bytes are there."""
    parts = list(parts)
    return {
        "bucket": bucket,
        "image": image,
        "repository": parts[0]["repository"],
        "manifest_digest": parts[0]["manifest_digest"],
        "tags": sorted({t for p in parts for t in p["tags"]}),
        "blobs_in_bucket": sum(p["blobs"] for p in parts),
        "bytes_in_bucket": sum(p["bytes"] for p in parts),
    }


def successor_table(counts: Counter) -> dict[str, dict[str, int]]:
    """``summary.json``'s ``successor``: ``{bucket: {successor_blobs, successor_bytes, other_blobs, other_bytes}}``."""
    return {
        bucket: {column: counts[(bucket, column)] for column in COLUMNS}
        for bucket in sorted({bucket for bucket, _ in counts})
    }


def bucket_lines(table: dict[str, dict[str, int]]) -> list[str]:
    """The summary's line per bucket."""
    lines = []
    for bucket, row in table.items():
        n, x = row[SUCCESSOR_BLOBS], row[SUCCESSOR_BYTES]
        m, y = row[OTHER_BLOBS], row[OTHER_BYTES]
        lines.append(
            f"{bucket}: {n} blobs / {decimal_size(x)} belong to images in the successor registry; "
            f"{m} blobs / {decimal_size(y)} belong to no image there"
        )
    return lines
