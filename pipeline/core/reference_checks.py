"""Checks on a parsed manifest's references that need its place in the graph.

* an index chain deeper than the cap, or one that loops back into itself, becomes an
  ``invalid_manifest`` naming the chain, root first, and the children left unread;
* a reference by a digest algorithm other than sha256 becomes ``unverifiable_digest``.

Pure: records in, records and finding rows out.
"""

from __future__ import annotations

from typing import Any

from pipeline.core import crosscheck as cc
from pipeline.core.findings import Kind, finding
from pipeline.core.manifests import MAX_INDEX_DEPTH
from pipeline.core.oci_rules import REGISTERED_ALGORITHMS, digest_algorithm


def stop_deep_or_cyclic_chain(record: dict[str, Any], children: list[str]) -> None:
    """An index whose children would go past the depth cap, or back into its own chain, is an
    ``invalid_manifest`` naming the chain (root first) and the children left unread: never a silent drop.

    A cycle needs bytes that do not hash to their name (a directory file named by another
    digest); the digest mismatch is reported too.
    """
    # ``parents`` is a sorted set; ``chain`` (set while fetching) keeps the order, root first.
    chain = record.get("chain") or [*record["parents"], record["digest"]]
    looping = [child for child in children if child in chain]
    if looping:
        shown = " → ".join([*chain, looping[0]])
        record.update(
            status=cc.INVALID, children=[], chain_cut=True, detail=f"index chain loops: {shown}; not followed further"
        )
    elif len(record["parents"]) >= MAX_INDEX_DEPTH:
        shown = " → ".join(chain)
        unread = ", ".join(children[:5]) + (f" and {len(children) - 5} more" if len(children) > 5 else "")
        record.update(
            status=cc.INVALID,
            children=[],
            chain_cut=True,
            detail=f"index chain deeper than {MAX_INDEX_DEPTH} levels: {shown}; "
            f"its {len(children)} child manifest(s) are not read: {unread or 'none'}",
        )


def ancestors(parents_of: dict[str, set[str]]) -> dict[str, set[str]]:
    """Every index above each manifest, from the direct parents each was listed by.

    The graph is a DAG for honest content; bytes that do not hash to their name can make a
    cycle, so each walk keeps its own visited set (a manifest is never its own ancestor).
    """
    above: dict[str, set[str]] = {}
    for digest in parents_of:
        seen: set[str] = set()
        stack = list(parents_of[digest])
        while stack:
            parent = stack.pop()
            if parent in seen or parent == digest:
                continue
            seen.add(parent)
            stack.extend(parents_of.get(parent, ()))
        above[digest] = seen
    return above


def unverifiable_findings(record: dict[str, Any]) -> list[dict[str, Any]]:
    """A reference by another algorithm than sha256 (a layer or config by sha512, anything by an
    unregistered algorithm): valid per the image-spec, but no sha256-named object can prove it."""
    images = cc.images_of(record)
    return [
        finding(
            Kind.UNVERIFIABLE_DIGEST,
            object=record["source"],
            repository=record["repository"],
            manifest_digest=record["digest"],
            digest=digest,
            images=images,
            tags=record["tags"],
            detail=_why_unverifiable(digest_algorithm(digest)),
        )
        for digest in record.get("unverifiable", ())
    ]


def _why_unverifiable(algorithm: str | None) -> str:
    if algorithm in REGISTERED_ALGORITHMS:
        return (
            f"referenced by a {algorithm} digest: the bucket names blobs by sha256, so no object can be "
            "matched with it (not counted as missing)"
        )
    return (
        f"digest algorithm {algorithm!r} is not registered in the image-spec (sha256, sha512): "
        "the content cannot be verified (not read, not counted as missing)"
    )
