"""The whole scan on real Beam runners against a real gcp-storage-emulator."""

import hashlib
import json
import os
from pathlib import Path

import pytest

from jobs.demo import DEMO_BUCKET, demo_images, seed_demo
from jobs.emulator import Emulator, bulk_seed
from jobs.launcher import run_scan
from pipeline.config import parse_config
from pipeline.core.findings import FINDING_FIELDS, VERIFIED_FIELDS
from pipeline.core.summary import OBJECT_KINDS as OBJECT_KIND_ENUMS

OBJECT_KINDS = {kind.value for kind in OBJECT_KIND_ENUMS}

PREFIX = "containers/images/"
IN_MEMORY = ["--direct_running_mode=in_memory"]


def config_for(endpoint, buckets, output, **scan):
    raw = {
        "source": {"buckets": list(buckets), "emulator_endpoint": endpoint},
        "scan": {"read_concurrency": 4, **scan},
        "report": {"output": str(output), "run_id": "test-run"},
    }
    return parse_config(raw, "test")


def read_rows(run_dir: Path, prefix: str) -> list[dict]:
    rows = []
    for path in sorted(run_dir.glob(f"{prefix}-*.jsonl")):
        rows += [json.loads(line) for line in path.read_text().splitlines() if line]
    return rows


@pytest.fixture(scope="module")
def demo_scan(tmp_path_factory):
    """The demo bucket, seeded with its planted problems, scanned once on the default local runner."""
    with Emulator(tmp_path_factory.mktemp("demo-gcs")) as emulator:
        planted = seed_demo(emulator)
        output = tmp_path_factory.mktemp("reports")
        # The default local runner: FnApiRunner in multi-processing mode.
        summary = run_scan(config_for(emulator.endpoint, [DEMO_BUCKET], output), [])
    run_dir = output / "test-run"
    return planted, summary, run_dir


def object_level(planted):
    """The planted problems of single objects (the manifest ones are tests/test_demo_manifests.py's)."""
    return [item for item in planted if item.kind in OBJECT_KINDS]


def test_every_planted_object_problem_is_found_with_its_kind(demo_scan):
    planted, summary, run_dir = demo_scan
    findings = {row["object"]: row for row in read_rows(run_dir, "findings") if row["kind"] in OBJECT_KINDS}
    for item in object_level(planted):
        assert item.object in findings, f"not reported: {item.story}"
        assert findings[item.object]["kind"] == item.kind.value, item.story
    assert len(findings) == len(object_level(planted))
    assert summary["exit_status"] == 1


def test_bad_write_and_later_damage_are_told_apart(demo_scan):
    planted, _, run_dir = demo_scan
    findings = {row["object"]: row for row in read_rows(run_dir, "findings")}
    by_story = {item.story: findings[item.object] for item in object_level(planted)}
    assert by_story["one bit flipped on disk after upload (crc32c disagrees)"]["crc32c_match"] is False
    assert by_story["uploaded truncated by 1,000 bytes (crc32c agrees: written wrong)"]["crc32c_match"] is True
    empty = by_story["zero-byte object under a non-empty digest name"]
    assert empty["size"] == 0 and empty["actual"] == "sha256:" + hashlib.sha256(b"").hexdigest()


def test_intact_blobs_are_verified_with_evidence(demo_scan):
    planted, summary, run_dir = demo_scan
    verified = read_rows(run_dir, "verified")
    damaged = {item.object for item in planted}
    intact = {PREFIX + d for image in demo_images() for d in image.blobs} - damaged
    assert intact <= {row["object"] for row in verified}
    for row in verified:
        assert tuple(row) == ("run_id", *VERIFIED_FIELDS) and row["run_id"] == "test-run"
        assert row["object"].endswith("sha256:" + row["sha256"])
        # What the listing said of the object, for its age and cost.
        assert row["storage_class"] == "STANDARD" and row["time_created"].endswith("Z")
    assert summary["objects_verified"] == len(verified)
    assert summary["bytes_verified"] == sum(row["size"] for row in verified)


def test_report_files_match_the_schema_and_the_summary(demo_scan):
    _, summary, run_dir = demo_scan
    findings = read_rows(run_dir, "findings")
    for row in findings:
        assert tuple(row) == ("run_id", *FINDING_FIELDS) and row["run_id"] == "test-run"
        assert row["bucket"] == DEMO_BUCKET and row["generation"] is not None and row["crc32c"]
    by_kind = {}
    for row in findings:
        by_kind[row["kind"]] = by_kind.get(row["kind"], 0) + 1
    assert {k: v for k, v in summary["findings_by_kind"].items() if v} == by_kind
    on_disk = json.loads((run_dir / "summary.json").read_text())
    assert on_disk == summary
    assert sorted(summary["files"]) == sorted(p.name for p in run_dir.glob("*.jsonl"))
    object_findings = [row for row in findings if row["kind"] in OBJECT_KINDS]
    assert summary["objects_listed"] == summary["objects_verified"] + len(object_findings)
    assert summary["unaccounted_objects"] == 0
    assert summary["config"]["source"]["buckets"] == [DEMO_BUCKET]
    assert summary["started_at"] <= summary["ended_at"]
    # No manifest was read (scan.mode names): nothing is proven reclaimable, and there is no plan.
    assert summary["reclaimable_bytes"] is None and summary["reclaim_plan"] is None
    assert [b["reason"] for b in summary["reclaim_blocked_by"]] == [
        "scan.mode is names: no manifest was read, so no blob is known to be unused"
    ]
    assert not (run_dir / "reclaim-plan.txt").exists()
    # The bucket GET on the launcher: the emulator reports a US multi-region bucket with 7 days of soft delete.
    facts = summary["reclaim_by_bucket"][DEMO_BUCKET]
    assert facts["location_type"] == "multi-region" and facts["soft_delete_retention_seconds"] == 7 * 86400


@pytest.fixture(scope="module")
def thousand_object_bucket(tmp_path_factory):
    """1,000 objects (some damaged, some misnamed) seeded through the emulator's storage layer."""
    data_dir = tmp_path_factory.mktemp("big-gcs")
    objects, expected = [], {"verified": 0, "digest_mismatch": 0, "malformed_name": 0}
    for i in range(1000):
        content = f"blob number {i}".encode() * (1 + i % 7)
        name = PREFIX + "sha256:" + hashlib.sha256(content).hexdigest()
        if i % 97 == 0:
            content = content + b"!"
            expected["digest_mismatch"] += 1
        elif i % 151 == 0:
            name = PREFIX + f"stray-{i}.tmp"
            expected["malformed_name"] += 1
        else:
            expected["verified"] += 1
        objects.append((name, content))
    objects.append(("containers/repositories/library/x/manifest.json", b"{}"))  # outside the prefix
    bulk_seed(data_dir, "artifacts.big-project.appspot.com", objects)
    with Emulator(data_dir) as emulator:
        yield emulator, expected


def test_thousand_objects_are_all_accounted_for(thousand_object_bucket, tmp_path):
    emulator, expected = thousand_object_bucket
    config = config_for(emulator.endpoint, ["artifacts.big-project.appspot.com"], tmp_path, shard_count=256)
    summary = run_scan(config, IN_MEMORY)
    run_dir = tmp_path / "test-run"
    findings, verified = read_rows(run_dir, "findings"), read_rows(run_dir, "verified")
    assert summary["objects_listed"] == 1000
    assert len(verified) == expected["verified"] == summary["objects_verified"]
    kinds = [row["kind"] for row in findings]
    assert kinds.count("digest_mismatch") == expected["digest_mismatch"]
    assert kinds.count("malformed_name") == expected["malformed_name"]
    assert len(verified) + len(findings) == 1000
    objects = [row["object"] for row in verified + findings]
    assert len(set(objects)) == 1000  # nothing reported twice


def test_rerun_with_the_same_id_replaces_its_folder(thousand_object_bucket, tmp_path):
    emulator, _ = thousand_object_bucket
    run_dir = tmp_path / "test-run"
    run_dir.mkdir()
    (run_dir / "findings-00000-of-00009.jsonl").write_text('{"stale": true}\n')
    config = config_for(emulator.endpoint, ["artifacts.big-project.appspot.com"], tmp_path)
    run_scan(config, IN_MEMORY)
    assert not (run_dir / "findings-00000-of-00009.jsonl").exists()
    assert all("stale" not in row for row in read_rows(run_dir, "findings"))


def test_clean_bucket_exits_zero(storage_client, bucket, emulator, tmp_path):
    for _ in range(5):
        content = os.urandom(1000)
        bucket.blob(PREFIX + "sha256:" + hashlib.sha256(content).hexdigest()).upload_from_string(content)
    summary = run_scan(config_for(emulator.endpoint, [bucket.name], tmp_path), IN_MEMORY)
    assert summary["exit_status"] == 0
    assert summary["objects_verified"] == 5
    assert read_rows(tmp_path / "test-run", "findings") == []
