"""``summary["fleet"]``: the per-bucket decommission verdicts folded into totals and rows (pure)."""

from __future__ import annotations

import pytest

from pipeline.core.fleet_view import VERDICTS, fleet_lines, fleet_of_summary, fleet_view
from pipeline.core.summary import format_summary


def entry(verdict: str, usd: float | None, *, images: int = 0, bytes_: int = 1000, project: str | None = "p") -> dict:
    """A ``decommission`` entry as the shared contract shapes it (only the fields the fleet reads vary)."""
    return {
        "verdict": verdict,
        "headline": f"{verdict} headline",
        "project": project,
        "reasons": [],
        "images_only_here": [{"config_digest": "sha256:" + "a" * 64}] * min(images, 2),  # capped list
        "images_only_here_total": images,
        "images_in_use": [],
        "images_in_use_total": 0,
        "objects": 3,
        "bytes": bytes_,
        "monthly_cost": {"usd_per_month": usd, "unpriced_bytes": 0 if usd is not None else bytes_, "reason": None},
        "soft_delete": "",
        "soft_delete_retention_seconds": 604800,
    }


def sixteen() -> dict:
    fleet = {f"artifacts.safe-{i:02d}.appspot.com": entry("safe_to_delete", 2.875) for i in range(12)}
    fleet["artifacts.lose-a.appspot.com"] = entry("would_lose_images", 9.0, images=10)
    fleet["us.artifacts.lose-b.appspot.com"] = entry("would_lose_images", 0.5, images=5)
    fleet["eu.artifacts.lose-c.appspot.com"] = entry("would_lose_images", 0.5, images=2)
    fleet["asia.artifacts.odd.appspot.com"] = entry("cannot_tell", None)
    return fleet


def test_totals_and_headline_as_the_contract_gives_them():
    fleet = fleet_view(sixteen())
    assert fleet["buckets"] == 16
    assert (
        fleet["headline"] == "12 buckets safe to delete, saving $34.50 a month; 3 would lose 17 images; 1 cannot tell"
    )
    assert fleet["by_verdict"] == {
        "safe_to_delete": {"buckets": 12, "usd_per_month": 34.5, "images_only_here": 0},
        "would_lose_images": {"buckets": 3, "usd_per_month": 10.0, "images_only_here": 17},
        "in_use": {"buckets": 0, "usd_per_month": 0.0, "images_only_here": 0},
        "cannot_tell": {"buckets": 1, "usd_per_month": 0.0, "images_only_here": 0},
    }


def test_rows_costliest_first_then_by_name_and_unpriced_last():
    rows = fleet_view(sixteen())["rows"]
    assert rows[0] == {
        "bucket": "artifacts.lose-a.appspot.com",
        "project": "p",
        "verdict": "would_lose_images",
        "headline": "would_lose_images headline",
        "bytes": 1000,
        "usd_per_month": 9.0,
        "images_only_here": 10,  # the total, not the capped list's length
    }
    assert [r["bucket"] for r in rows[1:13]] == sorted(f"artifacts.safe-{i:02d}.appspot.com" for i in range(12))
    assert [r["bucket"] for r in rows[13:15]] == ["eu.artifacts.lose-c.appspot.com", "us.artifacts.lose-b.appspot.com"]
    assert rows[-1]["bucket"] == "asia.artifacts.odd.appspot.com" and rows[-1]["usd_per_month"] is None


@pytest.mark.parametrize(
    ("fleet", "expected"),
    [
        ({"a": entry("safe_to_delete", 0.00004)}, "1 bucket safe to delete, saving <$0.01 a month"),
        ({"a": entry("safe_to_delete", None)}, "1 bucket safe to delete, saving an amount that could not be priced"),
        (
            {"a": entry("safe_to_delete", 1.0), "b": entry("safe_to_delete", None)},
            "2 buckets safe to delete, saving $1.00 a month (1 not priced)",
        ),
        ({"a": entry("would_lose_images", 1.0, images=1)}, "1 bucket would lose 1 image"),
        ({"a": entry("in_use", 1.0), "b": entry("cannot_tell", 1.0)}, "1 bucket in use; 1 cannot tell"),
        ({}, "no bucket was scanned"),
    ],
)
def test_headline_wording(fleet, expected):
    assert fleet_view(fleet)["headline"] == expected


def test_a_verdict_it_does_not_know_is_never_counted_as_safe():
    fleet = fleet_view({"a": entry("probably_fine", 5.0)})
    assert fleet["rows"][0]["verdict"] == "cannot_tell"
    assert fleet["by_verdict"]["safe_to_delete"]["buckets"] == 0
    assert set(fleet["by_verdict"]) == set(VERDICTS)


def test_no_decommission_block_means_no_fleet():
    assert fleet_of_summary({"run_id": "r"}) is None
    assert fleet_of_summary({"decommission": None}) is None
    assert fleet_of_summary({"decommission": {"a": entry("in_use", 1.0)}})["buckets"] == 1


def _summary(**extra) -> dict:
    return {
        "run_id": "r",
        "objects_listed": 2,
        "objects_verified": 2,
        "bytes_verified": 10,
        "findings_by_kind": {},
        "report_location": "/tmp/r",
        "exit_status": 0,
        **extra,
    }


def test_the_terminal_opens_with_the_fleet_when_there_are_several_buckets():
    summary = _summary(fleet=fleet_view(sixteen()))
    lines = format_summary(summary).splitlines()
    assert lines[1] == "fleet: " + summary["fleet"]["headline"]
    assert lines[2].split() == [
        "artifacts.lose-a.appspot.com",
        "would_lose_images",
        "1.0",
        "kB,",
        "$9.00/month,",
        "10",
        "images",
        "only",
        "here",
        "(project",
        "p)",
    ]
    assert lines[17].split()[:2] == ["asia.artifacts.odd.appspot.com", "cannot_tell"]
    assert "cost unknown" in lines[17]


def test_one_bucket_or_no_fleet_adds_no_line():
    assert fleet_lines(_summary(fleet=fleet_view({"a": entry("in_use", 1.0)}))) == []
    assert fleet_lines(_summary(fleet=None)) == []
    assert "fleet" not in format_summary(_summary())


def test_summary_json_carries_the_fleet_of_whatever_decommission_block_the_run_added(tmp_path, monkeypatch):
    """WriteSummaryFn folds the fleet last, so it sees the verdicts wherever they were added; a summary
    without verdicts (a run before them, re-rendered) has a null ``fleet``."""
    import json

    from pipeline.core.summary import Tally
    from pipeline.transforms import report

    def write(extras: dict) -> dict:
        monkeypatch.setattr(report, "summary_extras", lambda model, run_dir: dict(extras))
        fn = report.WriteSummaryFn(str(tmp_path), "r", "2026-01-01T00:00:00Z", {})
        [(summary, _)] = list(fn.process((Tally(), None), row_files=[]))
        assert json.loads((tmp_path / "summary.json").read_text())["fleet"] == summary["fleet"]
        return summary

    assert fleet_of_summary({"run_id": "before the verdict"}) is None
    assert write({})["fleet"] == fleet_view({})  # build_summary gives every run a verdict block, here empty
    assert write({})["fleet"]["headline"] == "no bucket was scanned"
    decommission = {"artifacts.a.appspot.com": entry("safe_to_delete", 1.0), "b": entry("in_use", 2.0)}
    assert write({"decommission": decommission})["fleet"] == fleet_view(decommission)
