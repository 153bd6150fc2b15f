"""BigQuery columns and cells: a column without a meaning names its table, and values load as their type."""

from datetime import date, datetime, timezone

import pytest

from pipeline.core import bq_schema

NEW_RUN_COLUMN = ("run_attempt", bq_schema.INTEGER, bq_schema.NULLABLE)


@pytest.mark.parametrize(
    "columns, table",
    [
        (bq_schema.finding_columns, "findings"),
        (bq_schema.verified_columns, "verified"),
    ],
)
def test_a_run_column_without_a_meaning_names_the_table_it_would_join(monkeypatch, columns, table):
    monkeypatch.setattr(bq_schema, "RUN_COLUMNS", (*bq_schema.RUN_COLUMNS, NEW_RUN_COLUMN))
    with pytest.raises(bq_schema.SchemaDrift) as err:
        columns()
    assert str(err.value) == f"{table}.run_attempt: no meaning to describe it; add it to pipeline/core/field_docs.py"


@pytest.mark.parametrize(
    "columns, fields, types, table",
    [
        (bq_schema.finding_columns, "FINDING_FIELDS", "FINDING_TYPES", "findings"),
        (bq_schema.verified_columns, "VERIFIED_FIELDS", "VERIFIED_TYPES", "verified"),
    ],
)
def test_a_row_field_without_a_meaning_names_its_table(monkeypatch, columns, fields, types, table):
    monkeypatch.setattr(bq_schema, fields, (*getattr(bq_schema, fields), "layer_count"))
    monkeypatch.setitem(getattr(bq_schema, types), "layer_count", (bq_schema.INTEGER, bq_schema.NULLABLE))
    with pytest.raises(bq_schema.SchemaDrift) as err:
        columns()
    assert str(err.value) == f"{table}.layer_count: no meaning to describe it; add it to pipeline/core/field_docs.py"


def test_a_summaries_only_column_without_a_meaning_names_the_summaries_table(monkeypatch):
    extra = (*bq_schema.SUMMARY_EXTRA_COLUMNS, ("region", bq_schema.STRING, bq_schema.NULLABLE))
    monkeypatch.setattr(bq_schema, "SUMMARY_EXTRA_COLUMNS", extra)
    with pytest.raises(bq_schema.SchemaDrift) as err:
        bq_schema.summary_columns()
    assert str(err.value) == "summaries.region: no meaning to describe it; add it to pipeline/core/field_docs.py"


def test_a_json_cell_holds_what_json_would_hold():
    value = {"at": date(2025, 1, 2), "digests": ("sha256:a", "sha256:b"), "n": 1}
    cell = bq_schema._cell(value, bq_schema.JSON, bq_schema.NULLABLE)
    assert cell == {"at": "2025-01-02", "digests": ["sha256:a", "sha256:b"], "n": 1}
    assert bq_schema._cell(None, bq_schema.JSON, bq_schema.NULLABLE) is None


def test_a_summary_row_loads_its_times_as_utc_timestamps_and_its_nested_values_as_json():
    summary = {
        "run_id": "r1",
        "started_at": "2025-01-01T23:59:59+02:00",
        "ended_at": "2025-01-02T00:10:00Z",
        "config": {"reclaim": {"accept_losing": ("sha256:a",)}, "written": datetime(2025, 1, 1, tzinfo=timezone.utc)},
        "objects_listed": 3,
        "exit_status": 0,
    }
    row = bq_schema.summary_row(summary, ["b"])
    assert row["started_at"] == "2025-01-01 21:59:59.000000 UTC"
    assert row["ended_at"] == "2025-01-02 00:10:00.000000 UTC"
    assert row["config"] == {"reclaim": {"accept_losing": ["sha256:a"]}, "written": "2025-01-01 00:00:00+00:00"}
    assert row["objects_listed"] == 3 and row["exit_status"] == 0 and row["run_id"] == "r1"
    assert row["scan_date"] == "2025-01-01" and row["buckets"] == ["b"]
