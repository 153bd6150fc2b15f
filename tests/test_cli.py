"""The ``registry-scrub`` command end to end, as a user runs it (a subprocess per call)."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from jobs.demo import DEMO_BUCKET
from jobs.demo_manifests import EU_BUCKET

REPO = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).parent / "registry-scrub")


def run_cli(*args, cwd, timeout=120):
    env = dict(os.environ, NO_GCE_CHECK="true")
    return subprocess.run([CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_demo_finds_every_planted_problem_and_leaves_the_report(tmp_path):
    proc = run_cli("demo", "--run-id", "demo-test", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    run_dir = tmp_path / "scrub-reports" / "demo-test"
    assert f"report: {run_dir}" in proc.stdout
    assert "digest_mismatch" in proc.stdout and "malformed_name" in proc.stdout
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["findings_by_kind"]["digest_mismatch"] == 4
    assert summary["findings_by_kind"]["malformed_name"] == 2
    assert summary["manifests_scanned"] > 0
    assert summary["config"]["source"]["buckets"] == [DEMO_BUCKET, EU_BUCKET]
    # Reclaim: the EU bucket's complete folder proves its two orphans unused; the main bucket's does not.
    assert summary["reclaimable_bytes"] is None
    assert summary["reclaim_plan"]["objects"] == 2 and summary["reclaim_plan"]["buckets"] == [EU_BUCKET]
    lines = (run_dir / "reclaim-plan.txt").read_text().splitlines()
    assert len(lines) == 2 and all(line.startswith(f"gs://{EU_BUCKET}/containers/images/sha256:") for line in lines)
    assert "reclaim plan: 2 unreferenced blob(s)" in proc.stdout and "not reclaimable:" in proc.stdout
    # Every planted problem the demo announces is in the findings with the announced kind.
    planted = [
        line.split("planted ", 1)[1].split(" -> expect ") for line in proc.stderr.splitlines() if "planted " in line
    ]
    rows = [json.loads(line) for path in run_dir.glob("findings-*.jsonl") for line in path.read_text().splitlines()]
    assert len(planted) >= 6
    for target, expectation in planted:
        kind = expectation.split(" ", 1)[0]
        named = [
            row
            for row in rows
            if row["kind"] == kind and ((row["object"] or "").endswith(target) or target in (row["images"] or []))
        ]
        assert named, f"planted {target} ({kind}) is not in the report"


def test_bad_config_exits_two_naming_file_and_key(tmp_path):
    config = tmp_path / "scan.yaml"
    config.write_text("source:\n  buckets: [artifacts.p-1234.appspot.com]\nscan:\n  shard_count: 10\n")
    proc = run_cli("--config", str(config), cwd=tmp_path)
    assert proc.returncode == 2
    assert f"{config}: scan.shard_count: expected one of 16, 256, 4096" in proc.stderr


def test_bad_flag_value_names_the_flag(tmp_path):
    proc = run_cli("--bucket", "gs://x", cwd=tmp_path)
    assert proc.returncode == 2
    assert "command line --bucket: item 0 ('gs://x'): expected a bare bucket name" in proc.stderr


def test_missing_bucket_exits_two(emulator, tmp_path):
    proc = run_cli(
        "--bucket", "artifacts.nowhere-1234.appspot.com", "--emulator-endpoint", emulator.endpoint, cwd=tmp_path
    )
    assert proc.returncode == 2
    assert "bucket 'artifacts.nowhere-1234.appspot.com' does not exist" in proc.stderr


def test_dataflow_runner_without_its_options_exits_two(tmp_path):
    proc = run_cli("--bucket", "artifacts.p-1234.appspot.com", "--runner=DataflowRunner", cwd=tmp_path)
    assert proc.returncode == 2
    assert "DataflowRunner needs --project, --region, --temp_location" in proc.stderr


def test_clean_bucket_scan_exits_zero(emulator, storage_client, tmp_path):
    bucket = storage_client.create_bucket("artifacts.clean-1234.appspot.com")
    for i in range(3):
        content = f"clean {i}".encode()
        bucket.blob("containers/images/sha256:" + hashlib.sha256(content).hexdigest()).upload_from_string(content)
    proc = run_cli(
        "--bucket",
        bucket.name,
        "--emulator-endpoint",
        emulator.endpoint,
        "--output",
        str(tmp_path / "out"),
        "--run-id",
        "clean",
        "--direct_running_mode=in_memory",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "3 objects listed, 3 verified" in proc.stdout
    assert "findings: none" in proc.stdout
    assert (tmp_path / "out" / "clean" / "summary.json").exists()


def test_a_listing_that_keeps_failing_fails_the_run_with_status_three(emulator, storage_client, tmp_path):
    """A shard whose listing is refused (injected by FaultyProxy in front of the real emulator)
    must fail the run, naming the bucket and range, rather than leave its objects out."""
    from tests.support.proxy import Fault, FaultyProxy

    bucket = storage_client.create_bucket("artifacts.refused-1234.appspot.com")
    bucket.blob("containers/images/sha256:" + hashlib.sha256(b"a").hexdigest()).upload_from_string(b"a")
    refused = Fault("prefix=containers%2Fimages%2Fsha256%3A5", status=403, times=100)
    with FaultyProxy(emulator.port, faults=[refused]) as proxy:
        proc = run_cli(
            "--bucket",
            bucket.name,
            "--emulator-endpoint",
            proxy.endpoint,
            "--output",
            str(tmp_path),
            "--run-id",
            "refused",
            "--direct_running_mode=in_memory",
            cwd=tmp_path,
        )
    assert proc.returncode == 3, proc.stderr
    assert (
        f"the run failed before its report was complete: listing gs://{bucket.name} containers/images/sha256:5 failed"
    ) in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "refused" / "summary.json").exists()
