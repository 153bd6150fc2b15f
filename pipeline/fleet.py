"""How many SDK worker processes a run can have at once, read from Beam's options.

The arithmetic is ``pipeline.core.budget``; this module only reads the flags each runner
uses for its size (docs/manifest-sources.md, "A budget for the whole job").
"""

from __future__ import annotations

from apache_beam.options.pipeline_options import (
    DebugOptions,
    DirectOptions,
    FlinkRunnerOptions,
    PipelineOptions,
    PortableOptions,
    StandardOptions,
    WorkerOptions,
)

from pipeline.core.budget import Fleet, dataflow_fleet, flink_fleet, local_fleet
from pipeline.runner import is_local

LOOPBACK = "LOOPBACK"


def fleet_of(options: PipelineOptions) -> Fleet:
    """The most SDK processes the run can start; any other runner counts its SDK worker parallelism."""
    runner = options.view_as(StandardOptions).runner or ""
    portable = options.view_as(PortableOptions)
    if is_local(options):
        direct = options.view_as(DirectOptions)
        return local_fleet(direct.direct_running_mode == "multi_processing", direct.direct_num_workers or 1)
    if runner.endswith("DataflowRunner"):
        workers = options.view_as(WorkerOptions)
        one_process = "no_use_multiple_sdk_containers" in (options.view_as(DebugOptions).experiments or [])
        return dataflow_fleet(workers.max_num_workers or workers.num_workers, workers.machine_type, one_process)
    loopback = (portable.environment_type or LOOPBACK).upper() == LOOPBACK
    if runner.endswith("FlinkRunner"):
        return flink_fleet(options.view_as(FlinkRunnerOptions).parallelism, loopback)
    if loopback:  # Prism (LOOPBACK is its default), and any portable runner told to loop back
        return Fleet(1, "LOOPBACK: the SDK workers run in the launching process")
    workers = max(1, portable.sdk_worker_parallelism or 1)
    return Fleet(workers, f"--sdk_worker_parallelism={workers} per worker node (one node assumed)")
