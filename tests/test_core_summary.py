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
