"""How long a scan has left, from what the listing found and what the workers have done.

Objects and bytes left are exact once every listing has reported its count. Until then
there is no estimate, only "listing…": locally the reads start while listings still run
(``pipeline.runner.spreads_listed_objects``), and a total that is still growing would make
any estimate too short.
"""

from __future__ import annotations

import math


def eta_seconds(
    *,
    listed_objects: int,
    listed_bytes: int,
    done_objects: int,
    done_bytes: int,
    objects_per_s: float,
    bytes_per_s: float,
) -> float | None:
    """Seconds until every listed object is done at the rates seen so far; None when no rate is known.

    Objects left and bytes left are each projected at their own rate and the longer wins:
    a scan of large objects is bound by bytes, one of many small objects by the work per
    object, and what is left may be either kind. Objects decide when the scan is done:
    bytes read can exceed bytes listed (a read retried from byte 0 counts twice).
    """
    objects_left = max(0, listed_objects - done_objects)
    if objects_left == 0:
        return 0.0
    bytes_left = max(0, listed_bytes - done_bytes)
    estimates = []
    if objects_per_s > 0:
        estimates.append(objects_left / objects_per_s)
    if bytes_per_s > 0 and bytes_left:
        estimates.append(bytes_left / bytes_per_s)
    return max(estimates) if estimates else None


def format_duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``1h02m``, ``2d03h``: two units at most, rounded up so an ETA never reads 0 too early."""
    if seconds < 0 or math.isnan(seconds):
        raise ValueError(f"a duration cannot be {seconds!r} seconds")
    if math.isinf(seconds):
        return "∞"
    whole = math.ceil(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes + (secs > 0), 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours + (minutes > 0), 24)
    return f"{days}d{hours:02d}h"


def eta_text(listing_complete: bool, seconds: float | None) -> str:
    """What the progress line says about the time left."""
    if not listing_complete:
        return "ETA: listing…"
    if seconds is None:
        return "ETA: no rate yet"
    return f"ETA {format_duration(seconds)}"
