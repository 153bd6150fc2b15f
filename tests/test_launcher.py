"""The launcher against a real emulator: bucket discovery, preflight, run folders, runner choice."""

from datetime import UTC, datetime

import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.fn_api_runner import fn_runner

from jobs.launcher import UnusableInput, default_run_id, preflight, resolve_buckets
from pipeline.adapters import report as report_io
from pipeline.config import parse_config
from pipeline.runner import OptionsError, pipeline_options, runner_for


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
    assert set(wanted) <= set(buckets[1:])
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
    assert direct["direct_num_workers"] >= 1


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
    good = ["--runner=DataflowRunner", "--project=p-1234", "--region=us-central1", "--temp_location=gs://b/tmp"]
    assert runner_for(PipelineOptions(good)) == "DataflowRunner"
