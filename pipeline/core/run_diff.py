"""Run-to-run differences: what changed in the buckets and in the findings since the ledger's run.

Pure: no I/O and no Beam. The pipeline joins this run's listing and findings with the previous
run's rows by key (one ``CoGroupByKey``); ``object_changes`` and ``finding_changes`` turn each
group into change rows, written whole as ``changes-*.jsonl``; ``ChangesAccumulator`` folds them
into counts and a few examples of each for ``summary.json`` and ``report.html``. Objects are
keyed by ``(bucket, object)``; findings by ``(kind, bucket, subject)``, where the subject is the
object, else the blob's digest, else the manifest (``repository@digest``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pipeline.core.findings import SEVERITY_OF, Kind

Row = dict[str, Any]

NEW_OBJECT, CHANGED_OBJECT, VANISHED_OBJECT = "new_object", "changed_object", "vanished_object"
NEW_FINDING, GONE_FINDING, PERSISTING_FINDING = "new_finding", "gone_finding", "persisting_finding"
OBJECT_CHANGES = (NEW_OBJECT, CHANGED_OBJECT, VANISHED_OBJECT)
FINDING_CHANGES = (NEW_FINDING, GONE_FINDING, PERSISTING_FINDING)
CHANGES = OBJECT_CHANGES + FINDING_CHANGES
CHANGES_PREFIX = "changes"
# Examples of each change kept for summary.json and the page; changes-*.jsonl has them all.
EXAMPLES_PER_CHANGE = 20

# One changes-*.jsonl line: always these keys, in this order (None where one does not apply).
CHANGE_FIELDS: tuple[str, ...] = (
    "change",
    "bucket",
    "object",
    "kind",
    "severity",
    "subject",
    "generation",
    "previous_generation",
    "size",
    "previous_size",
    "previous_run_id",
)

OBJECT_KEY, FINDING_KEY = "object", "finding"
_OBJECT_KINDS = frozenset(
    {
        Kind.DIGEST_MISMATCH.value,
        Kind.MALFORMED_NAME.value,
        Kind.READ_ERROR.value,
        Kind.VANISHED.value,
        Kind.LEDGER_DISAGREES.value,
    }
)


def compared(bucket: str | None, previous_buckets: tuple[str, ...]) -> bool:
    """Whether rows of ``bucket`` take part in the diff: only buckets both runs scanned do (this run's
    ledger rows are already limited to its own buckets), so a bucket one run alone scanned is neither
    new nor vanished. Unknown previous buckets (a BigQuery ledger) and manifest rows (no bucket) always do."""
    return not previous_buckets or bucket is None or bucket in previous_buckets


def change_row(change: str, **fields: Any) -> Row:
    row = dict.fromkeys(CHANGE_FIELDS)
    row.update(fields)
    row["change"] = change
    return row


def object_state(row: Row) -> Row:
    """What the diff compares of an object: its name and generation (and size, for the reader)."""
    return {
        "bucket": row.get("bucket"),
        "object": row.get("object"),
        "generation": row.get("generation"),
        "size": row.get("size"),
        "run_id": row.get("run_id"),
    }


def is_object_row(row: Row) -> bool:
    """A verified row, or a finding that stands for a listed object (one per object in a sound run)."""
    return "kind" not in row or row.get("kind") in _OBJECT_KINDS


def object_key(row: Row) -> tuple:
    return (OBJECT_KEY, row.get("bucket"), row.get("object"))


def finding_subject(row: Row) -> str:
    if row.get("object"):
        return str(row["object"])
    if row.get("digest"):
        return str(row["digest"])
    if row.get("manifest_digest"):
        return f"{row.get('repository') or ''}@{row['manifest_digest']}"
    return str(row.get("reference") or row.get("repository") or "")


def finding_key(row: Row) -> tuple:
    return (FINDING_KEY, row.get("kind"), row.get("bucket"), finding_subject(row))


def _run_id(rows: list[Row]) -> str | None:
    return next((r.get("run_id") for r in rows if r.get("run_id")), None)


def object_changes(current: list[Row], previous: list[Row]) -> list[Row]:
    """The change, if any, of one ``(bucket, object)``: new, changed (another generation) or vanished."""
    if not current and not previous:
        return []
    now = current[0] if current else None
    # Several previous rows about one object (a ledger with duplicates) must not make the verdict
    # depend on the order the join delivers them in: the one of the current generation, if any,
    # else the newest generation.
    same = [r for r in previous if now is not None and r.get("generation") == now.get("generation")]
    ordered = sorted(previous, key=lambda r: (isinstance(r.get("generation"), int), _generation(r)))
    before = (same or ordered[-1:] or [None])[0]
    previous_run_id = _run_id(previous)
    if before is None:
        return [change_row(NEW_OBJECT, **_now(now))]
    if now is None:
        return [
            change_row(
                VANISHED_OBJECT,
                bucket=before.get("bucket"),
                object=before.get("object"),
                previous_generation=before.get("generation"),
                previous_size=before.get("size"),
                previous_run_id=previous_run_id,
            )
        ]
    if now.get("generation") != before.get("generation"):
        return [
            change_row(
                CHANGED_OBJECT,
                **_now(now),
                previous_generation=before.get("generation"),
                previous_size=before.get("size"),
                previous_run_id=previous_run_id,
            )
        ]
    return []


def _generation(row: Row) -> int:
    generation = row.get("generation")
    return generation if isinstance(generation, int) and not isinstance(generation, bool) else -1


def _now(row: Row) -> Row:
    return {
        "bucket": row.get("bucket"),
        "object": row.get("object"),
        "generation": row.get("generation"),
        "size": row.get("size"),
    }


def finding_changes(key: tuple, current: list[Row], previous: list[Row]) -> list[Row]:
    """New (only now), gone (only before) or persisting (both) for one ``(kind, bucket, subject)``."""
    if not current and not previous:
        return []
    _, kind, bucket, subject = key
    change = PERSISTING_FINDING if current and previous else NEW_FINDING if current else GONE_FINDING
    sample = (current or previous)[0]
    try:
        severity = SEVERITY_OF[Kind(kind)].value
    except ValueError:
        severity = sample.get("severity")
    return [
        change_row(
            change,
            bucket=bucket,
            object=sample.get("object"),
            kind=kind,
            severity=severity,
            subject=subject,
            generation=current[0].get("generation") if current else None,
            previous_generation=previous[0].get("generation") if previous else None,
            previous_run_id=_run_id(previous),
        )
    ]


def joined_changes(element: tuple[tuple, dict[str, list[Row]]]) -> list[Row]:
    """The change rows of one joined key: ``(key, {"current": rows, "previous": rows})``."""
    key, groups = element
    current, previous = list(groups.get("current") or ()), list(groups.get("previous") or ())
    if key[0] == OBJECT_KEY:
        return object_changes(current, previous)
    return finding_changes(key, current, previous)


def _example_key(row: Row) -> tuple:
    severity_rank = {"error": 0, "warning": 1, "info": 2}.get(row.get("severity") or "", 3)
    return (severity_rank, str(row.get("bucket") or ""), str(row.get("subject") or row.get("object") or ""))


@dataclass
class ChangesAccumulator:
    """Counts of every change, by kind for findings, and the first few of each (mergeable in any order)."""

    counts: Counter = field(default_factory=Counter)  # change -> n
    by_kind: Counter = field(default_factory=Counter)  # (change, kind) -> n
    examples: dict[str, list] = field(default_factory=dict)  # change -> [(key, row)], trimmed to the cap
    previous_run_ids: set = field(default_factory=set)

    def add(self, row: Row) -> ChangesAccumulator:
        change = row["change"]
        self.counts[change] += 1
        if row.get("kind"):
            self.by_kind[(change, row["kind"])] += 1
        if row.get("previous_run_id") and len(self.previous_run_ids) < 5:
            self.previous_run_ids.add(row["previous_run_id"])
        kept = self.examples.setdefault(change, [])
        kept.append((_example_key(row), row))
        if len(kept) > 2 * EXAMPLES_PER_CHANGE:
            self._trim(change)
        return self

    def _trim(self, change: str) -> None:
        self.examples[change].sort(key=lambda entry: entry[0])
        del self.examples[change][EXAMPLES_PER_CHANGE:]

    def merge(self, other: ChangesAccumulator) -> ChangesAccumulator:
        self.counts.update(other.counts)
        self.by_kind.update(other.by_kind)
        self.previous_run_ids |= other.previous_run_ids
        for change, entries in other.examples.items():
            self.examples.setdefault(change, []).extend(entries)
            self._trim(change)
        return self

    def example_rows(self, change: str) -> list[Row]:
        if change not in self.examples:
            return []
        self._trim(change)
        return [row for _, row in self.examples[change]]


def changes_block(acc: ChangesAccumulator, previous: Row, files: list[str] = (), withheld: str | None = None) -> Row:
    """The ``changes`` block of summary.json: the run compared with, counts, examples, the files.

    ``withheld`` says why no change is reported (a damaged ledger); the counts are then 0.
    """
    run_id = previous.get("run_id")
    if run_id is None and len(acc.previous_run_ids) == 1:
        run_id = next(iter(acc.previous_run_ids))  # a BigQuery ledger names its run in the rows
    kinds = sorted({kind for _, kind in acc.by_kind})
    return {
        "previous_run_id": run_id,
        "previous_location": previous.get("location"),
        "objects": {
            "new": acc.counts[NEW_OBJECT],
            "changed": acc.counts[CHANGED_OBJECT],
            "vanished": acc.counts[VANISHED_OBJECT],
        },
        "findings": {
            "new": acc.counts[NEW_FINDING],
            "gone": acc.counts[GONE_FINDING],
            "persisting": acc.counts[PERSISTING_FINDING],
        },
        "findings_by_kind": {
            kind: {
                "new": acc.by_kind[(NEW_FINDING, kind)],
                "gone": acc.by_kind[(GONE_FINDING, kind)],
                "persisting": acc.by_kind[(PERSISTING_FINDING, kind)],
            }
            for kind in kinds
        },
        "examples": {change: acc.example_rows(change) for change in CHANGES},
        "examples_per_change": EXAMPLES_PER_CHANGE,
        "files": sorted(files),
        "withheld": withheld,
    }


def change_lines(block: Row | None, shown: int = 3) -> list[str]:
    """The terminal's lines: what changed since the previous run, with a few names of each."""
    if not block:
        return []
    if block.get("withheld"):
        return [f"since run {block.get('previous_run_id') or '(unknown)'}: not compared: {block['withheld']}"]
    objects, found = block["objects"], block["findings"]
    lines = [
        f"since run {block.get('previous_run_id') or '(unknown)'}: "
        f"{objects['new']} new, {objects['changed']} changed, {objects['vanished']} vanished object(s); "
        f"findings {found['new']} new, {found['gone']} gone, {found['persisting']} persisting"
    ]
    labels = {
        NEW_OBJECT: "new",
        CHANGED_OBJECT: "changed",
        VANISHED_OBJECT: "vanished",
        NEW_FINDING: "new finding",
        GONE_FINDING: "gone finding",
    }
    examples = block.get("examples") or {}
    for change, label in labels.items():
        for row in (examples.get(change) or [])[:shown]:
            what = f"{row['kind']} " if row.get("kind") else ""
            generation = ""
            if change == CHANGED_OBJECT:
                generation = f" (generation {row.get('previous_generation')} -> {row.get('generation')})"
            lines.append(f"  {label}: {what}{_where(row)}{generation}")
    return lines


def _where(row: Row) -> str:
    """An object as its gs:// path; a finding about no object (a missing_blob's digest, a manifest)
    by its subject and bucket: ``gs://BUCKET/sha256:…`` would name an object that is not there."""
    bucket, name = row.get("bucket"), row.get("object")
    if name:
        return f"gs://{bucket}/{name}" if bucket else str(name)
    subject = row.get("subject") or ""
    return f"{subject} in bucket {bucket}" if bucket else str(subject)


def page_section(summary: Row) -> Row | None:
    """report.html's "Since the previous run" section, from summary.json's ``changes`` and ``ledger``
    (None when the run named no earlier run)."""
    block = summary.get("changes")
    if not isinstance(block, dict) or block.get("withheld"):
        return None
    ledger = summary.get("ledger") if isinstance(summary.get("ledger"), dict) else {}
    return {
        "previous_run_id": block.get("previous_run_id"),
        "previous_location": block.get("previous_location"),
        "chosen_by": ledger.get("chosen_by"),
        "skipped": list(ledger.get("skipped") or ())[:10],
        "objects": dict(block.get("objects") or {}),
        "findings": dict(block.get("findings") or {}),
        "findings_by_kind": dict(block.get("findings_by_kind") or {}),
        "examples": {change: list((block.get("examples") or {}).get(change) or ()) for change in CHANGES},
        "files": list(block.get("files") or ()),
        "verified_from_ledger": summary.get("verified_from_ledger") or 0,
        "bytes_from_ledger": summary.get("bytes_from_ledger") or 0,
        "reverified_from_ledger": summary.get("reverified_from_ledger") or 0,
    }
