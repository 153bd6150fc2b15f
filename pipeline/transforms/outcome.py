"""LogOutcome: one log line per run that says how it ended, for alerts on a scheduled run.

On Dataflow a job "succeeds" whether or not it found damage; the exit status of
the scan lives in ``summary.json``. This line carries it into Cloud Logging, where
a log-based metric counts runs by status (README.md, "Production on Dataflow", "Alerts").
"""

from __future__ import annotations

import logging
from typing import Any

import apache_beam as beam

log = logging.getLogger(__name__)

# A fixed marker a log filter can match exactly: jsonPayload.message =~ "^registry-scrub outcome".
OUTCOME_MARKER = "registry-scrub outcome"


def outcome_line(summary: dict[str, Any]) -> str:
    by_severity = summary.get("findings_by_severity", {})
    return (
        f"{OUTCOME_MARKER}: run_id={summary['run_id']} exit_status={summary['exit_status']} "
        f"errors={by_severity.get('error', 0)} warnings={by_severity.get('warning', 0)} "
        f"objects_listed={summary.get('objects_listed', 0)} "
        f"unaccounted={summary.get('unaccounted_objects', 0)} report={summary.get('report_location')}"
    )


class LogOutcomeFn(beam.DoFn):
    def process(self, summary: dict[str, Any]):
        # WARNING when the scan found errors: the job itself still succeeded.
        log.log(logging.WARNING if summary["exit_status"] else logging.INFO, outcome_line(summary))
        yield summary
