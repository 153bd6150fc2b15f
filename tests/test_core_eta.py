"""pipeline/core/eta.py: the time a scan has left, from the listed totals and the rates so far."""

from __future__ import annotations

import math

import pytest

from pipeline.core.eta import eta_seconds, eta_text, format_duration


def eta(**kwargs):
    listed = dict(listed_objects=100, listed_bytes=1000)
    nothing_done = dict(done_objects=0, done_bytes=0, objects_per_s=0.0, bytes_per_s=0.0)
    return eta_seconds(**(listed | nothing_done | kwargs))


def test_objects_left_at_the_object_rate():
    # 60 objects left at 2 objects/s; bytes left 400 at 100 B/s take only 4 s.
    assert eta(done_objects=40, done_bytes=600, objects_per_s=2.0, bytes_per_s=100.0) == 30.0


def test_bytes_left_at_the_byte_rate_when_they_take_longer():
    # Large objects left: 900 bytes at 10 B/s is 90 s; 50 objects at 5 objects/s would be 10 s.
    assert eta(done_objects=50, done_bytes=100, objects_per_s=5.0, bytes_per_s=10.0) == 90.0


def test_one_rate_alone_is_enough():
    assert eta(done_objects=90, objects_per_s=2.0) == 5.0
    assert eta(done_objects=10, done_bytes=500, bytes_per_s=50.0) == 10.0


def test_no_rate_no_estimate():
    assert eta(done_objects=10) is None
    assert eta(done_objects=10, done_bytes=1000, bytes_per_s=50.0) is None  # no bytes left, no object rate


def test_every_object_done_is_zero_even_if_more_bytes_were_read_or_fewer():
    # Rereads count bytes twice; a vanished object counts none: objects decide.
    assert eta(done_objects=100, done_bytes=1500, objects_per_s=1.0, bytes_per_s=1.0) == 0.0
    assert eta(done_objects=100, done_bytes=10) == 0.0
    assert eta(done_objects=120, objects_per_s=1.0) == 0.0


@pytest.mark.parametrize(
    "seconds, text",
    [
        (0, "0s"),
        (0.2, "1s"),  # rounded up: an ETA reads 0s only when nothing is left
        (59, "59s"),
        (59.5, "1m00s"),
        (65, "1m05s"),
        (3599, "59m59s"),
        (3600, "1h00m"),
        (3601, "1h01m"),
        (7199, "2h00m"),
        (86399, "1d00h"),
        (90000, "1d01h"),
        (math.inf, "∞"),
    ],
)
def test_durations_read_in_two_units_at_most(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [-1, math.nan])
def test_a_duration_is_never_negative(seconds):
    with pytest.raises(ValueError, match="a duration cannot be"):
        format_duration(seconds)


def test_eta_text_says_listing_until_every_listing_reported():
    assert eta_text(False, 30.0) == "ETA: listing…"
    assert eta_text(True, None) == "ETA: no rate yet"
    assert eta_text(True, 125.0) == "ETA 2m05s"
    assert eta_text(True, 0.0) == "ETA 0s"


def test_rates_below_one_per_second_still_estimate():
    assert eta_seconds(
        listed_objects=2, listed_bytes=0, done_objects=1, done_bytes=0, objects_per_s=0.5, bytes_per_s=0
    ) == pytest.approx(2.0)
    assert eta_seconds(
        listed_objects=2, listed_bytes=10, done_objects=1, done_bytes=9, objects_per_s=0, bytes_per_s=0.25
    ) == pytest.approx(4.0)


def test_days_round_up_by_the_hour():
    assert format_duration(24 * 3600 + 60) == "1d01h"  # 24h01m reads as 1d01h, never as 1d00h
    assert format_duration(2 * 86400 - 1) == "2d00h"
