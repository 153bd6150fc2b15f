"""Choosing and trusting a ledger from real run folders (local and on the gcp-storage-emulator), the CLI's
refusal of an untrusted one, and the BigQuery ledger as a graph.

No BigQuery emulator runs here (docs/production.md, "What the tests cover"): the BigQuery ledger is
checked as the pipeline graph it builds and the queries it sends, not against a server.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import apache_beam as beam
import pytest

from jobs import cli
from pipeline.adapters import ledger as adapter
from pipeline.config import parse_config
from pipeline.core import ledger as core


def write_run(root: Path, run_id: str, started_at: str, unaccounted: int | None = 0, summary: bool = True) -> Path:
    run_dir = root / run_id
    run_dir.mkdir(parents=True)
    (run_dir / "verified-00000-of-00001.jsonl").write_text(
        json.dumps({"run_id": run_id, "bucket": "b-one", "object": "containers/images/sha256:" + "a" * 64}) + "\n"
    )
    if summary:
        document = {
            "run_id": run_id,
            "started_at": started_at,
            "unaccounted_objects": unaccounted,
            "exit_status": 0,
            "config": {"source": {"buckets": ["b-one"], "prefix": "containers/images/"}, "scan": {"mode": "names"}},
        }
        (run_dir / "summary.json").write_text(json.dumps(document))
    return run_dir


@pytest.fixture
def reports(tmp_path):
    root = tmp_path / "reports"
    write_run(root, "20261101T030000Z", "2026-11-01T03:00:00Z")
    write_run(root, "20261102T030000Z", "2026-11-02T03:00:00Z", unaccounted=2)
    write_run(root, "20261103T030000Z", "2026-11-03T03:00:00Z", summary=False)
    (root / "notes").mkdir()  # not a run folder: no summary, no rows
    (root / "notes" / "readme.txt").write_text("hello")
    return root


def test_run_folders_are_the_folders_with_a_runs_files(reports):
    assert [Path(p).name for p in adapter.run_folders(str(reports))] == [
        "20261101T030000Z",
        "20261102T030000Z",
        "20261103T030000Z",
    ]
    assert adapter.run_folders(str(reports / "none-yet")) == []


def test_a_root_named_with_glob_characters_is_taken_as_it_is(tmp_path):
    root = tmp_path / "reports[1]"
    write_run(root, "20261101T030000Z", "2026-11-01T03:00:00Z")
    assert [Path(p).name for p in adapter.run_folders(str(root))] == ["20261101T030000Z"]
    previous, _ = adapter.resolve("auto", str(root), "20261104T030000Z", str(root / "20261104T030000Z"))
    assert previous.run_id == "20261101T030000Z"


def test_auto_skips_untrusted_runs_and_says_which_it_took(reports):
    previous, lines = adapter.resolve("auto", str(reports), "20261104T030000Z", str(reports / "20261104T030000Z"))
    assert previous.run_id == "20261101T030000Z" and previous.chosen_by == "auto"
    assert previous.location == str(reports / "20261101T030000Z")
    assert [run for run, _ in previous.skipped] == ["20261102T030000Z", "20261103T030000Z"]
    assert lines == [
        f"ledger auto: took run 20261101T030000Z (started 2026-11-01T03:00:00Z) from {reports / '20261101T030000Z'}",
        "ledger auto: skipped run 20261102T030000Z: 2 listed object(s) ended in no report row "
        "(unaccounted_objects): its rows are incomplete",
        "ledger auto: skipped run 20261103T030000Z: no summary.json: the run did not finish, "
        "so its rows may be incomplete",
    ]


def test_auto_on_a_first_run_compares_with_nothing(tmp_path):
    previous, lines = adapter.resolve("auto", str(tmp_path / "empty"), "r1", str(tmp_path / "empty" / "r1"))
    assert previous is None and "no trusted earlier run" in lines[0]


@pytest.mark.parametrize(
    "run_id, reason",
    [
        ("20261102T030000Z", "2 listed object(s) ended in no report row"),
        ("20261103T030000Z", "no summary.json"),
    ],
)
def test_an_explicit_untrusted_run_is_refused_with_the_reason(reports, run_id, reason):
    with pytest.raises(adapter.LedgerUnusable, match=re.escape(f"cannot be trusted as a ledger: {reason}")):
        adapter.resolve(str(reports / run_id), str(reports), "r9", str(reports / "r9"))


def test_the_runs_own_folder_is_never_its_ledger(reports):
    own = str(reports / "20261101T030000Z")
    with pytest.raises(adapter.LedgerUnusable, match="the run's own folder"):
        adapter.resolve(own, str(reports), "20261101T030000Z", own)


def test_ledger_folders_on_gcs_are_found_the_same_way(storage_client, bucket, emulator, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.endpoint)
    summary = {
        "run_id": "r1",
        "started_at": "2026-11-01T03:00:00Z",
        "unaccounted_objects": 0,
        "exit_status": 1,
        "config": {"source": {"buckets": ["b-one"]}},
    }
    bucket.blob("scrub/r1/summary.json").upload_from_string(json.dumps(summary))
    bucket.blob("scrub/r1/verified-00000-of-00001.jsonl").upload_from_string(b"")
    bucket.blob("scrub/r2/findings-00000-of-00001.jsonl").upload_from_string(b"")  # crashed: no summary
    root = f"gs://{bucket.name}/scrub"
    previous, lines = adapter.resolve("auto", root, "r3", f"{root}/r3")
    assert previous.location == f"{root}/r1" and previous.run_id == "r1"
    assert previous.skipped == (("r2", "no summary.json: the run did not finish, so its rows may be incomplete"),)


def test_the_cli_refuses_an_untrusted_ledger_with_status_2(reports, storage_client, bucket, emulator, capsys):
    status = cli.main(
        [
            "--bucket",
            bucket.name,
            "--emulator-endpoint",
            emulator.endpoint,
            "--output",
            str(reports),
            "--ledger",
            str(reports / "20261103T030000Z"),
            "--incremental",
        ]
    )
    assert status == 2
    err = capsys.readouterr().err
    assert "report.ledger" in err and "cannot be trusted as a ledger: no summary.json" in err


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"report": {"ledger": "bq:nodataset"}}, r"f\.yaml: report\.ledger: expected bq:PROJECT\.DATASET\.TABLE"),
        ({"scan": {"reverify_after": "30"}}, r"f\.yaml: scan\.reverify_after: expected a duration"),
        ({"scan": {"reverify_after": "0s"}}, r"f\.yaml: scan\.reverify_after: expected a duration from 1s"),
        ({"scan": {"reverify_sample": 1.5}}, r"f\.yaml: scan\.reverify_sample: expected a fraction"),
        ({"scan": {"reverify_sample": "x%"}}, r"f\.yaml: scan\.reverify_sample: expected a fraction"),
        ({"scan": {"incremental": "yes"}}, r"f\.yaml: scan\.incremental: expected"),
        ({"scan": {"incremental": True, "recover_images": True}}, r"scan\.incremental: scan\.recover_images"),
    ],
)
def test_bad_incremental_keys_name_the_key(raw, message):
    from pipeline.config import ConfigError

    with pytest.raises(ConfigError, match=message):
        parse_config({"source": {"buckets": ["b-one"]}, **raw}, "f.yaml")


def test_incremental_keys_and_their_defaults():
    config = parse_config({"source": {"buckets": ["b-one"]}, "scan": {"incremental": True}}, "f.yaml")
    assert config.report.ledger == "auto", "an incremental scan with no ledger named uses auto"
    assert config.scan.reverify_after == 30 * 86400 and config.scan.reverify_sample == 0.01
    config = parse_config(
        {"source": {"buckets": ["b-one"]}, "scan": {"reverify_after": "12h", "reverify_sample": "5%"}}, "f.yaml"
    )
    assert config.scan.reverify_after == 12 * 3600 and config.scan.reverify_sample == 0.05
    assert config.report.ledger is None and not config.scan.incremental


def test_the_cli_exit_status_for_a_bad_ledger_value_is_2(capsys):
    assert cli.main(["--bucket", "b-one", "--config", "/dev/null", "--ledger", "s3://x/y"]) == 2
    assert "command line --ledger: expected a local run folder or gs://" in capsys.readouterr().err


def test_a_bigquery_ledger_is_read_with_two_queries_of_the_newest_trusted_run():
    """No BigQuery emulator: the graph and the queries it carries are what is checked."""
    from apache_beam.io.gcp.bigquery import ReadFromBigQuery

    from pipeline.transforms.ledger import ReadLedger

    previous = core.PreviousRun(kind=core.BIGQUERY, location="my-project.audit.verified")
    pipeline = beam.Pipeline()
    outputs = pipeline | "ReadLedger" >> ReadLedger(previous, ("b-one",), "containers/images/", "r9")
    assert set(outputs) == {"verified", "objects", "findings", "problem"}
    reads = {}

    class Collect(beam.pipeline.PipelineVisitor):
        def enter_composite_transform(self, node):
            if isinstance(node.transform, ReadFromBigQuery):
                reads[node.full_label] = node.transform

    pipeline.visit(Collect())
    assert sorted(reads) == ["ReadLedger/QueryLedgerFindings", "ReadLedger/QueryLedgerVerified"]
    verified_query = reads["ReadLedger/QueryLedgerVerified"]._kwargs["query"]
    assert verified_query == core.bigquery_ledger_query(
        "my-project.audit.verified", ("b-one",), "containers/images/", "r9"
    )
    assert reads["ReadLedger/QueryLedgerVerified"]._kwargs["use_standard_sql"] is True
