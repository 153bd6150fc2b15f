"""Pure: digests in object names, and the shard plan that lists every name exactly once."""

import random
from itertools import pairwise

import pytest

from pipeline.core.digests import is_digest, parse_blob_name
from pipeline.core.shards import KeyRange, plan_ranges, successor

PREFIX = "containers/images/"
HEX = "0123456789abcdef"


def test_well_formed_name_yields_its_digest():
    digest = "sha256:" + "ab" * 32
    assert parse_blob_name(PREFIX + digest, PREFIX).digest == digest
    assert is_digest(digest)


@pytest.mark.parametrize(
    "leaf, problem",
    [
        ("README", "no '<algorithm>:' part"),
        ("sha512:" + "a" * 128, "algorithm 'sha512' is not sha256"),
        ("sha256:" + "AB" * 32, "lowercase"),
        ("sha256:" + "a" * 63, "63 hex digits, expected 64"),
        ("sha256:" + "a" * 65, "65 hex digits, expected 64"),
        ("sha256:" + "g" * 64, "other than lowercase hex"),
        ("sha256:", "0 hex digits"),
        ("nested/sha256:" + "a" * 64, "nested below the prefix"),
        ("", "the prefix itself"),
    ],
)
def test_malformed_names_say_why(leaf, problem):
    parsed = parse_blob_name(PREFIX + leaf, PREFIX)
    assert parsed.digest is None
    assert problem in parsed.problem


def test_successor_is_the_first_string_after_the_prefix():
    assert successor("sha256:9") == "sha256::"
    assert "sha256:9" + "f" * 63 < successor("sha256:9")


def _random_names(rng, count):
    alphabet = HEX + "ABCDEFGHIJKLMNOPQRSTUVWXYZghijklmnopqrstuvwxyz:;._-/~"
    names = []
    for _ in range(count):
        kind = rng.random()
        if kind < 0.6:
            tail = "sha256:" + "".join(rng.choice(HEX) for _ in range(64))
        elif kind < 0.8:
            tail = "sha256:" + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 5)))
        else:
            tail = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        names.append(PREFIX + tail)
    return names


@pytest.mark.parametrize("shard_count", [16, 256, 4096])
def test_the_ranges_tile_the_prefix_end_to_end(shard_count):
    """Each range holds exactly ``[max(prefix, start), min(successor(prefix), end))``, so ranges
    that meet end to end from the prefix to its successor hold every name under it once: a proof
    for all names, where sampling names can only try some."""
    ranges = plan_ranges(PREFIX, shard_count)
    assert len([r for r in ranges if r.start is None and r.end is None]) == shard_count
    spans = sorted(
        (max(r.prefix, r.start or r.prefix), min(successor(r.prefix), r.end or successor(r.prefix))) for r in ranges
    )
    assert all(low < high for low, high in spans)
    assert spans[0][0] == PREFIX and spans[-1][1] == successor(PREFIX)
    assert all(high == next_low for (_, high), (next_low, _) in pairwise(spans))


# The 4,096-range plan is tried on fewer names: each name is checked against every range,
# and under `make mutate` each of those calls goes through mutmut's trampoline.
@pytest.mark.parametrize("shard_count, sampled", [(16, 3000), (256, 3000), (4096, 200)])
def test_every_name_under_the_prefix_falls_in_exactly_one_range(shard_count, sampled):
    ranges = plan_ranges(PREFIX, shard_count)
    names = _random_names(random.Random(shard_count), sampled) + [
        PREFIX,
        PREFIX + "sha256:",
        PREFIX + "sha256:" + "f" * 64,
        PREFIX + "sha256:" + "0" * 64,
        PREFIX + "sha256:9",
        PREFIX + "sha256::",
        PREFIX + "sha256:g",
        PREFIX + "\U0010ffff",
    ]
    for name in names:
        holders = [r for r in ranges if r.contains(name)]
        assert len(holders) == 1, (name, holders)


def test_names_outside_the_prefix_fall_in_no_range():
    ranges = plan_ranges(PREFIX, 16)
    for name in ["containers/imagesX", "containers/repositories/x", "zzz", "a"]:
        assert not any(r.contains(name) for r in ranges)


def test_sweep_ranges_use_the_narrowest_prefix():
    sweep = [r for r in plan_ranges(PREFIX, 16) if r.end or r.start]
    assert KeyRange(PREFIX, None, PREFIX + "sha256:0") in sweep
    assert KeyRange(PREFIX + "sha256:", PREFIX + "sha256::", PREFIX + "sha256:a") in sweep
    assert KeyRange(PREFIX, PREFIX + "sha256:g", None) in sweep
    assert len(sweep) == 3


def test_unsupported_shard_count_is_refused():
    with pytest.raises(ValueError, match="shard_count must be one of"):
        plan_ranges(PREFIX, 10)


@pytest.mark.parametrize(
    "name, problem",
    [
        ("other/sha256:" + "a" * 64, "name is outside the scanned prefix 'containers/images/'"),
        ("containers/images/", "name is the prefix itself"),
        ("containers/images/x/sha256:" + "a" * 64, "name is nested below the prefix; expected sha256:<64 hex>"),
        ("containers/images/upload.tmp", "name has no '<algorithm>:' part; expected sha256:<64 hex>"),
        ("containers/images/sha512:" + "a" * 128, "algorithm 'sha512' is not sha256"),
        ("containers/images/sha256:" + "A" * 64, "hex digits must be lowercase"),
        ("containers/images/sha256:" + "a" * 63 + "B", "hex digits must be lowercase"),
        ("containers/images/sha256:" + "a" * 63 + "G", "digest has characters other than lowercase hex"),
        ("containers/images/sha256:ab:cd", "digest has characters other than lowercase hex"),
        ("containers/images/sha256:" + "a" * 63, "digest has 63 hex digits, expected 64"),
    ],
)
def test_a_malformed_name_says_what_is_wrong_word_for_word(name, problem):
    parsed = parse_blob_name(name, "containers/images/")
    assert (parsed.digest, parsed.problem) == (None, problem)
