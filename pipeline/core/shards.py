"""Split the object names under a prefix into ranges that can be listed in parallel.

Blob names are ``<prefix>sha256:<hex>``, so hex prefixes spread them evenly. The
ranges between the hex shards (names that do not start with ``sha256:`` followed by
a lowercase hex digit) form the sweep, so every name under the prefix falls in
exactly one range and nothing listed is ever skipped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from itertools import product

from pipeline.core.digests import ALGORITHM, HEX_DIGITS

SHARD_COUNTS = (16, 256, 4096)


@dataclass(frozen=True, order=True)
class KeyRange:
    """Object names in ``[start, end)`` under ``prefix``; None means unbounded.

    ``prefix`` is the narrowest prefix that covers the range: it is what a store
    that ignores range offsets (the local emulator) still honours.
    """

    prefix: str
    start: str | None = None
    end: str | None = None

    def contains(self, name: str) -> bool:
        return (
            name.startswith(self.prefix)
            and (self.start is None or name >= self.start)
            and (self.end is None or name < self.end)
        )

    @property
    def label(self) -> str:
        if self.start is None and self.end is None:
            return self.prefix
        return f"[{self.start or self.prefix}, {self.end or '…'})"


def successor(prefix: str) -> str:
    """The smallest string greater than every string that starts with ``prefix``."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def plan_ranges(prefix: str, shard_count: int) -> list[KeyRange]:
    """Hex shards plus the sweep ranges between them, covering ``prefix`` exactly once."""
    if shard_count not in SHARD_COUNTS:
        raise ValueError(f"shard_count must be one of {SHARD_COUNTS}, got {shard_count}")
    depth = {16: 1, 256: 2, 4096: 3}[shard_count]
    blob_prefix = f"{prefix}{ALGORITHM}:"
    shard_prefixes = [blob_prefix + "".join(p) for p in product(HEX_DIGITS, repeat=depth)]

    ranges = [KeyRange(p) for p in shard_prefixes]
    lower: str | None = prefix
    for shard_prefix in shard_prefixes:
        if lower < shard_prefix:
            ranges.append(_sweep(prefix, lower, shard_prefix))
        lower = successor(shard_prefix)
    ranges.append(_sweep(prefix, lower, None))
    return sorted(ranges, key=lambda r: r.start or r.prefix)


def _sweep(prefix: str, start: str, end: str | None) -> KeyRange:
    narrowest = prefix if end is None else os.path.commonprefix([start, end])
    # A range that starts exactly at its prefix needs no lower bound.
    return KeyRange(narrowest, None if start == narrowest else start, end)
