"""Reclaim: the verdict per bucket, and reclaim-plan.txt with only the blobs it proves unused.

(findings, evidence, claims) -> CombineGlobally(evidence) -> decide (one small dict: a blocker
list per scanned bucket) -> as a side input, unreferenced_blob rows of proven buckets, joined by
digest (CoGroupByKey) with the claims of images the bucket itself shows (the second guard,
pipeline/transforms/protection.py), become generation-pinned lines of ``<run_dir>/reclaim-plan.txt``
unless an image the user did not accept losing holds them. The plan is written only after
every manifest source has finished, because the verdict waits on all their evidence.
WriteReport removes the file again when it holds no line, so it is present only when
reclaim is proven safe for at least one blob. Nothing is ever deleted here.
"""

from __future__ import annotations

from typing import Any

import apache_beam as beam
from apache_beam.pvalue import TaggedOutput

from pipeline.adapters import report as report_io
from pipeline.core import pricing
from pipeline.core import protection as pt
from pipeline.core.findings import Kind
from pipeline.core.reclaim import PLAN_FILE, Evidence, SourceFacts, decide, plan_line, sum_evidence
from pipeline.core.summary import Tally

TALLIES = "tallies"
PROTECTED_IMAGES = "protected_images"


class CombineEvidence(beam.CombineFn):
    def create_accumulator(self):
        return Evidence()

    def add_input(self, accumulator, item):
        return accumulator + item

    def merge_accumulators(self, accumulators):
        return sum_evidence(accumulators)

    def extract_output(self, accumulator):
        return accumulator


def guarded_entries(element, verdict: dict[str, list], now: str, accept_losing):
    """(digest, {rows, claims}) -> plan lines of the rows no unaccepted image holds, and tallies of
    the rest: protected blobs per bucket, and each holding image (keyed, for counting once)."""
    _, groups = element
    claims = list(groups["claims"])
    free, held = pt.guard(groups["rows"], claims, accept_losing)
    for row in free:
        if claims:  # held only by images the user accepted losing
            yield TaggedOutput(TALLIES, Tally.of_protected(row, accepted=True))
        yield from plan_entries(row, verdict, now)
    for row, images in held:
        yield TaggedOutput(TALLIES, Tally.of_protected(row, accepted=False))
        for image in images:
            yield TaggedOutput(PROTECTED_IMAGES, (image["config_digest"], image))


def plan_entries(row: dict[str, Any], verdict: dict[str, list], now: str):
    """An unreferenced blob of a proven bucket -> its plan line (main) and its tally."""
    if row["kind"] != Kind.UNREFERENCED_BLOB.value or verdict.get(row["bucket"]) != []:
        return
    line = plan_line(row["bucket"], row["object"], row["generation"])
    if line is None:
        yield TaggedOutput(TALLIES, Tally.of_unpinned(row))
        return
    yield line
    days_short = pricing.days_short_of_minimum(row.get("storage_class"), row.get("time_created"), now)
    yield TaggedOutput(TALLIES, Tally.of_plan_line(row, days_short))


def unchecked_verdict(buckets: tuple[str, ...]) -> dict[str, list]:
    """The verdict of a scan that read no manifest (names mode): every bucket blocked, so no plan
    line and no reclaim tally can follow. Known on the launcher, it needs no branch of the graph."""
    return decide((), buckets, Evidence(), cross_checked=False)


def _unreferenced(row: dict[str, Any]):
    if row["kind"] == Kind.UNREFERENCED_BLOB.value and row.get("digest"):
        yield row["digest"], row


class Reclaim(beam.PTransform):
    """(findings, evidence[, claims]) -> {"verdict": {bucket: blockers}, "plan_files": [path],
    "tallies": Tally}. ``claims``: ``(blob digest, image facts)`` of the second guard; absent when it
    cannot run (recovery off), and then no bucket is proven (``guarded`` False)."""

    def __init__(
        self,
        sources: tuple[SourceFacts, ...],
        buckets: tuple[str, ...],
        cross_checked: bool,
        run_dir: str,
        started_at: str,
        accept_losing: tuple[str, ...] | str = (),
    ):
        super().__init__()
        self._accept_losing = accept_losing
        self._started_at = started_at
        self._sources = tuple(sources)
        self._buckets = tuple(buckets)
        self._cross_checked = cross_checked
        self._plan_path = report_io.FileSystems.join(run_dir, PLAN_FILE)

    def expand(self, inputs):
        findings, evidence, *guard = inputs
        claims = guard[0] if guard else None
        sources, buckets, cross_checked = self._sources, self._buckets, self._cross_checked
        guarded = claims is not None
        verdict = (
            evidence
            | "CombineEvidence" >> beam.CombineGlobally(CombineEvidence())
            | "Decide"
            >> beam.Map(lambda ev: decide(sources, buckets, ev, cross_checked=cross_checked, guarded=guarded))
        )
        if claims is None:
            claims = findings.pipeline | "NoClaims" >> beam.Create([])
        planned = (
            {"rows": findings | "Unreferenced" >> beam.FlatMap(_unreferenced), "claims": claims}
            | "JoinClaims" >> beam.CoGroupByKey()
            | "PlanLines"
            >> beam.FlatMap(
                guarded_entries, beam.pvalue.AsSingleton(verdict), self._started_at, self._accept_losing
            ).with_outputs(TALLIES, PROTECTED_IMAGES, main="lines")
        )
        protected_images = (
            planned[PROTECTED_IMAGES]
            | "GroupProtectedImages" >> beam.GroupByKey()
            | "OneTallyPerImage" >> beam.MapTuple(lambda _, images: Tally.of_protected_image(next(iter(images))))
        )
        plan_files = planned["lines"] | "WritePlan" >> beam.io.WriteToText(
            self._plan_path, num_shards=1, shard_name_template=""
        )
        tallies = (planned[TALLIES], protected_images) | "ReclaimTallies" >> beam.Flatten()
        return {"verdict": verdict, "plan_files": plan_files, "tallies": tallies}
