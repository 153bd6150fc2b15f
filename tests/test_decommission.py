"""Reclaim's second guard and the decommission verdict, end to end: whole scans of real buckets in
gcp-storage-emulator, manifest folders on disk, Beam's local runner (issue 17).

* A folder whose `complete: true` is mistaken (an image's manifest is missing from it) no longer
  plans that image's blobs: its config and every layer are in the bucket, so the bucket itself
  shows the image. `reclaim.accept_losing` naming it brings them back.
* A pre-2017 `tag_` object holding a v1 image id is info, not an error: the run exits 0.
* One scan of four buckets gives each its verdict: safe_to_delete, would_lose_images, in_use, cannot_tell.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobs.images import make_image, random_layer
from jobs.launcher import run_scan
from pipeline.adapters import gcs
from pipeline.config import parse_config
from pipeline.core.reclaim import PLAN_FILE
from tests.support.buckets import fresh_bucket

IN_MEMORY = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]
PREFIX = "containers/images/"
_seed = iter(range(7000, 8000))


def small_image(label: str):
    return make_image([random_layer(next(_seed), 3000), random_layer(next(_seed), 1500)], oci=False, label=label)


def upload(bucket, blobs: dict[str, bytes]) -> None:
    for digest, data in blobs.items():
        bucket.blob(PREFIX + digest).upload_from_string(data)


def manifest_folder(root: Path, *images) -> str:
    for image in images:
        (root / "app").mkdir(parents=True, exist_ok=True)
        (root / "app" / image.digest).write_bytes(image.manifest)
    return str(root)


def scan(emulator, buckets: list[str], out: Path, sources: list[dict], **sections) -> tuple[dict, Path]:
    config = parse_config(
        {
            "source": {"buckets": buckets, "emulator_endpoint": emulator.endpoint},
            "scan": {"read_concurrency": 4},
            "report": {"output": str(out), "run_id": "run"},
            "manifests": {"sources": sources, "requests_per_second": 1000},
            **sections,
        },
        "test",
    )
    summary = run_scan(config, IN_MEMORY)
    return summary, out / "run"


def plan_lines(run_dir: Path) -> set[str]:
    path = run_dir / PLAN_FILE
    return {line.split("#")[0] for line in path.read_text().splitlines()} if path.exists() else set()


@pytest.mark.slow
def test_a_mistaken_complete_folder_cannot_plan_an_image_the_bucket_shows(emulator, tmp_path):
    kept, forgotten = small_image("kept"), small_image("forgotten, but pullable by digest")
    orphan = random_layer(next(_seed), 2500)
    bucket = fresh_bucket(gcs.make_client(emulator.endpoint), "artifacts.mistaken-claim.appspot.com")
    upload(bucket, {**kept.blobs, **forgotten.blobs, orphan.digest: orphan.blob})
    # Pre-2017 metadata: a v1 tag naming a v1 image id. Once an error that blocked reclaim (issue 17).
    bucket.blob("containers/repositories/library/app/tag_old").upload_from_string("9f" * 32)
    # The folder says complete, but the forgotten image's manifest is not in it.
    folder = manifest_folder(tmp_path / "manifests", kept)
    source = {"directory": folder, "repository": "gcr.io/mistaken-claim", "bucket": bucket.name, "complete": True}

    summary, run_dir = scan(emulator, [bucket.name], tmp_path / "guarded", [source])
    assert summary["exit_status"] == 0 and summary["findings_by_kind"]["legacy_metadata_unparsed"] == 1
    assert summary["findings_by_kind"]["invalid_manifest"] == 0
    assert plan_lines(run_dir) == {f"gs://{bucket.name}/{PREFIX}{orphan.digest}"}
    protected = summary["reclaim_protected"]
    assert (protected["objects"], protected["images_total"]) == (3, 1)
    assert protected["bytes"] == sum(map(len, forgotten.blobs.values()))
    (image,) = protected["images"]
    assert image["config_digest"] == forgotten.config_digest and image["labels"] == {
        "org.registry-scrub.demo": "forgotten, but pullable by digest"
    }
    by_bucket = summary["reclaim_by_bucket"][bucket.name]
    assert by_bucket["protected_objects"] == 3 and by_bucket["reclaimable_bytes"] == len(orphan.blob)
    assert summary["reclaim_plan"]["bytes"] == len(orphan.blob)

    # The user names the image: its blobs are planned, and the choice is in summary.json.
    accept = {"reclaim": {"accept_losing": [forgotten.config_digest]}}
    summary, run_dir = scan(emulator, [bucket.name], tmp_path / "accepted", [source], **accept)
    assert plan_lines(run_dir) == {f"gs://{bucket.name}/{PREFIX}{d}" for d in [orphan.digest, *forgotten.blobs]}
    assert summary["reclaim_protected"]["accept_losing"] == [forgotten.config_digest]
    assert summary["reclaim_protected"]["accepted_objects"] == 3 and summary["reclaim_protected"]["objects"] == 0


@pytest.mark.slow
def test_each_bucket_gets_its_verdict(emulator, tmp_path):
    client = gcs.make_client(emulator.endpoint)
    names = {v: f"artifacts.verdict-{v.replace('_', '-')}.appspot.com" for v in ("safe", "lose", "in-use", "tell")}
    buckets = {v: fresh_bucket(client, name) for v, name in names.items()}
    migrated, lost, served, unread = (small_image(v) for v in ("migrated", "lost", "served", "unread"))
    upload(buckets["safe"], migrated.blobs)
    upload(buckets["lose"], {**migrated.blobs, **lost.blobs})
    upload(buckets["in-use"], served.blobs)
    upload(buckets["tell"], unread.blobs)
    (tmp_path / "broken" / "app").mkdir(parents=True)
    (tmp_path / "broken" / "app" / unread.digest).write_bytes(b"{not json")
    successor = manifest_folder(tmp_path / "successor", migrated)
    sources = [
        {"directory": successor, "repository": "ar/p", "bucket": names["safe"], "role": "successor"},
        {"directory": successor, "repository": "ar/p", "bucket": names["lose"], "role": "successor"},
        {
            "directory": manifest_folder(tmp_path / "served", served),
            "repository": "gcr.io/p",
            "bucket": names["in-use"],
        },
        {"directory": str(tmp_path / "broken"), "repository": "gcr.io/q", "bucket": names["tell"]},
    ]

    summary, run_dir = scan(emulator, sorted(names.values()), tmp_path / "out", sources)

    verdicts = {v: summary["decommission"][name]["verdict"] for v, name in names.items()}
    assert verdicts == {
        "safe": "safe_to_delete",
        "lose": "would_lose_images",
        "in-use": "in_use",
        "tell": "cannot_tell",
    }
    safe = summary["decommission"][names["safe"]]
    assert safe["objects"] == 3 and safe["bytes"] == sum(map(len, migrated.blobs.values()))
    lose = summary["decommission"][names["lose"]]
    (image,) = lose["images_only_here"]
    assert image["config_digest"] == lost.config_digest and lose["images_only_here_total"] == 1
    assert image["export_command"].startswith(f"registry-scrub export {run_dir} {lost.config_digest} --to ")
    in_use = summary["decommission"][names["in-use"]]
    (user,) = in_use["images_in_use"]
    assert (user["repository"], user["manifest_digest"]) == ("gcr.io/p/app", served.digest)
    tell = summary["decommission"][names["tell"]]
    assert any("could not be read" in reason for reason in tell["reasons"])
    # The terminal says the same words, one line per bucket.
    written = json.loads((run_dir / "summary.json").read_text())
    assert written["decommission"] == summary["decommission"]


@pytest.mark.slow
def test_a_manifest_stored_in_the_bucket_protects_what_it_names(emulator, tmp_path):
    """An image whose second layer is gone is not complete from blobs, but its manifest is in the
    bucket as a blob: the manifest, its config and the layer present stay out of the plan."""
    kept, partial = small_image("kept"), small_image("half gone, manifest kept as a blob")
    bucket = fresh_bucket(gcs.make_client(emulator.endpoint), "artifacts.manifest-blob.appspot.com")
    present = {d: b for d, b in partial.blobs.items() if d != partial.layers[1].digest}
    upload(bucket, {**kept.blobs, **present, partial.digest: partial.manifest})
    folder = manifest_folder(tmp_path / "manifests", kept)
    source = {"directory": folder, "repository": "gcr.io/manifest-blob", "bucket": bucket.name, "complete": True}

    summary, run_dir = scan(emulator, [bucket.name], tmp_path / "out", [source])
    assert summary["reclaim_blocked_by"] == [] and plan_lines(run_dir) == set()
    protected = summary["reclaim_protected"]
    assert protected["objects"] == 3  # the manifest blob, the config, the first layer
    (image,) = protected["images"]
    assert image["config_digest"] == partial.config_digest and image["manifest_digest"] == partial.digest
