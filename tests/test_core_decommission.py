"""Pure: the decommission verdict per bucket (pipeline/core/decommission.py) and reclaim's second guard
(pipeline/core/protection.py)."""

from __future__ import annotations

import pytest

from pipeline.core import decommission as dc
from pipeline.core import protection as pt
from pipeline.core.summary import Tally, build_summary, format_summary

BUCKET = "artifacts.p.appspot.com"
OTHER = "eu.artifacts.p.appspot.com"
CONFIG = "sha256:" + "c" * 64
LAYER = "sha256:" + "1" * 64


def recovered(complete=True, in_successor=None, bucket=BUCKET, config=CONFIG):
    return {
        "config_digest": config,
        "bucket": bucket,
        "config_size": 100,
        "total_size": 900,
        "created": "2016-05-01T00:00:00Z",
        "os": "linux",
        "architecture": "amd64",
        "labels": {"team": "billing"},
        "history_head": ["FROM scratch"],
        "history_tail": ["CMD serve"],
        "history_count": 2,
        "complete": complete,
        "in_registry": in_successor,
        "in_successor": in_successor,
        "layers": [{"digest": LAYER, "size": 900, "bucket": bucket}],
    }


def summary_of(*tallies, mode="both", recover=True, incremental=False, run_dir="/r/run"):
    tally = Tally.of_listed(1000, BUCKET) + Tally.of_verified({"size": 1000})
    for item in tallies:
        tally = tally + item
    scan = {"mode": mode, "recover_images": recover, "incremental": incremental}
    config = {"scan": scan, "reclaim": {"accept_losing": []}}
    verdict = {BUCKET: []}
    return build_summary(
        tally,
        run_id="run",
        started_at="s",
        ended_at="e",
        config=config,
        report_location=run_dir,
        reclaim_verdict=verdict,
        bucket_facts={BUCKET: {"location_type": "multi-region", "storage_class": "STANDARD"}},
    )


def test_a_bucket_whose_every_image_is_in_the_successor_is_safe_to_delete():
    summary = summary_of(Tally(decommission=dc.recovered_facts(recovered(in_successor="ar/app@sha256:x"))))
    row = summary["decommission"][BUCKET]
    assert row["verdict"] == "safe_to_delete" and row["project"] == "p"
    assert row["headline"].startswith(f"Safe to delete {BUCKET}: nothing lives only here. Saves $")
    assert row["objects"] == 1 and row["bytes"] == 1000 and row["monthly_cost"]["usd_per_month"] is not None
    assert row["images_only_here"] == [] and "also in the successor registry" in row["reasons"][0]
    assert f"safe_to_delete: {row['headline']}" in format_summary(summary).splitlines()


def test_an_image_only_here_is_named_with_the_command_that_saves_it():
    summary = summary_of(Tally(decommission=dc.recovered_facts(recovered())), run_dir="/reports/my run")
    row = summary["decommission"][BUCKET]
    assert row["verdict"] == "would_lose_images" and row["images_only_here_total"] == 1
    (image,) = row["images_only_here"]
    assert image == {
        "config_digest": CONFIG,
        "bytes": 1000,
        "created": "2016-05-01T00:00:00Z",
        "os": "linux",
        "architecture": "amd64",
        "labels": {"team": "billing"},
        "last_history": "CMD serve",
        "export_command": (
            f"registry-scrub export '/reports/my run' {CONFIG} --to ./recovered-images --tag cccccccccccc"
        ),
    }
    assert row["headline"].startswith(f"Deleting {BUCKET} loses 1 image(s)")


def test_an_image_another_source_serves_from_the_bucket_makes_it_in_use():
    in_use = dc.in_use_entry(
        BUCKET, "registry https://gcr.io", "gcr.io/p/app", "sha256:" + "a" * 64, ["gcr.io/p/app:v1"]
    )
    summary = summary_of(Tally(decommission=dc.recovered_facts(recovered()) + in_use))
    row = summary["decommission"][BUCKET]
    assert row["verdict"] == "in_use" and row["images_in_use_total"] == 1
    assert row["images_in_use"][0]["repository"] == "gcr.io/p/app" and row["images_only_here_total"] == 1


@pytest.mark.parametrize(
    "tally, kwargs, reason",
    [
        (Tally(), {"recover": False}, "image recovery was off"),
        # Recovery of an incremental run sees only what it re-read: never enough for "safe".
        (
            Tally(decommission=dc.recovered_facts(recovered(in_successor="ar/app@sha256:x"))),
            {"incremental": True},
            "incremental run",
        ),
        (Tally(), {"mode": "names"}, "scan.mode is names"),
        (Tally.of_finding({"kind": "read_error", "bucket": BUCKET}), {}, "could not be read"),
    ],
)
def test_what_was_not_read_makes_the_verdict_cannot_tell(tally, kwargs, reason):
    row = summary_of(tally, **kwargs)["decommission"][BUCKET]
    assert row["verdict"] == "cannot_tell" and reason in row["reasons"][0] and reason in row["headline"]


def test_a_source_not_read_in_full_makes_the_verdict_cannot_tell():
    blockers = [{"bucket": BUCKET, "code": "unread_manifests", "source": "directory /m", "reason": "2 unread"}]
    out = dc.verdicts(
        dc.BucketFacts(),
        [BUCKET],
        run_dir="/r",
        cross_checked=True,
        recovered=True,
        unaccounted=0,
        reclaim_blocked_by=blockers,
        reclaim_by_bucket={},
    )
    assert out[BUCKET]["verdict"] == "cannot_tell" and out[BUCKET]["reasons"] == ["directory /m: 2 unread"]


def test_an_image_with_blobs_in_two_buckets_is_lost_with_either():
    row = recovered()
    row["layers"] = [{"digest": LAYER, "size": 900, "bucket": OTHER}]
    facts = dc.recovered_facts(row)
    assert facts.counts[(BUCKET, dc.ONLY_HERE)] == facts.counts[(OTHER, dc.ONLY_HERE)] == 1


def test_image_lists_are_capped_largest_first_and_the_total_is_not():
    facts = dc.BucketFacts()
    for n in range(dc.IMAGES_KEPT + 5):
        facts = facts + dc.BucketFacts.of(BUCKET, dc.ONLY_HERE, entry={"config_digest": f"c{n:03}", "bytes": n})
    listed = facts.listed(BUCKET, dc.ONLY_HERE)
    assert len(listed) == dc.IMAGES_KEPT and listed[0]["bytes"] == dc.IMAGES_KEPT + 4
    assert facts.counts[(BUCKET, dc.ONLY_HERE)] == dc.IMAGES_KEPT + 5


def test_unpriced_bytes_give_a_null_cost_with_its_reason():
    out = dc.verdicts(
        dc.BucketFacts.of("my-bucket", dc.BYTES, 10),
        ["my-bucket"],
        run_dir="/r",
        cross_checked=True,
        recovered=True,
        unaccounted=0,
        reclaim_blocked_by=[],
        reclaim_by_bucket={},
    )
    cost = out["my-bucket"]["monthly_cost"]
    assert cost["usd_per_month"] is None and cost["unpriced_bytes"] == 10 and "no list price" in cost["reason"]
    assert out["my-bucket"]["project"] is None and "Saves an unpriced amount" in out["my-bucket"]["headline"]


# --- the second guard --------------------------------------------------------------------------


def test_a_complete_recovered_image_claims_its_config_and_layers():
    claims = pt.claims_of_recovered(recovered())
    assert [digest for digest, _ in claims] == [CONFIG, LAYER]
    assert claims[0][1]["config_digest"] == CONFIG and claims[0][1]["last_history"] == "CMD serve"
    assert pt.claims_of_recovered(recovered(complete=False)) == []


def test_a_manifest_blob_claims_itself_and_every_blob_it_names():
    fact = {
        "bucket": BUCKET,
        "digest": "sha256:" + "m" * 0 + "9" * 64,
        "size": 400,
        "config": CONFIG,
        "references": [CONFIG, LAYER],
        "media_type": "application/vnd.oci.image.manifest.v1+json",
    }
    claims = pt.claims_of_manifest_blob(fact)
    assert [d for d, _ in claims] == [fact["digest"], CONFIG, LAYER]
    assert {c["config_digest"] for _, c in claims} == {CONFIG}


def test_a_held_blob_stays_out_of_the_plan_unless_its_image_is_accepted():
    row = {"kind": "unreferenced_blob", "bucket": BUCKET, "digest": LAYER, "size": 900}
    (_, claim), _ = pt.claims_of_recovered(recovered())
    assert pt.guard([row], [], ()) == ([row], [])
    assert pt.guard([row], [claim], ()) == ([], [(row, [claim])])
    assert pt.guard([row], [claim], (CONFIG,)) == ([row], [])
    assert pt.guard([row], [claim], pt.ALL) == ([row], [])


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, ()),
        ("all", "all"),
        (["all"], "all"),
        ([CONFIG], (CONFIG,)),
        ([f"{CONFIG},{CONFIG}"], (CONFIG,)),
    ],
)
def test_accept_losing_takes_all_or_config_digests(value, expected):
    assert pt.check_accept_losing(value) == expected


@pytest.mark.parametrize("value", ["sha256:abc", ["all", CONFIG], [7], {"a": 1}, "latest"])
def test_accept_losing_refuses_anything_else(value):
    with pytest.raises(ValueError, match="expected"):
        pt.check_accept_losing(value)


def test_accept_losing_is_a_checked_config_key_and_is_recorded_in_the_summary():
    from pipeline.config import ConfigError, parse_config

    raw = {"source": {"buckets": [BUCKET]}, "reclaim": {"accept_losing": [CONFIG]}}
    config = parse_config(raw, "f.yaml")
    assert config.reclaim.accept_losing == (CONFIG,)
    with pytest.raises(ConfigError, match=r"^f\.yaml: reclaim\.accept_losing: \[0\] \('sha256:1'\): expected"):
        parse_config({**raw, "reclaim": {"accept_losing": ["sha256:1"]}}, "f.yaml")
    summary = build_summary(
        Tally(), run_id="r", started_at="s", ended_at="e", config=config.to_dict(), report_location="/r"
    )
    assert summary["reclaim_protected"]["accept_losing"] == [CONFIG]
