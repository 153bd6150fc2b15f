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
from pipeline.adapters.html import IMAGES_PREFIX
from pipeline.compat import UTC
from pipeline.core.findings import with_run_id
from pipeline.core.fleet_view import fleet_of_summary
from pipeline.core.reclaim import PLAN_FILE
from pipeline.core.run_diff import CHANGES_PREFIX
from pipeline.core.summary import Tally, build_summary, sum_tallies
from pipeline.transforms.combine import CombineInputs
from pipeline.transforms.html_report import FINDING, IMAGE, VERIFIED, ReportCombineFn, summary_extras
from pipeline.transforms.row_files import WriteRowFiles


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# What each input of the report's fold is (ReportFoldFn); the report model's own tags for the rows it keeps.
LISTED, TALLY = "listed", "tally"


class ReportFoldFn(beam.CombineFn):
    """(tag, element) -> (Tally, ReportAccumulator): the summary's counts and the report model in one pass.

    Listed objects count; verified rows and findings count and enter the model; image rows
    enter the model; ``Tally`` inputs (the manifest cross-check's, reclaim's …) add as they are.
    One combine instead of one per result: each is a grouping stage of its own and about a
    dozen transforms to build (docs/performance.md, "Fixed cost").
    """

    def __init__(self):
        self._model = ReportCombineFn()

    def create_accumulator(self):
        return [Tally(), self._model.create_accumulator()]

    def add_input(self, accumulator, tagged):
        tag, element = tagged
        if tag == LISTED:
            accumulator[0] = accumulator[0] + Tally.of_listed(element.size, element.bucket)
        elif tag == TALLY:
            accumulator[0] = accumulator[0] + element
        else:
            if tag == FINDING:
                accumulator[0] = accumulator[0] + Tally.of_finding(element)
            elif tag == VERIFIED:
                accumulator[0] = accumulator[0] + Tally.of_verified(element)
            accumulator[1] = self._model.add_input(accumulator[1], tagged)
        return accumulator

    def merge_accumulators(self, accumulators):
        accumulators = list(accumulators)
        return [
            sum_tallies(tally for tally, _ in accumulators),
            self._model.merge_accumulators([model for _, model in accumulators]),
        ]

    def compact(self, accumulator):
        return [accumulator[0], self._model.compact(accumulator[1])]

    def extract_output(self, accumulator):
        return accumulator[0], accumulator[1]


class CountFindingsFn(beam.DoFn):
    """Counts findings by kind in Beam metrics, which Dataflow shows while the job runs."""

    def process(self, row: dict[str, Any]):
        Metrics.counter("findings", row["kind"]).inc()
        yield row


# Declared, not inferred: Beam would read the bytecode of build_summary and all it calls.
@beam.typehints.with_output_types(beam.typehints.Tuple[beam.typehints.Any, beam.typehints.Any])
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

    def process(self, folded, row_files, verdict=None, plan_files=(), changes=None):
        tally, model = folded
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
        names = sorted(path.rsplit("/", 1)[-1] for path in list(row_files) + list(tally.files))
        extras = summary_extras(model, self._run_dir)  # the report model's share
        if changes is not None:  # the run diff's (pipeline/transforms/run_diff.py), with the files it has
            extras.update(with_change_files(changes, [name for name in names if name.startswith(CHANGES_PREFIX + "-")]))
        summary["files"] = names
        summary.update(extras)
        # Last: the fleet folds the per-bucket decommission verdicts, wherever they were added.
        summary["fleet"] = fleet_of_summary(summary)
        report_io.write_json(report_io.FileSystems.join(self._run_dir, report_io.SUMMARY_FILE), summary)
        yield summary, model


def with_change_files(fields: dict, files: list[str]) -> dict:
    """RunDiff's summary fields, its ``changes`` block naming the ``changes-*.jsonl`` files written."""
    return {**fields, "changes": {**fields["changes"], "files": list(files)}}


def json_line(row: dict[str, Any], run_id: str) -> str:
    """One JSONL line. A module function, not a lambda: unpickling it on a worker imports this
    module, and with it the report adapter's emulator setup, before the worker writes."""
    return json.dumps(with_run_id(row, run_id), separators=(",", ":"))


def plain_json_line(row: dict[str, Any]) -> str:
    """A line of ``images-*.jsonl`` or ``changes-*.jsonl``: the row as it is, without the run id
    that findings and verified rows begin with."""
    return json.dumps(row, separators=(",", ":"))


class WriteReport(beam.PTransform):
    """(listed, verified, findings[, tallies...]) -> the report folder; returns (summary, report model).

    Any further inputs are PCollections of ``Tally`` folded into the summary as they are
    (the manifest cross-check adds its counts this way). ``reclaim`` is the output of
    ``pipeline.transforms.reclaim.Reclaim``, or ``{"decided": verdict}`` when the verdict is
    known on the launcher; ``bucket_facts`` what the launcher's bucket GET learnt (location,
    soft delete). ``images`` (HumanReport's image rows) are written and join the report
    model; ``changes`` is RunDiff's output, its rows written and its block in the summary.
    Every row file goes through one sink (pipeline/transforms/row_files.py).
    """

    def __init__(
        self,
        run_dir: str,
        run_id: str,
        started_at: str,
        config: dict[str, Any],
        reclaim: dict[str, Any] | None = None,
        bucket_facts: dict[str, dict[str, Any]] | None = None,
        images=None,
        changes=None,
    ):
        super().__init__()
        self._run_dir = run_dir
        self._run_id = run_id
        self._reclaim = reclaim
        self._images = images
        self._changes = changes
        self._summary_fn = WriteSummaryFn(
            run_dir, run_id, started_at, config, bucket_facts, None if reclaim is None else reclaim.get("decided")
        )

    def expand(self, inputs):
        listed, verified, findings, *extra_tallies = inputs
        findings = findings | "CountFindings" >> beam.ParDo(CountFindingsFn())
        rows = {report_io.FINDINGS_PREFIX: findings, report_io.VERIFIED_PREFIX: verified}
        formats = {}
        if self._images is not None:
            rows[IMAGES_PREFIX], formats[IMAGES_PREFIX] = self._images, (plain_json_line, ())
        if self._changes is not None:
            rows[CHANGES_PREFIX], formats[CHANGES_PREFIX] = self._changes["rows"], (plain_json_line, ())
        row_files = rows | "WriteRows" >> WriteRowFiles(self._run_dir, json_line, self._run_id, formats=formats)
        folded_inputs = [listed, verified, findings, *extra_tallies]
        tags = [LISTED, VERIFIED, FINDING] + [TALLY] * len(extra_tallies)
        if self._images is not None:
            folded_inputs.append(self._images)
            tags.append(IMAGE)
        # No Flatten of per-object elements: see combine.py.
        folded = tuple(folded_inputs) | "Fold" >> CombineInputs(ReportFoldFn(), tags=tags)
        side_inputs = {}
        if self._reclaim is not None and "verdict" in self._reclaim:
            side_inputs["verdict"] = beam.pvalue.AsSingleton(self._reclaim["verdict"])
            side_inputs["plan_files"] = beam.pvalue.AsList(self._reclaim["plan_files"])
        if self._changes is not None:
            side_inputs["changes"] = beam.pvalue.AsSingleton(self._changes["block"])
        return folded | "WriteSummary" >> beam.ParDo(self._summary_fn, beam.pvalue.AsList(row_files), **side_inputs)
