"""Content digests and the object names that carry them."""

from __future__ import annotations

import re
from dataclasses import dataclass

ALGORITHM = "sha256"
HEX_DIGITS = "0123456789abcdef"
_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")


def is_digest(value: str) -> bool:
    """True for ``sha256:`` followed by exactly 64 lowercase hex digits."""
    return isinstance(value, str) and _DIGEST_RE.fullmatch(value) is not None


def digest_of_hex(hex_digest: str) -> str:
    return f"{ALGORITHM}:{hex_digest}"


@dataclass(frozen=True)
class ParsedName:
    """What an object name under the scanned prefix says about its content.

    ``digest`` is None when the name is not a well-formed digest; ``problem`` then says why.
    """

    digest: str | None
    problem: str | None = None


def parse_blob_name(object_name: str, prefix: str) -> ParsedName:
    """Read the digest a GCR blob object claims by its name.

    ``prefix`` is the scanned prefix (for GCR ``containers/images/``); the name
    must be the prefix followed by a digest and nothing else.
    """
    if not object_name.startswith(prefix):
        return ParsedName(None, f"name is outside the scanned prefix {prefix!r}")
    leaf = object_name[len(prefix) :]
    if is_digest(leaf):
        return ParsedName(leaf)
    if not leaf:
        return ParsedName(None, "name is the prefix itself")
    if "/" in leaf:
        return ParsedName(None, "name is nested below the prefix; expected sha256:<64 hex>")
    algorithm, sep, hex_part = leaf.partition(":")
    if not sep:
        return ParsedName(None, "name has no '<algorithm>:' part; expected sha256:<64 hex>")
    if algorithm != ALGORITHM:
        return ParsedName(None, f"algorithm {algorithm!r} is not sha256")
    if hex_part.lower() != hex_part and re.fullmatch(r"[0-9a-fA-F]{64}", hex_part):
        return ParsedName(None, "hex digits must be lowercase")
    if not re.fullmatch(r"[0-9a-f]*", hex_part):
        return ParsedName(None, "digest has characters other than lowercase hex")
    return ParsedName(None, f"digest has {len(hex_part)} hex digits, expected 64")
