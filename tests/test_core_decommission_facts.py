"""Per-bucket facts behind the decommission verdict (pipeline/core/decommission.py): images in use, incomplete."""

from __future__ import annotations

from pipeline.core import decommission as dc
from pipeline.core.summary import Tally
from tests.test_core_decommission import BUCKET, OTHER, recovered, summary_of

MANIFEST = "sha256:" + "a" * 64
MANIFEST_2 = "sha256:" + "b" * 64
REGISTRY, FOLDER = "registry https://gcr.io", "folder gs://manifests/p"


def ref(bucket=BUCKET, sources=(0,), repository="gcr.io/p/app", digest=MANIFEST, tags=("gcr.io/p/app:v1",)):
    """A manifest reference as the cross-check keys it by blob digest (pipeline/transforms/manifests.py)."""
    return {
        "repository": repository,
        "manifest_digest": digest,
        "tags": list(tags),
        "bucket": bucket,
        "source_indexes": list(sources),
    }


def blob(bucket: str = BUCKET) -> dict:
    return {"bucket": bucket, "object": "containers/images/sha256:" + "1" * 64, "size": 900}


def test_every_image_of_a_serving_source_whose_blob_is_here_is_in_use():
    refs = [ref(sources=(0, 1)), ref(sources=(2,), repository="gcr.io/p/old", digest=MANIFEST_2, tags=())]
    # Source 2 is a successor (not serving): its copy does not need this bucket.
    assert dc.in_use_refs(refs, [blob()], {0: REGISTRY, 1: FOLDER}) == [
        ((BUCKET, REGISTRY, "gcr.io/p/app", MANIFEST), ["gcr.io/p/app:v1"]),
        ((BUCKET, FOLDER, "gcr.io/p/app", MANIFEST), ["gcr.io/p/app:v1"]),
    ]


def test_a_reference_counts_only_in_its_own_bucket_or_in_every_bucket_when_it_names_none():
    refs = [ref(bucket=OTHER, digest=MANIFEST_2), ref(bucket=None, tags=())]
    assert dc.in_use_refs(refs, [blob(), blob(OTHER)], {0: REGISTRY}) == [
        ((BUCKET, REGISTRY, "gcr.io/p/app", MANIFEST), []),
        ((OTHER, REGISTRY, "gcr.io/p/app", MANIFEST_2), ["gcr.io/p/app:v1"]),
        ((OTHER, REGISTRY, "gcr.io/p/app", MANIFEST), []),
    ]


def test_no_listed_blob_or_no_serving_source_means_nothing_in_use():
    assert dc.in_use_refs([ref()], [], {0: REGISTRY}) == []
    assert dc.in_use_refs([ref()], [blob()], {}) == []
    assert dc.in_use_refs([ref(sources=())], [blob()], {0: REGISTRY}) == []


def test_an_image_in_use_lists_its_tags_sorted_once():
    facts = dc.in_use_entry(BUCKET, REGISTRY, "gcr.io/p/app", MANIFEST, ["gcr.io/p/app:v2", "gcr.io/p/app:v1"] * 2)
    assert facts.listed(BUCKET, dc.IN_USE_LIST) == [
        {
            "source": REGISTRY,
            "repository": "gcr.io/p/app",
            "tags": ["gcr.io/p/app:v1", "gcr.io/p/app:v2"],
            "manifest_digest": MANIFEST,
        }
    ]
    row = summary_of(Tally(decommission=facts))["decommission"][BUCKET]
    assert row["images_in_use"][0]["tags"] == ["gcr.io/p/app:v1", "gcr.io/p/app:v2"]


def test_an_incomplete_image_is_counted_in_every_bucket_that_holds_a_blob_of_it():
    row = recovered(complete=False)
    row["layers"] = [{"digest": "sha256:" + "1" * 64, "size": 900, "bucket": OTHER}]
    facts = dc.recovered_facts(row)
    assert facts.counts == {(BUCKET, dc.INCOMPLETE): 1, (OTHER, dc.INCOMPLETE): 1}
    assert facts.lists == {}


def test_a_bucket_with_only_an_incomplete_image_is_safe_and_says_why():
    summary = summary_of(Tally(decommission=dc.recovered_facts(recovered(complete=False))))
    row = summary["decommission"][BUCKET]
    assert row["verdict"] == dc.SAFE
    assert row["reasons"] == ["1 image config(s) here lack a layer: not pullable, see recovered-*.jsonl"]


def test_a_capped_image_list_is_the_same_whatever_order_the_parts_merged_in():
    # Images of equal size: only the total order breaks the tie, so every runner keeps the same 20.
    parts = [dc.in_use_entry(BUCKET, REGISTRY, f"gcr.io/p/app-{i:02}", MANIFEST, []) for i in range(dc.IMAGES_KEPT + 1)]
    forward, backward = dc.BucketFacts(), dc.BucketFacts()
    for part in parts:
        forward = forward + part
    for part in reversed(parts):
        backward = backward + part
    kept = forward.listed(BUCKET, dc.IN_USE_LIST)
    assert kept == backward.listed(BUCKET, dc.IN_USE_LIST)
    assert len(kept) == dc.IMAGES_KEPT and forward.counts[(BUCKET, dc.IN_USE_LIST)] == dc.IMAGES_KEPT + 1
