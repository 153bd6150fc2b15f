"""Runner choice: local runs never reach for the network.

Beam 2.77's DirectRunner first tries to download the Prism runner from GitHub;
where the network stalls that hangs with no timeout. Unless the user names
another runner or a Prism binary, we run Beam's FnApiRunner ourselves, in
multi-processing mode with one worker per core, which is what DirectRunner
would fall back to anyway for a batch pipeline.
"""

from __future__ import annotations

import os

from apache_beam.options.pipeline_options import (
    DirectOptions,
    GoogleCloudOptions,
    PipelineOptions,
    PrismRunnerOptions,
    StandardOptions,
)
from apache_beam.runners.runner import PipelineRunner

LOCAL_RUNNER_NAMES = (None, "DirectRunner", "FnApiRunner")


class OptionsError(ValueError):
    """Beam options that cannot run; the message names the flag to fix."""


def is_local(options: PipelineOptions) -> bool:
    return (
        options.view_as(StandardOptions).runner in LOCAL_RUNNER_NAMES
        and not options.view_as(PrismRunnerOptions).prism_location
    )


def local_runner(options: PipelineOptions) -> PipelineRunner:
    """An offline FnApiRunner; fills in multi-processing and the worker count unless the user set them."""
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    direct = options.view_as(DirectOptions)
    given = options.get_all_options(drop_default=True)
    if "direct_running_mode" not in given:
        direct.direct_running_mode = "multi_processing"
    if "direct_num_workers" not in given:
        direct.direct_num_workers = os.cpu_count() or 1
    # What SwitchingDirectRunner hands the FnApiRunner, so workers see the options.
    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    provision = fn_runner.ExtendedProvisionInfo(beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded))
    return fn_runner.FnApiRunner(provision_info=provision)


def runner_for(options: PipelineOptions) -> PipelineRunner | str:
    """The runner object to hand ``beam.Pipeline``, or the runner name Beam should resolve."""
    if is_local(options):
        return local_runner(options)
    runner = options.view_as(StandardOptions).runner
    if runner == "DataflowRunner":
        validate_dataflow(options)
    return runner


def validate_dataflow(options: PipelineOptions) -> None:
    gcp = options.view_as(GoogleCloudOptions)
    missing = [
        flag
        for flag, value in (
            ("--project", gcp.project),
            ("--region", gcp.region),
            ("--temp_location", gcp.temp_location),
        )
        if not value
    ]
    if missing:
        raise OptionsError(f"DataflowRunner needs {', '.join(missing)}")
    for flag, value in (("--temp_location", gcp.temp_location), ("--staging_location", gcp.staging_location)):
        if value and not value.startswith("gs://"):
            raise OptionsError(f"{flag}: DataflowRunner needs a gs:// location, got {value!r}")
