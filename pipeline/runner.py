"""Runner choice: local runs never reach for the network.

Beam 2.77's DirectRunner first tries to download the Prism runner from GitHub;
where the network stalls that hangs with no timeout. Unless the user names
another runner or a Prism binary, we run Beam's FnApiRunner ourselves: a small
scan in the launcher's own process, a larger one in multi-processing mode with
one worker per core (``local_running_mode``), unless ``--direct_running_mode``
says otherwise.
"""

from __future__ import annotations

import atexit
import gc
import os
from collections.abc import Sequence

from apache_beam.options.pipeline_options import (
    DirectOptions,
    GoogleCloudOptions,
    PipelineOptions,
    PrismRunnerOptions,
    StandardOptions,
    TestOptions,
)
from apache_beam.runners.runner import PipelineRunner

from pipeline.values import BUCKET_RE

LOCAL_RUNNER_NAMES = (None, "DirectRunner", "FnApiRunner")
# Local scans of up to this many objects (estimated from a sample of the listing) run in one process.
IN_PROCESS_MAX_OBJECTS = 10_000


class OptionsError(ValueError):
    """Beam options that cannot run; the message names the flag to fix."""


def is_local(options: PipelineOptions) -> bool:
    return (
        options.view_as(StandardOptions).runner in LOCAL_RUNNER_NAMES
        and not options.view_as(PrismRunnerOptions).prism_location
    )


def is_dry_run(options: PipelineOptions) -> bool:
    """``--dry_run=True``: Dataflow builds and checks the job and submits nothing.

    Beam reads the flag as a string, so ``--dry_run=False`` would be a dry run too; it is refused.
    """
    value = options.view_as(TestOptions).dry_run
    if value in (None, False):
        return False
    if str(value).strip().lower() not in ("true", "1", "yes"):
        raise OptionsError(f"--dry_run={value}: Beam treats any value as true; pass --dry_run=True or leave it out")
    if options.view_as(StandardOptions).runner != "DataflowRunner":
        raise OptionsError("--dry_run=True works only with --runner=DataflowRunner; other runners would run for real")
    return True


def _given(args: Sequence[str], name: str) -> bool:
    return any(arg == f"--{name}" or arg.startswith(f"--{name}=") for arg in args)


def chooses_running_mode(args: Sequence[str]) -> bool:
    """Whether the execution mode of a local run is ours to choose: the arguments name neither
    a mode nor a number of workers (asking for workers asks for worker processes)."""
    return (
        is_local(PipelineOptions(list(args)))
        and not _given(args, "direct_running_mode")
        and not _given(args, "direct_num_workers")
    )


def local_running_mode(estimated_objects: int | None) -> str:
    """In the launcher's own process for a small scan, else one worker process per core.

    Worker processes cost seconds to start (each imports Beam and the scanner), and a
    scan of a few thousand objects is over before they pay for themselves: in one process,
    reads are threads, and hashlib and socket reads release the GIL. Past that, Python's
    per-object work needs every core. Without an estimate, worker processes.
    The threshold is measured: docs/performance.md, "Execution mode".
    """
    if estimated_objects is not None and estimated_objects <= IN_PROCESS_MAX_OBJECTS:
        return "in_memory"
    return "multi_processing"


def pipeline_options(args: Sequence[str], estimated_objects: int | None = None) -> PipelineOptions:
    """Beam's options from the command line. A local run whose arguments name no execution
    mode gets one by ``local_running_mode`` (decided on the arguments themselves, since an
    explicit ``--direct_running_mode=in_memory`` equals Beam's default); multi-processing
    has one worker per core unless ``--direct_num_workers`` says otherwise."""
    args = list(args)
    if is_local(PipelineOptions(args)):
        if not _given(args, "direct_running_mode"):
            args.append(f"--direct_running_mode={local_running_mode(estimated_objects)}")
        in_memory = PipelineOptions(args).view_as(DirectOptions).direct_running_mode == "in_memory"
        if not _given(args, "direct_num_workers") and not in_memory:
            args.append(f"--direct_num_workers={os.cpu_count() or 1}")
    return PipelineOptions(args)


def runs_in_one_process(options: PipelineOptions) -> bool:
    """A local run in the launcher's own process (FnApiRunner ``in_memory``): one SDK worker."""
    return is_local(options) and options.view_as(DirectOptions).direct_running_mode == "in_memory"


def spreads_listed_objects(options: PipelineOptions) -> tuple[bool, bool]:
    """Whether the scan spreads (the listing units, the listed objects) across workers with a Reshuffle.

    - On Dataflow and the portable runners, both: a worker that lists a shard would otherwise
      hash all of it, and a listing cannot be split once started.
    - With the local runner's worker processes, the units only: FnApiRunner deals a grouped
      input out to its workers key by key, so the shards split evenly, and each worker hashes
      what it lists as it lists it. A Reshuffle of the objects would make the runner's
      controller (the launcher) hold every listed object until the listing ended.
    - In one process, neither: there is one worker to spread over.
    """
    if not is_local(options):
        return True, True
    return not runs_in_one_process(options), False


_process_prepared = False


def prepare_launcher_process() -> None:
    """Spare the launcher's garbage collector the heap that lives until the process ends.

    By the time a local runner is made, Beam, the Google clients and the scanner are
    imported: about 180,000 objects that never die. Each full collection walks all of them
    (about 40 ms, several times a run), and the interpreter's exit walks them once more, which
    cost 0.35 s of a one-object scan's 2.4. ``gc.freeze()`` moves them out of the collector's
    sight; at exit it does the same for what the run left, which the process is about to drop
    anyway. Once per process: a test session building many pipelines freezes only its imports.
    """
    global _process_prepared
    if _process_prepared:
        return
    _process_prepared = True
    gc.freeze()
    atexit.register(gc.freeze)


def local_runner(options: PipelineOptions) -> PipelineRunner:
    """An offline FnApiRunner, handed the options as SwitchingDirectRunner would hand them."""
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    provision = fn_runner.ExtendedProvisionInfo(beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded))
    prepare_launcher_process()
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
        if value and not BUCKET_RE.fullmatch(value[len("gs://") :].split("/", 1)[0]):
            # Beam would fall back to creating a default bucket of its own, over the network.
            raise OptionsError(f"{flag}: {value!r} does not name a valid bucket (gs://BUCKET/PATH)")


def check_dataflow_options(options: PipelineOptions) -> None:
    """Beam's own validation of Dataflow options (project id format, locations, job name …),
    which Beam would otherwise raise only once ``run()`` has started. Call it after the
    checks above: with an invalid bucket in a location it would go looking for a bucket
    of its own over the network."""
    if options.view_as(StandardOptions).runner != "DataflowRunner":
        return
    from apache_beam.options.pipeline_options_validator import PipelineOptionsValidator
    from apache_beam.runners.dataflow.dataflow_runner import DataflowRunner

    errors = PipelineOptionsValidator(options, DataflowRunner()).validate()
    if errors:
        raise OptionsError("; ".join(" ".join(error.split()) for error in errors))
