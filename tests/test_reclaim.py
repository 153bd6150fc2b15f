"""Reclaim end to end: whole scans decide per bucket whether unreferenced blobs may be deleted.

* A v2 registry walked through ``_catalog`` and tags/list (the real docker-registry, images
  pushed with skopeo) cannot see an untagged image that is still pullable by digest: its
  blobs are reported, and nothing is called reclaimable.
* A GCR-style walk (tags/list ``manifest`` maps) and an OCI layout list every manifest:
  the orphans go into reclaim-plan.txt, pinned to the generations the listing returned.
  No local GCR exists, so the GCR walk is served by the small fake registry of
  ``tests/test_registry_protocol.py`` (recorded response shapes); everything else is real.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from jobs.images import make_image, random_layer, write_oci_layout
from jobs.launcher import run_scan
from pipeline.adapters import gcs
from pipeline.config import parse_config
from pipeline.core.manifests import ACCEPT
from pipeline.core.reclaim import PLAN_FILE
from pipeline.transforms.reclaim import TALLIES, plan_entries
from tests.registry_fixtures import copy_blobs_to_bucket
from tests.support.buckets import fresh_bucket
from tests.test_registry_protocol import FakeRegistry, _serve_gcr

IN_MEMORY = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]
PREFIX = "containers/images/"
_seed = iter(range(5000, 6000))


def test_plan_lines_come_only_from_a_bucket_the_verdict_proves():
    """Pure (no scan): an unreferenced blob of a bucket with no verdict, or a blocked one, is never planned."""
    row = {
        "kind": "unreferenced_blob",
        "bucket": "proven",
        "object": PREFIX + "sha256:" + "a" * 64,
        "generation": 7,
        "size": 5,
        "storage_class": "STANDARD",
        "time_created": None,
    }
    verdict = {"proven": [], "blocked": [{"code": "incomplete_source"}]}
    outputs = list(plan_entries(row, verdict, "2026-12-01T00:00:00Z"))
    assert outputs[0] == f"gs://proven/{row['object']}#7" and outputs[1].tag == TALLIES
    assert list(plan_entries({**row, "bucket": "blocked"}, verdict, "2026-12-01T00:00:00Z")) == []
    assert list(plan_entries({**row, "bucket": "unjudged"}, verdict, "2026-12-01T00:00:00Z")) == []
    assert list(plan_entries({**row, "kind": "digest_mismatch"}, verdict, "2026-12-01T00:00:00Z")) == []


def small_image(oci: bool = True):
    return make_image([random_layer(next(_seed), 3000), random_layer(next(_seed), 1500)], oci=oci)


def listed_generations(emulator, bucket: str) -> dict[str, int]:
    client = gcs.make_client(emulator.endpoint)
    return {blob.name: blob.generation for blob in client.list_blobs(bucket, prefix=PREFIX)}


def scan(emulator, bucket: str, out: Path, sources: list[dict], **manifests) -> tuple[dict, list[dict], Path]:
    config = parse_config(
        {
            "source": {"buckets": [bucket], "emulator_endpoint": emulator.endpoint},
            "scan": {"read_concurrency": 4},
            "report": {"output": str(out), "run_id": "run"},
            "manifests": {"sources": sources, "requests_per_second": 1000, **manifests},
        },
        "test",
    )
    summary = run_scan(config, IN_MEMORY)
    run_dir = out / "run"
    rows = [json.loads(line) for p in sorted(run_dir.glob("findings-*.jsonl")) for line in p.read_text().splitlines()]
    return summary, rows, run_dir


def upload(bucket, blobs: dict[str, bytes]) -> None:
    for digest, data in blobs.items():
        bucket.blob(PREFIX + digest).upload_from_string(data)


@pytest.mark.slow
def test_a_catalog_walk_never_calls_an_untagged_pullable_image_reclaimable(registry, emulator, tmp_path):
    old, new = small_image(), small_image()
    registry.push(old, "team/web", "v1")
    registry.push(new, "team/web", "v1")  # the tag moves: old is untagged, and still pullable by digest
    pulled = requests.get(f"{registry.url}/v2/team/web/manifests/{old.digest}", headers={"Accept": ACCEPT}, timeout=10)
    assert pulled.status_code == 200 and pulled.content == old.manifest
    bucket = fresh_bucket(gcs.make_client(emulator.endpoint), "artifacts.catalog-reclaim.appspot.com")
    copy_blobs_to_bucket(registry, bucket)

    summary, rows, run_dir = scan(emulator, bucket.name, tmp_path, [{"registry": registry.url}])

    # The old image's 3 blobs are still listed, as info: the catalog walk cannot see who needs them.
    unreferenced = {r["digest"] for r in rows if r["kind"] == "unreferenced_blob"}
    assert unreferenced == set(old.blobs)
    assert summary["unreferenced_objects"] == 3
    assert summary["unreferenced_bytes"] == sum(map(len, old.blobs.values()))
    # ... but nothing is reclaimable, the summary says exactly why, and there is no plan to follow.
    assert summary["reclaimable_bytes"] is None and summary["reclaim_plan"] is None
    (blocker,) = summary["reclaim_blocked_by"]
    assert blocker["bucket"] == bucket.name and blocker["code"] == "incomplete_source"
    assert blocker["source"] == f"registry {registry.url} (catalog walk)"
    assert "cannot see untagged manifests" in blocker["reason"]
    assert not (run_dir / PLAN_FILE).exists()
    assert summary["reclaim_by_bucket"][bucket.name]["reclaim_proven"] is False


def _gcr_project(fake, project: str, tagged, untagged, with_map: bool = True):
    _serve_gcr(
        fake,
        {
            f"{project}/app": {
                tagged.digest: (tagged.manifest, tagged.media_type, ["v1"]),
                untagged.digest: (untagged.manifest, untagged.media_type, []),
            }
        },
        {project: ["app"]},
    )
    if not with_map:  # a registry that answers the walk with tags only: untagged manifests are invisible
        body = {"child": [], "name": f"{project}/app", "tags": ["v1"]}
        fake.routes[f"/v2/{project}/app/tags/list"] = lambda h, q: (200, {}, body)
        fake.routes[f"/v2/{project}/app/manifests/v1"] = lambda h, q: (
            200,
            {"Content-Type": tagged.media_type, "Docker-Content-Digest": tagged.digest},
            tagged.manifest,
        )


@pytest.fixture
def fake():
    server = FakeRegistry()
    yield server
    server.close()


@pytest.mark.slow
def test_a_gcr_walk_proves_reclaim_and_pins_each_line_to_the_listed_generation(fake, emulator, tmp_path):
    tagged, untagged = small_image(oci=False), small_image(oci=False)
    _gcr_project(fake, "plan-proj", tagged, untagged)
    bucket = fresh_bucket(gcs.make_client(emulator.endpoint), "artifacts.plan-proj.appspot.com")
    orphans = [random_layer(next(_seed), 2000), random_layer(next(_seed), 1000)]
    upload(bucket, {**tagged.blobs, **untagged.blobs, **{o.digest: o.blob for o in orphans}})
    generations = listed_generations(emulator, bucket.name)

    source = {"registry": fake.url, "gcr_projects": ["plan-proj"], "bucket": bucket.name}
    summary, rows, run_dir = scan(emulator, bucket.name, tmp_path, [source])

    # The untagged manifest's blobs stay protected; only the orphans are unreferenced.
    assert sorted(r["digest"] for r in rows if r["kind"] == "unreferenced_blob") == sorted(o.digest for o in orphans)
    lines = (run_dir / PLAN_FILE).read_text().splitlines()
    expected = {f"gs://{bucket.name}/{PREFIX}{o.digest}#{generations[PREFIX + o.digest]}" for o in orphans}
    assert sorted(lines) == sorted(expected)
    size = sum(len(o.blob) for o in orphans)
    assert summary["reclaimable_bytes"] == size and summary["reclaim_blocked_by"] == []
    plan = summary["reclaim_plan"]
    assert plan["file"] == PLAN_FILE and plan["objects"] == 2 and plan["bytes"] == size
    assert plan["buckets"] == [bucket.name]
    # The emulator's bucket: STANDARD objects in the US multi-region, soft delete of 7 days.
    (priced,) = plan["monthly_cost"]["by_class"]
    assert (priced["storage_class"], priced["location_type"], priced["bytes"]) == ("STANDARD", "multi-region", size)
    assert priced["usd_per_month"] == pytest.approx(size / 1024**3 * 0.000035616 * 730, abs=1e-6)
    assert "7 day(s)" in plan["soft_delete"][bucket.name]
    assert plan["early_deletion"] == {"usd": 0, "byte_days": 0, "unpriced_byte_days": 0}  # STANDARD: no minimum


@pytest.mark.slow
def test_a_gcr_repository_without_a_manifest_map_blocks_reclaim(fake, emulator, tmp_path):
    tagged, untagged = small_image(oci=False), small_image(oci=False)
    _gcr_project(fake, "nomap-proj", tagged, untagged, with_map=False)
    bucket = fresh_bucket(gcs.make_client(emulator.endpoint), "artifacts.nomap-proj.appspot.com")
    upload(bucket, {**tagged.blobs, **untagged.blobs})

    source = {"registry": fake.url, "gcr_projects": ["nomap-proj"], "bucket": bucket.name}
    summary, rows, run_dir = scan(emulator, bucket.name, tmp_path, [source])

    assert {r["digest"] for r in rows if r["kind"] == "unreferenced_blob"} == set(untagged.blobs)
    assert summary["reclaimable_bytes"] is None and not (run_dir / PLAN_FILE).exists()
    (blocker,) = summary["reclaim_blocked_by"]
    assert blocker["code"] == "partial_listing" and blocker["manifests"] == [f"{fake.host}/nomap-proj/app"]


@pytest.mark.slow
def test_an_oci_layout_proves_reclaim_only_when_complete_for_its_bucket(emulator, tmp_path):
    """An OCI layout holds only what was put in it: without `complete: true` and `bucket:` it proves
    nothing, even with one bucket scanned (issue 17: that once planned 7 pullable images' blobs).
    With both, its orphans are planned; an unreadable manifest takes that back."""
    kept = small_image()
    orphan = random_layer(next(_seed), 2500)
    layout = tmp_path / "layout"
    write_oci_layout(layout, [(kept.manifest, kept.media_type, "v1")], kept.blobs)
    bucket = fresh_bucket(gcs.make_client(emulator.endpoint), "artifacts.oci-reclaim.appspot.com")
    upload(bucket, {**kept.blobs, orphan.digest: orphan.blob})
    generation = listed_generations(emulator, bucket.name)[PREFIX + orphan.digest]
    source = {"oci_layout": str(layout), "repository": "gcr.io/oci-reclaim/app"}

    summary, _, run_dir = scan(emulator, bucket.name, tmp_path / "as-is", [source])
    assert summary["reclaimable_bytes"] is None and not (run_dir / PLAN_FILE).exists()
    (blocker,) = summary["reclaim_blocked_by"]
    assert blocker["code"] == "incomplete_source" and "holds only what was put in it" in blocker["reason"]

    summary, _, run_dir = scan(emulator, bucket.name, tmp_path / "no-bucket", [{**source, "complete": True}])
    assert summary["reclaimable_bytes"] is None and not (run_dir / PLAN_FILE).exists()
    (blocker,) = summary["reclaim_blocked_by"]
    assert blocker["code"] == "incomplete_source" and "without `bucket:`" in blocker["reason"]

    source = {**source, "bucket": bucket.name, "complete": True}
    summary, _, run_dir = scan(emulator, bucket.name, tmp_path / "first", [source])
    assert (run_dir / PLAN_FILE).read_text() == f"gs://{bucket.name}/{PREFIX}{orphan.digest}#{generation}\n"
    assert summary["reclaimable_bytes"] == len(orphan.blob)

    # The layout's manifest becomes unreadable: its blobs look unreferenced, and none is reclaimable.
    (layout / "blobs" / "sha256" / kept.digest.split(":", 1)[1]).write_bytes(b"{not json")
    summary, rows, run_dir = scan(emulator, bucket.name, tmp_path / "second", [source])
    assert {r["kind"] for r in rows} >= {"manifest_digest_mismatch", "invalid_manifest", "unreferenced_blob"}
    assert summary["unreferenced_objects"] == 4 and summary["reclaimable_bytes"] is None
    (blocker,) = summary["reclaim_blocked_by"]
    assert blocker["code"] == "unread_manifests" and blocker["manifests"] == [f"gcr.io/oci-reclaim/app@{kept.digest}"]
    assert not (run_dir / PLAN_FILE).exists()


def test_each_manifest_that_blocks_reclaim_is_evidence_for_its_sources():
    """ManifestOutcomeFn called directly: a manifest read by two sources that names a blob by
    sha512 (which no sha256-named object can be matched with) is evidence against both."""
    from apache_beam.pvalue import TaggedOutput

    from pipeline.core import crosscheck as cc
    from pipeline.transforms.manifests import EVIDENCE, ManifestOutcomeFn

    image = small_image()
    records = []
    for index in (2, 5):
        record = cc.new_record("gcr.io/p/app", image.digest, bucket=None, source_index=index)
        record.update(status=cc.OK, unverifiable=["sha512:" + "a" * 128])
        records.append(record)
    outputs = list(ManifestOutcomeFn().process((("gcr.io/p/app", image.digest), records)))
    evidence = [o.value for o in outputs if isinstance(o, TaggedOutput) and o.tag == EVIDENCE]
    assert sorted(index for e in evidence for index in e.unread) == [2, 5]
    assert {e.unread_names[i] for e in evidence for i in e.unread} == {(f"gcr.io/p/app@{image.digest}",)}
    healthy = cc.new_record("gcr.io/p/app", image.digest, source_index=2)
    healthy.update(status=cc.OK)
    outputs = list(ManifestOutcomeFn().process((("gcr.io/p/app", image.digest), [healthy])))
    assert not [o for o in outputs if isinstance(o, TaggedOutput) and o.tag == EVIDENCE]
