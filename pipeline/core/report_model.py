"""The human report's model: a small, mergeable digest of a run's rows, and the page model built from it.

A run may hold a million objects, so nothing here keeps every row. ``ReportAccumulator``
folds finding rows, verified rows and image rows into bounded state (sums, counters,
top-K lists); two accumulators merge in any order, which is what a Beam ``CombineFn``
needs. ``build_model`` then joins the accumulator with ``summary.json`` into the plain
dict the HTML renderer draws. Counts the summary already has (findings by kind and
severity, bytes verified, reclaimable bytes, exit status) are taken from it, never
recomputed, so the page and ``summary.json`` cannot disagree.

Image rows (one per ``repository@digest``) are made by ``image_info`` / ``image_row``
from manifest references and the findings that name an image; the pipeline joins them
by image, and a re-render from files can do the same from ``images-*.jsonl``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from pipeline.compat import UTC
from pipeline.core.findings import SEVERITY_OF, Kind, Severity
from pipeline.core.migration import bucket_lines
from pipeline.core.recovery import page_section as recovery_page_section
from pipeline.core.run_diff import page_section as changes_page_section
from pipeline.core.summary import EXIT_CLEAN, EXIT_FINDINGS

Row = dict[str, Any]

# Caps that keep the page small whatever the run's size; the JSONL files hold the rest.
DETAIL_ROWS_PER_KIND = 1000
IMAGE_ROWS = 1000
BUCKET_ROWS = 500
TOP_RECLAIMABLE = 20
MOST_AFFECTED = 5
BROKEN_BY_PER_IMAGE = 20
NAMES_PER_ROW = 5
MAX_TEXT = 300

DAMAGED_KINDS = frozenset({Kind.DIGEST_MISMATCH.value, Kind.LEDGER_DISAGREES.value})
UNREADABLE_KINDS = frozenset({Kind.READ_ERROR.value, Kind.VANISHED.value})
# Findings about an object the listing saw: they count towards the bucket's objects.
OBJECT_FINDING_KINDS = frozenset(
    {
        Kind.DIGEST_MISMATCH.value,
        Kind.MALFORMED_NAME.value,
        Kind.READ_ERROR.value,
        Kind.VANISHED.value,
        Kind.LEDGER_DISAGREES.value,
    }
)
# A finding of these kinds about a blob names the images that blob breaks.
BLOB_KINDS = frozenset(
    {
        Kind.DIGEST_MISMATCH.value,
        Kind.LEDGER_DISAGREES.value,
        Kind.READ_ERROR.value,
        Kind.VANISHED.value,
        Kind.MISSING_BLOB.value,
        Kind.SIZE_MISMATCH.value,
    }
)

BYTE_STATES = ("intact", "damaged", "unreadable", "unreferenced", "reclaimable", "not checked")

# (upper bound in days, exclusive; label). Fixed bins, so histograms merge by adding.
AGE_BINS: tuple[tuple[int | None, str], ...] = (
    (1, "< 1 day"),
    (7, "1-7 days"),
    (30, "1-4 weeks"),
    (91, "1-3 months"),
    (365, "3-12 months"),
    (730, "1-2 years"),
    (1826, "2-5 years"),
    (None, "> 5 years"),
)

_SEVERITY_RANK = {Severity.ERROR.value: 0, Severity.WARNING.value: 1, Severity.INFO.value: 2}
_STATUS_RANK = {"broken": 0, "warning": 1, "intact": 2}
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")


# --- small pure helpers --------------------------------------------------------------------------


def _text(value: Any, limit: int = MAX_TEXT) -> str | None:
    """A bounded string for the page (None stays None); the JSONL keeps the full value."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _names(values: Any) -> tuple[list[str], int]:
    """A row's ``images``/``tags``/``repository`` (a string or a list): the first few, and how many in all."""
    if values is None:
        return [], 0
    if isinstance(values, str):
        values = [values]
    values = [v for v in values if v is not None]
    return [_text(v) for v in values[:NAMES_PER_ROW]], len(values)


def _size(row: Row) -> int:
    size = row.get("size")
    return size if isinstance(size, int) and size > 0 else 0


def created_date(value: Any) -> date | None:
    """The day an object was created, from GCS's ``timeCreated`` (RFC 3339) or epoch seconds/ms."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, UTC).date()
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        match = _ISO_DATE.match(value)
        if match:
            try:
                return date(*map(int, match.groups()))
            except ValueError:
                return None
    return None


def age_bin(created: date, reference: date) -> int:
    age = (reference - created).days
    for index, (bound, _) in enumerate(AGE_BINS):
        if bound is None or age < bound:
            return index
    return len(AGE_BINS) - 1


class TopK:
    """The ``cap`` items with the smallest keys seen so far; merges in any order to the same result.

    Items are kept as ``(key, item)`` with keys made of str and int only, so ties break
    deterministically and the state pickles. Trimming happens at 2×cap, so adding is amortised O(log).
    """

    __slots__ = ("cap", "entries")

    def __init__(self, cap: int, entries: list | None = None):
        self.cap = cap
        self.entries = entries or []

    def add(self, key: tuple, item: Any) -> None:
        self.entries.append((key, item))
        if len(self.entries) > 2 * self.cap:
            self._trim()

    def merge(self, other: TopK) -> None:
        self.entries.extend(other.entries)
        if len(self.entries) > 2 * self.cap:
            self._trim()

    def _trim(self) -> None:
        self.entries.sort(key=lambda entry: entry[0])
        del self.entries[self.cap :]

    def items(self) -> list:
        self._trim()
        return [item for _, item in self.entries]

    def __getstate__(self):
        return (self.cap, self.entries)

    def __setstate__(self, state):
        self.cap, self.entries = state

    def __eq__(self, other):
        return isinstance(other, TopK) and self.cap == other.cap and self.items() == other.items()


# --- evidence --------------------------------------------------------------------------------------


def crc32c_diagnosis(row: Row) -> str | None:
    """What GCS's stored crc32c says about a digest_mismatch: a bad write, or damage after it."""
    if row.get("kind") != Kind.DIGEST_MISMATCH.value:
        return None
    match = row.get("crc32c_match")
    if match is True:
        return "written wrong: the bytes match the crc32c GCS stored"
    if match is False:
        return "damaged after the write: the bytes differ from the crc32c GCS stored"
    return "undecided: GCS stored no crc32c"


def detail_row(row: Row) -> Row:
    """The evidence of one finding, bounded for the page."""
    images, image_count = _names(row.get("images"))
    tags, tag_count = _names(row.get("tags"))
    repositories, _ = _names(row.get("repositories") or row.get("repository"))
    reads = row.get("reads")
    return {
        "kind": row.get("kind"),
        "severity": row.get("severity"),
        "bucket": _text(row.get("bucket")),
        "object": _text(row.get("object")),
        "generation": _text(row.get("generation")),
        "digest": _text(row.get("digest")),
        "expected": _text(row.get("expected")),
        "actual": _text(row.get("actual")),
        "size": row.get("size") if isinstance(row.get("size"), int) else None,
        "expected_size": row.get("expected_size") if isinstance(row.get("expected_size"), int) else None,
        "crc32c": _text(row.get("crc32c")),
        "crc32c_diagnosis": crc32c_diagnosis(row),
        "http_status": _text(row.get("http_status")),
        "reads": _text(reads if not isinstance(reads, list | dict) else _compact_json(reads)),
        "detail": _text(row.get("detail"), 600),
        "repositories": repositories,
        "images": images,
        "image_count": image_count,
        "tags": tags,
        "tag_count": tag_count,
    }


def _compact_json(value: Any) -> str:
    import json

    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def _detail_key(row: Row) -> tuple:
    return (
        _SEVERITY_RANK.get(row.get("severity"), 3),
        str(row.get("bucket") or ""),
        str(row.get("object") or ""),
        str(row.get("digest") or ""),
        str(row.get("manifest_digest") or ""),
        str(row.get("detail") or ""),
    )


# --- images ---------------------------------------------------------------------------------------


def image_refs(digest: str, ref: Row) -> list[tuple[str, Row]]:
    """``(image, part)`` for every image a manifest reference belongs to (itself and its parent indexes).

    ``(digest, ref)`` is one reference the manifest cross-check joins on; ``ref`` has
    ``images``, ``tags``, ``role`` and ``size`` (None for the manifest's own digest).
    """
    blob = digest if ref.get("role") != "manifest" else None
    part = {"tags": list(ref.get("tags") or ()), "blob": blob, "size": ref.get("size")}
    return [(image, part) for image in ref.get("images") or ()]


def image_info(image: str, parts: Iterable[Row]) -> Row:
    """One image's facts from its references: tags and the total size of its distinct blobs."""
    tags: set[str] = set()
    sizes: dict[str, int] = {}
    for part in parts:
        tags.update(part.get("tags") or ())
        blob, size = part.get("blob"), part.get("size")
        if blob and isinstance(size, int):
            sizes[blob] = size
    repository, _, digest = image.rpartition("@")
    return {
        "image": image,
        "repository": repository,
        "manifest_digest": digest,
        "tags": sorted(tags),
        # None, not 0, when no descriptor declared a size (schema 1 manifests declare none).
        "size": sum(sizes.values()) if sizes else None,
        "blobs": len(sizes),
    }


def image_evidence(row: Row) -> list[tuple[str, Row]]:
    """``(image, evidence)`` for every image a finding names; evidence says what broke it."""
    images = row.get("images") or ()
    if not images:
        return []
    blob = row.get("kind") in BLOB_KINDS
    evidence = {
        "kind": row.get("kind"),
        "severity": row.get("severity"),
        "digest": row.get("digest") if blob else None,
        "object": row.get("object") if blob else None,
        "size": row.get("size") if isinstance(row.get("size"), int) else None,
        "tags": list(row.get("tags") or ()),
    }
    return [(image, evidence) for image in images]


def image_row(image: str, infos: Iterable[Row], evidence: Iterable[Row]) -> Row:
    """The per-image table row: the image's facts (if its manifest was read) and what broke it."""
    infos = list(infos)
    row = dict(infos[0]) if infos else image_info(image, ())
    if not infos:
        row["size"] = None  # the manifest was not read: its size is unknown, not zero
        row["blobs"] = None
    tags = set(row["tags"])
    broken_by: list[Row] = []
    errors = warnings = 0
    seen = set()
    for item in evidence:
        tags.update(item.get("tags") or ())
        if item["severity"] == Severity.ERROR.value:
            errors += 1
        elif item["severity"] == Severity.WARNING.value:
            warnings += 1
        else:
            continue
        key = (item["kind"], item.get("digest"))
        if key not in seen:
            seen.add(key)
            broken_by.append({k: item.get(k) for k in ("kind", "digest", "object", "size")})
    broken_by.sort(key=lambda b: (b["kind"] or "", b["digest"] or ""))
    row["tags"] = sorted(tags)
    row["status"] = "broken" if errors else "warning" if warnings else "intact"
    row["error_findings"] = errors
    row["broken_by_count"] = len(broken_by)
    row["broken_by"] = broken_by[:BROKEN_BY_PER_IMAGE]
    return row


def image_rows_from_findings(findings: Iterable[Row]) -> list[Row]:
    """Image rows when no ``images-*.jsonl`` exists (an older run): only the images findings name."""
    evidence: dict[str, list[Row]] = {}
    for row in findings:
        for image, item in image_evidence(row):
            evidence.setdefault(image, []).append(item)
    return [image_row(image, (), items) for image, items in sorted(evidence.items())]


def _image_key(row: Row) -> tuple:
    return (
        _STATUS_RANK.get(row.get("status"), 3),
        -(row.get("error_findings") or 0),
        -(row.get("size") or 0),
        str(row.get("image") or ""),
    )


def short_tag(tag: str, repository: str | None) -> str:
    """``repo:tag`` -> ``tag`` when the repository is the image's own (the table shows the repository)."""
    return tag[len(repository) + 1 :] if repository and tag.startswith(repository + ":") else tag


def _page_image(row: Row) -> Row:
    tags, tag_count = _names([short_tag(t, row.get("repository")) for t in row.get("tags") or ()])
    return {
        "image": _text(row.get("image")),
        "repository": _text(row.get("repository")),
        "manifest_digest": _text(row.get("manifest_digest")),
        "tags": tags,
        "tag_count": tag_count,
        "size": row.get("size"),
        "status": row.get("status"),
        "error_findings": row.get("error_findings") or 0,
        "broken_by": [
            {
                "kind": b.get("kind"),
                "digest": _text(b.get("digest")),
                "object": _text(b.get("object")),
                "size": b.get("size"),
            }
            for b in (row.get("broken_by") or ())[:BROKEN_BY_PER_IMAGE]
        ],
        "broken_by_count": row.get("broken_by_count") or 0,
    }


# --- the accumulator -------------------------------------------------------------------------------


def _new_bucket() -> Counter:
    return Counter()


@dataclass
class ReportAccumulator:
    """Bounded state folded from a run's rows. ``add_*`` and ``merge`` mutate and return ``self``."""

    detail_cap: int = DETAIL_ROWS_PER_KIND
    image_cap: int = IMAGE_ROWS
    bytes_by_kind: Counter = field(default_factory=Counter)
    findings_seen: Counter = field(default_factory=Counter)
    buckets: dict[str, Counter] = field(default_factory=dict)
    created_objects: Counter = field(default_factory=Counter)  # ISO date -> objects
    created_bytes: Counter = field(default_factory=Counter)
    age_unknown_objects: int = 0
    age_unknown_bytes: int = 0
    images_by_status: Counter = field(default_factory=Counter)
    details: dict[str, TopK] = field(default_factory=dict)
    # Per bucket, because reclaim is proven (or not) per bucket: the page lists the largest of proven buckets.
    largest_unreferenced: dict[str, TopK] = field(default_factory=dict)
    images: TopK | None = None

    def __post_init__(self):
        if self.images is None:
            self.images = TopK(self.image_cap)

    def _bucket(self, name: Any) -> Counter:
        key = str(name) if name is not None else "(no bucket)"
        if key not in self.buckets:
            self.buckets[key] = _new_bucket()
        return self.buckets[key]

    def _age(self, row: Row) -> None:
        created = created_date(row.get("time_created"))
        if created is None:
            self.age_unknown_objects += 1
            self.age_unknown_bytes += _size(row)
        else:
            day = created.isoformat()
            self.created_objects[day] += 1
            self.created_bytes[day] += _size(row)

    def add_verified(self, row: Row) -> ReportAccumulator:
        bucket = self._bucket(row.get("bucket"))
        bucket["objects"] += 1
        bucket["intact_objects"] += 1
        bucket["bytes"] += _size(row)
        bucket["intact_bytes"] += _size(row)
        self._age(row)
        return self

    def add_finding(self, row: Row) -> ReportAccumulator:
        kind = str(row.get("kind"))
        severity = row.get("severity")
        self.findings_seen[kind] += 1
        self.bytes_by_kind[kind] += _size(row)
        if kind not in self.details:
            self.details[kind] = TopK(self.detail_cap)
        self.details[kind].add(_detail_key(row), detail_row(row))
        if row.get("bucket") is not None or kind in OBJECT_FINDING_KINDS:
            bucket = self._bucket(row.get("bucket"))
            if kind in OBJECT_FINDING_KINDS:
                bucket["objects"] += 1
                bucket["bytes"] += _size(row)
                self._age(row)
            if kind in DAMAGED_KINDS:
                bucket["damaged_bytes"] += _size(row)
            elif kind in UNREADABLE_KINDS:
                bucket["unreadable_bytes"] += _size(row)
            elif kind == Kind.UNREFERENCED_BLOB.value:
                bucket["unreferenced_objects"] += 1
                bucket["unreferenced_bytes"] += _size(row)
            if severity in (Severity.ERROR.value, Severity.WARNING.value):
                bucket[severity] += 1
        if kind == Kind.UNREFERENCED_BLOB.value:
            bucket_name = str(row.get("bucket") or "")
            if bucket_name not in self.largest_unreferenced:
                self.largest_unreferenced[bucket_name] = TopK(TOP_RECLAIMABLE)
            self.largest_unreferenced[bucket_name].add(
                (-_size(row), bucket_name, str(row.get("object") or "")),
                {
                    "bucket": _text(row.get("bucket")),
                    "object": _text(row.get("object")),
                    "generation": _text(row.get("generation")),
                    "size": _size(row),
                    "storage_class": _text(row.get("storage_class")),
                    "time_created": _text(row.get("time_created")),
                },
            )
        return self

    def add_image(self, row: Row) -> ReportAccumulator:
        self.images_by_status[row.get("status") or "intact"] += 1
        self.images.add(_image_key(row), _page_image(row))
        return self

    def compact(self) -> ReportAccumulator:
        """Trim every top-K list to its cap: what is shipped between workers holds nothing surplus."""
        for top in (*self.details.values(), *self.largest_unreferenced.values(), self.images):
            top.items()
        return self

    def merge(self, other: ReportAccumulator) -> ReportAccumulator:
        self.bytes_by_kind.update(other.bytes_by_kind)
        self.findings_seen.update(other.findings_seen)
        for name, counts in other.buckets.items():
            self._bucket(name).update(counts)
        self.created_objects.update(other.created_objects)
        self.created_bytes.update(other.created_bytes)
        self.age_unknown_objects += other.age_unknown_objects
        self.age_unknown_bytes += other.age_unknown_bytes
        self.images_by_status.update(other.images_by_status)
        for mine, theirs in ((self.details, other.details), (self.largest_unreferenced, other.largest_unreferenced)):
            for key, top in theirs.items():
                if key in mine:
                    mine[key].merge(top)
                else:
                    mine[key] = TopK(top.cap, list(top.entries))
        self.images.merge(other.images)
        return self


def accumulate(
    findings: Iterable[Row] = (), verified: Iterable[Row] = (), images: Iterable[Row] = (), **caps: int
) -> ReportAccumulator:
    """Fold rows into one accumulator, one row at a time (any iterables, e.g. JSONL line readers)."""
    acc = ReportAccumulator(**caps)
    for row in findings:
        acc.add_finding(row)
    for row in verified:
        acc.add_verified(row)
    for row in images:
        acc.add_image(row)
    return acc


# --- the page model ---------------------------------------------------------------------------------


def verdict(summary: Row) -> Row:
    """clean / warnings / errors, from the summary's exit status and severity counts."""
    status = summary.get("exit_status")
    by_severity = summary.get("findings_by_severity") or {}
    errors, warnings = by_severity.get("error", 0), by_severity.get("warning", 0)
    unaccounted = summary.get("unaccounted_objects") or 0
    if status == EXIT_FINDINGS or errors or unaccounted:
        state = "errors"
        parts = [f"{errors} finding(s) of severity error"] if errors else []
        if unaccounted > 0:
            parts.append(f"{unaccounted} listed object(s) ended in no report row")
        elif unaccounted < 0:
            parts.append(f"{-unaccounted} more report row(s) than listed objects")
        headline = "Errors: " + "; ".join(parts)
    elif warnings:
        state, headline = "warnings", f"Warnings: {warnings} finding(s) of severity warning, no errors"
    elif summary.get("objects_listed") == 0 and not any((summary.get("findings_by_kind") or {}).values()):
        # A wrong prefix or bucket would read as clean.
        state, headline = "warnings", "Nothing checked: no object was listed under the prefix"
    else:
        state, headline = "clean", "Clean: no finding of severity error or warning"
    meaning = {EXIT_CLEAN: "clean", EXIT_FINDINGS: "findings of severity error"}.get(status, "")
    if status == EXIT_CLEAN and not warnings and state == "warnings":
        meaning = "no finding, but nothing was listed to check"  # as the terminal's summary says
    return {"state": state, "exit_status": status, "exit_meaning": meaning, "headline": headline}


def bytes_by_state(summary: Row, acc: ReportAccumulator) -> list[Row]:
    """Bytes in each state. States overlap: unreferenced blobs may be intact, and reclaimable ⊆ unreferenced.

    intact + damaged + unreadable + not checked is every byte listed, which the bucket cards add up to too.
    Reclaimable is what ``proven_reclaim`` says, the Reclaim section's figure: where only some buckets are
    proven, their bytes, with a note saying in how many.
    """
    intact = summary.get("bytes_verified") or 0
    damaged = sum(acc.bytes_by_kind[k] for k in DAMAGED_KINDS)
    unreadable = sum(acc.bytes_by_kind[k] for k in UNREADABLE_KINDS)
    unreferenced = summary.get("unreferenced_bytes", acc.bytes_by_kind[Kind.UNREFERENCED_BLOB.value])
    proven = proven_reclaim(summary, acc)
    listed = summary.get("bytes_listed") or 0
    not_checked = max(listed - intact - damaged - unreadable, 0)
    values = {
        "intact": intact,
        "damaged": damaged,
        "unreadable": unreadable,
        "unreferenced": unreferenced,
        "reclaimable": proven["bytes"],
        "not checked": not_checked,
    }
    rows = [{"state": state, "bytes": values[state]} for state in BYTE_STATES]
    if proven["bytes"] is not None and not proven["whole_run"]:
        rows[BYTE_STATES.index("reclaimable")]["note"] = f"in {proven['buckets']:,} of {proven['of']:,} buckets"
    return rows


def age_histogram(acc: ReportAccumulator, reference: date | None) -> list[Row]:
    bins = [{"label": label, "objects": 0, "bytes": 0} for _, label in AGE_BINS]
    unknown_objects, unknown_bytes = acc.age_unknown_objects, acc.age_unknown_bytes
    for day, objects in acc.created_objects.items():
        created = date.fromisoformat(day)
        if reference is None:
            unknown_objects += objects
            unknown_bytes += acc.created_bytes[day]
            continue
        index = age_bin(created, reference)
        bins[index]["objects"] += objects
        bins[index]["bytes"] += acc.created_bytes[day]
    bins.append({"label": "unknown", "objects": unknown_objects, "bytes": unknown_bytes})
    return bins


def bucket_table(acc: ReportAccumulator, summary: Row | None = None) -> list[Row]:
    by_bucket = (summary or {}).get("reclaim_by_bucket")
    by_bucket = by_bucket if isinstance(by_bucket, dict) else {}
    rows = []
    for name, c in acc.buckets.items():
        reclaim = by_bucket.get(name) if isinstance(by_bucket.get(name), dict) else None
        rows.append(
            {
                "bucket": _text(name),
                "objects": c["objects"],
                "bytes": c["bytes"],
                "intact_objects": c["intact_objects"],
                "intact_bytes": c["intact_bytes"],
                "damaged_bytes": c["damaged_bytes"],
                "unreadable_bytes": c["unreadable_bytes"],
                "unreferenced_objects": c["unreferenced_objects"],
                "unreferenced_bytes": c["unreferenced_bytes"],
                "errors": c["error"],
                "warnings": c["warning"],
                # None: not known (an older run); "blocked": unreferenced bytes not proven safe to delete.
                "reclaim": None
                if reclaim is None
                else reclaim.get("reclaimable_bytes")
                if reclaim.get("reclaim_proven")
                else "blocked",
            }
        )
    rows.sort(key=lambda r: (-r["errors"], -r["bytes"], r["bucket"]))
    return rows[:BUCKET_ROWS]


def blocker_text(blocker: Any) -> str:
    """One reason reclaim is not proven: a sentence, or a ``reclaim_blocked_by`` entry
    (``{bucket, code, source, reason, manifests, manifests_total}``) as one."""
    if not isinstance(blocker, dict):
        return str(blocker)
    text = f"{blocker.get('bucket') or 'all buckets'}: {blocker.get('reason') or blocker.get('code') or 'blocked'}"
    if blocker.get("source"):
        text += f" (source: {blocker['source']})"
    manifests = list(blocker.get("manifests") or ())
    if manifests:
        total = max(blocker.get("manifests_total") or 0, len(manifests))
        shown = manifests[:NAMES_PER_ROW]
        text += f"; manifests: {', '.join(map(str, shown))}"
        if total > len(shown):
            text += f" and {total - len(shown):,} more"
    return text


def proven_buckets(summary: Row, acc: ReportAccumulator) -> set[str]:
    """The buckets whose unreferenced blobs are proven reclaimable (``reclaim_by_bucket``), else all or none."""
    by_bucket = summary.get("reclaim_by_bucket")
    if isinstance(by_bucket, dict) and by_bucket:
        return {b for b, facts in by_bucket.items() if isinstance(facts, dict) and facts.get("reclaim_proven")}
    return set(acc.largest_unreferenced) if summary.get("reclaimable_bytes") is not None else set()


def proven_reclaim(summary: Row, acc: ReportAccumulator) -> Row:
    """The blobs and bytes proven reclaimable, and in how many of the buckets: the one figure the chart,
    the Reclaim section and the bucket table show. ``bytes`` is None when no bucket is proven.

    ``reclaimable_bytes`` is null as soon as one bucket is blocked, yet the proven buckets' blobs are
    still in the plan; the chart once said "blocked" while the Reclaim section gave those bytes.
    """
    by_bucket = summary.get("reclaim_by_bucket") if isinstance(summary.get("reclaim_by_bucket"), dict) else {}
    proven = proven_buckets(summary, acc)
    of = len(by_bucket) or len(acc.buckets)
    whole = summary.get("reclaimable_bytes")
    if whole is not None:
        objects = summary.get("unreferenced_objects", acc.findings_seen[Kind.UNREFERENCED_BLOB.value])
        return {"objects": objects, "bytes": whole, "buckets": of, "of": of, "whole_run": True}
    if not proven:
        return {"objects": None, "bytes": None, "buckets": 0, "of": of, "whole_run": False}
    facts = [by_bucket.get(b) for b in proven if isinstance(by_bucket.get(b), dict)]
    return {
        "objects": sum(f.get("unreferenced_objects") or 0 for f in facts),
        "bytes": sum(f.get("reclaimable_bytes") or 0 for f in facts),
        "buckets": len(proven),
        "of": of,
        "whole_run": False,
    }


def _largest(acc: ReportAccumulator, buckets: Iterable[str]) -> list[Row]:
    top = TopK(TOP_RECLAIMABLE)
    for bucket in buckets:
        if bucket in acc.largest_unreferenced:
            top.merge(acc.largest_unreferenced[bucket])
    return top.items()


def reclaim_section(summary: Row, acc: ReportAccumulator) -> Row:
    reclaimable = summary.get("reclaimable_bytes")
    proven = proven_buckets(summary, acc)
    by_bucket = summary.get("reclaim_by_bucket") if isinstance(summary.get("reclaim_by_bucket"), dict) else {}
    plan = summary.get("reclaim_plan") if isinstance(summary.get("reclaim_plan"), dict) else None
    cost = plan.get("monthly_cost") if plan and isinstance(plan.get("monthly_cost"), dict) else None
    soft_delete = {
        key: _text(_compact_json(value) if isinstance(value, dict | list) else value, 600)
        for key, value in sorted(summary.items())
        if key.startswith("soft_delete") and value is not None
    }
    for bucket, facts in sorted(by_bucket.items()):
        if isinstance(facts, dict) and facts.get("soft_delete") and facts.get("unreferenced_objects"):
            soft_delete[f"soft delete, {bucket}"] = _text(facts["soft_delete"], 600)
    largest = _largest(acc, sorted(proven))
    proven_totals = proven_reclaim(summary, acc)
    return {
        "bytes": reclaimable,
        "blocked": reclaimable is None,
        "blocked_by": [_text(blocker_text(b), 600) for b in summary.get("reclaim_blocked_by") or ()][:100],
        "blocked_total": len(summary.get("reclaim_blocked_by") or ()),
        "proven_buckets": sorted(proven),
        "proven_bytes": proven_totals["bytes"] or 0,
        "proven_objects": proven_totals["objects"] or 0,
        "caveat": _text(summary.get("reclaimable_caveat"), 600),
        "plan": {
            "file": _text(plan.get("file")),
            "objects": plan.get("objects"),
            "bytes": plan.get("bytes"),
            "buckets": [_text(b) for b in plan.get("buckets") or ()][:BUCKET_ROWS],
            "usd_per_month": cost.get("usd_per_month") if cost else None,
            "unpriced_bytes": cost.get("unpriced_bytes") if cost else None,
            "price_date": _text(cost.get("price_date")) if cost else None,
            "price_basis": _text(cost.get("basis")) if cost else None,
        }
        if plan
        else None,
        "soft_delete": soft_delete,
        "unreferenced_objects": summary.get("unreferenced_objects", acc.findings_seen[Kind.UNREFERENCED_BLOB.value]),
        "unreferenced_bytes": summary.get("unreferenced_bytes", acc.bytes_by_kind[Kind.UNREFERENCED_BLOB.value]),
        "largest_reclaimable": bool(largest),
        "largest": largest or _largest(acc, sorted(acc.largest_unreferenced)),
        "protected": protected_section(summary.get("reclaim_protected")),
    }


def protected_section(protected: Any) -> Row | None:
    """Reclaim's second guard on the page: the unreferenced blobs kept out of the plan because the
    bucket itself shows their image whole, and the user's ``accept_losing`` choice (None before it)."""
    if not isinstance(protected, dict):
        return None
    accept = protected.get("accept_losing")
    images = [image for image in protected.get("images") or () if isinstance(image, dict)][:IMAGE_ROWS]
    return {
        "objects": protected.get("objects") or 0,
        "bytes": protected.get("bytes") or 0,
        "accepted_objects": protected.get("accepted_objects") or 0,
        "accepted_bytes": protected.get("accepted_bytes") or 0,
        "accept_losing": "all" if accept == "all" else [_text(d) for d in accept or ()][: NAMES_PER_ROW * 4],
        "images": [
            {
                "config_digest": _text(image.get("config_digest")),
                "bucket": _text(image.get("bucket")),
                "bytes": image.get("bytes"),
                "created": _text(image.get("created")),
                "platform": "/".join(str(image[k]) for k in ("os", "architecture") if image.get(k)),
                "labels": sorted(f"{k}={v}" for k, v in (image.get("labels") or {}).items())[:3],
                "last_history": _text(image.get("last_history")),
                "via": _text(image.get("via")),
            }
            for image in images
        ],
        "images_total": protected.get("images_total") or len(images),
    }


def findings_section(summary: Row, acc: ReportAccumulator) -> list[Row]:
    by_kind = summary.get("findings_by_kind") or {}
    kinds = sorted(
        set(by_kind) | set(acc.details),
        key=lambda k: (_SEVERITY_RANK.get(_severity_of(k), 3), k),
    )
    sections = []
    for kind in kinds:
        rows = acc.details[kind].items() if kind in acc.details else []
        total = by_kind.get(kind, acc.findings_seen[kind])
        if not total and not rows:
            continue
        sections.append(
            {
                "kind": kind,
                "severity": _severity_of(kind),
                "total": total,
                "rows": rows,
                "omitted": max(total - len(rows), 0),
            }
        )
    return sections


def _severity_of(kind: str) -> str | None:
    try:
        return SEVERITY_OF[Kind(kind)].value
    except ValueError:
        return None


def _reference_date(summary: Row) -> date | None:
    for key in ("started_at", "ended_at"):
        created = created_date(summary.get(key))
        if created is not None:
            return created
    return None


def most_affected_images(acc: ReportAccumulator, limit: int = MOST_AFFECTED) -> list[Row]:
    """The broken images with the most error findings (then the largest): the terminal's short list."""
    return [
        {"image": row["image"], "error_findings": row["error_findings"], "broken_by_count": row["broken_by_count"]}
        for row in acc.images.items()
        if row["status"] == "broken"
    ][:limit]


# --- the decommission verdict and the fleet (docs/report-html.md) ---------------------------------------

# The order of the fleet totals: what can go, what would lose images, what is in use, what is unknown.
VERDICTS = ("safe_to_delete", "would_lose_images", "in_use", "cannot_tell")


def _block(summary: Row, key: str) -> Row | None:
    """``summary[key]`` when it is an object; None for a run that predates it (or a damaged summary)."""
    value = summary.get(key)
    return value if isinstance(value, dict) else None


def _usd_of(entry: Row) -> float:
    cost = entry.get("monthly_cost") if isinstance(entry.get("monthly_cost"), dict) else {}
    amount = cost.get("usd_per_month")
    return amount if isinstance(amount, int | float) and not isinstance(amount, bool) else -1.0


def card_order(decommission: Row | None, fleet: Row | None) -> list[str]:
    """The buckets in the order their cards appear: the fleet's rows (cost descending), then any bucket
    of the verdict that the fleet does not list, by the same rule (a summary written before the fleet)."""
    decommission = decommission or {}
    rows = (fleet or {}).get("rows")
    rows = rows if isinstance(rows, list) else []
    order = [row["bucket"] for row in rows if isinstance(row, dict) and row.get("bucket") in decommission]
    listed = set(order)
    rest = [b for b in decommission if b not in listed and isinstance(decommission[b], dict)]
    rest.sort(key=lambda b: (-_usd_of(decommission[b]), str(b)))
    return order + rest


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def decommission_units(summary: Row, acc: ReportAccumulator) -> Row | None:
    """How the cards' numbers meet the rest of the page, for the line under the fleet totals.

    The cards' objects and bytes add up to what the scan listed (the chart splits the same bytes by
    state); deleting a whole bucket frees all of them, while the reclaim plan deletes only the
    unreferenced blobs proven unused (``proven_reclaim``, the chart's reclaimable bar). ``agrees`` is
    False when the verdict covers other objects than the scan listed: the page says so rather than
    showing two totals that silently differ.
    """
    decommission = _block(summary, "decommission")
    if not decommission:
        return None
    entries = [e for e in decommission.values() if isinstance(e, dict)]
    objects = sum(_int(e.get("objects")) for e in entries)
    size = sum(_int(e.get("bytes")) for e in entries)
    listed_objects, listed_bytes = _int(summary.get("objects_listed")), _int(summary.get("bytes_listed"))
    return {
        "buckets": len(entries),
        "objects": objects,
        "bytes": size,
        "objects_listed": listed_objects,
        "bytes_listed": listed_bytes,
        "agrees": (objects, size) == (listed_objects, listed_bytes),
        # A bucket whose listing failed has no size (null): it counts 0 above, and the page says how many.
        "unknown_size": sum(1 for e in entries if not isinstance(e.get("bytes"), int)),
        "images_only_here": sum(_int(e.get("images_only_here_total")) for e in entries),
        "unreferenced_objects": summary.get("unreferenced_objects", acc.findings_seen[Kind.UNREFERENCED_BLOB.value]),
        "unreferenced_bytes": summary.get("unreferenced_bytes", acc.bytes_by_kind[Kind.UNREFERENCED_BLOB.value]),
        "reclaim": proven_reclaim(summary, acc),
    }


def build_model(
    summary: Row, acc: ReportAccumulator, *, report_file: str | None = None, recovered: Iterable[Row] = ()
) -> Row:
    """The page model: everything the renderer draws, already bounded."""
    config = summary.get("config") or {}
    source = config.get("source") or {} if isinstance(config, dict) else {}
    scan = config.get("scan") or {} if isinstance(config, dict) else {}
    images_shown = acc.images.items()
    image_total = sum(acc.images_by_status.values())
    return {
        "run": {
            "run_id": _text(summary.get("run_id")),
            "started_at": _text(summary.get("started_at")),
            "ended_at": _text(summary.get("ended_at")),
            "report_location": _text(summary.get("report_location"), 600),
            "report_file": _text(report_file, 600),
            "mode": _text(scan.get("mode")),
            "buckets": [_text(b) for b in (source.get("buckets") or ())][:BUCKET_ROWS],
            "files": [_text(f) for f in (summary.get("files") or ())][:200],
        },
        "verdict": verdict(summary),
        "totals": {
            "objects_listed": summary.get("objects_listed") or 0,
            "bytes_listed": summary.get("bytes_listed") or 0,
            "objects_verified": summary.get("objects_verified") or 0,
            "bytes_verified": summary.get("bytes_verified") or 0,
            "objects_not_hashed": summary.get("objects_not_hashed") or 0,
            "unaccounted_objects": summary.get("unaccounted_objects") or 0,
            "manifests_scanned": summary.get("manifests_scanned") or 0,
            "images_affected": summary.get("images_affected") or 0,
        },
        "findings_by_kind": {k: n for k, n in (summary.get("findings_by_kind") or {}).items()},
        "findings_by_severity": dict(summary.get("findings_by_severity") or {}),
        "bytes_by_state": bytes_by_state(summary, acc),
        "age_histogram": age_histogram(acc, _reference_date(summary)),
        "images": {
            "rows": images_shown,
            "total": image_total,
            "by_status": dict(acc.images_by_status),
            "omitted": max(image_total - len(images_shown), 0),
        },
        "most_affected_images": most_affected_images(acc),
        "buckets": bucket_table(acc, summary),
        "bucket_count": len(acc.buckets),
        "reclaim": reclaim_section(summary, acc),
        "findings": findings_section(summary, acc),
        "recovery": recovery_page_section(summary, recovered),  # docs/recovery.md
        # The terminal summary's line per bucket against a role: successor registry, word for word.
        "successor": bucket_lines(summary.get("successor") or {})[:BUCKET_ROWS],
        "changes": changes_page_section(summary),  # docs/incremental.md
        # As summary.json has them (pipeline/core/decommission.py, fleet_view.py); None for an older run.
        "decommission": _block(summary, "decommission"),
        "fleet": _block(summary, "fleet"),
        "card_order": card_order(_block(summary, "decommission"), _block(summary, "fleet")),
        "units": decommission_units(summary, acc),
    }
