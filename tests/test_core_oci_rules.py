"""The image-spec's descriptor, manifest and index rules (pipeline/core/oci_rules.py), field by field.

Every violation becomes an ``invalid_manifest`` finding, an error that fails the audit and
blocks reclaim, so a valid value refused is as bad as an invalid one let through: each rule
is checked on both sides of its boundary, with the exact wording an auditor reads.
"""

from __future__ import annotations

import base64
import hashlib

import pytest

from pipeline.core import oci_rules as r

D = "sha256:" + "a" * 64
SHA512 = "sha512:" + "b" * 128
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
EMPTY = "application/vnd.oci.empty.v1+json"


def _desc(**over) -> dict:
    entry = {"mediaType": LAYER, "digest": D, "size": 3}
    entry.update(over)
    return {k: v for k, v in entry.items() if v is not None}


def _data(content: bytes, **over) -> dict:
    """A descriptor whose embedded ``data`` is exactly ``content`` (right size and digest)."""
    entry = {
        "mediaType": LAYER,
        "digest": "sha256:" + hashlib.sha256(content).hexdigest(),
        "size": len(content),
        "data": base64.b64encode(content).decode(),
    }
    entry.update(over)
    return entry


# --- int64 and how values are shown ------------------------------------------------------------


@pytest.mark.parametrize(
    "value, ok",
    [
        (0, True),
        (2**63 - 1, True),
        (2**63, False),
        (-(2**63), True),
        (-(2**63) - 1, False),
        (True, False),
        (False, False),
        (1.0, False),
        ("1", False),
        (None, False),
    ],
)
def test_is_int64_takes_exactly_the_int64_range_and_no_booleans(value, ok):
    assert r.is_int64(value) is ok


@pytest.mark.parametrize(
    "value, shown",
    [
        ("x" * 58, "'" + "x" * 58 + "'"),  # repr of 60 characters: shown whole
        ("x" * 59, "'" + "x" * 56 + "..."),  # 61: cut to 57 and an ellipsis, 60 in all
        (-7, "-7"),
        ([1], "[1]"),
    ],
)
def test_a_bad_value_is_shown_whole_up_to_60_characters_then_cut(value, shown):
    (problem,) = r.check_size(value, "s")
    assert problem == f"s: image-spec descriptor: size must be an int64 ≥ 0 (got {shown})"


@pytest.mark.parametrize(
    "value, name",
    [
        ({}, "an object"),
        ([], "a list"),
        ("", "a string"),
        (True, "a boolean"),
        (0, "a number"),
        (0.5, "a number"),
        (None, "null"),
        (b"", "bytes"),
    ],
)
def test_json_type_names_each_json_value_as_a_finding_reads_it(value, name):
    assert r.json_type(value) == name


# --- digests --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, algorithm",
    [
        (D, "sha256"),
        (SHA512, "sha512"),
        ("multihash+base58:Qm", "multihash+base58"),
        ("sha256:" + "A" * 64, "sha256"),  # the grammar holds; the encoding rule is check_digest's
        ("SHA256:" + "a" * 64, None),
        ("sha256", None),
        (7, None),
        (None, None),
    ],
)
def test_digest_algorithm_is_that_of_the_grammar_else_none(value, algorithm):
    assert r.digest_algorithm(value) == algorithm


@pytest.mark.parametrize(
    "value, problem",
    [
        (D, None),
        ("sha256:" + "0" * 64, None),
        ("sha256:" + "a" * 49, f"a sha256 digest must be 64 lowercase hex digits (got {'sha256:' + 'a' * 49!r})"),
        ("sha256:" + "a" * 63, "a sha256 digest must be 64 lowercase hex digits (got 'sha256:" + "a" * 49 + "...)"),
        (SHA512, None),
        ("sha512:" + "b" * 127, "a sha512 digest must be 128 lowercase hex digits (got 'sha512:" + "b" * 49 + "...)"),
        ("sha512:" + "b" * 129, "a sha512 digest must be 128 lowercase hex digits (got 'sha512:" + "b" * 49 + "...)"),
        ("sha256:" + "g" * 64, "a sha256 digest must be 64 lowercase hex digits (got 'sha256:" + "g" * 49 + "...)"),
        ("x:y", None),
        ("a.b_c-d:E=_-", None),
        ("sha256:y z", "digest must match algorithm:encoded (got 'sha256:y z')"),
        ("", "digest must match algorithm:encoded (got '')"),
        (None, "digest is required"),
        (64, "digest must be a string (got a number)"),
        ({"sha256": "a"}, "digest must be a string (got an object)"),
    ],
)
def test_check_digest_names_the_rule_broken(value, problem):
    expected = [] if problem is None else [f"layers[1].digest: image-spec descriptor: {problem}"]
    assert r.check_digest(value, "layers[1].digest") == expected


@pytest.mark.parametrize(
    "value, verifiable",
    [
        (D, True),
        (SHA512, True),
        ("sha256:" + "A" * 64, False),
        ("sha512:" + "b" * 64, False),
        ("blake3:" + "c" * 64, False),
        ("nonsense", False),
        (None, False),
    ],
)
def test_only_well_formed_sha256_and_sha512_are_verifiable(value, verifiable):
    assert r.is_verifiable(value) is verifiable


def test_digest_of_hashes_with_the_named_registered_algorithm():
    assert r.digest_of(b"abc", "sha256") == "sha256:" + hashlib.sha256(b"abc").hexdigest()
    assert r.digest_of(b"abc", "sha512") == "sha512:" + hashlib.sha512(b"abc").hexdigest()


@pytest.mark.parametrize("algorithm", ["md5", "blake3", "SHA256"])
def test_digest_of_refuses_an_unregistered_algorithm_by_name(algorithm):
    with pytest.raises(ValueError) as err:
        r.digest_of(b"abc", algorithm)
    assert str(err.value) == f"unregistered digest algorithm {algorithm!r}"


# --- single fields ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, required, problem",
    [
        (None, True, "mediaType is required"),
        (None, False, None),
        (CONFIG, True, None),
        ("a/b", True, None),
        ("A0!#$&^_.+-/z", True, None),
        ("x" * 127 + "/" + "y" * 127, True, None),
        ("x" * 128 + "/y", True, "mediaType must follow RFC 6838 type/subtype (got 'xxxx"),
        ("tar", True, "mediaType must follow RFC 6838 type/subtype (got 'tar')"),
        ("a/b; charset=utf-8", True, "mediaType must follow RFC 6838 type/subtype (got 'a/b; charset=utf-8')"),
        ("", False, "mediaType must follow RFC 6838 type/subtype (got '')"),
        (1, False, "mediaType must be a string (got a number)"),
    ],
)
def test_check_media_type(value, required, problem):
    problems = r.check_media_type(value, "config.mediaType", r.DESCRIPTOR, required=required)
    if problem is None:
        assert problems == []
    else:
        (text,) = problems
        assert text.startswith(f"config.mediaType: image-spec descriptor: {problem}")


@pytest.mark.parametrize(
    "value, problem",
    [
        (None, None),
        ("application/vnd.example+type", None),
        ("tar", "artifactType must be an RFC 6838 media type (got 'tar')"),
        (["a/b"], "artifactType must be an RFC 6838 media type (got ['a/b'])"),
        (5, "artifactType must be an RFC 6838 media type (got 5)"),
    ],
)
def test_check_artifact_type(value, problem):
    expected = [] if problem is None else [f"artifactType: image-spec manifest: {problem}"]
    assert r.check_artifact_type(value, "artifactType", r.MANIFEST) == expected


@pytest.mark.parametrize(
    "value, problem",
    [
        (None, None),
        ({}, None),
        ({"org.opencontainers.image.title": "x", "b": ""}, None),
        ([], "annotations must be a string-to-string map (got a list)"),
        ("k=v", "annotations must be a string-to-string map (got a string)"),
        ({"a": "ok", "b": 1, "c": None}, "the value of 'b' must be a string (got a number)"),
        ({"k": None}, "the value of 'k' must be a string (got null)"),
    ],
)
def test_check_annotations_reports_the_first_non_string_value(value, problem):
    expected = [] if problem is None else [f"layers[0].annotations: image-spec annotations: {problem}"]
    assert r.check_annotations(value, "layers[0].annotations") == expected


@pytest.mark.parametrize(
    "value, problem",
    [
        (None, None),
        ([], None),
        (["https://example.invalid/l", "s3://b/k?x=1", "urn:isbn:0451450523"], None),
        ("https://x/y", "urls must be a list of strings (got a string)"),
        (["https://ok/", 7], "urls[1] must be a string (got a number)"),
        (["https://ok/", "not a uri"], "urls[1] must be an RFC 3986 URI (got 'not a uri')"),
        (["1http://x"], "urls[0] must be an RFC 3986 URI (got '1http://x')"),
        (["https://x/\ty"], "urls[0] must be an RFC 3986 URI (got 'https://x/\\ty')"),
        (["https://x/", "bad uri", 5], "urls[1] must be an RFC 3986 URI (got 'bad uri')"),
    ],
)
def test_check_urls_reports_the_first_bad_entry_by_index(value, problem):
    expected = [] if problem is None else [f"l.urls: image-spec descriptor: {problem}"]
    assert r.check_urls(value, "l.urls") == expected


# --- embedded data ---------------------------------------------------------------------------


@pytest.mark.parametrize("content", [b"", b"a", b"ab", b"abc", b"\x00\xff" * 10])
def test_data_that_decodes_to_the_described_content_is_valid(content):
    assert r.check_data(_data(content), "l.data") == []
    assert r.check_descriptor(_data(content), "l") == []


def test_data_with_a_sha512_digest_is_checked_with_sha512():
    content = b"hello"
    good = _data(content, digest="sha512:" + hashlib.sha512(content).hexdigest())
    assert r.check_data(good, "l.data") == []
    bad = _data(content, digest="sha512:" + hashlib.sha512(b"other").hexdigest())
    assert r.check_data(bad, "l.data") == [
        "l.data: image-spec descriptor: data does not hash to the descriptor's digest"
    ]


@pytest.mark.parametrize(
    "entry, problem",
    [
        (_data(b"abc", data="YWJ"), "data must be base64 (RFC 4648)"),
        (_data(b"abc", data="YW=j"), "data must be base64 (RFC 4648)"),
        (_data(b"abc", data="YW Jj"), "data must be base64 (RFC 4648)"),
        (_data(b"abc", data=["YWJj"]), "data must be base64 (RFC 4648)"),
        (_data(b"abc", size=2), "data decodes to 3 bytes, size says 2"),
        (_data(b"abc", size=4), "data decodes to 3 bytes, size says 4"),
        (_data(b"", size=1), "data decodes to 0 bytes, size says 1"),
        (_data(b"abc", digest=D), "data does not hash to the descriptor's digest"),
    ],
)
def test_data_that_is_not_the_described_content_is_refused(entry, problem):
    assert r.check_data(entry, "manifests[2].data") == [f"manifests[2].data: image-spec descriptor: {problem}"]


@pytest.mark.parametrize(
    "over",
    [
        {"digest": "blake3:" + "c" * 64},  # unregistered: nothing to hash with
        {"digest": "sha256:" + "A" * 64},  # malformed: reported by check_digest, not twice
        {"size": "3"},  # not an int64: reported by check_size
    ],
)
def test_data_is_only_compared_with_a_size_and_digest_that_can_be_trusted(over):
    assert r.check_data(_data(b"abc", **over), "l.data") == []


def test_data_is_checked_only_once_the_rest_of_the_descriptor_is_valid():
    entry = _data(b"abc", size=-1)
    assert r.check_descriptor(entry, "l") == ["l.size: image-spec descriptor: size must be an int64 ≥ 0 (got -1)"]
    entry = _data(b"abc", size=4)
    assert r.check_descriptor(entry, "l") == ["l.data: image-spec descriptor: data decodes to 3 bytes, size says 4"]


# --- platform -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "platform, problem",
    [
        (None, None),
        ({"os": "linux", "architecture": "amd64"}, None),
        (
            {
                "os": "windows",
                "architecture": "amd64",
                "os.version": "10.0.17763",
                "variant": "v8",
                "os.features": ["win32k"],
                "features": [],
            },
            None,
        ),
        ([], "p: image-spec index platform: platform must be an object (got a list)"),
        ({"os": "linux"}, "p.architecture: image-spec index platform: architecture is required and must be a string"),
        (
            {"os": "linux", "architecture": 64},
            "p.architecture: image-spec index platform: architecture is required and must be a string",
        ),
        ({"architecture": "arm64"}, "p.os: image-spec index platform: os is required and must be a string"),
        (
            {"os": None, "architecture": "arm64"},
            "p.os: image-spec index platform: os is required and must be a string",
        ),
        (
            {"os": "linux", "architecture": "arm", "variant": 7},
            "p.variant: image-spec index platform: variant must be a string",
        ),
        (
            {"os": "windows", "architecture": "amd64", "os.version": 10},
            "p.os.version: image-spec index platform: os.version must be a string",
        ),
        (
            {"os": "windows", "architecture": "amd64", "os.features": "win32k"},
            "p.os.features: image-spec index platform: os.features must be a list of strings",
        ),
        (
            {"os": "linux", "architecture": "amd64", "features": ["sse4", 2]},
            "p.features: image-spec index platform: features must be a list of strings",
        ),
    ],
)
def test_check_platform(platform, problem):
    assert r.check_platform(platform, "p") == ([] if problem is None else [problem])


def test_a_bare_platform_or_descriptor_names_its_fields_without_a_leading_dot():
    assert r.check_platform({"os": "linux"}, "") == [
        "architecture: image-spec index platform: architecture is required and must be a string"
    ]
    assert r.check_descriptor({"digest": D, "size": 1}, "") == [
        "mediaType: image-spec descriptor: mediaType is required"
    ]


# --- descriptors ----------------------------------------------------------------------------


def test_check_descriptor_lists_every_field_problem_in_field_order():
    entry = {
        "mediaType": "tar",
        "digest": "sha256:1",
        "size": -1,
        "urls": "x",
        "annotations": [],
        "artifactType": 1,
        "data": "!",
    }
    assert r.check_descriptor(entry, "layers[3]") == [
        "layers[3].mediaType: image-spec descriptor: mediaType must follow RFC 6838 type/subtype (got 'tar')",
        "layers[3].digest: image-spec descriptor: a sha256 digest must be 64 lowercase hex digits (got 'sha256:1')",
        "layers[3].size: image-spec descriptor: size must be an int64 ≥ 0 (got -1)",
        "layers[3].urls: image-spec descriptor: urls must be a list of strings (got a string)",
        "layers[3].annotations: image-spec annotations: annotations must be a string-to-string map (got a list)",
        "layers[3].artifactType: image-spec descriptor: artifactType must be an RFC 6838 media type (got 1)",
    ]


@pytest.mark.parametrize("entry, shown", [("sha256:abc", "a string"), (None, "null"), ([D], "a list")])
def test_a_descriptor_must_be_an_object(entry, shown):
    assert r.check_descriptor(entry, "config") == [
        f"config: image-spec descriptor: a descriptor must be a JSON object (got {shown})"
    ]


def test_a_platform_is_checked_only_in_an_index_entry():
    entry = _desc(platform={"os": "linux"})
    assert r.check_descriptor(entry, "layers[0]") == []
    assert r.check_descriptor(entry, "manifests[0]", index_entry=True) == [
        "manifests[0].platform.architecture: image-spec index platform: architecture is required and must be a string"
    ]


def test_a_valid_descriptor_with_every_optional_field():
    entry = _desc(
        urls=["https://example.invalid/l"],
        annotations={"k": "v"},
        artifactType="application/vnd.example+type",
        platform={"os": "linux", "architecture": "amd64"},
    )
    assert r.check_descriptor(entry, "manifests[0]", index_entry=True) == []


# --- documents ------------------------------------------------------------------------------


def _manifest(**over) -> dict:
    document = {"schemaVersion": 2, "config": _desc(mediaType=CONFIG), "layers": [_desc()]}
    document.update(over)
    return {k: v for k, v in document.items() if v is not None}


@pytest.mark.parametrize(
    "document, problems",
    [
        (_manifest(), []),
        (_manifest(layers=[]), []),
        (_manifest(config=_desc(mediaType=EMPTY), artifactType="application/vnd.example+type"), []),
        (
            {"schemaVersion": 2, "layers": []},
            ["config: image-spec manifest: config is required"],
        ),
        (
            {"schemaVersion": 2, "config": _desc(mediaType=CONFIG)},
            ["layers: image-spec manifest: layers is required"],
        ),
        (
            _manifest(layers="x"),
            ["layers: image-spec manifest: layers must be a list of descriptors (got a string)"],
        ),
        (
            _manifest(layers=[_desc(), _desc(size=-2)]),
            ["layers[1].size: image-spec descriptor: size must be an int64 ≥ 0 (got -2)"],
        ),
        (
            _manifest(config=_desc(mediaType=EMPTY)),
            [f"artifactType: image-spec manifest: artifactType must be set when config.mediaType is {EMPTY}"],
        ),
        (
            _manifest(artifactType="x", annotations={"a": 1}, subject=_desc(size=None)),
            [
                "artifactType: image-spec manifest: artifactType must be an RFC 6838 media type (got 'x')",
                "annotations: image-spec annotations: the value of 'a' must be a string (got a number)",
                "subject.size: image-spec descriptor: size is required",
            ],
        ),
        (_manifest(subject=_desc()), []),
    ],
)
def test_check_image_manifest(document, problems):
    assert r.check_image_manifest(document) == problems


def test_every_problem_of_a_manifest_is_listed_config_first():
    document = {"config": "c", "layers": [1], "artifactType": "y", "subject": None}
    assert r.check_image_manifest(document) == [
        "config: image-spec descriptor: a descriptor must be a JSON object (got a string)",
        "layers[0]: image-spec descriptor: a descriptor must be a JSON object (got a number)",
        "artifactType: image-spec manifest: artifactType must be an RFC 6838 media type (got 'y')",
        "subject: image-spec descriptor: a descriptor must be a JSON object (got null)",
    ]


@pytest.mark.parametrize(
    "document, problems",
    [
        ({"manifests": []}, []),
        ({"manifests": [_desc(platform={"os": "linux", "architecture": "arm64"})]}, []),
        ({}, ["manifests: image-spec index: manifests is required"]),
        ({"manifests": None}, ["manifests: image-spec index: manifests is required"]),
        ({"manifests": {}}, ["manifests: image-spec index: manifests must be a list of descriptors (got an object)"]),
        (
            {"manifests": [_desc(), _desc(platform=[])], "artifactType": "z", "annotations": "a"},
            [
                "manifests[1].platform: image-spec index platform: platform must be an object (got a list)",
                "artifactType: image-spec index: artifactType must be an RFC 6838 media type (got 'z')",
                "annotations: image-spec annotations: annotations must be a string-to-string map (got a string)",
            ],
        ),
        (
            {"manifests": [_desc(size=-1), _desc()]},
            ["manifests[0].size: image-spec descriptor: size must be an int64 ≥ 0 (got -1)"],
        ),
        (
            {"manifests": [], "subject": {"mediaType": LAYER, "digest": D}},
            ["subject.size: image-spec descriptor: size is required"],
        ),
    ],
)
def test_check_image_index(document, problems):
    assert r.check_image_index(document) == problems


@pytest.mark.parametrize(
    "marker, problems",
    [
        ({"imageLayoutVersion": "1.0.0"}, []),
        ({"imageLayoutVersion": ""}, []),
        ({"imageLayoutVersion": None}, ["image-spec layout: oci-layout must hold imageLayoutVersion"]),
        ({"imageLayoutVersion": 1}, ["image-spec layout: imageLayoutVersion must be a string (got a number)"]),
        ([], ["image-spec layout: oci-layout must be a JSON object (got a list)"]),
        (None, ["image-spec layout: oci-layout must be a JSON object (got null)"]),
    ],
)
def test_check_layout_marker(marker, problems):
    assert r.check_layout_marker(marker) == problems
