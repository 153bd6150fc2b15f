"""The run's outcome in the logs: the text line, and on Dataflow the structured entries that
log-based metrics and alerts filter on (pipeline/core/outcome.py, pipeline/transforms/outcome.py).

Cloud Logging has no local counterpart (no emulator exists for it), so the DoFn's writes go to a
stand-in on loopback (tests/support/http_server.py) that records what ``entries.write`` receives
and answers as Cloud Logging does: 200 with ``{}``, or an error status with its JSON body.
"""

from __future__ import annotations

import json
import logging

import pytest

from pipeline.core.outcome import OUTCOME_LOG, log_entries, outcome_payload, verdict_payloads
from pipeline.transforms.outcome import LogOutcomeFn, structured_log_project
from tests.support.http_server import RecordingHandler, serving
from tests.test_core_outcome_entries import SUMMARY  # one run, pinned field by field there

DECOMMISSION = SUMMARY["decommission"]


def test_the_outcome_entry_carries_its_fields_and_every_bucket_verdict():
    payload = outcome_payload(SUMMARY)
    assert payload["event"] == "outcome" and payload["exit_status"] == 1 and payload["run_id"] == SUMMARY["run_id"]
    assert (payload["errors"], payload["warnings"], payload["infos"]) == (3, 1, 5)
    assert payload["verdicts"] == {
        "artifacts.p.appspot.com": "would_lose_images",
        "us.artifacts.p.appspot.com": "in_use",
    }
    assert payload["message"].startswith("registry-scrub outcome: run_id=20261207T030000Z exit_status=1 errors=3")
    verdicts = verdict_payloads(SUMMARY)
    assert [(v["bucket"], v["verdict"]) for v in verdicts] == sorted((b, f["verdict"]) for b, f in DECOMMISSION.items())
    assert all(v["event"] == "verdict" and v["run_id"] == SUMMARY["run_id"] for v in verdicts)


def test_a_run_before_the_verdict_has_no_verdict_entries():
    before = {key: value for key, value in SUMMARY.items() if key != "decommission"}
    assert outcome_payload(before)["verdicts"] == {} and verdict_payloads(before) == []
    assert len(log_entries(before, "audit-proj")) == 1


def test_entries_name_the_projects_log_and_rank_a_failed_run_a_warning():
    entries = log_entries(SUMMARY, "audit-proj")
    assert {e["logName"] for e in entries} == {f"projects/audit-proj/logs/{OUTCOME_LOG}"}
    assert [e["severity"] for e in entries] == ["WARNING", "INFO", "INFO"]
    assert log_entries({**SUMMARY, "exit_status": 0}, "audit-proj")[0]["severity"] == "INFO"
    assert all(e["labels"] == {"run_id": SUMMARY["run_id"]} for e in entries)
    json.dumps(entries)  # what entries.write receives


class _CloudLogging(RecordingHandler):
    status = 200
    bodies: list = []

    def do_POST(self):
        self.record()
        type(self).bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        answer = b"{}" if self.status == 200 else b'{"error": {"code": 403, "message": "Permission denied"}}'
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


def _run(fn: LogOutcomeFn, summary: dict) -> list[dict]:
    fn.setup()
    try:
        return list(fn.process(summary))
    finally:
        fn.teardown()


def test_on_dataflow_the_dofn_writes_the_structured_entries(caplog):
    _CloudLogging.status, _CloudLogging.bodies = 200, []
    with serving(_CloudLogging) as server, caplog.at_level(logging.INFO):
        endpoint = f"http://127.0.0.1:{server.server_port}"
        assert _run(LogOutcomeFn("audit-proj", endpoint), SUMMARY) == [SUMMARY]
    ((path, _),) = _CloudLogging.peers
    assert path == "/v2/entries:write"
    (body,) = _CloudLogging.bodies
    assert body["entries"] == log_entries(SUMMARY, "audit-proj")
    assert any(r.getMessage().startswith("registry-scrub outcome: run_id=") for r in caplog.records)


def test_a_refused_write_is_a_warning_and_the_run_goes_on(caplog):
    _CloudLogging.status, _CloudLogging.bodies = 403, []
    with serving(_CloudLogging) as server, caplog.at_level(logging.INFO):
        assert _run(LogOutcomeFn("audit-proj", f"http://127.0.0.1:{server.server_port}"), SUMMARY) == [SUMMARY]
    (warning,) = [r for r in caplog.records if "structured entries were not written" in r.getMessage()]
    assert "HTTP 403" in warning.getMessage() and "Permission denied" in warning.getMessage()
    # Nothing listens: one line too, no traceback, the summary still flows on.
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert _run(LogOutcomeFn("audit-proj", f"http://127.0.0.1:{server.server_port}"), SUMMARY) == [SUMMARY]
    assert [r for r in caplog.records if "structured entries were not written" in r.getMessage()]


def test_locally_nothing_is_written_to_cloud_logging():
    _CloudLogging.status, _CloudLogging.bodies = 200, []
    with serving(_CloudLogging):
        assert _run(LogOutcomeFn(None), SUMMARY) == [SUMMARY]
    assert _CloudLogging.peers == []


@pytest.mark.parametrize(
    "argv, project",
    [
        (["--runner=DataflowRunner", "--project=audit-proj", "--region=europe-west1"], "audit-proj"),
        (["--runner=DirectRunner", "--project=audit-proj"], None),
        (["--project=audit-proj"], None),
        (["--runner=PrismRunner", "--project=audit-proj"], None),
    ],
)
def test_only_a_dataflow_job_writes_structured_entries(argv, project):
    from apache_beam.options.pipeline_options import PipelineOptions

    assert structured_log_project(PipelineOptions(argv)) == project
