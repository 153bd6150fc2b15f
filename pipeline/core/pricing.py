"""What stored bytes cost a month in Cloud Storage: a list-price table, by storage class and location type.

Source: https://cloud.google.com/storage/pricing, "Data storage". The regional row is as
transcribed from the page on 2026-09-20; the dual- and multi-region rows come from an
undated copy of the same page in the same per-GiB-hour form. The page lists USD per
GiB-hour; a month is counted as 730 hours, as the page's own per-month figures are.
The rows are the ones the page shows by default: ``region`` is the us-central1 (Iowa)
price, ``dual-region`` the per-region dual-region SKU, and ``multi-region`` the
US/EU/ASIA multi-region price. Other regions cost up to about 30%
more. A dual-region is billed in each of its two regions, so its bytes cost twice the
SKU. List prices only: no discounts, no operations; the early-deletion fee is estimated apart.

Pure: no I/O.
"""

from __future__ import annotations

import math

from pipeline.compat import parse_iso_datetime
from pipeline.values import gcr_project

PRICE_SOURCE = "https://cloud.google.com/storage/pricing"
PRICE_DATE = "2026-09-20"
CURRENCY = "USD"
HOURS_PER_MONTH = 730
DAYS_PER_MONTH = HOURS_PER_MONTH / 24
GIB = 1024**3

STORAGE_CLASSES = ("STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE")
LOCATION_TYPES = ("region", "dual-region", "multi-region")

# USD per GiB-hour, as the pricing page lists them.
PER_GIB_HOUR: dict[str, dict[str, float]] = {
    "region": {"STANDARD": 0.000027397, "NEARLINE": 0.000013699, "COLDLINE": 0.000005479, "ARCHIVE": 0.000001644},
    "dual-region": {
        "STANDARD": 0.000030137,
        "NEARLINE": 0.000015068,
        "COLDLINE": 0.000006027,
        "ARCHIVE": 0.000001918,
    },
    "multi-region": {
        "STANDARD": 0.000035616,
        "NEARLINE": 0.000020548,
        "COLDLINE": 0.000011986,
        "ARCHIVE": 0.00000411,
    },
}
# A dual-region's bytes are billed in both of its regions.
REGIONS_BILLED = {"region": 1, "dual-region": 2, "multi-region": 1}

# Storage classes GCS no longer sells, priced as the class they became.
LEGACY_CLASSES = {
    "MULTI_REGIONAL": "STANDARD",
    "REGIONAL": "STANDARD",
    "DURABLE_REDUCED_AVAILABILITY": "STANDARD",
}
# Minimum storage durations (days): deleting earlier is billed as if stored that long.
MINIMUM_DAYS = {"STANDARD": 0, "NEARLINE": 30, "COLDLINE": 90, "ARCHIVE": 365}


def usd_per_gib_month(storage_class: str | None, location_type: str | None) -> float | None:
    """The list price of one GiB for a month, or None when the class or location type is unknown."""
    storage_class = LEGACY_CLASSES.get(storage_class or "", storage_class)
    location_type = (location_type or "").lower()
    rates = PER_GIB_HOUR.get(location_type)
    if rates is None or storage_class not in rates:
        return None
    return rates[storage_class] * HOURS_PER_MONTH * REGIONS_BILLED[location_type]


def days_short_of_minimum(storage_class: str | None, time_created: str | None, now: str) -> int:
    """Whole days an object still lacks of its class's minimum storage duration at ``now`` (0 when none).

    Deleting it earlier is billed as if it had been stored that long (an early-deletion fee).
    An unknown creation time or class counts as 0: the fee is then not estimated.
    """
    minimum = MINIMUM_DAYS.get(LEGACY_CLASSES.get(storage_class or "", storage_class or ""), 0)
    if not minimum or not time_created:
        return 0
    try:
        age = parse_iso_datetime(now) - parse_iso_datetime(time_created)
    except (TypeError, ValueError):
        return 0
    # An object written after the audit began (objects keep arriving while a scan runs) is new,
    # not older than new: it owes the whole minimum, never more.
    return max(0, math.ceil(minimum - max(0.0, age.total_seconds()) / 86400))


def early_deletion_fee(
    byte_days: dict[tuple[str, str | None], int], location_types: dict[str, str | None]
) -> dict[str, object]:
    """The one-time fee for deleting objects before their minimum duration: ``{(bucket, class): bytes x days}``."""
    fee, unpriced = 0.0, 0
    for (bucket, storage_class), amount in byte_days.items():
        rate = usd_per_gib_month(storage_class, location_types.get(bucket))
        if rate is None:
            unpriced += amount
        else:
            fee += amount / GIB * rate / DAYS_PER_MONTH
    return {"usd": round(fee, 6), "byte_days": sum(byte_days.values()), "unpriced_byte_days": unpriced}


def location_type_of(bucket: str, reported: str | None) -> tuple[str | None, str]:
    """The bucket's location type and where it came from: the bucket GET, else the GCR naming rule
    (GCR buckets live in the US, EU or ASIA multi-region), else unknown."""
    if reported:
        return reported.lower(), "bucket metadata"
    if gcr_project(bucket):
        return "multi-region", "GCR bucket name (GCR buckets are US, EU or ASIA multi-region)"
    return None, "unknown: the bucket's location type was not reported"


def unpriced_reason(rows: list[dict[str, object]]) -> str:
    """Why none of these bytes could be priced: an unknown location type or storage class."""
    unknown = sorted(
        {f"{r['storage_class'] or 'unknown class'} in {r['location_type'] or 'an unknown location'}" for r in rows}
    )
    return f"no list price for {', '.join(unknown)} ({PRICE_SOURCE}, {PRICE_DATE})"


def monthly_cost(
    bytes_by_class: dict[tuple[str, str | None], int], location_types: dict[str, str | None]
) -> dict[str, object]:
    """The monthly list price of ``{(bucket, storage class): bytes}``; bytes that cannot be priced are counted apart."""
    rows, total, unpriced = [], 0.0, 0
    for (bucket, storage_class), size in sorted(
        bytes_by_class.items(), key=lambda item: (item[0][0], item[0][1] or "")
    ):
        location_type = location_types.get(bucket)
        rate = usd_per_gib_month(storage_class, location_type)
        cost = None if rate is None else size / GIB * rate
        if cost is None:
            unpriced += size
        else:
            total += cost
        rows.append(
            {
                "bucket": bucket,
                "storage_class": storage_class,
                "location_type": location_type,
                "bytes": size,
                "usd_per_gib_month": None if rate is None else round(rate, 6),
                "usd_per_month": None if cost is None else round(cost, 6),
            }
        )
    priced = any(row["usd_per_month"] is not None for row in rows)
    return {
        "currency": CURRENCY,
        # Null, with the reason, when no byte could be priced: $0.00 would read as "free".
        "usd_per_month": round(total, 6) if priced or not rows else None,
        "reason": None if priced or not rows else unpriced_reason(rows),
        "by_class": rows,
        "unpriced_bytes": unpriced,
        "price_source": PRICE_SOURCE,
        "price_date": PRICE_DATE,
        "basis": "list prices per GiB-hour x 730 hours; no discounts or operations (early deletion apart)",
    }
