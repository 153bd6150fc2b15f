"""The registry budget: manifests.requests_per_second is for the whole job, each process takes its share."""

from __future__ import annotations

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from jobs.launcher import UnusableInput, with_registry_share
from pipeline.config import parse_config
from pipeline.core.budget import (
    BudgetError,
    Fleet,
    dataflow_fleet,
    flink_fleet,
    local_fleet,
    share_per_process,
    vcpus_of,
)
from pipeline.fleet import fleet_of
from pipeline.runner import pipeline_options

DATAFLOW = ["--runner=DataflowRunner", "--project=p-1234", "--region=europe-west1", "--temp_location=gs://t/x"]


def test_share_is_the_budget_divided_between_processes():
    # The example: 20 workers with 4 SDK processes each and a budget of 20 requests/s.
    assert share_per_process(20, 80) == 0.25
    assert share_per_process(20, 1) == 20
    assert share_per_process(7.5, 3) == 2.5
    assert share_per_process(20, 80) * 80 == 20  # the fleet together never exceeds the budget
    with pytest.raises(ValueError, match="at least one process"):
        share_per_process(20, 0)
    with pytest.raises(ValueError, match="positive"):
        share_per_process(0, 4)


@pytest.mark.parametrize(
    ("machine_type", "vcpus"),
    [
        ("n2-standard-4", 4),
        ("n1-standard-1", 1),
        ("c3-highcpu-176", 176),
        ("n2d-highmem-8", 8),
        ("c3-standard-4-lssd", 4),
        ("e2-medium", 2),
        ("custom-6-23040", 6),
        ("n2-custom-8-16384", 8),
        ("n2-custom-8-65536-ext", 8),
        ("zones/europe-west1-b/machineTypes/n2-standard-16", 16),
    ],
)
def test_vcpus_come_from_the_machine_type_name(machine_type, vcpus):
    assert vcpus_of(machine_type) == vcpus


def test_an_unreadable_machine_type_names_the_flag():
    with pytest.raises(BudgetError, match="--machine_type=mystery: cannot tell its vCPUs"):
        vcpus_of("mystery")


def test_dataflow_fleet_is_max_workers_times_sdk_processes_per_worker():
    assert dataflow_fleet(20, "n2-standard-4", False).processes == 80
    assert dataflow_fleet(20, "n2-standard-4", True).processes == 20  # one SDK process per worker
    assert dataflow_fleet(3, None, False).processes == 3  # Dataflow's default n1-standard-1
    assert dataflow_fleet(None, "n2-standard-2", False).processes == 2000  # Dataflow's ceiling of 1000


def test_local_and_flink_fleets():
    assert local_fleet(True, 4).processes == 4
    assert local_fleet(False, 4).processes == 1
    assert flink_fleet(16, False).processes == 16
    assert flink_fleet(None, True).processes == 1
    with pytest.raises(BudgetError, match="set --parallelism"):
        flink_fleet(None, False)


@pytest.mark.parametrize(
    ("args", "processes"),
    [
        ([*DATAFLOW, "--max_num_workers=20", "--machine_type=n2-standard-4"], 80),
        ([*DATAFLOW, "--max_num_workers=20", "--worker_machine_type=n2-standard-4"], 80),
        ([*DATAFLOW, "--num_workers=5", "--machine_type=n2-standard-8"], 40),
        (
            [*DATAFLOW, "--max_num_workers=20", "--machine_type=n2-standard-4"]
            + ["--experiments=no_use_multiple_sdk_containers", "--number_of_worker_harness_threads=12"],
            20,
        ),
        (["--direct_num_workers=3"], 3),
        (["--direct_running_mode=in_memory"], 1),
        (["--runner=PrismRunner", "--prism_location=/opt/prism"], 1),
        (["--runner=FlinkRunner", "--flink_master=[local]"], 1),
        (["--runner=FlinkRunner", "--flink_master=jm:8081", "--environment_type=DOCKER", "--parallelism=12"], 12),
    ],
)
def test_fleet_is_read_from_each_runners_own_flags(args, processes):
    assert fleet_of(pipeline_options(args)).processes == processes


def _registry_config(rate):
    return parse_config(
        {
            "source": {"buckets": ["artifacts.p-1234.appspot.com"]},
            "manifests": {
                "sources": [{"registry": "https://gcr.io", "gcr_projects": ["p-1234"]}],
                "requests_per_second": rate,
            },
        },
        "test",
    )


def test_launcher_hands_each_process_its_share():
    options = PipelineOptions([*DATAFLOW, "--max_num_workers=20", "--machine_type=n2-standard-4"])
    config = with_registry_share(_registry_config(40), options)
    assert config.manifests.requests_per_second == 40  # the budget, as configured and reported
    assert config.manifests.processes == 80
    assert config.manifests.requests_per_process == 0.5


def test_without_a_registry_source_nothing_is_shared():
    config = parse_config({"source": {"buckets": ["artifacts.p-1234.appspot.com"]}}, "test")
    assert with_registry_share(config, PipelineOptions(["--runner=FlinkRunner", "--environment_type=DOCKER"])) is config


def test_a_fleet_of_unknown_size_is_unusable_input():
    options = PipelineOptions(["--runner=FlinkRunner", "--flink_master=jm:8081", "--environment_type=DOCKER"])
    with pytest.raises(UnusableInput, match="set --parallelism"):
        with_registry_share(_registry_config(20), options)


def test_fleets_say_how_they_were_counted():
    assert flink_fleet(None, True) == Fleet(1, "LOOPBACK: the SDK workers run in the launching process")
    assert flink_fleet(1, False) == Fleet(1, "--parallelism=1 SDK workers at most")
    for parallelism in (0, -2, None):
        with pytest.raises(BudgetError) as err:
            flink_fleet(parallelism, False)
        assert str(err.value) == (
            "FlinkRunner without LOOPBACK: set --parallelism so that the registry budget "
            "(manifests.requests_per_second) can be shared between the SDK workers"
        )
    assert local_fleet(False, 8) == Fleet(1, "one in-memory process")
    assert local_fleet(True, 0) == Fleet(1, "--direct_num_workers=0 processes")
    assert dataflow_fleet(None, None, False) == Fleet(
        1000, "Dataflow's default of 1000 workers x 1 SDK processes (one per vCPU of n1-standard-1)"
    )
    assert dataflow_fleet(3, "n2-standard-4", True) == Fleet(
        3, "--max_num_workers=3 x 1 SDK process (no_use_multiple_sdk_containers)"
    )
    with pytest.raises(BudgetError) as err:
        vcpus_of("weird")
    assert str(err.value) == (
        "--machine_type=weird: cannot tell its vCPUs from the name, so the registry budget "
        "cannot be shared out; name a predefined or custom-N-M machine type"
    )
    with pytest.raises(ValueError, match="a request budget must be positive, got 0"):
        share_per_process(0, 1)
    with pytest.raises(ValueError, match="a fleet has at least one process, got 0"):
        share_per_process(1, 0)
