"""``registry-scrub report RUN_DIR``: re-render ``report.html`` from a finished run's files.

RUN_DIR is a run folder, local or ``gs://…``, holding ``summary.json`` and the row
files. Rows are streamed one line at a time through the same report model the
pipeline folds, so the page equals the one the run wrote (given the same rows).
Runs before ``images-*.jsonl`` existed get their image table from the findings alone.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from jobs import output
from pipeline.adapters import html as html_io
from pipeline.adapters import report as report_io
from pipeline.core import report_model as rm
from pipeline.report_html import render

log = logging.getLogger(__name__)


class NotARunFolder(Exception):
    """RUN_DIR holds no summary.json, or one that is not a JSON object (exit status 2)."""


@dataclass(frozen=True)
class Rendered:
    path: str
    model: dict[str, Any]
    summary: dict[str, Any]  # the run's summary.json, as read: what --format json prints


def _run_dir(location: str) -> str:
    location = location.rstrip("/") or location
    return location if location.startswith("gs://") else os.path.abspath(location)


def rerender(location: str, emulator_endpoint: str | None = None) -> Rendered:
    """Read RUN_DIR's summary and rows, write RUN_DIR/report.html, and return its path and model."""
    if emulator_endpoint:
        os.environ.setdefault("NO_GCE_CHECK", "true")
        os.environ["STORAGE_EMULATOR_HOST"] = emulator_endpoint.rstrip("/")
    run_dir = _run_dir(location)
    summary_path = report_io.FileSystems.join(run_dir, report_io.SUMMARY_FILE)
    try:
        summary = report_io.read_json(summary_path)
    except ValueError as err:  # not JSON, or not UTF-8: a damaged or hand-edited file
        raise NotARunFolder(f"{summary_path}: not a readable summary ({' '.join(str(err).split())[:200]})") from None
    if summary is not None and not isinstance(summary, dict):
        raise NotARunFolder(f"{summary_path}: not a readable summary (a JSON {type(summary).__name__}, not an object)")
    if summary is None:
        raise NotARunFolder(
            f"{location}: no readable {report_io.SUMMARY_FILE}; give the folder of one finished run "
            f"(<report.output>/<run_id>)"
        )
    if html_io.row_files(run_dir, html_io.IMAGES_PREFIX):
        images = html_io.read_rows(run_dir, html_io.IMAGES_PREFIX)
    else:
        log.info("%s: no images-*.jsonl (an older run): images come from the findings alone", location)
        images = rm.image_rows_from_findings(html_io.read_rows(run_dir, report_io.FINDINGS_PREFIX))
    accumulator = rm.accumulate(
        html_io.read_rows(run_dir, report_io.FINDINGS_PREFIX),
        html_io.read_rows(run_dir, report_io.VERIFIED_PREFIX),
        images,
    )
    path = html_io.report_path(run_dir)
    recovered = html_io.read_rows(run_dir, "recovered")  # docs/recovery.md; none unless --recover-images
    model = rm.build_model(summary, accumulator, report_file=path, recovered=recovered)
    html_io.write_html(path, render(model))
    return Rendered(path, model, summary)


def format_rendered(rendered: Rendered) -> str:
    """The lines the command prints: the verdict, the most affected images, the page."""
    verdict = rendered.model["verdict"]
    lines = [f"{verdict['headline']} (exit status {verdict['exit_status']})"]
    for item in rendered.model["most_affected_images"]:
        lines.append(f"  {item['image']}  ({item['error_findings']} error finding(s))")
    lines.append(f"page: {rendered.path}")
    return "\n".join(lines)


def main(args) -> int:
    """The ``report`` subcommand: 0 when the page was written, 2 when RUN_DIR is not a run folder."""
    import sys

    try:
        rendered = rerender(args.run_dir, args.emulator_endpoint)
    except NotARunFolder as err:
        print(f"registry-scrub: {err}", file=sys.stderr)
        return 2
    output.emit(args, rendered.summary, rendered.path if args.quiet else format_rendered(rendered))
    return 0
