"""Pure: ``--plan-only``'s figures as shown, its sort and choice boundaries, and its text word for word."""

from __future__ import annotations

import pytest

from pipeline.core import scan_plan
from pipeline.core.pricing import GIB

US = {"location": "US", "location_type": "multi-region", "storage_class": "STANDARD", "error": None}
NOT_REPORTED = "monthly cost: the bucket's storage class was not reported"


def test_a_bucket_neither_listed_nor_described_is_all_unknown():
    assert scan_plan.bucket_row("mirror", None, None) == {
        "bucket": "mirror",
        "project": None,
        "objects": None,
        "bytes": None,
        "basis": None,
        "location": None,
        "storage_class": None,
        "usd_per_month": None,
        "unknown": ["objects and bytes: not listed", NOT_REPORTED],
    }


def test_a_bucket_whose_listing_failed_keeps_its_metadata_and_prices_nothing():
    assert scan_plan.bucket_row("artifacts.p.appspot.com", {"error": "the bucket does not exist"}, US) == {
        "bucket": "artifacts.p.appspot.com",
        "project": "p",
        "objects": None,
        "bytes": None,
        "basis": None,
        "location": "US",
        "storage_class": "STANDARD",
        "usd_per_month": None,
        "unknown": ["objects and bytes: the bucket does not exist"],
    }


def test_a_gcr_bucket_without_a_reported_location_type_is_priced_as_multi_region_to_six_places():
    row = scan_plan.bucket_row(
        "artifacts.p.appspot.com", {"objects": 3, "bytes": GIB // 3, "basis": "listed"}, {"storage_class": "STANDARD"}
    )
    assert row["usd_per_month"] == 0.008667  # a third of a GiB at $0.026
    assert (row["location"], row["storage_class"], row["unknown"]) == (None, "STANDARD", [])


def test_a_listed_bucket_of_unknown_class_has_its_size_but_no_price():
    row = scan_plan.bucket_row("mirror", {"objects": 1, "bytes": 10, "basis": "at least"}, {"location_type": "region"})
    assert (row["objects"], row["bytes"], row["basis"], row["usd_per_month"]) == (1, 10, "at least", None)
    assert row["unknown"] == ["objects and bytes at least (the listing was cut short)", NOT_REPORTED]


def test_the_dataflow_estimate_keeps_six_places_of_each_amount():
    assert scan_plan.dataflow_estimate(1_310_000, 123_456_789_012, 1000) == {
        "seconds": 373.2,  # 6 min fixed + 13.17 s of 80 vCPUs
        "workers": 20,
        "machine_type": "n2-standard-4",
        "compute_usd": 0.582553,
        "requests_usd": 0.53055,  # 1,310 GETs x $0.0004 + 1,310 list pages x $0.000005
        "network_usd_up_to": 2.469136,
        "usd_low": 1.113103,
        "usd_high": 3.582239,
    }


@pytest.mark.parametrize(
    "objects, bytes_, compute_usd, requests_usd",
    [
        (0, 0, 0.562, 0.000005),  # the fixed 6 minutes of 20 workers, and one list page
        (10_000_000, 0, 0.659569, 4.05),  # $4.00 of reads and 10,000 list pages of 1,000 names
        (2_000_000_000, 10**15, 83.023918, 810.0),  # 2 M list pages: $10 of the $810
    ],
)
def test_the_dataflow_request_and_compute_costs_count_every_page_and_hour(objects, bytes_, compute_usd, requests_usd):
    estimate = scan_plan.dataflow_estimate(objects, bytes_, objects)
    assert (estimate["compute_usd"], estimate["requests_usd"]) == (compute_usd, requests_usd)


def test_the_local_estimate_rounds_each_figure_to_a_tenth():
    assert scan_plan.local_estimate(123_457, 9_893_827_160, 3) == {
        "seconds": 81.2,  # 2 s start + 79.15 s over the link
        "cores": 3,
        "cpu_seconds": 71.4,  # 9.7 s of hashing + 61.7 s for the objects
        "link_seconds": 79.2,
        "link_mb_per_s": 125,
    }
    by_cpu = scan_plan.local_estimate(0, 10**10, 0)
    assert (by_cpu["cores"], by_cpu["cpu_seconds"], by_cpu["seconds"]) == (1, 9.8, 82.0)


def _row(bucket, usd, bytes_, objects=1):
    return {"bucket": bucket, "usd_per_month": usd, "bytes": bytes_, "objects": objects, "basis": "listed"}


def test_buckets_of_equal_cost_sort_by_bytes_then_name_and_an_unlisted_one_counts_as_empty():
    rows = [
        _row("d-unlisted", None, None, None),
        _row("c-one-byte", None, 1),
        _row("a-empty", None, 0),
        _row("b-big", None, 50),
        _row("e-priced", 0.5, 1),
    ]
    plan = scan_plan.build_plan(rows, {"buckets": []}, cores=1)
    assert [r["bucket"] for r in plan["buckets"]] == ["e-priced", "b-big", "c-one-byte", "a-empty", "d-unlisted"]


def test_a_plan_of_unlisted_unpriced_buckets_totals_nothing_and_prices_nothing():
    rows = [scan_plan.bucket_row("mirror", {"error": "denied"}, {})]
    plan = scan_plan.build_plan(rows, {"buckets": ["mirror"]}, cores=1)
    assert plan["totals"] == {
        "buckets": 1,
        "objects": 0,
        "bytes": 0,
        "usd_per_month": None,
        "unpriced_buckets": 1,
        "unlisted_buckets": 1,
        "exact": False,
    }
    assert plan["estimate"]["dataflow"]["seconds"] == 360.0
    assert (plan["choice"], plan["choice_reason"]) == ("local", "about 2s here, no Dataflow start-up or cost")


def _one_bucket(objects, bytes_, cores):
    row = _row("artifacts.p.appspot.com", 1.0, bytes_, objects)
    return scan_plan.build_plan([row], {"buckets": [row["bucket"]]}, cores)


def test_an_hour_or_less_runs_locally_even_where_dataflow_would_be_faster():
    # 10^6 objects on one core: 502 s here against 360 + 200 s on Dataflow, and exactly an hour.
    assert _one_bucket(1_000_000, 0, 1)["choice"] == "local"
    plan = _one_bucket(7_196_000, 0, 1)
    assert plan["estimate"]["local"]["seconds"] == 3600.0 and plan["choice"] == "local"
    assert _one_bucket(7_198_000, 0, 1)["choice"] == "dataflow"


def test_a_tie_beyond_an_hour_runs_locally():
    plan = _one_bucket(18_210_000, 5 * 10**11, 4)
    # 2 s + 4,000 s over the link here; 360 s + 18,210,000 reads at 5,000/s on Dataflow.
    assert plan["estimate"]["local"]["seconds"] == plan["estimate"]["dataflow"]["seconds"] == 4002.0
    assert plan["choice"] == "local"
    assert plan["choice_reason"] == "about 1h07m here, no Dataflow start-up or cost"


def test_the_plan_text_word_for_word():
    rows = [
        scan_plan.bucket_row("artifacts.p-1.appspot.com", {"objects": 1234, "bytes": 5 * 10**9, "basis": "listed"}, US),
        scan_plan.bucket_row(
            "eu.artifacts.p-2.appspot.com", {"objects": 160, "bytes": 1600, "basis": "sampled"}, {"location": "EU"}
        ),
        scan_plan.bucket_row(
            "mirror",
            {"objects": 1000, "bytes": 999_999, "basis": "at least"},
            {"location_type": "region", "storage_class": "NEARLINE"},
        ),
        scan_plan.bucket_row(
            "us.artifacts.p-3.appspot.com",
            {"error": "not allowed to list objects (denied)"},
            {"error": "bucket GET answered HTTP 403: denied"},
        ),
    ]
    sources = {"buckets": ["mirror"], "projects": ["p-1", "p-2", "p-3"], "organizations": [], "folders": ["folders/7"]}
    assert scan_plan.format_plan(scan_plan.build_plan(rows, sources, cores=2)) == "\n".join(
        [
            "plan: 4 bucket(s) from mirror, project p-1, project p-2, 2 more; no blob was read",
            "  bucket                        project       objects           bytes    $/month",
            "  artifacts.p-1.appspot.com     p-1             1,234          5.0 GB      $0.12",
            "  mirror                        -              ≥1,000         ≥1.0 MB     <$0.01",
            "  eu.artifacts.p-2.appspot.com  p-2              ~160         ~1.6 kB    unknown",
            "  us.artifacts.p-3.appspot.com  p-3           unknown         unknown    unknown",
            "total: 2,394 objects, 5.0 GB, $0.12 a month at list prices (some sizes estimated or cut short: see below)",
            "unknown:",
            "  mirror: objects and bytes at least (the listing was cut short)",
            "  eu.artifacts.p-2.appspot.com: objects and bytes estimated from 1/16 of the names",
            f"  eu.artifacts.p-2.appspot.com: {NOT_REPORTED}",
            "  us.artifacts.p-3.appspot.com: objects and bytes: not allowed to list objects (denied)",
            "  us.artifacts.p-3.appspot.com: monthly cost: bucket GET answered HTTP 403: denied",
            "  the estimates leave out the 1 bucket(s) that could not be listed",
            "estimate (the cost model of docs/production.md):",
            "  local, 2 core(s): about 42s (6.1 CPU-s; 40.0 s to move the bytes at an assumed 125 MB/s)",
            "  Dataflow, 20 x n2-standard-4: about 6m01s, about $0.56 ($0.56 compute, <$0.01 requests) "
            "plus network up to $0.10",
            "choose: local (about 42s here, no Dataflow start-up or cost); docs/fleet.md explains the choice",
        ]
    )


def test_a_narrow_plan_keeps_its_headings_and_names_four_sources_in_full():
    rows = [
        scan_plan.bucket_row("b1", {"objects": 0, "bytes": 0, "basis": "listed"}, {}),
        scan_plan.bucket_row("b2", {"objects": 3, "bytes": 999, "basis": "listed"}, {}),
    ]
    sources = {"buckets": ["b1", "b2"], "projects": ["p"], "folders": ["folders/1"]}
    text = scan_plan.format_plan(scan_plan.build_plan(rows, sources, cores=1))
    assert text.splitlines()[:5] == [
        "plan: 2 bucket(s) from b1, b2, project p, folders/1; no blob was read",
        "  bucket  project       objects           bytes    $/month",
        "  b2      -                   3           999 B    unknown",
        "  b1      -                   0             0 B    unknown",
        "total: 3 objects, 999 B, unknown a month at list prices",
    ]
    # Every size was listed, so no estimate warning; the unknown prices are still listed.
    assert text.splitlines()[5:8] == ["unknown:", f"  b2: {NOT_REPORTED}", f"  b1: {NOT_REPORTED}"]
    assert "could not be listed" not in text


def test_five_sources_name_three_and_count_the_rest():
    plan = scan_plan.build_plan([], {"projects": ["a", "b", "c", "d", "e"]}, cores=1)
    assert scan_plan.format_plan(plan).splitlines()[0] == (
        "plan: 0 bucket(s) from project a, project b, project c, 2 more; no blob was read"
    )


def test_the_dataflow_amounts_are_rounded_to_six_places_not_more():
    # One read ($0.0000004) and one list page ($0.000005): the seventh place is dropped, as everywhere.
    estimate = scan_plan.dataflow_estimate(1, 0, 1)
    assert (estimate["requests_usd"], estimate["usd_low"], estimate["usd_high"]) == (0.000005, 0.562005, 0.562005)
