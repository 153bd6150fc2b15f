"""Find the ledger a run names: the run folders under the output root and their summaries (local or gs://).

Thin: the choice and the trust rules are ``pipeline.core.ledger``'s. Runs once, on the launcher.
"""

from __future__ import annotations

import logging
import os

from apache_beam.io.filesystem import BeamIOError
from apache_beam.io.filesystems import FileSystems

from pipeline.adapters import report as report_io
from pipeline.core import ledger as core

log = logging.getLogger(__name__)


class LedgerUnusable(ValueError):
    """``report.ledger`` names something that cannot serve as a ledger; the message says why (exit status 2)."""


def _absolute(location: str) -> str:
    return location if location.startswith("gs://") else os.path.abspath(location)


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0]


def run_folders(root: str) -> list[str]:
    """Every folder directly under ``root`` holding a run's summary or row files, sorted."""
    report_io.anonymous_gcs_for_emulator()
    root = _absolute(root).rstrip("/")
    patterns = [
        FileSystems.join(root, "*", report_io.SUMMARY_FILE),
        FileSystems.join(root, "*", f"{report_io.FINDINGS_PREFIX}-*{report_io.ROWS_SUFFIX}"),
        FileSystems.join(root, "*", f"{report_io.VERIFIED_PREFIX}-*{report_io.ROWS_SUFFIX}"),
    ]
    folders = set()
    try:
        for result in FileSystems.match(patterns):
            folders.update(_parent(metadata.path) for metadata in result.metadata_list)
    except BeamIOError as err:
        # A root that does not exist yet (the first run) holds no run.
        log.debug("no run folders under %s: %s", root, err)
    return sorted(folders)


def candidate(run_dir: str) -> core.Candidate:
    path = FileSystems.join(run_dir, report_io.SUMMARY_FILE)
    summary = report_io.read_json(path) if FileSystems.exists(path) else None
    return core.Candidate(run_dir=run_dir, run_id=run_dir.rstrip("/").rsplit("/", 1)[-1], summary=summary)


def resolve(
    value: str, output_root: str, current_run_id: str, current_run_dir: str
) -> tuple[core.PreviousRun | None, list[str]]:
    """The ledger ``report.ledger`` names, and the lines that say how it was chosen.

    ``auto`` with no trusted run yet is None (a first run); an explicit run folder that cannot
    be trusted, or that is this run's own folder, is ``LedgerUnusable``.
    """
    spec = core.parse_ledger(value)
    if spec.kind == core.BIGQUERY:
        return core.PreviousRun(kind=core.BIGQUERY, location=spec.location), [
            f"ledger: the newest trusted run in BigQuery table {spec.location}"
        ]
    if spec.kind == core.AUTO:
        root = _absolute(output_root)
        choice = core.choose_auto([candidate(folder) for folder in run_folders(root)], current_run_id)
        lines = core.choice_lines(root, choice)
        if choice.taken is None:
            return None, lines
        return core.previous_run(choice.taken, core.AUTO, choice.skipped), lines
    run_dir = _absolute(spec.location)
    if run_dir.rstrip("/") == current_run_dir.rstrip("/"):
        raise LedgerUnusable(
            f"report.ledger {value}: this is the run's own folder, which the run replaces; "
            "name an earlier run's folder or use auto"
        )
    found = candidate(run_dir)
    problem = core.trust_problem(found.summary)
    if problem:
        raise LedgerUnusable(f"report.ledger {value}: cannot be trusted as a ledger: {problem}")
    return core.previous_run(found, "explicit"), [f"ledger: run {found.summary['run_id']} from {run_dir}"]
