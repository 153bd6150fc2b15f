"""Pure: tallies merge in any order, and the exit status follows the findings."""

import random

from pipeline.core.findings import Kind, finding
from pipeline.core.summary import (
    EXIT_CLEAN,
    EXIT_FINDINGS,
    Tally,
    build_summary,
    exit_status,
    format_summary,
    sum_tallies,
)


def _rows():
    tallies = [Tally.of_listed(10) for _ in range(5)]
    tallies += [Tally.of_verified({"size": 10}) for _ in range(3)]
    tallies += [
        Tally.of_finding(finding(Kind.DIGEST_MISMATCH, size=10)),
        Tally.of_finding(finding(Kind.MALFORMED_NAME, size=10)),
        Tally.of_finding(finding(Kind.UNREFERENCED_BLOB, bucket="b", size=400)),
    ]
    return tallies


def test_tallies_merge_in_any_order():
    tallies = _rows()
    first = sum_tallies(tallies)
    random.Random(1).shuffle(tallies)
    halves = sum_tallies(tallies[:4]) + sum_tallies(tallies[4:])
    assert halves == first
    assert first.objects_listed == 5 and first.bytes_listed == 50
    assert first.objects_verified == 3 and first.bytes_verified == 30
    assert first.unreferenced_bytes == 400 and first.unreferenced_objects == 1
    assert first.findings == {"digest_mismatch": 1, "malformed_name": 1, "unreferenced_blob": 1}
    assert first.unaccounted_objects == 0


def test_exit_status_is_one_for_errors_only():
    assert exit_status(Tally(objects_listed=1, objects_verified=1)) == EXIT_CLEAN
    warning_only = Tally.of_listed(1) + Tally.of_finding(finding(Kind.VANISHED))
    assert exit_status(warning_only) == EXIT_CLEAN
    error = Tally.of_listed(1) + Tally.of_finding(finding(Kind.READ_ERROR))
    assert exit_status(error) == EXIT_FINDINGS


def test_an_object_without_a_row_is_unaccounted_and_fails_the_run():
    tally = Tally.of_listed(1) + Tally.of_listed(1) + Tally.of_verified({"size": 1})
    assert tally.unaccounted_objects == 1
    assert exit_status(tally) == EXIT_FINDINGS


def test_summary_document_and_human_lines():
    summary = build_summary(
        sum_tallies(_rows()), run_id="r1", started_at="t0", ended_at="t1", config={"k": "v"}, report_location="/tmp/r1"
    )
    assert summary["findings_by_kind"]["digest_mismatch"] == 1
    assert summary["findings_by_kind"]["read_error"] == 0
    assert summary["findings_by_severity"] == {"error": 1, "warning": 1, "info": 1}
    assert summary["exit_status"] == 1
    text = format_summary(summary)
    assert "5 objects listed, 3 verified" in text
    assert "digest_mismatch" in text and "(error)" in text
    assert "report: /tmp/r1" in text


def _reclaim_summary(verdict):
    unreferenced = finding(Kind.UNREFERENCED_BLOB, bucket="b", object="o", generation=5, size=2_000_000)
    tally = Tally.of_listed(2_000_000) + Tally.of_finding(unreferenced)
    if verdict["b"] == []:
        tally = tally + Tally.of_plan_line({**unreferenced, "storage_class": "STANDARD"})
    facts = {"b": {"location_type": "region", "soft_delete_reported": True, "soft_delete_retention_seconds": 86400}}
    return build_summary(
        tally,
        run_id="r",
        started_at="t0",
        ended_at="t1",
        config={},
        report_location="/tmp/r",
        reclaim_verdict=verdict,
        bucket_facts=facts,
    )


def test_terminal_lines_name_the_plan_its_cost_and_soft_delete():
    summary = _reclaim_summary({"b": []})
    assert summary["reclaimable_bytes"] == 2_000_000 and summary["reclaim_plan"]["objects"] == 1
    text = format_summary(summary)
    assert "reclaim plan: 1 unreferenced blob(s), 2.0 MB, about $0.000037/month at 2026-09-20 list prices" in text
    assert "gcloud storage rm -I < reclaim-plan.txt" in text
    assert "b: deleted objects stay restorable, and billed at their storage class, for 1 day(s)" in text
    assert "not reclaimable" not in text


def test_terminal_lines_say_why_nothing_is_reclaimable():
    blocker = {
        "bucket": "b",
        "code": "incomplete_source",
        "source": "registry http://r (catalog walk)",
        "reason": "not complete: cannot see untagged manifests",
        "manifests": [],
        "manifests_total": 0,
    }
    summary = _reclaim_summary({"b": [blocker]})
    assert summary["reclaimable_bytes"] is None and summary["reclaim_plan"] is None
    text = format_summary(summary)
    assert "not reclaimable: 2.0 MB in 1 unreferenced blob(s) are not proven unused:" in text
    assert "  b: registry http://r (catalog walk): not complete: cannot see untagged manifests" in text
    assert "reclaim plan" not in text


def test_an_unpinned_blob_counts_once_for_its_bucket():
    tally = sum_tallies([Tally.of_unpinned({"bucket": "b1", "object": "o"}) for _ in range(2)])
    tally = sum_tallies([tally, Tally.of_unpinned({"bucket": "b2"})])
    assert tally.unpinned == {"b1": 2, "b2": 1}
