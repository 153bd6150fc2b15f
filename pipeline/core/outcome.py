"""How a run ended, as one text line and as structured Cloud Logging entries.

On Dataflow a job "succeeds" whether or not it found damage; the scan's exit status
lives in ``summary.json``. The outcome carries it into Cloud Logging twice: as the text
line every run logs (local consoles show it too), and, on Dataflow, as structured entries
in the log ``registry-scrub-outcome`` whose ``jsonPayload`` fields (``exit_status``, the
counts by severity, each bucket's decommission verdict) log-based metrics and alerts
filter on (docs/production.md, "Alerts").

Pure: no I/O and no Beam.
"""

from __future__ import annotations

from typing import Any

# A fixed marker a log filter can match exactly: jsonPayload.message =~ "^registry-scrub outcome".
OUTCOME_MARKER = "registry-scrub outcome"
# The Cloud Logging log the structured entries go to: projects/PROJECT/logs/registry-scrub-outcome.
OUTCOME_LOG = "registry-scrub-outcome"
# What each structured entry is: one "outcome" per run, one "verdict" per scanned bucket.
OUTCOME_EVENT, VERDICT_EVENT = "outcome", "verdict"


def outcome_line(summary: dict[str, Any]) -> str:
    by_severity = summary.get("findings_by_severity") or {}
    return (
        f"{OUTCOME_MARKER}: run_id={summary['run_id']} exit_status={summary['exit_status']} "
        f"errors={by_severity.get('error', 0)} warnings={by_severity.get('warning', 0)} "
        f"objects_listed={summary.get('objects_listed', 0)} "
        f"unaccounted={summary.get('unaccounted_objects', 0)} report={summary.get('report_location')}"
    )


def _verdicts(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    decommission = summary.get("decommission")
    return decommission if isinstance(decommission, dict) else {}


def outcome_payload(summary: dict[str, Any]) -> dict[str, Any]:
    """The run's ``jsonPayload``: its id, exit status, counts, report, and each bucket's verdict."""
    by_severity = summary.get("findings_by_severity") or {}
    return {
        "event": OUTCOME_EVENT,
        "message": outcome_line(summary),
        "run_id": summary["run_id"],
        "exit_status": summary["exit_status"],
        "errors": by_severity.get("error", 0),
        "warnings": by_severity.get("warning", 0),
        "infos": by_severity.get("info", 0),
        "objects_listed": summary.get("objects_listed", 0),
        "objects_verified": summary.get("objects_verified", 0),
        "unaccounted_objects": summary.get("unaccounted_objects", 0),
        "reclaimable_bytes": summary.get("reclaimable_bytes"),
        "report_location": summary.get("report_location"),
        # {bucket: verdict}; empty for a run before the decommission verdict.
        "verdicts": {bucket: facts.get("verdict") for bucket, facts in sorted(_verdicts(summary).items())},
    }


def verdict_payloads(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One ``jsonPayload`` per scanned bucket with a verdict: a metric counts buckets by verdict."""
    return [
        {
            "event": VERDICT_EVENT,
            "message": f"{OUTCOME_MARKER}: run_id={summary['run_id']} bucket={bucket} verdict={facts.get('verdict')}",
            "run_id": summary["run_id"],
            "bucket": bucket,
            "project": facts.get("project"),
            "verdict": facts.get("verdict"),
            "headline": facts.get("headline"),
            "bytes": facts.get("bytes"),
        }
        for bucket, facts in sorted(_verdicts(summary).items())
    ]


def log_entries(summary: dict[str, Any], project: str) -> list[dict[str, Any]]:
    """The Cloud Logging ``LogEntry`` objects of a run (``entries.write``), the outcome first."""
    log_name = f"projects/{project}/logs/{OUTCOME_LOG}"
    resource = {"type": "global", "labels": {"project_id": project}}
    labels = {"run_id": str(summary["run_id"])}
    entries = [
        {
            "logName": log_name,
            "resource": resource,
            "labels": labels,
            # WARNING when the scan found errors: the job itself still succeeded.
            "severity": "WARNING" if summary["exit_status"] else "INFO",
            "jsonPayload": outcome_payload(summary),
        }
    ]
    for payload in verdict_payloads(summary):
        entries.append(
            {"logName": log_name, "resource": resource, "labels": labels, "severity": "INFO", "jsonPayload": payload}
        )
    return entries
