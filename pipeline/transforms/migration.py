"""MigrationAudit: which bucket blobs images in the successor registry still use.

``CoGroupByKey`` of the manifest references (``successor`` marks those of a
``role: successor`` source) and the listed blobs, by digest; then per bucket the
blobs and bytes that belong to successor images and those that do not, and one
``migrated-*.jsonl`` row per successor image with its share of each bucket.
"""

from __future__ import annotations

import json
from collections import Counter

import apache_beam as beam

from pipeline.adapters import report as report_io
from pipeline.core import migration as mg
from pipeline.core.summary import Tally

MIGRATED_PREFIX = "migrated"


class SumCounters(beam.CombineFn):
    def create_accumulator(self):
        return Counter()

    def add_input(self, accumulator, counts):
        accumulator.update(counts)
        return accumulator

    def merge_accumulators(self, accumulators):
        total = Counter()
        for counts in accumulators:
            total.update(counts)
        return total

    def extract_output(self, accumulator):
        return accumulator


def _per_digest(element):
    _, groups = element
    counts, images = mg.blob_migration(groups["refs"], groups["blobs"])
    if counts:
        yield beam.pvalue.TaggedOutput("counts", counts)
    yield from images


class MigrationAudit(beam.PTransform):
    """(refs, blobs) -> {"tally": one Tally of ``(bucket, column) -> n`` and the migrated-*.jsonl names}."""

    def __init__(self, run_dir: str):
        super().__init__()
        self._run_dir = run_dir

    def expand(self, inputs):
        refs, blobs = inputs
        joined = (
            {"refs": refs, "blobs": blobs}
            | "JoinByDigest" >> beam.CoGroupByKey()
            | "PerDigest" >> beam.FlatMap(_per_digest).with_outputs("counts", main="images")
        )
        rows = (
            joined["images"]
            | "GroupImages" >> beam.GroupByKey()
            | "ImageRows" >> beam.MapTuple(lambda key, parts: mg.migrated_image_row(key[0], key[1], parts))
        )
        files = (
            rows
            | "RowsToJson" >> beam.Map(lambda row: json.dumps(row, separators=(",", ":")))
            | "WriteMigrated"
            >> beam.io.WriteToText(
                report_io.FileSystems.join(self._run_dir, MIGRATED_PREFIX),
                file_name_suffix=report_io.ROWS_SUFFIX,
                shard_name_template="-SSSSS-of-NNNNN",
            )
        )
        counts = joined["counts"] | "SumCounts" >> beam.CombineGlobally(SumCounters())
        tally = counts | "SuccessorTally" >> beam.Map(
            lambda counts, names: Tally(successor=counts, files=Counter(names)), beam.pvalue.AsList(files)
        )
        return {"tally": tally}
