"""BigQuery schemas of the audit tables, kept next to the JSONL schema so both cannot drift.

The ``findings`` table holds every ``FINDING_FIELDS`` column in the same order,
plus the run's id, start time and date (the partition column). The ``summaries``
table holds one row per run: every ``summary.json`` key, with the counts by kind
and by severity as records whose fields come from ``Kind`` and ``Severity``, each
``reclaim_blocked_by`` entry as a record, and the other nested values as ``JSON``.
Every column's description is its meaning in docs/report.md, both generated from
``pipeline.core.field_docs``.

``finding_columns()`` and ``summary_columns()`` raise ``SchemaDrift`` when a
JSONL key has no BigQuery column or a column no JSONL key, so a field added on
one side fails at pipeline construction (and in the tests), not in a load job.

Pure: no I/O and no Beam, but for ``python -m pipeline.core.bq_schema DIR``: it writes the
JSON schema files that ``bq mk`` uses (``jobs/deploy/bq/``) and the docs' generated tables.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline.compat import UTC, parse_iso_datetime
from pipeline.core import field_docs
from pipeline.core.findings import FINDING_FIELDS, VERIFIED_FIELDS, Kind, Severity
from pipeline.core.recovery import RECOVERY_COLUMNS

FINDINGS_TABLE = "findings"
SUMMARIES_TABLE = "summaries"
# docs/incremental.md: every verified row of every run, so the ledger can live in BigQuery.
VERIFIED_TABLE = "verified"
PARTITION_FIELD = "scan_date"

STRING, INTEGER, BOOLEAN, TIMESTAMP, DATE, RECORD = "STRING", "INTEGER", "BOOLEAN", "TIMESTAMP", "DATE", "RECORD"
# A nested value queried in place: config.scan.shard_count, INT64(reclaim_plan.monthly_cost.usd_per_month).
JSON = "JSON"
NULLABLE, REQUIRED, REPEATED = "NULLABLE", "REQUIRED", "REPEATED"

# The run a row belongs to. ``run_started_at`` tells two attempts with the same run id apart.
RUN_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("run_id", STRING, REQUIRED),
    ("run_started_at", TIMESTAMP, REQUIRED),
    (PARTITION_FIELD, DATE, REQUIRED),
)

# One entry per FINDING_FIELDS key: (type, mode). Adding a finding field means adding it here.
FINDING_TYPES: dict[str, tuple[str, str]] = {
    "kind": (STRING, REQUIRED),
    "severity": (STRING, REQUIRED),
    "bucket": (STRING, NULLABLE),
    "object": (STRING, NULLABLE),
    "generation": (INTEGER, NULLABLE),
    "digest": (STRING, NULLABLE),
    # Digests, names or sizes depending on the kind: kept as text so one column fits all.
    "expected": (STRING, NULLABLE),
    "actual": (STRING, NULLABLE),
    "size": (INTEGER, NULLABLE),
    "crc32c_match": (BOOLEAN, NULLABLE),
    "http_status": (INTEGER, NULLABLE),
    "reads": (INTEGER, NULLABLE),
    "detail": (STRING, NULLABLE),
    "repository": (STRING, NULLABLE),
    "reference": (STRING, NULLABLE),
    "manifest_digest": (STRING, NULLABLE),
    "images": (STRING, REPEATED),
    "tags": (STRING, REPEATED),
    "crc32c": (STRING, NULLABLE),
    "expected_size": (INTEGER, NULLABLE),
    "storage_class": (STRING, NULLABLE),
    "time_created": (TIMESTAMP, NULLABLE),
    "repositories": (STRING, REPEATED),
    "manifest_digests": (STRING, REPEATED),
    "ledger_run_id": (STRING, NULLABLE),
    "ledger_verified_at": (TIMESTAMP, NULLABLE),
    "ledger_sha256": (STRING, NULLABLE),
    "ledger_size": (INTEGER, NULLABLE),
    "ledger_crc32c": (STRING, NULLABLE),
}

# One entry per VERIFIED_FIELDS key.
VERIFIED_TYPES: dict[str, tuple[str, str]] = {
    "bucket": (STRING, REQUIRED),
    "object": (STRING, REQUIRED),
    "generation": (INTEGER, NULLABLE),
    "size": (INTEGER, NULLABLE),
    "crc32c": (STRING, NULLABLE),
    "sha256": (STRING, NULLABLE),
    "storage_class": (STRING, NULLABLE),
    "time_created": (TIMESTAMP, NULLABLE),
    # "read" or "ledger"; when the bytes were last read; the ledger run a row rests on.
    "verified_by": (STRING, NULLABLE),
    "verified_at": (TIMESTAMP, NULLABLE),
    "ledger_run_id": (STRING, NULLABLE),
}

# One entry per summary.json key (build_summary plus the "files" WriteReport adds).
SUMMARY_TYPES: dict[str, tuple[str, str]] = {
    "run_id": (STRING, REQUIRED),
    "started_at": (TIMESTAMP, REQUIRED),
    "ended_at": (TIMESTAMP, NULLABLE),
    "report_location": (STRING, NULLABLE),
    # The config that ran (INT64(config.scan.shard_count)).
    "config": (JSON, NULLABLE),
    "objects_listed": (INTEGER, NULLABLE),
    "bytes_listed": (INTEGER, NULLABLE),
    "objects_verified": (INTEGER, NULLABLE),
    "bytes_verified": (INTEGER, NULLABLE),
    "verified_from_ledger": (INTEGER, NULLABLE),
    "bytes_from_ledger": (INTEGER, NULLABLE),
    "reverified_from_ledger": (INTEGER, NULLABLE),
    # docs/incremental.md: the earlier run compared with, and the changes since.
    "ledger": (JSON, NULLABLE),
    "changes": (JSON, NULLABLE),
    "unaccounted_objects": (INTEGER, NULLABLE),
    "unreferenced_objects": (INTEGER, NULLABLE),
    "unreferenced_bytes": (INTEGER, NULLABLE),
    # NULL when reclaim is not proven for every bucket with unreferenced blobs.
    "reclaimable_bytes": (INTEGER, NULLABLE),
    # One record per blocker: {"bucket", "code", "source", "reason", "manifests", "manifests_total"}.
    "reclaim_blocked_by": (RECORD, REPEATED),
    # NULL when there is no plan.
    "reclaim_plan": (JSON, NULLABLE),
    "reclaim_by_bucket": (JSON, NULLABLE),
    # Reclaim's second guard and the user's accept_losing choice.
    "reclaim_protected": (JSON, NULLABLE),
    "manifests_scanned": (INTEGER, NULLABLE),
    "images_affected": (INTEGER, NULLABLE),
    "objects_not_hashed": (INTEGER, NULLABLE),
    # {repository: {column: count}} (INT64(repositories['gcr.io/p/app'].missing_blob)).
    "repositories": (JSON, NULLABLE),
    # {bucket: {successor_blobs, successor_bytes, other_blobs, other_bytes}} (docs/recovery.md).
    "successor": (JSON, NULLABLE),
    "recovery": (RECORD, NULLABLE),
    "findings_by_kind": (RECORD, NULLABLE),
    "findings_by_severity": (RECORD, NULLABLE),
    "exit_status": (INTEGER, REQUIRED),
    "files": (STRING, REPEATED),
    # What WriteHtmlReport adds (pipeline/transforms/html_report.py, summary_extras).
    "report_html": (STRING, NULLABLE),
    "most_affected_images": (JSON, NULLABLE),
    # The per-bucket decommission verdict and the fleet's totals (docs/report.md); NULL in a run without them.
    "decommission": (JSON, NULLABLE),
    "fleet": (JSON, NULLABLE),
}
# summary.json keys a summary may lack: those the report page adds after build_summary, and those
# of the decommission verdict (runs before it). Their columns are NULL then.
OPTIONAL_SUMMARY_KEYS = frozenset({"report_html", "most_affected_images", "decommission", "fleet"})
# Columns of the summaries table that summary.json does not have.
SUMMARY_EXTRA_COLUMNS: tuple[tuple[str, str, str], ...] = (
    (PARTITION_FIELD, DATE, REQUIRED),
    # The buckets the run resolved (configured plus discovered in source.projects).
    ("buckets", STRING, REPEATED),
)
# Counts: one INTEGER field per kind, severity or recovery column.
_COUNT_FIELDS = {
    "findings_by_kind": tuple(kind.value for kind in Kind),
    "findings_by_severity": tuple(severity.value for severity in Severity),
    "recovery": RECOVERY_COLUMNS,
}
# The fields of pipeline.core.reclaim's blockers (_blocker), each with its meaning.
BLOCKER_FIELDS: tuple[tuple[str, str, str, str], ...] = (
    ("bucket", STRING, NULLABLE, "the bucket that is not proven"),
    ("code", STRING, NULLABLE, "why, as a code (docs/report.md, Why reclaim is blocked)"),
    ("source", STRING, NULLABLE, "the manifest source concerned, if one is"),
    ("reason", STRING, NULLABLE, "why, as a sentence"),
    ("manifests", STRING, REPEATED, "some of the manifests that could not be read"),
    ("manifests_total", INTEGER, NULLABLE, "how many manifests could not be read"),
)

# Load-job settings per table: day partitions on the scan date, clustered for the usual filters.
# ALLOW_FIELD_ADDITION lets a newer release add a (nullable) column to an existing table.
TABLE_OPTIONS: dict[str, dict[str, Any]] = {
    FINDINGS_TABLE: {
        "timePartitioning": {"type": "DAY", "field": PARTITION_FIELD},
        "clustering": {"fields": ["bucket", "kind"]},
        "schemaUpdateOptions": ["ALLOW_FIELD_ADDITION"],
    },
    SUMMARIES_TABLE: {
        "timePartitioning": {"type": "DAY", "field": PARTITION_FIELD},
        "schemaUpdateOptions": ["ALLOW_FIELD_ADDITION"],
    },
    VERIFIED_TABLE: {
        "timePartitioning": {"type": "DAY", "field": PARTITION_FIELD},
        "clustering": {"fields": ["bucket", "object"]},
        "schemaUpdateOptions": ["ALLOW_FIELD_ADDITION"],
    },
}


class SchemaDrift(ValueError):
    """The JSONL schema and the BigQuery schema name different fields."""


def _check_same(what: str, jsonl: Iterable[str], bigquery: Iterable[str], fix: str) -> None:
    jsonl, bigquery = list(jsonl), list(bigquery)
    missing = [k for k in jsonl if k not in bigquery]
    extra = [k for k in bigquery if k not in jsonl]
    if missing or extra:
        raise SchemaDrift(
            f"{what}: JSONL fields without a BigQuery column {missing}, "
            f"BigQuery columns without a JSONL field {extra}; {fix}"
        )


def _subfields(name: str) -> list[dict[str, Any]]:
    if name == "reclaim_blocked_by":
        return [{"name": n, "type": t, "mode": m, "description": d} for n, t, m, d in BLOCKER_FIELDS]
    what = {"findings_by_kind": "findings of kind", "findings_by_severity": "findings of severity"}
    return [
        {"name": n, "type": INTEGER, "mode": NULLABLE, "description": f"{what.get(name, 'count of')} {n}"}
        for n in _COUNT_FIELDS[name]
    ]


def _described(table: str, name: str, docs: tuple[field_docs.FieldDoc, ...]) -> str:
    meaning = field_docs.meaning_of(docs, name) or field_docs.meaning_of(field_docs.BIGQUERY_ONLY_DOCS, name)
    if meaning is None:
        raise SchemaDrift(f"{table}.{name}: no meaning to describe it; add it to pipeline/core/field_docs.py")
    return field_docs.description(meaning)


def _field(table: str, docs: tuple[field_docs.FieldDoc, ...], name: str, type_: str, mode: str) -> dict[str, Any]:
    field: dict[str, Any] = {"name": name, "type": type_, "mode": mode, "description": _described(table, name, docs)}
    if type_ == RECORD:
        field["fields"] = _subfields(name)
    return field


def finding_columns() -> list[dict[str, Any]]:
    """The ``findings`` table: run columns, then FINDING_FIELDS in report order."""
    _check_same(
        "findings", FINDING_FIELDS, FINDING_TYPES, "add the field to FINDING_TYPES in pipeline/core/bq_schema.py"
    )
    docs = field_docs.FINDING_FIELD_DOCS
    return [_field(FINDINGS_TABLE, docs, *column) for column in RUN_COLUMNS] + [
        _field(FINDINGS_TABLE, docs, name, *FINDING_TYPES[name]) for name in FINDING_FIELDS
    ]


def verified_columns() -> list[dict[str, Any]]:
    """The ``verified`` table: run columns, then VERIFIED_FIELDS in report order."""
    _check_same(
        "verified", VERIFIED_FIELDS, VERIFIED_TYPES, "add the field to VERIFIED_TYPES in pipeline/core/bq_schema.py"
    )
    docs = field_docs.VERIFIED_FIELD_DOCS
    return [_field(VERIFIED_TABLE, docs, *column) for column in RUN_COLUMNS] + [
        _field(VERIFIED_TABLE, docs, name, *VERIFIED_TYPES[name]) for name in VERIFIED_FIELDS
    ]


def summary_columns(summary_keys: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """The ``summaries`` table; checked against ``summary_keys`` when given (the test does)."""
    if summary_keys is not None:
        keys = list(summary_keys)
        _check_same(
            "summaries",
            keys,
            [name for name in SUMMARY_TYPES if name in keys or name not in OPTIONAL_SUMMARY_KEYS],
            "add the key to SUMMARY_TYPES in pipeline/core/bq_schema.py",
        )
    docs = field_docs.SUMMARY_FIELD_DOCS
    return [_field(SUMMARIES_TABLE, docs, name, *types) for name, types in SUMMARY_TYPES.items()] + [
        _field(SUMMARIES_TABLE, docs, *column) for column in SUMMARY_EXTRA_COLUMNS
    ]


def table_schema(columns: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``{"fields": [...]}`` form that Beam's WriteToBigQuery accepts."""
    return {"fields": columns}


def table_spec(dataset: str, table: str) -> str:
    """``PROJECT:DATASET.TABLE`` (or ``DATASET.TABLE``) from ``report.bigquery_dataset``."""
    cut = max(dataset.rfind(":"), dataset.rfind("."))
    if cut < 0:
        return f"{dataset}.{table}"
    return f"{dataset[:cut]}:{dataset[cut + 1 :]}.{table}"


# --- rows: plain dicts in the column types above ---


def _utc(timestamp: str) -> datetime:
    parsed = parse_iso_datetime(timestamp)  # reads a trailing Z on 3.10 too
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def bq_timestamp(timestamp: str) -> str:
    """An ISO timestamp as BigQuery loads it (UTC, microseconds)."""
    return _utc(timestamp).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def scan_date(started_at: str) -> str:
    return _utc(started_at).astimezone(UTC).date().isoformat()


def _cell(value: Any, type_: str, mode: str) -> Any:
    if mode == REPEATED:
        if value is None:
            return []
        items = value if isinstance(value, (list, tuple, set, frozenset)) else [value]
        return [_cell(item, type_, NULLABLE) for item in items]
    if value is None:
        return None
    if type_ == STRING:
        return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    if type_ == JSON:
        # As parsed JSON: a load job stores it as JSON (a string would be stored as a JSON string).
        return json.loads(json.dumps(value, default=str))
    if type_ == INTEGER:
        return int(value)
    if type_ == BOOLEAN:
        return bool(value)
    if type_ == TIMESTAMP:
        return bq_timestamp(value)
    return value


def finding_row(row: dict[str, Any], run_id: str, run_started_at: str) -> dict[str, Any]:
    """A JSONL finding row as a ``findings`` table row."""
    out: dict[str, Any] = {
        "run_id": run_id,
        "run_started_at": bq_timestamp(run_started_at),
        PARTITION_FIELD: scan_date(run_started_at),
    }
    for name in FINDING_FIELDS:
        out[name] = _cell(row.get(name), *FINDING_TYPES[name])
    return out


def verified_row(row: dict[str, Any], run_id: str, run_started_at: str) -> dict[str, Any]:
    """A JSONL verified row as a ``verified`` table row."""
    out: dict[str, Any] = {
        "run_id": run_id,
        "run_started_at": bq_timestamp(run_started_at),
        PARTITION_FIELD: scan_date(run_started_at),
    }
    for name in VERIFIED_FIELDS:
        out[name] = _cell(row.get(name), *VERIFIED_TYPES[name])
    return out


def summary_row(summary: dict[str, Any], buckets: Iterable[str]) -> dict[str, Any]:
    """A ``summary.json`` document as a ``summaries`` table row."""
    out: dict[str, Any] = {}
    for name, (type_, mode) in SUMMARY_TYPES.items():
        value = summary.get(name)
        if name == "reclaim_blocked_by":
            out[name] = [
                {field: _cell(blocker.get(field), t, m) for field, t, m, _ in BLOCKER_FIELDS} for blocker in value or ()
            ]
        elif type_ == RECORD:
            out[name] = {key: int((value or {}).get(key, 0)) for key in _COUNT_FIELDS[name]}
        else:
            out[name] = _cell(value, type_, mode)
    out[PARTITION_FIELD] = scan_date(summary["started_at"])
    out["buckets"] = list(buckets)
    return out


def write_schema_files(directory: str | Path) -> list[Path]:
    """The JSON schema files ``bq mk --table`` takes, one per table."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    tables = (
        (FINDINGS_TABLE, finding_columns()),
        (SUMMARIES_TABLE, summary_columns()),
        (VERIFIED_TABLE, verified_columns()),
    )
    for table, columns in tables:
        path = directory / f"{table}.schema.json"
        path.write_text(json.dumps(columns, indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written


# --- views (docs/incremental.md): created by jobs/deploy/deploy.sh from jobs/deploy/bq/*.view.sql ---

DATASET_PLACEHOLDER = "${ref}"


def view_statements(ref: str = DATASET_PLACEHOLDER) -> dict[str, str]:
    """``CREATE OR REPLACE VIEW`` statements over the tables of dataset ``ref`` (``PROJECT.DATASET``).

    ``verified_latest``: the verified rows of each run's latest complete attempt (the one whose
    summary was loaded). ``object_history``: one row per object per run, verified or the object
    finding it ended in, newest first: how each object fared from run to run.
    """
    return {
        "verified_latest": (
            f"CREATE OR REPLACE VIEW `{ref}.verified_latest` AS\n"
            f"SELECT v.* FROM `{ref}.{VERIFIED_TABLE}` AS v\n"
            f"JOIN `{ref}.summaries_latest` AS s\n"
            "  ON v.run_id = s.run_id AND v.run_started_at = s.started_at"
        ),
        "object_history": (
            f"CREATE OR REPLACE VIEW `{ref}.object_history` AS\n"
            "SELECT bucket, object, run_id, run_started_at, scan_date, 'verified' AS outcome,\n"
            "  'info' AS severity, generation, size, crc32c, sha256, verified_by, verified_at, ledger_run_id,\n"
            "  CAST(NULL AS STRING) AS detail\n"
            f"FROM `{ref}.verified_latest`\n"
            "UNION ALL\n"
            "SELECT f.bucket, f.object, f.run_id, f.run_started_at, f.scan_date, f.kind AS outcome, f.severity,\n"
            "  f.generation, f.size, f.crc32c, CAST(NULL AS STRING) AS sha256, CAST(NULL AS STRING) AS verified_by,\n"
            "  f.ledger_verified_at AS verified_at, f.ledger_run_id, f.detail\n"
            f"FROM `{ref}.findings_latest` AS f\n"
            "WHERE f.kind IN (" + ", ".join(f"'{kind}'" for kind in OBJECT_HISTORY_KINDS) + ") AND f.object IS NOT NULL"
        ),
    }


# The findings that stand for a listed object (pipeline.core.summary.OBJECT_KINDS), as object_history shows them.
OBJECT_HISTORY_KINDS: tuple[str, ...] = (
    Kind.DIGEST_MISMATCH.value,
    Kind.MALFORMED_NAME.value,
    Kind.READ_ERROR.value,
    Kind.VANISHED.value,
    Kind.LEDGER_DISAGREES.value,
)


def write_view_files(directory: str | Path) -> list[Path]:
    """One ``<view>.view.sql`` per view, with ``${ref}`` where deploy.sh puts ``PROJECT.DATASET``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, statement in view_statements().items():
        path = directory / f"{name}.view.sql"
        path.write_text(statement + "\n", encoding="utf-8")
        written.append(path)
    return written


def write_doc_tables(repository: str | Path) -> list[Path]:
    """Rewrite the docs' generated tables (``field_docs.doc_blocks``) under ``repository``."""
    written = []
    for (relative, name), table in field_docs.doc_blocks().items():
        path = Path(repository) / relative
        text = path.read_text(encoding="utf-8")
        updated = field_docs.with_block(text, name, table)
        if updated != text:
            path.write_text(updated, encoding="utf-8")
            if path not in written:  # a page holds several blocks: name it once
                written.append(path)
    return written


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else "jobs/deploy/bq"
    repository = Path(__file__).resolve().parents[2]
    for written_path in write_schema_files(target) + write_view_files(target) + write_doc_tables(repository):
        print(written_path)
