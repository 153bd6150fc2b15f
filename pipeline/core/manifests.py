"""Image manifests: parse the exact bytes a registry served into descriptors.

Five media types are understood: Docker schema 2 manifest and manifest list, OCI
image manifest and index, and legacy Docker schema 1 (``fsLayers[].blobSum``,
signed or not). Anything else, and anything malformed, raises ``ManifestError``
with a message that says what is wrong; the caller turns it into an
``invalid_manifest`` finding. Input is bounded before it is parsed: a size cap
and a nesting-depth cap reject huge or deeply nested documents with a clear
error instead of exhausting memory or the interpreter's recursion limit.

``load_json`` is the one bounded JSON reader for everything a source hands us
(manifests, ``tags.json``, an OCI layout's ``index.json``): besides the caps it
refuses what ``json.loads`` lets through or chokes on: integers beyond int64
(and beyond Python's int/str digit limit, where ``json.loads`` raises a bare
``ValueError``), non-finite numbers (``NaN``, ``1e999``), duplicate keys (parsers
disagree on which one counts) and lone surrogates (``"\\udc80"``, which no UTF-8
writer can encode). The image-spec's own rules live in ``oci_rules``.

No I/O here: bytes in, a ``Manifest`` out.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from pipeline.core import oci_rules
from pipeline.core.digests import is_digest
from pipeline.core.media_types import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
)
from pipeline.core.media_types import DOCKER_SCHEMA1 as SCHEMA1
from pipeline.core.media_types import DOCKER_SCHEMA1_SIGNED as SCHEMA1_SIGNED

IMAGE_TYPES = frozenset({DOCKER_MANIFEST, OCI_MANIFEST})
INDEX_TYPES = frozenset({DOCKER_MANIFEST_LIST, OCI_INDEX})
SCHEMA1_TYPES = frozenset({SCHEMA1, SCHEMA1_SIGNED})
MANIFEST_TYPES = IMAGE_TYPES | INDEX_TYPES | SCHEMA1_TYPES

# What a registry client sends in ``Accept``: every type parse_manifest understands.
ACCEPT = ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST, SCHEMA1_SIGNED, SCHEMA1])

# Layers that are fetched from elsewhere (``urls``) and never stored in the registry.
FOREIGN_LAYER_TYPES = frozenset(
    {
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    }
)

# distribution refuses manifests above 4 MiB; so do we, before parsing.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
# Real manifests nest 4-5 levels (platform, annotations); 32 is generous and safe.
MAX_JSON_DEPTH = 32
# An index of indexes of ... : deeper than this is refused rather than followed.
MAX_INDEX_DEPTH = 4
# Descriptors in one manifest: real images have tens of layers, indexes tens of platforms.
MAX_DESCRIPTORS = 10_000
# An int64 has at most 19 digits: longer integers are refused before Python converts them.
_INT64_DIGITS = 19

_CONTENT_TYPE_PARAMS = re.compile(r"\s*;.*$", re.S)


class ManifestError(ValueError):
    """The bytes are not a manifest we can trust; the message says why."""


def _parse_int(text: str) -> int:
    digits = len(text) - text.startswith("-")
    if digits > _INT64_DIGITS:
        raise ManifestError(f"an integer of {digits} digits is beyond int64; refusing to parse")
    value = int(text)
    if not oci_rules.INT64_MIN <= value <= oci_rules.INT64_MAX:
        raise ManifestError(f"integer {text} is beyond int64; refusing to parse")
    return value


def _parse_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ManifestError(f"number {text[:40]} is beyond a float's range; refusing to parse")
    return value


def _refuse_constant(name: str):
    raise ManifestError(f"{name} is not JSON (RFC 8259); refusing to parse")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        duplicate = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise ManifestError(f"key {_escape(duplicate)} appears twice in one object (parsers disagree which counts)")
    return document


def _escape(text: str, limit: int = 80) -> str:
    """A printable, encodable rendering of any string (lone surrogates become \\udc80)."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _first_surrogate(document: Any) -> str | None:
    """The path of the first string (key or value) holding a lone surrogate, or None."""
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            if not value.isascii():
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:
                    return f"{where or 'the document'} {_escape(value)}"
        elif isinstance(value, dict):
            for key, item in value.items():
                shown = key.encode("utf-8", "backslashreplace").decode("utf-8")  # the path must be writable too
                stack.append((f"{where}.{shown}" if where else shown, key))
                stack.append((f"{where}.{shown}" if where else shown, item))
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", item) for i, item in enumerate(value))
    return None


def load_json(
    data: bytes,
    *,
    max_bytes: int = MAX_MANIFEST_BYTES,
    max_depth: int = MAX_JSON_DEPTH,
    allow_surrogates: bool = False,
) -> Any:
    """Bounded, strict JSON: UTF-8 only, capped in size and nesting, int64 integers, finite
    numbers, unique keys and (unless ``allow_surrogates``) no lone surrogates.

    Raises ``ManifestError`` naming the problem. ``allow_surrogates`` is for documents that
    are checked entry by entry (an OCI layout's ``index.json``), where one bad string must
    not hide the other entries: the caller must then check each string it uses.
    """
    if not isinstance(data, (bytes, bytearray)):
        raise ManifestError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    check_bounds(data, max_bytes, max_depth)
    try:
        # Decode explicitly: json.loads(bytes) would also accept UTF-16/32, which no registry serves.
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ManifestError(f"not UTF-8 text: {err.reason} at byte {err.start}") from None
    try:
        document = json.loads(
            text,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_refuse_constant,
            object_pairs_hook=_unique_keys,
        )
    except json.JSONDecodeError as err:
        raise ManifestError(f"not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}") from None
    except ManifestError:
        raise
    except ValueError as err:  # Python's int/str digit limit, should a number slip past _parse_int
        raise ManifestError(f"number not accepted: {str(err)[:120]}") from None
    except RecursionError:  # belt and braces: check_bounds should have refused it
        raise ManifestError("JSON nested too deeply; refusing to parse") from None
    # A lone surrogate can only come from a \uD800-\uDFFF escape (UTF-8 decoding refuses the bytes),
    # so documents without one skip the walk.
    if not allow_surrogates and _SURROGATE_ESCAPE.search(text):
        where = _first_surrogate(document)
        if where is not None:
            raise ManifestError(f"{where}: a lone surrogate is not a Unicode character; refusing to parse")
    return document


def unicode_problem(text: str) -> str | None:
    """Why ``text`` cannot be written out as UTF-8 (a lone surrogate), or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return f"{_escape(text)} holds a lone surrogate, not a Unicode character"
    return None


@dataclass(frozen=True)
class Descriptor:
    """A reference from a manifest: ``role`` is config, layer, manifest (index child) or blobsum.

    ``size`` is None for schema 1 ``blobSum`` entries, which carry no size.
    ``foreign`` layers live outside the registry (``urls``) and are not expected in the bucket.
    """

    role: str
    digest: str
    size: int | None
    media_type: str | None = None
    platform: str | None = None
    foreign: bool = False
    algorithm: str | None = "sha256"  # of the digest; another than sha256 cannot be matched with a bucket


@dataclass(frozen=True)
class Manifest:
    media_type: str
    digest: str  # the SHA-256 of the bytes as served (for signed schema 1: of the signed payload)
    size: int
    blobs: tuple[Descriptor, ...] = ()  # config and layers (image manifests), blobSums (schema 1)
    children: tuple[Descriptor, ...] = field(default=())  # child manifests (indexes)
    unverifiable: tuple[str, ...] = ()  # referenced digests of another algorithm than sha256

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


def sha256_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def normalise_media_type(content_type: str | None) -> str | None:
    """``application/json; charset=utf-8`` -> ``application/json``; empty -> None."""
    if not content_type:
        return None
    return _CONTENT_TYPE_PARAMS.sub("", content_type).strip().lower() or None


def check_bounds(data: bytes, max_bytes: int = MAX_MANIFEST_BYTES, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Refuse input that is too large or nested too deeply, before ``json.loads`` sees it."""
    if len(data) > max_bytes:
        raise ManifestError(f"manifest is {len(data):,} bytes, above the {max_bytes:,}-byte limit")
    depth = _max_nesting(data)
    if depth > max_depth:
        raise ManifestError(f"JSON nested more than {max_depth} levels deep; refusing to parse")


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_BRACKETS = re.compile(rb"[\[\]{}]")


def _max_nesting(data: bytes) -> int:
    """The deepest bracket nesting outside string literals (an upper bound for malformed input)."""
    depth = deepest = 0
    for match in _BRACKETS.finditer(_STRING.sub(b'""', data)):
        if match.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def manifest_digest(data: bytes, media_type: str | None = None) -> str:
    """The digest a registry computes for these bytes.

    It is the SHA-256 of the bytes, except for signed schema 1 manifests, whose
    digest covers the payload without the ``signatures`` (libtrust's
    ``formatLength``/``formatTail`` reconstruction). Falls back to the plain
    SHA-256 when the signature envelope cannot be read.
    """
    if media_type == SCHEMA1_SIGNED or (media_type in (None, SCHEMA1) and b'"signatures"' in data):
        payload = _schema1_payload(data)
        if payload is not None:
            return sha256_of(payload)
    return sha256_of(data)


def _schema1_payload(data: bytes) -> bytes | None:
    try:
        document = json.loads(data)
        protected = document["signatures"][0]["protected"]
        header = json.loads(_b64url(protected))
        length, tail = int(header["formatLength"]), _b64url(header["formatTail"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    if not 0 < length <= len(data):
        return None
    return data[:length] + tail


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_manifest(data: bytes, media_type: str | None = None, *, max_bytes: int = MAX_MANIFEST_BYTES) -> Manifest:
    """Parse manifest bytes. ``media_type`` is what the server or file said (Content-Type), if anything.

    The document's own ``mediaType`` wins when present; a served type that
    contradicts it is an error. Without either, the structure decides
    (``schemaVersion: 1``, ``manifests``, or ``config`` + ``layers``).
    """
    if not isinstance(data, (bytes, bytearray)):
        raise ManifestError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    document = load_json(data, max_bytes=max_bytes)
    if not isinstance(document, dict):
        raise ManifestError(f"expected a JSON object, got {oci_rules.json_type(document)}")

    served = _specific_type(media_type)
    declared = document.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise ManifestError(f"mediaType: expected a string, got {oci_rules.json_type(declared)}")
    kind = _resolve_type(document, declared, served)
    digest = manifest_digest(data, kind)

    schema_version = document.get("schemaVersion")
    if isinstance(schema_version, bool) or not isinstance(schema_version, int):
        raise ManifestError(f"schemaVersion: expected a number, got {oci_rules.json_type(schema_version)}")
    if kind in SCHEMA1_TYPES:
        if schema_version != 1:
            raise ManifestError(f"schemaVersion: expected 1 for {kind}, got {schema_version}")
        return Manifest(kind, digest, len(data), blobs=_schema1_blobs(document))
    if schema_version != 2:
        raise ManifestError(f"schemaVersion: expected 2 for {kind}, got {schema_version}")
    if kind in INDEX_TYPES:
        entries = _array(document, "manifests")
        _obey(oci_rules.check_image_index(document))
        children = tuple(_descriptor(entry, "manifest") for entry in entries)
        unverifiable = tuple(d.digest for d in children if d.algorithm not in oci_rules.REGISTERED_ALGORITHMS)
        return Manifest(kind, digest, len(data), children=children, unverifiable=unverifiable)
    _array(document, "layers")
    _obey(oci_rules.check_image_manifest(document))
    config = _descriptor(document["config"], "config")
    layers = tuple(_descriptor(entry, "layer") for entry in document["layers"])
    blobs = (config, *layers)
    unverifiable = tuple(d.digest for d in blobs if d.algorithm != "sha256")
    return Manifest(kind, digest, len(data), blobs=blobs, unverifiable=unverifiable)


def _specific_type(media_type: str | None) -> str | None:
    """The served type, or None for a generic one, which says nothing about the manifest."""
    served = normalise_media_type(media_type)
    return None if served in ("application/json", "text/plain", "application/octet-stream") else served


def _hashing_type(data: bytes, media_type: str | None) -> str | None:
    """The type that decides how ``data`` is hashed, resolved as ``parse_manifest`` resolves it.

    The served type alone is not enough: bytes served with no type, or a generic one, would be
    hashed by the signed schema 1 rule whenever they hold ``"signatures"``, so an image manifest
    with an envelope appended could pass as its original digest, and a signed schema 1 manifest
    served as ``application/json`` would read as a mismatch.
    """
    try:
        document = load_json(data)
        if isinstance(document, dict):
            declared = document.get("mediaType")
            declared = declared if isinstance(declared, str) else None
            return _resolve_type(document, declared, _specific_type(media_type))
    except ManifestError:
        pass
    # Not a manifest the parser reads (or served as one type while it says another): a served
    # type alone must not pick the schema 1 rule, so only the SHA-256 of the bytes names it.
    return None


def _obey(problems: list[str]) -> None:
    """Raise on the image-spec violations found: the first three are named, the rest counted."""
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise ManifestError("; ".join(problems[:3]) + more)


def _resolve_type(document: dict, declared: str | None, served: str | None) -> str:
    if declared is not None and declared not in MANIFEST_TYPES:
        raise ManifestError(f"unknown media type {declared!r}")
    if served is not None and served not in MANIFEST_TYPES and declared is None:
        raise ManifestError(f"unknown media type {served!r}")
    if declared and served and served in MANIFEST_TYPES and served != declared:
        if not (served in SCHEMA1_TYPES and declared in SCHEMA1_TYPES):
            raise ManifestError(f"served as {served!r} but the document says {declared!r}")
    kind = declared or served
    if kind is None:
        # OCI allows mediaType to be absent; the structure says which it is.
        if document.get("schemaVersion") == 1:
            kind = SCHEMA1_SIGNED if "signatures" in document else SCHEMA1
        elif "manifests" in document:
            kind = OCI_INDEX
        elif "config" in document or "layers" in document:
            kind = OCI_MANIFEST
        else:
            raise ManifestError("no mediaType and neither manifests nor config/layers: not a manifest")
    if kind == SCHEMA1 and "signatures" in document:
        kind = SCHEMA1_SIGNED
    return kind


def _schema1_blobs(document: dict) -> tuple[Descriptor, ...]:
    layers = _array(document, "fsLayers")
    out = []
    for i, entry in enumerate(layers):
        where = f"fsLayers[{i}]"
        if not isinstance(entry, dict):
            raise ManifestError(f"{where}: expected an object, got {oci_rules.json_type(entry)}")
        out.append(Descriptor("blobsum", _digest(entry.get("blobSum"), f"{where}.blobSum"), None))
    # Schema 1 repeats empty layers; one reference per distinct blob is enough.
    return tuple(dict.fromkeys(out))


def _digest(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ManifestError(f"{where}: expected a digest string, got {oci_rules.json_type(value)}")
    if not is_digest(value):
        raise ManifestError(f"{where}: {value[:80]!r} is not sha256:<64 lowercase hex>")
    return value


def _descriptor(entry: dict, role: str) -> Descriptor:
    """A descriptor already checked by ``oci_rules.check_descriptor``.

    A layer is foreign when its media type says non-distributable or when it carries ``urls``
    (with any media type): clients fetch it from there, so the bucket need not hold it.
    A digest of another algorithm than sha256 cannot name an object in a GCR bucket: such a
    layer or config is treated like a foreign one (never missing) and reported as unverifiable.
    """
    media_type, digest = entry["mediaType"], entry["digest"]
    algorithm = oci_rules.digest_algorithm(digest)
    foreign = role == "layer" and (media_type in FOREIGN_LAYER_TYPES or bool(entry.get("urls")))
    if role != "manifest" and algorithm != "sha256":
        foreign = True
    platform = None
    if role == "manifest" and isinstance(entry.get("platform"), dict):
        p = entry["platform"]
        platform = "/".join(str(p[k]) for k in ("os", "architecture", "variant") if p.get(k))
    return Descriptor(role, digest, entry["size"], media_type, platform, foreign, algorithm)


def _required(document: dict, key: str) -> Any:
    if key not in document:
        raise ManifestError(f"{key}: missing")
    return document[key]


def _array(document: dict, key: str) -> list:
    value = _required(document, key)
    if not isinstance(value, list):
        raise ManifestError(f"{key}: expected a list, got {oci_rules.json_type(value)}")
    if len(value) > MAX_DESCRIPTORS:
        raise ManifestError(f"{key}: {len(value):,} entries, above the limit of {MAX_DESCRIPTORS:,}")
    return value


def verify(data: bytes, claimed: str, media_type: str | None = None) -> str | None:
    """None when the bytes hash to ``claimed``; otherwise the digest they do hash to.

    A sha512 claim (a registered algorithm) is checked with sha512.
    """
    algorithm = oci_rules.digest_algorithm(claimed)
    if algorithm == "sha512":
        actual = oci_rules.digest_of(data, algorithm)
        return None if actual == claimed else actual
    kind = _hashing_type(data, media_type)
    actual = manifest_digest(data, kind) if kind else sha256_of(data)
    if actual == claimed:
        return None
    # A signed schema 1 manifest may also be addressed by the digest of its full bytes.
    if sha256_of(data) == claimed:
        return None
    return actual
