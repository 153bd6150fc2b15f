"""The launcher: from a validated Config to a finished (or submitted) scan.

Everything here runs once, on the machine that starts the job: bucket discovery,
preflight checks, clearing an earlier run's folder, building and running the
pipeline, and reading back the summary. Errors that mean the input is unusable
raise ``UnusableInput`` (exit status 2) with a message naming what to fix.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import apache_beam as beam
import google.auth.exceptions
from apache_beam.options.pipeline_options import SetupOptions
from apache_beam.runners.runner import PipelineResult
from google.api_core import exceptions as gapi

from pipeline.adapters import gcs
from pipeline.adapters import report as report_io
from pipeline.build import RunPlan, build_pipeline
from pipeline.config import Config, is_gcr_bucket
from pipeline.runner import OptionsError, is_local, pipeline_options, runner_for
from pipeline.transforms.report import utc_now

log = logging.getLogger(__name__)


class UnusableInput(Exception):
    """Configuration, credentials or arguments that cannot run (exit status 2)."""


def default_run_id(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")


def prepare_environment(config: Config) -> None:
    """Against an emulator: no metadata-server probes, and Beam's gs:// filesystem goes there too."""
    endpoint = config.source.emulator_endpoint
    if endpoint:
        os.environ.setdefault("NO_GCE_CHECK", "true")
        os.environ["STORAGE_EMULATOR_HOST"] = endpoint.rstrip("/")


def resolve_buckets(config: Config, client) -> tuple[str, ...]:
    """Explicit buckets plus the GCR buckets found in each configured project, each once."""
    buckets = list(config.source.buckets)
    for project in config.source.projects:
        try:
            found = gcs.discover_gcr_buckets(client, project, is_gcr_bucket)
        except gapi.Forbidden as err:
            raise UnusableInput(
                f"source.projects: cannot list buckets of project {project!r} ({err.message}); "
                "grant storage.buckets.list or name the buckets in source.buckets"
            ) from None
        except gapi.NotFound:
            raise UnusableInput(f"source.projects: project {project!r} not found") from None
        log.info("project %s: found %d GCR bucket(s): %s", project, len(found), ", ".join(found) or "none")
        buckets.extend(b for b in found if b not in buckets)
    if not buckets:
        raise UnusableInput(
            "source: no bucket to scan; the configured projects hold no bucket named "
            "[us.|eu.|asia.]artifacts.PROJECT.appspot.com"
        )
    return tuple(buckets)


def preflight(config: Config, client, buckets: tuple[str, ...]) -> None:
    """Each bucket exists and its objects can be listed, before any worker starts."""
    for bucket in buckets:
        try:
            next(iter(client.list_blobs(bucket, prefix=config.source.prefix, max_results=1)), None)
        except gapi.NotFound:
            raise UnusableInput(f"bucket {bucket!r} does not exist (source.buckets)") from None
        except gapi.Forbidden as err:
            raise UnusableInput(
                f"bucket {bucket!r}: not allowed to list objects ({err.message}); "
                "the scanning identity needs roles/storage.objectViewer on it"
            ) from None


def make_storage_client(config: Config):
    try:
        return gcs.make_client(config.source.emulator_endpoint)
    except google.auth.exceptions.DefaultCredentialsError as err:
        raise UnusableInput(
            f"no Google Cloud credentials ({err}); run `gcloud auth application-default login` "
            "or set source.emulator_endpoint for a local emulator"
        ) from None


def plan_run(config: Config, client) -> RunPlan:
    buckets = resolve_buckets(config, client)
    preflight(config, client, buckets)
    run_id = config.report.run_id or default_run_id()
    return RunPlan(
        buckets=buckets,
        run_id=run_id,
        run_dir=report_io.run_folder(config.report.output, run_id),
        started_at=utc_now(),
        # Location and soft delete, for the reclaim plan's cost; never fatal (objectViewer lacks buckets.get).
        bucket_facts={bucket: gcs.bucket_facts(client, bucket) for bucket in buckets},
    )


def run_scan(config: Config, beam_args: list[str]) -> dict[str, Any]:
    """Scan and return the summary document, once the pipeline has finished."""
    result, plan = submit_scan(config, beam_args)
    result.wait_until_finish()
    summary = report_io.read_json(report_io.FileSystems.join(plan.run_dir, report_io.SUMMARY_FILE))
    if summary is None:
        raise RuntimeError(f"the pipeline finished but wrote no {report_io.SUMMARY_FILE} under {plan.run_dir}")
    return summary


def submit_scan(config: Config, beam_args: list[str]) -> tuple[PipelineResult, RunPlan]:
    """Plan, build and start the scan without waiting: what a Flex Template launch must do."""
    prepare_environment(config)
    options = pipeline_options(beam_args)
    # DoFns reference our modules; workers must import them rather than unpickle globals.
    options.view_as(SetupOptions).save_main_session = False
    try:
        runner = runner_for(options)
    except OptionsError as err:
        raise UnusableInput(str(err)) from None

    client = make_storage_client(config)
    plan = plan_run(config, client)
    config = replace(config, report=replace(config.report, run_id=plan.run_id))
    removed = report_io.clear_run_folder(plan.run_dir)
    if removed:
        log.info("replaced %d file(s) of an earlier run with id %s", removed, plan.run_id)
    log.info("scanning %d bucket(s) under %r; report: %s", len(plan.buckets), config.source.prefix, plan.run_dir)

    pipeline = beam.Pipeline(runner=runner, options=options)
    build_pipeline(pipeline, config, plan)
    result = pipeline.run()
    if not is_local(options):
        log.info("submitted; the report will appear under %s when the job ends", plan.run_dir)
    return result, plan
