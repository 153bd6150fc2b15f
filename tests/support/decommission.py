"""summary.json's ``decommission`` and ``fleet`` blocks, shaped exactly as docs/report.md gives them.

The page renders these blocks and never computes them (pipeline/core/decommission.py and
pipeline/core/fleet_view.py do). The page's tests build them here, pure, from a few facts
per bucket, so that they do not depend on how those modules reach a verdict.
"""

from __future__ import annotations

from typing import Any

from pipeline.core.fleet_view import VERDICTS, fleet_view
from pipeline.values import gcr_project as project_of

SOFT_DELETE_7_DAYS = "deleted objects stay restorable, and billed at their storage class, for 7 day(s) (soft delete)"
VERDICT_ORDER = VERDICTS


def image_only_here(n: int, run_dir: str = "./scrub-reports/r1", **fields: Any) -> dict[str, Any]:
    digest = f"sha256:{n:064x}"
    image = {
        "config_digest": digest,
        "bytes": 1_000_000 + n,
        "created": "2019-03-01T10:00:00Z",
        "os": "linux",
        "architecture": "amd64",
        "labels": {"team": "payments", "git-sha": f"{n:040x}"},
        "last_history": '/bin/sh -c #(nop)  CMD ["/app/server"]',
        "export_command": f"registry-scrub export {run_dir} {digest} --to ./exported/{n}",
    }
    image.update(fields)
    return image


def image_in_use(repository: str, *tags: str, n: int = 7) -> dict[str, Any]:
    return {
        "source": "registry http://127.0.0.1:5000",
        "repository": repository,
        "tags": list(tags),
        "manifest_digest": f"sha256:{n:064x}",
    }


def entry(
    bucket: str,
    verdict: str,
    *,
    objects: int,
    size: int,
    usd: float | None,
    headline: str | None = None,
    reasons: list[str] | None = None,
    images_only_here: list[dict] | None = None,
    images_only_here_total: int | None = None,
    images_in_use: list[dict] | None = None,
    unpriced_reason: str | None = None,
) -> dict[str, Any]:
    only = list(images_only_here or ())
    in_use = list(images_in_use or ())
    return {
        "verdict": verdict,
        "headline": headline or f"{verdict} headline for {bucket}",
        "project": project_of(bucket),
        "reasons": list(reasons or [f"every object of gs://{bucket} was read"]),
        "images_only_here": only,
        "images_only_here_total": len(only) if images_only_here_total is None else images_only_here_total,
        "images_in_use": in_use,
        "images_in_use_total": len(in_use),
        "objects": objects,
        "bytes": size,
        "monthly_cost": {
            "usd_per_month": usd,
            "unpriced_bytes": 0 if usd is not None else size,
            "reason": None if usd is not None else (unpriced_reason or "the bucket's location is unknown"),
        },
        "soft_delete": SOFT_DELETE_7_DAYS,
        "soft_delete_retention_seconds": 604800,
    }


def fleet_of(decommission: dict[str, dict]) -> dict[str, Any]:
    """The fleet block for these verdicts, as a run writes it (the real fold, not a copy of it)."""
    return fleet_view(decommission)
