"""The report model's figures and wording, exactly as report.html shows them (pipeline/core/report_model.py).

tests/test_report_model.py checks that the page agrees with summary.json on a sample run; this file
pins each building block: every field of a row, every boundary of a cap, every headline and note,
and every documented order, so that a figure an auditor reads cannot drift unnoticed.
"""

import pickle
import random
from datetime import date

import pytest

from pipeline.core import recovery, run_diff
from pipeline.core import report_model as rm
from pipeline.core.findings import Kind, finding

BUCKET = "artifacts.p.appspot.com"
EU = "eu.artifacts.p.appspot.com"
US = "us.artifacts.p.appspot.com"
REPO = "gcr.io/p/app"


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


def obj(n: int) -> str:
    return f"containers/images/{digest(n)}"


def image(n: int) -> str:
    return f"{REPO}@{digest(n)}"


def verified(n: int, size: int, bucket: str = BUCKET, created=None) -> dict:
    return {"bucket": bucket, "object": obj(n), "generation": n, "size": size, "time_created": created}


def unreferenced(n: int, size: int, bucket: str = BUCKET, **fields) -> dict:
    return finding(Kind.UNREFERENCED_BLOB, bucket=bucket, object=obj(n), digest=digest(n), size=size, **fields)


# --- bounded text, names and sizes ---------------------------------------------------------------


def test_a_finding_row_keeps_every_piece_of_evidence():
    row = finding(
        Kind.DIGEST_MISMATCH,
        bucket=BUCKET,
        object=obj(1),
        generation=17,
        digest=digest(1),
        expected=digest(1),
        actual=digest(2),
        size=1234,
        crc32c_match=False,
        crc32c="AAAAAA==",
        expected_size=1200,
        http_status=206,
        reads={"attempts": 2},
        detail="the bytes hash to something else",
        repository="gcr.io/p/other",
        repositories=[REPO, "gcr.io/p/base"],
        images=[image(n) for n in range(7)] + [None],
        tags=[f"{REPO}:v1"],
    )
    assert rm.detail_row(row) == {
        "kind": "digest_mismatch",
        "severity": "error",
        "bucket": BUCKET,
        "object": obj(1),
        "generation": "17",
        "digest": digest(1),
        "expected": digest(1),
        "actual": digest(2),
        "size": 1234,
        "expected_size": 1200,
        "crc32c": "AAAAAA==",
        "crc32c_diagnosis": "damaged after the write: the bytes differ from the crc32c GCS stored",
        "http_status": "206",
        "reads": '{"attempts":2}',
        "detail": "the bytes hash to something else",
        # ``repositories`` wins over ``repository`` when a row has both.
        "repositories": [REPO, "gcr.io/p/base"],
        "images": [image(n) for n in range(5)],
        "image_count": 7,  # the None is no image
        "tags": [f"{REPO}:v1"],
        "tag_count": 1,
    }


def test_a_finding_row_with_nothing_known_shows_nothing():
    assert rm.detail_row({"kind": "missing_blob", "severity": "error", "size": "12", "expected_size": 3.5}) == {
        "kind": "missing_blob",
        "severity": "error",
        "bucket": None,
        "object": None,
        "generation": None,
        "digest": None,
        "expected": None,
        "actual": None,
        "size": None,
        "expected_size": None,
        "crc32c": None,
        "crc32c_diagnosis": None,
        "http_status": None,
        "reads": None,
        "detail": None,
        "repositories": [],
        "images": [],
        "image_count": 0,
        "tags": [],
        "tag_count": 0,
    }


@pytest.mark.parametrize(
    "reads, shown",
    [
        ([{"sha256": "a"}, {"sha256": "b"}], '[{"sha256":"a"},{"sha256":"b"}]'),
        # Non-ASCII stays readable, and values JSON cannot encode are written as text.
        ({"name": "caf\u00e9", "at": date(2026, 1, 2)}, '{"name":"caf\u00e9","at":"2026-01-02"}'),
        ("2 reads", "2 reads"),
        (3, "3"),
    ],
)
def test_the_reads_a_verdict_took_are_shown_as_compact_json(reads, shown):
    assert rm.detail_row(finding(Kind.READ_ERROR, reads=reads))["reads"] == shown


def test_a_single_repository_and_a_single_image_name_are_lists_of_one():
    detail = rm.detail_row(finding(Kind.MISSING_BLOB, repository=REPO, images=image(1), tags=f"{REPO}:v1"))
    assert (detail["repositories"], detail["images"], detail["image_count"]) == ([REPO], [image(1)], 1)
    assert (detail["tags"], detail["tag_count"]) == ([f"{REPO}:v1"], 1)


@pytest.mark.parametrize("count, shown", [(5, 5), (6, 5)])
def test_names_are_capped_at_five_with_the_full_count(count, shown):
    detail = rm.detail_row(finding(Kind.MISSING_BLOB, images=[image(n) for n in range(count)]))
    assert detail["images"] == [image(n) for n in range(shown)] and detail["image_count"] == count


@pytest.mark.parametrize(
    "length, limit, shown",
    [(300, 300, "x" * 300), (301, 300, "x" * 299 + "\u2026"), (600, 600, "x" * 600), (601, 600, "x" * 599 + "\u2026")],
)
def test_long_text_is_cut_to_its_limit_with_an_ellipsis(length, limit, shown):
    # Names get 300 characters on the page, the detail sentence 600; the JSONL keeps the whole value.
    field = "object" if limit == 300 else "detail"
    detail = rm.detail_row(finding(Kind.MALFORMED_NAME, **{field: "x" * length}))
    assert detail[field] == shown and len(detail[field]) == limit


@pytest.mark.parametrize(
    "kind, match, diagnosis",
    [
        (Kind.DIGEST_MISMATCH, True, "written wrong: the bytes match the crc32c GCS stored"),
        (Kind.DIGEST_MISMATCH, False, "damaged after the write: the bytes differ from the crc32c GCS stored"),
        (Kind.DIGEST_MISMATCH, None, "undecided: GCS stored no crc32c"),
        (Kind.DIGEST_MISMATCH, 1, "undecided: GCS stored no crc32c"),
        (Kind.READ_ERROR, True, None),
        (Kind.LEDGER_DISAGREES, False, None),
    ],
)
def test_the_crc32c_diagnosis_of_a_digest_mismatch(kind, match, diagnosis):
    assert rm.crc32c_diagnosis(finding(kind, crc32c_match=match)) == diagnosis


# --- creation dates and the age histogram ---------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        (1764201600.5, date(2025, 11, 27)),
        (100_000_000_000, date(5138, 11, 16)),  # the largest value read as seconds
        (100_000_000_001, date(1973, 3, 3)),  # above it: milliseconds
        (10**20, None),  # beyond any calendar
        ("2026-02-30T00:00:00Z", None),
        ("2026-02-28", date(2026, 2, 28)),
        (" 2026-02-28", None),
        (False, None),
        ([2026, 1, 1], None),
    ],
)
def test_created_date_edges(value, expected):
    assert rm.created_date(value) == expected


def test_an_epoch_creation_time_is_a_utc_day_whatever_the_machine_zone(monkeypatch):
    import time

    # 2025-11-27T00:00:00Z is still 2025-11-26 in Honolulu: the day must not depend on where the report is made.
    monkeypatch.setenv("TZ", "Pacific/Honolulu")
    time.tzset()
    try:
        assert rm.created_date(1764201600) == date(2025, 11, 27)
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize(
    "days, label",
    [
        (-3, "< 1 day"),  # created after the run started (clock skew)
        (0, "< 1 day"),
        (1, "1-7 days"),
        (6, "1-7 days"),
        (7, "1-4 weeks"),
        (29, "1-4 weeks"),
        (30, "1-3 months"),
        (90, "1-3 months"),
        (91, "3-12 months"),
        (364, "3-12 months"),
        (365, "1-2 years"),
        (729, "1-2 years"),
        (730, "2-5 years"),
        (1825, "2-5 years"),
        (1826, "> 5 years"),
        (40000, "> 5 years"),
    ],
)
def test_age_bins_have_exclusive_upper_bounds(days, label):
    reference = date(2026, 11, 27)
    created = date.fromordinal(reference.toordinal() - days)
    assert rm.AGE_BINS[rm.age_bin(created, reference)][1] == label


def test_the_age_histogram_counts_objects_and_bytes_per_bin_and_unknown_last():
    acc = rm.accumulate(
        [
            finding(Kind.READ_ERROR, bucket=BUCKET, object=obj(1), size=30, time_created="2026-11-21T00:00:00Z"),
            finding(Kind.MALFORMED_NAME, bucket=BUCKET, object="x", size=-5),  # no date, no valid size
        ],
        [
            verified(2, 100, created="2026-11-27T00:00:00Z"),
            verified(3, 200, created="2026-11-27T23:00:00Z"),
            verified(4, 400, created="2020-01-01T00:00:00Z"),
            verified(5, 800),
            verified(6, 1600, created=1764201600),  # 2025-11-27, epoch seconds
            verified(7, 3200, created="2026-11-25T00:00:00Z"),  # another day of the same bin
        ],
    )
    summary = {"started_at": "2026-11-27T12:00:00Z"}
    assert rm.build_model(summary, acc)["age_histogram"] == [
        {"label": "< 1 day", "objects": 2, "bytes": 300},
        {"label": "1-7 days", "objects": 2, "bytes": 3230},
        {"label": "1-4 weeks", "objects": 0, "bytes": 0},
        {"label": "1-3 months", "objects": 0, "bytes": 0},
        {"label": "3-12 months", "objects": 0, "bytes": 0},
        {"label": "1-2 years", "objects": 1, "bytes": 1600},
        {"label": "2-5 years", "objects": 0, "bytes": 0},
        {"label": "> 5 years", "objects": 1, "bytes": 400},
        {"label": "unknown", "objects": 2, "bytes": 800},
    ]


@pytest.mark.parametrize(
    "summary, first_bin",
    [
        # The run's start is the reference; its end only when the start is unreadable.
        ({"started_at": "2026-11-27T00:00:00Z", "ended_at": "2026-12-27T00:00:00Z"}, "< 1 day"),
        ({"started_at": "garbled", "ended_at": "2026-12-27T00:00:00Z"}, "1-3 months"),
        ({"ended_at": "2026-12-27T00:00:00Z"}, "1-3 months"),
    ],
)
def test_ages_are_measured_from_the_run_start(summary, first_bin):
    acc = rm.accumulate(verified=[verified(1, 10, created="2026-11-27T08:00:00Z")])
    bins = rm.build_model(summary, acc)["age_histogram"]
    assert [b["label"] for b in bins if b["objects"]] == [first_bin]


def test_without_a_run_date_every_age_is_unknown():
    acc = rm.accumulate(
        verified=[
            verified(1, 10, created="2026-11-27T08:00:00Z"),
            verified(2, 5),
            verified(3, 20, created="2020-01-01T00:00:00Z"),
        ]
    )
    bins = rm.build_model({"started_at": None, "ended_at": "never"}, acc)["age_histogram"]
    assert bins[-1] == {"label": "unknown", "objects": 3, "bytes": 35}
    assert sum(b["objects"] for b in bins[:-1]) == 0


# --- top-K lists ---------------------------------------------------------------------------------------


def test_top_k_trims_only_past_twice_its_cap():
    top = rm.TopK(2)
    for n in range(4):
        top.add((n,), n)
    assert len(top.entries) == 4
    top.add((9,), 9)
    assert sorted(top.entries) == [((0,), 0), ((1,), 1)]
    other = rm.TopK(2, [((5,), 5), ((-1,), -1)])
    top.merge(other)
    assert len(top.entries) == 4  # 2 + 2: not past 4
    top.merge(rm.TopK(2, [((7,), 7)]))
    assert top.entries == [((-1,), -1), ((0,), 0)]
    assert top.items() == [-1, 0]


def test_top_k_survives_pickling():
    top = rm.TopK(3)
    top.add(("b", 1), {"x": 1})
    clone = pickle.loads(pickle.dumps(top))
    assert (clone.cap, clone.entries) == (3, [(("b", 1), {"x": 1})])
    assert rm.TopK(3).entries == [] and rm.TopK(3) == rm.TopK(3, [])


# --- the verdict banner ---------------------------------------------------------------------------------

CLEAN_HEADLINE = "Clean: no finding of severity error or warning"


@pytest.mark.parametrize(
    "summary, state, meaning, headline",
    [
        (
            {"exit_status": 1, "findings_by_severity": {"error": 2, "warning": 1}, "unaccounted_objects": 3},
            "errors",
            "findings of severity error",
            "Errors: 2 finding(s) of severity error; 3 listed object(s) ended in no report row",
        ),
        (
            {"exit_status": 1, "findings_by_severity": {"error": 4}, "unaccounted_objects": 0},
            "errors",
            "findings of severity error",
            "Errors: 4 finding(s) of severity error",
        ),
        (
            {"exit_status": 1, "unaccounted_objects": 1},
            "errors",
            "findings of severity error",
            "Errors: 1 listed object(s) ended in no report row",
        ),
        (
            {"exit_status": 1, "unaccounted_objects": -2},
            "errors",
            "findings of severity error",
            "Errors: 2 more report row(s) than listed objects",
        ),
        # A summary without an exit status (damaged, or hand-made) still says errors when it counts some.
        ({"findings_by_severity": {"error": 1}}, "errors", "", "Errors: 1 finding(s) of severity error"),
        (
            {"exit_status": 0, "findings_by_severity": {"warning": 4, "info": 9}, "objects_listed": 10},
            "warnings",
            "clean",
            "Warnings: 4 finding(s) of severity warning, no errors",
        ),
        (
            {"exit_status": 0, "findings_by_severity": {"warning": 1}, "objects_listed": 0},
            "warnings",
            "clean",
            "Warnings: 1 finding(s) of severity warning, no errors",
        ),
        ({"exit_status": 0, "objects_listed": 1}, "clean", "clean", CLEAN_HEADLINE),
        (
            {"exit_status": 0, "objects_listed": 1, "findings_by_severity": {"info": 3}, "unaccounted_objects": None},
            "clean",
            "clean",
            CLEAN_HEADLINE,
        ),
        # Only info findings, nothing listed: a registry-only run (no bucket object) is still clean.
        (
            {"exit_status": 0, "objects_listed": 0, "findings_by_kind": {"in_registry_only": 2}},
            "clean",
            "clean",
            CLEAN_HEADLINE,
        ),
        (
            {"exit_status": 0, "objects_listed": 0, "findings_by_kind": {"unreferenced_blob": 0}},
            "warnings",
            "no finding, but nothing was listed to check",
            "Nothing checked: no object was listed under the prefix",
        ),
        (
            {"exit_status": 0, "objects_listed": 0},
            "warnings",
            "no finding, but nothing was listed to check",
            "Nothing checked: no object was listed under the prefix",
        ),
        # An exit status the page has no words for (a failed run) is shown without a meaning.
        (
            {"exit_status": 3, "objects_listed": 0},
            "warnings",
            "",
            "Nothing checked: no object was listed under the prefix",
        ),
        ({"exit_status": 2, "objects_listed": 5}, "clean", "", CLEAN_HEADLINE),
    ],
)
def test_the_verdict_banner(summary, state, meaning, headline):
    assert rm.verdict(summary) == {
        "state": state,
        "exit_status": summary.get("exit_status"),
        "exit_meaning": meaning,
        "headline": headline,
    }


# --- bytes by state ----------------------------------------------------------------------------------------


def state_rows(intact, damaged, unreadable, unreferenced, reclaimable, not_checked, note=None):
    rows = [
        {"state": "intact", "bytes": intact},
        {"state": "damaged", "bytes": damaged},
        {"state": "unreadable", "bytes": unreadable},
        {"state": "unreferenced", "bytes": unreferenced},
        {"state": "reclaimable", "bytes": reclaimable},
        {"state": "not checked", "bytes": not_checked},
    ]
    if note:
        rows[4]["note"] = note
    return rows


def every_state_acc() -> rm.ReportAccumulator:
    return rm.accumulate(
        [
            finding(Kind.DIGEST_MISMATCH, bucket=BUCKET, object=obj(1), size=1),
            finding(Kind.LEDGER_DISAGREES, bucket=BUCKET, object=obj(2), size=10),
            finding(Kind.READ_ERROR, bucket=EU, object=obj(3), size=100),
            finding(Kind.VANISHED, bucket=EU, object=obj(4), size=1000),
            unreferenced(5, 10000),
            unreferenced(6, 20000, bucket=EU),
        ]
    )


def test_bytes_by_state_of_a_run_proven_reclaimable_as_a_whole():
    summary = {"bytes_verified": 30000, "bytes_listed": 100000, "reclaimable_bytes": 30000, "unreferenced_bytes": 30000}
    # damaged = digest_mismatch + ledger_disagrees, unreadable = read_error + vanished
    assert rm.bytes_by_state(summary, every_state_acc()) == state_rows(30000, 11, 1100, 30000, 30000, 68889)


def test_bytes_by_state_in_some_proven_buckets_says_in_how_many():
    summary = {
        "bytes_verified": 30000,
        "bytes_listed": 31111,
        "reclaimable_bytes": None,
        "reclaim_by_bucket": {
            BUCKET: {"reclaim_proven": True, "reclaimable_bytes": 10000, "unreferenced_objects": 1},
            EU: {"reclaim_proven": False, "reclaimable_bytes": None, "unreferenced_objects": 1},
            US: {"reclaim_proven": True, "reclaimable_bytes": 0, "unreferenced_objects": 0},
        },
    }
    assert rm.bytes_by_state(summary, every_state_acc()) == state_rows(
        30000, 11, 1100, 30000, 10000, 0, note="in 2 of 3 buckets"
    )


def test_bytes_by_state_when_nothing_is_proven_and_the_summary_is_sparse():
    # No bytes verified or listed in the summary: zero, never negative "not checked"; unreferenced from the rows.
    assert rm.bytes_by_state({"reclaimable_bytes": None}, every_state_acc()) == state_rows(0, 11, 1100, 30000, None, 0)


def test_the_unreferenced_bar_is_the_summary_figure_not_the_rows_sum():
    # summary.json is the reference (the page and it cannot disagree); the rows' sum is only for older summaries.
    summary = {"unreferenced_bytes": 12345, "reclaimable_bytes": None}
    assert rm.bytes_by_state(summary, every_state_acc())[3] == {"state": "unreferenced", "bytes": 12345}


def test_bytes_by_state_of_an_empty_run_are_all_zero():
    assert rm.bytes_by_state({}, rm.ReportAccumulator()) == state_rows(0, 0, 0, 0, None, 0)


def test_not_checked_is_what_is_listed_beyond_the_other_states():
    summary = {"bytes_verified": 30000, "bytes_listed": 31112, "reclaimable_bytes": None}
    assert rm.bytes_by_state(summary, every_state_acc())[-1] == {"state": "not checked", "bytes": 1}


# --- what is proven reclaimable -----------------------------------------------------------------------------


def test_proven_reclaim_of_a_whole_run_takes_the_summary_figures():
    acc = every_state_acc()
    summary = {"reclaimable_bytes": 30000, "unreferenced_objects": 7}
    assert rm.proven_reclaim(summary, acc) == {"objects": 7, "bytes": 30000, "buckets": 2, "of": 2, "whole_run": True}
    # An older summary without the count: the rows' count.
    assert rm.proven_reclaim({"reclaimable_bytes": 0}, acc) == {
        "objects": 2,
        "bytes": 0,
        "buckets": 2,
        "of": 2,
        "whole_run": True,
    }
    assert rm.proven_buckets({"reclaimable_bytes": 0}, acc) == {BUCKET, EU}


def test_proven_reclaim_per_bucket_adds_up_the_proven_buckets_only():
    summary = {
        "reclaimable_bytes": None,
        "reclaim_by_bucket": {
            BUCKET: {"reclaim_proven": True, "reclaimable_bytes": 300, "unreferenced_objects": 3},
            EU: {"reclaim_proven": True, "reclaimable_bytes": None, "unreferenced_objects": None},
            US: {"reclaim_proven": False, "reclaimable_bytes": 5000, "unreferenced_objects": 50},
            "gone": "not an object",
        },
    }
    acc = rm.ReportAccumulator()
    assert rm.proven_buckets(summary, acc) == {BUCKET, EU}
    assert rm.proven_reclaim(summary, acc) == {"objects": 3, "bytes": 300, "buckets": 2, "of": 4, "whole_run": False}


def test_nothing_proven_reclaims_nothing():
    acc = every_state_acc()
    assert rm.proven_buckets({"reclaimable_bytes": None}, acc) == set()
    assert rm.proven_reclaim({"reclaimable_bytes": None, "reclaim_by_bucket": ["not", "a", "dict"]}, acc) == {
        "objects": None,
        "bytes": None,
        "buckets": 0,
        "of": 2,
        "whole_run": False,
    }
    # An empty per-bucket table says nothing: the whole-run figure decides.
    assert rm.proven_buckets({"reclaimable_bytes": 5, "reclaim_by_bucket": {}}, acc) == {BUCKET, EU}


# --- the accumulator and the bucket table -----------------------------------------------------------------


def bucket_row(bucket, **counts):
    row = dict.fromkeys(
        (
            "objects",
            "bytes",
            "intact_objects",
            "intact_bytes",
            "damaged_bytes",
            "unreadable_bytes",
            "unreferenced_objects",
            "unreferenced_bytes",
            "errors",
            "warnings",
        ),
        0,
    )
    return {"bucket": bucket, **row, **counts, "reclaim": counts.get("reclaim")}


def test_each_kind_of_row_counts_where_it_belongs_in_the_bucket_table():
    acc = rm.accumulate(
        [
            finding(Kind.DIGEST_MISMATCH, bucket=BUCKET, object=obj(1), size=1),
            finding(Kind.LEDGER_DISAGREES, bucket=BUCKET, object=obj(2), size=10),
            finding(Kind.READ_ERROR, bucket=BUCKET, object=obj(3), size=100),
            finding(Kind.VANISHED, bucket=BUCKET, object=obj(4), size=1000),
            finding(Kind.MALFORMED_NAME, bucket=BUCKET, object="stray", size=20000),
            unreferenced(5, 300000),
            # Not about a listed object: counts its severity in the bucket, not an object or bytes.
            finding(Kind.MISSING_BLOB, bucket=BUCKET, digest=digest(6), size=4000000),
            finding(Kind.SIZE_MISMATCH, bucket=BUCKET, digest=digest(7), size=5),
            finding(Kind.UNVERIFIABLE_DIGEST, bucket=BUCKET, digest="sha512:00"),
        ],
        [verified(5, 300000), verified(8, 60000000), verified(9, -1)],
    )
    assert rm.bucket_table(acc) == [
        bucket_row(
            BUCKET,
            objects=3 + 5,
            bytes=60300000 + 21111,
            intact_objects=3,
            intact_bytes=60300000,
            damaged_bytes=11,
            unreadable_bytes=1100,
            unreferenced_objects=1,
            unreferenced_bytes=300000,
            errors=5,  # digest_mismatch, ledger_disagrees, read_error, missing_blob, size_mismatch
            warnings=3,  # vanished, malformed_name, unverifiable_digest
        )
    ]


def test_a_finding_without_a_bucket_counts_only_if_it_is_about_a_listed_object():
    acc = rm.accumulate(
        [
            finding(Kind.READ_ERROR, object=obj(1), size=7),
            finding(Kind.MANIFEST_UNAVAILABLE, repository=REPO),
            finding(Kind.UNREFERENCED_BLOB, object=obj(2), size=9),
        ]
    )
    assert rm.bucket_table(acc) == [bucket_row("(no bucket)", objects=1, bytes=7, unreadable_bytes=7, errors=1)]
    assert acc.findings_seen == {"read_error": 1, "manifest_unavailable": 1, "unreferenced_blob": 1}
    assert acc.bytes_by_kind == {"read_error": 7, "manifest_unavailable": 0, "unreferenced_blob": 9}
    assert list(acc.largest_unreferenced) == [""]


def test_the_bucket_table_puts_errors_first_then_the_largest_then_by_name():
    acc = rm.accumulate(
        [finding(Kind.READ_ERROR, bucket="e1", object=obj(1), size=1)]
        + [finding(Kind.READ_ERROR, bucket="e2", object=obj(n), size=1) for n in (2, 3)],
        [verified(4, 50, bucket="b"), verified(5, 50, bucket="a"), verified(6, 90, bucket="c")],
    )
    assert [row["bucket"] for row in rm.bucket_table(acc)] == ["e2", "e1", "c", "a", "b"]


def test_the_bucket_table_shows_at_most_500_buckets():
    acc = rm.accumulate(verified=[verified(n, n + 1, bucket=f"b{n:04d}") for n in range(501)])
    rows = rm.bucket_table(acc)
    assert len(rows) == 500 and rows[0]["bucket"] == "b0500" and rows[-1]["bucket"] == "b0001"
    assert rm.build_model({}, acc)["bucket_count"] == 501


def test_the_bucket_table_says_what_each_bucket_may_reclaim():
    acc = rm.accumulate(verified=[verified(1, 3, bucket=b) for b in ("p", "q", "r", "s")])
    summary = {
        "reclaim_by_bucket": {
            "p": {"reclaim_proven": True, "reclaimable_bytes": 1234},
            "q": {"reclaim_proven": False, "reclaimable_bytes": 99},
            "r": "not an object",
        }
    }
    reclaim = {row["bucket"]: row["reclaim"] for row in rm.bucket_table(acc, summary)}
    assert reclaim == {"p": 1234, "q": "blocked", "r": None, "s": None}
    assert {row["bucket"]: row["reclaim"] for row in rm.bucket_table(acc, {"reclaim_by_bucket": [1]})} == dict.fromkeys(
        "pqrs"
    )


def blob(n, size, bucket=BUCKET, **fields):
    """A row of the Reclaim section's table of largest blobs."""
    return {"bucket": bucket, "object": obj(n), "generation": None, "size": size, "storage_class": None,
            "time_created": None, **fields}  # fmt: skip


def test_the_largest_unreferenced_blobs_keep_what_the_reclaim_table_shows():
    acc = rm.accumulate(
        [
            unreferenced(1, 50, generation=11, storage_class="NEARLINE", time_created="2020-01-01T00:00:00Z"),
            unreferenced(3, 70),  # the same size: by object name, whatever came first
            unreferenced(2, 70),
            unreferenced(4, -3),
        ]
    )
    assert acc.largest_unreferenced[BUCKET].items() == [
        blob(2, 70),
        blob(3, 70),
        blob(1, 50, generation="11", storage_class="NEARLINE", time_created="2020-01-01T00:00:00Z"),
        blob(4, 0),
    ]


def test_merging_adds_every_counter_and_keeps_every_list():
    left = rm.accumulate(
        [finding(Kind.READ_ERROR, bucket=BUCKET, object=obj(1), size=5), unreferenced(2, 8)],
        [verified(3, 13, created="2026-01-01T00:00:00Z"), verified(4, 21)],
        [{"image": image(1), "status": "broken", "error_findings": 1}],
        detail_cap=4,
    )
    right = rm.accumulate(
        [finding(Kind.READ_ERROR, bucket=EU, object=obj(5), size=34), unreferenced(6, 55, bucket=EU)],
        [verified(7, 89, bucket=EU, created="2026-01-01T00:00:00Z"), verified(8, 144, bucket=EU)],
        [{"image": image(2)}],
        detail_cap=4,
    )
    merged = left.merge(right)
    assert merged.findings_seen == {"read_error": 2, "unreferenced_blob": 2}
    assert merged.bytes_by_kind == {"read_error": 39, "unreferenced_blob": 63}
    assert (merged.age_unknown_objects, merged.age_unknown_bytes) == (4, 5 + 21 + 34 + 144)
    assert (merged.created_objects, merged.created_bytes) == ({"2026-01-01": 2}, {"2026-01-01": 102})
    assert merged.images_by_status == {"broken": 1, "intact": 1}
    assert [r["image"] for r in merged.images.items()] == [image(1), image(2)]
    assert [r["object"] for r in merged.details["read_error"].items()] == [obj(1), obj(5)]
    assert merged.details["read_error"].cap == 4
    assert {b: t.items()[0]["size"] for b, t in merged.largest_unreferenced.items()} == {BUCKET: 8, EU: 55}
    assert rm.bucket_table(merged) == [
        bucket_row(EU, objects=3, bytes=267, intact_objects=2, intact_bytes=233, unreadable_bytes=34, errors=1,
                   unreferenced_objects=1, unreferenced_bytes=55),
        bucket_row(BUCKET, objects=3, bytes=39, intact_objects=2, intact_bytes=34, unreadable_bytes=5, errors=1,
                   unreferenced_objects=1, unreferenced_bytes=8),
    ]  # fmt: skip
    # The merged-in lists are copies: adding to the merged accumulator leaves the other one alone.
    merged.add_finding(unreferenced(9, 1, bucket=EU))
    assert len(right.largest_unreferenced[EU].entries) == 1


def test_a_merge_into_an_existing_list_keeps_the_smallest_keys():
    left = rm.accumulate([finding(Kind.READ_ERROR, bucket=BUCKET, object=obj(n)) for n in (5, 6)], detail_cap=2)
    right = rm.accumulate([finding(Kind.READ_ERROR, bucket=BUCKET, object=obj(n)) for n in (1, 7, 8)], detail_cap=2)
    merged = left.merge(right)
    assert [r["object"] for r in merged.details["read_error"].items()] == [obj(1), obj(5)]


# --- the findings section ------------------------------------------------------------------------------


def test_detail_rows_order_by_severity_then_bucket_object_digest_manifest_and_detail():
    rows = [
        {"kind": "k", "severity": None, "bucket": "a"},
        {"kind": "k", "severity": "info", "bucket": "a"},
        {"kind": "k", "severity": "warning", "bucket": "b"},
        {"kind": "k", "severity": "error", "bucket": "b", "object": "o", "digest": "d", "manifest_digest": "m2"},
        {"kind": "k", "severity": "error", "bucket": "b", "object": "o", "digest": "d", "manifest_digest": "m1",
         "detail": "y"},
        {"kind": "k", "severity": "error", "bucket": "b", "object": "o", "digest": "d", "manifest_digest": "m1",
         "detail": "z"},
        {"kind": "k", "severity": "error", "bucket": "b", "object": "o", "digest": "c", "manifest_digest": "m9",
         "detail": "zz"},
        {"kind": "k", "severity": "error", "bucket": "b", "object": "n"},
        {"kind": "k", "severity": "error", "bucket": "a", "object": "z"},
        {"kind": "k", "severity": "error"},
    ]  # fmt: skip
    # Whatever order the rows arrive in (workers merge in any order), the page shows the same order.
    for seed in range(4):
        shuffled = rows[:]
        random.Random(seed).shuffle(shuffled)
        kept = rm.accumulate(shuffled).details["k"].items()
        shown = [(r["severity"], r["bucket"], r["object"], r["digest"], r["detail"]) for r in kept]
        assert shown == EXPECTED_DETAIL_ORDER


EXPECTED_DETAIL_ORDER = [
    ("error", None, None, None, None),
    ("error", "a", "z", None, None),
    ("error", "b", "n", None, None),
    ("error", "b", "o", "c", "zz"),
    ("error", "b", "o", "d", "y"),
    ("error", "b", "o", "d", "z"),
    ("error", "b", "o", "d", None),  # manifest m2 after m1
    ("warning", "b", None, None, None),
    ("info", "a", None, None, None),
    (None, "a", None, None, None),
]


def test_findings_that_tie_on_every_sort_field_are_still_kept_up_to_the_cap():
    rows = [
        finding(Kind.READ_ERROR, bucket=BUCKET, object=obj(1), http_status=status)
        for status in (500, 502, 503, 504, 429)
    ]
    kept = rm.accumulate(rows, detail_cap=2).details["read_error"].items()
    assert len(kept) == 2 and {r["object"] for r in kept} == {obj(1)}


def test_findings_sections_list_errors_then_warnings_then_info_then_unknown_kinds():
    acc = rm.accumulate(
        [
            finding(Kind.UNREFERENCED_BLOB, bucket=BUCKET, object=obj(1)),
            finding(Kind.VANISHED, bucket=BUCKET, object=obj(2)),
            finding(Kind.VANISHED, bucket=BUCKET, object=obj(3)),
            {"kind": "from_the_future", "severity": "error", "object": "x"},
            finding(Kind.DIGEST_MISMATCH, bucket=BUCKET, object=obj(4)),
        ],
        detail_cap=1,
    )
    summary = {"findings_by_kind": {"vanished": 5, "read_error": 2, "missing_blob": 0, "malformed_name": 0}}
    sections = rm.findings_section(summary, acc)
    assert [(s["kind"], s["severity"], s["total"], len(s["rows"]), s["omitted"]) for s in sections] == [
        ("digest_mismatch", "error", 1, 1, 0),
        # Counted in the summary, no row kept here (a re-render without its JSONL): all omitted.
        ("read_error", "error", 2, 0, 2),
        ("vanished", "warning", 5, 1, 4),  # the summary's count wins over the rows'
        ("unreferenced_blob", "info", 1, 1, 0),
        ("from_the_future", None, 1, 1, 0),
    ]
    assert sections[2]["rows"] == [rm.detail_row(finding(Kind.VANISHED, bucket=BUCKET, object=obj(2)))]
    # A summary that counts fewer than the rows kept never shows a negative "omitted".
    (section,) = rm.findings_section({"findings_by_kind": {"read_error": 0}}, rm.accumulate([finding(Kind.READ_ERROR)]))
    assert (section["total"], section["omitted"]) == (0, 0)
    assert rm.findings_section({}, rm.ReportAccumulator()) == []


# --- images -----------------------------------------------------------------------------------------------


def test_a_manifest_reference_names_each_image_it_belongs_to():
    ref = {"role": "layer", "size": 10, "images": [image(1), image(2)], "tags": (f"{REPO}:v1",)}
    part = {"tags": [f"{REPO}:v1"], "blob": digest(5), "size": 10}
    assert rm.image_refs(digest(5), ref) == [(image(1), part), (image(2), part)]
    manifest = {"role": "manifest", "size": None, "images": [image(1)], "tags": None}
    assert rm.image_refs(digest(1), manifest) == [(image(1), {"tags": [], "blob": None, "size": None})]
    assert rm.image_refs(digest(1), {"role": "config", "size": 3}) == []


def test_image_info_counts_only_blobs_with_a_declared_size():
    parts = [
        {"tags": [f"{REPO}:b"], "blob": digest(1), "size": 100},
        {"tags": [f"{REPO}:a"], "blob": digest(1), "size": 100},
        {"tags": None, "blob": digest(2), "size": 0},
        {"blob": digest(3), "size": "12"},
        {"blob": None, "size": 7},
    ]
    assert rm.image_info(image(9), parts) == {
        "image": image(9),
        "repository": REPO,
        "manifest_digest": digest(9),
        "tags": [f"{REPO}:a", f"{REPO}:b"],
        "size": 100,
        "blobs": 2,
    }
    assert rm.image_info("no-digest", []) == {
        "image": "no-digest",
        "repository": "",
        "manifest_digest": "no-digest",
        "tags": [],
        "size": None,
        "blobs": 0,
    }


def test_the_evidence_against_an_image_names_the_blob_only_for_blob_kinds():
    blob = finding(
        Kind.SIZE_MISMATCH, bucket=BUCKET, object=obj(1), digest=digest(1), size=9, images=[image(1), image(2)],
        tags=(f"{REPO}:v1",),
    )  # fmt: skip
    item = {"kind": "size_mismatch", "severity": "error", "digest": digest(1), "object": obj(1), "size": 9,
            "tags": [f"{REPO}:v1"]}  # fmt: skip
    assert rm.image_evidence(blob) == [(image(1), item), (image(2), item)]
    manifest = finding(Kind.INVALID_MANIFEST, object=obj(2), digest=digest(2), size="9", images=[image(3)])
    assert rm.image_evidence(manifest) == [
        (image(3), {"kind": "invalid_manifest", "severity": "error", "digest": None, "object": None, "size": None,
                    "tags": []})
    ]  # fmt: skip
    assert rm.image_evidence(finding(Kind.READ_ERROR, object=obj(3), images=[])) == []


def evidence(kind, severity, n=None, tags=()):
    return {"kind": kind, "severity": severity, "digest": digest(n) if n else None, "object": None, "size": n,
            "tags": list(tags)}  # fmt: skip


def test_an_image_row_counts_errors_and_lists_each_broken_part_once():
    info = rm.image_info(image(9), [{"tags": [f"{REPO}:v1"], "blob": digest(1), "size": 40}])
    items = [
        evidence("read_error", "error", 3),
        # Info findings do not break an image, nor stop the count of those after them.
        evidence("in_registry_only", "info", 6),
        evidence("digest_mismatch", "error", 2, tags=[f"{REPO}:v0"]),
        evidence("digest_mismatch", "error", 2),  # the same part twice: one row, two findings
        evidence("digest_mismatch", "error", 1),
        evidence("vanished", "warning", 4),
        evidence("unreferenced_blob", "info", 5, tags=[f"{REPO}:ignored"]),
    ]
    assert rm.image_row(image(9), [info], items) == {
        "image": image(9),
        "repository": REPO,
        "manifest_digest": digest(9),
        "tags": [f"{REPO}:ignored", f"{REPO}:v0", f"{REPO}:v1"],
        "size": 40,
        "blobs": 1,
        "status": "broken",
        "error_findings": 4,
        "broken_by_count": 4,
        "broken_by": [
            {"kind": "digest_mismatch", "digest": digest(1), "object": None, "size": 1},
            {"kind": "digest_mismatch", "digest": digest(2), "object": None, "size": 2},
            {"kind": "read_error", "digest": digest(3), "object": None, "size": 3},
            {"kind": "vanished", "digest": digest(4), "object": None, "size": 4},
        ],
    }


def test_an_image_with_only_warnings_is_a_warning_and_one_without_its_manifest_has_no_size():
    row = rm.image_row(image(9), [], [evidence("vanished", "warning", 4), evidence(None, "warning")])
    assert row == {
        "image": image(9),
        "repository": REPO,
        "manifest_digest": digest(9),
        "tags": [],
        "size": None,
        "blobs": None,
        "status": "warning",
        "error_findings": 0,
        "broken_by_count": 2,
        "broken_by": [
            {"kind": None, "digest": None, "object": None, "size": None},
            {"kind": "vanished", "digest": digest(4), "object": None, "size": 4},
        ],
    }
    assert rm.image_row(image(9), [], [evidence("unreferenced_blob", "info", 1)])["status"] == "intact"


@pytest.mark.parametrize("parts, shown", [(20, 20), (21, 20)])
def test_an_image_row_lists_at_most_20_broken_parts(parts, shown):
    row = rm.image_row(image(9), [], [evidence("missing_blob", "error", n) for n in range(1, parts + 1)])
    assert (len(row["broken_by"]), row["broken_by_count"], row["error_findings"]) == (shown, parts, parts)
    assert row["broken_by"][-1]["digest"] == digest(shown)


def test_image_rows_from_findings_alone_are_sorted_by_image():
    rows = rm.image_rows_from_findings(
        [
            finding(Kind.MISSING_BLOB, digest=digest(1), images=[image(7), image(3)]),
            finding(Kind.VANISHED, digest=digest(2), object=obj(2), images=[image(3)]),
            finding(Kind.READ_ERROR, object=obj(4)),
        ]
    )
    assert [(r["image"], r["status"], r["error_findings"], r["broken_by_count"]) for r in rows] == [
        (image(3), "broken", 1, 2),
        (image(7), "broken", 1, 1),
    ]


def page_image(n, **row):
    return {"image": image(n), "repository": REPO, "manifest_digest": digest(n), **row}


def test_the_images_table_puts_broken_first_most_affected_then_largest_then_by_name():
    rows = [
        page_image(1, status="intact", size=900),
        page_image(2, status="warning", size=1),
        page_image(3, status="broken", error_findings=1, size=5),
        page_image(4, status="broken", error_findings=2, size=1),
        page_image(5, status="broken", error_findings=1, size=50),
        page_image(6, status="broken", error_findings=1, size=5),
        page_image(7, status="odd"),
        page_image(8, status="intact", size=None),
    ]
    random.Random(5).shuffle(rows)
    acc = rm.accumulate(images=rows)
    assert [r["image"] for r in acc.images.items()] == [image(n) for n in (4, 5, 3, 6, 2, 1, 8, 7)]
    assert acc.images_by_status == {"broken": 4, "intact": 2, "warning": 1, "odd": 1}
    assert rm.most_affected_images(acc, limit=2) == [
        {"image": image(4), "error_findings": 2, "broken_by_count": 0},
        {"image": image(5), "error_findings": 1, "broken_by_count": 0},
    ]
    assert [r["image"] for r in rm.most_affected_images(acc)] == [image(n) for n in (4, 5, 3, 6)]


def test_an_image_of_unknown_size_comes_after_every_image_of_known_size():
    acc = rm.accumulate(images=[page_image(1, status="intact", size=None), page_image(2, status="intact", size=1)])
    assert [r["image"] for r in acc.images.items()] == [image(2), image(1)]


def test_most_affected_images_stop_at_five():
    acc = rm.accumulate(images=[page_image(n, status="broken", error_findings=n) for n in range(1, 8)])
    assert [r["error_findings"] for r in rm.most_affected_images(acc)] == [7, 6, 5, 4, 3]


def test_an_image_row_on_the_page_shortens_its_own_tags_and_bounds_its_parts():
    row = page_image(
        1,
        tags=[f"{REPO}:v1", "gcr.io/p/other:v2", f"{REPO}x:v3", "v4", f"{REPO}:v5", f"{REPO}:v6"],
        size=77,
        status="broken",
        error_findings=3,
        broken_by=[{"kind": "read_error", "digest": digest(n), "object": obj(n), "size": n} for n in range(25)],
        broken_by_count=25,
    )
    (shown,) = rm.accumulate(images=[row]).images.items()
    assert shown == {
        "image": image(1),
        "repository": REPO,
        "manifest_digest": digest(1),
        "tags": ["v1", "gcr.io/p/other:v2", f"{REPO}x:v3", "v4", "v5"],
        "tag_count": 6,
        "size": 77,
        "status": "broken",
        "error_findings": 3,
        "broken_by": [{"kind": "read_error", "digest": digest(n), "object": obj(n), "size": n} for n in range(20)],
        "broken_by_count": 25,
    }
    (bare,) = rm.accumulate(images=[{"image": "x"}]).images.items()
    assert bare == {
        "image": "x",
        "repository": None,
        "manifest_digest": None,
        "tags": [],
        "tag_count": 0,
        "size": None,
        "status": None,
        "error_findings": 0,
        "broken_by": [],
        "broken_by_count": 0,
    }


@pytest.mark.parametrize(
    "tag, repository, shown",
    [(f"{REPO}:v1", REPO, "v1"), (f"{REPO}:v1", None, f"{REPO}:v1"), (f"{REPO}:v1", "", f"{REPO}:v1"),
     (f"{REPO}/sub:v1", REPO, f"{REPO}/sub:v1")],
)  # fmt: skip
def test_short_tag(tag, repository, shown):
    assert rm.short_tag(tag, repository) == shown


# --- the Reclaim section --------------------------------------------------------------------------------


def test_the_reclaim_section_of_a_run_proven_as_a_whole():
    summary = {
        "reclaimable_bytes": 30000,
        "reclaim_blocked_by": [],
        "reclaim_by_bucket": {
            BUCKET: {"reclaim_proven": True, "reclaimable_bytes": 10000, "unreferenced_objects": 1,
                     "soft_delete": "deleted objects stay billed for 7 day(s)"},
            EU: {"reclaim_proven": True, "reclaimable_bytes": 20000, "unreferenced_objects": 1, "soft_delete": None},
            US: {"reclaim_proven": True, "reclaimable_bytes": 0, "unreferenced_objects": 0, "soft_delete": "30 days"},
        },
        "reclaim_plan": {
            "file": "reclaim-plan.txt", "objects": 2, "bytes": 30000, "buckets": [BUCKET, EU],
            "monthly_cost": {"usd_per_month": 0.5, "unpriced_bytes": 12, "price_date": "2026-09-20",
                             "basis": "list prices"},
        },
        "soft_delete_seconds": 604800,
        "soft_delete_policy": {"retentionDurationSeconds": "604800"},
        "soft_delete_unknown": None,
        "reclaimable_caveat": "only blobs older than a day",
        # The summary's counts, even where the rows at hand say otherwise (a re-render from some of the files).
        "unreferenced_objects": 3,
        "unreferenced_bytes": 31000,
    }  # fmt: skip
    section = rm.reclaim_section(summary, every_state_acc())
    assert section == {
        "bytes": 30000,
        "blocked": False,
        "blocked_by": [],
        "blocked_total": 0,
        "proven_buckets": [BUCKET, EU, US],
        "proven_bytes": 30000,
        "proven_objects": 3,
        "caveat": "only blobs older than a day",
        "plan": {
            "file": "reclaim-plan.txt",
            "objects": 2,
            "bytes": 30000,
            "buckets": [BUCKET, EU],
            "usd_per_month": 0.5,
            "unpriced_bytes": 12,
            "price_date": "2026-09-20",
            "price_basis": "list prices",
        },
        "soft_delete": {
            "soft_delete_policy": '{"retentionDurationSeconds":"604800"}',
            "soft_delete_seconds": "604800",
            # Per bucket only where it has unreferenced blobs to delete.
            f"soft delete, {BUCKET}": "deleted objects stay billed for 7 day(s)",
        },
        "unreferenced_objects": 3,
        "unreferenced_bytes": 31000,
        "largest_reclaimable": True,
        "largest": [blob(6, 20000, EU), blob(5, 10000)],
        "protected": None,
    }  # fmt: skip
    assert list(section["soft_delete"]) == ["soft_delete_policy", "soft_delete_seconds", f"soft delete, {BUCKET}"]


def test_the_reclaim_section_when_nothing_is_proven_lists_the_largest_unreferenced_blobs():
    reasons = [f"reason {n}" for n in range(100)] + ["y" * 700]
    section = rm.reclaim_section({"reclaimable_bytes": None, "reclaim_blocked_by": reasons}, every_state_acc())
    assert section == {
        "bytes": None,
        "blocked": True,
        "blocked_by": reasons[:100],
        "blocked_total": 101,
        "proven_buckets": [],
        "proven_bytes": 0,
        "proven_objects": 0,
        "caveat": None,
        "plan": None,
        "soft_delete": {},
        "unreferenced_objects": 2,
        "unreferenced_bytes": 30000,
        "largest_reclaimable": False,
        "largest": [blob(6, 20000, EU), blob(5, 10000)],
        "protected": None,
    }  # fmt: skip


def test_a_blocker_sentence_is_cut_at_600_characters():
    (shown,) = rm.reclaim_section({"reclaim_blocked_by": ["y" * 700]}, rm.ReportAccumulator())["blocked_by"]
    assert shown == "y" * 599 + "\u2026"


def test_an_unpriced_plan_shows_no_cost_and_at_most_500_buckets():
    plan = {"objects": 0, "bytes": 0, "buckets": [f"b{n:03d}" for n in range(501)], "monthly_cost": "unpriced"}
    section = rm.reclaim_section({"reclaimable_bytes": 0, "reclaim_plan": plan}, rm.ReportAccumulator())
    assert section["plan"] == {
        "file": None,
        "objects": 0,
        "bytes": 0,
        "buckets": [f"b{n:03d}" for n in range(500)],
        "usd_per_month": None,
        "unpriced_bytes": None,
        "price_date": None,
        "price_basis": None,
    }
    assert rm.reclaim_section({"reclaim_plan": "reclaim-plan.txt"}, rm.ReportAccumulator())["plan"] is None


def test_soft_delete_notes_are_bounded_and_a_bucket_without_unreferenced_blobs_has_none():
    summary = {
        "soft_delete": "z" * 700,
        "reclaim_by_bucket": {
            BUCKET: {"reclaim_proven": False, "unreferenced_objects": 2, "soft_delete": "w" * 700},
            EU: {"reclaim_proven": False, "unreferenced_objects": 2, "soft_delete": ""},
            US: "not an object",
        },
    }
    assert rm.reclaim_section(summary, rm.ReportAccumulator())["soft_delete"] == {
        "soft_delete": "z" * 599 + "\u2026",
        f"soft delete, {BUCKET}": "w" * 599 + "\u2026",
    }


def test_the_caveat_is_cut_at_600_characters():
    section = rm.reclaim_section({"reclaimable_caveat": "c" * 601}, rm.ReportAccumulator())
    assert section["caveat"] == "c" * 599 + "\u2026"


def protected_image(n, **fields):
    return {
        "config_digest": digest(n),
        "bucket": BUCKET,
        "bytes": 1000 + n,
        "created": "2019-03-01T10:00:00Z",
        "os": "linux",
        "architecture": "arm64",
        "labels": {"b": 2, "a": "x", "d": 4, "c": 3},
        "last_history": 'CMD ["/app"]',
        "via": "a config with every layer",
        **fields,
    }


def test_the_protected_images_as_the_reclaim_section_shows_them():
    protected = {
        "objects": 3,
        "bytes": 3000,
        "accepted_objects": 1,
        "accepted_bytes": 100,
        "accept_losing": [digest(n) for n in range(25)],
        "images": [protected_image(1), {"os": "linux"}, {"architecture": "amd64", "labels": None}, "not an object"],
        "images_total": 7,
    }
    assert rm.protected_section(protected) == {
        "objects": 3,
        "bytes": 3000,
        "accepted_objects": 1,
        "accepted_bytes": 100,
        "accept_losing": [digest(n) for n in range(20)],
        "images": [
            {
                "config_digest": digest(1),
                "bucket": BUCKET,
                "bytes": 1001,
                "created": "2019-03-01T10:00:00Z",
                "platform": "linux/arm64",
                "labels": ["a=x", "b=2", "c=3"],
                "last_history": 'CMD ["/app"]',
                "via": "a config with every layer",
            },
            {"config_digest": None, "bucket": None, "bytes": None, "created": None, "platform": "linux", "labels": [],
             "last_history": None, "via": None},
            {"config_digest": None, "bucket": None, "bytes": None, "created": None, "platform": "amd64", "labels": [],
             "last_history": None, "via": None},
        ],
        "images_total": 7,
    }  # fmt: skip


def test_protected_images_before_any_choice_and_when_all_losses_are_accepted():
    assert rm.protected_section({"images": [{}, {}]}) == {
        "objects": 0,
        "bytes": 0,
        "accepted_objects": 0,
        "accepted_bytes": 0,
        "accept_losing": [],
        "images": [rm.protected_section({"images": [{}]})["images"][0]] * 2,
        "images_total": 2,
    }
    assert rm.protected_section({"accept_losing": "all"})["accept_losing"] == "all"
    assert rm.protected_section({"accept_losing": ["x" * 301]})["accept_losing"] == ["x" * 299 + "\u2026"]
    assert rm.protected_section(None) is None and rm.protected_section(["x"]) is None
    many = rm.protected_section({"images": [{}] * 1001, "images_total": 1001})
    assert len(many["images"]) == 1000 and many["images_total"] == 1001
    summary = {"reclaim_protected": {"objects": 1, "images": []}}
    assert rm.reclaim_section(summary, rm.ReportAccumulator())["protected"]["objects"] == 1


FIVE = [f"m{n}" for n in range(5)]


@pytest.mark.parametrize(
    "blocker, text",
    [
        (42, "42"),
        ({"bucket": "b", "reason": "r", "code": "c"}, "b: r"),
        ({"code": "c"}, "all buckets: c"),
        ({"bucket": "b", "source": ""}, "b: blocked"),
        ({"manifests": ["m"], "manifests_total": 3}, "all buckets: blocked; manifests: m and 2 more"),
        ({"manifests": FIVE, "manifests_total": 5}, "all buckets: blocked; manifests: m0, m1, m2, m3, m4"),
        ({"manifests": [*FIVE, "m5"]}, "all buckets: blocked; manifests: m0, m1, m2, m3, m4 and 1 more"),
        ({"manifests": [], "manifests_total": 4}, "all buckets: blocked"),
    ],
)
def test_blocker_sentences(blocker, text):
    assert rm.blocker_text(blocker) == text


# --- the verdict per bucket ------------------------------------------------------------------------------


def test_cards_without_the_fleet_go_by_cost_descending_and_unpriced_last():
    decommission = {
        "a": {"monthly_cost": {"usd_per_month": True}},  # not a price
        "b": {"monthly_cost": {"usd_per_month": 1}},
        "c": {"monthly_cost": "unpriced"},
        "d": "not an object",
        "e": {},
        "f": {"monthly_cost": {"usd_per_month": 0.5}},
    }
    assert rm.card_order(decommission, {"rows": "not a list"}) == ["b", "f", "a", "c", "e"]
    fleet = {"rows": [{"bucket": "e"}, "junk", {"bucket": "gone"}, {"no": "bucket"}, {"bucket": "c"}]}
    assert rm.card_order(decommission, fleet) == ["e", "c", "b", "f", "a"]


def test_the_units_line_adds_up_the_cards():
    summary = {
        "decommission": {
            "b1": {"objects": 3, "bytes": 300, "images_only_here_total": 2},
            "b2": {"objects": 4, "bytes": None, "images_only_here_total": True},
            "b3": {"objects": True, "bytes": 50, "images_only_here_total": 5},
            "junk": 5,
        },
        "objects_listed": 7,
        "bytes_listed": 350,
        "unreferenced_objects": 9,
        "unreferenced_bytes": 900,
        "reclaimable_bytes": 800,
    }
    assert rm.decommission_units(summary, rm.ReportAccumulator()) == {
        "buckets": 3,
        "objects": 7,
        "bytes": 350,
        "objects_listed": 7,
        "bytes_listed": 350,
        "agrees": True,
        "unknown_size": 1,
        "images_only_here": 7,
        "unreferenced_objects": 9,
        "unreferenced_bytes": 900,
        "reclaim": {"objects": 9, "bytes": 800, "buckets": 0, "of": 0, "whole_run": True},
    }


@pytest.mark.parametrize(
    "listed",
    [
        {"objects_listed": 8, "bytes_listed": 350},
        {"objects_listed": 7, "bytes_listed": 351},
        {"objects_listed": 7.0, "bytes_listed": 350},
        {"bytes_listed": 350},
    ],
)
def test_the_units_line_disagrees_when_the_listing_differs(listed):
    summary = {"decommission": {"b1": {"objects": 7, "bytes": 350}}, **listed}
    units = rm.decommission_units(summary, every_state_acc())
    assert units["agrees"] is False
    assert (units["unreferenced_objects"], units["unreferenced_bytes"]) == (2, 30000)  # from the rows


@pytest.mark.parametrize("decommission", [None, {}, ["b1"]])
def test_no_units_line_without_a_verdict(decommission):
    assert rm.decommission_units({"decommission": decommission}, rm.ReportAccumulator()) is None


# --- the whole page model --------------------------------------------------------------------------------


def test_the_run_section_is_bounded():
    summary = {
        "run_id": "r1",
        "started_at": "2026-11-27T12:00:00Z",
        "ended_at": "2026-11-27T12:05:00Z",
        "report_location": "gs://reports/" + "y" * 700,
        "config": {"source": {"buckets": [f"b{n:03d}" for n in range(501)]}, "scan": {"mode": "both"}},
        "files": [f"findings-{n:05d}.jsonl" for n in range(201)],
    }
    run = rm.build_model(summary, rm.ReportAccumulator(), report_file="/r/" + "z" * 700)["run"]
    assert run == {
        "run_id": "r1",
        "started_at": "2026-11-27T12:00:00Z",
        "ended_at": "2026-11-27T12:05:00Z",
        "report_location": ("gs://reports/" + "y" * 700)[:599] + "\u2026",
        "report_file": ("/r/" + "z" * 700)[:599] + "\u2026",
        "mode": "both",
        "buckets": [f"b{n:03d}" for n in range(500)],
        "files": [f"findings-{n:05d}.jsonl" for n in range(200)],
    }


@pytest.mark.parametrize("config", [None, ["not", "an", "object"], {"source": None, "scan": None}])
def test_a_run_without_a_readable_config_shows_no_mode_and_no_bucket(config):
    run = rm.build_model({"config": config}, rm.ReportAccumulator())["run"]
    assert run == {
        "run_id": None,
        "started_at": None,
        "ended_at": None,
        "report_location": None,
        "report_file": None,
        "mode": None,
        "buckets": [],
        "files": [],
    }


def test_the_totals_are_the_summary_counts_and_zero_when_absent():
    counts = {
        "objects_listed": 11,
        "bytes_listed": 12,
        "objects_verified": 13,
        "bytes_verified": 14,
        "objects_not_hashed": 15,
        "unaccounted_objects": 16,
        "manifests_scanned": 17,
        "images_affected": 18,
    }
    assert rm.build_model(counts, rm.ReportAccumulator())["totals"] == counts
    assert rm.build_model({}, rm.ReportAccumulator())["totals"] == dict.fromkeys(counts, 0)


def test_the_model_joins_the_summary_and_the_rows():
    findings = [
        finding(Kind.DIGEST_MISMATCH, bucket=BUCKET, object=obj(1), size=5, images=[image(1)]),
        unreferenced(2, 7),
    ]
    images = rm.image_rows_from_findings(findings) + [
        rm.image_row(image(n), [rm.image_info(image(n), [])], []) for n in (3, 4)
    ]
    acc = rm.accumulate(findings, [verified(9, 100)], images, image_cap=2)
    summary = {
        "exit_status": 1,
        "objects_listed": 2,
        "bytes_listed": 105,
        "bytes_verified": 100,
        "findings_by_kind": {"digest_mismatch": 1, "unreferenced_blob": 1},
        "findings_by_severity": {"error": 1, "info": 1},
        "reclaimable_bytes": 7,
        "successor": {BUCKET: {"successor_blobs": 2, "successor_bytes": 2000, "other_blobs": 1, "other_bytes": 5}},
        "recovery": {"configs": 1, "not_in_registry": 1},
        "changes": {"previous_run_id": "r0"},
        "decommission": {BUCKET: {"objects": 2, "bytes": 105}, "a-first": {"objects": 0, "bytes": 0}},
        # The fleet's order wins over the name order the cards would otherwise take.
        "fleet": {"rows": [{"bucket": BUCKET}, {"bucket": "a-first"}]},
        "started_at": "2026-11-27T12:00:00Z",
    }
    recovered = [{"config_digest": digest(8), "complete": True, "total_size": 10}]
    model = rm.build_model(summary, acc, recovered=recovered)
    assert model["verdict"] == rm.verdict(summary)
    assert model["findings_by_kind"] == {"digest_mismatch": 1, "unreferenced_blob": 1}
    assert model["findings_by_severity"] == {"error": 1, "info": 1}
    assert model["bytes_by_state"] == rm.bytes_by_state(summary, acc)
    assert model["age_histogram"] == rm.age_histogram(acc, date(2026, 11, 27))
    assert model["images"] == {
        "rows": acc.images.items(),
        "total": 3,
        "by_status": {"broken": 1, "intact": 2},
        "omitted": 1,
    }
    assert [r["image"] for r in model["images"]["rows"]] == [image(1), image(3)]
    assert model["most_affected_images"] == [{"image": image(1), "error_findings": 1, "broken_by_count": 1}]
    assert model["buckets"] == rm.bucket_table(acc, summary) and model["bucket_count"] == 1
    assert model["reclaim"] == rm.reclaim_section(summary, acc)
    assert model["findings"] == rm.findings_section(summary, acc)
    assert model["recovery"] == recovery.page_section(summary, recovered) and model["recovery"]["rows"]
    assert model["successor"] == [
        f"{BUCKET}: 2 blobs / 2.0 kB belong to images in the successor registry; 1 blobs / 5 B belong to no image there"
    ]
    assert model["changes"] == run_diff.page_section(summary) and model["changes"]["previous_run_id"] == "r0"
    assert model["decommission"] == summary["decommission"] and model["fleet"] == summary["fleet"]
    assert model["card_order"] == [BUCKET, "a-first"]
    assert model["units"] == rm.decommission_units(summary, acc) and model["units"]["agrees"] is True


def test_a_model_of_an_older_summary_has_no_optional_sections():
    model = rm.build_model({"decommission": "damaged", "fleet": ["damaged"]}, rm.accumulate(images=[{"image": "x"}]))
    assert model["images"] == {"rows": model["images"]["rows"], "total": 1, "by_status": {"intact": 1}, "omitted": 0}
    assert (model["findings_by_kind"], model["findings_by_severity"], model["successor"]) == ({}, {}, [])
    assert (model["recovery"], model["changes"], model["decommission"], model["fleet"], model["units"]) == (None,) * 5
    assert model["card_order"] == []


def test_the_successor_lines_stop_at_500_buckets():
    counts = {"successor_blobs": 0, "successor_bytes": 0, "other_blobs": 0, "other_bytes": 0}
    table = {f"b{n:03d}": counts for n in range(501)}
    lines = rm.build_model({"successor": table}, rm.ReportAccumulator())["successor"]
    assert len(lines) == 500 and lines[-1].startswith("b499: ")
