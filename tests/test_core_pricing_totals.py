"""Pure: the monthly cost's total, rounding and unpriced reason as ``summary.json`` shows them."""

from __future__ import annotations

import pytest

from pipeline.core import pricing

GIB = pricing.GIB
COMMON = {
    "currency": "USD",
    "unpriced_bytes": 0,
    "price_source": "https://cloud.google.com/storage/pricing",
    "price_date": "2026-09-20",
    "basis": "list prices per GiB-hour x 730 hours; no discounts or operations (early deletion apart)",
}


def test_nothing_to_price_costs_nothing_and_needs_no_reason():
    assert pricing.monthly_cost({}, {}) == {**COMMON, "usd_per_month": 0.0, "reason": None, "by_class": []}


def test_the_total_is_rounded_to_six_places_like_its_rows():
    # $0.01999981 + $0.01000027 = $0.03000008: shown as $0.03, never with a seventh digit.
    cost = pricing.monthly_cost({("b", "STANDARD"): GIB, ("b", "NEARLINE"): GIB}, {"b": "region"})
    assert cost["usd_per_month"] == 0.03
    assert [row["usd_per_month"] for row in cost["by_class"]] == [0.01, 0.02]


def test_when_nothing_can_be_priced_the_reason_names_every_unknown_once_in_order():
    sizes = {("b", None): 3, ("b", "SUPERCOLD"): 4, ("c", "STANDARD"): 5, ("c", "ARCHIVE"): 1, ("d", "STANDARD"): 2}
    cost = pricing.monthly_cost(sizes, {"b": "region"})
    assert cost["usd_per_month"] is None and cost["unpriced_bytes"] == 15
    assert cost["reason"] == (
        "no list price for ARCHIVE in an unknown location, STANDARD in an unknown location, "
        "SUPERCOLD in region, unknown class in region (https://cloud.google.com/storage/pricing, 2026-09-20)"
    )
    assert [(r["bucket"], r["storage_class"]) for r in cost["by_class"]] == [
        ("b", None),
        ("b", "SUPERCOLD"),
        ("c", "ARCHIVE"),
        ("c", "STANDARD"),
        ("d", "STANDARD"),
    ]


@pytest.mark.parametrize(
    "storage_class, location_type, per_gib_month",
    [
        ("REGIONAL", "region", 0.02),  # a legacy class, priced as Standard
        ("DURABLE_REDUCED_AVAILABILITY", "Region", 0.02),
        ("ARCHIVE", "dual-region", 0.0028),  # billed in both regions
        ("COLDLINE", "multi-region", 0.00875),
        ("STANDARD", "regional", None),
        ("", "region", None),
    ],
)
def test_a_row_shows_its_price_per_gib_month_to_six_places(storage_class, location_type, per_gib_month):
    (row,) = pricing.monthly_cost({("b", storage_class): GIB}, {"b": location_type})["by_class"]
    assert row["usd_per_gib_month"] == per_gib_month
    assert row["location_type"] == location_type


@pytest.mark.parametrize("storage_class", ["STANDARD", "REGIONAL", None])
def test_a_class_without_a_minimum_owes_no_days_even_for_an_object_written_after_the_audit_began(storage_class):
    # Objects keep arriving while a scan runs: created after `now` must not read as days still owed.
    assert pricing.days_short_of_minimum(storage_class, "2026-11-03T00:00:00Z", "2026-11-02T00:00:00Z") == 0


@pytest.mark.parametrize(("storage_class", "minimum"), [("NEARLINE", 30), ("COLDLINE", 90), ("ARCHIVE", 365)])
def test_an_object_written_after_the_audit_began_owes_its_class_minimum_and_no_more(storage_class, minimum):
    # It was 31 days for NEARLINE: a negative age was added to the minimum, overstating the fee.
    assert pricing.days_short_of_minimum(storage_class, "2026-11-03T00:00:00Z", "2026-11-02T00:00:00Z") == minimum
    assert pricing.days_short_of_minimum(storage_class, "2026-11-02T00:00:00Z", "2026-11-02T00:00:00Z") == minimum
