"""Reclaim that cannot cause loss: when an unreferenced blob may be deleted, and what deleting it frees.

An unreferenced blob is reclaimable only when all of these hold for its bucket:

* some manifest source other than legacy metadata covers the bucket, and the bucket's
  legacy metadata was read too (``manifests.legacy_metadata``);
* every source that covers the bucket is *complete*: it can enumerate every manifest
  whose blobs live there, untagged ones included;
* every manifest those sources listed was read, parsed and verified (no
  ``manifest_unavailable``, ``invalid_manifest``, ``manifest_digest_mismatch`` or
  ``unverifiable_digest`` from them);
* nothing references the blob (the cross-check made it an ``unreferenced_blob``).

Otherwise the bucket's unreferenced blobs are still reported, as ``info``, but are not
reclaimable, and each reason is a *blocker* naming the bucket, the source and the manifests.
An untagged manifest that a catalog walk cannot see still protects its blobs in reality;
a source that cannot see it cannot prove a blob unused.

Pure: no I/O, no Beam.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pipeline.core import pricing

PLAN_FILE = "reclaim-plan.txt"
# Manifests named per source in a blocker; the count says how many there were.
SAMPLE = 20
LEGACY = "legacy"
_DOMAIN_SCOPED = re.compile(r"[a-z0-9-]+(?:\.[a-z0-9-]+)+/[a-z0-9-]+")


@dataclass(frozen=True)
class SourceFacts:
    """What reclaim needs to know of one manifest source (index as in the run's source list)."""

    index: int
    kind: str
    label: str
    bucket: str | None
    complete: bool
    reason: str  # why it is, or is not, complete


def _whole_project(root: str) -> bool:
    """A GCR walk root that is a whole project: ``my-project`` or domain-scoped ``example.com/my-project``."""
    return "/" not in root or _DOMAIN_SCOPED.fullmatch(root) is not None


_FILE_KINDS = ("directory", "oci_layout")


def _held_only_what_was_put_in(kind: str, claimed: bool, bucket: str | None) -> tuple[bool, str]:
    """A folder or an OCI layout holds only what was put in it: it proves a blob unused only where the
    config says, for one named bucket, that it holds every manifest (untagged too) whose blobs use it.
    Even an OCI layout's index.json names only the manifests copied into that layout, not every
    image that shares the bucket, so with one bucket scanned it still does not speak for the bucket."""
    what = "folder" if kind == "directory" else "OCI layout"
    a_what = "a folder" if kind == "directory" else "an OCI layout"
    if not claimed:
        return False, (
            f"{a_what} holds only what was put in it; set `complete: true` and `bucket:` on the source if it "
            "holds every manifest (untagged ones too) whose blobs use that bucket"
        )
    if bucket is None:
        return False, (
            f"`complete: true` without `bucket:`: {a_what} holds only what was put in it, so it can speak "
            "for a bucket only when the config names that bucket"
        )
    return (
        True,
        f"the config says `complete: true` for bucket {bucket}: the {what} holds every manifest whose blobs use it",
    )


def source_facts(index: int, spec: Any, scanned_buckets: Iterable[str]) -> SourceFacts:
    """The completeness of one source (a ``SourceSpec``) for its scope, with the reason."""
    kind, location = spec.kind, spec.location
    bucket = spec.bucket
    if kind == "registry" and spec.gcr_projects:
        label = f"registry {location} (gcr_projects: {', '.join(spec.gcr_projects)})"
        partial = [root for root in spec.gcr_projects if not _whole_project(root)]
        complete = not partial
        reason = (
            "GCR / Artifact Registry walk: each repository's tags/list `manifest` map lists untagged manifests too"
            if complete
            else f"walks only part of a project ({', '.join(partial)}): other repositories use the bucket too"
        )
    elif kind == "registry" and spec.repositories:
        label = f"registry {location} (repositories: {', '.join(spec.repositories)})"
        complete = False
        reason = "reads only the repositories it names: manifests of every other repository are not seen"
    elif kind == "registry":
        label = f"registry {location} (catalog walk)"
        complete = False
        reason = "a v2 registry walked through _catalog and tags/list cannot see untagged manifests"
    elif kind in ("directory", "oci_layout"):
        label = f"{kind} {location}"
        complete, reason = _held_only_what_was_put_in(kind, bool(getattr(spec, "complete", False)), bucket)
    elif kind == LEGACY:
        label = f"legacy metadata gs://{location}/containers/repositories/"
        complete = True
        reason = "the bucket's own pre-2017 metadata lists every manifest it kept"
    else:
        raise ValueError(f"unknown manifest source kind {kind!r}")
    if complete and bucket is None and kind not in _FILE_KINDS:
        scanned = list(scanned_buckets)
        if len(scanned) != 1:
            complete = False
            reason = (
                f"names no `bucket` while {len(scanned)} buckets are scanned: set `bucket:` to the one "
                "bucket whose blobs these manifests use"
            )
    return SourceFacts(index=index, kind=kind, label=label, bucket=bucket, complete=complete, reason=reason)


def _sample(names: Iterable[str], limit: int = SAMPLE) -> tuple[str, ...]:
    return tuple(sorted(set(names))[:limit])


@dataclass
class Evidence:
    """What the manifest sources met while running, per source index (a monoid: ``+`` and ``Evidence()``).

    ``unread``: manifests (or files, or whole listings) that could not be read, parsed or
    verified. ``partial``: repositories enumerated without a list of every manifest (a
    registry that answered tags/list without GCR's ``manifest`` map).
    """

    unread: Counter = field(default_factory=Counter)
    unread_names: dict[int, tuple[str, ...]] = field(default_factory=dict)
    partial: Counter = field(default_factory=Counter)
    partial_names: dict[int, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def of_unread(cls, index: int, name: str) -> Evidence:
        return cls(unread=Counter({index: 1}), unread_names={index: (name,)})

    @classmethod
    def of_partial(cls, index: int, name: str) -> Evidence:
        return cls(partial=Counter({index: 1}), partial_names={index: (name,)})

    def __add__(self, other: Evidence) -> Evidence:
        def merge(a: dict, b: dict) -> dict:
            return {k: _sample(a.get(k, ()) + b.get(k, ())) for k in set(a) | set(b)}

        return Evidence(
            unread=self.unread + other.unread,
            unread_names=merge(self.unread_names, other.unread_names),
            partial=self.partial + other.partial,
            partial_names=merge(self.partial_names, other.partial_names),
        )


def sum_evidence(items: Iterable[Evidence]) -> Evidence:
    total = Evidence()
    for item in items:
        total = total + item
    return total


# Blocker codes, for machines; ``reason`` says the same for people.
NOT_CROSS_CHECKED = "not_cross_checked"
NOT_EVALUATED = "not_evaluated"
NO_REGISTRY_SOURCE = "no_registry_source"
LEGACY_NOT_READ = "legacy_not_read"
INCOMPLETE_SOURCE = "incomplete_source"
PARTIAL_LISTING = "partial_listing"
UNREAD_MANIFESTS = "unread_manifests"
BUCKET_EVIDENCE_UNREAD = "bucket_evidence_unread"
# Where no manifest was read, which blobs are unreferenced is not known either.
_UNKNOWN = frozenset({NOT_CROSS_CHECKED, NOT_EVALUATED})


def _blocker(
    bucket: str, code: str, source: str | None, reason: str, names: tuple[str, ...] = (), total: int = 0
) -> dict[str, Any]:
    return {
        "bucket": bucket,
        "code": code,
        "source": source,
        "reason": reason,
        "manifests": list(names),
        "manifests_total": total,
    }


def decide(
    sources: Iterable[SourceFacts],
    buckets: Iterable[str],
    evidence: Evidence,
    *,
    cross_checked: bool,
    guarded: bool = True,
) -> dict[str, list[dict[str, Any]]]:
    """``{bucket: blockers}`` for every scanned bucket; an empty list means reclaim is proven safe there.

    ``guarded``: the second guard can run, because recovery read the images each bucket shows
    (``pipeline/core/protection.py``); without it no plan is written (a run in scan.mode manifests,
    or an incremental one, does not read every object)."""
    sources = list(sources)
    verdict: dict[str, list[dict[str, Any]]] = {}
    for bucket in buckets:
        if not cross_checked:
            verdict[bucket] = [
                _blocker(
                    bucket,
                    NOT_CROSS_CHECKED,
                    None,
                    "scan.mode is names: no manifest was read, so no blob is known to be unused",
                )
            ]
            continue
        covering = [s for s in sources if s.bucket in (None, bucket)]
        blockers = []
        if not guarded:
            blockers.append(
                _blocker(
                    bucket,
                    BUCKET_EVIDENCE_UNREAD,
                    None,
                    "image recovery did not read every object (scan.recover_images: false, scan.mode manifests, "
                    "or an incremental scan): the images the bucket itself shows are unknown, so the second "
                    "guard cannot run",
                )
            )
        if not any(s.kind != LEGACY for s in covering):
            blockers.append(
                _blocker(
                    bucket,
                    NO_REGISTRY_SOURCE,
                    None,
                    "no manifest source other than legacy metadata covers this bucket: since 2017 GCR keeps "
                    "manifests in the registry, not in the bucket",
                )
            )
        if not any(s.kind == LEGACY for s in covering):
            blockers.append(
                _blocker(
                    bucket,
                    LEGACY_NOT_READ,
                    None,
                    "manifests.legacy_metadata is false: pre-2017 metadata under containers/repositories/ "
                    "was not read, and it may still reference blobs",
                )
            )
        for source in covering:
            if not source.complete:
                blockers.append(_blocker(bucket, INCOMPLETE_SOURCE, source.label, f"not complete: {source.reason}"))
            if evidence.partial[source.index]:
                n = evidence.partial[source.index]
                blockers.append(
                    _blocker(
                        bucket,
                        PARTIAL_LISTING,
                        source.label,
                        f"{n} repository(ies) answered tags/list without a `manifest` map: "
                        "their untagged manifests cannot be seen",
                        evidence.partial_names.get(source.index, ()),
                        n,
                    )
                )
            if evidence.unread[source.index]:
                n = evidence.unread[source.index]
                blockers.append(
                    _blocker(
                        bucket,
                        UNREAD_MANIFESTS,
                        source.label,
                        f"{n} manifest(s) or listing(s) could not be read, parsed or verified "
                        "(manifest_unavailable, invalid_manifest, manifest_digest_mismatch, unverifiable_digest): "
                        "blobs only they reference look unreferenced",
                        evidence.unread_names.get(source.index, ()),
                        n,
                    )
                )
        verdict[bucket] = blockers
    return verdict


def plan_line(bucket: str, name: str, generation: int | None) -> str | None:
    """``gs://BUCKET/OBJECT#GENERATION`` for ``gcloud storage rm -I``; None when the generation is unknown,
    because an unpinned delete could remove a newer object written after the audit."""
    if generation is None:
        return None
    return f"gs://{bucket}/{name}#{generation}"


def soft_delete_note(facts: dict[str, Any] | None) -> str:
    """How long deleted bytes of a bucket stay billed, from its bucket GET (``gcs.bucket_facts``)."""
    if not facts:
        return "unknown: the bucket's metadata was not read"
    if facts.get("error"):
        return f"unknown: {facts['error']} (GCS keeps deleted objects 7 days by default)"
    if not facts.get("soft_delete_reported"):
        return (
            "unknown: the server reported no soft-delete policy (an emulator, or an API that omits it); "
            "GCS keeps deleted objects 7 days by default"
        )
    seconds = facts.get("soft_delete_retention_seconds") or 0
    if seconds <= 0:
        return "soft delete is off: deleted bytes stop being billed at once"
    days = seconds / 86400
    shown = f"{days:g} day(s)" if days >= 1 else f"{seconds} second(s)"
    return f"deleted objects stay restorable, and billed at their storage class, for {shown} (soft delete)"


def reclaim_summary(
    verdict: dict[str, list[dict[str, Any]]] | None,
    bucket_facts: dict[str, dict[str, Any]] | None,
    *,
    unreferenced: Counter,
    planned_bytes: Counter,
    planned_objects: Counter,
    unpinned: Counter,
    planned_byte_days: Counter | None = None,
    protected: Counter | None = None,
) -> dict[str, Any]:
    """The reclaim part of ``summary.json``.

    ``unreferenced``: ``{(bucket, "objects"|"bytes"): n}`` of every unreferenced blob;
    ``planned_bytes``: ``{(bucket, storage class): bytes}`` of the plan's lines;
    ``planned_objects``: ``{bucket: lines}``; ``planned_byte_days``: ``{(bucket, storage class):
    bytes x days}`` short of the minimum storage duration; ``unpinned``: ``{bucket: n}`` unreferenced blobs
    of a proven bucket left out of the plan for want of a generation; ``protected``: ``{(bucket,
    "objects"|"bytes"|"accepted_objects"|"accepted_bytes"): n}`` of unreferenced blobs that an image the
    bucket shows holds (kept out of the plan), and of those the user accepted losing (planned).
    """
    protected = protected or Counter()
    bucket_facts = bucket_facts or {}
    verdict = verdict or {}
    buckets = sorted(b for b in set(verdict) | {b for b, _ in unreferenced} | set(bucket_facts) if b is not None)
    blocked_by = [
        b
        for bucket in buckets
        for b in verdict.get(bucket, [_blocker(bucket, NOT_EVALUATED, None, "not evaluated: no verdict was reached")])
    ]
    by_bucket, location_types = {}, {}
    for bucket in buckets:
        facts = bucket_facts.get(bucket) or {}
        location_type, location_source = pricing.location_type_of(bucket, facts.get("location_type"))
        location_types[bucket] = location_type
        proven = bucket in verdict and not verdict[bucket]
        kept = protected[(bucket, "bytes")]
        by_bucket[bucket] = {
            "reclaim_proven": proven,
            "unreferenced_objects": unreferenced[(bucket, "objects")],
            "unreferenced_bytes": unreferenced[(bucket, "bytes")],
            "reclaimable_bytes": unreferenced[(bucket, "bytes")] - kept if proven else None,
            # The second guard: unreferenced blobs of images the bucket itself shows, kept out of the plan.
            "protected_objects": protected[(bucket, "objects")],
            "protected_bytes": kept,
            "accepted_objects": protected[(bucket, "accepted_objects")],
            "accepted_bytes": protected[(bucket, "accepted_bytes")],
            "plan_objects": planned_objects[bucket],
            "plan_bytes": sum(n for (b, _), n in planned_bytes.items() if b == bucket),
            "unpinned_objects": unpinned[bucket],
            "location": facts.get("location"),
            "location_type": location_type,
            "location_type_from": location_source,
            "default_storage_class": facts.get("storage_class"),
            "soft_delete_retention_seconds": facts.get("soft_delete_retention_seconds"),
            "soft_delete": soft_delete_note(facts),
        }
    # Null unless proven: a blocked bucket with unreferenced blobs, or one where nothing was read.
    unproven = any(b["code"] in _UNKNOWN for b in blocked_by) or any(
        not by_bucket[b]["reclaim_proven"] and by_bucket[b]["unreferenced_objects"] for b in buckets
    )
    reclaimable = None if unproven or not buckets else sum(r["reclaimable_bytes"] or 0 for r in by_bucket.values())
    plan = None
    objects = sum(planned_objects.values())
    if objects:
        plan_buckets = sorted(b for b in buckets if planned_objects[b])
        plan = {
            "file": PLAN_FILE,
            "objects": objects,
            "bytes": sum(planned_bytes.values()),
            "buckets": plan_buckets,
            "monthly_cost": pricing.monthly_cost(dict(planned_bytes), location_types),
            "early_deletion": pricing.early_deletion_fee(dict(planned_byte_days or {}), location_types),
            "soft_delete": {b: by_bucket[b]["soft_delete"] for b in plan_buckets},
        }
    return {
        "reclaimable_bytes": reclaimable,
        "reclaim_blocked_by": blocked_by,
        "reclaim_plan": plan,
        "reclaim_by_bucket": by_bucket,
    }
