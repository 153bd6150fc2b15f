"""The fleet: every scanned bucket's decommission verdict in one view, with totals on top.

Pure: folds ``summary["decommission"]`` (``pipeline.core.decommission``, one entry per
scanned bucket; docs/report.md) into ``summary["fleet"]``, which the terminal summary,
report.html and ``summary.json`` show alike. Not to be confused with ``pipeline.fleet``,
the count of SDK worker processes.
"""

from __future__ import annotations

from typing import Any

from pipeline.values import decimal_size, usd_text

VERDICTS = ("safe_to_delete", "would_lose_images", "in_use", "cannot_tell")


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _row(bucket: str, entry: dict[str, Any]) -> dict[str, Any]:
    verdict = entry.get("verdict")
    cost = entry.get("monthly_cost") or {}
    images = entry.get("images_only_here_total")
    if images is None:
        images = len(entry.get("images_only_here") or [])
    return {
        "bucket": bucket,
        "project": entry.get("project"),
        # A verdict this view does not know is never counted as safe.
        "verdict": verdict if verdict in VERDICTS else "cannot_tell",
        "headline": entry.get("headline") or "",
        "bytes": entry.get("bytes"),
        "usd_per_month": cost.get("usd_per_month"),
        "images_only_here": images,
    }


def headline(by_verdict: dict[str, dict[str, Any]], unpriced_safe: int) -> str:
    """``12 buckets safe to delete, saving $34.50 a month; 3 would lose 17 images; 1 cannot tell``."""
    parts = []
    for verdict in VERDICTS:
        n = by_verdict[verdict]["buckets"]
        if not n:
            continue
        if verdict == "safe_to_delete":
            saving = usd_text(by_verdict[verdict]["usd_per_month"])
            if unpriced_safe == n:
                text = "safe to delete, saving an amount that could not be priced"
            else:
                unpriced = f" ({unpriced_safe} not priced)" if unpriced_safe else ""
                text = f"safe to delete, saving {saving} a month{unpriced}"
        elif verdict == "would_lose_images":
            text = f"would lose {_plural(by_verdict[verdict]['images_only_here'], 'image', 'images')}"
        else:
            text = verdict.replace("_", " ")
        count = _plural(n, "bucket", "buckets") if not parts else str(n)
        parts.append(f"{count} {text}")
    return "; ".join(parts) or "no bucket was scanned"


def fleet_view(decommission: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``summary["fleet"]``: totals by verdict, a headline, and one row per bucket, costliest first."""
    rows = [_row(bucket, entry) for bucket, entry in decommission.items()]
    rows.sort(key=lambda r: (-(r["usd_per_month"] or 0), r["usd_per_month"] is None, r["bucket"]))
    by_verdict = {verdict: {"buckets": 0, "usd_per_month": 0.0, "images_only_here": 0} for verdict in VERDICTS}
    unpriced_safe = 0
    for row in rows:
        totals = by_verdict[row["verdict"]]
        totals["buckets"] += 1
        totals["usd_per_month"] += row["usd_per_month"] or 0
        totals["images_only_here"] += row["images_only_here"] or 0
        unpriced_safe += row["verdict"] == "safe_to_delete" and row["usd_per_month"] is None
    for totals in by_verdict.values():
        totals["usd_per_month"] = round(totals["usd_per_month"], 6)
    return {
        "buckets": len(rows),
        "by_verdict": by_verdict,
        "headline": headline(by_verdict, unpriced_safe),
        "rows": rows,
    }


def fleet_of_summary(summary: dict[str, Any]) -> dict[str, Any] | None:
    """The fleet block of a summary, or None when the summary has no decommission verdicts to fold."""
    decommission = summary.get("decommission")
    return fleet_view(decommission) if isinstance(decommission, dict) else None


def fleet_lines(summary: dict[str, Any]) -> list[str]:
    """The terminal's fleet: with several buckets, the headline, then one line per bucket by cost."""
    fleet = summary.get("fleet")
    if not fleet or fleet.get("buckets", 0) < 2:
        return []
    rows = fleet["rows"]
    width = max(len(r["bucket"]) for r in rows)
    lines = [f"fleet: {fleet['headline']}"]
    for r in rows:
        size = "size unknown" if r["bytes"] is None else decimal_size(r["bytes"])
        cost = "cost unknown" if r["usd_per_month"] is None else f"{usd_text(r['usd_per_month'])}/month"
        only = f", {_plural(r['images_only_here'], 'image', 'images')} only here" if r["images_only_here"] else ""
        lines.append(
            f"  {r['bucket']:<{width}}  {r['verdict']:<17}  {size}, {cost}{only}  (project {r['project'] or '-'})"
        )
    return lines
