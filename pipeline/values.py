"""Checkers for single configuration values, shared by every config section.

Each returns the clean value or raises ``ValueError("expected …")``; the config
loader adds where the value came from.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")
# The bucket names GCR created: artifacts.PROJECT.appspot.com and its us./eu./asia. variants
# (a domain-scoped project example.com:p as artifacts.example.com:p.appspot.com); groups: region, project.
GCR_BUCKET_PATTERN = re.compile(r"(?:(us|eu|asia)\.)?artifacts\.([a-z0-9.:-]+)\.appspot\.com")
_SIZE_RE = re.compile(r"\s*([0-9]+)\s*(B|KiB|MiB|GiB)?\s*")
_SIZE_UNITS = {None: 1, "B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}


def gcr_project(bucket: str) -> str | None:
    """The project a GCR bucket belongs to, from its name; None for a bucket not in GCR form."""
    match = GCR_BUCKET_PATTERN.fullmatch(bucket or "")
    return match.group(2) if match else None


def human_size(size: int) -> str:
    for unit in ("GiB", "MiB", "KiB"):
        if size % _SIZE_UNITS[unit] == 0:
            return f"{size // _SIZE_UNITS[unit]}{unit}"
    return f"{size}B"


def usd_text(amount: float) -> str:
    """``$34.50``; an amount below a cent but above nothing is not rounded to a saving of $0.00."""
    if 0 < amount < 0.01:
        return "<$0.01"
    return f"${amount:,.2f}"


def decimal_size(size: int) -> str:
    """``512 B``, ``2.1 MB``, ``10.0 TB``: decimal units, as prices and the cost model count them."""
    if size < 1000:
        return f"{size} B"
    # The smallest unit whose rounded figure stays under 1000: 999,999 bytes read "1.0 MB", not "1000.0 kB".
    for unit, scale in (("kB", 1e3), ("MB", 1e6), ("GB", 1e9)):
        if round(size / scale, 1) < 1000:
            return f"{size / scale:.1f} {unit}"
    return f"{size / 1e12:,.1f} TB"


def size_in(low: int, high: int, example: str) -> Callable[[Any], int]:
    """Bytes from an int or a string such as ``"256KiB"`` or ``"1 MiB"``, within ``[low, high]``."""

    def check(value: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            size = value
        elif isinstance(value, str) and (match := _SIZE_RE.fullmatch(value)):
            size = int(match.group(1)) * _SIZE_UNITS[match.group(2)]
        else:
            raise ValueError(f"expected a size in bytes or with a unit, e.g. {example}")
        if not low <= size <= high:
            raise ValueError(f"expected a size from {human_size(low)} to {human_size(high)}")
        return size

    return check


def whole_number_in(low: int, high: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected a whole number from {low} to {high}")
        if not low <= value <= high:
            raise ValueError(f"expected a whole number from {low} to {high}, got {value}")
        return value

    return check
