"""The outcome's log line and Cloud Logging entries, field by field (pipeline/core/outcome.py)."""

from __future__ import annotations

from pipeline.core.outcome import log_entries, outcome_line, outcome_payload, verdict_payloads

SUMMARY = {
    "run_id": "20261207T030000Z",
    "exit_status": 1,
    "findings_by_severity": {"error": 3, "warning": 1, "info": 5},
    "objects_listed": 40,
    "objects_verified": 36,
    "unaccounted_objects": 0,
    "reclaimable_bytes": None,
    "report_location": "gs://reports/registry-scrub/20261207T030000Z",
    "decommission": {
        "us.artifacts.p.appspot.com": {"verdict": "in_use", "project": "p", "headline": "Still served.", "bytes": 9},
        "artifacts.p.appspot.com": {
            "verdict": "would_lose_images",
            "project": "p",
            "headline": "2 only here.",
            "bytes": 7,
        },
    },
}

LINE = (
    "registry-scrub outcome: run_id=20261207T030000Z exit_status=1 errors=3 warnings=1 objects_listed=40 "
    "unaccounted=0 report=gs://reports/registry-scrub/20261207T030000Z"
)
# The least a summary carries: a run stopped before it counted anything.
BARE = {"run_id": 7, "exit_status": 0}
BARE_LINE = (
    "registry-scrub outcome: run_id=7 exit_status=0 errors=0 warnings=0 objects_listed=0 unaccounted=0 report=None"
)


def test_the_outcome_line_names_every_figure_an_alert_matches():
    assert outcome_line(SUMMARY) == LINE
    assert outcome_line({**SUMMARY, "unaccounted_objects": 2}).endswith(
        " unaccounted=2 report=gs://reports/registry-scrub/20261207T030000Z"
    )


def test_a_summary_without_counts_gives_zeros_not_an_error():
    assert outcome_line(BARE) == BARE_LINE
    assert outcome_payload(BARE) == {
        "event": "outcome",
        "message": BARE_LINE,
        "run_id": 7,
        "exit_status": 0,
        "errors": 0,
        "warnings": 0,
        "infos": 0,
        "objects_listed": 0,
        "objects_verified": 0,
        "unaccounted_objects": 0,
        "reclaimable_bytes": None,
        "report_location": None,
        "verdicts": {},
    }
    assert outcome_payload({**BARE, "decommission": None})["verdicts"] == {}


def test_the_outcome_payload_carries_the_summarys_figures():
    assert outcome_payload({**SUMMARY, "reclaimable_bytes": 4096, "unaccounted_objects": 2}) == {
        "event": "outcome",
        "message": LINE.replace("unaccounted=0", "unaccounted=2"),
        "run_id": "20261207T030000Z",
        "exit_status": 1,
        "errors": 3,
        "warnings": 1,
        "infos": 5,
        "objects_listed": 40,
        "objects_verified": 36,
        "unaccounted_objects": 2,
        "reclaimable_bytes": 4096,
        "report_location": "gs://reports/registry-scrub/20261207T030000Z",
        "verdicts": {"artifacts.p.appspot.com": "would_lose_images", "us.artifacts.p.appspot.com": "in_use"},
    }


def test_each_bucket_verdict_is_one_payload_in_bucket_order():
    assert verdict_payloads(SUMMARY) == [
        {
            "event": "verdict",
            "message": "registry-scrub outcome: run_id=20261207T030000Z bucket=artifacts.p.appspot.com "
            "verdict=would_lose_images",
            "run_id": "20261207T030000Z",
            "bucket": "artifacts.p.appspot.com",
            "project": "p",
            "verdict": "would_lose_images",
            "headline": "2 only here.",
            "bytes": 7,
        },
        {
            "event": "verdict",
            "message": "registry-scrub outcome: run_id=20261207T030000Z bucket=us.artifacts.p.appspot.com "
            "verdict=in_use",
            "run_id": "20261207T030000Z",
            "bucket": "us.artifacts.p.appspot.com",
            "project": "p",
            "verdict": "in_use",
            "headline": "Still served.",
            "bytes": 9,
        },
    ]


def test_the_log_entries_are_the_outcome_then_each_verdict_on_the_global_resource():
    summary = {**BARE, "run_id": 42, "decommission": {"b": {"verdict": "safe_to_delete"}}}
    common = {
        "logName": "projects/audit-proj/logs/registry-scrub-outcome",
        "resource": {"type": "global", "labels": {"project_id": "audit-proj"}},
        "labels": {"run_id": "42"},  # Cloud Logging labels are strings
    }
    assert log_entries(summary, "audit-proj") == [
        {**common, "severity": "INFO", "jsonPayload": outcome_payload(summary)},
        {
            **common,
            "severity": "INFO",
            "jsonPayload": {
                "event": "verdict",
                "message": "registry-scrub outcome: run_id=42 bucket=b verdict=safe_to_delete",
                "run_id": 42,
                "bucket": "b",
                "project": None,
                "verdict": "safe_to_delete",
                "headline": None,
                "bytes": None,
            },
        },
    ]
    assert outcome_payload(summary)["verdicts"] == {"b": "safe_to_delete"}


def test_a_run_with_a_usage_error_is_a_warning_too():
    # exit status 2 (unusable input) is as much a failed scan as 1 (damage found).
    assert [e["severity"] for e in log_entries({**BARE, "exit_status": 2}, "p")] == ["WARNING"]


def test_a_summary_whose_severity_counts_are_null_still_gives_its_outcome_line():
    # outcome_payload already read a null as no findings, then called outcome_line, which raised on it.
    line = outcome_line({"run_id": "r", "exit_status": 0, "findings_by_severity": None})
    assert "errors=0 warnings=0" in line
