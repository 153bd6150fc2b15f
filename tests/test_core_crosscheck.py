"""The manifest cross-check (pipeline/core/crosscheck.py): manifest records, their findings and
references, and the join of references with bucket objects, row by row.

These rows are what auditors read: every field and every ``detail`` is asserted whole, and each
rule on both sides (a finding where one is due, silence where none is).
"""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from pipeline.core import crosscheck as cc
from pipeline.core import manifests as m
from pipeline.core.findings import FINDING_FIELDS

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64
D4 = "sha256:" + "4" * 64
D5 = "sha256:" + "5" * 64
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OBJECT = f"containers/images/{D3}"


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _image_bytes(*layers: dict) -> bytes:
    layers = layers or ({"mediaType": LAYER, "digest": D2, "size": 20},)
    document = {
        "schemaVersion": 2,
        "mediaType": m.OCI_MANIFEST,
        "config": {"mediaType": CONFIG, "digest": D1, "size": 10},
        "layers": list(layers),
    }
    return json.dumps(document).encode()


def _index_bytes() -> bytes:
    children = [
        {"mediaType": m.OCI_MANIFEST, "digest": D4, "size": 40, "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": m.OCI_INDEX, "digest": D5, "size": 50},
    ]
    return json.dumps({"schemaVersion": 2, "mediaType": m.OCI_INDEX, "manifests": children}).encode()


def _row(**fields) -> dict:
    row = dict.fromkeys(FINDING_FIELDS)
    row.update(fields)
    return row


# --- records ---------------------------------------------------------------------------------


def test_a_new_record_before_its_outcome_is_known():
    record = cc.new_record(
        "gcr.io/p/app", D1, tags=["gcr.io/p/app:b", "gcr.io/p/app:a", "gcr.io/p/app:b"], parents=[D3, D2, D3],
        bucket="artifacts.p.appspot.com", source="gs://m/app.json", source_index=2,
    )  # fmt: skip
    assert record == {
        "repository": "gcr.io/p/app",
        "digest": D1,
        "claimed": True,
        "tags": ["gcr.io/p/app:a", "gcr.io/p/app:b"],
        "parents": [D2, D3],
        "bucket": "artifacts.p.appspot.com",
        "source": "gs://m/app.json",
        "sources": [2],
        "status": None,
        "http_status": None,
        "detail": None,
        "mismatch": None,
        "media_type": None,
        "size": None,
        "blobs": [],
        "children": [],
        "declared": [],
    }


def test_a_record_without_a_digest_is_unclaimed_and_source_zero_is_a_source():
    record = cc.new_record("r", None, source_index=0)
    assert (record["claimed"], record["sources"], record["tags"], record["parents"]) == (False, [0], [], [])
    assert cc.new_record("r", D1)["sources"] == []


def test_image_and_tag_names():
    assert cc.image_name("gcr.io/p/app", D1) == f"gcr.io/p/app@{D1}"
    assert cc.tag_name("gcr.io/p/app", "v1") == "gcr.io/p/app:v1"


def test_mark_unavailable_fills_the_outcome_and_returns_the_record():
    record = cc.new_record("r", D1)
    assert cc.mark_unavailable(record, "HTTP 503", 503) is record
    assert (record["status"], record["detail"], record["http_status"]) == (cc.UNAVAILABLE, "HTTP 503", 503)
    cc.mark_unavailable(record, "timed out")
    assert (record["detail"], record["http_status"]) == ("timed out", None)


def test_a_child_record_inherits_the_parent_and_keeps_what_the_index_declares():
    parent = cc.new_record("r", D1, tags=["r:v1"], parents=[D5], bucket="b", source="gs://b/x", source_index=3)
    child = cc.child_record(parent, D2, 40, m.OCI_MANIFEST)
    assert child == {
        **cc.new_record("r", D2, tags=["r:v1"], parents=[D5, D1], bucket="b", source="gs://b/x"),
        "sources": [3],
        "declared": [[D1, 40, m.OCI_MANIFEST]],
    }
    child["sources"].append(9)
    assert parent["sources"] == [3], "the child's sources are its own list"
    assert cc.child_record(parent, D2)["declared"] == [[D1, None, None]]
    assert cc.child_record({k: v for k, v in parent.items() if k != "sources"}, D2)["sources"] == []


# --- evaluate --------------------------------------------------------------------------------


def test_evaluate_fills_an_image_record():
    data = _image_bytes(
        {"mediaType": LAYER, "digest": D2, "size": 20},
        {"mediaType": LAYER, "digest": D3, "size": 30, "urls": ["https://example.invalid/l"]},
    )
    record = cc.new_record("r", _sha(data))
    parsed = cc.evaluate(record, data, "application/vnd.oci.image.manifest.v1+json; charset=utf-8")
    assert parsed is not None and parsed.digest == _sha(data)
    assert record["status"] == cc.OK and record["size"] == len(data) and record["mismatch"] is None
    assert record["media_type"] == m.OCI_MANIFEST and record["detail"] is None
    assert record["blobs"] == [["config", D1, 10, False], ["layer", D2, 20, False], ["layer", D3, 30, True]]
    assert record["children"] == [] and "chain_cut" not in record


def test_evaluate_fills_an_index_record_with_its_children():
    data = _index_bytes()
    record = cc.new_record("r", _sha(data), parents=[D1, D2, D3])  # three levels up: still followed
    cc.evaluate(record, data, None)
    assert record["status"] == cc.OK and record["media_type"] == m.OCI_INDEX and record["blobs"] == []
    assert record["children"] == [[D4, 40, "linux/amd64", m.OCI_MANIFEST], [D5, 50, None, m.OCI_INDEX]]


def test_an_index_four_levels_down_is_invalid_and_its_children_are_not_followed():
    data = _index_bytes()
    record = cc.new_record("r", _sha(data), parents=[D1, D2, D3, D4])
    assert cc.evaluate(record, data, None) is not None
    assert record["status"] == cc.INVALID and record["children"] == [] and record["chain_cut"] is True
    assert record["detail"] == "index nested more than 4 levels deep; children not followed"


def test_an_image_four_levels_down_is_read_as_usual():
    data = _image_bytes()
    record = cc.new_record("r", _sha(data), parents=[D1, D2, D3, D4, D5])
    cc.evaluate(record, data, None)
    assert record["status"] == cc.OK and len(record["blobs"]) == 2 and "chain_cut" not in record


def test_evaluate_records_bytes_that_do_not_hash_to_the_digest_asked_for():
    data = _image_bytes()
    record = cc.new_record("r", D5)
    cc.evaluate(record, data, None, D5, claimed_by="manifest map key")
    assert record["mismatch"] == {"actual": _sha(data), "claimed_by": "manifest map key"}
    assert record["status"] == cc.OK, "the bytes are still parsed and their blobs cross-checked"
    cc.evaluate(record, data, None)
    assert record["mismatch"]["claimed_by"] == "reference digest"


@pytest.mark.parametrize("header", [None, ""])
def test_evaluate_without_a_header_digest_trusts_the_bytes(header):
    data = _image_bytes()
    record = cc.new_record("r", _sha(data))
    cc.evaluate(record, data, None, header)
    assert record["mismatch"] is None


def test_evaluate_records_a_header_digest_that_disagrees():
    data = _image_bytes()
    record = cc.new_record("r", _sha(data))
    cc.evaluate(record, data, None, _sha(data))
    assert record["mismatch"] is None
    cc.evaluate(record, data, None, D5)
    assert record["mismatch"] == {"actual": _sha(data), "claimed_by": "Docker-Content-Digest header", "expected": D5}


def test_evaluate_records_why_a_manifest_is_invalid_and_the_type_it_was_served_as():
    data = b'{"schemaVersion": 2, "mediaType": 7}'
    record = cc.new_record("r", _sha(data))
    assert cc.evaluate(record, data, "Application/JSON; charset=utf-8") is None
    assert record["status"] == cc.INVALID and record["detail"] == "mediaType: expected a string, got a number"
    assert record["media_type"] == "application/json" and record["size"] == len(data)
    assert record["blobs"] == [] and record["children"] == []


def test_evaluate_applies_the_size_cap_asked_for():
    data = _image_bytes()
    record = cc.new_record("r", _sha(data))
    cc.evaluate(record, data, None, max_bytes=len(data) - 1)
    assert record["status"] == cc.INVALID
    assert record["detail"] == f"manifest is {len(data):,} bytes, above the {len(data) - 1:,}-byte limit"
    cc.evaluate(record, data, None, max_bytes=len(data))
    assert record["status"] == cc.OK


# --- merging records -------------------------------------------------------------------------


def _rec(status, digest=D1, mismatch=None, **fields):
    record = cc.new_record("r", digest, **fields)
    record["status"] = status
    record["mismatch"] = mismatch
    return record


@pytest.mark.parametrize(
    "statuses, best",
    [
        ([cc.UNAVAILABLE, cc.OK], cc.OK),
        ([cc.INVALID, cc.OK], cc.OK),
        ([cc.UNAVAILABLE, cc.INVALID], cc.INVALID),
        ([None, cc.UNAVAILABLE], cc.UNAVAILABLE),
        ([None, cc.INVALID, cc.UNAVAILABLE], cc.INVALID),
    ],
)
def test_merge_keeps_the_best_outcome(statuses, best):
    for order in (statuses, statuses[::-1]):
        assert cc.merge_records([_rec(s) for s in order])["status"] == best


def test_merge_prefers_the_reading_that_saw_a_digest_mismatch():
    mismatch = {"actual": D2, "claimed_by": "reference digest"}
    for order in ([_rec(cc.OK), _rec(cc.OK, mismatch=mismatch)], [_rec(cc.OK, mismatch=mismatch), _rec(cc.OK)]):
        assert cc.merge_records(order)["mismatch"] == mismatch


def test_merge_lets_a_chain_cut_outweigh_the_same_index_read_whole():
    whole = _rec(cc.OK)
    cut = _rec(cc.INVALID)
    cut.update(chain_cut=True, detail="index nested more than 4 levels deep; children not followed")
    for order in ([whole, cut], [cut, whole]):
        merged = cc.merge_records(order)
        assert merged["status"] == cc.INVALID and merged["chain_cut"] is True


def test_merge_unions_tags_parents_sources_buckets_and_declarations():
    a = _rec(cc.OK, tags=["r:b"], parents=[D3], bucket="y", source_index=1)
    a["declared"] = [[D3, 40, m.OCI_MANIFEST]]
    b = _rec(cc.UNAVAILABLE, tags=["r:a", "r:b"], parents=[D2], bucket="x", source_index=0)
    b["declared"] = [[D2, None, None], [D3, 40, m.OCI_MANIFEST]]
    c = _rec(cc.INVALID, bucket="y", source_index=1)
    c.pop("sources")
    c.pop("declared")
    merged = cc.merge_records([a, b, c])
    assert merged["tags"] == ["r:a", "r:b"] and merged["parents"] == [D2, D3]
    assert merged["sources"] == [0, 1] and merged["buckets"] == ["x", "y"]
    assert merged["declared"] == [[D2, None, None], [D3, 40, m.OCI_MANIFEST]]
    assert a["tags"] == ["r:b"], "the inputs are left as they were"


def test_merge_keeps_every_declaration_even_when_one_index_name_declares_two_things():
    # Bytes that do not hash to their name can make "the same" index declare a child twice.
    a, b = _rec(cc.OK), _rec(cc.OK)
    a["declared"] = [[D2, None, None]]
    b["declared"] = [[D2, 40, m.OCI_MANIFEST]]
    assert cc.merge_records([a, b])["declared"] == [[D2, 40, m.OCI_MANIFEST], [D2, None, None]]


def test_merge_with_an_unscoped_record_is_unscoped():
    assert cc.merge_records([_rec(cc.OK, bucket="x"), _rec(cc.OK)])["buckets"] == [None]


# --- names -----------------------------------------------------------------------------------


def test_images_of_a_record_are_itself_and_every_index_above():
    record = cc.new_record("r", D3, parents=[D2, D1])
    assert cc.images_of(record) == [f"r@{D1}", f"r@{D2}", f"r@{D3}"]


@pytest.mark.parametrize(
    "claimed, status, named",
    [(True, cc.INVALID, True), (False, cc.OK, True), (False, cc.INVALID, False), (False, cc.UNAVAILABLE, False)],
)
def test_a_file_that_names_no_digest_and_is_no_manifest_names_no_image(claimed, status, named):
    record = {**_rec(status), "claimed": claimed}
    assert cc.images_of(record) == ([f"r@{D1}"] if named else [])


def test_a_record_from_before_the_claimed_and_declared_fields_reads_as_claimed_and_undeclared():
    record = _rec(cc.INVALID, source="gs://b/m.json")
    del record["claimed"]
    assert cc.images_of(record) == [f"r@{D1}"]
    assert cc.manifest_label(record) == f"r@{D1}"
    assert cc.counts_as_scanned(record) is True
    read = {**_rec(cc.OK), "size": 100}
    del read["declared"]
    assert cc.record_findings(read) == []


@pytest.mark.parametrize(
    "status, claimed, scanned",
    [
        (cc.OK, True, True),
        (cc.OK, False, True),
        (cc.INVALID, True, True),
        (cc.INVALID, False, False),  # a file that is not a manifest
        (cc.UNAVAILABLE, True, False),
        (None, True, False),
    ],
)
def test_counts_as_scanned(status, claimed, scanned):
    assert cc.counts_as_scanned({**_rec(status), "claimed": claimed}) is scanned


# --- record findings -------------------------------------------------------------------------


def test_an_unavailable_child_manifest_in_full():
    record = cc.new_record("r", D3, tags=["r:latest", "r:v1"], parents=[D1, D2], bucket="b", source="gs://b/m/x")
    cc.mark_unavailable(record, "HTTP 404 MANIFEST_UNKNOWN", 404)
    assert cc.record_findings(record) == [
        _row(
            kind="manifest_unavailable",
            severity="error",
            bucket="b",
            object="m/x",
            repository="r",
            repositories=["r"],
            reference="latest",
            manifest_digest=D3,
            manifest_digests=[D3],
            digest=D3,
            images=[f"r@{D1}", f"r@{D2}", f"r@{D3}"],
            tags=["r:latest", "r:v1"],
            http_status=404,
            detail=f"HTTP 404 MANIFEST_UNKNOWN (child of {D1}, {D2})",
        )
    ]


def test_a_manifest_digest_mismatch_in_full():
    data = _image_bytes()
    record = cc.new_record("r", D5, source="/m/app.json")
    cc.evaluate(record, data, None)
    assert cc.record_findings(record) == [
        _row(
            kind="manifest_digest_mismatch",
            severity="error",
            object="/m/app.json",
            repository="r",
            repositories=["r"],
            reference=D5,
            manifest_digest=D5,
            manifest_digests=[D5],
            digest=D5,
            images=[f"r@{D5}"],
            tags=[],
            size=len(data),
            expected=D5,
            actual=_sha(data),
            detail=f"SHA-256 of the {len(data)} bytes served differs from the reference digest",
        )
    ]


def test_a_header_mismatch_names_what_the_header_said():
    data = _image_bytes()
    record = cc.new_record("r", _sha(data), parents=[D1])
    cc.evaluate(record, data, None, D5)
    (row,) = cc.record_findings(record)
    assert (row["expected"], row["actual"]) == (D5, _sha(data))
    assert row["detail"] == (
        f"SHA-256 of the {len(data)} bytes served differs from the Docker-Content-Digest header (child of {D1})"
    )


def test_an_invalid_manifest_in_full():
    data = b'{"schemaVersion": 2, "mediaType": 7}'
    record = cc.new_record("r", _sha(data), tags=["r:v1"], bucket="b", source="gs://other/m.json")
    cc.evaluate(record, data, m.OCI_MANIFEST)
    assert cc.record_findings(record) == [
        _row(
            kind="invalid_manifest",
            severity="error",
            object="gs://other/m.json",  # not in the record's bucket: named by its full path
            repository="r",
            repositories=["r"],
            reference="v1",
            manifest_digest=_sha(data),
            manifest_digests=[_sha(data)],
            digest=_sha(data),
            images=[f"r@{_sha(data)}"],
            tags=["r:v1"],
            size=len(data),
            actual=m.OCI_MANIFEST,
            detail="mediaType: expected a string, got a number",
        )
    ]


def test_an_unclaimed_file_that_is_no_manifest_names_no_image():
    record = cc.new_record("r", _sha(b"{"), source="gs://b/x")
    record["claimed"] = False
    cc.evaluate(record, b"{", None)
    (row,) = cc.record_findings(record)
    assert (row["kind"], row["manifest_digest"], row["manifest_digests"], row["images"]) == (
        "invalid_manifest",
        None,
        [],
        [],
    )
    assert row["digest"] == _sha(b"{") and row["object"] == "gs://b/x"


def test_a_tampered_invalid_manifest_is_reported_both_ways_mismatch_first():
    record = cc.new_record("r", D5)
    cc.evaluate(record, b"[]", None)
    assert [row["kind"] for row in cc.record_findings(record)] == ["manifest_digest_mismatch", "invalid_manifest"]


def test_a_good_manifest_has_no_findings():
    data = _image_bytes()
    record = cc.new_record("r", _sha(data))
    cc.evaluate(record, data, None)
    assert cc.record_findings(record) == []


@pytest.mark.parametrize(
    "tags, reference",
    [
        (["gcr.io:443/p/app:v2", "gcr.io:443/p/app:v3"], "v2"),  # a registry port is not the tag
        ([], D1),
    ],
)
def test_the_reference_is_the_first_tag_else_the_digest(tags, reference):
    record = cc.mark_unavailable(cc.new_record("gcr.io:443/p/app", D1, tags=tags), "x")
    (row,) = cc.record_findings(record)
    assert row["reference"] == reference


@pytest.mark.parametrize(
    "bucket, source, where",
    [
        ("b", "gs://b/containers/repositories/x", {"bucket": "b", "object": "containers/repositories/x"}),
        ("b", "gs://bb/x", {"bucket": None, "object": "gs://bb/x"}),
        ("b", "gs://b", {"bucket": None, "object": "gs://b"}),
        (None, "gs://b/x", {"bucket": None, "object": "gs://b/x"}),
        ("b", None, {"bucket": None, "object": None}),
    ],
)
def test_where_a_manifest_file_is_named(bucket, source, where):
    record = cc.mark_unavailable(cc.new_record("r", D1, bucket=bucket, source=source), "x")
    (row,) = cc.record_findings(record)
    assert {"bucket": row["bucket"], "object": row["object"]} == where


@pytest.mark.parametrize(
    "digest, claimed, source, label",
    [
        (D1, True, "gs://m/x", f"r@{D1}"),
        (D1, False, "gs://m/x", "gs://m/x"),
        (None, True, "/m/y", "/m/y"),
        (None, True, None, "r@None"),
    ],
)
def test_a_blocker_names_a_manifest(digest, claimed, source, label):
    record = {**cc.new_record("r", digest, source=source), "claimed": claimed}
    assert cc.manifest_label(record) == label


# --- what an index declares about its child ---------------------------------------------------


def _child(declared, data=None, media_type=None):
    data = data or _image_bytes()
    record = cc.new_record("r", _sha(data), parents=[D1])
    record["declared"] = declared
    cc.evaluate(record, data, media_type)
    return record, data


def test_a_child_served_as_declared_is_fine():
    record, data = _child([[D1, None, None]])
    assert cc.record_findings(record) == []
    record, data = _child([[D1, len(_image_bytes()), m.OCI_MANIFEST]])
    assert cc.record_findings(record) == []


def test_a_wrong_declared_size_is_a_size_mismatch_naming_the_index():
    record, data = _child([[D2, 7, m.OCI_MANIFEST]])
    (row,) = cc.record_findings(record)
    assert row == _row(
        kind="size_mismatch",
        severity="error",
        object=None,
        repository="r",
        repositories=["r"],
        reference=_sha(data),
        manifest_digest=_sha(data),
        manifest_digests=[_sha(data)],
        digest=_sha(data),
        images=[f"r@{D1}", f"r@{_sha(data)}"],
        tags=[],
        size=len(data),
        expected="7",
        actual=str(len(data)),
        detail=f"index {D2} declares this child manifest as 7 bytes; "
        f"the {len(data)} bytes served hash to the declared digest",
    )


def test_a_declared_size_of_zero_is_checked():
    record, data = _child([[D2, 0, None]])
    (row,) = cc.record_findings(record)
    assert (row["kind"], row["expected"]) == ("size_mismatch", "0")


def test_a_wrong_declared_type_is_an_invalid_manifest_naming_both_types():
    record, data = _child([[D2, None, m.DOCKER_MANIFEST], [D3, None, m.OCI_MANIFEST]])
    (row,) = cc.record_findings(record)
    assert (row["kind"], row["expected"], row["actual"], row["size"]) == (
        "invalid_manifest",
        m.DOCKER_MANIFEST,
        m.OCI_MANIFEST,
        len(data),
    )
    assert row["detail"] == f"index {D2} declares this child manifest as {m.DOCKER_MANIFEST}; it is {m.OCI_MANIFEST}"


def test_both_lies_of_one_index_are_reported_size_first():
    record, _ = _child([[D2, 1, m.DOCKER_MANIFEST]])
    assert [row["kind"] for row in cc.record_findings(record)] == ["size_mismatch", "invalid_manifest"]


def test_the_two_schema1_types_are_one_declared_type():
    data = json.dumps({"schemaVersion": 1, "fsLayers": [{"blobSum": D2}]}).encode()
    record, _ = _child([[D2, None, m.SCHEMA1_SIGNED]], data)
    assert record["media_type"] == m.SCHEMA1 and cc.record_findings(record) == []
    record, _ = _child([[D2, None, m.DOCKER_MANIFEST]], data)
    assert [row["kind"] for row in cc.record_findings(record)] == ["invalid_manifest"]


def test_declarations_are_only_checked_against_a_parsed_child():
    record, _ = _child([[D2, 1, m.DOCKER_MANIFEST]], b"[]")
    assert [row["kind"] for row in cc.record_findings(record)] == ["invalid_manifest"]
    record = cc.mark_unavailable(cc.new_record("r", D3), "gone")
    record["declared"] = [[D2, 1, m.DOCKER_MANIFEST]]
    assert [row["kind"] for row in cc.record_findings(record)] == ["manifest_unavailable"]
    record = _rec(cc.OK, D3)
    record["declared"] = [[D2, 1, m.DOCKER_MANIFEST]]
    assert cc.record_findings(record) == [], "no size read: nothing to compare"


# --- references ------------------------------------------------------------------------------


def test_references_name_the_manifest_itself_then_each_blob_per_bucket():
    record = _rec(cc.OK, D5, tags=["r:v1"], parents=[D4], bucket="a")
    record["blobs"] = [["config", D1, 10, False], ["layer", D2, 20, True], ["blobsum", D3, None, False]]
    record["buckets"] = ["a", "b"]
    base = {"repository": "r", "manifest_digest": D5, "images": [f"r@{D4}", f"r@{D5}"], "tags": ["r:v1"]}
    expected = []
    for bucket in ("a", "b"):
        expected += [
            (D5, {**base, "bucket": bucket, "role": "manifest", "size": None}),
            (D1, {**base, "bucket": bucket, "role": "config", "size": 10}),
            (D2, {**base, "bucket": bucket, "role": "foreign_layer", "size": 20}),
            (D3, {**base, "bucket": bucket, "role": "blobsum", "size": None}),
        ]
    assert cc.record_references(record) == expected


@pytest.mark.parametrize("buckets", [None, []])
def test_references_of_an_unmerged_record_use_its_own_bucket(buckets):
    record = _rec(cc.OK, D5, bucket="a")
    if buckets is not None:
        record["buckets"] = buckets
    assert [(d, ref["bucket"]) for d, ref in cc.record_references(record)] == [(D5, "a")]


# --- the join: damaged objects ----------------------------------------------------------------


def _ref(repo="r", manifest=D1, role="layer", size=10, bucket=None, tags=(), successor=False):
    ref = {
        "repository": repo,
        "manifest_digest": manifest,
        "images": [f"{repo}@{manifest}"],
        "tags": list(tags),
        "bucket": bucket,
        "role": role,
        "size": size,
    }
    if successor:
        ref["successor"] = True
    return ref


def _blob(size=10, bucket="b", intact=True, name=OBJECT):
    return {
        "bucket": bucket,
        "object": name,
        "generation": 17,
        "size": size,
        "crc32c": "AAAAAA==",
        "storage_class": "NEARLINE",
        "time_created": "2019-05-06T07:08:09Z",
        "intact": intact,
    }


def _damage(size=7, bucket="b", detail="bytes differ", kind="digest_mismatch"):
    return _row(kind=kind, severity="error", bucket=bucket, object=OBJECT, digest=D3, size=size, detail=detail)


def test_damage_names_the_images_it_breaks_and_the_size_declared():
    refs = [
        _ref(size=4000, tags=["r:v1"]),
        _ref(repo="s", manifest=D2, size=4000, tags=["s:v2"]),
        _ref(role="manifest", size=None, manifest=D4),
    ]
    (row,) = cc.classify_joined(D3, refs, [_blob(size=7, intact=False)], [_damage(7)])
    assert row == {
        **_damage(7),
        "images": [f"r@{D1}", f"s@{D2}"],
        "tags": ["r:v1", "s:v2"],
        "repositories": ["r", "s"],
        "manifest_digests": [D1, D2],
        "repository": None,
        "manifest_digest": None,
        "expected_size": 4000,
        "detail": "bytes differ; breaks 2 image(s); the manifest declares 4000 bytes",
    }


@pytest.mark.parametrize(
    "sizes, expected_size",
    [
        ([7], None),  # the declared size is the size read
        ([4000, 5000], None),  # manifests disagree: no one size to name
        ([None], None),
        ([4000, None], 4000),
        ([0], 0),
    ],
)
def test_the_declared_size_of_damage_is_named_only_when_the_manifests_agree_on_another(sizes, expected_size):
    refs = [_ref(manifest=f"sha256:{i}" + "0" * 63, size=size) for i, size in enumerate(sizes)]
    (row,) = cc.classify_joined(D3, refs, [_blob(size=7, intact=False)], [_damage(7, detail=None)])
    assert row["expected_size"] == expected_size
    note = f"breaks {len(sizes)} image(s)"
    assert row["detail"] == (note if expected_size is None else f"{note}; the manifest declares {expected_size} bytes")


def test_damage_without_references_in_its_bucket_passes_through_unchanged():
    damage = _damage(7)
    assert cc.classify_joined(D3, [_ref(bucket="elsewhere")], [], [damage]) == [
        damage,
        *cc.classify_joined(D3, [_ref(bucket="elsewhere")], []),
    ]
    assert cc.classify_joined(D3, [_ref(role="manifest", size=None)], [], [damage]) == [damage]
    assert damage["detail"] == "bytes differ", "the input row is not changed"


def test_a_damaged_object_gets_no_size_mismatch_on_top_even_if_listed_intact():
    # The listing says intact=None (not hashed) but an object finding exists for it.
    blob = _blob(size=7, intact=None)
    rows = cc.classify_joined(D3, [_ref(size=4000)], [blob], [_damage(7)])
    assert [row["kind"] for row in rows] == ["digest_mismatch"]


def test_a_damaged_copy_in_another_bucket_does_not_hide_a_size_mismatch_here():
    rows = cc.classify_joined(D3, [_ref(size=4000)], [_blob(size=7, bucket="b")], [_damage(7, bucket="a")])
    assert sorted(row["kind"] for row in rows) == ["digest_mismatch", "size_mismatch"]


def test_an_object_known_corrupt_from_its_listing_gets_no_size_mismatch():
    assert cc.classify_joined(D3, [_ref(size=4000)], [_blob(size=7, intact=False)]) == []


def test_an_unhashed_object_is_still_size_checked():
    rows = cc.classify_joined(D3, [_ref(size=4000)], [_blob(size=7, intact=None)])
    assert [row["kind"] for row in rows] == ["size_mismatch"]


# --- the join: present objects -----------------------------------------------------------------


def test_an_unreferenced_object_in_full():
    assert cc.classify_joined(D3, [_ref(bucket="a")], [_blob(bucket="b")])[0] == _row(
        kind="unreferenced_blob",
        severity="info",
        bucket="b",
        object=OBJECT,
        generation=17,
        size=10,
        crc32c="AAAAAA==",
        storage_class="NEARLINE",
        time_created="2019-05-06T07:08:09Z",
        digest=D3,
        detail="referenced by no manifest that was scanned",
    )


def test_a_size_mismatch_in_full():
    refs = [_ref(size=12, tags=["r:v1"]), _ref(repo="s", manifest=D2, size=12), _ref(manifest=D4, size=10)]
    assert cc.classify_joined(D3, refs, [_blob(size=10)]) == [
        _row(
            kind="size_mismatch",
            severity="error",
            bucket="b",
            object=OBJECT,
            generation=17,
            size=10,
            crc32c="AAAAAA==",
            storage_class="NEARLINE",
            time_created="2019-05-06T07:08:09Z",
            digest=D3,
            expected="12",
            actual="10",
            expected_size=12,
            images=[f"r@{D1}", f"s@{D2}"],
            tags=["r:v1"],
            repositories=["r", "s"],
            manifest_digests=[D1, D2],
            repository=None,
            manifest_digest=None,
            detail="manifest says 12 bytes, the object has 10; 2 image(s) affected",
        )
    ]


def test_each_declared_size_is_its_own_size_mismatch_smallest_first():
    refs = [_ref(size=30), _ref(manifest=D2, size=5), _ref(manifest=D4, size=30)]
    rows = cc.classify_joined(D3, refs, [_blob(size=10)])
    assert [(row["expected_size"], row["manifest_digests"]) for row in rows] == [(5, [D2]), (30, [D1, D4])]
    assert rows[0]["repository"] == "r" and rows[0]["manifest_digest"] == D2


def test_a_manifest_reference_has_no_size_to_compare():
    ref = _ref(role="manifest", size=99)
    assert cc.classify_joined(D3, [ref], [_blob(size=10)]) == []


def test_each_copy_is_checked_against_the_references_of_its_bucket():
    refs = [_ref(bucket="a", size=10), _ref(bucket="b", size=12, manifest=D2)]
    rows = cc.classify_joined(D3, refs, [_blob(bucket="a", size=10), _blob(bucket="b", size=10)])
    assert [(row["kind"], row["bucket"], row["manifest_digest"]) for row in rows] == [("size_mismatch", "b", D2)]


# --- the join: missing objects -----------------------------------------------------------------


def test_a_missing_blob_in_full():
    refs = [_ref(role="config", size=5, bucket="a", tags=["r:v1"]), _ref(repo="s", manifest=D2, size=5, bucket="a")]
    unreferenced, missing = cc.classify_joined(D3, refs, [_blob(bucket="b")])
    assert unreferenced["kind"] == "unreferenced_blob"
    assert missing == _row(
        kind="missing_blob",
        severity="error",
        bucket="a",
        digest=D3,
        size=5,
        expected=D3,
        images=[f"r@{D1}", f"s@{D2}"],
        tags=["r:v1"],
        repositories=["r", "s"],
        manifest_digests=[D1, D2],
        repository=None,
        manifest_digest=None,
        detail="config/layer referenced by 2 image(s) is not in bucket a",
    )


def test_a_blob_missing_from_every_scanned_bucket():
    (row,) = cc.classify_joined(D3, [_ref(size=5), _ref(manifest=D2, size=6), _ref(manifest=D4, size=None)], [])
    assert row["bucket"] is None and row["size"] is None, "the manifests disagree on its size"
    assert row["repository"] == "r" and row["manifest_digest"] is None
    assert row["detail"] == "layer referenced by 3 image(s) is not in any scanned bucket"


def test_an_unscoped_reference_is_satisfied_by_a_copy_in_any_bucket():
    assert cc.classify_joined(D3, [_ref()], [_blob(bucket="z")]) == []


def test_missing_blobs_are_listed_per_bucket_unscoped_first():
    refs = [_ref(bucket="b"), _ref(bucket="a"), _ref(), _ref(bucket="c")]
    rows = cc.classify_joined(D3, refs, [_blob(bucket="c")])
    assert [(row["kind"], row["bucket"]) for row in rows] == [
        ("missing_blob", "a"),
        ("missing_blob", "b"),
    ]
    rows = cc.classify_joined(D3, refs, [])
    assert [row["bucket"] for row in rows] == [None, "a", "b", "c"]


@pytest.mark.parametrize("role", ["manifest", "foreign_layer"])
def test_a_manifest_digest_or_a_foreign_layer_is_never_missing(role):
    assert cc.classify_joined(D3, [_ref(role=role)], []) == []


def test_a_blob_only_successor_images_need_is_in_the_registry_only():
    refs = [_ref(successor=True, size=5, bucket="a"), _ref(manifest=D2, successor=True, size=5, bucket="a")]
    (row,) = cc.classify_joined(D3, refs, [])
    assert (row["kind"], row["bucket"], row["size"], row["images"]) == (
        "in_registry_only",
        "a",
        5,
        [f"r@{D1}", f"r@{D2}"],
    )
    assert row["detail"] == (
        "held by the successor registry only (2 image(s)); not in bucket a, "
        "as expected for images pushed after the migration"
    )


def test_a_blob_any_other_image_needs_is_missing_for_it_alone():
    refs = [_ref(successor=True), _ref(repo="s", manifest=D2)]
    (row,) = cc.classify_joined(D3, refs, [])
    assert (row["kind"], row["images"]) == ("missing_blob", [f"s@{D2}"])


def test_evaluate_takes_the_type_the_manifest_was_served_as():
    data = json.dumps({"schemaVersion": 2, "manifests": []}).encode()
    record = cc.new_record("r", _sha(data))
    cc.evaluate(record, data, m.DOCKER_MANIFEST_LIST)
    assert (record["status"], record["media_type"]) == (cc.OK, m.DOCKER_MANIFEST_LIST)
    data = _image_bytes()
    record = cc.new_record("r", _sha(data))
    cc.evaluate(record, data, m.DOCKER_MANIFEST)
    assert (record["status"], record["media_type"]) == (cc.INVALID, m.DOCKER_MANIFEST)
    assert record["detail"] == f"served as {m.DOCKER_MANIFEST!r} but the document says {m.OCI_MANIFEST!r}"


def test_a_schema2_manifest_with_a_signature_envelope_added_is_a_digest_mismatch():
    # Served as OCI, the bytes must hash to the name; schema 1's payload rule must not apply.
    original = _image_bytes()
    header = {"formatLength": len(original) - 1, "formatTail": "fQ"}  # "}"
    protected = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    forged = original[:-1] + b', "signatures": [{"protected": "' + protected.encode() + b'"}]}'
    record = cc.new_record("r", _sha(original))
    cc.evaluate(record, forged, m.OCI_MANIFEST)
    assert record["mismatch"] == {"actual": _sha(forged), "claimed_by": "reference digest"}


def test_every_copy_is_judged_after_an_unreferenced_or_damaged_one():
    refs = [_ref(size=12, bucket="c")]
    blobs = [_blob(bucket="a"), _blob(bucket="b", intact=False), _blob(bucket="c", size=10)]
    rows = cc.classify_joined(D3, refs, blobs)
    assert [(row["kind"], row["bucket"]) for row in rows] == [
        ("unreferenced_blob", "a"),
        ("unreferenced_blob", "b"),
        ("size_mismatch", "c"),
    ]
    rows = cc.classify_joined(D3, [_ref(size=12)], [_blob(bucket="a", intact=False), _blob(bucket="b", size=10)])
    assert [(row["kind"], row["bucket"]) for row in rows] == [("size_mismatch", "b")]


def test_an_unscoped_missing_blob_comes_before_any_bucket_name():
    # GCS bucket names may start with a digit, which sorts before letters.
    rows = cc.classify_joined(D3, [_ref(bucket="0-mirror"), _ref()], [])
    assert [row["bucket"] for row in rows] == [None, "0-mirror"]


def test_a_registry_only_blob_does_not_hide_one_missing_from_a_later_bucket():
    refs = [_ref(successor=True, bucket="a"), _ref(repo="s", manifest=D2, bucket="b")]
    rows = cc.classify_joined(D3, refs, [])
    assert [(row["kind"], row["bucket"], row["digest"]) for row in rows] == [
        ("in_registry_only", "a", D3),
        ("missing_blob", "b", D3),
    ]
