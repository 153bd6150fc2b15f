"""RunDiff: this run against the ledger's run: change rows (``changes-*.jsonl``) and summary.json's ``changes``.

One ``CoGroupByKey`` joins both runs' objects (by ``(bucket, object)``) and findings (by
``(kind, bucket, subject)``) in a single key space; ``pipeline.core.run_diff`` says what each
group became. No side input holds either run's rows. The counts and a few examples of each
change come out as one small value the summary takes in (docs/incremental.md). The rows
are written with the run's other row files, by WriteReport's one sink.
"""

from __future__ import annotations

import apache_beam as beam

from pipeline.core import run_diff as core
from pipeline.core.findings import object_fields
from pipeline.core.ledger import PreviousRun
from pipeline.transforms.combine import merge_in_place


class ChangesCombineFn(beam.CombineFn):
    def create_accumulator(self):
        return core.ChangesAccumulator()

    def add_input(self, accumulator, row):
        return accumulator.add(row)

    def merge_accumulators(self, accumulators):
        return merge_in_place(accumulators)

    def extract_output(self, accumulator):
        return accumulator


def _current_object(obj, previous_buckets):
    if core.compared(obj.bucket, previous_buckets):
        row = core.object_state(object_fields(obj))
        yield core.object_key(row), row


def _current_finding(row, previous_buckets):
    if core.compared(row.get("bucket"), previous_buckets):
        yield core.finding_key(row), row


def _previous_object(row, previous_buckets):
    if core.compared(row.get("bucket"), previous_buckets):
        yield core.object_key(row), core.object_state(row)


def _previous_finding(row, previous_buckets):
    if core.compared(row.get("bucket"), previous_buckets):
        yield core.finding_key(row), row


def _summary_extras(accumulator, previous: dict, problem=None):
    # The file names join in the summary writer, which writes the rows (pipeline/transforms/report.py).
    return {"ledger": previous, "changes": core.changes_block(accumulator, previous, withheld=problem)}


def _unless_withheld(row, problem):
    if problem is None:
        yield row


class RunDiff(beam.PTransform):
    """(listed, findings, previous objects, previous findings[, the ledger's problem]) ->
    ``{"rows": every change, "block": a singleton of summary fields {"ledger", "changes"}}``;
    the summary writer adds the names of the ``changes-*.jsonl`` files it wrote the rows to.

    With a problem (``ReadLedger``'s: rows that are not what the ledger's summary counts), no change
    is reported: an object missing from a damaged ledger is not new."""

    def __init__(self, previous: PreviousRun):
        super().__init__()
        self._previous = previous

    def expand(self, inputs):
        listed, findings, previous_objects, previous_findings, *rest = inputs
        problem = rest[0] if rest else listed.pipeline | "NoLedgerProblem" >> beam.Create([None])
        previous_buckets = tuple(self._previous.buckets)
        current = (
            listed | "CurrentObjects" >> beam.FlatMap(_current_object, previous_buckets),
            findings | "CurrentFindings" >> beam.FlatMap(_current_finding, previous_buckets),
        ) | "CurrentRows" >> beam.Flatten()
        previous = (
            previous_objects | "KeyPreviousObjects" >> beam.FlatMap(_previous_object, previous_buckets),
            previous_findings | "KeyPreviousFindings" >> beam.FlatMap(_previous_finding, previous_buckets),
        ) | "PreviousRows" >> beam.Flatten()
        changes = (
            {"current": current, "previous": previous}
            | "JoinWithPreviousRun" >> beam.CoGroupByKey()
            | "Changes" >> beam.FlatMap(core.joined_changes)
            | "UnlessLedgerDamaged" >> beam.FlatMap(_unless_withheld, beam.pvalue.AsSingleton(problem))
        )
        accumulator = changes | "FoldChanges" >> beam.CombineGlobally(ChangesCombineFn())
        block = accumulator | "ChangesBlock" >> beam.Map(
            _summary_extras, self._previous.describe(), beam.pvalue.AsSingleton(problem)
        )
        return {"rows": changes, "block": block}
