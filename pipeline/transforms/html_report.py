"""The human report in the pipeline: image rows, the report model as one combine, and ``report.html``.

ImageRows joins manifest references and findings by image (``repository@digest``)
into one row per image, written as ``images-*.jsonl``. ``ReportCombineFn`` folds findings,
verified rows and image rows into a bounded ``ReportAccumulator``; the scan runs it in the
same single combine as the summary's counts (``pipeline.transforms.report.WriteReport``),
so it runs on Dataflow as well as locally and never holds every row. WriteHtmlReport renders
the page once ``summary.json`` exists, from that summary and the accumulator: the page
shows the summary's numbers.
"""

from __future__ import annotations

import logging

import apache_beam as beam

from pipeline.adapters import html as html_io
from pipeline.core import report_model as rm
from pipeline.report_html import render
from pipeline.transforms.combine import CombineInputs, merge_in_place
from pipeline.transforms.recovery import RECOVERED_PREFIX

log = logging.getLogger(__name__)

FINDING, VERIFIED, IMAGE = "finding", "verified", "image"


class ReportCombineFn(beam.CombineFn):
    """(tag, row) -> ReportAccumulator; ``add_input`` mutates the accumulator, as Beam allows."""

    def create_accumulator(self):
        return rm.ReportAccumulator()

    def add_input(self, accumulator, tagged):
        tag, row = tagged
        if tag == FINDING:
            return accumulator.add_finding(row)
        if tag == VERIFIED:
            return accumulator.add_verified(row)
        return accumulator.add_image(row)

    def merge_accumulators(self, accumulators):
        return merge_in_place(accumulators)

    def compact(self, accumulator):
        return accumulator.compact()

    def extract_output(self, accumulator):
        return accumulator


def _image_row(element):
    image, groups = element
    return rm.image_row(image, groups["infos"], groups["evidence"])


class ImageRows(beam.PTransform):
    """(refs, findings) -> one row per image: its tags, total size, status and the blobs that broke it."""

    def expand(self, inputs):
        refs, findings = inputs
        infos = (
            refs
            | "PartsByImage" >> beam.FlatMapTuple(rm.image_refs)
            | "GroupParts" >> beam.GroupByKey()
            | "ImageInfo" >> beam.MapTuple(lambda image, parts: (image, rm.image_info(image, parts)))
        )
        evidence = findings | "EvidenceByImage" >> beam.FlatMap(rm.image_evidence)
        return (
            {"infos": infos, "evidence": evidence}
            | "JoinByImage" >> beam.CoGroupByKey()
            | "ImageRow" >> beam.Map(_image_row)
        )


class ReportModel(beam.PTransform):
    """(findings, verified[, images]) -> a single ReportAccumulator.

    The scan folds the same model together with its counts (``pipeline.transforms.report.ReportFoldFn``).
    """

    def expand(self, inputs):
        # No Flatten of the rows themselves: see pipeline/transforms/combine.py.
        return tuple(inputs) | "FoldReport" >> CombineInputs(
            ReportCombineFn(), tags=(FINDING, VERIFIED, IMAGE)[: len(inputs)]
        )


def summary_extras(accumulator: rm.ReportAccumulator, run_dir: str) -> dict:
    """What summary.json gains from the report model: the page's path and the most affected images."""
    return {
        "report_html": html_io.report_path(run_dir),
        "most_affected_images": rm.most_affected_images(accumulator),
    }


class HumanReport(beam.PTransform):
    """(refs, findings) -> one row per image, for ``images-*.jsonl`` and the report model.

    Only a scan that cross-checks manifests has images; WriteReport writes the rows with the
    run's other row files and folds them into the model (``pipeline.transforms.report``).
    """

    def expand(self, inputs):
        return inputs | "ImageRows" >> ImageRows()


# Declared, so that Beam does not infer it: its bytecode inference walks process() and every
# function it calls (the whole renderer) to conclude Any, about 0.1 s of every run's construction.
@beam.typehints.with_output_types(beam.typehints.Any)
class WriteHtmlFn(beam.DoFn):
    def __init__(self, run_dir: str):
        self._run_dir = run_dir

    def process(self, reported):
        summary, accumulator = reported  # WriteReport's: the summary as written, and the report model
        path = html_io.report_path(self._run_dir)
        try:
            recovered = html_io.read_rows(self._run_dir, RECOVERED_PREFIX)
            html_io.write_html(
                path, render(rm.build_model(summary, accumulator, report_file=path, recovered=recovered))
            )
        except Exception:
            # The audit itself (rows and summary.json) is complete; the page is derived from it and
            # `registry-scrub report RUN_DIR` can write it later. Failing the job here would hide that.
            log.exception(
                "report.html could not be written to %s; rerun `registry-scrub report %s`", path, self._run_dir
            )
        yield summary


class WriteHtmlReport(beam.PTransform):
    """(summary, report model) -> summary, once ``report.html`` is written from them."""

    def __init__(self, run_dir: str):
        super().__init__()
        self._run_dir = run_dir

    def expand(self, reported):
        return reported | "RenderHtml" >> beam.ParDo(WriteHtmlFn(self._run_dir))
