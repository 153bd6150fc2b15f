"""``--plan-only``'s arithmetic (pure), the listing that feeds it (against the real emulator),
and the pure half of discovery: which search results are GCR buckets, and the refusal lines."""

from __future__ import annotations

import hashlib

import pytest

from pipeline.adapters import gcs
from pipeline.core import scan_plan
from pipeline.core.discovery import Scope, bucket_name, gcr_buckets, refusal
from pipeline.core.eta import format_duration

FACTS = {"location": "US", "location_type": "multi-region", "storage_class": "STANDARD", "error": None}


def test_the_dataflow_estimate_reproduces_the_documented_10_tb_example():
    """docs/production.md: 10 TB in 1 M objects, about 13 min and about $1.60 plus up to $200 network."""
    estimate = scan_plan.dataflow_estimate(1_000_000, 10**13, largest_bucket_objects=1_000_000)
    assert format_duration(estimate["seconds"]) in ("12m49s", "12m50s")  # 6 min fixed + 403 s + per-object
    assert estimate["usd_low"] == pytest.approx(1.60, abs=0.03)
    assert estimate["requests_usd"] == pytest.approx(0.40, abs=0.01)
    assert estimate["network_usd_up_to"] == 200


def test_many_small_objects_in_one_bucket_are_bound_by_the_buckets_read_rate():
    estimate = scan_plan.dataflow_estimate(10_000_000, 10**10, largest_bucket_objects=10_000_000)
    assert estimate["seconds"] == scan_plan.DATAFLOW_FIXED_S + 10_000_000 / scan_plan.GCS_READS_PER_BUCKET_S


def test_local_time_is_the_cpu_or_the_link_whichever_is_slower():
    by_link = scan_plan.local_estimate(1000, 10**10, cores=8)  # 10 GB: 80 s over the link, 1.3 s of CPU a core
    assert by_link["seconds"] == pytest.approx(scan_plan.LOCAL_START_S + 80)
    by_cpu = scan_plan.local_estimate(2_000_000, 10**6, cores=1)  # small objects: 1,000 CPU-s
    assert by_cpu["seconds"] == pytest.approx(scan_plan.LOCAL_START_S + 1000, abs=0.1)


def test_a_bucket_row_says_what_is_unknown():
    listed = scan_plan.bucket_row(
        "artifacts.p-1.appspot.com", {"objects": 4, "bytes": 2 * 1024**3, "basis": "listed"}, FACTS
    )
    assert listed["project"] == "p-1"
    assert listed["usd_per_month"] == pytest.approx(2 * 0.000035616 * 730, rel=1e-4)
    assert listed["unknown"] == []
    refused = scan_plan.bucket_row(
        "eu.artifacts.p-2.appspot.com",
        {"error": "not allowed to list objects (denied)"},
        {"error": "bucket GET answered HTTP 403: denied"},
    )
    assert refused["objects"] is None and refused["usd_per_month"] is None
    assert refused["unknown"] == [
        "objects and bytes: not allowed to list objects (denied)",
        "monthly cost: bucket GET answered HTTP 403: denied",
    ]
    sampled = scan_plan.bucket_row("mirror-bucket", {"objects": 160, "bytes": 1600, "basis": "sampled"}, FACTS)
    assert sampled["project"] is None
    assert sampled["unknown"] == ["objects and bytes estimated from 1/16 of the names"]


def test_the_plan_sorts_by_cost_totals_what_is_known_and_chooses():
    rows = [
        scan_plan.bucket_row(
            "artifacts.small-1.appspot.com", {"objects": 10, "bytes": 10**6, "basis": "listed"}, FACTS
        ),
        scan_plan.bucket_row(
            "artifacts.big-1.appspot.com", {"objects": 10**6, "bytes": 10**13, "basis": "sampled"}, FACTS
        ),
        scan_plan.bucket_row("artifacts.hidden-1.appspot.com", {"error": "the bucket does not exist"}, {}),
    ]
    plan = scan_plan.build_plan(rows, {"organizations": ["organizations/1"]}, cores=2)
    assert [r["bucket"] for r in plan["buckets"]] == [
        "artifacts.big-1.appspot.com",
        "artifacts.small-1.appspot.com",
        "artifacts.hidden-1.appspot.com",
    ]
    assert plan["totals"] | {"usd_per_month": None} == {
        "buckets": 3,
        "objects": 10**6 + 10,
        "bytes": 10**13 + 10**6,
        "usd_per_month": None,
        "unpriced_buckets": 1,
        "unlisted_buckets": 1,
        "exact": False,
    }
    assert plan["choice"] == "dataflow"  # 10 TB over 125 MB/s is 22 hours here
    text = scan_plan.format_plan(plan)
    assert "plan: 3 bucket(s) from organizations/1; no blob was read" in text
    assert "~1,000,000" in text and "~10.0 TB" in text
    assert "  artifacts.hidden-1.appspot.com: objects and bytes: the bucket does not exist" in text
    assert "the estimates leave out the 1 bucket(s) that could not be listed" in text
    assert "choose: dataflow (about 22h14m here against" in text


def test_a_small_fleet_runs_locally():
    rows = [
        scan_plan.bucket_row("artifacts.p-1.appspot.com", {"objects": 31, "bytes": 2_100_000, "basis": "listed"}, FACTS)
    ]
    plan = scan_plan.build_plan(rows, {"buckets": ["artifacts.p-1.appspot.com"]}, cores=2)
    assert plan["choice"] == "local"
    assert "total: 31 objects, 2.1 MB, <$0.01 a month at list prices\n" in scan_plan.format_plan(plan)


def test_prefix_size_lists_exactly_then_samples_then_stops(storage_client, bucket):
    sizes = {}
    for i in range(40):
        content = f"plan {i}".encode()
        sizes["containers/images/sha256:" + hashlib.sha256(content).hexdigest()] = len(content)
        bucket.blob(list(sizes)[-1]).upload_from_string(content)
    bucket.blob("elsewhere/file").upload_from_string(b"not under the prefix")
    under_zero = [n for n in sizes if n.startswith("containers/images/sha256:0")]
    prefix = "containers/images/"
    exact = {"objects": 40, "bytes": sum(sizes.values()), "basis": "listed"}
    assert gcs.prefix_size(storage_client, bucket.name, prefix, 40) == exact
    sampled = gcs.prefix_size(storage_client, bucket.name, prefix, 39)
    assert sampled == {
        "objects": 16 * len(under_zero),
        "bytes": 16 * sum(sizes[n] for n in under_zero),
        "basis": "sampled",
    }
    assert len(under_zero) == 4  # these 40 contents, fixed
    # The sixteenth longer than the limit: the first listing's count is a lower bound.
    first = sorted(sizes)[: len(under_zero) - 1]  # a listing runs in name order
    assert gcs.prefix_size(storage_client, bucket.name, prefix, len(first)) == {
        "objects": len(first),
        "bytes": sum(sizes[n] for n in first),
        "basis": "at least",
    }


def test_only_gcr_buckets_are_kept_from_the_search_results():
    def result(name: str, asset_type: str = "storage.googleapis.com/Bucket") -> dict:
        return {"name": name, "assetType": asset_type, "project": "projects/1"}

    results = [
        result("//storage.googleapis.com/us.artifacts.p-1.appspot.com"),
        result("//storage.googleapis.com/artifacts.example.com:p-2.appspot.com"),
        result("//storage.googleapis.com/artifacts.p-1.appspot.com"),
        result("//storage.googleapis.com/artifacts.p-1.appspot.com"),  # twice: kept once
        result("//storage.googleapis.com/staging.p-1.appspot.com"),
        result("//storage.googleapis.com/p-1-uploads"),
        result(
            "//compute.googleapis.com/projects/p-1/zones/z/instances/artifacts.p-1.appspot.com",
            "compute.googleapis.com/Instance",
        ),
        result("//storage.googleapis.com/artifacts.p-1.appspot.com/containers"),
        {"name": None},
        "not a result",
    ]
    assert gcr_buckets(results) == [
        "artifacts.example.com:p-2.appspot.com",
        "artifacts.p-1.appspot.com",
        "us.artifacts.p-1.appspot.com",
    ]
    assert bucket_name({"name": "//storage.googleapis.com/b-1"}) == "b-1"  # assetType left out: still a bucket


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            404,
            {"error": {"code": 404, "message": "Folder not found", "status": "NOT_FOUND"}},
            "folders/9 (--scan-folder / source.folders): Cloud Asset Inventory (cloudasset.googleapis.com): "
            "folders/9 not found (Folder not found); check the number with "
            "`gcloud resource-manager folders list --organization=ORG_ID`",
        ),
        (
            401,
            None,
            "folders/9 (--scan-folder / source.folders): Cloud Asset Inventory (cloudasset.googleapis.com) refused "
            "the credentials (HTTP 401); run `gcloud auth application-default login`",
        ),
        (
            400,
            {"error": {"code": 400, "message": "bad\nsecond line", "status": "INVALID_ARGUMENT"}},
            "folders/9 (--scan-folder / source.folders): Cloud Asset Inventory (cloudasset.googleapis.com) answered "
            "INVALID_ARGUMENT (bad)",
        ),
    ],
)
def test_other_refusals_are_one_line_naming_the_fix(status, body, expected):
    assert refusal(Scope("folders", "9"), status, body) == expected
