"""Pure: every reclaim blocker and source verdict word for word, and the soft-delete note's boundaries.

The blockers are what an auditor reads in ``summary.json`` to learn why a bucket's unreferenced
blobs may not be deleted, so each is checked as a whole: bucket, code, source, reason, manifests.
"""

from __future__ import annotations

from collections import Counter

import pytest

from pipeline.core.reclaim import Evidence, decide, reclaim_summary, soft_delete_note, source_facts, sum_evidence
from pipeline.manifest_config import SourceSpec

BUCKET = "artifacts.p.appspot.com"
OTHER = "eu.artifacts.p.appspot.com"
LEGACY = SourceSpec(kind="legacy", location=BUCKET, bucket=BUCKET)
GCR = SourceSpec(kind="registry", location="https://gcr.io", gcr_projects=("p",), bucket=BUCKET)
GCR_LABEL = "registry https://gcr.io (gcr_projects: p)"
LEGACY_LABEL = f"legacy metadata gs://{BUCKET}/containers/repositories/"
UNREAD_REASON = (
    "manifest(s) or listing(s) could not be read, parsed or verified "
    "(manifest_unavailable, invalid_manifest, manifest_digest_mismatch, unverifiable_digest): "
    "blobs only they reference look unreferenced"
)
PARTIAL_REASON = "repository(ies) answered tags/list without a `manifest` map: their untagged manifests cannot be seen"


def blocker(code, reason, source=None, manifests=(), total=0, bucket=BUCKET):
    return {
        "bucket": bucket,
        "code": code,
        "source": source,
        "reason": reason,
        "manifests": list(manifests),
        "manifests_total": total,
    }


def facts(*specs, buckets=(BUCKET,)):
    return [source_facts(i, spec, buckets) for i, spec in enumerate(specs)]


@pytest.mark.parametrize(
    "spec, label, complete, reason",
    [
        (
            SourceSpec(kind="registry", location="https://gcr.io", gcr_projects=("p", "example.com/q"), bucket=BUCKET),
            "registry https://gcr.io (gcr_projects: p, example.com/q)",
            True,
            "GCR / Artifact Registry walk: each repository's tags/list `manifest` map lists untagged manifests too",
        ),
        (
            SourceSpec(kind="registry", location="https://gcr.io", gcr_projects=("p", "p/a", "p/b"), bucket=BUCKET),
            "registry https://gcr.io (gcr_projects: p, p/a, p/b)",
            False,
            "walks only part of a project (p/a, p/b): other repositories use the bucket too",
        ),
        (
            SourceSpec(kind="registry", location="http://r:5000", repositories=("a/b", "c"), bucket=BUCKET),
            "registry http://r:5000 (repositories: a/b, c)",
            False,
            "reads only the repositories it names: manifests of every other repository are not seen",
        ),
        (
            SourceSpec(kind="registry", location="http://r:5000", bucket=BUCKET),
            "registry http://r:5000 (catalog walk)",
            False,
            "a v2 registry walked through _catalog and tags/list cannot see untagged manifests",
        ),
        (
            SourceSpec(kind="directory", location="/m", bucket=BUCKET),
            "directory /m",
            False,
            "a folder holds only what was put in it; set `complete: true` and `bucket:` on the source if it "
            "holds every manifest (untagged ones too) whose blobs use that bucket",
        ),
        (
            SourceSpec(kind="oci_layout", location="/l", bucket=BUCKET),
            "oci_layout /l",
            False,
            "an OCI layout holds only what was put in it; set `complete: true` and `bucket:` on the source if it "
            "holds every manifest (untagged ones too) whose blobs use that bucket",
        ),
        (
            SourceSpec(kind="directory", location="/m", complete=True),
            "directory /m",
            False,
            "`complete: true` without `bucket:`: a folder holds only what was put in it, so it can speak "
            "for a bucket only when the config names that bucket",
        ),
        (
            SourceSpec(kind="oci_layout", location="/l", complete=True),
            "oci_layout /l",
            False,
            "`complete: true` without `bucket:`: an OCI layout holds only what was put in it, so it can speak "
            "for a bucket only when the config names that bucket",
        ),
        (
            SourceSpec(kind="directory", location="/m", complete=True, bucket=BUCKET),
            "directory /m",
            True,
            f"the config says `complete: true` for bucket {BUCKET}: the folder holds every manifest whose blobs use it",
        ),
        (
            SourceSpec(kind="oci_layout", location="/l", complete=True, bucket=BUCKET),
            "oci_layout /l",
            True,
            f"the config says `complete: true` for bucket {BUCKET}: the OCI layout holds every manifest "
            "whose blobs use it",
        ),
        (
            LEGACY,
            LEGACY_LABEL,
            True,
            "the bucket's own pre-2017 metadata lists every manifest it kept",
        ),
    ],
)
def test_each_source_is_labelled_and_judged_word_for_word(spec, label, complete, reason):
    (fact,) = facts(spec)
    assert (fact.index, fact.kind, fact.label, fact.bucket) == (0, spec.kind, label, spec.bucket)
    assert fact.complete is complete
    assert fact.reason == reason


def test_a_bucketless_complete_source_among_several_buckets_is_incomplete_and_says_how_many():
    spec = SourceSpec(kind="registry", location="https://gcr.io", gcr_projects=("p",))
    fact = source_facts(3, spec, iter([BUCKET, OTHER, "asia." + BUCKET]))
    assert fact.index == 3 and fact.complete is False
    assert fact.reason == (
        "names no `bucket` while 3 buckets are scanned: set `bucket:` to the one bucket whose blobs these manifests use"
    )


def test_an_unknown_source_kind_is_refused_by_name():
    with pytest.raises(ValueError, match=r"^unknown manifest source kind 'gcs'$"):
        source_facts(0, SourceSpec(kind="gcs", location="gs://x"), [BUCKET])


def test_without_a_cross_check_every_bucket_is_blocked_not_only_the_first():
    verdict = decide(facts(GCR, LEGACY), [BUCKET, OTHER], Evidence(), cross_checked=False)
    reason = "scan.mode is names: no manifest was read, so no blob is known to be unused"
    assert verdict == {
        BUCKET: [blocker("not_cross_checked", reason)],
        OTHER: [blocker("not_cross_checked", reason, bucket=OTHER)],
    }


def test_an_unguarded_run_is_blocked_and_says_why_the_second_guard_cannot_run():
    assert decide(facts(GCR, LEGACY), [BUCKET], Evidence(), cross_checked=True, guarded=False) == {
        BUCKET: [
            blocker(
                "bucket_evidence_unread",
                "image recovery did not read every object (scan.recover_images: false, scan.mode manifests, "
                "or an incremental scan): the images the bucket itself shows are unknown, so the second "
                "guard cannot run",
            )
        ]
    }


def test_a_bucket_with_no_source_at_all_has_both_source_blockers_in_order():
    assert decide([], [BUCKET], Evidence(), cross_checked=True) == {
        BUCKET: [
            blocker(
                "no_registry_source",
                "no manifest source other than legacy metadata covers this bucket: since 2017 GCR keeps "
                "manifests in the registry, not in the bucket",
            ),
            blocker(
                "legacy_not_read",
                "manifests.legacy_metadata is false: pre-2017 metadata under containers/repositories/ "
                "was not read, and it may still reference blobs",
            ),
        ]
    }


def test_an_incomplete_source_blocks_with_its_code_label_and_reason():
    catalog = SourceSpec(kind="registry", location="http://r:5000", bucket=BUCKET)
    assert decide(facts(catalog, LEGACY), [BUCKET], Evidence(), cross_checked=True)[BUCKET] == [
        blocker(
            "incomplete_source",
            "not complete: a v2 registry walked through _catalog and tags/list cannot see untagged manifests",
            "registry http://r:5000 (catalog walk)",
        )
    ]


def test_partial_listings_and_unread_manifests_are_counted_and_named_per_source():
    evidence = sum_evidence(
        [
            Evidence.of_partial(0, "gcr.io/p/b"),
            Evidence.of_partial(0, "gcr.io/p/a"),
            Evidence.of_partial(0, "gcr.io/p/a"),
        ]
        + [Evidence.of_unread(0, "gcr.io/p/a@sha256:01"), Evidence.of_unread(1, "gs://b/x")]
    )
    assert decide(facts(GCR, LEGACY), [BUCKET], evidence, cross_checked=True)[BUCKET] == [
        blocker("partial_listing", f"3 {PARTIAL_REASON}", GCR_LABEL, ["gcr.io/p/a", "gcr.io/p/b"], 3),
        blocker("unread_manifests", f"1 {UNREAD_REASON}", GCR_LABEL, ["gcr.io/p/a@sha256:01"], 1),
        blocker("unread_manifests", f"1 {UNREAD_REASON}", LEGACY_LABEL, ["gs://b/x"], 1),
    ]


def test_a_count_without_names_still_blocks_naming_none():
    # The monoid's fields are public: a count that arrives without its sample must block all the same.
    evidence = Evidence(partial=Counter({0: 2}), unread=Counter({1: 5}))
    assert decide(facts(GCR, LEGACY), [BUCKET], evidence, cross_checked=True)[BUCKET] == [
        blocker("partial_listing", f"2 {PARTIAL_REASON}", GCR_LABEL, [], 2),
        blocker("unread_manifests", f"5 {UNREAD_REASON}", LEGACY_LABEL, [], 5),
    ]


def test_partial_listings_merge_their_names_across_workers():
    merged = Evidence.of_partial(2, "r/b") + Evidence.of_partial(2, "r/a") + Evidence.of_unread(2, "m")
    assert merged.partial == Counter({2: 2}) and merged.partial_names == {2: ("r/a", "r/b")}
    assert merged.unread == Counter({2: 1}) and merged.unread_names == {2: ("m",)}


@pytest.mark.parametrize(
    "facts_, note",
    [
        (None, "unknown: the bucket's metadata was not read"),
        ({}, "unknown: the bucket's metadata was not read"),
        (
            {"error": "bucket GET answered HTTP 403"},
            "unknown: bucket GET answered HTTP 403 (GCS keeps deleted objects 7 days by default)",
        ),
        (
            {"soft_delete_reported": False},
            "unknown: the server reported no soft-delete policy (an emulator, or an API that omits it); "
            "GCS keeps deleted objects 7 days by default",
        ),
        (
            {"soft_delete_reported": True, "soft_delete_retention_seconds": None},
            "soft delete is off: deleted bytes stop being billed at once",
        ),
        (
            {"soft_delete_reported": True, "soft_delete_retention_seconds": 0},
            "soft delete is off: deleted bytes stop being billed at once",
        ),
        # Below a day the note counts seconds; from one day up it counts days.
        (
            {"soft_delete_reported": True, "soft_delete_retention_seconds": 1},
            "deleted objects stay restorable, and billed at their storage class, for 1 second(s) (soft delete)",
        ),
        (
            {"soft_delete_reported": True, "soft_delete_retention_seconds": 86399},
            "deleted objects stay restorable, and billed at their storage class, for 86399 second(s) (soft delete)",
        ),
        (
            {"soft_delete_reported": True, "soft_delete_retention_seconds": 86400},
            "deleted objects stay restorable, and billed at their storage class, for 1 day(s) (soft delete)",
        ),
        (
            {"soft_delete_reported": True, "soft_delete_retention_seconds": 129600},
            "deleted objects stay restorable, and billed at their storage class, for 1.5 day(s) (soft delete)",
        ),
    ],
)
def test_the_soft_delete_note_word_for_word(facts_, note):
    assert soft_delete_note(facts_) == note


def test_a_proven_bucket_reclaims_its_unreferenced_bytes_less_those_the_second_guard_keeps():
    gib = 1024**3
    summary = reclaim_summary(
        {BUCKET: []},
        {
            BUCKET: {
                "location": "US",
                "location_type": "MULTI-REGION",
                "storage_class": "STANDARD",
                "soft_delete_reported": True,
                "soft_delete_retention_seconds": 604800,
            }
        },
        unreferenced=Counter({(BUCKET, "objects"): 5, (BUCKET, "bytes"): 5 * gib}),
        # Two blobs of a whole image the bucket shows stay out of the plan; one accepted loss is planned.
        protected=Counter(
            {
                (BUCKET, "objects"): 2,
                (BUCKET, "bytes"): 2 * gib,
                (BUCKET, "accepted_objects"): 1,
                (BUCKET, "accepted_bytes"): gib,
            }
        ),
        planned_bytes=Counter({(BUCKET, "STANDARD"): 2 * gib}),
        planned_objects=Counter({BUCKET: 2}),
        unpinned=Counter({BUCKET: 1}),
    )
    assert summary["reclaimable_bytes"] == 3 * gib
    assert summary["reclaim_by_bucket"] == {
        BUCKET: {
            "reclaim_proven": True,
            "unreferenced_objects": 5,
            "unreferenced_bytes": 5 * gib,
            "reclaimable_bytes": 3 * gib,
            "protected_objects": 2,
            "protected_bytes": 2 * gib,
            "accepted_objects": 1,
            "accepted_bytes": gib,
            "plan_objects": 2,
            "plan_bytes": 2 * gib,
            "unpinned_objects": 1,
            "location": "US",
            "location_type": "multi-region",
            "location_type_from": "bucket metadata",
            "default_storage_class": "STANDARD",
            "soft_delete_retention_seconds": 604800,
            "soft_delete": "deleted objects stay restorable, and billed at their storage class, for 7 day(s) "
            "(soft delete)",
        }
    }


def test_a_bucket_without_a_verdict_is_blocked_as_not_evaluated_and_priced_by_its_gcr_name():
    summary = reclaim_summary(
        {},
        {},
        unreferenced=Counter({(OTHER, "objects"): 1, (OTHER, "bytes"): 7}),
        planned_bytes=Counter(),
        planned_objects=Counter(),
        unpinned=Counter(),
    )
    assert summary["reclaim_blocked_by"] == [
        blocker("not_evaluated", "not evaluated: no verdict was reached", bucket=OTHER)
    ]
    row = summary["reclaim_by_bucket"][OTHER]
    assert (row["reclaim_proven"], row["reclaimable_bytes"], row["protected_bytes"]) == (False, None, 0)
    assert (row["location_type"], row["location_type_from"]) == (
        "multi-region",
        "GCR bucket name (GCR buckets are US, EU or ASIA multi-region)",
    )
    assert summary["reclaimable_bytes"] is None and summary["reclaim_plan"] is None


def test_the_plan_names_only_the_buckets_it_deletes_from_and_their_soft_delete():
    summary = reclaim_summary(
        {BUCKET: [], OTHER: []},
        {OTHER: {"soft_delete_reported": True, "soft_delete_retention_seconds": 0}},
        unreferenced=Counter(
            {(BUCKET, "objects"): 1, (BUCKET, "bytes"): 10, (OTHER, "objects"): 2, (OTHER, "bytes"): 20}
        ),
        planned_bytes=Counter({(OTHER, "STANDARD"): 20}),
        planned_objects=Counter({OTHER: 2}),
        # The one blob of BUCKET has no generation, so no line of the plan may delete it.
        unpinned=Counter({BUCKET: 1}),
    )
    assert summary["reclaimable_bytes"] == 30
    plan = summary["reclaim_plan"]
    assert (plan["objects"], plan["bytes"], plan["buckets"]) == (2, 20, [OTHER])
    assert plan["soft_delete"] == {OTHER: "soft delete is off: deleted bytes stop being billed at once"}
