"""Strict manifest parsing (pipeline/core/manifests.py): the bounded JSON reader, type resolution,
descriptors, the signed schema 1 digest and ``verify``, at the edges of each rule.

A manifest refused here becomes an ``invalid_manifest`` error and one accepted wrongly hides a
broken image, so both sides of each limit are checked, with the exact reason a report shows.
"""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from pipeline.core import manifests as m

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64
SHA512 = "sha512:" + "ab" * 64
BLAKE3 = "blake3:" + "c" * 64
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def _desc(digest=D2, size=2, media_type=LAYER, **more) -> dict:
    return {"mediaType": media_type, "digest": digest, "size": size, **more}


def _image(**over) -> dict:
    document = {"schemaVersion": 2, "mediaType": m.OCI_MANIFEST, "config": _desc(D1, 1, CONFIG), "layers": [_desc()]}
    document.update(over)
    return {k: v for k, v in document.items() if v is not None}


def _bytes(document) -> bytes:
    return json.dumps(document).encode()


def _refused(data, *args, **kwargs) -> str:
    with pytest.raises(m.ManifestError) as err:
        m.parse_manifest(data, *args, **kwargs)
    return str(err.value)


def _load_refused(data, **kwargs) -> str:
    with pytest.raises(m.ManifestError) as err:
        m.load_json(data, **kwargs)
    return str(err.value)


# --- load_json: numbers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, value",
    [
        ("9223372036854775807", 2**63 - 1),
        ("-9223372036854775808", -(2**63)),
        ("-1000000000000000000", -(10**18)),  # 19 digits after the sign
        ("0", 0),
        ("-0", 0),
    ],
)
def test_int64_integers_up_to_19_digits_are_read(text, value):
    assert m.load_json(text.encode()) == value


@pytest.mark.parametrize(
    "text, reason",
    [
        ("9223372036854775808", "integer 9223372036854775808 is beyond int64; refusing to parse"),
        ("-9223372036854775809", "integer -9223372036854775809 is beyond int64; refusing to parse"),
        ("10000000000000000000", "an integer of 20 digits is beyond int64; refusing to parse"),
        ("-10000000000000000000", "an integer of 20 digits is beyond int64; refusing to parse"),
    ],
)
def test_integers_beyond_int64_are_refused_with_their_size(text, reason):
    assert _load_refused(text.encode()) == reason


@pytest.mark.parametrize("text", ["1e308", "-1e308", "1.5", "-0.0", "1e-400"])
def test_finite_numbers_are_read_as_floats(text):
    assert m.load_json(text.encode()) == float(text)


@pytest.mark.parametrize(
    "text, shown",
    [
        ("1e999", "1e999"),
        ("-1e999", "-1e999"),
        ("1" * 400 + ".0", "1" * 40),  # a long number is shown by its first 40 characters
    ],
)
def test_numbers_beyond_a_float_are_refused(text, shown):
    assert _load_refused(text.encode()) == f"number {shown} is beyond a float's range; refusing to parse"


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_constants_are_not_json(constant):
    assert _load_refused(f'{{"x": {constant}}}'.encode()) == f"{constant} is not JSON (RFC 8259); refusing to parse"


# --- load_json: keys, strings, encodings ----------------------------------------------------


def test_the_first_repeated_key_is_named():
    data = b'{"a": 1, "b": {"c": 1, "c": 2}, "a": 3}'
    assert _load_refused(data) == "key 'c' appears twice in one object (parsers disagree which counts)"
    data = b'{"a": 1, "b": 2, "b": 3, "a": 4}'
    assert _load_refused(data) == "key 'b' appears twice in one object (parsers disagree which counts)"


def test_a_long_repeated_key_is_cut_at_80_characters():
    key = "k" * 81
    data = f'{{"{key}": 1, "{key}": 2}}'.encode()
    assert _load_refused(data) == f"key '{'k' * 80}...' appears twice in one object (parsers disagree which counts)"
    key = "k" * 80
    data = f'{{"{key}": 1, "{key}": 2}}'.encode()
    assert _load_refused(data) == f"key '{key}' appears twice in one object (parsers disagree which counts)"


def test_the_same_key_in_sibling_objects_is_fine():
    assert m.load_json(b'[{"a": 1}, {"a": 2}]') == [{"a": 1}, {"a": 2}]


@pytest.mark.parametrize(
    "data, where",
    [
        (b'"\\udc80"', "the document '\\udc80'"),
        (b'["ok", "\\ud800x"]', "[1] '\\ud800x'"),
        (b'{"a": {"b": ["\\udfff"]}}', "a.b[0] '\\udfff'"),
        (b'{"\\udc80": 1}', "\\udc80 '\\udc80'"),
        (b'{"\\u00e9": {"\\udc80": 1}}', "\xe9.\\udc80 '\\udc80'"),
    ],
)
def test_a_lone_surrogate_is_refused_naming_where_it_is(data, where):
    assert _load_refused(data) == f"{where}: a lone surrogate is not a Unicode character; refusing to parse"


@pytest.mark.parametrize(
    "data, value",
    [
        (b'{"e": "\\ud83d\\ude00"}', {"e": "\U0001f600"}),  # a surrogate pair is one character
        (b'{"e": "\\u00e9\\uD7FF\\uE000"}', {"e": "\xe9\ud7ff\ue000"}),  # around the surrogate range
        ('{"e": "\U0001f600"}'.encode(), {"e": "\U0001f600"}),
    ],
)
def test_valid_unicode_is_read(data, value):
    assert m.load_json(data) == value


def test_bytes_and_bytearray_are_read_and_text_is_refused():
    assert m.load_json(bytearray(b'{"a": 1}')) == {"a": 1}
    assert _load_refused('{"a": 1}') == "expected bytes, got str"
    assert _refused('{"a": 1}') == "expected bytes, got str"


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"\xff", "not UTF-8 text: invalid start byte at byte 0"),
        (b'{"a": "\xc3"}', "not UTF-8 text: invalid continuation byte at byte 7"),
        ('{"a": 1}'.encode("utf-16"), "not UTF-8 text: invalid start byte at byte 0"),
        (b'{\n"a": }', "not valid JSON: Expecting value at line 2, column 6"),
        (b"", "not valid JSON: Expecting value at line 1, column 1"),
    ],
)
def test_undecodable_or_broken_json_is_refused_with_its_position(data, reason):
    assert _load_refused(data) == reason


def test_a_caller_that_lifts_the_depth_cap_still_gets_a_clean_refusal():
    # Deep enough for every Python's json decoder: 3.13's C scanner reads 5,000 levels.
    data = b"[" * 200_000 + b"]" * 200_000
    assert _load_refused(data, max_depth=10**6) == "JSON nested too deeply; refusing to parse"


# --- bounds --------------------------------------------------------------------------------


def test_the_size_cap_is_inclusive_and_shown_with_thousands_separators():
    data = b"[" + b"1," * 498 + b"1 ]"
    assert len(data) == 1000
    assert len(m.load_json(data, max_bytes=1000)) == 499
    assert _load_refused(data, max_bytes=999) == "manifest is 1,000 bytes, above the 999-byte limit"
    m.check_bounds(data, 1000)


@pytest.mark.parametrize(
    "data, depth",
    [
        (b"1", 0),
        (b"[]", 1),
        (b"[[],[],{}]", 2),
        (b'[{"a": [1]}, [[]]]', 3),
        (b"[[[],[[]]]]", 4),  # the deepest point comes after a bracket closed
        (b'["]]]]", "[[[[", "\\"[[[["]', 1),  # brackets in strings, also after an escaped quote
        (b'{"a\\\\": [[]]}', 3),  # an escaped backslash ends before the closing quote
    ],
)
def test_nesting_is_counted_outside_strings_and_the_cap_is_inclusive(data, depth):
    m.load_json(data, max_depth=depth)
    if depth:
        assert _load_refused(data, max_depth=depth - 1) == (
            f"JSON nested more than {depth - 1} levels deep; refusing to parse"
        )


def test_the_default_nesting_cap_is_32():
    deepest: list = []
    for _ in range(31):
        deepest = [deepest]
    assert m.load_json(b"[" * 32 + b"]" * 32) == deepest
    assert _load_refused(b"[" * 33 + b"]" * 33) == "JSON nested more than 32 levels deep; refusing to parse"


# --- media types -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type, normal",
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("; charset=utf-8", None),
        ("Application/JSON; charset=utf-8", "application/json"),
        (" application/vnd.oci.image.index.v1+json ;q=1\n;x=2", m.OCI_INDEX),
        (m.DOCKER_MANIFEST, m.DOCKER_MANIFEST),
    ],
)
def test_normalise_media_type_drops_parameters_and_case(content_type, normal):
    assert m.normalise_media_type(content_type) == normal


def test_accept_names_every_understood_type_newest_first():
    assert m.ACCEPT == (
        "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
        "application/vnd.docker.distribution.manifest.list.v2+json, "
        "application/vnd.docker.distribution.manifest.v2+json, "
        "application/vnd.docker.distribution.manifest.v1+prettyjws, "
        "application/vnd.docker.distribution.manifest.v1+json"
    )


@pytest.mark.parametrize("served", ["application/json", "text/plain", "application/octet-stream", "TEXT/PLAIN; x=y"])
def test_a_generic_served_type_leaves_the_choice_to_the_document(served):
    assert m.parse_manifest(_bytes(_image(mediaType=None)), served).media_type == m.OCI_MANIFEST
    assert m.parse_manifest(_bytes(_image(mediaType=m.DOCKER_MANIFEST)), served).media_type == m.DOCKER_MANIFEST


@pytest.mark.parametrize(
    "document, served, kind",
    [
        (_image(mediaType=None), m.DOCKER_MANIFEST, m.DOCKER_MANIFEST),
        (_image(mediaType=None), None, m.OCI_MANIFEST),
        (_image(mediaType=m.DOCKER_MANIFEST), m.DOCKER_MANIFEST, m.DOCKER_MANIFEST),
        (_image(mediaType=m.DOCKER_MANIFEST), "application/vnd.example+json", m.DOCKER_MANIFEST),
        ({"schemaVersion": 2, "layers": [_desc()], "config": _desc(D1, 1, CONFIG)}, None, m.OCI_MANIFEST),
        ({"schemaVersion": 2, "manifests": []}, None, m.OCI_INDEX),
        ({"schemaVersion": 2, "manifests": []}, m.DOCKER_MANIFEST_LIST, m.DOCKER_MANIFEST_LIST),
    ],
)
def test_the_document_type_wins_then_the_served_type_then_the_structure(document, served, kind):
    assert m.parse_manifest(_bytes(document), served).media_type == kind


@pytest.mark.parametrize(
    "document, served, reason",
    [
        (_image(mediaType="application/vnd.example+json"), None, "unknown media type 'application/vnd.example+json'"),
        (
            _image(mediaType="application/vnd.example+json"),
            m.OCI_MANIFEST,
            "unknown media type 'application/vnd.example+json'",
        ),
        (_image(mediaType=None), "application/vnd.example+json", "unknown media type 'application/vnd.example+json'"),
        (
            _image(),
            m.DOCKER_MANIFEST,
            f"served as {m.DOCKER_MANIFEST!r} but the document says {m.OCI_MANIFEST!r}",
        ),
        (
            {"schemaVersion": 2, "mediaType": m.OCI_INDEX, "manifests": []},
            m.OCI_MANIFEST,
            f"served as {m.OCI_MANIFEST!r} but the document says {m.OCI_INDEX!r}",
        ),
        ({"schemaVersion": 2}, None, "no mediaType and neither manifests nor config/layers: not a manifest"),
        ({"schemaVersion": 2, "layers": []}, None, "config: image-spec manifest: config is required"),
        ({"schemaVersion": 2, "config": _desc(D1, 1, CONFIG)}, None, "layers: missing"),
        (
            _image(mediaType=m.DOCKER_MANIFEST),
            m.SCHEMA1,
            f"served as {m.SCHEMA1!r} but the document says {m.DOCKER_MANIFEST!r}",
        ),
        (_image(mediaType=[]), None, "mediaType: expected a string, got a list"),
        (_image(mediaType=""), None, "unknown media type ''"),
        ([], None, "expected a JSON object, got a list"),
        ("x", None, "expected a JSON object, got a string"),
    ],
)
def test_an_unknown_or_contradicted_type_is_refused(document, served, reason):
    assert _refused(_bytes(document), served) == reason


@pytest.mark.parametrize(
    "document, reason",
    [
        (_image(schemaVersion=None), "schemaVersion: expected a number, got null"),
        (_image(schemaVersion=True), "schemaVersion: expected a number, got a boolean"),
        (_image(schemaVersion=2.0), "schemaVersion: expected a number, got a number"),
        (_image(schemaVersion=1), f"schemaVersion: expected 2 for {m.OCI_MANIFEST}, got 1"),
        (
            {"schemaVersion": 2, "mediaType": m.DOCKER_MANIFEST_LIST, "manifests": []},
            None,
        ),
        (
            {"schemaVersion": 3, "mediaType": m.DOCKER_MANIFEST_LIST, "manifests": []},
            f"schemaVersion: expected 2 for {m.DOCKER_MANIFEST_LIST}, got 3",
        ),
        (
            {"schemaVersion": 2, "mediaType": m.SCHEMA1, "fsLayers": []},
            f"schemaVersion: expected 1 for {m.SCHEMA1}, got 2",
        ),
    ],
)
def test_the_schema_version_must_match_the_type(document, reason):
    if reason is None:
        assert m.parse_manifest(_bytes(document)).media_type == document["mediaType"]
    else:
        assert _refused(_bytes(document)) == reason


# --- image manifests and indexes ---------------------------------------------------------------


def test_an_image_manifest_in_full():
    layers = [_desc(D2, 20), _desc(D3, 30, "application/vnd.docker.image.rootfs.diff.tar.gzip")]
    data = _bytes(_image(layers=layers))
    parsed = m.parse_manifest(data)
    assert parsed == m.Manifest(
        m.OCI_MANIFEST,
        "sha256:" + hashlib.sha256(data).hexdigest(),
        len(data),
        blobs=(
            m.Descriptor("config", D1, 1, CONFIG, None, False, "sha256"),
            m.Descriptor("layer", D2, 20, LAYER, None, False, "sha256"),
            m.Descriptor("layer", D3, 30, "application/vnd.docker.image.rootfs.diff.tar.gzip", None, False, "sha256"),
        ),
    )
    assert parsed.is_index is False


@pytest.mark.parametrize(
    "layer, foreign",
    [
        (_desc(), False),
        (_desc(urls=[]), False),
        (_desc(urls=["https://example.invalid/l"]), True),
        (_desc(media_type="application/vnd.oci.image.layer.nondistributable.v1.tar"), True),
        (_desc(media_type="application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"), True),
        (_desc(media_type="application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"), True),
        (_desc(media_type="application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"), True),
        (_desc(SHA512), True),  # no bucket object can be named by it
        (_desc(BLAKE3), True),
    ],
)
def test_which_layers_are_foreign(layer, foreign):
    (_, parsed) = m.parse_manifest(_bytes(_image(layers=[layer]))).blobs
    assert parsed.foreign is foreign


def test_a_config_is_never_foreign_by_media_type_or_urls_but_is_by_another_algorithm():
    config = _desc(D1, 1, "application/vnd.oci.image.layer.nondistributable.v1.tar", urls=["https://x/c"])
    (parsed, _) = m.parse_manifest(_bytes(_image(config=config))).blobs
    assert (parsed.role, parsed.foreign) == ("config", False)
    (parsed, _) = m.parse_manifest(_bytes(_image(config=_desc(SHA512, 1, CONFIG)))).blobs
    assert (parsed.foreign, parsed.algorithm) == (True, "sha512")


def test_an_image_lists_every_reference_not_by_sha256_as_unverifiable():
    data = _bytes(_image(config=_desc(SHA512, 1, CONFIG), layers=[_desc(D2), _desc(BLAKE3), _desc(D3)]))
    assert m.parse_manifest(data).unverifiable == (SHA512, BLAKE3)


def test_an_index_in_full():
    children = [
        _desc(D1, 10, m.OCI_MANIFEST, platform={"os": "linux", "architecture": "arm", "variant": "v7"}),
        _desc(D2, 20, m.OCI_MANIFEST, platform={"architecture": "amd64", "os": "windows", "os.version": "10"}),
        _desc(D3, 30, m.OCI_INDEX),
        _desc(SHA512, 40, m.OCI_MANIFEST, urls=["https://x/y"]),
        _desc(BLAKE3, 50, m.OCI_MANIFEST),
    ]
    data = _bytes({"schemaVersion": 2, "mediaType": m.OCI_INDEX, "manifests": children})
    parsed = m.parse_manifest(data)
    assert parsed.is_index is True and parsed.blobs == ()
    assert (parsed.digest, parsed.size) == (m.sha256_of(data), len(data))
    assert parsed.children == (
        m.Descriptor("manifest", D1, 10, m.OCI_MANIFEST, "linux/arm/v7", False, "sha256"),
        m.Descriptor("manifest", D2, 20, m.OCI_MANIFEST, "windows/amd64", False, "sha256"),
        m.Descriptor("manifest", D3, 30, m.OCI_INDEX, None, False, "sha256"),
        m.Descriptor("manifest", SHA512, 40, m.OCI_MANIFEST, None, False, "sha512"),
        m.Descriptor("manifest", BLAKE3, 50, m.OCI_MANIFEST, None, False, "blake3"),
    )
    # A sha512 child can still be fetched and checked; an unregistered one cannot.
    assert parsed.unverifiable == (BLAKE3,)


def test_a_docker_manifest_list_is_an_index():
    data = _bytes({"schemaVersion": 2, "mediaType": m.DOCKER_MANIFEST_LIST, "manifests": [_desc(D1, 1)]})
    parsed = m.parse_manifest(data)
    assert parsed.is_index and [c.digest for c in parsed.children] == [D1]


@pytest.mark.parametrize(
    "problems, reason",
    [
        (1, "layers[0].size: image-spec descriptor: size must be an int64 ≥ 0 (got -1)"),
        (
            3,
            "layers[0].size: image-spec descriptor: size must be an int64 ≥ 0 (got -1); "
            "layers[1].size: image-spec descriptor: size must be an int64 ≥ 0 (got -2); "
            "layers[2].size: image-spec descriptor: size must be an int64 ≥ 0 (got -3)",
        ),
        (
            4,
            "layers[0].size: image-spec descriptor: size must be an int64 ≥ 0 (got -1); "
            "layers[1].size: image-spec descriptor: size must be an int64 ≥ 0 (got -2); "
            "layers[2].size: image-spec descriptor: size must be an int64 ≥ 0 (got -3) (and 1 more)",
        ),
        (
            5,
            "layers[0].size: image-spec descriptor: size must be an int64 ≥ 0 (got -1); "
            "layers[1].size: image-spec descriptor: size must be an int64 ≥ 0 (got -2); "
            "layers[2].size: image-spec descriptor: size must be an int64 ≥ 0 (got -3) (and 2 more)",
        ),
    ],
)
def test_the_first_three_rule_violations_are_named_and_the_rest_counted(problems, reason):
    layers = [_desc(size=-(i + 1)) for i in range(problems)]
    assert _refused(_bytes(_image(layers=layers))) == reason


def test_an_index_breaking_the_rules_is_refused():
    document = {"schemaVersion": 2, "mediaType": m.OCI_INDEX, "manifests": [_desc(D1, 1, platform=[])]}
    assert _refused(_bytes(document)) == (
        "manifests[0].platform: image-spec index platform: platform must be an object (got a list)"
    )


@pytest.mark.parametrize(
    "document, reason",
    [
        ({"schemaVersion": 2, "mediaType": m.OCI_MANIFEST, "config": _desc(D1, 1, CONFIG)}, "layers: missing"),
        ({"schemaVersion": 2, "mediaType": m.OCI_INDEX}, "manifests: missing"),
        ({"schemaVersion": 2, "mediaType": m.OCI_INDEX, "manifests": None}, "manifests: expected a list, got null"),
        ({"schemaVersion": 1, "mediaType": m.SCHEMA1}, "fsLayers: missing"),
    ],
)
def test_a_missing_list_is_named(document, reason):
    assert _refused(_bytes(document)) == reason


def test_the_descriptor_cap_is_inclusive():
    # Entries that are not objects keep this fast: at the cap, parsing gets as far as the first one.
    at_cap = {"schemaVersion": 1, "fsLayers": [0] * m.MAX_DESCRIPTORS}
    assert _refused(_bytes(at_cap)) == "fsLayers[0]: expected an object, got a number"
    over = {"schemaVersion": 1, "fsLayers": [0] * (m.MAX_DESCRIPTORS + 1)}
    assert _refused(_bytes(over)) == "fsLayers: 10,001 entries, above the limit of 10,000"


def test_a_smaller_size_cap_can_be_asked_for():
    data = _bytes(_image())
    assert m.parse_manifest(data, max_bytes=len(data)).size == len(data)
    assert _refused(data, max_bytes=len(data) - 1) == (
        f"manifest is {len(data):,} bytes, above the {len(data) - 1:,}-byte limit"
    )


# --- schema 1 -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "layers, reason",
    [
        ([{"blobSum": D1}, "x"], "fsLayers[1]: expected an object, got a string"),
        ([{"blobSum": None}], "fsLayers[0].blobSum: expected a digest string, got null"),
        ([{}], "fsLayers[0].blobSum: expected a digest string, got null"),
        ([{"blobSum": 5}], "fsLayers[0].blobSum: expected a digest string, got a number"),
        ([{"blobSum": "sha256:12"}], "fsLayers[0].blobSum: 'sha256:12' is not sha256:<64 lowercase hex>"),
        ([{"blobSum": SHA512}], f"fsLayers[0].blobSum: {SHA512[:80]!r} is not sha256:<64 lowercase hex>"),
    ],
)
def test_schema1_blobsums_must_be_sha256_digests(layers, reason):
    assert _refused(_bytes({"schemaVersion": 1, "fsLayers": layers})) == reason


def test_schema1_keeps_one_reference_per_blob_in_first_seen_order():
    document = {"schemaVersion": 1, "fsLayers": [{"blobSum": D2}, {"blobSum": D1}, {"blobSum": D2}]}
    parsed = m.parse_manifest(_bytes(document))
    assert parsed.media_type == m.SCHEMA1
    assert parsed.blobs == (m.Descriptor("blobsum", D2, None), m.Descriptor("blobsum", D1, None))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signed(payload_doc: dict, *, length_delta: int = 0, filler: str = "") -> tuple[bytes, bytes]:
    """A libtrust-signed schema 1 manifest and its payload (what its digest covers)."""
    payload = json.dumps(payload_doc, indent=3).encode()
    length = len(payload) - 2 + length_delta  # the payload ends with "\n}"
    header = {"formatLength": length, "formatTail": _b64(payload[len(payload) - 2 :]), "time": "2016" + filler}
    signature = [{"header": {"alg": "ES256"}, "signature": "c2ln", "protected": _b64(json.dumps(header).encode())}]
    signed = payload[: len(payload) - 2] + b',\n   "signatures": ' + json.dumps(signature).encode() + b"\n}"
    return signed, payload


SCHEMA1_DOC = {"schemaVersion": 1, "name": "library/old", "tag": "v1", "fsLayers": [{"blobSum": D1}]}


@pytest.mark.parametrize("filler", ["x" * n for n in range(20)])
def test_the_signed_schema1_digest_covers_the_payload_whatever_the_base64_padding(filler):
    # libtrust strips base64url padding, so every length of the protected header occurs.
    signed, payload = _signed(SCHEMA1_DOC, filler=filler)
    assert m.manifest_digest(signed) == m.sha256_of(payload)
    assert m.parse_manifest(signed).digest == m.sha256_of(payload)


@pytest.mark.parametrize("served, declared", [(m.SCHEMA1, m.SCHEMA1_SIGNED), (m.SCHEMA1_SIGNED, m.SCHEMA1)])
def test_the_two_schema1_types_do_not_contradict_each_other(served, declared):
    signed, payload = _signed({**SCHEMA1_DOC, "mediaType": declared})
    assert m.parse_manifest(signed, served).media_type == m.SCHEMA1_SIGNED


@pytest.mark.parametrize("media_type", [None, m.SCHEMA1, m.SCHEMA1_SIGNED])
def test_a_signed_schema1_is_recognised_by_its_signatures(media_type):
    signed, payload = _signed(SCHEMA1_DOC)
    parsed = m.parse_manifest(signed, media_type)
    assert (parsed.media_type, parsed.digest, parsed.size) == (m.SCHEMA1_SIGNED, m.sha256_of(payload), len(signed))


def test_the_digest_of_other_types_is_that_of_the_bytes_even_with_signatures():
    signed, _ = _signed(SCHEMA1_DOC)
    assert m.manifest_digest(signed, m.OCI_MANIFEST) == m.sha256_of(signed)
    assert m.manifest_digest(signed, m.DOCKER_MANIFEST) == m.sha256_of(signed)


def _with_length(signed: bytes, length: int) -> bytes:
    document = json.loads(signed)
    header = json.loads(base64.urlsafe_b64decode(document["signatures"][0]["protected"] + "=="))
    header["formatLength"] = length
    protected = _b64(json.dumps(header).encode())
    return signed.replace(document["signatures"][0]["protected"].encode(), protected.encode())


def test_the_format_length_bounds_are_one_byte_and_the_whole_document():
    signed, _ = _signed(SCHEMA1_DOC)
    tail = b"\n}"
    one = _with_length(signed, 1)
    assert m.manifest_digest(one, m.SCHEMA1_SIGNED) == m.sha256_of(one[:1] + tail)
    whole = _with_length(signed, len(signed))
    assert m.manifest_digest(whole, m.SCHEMA1_SIGNED) == m.sha256_of(whole + tail)


@pytest.mark.parametrize("length", [0, -1, "past the end"])
def test_a_format_length_outside_the_document_falls_back_to_the_plain_digest(length):
    signed, _ = _signed(SCHEMA1_DOC)
    broken = _with_length(signed, len(signed) + 20 if length == "past the end" else length)
    assert m.manifest_digest(broken, m.SCHEMA1_SIGNED) == m.sha256_of(broken)


@pytest.mark.parametrize(
    "data",
    [
        b"{not json",
        b'{"signatures": []}',
        b'{"signatures": [{}]}',
        b'{"signatures": [{"protected": "!!!"}]}',
        b'{"signatures": [{"protected": "' + _b64(b'{"formatLength": "x", "formatTail": ""}').encode() + b'"}]}',
        b'{"signatures": [{"protected": "' + _b64(b'{"formatTail": ""}').encode() + b'"}]}',
        b'{"signatures": 5}',
    ],
)
def test_an_unreadable_signature_envelope_falls_back_to_the_plain_digest(data):
    assert m.manifest_digest(data, m.SCHEMA1_SIGNED) == m.sha256_of(data)
    assert m.manifest_digest(data) == m.sha256_of(data)


# --- verify -----------------------------------------------------------------------------------


def test_verify_accepts_the_payload_digest_and_the_whole_bytes_digest_of_a_signed_schema1():
    signed, payload = _signed(SCHEMA1_DOC)
    assert m.verify(signed, m.sha256_of(payload)) is None
    assert m.verify(signed, m.sha256_of(signed)) is None
    assert m.verify(signed, m.sha256_of(payload), "application/vnd.docker.distribution.manifest.v1+prettyjws") is None
    assert m.verify(signed, D1) == m.sha256_of(payload)


def test_verify_names_the_digest_the_bytes_do_hash_to():
    data = _bytes(_image())
    assert m.verify(data, m.sha256_of(data)) is None
    assert m.verify(data, m.sha256_of(data), "Application/vnd.oci.image.manifest.v1+json; x=1") is None
    assert m.verify(data, D1) == m.sha256_of(data)
    assert m.verify(data, "sha512:" + hashlib.sha512(data).hexdigest()) is None
    assert m.verify(data, SHA512) == "sha512:" + hashlib.sha512(data).hexdigest()
    assert m.verify(data, BLAKE3) == m.sha256_of(data)


def test_sha256_of():
    assert m.sha256_of(b"") == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def _with_envelope(data: bytes) -> bytes:
    """``data`` with a libtrust-style ``signatures`` envelope appended whose payload is ``data`` itself."""
    header = {"formatLength": len(data) - 1, "formatTail": _b64(data[-1:])}
    envelope = [{"header": {"alg": "ES256"}, "signature": "c2ln", "protected": _b64(json.dumps(header).encode())}]
    return data[:-1] + b', "signatures": ' + json.dumps(envelope).encode() + data[-1:]


@pytest.mark.parametrize("served", [m.OCI_MANIFEST, m.DOCKER_MANIFEST])
def test_a_signature_envelope_cannot_pass_other_bytes_off_as_a_schema2_manifest(served):
    # The payload rule is schema 1's: served as a schema 2 type, only the SHA-256 of the bytes counts.
    original = _bytes(_image(mediaType=served))
    forged = _with_envelope(original)
    assert m.manifest_digest(forged, served) == m.sha256_of(forged)
    assert m.verify(forged, m.sha256_of(original), served) == m.sha256_of(forged)
    assert m.verify(forged, m.sha256_of(forged), served) is None
    parsed = m.parse_manifest(forged)
    assert (parsed.media_type, parsed.digest) == (served, m.sha256_of(forged))
