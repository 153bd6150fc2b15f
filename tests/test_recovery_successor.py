"""A migrated bucket against its successor registry (``role: successor``), end to end.

The real docker-registry plays Artifact Registry: it holds an image that was migrated
(its blobs are still in the bucket) and one pushed after the migration (its blobs never
were). The bucket also holds the blobs of an image whose manifest was lost.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobs.images import make_image, random_layer
from jobs.launcher import run_scan
from pipeline.config import parse_config
from pipeline.core.summary import format_summary
from tests.registry_fixtures import Registry

BEAM_ARGS = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]
PREFIX = "containers/images/"


def rows(run_dir: Path, prefix: str) -> list[dict]:
    return [
        json.loads(line) for path in sorted(run_dir.glob(f"{prefix}-*.jsonl")) for line in path.read_text().splitlines()
    ]


@pytest.fixture(scope="module")
def successor_scan(tmp_path_factory, emulator):
    from pipeline.adapters import gcs

    work = tmp_path_factory.mktemp("successor")
    migrated = make_image([random_layer(5001, 3000), random_layer(5002, 2000)], oci=False)
    newer = make_image([random_layer(5003, 3000)], oci=False)
    lost = make_image([random_layer(5004, 4000)], oci=False, label="lost")
    client = gcs.make_client(emulator.endpoint)
    bucket = client.lookup_bucket("successor-test.appspot.com") or client.create_bucket("successor-test.appspot.com")
    for digest, data in {**migrated.blobs, **lost.blobs}.items():
        bucket.blob(PREFIX + digest).upload_from_string(data)
    with Registry(work / "registry") as registry:
        registry.push(migrated, "p/app", "v1")
        registry.push(newer, "p/app", "v2")
        config = parse_config(
            {
                "source": {"buckets": [bucket.name], "emulator_endpoint": emulator.endpoint},
                "scan": {"read_concurrency": 4, "recover_images": True},
                "report": {"output": str(work / "out"), "run_id": "run"},
                "manifests": {
                    "sources": [{"registry": registry.url, "role": "successor"}],
                    "requests_per_second": 500,
                },
            },
            "test",
        )
        summary = run_scan(config, BEAM_ARGS)
    return {"migrated": migrated, "newer": newer, "lost": lost}, bucket.name, summary, work / "out" / "run"


def test_blobs_only_the_successor_holds_are_info_not_missing(successor_scan):
    images, bucket, summary, run_dir = successor_scan
    findings = rows(run_dir, "findings")
    assert [row for row in findings if row["kind"] == "missing_blob"] == []
    only = {row["digest"]: row for row in findings if row["kind"] == "in_registry_only"}
    assert set(only) == set(images["newer"].blobs)
    assert all(row["severity"] == "info" and row["bucket"] is None for row in only.values())
    assert all(row["images"][0].endswith(f"p/app@{images['newer'].digest}") for row in only.values())
    assert summary["exit_status"] == 0


def test_the_bucket_line_splits_successor_blobs_from_the_rest(successor_scan):
    images, bucket, summary, _ = successor_scan
    migrated_bytes = sum(len(b) for b in images["migrated"].blobs.values())
    lost_bytes = sum(len(b) for b in images["lost"].blobs.values())
    assert summary["successor"] == {
        bucket: {"successor_blobs": 3, "successor_bytes": migrated_bytes, "other_blobs": 2, "other_bytes": lost_bytes}
    }
    assert f"{bucket}: 3 blobs / " in format_summary(summary)
    assert "belong to images in the successor registry; 2 blobs / " in format_summary(summary)


def test_migrated_images_are_named_with_their_share_of_the_bucket(successor_scan):
    images, bucket, _, run_dir = successor_scan
    [row] = rows(run_dir, "migrated")
    assert row["image"].endswith(f"p/app@{images['migrated'].digest}")
    assert (row["bucket"], row["blobs_in_bucket"]) == (bucket, 3)
    assert row["tags"][0].endswith("p/app:v1")


def test_recovery_says_which_bucket_images_live_on(successor_scan):
    images, _, _, run_dir = successor_scan
    recovered = {row["config_digest"]: row for row in rows(run_dir, "recovered")}
    assert recovered[images["lost"].config_digest]["in_registry"] is None
    assert recovered[images["migrated"].config_digest]["in_registry"].endswith(f"p/app@{images['migrated'].digest}")
