"""The row files through one sink (WriteRowFiles): the names and lines WriteToText gave, fewer stages.

On Beam's local runner (FnApiRunner), against the real gcp-storage-emulator for ``gs://``;
the finalize's retry on the local filesystem, as Dataflow would retry it.
"""

from __future__ import annotations

import gc
import hashlib
import json
from pathlib import Path

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

from jobs.cli import collector_paused
from jobs.launcher import run_scan
from pipeline.adapters import gcs, row_files
from pipeline.adapters import report as report_io
from pipeline.build import RunPlan, build_pipeline
from pipeline.config import parse_config
from pipeline.core import report_model as rm
from pipeline.core.blobs import ListedObject
from pipeline.core.summary import Tally, sum_tallies
from pipeline.runner import local_runner
from pipeline.transforms.report import ReportFoldFn, json_line
from pipeline.transforms.row_files import WriteRowFiles

IN_MEMORY = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]
PREFIX = "containers/images/"


def _row(n: int) -> dict:
    return {"kind": "malformed_name", "bucket": "b", "object": f"o{n}", "detail": "ünïcode"}


def test_each_kind_gets_its_shard_and_an_empty_kind_an_empty_one(tmp_path):
    run_dir = tmp_path / "run"
    rows = [_row(n) for n in range(5)]
    options = PipelineOptions(IN_MEMORY)
    with beam.Pipeline(runner=local_runner(options), options=options) as p:
        written = {
            "findings": p | "Rows" >> beam.Create(rows),
            "verified": p | "None" >> beam.Create([]),
        } | WriteRowFiles(str(run_dir), json_line, "r1")
        assert_that(
            written,
            equal_to([str(run_dir / "findings-00000-of-00001.jsonl"), str(run_dir / "verified-00000-of-00001.jsonl")]),
        )
    assert sorted(path.name for path in run_dir.iterdir()) == [
        "findings-00000-of-00001.jsonl",
        "verified-00000-of-00001.jsonl",
    ], "no temporary folder is left behind"
    lines = (run_dir / "findings-00000-of-00001.jsonl").read_text(encoding="utf-8").splitlines()
    assert sorted(lines) == sorted(json_line(row, "r1") for row in rows)
    assert (run_dir / "verified-00000-of-00001.jsonl").read_bytes() == b""


def test_finalize_numbers_every_shard_and_a_retry_finds_them_done(tmp_path):
    run_dir = str(tmp_path)
    sink = row_files.row_sink(run_dir, "verified")
    temp_dir = row_files.temp_folder(run_dir, "verified")
    written = []
    for shard in range(3):
        writer = row_files.open_writer(sink, temp_dir)
        writer.write(f"line {shard}")
        written.append(writer.close())
    finals = row_files.finalize(sink, temp_dir, sorted(written))
    expected = [str(tmp_path / f"verified-{i:05d}-of-00003.jsonl") for i in range(3)]
    assert finals == expected
    contents = [Path(path).read_text() for path in finals]
    assert sorted(contents) == ["line 0\n", "line 1\n", "line 2\n"]
    assert not Path(temp_dir).exists()
    # Dataflow retries a finalize whose worker died after renaming: nothing is lost or renamed twice.
    assert row_files.finalize(sink, temp_dir, sorted(written)) == expected
    assert [Path(path).read_text() for path in finals] == contents


def test_a_gs_report_holds_exactly_the_promised_files(emulator):
    client = gcs.make_client(emulator.endpoint)
    scanned = client.lookup_bucket("artifacts.row-files.appspot.com") or client.create_bucket(
        "artifacts.row-files.appspot.com"
    )
    content = b"one blob"
    scanned.blob(PREFIX + "sha256:" + hashlib.sha256(content).hexdigest()).upload_from_string(content)
    reports = client.lookup_bucket("scrub-row-files") or client.create_bucket("scrub-row-files")
    config = parse_config(
        {
            "source": {"buckets": [scanned.name], "emulator_endpoint": emulator.endpoint},
            "report": {"output": "gs://scrub-row-files/root", "run_id": "run"},
        },
        "test",
    )
    summary = run_scan(config, IN_MEMORY)
    names = sorted(blob.name for blob in client.list_blobs(reports.name, prefix="root/run/"))
    assert names == [
        "root/run/findings-00000-of-00001.jsonl",
        "root/run/report.html",
        "root/run/summary.json",
        "root/run/verified-00000-of-00001.jsonl",
    ]
    assert summary["files"] == ["findings-00000-of-00001.jsonl", "verified-00000-of-00001.jsonl"]
    assert reports.blob("root/run/findings-00000-of-00001.jsonl").download_as_bytes() == b""
    (verified,) = reports.blob("root/run/verified-00000-of-00001.jsonl").download_as_bytes().decode().splitlines()
    assert json.loads(verified)["sha256"] == hashlib.sha256(content).hexdigest()


def test_on_gs_a_failed_attempts_temporary_file_is_removed_with_the_folder(emulator, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.endpoint)
    report_io.anonymous_gcs_for_emulator()
    client = gcs.make_client(emulator.endpoint)
    reports = client.lookup_bucket("scrub-row-temp") or client.create_bucket("scrub-row-temp")
    run_dir = "gs://scrub-row-temp/root/run"
    sink = row_files.row_sink(run_dir, "findings")
    temp_dir = row_files.temp_folder(run_dir, "findings")
    orphan = row_files.open_writer(sink, temp_dir)  # the first try of a bundle that was retried
    orphan.write("from the failed attempt")
    orphan.close()
    kept = row_files.open_writer(sink, temp_dir)
    kept.write("from the attempt that counted")
    assert row_files.finalize(sink, temp_dir, [kept.close()]) == [f"{run_dir}/findings-00000-of-00001.jsonl"]
    assert sorted(blob.name for blob in client.list_blobs(reports.name, prefix="root/run/")) == [
        "root/run/findings-00000-of-00001.jsonl"
    ]
    final = reports.blob("root/run/findings-00000-of-00001.jsonl").download_as_bytes()
    assert final == b"from the attempt that counted\n"


def _graph_names(raw_scan: dict) -> set[str]:
    config = parse_config(
        {"source": {"buckets": ["b.appspot.com"]}, "scan": raw_scan, "report": {"output": "/tmp/r"}}, "test"
    )
    options = PipelineOptions(IN_MEMORY)
    pipeline = beam.Pipeline(runner=local_runner(options), options=options)
    plan = RunPlan(buckets=("b.appspot.com",), run_id="r", run_dir="/tmp/r/r", started_at="2026-01-01T00:00:00Z")
    build_pipeline(pipeline, config, plan)
    names = set()

    class Names(beam.pipeline.PipelineVisitor):
        def visit_transform(self, node):
            names.add(node.full_label)

        def enter_composite_transform(self, node):
            names.add(node.full_label)

    pipeline.visit(Names())
    return names


def test_a_names_scan_writes_its_rows_through_one_sink_and_builds_no_reclaim_branch():
    names = _graph_names({"mode": "names"})
    assert [n for n in names if n.endswith("/Finalize")] == ["WriteReport/WriteRows/Finalize"]
    assert not [n for n in names if "WriteImpl" in n], "no WriteToText left for the row files"
    assert not [n for n in names if n.startswith("Reclaim")], "names mode knows its verdict on the launcher"


def test_the_report_fold_equals_the_counts_and_the_model_folded_apart():
    listed = [ListedObject("b", f"o{n}", n, 10 * n) for n in range(4)]
    verified = [{"bucket": "b", "object": f"o{n}", "size": 10 * n, "sha256": "0" * 64} for n in range(3)]
    findings = [{"kind": "malformed_name", "severity": "warning", "bucket": "b", "object": "o3", "size": 30}]
    extra = Tally.of_manifest("repo")
    fn = ReportFoldFn()
    halves = []
    for part in (0, 1):  # two bundles' partials, merged as the combine merges them
        accumulator = fn.create_accumulator()
        for tag, elements in (("listed", listed), ("verified", verified), ("finding", findings)):
            for element in elements[part::2]:
                accumulator = fn.add_input(accumulator, (tag, element))
        if part:
            accumulator = fn.add_input(accumulator, ("tally", extra))
        halves.append(fn.compact(accumulator))
    tally, model = fn.extract_output(fn.merge_accumulators(halves))
    expected = sum_tallies(
        [Tally.of_listed(o.size, o.bucket) for o in listed]
        + [Tally.of_verified(r) for r in verified]
        + [Tally.of_finding(r) for r in findings]
        + [extra]
    )
    assert tally == expected
    assert model == rm.accumulate(findings, verified)


def test_the_collector_is_paused_for_the_imports_and_restored_after():
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled(), "a caller's disabled collector stays disabled"
    finally:
        gc.enable()
