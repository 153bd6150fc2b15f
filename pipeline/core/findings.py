"""The report's vocabulary: finding kinds, severities and the row schemas.

Rows are plain dicts with a fixed key set, so the JSONL schema stays stable
(every key present, ``None`` where it does not apply) and Beam can pickle them.
"""

from __future__ import annotations

from typing import Any

from pipeline.compat import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class Kind(StrEnum):
    DIGEST_MISMATCH = "digest_mismatch"
    MALFORMED_NAME = "malformed_name"
    READ_ERROR = "read_error"
    VANISHED = "vanished"
    MISSING_BLOB = "missing_blob"
    SIZE_MISMATCH = "size_mismatch"
    MANIFEST_DIGEST_MISMATCH = "manifest_digest_mismatch"
    INVALID_MANIFEST = "invalid_manifest"
    MANIFEST_UNAVAILABLE = "manifest_unavailable"
    UNREFERENCED_BLOB = "unreferenced_blob"
    # A reference by a digest algorithm other than sha256: valid, but nothing in the bucket can prove it.
    UNVERIFIABLE_DIGEST = "unverifiable_digest"
    DIFF_ID_MISMATCH = "diff_id_mismatch"
    IN_REGISTRY_ONLY = "in_registry_only"
    # An incremental re-check whose read contradicts the ledger's verified row (docs/incremental.md).
    LEDGER_DISAGREES = "ledger_disagrees"
    # A pre-2017 object under containers/repositories/ that is not a manifest and cannot hide a
    # reference to a sha256 blob: a v1 tag, a v1 image index, repository JSON (docs/manifest-sources.md).
    LEGACY_METADATA_UNPARSED = "legacy_metadata_unparsed"


SEVERITY_OF: dict[Kind, Severity] = {
    Kind.DIGEST_MISMATCH: Severity.ERROR,
    Kind.MALFORMED_NAME: Severity.WARNING,
    Kind.READ_ERROR: Severity.ERROR,
    Kind.VANISHED: Severity.WARNING,
    Kind.MISSING_BLOB: Severity.ERROR,
    Kind.SIZE_MISMATCH: Severity.ERROR,
    Kind.MANIFEST_DIGEST_MISMATCH: Severity.ERROR,
    Kind.INVALID_MANIFEST: Severity.ERROR,
    Kind.MANIFEST_UNAVAILABLE: Severity.ERROR,
    Kind.UNREFERENCED_BLOB: Severity.INFO,
    Kind.UNVERIFIABLE_DIGEST: Severity.WARNING,
    Kind.DIFF_ID_MISMATCH: Severity.ERROR,
    Kind.IN_REGISTRY_ONLY: Severity.INFO,
    Kind.LEDGER_DISAGREES: Severity.ERROR,
    Kind.LEGACY_METADATA_UNPARSED: Severity.INFO,
}

# Order is the column order auditors see; adding a key is a schema change (README + DESIGN.md).
FINDING_FIELDS: tuple[str, ...] = (
    "kind",
    "severity",
    "bucket",
    "object",
    "generation",
    "digest",
    "expected",
    "actual",
    "size",
    "crc32c_match",
    "http_status",
    # Complete reads of the object it took to reach the verdict (read findings only).
    "reads",
    "detail",
    "repository",
    "reference",
    "manifest_digest",
    "images",
    # repo:tag names that lead to the affected images (manifest cross-check).
    "tags",
    # Added later, so appended: BigQuery tables grow by new trailing columns only.
    "crc32c",  # the crc32c GCS stored for the object (base64), as listed
    "expected_size",  # the size a manifest declares for a damaged blob, when it differs from ``size``
    "storage_class",
    "time_created",
    "repositories",  # every repository involved (``repository`` is set only when there is one)
    "manifest_digests",  # every manifest involved (``manifest_digest`` is set only when there is one)
    # ledger_disagrees: what the ledger's verified row said (docs/incremental.md).
    "ledger_run_id",
    "ledger_verified_at",
    "ledger_sha256",
    "ledger_size",
    "ledger_crc32c",
)

VERIFIED_FIELDS: tuple[str, ...] = (
    "bucket",
    "object",
    "generation",
    "size",
    "crc32c",
    "sha256",
    "storage_class",
    "time_created",
    # docs/incremental.md: "read" (hashed by this run) or "ledger" (carried over, not read);
    # when the bytes were last read; the ledger run a carried-over or re-checked row rests on.
    "verified_by",
    "verified_at",
    "ledger_run_id",
)
# Fields a verified row may leave out; a row read by this run has these values.
VERIFIED_DEFAULTS: dict[str, Any] = {"verified_by": "read", "verified_at": None, "ledger_run_id": None}

# Written first on every JSONL row (findings and verified) by the report writer; BigQuery
# keeps it as its own run column (pipeline/core/bq_schema.py, RUN_COLUMNS).
RUN_ID = "run_id"


def finding(kind: Kind, **fields: Any) -> dict[str, Any]:
    """A finding row with every schema key present."""
    unknown = set(fields) - set(FINDING_FIELDS)
    if unknown:
        raise ValueError(f"not finding fields: {sorted(unknown)}")
    row: dict[str, Any] = dict.fromkeys(FINDING_FIELDS)
    row.update(fields)
    row["kind"] = kind.value
    row["severity"] = SEVERITY_OF[kind].value
    return row


def object_fields(obj: Any) -> dict[str, Any]:
    """The fields every row about a listed object carries, from its listing (a ListedObject)."""
    return {
        "bucket": obj.bucket,
        "object": obj.name,
        "generation": obj.generation,
        "size": obj.size,
        "crc32c": obj.crc32c,
        "storage_class": getattr(obj, "storage_class", None),
        "time_created": getattr(obj, "time_created", None),
    }


def with_run_id(row: dict[str, Any], run_id: str) -> dict[str, Any]:
    """The row as written: ``run_id`` first, then its own fields."""
    return {RUN_ID: run_id, **{k: v for k, v in row.items() if k != RUN_ID}}


def verified(**fields: Any) -> dict[str, Any]:
    fields = {**VERIFIED_DEFAULTS, **fields}
    missing = set(VERIFIED_FIELDS) - set(fields)
    extra = set(fields) - set(VERIFIED_FIELDS)
    if missing or extra:
        raise ValueError(f"verified row: missing {sorted(missing)}, unexpected {sorted(extra)}")
    return {key: fields[key] for key in VERIFIED_FIELDS}


def is_error(row: dict[str, Any]) -> bool:
    return row.get("severity") == Severity.ERROR.value
