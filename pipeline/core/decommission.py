"""The decommission verdict: per bucket, "can I delete it, and what would I lose?" (pure: no I/O, no Beam).

A pure rule over per-bucket facts the run folds once (``BucketFacts``, a monoid inside the
summary's ``Tally``), written as ``summary["decommission"]``; the terminal summary and
report.html print its ``headline`` verbatim, so all three say the same words.

The verdict, first match wins:

* ``cannot_tell``: recovery was off (the images the bucket holds are unknown), no manifest was
  read (``scan.mode names``), some object could not be read, or a manifest source covering the
  bucket could not be read in full (reclaim's ``unread_manifests`` / ``partial_listing``);
* ``in_use``: a source that is not a successor (a registry that still serves from this bucket,
  or a folder or layout of its manifests) names blobs here: deleting breaks those images;
* ``would_lose_images``: a complete image (config and every layer in the buckets) that no
  ``role: successor`` source holds: the bucket is its only copy;
* ``safe_to_delete``: every object was read, every source in full, every complete image is in a
  successor, and nothing else serves from the bucket.

Only a ``role: successor`` source keeps its own copies of the blobs (docs/recovery.md), so only it
lets an image live on after the bucket goes. Legacy metadata lives in the bucket itself: it goes
with the bucket, and its images count as "only here" unless the successor holds them.
"""

from __future__ import annotations

import json
import shlex
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pipeline.core import pricing
from pipeline.core.protection import image_facts
from pipeline.values import decimal_size, gcr_project, usd_text

Row = dict[str, Any]

SAFE = "safe_to_delete"
WOULD_LOSE = "would_lose_images"
IN_USE = "in_use"
CANNOT_TELL = "cannot_tell"
VERDICTS = (SAFE, WOULD_LOSE, IN_USE, CANNOT_TELL)

# Images a verdict names per list; the totals are not capped.
IMAGES_KEPT = 20
ONLY_HERE = "only_here"
IN_USE_LIST = "in_use"
PROTECTED = "protected"  # reclaim's second guard (pipeline/core/protection.py), bucket None
# Per-bucket counters (BucketFacts.counts keys are (bucket, column)).
OBJECTS, BYTES = "objects", "bytes"
READ_ERRORS, NOT_HASHED, MALFORMED = "read_errors", "not_hashed", "malformed"
IN_SUCCESSOR, INCOMPLETE = "in_successor", "incomplete"
# Reclaim blockers that mean a source was not read in full.
UNREAD_CODES = frozenset({"unread_manifests", "partial_listing"})


def _order(entry: Row) -> tuple:
    """Largest first, then a total order, so that a capped list is the same whatever order the
    runner merged its parts in (several sources may name one manifest digest)."""
    return (-(entry.get("bytes") or 0), json.dumps(entry, sort_keys=True, default=str))


@dataclass
class BucketFacts:
    """Per-bucket counts and capped image lists (a monoid: ``+`` and ``BucketFacts()``)."""

    counts: Counter = field(default_factory=Counter)
    lists: dict = field(default_factory=dict)  # (bucket, list name) -> tuple of entries, largest first

    def __add__(self, other: BucketFacts) -> BucketFacts:
        if not other.lists and not self.lists:
            return BucketFacts(self.counts + other.counts)
        lists = dict(self.lists)
        for key, entries in other.lists.items():
            lists[key] = tuple(sorted((*lists.get(key, ()), *entries), key=_order)[:IMAGES_KEPT])
        return BucketFacts(self.counts + other.counts, lists)

    @classmethod
    def of(cls, bucket: str | None, column: str, n: int = 1, entry: Row | None = None) -> BucketFacts:
        return cls(Counter({(bucket, column): n}), {(bucket, column): (entry,)} if entry is not None else {})

    def listed(self, bucket: str | None, name: str) -> list[Row]:
        return list(self.lists.get((bucket, name), ()))


def recovered_facts(row: Row) -> BucketFacts:
    """One recovered row's share: a complete image is kept by a successor or lives only in the buckets
    that hold any of its blobs (deleting any of them loses it); an incomplete one is counted apart."""
    buckets = sorted({row["bucket"], *(layer["bucket"] for layer in row.get("layers") or ())})
    total = BucketFacts()
    for bucket in buckets:
        if not row.get("complete"):
            total = total + BucketFacts.of(bucket, INCOMPLETE)
        elif row.get("in_successor"):
            total = total + BucketFacts.of(bucket, IN_SUCCESSOR)
        else:
            total = total + BucketFacts.of(bucket, ONLY_HERE, entry=image_entry(row))
    return total


def image_entry(row: Row) -> Row:
    """What the verdict names of an image only here: the facts the second guard reports of it too."""
    facts = image_facts(row)
    keys = ("config_digest", "bytes", "created", "os", "architecture", "labels", "last_history")
    return {key: facts[key] for key in keys}


def in_use_entry(bucket: str, source: str, repository: str, manifest_digest: str, tags: Iterable[str]) -> BucketFacts:
    """One image of a non-successor source that names blobs of ``bucket`` (counted once per image)."""
    entry = {"source": source, "repository": repository, "tags": sorted(set(tags)), "manifest_digest": manifest_digest}
    return BucketFacts.of(bucket, IN_USE_LIST, entry=entry)


def in_use_refs(refs: Iterable[Row], blobs: Iterable[Row], serving: dict[int, str]) -> list[tuple[tuple, list[str]]]:
    """For one digest: ``((bucket, source label, repository, manifest digest), tags)`` for every image
    of a serving source (``{source index: label}``: not a successor, not legacy) whose blob is here."""
    refs, out = list(refs), []
    for blob in blobs:
        for ref in refs:
            if ref.get("bucket") not in (None, blob["bucket"]):
                continue
            for index in ref.get("source_indexes") or ():
                if index in serving:
                    key = (blob["bucket"], serving[index], ref["repository"], ref["manifest_digest"])
                    out.append((key, list(ref.get("tags") or ())))
    return out


def export_command(run_dir: str, config_digest: str) -> str:
    """The exact command that saves a recovered image as an OCI layout (jobs/export.py)."""
    tag = config_digest.split(":", 1)[-1][:12]
    return f"registry-scrub export {shlex.quote(run_dir)} {config_digest} --to ./recovered-images --tag {tag}"


def _decide(bucket: str, facts: BucketFacts, context: Row) -> tuple[str, list[str]]:
    """The verdict for one bucket and the sentences that justify it."""
    c = facts.counts
    reasons, doubts = [], []
    if not context["cross_checked"]:
        doubts.append("scan.mode is names: no manifest source was read, so who uses these blobs is unknown")
    if context.get("incremental"):
        doubts.append(
            "an incremental run reads only new, changed and sampled objects: the images this bucket holds "
            "were not rebuilt from all of its blobs (a full scan gives the verdict)"
        )
    elif not context["recovered"]:
        doubts.append(
            "image recovery was off: the images this bucket holds were not rebuilt from its blobs "
            "(run with --recover-images, and scan.mode both)"
        )
    if c[(bucket, READ_ERRORS)]:
        doubts.append(f"{c[(bucket, READ_ERRORS)]} object(s) could not be read (read_error findings)")
    if c[(bucket, NOT_HASHED)]:
        doubts.append(f"{c[(bucket, NOT_HASHED)]} object(s) were listed but not read (scan.mode manifests)")
    if context["unaccounted"]:
        doubts.append(f"{context['unaccounted']} listed object(s) of the run ended in no report row")
    for blocker in context["blockers"]:
        if blocker["code"] in UNREAD_CODES:
            doubts.append(f"{blocker['source']}: {blocker['reason']}")
    if c[(bucket, MALFORMED)]:
        reasons.append(
            f"{c[(bucket, MALFORMED)]} object(s) under the prefix are not sha256-named blobs (malformed_name); "
            "they go with the bucket"
        )
    only_here, in_use = c[(bucket, ONLY_HERE)], c[(bucket, IN_USE_LIST)]
    if in_use:
        names = ", ".join(
            f"{e['repository']}@{e['manifest_digest'][:19]}… ({e['source']})"
            for e in facts.listed(bucket, IN_USE_LIST)[:3]
        )
        reasons.append(f"{in_use} image(s) of sources that are not a successor use blobs here: {names}")
    if only_here:
        names = ", ".join(e["config_digest"][:19] + "…" for e in facts.listed(bucket, ONLY_HERE)[:3])
        reasons.append(f"{only_here} complete image(s) have their only copy here (no successor holds them): {names}")
    if c[(bucket, IN_SUCCESSOR)]:
        reasons.append(f"{c[(bucket, IN_SUCCESSOR)]} complete image(s) here are also in the successor registry")
    if c[(bucket, INCOMPLETE)]:
        reasons.append(
            f"{c[(bucket, INCOMPLETE)]} image config(s) here lack a layer: not pullable, see recovered-*.jsonl"
        )
    if doubts:
        return CANNOT_TELL, doubts + reasons
    if in_use:
        return IN_USE, reasons
    if only_here:
        return WOULD_LOSE, reasons
    return SAFE, reasons or ["no image lives only here and no source other than a successor uses its blobs"]


def _headline(verdict: str, bucket: str, row: Row) -> str:
    cost = row["monthly_cost"]["usd_per_month"]
    saves = f"Saves {usd_text(cost)} a month" if cost is not None else "Saves an unpriced amount"
    if verdict == SAFE:
        return f"Safe to delete {bucket}: nothing lives only here. {saves} ({decimal_size(row['bytes'])})."
    if verdict == WOULD_LOSE:
        n = row["images_only_here_total"]
        return (
            f"Deleting {bucket} loses {n} image(s) that exist nowhere else. "
            "Export them first (each image's registry-scrub export command is in summary.json and report.html); "
            "then it saves "
            f"{usd_text(cost) if cost is not None else 'an unpriced amount'} a month."
        )
    if verdict == IN_USE:
        n = row["images_in_use_total"]
        return (
            f"{bucket} is in use: {n} image(s) of a registry or manifest folder still need its blobs. "
            "Migrate them first."
        )
    return f"Cannot tell whether {bucket} can be deleted: {row['reasons'][0]}."


def verdicts(
    facts: BucketFacts,
    buckets: Iterable[str],
    *,
    run_dir: str,
    cross_checked: bool,
    recovered: bool,
    unaccounted: int,
    incremental: bool = False,
    reclaim_blocked_by: Iterable[Row],
    reclaim_by_bucket: dict[str, Row],
) -> dict[str, Row]:
    """``summary["decommission"]``: one entry per scanned bucket (see docs/report.md, "Decommission")."""
    blocked = list(reclaim_blocked_by)
    out = {}
    for bucket in sorted(set(buckets)):
        c = facts.counts
        by_bucket = reclaim_by_bucket.get(bucket) or {}
        storage_class = by_bucket.get("default_storage_class") or "STANDARD"
        location_type = by_bucket.get("location_type")
        cost = pricing.monthly_cost({(bucket, storage_class): c[(bucket, BYTES)]}, {bucket: location_type})
        context = {
            "cross_checked": cross_checked,
            "recovered": recovered,
            "incremental": incremental,
            "unaccounted": unaccounted,
            "blockers": [b for b in blocked if b.get("bucket") == bucket],
        }
        verdict, reasons = _decide(bucket, facts, context)
        only_here = [
            entry | {"export_command": export_command(run_dir, entry["config_digest"])}
            for entry in facts.listed(bucket, ONLY_HERE)
        ]
        row = {
            "verdict": verdict,
            "headline": "",
            "project": gcr_project(bucket),
            "reasons": reasons,
            "images_only_here": only_here,
            "images_only_here_total": c[(bucket, ONLY_HERE)],
            "images_in_use": facts.listed(bucket, IN_USE_LIST),
            "images_in_use_total": c[(bucket, IN_USE_LIST)],
            "objects": c[(bucket, OBJECTS)],
            "bytes": c[(bucket, BYTES)],
            "monthly_cost": {
                "usd_per_month": cost["usd_per_month"],
                "unpriced_bytes": cost["unpriced_bytes"],
                "reason": cost.get("reason"),
            },
            "soft_delete": by_bucket.get("soft_delete") or "unknown: the bucket's metadata was not read",
            "soft_delete_retention_seconds": by_bucket.get("soft_delete_retention_seconds"),
        }
        row["headline"] = _headline(verdict, bucket, row)
        out[bucket] = row
    return out


def verdict_lines(decommission: dict[str, Row] | None) -> list[str]:
    """The terminal summary's line per bucket: the headline, as report.html shows it."""
    if not decommission:
        return []
    return [f"{row['verdict']}: {row['headline']}" for _, row in sorted(decommission.items())]
