"""The fleet rows and terminal lines (pipeline/core/fleet_view.py): cost ties, missing fields, two buckets or more."""

from __future__ import annotations

import pytest

from pipeline.core.fleet_view import fleet_lines, fleet_view
from tests.test_core_fleet_view import entry


def test_a_bucket_priced_at_nothing_comes_before_an_unpriced_one_whatever_their_names():
    fleet = {"a-unpriced": entry("cannot_tell", None), "b-free": entry("safe_to_delete", 0.0)}
    assert [r["bucket"] for r in fleet_view(fleet)["rows"]] == ["b-free", "a-unpriced"]


def test_an_entry_without_the_images_total_counts_its_listed_images():
    # A summary written before images_only_here_total existed still totals its images.
    old = entry("would_lose_images", 1.0, images=2)
    del old["images_only_here_total"]
    fleet = fleet_view({"b": old})
    assert fleet["rows"][0]["images_only_here"] == 2
    assert fleet["by_verdict"]["would_lose_images"]["images_only_here"] == 2
    assert fleet["headline"] == "1 bucket would lose 2 images"


def test_an_entry_without_a_headline_shows_an_empty_one():
    bare = entry("in_use", 1.0)
    del bare["headline"]
    assert fleet_view({"b": bare})["rows"][0]["headline"] == ""


def test_two_buckets_are_a_fleet_with_one_exact_line_each():
    fleet = fleet_view(
        {
            "artifacts.p.appspot.com": entry("would_lose_images", 2.5, images=1, bytes_=2_100_000),
            "eu.artifacts.q.appspot.com": entry("cannot_tell", None, bytes_=None, project=None),
        }
    )
    assert fleet_lines({"fleet": fleet}) == [
        "fleet: 1 bucket would lose 1 image; 1 cannot tell",
        "  artifacts.p.appspot.com     would_lose_images  2.1 MB, $2.50/month, 1 image only here  (project p)",
        "  eu.artifacts.q.appspot.com  cannot_tell        size unknown, cost unknown  (project -)",
    ]


@pytest.mark.parametrize(("buckets", "lines"), [(1, 0), (2, 3), (3, 4)])
def test_the_fleet_shows_from_two_buckets_on(buckets, lines):
    fleet = fleet_view({f"b-{i}": entry("in_use", 1.0) for i in range(buckets)})
    assert len(fleet_lines({"fleet": fleet})) == lines
