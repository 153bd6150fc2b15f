"""The OCI image-spec's validation rules for descriptors, image manifests and image indexes.

Each check returns a list of violations (plain strings), empty when the value
obeys the spec. A violation names where it is and the rule it breaks, e.g.
``layers[0].size: image-spec descriptor: size must be an int64 ≥ 0 (got -1)``,
so an ``invalid_manifest`` finding says exactly what to fix.

The rules follow image-spec v1.1 (descriptor.md, manifest.md, image-index.md,
annotations.md). Docker schema 2 manifests and manifest lists share the
descriptor rules (their spec requires the same three fields), so they are
checked with the same functions.

Digests: the grammar ``algorithm ":" encoded`` is a MUST; of the registered
algorithms, sha256 (64 lowercase hex) and sha512 (128 lowercase hex) must have
the registered encoding. A digest that obeys the grammar with an algorithm
that is not registered is valid but unverifiable, never malformed.

Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Any

from pipeline.core.media_types import OCI_EMPTY as EMPTY_CONFIG

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)

_DIGEST = re.compile(r"([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)")
# Registered algorithms and the encoding each must use.
REGISTERED_ALGORITHMS = {"sha256": re.compile(r"[a-f0-9]{64}"), "sha512": re.compile(r"[a-f0-9]{128}")}
# RFC 6838 section 4.2: type "/" subtype, each a restricted-name (1 to 127 characters).
_RESTRICTED_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
_MEDIA_TYPE = re.compile(rf"{_RESTRICTED_NAME}/{_RESTRICTED_NAME}")
# RFC 3986: a URI starts with a scheme; no whitespace or control characters anywhere.
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s\x00-\x1f\x7f]*")
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")

DESCRIPTOR = "image-spec descriptor"
MANIFEST = "image-spec manifest"
INDEX = "image-spec index"
ANNOTATIONS = "image-spec annotations"
PLATFORM = "image-spec index platform"


def _at(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def is_int64(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and INT64_MIN <= value <= INT64_MAX


# --- digests ----------------------------------------------------------------------------------


def digest_algorithm(value: Any) -> str | None:
    """The algorithm of a digest that obeys the grammar (registered or not); None otherwise."""
    if not isinstance(value, str):
        return None
    match = _DIGEST.fullmatch(value)
    return match.group(1) if match else None


def check_digest(value: Any, where: str) -> list[str]:
    """The digest grammar, and the registered encoding for sha256 and sha512."""
    if value is None:
        return [f"{where}: {DESCRIPTOR}: digest is required"]
    if not isinstance(value, str):
        return [f"{where}: {DESCRIPTOR}: digest must be a string (got {json_type(value)})"]
    match = _DIGEST.fullmatch(value)
    if not match:
        return [f"{where}: {DESCRIPTOR}: digest must match algorithm:encoded (got {_show(value)})"]
    algorithm, encoded = match.groups()
    pattern = REGISTERED_ALGORITHMS.get(algorithm)
    if pattern is not None and not pattern.fullmatch(encoded):
        digits = 64 if algorithm == "sha256" else 128
        return [
            f"{where}: {DESCRIPTOR}: a {algorithm} digest must be {digits} lowercase hex digits (got {_show(value)})"
        ]
    return []


def is_verifiable(digest: str) -> bool:
    """True for a digest this scanner can compare with content: a well-formed sha256 or sha512."""
    algorithm = digest_algorithm(digest)
    return algorithm in REGISTERED_ALGORITHMS and not check_digest(digest, "")


def digest_of(data: bytes, algorithm: str) -> str:
    """``algorithm:hex`` of the bytes, for a registered algorithm."""
    if algorithm not in REGISTERED_ALGORITHMS:
        raise ValueError(f"unregistered digest algorithm {algorithm!r}")
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


# --- field rules ------------------------------------------------------------------------------


def check_media_type(value: Any, where: str, section: str, *, required: bool) -> list[str]:
    if value is None:
        return [f"{where}: {section}: mediaType is required"] if required else []
    if not isinstance(value, str):
        return [f"{where}: {section}: mediaType must be a string (got {json_type(value)})"]
    if not _MEDIA_TYPE.fullmatch(value):
        return [f"{where}: {section}: mediaType must follow RFC 6838 type/subtype (got {_show(value)})"]
    return []


def check_artifact_type(value: Any, where: str, section: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, str) or not _MEDIA_TYPE.fullmatch(value):
        return [f"{where}: {section}: artifactType must be an RFC 6838 media type (got {_show(value)})"]
    return []


def check_size(value: Any, where: str) -> list[str]:
    if value is None:
        return [f"{where}: {DESCRIPTOR}: size is required"]
    if not is_int64(value) or value < 0:
        return [f"{where}: {DESCRIPTOR}: size must be an int64 ≥ 0 (got {_show(value)})"]
    return []


def check_annotations(value: Any, where: str) -> list[str]:
    """annotations.md: a map whose keys and values are all strings."""
    if value is None:
        return []
    if not isinstance(value, dict):
        return [f"{where}: {ANNOTATIONS}: annotations must be a string-to-string map (got {json_type(value)})"]
    for key, item in value.items():
        if not isinstance(item, str):
            return [f"{where}: {ANNOTATIONS}: the value of {_show(key)} must be a string (got {json_type(item)})"]
    return []


def check_urls(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        return [f"{where}: {DESCRIPTOR}: urls must be a list of strings (got {json_type(value)})"]
    for i, url in enumerate(value):
        if not isinstance(url, str):
            return [f"{where}: {DESCRIPTOR}: urls[{i}] must be a string (got {json_type(url)})"]
        if not _URI.fullmatch(url):
            return [f"{where}: {DESCRIPTOR}: urls[{i}] must be an RFC 3986 URI (got {_show(url)})"]
    return []


def check_data(entry: dict, where: str) -> list[str]:
    """``data``: base64 (RFC 4648) whose decoded bytes are the content the size and digest describe."""
    value = entry.get("data")
    if value is None:
        return []
    if not isinstance(value, str) or not _BASE64.fullmatch(value):
        return [f"{where}: {DESCRIPTOR}: data must be base64 (RFC 4648)"]
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return [f"{where}: {DESCRIPTOR}: data must be base64 (RFC 4648)"]
    size, digest = entry.get("size"), entry.get("digest")
    if is_int64(size) and size != len(decoded):
        return [f"{where}: {DESCRIPTOR}: data decodes to {len(decoded)} bytes, size says {size}"]
    algorithm = digest_algorithm(digest)
    if algorithm in REGISTERED_ALGORITHMS and not check_digest(digest, where):
        if digest_of(decoded, algorithm) != digest:
            return [f"{where}: {DESCRIPTOR}: data does not hash to the descriptor's digest"]
    return []


def check_platform(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, dict):
        return [f"{where}: {PLATFORM}: platform must be an object (got {json_type(value)})"]
    for key in ("architecture", "os"):
        if not isinstance(value.get(key), str):
            return [f"{_at(where, key)}: {PLATFORM}: {key} is required and must be a string"]
    for key in ("os.version", "variant"):
        if key in value and not isinstance(value[key], str):
            return [f"{_at(where, key)}: {PLATFORM}: {key} must be a string"]
    for key in ("os.features", "features"):
        if key in value and not (isinstance(value[key], list) and all(isinstance(v, str) for v in value[key])):
            return [f"{_at(where, key)}: {PLATFORM}: {key} must be a list of strings"]
    return []


def check_descriptor(entry: Any, where: str, *, index_entry: bool = False) -> list[str]:
    """Every descriptor rule: required mediaType, digest and size; optional urls, annotations,
    data, artifactType; and, in an index's ``manifests``, the platform."""
    if not isinstance(entry, dict):
        return [f"{where}: {DESCRIPTOR}: a descriptor must be a JSON object (got {json_type(entry)})"]
    problems = check_media_type(entry.get("mediaType"), _at(where, "mediaType"), DESCRIPTOR, required=True)
    problems += check_digest(entry.get("digest"), _at(where, "digest"))
    problems += check_size(entry.get("size"), _at(where, "size"))
    problems += check_urls(entry.get("urls"), _at(where, "urls"))
    problems += check_annotations(entry.get("annotations"), _at(where, "annotations"))
    problems += check_artifact_type(entry.get("artifactType"), _at(where, "artifactType"), DESCRIPTOR)
    if not problems:
        problems += check_data(entry, _at(where, "data"))
    if index_entry:
        problems += check_platform(entry.get("platform"), _at(where, "platform"))
    return problems


# --- documents --------------------------------------------------------------------------------


def _check_common(document: dict, section: str) -> list[str]:
    problems = check_artifact_type(document.get("artifactType"), "artifactType", section)
    problems += check_annotations(document.get("annotations"), "annotations")
    if "subject" in document:
        problems += check_descriptor(document["subject"], "subject")
    return problems


def check_image_manifest(document: dict) -> list[str]:
    """manifest.md: config and layers are descriptors; subject, annotations and artifactType follow
    their rules; an empty config (``application/vnd.oci.empty.v1+json``) needs an artifactType."""
    problems = []
    if "config" not in document:
        problems.append(f"config: {MANIFEST}: config is required")
    else:
        problems += check_descriptor(document["config"], "config")
    layers = document.get("layers")
    # An empty list is valid. manifest.md (v1.1.0 on, commit fd45b6b "Add scratch descriptor and
    # scope layer limits"): "For portability, `layers` SHOULD have at least one entry", a SHOULD in
    # RFC 2119's sense, not a MUST. schema/image-manifest-schema.json still has "minItems": 1 (commit
    # 419b76f, 2016, before the text was written) and its test fixture "expected failure: empty
    # layer" fails: the schema is stricter than the text. An invalid_manifest is an error that
    # fails the audit and blocks reclaim, so the text decides (docs/hostile-input.md).
    if layers is None:
        problems.append(f"layers: {MANIFEST}: layers is required")
    elif not isinstance(layers, list):
        problems.append(f"layers: {MANIFEST}: layers must be a list of descriptors (got {json_type(layers)})")
    else:
        for i, layer in enumerate(layers):
            problems += check_descriptor(layer, f"layers[{i}]")
    problems += _check_common(document, MANIFEST)
    config = document.get("config")
    if isinstance(config, dict) and config.get("mediaType") == EMPTY_CONFIG and "artifactType" not in document:
        problems.append(f"artifactType: {MANIFEST}: artifactType must be set when config.mediaType is {EMPTY_CONFIG}")
    return problems


def check_image_index(document: dict) -> list[str]:
    """image-index.md: manifests is a list of descriptors (with an optional platform each)."""
    manifests = document.get("manifests")
    if manifests is None:
        return [f"manifests: {INDEX}: manifests is required"]
    if not isinstance(manifests, list):
        return [f"manifests: {INDEX}: manifests must be a list of descriptors (got {json_type(manifests)})"]
    problems = []
    for i, entry in enumerate(manifests):
        problems += check_descriptor(entry, f"manifests[{i}]", index_entry=True)
    return problems + _check_common(document, INDEX)


def check_layout_marker(document: Any) -> list[str]:
    """image-layout.md: the ``oci-layout`` file is a JSON object with a string ``imageLayoutVersion``."""
    if not isinstance(document, dict):
        return [f"image-spec layout: oci-layout must be a JSON object (got {json_type(document)})"]
    version = document.get("imageLayoutVersion")
    if version is None:
        return ["image-spec layout: oci-layout must hold imageLayoutVersion"]
    if not isinstance(version, str):
        return [f"image-spec layout: imageLayoutVersion must be a string (got {json_type(version)})"]
    return []


def json_type(value: Any) -> str:
    """How a JSON value's type reads in a finding: 'an object', 'a list', 'null' ..."""
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)
