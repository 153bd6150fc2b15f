"""The decommission verdict's exact words (pipeline/core/decommission.py): every doubt, reason and headline."""

from __future__ import annotations

import pytest

from pipeline.core import decommission as dc
from tests.test_core_decommission import BUCKET, recovered

GB2 = 2_000_000_000
BY_BUCKET = {
    BUCKET: {
        "location_type": "multi-region",
        "default_storage_class": "STANDARD",
        "soft_delete": "7 days",
        "soft_delete_retention_seconds": 604800,
    }
}
INCREMENTAL = (
    "an incremental run reads only new, changed and sampled objects: the images this bucket holds were not rebuilt "
    "from all of its blobs (a full scan gives the verdict)"
)


def verdict(facts: dc.BucketFacts, **context) -> dict:
    kwargs = {"cross_checked": True, "recovered": True, "unaccounted": 0, "reclaim_blocked_by": []} | context
    facts = dc.BucketFacts.of(BUCKET, dc.BYTES, GB2) + facts
    return dc.verdicts(facts, [BUCKET], run_dir="/r", reclaim_by_bucket=BY_BUCKET, **kwargs)[BUCKET]


def test_every_doubt_is_named_first_then_every_reason():
    facts = dc.BucketFacts.of(BUCKET, dc.OBJECTS, 10)
    for column, n in ((dc.READ_ERRORS, 2), (dc.NOT_HASHED, 3), (dc.MALFORMED, 1), (dc.IN_SUCCESSOR, 4)):
        facts = facts + dc.BucketFacts.of(BUCKET, column, n)
    facts = facts + dc.BucketFacts.of(BUCKET, dc.INCOMPLETE)
    blockers = [
        {"bucket": BUCKET, "code": "unread_manifests", "source": "registry https://gcr.io", "reason": "2 unread"},
        {"bucket": BUCKET, "code": "no_registry_source", "source": "legacy", "reason": "only legacy"},
        {"bucket": "other", "code": "partial_listing", "source": "walk", "reason": "another bucket's"},
    ]
    row = verdict(facts, cross_checked=False, recovered=False, unaccounted=5, reclaim_blocked_by=blockers)
    assert row["verdict"] == dc.CANNOT_TELL
    assert row["reasons"] == [
        "scan.mode is names: no manifest source was read, so who uses these blobs is unknown",
        "image recovery was off: the images this bucket holds were not rebuilt from its blobs (run with "
        "--recover-images, and scan.mode both)",
        "2 object(s) could not be read (read_error findings)",
        "3 object(s) were listed but not read (scan.mode manifests)",
        "5 listed object(s) of the run ended in no report row",
        "registry https://gcr.io: 2 unread",
        "1 object(s) under the prefix are not sha256-named blobs (malformed_name); they go with the bucket",
        "4 complete image(s) here are also in the successor registry",
        "1 image config(s) here lack a layer: not pullable, see recovered-*.jsonl",
    ]
    assert row["headline"] == (
        f"Cannot tell whether {BUCKET} can be deleted: scan.mode is names: no manifest source was read, "
        "so who uses these blobs is unknown."
    )
    assert (row["objects"], row["bytes"], row["monthly_cost"]["usd_per_month"]) == (10, GB2, 0.048428)
    assert (row["soft_delete"], row["soft_delete_retention_seconds"]) == ("7 days", 604800)


def test_an_incremental_run_cannot_tell_even_with_recovery_on():
    row = verdict(dc.recovered_facts(recovered()), incremental=True)
    assert row["reasons"] == [
        INCREMENTAL,
        "1 complete image(s) have their only copy here (no successor holds them): sha256:cccccccccccc…",
    ]
    assert row["headline"] == f"Cannot tell whether {BUCKET} can be deleted: {INCREMENTAL}."


@pytest.mark.parametrize(
    ("facts", "expected", "reasons", "headline"),
    [
        (
            dc.BucketFacts(),
            dc.SAFE,
            ["no image lives only here and no source other than a successor uses its blobs"],
            f"Safe to delete {BUCKET}: nothing lives only here. Saves $0.05 a month (2.0 GB).",
        ),
        (
            dc.recovered_facts(recovered()),
            dc.WOULD_LOSE,
            ["1 complete image(s) have their only copy here (no successor holds them): sha256:cccccccccccc…"],
            f"Deleting {BUCKET} loses 1 image(s) that exist nowhere else. Export them first (each image's "
            "registry-scrub export command is in summary.json and report.html); then it saves $0.05 a month.",
        ),
        (
            dc.in_use_entry(BUCKET, "registry https://gcr.io", "gcr.io/p/app", "sha256:" + "a" * 64, []),
            dc.IN_USE,
            [
                "1 image(s) of sources that are not a successor use blobs here: "
                "gcr.io/p/app@sha256:aaaaaaaaaaaa… (registry https://gcr.io)"
            ],
            f"{BUCKET} is in use: 1 image(s) of a registry or manifest folder still need its blobs. "
            "Migrate them first.",
        ),
    ],
)
def test_each_verdict_has_its_own_headline(facts, expected, reasons, headline):
    row = verdict(facts)
    assert (row["verdict"], row["reasons"], row["headline"]) == (expected, reasons, headline)
    assert dc.verdict_lines({BUCKET: row}) == [f"{expected}: {headline}"]


def test_a_bucket_without_metadata_is_priced_as_standard_and_says_soft_delete_is_unknown():
    facts = dc.BucketFacts.of(BUCKET, dc.BYTES, GB2)
    row = dc.verdicts(
        facts,
        [BUCKET, BUCKET],
        run_dir="/r",
        cross_checked=True,
        recovered=True,
        unaccounted=0,
        reclaim_blocked_by=[],
        reclaim_by_bucket={BUCKET: {"location_type": "multi-region"}},
    )
    assert list(row) == [BUCKET]
    assert row[BUCKET]["monthly_cost"]["usd_per_month"] == 0.048428
    assert row[BUCKET]["soft_delete"] == "unknown: the bucket's metadata was not read"
    assert row[BUCKET]["soft_delete_retention_seconds"] is None


def test_a_reason_names_three_images_and_counts_them_all():
    facts = dc.BucketFacts()
    for n in range(4):
        digest = f"sha256:{n}" + "0" * 63
        facts = facts + dc.in_use_entry(BUCKET, "folder gs://m", f"gcr.io/p/app-{n}", digest, [])
        facts = facts + dc.recovered_facts(recovered(config=digest))
    reasons = verdict(facts)["reasons"]
    assert reasons == [
        "4 image(s) of sources that are not a successor use blobs here: "
        "gcr.io/p/app-0@sha256:000000000000… (folder gs://m), gcr.io/p/app-1@sha256:100000000000… (folder gs://m), "
        "gcr.io/p/app-2@sha256:200000000000… (folder gs://m)",
        "4 complete image(s) have their only copy here (no successor holds them): "
        "sha256:000000000000…, sha256:100000000000…, sha256:200000000000…",
    ]


def test_a_facts_sum_keeps_the_lists_of_either_side():
    listed = dc.in_use_entry(BUCKET, "folder gs://m", "gcr.io/p/app", "sha256:" + "a" * 64, [])
    counted = dc.BucketFacts.of(BUCKET, dc.OBJECTS, 3)
    assert (listed + counted).listed(BUCKET, dc.IN_USE_LIST) == listed.listed(BUCKET, dc.IN_USE_LIST)
    assert (counted + listed).listed(BUCKET, dc.IN_USE_LIST) == listed.listed(BUCKET, dc.IN_USE_LIST)


def test_an_unpriced_bucket_says_so_in_every_headline():
    common = {"run_dir": "/r", "cross_checked": True, "recovered": True, "unaccounted": 0, "reclaim_blocked_by": []}
    safe = dc.verdicts(dc.BucketFacts.of("my-bucket", dc.BYTES, 10), ["my-bucket"], reclaim_by_bucket={}, **common)
    assert (
        safe["my-bucket"]["headline"]
        == "Safe to delete my-bucket: nothing lives only here. Saves an unpriced amount (10 B)."
    )
    lose = dc.verdicts(dc.recovered_facts(recovered(bucket="my-bucket")), ["my-bucket"], reclaim_by_bucket={}, **common)
    assert lose["my-bucket"]["headline"].endswith("then it saves an unpriced amount a month.")


def test_the_buckets_default_storage_class_prices_it():
    by_bucket = {BUCKET: {"location_type": "multi-region", "default_storage_class": "ARCHIVE"}}
    facts = dc.BucketFacts.of(BUCKET, dc.BYTES, GB2)
    row = dc.verdicts(
        facts,
        [BUCKET],
        run_dir="/r",
        cross_checked=True,
        recovered=True,
        unaccounted=0,
        reclaim_blocked_by=[],
        reclaim_by_bucket=by_bucket,
    )[BUCKET]
    assert row["monthly_cost"]["usd_per_month"] < 0.048428 / 4  # archive is a fraction of standard
    assert set(row) == {
        "verdict",
        "headline",
        "project",
        "reasons",
        "images_only_here",
        "images_only_here_total",
        "images_in_use",
        "images_in_use_total",
        "objects",
        "bytes",
        "monthly_cost",
        "soft_delete",
        "soft_delete_retention_seconds",
    }
