"""Reclaim's second guard (pipeline/core/protection.py): which blobs the bucket shows whole, and accept_losing."""

from __future__ import annotations

import pytest

from pipeline.core import protection as pt

BUCKET = "artifacts.p.appspot.com"
CONFIG = "sha256:" + "c" * 64
OTHER = "sha256:" + "d" * 64
LAYER = "sha256:" + "1" * 64
LAYER_2 = "sha256:" + "2" * 64
MANIFEST = "sha256:" + "9" * 64
INDEX = "sha256:" + "8" * 64
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
ONE_DIGEST_ONLY = "expected an image config digest, sha256:<64 lowercase hex>"


def recovered(**changes) -> dict:
    """A complete ``recovered-*.jsonl`` row as pipeline/core/recovery.py writes it (five history steps)."""
    row = {
        "config_digest": CONFIG,
        "bucket": BUCKET,
        "config_size": 1200,
        "total_size": 90_000,
        "created": "2016-05-01T00:00:00Z",
        "os": "linux",
        "architecture": "amd64",
        "labels": {"team": "billing"},
        "history_head": ["FROM debian", "RUN apt-get update", "COPY app /app"],
        "history_tail": ["COPY app /app", "EXPOSE 8080", "CMD serve"],
        "history_count": 5,
        "complete": True,
        "layers": [
            {"digest": LAYER, "size": 60_000, "bucket": BUCKET},
            {"digest": LAYER_2, "size": 30_000, "bucket": BUCKET},
        ],
    }
    return row | changes


def manifest_fact(**changes) -> dict:
    """A manifest stored as a blob, as pipeline/core/recovery.py's sniffed_fact reports it."""
    fact = {
        "bucket": BUCKET,
        "object": f"containers/images/{MANIFEST}",
        "digest": MANIFEST,
        "size": 527,
        "media_type": DOCKER_MANIFEST,
        "config": CONFIG,
        "references": [CONFIG, LAYER, LAYER_2],
    }
    return fact | changes


# --- reclaim.accept_losing ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ([], ()),
        ("", ()),
        (CONFIG, (CONFIG,)),  # a single digest given as a string
        (f"{CONFIG},{OTHER}", (CONFIG, OTHER)),
        (f"{CONFIG}, {OTHER}", (CONFIG, OTHER)),
        ([f"{CONFIG},"], (CONFIG,)),  # a trailing comma names nothing more
        ((OTHER, CONFIG, OTHER), (OTHER, CONFIG)),  # the order given, each once
        ([f" {CONFIG} "], (CONFIG,)),
        (" all", pt.ALL),
        (["all "], pt.ALL),
        (["all,"], pt.ALL),
    ],
)
def test_accept_losing_reads_digests_and_all_as_a_person_types_them(value, expected):
    assert pt.check_accept_losing(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (f"{CONFIG}, all", "expected `all` alone, or a list of image config digests, not both"),
        (["all", "all"], "expected `all` alone, or a list of image config digests, not both"),
        ({"images": [CONFIG]}, "expected `all` or a list of image config digests (sha256:<64 lowercase hex>)"),
        (7, "expected `all` or a list of image config digests (sha256:<64 lowercase hex>)"),
        (["sha256:" + "C" * 64], f"[0] ('sha256:{'C' * 64}'): {ONE_DIGEST_ONLY}"),
        ([CONFIG, "sha256:" + "c" * 63], f"[1] ('sha256:{'c' * 63}'): {ONE_DIGEST_ONLY}"),
        ([CONFIG, "sha256:" + "c" * 65], f"[1] ('sha256:{'c' * 65}'): {ONE_DIGEST_ONLY}"),
        ([CONFIG, "c" * 64], f"[1] ('{'c' * 64}'): {ONE_DIGEST_ONLY}"),
        ([CONFIG, 7], f"[1] (7): {ONE_DIGEST_ONLY}"),
    ],
)
def test_accept_losing_refuses_with_the_offending_item_named(value, message):
    with pytest.raises(ValueError) as raised:
        pt.check_accept_losing(value)
    assert str(raised.value) == message


# --- what a person sees of a protected image ---------------------------------------------------


def test_a_recovered_image_is_described_by_the_documented_fields():
    assert pt.image_facts(recovered()) == {
        "config_digest": CONFIG,
        "bucket": BUCKET,
        "bytes": 91_200,  # every layer and the config
        "created": "2016-05-01T00:00:00Z",
        "os": "linux",
        "architecture": "amd64",
        "labels": {"team": "billing"},
        "last_history": "CMD serve",
        "history": [
            "FROM debian",
            "RUN apt-get update",
            "COPY app /app",
            "COPY app /app",
            "EXPOSE 8080",
            "CMD serve",
        ],
        "history_count": 5,
        "via": "config and every layer in the bucket",
    }


def test_an_image_without_layers_or_history_is_its_config_alone():
    # An image built from scratch with nothing added: no layer, no history step.
    row = recovered(total_size=0, layers=[], history_head=[], history_tail=[], history_count=0, labels={})
    facts = pt.image_facts(row)
    assert (facts["bytes"], facts["last_history"], facts["history"], facts["history_count"]) == (1200, None, [], 0)
    assert pt.claims_of_recovered(row) == [(CONFIG, facts)]


def test_every_blob_of_a_complete_image_is_claimed_once():
    shared = {"digest": LAYER, "size": 60_000, "bucket": BUCKET}  # the same layer twice in one image
    claims = pt.claims_of_recovered(recovered(layers=[shared, shared]))
    assert [digest for digest, _ in claims] == [CONFIG, LAYER]


def test_an_image_manifest_stored_as_a_blob_claims_for_its_config():
    claims = pt.claims_of_manifest_blob(manifest_fact())
    expected = {
        "config_digest": CONFIG,
        "bucket": BUCKET,
        "bytes": 527,
        "created": None,
        "os": None,
        "architecture": None,
        "labels": {},
        "last_history": None,
        "history": [],
        "history_count": 0,
        "via": f"manifest {MANIFEST} stored as a blob ({DOCKER_MANIFEST})",
        "manifest_digest": MANIFEST,
    }
    assert claims == [(MANIFEST, expected), (CONFIG, expected), (LAYER, expected), (LAYER_2, expected)]


def test_an_index_names_no_config_so_its_own_digest_names_the_image():
    fact = manifest_fact(digest=INDEX, size=310, media_type=OCI_INDEX, config=None, references=[MANIFEST, MANIFEST])
    claims = pt.claims_of_manifest_blob(fact)
    assert [digest for digest, _ in claims] == [INDEX, MANIFEST]
    facts = claims[0][1]
    assert (facts["config_digest"], facts["manifest_digest"], facts["bytes"]) == (INDEX, INDEX, 310)
    assert facts["via"] == f"manifest {INDEX} stored as a blob ({OCI_INDEX})"


# --- the guard ---------------------------------------------------------------------------------


def unreferenced(digest: str = LAYER, bucket: str = BUCKET) -> dict:
    return {"kind": "unreferenced_blob", "bucket": bucket, "digest": digest, "size": 60_000}


def test_a_blob_two_images_claim_stays_protected_until_both_are_accepted():
    rows = [unreferenced(), unreferenced(bucket="eu." + BUCKET)]
    this = pt.claims_of_recovered(recovered())[1][1]
    other = pt.claims_of_recovered(recovered(config_digest=OTHER))[1][1]
    claims = [other, this, this]  # one image may claim the same blob through two facts

    assert pt.guard(rows, claims, ()) == ([], [(rows[0], [this, other]), (rows[1], [this, other])])
    assert pt.guard(rows, claims, (CONFIG,)) == ([], [(rows[0], [other]), (rows[1], [other])])
    assert pt.guard(rows, claims, (OTHER,)) == ([], [(rows[0], [this]), (rows[1], [this])])
    assert pt.guard(rows, claims, (OTHER, CONFIG)) == (rows, [])
    assert pt.guard(rows, claims, pt.ALL) == (rows, [])


def test_accepting_an_image_that_does_not_claim_the_blob_frees_nothing():
    row = unreferenced()
    claim = pt.claims_of_recovered(recovered())[1][1]
    assert pt.guard([row], [claim], (OTHER,)) == ([], [(row, [claim])])
    assert pt.accepted(CONFIG, (OTHER,)) is False
    assert pt.accepted(CONFIG, ()) is False


def test_no_unreferenced_row_means_nothing_planned_and_nothing_held():
    claim = pt.claims_of_recovered(recovered())[1][1]
    assert pt.guard([], [claim], ()) == ([], [])
    assert pt.guard(iter([]), iter([]), ()) == ([], [])
