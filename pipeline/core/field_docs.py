"""The meaning of every report field, in one place.

docs/report.md's tables of finding, verified and ``summary.json`` fields, and the
description of every BigQuery column (``pipeline.core.bq_schema``), are generated from
these tuples, so the page and the BigQuery console say the same words. Edit a meaning
here, then run ``python -m pipeline.core.bq_schema`` (it rewrites the schema files and
the docs' tables); tests/test_bq_schema.py fails while either is stale.

Pure: no I/O and no Beam.
"""

# Each meaning is one sentence of the docs, kept on one line so it reads and greps as on the page.
# ruff: noqa: E501

from __future__ import annotations

import re
from typing import NamedTuple

# BigQuery takes a column description of up to 1,024 characters.
MAX_DESCRIPTION = 1024


class FieldDoc(NamedTuple):
    keys: tuple[str, ...]  # the fields one row of the docs' table describes
    meaning: str  # Markdown, as the docs show it
    types: str | None = None  # the finding table's type column ("text", "integer", "list", …)


FINDING_FIELD_DOCS: tuple[FieldDoc, ...] = (
    FieldDoc(("run_id",), "the run that wrote the row (every row, findings and verified)", "text"),
    FieldDoc(
        ("kind", "severity"), "see [Finding kinds](#finding-kinds); severity is `error`, `warning` or `info`", "text"
    ),
    FieldDoc(
        ("bucket",),
        "the bucket of the object. For legacy metadata (`containers/repositories/`) the scanned bucket; for a missing blob the bucket it is missing from (`null`: any scanned bucket)",
        "text",
    ),
    FieldDoc(
        ("object",),
        "the object's name in `bucket`. For a manifest file of a directory or OCI source: its full path (`gs://…` or local), with `bucket` null",
        "text",
    ),
    FieldDoc(("generation",), "the generation listed and read: pin a deletion or a restore to it", "integer"),
    FieldDoc(
        ("digest",),
        "the digest the row is about: the object's name, the blob a manifest references, or the manifest's own",
        "text",
    ),
    FieldDoc(
        ("expected", "actual"),
        "`digest_mismatch`: the digest in the name and the digest of the bytes; `malformed_name`: the expected form and the name found; `size_mismatch`: the declared and the real size; `manifest_digest_mismatch`: the claimed and the real digest; `invalid_manifest`: the declared and the real media type",
        "text",
    ),
    FieldDoc(
        ("size",),
        "bytes read (`digest_mismatch`), else the object's listed size; for a manifest finding the manifest's size; for `missing_blob` the size the manifest declares",
        "integer",
    ),
    FieldDoc(
        ("expected_size",),
        "the size the manifests declare for a blob when it differs from `size`: on `size_mismatch`, and on a damaged blob's `digest_mismatch`, `read_error` or `vanished` row (so a truncated blob keeps the size it should have). `null` when they agree, or disagree among themselves",
        "integer",
    ),
    FieldDoc(
        ("crc32c",),
        "the crc32c GCS stored for the object (base64), as listed; on a `digest_mismatch` compare it with `crc32c_match`",
        "text",
    ),
    FieldDoc(("crc32c_match",), "`digest_mismatch` only: did the bytes read match the stored crc32c", "boolean"),
    FieldDoc(
        ("storage_class",),
        "the object's storage class as listed (`STANDARD`, `NEARLINE`, `COLDLINE`, `ARCHIVE`)",
        "text",
    ),
    FieldDoc(("time_created",), "when the object was created, as listed", "timestamp"),
    FieldDoc(
        ("http_status",),
        "`read_error`, `vanished`, `manifest_unavailable`: the last HTTP status, if any; null when no HTTP answer was involved (a file missing from a local `directory:` or `oci_layout:` folder, a digest its source never listed)",
        "integer",
    ),
    FieldDoc(
        ("reads",),
        "`digest_mismatch`, `read_error`, `vanished`: complete reads of the object it took; a mismatch stands only when 2 agree ([reliability](reliability.md))",
        "integer",
    ),
    FieldDoc(("detail",), "a sentence for people", "text"),
    FieldDoc(
        ("repository",),
        "the one repository involved (`host/name`); `null` when several are: see `repositories`",
        "text",
    ),
    FieldDoc(("repositories",), "every repository involved, sorted; set whenever a manifest is involved", "list"),
    FieldDoc(("reference",), "manifest findings: the tag (or digest) the manifest was reached by", "text"),
    FieldDoc(
        ("manifest_digest",), "the one manifest involved; `null` when several are: see `manifest_digests`", "text"
    ),
    FieldDoc(("manifest_digests",), "every manifest involved, sorted", "list"),
    FieldDoc(
        ("images",),
        "every `repository@digest` the finding affects: the manifest itself and every index that leads to it",
        "list",
    ),
    FieldDoc(
        ("tags",),
        "every `repository:tag` that leads to those images (an index child inherits its index's tags)",
        "list",
    ),
    FieldDoc(
        ("ledger_run_id", "ledger_verified_at", "ledger_sha256", "ledger_size", "ledger_crc32c"),
        "`ledger_disagrees` only: the ledger's verified row the read contradicts: its run, when it read the bytes, and what it found ([incremental](incremental.md#rows))",
        "text, timestamp, text, integer, text",
    ),
)
VERIFIED_FIELD_DOCS: tuple[FieldDoc, ...] = (
    FieldDoc(("run_id",), "the run that wrote the row"),
    FieldDoc(("bucket", "object", "generation"), "the object as listed; the read was pinned to that generation"),
    FieldDoc(("size",), "bytes read"),
    FieldDoc(("crc32c",), "crc32c of the bytes read (base64, as GCS writes it)"),
    FieldDoc(("sha256",), "SHA-256 of the bytes read (hex); equal to the name's digest"),
    FieldDoc(("storage_class", "time_created"), "as listed (the report's age histogram uses `time_created`)"),
    FieldDoc(
        ("verified_by",),
        "`read`: this run hashed the bytes; `ledger`: carried over from the ledger without a read (`scan.incremental`; then `size`, `crc32c` and `sha256` are the ledger's, and equal to what is listed now)",
    ),
    FieldDoc(
        ("verified_at",),
        "when the bytes were last read: the start of the run that read them; a carried-over row keeps the original time",
    ),
    FieldDoc(
        ("ledger_run_id",),
        "the ledger's run a carried-over row rests on, or that a re-check confirmed; `null` for an ordinary read ([incremental](incremental.md#rows))",
    ),
)
SUMMARY_FIELD_DOCS: tuple[FieldDoc, ...] = (
    FieldDoc(("run_id", "started_at", "ended_at"), "the run, and when it started and wrote this file (UTC, ISO 8601)"),
    FieldDoc(("report_location",), "the run's folder"),
    FieldDoc(("config",), "the configuration that ran, with the effective `scan.mode`; it holds no secrets"),
    FieldDoc(("objects_listed", "bytes_listed"), "every object under the prefix"),
    FieldDoc(("objects_verified", "bytes_verified"), "objects whose bytes hash to their name"),
    FieldDoc(
        ("verified_from_ledger", "bytes_from_ledger"),
        "objects (and their bytes) carried over from the ledger without a read; included in `objects_verified` and `bytes_verified` ([incremental](incremental.md#summaryjson))",
    ),
    FieldDoc(("reverified_from_ledger",), "objects of the re-check sample whose read agreed with the ledger"),
    FieldDoc(
        ("ledger", "changes"),
        "`null`, or the earlier run compared with and what changed since: counts, examples, the `changes-*.jsonl` files ([incremental](incremental.md#summaryjson))",
    ),
    FieldDoc(
        ("unaccounted_objects",),
        "listed objects with neither a verified row nor an object finding: 0 in a sound run, and a run with any fails (status 1). Such a run is never trusted as a ledger",
    ),
    FieldDoc(("findings_by_kind", "findings_by_severity"), "counts, every kind and severity present (zeros included)"),
    FieldDoc(("manifests_scanned",), "distinct (repository, manifest) pairs read, index children included"),
    FieldDoc(("images_affected",), "distinct `repository@digest` named by at least one error finding"),
    FieldDoc(("objects_not_hashed",), "objects listed in `manifests` mode, where nothing is hashed"),
    FieldDoc(("repositories",), '`{repository: {"manifests_scanned": n, "images_affected": n, <kind>: n, …}}`'),
    FieldDoc(("unreferenced_objects", "unreferenced_bytes"), "every `unreferenced_blob`, proven or not"),
    FieldDoc(
        ("reclaimable_bytes",),
        "the bytes of unreferenced blobs proven reclaimable; `null` when any bucket with unreferenced blobs is not proven, or no manifest was read (then `reclaim_blocked_by` says why). `0` when the cross-check ran and nothing is unreferenced",
    ),
    FieldDoc(
        ("reclaim_blocked_by",),
        'a list, one entry per reason a bucket is not proven: `{"bucket", "code", "source", "reason", "manifests", "manifests_total"}` ([codes](#why-reclaim-is-blocked)); `[]` when every bucket is proven',
    ),
    FieldDoc(
        ("reclaim_plan",),
        '`null`, or `{"file": "reclaim-plan.txt", "objects", "bytes", "buckets", "monthly_cost", "early_deletion", "soft_delete"}`: what the plan file holds ([below](#reclaim-plantxt))',
    ),
    FieldDoc(
        ("reclaim_by_bucket",),
        "per scanned bucket: `reclaim_proven`, `unreferenced_objects`, `unreferenced_bytes`, `reclaimable_bytes` (the unreferenced bytes less the protected ones), `protected_objects`, `protected_bytes` (unreferenced blobs the [second guard](#the-second-guard-the-buckets-own-evidence) kept out of the plan), `accepted_objects`, `accepted_bytes` (those of images named in `reclaim.accept_losing`, planned), `plan_objects`, `plan_bytes`, `unpinned_objects`, `location`, `location_type`, `location_type_from`, `default_storage_class`, `soft_delete_retention_seconds`, `soft_delete` (a sentence)",
    ),
    FieldDoc(
        ("reclaim_protected",),
        'the second guard: `{"accept_losing": [config digests] or "all", "objects", "bytes", "accepted_objects", "accepted_bytes", "images": [up to 20 {config_digest, bucket, bytes, created, os, architecture, labels, last_history, history (the first and last 3 steps), history_count, via, manifest_digest (for a manifest stored as a blob)}], "images_total"}`. `accept_losing` is where your choice is recorded ([below](#the-second-guard-the-buckets-own-evidence))',
    ),
    FieldDoc(("exit_status",), "see [Exit status](#exit-status)"),
    FieldDoc(("files",), "the row files of the run (findings, verified, images, changes)"),
    FieldDoc(
        ("report_html", "most_affected_images"),
        "the page's path, and up to 5 `{image, error_findings, broken_by_count}` ([report.html](report-html.md#the-terminal-summary))",
    ),
    FieldDoc(
        ("recovery",),
        "with `scan.recover_images`: counts of the image configs found in the buckets: `configs`, `complete`, `not_in_registry`, `not_in_registry_complete`, `not_in_registry_bytes`, `orphan_layers`, `orphan_bytes` ([recovery](recovery.md#what-recovery-writes))",
    ),
    FieldDoc(
        ("successor",),
        "with a `role: successor` source: `{bucket: {successor_blobs, successor_bytes, other_blobs, other_bytes}}`, what the successor registry's images use of each bucket ([recovery](recovery.md#the-successor-registry-role-successor))",
    ),
    FieldDoc(
        ("decommission",),
        "per scanned bucket, can it be deleted and what would be lost ([Decommission](#decommission-the-verdict-per-bucket)): `verdict` (`safe_to_delete`, `would_lose_images`, `in_use` "
        "or `cannot_tell`), `headline`, `project`, `reasons`, `images_only_here` and `images_in_use` (capped lists, "
        "with their totals), `objects`, `bytes`, `monthly_cost`, `soft_delete`, `soft_delete_retention_seconds`; "
        "every scanned bucket is present (in names mode its verdict is `cannot_tell`); absent from runs before the verdict",
    ),
    FieldDoc(
        ("fleet",),
        'every scanned bucket\'s decommission verdict in one view, or `null` in a run without verdicts: `{"buckets", "by_verdict", "headline", "rows"}`. `by_verdict` has all four verdicts (`safe_to_delete`, `would_lose_images`, `in_use`, `cannot_tell`), each `{"buckets", "usd_per_month", "images_only_here"}`; `headline` is the sentence the terminal and `report.html` open with (`12 buckets safe to delete, saving $34.50 a month; 3 would lose 17 images; 1 cannot tell`); `rows` is one `{"bucket", "project", "verdict", "headline", "bytes", "usd_per_month", "images_only_here"}` per bucket, sorted by `usd_per_month` (highest first, unpriced last), then bucket ([the fleet view](fleet.md#the-fleet-view))',
    ),
)

# Columns the BigQuery tables add to the report's fields (docs/production.md, "BigQuery audit tables").
BIGQUERY_ONLY_DOCS: tuple[FieldDoc, ...] = (
    FieldDoc(
        ("run_started_at",),
        "when the run started (UTC); with `run_id` it tells two attempts of one run id apart",
        "timestamp",
    ),
    FieldDoc(("scan_date",), "the day the run started (UTC): the column every table is partitioned by", "date"),
    FieldDoc(
        ("buckets",),
        "`summaries` only: the buckets the run resolved, configured and discovered with `source.projects`",
        "list",
    ),
)

_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")


def meaning_of(docs: tuple[FieldDoc, ...], key: str) -> str | None:
    for doc in docs:
        if key in doc.keys:
            return doc.meaning
    return None


def description(meaning: str) -> str:
    """A docs meaning as a BigQuery column description: links reduced to their text, at most 1,024 characters."""
    text = _LINK.sub(r"\1", meaning).replace("\\|", "|")
    return text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 1] + "…"


def markdown_table(docs: tuple[FieldDoc, ...], first: str = "key") -> str:
    """The docs' table of ``docs``: key(s), type (when the rows have one) and meaning."""
    typed = any(doc.types for doc in docs)
    header = [first, "type", "meaning"] if typed else [first, "meaning"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for doc in docs:
        keys = ", ".join(f"`{key}`" for key in doc.keys)
        cells = [keys, doc.types or "", doc.meaning] if typed else [keys, doc.meaning]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# The generated blocks of the docs: (file under the repository, block name) -> table.
BEGIN = "<!-- generated from pipeline/core/field_docs.py by `python -m pipeline.core.bq_schema`: {name} -->"
END = "<!-- end of {name} -->"


def doc_blocks() -> dict[tuple[str, str], str]:
    return {
        ("docs/report.md", "finding fields"): markdown_table(FINDING_FIELD_DOCS),
        ("docs/report.md", "verified fields"): markdown_table(VERIFIED_FIELD_DOCS),
        ("docs/report.md", "summary.json keys"): markdown_table(SUMMARY_FIELD_DOCS),
        ("docs/production.md", "bigquery-only columns"): markdown_table(BIGQUERY_ONLY_DOCS, "column"),
    }


def with_block(text: str, name: str, table: str) -> str:
    """``text`` with the generated block ``name`` replaced by ``table``; ValueError when it has no such block."""
    begin, end = BEGIN.format(name=name), END.format(name=name)
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < start:
        raise ValueError(f"no generated block {name!r} ({begin} … {end})")
    return text[: start + len(begin)] + "\n" + table + "\n" + text[stop:]
