"""The second guard of reclaim: blobs of an image the bucket itself shows are never planned (pure).

The first guard is a config claim: every manifest source covering a bucket says it enumerates
every manifest (``pipeline/core/reclaim.py``). Claims can be wrong. The bucket's own bytes are
evidence that no claim can overrule, and the single read of every object already sees them:

* a **complete image from blobs**: a config whose every ``diff_id`` has a layer in the scanned
  buckets (a ``recovered-*.jsonl`` row with ``complete: true``). Its config and layers are claimed
  for the image, named by its config digest;
* a **manifest stored as a blob**: an image manifest or index read in the bucket (recognised by
  the strict manifest parser in the same read). The manifest blob and every blob it names are
  claimed, for the image named by its config digest (an index, or a schema 1 manifest, which
  names no config: by the manifest's own digest).

An ``unreferenced_blob`` that some image claims is *protected*: it stays out of reclaim-plan.txt
unless the user names that image in ``reclaim.accept_losing`` (or sets it to ``all``).
Protecting the blobs of an image whose other blobs are missing costs only bytes left in place.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

Row = dict[str, Any]

ALL = "all"
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def check_accept_losing(value: Any) -> tuple[str, ...] | str:
    """``reclaim.accept_losing``: ``all``, or a list of image config digests (``sha256:<64 hex>``)."""
    if value is None:
        return ()
    if value == ALL:
        return ALL
    if isinstance(value, str):
        value = [value]
    if isinstance(value, (list, tuple)):  # a flag may be repeated, and each may list several
        value = [part for item in value for part in (item.split(",") if isinstance(item, str) else [item])]
        value = [item.strip() if isinstance(item, str) else item for item in value if item != ""]
        if ALL in value:
            if len(value) == 1:
                return ALL
            raise ValueError("expected `all` alone, or a list of image config digests, not both")
    if not isinstance(value, list):
        raise ValueError("expected `all` or a list of image config digests (sha256:<64 lowercase hex>)")
    out = []
    for index, item in enumerate(value):
        item = item.strip() if isinstance(item, str) else item
        if not isinstance(item, str) or not _DIGEST.fullmatch(item):
            raise ValueError(f"[{index}] ({item!r}): expected an image config digest, sha256:<64 lowercase hex>")
        out.append(item)
    return tuple(dict.fromkeys(out))


def accepted(image: str, accept_losing: tuple[str, ...] | str) -> bool:
    return accept_losing == ALL or image in accept_losing


def _last_history(row: Row) -> str | None:
    lines = list(row.get("history_tail") or ()) or list(row.get("history_head") or ())
    return lines[-1] if lines else None


def image_facts(row: Row) -> Row:
    """What a person needs to recognise a recovered image (the same fields the verdict lists)."""
    return {
        "config_digest": row["config_digest"],
        "bucket": row["bucket"],
        "bytes": (row.get("total_size") or 0) + (row.get("config_size") or 0),
        "created": row.get("created"),
        "os": row.get("os"),
        "architecture": row.get("architecture"),
        "labels": dict(row.get("labels") or {}),
        "last_history": _last_history(row),
        # The first and last Dockerfile steps the recovered row keeps: what the image was.
        "history": [*(row.get("history_head") or ()), *(row.get("history_tail") or ())],
        "history_count": row.get("history_count") or 0,
        "via": "config and every layer in the bucket",
    }


def claims_of_recovered(row: Row) -> list[tuple[str, Row]]:
    """``(blob digest, image facts)`` for the config and every layer of a complete recovered image."""
    if not row.get("complete"):
        return []
    facts = image_facts(row)
    digests = [row["config_digest"], *(layer["digest"] for layer in row.get("layers") or ())]
    return [(digest, facts) for digest in dict.fromkeys(digests)]


def claims_of_manifest_blob(fact: Row) -> list[tuple[str, Row]]:
    """``(blob digest, image facts)`` for a manifest stored as a blob and every blob it names."""
    image = fact.get("config") or fact["digest"]
    facts = {
        "config_digest": image,
        "bucket": fact["bucket"],
        "bytes": fact["size"] or 0,
        "created": None,
        "os": None,
        "architecture": None,
        "labels": {},
        "last_history": None,
        "history": [],
        "history_count": 0,
        "via": f"manifest {fact['digest']} stored as a blob ({fact.get('media_type')})",
        "manifest_digest": fact["digest"],
    }
    digests = [fact["digest"], *fact.get("references", ())]
    return [(digest, facts) for digest in dict.fromkeys(digests)]


def guard(rows: Iterable[Row], claims: Iterable[Row], accept_losing: tuple[str, ...] | str) -> tuple[list[Row], list]:
    """For one digest: the unreferenced rows that may be planned, and ``(row, images)`` for those
    protected by images the user did not accept losing (each image once, by config digest)."""
    rows, claims = list(rows), list(claims)
    holding = {c["config_digest"]: c for c in claims if not accepted(c["config_digest"], accept_losing)}
    if not holding:
        return rows, []
    images = [holding[k] for k in sorted(holding)]
    return [], [(row, images) for row in rows]
