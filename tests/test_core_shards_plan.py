"""Pure: the exact shard plan of 16 ranges and its sweeps, their labels, and range bounds at the edge."""

from __future__ import annotations

import pytest

from pipeline.core.shards import KeyRange, plan_ranges, successor

PREFIX = "containers/images/"
BLOB = PREFIX + "sha256:"


def test_sixteen_shards_are_one_per_hex_digit_and_three_sweeps_in_name_order():
    expected = (
        [KeyRange(PREFIX, None, BLOB + "0")]
        + [KeyRange(BLOB + digit) for digit in "0123456789"]
        + [KeyRange(BLOB, BLOB + ":", BLOB + "a")]  # after "9" comes ":" in byte order, before "a"
        + [KeyRange(BLOB + digit) for digit in "abcdef"]
        + [KeyRange(PREFIX, BLOB + "g", None)]
    )
    assert plan_ranges(PREFIX, 16) == expected


def test_256_shards_sweep_every_gap_between_shards():
    plan = plan_ranges(PREFIX, 256)
    # One sweep before the first shard and one after the last; one inside each of the 16 runs
    # (after "x9" comes ":", not "xa") and one between runs (after "xf" comes "xg", not the next "y0").
    sweeps = [r for r in plan if r.start is not None or r.end is not None]
    assert len(plan) - len(sweeps) == 256
    assert len(sweeps) == 1 + 16 + 15 + 1
    assert plan[0] == KeyRange(PREFIX, None, BLOB + "00")
    assert KeyRange(BLOB + "0", BLOB + "0:", BLOB + "0a") in sweeps
    assert KeyRange(BLOB, BLOB + "0g", BLOB + "10") in sweeps


@pytest.mark.parametrize(
    "key_range, label",
    [
        (KeyRange(BLOB + "a"), BLOB + "a"),
        (KeyRange(PREFIX, None, BLOB + "0"), f"[{PREFIX}, {BLOB}0)"),
        (KeyRange(BLOB, BLOB + ":", BLOB + "a"), f"[{BLOB}:, {BLOB}a)"),
        (KeyRange(PREFIX, BLOB + "g", None), f"[{BLOB}g, …)"),
    ],
)
def test_a_range_is_labelled_by_its_prefix_or_its_bounds(key_range, label):
    assert key_range.label == label


@pytest.mark.parametrize(
    "name, inside",
    [
        (BLOB + "9", True),  # the start bound itself is in the range
        (BLOB + "9f", True),
        (BLOB + "a", False),  # the end bound is not
        (BLOB + "8", False),
        ("other/" + BLOB + "9", False),  # bounds hold, prefix does not
    ],
)
def test_a_range_holds_its_start_but_not_its_end(name, inside):
    assert KeyRange(PREFIX, BLOB + "9", BLOB + "a").contains(name) is inside


def test_the_successor_of_a_prefix_bumps_only_its_last_character():
    assert successor(BLOB + "0f") == BLOB + "0g"
    assert successor("a") == "b"


def test_an_unsupported_shard_count_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match=r"^shard_count must be one of \(16, 256, 4096\), got 64$"):
        plan_ranges(PREFIX, 64)
