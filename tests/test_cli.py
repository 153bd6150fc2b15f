"""The ``registry-scrub`` command end to end, as a user runs it (a subprocess per call)."""

import argparse
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jobs import cli
from jobs.demo import DEMO_BUCKET
from jobs.demo_manifests import EU_BUCKET
from jobs.demo_recovery import ASIA_BUCKET, US_BUCKET
from jobs.interrupt import descendants, is_running
from pipeline.core.findings import Kind

REPO = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).parent / "registry-scrub")


def cli_env(**extra):
    env = dict(os.environ, NO_GCE_CHECK="true")
    # No credentials and no emulator unless a test names them (a developer's shell may have either).
    for name in ("STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS", "REGISTRY_SCRUB_USERNAME"):
        env.pop(name, None)
    env.update(extra)
    return env


def run_cli(*args, cwd, timeout=120, env=None):
    return subprocess.run([CLI, *args], cwd=cwd, env=env or cli_env(), capture_output=True, text=True, timeout=timeout)


def seed_clean(storage_client, name: str, count: int = 3):
    bucket = storage_client.lookup_bucket(name) or storage_client.create_bucket(name)
    for i in range(count):
        content = f"clean {i}".encode()
        bucket.blob("containers/images/sha256:" + hashlib.sha256(content).hexdigest()).upload_from_string(content)
    return bucket


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


# --- the demo and a clean scan ---------------------------------------------------------------


def test_demo_finds_every_planted_problem_and_leaves_the_report(tmp_path):
    proc = run_cli("demo", "--run-id", "demo1", cwd=tmp_path)  # docs/incremental.md quotes this run
    assert proc.returncode == 1, proc.stderr
    run_dir = tmp_path / "scrub-reports" / "demo1"
    assert f"report: {run_dir}" in proc.stdout
    summary = json.loads((run_dir / "summary.json").read_text())
    expected = {kind.value: 0 for kind in Kind} | {  # every kind, zeros included, as the summary lists them
        "digest_mismatch": 4,
        "malformed_name": 2,
        "missing_blob": 1,
        "size_mismatch": 1,
        "manifest_digest_mismatch": 1,
        "invalid_manifest": 1,
        "manifest_unavailable": 1,
        # 6 planted in the main bucket, 2 in the EU bucket, the 3 blobs of the image whose
        # manifest was lost (docs/recovery.md), and the 2 of the US bucket's image only it holds
        "unreferenced_blob": 13,
        "in_registry_only": 2,
        "legacy_metadata_unparsed": 2,
    }
    assert summary["findings_by_kind"] == expected
    # The successor's copy of the worker image is scanned too, and broken by the same layer.
    assert (summary["manifests_scanned"], summary["images_affected"]) == (14, 7)
    assert summary["config"]["source"]["buckets"] == [DEMO_BUCKET, EU_BUCKET, ASIA_BUCKET, US_BUCKET]
    rows = [json.loads(line) for path in run_dir.glob("findings-*.jsonl") for line in path.read_text().splitlines()]
    assert len(rows) == sum(expected.values())  # no finding twice
    # Reclaim: the EU bucket's complete folder proves its two orphans unused; the main bucket's does not.
    unreferenced = [row for row in rows if row["kind"] == "unreferenced_blob"]
    assert summary["unreferenced_bytes"] == sum(row["size"] for row in unreferenced)
    assert summary["reclaimable_bytes"] is None
    assert summary["reclaim_plan"]["objects"] == 2 and summary["reclaim_plan"]["buckets"] == [EU_BUCKET]
    eu_orphans = [row for row in unreferenced if row["bucket"] == EU_BUCKET]
    assert summary["reclaim_plan"]["bytes"] == sum(row["size"] for row in eu_orphans)
    lines = (run_dir / "reclaim-plan.txt").read_text().splitlines()
    assert sorted(lines) == sorted(f"gs://{EU_BUCKET}/{row['object']}#{row['generation']}" for row in eu_orphans)
    assert "reclaim plan: 2 unreferenced blob(s)" in proc.stdout and "not reclaimable:" in proc.stdout
    # Every planted problem the demo announces is in the findings once, with the announced kind.
    planted = [
        line.split("planted ", 1)[1].split(" -> expect ") for line in proc.stderr.splitlines() if "planted " in line
    ]
    assert len(planted) == 19  # 15 in the main bucket, 2 in_registry_only, 2 orphans in the EU bucket
    # The verdict per bucket, one line each, in the words summary.json gives.
    for bucket, row in summary["decommission"].items():
        assert f"{row['verdict']}: {row['headline']}" in proc.stdout, bucket
    assert summary["decommission"][ASIA_BUCKET]["verdict"] == "safe_to_delete"
    assert summary["decommission"][US_BUCKET]["verdict"] == "would_lose_images"
    # The second, incremental run (docs/incremental.md) after a rewrite, a push and a deletion.
    rescan = json.loads((tmp_path / "scrub-reports" / "demo1-rescan" / "summary.json").read_text())
    assert rescan["ledger"]["run_id"] == "demo1" and rescan["verified_from_ledger"] == 28
    assert rescan["changes"]["objects"] == {"new": 1, "changed": 1, "vanished": 1}
    assert "since run demo1: 1 new, 1 changed, 1 vanished object(s); findings 2 new" in proc.stdout
    check_incremental_doc_quotes(proc.stdout)
    for target, expectation in planted:
        kind = expectation.split(" ", 1)[0]
        named = [
            row
            for row in rows
            if row["kind"] == kind
            and ((row["object"] or "").endswith(target) or target in (row["images"] or []) or row["digest"] == target)
        ]
        assert len(named) == 1, f"planted {target} ({kind}): {len(named)} rows"


def check_incremental_doc_quotes(stdout: str) -> None:
    """docs/incremental.md's excerpt of the demo's rescan is what `registry-scrub demo --run-id demo1` prints."""
    doc = (REPO / "docs" / "incremental.md").read_text()
    assert "`registry-scrub demo --run-id demo1`" in doc
    excerpt = doc.split("summary ends with", 1)[1].split("```\n", 2)[1]
    for line in excerpt.splitlines():
        # Hashes are shortened with "…" and generations differ on every run.
        pattern = re.escape(line).replace("…", "[0-9a-f]+")
        pattern = re.sub(r"generation\\ \d+\\ \\->\\ \d+", r"generation\\ \\d+\\ ->\\ \\d+", pattern)
        assert re.search(f"^{pattern}$", stdout, re.MULTILINE), (
            f"docs/incremental.md quotes a line the demo no longer prints: {line}"
        )
    first_line = " ".join(doc.split("its first line says how little was read: `", 1)[1].split("`", 1)[0].split())
    assert first_line in stdout


def test_clean_bucket_scan_exits_zero(emulator, storage_client, tmp_path):
    bucket = seed_clean(storage_client, "artifacts.clean-1234.appspot.com")
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


def test_storage_emulator_host_names_the_emulator_and_the_flag_wins(emulator, storage_client, tmp_path):
    bucket = seed_clean(storage_client, "artifacts.envhost-1234.appspot.com", count=2)
    common = ["--bucket", bucket.name, "--output", str(tmp_path), "--direct_running_mode=in_memory"]
    # The standard variable, with a bare HOST:PORT as the Google clients accept it.
    env = cli_env(STORAGE_EMULATOR_HOST=f"127.0.0.1:{emulator.port}")
    proc = run_cli(*common, "--run-id", "from-env", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "2 objects listed, 2 verified" in proc.stdout
    # An explicit --emulator-endpoint wins over a variable that points nowhere.
    env = cli_env(STORAGE_EMULATOR_HOST="http://127.0.0.1:9")
    proc = run_cli(*common, "--run-id", "flag-wins", "--emulator-endpoint", emulator.endpoint, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "flag-wins" / "summary.json").read_text())
    assert summary["config"]["source"]["emulator_endpoint"] == emulator.endpoint
    bad = run_cli(*common, cwd=tmp_path, env=cli_env(STORAGE_EMULATOR_HOST="ftp://x"))
    assert bad.returncode == 2
    assert "environment STORAGE_EMULATOR_HOST: expected an http(s)://HOST:PORT endpoint" in one_line(bad.stderr)


# --- arguments --------------------------------------------------------------------------------


def test_unknown_arguments_exit_two_naming_the_closest_flag(tmp_path):
    proc = run_cli("--bucket", "artifacts.p-1234.appspot.com", "--read-concurency", "64", cwd=tmp_path)
    assert proc.returncode == 2
    assert one_line(proc.stderr) == (
        "registry-scrub: unknown argument --read-concurency (did you mean --read-concurrency?); "
        "see registry-scrub --help"
    )
    proc = run_cli("--bucket", "artifacts.p-1234.appspot.com", "--frobnicate", "--direct_num_worker=2", cwd=tmp_path)
    assert proc.returncode == 2
    assert one_line(proc.stderr) == (
        "registry-scrub: unknown arguments --frobnicate, --direct_num_worker (did you mean --direct_num_workers?); "
        "see registry-scrub --help"
    )


@pytest.mark.parametrize("flag", sorted(cli.OVERRIDES))
def test_a_typo_of_any_flag_points_at_that_flag(flag):
    typo = flag[:-2] + flag[-1]  # drop the second-last letter
    with pytest.raises(cli.UsageError, match=rf"unknown argument {typo} \(did you mean {flag}\?\)"):
        cli.parse_arguments(["--bucket=artifacts.p-1234.appspot.com", f"{typo}=1"])


def test_a_bad_value_of_a_beam_option_is_one_line(tmp_path):
    proc = run_cli("--bucket", "artifacts.p-1234.appspot.com", "--direct_num_workers=abc", cwd=tmp_path)
    assert proc.returncode == 2
    assert one_line(proc.stderr) == (
        "registry-scrub: argument --direct_num_workers: invalid int value: 'abc'; see registry-scrub --help"
    )


def test_beam_options_pass_and_stray_words_do_not():
    args, beam_args = cli.parse_arguments(
        ["--bucket=b-1234", "--runner=DataflowRunner", "--project", "p-1234", "--experiments=a", "--no_use_public_ips"]
    )
    assert beam_args == ["--runner=DataflowRunner", "--project", "p-1234", "--experiments=a", "--no_use_public_ips"]
    with pytest.raises(cli.UsageError, match="unknown argument 'stray'"):
        cli.parse_arguments(["--bucket=b-1234", "stray"])
    with pytest.raises(cli.UsageError, match="unknown argument --proj "):
        cli.parse_arguments(["--bucket=b-1234", "--proj=p-1234"])  # no abbreviations: spell flags out


def test_quiet_and_verbose_together_exit_two(tmp_path):
    proc = run_cli("--bucket", "artifacts.p-1234.appspot.com", "-q", "-v", cwd=tmp_path)
    assert proc.returncode == 2
    assert "argument -v/--verbose: not allowed with argument -q/--quiet" in one_line(proc.stderr)


def test_in_process_callers_keep_their_signal_handling(capsys):
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, set())
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("registry-scrub ")
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    assert signal.pthread_sigmask(signal.SIG_BLOCK, set()) == mask


def test_version(tmp_path):
    proc = run_cli("--version", cwd=tmp_path)
    assert proc.returncode == 0
    assert proc.stdout.startswith("registry-scrub 0.1.0 (Apache Beam 2.77.0, Python ")


def test_help_gives_each_flag_its_meaning_and_default(tmp_path):
    proc = run_cli("--help", cwd=tmp_path)
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())  # argparse wraps lines
    assert "SOURCE__" not in text and "overrides" not in text
    for flag, (key, _) in cli.OVERRIDES.items():
        assert flag in cli.FLAG_HELP, f"{flag}: add its metavar, meaning and default to FLAG_HELP"
        metavar, meaning, _ = cli.FLAG_HELP[flag]
        line = f"{flag} {metavar} {meaning} (default: {cli.default_text(flag)}; config key {key})"
        assert " ".join(line.split()) in text  # a flag without a value has no metavar
    assert "(default: 16; config key scan.shard_count)" in text
    assert "(default: 1MiB; config key scan.chunk_size)" in text


# --- unusable input: exit 2, one line, before any worker -------------------------------------


def test_bad_config_exits_two_naming_file_and_key(tmp_path):
    config = tmp_path / "scan.yaml"
    config.write_text("source:\n  buckets: [artifacts.p-1234.appspot.com]\nscan:\n  shard_count: 10\n")
    proc = run_cli("--config", str(config), cwd=tmp_path)
    assert proc.returncode == 2
    assert f"{config}: scan.shard_count: expected one of 16, 256, 4096" in one_line(proc.stderr)


def test_bad_flag_value_names_the_flag(tmp_path):
    proc = run_cli("--bucket", "gs://x", cwd=tmp_path)
    assert proc.returncode == 2
    assert "command line --bucket: item 0 ('gs://x'): expected a bare bucket name" in one_line(proc.stderr)
    proc = run_cli("--shard-count", "many", cwd=tmp_path)
    assert proc.returncode == 2
    assert "argument --shard-count: invalid int value: 'many'" in one_line(proc.stderr)
    proc = run_cli("--bucket", "artifacts.p.appspot.com", "--read-timeout", "soon", cwd=tmp_path)
    assert proc.returncode == 2
    assert "command line --read-timeout: expected a number of seconds" in one_line(proc.stderr)


def test_nothing_to_scan_names_the_real_flags(tmp_path):
    proc = run_cli("--output", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2
    assert "(or pass --bucket / --scan-project / --scan-org / --scan-folder)" in one_line(proc.stderr)


def test_missing_bucket_exits_two(emulator, tmp_path):
    proc = run_cli(
        "--bucket", "artifacts.nowhere-1234.appspot.com", "--emulator-endpoint", emulator.endpoint, cwd=tmp_path
    )
    assert proc.returncode == 2
    assert "bucket 'artifacts.nowhere-1234.appspot.com' does not exist" in one_line(proc.stderr)


def test_unwritable_local_output_exits_two_and_verbose_shows_the_traceback(emulator, storage_client, tmp_path):
    bucket = seed_clean(storage_client, "artifacts.outcheck-1234.appspot.com", count=1)
    args = ["--bucket", bucket.name, "--emulator-endpoint", emulator.endpoint, "--output", "/proc/x"]
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 2
    assert one_line(proc.stderr).startswith("registry-scrub: --output /proc/x: cannot write there (")
    verbose = run_cli(*args, "-v", cwd=tmp_path)
    assert verbose.returncode == 2
    assert "Traceback" in verbose.stderr and "UnusableInput" in verbose.stderr


def test_output_in_a_missing_gcs_bucket_exits_two(emulator, storage_client, tmp_path):
    bucket = seed_clean(storage_client, "artifacts.gsout-1234.appspot.com", count=1)
    proc = run_cli(
        "--bucket",
        bucket.name,
        "--emulator-endpoint",
        emulator.endpoint,
        "--output",
        "gs://no-such-reports-1234/scrub",
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert one_line(proc.stderr) == (
        "registry-scrub: --output gs://no-such-reports-1234/scrub: bucket 'no-such-reports-1234' does not exist"
    )
    assert not any(storage_client.list_blobs(bucket.name, prefix=".registry-scrub"))


def test_an_unreachable_bigquery_dataset_exits_two(emulator, storage_client, tmp_path):
    """Without Google credentials (as here) the BigQuery preflight fails before any worker starts.
    The not-found and forbidden answers are checked in test_launcher.py against a stand-in server."""
    bucket = seed_clean(storage_client, "artifacts.bqcheck-1234.appspot.com", count=1)
    proc = run_cli(
        "--bucket",
        bucket.name,
        "--emulator-endpoint",
        emulator.endpoint,
        "--output",
        str(tmp_path),
        "--bigquery-dataset",
        "audit-proj:registry_audit",
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert one_line(proc.stderr).startswith(
        "registry-scrub: --bigquery-dataset audit-proj:registry_audit: no usable Google Cloud credentials"
    )


def test_manifests_mode_without_a_manifest_source_exits_two(emulator, storage_client, tmp_path):
    bucket = seed_clean(storage_client, "artifacts.nomanifests-1234.appspot.com", count=1)
    for mode in ("manifests", "both"):
        proc = run_cli("--bucket", bucket.name, "--emulator-endpoint", emulator.endpoint, "--mode", mode, cwd=tmp_path)
        assert proc.returncode == 2
        assert one_line(proc.stderr).startswith(f"registry-scrub: --mode {mode} needs a manifest source")
    assert not (tmp_path / "scrub-reports").exists()


def test_no_credentials_exit_two_in_one_line(tmp_path):
    proc = run_cli(
        "--bucket=artifacts.p-1234.appspot.com",
        "--output=gs://audit-reports/scrub",
        "--runner=DataflowRunner",
        "--project=p-1234",
        "--region=us-central1",
        "--temp_location=gs://p-1234-dataflow/tmp",
        cwd=tmp_path,
        env=cli_env(HOME=str(tmp_path)),
    )
    assert proc.returncode == 2
    assert one_line(proc.stderr).startswith("registry-scrub: no Google Cloud credentials (")


def test_dataflow_runner_without_its_options_exits_two(tmp_path):
    proc = run_cli("--bucket", "artifacts.p-1234.appspot.com", "--runner=DataflowRunner", cwd=tmp_path)
    assert proc.returncode == 2
    assert "DataflowRunner needs --project, --region, --temp_location" in one_line(proc.stderr)


# --- registry credentials, against a real docker-registry with htpasswd auth ------------------

# `scrub` / `s3cret-pass`, bcrypt as docker-registry requires (made once with crypt.crypt).
HTPASSWD = "scrub:$2b$05$abcdefghijklmnopqrstuuV7fpPozvyqJfnY19y0802WTlXUm6Rjy\n"


@pytest.fixture
def locked_registry(tmp_path):
    """The fixtures' registry, with Basic auth from an htpasswd file added to its config."""
    from tests import registry_fixtures

    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(HTPASSWD)
    auth = f"auth:\n  htpasswd:\n    realm: registry-scrub-test\n    path: {htpasswd}\n"
    plain = registry_fixtures.CONFIG
    registry_fixtures.CONFIG = plain + auth
    try:
        reg = registry_fixtures.Registry(tmp_path / "locked-registry").start()
    finally:
        registry_fixtures.CONFIG = plain  # read once, at start: other registries stay open
    try:
        yield reg
    finally:
        reg.stop()


def test_registry_credentials_missing_or_refused_exit_two(locked_registry, emulator, storage_client, tmp_path):
    bucket = seed_clean(storage_client, "artifacts.regauth-1234.appspot.com", count=1)
    config = tmp_path / "scan.yaml"
    config.write_text(
        f"source:\n  buckets: [{bucket.name}]\n  emulator_endpoint: {emulator.endpoint}\n"
        f"report:\n  output: {tmp_path / 'out'}\n"
        f"manifests:\n  sources:\n    - registry: {locked_registry.url}\n      repositories: [team/app]\n"
    )
    missing = run_cli("--config", str(config), "--direct_running_mode=in_memory", cwd=tmp_path)
    assert missing.returncode == 2
    assert one_line(missing.stderr) == (
        f"registry-scrub: manifests.sources[0] ({locked_registry.url}): GET /v2/ answered HTTP 401: the registry "
        "needs credentials; set REGISTRY_SCRUB_USERNAME and REGISTRY_SCRUB_PASSWORD (or credentials_env)"
    )
    wrong = cli_env(REGISTRY_SCRUB_USERNAME="scrub", REGISTRY_SCRUB_PASSWORD="wrong")
    refused = run_cli("--config", str(config), "--direct_running_mode=in_memory", cwd=tmp_path, env=wrong)
    assert refused.returncode == 2
    assert "the registry refused REGISTRY_SCRUB_USERNAME / REGISTRY_SCRUB_PASSWORD" in one_line(refused.stderr)
    assert not (tmp_path / "out").exists()
    # The right password passes the preflight and the scan runs (the repository is empty: findings, status 1).
    right = cli_env(REGISTRY_SCRUB_USERNAME="scrub", REGISTRY_SCRUB_PASSWORD="s3cret-pass")
    ran = run_cli("--config", str(config), "--direct_running_mode=in_memory", "--run-id=r", cwd=tmp_path, env=right)
    assert ran.returncode in (0, 1), ran.stderr
    assert (tmp_path / "out" / "r" / "summary.json").exists()


# --- the run itself -------------------------------------------------------------------------


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


def test_dataflow_dry_run_builds_the_job_offline_without_credentials(tmp_path):
    proc = run_cli(
        "--bucket",
        "artifacts.p-1234.appspot.com",
        "--scan-project",
        "other-project",
        "--output",
        "gs://audit-reports/scrub",
        "--run-id",
        "dry",
        "--runner=DataflowRunner",
        "--dry_run=True",
        "--project=p-1234",
        "--region=us-central1",
        "--temp_location=gs://p-1234-dataflow/tmp",
        "--sdk_container_image=example.com/registry-scrub:1",
        cwd=tmp_path,
        env=cli_env(HOME=str(tmp_path)),  # no gcloud credentials either
    )
    assert proc.returncode == 0, proc.stderr
    assert "dry run: building the job for 2 bucket(s)" in proc.stderr
    assert "dry run: the job was built and checked, and not submitted; its report would go to " in proc.stderr
    assert "gs://audit-reports/scrub/dry" in proc.stderr


def test_dataflow_options_beam_would_refuse_mid_run_exit_two_before(tmp_path):
    proc = run_cli(
        "--bucket=artifacts.p-1234.appspot.com",
        "--output=gs://audit-reports/scrub",
        "--runner=DataflowRunner",
        "--dry_run=True",
        "--project=p",
        "--region=r",
        "--temp_location=gs://bkt/t",
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert one_line(proc.stderr).startswith("registry-scrub: Invalid Project ID (p).")


def test_dry_run_flag_must_mean_what_it_says(tmp_path):
    proc = run_cli("--bucket", "artifacts.p-1234.appspot.com", "--dry_run=False", cwd=tmp_path)
    assert proc.returncode == 2
    assert "--dry_run=False: Beam treats any value as true" in one_line(proc.stderr)


# --- stopping: SIGINT (Ctrl-C, to the whole process group) and SIGTERM (to the CLI) ---------


def _worker_pids(pid: int) -> list[int]:
    found = []
    for child in descendants(pid):
        try:
            if b"sdk_worker_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(child)
        except OSError:
            pass
    return found


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_the_run_its_workers_and_its_partial_report(signum, status, emulator, storage_client, tmp_path):
    """The scan is made slow by a proxy that holds every request for 1.5 s; the signal comes
    once the worker processes run. Everything below this process is gone afterwards."""
    from tests.support.proxy import FaultyProxy

    bucket = seed_clean(storage_client, "artifacts.slow-1234.appspot.com", count=40)
    err = (tmp_path / "stderr").open("w+")
    with FaultyProxy(emulator.port, latency=1.5) as proxy:
        proc = subprocess.Popen(
            [CLI, "--bucket", bucket.name, "--emulator-endpoint", proxy.endpoint, "--output", str(tmp_path / "out")]
            + ["--run-id", "slow", "--read-concurrency", "1", "--direct_num_workers=2"],
            cwd=tmp_path,
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            start_new_session=True,
        )
        try:
            workers: list[int] = []
            hang_guard = time.monotonic() + 300  # not a speed check: only keeps a broken run from hanging the suite
            while len(workers) < 2 or " INFO progress: " not in Path(err.name).read_text():
                assert proc.poll() is None, Path(err.name).read_text()
                assert time.monotonic() < hang_guard, "no worker reported progress"
                workers = _worker_pids(proc.pid)
                time.sleep(0.2)
            everything = descendants(proc.pid)
            if signum == signal.SIGINT:
                os.killpg(proc.pid, signum)  # what a terminal's Ctrl-C does
            else:
                proc.send_signal(signum)
            stdout, _ = proc.communicate(timeout=15)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    stderr = Path(err.name).read_text()
    assert proc.returncode == status, stderr
    assert stdout == ""  # no summary printed
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"registry-scrub: interrupted by {signal.Signals(signum).name}; ")
    assert f"removed the partial report {tmp_path / 'out' / 'slow'}" in last
    assert "Traceback" not in stderr
    assert not (tmp_path / "out" / "slow").exists()
    assert [pid for pid in everything if is_running(pid)] == []


def _string_literals(path: Path):
    import ast

    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.value


def test_messages_name_only_flags_that_exist():
    """A message that says "pass --project" where the flag is --scan-project sends users astray."""
    commands = cli.build_parser().commands
    known = {flag for command in commands.values() for flag in cli._known_flags(command)}
    known |= set(cli._known_flags(cli.beam_option_parser()))
    # Flags of commands the messages quote: `bq mk --dataset`, `gcloud resource-manager folders list --organization`.
    not_ours = {"--dataset", "--organization"}
    sources = ["jobs/cli.py", "jobs/launcher.py", "jobs/interrupt.py", "pipeline/config.py", "pipeline/runner.py"]
    sources += ["pipeline/manifest_config.py", "pipeline/adapters/registry.py"]
    sources += ["pipeline/core/discovery.py", "pipeline/adapters/asset_inventory.py", "pipeline/core/scan_plan.py"]
    named = {
        (source, flag)
        for source in sources
        for text in _string_literals(REPO / source)
        for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9_-]*[a-z0-9]", text)
    }
    assert named, "the scan found no flag at all in the messages"
    unknown = sorted((source, flag) for source, flag in named if flag not in known | not_ours)
    assert unknown == []


def test_docs_describe_every_flag_and_exit_status():
    text = (REPO / "docs" / "cli.md").read_text()
    for flag, (key, _) in cli.OVERRIDES.items():
        named = f"| `{flag} " in text or f"| `{flag}` |" in text  # with a value, or a bare flag
        assert named and f"| `{key}` |" in text, f"docs/cli.md: describe {flag}"
    for status in (0, 1, 2, 3, 130, 143):
        assert f"\n| {status} |" in text
        assert f"\n| {status} |" in (REPO / "docs" / "report.md").read_text()


def test_registry_preflight_per_auth_mode(locked_registry, registry, monkeypatch, tmp_path):
    """In-process, against the real registries: basic without credentials is refused before any
    request; an open registry passes; a refused password names the variables to check."""
    from jobs.launcher import UnusableInput, check_registries
    from pipeline.config import parse_config

    def config(url: str, **source):
        raw = {"source": {"buckets": ["b-1234"]}, "manifests": {"sources": [{"registry": url, **source}]}}
        return parse_config(raw, "test")

    monkeypatch.delenv("REGISTRY_SCRUB_USERNAME", raising=False)
    monkeypatch.delenv("REGISTRY_SCRUB_PASSWORD", raising=False)
    check_registries(config(registry.url, repositories=["a/b"]))  # no auth configured there: fine
    with pytest.raises(UnusableInput, match="auth is 'basic' but AUDIT_USERNAME and AUDIT_PASSWORD are not both set"):
        check_registries(config(locked_registry.url, auth="basic", credentials_env="AUDIT"))
    monkeypatch.setenv("AUDIT_USERNAME", "scrub")
    monkeypatch.setenv("AUDIT_PASSWORD", "s3cret-pass")
    check_registries(config(locked_registry.url, auth="basic", credentials_env="AUDIT"))
    monkeypatch.setenv("AUDIT_PASSWORD", "nope")
    with pytest.raises(UnusableInput, match="the registry refused AUDIT_USERNAME / AUDIT_PASSWORD"):
        check_registries(config(locked_registry.url, credentials_env="AUDIT"))
    # Google auth with no application default credentials anywhere (NO_GCE_CHECK: no metadata server).
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))
    with pytest.raises(UnusableInput, match=r"no usable Google credentials \(DefaultCredentialsError\)"):
        check_registries(config(registry.url, auth="google"))


def test_on_a_terminal_progress_is_one_line_redrawn_in_place(emulator, storage_client, tmp_path):
    """The CLI under a pseudo-terminal, made slow enough by the proxy for the workers to report."""
    import pty

    from tests.support.proxy import FaultyProxy
    from tests.support.terminal import read_until_closed

    bucket = seed_clean(storage_client, "artifacts.tty-1234.appspot.com", count=12)
    with FaultyProxy(emulator.port, latency=0.5) as proxy:
        controller, terminal = pty.openpty()
        proc = subprocess.Popen(
            [CLI, "--bucket", bucket.name, "--emulator-endpoint", proxy.endpoint, "--output", str(tmp_path)]
            + ["--run-id", "tty", "--read-concurrency", "1"],
            cwd=tmp_path,
            env=cli_env(),
            stdin=subprocess.DEVNULL,
            stdout=terminal,
            stderr=terminal,
        )
        os.close(terminal)
        screen = read_until_closed(controller).decode()
        assert proc.wait(timeout=60) == 0
    assert "\r\x1b[Kprogress: " in screen
    assert "INFO progress" not in screen and "[worker] progress" not in screen  # never a line per report
    # Each drawing is followed by the next one, or ends its line before anything else is printed.
    drawings = re.findall(r"\r\x1b\[Kprogress: [^\r\n]*(?:worker process\(es\)\)|so far)(?=\r\x1b\[K|\r\n)", screen)
    assert len(drawings) == screen.count("\r\x1b[K")
    assert "\r\nrun tty: 12 objects listed, 12 verified" in screen


def _flag_actions(parser):
    return [a for a in parser._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]


def test_every_subcommand_gives_each_flag_a_meaning_a_readable_name_and_a_default(tmp_path):
    commands = cli.build_parser().commands
    assert set(commands) == {"scan", "demo", "report", "export"}
    for name, parser in commands.items():
        proc = run_cli(name, "--help", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        text = " ".join(proc.stdout.split())
        for action in _flag_actions(parser):
            flag = action.option_strings[-1]
            assert action.help and "%(default)" not in action.help, f"{name} {flag}: no meaning"
            assert " ".join(action.help.replace("%%", "%").split()) in text, f"{name} {flag}"
            if isinstance(action, argparse._VersionAction):
                assert action.help == cli.VERSION_HELP
                continue
            if action.nargs != 0:  # a flag with a value: a metavar a person wrote, not argparse's DEST
                assert action.metavar is not None, f"{name} {flag}: argparse would show {action.dest.upper()}"
            if not action.required:
                assert "(default: " in action.help or "default: " in action.help, f"{name} {flag}: no default"


def test_a_bad_export_value_names_the_flag_and_the_export_help(tmp_path):
    for flag, value, bounds in [("--chunk-size", "0", "4096 to 268435456"), ("--max-attempts", "many", "1 to 20")]:
        target = str(tmp_path / "x")
        proc = run_cli("export", str(tmp_path), "sha256:" + "0" * 64, "--to", target, flag, value, cwd=tmp_path)
        assert proc.returncode == 2
        assert one_line(proc.stderr) == (
            f"registry-scrub: argument {flag}: expected a whole number from {bounds}, got {value!r}; "
            "see registry-scrub export --help"
        )
    assert not (tmp_path / "x").exists()
