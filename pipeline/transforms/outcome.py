"""LogOutcome: how each run ended, in the logs, for alerts on a scheduled run.

Every run logs one text line (``pipeline.core.outcome.outcome_line``). On Dataflow the
same DoFn also writes structured entries to the Cloud Logging log ``registry-scrub-outcome``
(the run's outcome, and one entry per bucket verdict), whose fields log-based metrics and
alerts filter on (docs/production.md, "Alerts"). A failed write is logged as a warning and
never fails the job: the text line says the same.
"""

from __future__ import annotations

import logging
from typing import Any

import apache_beam as beam

from pipeline.adapters import cloud_logging
from pipeline.core.outcome import OUTCOME_MARKER, log_entries, outcome_line

__all__ = ["OUTCOME_MARKER", "LogOutcomeFn", "outcome_line", "structured_log_project"]

log = logging.getLogger(__name__)


def structured_log_project(options) -> str | None:
    """The project whose Cloud Logging gets the structured entries: the job's, on Dataflow only."""
    from apache_beam.options.pipeline_options import GoogleCloudOptions, StandardOptions

    runner = options.view_as(StandardOptions).runner
    name = runner if isinstance(runner, str) else type(runner).__name__ if runner is not None else ""
    if not name.endswith("DataflowRunner"):
        return None
    return options.view_as(GoogleCloudOptions).project


class LogOutcomeFn(beam.DoFn):
    def __init__(self, project: str | None = None, endpoint: str = cloud_logging.ENDPOINT):
        super().__init__()
        self._project = project
        self._endpoint = endpoint
        self._session = None

    def setup(self):
        if self._project:
            self._session = cloud_logging.make_session(self._endpoint)

    def process(self, summary: dict[str, Any]):
        # WARNING when the scan found errors: the job itself still succeeded.
        log.log(logging.WARNING if summary["exit_status"] else logging.INFO, outcome_line(summary))
        if self._session is not None:
            try:
                cloud_logging.write_entries(self._session, log_entries(summary, self._project), self._endpoint)
            except cloud_logging.WriteFailed as err:
                log.warning("%s: the structured entries were not written (%s)", OUTCOME_MARKER, err)
        yield summary

    def teardown(self):
        if self._session is not None:
            self._session.close()
            self._session = None
