"""The embedded demo: a scan with its manifest source finds every planted problem and names the image."""

from __future__ import annotations

import json

import pytest

from jobs.demo import DEFAULT_CONFIG, seed_demo
from jobs.demo_recovery import lost_config_digest
from jobs.emulator import Emulator
from jobs.launcher import run_scan
from pipeline.config import load_config
from pipeline.core.findings import Kind


@pytest.mark.slow
def test_demo_finds_every_planted_problem(tmp_path):
    with Emulator(tmp_path / "gcs") as emulator:
        planted = seed_demo(emulator)
        config = load_config(
            DEFAULT_CONFIG,
            {
                "source.emulator_endpoint": (emulator.endpoint, "test"),
                "report.output": (str(tmp_path / "out"), "test"),
                "report.run_id": ("demo", "test"),
            },
        )
        summary = run_scan(config, ["--direct_running_mode=in_memory"])
    rows = [
        json.loads(line)
        for p in (tmp_path / "out" / "demo").glob("findings-*.jsonl")
        for line in p.read_text().splitlines()
    ]
    manifest_kinds = {Kind.MANIFEST_DIGEST_MISMATCH, Kind.MISSING_BLOB, Kind.SIZE_MISMATCH, Kind.MANIFEST_UNAVAILABLE}
    for item in planted:
        if item.kind in manifest_kinds:  # planted as repo@digest: the finding must name that image
            hits = [r for r in rows if r["kind"] == item.kind.value and item.object in (r["images"] or [])]
        elif item.kind is Kind.IN_REGISTRY_ONLY:  # a blob only the successor holds: no object, its digest
            hits = [r for r in rows if r["kind"] == item.kind.value and r["digest"] == item.object]
        else:
            hits = [r for r in rows if r["kind"] == item.kind.value and (r["object"] or "").endswith(item.object)]
        assert hits, f"not reported: {item}"
    assert {p.kind for p in planted} == manifest_kinds | {
        Kind.UNREFERENCED_BLOB,
        Kind.INVALID_MANIFEST,
        Kind.DIGEST_MISMATCH,
        Kind.MALFORMED_NAME,
        Kind.IN_REGISTRY_ONLY,
    }
    # Reclaimable: exactly the unreferenced blobs, each once; the planted orphans are among them.
    unreferenced = [r for r in rows if r["kind"] == Kind.UNREFERENCED_BLOB.value]
    assert len({r["object"] for r in unreferenced}) == len(unreferenced)
    assert summary["reclaimable_bytes"] == sum(r["size"] for r in unreferenced)
    orphans = [p for p in planted if p.kind is Kind.UNREFERENCED_BLOB]
    assert {p.object for p in orphans} <= {r["object"] for r in unreferenced}
    # The successor's copy of the worker image is scanned too, and broken by the same layer.
    assert (summary["manifests_scanned"], summary["images_affected"]) == (10, 7)
    # The damaged layer of the demo's web image names the image it breaks.
    web = [r for r in rows if r["kind"] == "digest_mismatch" and any("/web@" in i for i in r["images"] or [])]
    assert len(web) == 1
    # The lost-manifest image is rebuilt; nothing in the demo contradicts its config's diff_ids.
    recovered = [
        json.loads(line)
        for p in (tmp_path / "out" / "demo").glob("recovered-*.jsonl")
        for line in p.read_text().splitlines()
    ]
    (lost,) = [r for r in recovered if r["config_digest"] == lost_config_digest()]
    assert lost["complete"] and lost["in_registry"] is None
    assert summary["findings_by_kind"]["diff_id_mismatch"] == 0
