"""Report rows as written: run_id first, every schema key present, the severity of each kind."""

import pytest

from pipeline.core.findings import (
    FINDING_FIELDS,
    RUN_ID,
    SEVERITY_OF,
    VERIFIED_FIELDS,
    Kind,
    Severity,
    finding,
    is_error,
    verified,
    with_run_id,
)


def test_a_written_row_starts_with_its_run_id_then_keeps_its_own_order():
    row = {"kind": "vanished", "bucket": "b", "object": "o"}
    written = with_run_id(row, "r1")
    assert list(written.items()) == [("run_id", "r1"), ("kind", "vanished"), ("bucket", "b"), ("object", "o")]
    assert row == {"kind": "vanished", "bucket": "b", "object": "o"}  # the row itself is left alone


def test_a_row_that_already_names_a_run_is_stamped_with_this_one():
    written = with_run_id({"bucket": "b", RUN_ID: "older", "object": "o"}, "r2")
    assert list(written.items()) == [("run_id", "r2"), ("bucket", "b"), ("object", "o")]


# The severities of README.md's and docs/report.md's table of kinds.
DOCUMENTED_SEVERITY = {
    "digest_mismatch": "error",
    "malformed_name": "warning",
    "read_error": "error",
    "vanished": "warning",
    "missing_blob": "error",
    "size_mismatch": "error",
    "manifest_digest_mismatch": "error",
    "invalid_manifest": "error",
    "manifest_unavailable": "error",
    "unreferenced_blob": "info",
    "unverifiable_digest": "warning",
    "diff_id_mismatch": "error",
    "in_registry_only": "info",
    "ledger_disagrees": "error",
    "legacy_metadata_unparsed": "info",
}


@pytest.mark.parametrize("kind", list(Kind))
def test_every_kind_has_its_documented_severity_and_the_whole_schema(kind):
    row = finding(kind, bucket="b", detail="d")
    assert tuple(row) == FINDING_FIELDS
    severity = DOCUMENTED_SEVERITY[kind.value]
    assert (row["kind"], row["severity"], row["bucket"], row["detail"]) == (kind.value, severity, "b", "d")
    assert all(row[key] is None for key in FINDING_FIELDS if key not in ("kind", "severity", "bucket", "detail"))
    assert is_error(row) is (severity == Severity.ERROR.value)


def test_the_documented_table_covers_every_kind():
    assert set(DOCUMENTED_SEVERITY) == {kind.value for kind in Kind} == {kind.value for kind in SEVERITY_OF}


def test_a_finding_names_every_unknown_field():
    with pytest.raises(ValueError) as err:
        finding(Kind.VANISHED, colour="red", bucket="b", age=3)
    assert str(err.value) == "not finding fields: ['age', 'colour']"


def test_a_verified_row_defaults_to_read_by_this_run_in_schema_order():
    row = verified(
        time_created="t", bucket="b", object="o", generation=1, size=2, crc32c="c", sha256="h", storage_class="S"
    )
    assert list(row.items()) == [
        ("bucket", "b"),
        ("object", "o"),
        ("generation", 1),
        ("size", 2),
        ("crc32c", "c"),
        ("sha256", "h"),
        ("storage_class", "S"),
        ("time_created", "t"),
        ("verified_by", "read"),
        ("verified_at", None),
        ("ledger_run_id", None),
    ]
    assert tuple(row) == VERIFIED_FIELDS


def test_a_verified_row_names_what_is_missing_and_what_is_unexpected():
    with pytest.raises(ValueError) as err:
        verified(bucket="b", object="o", colour="red")
    assert str(err.value) == (
        "verified row: missing ['crc32c', 'generation', 'sha256', 'size', 'storage_class', 'time_created'], "
        "unexpected ['colour']"
    )
