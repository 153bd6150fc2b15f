"""Pure manifest logic: parsing all five media types, references, and classification of joined records."""

from __future__ import annotations

import base64
import json
import time

import pytest

from jobs.images import make_image, make_index, random_layer
from pipeline.core import crosscheck as cc
from pipeline.core import manifests as m
from pipeline.core.findings import FINDING_FIELDS
from pipeline.core.summary import Tally, build_summary, exit_status, sum_tallies

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def _cfg(digest: str = D1, size=1, **more) -> dict:
    return {"mediaType": CONFIG, "digest": digest, "size": size, **more}


def _layer(digest: str = D2, size=2, **more) -> dict:
    return {"mediaType": LAYER, "digest": digest, "size": size, **more}


@pytest.fixture(scope="module")
def images():
    base = random_layer(seed=11, size=2000)
    return (make_image([base, random_layer(seed=12, size=1000)], oci=True), make_image([base], oci=False))


def _schema1(signed: bool) -> tuple[bytes, str]:
    payload = json.dumps(
        {
            "schemaVersion": 1,
            "name": "library/old",
            "tag": "v1",
            "architecture": "amd64",
            "fsLayers": [{"blobSum": D1}, {"blobSum": D2}, {"blobSum": D1}],
            "history": [{"v1Compatibility": "{}"}] * 3,
        },
        indent=3,
    ).encode()
    if not signed:
        return payload, m.sha256_of(payload)
    length = len(payload) - 2  # payload ends with "\n}"

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    protected = b64(
        json.dumps(
            {"formatLength": length, "formatTail": b64(payload[length:]), "time": "2016-01-01T00:00:00Z"}
        ).encode()
    )
    signatures = json.dumps([{"header": {"alg": "ES256"}, "signature": "c2ln", "protected": protected}])
    signed_bytes = payload[:length] + b',\n   "signatures": ' + signatures.encode() + b"\n}"
    return signed_bytes, m.sha256_of(payload)


# --- parsing: the five media types ---------------------------------------------------------


def test_oci_manifest(images):
    oci, _ = images
    parsed = m.parse_manifest(oci.manifest, m.OCI_MANIFEST)
    assert parsed.media_type == m.OCI_MANIFEST
    assert parsed.digest == oci.digest
    assert [d.role for d in parsed.blobs] == ["config", "layer", "layer"]
    assert parsed.blobs[0].digest == oci.config_digest
    assert [d.size for d in parsed.blobs[1:]] == [len(layer.blob) for layer in oci.layers]
    assert not parsed.is_index


def test_docker_manifest_without_served_type(images):
    _, docker = images
    parsed = m.parse_manifest(docker.manifest)
    assert parsed.media_type == m.DOCKER_MANIFEST
    assert {d.digest for d in parsed.blobs} == set(docker.blobs)


@pytest.mark.parametrize("oci", [True, False])
def test_index_and_manifest_list(images, oci):
    data = make_index([(images[0], "linux", "amd64"), (images[1], "linux", "arm64")], oci=oci)
    parsed = m.parse_manifest(data, "application/vnd.oci.image.index.v1+json; charset=utf-8" if oci else None)
    assert parsed.media_type == (m.OCI_INDEX if oci else m.DOCKER_MANIFEST_LIST)
    assert parsed.is_index and not parsed.blobs
    assert [c.digest for c in parsed.children] == [images[0].digest, images[1].digest]
    assert [c.platform for c in parsed.children] == ["linux/amd64", "linux/arm64"]


def test_oci_without_media_type_is_inferred():
    doc = {"schemaVersion": 2, "config": _cfg(D1, 2), "layers": [_layer(D2, 3)]}
    assert m.parse_manifest(json.dumps(doc).encode()).media_type == m.OCI_MANIFEST
    assert m.parse_manifest(json.dumps({"schemaVersion": 2, "manifests": []}).encode()).media_type == m.OCI_INDEX


@pytest.mark.parametrize("signed", [False, True])
def test_schema1(signed):
    data, digest = _schema1(signed)
    parsed = m.parse_manifest(data, m.SCHEMA1_SIGNED if signed else m.SCHEMA1)
    assert parsed.media_type == (m.SCHEMA1_SIGNED if signed else m.SCHEMA1)
    assert [(d.role, d.digest, d.size) for d in parsed.blobs] == [("blobsum", D1, None), ("blobsum", D2, None)]
    # Signed schema 1 is addressed by the digest of its payload without signatures.
    assert parsed.digest == digest
    assert m.verify(data, digest, m.SCHEMA1_SIGNED) is None
    if signed:
        assert m.sha256_of(data) != digest


@pytest.mark.parametrize("served", [None, "application/json", "application/octet-stream", "text/plain", m.SCHEMA1])
def test_a_signed_schema1_manifest_served_generically_verifies_by_its_payload_digest(served):
    # Registries name it by the payload's digest; a generic or missing Content-Type was a false alarm.
    data, digest = _schema1(signed=True)
    assert m.verify(data, digest, served) is None
    record = cc.new_record("reg/old", digest, bucket="b")
    cc.evaluate(record, data, served)
    assert record["mismatch"] is None and cc.record_findings(record) == []


@pytest.mark.parametrize("served", [None, "application/json", m.OCI_MANIFEST])
def test_an_image_manifest_with_a_signature_envelope_appended_is_not_its_original(served):
    # The envelope's formatLength/formatTail rebuild the original bytes; only a schema 1
    # manifest is hashed that way, so these changed bytes must not pass as the original digest.
    original = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": m.OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": D1, "size": 2},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": D2, "size": 3}],
        }
    ).encode()

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    protected = b64(json.dumps({"formatLength": len(original) - 1, "formatTail": b64(b"}")}).encode())
    tampered = original[:-1] + b', "signatures": [{"protected": "' + protected.encode() + b'"}]}'
    assert m.sha256_of(tampered[: len(original) - 1] + b"}") == m.sha256_of(original)
    assert m.verify(tampered, m.sha256_of(original), served) == m.sha256_of(tampered)
    record = cc.new_record("reg/app", m.sha256_of(original), bucket="b")
    cc.evaluate(record, tampered, served)
    assert record["mismatch"] == {"actual": m.sha256_of(tampered), "claimed_by": "reference digest"}
    assert [f["kind"] for f in cc.record_findings(record)] == ["manifest_digest_mismatch"]


@pytest.mark.parametrize("served", [m.OCI_MANIFEST, m.DOCKER_MANIFEST])
def test_a_signed_schema1_manifest_served_as_another_type_is_hashed_as_plain_bytes(served):
    # Served as an image manifest, a document without a mediaType is one: the schema 1 rule is
    # not picked, the bytes are named by their SHA-256 alone, and the parser refuses it anyway.
    data, payload_digest = _schema1(signed=True)
    assert m.verify(data, payload_digest, served) == m.sha256_of(data)
    assert m.verify(data, m.sha256_of(data), served) is None
    with pytest.raises(m.ManifestError, match="schemaVersion: expected 2"):
        m.parse_manifest(data, served)
    # evaluate hashes by the type it was served with too, not by the bytes alone.
    record = cc.new_record("reg/old", payload_digest, bucket="b")
    cc.evaluate(record, data, served)
    assert record["mismatch"] == {"actual": m.sha256_of(data), "claimed_by": "reference digest"}


def _with_foreign_layer(digest: str, size: int, *more_layers: dict) -> bytes:
    """A Docker manifest whose first layer is foreign (non-distributable, fetched from its urls)."""
    foreign = {
        "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "digest": digest,
        "size": size,
        "urls": ["https://example.invalid/l"],
    }
    doc = {
        "schemaVersion": 2,
        "mediaType": m.DOCKER_MANIFEST,
        "config": _cfg(D1, 1),
        "layers": [foreign, *more_layers],
    }
    return json.dumps(doc).encode()


def test_foreign_layers_are_marked():
    parsed = m.parse_manifest(_with_foreign_layer(D2, 9, _layer(D3, 4)))
    assert [d.foreign for d in parsed.blobs] == [False, True, False]


# --- parsing: broken input -----------------------------------------------------------------


def _doc(**over):
    doc = {
        "schemaVersion": 2,
        "mediaType": m.OCI_MANIFEST,
        "config": _cfg(D1, 1),
        "layers": [_layer(D2, 2)],
    }
    doc.update(over)
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    "data, message",
    [
        (b'{"schemaVersion": 2, "layers": [', "not valid JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"[1, 2]", "expected a JSON object, got a list"),
        (b"{}", "neither manifests nor config"),
        (_doc(mediaType="application/vnd.example.thing+json"), "unknown media type"),
        (_doc(mediaType=7), "mediaType: expected a string"),
        (_doc(schemaVersion="2"), "schemaVersion: expected a number"),
        (_doc(schemaVersion=3), "schemaVersion: expected 2"),
        (_doc(layers={"digest": D2}), "layers: expected a list, got an object"),
        (_doc(layers=["sha256:abc"]), "layers[0]: image-spec descriptor: a descriptor must be a JSON object"),
        (_doc(config=_cfg("sha256:" + "A" * 64)), "config.digest: image-spec descriptor: a sha256 digest must be 64"),
        (_doc(config=_cfg("sha256:abc")), "a sha256 digest must be 64 lowercase hex digits"),
        (_doc(config=_cfg("sha512:" + "a" * 64)), "a sha512 digest must be 128 lowercase hex digits"),
        (_doc(config=_cfg("SHA256:" + "a" * 64)), "digest must match algorithm:encoded"),
        (_doc(config=_cfg("sha256" + "a" * 64)), "digest must match algorithm:encoded"),
        (_doc(config=_cfg(":abc")), "digest must match algorithm:encoded"),
        (_doc(config=_cfg("sha256:" + "a" * 63 + "/")), "digest must match algorithm:encoded"),
        (_doc(config=_cfg(7)), "config.digest: image-spec descriptor: digest must be a string (got a number)"),
        (_doc(config={"mediaType": CONFIG, "size": 1}), "config.digest: image-spec descriptor: digest is required"),
        (_doc(config=_cfg(size=None)), "config.size: image-spec descriptor: size is required"),
        (_doc(config=_cfg(size=-1)), "config.size: image-spec descriptor: size must be an int64 ≥ 0 (got -1)"),
        (_doc(config=_cfg(size=True)), "config.size: image-spec descriptor: size must be an int64 ≥ 0 (got True)"),
        (_doc(config=_cfg(size=1.5)), "config.size: image-spec descriptor: size must be an int64 ≥ 0 (got 1.5)"),
        (_doc(config=_cfg(size="1")), "config.size: image-spec descriptor: size must be an int64 ≥ 0 (got '1')"),
        (_doc(config=None, layers=[]), "config: image-spec descriptor: a descriptor must be a JSON object (got null)"),
        (_doc(config={"digest": D1, "size": 1}), "config.mediaType: image-spec descriptor: mediaType is required"),
        (_doc(config=_cfg(mediaType="tar")), "config.mediaType: image-spec descriptor: mediaType must follow RFC 6838"),
        (_doc(config=_cfg(mediaType=["a/b"])), "config.mediaType: image-spec descriptor: mediaType must be a string"),
        (_doc(layers=[_layer(urls="https://x/y")]), "layers[0].urls: image-spec descriptor: urls must be a list of"),
        (_doc(layers=[_layer(urls=[7])]), "layers[0].urls: image-spec descriptor: urls[0] must be a string"),
        (_doc(layers=[_layer(urls=["not a uri"])]), "urls[0] must be an RFC 3986 URI"),
        (_doc(layers=[_layer(annotations=["a"])]), "layers[0].annotations: image-spec annotations: annotations must"),
        (_doc(layers=[_layer(annotations={"k": 1})]), "image-spec annotations: the value of 'k' must be a string"),
        (_doc(annotations={"k": None}), "annotations: image-spec annotations: the value of 'k' must be a string"),
        (_doc(layers=[_layer(artifactType="x")]), "layers[0].artifactType: image-spec descriptor: artifactType must"),
        (_doc(artifactType=5), "artifactType: image-spec manifest: artifactType must be an RFC 6838 media type"),
        (
            _doc(config=_cfg(mediaType="application/vnd.oci.empty.v1+json")),
            "artifactType: image-spec manifest: artifactType must be set when config.mediaType is",
        ),
        (_doc(subject="sha256:abc"), "subject: image-spec descriptor: a descriptor must be a JSON object"),
        (_doc(subject=_cfg(size=-5)), "subject.size: image-spec descriptor: size must be an int64"),
        (_doc(layers=[_layer(data="!!")]), "layers[0].data: image-spec descriptor: data must be base64"),
        (_doc(layers=[_layer(data="YWJj", size=2)]), "data decodes to 3 bytes, size says 2"),
        (_doc(layers=[_layer(data="YWJj", size=3)]), "data does not hash to the descriptor's digest"),
        (
            json.dumps({"schemaVersion": 2, "mediaType": m.OCI_INDEX, "manifests": [_cfg(D1, None)]}).encode(),
            "manifests[0].size: image-spec descriptor: size is required",
        ),
        (
            json.dumps(
                {"schemaVersion": 2, "mediaType": m.OCI_INDEX, "manifests": [_cfg(D1, 1, platform={"os": "linux"})]}
            ).encode(),
            "manifests[0].platform.architecture: image-spec index platform: architecture is required",
        ),
        (
            json.dumps({"schemaVersion": 2, "mediaType": m.OCI_INDEX, "manifests": {}}).encode(),
            "manifests: expected a list, got an object",
        ),
        (b'{"schemaVersion": 2, "x": ' + b"9" * 5000 + b"}", "an integer of 5000 digits is beyond int64"),
        (b'{"schemaVersion": 9223372036854775808}', "integer 9223372036854775808 is beyond int64"),
        (b'{"schemaVersion": -9223372036854775809}', "is beyond int64"),
        (_doc(config=_cfg(size=2**63)), "integer 9223372036854775808 is beyond int64"),
        (b'{"schemaVersion": 2, "x": NaN}', "NaN is not JSON"),
        (b'{"schemaVersion": 2, "x": -Infinity}', "-Infinity is not JSON"),
        (b'{"schemaVersion": 2, "x": 1e999}', "number 1e999 is beyond a float's range"),
        (b'{"schemaVersion": 2, "schemaVersion": 2}', "key 'schemaVersion' appears twice in one object"),
        (b'{"schemaVersion": 2, "x": "\\udc80"}', "x '\\udc80': a lone surrogate is not a Unicode character"),
        (b'{"schemaVersion": 2, "\\ud800": 1}', "\\ud800 '\\ud800': a lone surrogate is not a Unicode character"),
        (b'{"schemaVersion": 2, "x": ["ok", {"y": "\\udfff"}]}', "x[1].y '\\udfff': a lone surrogate"),
        (b"\xef\xbb\xbf" + _doc(), "not valid JSON: Unexpected UTF-8 BOM"),
        (b"", "not valid JSON: Expecting value"),
        (b"\x00\x01\x02", "not valid JSON"),
        (b"\xed\xa0\x80", "not UTF-8 text"),  # a surrogate encoded as UTF-8 bytes
        (json.dumps({"schemaVersion": 1, "fsLayers": [{"blobSum": 5}]}).encode(), "fsLayers[0].blobSum"),
        (json.dumps({"schemaVersion": 1, "fsLayers": [{"blobSum": "sha256:12"}]}).encode(), "is not sha256"),
        (json.dumps({"schemaVersion": 1, "fsLayers": {"blobSum": D1}}).encode(), "fsLayers: expected a list"),
    ],
)
def test_broken_manifests_are_refused_with_a_reason(data, message):
    with pytest.raises(m.ManifestError, match=None) as err:
        m.parse_manifest(data)
    assert message in str(err.value)
    str(err.value).encode("utf-8")  # the reason goes into a report: it must be writable whatever the input


def test_served_type_contradicting_document():
    with pytest.raises(m.ManifestError, match="served as"):
        m.parse_manifest(_doc(), m.DOCKER_MANIFEST)


def test_truncated_real_manifest(images):
    with pytest.raises(m.ManifestError, match="not valid JSON"):
        m.parse_manifest(images[0].manifest[:-7], m.OCI_MANIFEST)


def test_huge_input_is_refused_before_parsing():
    data = b'{"schemaVersion": 2, "layers": [' + b'{"digest": "x", "size": 1},' * 200_000 + b"{}]}"
    started = time.monotonic()
    with pytest.raises(m.ManifestError, match="above the 4,194,304-byte limit"):
        m.parse_manifest(data)
    assert time.monotonic() - started < 1


def test_deeply_nested_input_is_refused_cleanly():
    data = b'{"schemaVersion": 2, "annotations": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(m.ManifestError, match="nested more than 32 levels"):
        m.parse_manifest(data)
    # Brackets inside strings do not count.
    ok = _doc(annotations={"x": "[[[[" * 100})
    assert m.parse_manifest(ok).media_type == m.OCI_MANIFEST


def test_too_many_descriptors():
    doc = {
        "schemaVersion": 2,
        "mediaType": m.OCI_INDEX,
        "manifests": [_cfg(D1, 1)] * (m.MAX_DESCRIPTORS + 1),
    }
    with pytest.raises(m.ManifestError, match="above the limit"):
        m.parse_manifest(json.dumps(doc).encode())


# --- records and references ----------------------------------------------------------------


def test_evaluate_and_references(images):
    oci, _ = images
    record = cc.new_record("reg/app", oci.digest, tags=["reg/app:v1"], bucket="b")
    parsed = cc.evaluate(record, oci.manifest, m.OCI_MANIFEST, oci.digest)
    assert parsed is not None and record["status"] == cc.OK and record["mismatch"] is None
    assert cc.record_findings(record) == []
    refs = cc.record_references(record)
    assert refs[0] == (
        oci.digest,
        {
            "repository": "reg/app",
            "manifest_digest": oci.digest,
            "images": [f"reg/app@{oci.digest}"],
            "tags": ["reg/app:v1"],
            "bucket": "b",
            "role": "manifest",
            "size": None,
        },
    )
    assert {d for d, _ in refs[1:]} == set(oci.blobs)
    assert all(r["images"] == [f"reg/app@{oci.digest}"] for _, r in refs)


def test_tampered_manifest_is_a_digest_mismatch_and_still_parsed(images):
    oci, _ = images
    tampered = oci.manifest.replace(b'"schemaVersion":2', b'"schemaVersion":2 ')
    record = cc.new_record("reg/app", oci.digest)
    assert cc.evaluate(record, tampered, None) is not None
    (row,) = cc.record_findings(record)
    assert row["kind"] == "manifest_digest_mismatch" and row["expected"] == oci.digest
    assert row["actual"] == m.sha256_of(tampered)
    assert row["images"] == [f"reg/app@{oci.digest}"]
    assert len(cc.record_references(record)) == 4  # its blobs are still cross-checked


def test_header_digest_disagreeing_is_a_mismatch(images):
    oci, _ = images
    record = cc.new_record("reg/app", oci.digest)
    cc.evaluate(record, oci.manifest, None, header_digest=D1)
    (row,) = cc.record_findings(record)
    assert row["kind"] == "manifest_digest_mismatch" and row["expected"] == D1
    assert "Docker-Content-Digest" in row["detail"]


def test_invalid_and_unavailable_children_name_their_index():
    parent = cc.new_record("reg/app", D1, tags=["reg/app:latest"])
    child = cc.child_record(parent, D2)
    cc.mark_unavailable(child, "HTTP 404 MANIFEST_UNKNOWN", 404)
    (row,) = cc.record_findings(child)
    assert row["kind"] == "manifest_unavailable" and row["http_status"] == 404
    assert row["images"] == [f"reg/app@{D1}", f"reg/app@{D2}"]
    assert row["tags"] == ["reg/app:latest"] and row["reference"] == "latest"
    assert D1 in row["detail"]
    broken = cc.new_record("reg/app", m.sha256_of(b"{"))
    assert cc.evaluate(broken, b"{", None) is None
    (row,) = cc.record_findings(broken)
    assert row["kind"] == "invalid_manifest" and "not valid JSON" in row["detail"]
    assert set(row) == set(FINDING_FIELDS)


def test_merge_records_keeps_best_outcome_and_all_tags():
    a = cc.mark_unavailable(cc.new_record("r", D1, parents=[D3]), "timeout")
    b = cc.new_record("r", D1, tags=["r:v2"])
    b["status"] = cc.OK
    merged = cc.merge_records([a, b])
    assert merged["status"] == cc.OK and merged["tags"] == ["r:v2"] and merged["parents"] == [D3]


def test_index_depth_cap(images):
    data = make_index([(images[0], "linux", "amd64")])
    record = cc.new_record("r", m.sha256_of(data), parents=[D1, D2, D3, "sha256:" + "4" * 64])
    cc.evaluate(record, data, None)
    assert record["status"] == cc.INVALID and "nested more than" in record["detail"]


# --- classification of joined records --------------------------------------------------------


def _ref(repo="r", manifest=D1, role="layer", size=10, tags=(), bucket=None, parents=()):
    return {
        "repository": repo,
        "manifest_digest": manifest,
        "images": sorted({f"{repo}@{manifest}", *(f"{repo}@{p}" for p in parents)}),
        "tags": list(tags),
        "bucket": bucket,
        "role": role,
        "size": size,
    }


def _blob(size=10, bucket="b", intact=True):
    return {
        "bucket": bucket,
        "object": f"containers/images/{D3}",
        "generation": 1700000000000042,
        "size": size,
        "crc32c": "AAAAAA==",
        "storage_class": "STANDARD",
        "time_created": "2019-05-06T07:08:09.000000Z",
        "intact": intact,
    }


def test_present_and_matching_is_silent():
    assert cc.classify_joined(D3, [_ref(), _ref(manifest=D2)], [_blob()]) == []


def test_missing_blob_names_every_image_and_tag():
    rows = cc.classify_joined(D3, [_ref(tags=["r:v1"]), _ref(repo="s", manifest=D2, tags=["s:latest"])], [])
    (row,) = rows
    assert row["kind"] == "missing_blob" and row["severity"] == "error" and row["digest"] == D3
    assert row["images"] == [f"r@{D1}", f"s@{D2}"] and row["tags"] == ["r:v1", "s:latest"]
    assert row["repository"] is None and row["size"] == 10


def test_missing_blob_single_image_names_its_repository():
    (row,) = cc.classify_joined(D3, [_ref(role="config", size=5)], [])
    assert row["repository"] == "r" and row["manifest_digest"] == D1 and "config" in row["detail"]


def test_manifest_digest_alone_is_never_missing_but_keeps_a_blob_referenced():
    assert cc.classify_joined(D3, [_ref(role="manifest", size=None)], []) == []
    assert cc.classify_joined(D3, [_ref(role="manifest", size=None)], [_blob()]) == []


def test_size_mismatch():
    (row,) = cc.classify_joined(D3, [_ref(size=12), _ref(manifest=D2, size=10)], [_blob(size=10)])
    assert row["kind"] == "size_mismatch" and row["expected"] == "12" and row["actual"] == "10"
    assert row["images"] == [f"r@{D1}"]


def test_schema1_blobsum_has_no_size_to_mismatch():
    assert cc.classify_joined(D3, [_ref(role="blobsum", size=None)], [_blob(size=99)]) == []


def test_unreferenced_blob_carries_the_object_as_listed():
    (row,) = cc.classify_joined(D3, [], [_blob(size=1234)])
    assert row["kind"] == "unreferenced_blob" and row["severity"] == "info" and row["size"] == 1234
    # What a generation-pinned deletion and an auditor need, straight from the listing.
    assert row["generation"] == 1700000000000042 and row["crc32c"] == "AAAAAA=="
    assert row["storage_class"] == "STANDARD" and row["time_created"] == "2019-05-06T07:08:09.000000Z"
    tally = Tally.of_finding(row)
    assert tally.unreferenced_bytes == 1234 and tally.unreferenced_objects == 1


def test_size_mismatch_carries_the_object_and_the_declared_size():
    (row,) = cc.classify_joined(D3, [_ref(size=12)], [_blob(size=10)])
    assert row["generation"] == 1700000000000042 and row["crc32c"] == "AAAAAA==" and row["size"] == 10
    assert row["expected_size"] == 12
    assert row["repository"] == "r" and row["repositories"] == ["r"] and row["manifest_digests"] == [D1]


def _damaged(size=7):
    return {
        **dict.fromkeys(FINDING_FIELDS),
        "kind": "digest_mismatch",
        "severity": "error",
        "bucket": "b",
        "object": f"containers/images/{D3}",
        "digest": D3,
        "size": size,
        "detail": "bytes differ",
    }


def test_damaged_blob_of_one_manifest_names_it_and_keeps_the_declared_size():
    (row,) = cc.classify_joined(D3, [_ref(size=4000, tags=["r:v1"])], [_blob(size=7, intact=False)], [_damaged(7)])
    assert row["repository"] == "r" and row["manifest_digest"] == D1
    assert row["repositories"] == ["r"] and row["manifest_digests"] == [D1]
    assert row["images"] == [f"r@{D1}"] and row["tags"] == ["r:v1"]
    assert row["size"] == 7 and row["expected_size"] == 4000, "the manifest's size survives the damage"
    assert "declares 4000 bytes" in row["detail"]


def test_damaged_blob_of_several_manifests_lists_them_all():
    refs = [_ref(size=7), _ref(repo="s", manifest=D2, size=7)]
    (row,) = cc.classify_joined(D3, refs, [_blob(size=7, intact=False)], [_damaged(7)])
    assert row["repository"] is None and row["manifest_digest"] is None
    assert row["repositories"] == ["r", "s"] and row["manifest_digests"] == sorted([D1, D2])
    assert row["expected_size"] is None, "the declared size equals the bytes read"


def test_corrupt_referenced_blob_names_the_images_it_breaks():
    damaged = {
        **dict.fromkeys(FINDING_FIELDS),
        "kind": "digest_mismatch",
        "severity": "error",
        "bucket": "b",
        "object": f"containers/images/{D3}",
        "digest": D3,
        "size": 7,
        "detail": "bytes differ",
    }
    rows = cc.classify_joined(D3, [_ref(tags=["r:v1"], parents=[D2])], [_blob(size=7, intact=False)], [damaged])
    (row,) = rows  # no size_mismatch on top of the corruption
    assert row["kind"] == "digest_mismatch" and row["images"] == [f"r@{D1}", f"r@{D2}"]
    assert row["tags"] == ["r:v1"] and "breaks 2 image(s)" in row["detail"]
    # Unreferenced damage passes through unchanged.
    assert cc.classify_joined(D3, [], [], [damaged]) == [damaged]


def test_bucket_scoped_references():
    refs = [_ref(bucket="a")]
    (row,) = [r for r in cc.classify_joined(D3, refs, [_blob(bucket="b")]) if r["kind"] == "missing_blob"]
    assert row["bucket"] == "a"
    kinds = sorted(r["kind"] for r in cc.classify_joined(D3, refs, [_blob(bucket="b")]))
    assert kinds == ["missing_blob", "unreferenced_blob"]
    assert cc.classify_joined(D3, refs, [_blob(bucket="a")]) == []


# --- summary arithmetic ----------------------------------------------------------------------


def test_tally_stays_a_monoid_with_manifest_counts():
    rows = cc.classify_joined(D3, [_ref(tags=["r:v1"]), _ref(repo="s", manifest=D2)], [])
    parts = [
        Tally.of_manifest("r"),
        Tally.of_manifest("s"),
        Tally.of_finding(rows[0]),
        Tally.of_affected_image(f"r@{D1}"),
        Tally.of_not_hashed(),
        Tally.of_listed(5),
    ]
    forward, backward = sum_tallies(parts), sum_tallies(reversed(parts))
    assert forward == backward == forward + Tally() == Tally() + forward
    assert (parts[0] + parts[1]) + parts[2] == parts[0] + (parts[1] + parts[2])
    summary = build_summary(forward, run_id="x", started_at="a", ended_at="b", config={}, report_location="l")
    assert summary["manifests_scanned"] == 2 and summary["images_affected"] == 1
    assert summary["objects_not_hashed"] == 1 and summary["unaccounted_objects"] == 0
    assert summary["repositories"] == {
        "r": {"manifests_scanned": 1, "images_affected": 1, "missing_blob": 1},
        "s": {"manifests_scanned": 1, "images_affected": 0, "missing_blob": 1},
    }
    assert exit_status(forward) == 1


# --- index children: what the index declares vs what was served -------------------------------


def _child_of_index(images, size=None, media_type=None):
    """An index over images[0] whose descriptor may lie about the child's size or media type."""
    child = images[0]
    document = json.loads(make_index([(child, "linux", "amd64")]))
    if size is not None:
        document["manifests"][0]["size"] = size
    if media_type is not None:
        document["manifests"][0]["mediaType"] = media_type
    data = json.dumps(document).encode()
    index = cc.new_record("reg/app", m.sha256_of(data), tags=["reg/app:latest"])
    cc.evaluate(index, data, None)
    assert index["status"] == cc.OK
    ((digest, declared_size, declared_type),) = [(c[0], c[1], c[3]) for c in index["children"]]
    record = cc.child_record(index, digest, size=declared_size, media_type=declared_type)
    cc.evaluate(record, child.manifest, m.OCI_MANIFEST)
    return index, record


def test_index_child_served_with_the_declared_size_and_type_is_clean(images):
    _, record = _child_of_index(images)
    assert cc.record_findings(record) == []


def test_index_child_size_differing_from_the_descriptor_is_a_size_mismatch(images):
    index, record = _child_of_index(images, size=len(images[0].manifest) + 5)
    (row,) = cc.record_findings(record)
    assert row["kind"] == "size_mismatch" and row["severity"] == "error"
    assert row["digest"] == images[0].digest and row["manifest_digest"] == images[0].digest
    assert row["expected"] == str(len(images[0].manifest) + 5) and row["actual"] == str(len(images[0].manifest))
    assert row["images"] == sorted([f"reg/app@{images[0].digest}", f"reg/app@{index['digest']}"])
    assert index["digest"] in row["detail"] and "index" in row["detail"]


def test_index_child_of_another_media_type_than_declared_is_invalid(images):
    index, record = _child_of_index(images, media_type=m.DOCKER_MANIFEST)
    (row,) = cc.record_findings(record)
    assert row["kind"] == "invalid_manifest" and row["actual"] == m.OCI_MANIFEST
    assert m.DOCKER_MANIFEST in row["detail"] and index["digest"] in row["detail"]
    assert cc.record_references(record)  # the child's own blobs are still cross-checked


def test_declared_size_survives_a_merge_with_the_same_manifest_listed_on_its_own(images):
    """GCR lists index children in its manifest map too: the listed record must not hide the index's claim."""
    _, child = _child_of_index(images, size=1)
    listed = cc.new_record("reg/app", images[0].digest, tags=["reg/app:v1"])
    cc.evaluate(listed, images[0].manifest, m.OCI_MANIFEST)
    for order in ([listed, child], [child, listed]):
        rows = cc.record_findings(cc.merge_records(order))
        assert [r["kind"] for r in rows] == ["size_mismatch"]


# --- foreign layers -------------------------------------------------------------------------


def test_foreign_layer_is_never_missing_but_keeps_a_stored_copy_referenced():
    """A foreign layer is fetched from its urls; when the bucket holds a copy anyway, it is not reclaimable."""
    data = _with_foreign_layer(D3, 10)
    record = cc.new_record("r", m.sha256_of(data))
    cc.evaluate(record, data, None)
    refs = [ref for digest, ref in cc.record_references(record) if digest == D3]
    assert refs, "the foreign layer must still be referenced"
    assert cc.classify_joined(D3, refs, []) == []  # absent: expected, it lives at its urls
    assert cc.classify_joined(D3, refs, [_blob(size=10)]) == []  # present: referenced, not reclaimable
    (row,) = cc.classify_joined(D3, refs, [_blob(size=11)])
    assert row["kind"] == "size_mismatch"


def test_zero_size_descriptor_is_checked_like_any_other():
    assert cc.classify_joined(D3, [_ref(size=0)], [_blob(size=0)]) == []
    (row,) = cc.classify_joined(D3, [_ref(size=0)], [_blob(size=3)])
    assert row["kind"] == "size_mismatch" and row["expected"] == "0"
    (row,) = cc.classify_joined(D3, [_ref(size=0)], [])
    assert row["kind"] == "missing_blob" and row["size"] == 0


def test_blob_in_two_buckets_with_one_copy_corrupt_and_missing_elsewhere():
    """One digest: corrupt in bucket a (layer of r), missing from bucket c (config of s), fine in b."""
    damaged = {
        **dict.fromkeys(FINDING_FIELDS),
        "kind": "digest_mismatch",
        "severity": "error",
        "bucket": "a",
        "object": f"containers/images/{D3}",
        "digest": D3,
        "detail": "bytes differ",
    }
    refs = [_ref(bucket="a", tags=["r:v1"]), _ref(repo="s", manifest=D2, role="config", bucket="c"), _ref(bucket="b")]
    blobs = [_blob(bucket="a", intact=False), _blob(bucket="b")]
    rows = cc.classify_joined(D3, refs, blobs, [damaged])
    by_kind = {r["kind"]: r for r in rows}
    assert sorted(by_kind) == ["digest_mismatch", "missing_blob"] and len(rows) == 2
    assert by_kind["digest_mismatch"]["images"] == [f"r@{D1}"]
    assert by_kind["missing_blob"]["bucket"] == "c" and by_kind["missing_blob"]["images"] == [f"s@{D2}"]


def test_one_manifest_listed_for_two_buckets_protects_its_blobs_in_both():
    """Merged by (repository, digest), a manifest read once must still reference its blobs in every
    bucket whose sources listed it; otherwise one bucket's copies would look unused."""
    a = cc.new_record("r", D1, bucket="a", source_index=0)
    b = cc.new_record("r", D1, bucket="b", source_index=1)
    for record in (a, b):
        record.update(status=cc.OK, blobs=[["layer", D3, 10, False]])
    merged = cc.merge_records([a, b])
    assert merged["sources"] == [0, 1]
    layer_scopes = sorted(ref["bucket"] for digest, ref in cc.record_references(merged) if digest == D3)
    assert layer_scopes == ["a", "b"]
    refs = [ref for d, ref in cc.record_references(merged) if d == D3]
    assert cc.classify_joined(D3, refs, [_blob(bucket="a"), _blob(bucket="b")]) == []
    (row,) = cc.classify_joined(D3, refs, [_blob(bucket="b")])  # b's copy is referenced, a's is missing
    assert (row["kind"], row["bucket"]) == ("missing_blob", "a")


# --- foreign by urls alone, other digest algorithms ----------------------------------------


def test_a_layer_with_urls_and_an_ordinary_media_type_is_foreign():
    """``urls`` alone makes a layer foreign: clients fetch it from there, whatever its media type says."""
    data = _doc(layers=[_layer(D2, 5, urls=["https://example.invalid/l"]), _layer(D3, 6)])
    parsed = m.parse_manifest(data)
    assert [(d.digest, d.foreign) for d in parsed.blobs] == [(D1, False), (D2, True), (D3, False)]
    record = cc.new_record("r", m.sha256_of(data))
    cc.evaluate(record, data, None)
    refs = {digest: ref for digest, ref in cc.record_references(record)}
    assert refs[D2]["role"] == cc.FOREIGN_ROLE and refs[D3]["role"] == "layer"
    assert cc.classify_joined(D2, [refs[D2]], []) == []  # absent: it lives at its urls
    (missing,) = cc.classify_joined(D3, [refs[D3]], [])
    assert missing["kind"] == "missing_blob"


SHA512 = "sha512:" + "ab" * 64


MULTIHASH = "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8"


@pytest.mark.parametrize("digest", [SHA512, "blake3:" + "c" * 64, MULTIHASH])
def test_other_digest_algorithms_are_unverifiable_never_malformed(digest):
    data = _doc(layers=[_layer(digest, 7), _layer(D3, 6)])
    parsed = m.parse_manifest(data)
    assert parsed.unverifiable == (digest,)
    layer = parsed.blobs[1]
    assert (layer.digest, layer.foreign, layer.algorithm) == (digest, True, digest.split(":")[0])


def test_index_children_by_sha512_are_followed_and_unregistered_ones_are_not():
    children = [_cfg(SHA512, 10, mediaType=m.OCI_MANIFEST), _cfg("blake3:" + "d" * 64, 11, mediaType=m.OCI_MANIFEST)]
    index = {"schemaVersion": 2, "mediaType": m.OCI_INDEX, "manifests": children}
    parsed = m.parse_manifest(json.dumps(index).encode())
    assert [c.digest for c in parsed.children] == [SHA512, "blake3:" + "d" * 64]
    assert parsed.unverifiable == ("blake3:" + "d" * 64,)


def test_a_sha512_claim_is_checked_with_sha512():
    import hashlib

    data = b'{"schemaVersion": 2}'
    right = "sha512:" + hashlib.sha512(data).hexdigest()
    assert m.verify(data, right) is None
    assert m.verify(data, SHA512) == right


def test_load_json_can_leave_surrogates_to_the_caller():
    document = m.load_json(b'{"a": "\\udc80", "b": "ok"}', allow_surrogates=True)
    assert m.unicode_problem(document["a"]) == "'\\udc80' holds a lone surrogate, not a Unicode character"
    assert m.unicode_problem(document["b"]) is None
    with pytest.raises(m.ManifestError, match="lone surrogate"):
        m.load_json(b'{"a": "\\udc80"}')
    with pytest.raises(m.ManifestError, match="nested more than 2 levels"):
        m.load_json(b'{"a": {"b": {}}}', max_depth=2)


# --- index chains and unverifiable references ----------------------------------------------


def test_an_index_chain_past_the_cap_names_the_chain_and_the_children_left_unread():
    from pipeline.core.reference_checks import stop_deep_or_cyclic_chain

    chain = ["sha256:" + str(i) * 64 for i in range(4, 8)]
    record = cc.new_record("r", D1, parents=chain)
    record["chain"] = [*chain[::-1], D1]  # the order the index chain was walked, root first
    record.update(status=cc.OK, children=[[D2, 5, None, m.OCI_INDEX]])
    stop_deep_or_cyclic_chain(record, [D2])
    assert record["status"] == cc.INVALID and record["children"] == []
    assert record["detail"] == (
        f"index chain deeper than {m.MAX_INDEX_DEPTH} levels: {' → '.join([*chain[::-1], D1])}; "
        f"its 1 child manifest(s) are not read: {D2}"
    )
    (row,) = cc.record_findings(record)
    assert row["kind"] == "invalid_manifest" and D2 in row["detail"]


def test_an_index_that_lists_its_own_ancestor_is_a_loop_not_followed():
    from pipeline.core.reference_checks import stop_deep_or_cyclic_chain

    record = cc.new_record("r", D2, parents=[D1])
    record.update(status=cc.OK, children=[[D1, 5, None, m.OCI_INDEX], [D3, 5, None, m.OCI_MANIFEST]])
    stop_deep_or_cyclic_chain(record, [D1, D3])
    assert (record["status"], record["children"]) == (cc.INVALID, [])
    assert record["detail"] == f"index chain loops: {D1} → {D2} → {D1}; not followed further"
    shallow = cc.new_record("r", D2, parents=[D1])
    shallow.update(status=cc.OK, children=[[D3, 5, None, m.OCI_MANIFEST]])
    stop_deep_or_cyclic_chain(shallow, [D3])
    assert shallow["status"] == cc.OK and shallow["children"] == [[D3, 5, None, m.OCI_MANIFEST]]


def test_unverifiable_references_are_warnings_naming_the_image():
    from pipeline.core.reference_checks import unverifiable_findings

    record = cc.new_record("r", D1, tags=["r:v1"])
    record.update(status=cc.OK, unverifiable=[SHA512, "blake3:" + "e" * 64])
    sha512, blake3 = unverifiable_findings(record)
    assert (sha512["kind"], sha512["severity"], sha512["digest"]) == ("unverifiable_digest", "warning", SHA512)
    assert sha512["images"] == [f"r@{D1}"] and sha512["tags"] == ["r:v1"] and sha512["manifest_digest"] == D1
    assert "sha512 digest: the bucket names blobs by sha256" in sha512["detail"]
    assert "'blake3' is not registered in the image-spec" in blake3["detail"]
    assert unverifiable_findings(cc.new_record("r", D1)) == []


# --- the image-spec rules on their own ------------------------------------------------------


@pytest.mark.parametrize(
    "digest, problem",
    [
        ("sha256:" + "a" * 64, None),
        ("sha512:" + "a" * 128, None),
        ("blake3:" + "Za-_=9" * 5, None),  # unregistered: any encoded [a-zA-Z0-9=_-]+
        ("multihash+base58:Qm", None),
        ("sha256.v2:abc", None),  # unregistered algorithm with a separator
        ("sha256:" + "a" * 65, "a sha256 digest must be 64 lowercase hex digits"),
        ("sha512:" + "A" * 128, "a sha512 digest must be 128 lowercase hex digits"),
        ("Sha256:" + "a" * 64, "digest must match algorithm:encoded"),
        ("sha256+:" + "a" * 64, "digest must match algorithm:encoded"),
        ("sha256:", "digest must match algorithm:encoded"),
        ("sha256:a b", "digest must match algorithm:encoded"),
        (None, "digest is required"),
        (["sha256:" + "a" * 64], "digest must be a string (got a list)"),
    ],
)
def test_the_digest_grammar(digest, problem):
    from pipeline.core import oci_rules

    problems = oci_rules.check_digest(digest, "d")
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problems[0].startswith(f"d: image-spec descriptor: {problem}"), problems
    assert oci_rules.is_verifiable(digest) == (problem is None and digest.split(":")[0] in ("sha256", "sha512"))


@pytest.mark.parametrize(
    "size, ok",
    [
        (0, True),
        (2**63 - 1, True),
        (2**63, False),
        (-1, False),
        (True, False),
        (1.0, False),
        ("1", False),
        (None, False),
    ],
)
def test_size_is_an_int64_of_zero_or_more(size, ok):
    from pipeline.core import oci_rules

    assert (oci_rules.check_size(size, "s") == []) is ok


@pytest.mark.parametrize(
    "marker, problem",
    [
        ({"imageLayoutVersion": "1.0.0"}, None),
        ({}, "oci-layout must hold imageLayoutVersion"),
        ({"imageLayoutVersion": ["1"]}, "imageLayoutVersion must be a string (got a list)"),
        ("1.0.0", "oci-layout must be a JSON object (got a string)"),
    ],
)
def test_the_layout_marker(marker, problem):
    from pipeline.core import oci_rules

    assert oci_rules.check_layout_marker(marker) == ([] if problem is None else [f"image-spec layout: {problem}"])


# --- image-spec schema/manifest_test.go's fixtures around an empty `layers` (docs/hostile-input.md) --

SPEC_EMPTY_LAYERS = b"""
{
  "schemaVersion": 2,
  "mediaType" : "application/vnd.oci.image.manifest.v1+json",
  "config": {
    "mediaType": "application/vnd.oci.image.config.v1+json",
    "size": 1470,
    "digest": "sha256:c86f7763873b6c0aae22d963bab59b4f5debbed6685761b5951584f6efb0633b"
  },
  "layers": []
}
"""

SPEC_ARTIFACT_WITH_EMPTY_CONFIG = b"""
{
  "schemaVersion": 2,
  "mediaType" : "application/vnd.oci.image.manifest.v1+json",
  "artifactType": "application/vnd.example+type",
  "config": {
    "mediaType": "application/vnd.oci.empty.v1+json",
    "size": 2,
    "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
  },
  "layers": [
    {
      "mediaType": "application/vnd.example+type",
      "size": 675598,
      "digest": "sha256:9d3dd9504c685a304985025df4ed0283e47ac9ffa9bd0326fddf4d59513f0827"
    }
  ]
}
"""


def test_an_empty_layers_list_follows_the_specs_text_not_its_stricter_schema():
    """The schema's fixture "expected failure: empty layer": its minItems 1 is stricter than
    manifest.md's "SHOULD have at least one entry", and the text decides. The config is the one blob."""
    parsed = m.parse_manifest(SPEC_EMPTY_LAYERS, m.OCI_MANIFEST)
    assert [(d.role, d.digest, d.size) for d in parsed.blobs] == [
        ("config", "sha256:c86f7763873b6c0aae22d963bab59b4f5debbed6685761b5951584f6efb0633b", 1470)
    ]


def test_the_specs_artifact_with_the_empty_config_and_one_layer_is_valid():
    parsed = m.parse_manifest(SPEC_ARTIFACT_WITH_EMPTY_CONFIG, m.OCI_MANIFEST)
    assert [(d.role, d.size) for d in parsed.blobs] == [("config", 2), ("layer", 675598)]


@pytest.mark.parametrize("layers, problem", [(None, "layers: missing"), ({}, "layers: expected a list")])
def test_layers_missing_or_not_a_list_is_still_invalid(layers, problem):
    document = json.loads(SPEC_EMPTY_LAYERS)
    if layers is None:
        del document["layers"]
    else:
        document["layers"] = layers
    with pytest.raises(m.ManifestError, match=problem):
        m.parse_manifest(json.dumps(document).encode(), m.OCI_MANIFEST)


def test_a_blocker_names_a_manifest_by_its_digest_else_by_its_file():
    claimed = cc.new_record("gcr.io/p/app", "sha256:" + "a" * 64, source="gs://m/app/x.json")
    assert cc.manifest_label(claimed) == "gcr.io/p/app@sha256:" + "a" * 64
    unclaimed = {**claimed, "claimed": False}
    assert cc.manifest_label(unclaimed) == "gs://m/app/x.json"
    assert cc.manifest_label({**unclaimed, "source": None}) == "gcr.io/p/app@sha256:" + "a" * 64
    nameless = cc.new_record("gcr.io/p/app", None, source="/m/app/y.json")
    assert cc.manifest_label(nameless) == "/m/app/y.json"


def test_unverifiable_reference_details_in_full():
    from pipeline.core.reference_checks import unverifiable_findings

    record = cc.new_record("r", D1)
    record.update(status=cc.OK, unverifiable=[SHA512, "blake3:" + "e" * 64])
    sha512, blake3 = unverifiable_findings(record)
    assert sha512["detail"] == (
        "referenced by a sha512 digest: the bucket names blobs by sha256, so no object can be "
        "matched with it (not counted as missing)"
    )
    assert blake3["detail"] == (
        "digest algorithm 'blake3' is not registered in the image-spec (sha256, sha512): "
        "the content cannot be verified (not read, not counted as missing)"
    )
