"""The BigQuery audit tables and the JSONL report describe the same fields."""

from __future__ import annotations

import json
import re
from datetime import date

import pytest

from pipeline.core import bq_schema
from pipeline.core.findings import FINDING_FIELDS, Kind, Severity, finding
from pipeline.core.summary import Tally, build_summary
from tests.conftest import REPO

_PYTHON_TYPES = {
    bq_schema.STRING: str,
    bq_schema.INTEGER: int,
    bq_schema.BOOLEAN: bool,
    bq_schema.TIMESTAMP: str,
    bq_schema.DATE: str,
    bq_schema.RECORD: dict,
    bq_schema.JSON: (dict, list, str, int, float, bool),  # any JSON value
}


def _assert_fits(row: dict, columns: list[dict]) -> None:
    """Every column present, nothing else, each value of its column's type and mode."""
    assert list(row) == [c["name"] for c in columns]
    for column in columns:
        value, kind = row[column["name"]], _PYTHON_TYPES[column["type"]]
        if column["mode"] == bq_schema.REPEATED:
            assert isinstance(value, list) and all(isinstance(v, kind) for v in value), column
        elif value is None:
            assert column["mode"] == bq_schema.NULLABLE, f"{column['name']} is REQUIRED"
        else:
            assert isinstance(value, kind) and not (kind is int and isinstance(value, bool)), column
            if column["type"] == bq_schema.RECORD:
                assert set(value) == {f["name"] for f in column["fields"]}
        if column["type"] == bq_schema.RECORD and column["mode"] == bq_schema.REPEATED:
            for item in value:
                _assert_fits(item, column["fields"])


def _summary(**tally) -> dict:
    summary = build_summary(
        Tally(**tally),
        run_id="20250101T000000Z",
        started_at="2025-01-01T23:59:59Z",
        ended_at="2025-01-02T00:10:00Z",
        config={"scan": {"shard_count": 256}},
        report_location="gs://reports/scrub/20250101T000000Z",
    )
    summary["files"] = ["findings-00000-of-00001.jsonl"]  # what WriteReport adds
    return summary


def test_findings_table_has_every_jsonl_field_in_report_order():
    names = [c["name"] for c in bq_schema.finding_columns()]
    assert names == ["run_id", "run_started_at", "scan_date", *FINDING_FIELDS]


def test_a_finding_field_without_a_column_fails(monkeypatch):
    monkeypatch.setattr(bq_schema, "FINDING_FIELDS", (*FINDING_FIELDS, "layer_count"))
    with pytest.raises(bq_schema.SchemaDrift, match=r"without a BigQuery column \['layer_count'\]"):
        bq_schema.finding_columns()


def test_a_column_without_a_finding_field_fails(monkeypatch):
    monkeypatch.setitem(bq_schema.FINDING_TYPES, "stale", (bq_schema.STRING, bq_schema.NULLABLE))
    with pytest.raises(bq_schema.SchemaDrift, match=r"without a JSONL field \['stale'\]"):
        bq_schema.finding_columns()


def test_summaries_table_has_every_summary_json_key():
    summary = _summary()
    bq_schema.summary_columns(summary)  # raises SchemaDrift if they differ
    with pytest.raises(bq_schema.SchemaDrift):
        bq_schema.summary_columns([*summary, "layers_counted"])
    record_fields = {c["name"]: [f["name"] for f in c.get("fields", [])] for c in bq_schema.summary_columns()}
    assert record_fields["findings_by_kind"] == [kind.value for kind in Kind]
    assert record_fields["findings_by_severity"] == [severity.value for severity in Severity]


@pytest.mark.parametrize("kind", list(Kind))
def test_finding_rows_fit_the_findings_table(kind):
    fields = {
        "bucket": "artifacts.p.appspot.com",
        "object": "containers/images/sha256:" + "a" * 64,
        "generation": 1712345678901234,
        "size": 1024,
        "digest": "sha256:" + "a" * 64,
        "expected": 1024,
        "actual": "sha256:" + "b" * 64,
        "crc32c_match": True,
        "http_status": None,
        "detail": "x",
        "images": ["gcr.io/p/app@sha256:" + "c" * 64],
        "crc32c": "AAAAAA==",
        "expected_size": 2048,
        "storage_class": "NEARLINE",
        "time_created": "2024-02-03T04:05:06.789000Z",
        "repositories": ["gcr.io/p/app"],
        "manifest_digests": ["sha256:" + "c" * 64],
    }
    row = bq_schema.finding_row(finding(kind, **fields), "run-1", "2025-01-01T23:59:59Z")
    _assert_fits(row, bq_schema.finding_columns())
    assert row["time_created"] == "2024-02-03 04:05:06.789000 UTC" and row["expected_size"] == 2048
    assert row["scan_date"] == "2025-01-01"
    assert row["run_started_at"] == "2025-01-01 23:59:59.000000 UTC"
    assert row["expected"] == "1024", "a size in a text column is written as text"
    assert row["images"] == fields["images"]


def test_a_finding_with_empty_fields_fits():
    row = bq_schema.finding_row(finding(Kind.MALFORMED_NAME), "run-1", "2025-01-01T00:00:00Z")
    _assert_fits(row, bq_schema.finding_columns())
    assert row["images"] == [] and row["generation"] is None


def test_summary_row_fits_the_summaries_table():
    from collections import Counter

    summary = _summary(
        objects_listed=3,
        bytes_listed=30,
        objects_verified=2,
        bytes_verified=20,
        unreferenced=Counter({("artifacts.p.appspot.com", "objects"): 1, ("artifacts.p.appspot.com", "bytes"): 10}),
        findings=Counter({"digest_mismatch": 1, "unreferenced_blob": 1}),
    )
    row = bq_schema.summary_row(summary, ["artifacts.p.appspot.com"])
    _assert_fits(row, bq_schema.summary_columns())
    assert row["findings_by_kind"]["digest_mismatch"] == 1
    assert row["findings_by_severity"] == {"error": 1, "warning": 0, "info": 1}
    assert row["config"] == {"scan": {"shard_count": 256}}, "a JSON column holds the value, not its text"
    assert row["scan_date"] == date(2025, 1, 1).isoformat() and row["exit_status"] == 1


def test_committed_bq_mk_schema_files_are_current(tmp_path):
    """jobs/deploy/bq/*.schema.json feed `bq mk`; regenerate with `python -m pipeline.core.bq_schema`."""
    for generated in bq_schema.write_schema_files(tmp_path):
        committed = REPO / "jobs" / "deploy" / "bq" / generated.name
        assert committed.exists(), f"missing {committed}"
        assert json.loads(committed.read_text()) == json.loads(generated.read_text()), (
            f"{committed} is stale: run `python -m pipeline.core.bq_schema jobs/deploy/bq`"
        )


@pytest.mark.parametrize(
    "dataset, spec",
    [
        ("registry_audit", "registry_audit.findings"),
        ("my-project:registry_audit", "my-project:registry_audit.findings"),
        ("my-project.registry_audit", "my-project:registry_audit.findings"),
        ("example.com:my-project.registry_audit", "example.com:my-project:registry_audit.findings"),
    ],
)
def test_table_spec(dataset, spec):
    assert bq_schema.table_spec(dataset, "findings") == spec


@pytest.mark.parametrize(
    "value",
    ["registry_audit", "my-project:registry_audit", "my-project.registry_audit", "example.com:my-project:audit_2025"],
)
def test_config_takes_a_bigquery_dataset(value):
    from pipeline.config import parse_config

    config = parse_config({"source": {"buckets": ["b-bucket"]}, "report": {"bigquery_dataset": value}}, "f.yaml")
    assert config.report.bigquery_dataset == value


@pytest.mark.parametrize("value", ["my-project:audit-dash", "a.b.c", "", "P:registry_audit", 5])
def test_config_refuses_a_bad_bigquery_dataset_naming_the_key(value):
    from pipeline.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match=r"f\.yaml: report\.bigquery_dataset: expected"):
        parse_config({"source": {"buckets": ["b-bucket"]}, "report": {"bigquery_dataset": value}}, "f.yaml")


def test_verified_table_has_every_verified_field_in_report_order():
    from pipeline.core.findings import VERIFIED_FIELDS

    names = [c["name"] for c in bq_schema.verified_columns()]
    assert names == ["run_id", "run_started_at", "scan_date", *VERIFIED_FIELDS]
    assert bq_schema.TABLE_OPTIONS["verified"]["clustering"] == {"fields": ["bucket", "object"]}


def test_a_verified_field_without_a_column_fails(monkeypatch):
    from pipeline.core.findings import VERIFIED_FIELDS

    monkeypatch.setattr(bq_schema, "VERIFIED_FIELDS", (*VERIFIED_FIELDS, "layer_count"))
    with pytest.raises(
        bq_schema.SchemaDrift, match=r"verified: JSONL fields without a BigQuery column \['layer_count'\]"
    ):
        bq_schema.verified_columns()


def test_verified_rows_fit_the_verified_table():
    from pipeline.core.blobs import ListedObject
    from pipeline.core.incremental import carried_row

    obj = ListedObject("artifacts.p.appspot.com", "containers/images/sha256:" + "a" * 64, 17, 5, "crc=")
    ledger = {"crc32c": "crc=", "sha256": "a" * 64, "verified_at": "2026-11-01T03:00:00Z", "run_id": "r1"}
    row = bq_schema.verified_row(carried_row(obj, ledger), "r2", "2026-11-02T03:00:00Z")
    _assert_fits(row, bq_schema.verified_columns())
    assert row["verified_by"] == "ledger" and row["ledger_run_id"] == "r1"
    assert row["verified_at"] == "2026-11-01 03:00:00.000000 UTC" and row["scan_date"] == "2026-11-02"


def test_committed_view_files_are_current(tmp_path):
    """jobs/deploy/bq/*.view.sql feed deploy.sh; regenerate with `python -m pipeline.core.bq_schema`."""
    for generated in bq_schema.write_view_files(tmp_path):
        committed = REPO / "jobs" / "deploy" / "bq" / generated.name
        assert committed.exists(), f"missing {committed}"
        assert committed.read_text() == generated.read_text(), f"{committed} is stale"


def test_object_history_shows_verified_rows_and_object_findings_of_complete_runs():
    from pipeline.core.summary import OBJECT_KINDS

    views = bq_schema.view_statements("p.d")
    assert set(views) == {"verified_latest", "object_history"}
    assert "JOIN `p.d.summaries_latest` AS s" in views["verified_latest"]
    history = views["object_history"]
    assert "FROM `p.d.verified_latest`" in history and "FROM `p.d.findings_latest` AS f" in history
    assert set(bq_schema.OBJECT_HISTORY_KINDS) == {kind.value for kind in OBJECT_KINDS}
    for kind in OBJECT_KINDS:
        assert f"'{kind.value}'" in history


# --- typed nested values, descriptions, and one source for them and docs/report.md ---------------


def test_nested_summary_values_are_typed_not_text():
    types = {c["name"]: (c["type"], c["mode"]) for c in bq_schema.summary_columns()}
    for name in ("config", "ledger", "changes", "reclaim_plan", "reclaim_by_bucket", "repositories", "successor"):
        assert types[name] == (bq_schema.JSON, bq_schema.NULLABLE), name
    for name in ("decommission", "fleet", "most_affected_images"):
        assert types[name] == (bq_schema.JSON, bq_schema.NULLABLE), name
    assert types["reclaim_blocked_by"] == (bq_schema.RECORD, bq_schema.REPEATED)
    assert not [name for name, (kind, _) in types.items() if kind == bq_schema.STRING and name not in _TEXT_COLUMNS]


_TEXT_COLUMNS = {"run_id", "report_location", "files", "buckets", "report_html"}


def test_blockers_become_records_and_the_verdicts_json():
    summary = _summary()
    summary["reclaim_blocked_by"] = [
        {"bucket": "b", "code": "incomplete_source", "source": "registry http://r", "reason": "why",
         "manifests": ["m1", "m2"], "manifests_total": 7},
    ]  # fmt: skip
    summary["decommission"] = {
        "artifacts.p.appspot.com": {"verdict": "safe_to_delete", "headline": "Safe.", "bytes": 5, "reasons": []}
    }
    summary["fleet"] = {"buckets": 1, "by_verdict": {}, "headline": "1 bucket safe to delete", "rows": []}
    row = bq_schema.summary_row(summary, ["b"])
    _assert_fits(row, bq_schema.summary_columns())
    assert row["reclaim_blocked_by"] == [summary["reclaim_blocked_by"][0]]
    assert row["decommission"]["artifacts.p.appspot.com"]["verdict"] == "safe_to_delete"
    assert row["fleet"]["buckets"] == 1
    before_verdict = {k: v for k, v in _summary().items() if k not in ("decommission", "fleet")}
    without = bq_schema.summary_row(before_verdict, ["b"])  # a run before the verdict: NULL, not a failure
    assert without["decommission"] is None and without["fleet"] is None


def _docs_table(heading: str) -> dict[str, tuple[str, str | None]]:
    """docs/report.md's table under ``heading``: key -> (meaning, type)."""
    text = (REPO / "docs" / "report.md").read_text()
    lines = text[text.index(heading) :].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|---"))
    table = {}
    for line in lines[start + 1 :]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split(" | ")]
        keys = re.findall(r"`([^`]+)`", cells[0])
        types = cells[1].split(", ") if len(cells) == 3 else [None]
        for index, key in enumerate(keys):
            table[key] = (cells[-1], types[index] if len(types) == len(keys) else types[0])
    return table


_DOC_TYPES = {
    "text": (bq_schema.STRING, None),
    "integer": (bq_schema.INTEGER, None),
    "boolean": (bq_schema.BOOLEAN, None),
    "timestamp": (bq_schema.TIMESTAMP, None),
    "list": (bq_schema.STRING, bq_schema.REPEATED),
}


@pytest.mark.parametrize(
    "columns, heading",
    [
        (bq_schema.finding_columns, "## Finding fields"),
        (bq_schema.verified_columns, "## Verified fields"),
        (bq_schema.summary_columns, "## summary.json"),
    ],
)
def test_every_column_is_described_in_the_words_of_docs_report_md(columns, heading):
    from pipeline.core import field_docs

    documented = _docs_table(heading)
    bigquery_only = {key for doc in field_docs.BIGQUERY_ONLY_DOCS for key in doc.keys}
    for column in columns():
        name = column["name"]
        assert column["description"], name
        if name in bigquery_only:
            continue
        assert name in documented, f"docs/report.md, {heading}: no row for {name}"
        meaning, doc_type = documented[name]
        assert column["description"] == field_docs.description(meaning), name
        if doc_type is not None:
            assert (column["type"], column["mode"] if _DOC_TYPES[doc_type][1] else None) == _DOC_TYPES[doc_type], name
        for field in column.get("fields", []):
            assert field["description"], f"{name}.{field['name']}"
    # ... and nothing documented that no column holds.
    names = {column["name"] for column in columns()}
    assert set(documented) - names == set(), f"{heading}: documented without a column"


def test_a_column_without_a_meaning_fails(monkeypatch):
    monkeypatch.setitem(bq_schema.SUMMARY_TYPES, "layers_counted", (bq_schema.INTEGER, bq_schema.NULLABLE))
    with pytest.raises(bq_schema.SchemaDrift, match=r"summaries\.layers_counted: no meaning"):
        bq_schema.summary_columns()


def test_docs_tables_are_generated_from_field_docs(tmp_path):
    """docs/report.md's field tables and docs/production.md's column table: regenerate with
    `python -m pipeline.core.bq_schema jobs/deploy/bq` after editing pipeline/core/field_docs.py."""
    from pipeline.core import field_docs

    for (relative, name), table in field_docs.doc_blocks().items():
        text = (REPO / relative).read_text()
        assert field_docs.with_block(text, name, table) == text, f"{relative} ({name}) is stale"
    with pytest.raises(ValueError, match="no generated block"):
        field_docs.with_block("no markers here", "finding fields", "| x |")


def test_a_long_meaning_fits_a_bigquery_description():
    from pipeline.core import field_docs

    text = field_docs.description("[a link](x.md) " + "word " * 400)
    assert len(text) == field_docs.MAX_DESCRIPTION and text.startswith("a link word")


@pytest.mark.slow
def test_a_real_runs_rows_and_summary_fit_the_tables_and_the_docs(emulator, tmp_path):
    """The demo's blobs scanned for real: every JSONL key and summary.json key has its column and its
    docs row, and every row converts to a row of its table."""
    from jobs.demo import seed_demo
    from jobs.launcher import run_scan
    from pipeline.config import parse_config
    from pipeline.core.findings import VERIFIED_FIELDS

    bucket = "artifacts.bq-agree.appspot.com"
    seed_demo(emulator, bucket)
    config = parse_config(
        {
            "source": {"buckets": [bucket], "emulator_endpoint": emulator.endpoint},
            "scan": {"read_concurrency": 4},
            "report": {"output": str(tmp_path), "run_id": "agree"},
        },
        "test",
    )
    returned = run_scan(config, ["--direct_running_mode=in_memory", "--direct_num_workers=1"])
    run_dir = tmp_path / "agree"
    written = json.loads((run_dir / "summary.json").read_text())
    documented = _docs_table("## summary.json")
    for summary in (written, returned):
        bq_schema.summary_columns(summary)  # no key without a column, no column without a key
        assert set(summary) <= set(documented), (
            f"summary.json keys without a docs row: {set(summary) - set(documented)}"
        )
        _assert_fits(bq_schema.summary_row(summary, [bucket]), bq_schema.summary_columns())
    for prefix, fields, convert, columns in (
        ("findings", FINDING_FIELDS, bq_schema.finding_row, bq_schema.finding_columns()),
        ("verified", VERIFIED_FIELDS, bq_schema.verified_row, bq_schema.verified_columns()),
    ):
        rows = [
            json.loads(line) for path in run_dir.glob(f"{prefix}-*.jsonl") for line in path.read_text().splitlines()
        ]
        assert rows, prefix
        for row in rows:
            assert set(row) == {"run_id", *fields}, f"{prefix}: {set(row) ^ {'run_id', *fields}}"
            _assert_fits(convert(row, "agree", written["started_at"]), columns)
    assert written["findings_by_kind"]["digest_mismatch"] > 0  # the demo's damage reached the rows


def test_a_table_schema_is_beams_fields_form():
    columns = [{"name": "a", "type": "STRING", "mode": "NULLABLE"}]
    assert bq_schema.table_schema(columns) == {"fields": columns}


def test_generated_files_are_byte_for_byte_the_committed_ones_in_a_new_nested_folder(tmp_path):
    target = tmp_path / "a" / "b"
    for generated in bq_schema.write_schema_files(target) + bq_schema.write_view_files(target):
        assert generated.parent == target
        assert generated.read_bytes() == (REPO / "jobs" / "deploy" / "bq" / generated.name).read_bytes()


@pytest.mark.parametrize(
    "columns, name, hint",
    [
        (bq_schema.verified_columns, "verified", "add the field to VERIFIED_TYPES in pipeline/core/bq_schema.py"),
        (bq_schema.finding_columns, "findings", "add the field to FINDING_TYPES in pipeline/core/bq_schema.py"),
    ],
)
def test_a_row_field_without_a_column_names_the_table_and_the_fix(monkeypatch, columns, name, hint):
    fields = "VERIFIED_FIELDS" if name == "verified" else "FINDING_FIELDS"
    monkeypatch.setattr(bq_schema, fields, (*getattr(bq_schema, fields), "new_field"))
    with pytest.raises(bq_schema.SchemaDrift) as err:
        columns()
    assert str(err.value) == (
        f"{name}: JSONL fields without a BigQuery column ['new_field'], BigQuery columns without a JSONL field []; "
        f"{hint}"
    )


def test_a_summary_key_without_a_column_names_the_table_and_the_fix():
    with pytest.raises(bq_schema.SchemaDrift) as err:
        bq_schema.summary_columns([*bq_schema.SUMMARY_TYPES, "new_key"])
    assert str(err.value) == (
        "summaries: JSONL fields without a BigQuery column ['new_key'], BigQuery columns without a JSONL field []; "
        "add the key to SUMMARY_TYPES in pipeline/core/bq_schema.py"
    )


def test_a_record_column_of_a_summary_without_it_is_all_zeros():
    summary = {"started_at": "2025-01-01T00:00:00Z", "findings_by_severity": {"error": 2}}
    row = bq_schema.summary_row(summary, ["b"])
    assert row["findings_by_severity"] == {"error": 2, "warning": 0, "info": 0}
    assert set(row["findings_by_kind"].values()) == {0} and row["buckets"] == ["b"]


def test_table_spec_of_a_domain_scoped_project():
    assert bq_schema.table_spec("org.com:p:audit", "t") == "org.com:p:audit.t"


def test_view_files_go_into_a_new_nested_folder(tmp_path):
    written = bq_schema.write_view_files(tmp_path / "x" / "y")
    assert written and all(path.parent == tmp_path / "x" / "y" for path in written)


def test_timestamps_are_utc_whatever_the_machines_zone(monkeypatch):
    import time

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert bq_schema.bq_timestamp("2025-01-01T23:30:00") == "2025-01-01 23:30:00.000000 UTC"
        assert bq_schema.bq_timestamp("2025-01-01T23:30:00+02:00") == "2025-01-01 21:30:00.000000 UTC"
        assert bq_schema.scan_date("2025-01-02T01:00:00Z") == "2025-01-02"  # New York is still on 1 January
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_cells_of_each_type():
    cell = bq_schema._cell
    assert cell(("a", 1), bq_schema.STRING, "REPEATED") == ["a", "1"]
    assert cell({"b": 1, "a": [2]}, bq_schema.STRING, "REPEATED") == ['{"a": [2], "b": 1}']
    assert cell({"b": date(2025, 1, 2), "a": 1}, bq_schema.STRING, "NULLABLE") == '{"a": 1, "b": "2025-01-02"}'
    assert cell(None, bq_schema.STRING, "REPEATED") == []
    assert cell(0, bq_schema.BOOLEAN, "NULLABLE") is False and cell("x", bq_schema.BOOLEAN, "NULLABLE") is True
    assert cell("7", bq_schema.INTEGER, "NULLABLE") == 7
