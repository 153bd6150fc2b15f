"""WriteReport: findings and verified rows as JSONL shards, then ``summary.json`` last.

Every row is written with the run's id first. The summary waits on the written shard
names (a side input), and on reclaim-plan.txt when a Reclaim transform feeds it, so its
presence means the run's rows are complete.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipeline.adapters import report as report_io
from pipeline.compat import UTC
from pipeline.core.findings import with_run_id
from pipeline.core.reclaim import PLAN_FILE
from pipeline.core.summary import Tally, build_summary, sum_tallies
from pipeline.transforms.combine import CombineInputs
from pipeline.transforms.row_files import WriteRowFiles


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class SumTallies(beam.CombineFn):
    def create_accumulator(self):
        return Tally()

    def add_input(self, accumulator, tally):
        return accumulator + tally

    def merge_accumulators(self, accumulators):
        return sum_tallies(accumulators)

    def extract_output(self, accumulator):
        return accumulator


class CountFindingsFn(beam.DoFn):
    """Counts findings by kind in Beam metrics, which Dataflow shows while the job runs."""

    def process(self, row: dict[str, Any]):
        Metrics.counter("findings", row["kind"]).inc()
        yield row


class WriteSummaryFn(beam.DoFn):
    def __init__(
        self,
        run_dir: str,
        run_id: str,
        started_at: str,
        config: dict[str, Any],
        bucket_facts: dict[str, dict[str, Any]] | None = None,
        verdict: dict[str, list] | None = None,
    ):
        self._run_dir = run_dir
        self._run_id = run_id
        self._started_at = started_at
        self._config = config
        self._bucket_facts = bucket_facts
        self._verdict = verdict  # the reclaim verdict when it is known on the launcher (names mode)

    def process(self, tally: Tally, row_files, verdict=None, plan_files=(), extras=None):
        summary = build_summary(
            tally,
            run_id=self._run_id,
            started_at=self._started_at,
            ended_at=utc_now(),
            config=self._config,
            report_location=self._run_dir,
            reclaim_verdict=self._verdict if verdict is None else verdict,
            bucket_facts=self._bucket_facts,
        )
        if not summary["reclaim_plan"]:
            # Present only when reclaim is proven safe for some blob: an empty plan is no plan.
            report_io.remove_files([path for path in plan_files if path.endswith(PLAN_FILE)])
        extras = dict(extras or {})  # the report model's share (pipeline/transforms/html_report.py)
        paths = list(row_files) + list(extras.pop("files", ())) + list(tally.files)
        summary["files"] = sorted(path.rsplit("/", 1)[-1] for path in paths)
        summary.update(extras)
        report_io.write_json(report_io.FileSystems.join(self._run_dir, report_io.SUMMARY_FILE), summary)
        yield summary


def json_line(row: dict[str, Any], run_id: str) -> str:
    """One JSONL line. A module function, not a lambda: unpickling it on a worker imports this
    module, and with it the report adapter's emulator setup, before the worker writes."""
    return json.dumps(with_run_id(row, run_id), separators=(",", ":"))


class WriteReport(beam.PTransform):
    """(listed, verified, findings[, tallies...]) -> the report folder; returns the summary PCollection.

    Any further inputs are PCollections of ``Tally`` folded into the summary as they are
    (the manifest cross-check adds its counts this way). ``reclaim`` is the output of
    ``pipeline.transforms.reclaim.Reclaim``; ``bucket_facts`` what the launcher's bucket
    GET learnt (location, soft delete).
    """

    def __init__(
        self,
        run_dir: str,
        run_id: str,
        started_at: str,
        config: dict[str, Any],
        reclaim: dict[str, Any] | None = None,
        bucket_facts: dict[str, dict[str, Any]] | None = None,
        extras=None,
    ):
        super().__init__()
        self._run_dir = run_dir
        self._run_id = run_id
        self._reclaim = reclaim
        self._extras = extras  # an optional singleton PCollection of summary fields (the report model's)
        self._summary_fn = WriteSummaryFn(
            run_dir, run_id, started_at, config, bucket_facts, None if reclaim is None else reclaim.get("decided")
        )

    def expand(self, inputs):
        listed, verified, findings, *extra_tallies = inputs
        findings = findings | "CountFindings" >> beam.ParDo(CountFindingsFn())
        row_files = {
            report_io.FINDINGS_PREFIX: findings,
            report_io.VERIFIED_PREFIX: verified,
        } | "WriteRows" >> WriteRowFiles(self._run_dir, json_line, self._run_id)
        tallies = (
            (
                listed | "TallyListed" >> beam.Map(lambda obj: Tally.of_listed(obj.size)),
                verified | "TallyVerified" >> beam.Map(Tally.of_verified),
                findings | "TallyFindings" >> beam.Map(Tally.of_finding),
                *extra_tallies,
            )
            | "SumTallies" >> CombineInputs(SumTallies())  # no Flatten of per-object tallies: see combine.py
        )
        reclaim_inputs = []
        if self._reclaim is not None and "verdict" in self._reclaim:
            reclaim_inputs = [
                beam.pvalue.AsSingleton(self._reclaim["verdict"]),
                beam.pvalue.AsList(self._reclaim["plan_files"]),
            ]
        return tallies | "WriteSummary" >> beam.ParDo(
            self._summary_fn,
            beam.pvalue.AsList(row_files),
            *reclaim_inputs,
            **({"extras": beam.pvalue.AsSingleton(self._extras)} if self._extras is not None else {}),
        )
