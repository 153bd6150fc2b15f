"""Pure: when an unreferenced blob may be deleted, the plan's lines, and what deleting frees."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from pipeline.core import pricing
from pipeline.core.reclaim import (
    SAMPLE,
    Evidence,
    decide,
    plan_line,
    reclaim_summary,
    soft_delete_note,
    source_facts,
    sum_evidence,
)
from pipeline.manifest_config import SourceSpec

BUCKET = "artifacts.p.appspot.com"
OTHER = "eu.artifacts.p.appspot.com"
LEGACY = SourceSpec(kind="legacy", location=BUCKET, bucket=BUCKET)
GCR = SourceSpec(kind="registry", location="https://gcr.io", gcr_projects=("p",), bucket=BUCKET)
CATALOG = SourceSpec(kind="registry", location="http://127.0.0.1:5000", bucket=BUCKET)


def facts(*specs, buckets=(BUCKET,)):
    return [source_facts(i, spec, buckets) for i, spec in enumerate(specs)]


@pytest.mark.parametrize(
    "spec, complete, reason",
    [
        (GCR, True, "`manifest` map lists untagged manifests"),
        (SourceSpec(kind="registry", location="https://gcr.io", gcr_projects=("example.com/p",)), True, "map"),
        (SourceSpec(kind="registry", location="https://gcr.io", gcr_projects=("p/team",)), False, "part of a project"),
        (CATALOG, False, "_catalog and tags/list cannot see untagged manifests"),
        (SourceSpec(kind="registry", location="http://r", repositories=("a/b",)), False, "only the repositories"),
        (SourceSpec(kind="directory", location="/m"), False, "set `complete: true`"),
        (SourceSpec(kind="directory", location="/m", complete=True, bucket=BUCKET), True, "says `complete: true`"),
        (SourceSpec(kind="directory", location="/m", complete=True), False, "without `bucket:`"),
        (SourceSpec(kind="oci_layout", location="/l"), False, "an OCI layout holds only what was put in it"),
        (SourceSpec(kind="oci_layout", location="/l", bucket=BUCKET), False, "set `complete: true` and `bucket:`"),
        (SourceSpec(kind="oci_layout", location="/l", complete=True), False, "without `bucket:`"),
        (SourceSpec(kind="oci_layout", location="/l", complete=True, bucket=BUCKET), True, "says `complete: true`"),
        (LEGACY, True, "pre-2017 metadata"),
    ],
)
def test_each_kind_of_source_knows_whether_it_is_complete(spec, complete, reason):
    (fact,) = facts(spec)
    assert fact.complete is complete and reason in fact.reason


def test_a_complete_source_with_no_bucket_is_complete_only_when_one_bucket_is_scanned():
    spec = SourceSpec(kind="registry", location="https://gcr.io", gcr_projects=("p",))
    assert source_facts(0, spec, [BUCKET]).complete
    several = source_facts(0, spec, [BUCKET, OTHER])
    assert not several.complete and "names no `bucket` while 2 buckets are scanned" in several.reason


@pytest.mark.parametrize("kind", ["directory", "oci_layout"])
def test_a_folder_or_layout_never_speaks_for_a_bucket_it_does_not_name(kind):
    """Issue 17: one scanned bucket no longer lends a bucket-less folder or layout its completeness."""
    spec = SourceSpec(kind=kind, location="/l", complete=True)
    assert not source_facts(0, spec, [BUCKET]).complete


def test_complete_sources_with_every_manifest_read_prove_reclaim():
    assert decide(facts(GCR, LEGACY), [BUCKET], Evidence(), cross_checked=True) == {BUCKET: []}


def test_a_catalog_walk_blocks_reclaim_and_says_why():
    (blocker,) = decide(facts(CATALOG, LEGACY), [BUCKET], Evidence(), cross_checked=True)[BUCKET]
    assert blocker["bucket"] == BUCKET and blocker["source"] == "registry http://127.0.0.1:5000 (catalog walk)"
    assert "cannot see untagged manifests" in blocker["reason"]


def test_an_unread_manifest_blocks_reclaim_naming_it():
    evidence = Evidence.of_unread(0, "gcr.io/p/app@sha256:aa") + Evidence.of_unread(1, "gs://b/x")
    blockers = decide(facts(GCR, LEGACY), [BUCKET], evidence, cross_checked=True)[BUCKET]
    assert [(b["source"], b["manifests"], b["manifests_total"]) for b in blockers] == [
        ("registry https://gcr.io (gcr_projects: p)", ["gcr.io/p/app@sha256:aa"], 1),
        (f"legacy metadata gs://{BUCKET}/containers/repositories/", ["gs://b/x"], 1),
    ]
    assert all("could not be read, parsed or verified" in b["reason"] for b in blockers)


def test_a_gcr_repository_without_a_manifest_map_blocks_reclaim():
    (blocker,) = decide(facts(GCR, LEGACY), [BUCKET], Evidence.of_partial(0, "gcr.io/p/old"), cross_checked=True)[
        BUCKET
    ]
    assert "without a `manifest` map" in blocker["reason"] and blocker["manifests"] == ["gcr.io/p/old"]


def test_legacy_metadata_alone_or_unread_blocks_reclaim():
    (alone,) = decide(facts(LEGACY), [BUCKET], Evidence(), cross_checked=True)[BUCKET]
    assert "no manifest source other than legacy metadata" in alone["reason"]
    (unread,) = decide(facts(GCR), [BUCKET], Evidence(), cross_checked=True)[BUCKET]
    assert "legacy_metadata is false" in unread["reason"]


def test_a_source_of_another_bucket_does_not_cover_this_one():
    other = SourceSpec(kind="registry", location="https://eu.gcr.io", repositories=("x",), bucket=OTHER)
    verdict = decide(
        facts(GCR, LEGACY, other, buckets=(BUCKET, OTHER)), [BUCKET, OTHER], Evidence(), cross_checked=True
    )
    assert verdict[BUCKET] == []
    reasons = [b["reason"] for b in verdict[OTHER]]
    assert len(reasons) == 2 and "legacy_metadata is false" in reasons[0] and "only the repositories" in reasons[1]


def test_without_a_cross_check_nothing_is_proven():
    (blocker,) = decide([], [BUCKET], Evidence(), cross_checked=False)[BUCKET]
    assert "scan.mode is names" in blocker["reason"]


def test_evidence_merges_in_any_order_and_names_a_bounded_sample():
    items = [Evidence.of_unread(0, f"m{i:03d}") for i in range(50)] + [Evidence.of_partial(1, "r")]
    first = sum_evidence(items)
    random.Random(3).shuffle(items)
    assert sum_evidence(items[:20]) + sum_evidence(items[20:]) == first
    assert first.unread[0] == 50 and len(first.unread_names[0]) == SAMPLE
    assert first.unread_names[0][0] == "m000" and first.partial[1] == 1


def test_plan_lines_are_pinned_to_the_generation_or_left_out():
    assert plan_line(BUCKET, "containers/images/sha256:ab", 123) == f"gs://{BUCKET}/containers/images/sha256:ab#123"
    assert plan_line(BUCKET, "containers/images/sha256:ab", None) is None


@pytest.mark.parametrize(
    "facts_, says",
    [
        ({"soft_delete_reported": True, "soft_delete_retention_seconds": 604800}, "for 7 day(s) (soft delete)"),
        ({"soft_delete_reported": True, "soft_delete_retention_seconds": 0}, "soft delete is off"),
        ({"soft_delete_reported": False}, "unknown: the server reported no soft-delete policy"),
        ({"error": "bucket GET answered HTTP 403: no storage.buckets.get"}, "unknown: bucket GET answered HTTP 403"),
        (None, "unknown: the bucket's metadata was not read"),
    ],
)
def test_soft_delete_is_stated_or_its_absence_explained(facts_, says):
    assert says in soft_delete_note(facts_)


def _summary(verdict, planned=None, unpinned=None):
    unreferenced = Counter({(BUCKET, "objects"): 2, (BUCKET, "bytes"): 3 * 1024**3})
    planned = planned or Counter()
    objects = Counter(b for b, _ in planned)
    return reclaim_summary(
        verdict,
        {
            BUCKET: {
                "location": "US",
                "location_type": "multi-region",
                "soft_delete_reported": True,
                "soft_delete_retention_seconds": 604800,
            }
        },
        unreferenced=unreferenced,
        planned_bytes=planned,
        planned_objects=objects,
        unpinned=unpinned or Counter(),
    )


def test_a_proven_bucket_has_a_plan_with_its_cost_and_soft_delete():
    planned = Counter({(BUCKET, "STANDARD"): 1024**3, (BUCKET, "ARCHIVE"): 2 * 1024**3})
    summary = _summary({BUCKET: []}, planned)
    assert summary["reclaimable_bytes"] == 3 * 1024**3 and summary["reclaim_blocked_by"] == []
    plan = summary["reclaim_plan"]
    assert plan["file"] == "reclaim-plan.txt" and plan["objects"] == 2 and plan["bytes"] == 3 * 1024**3
    cost = plan["monthly_cost"]
    expected = (0.000035616 + 2 * 0.00000411) * 730
    assert cost["usd_per_month"] == pytest.approx(expected, abs=1e-6) and cost["unpriced_bytes"] == 0
    assert cost["price_date"] == pricing.PRICE_DATE and cost["price_source"] == pricing.PRICE_SOURCE
    assert "7 day(s)" in plan["soft_delete"][BUCKET]
    row = summary["reclaim_by_bucket"][BUCKET]
    assert row["reclaim_proven"] and row["plan_bytes"] == 3 * 1024**3 and row["location_type"] == "multi-region"


def test_a_blocked_bucket_has_null_reclaimable_bytes_and_no_plan():
    blocker = {
        "bucket": BUCKET,
        "code": "incomplete_source",
        "source": "s",
        "reason": "r",
        "manifests": [],
        "manifests_total": 0,
    }
    summary = _summary({BUCKET: [blocker]})
    assert summary["reclaimable_bytes"] is None and summary["reclaim_plan"] is None
    assert summary["reclaim_blocked_by"] == [blocker]
    assert summary["reclaim_by_bucket"][BUCKET]["reclaimable_bytes"] is None
    assert summary["reclaim_by_bucket"][BUCKET]["unreferenced_bytes"] == 3 * 1024**3


def test_no_verdict_proves_nothing():
    summary = _summary(None)
    assert summary["reclaimable_bytes"] is None and summary["reclaim_blocked_by"][0]["code"] == "not_evaluated"


def test_a_bucket_the_verdict_does_not_name_is_not_proven_beside_one_it_proves():
    # Another bucket's empty blocker list must not leak: a bucket with no verdict is never proven.
    unreferenced = Counter({(BUCKET, "objects"): 1, (BUCKET, "bytes"): 10, (OTHER, "objects"): 2, (OTHER, "bytes"): 20})
    summary = reclaim_summary(
        {BUCKET: []},
        {},
        unreferenced=unreferenced,
        planned_bytes=Counter({(BUCKET, "STANDARD"): 10}),
        planned_objects=Counter({BUCKET: 1}),
        unpinned=Counter(),
    )
    proven, unknown = summary["reclaim_by_bucket"][BUCKET], summary["reclaim_by_bucket"][OTHER]
    assert proven["reclaim_proven"] is True and proven["reclaimable_bytes"] == 10
    assert unknown["reclaim_proven"] is False and unknown["reclaimable_bytes"] is None
    assert unknown["unreferenced_bytes"] == 20
    assert [(b["bucket"], b["code"]) for b in summary["reclaim_blocked_by"]] == [(OTHER, "not_evaluated")]
    assert summary["reclaimable_bytes"] is None


@pytest.mark.parametrize(
    "storage_class, location_type, per_month",
    [
        ("STANDARD", "region", 0.020),
        ("NEARLINE", "region", 0.010),
        ("COLDLINE", "region", 0.004),
        ("ARCHIVE", "region", 0.0012),
        ("STANDARD", "multi-region", 0.026),
        ("STANDARD", "dual-region", 0.044),  # billed in both regions
        ("MULTI_REGIONAL", "multi-region", 0.026),  # a legacy class, priced as Standard
        ("STANDARD", "MULTI-REGION", 0.026),
    ],
)
def test_price_table(storage_class, location_type, per_month):
    assert pricing.usd_per_gib_month(storage_class, location_type) == pytest.approx(per_month, abs=0.0001)


def test_unknown_class_or_location_is_unpriced_not_guessed():
    assert pricing.usd_per_gib_month("SUPERCOLD", "region") is None
    assert pricing.usd_per_gib_month("STANDARD", None) is None
    assert pricing.location_type_of("eu.artifacts.p.appspot.com", None)[0] == "multi-region"
    assert pricing.location_type_of("my-bucket", None)[0] is None
    cost = pricing.monthly_cost({("my-bucket", "STANDARD"): 100}, {"my-bucket": None})
    # Issue 18: nothing priced is null with the reason, never $0.00, which would read as "free".
    assert cost["usd_per_month"] is None and cost["unpriced_bytes"] == 100
    assert (
        cost["reason"]
        == "no list price for STANDARD in an unknown location ("
        + pricing.PRICE_SOURCE
        + ", "
        + pricing.PRICE_DATE
        + ")"
    )
    some = pricing.monthly_cost({("my-bucket", "STANDARD"): 100, (BUCKET, "STANDARD"): 2**30}, {BUCKET: "multi-region"})
    assert some["usd_per_month"] > 0 and some["unpriced_bytes"] == 100 and some["reason"] is None


def test_nothing_unreferenced_in_a_cross_checked_run_is_zero_even_where_unproven():
    blocker = {"bucket": BUCKET, "code": "incomplete_source", "source": "s", "reason": "r", "manifests": []}
    summary = reclaim_summary(
        {BUCKET: [dict(blocker, manifests_total=0)]},
        {},
        unreferenced=Counter(),
        planned_bytes=Counter(),
        planned_objects=Counter(),
        unpinned=Counter(),
    )
    assert summary["reclaimable_bytes"] == 0 and summary["reclaim_plan"] is None
    assert summary["reclaim_blocked_by"][0]["code"] == "incomplete_source"


def test_complete_is_a_checked_directory_key():
    from pipeline.config import ConfigError, parse_config

    def sources(item):
        raw = {"source": {"buckets": [BUCKET]}, "manifests": {"sources": [item]}}
        return parse_config(raw, "f.yaml").manifests.sources

    assert sources({"directory": "/m", "complete": True})[0].complete is True
    assert sources({"directory": "/m"})[0].complete is False
    assert sources({"oci_layout": "/l", "complete": True, "bucket": BUCKET})[0].complete is True
    with pytest.raises(ConfigError, match=r"complete: expected true \(the layout holds"):
        sources({"oci_layout": "/l", "complete": 1})
    with pytest.raises(ConfigError, match=r"f\.yaml: manifests\.sources: item 0: complete: expected true"):
        sources({"directory": "/m", "complete": "yes"})
    with pytest.raises(ConfigError, match=r"unknown key\(s\) complete for a registry source"):
        sources({"registry": "http://r", "complete": True})


@pytest.mark.parametrize(
    "storage_class, created, days",
    [
        ("STANDARD", "2026-11-01T00:00:00Z", 0),  # no minimum
        ("NEARLINE", "2026-11-01T00:00:00Z", 4),  # 26 days old of 30
        ("COLDLINE", "2026-11-01T00:00:00Z", 64),
        ("ARCHIVE", "2025-11-27T00:00:00Z", 0),  # a year old: past its 365 days
        ("ARCHIVE", "2026-11-26T12:00:00Z", 365),  # half a day old: still 364.5 short, billed as whole days
        ("NEARLINE", None, 0),  # no creation time: not estimated
    ],
)
def test_days_short_of_the_minimum_storage_duration(storage_class, created, days):
    assert pricing.days_short_of_minimum(storage_class, created, "2026-11-27T00:00:00Z") == days


def test_early_deletion_fee_is_estimated_apart_from_the_monthly_saving():
    planned = Counter({(BUCKET, "NEARLINE"): 1024**3})
    byte_days = Counter({(BUCKET, "NEARLINE"): 1024**3 * 4})
    summary = reclaim_summary(
        {BUCKET: []},
        {BUCKET: {"location_type": "region"}},
        unreferenced=Counter({(BUCKET, "objects"): 1, (BUCKET, "bytes"): 1024**3}),
        planned_bytes=planned,
        planned_objects=Counter({BUCKET: 1}),
        unpinned=Counter(),
        planned_byte_days=byte_days,
    )
    plan = summary["reclaim_plan"]
    assert plan["monthly_cost"]["usd_per_month"] == pytest.approx(0.010, abs=1e-5)
    # 4 days of one GiB of regional Nearline: 4 / 30.42 of a month at $0.010.
    assert plan["early_deletion"]["usd"] == pytest.approx(0.010 * 4 / (730 / 24), abs=1e-6)
    assert plan["early_deletion"]["byte_days"] == 4 * 1024**3


def test_monthly_cost_rows_per_bucket_and_class_in_order():
    sizes = {("b2", "STANDARD"): pricing.GIB, ("b1", None): 5, ("b1", "NEARLINE"): 2 * pricing.GIB}
    cost = pricing.monthly_cost(sizes, {"b1": "region", "b2": "multi-region"})
    assert cost["by_class"] == [
        {"bucket": "b1", "storage_class": None, "location_type": "region", "bytes": 5,
         "usd_per_gib_month": None, "usd_per_month": None},
        {"bucket": "b1", "storage_class": "NEARLINE", "location_type": "region", "bytes": 2 * pricing.GIB,
         "usd_per_gib_month": 0.01, "usd_per_month": 0.020001},  # $0.0000137/GiB-hour x 730 = 0.01000027
        {"bucket": "b2", "storage_class": "STANDARD", "location_type": "multi-region", "bytes": pricing.GIB,
         "usd_per_gib_month": 0.026, "usd_per_month": 0.026},
    ]  # fmt: skip
    assert cost["unpriced_bytes"] == 5 and cost["currency"] == pricing.CURRENCY
    assert cost["basis"] == "list prices per GiB-hour x 730 hours; no discounts or operations (early deletion apart)"


def test_early_deletion_fee_in_full():
    byte_days = {("b1", "NEARLINE"): 30 * pricing.GIB, ("b1", "UNKNOWN"): 7, ("b2", "COLDLINE"): 0}
    assert pricing.early_deletion_fee(byte_days, {"b1": "region", "b2": "region"}) == {
        "usd": 0.009863,  # 30 GiB-days at 0.01000027 a GiB-month of 730/24 days
        "byte_days": 30 * pricing.GIB + 7,
        "unpriced_byte_days": 7,
    }
    assert pricing.early_deletion_fee({("b", "ARCHIVE"): 1}, {"b": None}) == {
        "usd": 0.0,
        "byte_days": 1,
        "unpriced_byte_days": 1,
    }


def test_location_types_say_where_they_came_from():
    assert pricing.location_type_of("b", "REGION") == ("region", "bucket metadata")
    assert pricing.location_type_of("eu.artifacts.p.appspot.com", None) == (
        "multi-region",
        "GCR bucket name (GCR buckets are US, EU or ASIA multi-region)",
    )
    assert pricing.location_type_of(None, None) == (None, "unknown: the bucket's location type was not reported")


@pytest.mark.parametrize(
    "storage_class, created",
    [(None, "2026-11-02T00:00:00Z"), ("SUPERCOLD", "2026-11-02T00:00:00Z"), ("NEARLINE", None), ("NEARLINE", "soon")],
)
def test_no_minimum_duration_is_counted_without_a_known_class_and_creation_time(storage_class, created):
    assert pricing.days_short_of_minimum(storage_class, created, "2026-11-02T00:00:00Z") == 0


def test_unpriced_amounts_add_up():
    assert pricing.monthly_cost({("b", "X"): 3, ("b", "Y"): 4}, {"b": "region"})["unpriced_bytes"] == 7
    assert pricing.early_deletion_fee({("b", "X"): 3, ("b", "Y"): 4}, {"b": "region"})["unpriced_byte_days"] == 7
    assert pricing.usd_per_gib_month(None, "region") is None and pricing.usd_per_gib_month("STANDARD", "") is None
