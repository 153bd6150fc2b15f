"""The launcher against a real emulator: bucket discovery, preflight, run folders, runner choice."""

import http.server
import os
import re
import threading
from datetime import datetime

import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.fn_api_runner import fn_runner

from jobs.launcher import (
    UnusableInput,
    check_bigquery_dataset,
    check_manifest_sources,
    check_output,
    default_run_id,
    emulator_from_environment,
    preflight,
    resolve_buckets,
    split_dataset,
)
from pipeline.adapters import report as report_io
from pipeline.compat import UTC
from pipeline.config import ConfigError, parse_config
from pipeline.runner import OptionsError, is_dry_run, pipeline_options, runner_for
from tests.support.http_server import send_json


def config(**source):
    return parse_config({"source": source}, "test")


def test_projects_discover_every_regional_gcr_bucket_and_nothing_else(storage_client):
    wanted = [
        "artifacts.disco-1234.appspot.com",
        "eu.artifacts.disco-1234.appspot.com",
        "asia.artifacts.disco-1234.appspot.com",
    ]
    for name in [*wanted, "disco-1234-unrelated", "staging.disco-1234.appspot.com"]:
        if storage_client.lookup_bucket(name) is None:
            storage_client.create_bucket(name)
    explicit = "explicit-bucket-1234"
    buckets = resolve_buckets(config(buckets=[explicit], projects=["disco-1234"]), storage_client)
    assert buckets[0] == explicit
    # The emulator lists every bucket whatever the project; only the GCR-named ones count.
    assert sorted(b for b in buckets[1:] if "disco-1234" in b) == sorted(wanted)
    assert not {"disco-1234-unrelated", "staging.disco-1234.appspot.com"} & set(buckets)
    assert len(buckets) == len(set(buckets))


def test_preflight_names_a_missing_bucket(storage_client, bucket):
    preflight(config(buckets=[bucket.name]), storage_client, (bucket.name,))
    with pytest.raises(UnusableInput, match="bucket 'artifacts.absent-1234.appspot.com' does not exist"):
        preflight(config(buckets=[bucket.name]), storage_client, (bucket.name, "artifacts.absent-1234.appspot.com"))


def test_run_folder_is_cleared_only_for_its_own_run_id(tmp_path):
    own, other = tmp_path / "r1", tmp_path / "r2"
    for folder in (own, other):
        folder.mkdir()
        (folder / "findings-00000-of-00001.jsonl").write_text("{}\n")
    assert report_io.clear_run_folder(report_io.run_folder(str(tmp_path), "r1")) == 1
    assert not own.exists() and (other / "findings-00000-of-00001.jsonl").exists()
    assert report_io.clear_run_folder(report_io.run_folder(str(tmp_path), "r1")) == 0


def test_default_run_id_is_the_utc_start_time():
    assert default_run_id(datetime(2026, 11, 26, 22, 15, 47, tzinfo=UTC)) == "20261126T221547Z"


@pytest.mark.parametrize("args", [[], ["--runner=DirectRunner"]])
def test_local_runs_use_the_offline_fnapi_runner_in_multiprocessing_mode(args):
    options = pipeline_options(args)
    runner = runner_for(options)
    assert isinstance(runner, fn_runner.FnApiRunner)
    direct = options.get_all_options()
    assert direct["direct_running_mode"] == "multi_processing"
    assert direct["direct_num_workers"] == (os.cpu_count() or 1)


def test_the_users_own_runner_choices_are_kept():
    options = pipeline_options(["--direct_running_mode=in_memory", "--direct_num_workers=1"]).get_all_options()
    assert (options["direct_running_mode"], options["direct_num_workers"]) == ("in_memory", 1)
    options = pipeline_options(["--direct_num_workers=3"]).get_all_options()
    assert (options["direct_running_mode"], options["direct_num_workers"]) == ("multi_processing", 3)
    assert runner_for(PipelineOptions(["--runner=DirectRunner", "--prism_location=/opt/prism"])) == "DirectRunner"


def test_dataflow_options_are_validated_before_anything_runs():
    with pytest.raises(OptionsError, match="DataflowRunner needs --project, --region, --temp_location"):
        runner_for(PipelineOptions(["--runner=DataflowRunner"]))
    with pytest.raises(OptionsError, match="--temp_location: DataflowRunner needs a gs:// location"):
        runner_for(
            PipelineOptions(
                ["--runner=DataflowRunner", "--project=p-1234", "--region=us-central1", "--temp_location=/tmp/x"]
            )
        )
    with pytest.raises(OptionsError, match="--temp_location: 'gs://b/tmp' does not name a valid bucket"):
        runner_for(
            PipelineOptions(
                ["--runner=DataflowRunner", "--project=p-1234", "--region=us-central1", "--temp_location=gs://b/tmp"]
            )
        )
    good = ["--runner=DataflowRunner", "--project=p-1234", "--region=us-central1", "--temp_location=gs://bkt/tmp"]
    assert runner_for(PipelineOptions(good)) == "DataflowRunner"


@pytest.mark.parametrize(
    "args, dry",
    [
        ([], False),
        (["--runner=DataflowRunner", "--dry_run=True"], True),
        (["--runner=DataflowRunner", "--dry_run=true"], True),
    ],
)
def test_dry_run_is_read_as_beam_reads_it(args, dry):
    assert is_dry_run(PipelineOptions(args)) is dry


@pytest.mark.parametrize(
    "args, problem",
    [
        (["--runner=DataflowRunner", "--dry_run=False"], "--dry_run=False: Beam treats any value as true"),
        (["--runner=DataflowRunner", "--dry_run=0"], "--dry_run=0: Beam treats any value as true"),
        (["--dry_run=True"], "--dry_run=True works only with --runner=DataflowRunner"),
    ],
)
def test_a_dry_run_that_would_not_be_one_is_refused(args, problem):
    with pytest.raises(OptionsError, match=re.escape(problem)):
        is_dry_run(PipelineOptions(args))


def test_storage_emulator_host_fills_in_only_what_is_not_set():
    plain = config(buckets=["b-1234"])
    assert emulator_from_environment(plain, {}) == plain
    assert emulator_from_environment(plain, {"STORAGE_EMULATOR_HOST": ""}) == plain
    from_env = emulator_from_environment(plain, {"STORAGE_EMULATOR_HOST": "localhost:9023"})
    assert from_env.source.emulator_endpoint == "http://localhost:9023"
    explicit = config(buckets=["b-1234"], emulator_endpoint="http://127.0.0.1:1234")
    assert emulator_from_environment(explicit, {"STORAGE_EMULATOR_HOST": "http://elsewhere:1"}) == explicit
    with pytest.raises(ConfigError, match="environment STORAGE_EMULATOR_HOST: expected an http"):
        emulator_from_environment(plain, {"STORAGE_EMULATOR_HOST": "http://a b"})


def test_output_probe_writes_nothing_it_leaves_behind(emulator, storage_client, bucket, tmp_path):
    check_output(f"gs://{bucket.name}/reports", "r1", emulator.endpoint)
    assert list(storage_client.list_blobs(bucket.name)) == []
    check_output(str(tmp_path / "new" / "root"), "r1", None)
    assert [p.name for p in (tmp_path / "new" / "root").iterdir()] == []
    (tmp_path / "read-only").mkdir(mode=0o500)
    if os.geteuid() != 0:  # root writes anywhere; /proc refuses even root
        with pytest.raises(UnusableInput, match="cannot write there"):
            check_output(str(tmp_path / "read-only"), "r1", None)
    with pytest.raises(UnusableInput, match=r"--output /proc/x: cannot write there \("):
        check_output("/proc/x", "r1", None)


def test_manifests_mode_needs_legacy_metadata_in_every_bucket_without_sources(storage_client, bucket):
    raw = {"source": {"buckets": [bucket.name]}, "scan": {"mode": "manifests"}}
    with pytest.raises(UnusableInput, match=f"--mode manifests needs a manifest source: .* {bucket.name} hold"):
        check_manifest_sources(parse_config(raw, "test"), storage_client, (bucket.name,))
    bucket.blob("containers/repositories/library/app/manifest_latest").upload_from_string(b"{}")
    check_manifest_sources(parse_config(raw, "test"), storage_client, (bucket.name,))


@pytest.mark.parametrize(
    "dataset, project, dataset_id",
    [("audit:d_1", "audit", "d_1"), ("example.com:audit:d", "example.com:audit", "d"), ("audit.d", "audit", "d")],
)
def test_split_dataset(dataset, project, dataset_id):
    assert split_dataset(dataset) == (project, dataset_id)
    assert split_dataset(dataset_id) == (None, dataset_id)


class _StandIn(http.server.BaseHTTPRequestHandler):
    """Answers every request with the status in the path's dataset name (d404, d403, d200)."""

    def do_GET(self):  # noqa: N802 (http.server's name)
        status = int(self.path.rsplit("/d", 1)[1].split("?")[0])
        body = (
            {"error": {"code": status, "message": f"stand-in {status}", "errors": [{"reason": "x"}]}}
            if status != 200
            else {"datasetReference": {"projectId": "audit-proj", "datasetId": "d200"}, "id": "audit-proj:d200"}
        )
        send_json(self, status, body)

    def log_message(self, *args):
        pass


def test_bigquery_answers_map_to_one_line_each():
    """No local BigQuery server is installed here (goccy's bigquery-emulator is not), so a
    stand-in HTTP server answers the real google-cloud-bigquery client as BigQuery's API would."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StandIn)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = bigquery.Client(
            project="audit-proj",
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": f"http://127.0.0.1:{server.server_port}"},
        )
        check_bigquery_dataset("audit-proj:d200", None, client)
        with pytest.raises(UnusableInput, match=r"dataset audit-proj:d404 not found; create it \(bq mk"):
            check_bigquery_dataset("audit-proj:d404", None, client)
        with pytest.raises(UnusableInput, match="not allowed to use dataset audit-proj:d403 .*stand-in 403"):
            check_bigquery_dataset("d403", "audit-proj", client)
    finally:
        server.shutdown()
