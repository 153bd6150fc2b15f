"""summary.json's counts and the terminal summary, value by value: what auditors read (docs/report.md)."""

from collections import Counter

import pytest

from pipeline.core import decommission as dc
from pipeline.core.findings import Kind, finding
from pipeline.core.summary import (
    EXIT_CLEAN,
    EXIT_FINDINGS,
    Tally,
    build_summary,
    exit_status,
    format_summary,
    ledger_lines,
    protected_lines,
    protected_summary,
    reclaim_lines,
    repository_table,
    sum_tallies,
)

IMAGE = "gcr.io/p/app@sha256:" + "a" * 64


def _summary(tally, config=None, **kwargs):
    return build_summary(
        tally,
        run_id="r1",
        started_at="2026-12-01T00:00:00Z",
        ended_at="2026-12-01T00:05:00Z",
        config=config,
        report_location="/reports/r1",
        **kwargs,
    )


# --- one row's share of the counts ---


@pytest.mark.parametrize(
    "size, bytes_listed, bucket_bytes",
    [(10, 10, 10), (0, 0, 0), (None, None, 0)],
)
def test_a_listed_object_counts_once_with_its_bytes_for_its_bucket(size, bytes_listed, bucket_bytes):
    facts = dc.BucketFacts(Counter({("b", dc.OBJECTS): 1, ("b", dc.BYTES): bucket_bytes}))
    tally = Tally.of_listed(size, "b")
    assert tally == Tally(objects_listed=1, bytes_listed=bytes_listed, decommission=facts)
    assert tally.decommission.counts[("b", dc.BYTES)] == bucket_bytes


@pytest.mark.parametrize(
    "row, expected",
    [
        ({"size": 10}, Tally(objects_verified=1, bytes_verified=10)),
        ({"size": None}, Tally(objects_verified=1, bytes_verified=0)),
        ({"size": 10, "verified_by": "read"}, Tally(objects_verified=1, bytes_verified=10)),
        # Carried over: verified, and counted apart so the terminal can say how little was read.
        (
            {"size": 10, "verified_by": "ledger", "ledger_run_id": "r0"},
            Tally(objects_verified=1, bytes_verified=10, verified_from_ledger=1, bytes_from_ledger=10),
        ),
        (
            {"size": None, "verified_by": "ledger"},
            Tally(objects_verified=1, bytes_verified=0, verified_from_ledger=1, bytes_from_ledger=0),
        ),
        # Read again for the re-check sample and agreeing with the ledger.
        (
            {"size": 10, "verified_by": "read", "ledger_run_id": "r0"},
            Tally(objects_verified=1, bytes_verified=10, reverified_from_ledger=1),
        ),
    ],
)
def test_a_verified_row_counts_as_read_carried_over_or_rechecked(row, expected):
    tally = Tally.of_verified(row)
    assert tally == expected
    assert (tally.bytes_verified, tally.bytes_from_ledger) == (expected.bytes_verified, expected.bytes_from_ledger)


def test_an_unreferenced_blob_counts_its_object_and_bytes_for_its_bucket():
    tally = Tally.of_finding(finding(Kind.UNREFERENCED_BLOB, bucket="b", size=400))
    assert tally == Tally(
        findings=Counter({"unreferenced_blob": 1}),
        unreferenced=Counter({("b", "objects"): 1, ("b", "bytes"): 400}),
    )
    unsized = Tally.of_finding(finding(Kind.UNREFERENCED_BLOB, bucket="b", size=None))
    assert unsized.unreferenced[("b", "objects")] == 1 and unsized.unreferenced[("b", "bytes")] == 0


def test_a_finding_counts_once_for_every_repository_it_names():
    row = finding(
        Kind.MISSING_BLOB,
        repository="gcr.io/p/app",
        repositories=["gcr.io/p/app", "gcr.io/p/db"],
        images=[IMAGE, "gcr.io/p/web@sha256:" + "b" * 64],
    )
    tally = Tally.of_finding(row)
    assert tally == Tally(
        findings=Counter({"missing_blob": 1}),
        repositories=Counter(
            {
                ("gcr.io/p/app", "missing_blob"): 1,
                ("gcr.io/p/db", "missing_blob"): 1,
                ("gcr.io/p/web", "missing_blob"): 1,
            }
        ),
    )


@pytest.mark.parametrize(
    "kind, column",
    [(Kind.READ_ERROR, dc.READ_ERRORS), (Kind.MALFORMED_NAME, dc.MALFORMED)],
)
def test_read_errors_and_malformed_names_count_for_their_buckets_verdict(kind, column):
    tally = Tally.of_finding(finding(kind, bucket="b"))
    assert tally.decommission == dc.BucketFacts.of("b", column)
    assert tally.findings == Counter({kind.value: 1}) and tally.unreferenced == Counter()


def test_other_findings_leave_the_verdict_counts_alone():
    assert Tally.of_finding(finding(Kind.DIGEST_MISMATCH, bucket="b")).decommission == dc.BucketFacts()


@pytest.mark.parametrize(
    "row, days_short, planned_bytes, byte_days",
    [
        ({"bucket": "b", "size": 2_000_000, "storage_class": "NEARLINE"}, 10, 2_000_000, 20_000_000),
        ({"bucket": "b", "size": 2_000_000, "storage_class": "NEARLINE"}, 0, 2_000_000, 0),
        ({"bucket": "b", "size": None, "storage_class": "NEARLINE"}, 10, 0, 0),
    ],
)
def test_a_plan_line_counts_its_bytes_and_the_byte_days_short_of_the_minimum(row, days_short, planned_bytes, byte_days):
    tally = Tally.of_plan_line(row, days_short)
    key = ("b", "NEARLINE")
    assert tally.planned_objects == Counter({"b": 1})
    assert list(tally.planned_bytes.items()) == [(key, planned_bytes)]
    assert list(tally.planned_byte_days.items()) == [(key, byte_days)]


def test_a_plan_line_is_not_short_of_any_minimum_unless_told_and_may_lack_a_class():
    tally = Tally.of_plan_line({"bucket": "b", "size": 5})
    assert list(tally.planned_byte_days.items()) == [(("b", None), 0)]
    assert list(tally.planned_bytes.items()) == [(("b", None), 5)]


@pytest.mark.parametrize(
    "accepted, size, expected",
    [
        (False, 7, {("b", "objects"): 1, ("b", "bytes"): 7}),
        (True, 7, {("b", "accepted_objects"): 1, ("b", "accepted_bytes"): 7}),
        (False, None, {("b", "objects"): 1, ("b", "bytes"): 0}),
    ],
)
def test_a_protected_blob_counts_as_kept_or_as_accepted(accepted, size, expected):
    tally = Tally.of_protected({"bucket": "b", "size": size}, accepted)
    assert dict(tally.protected) == expected
    assert tally == Tally(protected=Counter(expected))


def test_a_protected_image_is_listed_once_under_no_bucket():
    image = {"config_digest": "sha256:" + "c" * 64, "bytes": 9, "via": "config"}
    tally = Tally.of_protected_image(image)
    assert tally == Tally(decommission=dc.BucketFacts.of(None, dc.PROTECTED, entry=image))
    assert tally.decommission.listed(None, dc.PROTECTED) == [image]


def test_manifests_affected_images_and_unhashed_objects_count_per_repository():
    assert Tally.of_manifest("gcr.io/p/app") == Tally(
        manifests_scanned=1, repositories=Counter({("gcr.io/p/app", "manifests_scanned"): 1})
    )
    assert Tally.of_affected_image(IMAGE) == Tally(
        images_affected=1, repositories=Counter({("gcr.io/p/app", "images_affected"): 1})
    )
    assert Tally.of_not_hashed() == Tally(objects_not_hashed=1)
    assert Tally.of_unpinned({"bucket": "b"}) == Tally(unpinned=Counter({"b": 1}))


# --- merging ---


def _every_field(n: int, bucket: str) -> Tally:
    """A tally with every field set, each to a value derived from ``n``."""
    return Tally(
        objects_listed=n,
        bytes_listed=n + 1,
        objects_verified=n + 2,
        bytes_verified=n + 3,
        findings=Counter({"vanished": n + 4}),
        manifests_scanned=n + 5,
        images_affected=n + 6,
        objects_not_hashed=n + 7,
        repositories=Counter({("r", "missing_blob"): n + 8}),
        successor=Counter({(bucket, "successor_blobs"): n + 9}),
        recovery=Counter({"configs": n + 10}),
        files=Counter({f"f{n}": 1}),
        unreferenced=Counter({(bucket, "objects"): n + 11}),
        planned_bytes=Counter({(bucket, "STANDARD"): n + 12}),
        planned_objects=Counter({bucket: n + 13}),
        planned_byte_days=Counter({(bucket, "STANDARD"): n + 14}),
        unpinned=Counter({bucket: n + 15}),
        verified_from_ledger=n + 16,
        bytes_from_ledger=n + 17,
        reverified_from_ledger=n + 18,
        protected=Counter({(bucket, "objects"): n + 19}),
        decommission=dc.BucketFacts.of(bucket, dc.OBJECTS, n + 20),
    )


def test_adding_two_tallies_adds_every_field():
    total = _every_field(100, "b") + _every_field(1000, "b")
    assert total == Tally(
        objects_listed=1100,
        bytes_listed=1102,
        objects_verified=1104,
        bytes_verified=1106,
        findings=Counter({"vanished": 1108}),
        manifests_scanned=1110,
        images_affected=1112,
        objects_not_hashed=1114,
        repositories=Counter({("r", "missing_blob"): 1116}),
        successor=Counter({("b", "successor_blobs"): 1118}),
        recovery=Counter({"configs": 1120}),
        files=Counter({"f100": 1, "f1000": 1}),
        unreferenced=Counter({("b", "objects"): 1122}),
        planned_bytes=Counter({("b", "STANDARD"): 1124}),
        planned_objects=Counter({"b": 1126}),
        planned_byte_days=Counter({("b", "STANDARD"): 1128}),
        unpinned=Counter({"b": 1130}),
        verified_from_ledger=1132,
        bytes_from_ledger=1134,
        reverified_from_ledger=1136,
        protected=Counter({("b", "objects"): 1138}),
        decommission=dc.BucketFacts.of("b", dc.OBJECTS, 1140),
    )


def test_the_empty_tally_is_the_identity_and_sums_start_from_it():
    one = _every_field(3, "b")
    assert Tally() + one == one and one + Tally() == one
    assert sum_tallies([]) == Tally()
    assert sum_tallies([one]) == one
    assert sum_tallies([one, one, one]) == one + one + one


# --- what the counts add up to ---


def test_unreferenced_totals_add_every_bucket():
    tally = sum_tallies(
        Tally.of_finding(finding(Kind.UNREFERENCED_BLOB, bucket=b, size=size))
        for b, size in (("b1", 100), ("b2", 20), ("b2", 3))
    )
    assert (tally.unreferenced_objects, tally.unreferenced_bytes) == (3, 123)


def test_only_object_findings_account_for_listed_objects():
    kinds = [Kind.DIGEST_MISMATCH, Kind.MALFORMED_NAME, Kind.READ_ERROR, Kind.VANISHED, Kind.LEDGER_DISAGREES]
    tally = sum_tallies(Tally.of_listed(1) for _ in range(8))
    tally = tally + sum_tallies(Tally.of_finding(finding(kind)) for kind in kinds)
    # Manifest checks come on top of the objects: they account for none of them.
    tally = tally + Tally.of_finding(finding(Kind.MISSING_BLOB)) + Tally.of_finding(finding(Kind.UNREFERENCED_BLOB))
    tally = tally + Tally.of_verified({"size": 1}) + Tally.of_not_hashed()
    assert tally.object_findings == 5
    assert tally.unaccounted_objects == 8 - 1 - 5 - 1


def test_error_findings_count_errors_only():
    tally = sum_tallies(
        Tally.of_finding(finding(kind))
        for kind in (Kind.DIGEST_MISMATCH, Kind.DIGEST_MISMATCH, Kind.VANISHED, Kind.UNREFERENCED_BLOB)
    )
    tally = tally + Tally.of_finding(finding(Kind.MISSING_BLOB))
    assert tally.error_findings == 3


@pytest.mark.parametrize(
    "tally, status",
    [
        (Tally(), EXIT_CLEAN),
        (Tally.of_listed(1) + Tally.of_finding(finding(Kind.UNREFERENCED_BLOB)), EXIT_FINDINGS),  # unaccounted
        (Tally.of_listed(1) + Tally.of_verified({"size": 1}) + Tally.of_finding(finding(Kind.MISSING_BLOB)), 1),
        (Tally.of_listed(1) + Tally.of_finding(finding(Kind.MALFORMED_NAME)), EXIT_CLEAN),
    ],
)
def test_exit_status_fails_on_an_error_or_an_unaccounted_object(tally, status):
    assert exit_status(tally) == status


# --- summary.json ---


def test_summary_json_carries_every_count_as_its_own_key():
    tally = sum_tallies(
        [
            Tally.of_listed(100, "b"),
            Tally.of_listed(50, "b"),
            Tally.of_listed(7, "b"),
            Tally.of_listed(3, "b"),
            Tally.of_listed(9, "b"),
            Tally.of_listed(1, "b"),
            Tally.of_verified({"size": 100}),
            Tally.of_verified({"size": 50, "verified_by": "ledger"}),
            Tally.of_finding(finding(Kind.READ_ERROR, bucket="b", repository="gcr.io/p/app")),
            Tally.of_not_hashed(),
            Tally.of_finding(finding(Kind.UNREFERENCED_BLOB, bucket="b", size=3)),
            Tally.of_finding(finding(Kind.VANISHED, bucket="b")),
            Tally.of_manifest("gcr.io/p/app"),
            Tally.of_manifest("gcr.io/p/app"),
            Tally.of_affected_image(IMAGE),
            Tally.of_verified({"size": 9, "verified_by": "read", "ledger_run_id": "r0"}),
        ]
    )
    summary = _summary(tally, config={"scan": {"mode": "both"}})
    assert {key: summary[key] for key in list(summary)[:17]} == {
        "run_id": "r1",
        "started_at": "2026-12-01T00:00:00Z",
        "ended_at": "2026-12-01T00:05:00Z",
        "report_location": "/reports/r1",
        "config": {"scan": {"mode": "both"}},
        "objects_listed": 6,
        "bytes_listed": 170,
        "objects_verified": 3,
        "bytes_verified": 159,
        "verified_from_ledger": 1,
        "bytes_from_ledger": 50,
        "reverified_from_ledger": 1,
        "ledger": None,
        "changes": None,
        # 6 listed = 3 verified + 2 object findings (read_error, vanished) + 1 not hashed
        "unaccounted_objects": 0,
        "unreferenced_objects": 1,
        "unreferenced_bytes": 3,
    }
    assert summary["manifests_scanned"] == 2 and summary["images_affected"] == 1
    assert summary["objects_not_hashed"] == 1
    assert summary["repositories"] == {"gcr.io/p/app": {"manifests_scanned": 2, "images_affected": 1, "read_error": 1}}
    assert summary["findings_by_kind"] == {
        kind.value: {"read_error": 1, "unreferenced_blob": 1, "vanished": 1}.get(kind.value, 0) for kind in Kind
    }
    assert list(summary["findings_by_kind"]) == [kind.value for kind in Kind]
    assert summary["findings_by_severity"] == {"error": 1, "warning": 1, "info": 1}
    assert summary["exit_status"] == EXIT_FINDINGS
    assert list(summary["decommission"]) == ["b"]
    assert summary["decommission"]["b"]["objects"] == 6 and summary["decommission"]["b"]["bytes"] == 170
    assert summary["successor"] == {} and summary["recovery"]["configs"] == 0


def test_summary_json_of_a_clean_run_without_config():
    summary = _summary(Tally.of_listed(10, "b") + Tally.of_verified({"size": 10}), config=None)
    assert summary["config"] is None
    assert summary["exit_status"] == EXIT_CLEAN and summary["unaccounted_objects"] == 0
    assert summary["findings_by_severity"] == {"error": 0, "warning": 0, "info": 0}
    assert summary["reclaim_protected"] == {
        "accept_losing": [],
        "objects": 0,
        "bytes": 0,
        "accepted_objects": 0,
        "accepted_bytes": 0,
        "images": [],
        "images_total": 0,
    }
    # No manifest was read in names mode: who uses the blobs is unknown.
    assert summary["decommission"]["b"]["verdict"] == dc.CANNOT_TELL


_NAMES_DOUBT = "scan.mode is names: no manifest source was read, so who uses these blobs is unknown"
_RECOVERY_DOUBT = (
    "image recovery was off: the images this bucket holds were not rebuilt from its blobs "
    "(run with --recover-images, and scan.mode both)"
)
_INCREMENTAL_DOUBT = (
    "an incremental run reads only new, changed and sampled objects: the images this bucket holds "
    "were not rebuilt from all of its blobs (a full scan gives the verdict)"
)


@pytest.mark.parametrize(
    "scan, manifests, doubts",
    [
        ({"mode": "both", "recover_images": True}, 0, []),
        ({"mode": "manifests", "recover_images": True}, 0, []),
        ({"mode": "names", "recover_images": True}, 0, [_NAMES_DOUBT]),
        ({"recover_images": True}, 0, [_NAMES_DOUBT]),
        # A manifest read counts as a cross-check whatever the mode says.
        ({"mode": "names", "recover_images": True}, 1, []),
        ({"recover_images": True}, 1, []),
        ({"mode": "both"}, 0, [_RECOVERY_DOUBT]),
        ({"mode": "both", "recover_images": False}, 0, [_RECOVERY_DOUBT]),
        ({"mode": "both", "recover_images": True, "incremental": True}, 0, [_INCREMENTAL_DOUBT]),
        ({"mode": "both", "recover_images": True, "incremental": False}, 0, []),
    ],
)
def test_the_decommission_verdict_knows_how_the_run_scanned(scan, manifests, doubts):
    tally = Tally.of_listed(10, "b") + Tally.of_verified({"size": 10})
    tally = tally + Tally(manifests_scanned=manifests)
    verdict = _summary(tally, config={"scan": scan})["decommission"]["b"]
    if doubts:
        assert verdict["verdict"] == dc.CANNOT_TELL and verdict["reasons"] == doubts
    else:
        assert verdict["verdict"] == dc.SAFE


def test_the_verdict_counts_the_runs_unaccounted_objects():
    tally = Tally.of_listed(10, "b") + Tally.of_listed(10, "b") + Tally.of_verified({"size": 10})
    verdict = _summary(tally, config={"scan": {"mode": "both", "recover_images": True}})["decommission"]["b"]
    assert verdict["reasons"] == ["1 listed object(s) of the run ended in no report row"]


def test_every_bucket_with_a_count_or_a_reclaim_row_gets_a_verdict_and_no_other():
    image = {"config_digest": "sha256:" + "c" * 64, "bytes": 9, "via": "config"}
    tally = Tally.of_listed(10, "b2") + Tally.of_verified({"size": 10}) + Tally.of_protected_image(image)
    summary = _summary(tally, reclaim_verdict={"b1": []})
    assert list(summary["decommission"]) == ["b1", "b2"]
    assert summary["reclaim_protected"]["images"] == [image]
    assert summary["reclaim_protected"]["images_total"] == 1


def test_reclaim_counts_reach_summary_json():
    rows = [
        finding(Kind.UNREFERENCED_BLOB, bucket="b", object="o1", generation=1, size=2_000_000),
        finding(Kind.UNREFERENCED_BLOB, bucket="b", object="o2", generation=2, size=1_000_000),
    ]
    tally = sum_tallies(Tally.of_finding(row) for row in rows)
    tally = tally + Tally.of_plan_line({**rows[0], "storage_class": "STANDARD"}, 5)
    tally = tally + Tally.of_protected(rows[1], accepted=False) + Tally.of_unpinned({"bucket": "b"})
    summary = _summary(tally, reclaim_verdict={"b": []}, bucket_facts={"b": {"location_type": "region"}})
    row = summary["reclaim_by_bucket"]["b"]
    assert (row["plan_objects"], row["plan_bytes"], row["unpinned_objects"]) == (1, 2_000_000, 1)
    assert (row["protected_objects"], row["protected_bytes"]) == (1, 1_000_000)
    assert summary["reclaimable_bytes"] == 2_000_000
    assert summary["reclaim_plan"]["early_deletion"]["byte_days"] == 10_000_000
    assert summary["reclaim_protected"]["objects"] == 1 and summary["reclaim_protected"]["bytes"] == 1_000_000


def test_protected_summary_records_the_users_choice_and_sums_each_column():
    tally = sum_tallies(
        [
            Tally.of_protected({"bucket": "b1", "size": 5}, accepted=False),
            Tally.of_protected({"bucket": "b2", "size": 6}, accepted=False),
            Tally.of_protected({"bucket": "b1", "size": 70}, accepted=True),
            Tally.of_protected({"bucket": "b2", "size": 800}, accepted=True),
            Tally.of_protected({"bucket": "b2", "size": 9000}, accepted=True),
        ]
    )
    summary = protected_summary(tally, {"accept_losing": ("sha256:" + "d" * 64,)})
    assert summary == {
        "accept_losing": ["sha256:" + "d" * 64],
        "objects": 2,
        "bytes": 11,
        "accepted_objects": 3,
        "accepted_bytes": 9870,
        "images": [],
        "images_total": 0,
    }
    assert protected_summary(tally, {"accept_losing": "all"})["accept_losing"] == "all"
    assert protected_summary(Tally(), {})["accept_losing"] == []


def test_the_summary_records_accept_losing_from_the_reclaim_config():
    summary = _summary(Tally(), config={"reclaim": {"accept_losing": "all"}})
    assert summary["reclaim_protected"]["accept_losing"] == "all"


def test_the_repository_table_is_sorted_with_both_counts_always_present_and_zeros_left_out():
    tally = Tally(
        repositories=Counter(
            {
                ("gcr.io/p/b", "missing_blob"): 2,
                ("gcr.io/p/a", "manifests_scanned"): 3,
                ("gcr.io/p/c", "size_mismatch"): 0,
                ("gcr.io/p/a", "size_mismatch"): 1,
            }
        )
    )
    table = repository_table(tally)
    assert table == {
        "gcr.io/p/a": {"manifests_scanned": 3, "images_affected": 0, "size_mismatch": 1},
        "gcr.io/p/b": {"manifests_scanned": 0, "images_affected": 0, "missing_blob": 2},
    }
    assert list(table) == ["gcr.io/p/a", "gcr.io/p/b"]
    assert list(table["gcr.io/p/b"]) == ["manifests_scanned", "images_affected", "missing_blob"]


# --- the terminal: reclaim ---


def _plan(usd, unpriced=0, early=None, soft_delete=None):
    return {
        "file": "reclaim-plan.txt",
        "objects": 2,
        "bytes": 3_000_000,
        "monthly_cost": {"usd_per_month": usd, "unpriced_bytes": unpriced, "price_date": "2026-09-20"},
        "early_deletion": early,
        "soft_delete": soft_delete or {},
    }


@pytest.mark.parametrize(
    "usd, shown",
    [
        (0, "$0.00"),
        (0.0, "$0.00"),
        (0.01, "$0.01"),
        (0.5, "$0.50"),
        (1.01, "$1.01"),
        (1234.5, "$1,234.50"),
        # Below a cent the figure keeps six places rather than showing as $0.00.
        (0.009, "$0.009000"),
        (0.000037, "$0.000037"),
    ],
)
def test_the_plans_monthly_cost_is_shown_in_dollars_and_cents_or_finer_below_a_cent(usd, shown):
    lines = reclaim_lines({"reclaim_plan": _plan(usd)})
    assert lines[0] == f"reclaim plan: 2 unreferenced blob(s), 3.0 MB, about {shown}/month at 2026-09-20 list prices"


def test_the_plan_lines_name_unpriced_bytes_early_deletion_fees_the_file_and_soft_delete_by_bucket():
    plan = _plan(
        1234.5,
        unpriced=1_500_000,
        early={"usd": 0.009},
        soft_delete={"b2": "soft delete of b2", "b1": "soft delete of b1"},
    )
    assert reclaim_lines({"reclaim_plan": plan}) == [
        "reclaim plan: 2 unreferenced blob(s), 3.0 MB, about $1,234.50/month at 2026-09-20 list prices, "
        "1.5 MB unpriced",
        "  deleting now also costs about $0.009000 once in early-deletion fees "
        "(objects younger than their class's minimum storage duration)",
        "  reclaim-plan.txt (generation-pinned; delete with: gcloud storage rm -I < reclaim-plan.txt)",
        "  b1: soft delete of b1",
        "  b2: soft delete of b2",
    ]


@pytest.mark.parametrize("early", [None, {}, {"usd": 0}, {"usd": 0.0}])
def test_no_early_deletion_line_when_there_is_no_fee(early):
    lines = reclaim_lines({"reclaim_plan": _plan(1.0, early=early)})
    assert not any("early-deletion" in line for line in lines)
    assert len(lines) == 2


def test_an_unpriced_plan_says_why():
    plan = _plan(None)
    plan["monthly_cost"]["reason"] = "no list price for STANDARD in an unknown location"
    assert reclaim_lines({"reclaim_plan": plan})[0] == (
        "reclaim plan: 2 unreferenced blob(s), 3.0 MB, not priced: no list price for STANDARD in an unknown location"
    )


def _blocked_summary():
    by_bucket = {
        "b3": {"reclaim_proven": False, "unreferenced_objects": 4, "unreferenced_bytes": 4_000_000},
        "b1": {"reclaim_proven": False, "unreferenced_objects": 1, "unreferenced_bytes": 250_000},
        # Proven, or without unreferenced blobs: not part of what is blocked.
        "b2": {"reclaim_proven": True, "unreferenced_objects": 9, "unreferenced_bytes": 9_000_000},
        "b4": {"reclaim_proven": False, "unreferenced_objects": 0, "unreferenced_bytes": 0},
    }
    blockers = [
        {"bucket": "b3", "source": "registry http://r (catalog walk)", "reason": "cannot see untagged manifests"},
        {"bucket": "b1", "source": None, "reason": "not evaluated: no verdict was reached"},
        {"bucket": "b4", "source": "folder /m", "reason": "not complete"},
        {"bucket": "b3", "reason": "2 manifests could not be read"},
    ]
    return {"reclaim_by_bucket": by_bucket, "reclaim_blocked_by": blockers, "unreferenced_bytes": 13_250_000}


def test_the_terminal_says_why_each_bucket_with_unreferenced_blobs_is_not_reclaimable():
    assert reclaim_lines(_blocked_summary()) == [
        "not reclaimable: 4.2 MB in 5 unreferenced blob(s) are not proven unused:",
        "  b3: registry http://r (catalog walk): cannot see untagged manifests",
        "  b1: not evaluated: no verdict was reached",
        "  b3: 2 manifests could not be read",
    ]


@pytest.mark.parametrize(
    "summary, lines",
    [
        ({}, []),
        ({"unreferenced_bytes": 0}, []),
        (
            {"unreferenced_bytes": 1_250_000},
            ["unreferenced: 1.2 MB, none of it pinned to a generation"],
        ),
        (
            {"unreferenced_bytes": 1_250_000, "reclaim_by_bucket": {"b": {"reclaim_proven": True}}},
            ["unreferenced: 1.2 MB, none of it pinned to a generation"],
        ),
    ],
)
def test_unreferenced_bytes_without_a_plan_or_a_blocker_are_said_to_be_unpinned(summary, lines):
    assert reclaim_lines(summary) == lines


def test_a_plan_is_not_followed_by_the_unpinned_line():
    lines = reclaim_lines({"reclaim_plan": _plan(1.0), "unreferenced_bytes": 3_000_000})
    assert not any(line.startswith("unreferenced:") for line in lines)


# --- the terminal: the second guard and the ledger ---


@pytest.mark.parametrize("protected", [None, {}, {"objects": 0, "images": []}])
def test_nothing_protected_prints_nothing(protected):
    assert protected_lines(protected) == []


def test_protected_blobs_name_their_first_five_images():
    images = [{"config_digest": f"sha256:{i}", "via": f"via {i}"} for i in range(6)]
    protected = {"objects": 3, "bytes": 2_340_000, "images_total": 6, "images": images}
    assert protected_lines(protected) == [
        "protected: 3 unreferenced blob(s), 2.3 MB, belong to 6 complete image(s) the buckets themselves show; "
        "never planned unless named with --accept-losing CONFIG_DIGEST:",
        "  sha256:0  (via 0)",
        "  sha256:1  (via 1)",
        "  sha256:2  (via 2)",
        "  sha256:3  (via 3)",
        "  sha256:4  (via 4)",
    ]


def _ledger_summary(ledger, reverified=0, disagrees=0):
    return {
        "ledger": ledger,
        "reverified_from_ledger": reverified,
        "findings_by_kind": {"ledger_disagrees": disagrees},
    }


@pytest.mark.parametrize(
    "summary, lines",
    [
        (_ledger_summary(None), []),
        (_ledger_summary({}), []),
        (
            _ledger_summary({"run_id": "r0", "location": "/reports/r0"}),
            ["ledger: run r0 (/reports/r0)"],
        ),
        (
            _ledger_summary({"run_id": None, "location": "bq:p.d.verified"}),
            ["ledger: run (newest trusted in BigQuery) (bq:p.d.verified)"],
        ),
        (
            _ledger_summary({"run_id": "r0", "location": "/reports/r0"}, reverified=4),
            ["ledger: run r0 (/reports/r0)", "  re-check sample: 4 agreed, 0 disagreed"],
        ),
        (
            _ledger_summary({"run_id": "r0", "location": "/reports/r0"}, disagrees=2),
            ["ledger: run r0 (/reports/r0)", "  re-check sample: 0 agreed, 2 disagreed"],
        ),
        (
            _ledger_summary({"run_id": "r0", "location": "/reports/r0"}, reverified=4, disagrees=1),
            ["ledger: run r0 (/reports/r0)", "  re-check sample: 4 agreed, 1 disagreed"],
        ),
    ],
)
def test_the_ledger_line_names_the_run_and_the_recheck_sample(summary, lines):
    assert ledger_lines(summary) == lines


def test_the_recheck_line_copes_with_summaries_that_lack_the_counts():
    summary = {"ledger": {"run_id": "r0", "location": "l"}, "findings_by_kind": {"ledger_disagrees": 1}}
    assert ledger_lines(summary)[1] == "  re-check sample: 0 agreed, 1 disagreed"
    older = {"ledger": {"run_id": "r0", "location": "l"}, "reverified_from_ledger": 2, "findings_by_kind": {}}
    assert ledger_lines(older)[1] == "  re-check sample: 2 agreed, 0 disagreed"


# --- the terminal summary as a whole ---


def _text(**overrides):
    summary = {
        "run_id": "r1",
        "objects_listed": 5,
        "objects_verified": 3,
        "bytes_verified": 4_250_000,
        "findings_by_kind": {kind.value: 0 for kind in Kind},
        "report_location": "/reports/r1",
        "exit_status": 0,
    }
    summary.update(overrides)
    return format_summary(summary)


def test_a_clean_run_prints_counts_the_report_and_clean():
    assert _text() == "\n".join(
        [
            "run r1: 5 objects listed, 3 verified (4.2 MB hashed)",
            "findings: none",
            "report: /reports/r1",
            "exit status 0: clean",
        ]
    )


def test_carried_over_bytes_are_not_counted_as_hashed():
    text = _text(verified_from_ledger=2, bytes_from_ledger=4_000_000)
    assert text.splitlines()[0] == (
        "run r1: 5 objects listed, 3 verified (0.2 MB hashed, 2 carried over from the ledger)"
    )


def test_findings_are_listed_most_first_then_by_name_aligned_with_their_severity():
    found = {kind.value: 0 for kind in Kind}
    # vanished comes before missing_blob in summary.json: a tie is still broken by name.
    found.update({"vanished": 2, "missing_blob": 2, "unreferenced_blob": 1234567, "read_error": 1})
    lines = _text(findings_by_kind=found, exit_status=1).splitlines()
    assert lines[1:6] == [
        "findings:",
        "  unreferenced_blob  1234567  (info)",
        "  missing_blob            2  (error)",
        "  vanished                2  (warning)",
        "  read_error              1  (error)",
    ]
    assert lines[-1] == "exit status 1: findings of severity error"


def test_manifests_line_counts_repositories_and_affected_images():
    text = _text(manifests_scanned=7, repositories={"a": {}, "b": {}}, images_affected=3)
    assert text.splitlines()[1] == "manifests: 7 scanned in 2 repositories, 3 image(s) affected by errors"
    bare = _text(manifests_scanned=1)
    assert bare.splitlines()[1] == "manifests: 1 scanned in 0 repositories, 0 image(s) affected by errors"
    assert "manifests:" not in _text(manifests_scanned=0)


def test_unaccounted_objects_are_warned_about():
    lines = _text(unaccounted_objects=2, exit_status=1).splitlines()
    assert "WARNING: 2 listed object(s) ended in no report row" in lines
    assert not any(line.startswith("WARNING") for line in _text(unaccounted_objects=0).splitlines())


def test_nothing_listed_is_never_called_clean():
    lines = _text(objects_listed=0, objects_verified=0, bytes_verified=0, config={"source": {"prefix": "x/"}})
    assert lines.splitlines()[-3:] == [
        "WARNING: no object listed under prefix 'x/': nothing was checked; "
        "is the prefix (--prefix) or the bucket right?",
        "report: /reports/r1",
        "exit status 0: no finding, but nothing was listed to check",
    ]
    without_config = _text(objects_listed=0, objects_verified=0, bytes_verified=0)
    assert "WARNING: no object listed under prefix None: nothing was checked" in without_config
    failed = _text(objects_listed=0, objects_verified=0, bytes_verified=0, exit_status=1)
    assert failed.splitlines()[-1] == "exit status 1: findings of severity error"


@pytest.mark.parametrize(
    ("status", "last_line"),
    [
        (2, "exit status 2: unusable input"),
        (3, "exit status 3: the run itself failed: nothing can be concluded"),
        (7, "exit status 7: "),
    ],
)
def test_every_documented_status_prints_its_meaning(status, last_line):
    # The README's exit-status table; statuses 2 and 3 used to end the summary with a bare "exit status 3: ".
    assert _text(exit_status=status).splitlines()[-1] == last_line


def test_the_most_affected_images_and_the_page_are_named():
    affected = [
        {"image": IMAGE, "error_findings": 2, "broken_by_count": 1},
        {"image": "gcr.io/p/web@sha256:" + "b" * 64, "error_findings": 1, "broken_by_count": 3},
    ]
    lines = _text(most_affected_images=affected, images_affected=6, report_html="/reports/r1/report.html")
    assert lines.splitlines()[-6:] == [
        "most affected images (2 of 6):",
        f"  {IMAGE}  (2 error finding(s), 1 broken part(s))",
        "  gcr.io/p/web@sha256:" + "b" * 64 + "  (1 error finding(s), 3 broken part(s))",
        "report: /reports/r1",
        "page:   /reports/r1/report.html",
        "exit status 0: clean",
    ]
    assert "most affected images (1 of 1):" in _text(most_affected_images=affected[:1])


def test_the_whole_summary_of_a_run_with_a_plan_and_protected_images():
    rows = [
        finding(Kind.UNREFERENCED_BLOB, bucket="b", object="o1", generation=1, size=2_000_000),
        finding(Kind.UNREFERENCED_BLOB, bucket="b", object="o2", generation=2, size=1_000_000),
    ]
    image = {"config_digest": "sha256:" + "c" * 64, "bytes": 1_000_000, "via": "config with every layer"}
    tally = sum_tallies(Tally.of_listed(row["size"], "b") + Tally.of_finding(row) for row in rows)
    tally = tally + Tally.of_plan_line({**rows[0], "storage_class": "STANDARD"})
    tally = tally + Tally.of_protected(rows[1], accepted=False) + Tally.of_protected_image(image)
    facts = {"b": {"location_type": "region", "soft_delete_reported": True, "soft_delete_retention_seconds": 0}}
    summary = _summary(tally, reclaim_verdict={"b": []}, bucket_facts=facts)
    lines = format_summary(summary).splitlines()
    assert lines[:8] == [
        "run r1: 2 objects listed, 0 verified (0.0 MB hashed)",
        "findings:",
        "  unreferenced_blob       2  (info)",
        "reclaim plan: 1 unreferenced blob(s), 2.0 MB, about $0.000037/month at 2026-09-20 list prices",
        "  reclaim-plan.txt (generation-pinned; delete with: gcloud storage rm -I < reclaim-plan.txt)",
        "  b: soft delete is off: deleted bytes stop being billed at once",
        "protected: 1 unreferenced blob(s), 1.0 MB, belong to 1 complete image(s) the buckets themselves show; "
        "never planned unless named with --accept-losing CONFIG_DIGEST:",
        f"  sha256:{'c' * 64}  (config with every layer)",
    ]
    assert lines[-2:] == ["report: /reports/r1", "exit status 1: findings of severity error"]


def test_an_image_only_in_the_bucket_comes_with_the_command_that_exports_it_from_this_run():
    digest = "sha256:" + "e" * 64
    entry = {"config_digest": digest, "bytes": 10}
    tally = Tally.of_listed(10, "b") + Tally.of_verified({"size": 10})
    tally = tally + Tally(decommission=dc.BucketFacts.of("b", dc.ONLY_HERE, entry=entry))
    verdict = _summary(tally, config={"scan": {"mode": "both", "recover_images": True}})["decommission"]["b"]
    assert verdict["verdict"] == dc.WOULD_LOSE
    assert verdict["images_only_here"] == [
        {
            **entry,
            "export_command": f"registry-scrub export /reports/r1 {digest} --to ./recovered-images --tag eeeeeeeeeeee",
        }
    ]


TERABYTE = 10**12


@pytest.mark.parametrize(
    "summary, line",
    [
        (
            {"reclaim_plan": {**_plan(1.0), "bytes": TERABYTE}},
            "reclaim plan: 2 unreferenced blob(s), 1000000.0 MB, about $1.00/month at 2026-09-20 list prices",
        ),
        (
            {"reclaim_plan": _plan(1.0, unpriced=TERABYTE)},
            "reclaim plan: 2 unreferenced blob(s), 3.0 MB, about $1.00/month at 2026-09-20 list prices, "
            "1000000.0 MB unpriced",
        ),
        (
            {
                "reclaim_by_bucket": {
                    "b": {"reclaim_proven": False, "unreferenced_objects": 1, "unreferenced_bytes": TERABYTE}
                }
            },
            "not reclaimable: 1000000.0 MB in 1 unreferenced blob(s) are not proven unused:",
        ),
        ({"unreferenced_bytes": TERABYTE}, "unreferenced: 1000000.0 MB, none of it pinned to a generation"),
    ],
)
def test_reclaim_megabytes_are_decimal_millions_of_bytes(summary, line):
    assert reclaim_lines(summary)[0] == line


def test_protected_and_hashed_megabytes_are_decimal_millions_of_bytes():
    protected = {"objects": 1, "bytes": TERABYTE, "images_total": 1, "images": []}
    assert protected_lines(protected)[0].startswith("protected: 1 unreferenced blob(s), 1000000.0 MB, belong to")
    first = _text(bytes_verified=TERABYTE).splitlines()[0]
    assert first == "run r1: 5 objects listed, 3 verified (1000000.0 MB hashed)"


def test_successor_recovery_and_change_lines_come_between_the_findings_and_the_report():
    successor = {"b": {"successor_blobs": 3, "successor_bytes": 3000, "other_blobs": 1, "other_bytes": 5}}
    recovery = {
        "configs": 2,
        "complete": 1,
        "not_in_registry": 1,
        "not_in_registry_complete": 1,
        "not_in_registry_bytes": 2_000_000,
        "orphan_layers": 0,
        "orphan_bytes": 0,
    }
    changes = {"previous_run_id": "r0", "withheld": "the ledger's rows do not add up"}
    lines = _text(successor=successor, recovery=recovery, changes=changes).splitlines()
    assert lines[2:-2] == [
        "b: 3 blobs / 3.0 kB belong to images in the successor registry; 1 blobs / 5 B belong to no image there",
        "recovery: 2 image config(s), 1 with every layer; 1 in no manifest source (1 complete, 2.0 MB): "
        "lost if the bucket goes, see recovered-*.jsonl",
        "  0 true orphan layer(s), 0.0 MB: in no config, no manifest",
        "since run r0: not compared: the ledger's rows do not add up",
    ]
