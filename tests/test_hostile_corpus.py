"""The hostile corpus (tests/hostile/generate.py) as ONE scan through the real CLI, against the emulator.

Every case must end exactly as its generator says (a finding of the expected kind naming
it, or a verified row), the run must exit 1 (errors found), never 3, and it must finish:
the subprocess timeout is the guard against a hang (a FIFO opened, a drip never ending),
not a measure of speed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hostile.generate import MANIFEST_BUCKET, generate

CLI = str(Path(sys.executable).parent / "registry-scrub")
BUCKET = "artifacts.hostile-corpus.appspot.com"
HANG_GUARD_SECONDS = 900


def _rows(run_dir: Path, pattern: str) -> list[dict]:
    return [json.loads(line) for path in sorted(run_dir.glob(pattern)) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def hostile_scan(emulator, tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    corpus = generate(root / "corpus")
    client_bucket = _seed(emulator, BUCKET, corpus.bucket_objects)
    _seed(emulator, MANIFEST_BUCKET, corpus.manifest_bucket_objects)
    config = {
        "source": {"buckets": [client_bucket], "emulator_endpoint": emulator.endpoint},
        # Recovery stays off: the corpus' manifests name stand-in layers, whose diff_ids no config
        # lists, so each would add a diff_id_mismatch no case is about (recovery: test_recovery_*).
        "scan": {"mode": "both", "recover_images": False},
        "report": {"output": str(root / "out"), "run_id": "hostile"},
        "manifests": {"sources": corpus.sources},
    }
    config_path = root / "scan.yaml"
    config_path.write_text(json.dumps(config, indent=1))  # JSON is YAML
    env = dict(os.environ, NO_GCE_CHECK="true")
    proc = subprocess.run(
        [CLI, "--config", str(config_path), "--direct_running_mode=in_memory"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_SECONDS,
    )
    run_dir = root / "out" / "hostile"
    return corpus, proc, _rows(run_dir, "findings-*.jsonl"), _rows(run_dir, "verified-*.jsonl"), run_dir


def _seed(emulator, name: str, objects) -> str:
    from pipeline.adapters import gcs

    client = gcs.make_client(emulator.endpoint)
    bucket = client.lookup_bucket(name) or client.create_bucket(name)
    for object_name, data in objects:
        bucket.blob(object_name).upload_from_string(data)
    return name


def test_the_corpus_has_at_least_a_hundred_cases(tmp_path):
    corpus = generate(tmp_path / "corpus")
    assert len(corpus.cases) >= 100
    seeded = len(corpus.bucket_objects) + len(corpus.manifest_bucket_objects)
    assert seeded <= 50, "seeding the emulator is slow: keep the buckets small"


@pytest.mark.slow
def test_one_scan_of_the_hostile_corpus_ends_every_case_as_expected(hostile_scan):
    corpus, proc, findings, verified, run_dir = hostile_scan
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert (run_dir / "summary.json").exists()

    rows = findings + verified
    wrong = []
    for expect in corpus.expects:
        hits = [row for row in rows if expect.matches(row)]
        wanted = 0 if expect.kind.startswith("none") else 1
        if len(hits) != wanted:
            wrong.append(f"{expect.case}: {expect.kind} expected {wanted}, got {len(hits)}: {hits[:2]}")
    assert not wrong, "\n".join(wrong)

    positive = [e for e in corpus.expects if not e.kind.startswith("none")]
    unexplained = [row for row in rows if not any(e.matches(row) for e in positive)]
    assert not unexplained, "rows no case accounts for:\n" + "\n".join(map(str, unexplained))


@pytest.mark.slow
def test_every_row_of_the_hostile_scan_can_be_written_as_utf8(hostile_scan):
    corpus, _, findings, verified, run_dir = hostile_scan
    for path in run_dir.glob("*.jsonl"):
        path.read_bytes().decode("utf-8")  # strict: no lone surrogate slipped into a report
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["exit_status"] == 1 and summary["unaccounted_objects"] == 0
    for kind in ("unverifiable_digest", "malformed_name", "missing_blob", "manifest_unavailable"):
        assert summary["findings_by_kind"][kind] == sum(e.kind == kind for e in corpus.expects), kind
    assert summary["objects_verified"] == len(verified) == sum(e.kind == "verified" for e in corpus.expects)
    assert len(findings) == sum(summary["findings_by_kind"].values())
