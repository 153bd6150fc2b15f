"""The launcher: from a validated Config to a finished (or submitted) scan.

Everything here runs once, on the machine that starts the job: bucket discovery,
preflight checks, clearing an earlier run's folder, building and running the
pipeline, and reading back the summary. Errors that mean the input is unusable
raise ``UnusableInput`` (exit status 2) with a message naming what to fix, before
any worker starts:

* each bucket exists and can be listed;
* ``--mode manifests|both`` has a manifest source for every bucket;
* the report location can be written (a local folder, or a ``gs://`` bucket that exists);
* the BigQuery dataset, if any, exists and can be read;
* each registry source lets its credentials in (no 401 or 403).

A Dataflow dry run (``--dry_run=True``) needs no credentials: it skips the checks
that would call Google Cloud and builds the whole graph offline.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import apache_beam as beam
import google.auth
import google.auth.exceptions
import requests
from apache_beam.options.pipeline_options import (
    DirectOptions,
    GoogleCloudOptions,
    PipelineOptions,
    SetupOptions,
    StandardOptions,
)
from apache_beam.runners.runner import PipelineResult
from google.api_core import exceptions as gapi

from jobs import interrupt, logs
from pipeline.adapters import asset_inventory, gcs
from pipeline.adapters import report as report_io
from pipeline.build import RunPlan, build_pipeline
from pipeline.compat import UTC
from pipeline.config import SCHEMA, Config, ConfigError, is_gcr_bucket, with_recovery_for_reclaim
from pipeline.core import scan_plan
from pipeline.core.budget import BudgetError
from pipeline.core.discovery import gcr_buckets, scopes_of
from pipeline.core.ledger import unresolved_previous
from pipeline.fleet import fleet_of
from pipeline.manifest_config import effective_mode
from pipeline.runner import (
    IN_PROCESS_MAX_OBJECTS,
    OptionsError,
    check_dataflow_options,
    chooses_running_mode,
    is_dry_run,
    is_local,
    pipeline_options,
    runner_for,
)
from pipeline.transforms.report import utc_now

log = logging.getLogger(__name__)

EMULATOR_ENV = "STORAGE_EMULATOR_HOST"
READ_WRITE_SCOPE = "https://www.googleapis.com/auth/devstorage.read_write"
PROBE_NAME = ".registry-scrub-write-probe"
PREFLIGHT_TIMEOUT_S = 30.0
# --plan-only lists up to this many objects per bucket exactly (50 pages), then estimates.
PLAN_LISTING_LIMIT = 50_000
# The first call to Cloud Storage (or the emulator) retries a blip, but gives up within seconds:
# an endpoint with nothing listening, a name that does not resolve, or no network at all would
# otherwise be retried by the client for two minutes before the run fails (docs/cli.md).
REACH_TIMEOUT_S = 5.0


class UnusableInput(Exception):
    """Configuration, credentials or arguments that cannot run (exit status 2)."""


def default_run_id(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")


def emulator_from_environment(config: Config, environ: Mapping[str, str]) -> Config:
    """``STORAGE_EMULATOR_HOST``, the variable every Google client reads, names the emulator
    unless the flag or the config file already does."""
    value = (environ.get(EMULATOR_ENV) or "").strip()
    if config.source.emulator_endpoint or not value:
        return config
    if "://" not in value:
        value = f"http://{value}"  # the Google clients accept a bare HOST:PORT too
    try:
        endpoint = SCHEMA["source"]["emulator_endpoint"](value)
    except ValueError as err:
        raise ConfigError(f"environment {EMULATOR_ENV}: {err}") from None
    log.info("using the storage emulator at %s (from %s)", endpoint, EMULATOR_ENV)
    return replace(config, source=replace(config.source, emulator_endpoint=endpoint))


def prepare_environment(config: Config) -> None:
    """Against an emulator: no metadata-server probes, and Beam's gs:// filesystem goes there too."""
    endpoint = config.source.emulator_endpoint
    if endpoint:
        os.environ.setdefault("NO_GCE_CHECK", "true")
        os.environ[EMULATOR_ENV] = endpoint.rstrip("/")


def storage_endpoint(config: Config) -> str:
    return config.source.emulator_endpoint or gcs.GCS_ENDPOINT


def unreachable(config: Config, err: Exception) -> UnusableInput:
    """Cloud Storage could not be reached at all: one line naming where, and what to check."""
    cause = err
    while isinstance(cause, gapi.RetryError) and cause.cause is not None:
        cause = cause.cause  # the last attempt's error, not "Timeout of 5.0s exceeded"
    endpoint = storage_endpoint(config)
    hint = (
        "is the emulator running there? (--emulator-endpoint / STORAGE_EMULATOR_HOST, HOST:PORT)"
        if config.source.emulator_endpoint
        else "check the network and the credentials (gcloud auth application-default login)"
    )
    if config.source.emulator_endpoint and urlsplit(endpoint).port is None:
        hint = f"the endpoint names no port, so port {80 if endpoint.startswith('http:') else 443} was tried; {hint}"
    reason = " ".join(failure_text(cause).split())[:300]
    return UnusableInput(f"cannot reach Cloud Storage at {endpoint} ({reason}); {hint}")


def failure_text(err: BaseException) -> str:
    """The innermost reason of a transport error (a refused connection, a name that does not resolve)."""
    while err.__cause__ is not None or (err.args and isinstance(err.args[0], BaseException)):
        err = err.__cause__ if err.__cause__ is not None else err.args[0]
    return f"{type(err).__name__}: {err}"


# What a first call raises when the endpoint cannot be reached: the client's retries ran out
# (RetryError), a transport failure it does not retry, or a token that could not be fetched.
UNREACHABLE_ERRORS = (
    gapi.RetryError,
    requests.RequestException,
    google.auth.exceptions.TransportError,
    google.auth.exceptions.RefreshError,
    ConnectionError,
)


def refused(err: BaseException) -> bool:
    """A connection refused, or a host name that does not resolve: asking again within seconds will not help."""
    seen = 0
    while err is not None and seen < 10:
        if isinstance(err, (ConnectionRefusedError, socket.gaierror)):
            return True
        err = (
            err.__cause__
            or err.__context__
            or (err.args[0] if err.args and isinstance(err.args[0], BaseException) else None)
        )
        seen += 1
    return False


def reach_retry():
    """The storage client's own retry policy, bounded to ``REACH_TIMEOUT_S``, and never for a refused connection."""
    from google.cloud.storage.retry import DEFAULT_RETRY, _should_retry

    return DEFAULT_RETRY.with_timeout(REACH_TIMEOUT_S).with_predicate(
        lambda err: _should_retry(err) and not refused(err)
    )


def resolve_buckets(config: Config, client) -> tuple[str, ...]:
    """Explicit buckets, the GCR buckets found in each configured project, and those Cloud Asset
    Inventory finds in each organisation and folder (docs/fleet.md), each once."""
    buckets = list(config.source.buckets)
    for project in config.source.projects:
        try:
            found = gcs.discover_gcr_buckets(client, project, is_gcr_bucket, retry=reach_retry())
        except UNREACHABLE_ERRORS as err:
            raise unreachable(config, err) from None
        except gapi.Forbidden as err:
            raise UnusableInput(
                f"--scan-project {project}: cannot list the project's buckets ({err.message}); "
                "grant storage.buckets.list or name the buckets with --bucket"
            ) from None
        except gapi.NotFound:
            raise UnusableInput(f"--scan-project {project}: project not found") from None
        log.info("project %s: found %d GCR bucket(s): %s", project, len(found), ", ".join(found) or "none")
        buckets.extend(b for b in found if b not in buckets)
    for found in discover_fleet(config):
        buckets.extend(b for b in found if b not in buckets)
    if not buckets:
        raise UnusableInput(
            "nothing to scan: the projects, organizations and folders given (--scan-project, --scan-org, "
            "--scan-folder) hold no bucket named [us.|eu.|asia.]artifacts.PROJECT.appspot.com"
        )
    return tuple(buckets)


def discover_fleet(config: Config) -> list[list[str]]:
    """The GCR buckets of each organisation and folder, from Cloud Asset Inventory (read-only)."""
    scopes = scopes_of(config.source.organizations, config.source.folders)
    if not scopes:
        return []
    endpoint = asset_inventory.endpoint_from(os.environ)
    fleets = []
    try:
        session = asset_inventory.make_session()
        with session:
            for scope in scopes:
                results = list(asset_inventory.search_buckets(session, endpoint, scope))
                found = gcr_buckets(results)
                log.info(
                    "%s: Cloud Asset Inventory lists %d bucket(s), %d of them GCR bucket(s): %s",
                    scope.name,
                    len(results),
                    len(found),
                    ", ".join(found) or "none",
                )
                fleets.append(found)
    except asset_inventory.DiscoveryError as err:
        raise UnusableInput(str(err)) from None
    return fleets


def dry_run_buckets(config: Config) -> tuple[str, ...]:
    """A dry run lists nothing: each project stands for its default GCR bucket."""
    buckets = list(config.source.buckets)
    buckets.extend(f"artifacts.{p}.appspot.com" for p in config.source.projects)
    if not buckets:  # organisations and folders alone: only Cloud Asset Inventory could name buckets
        raise UnusableInput(
            "a dry run builds the job offline and cannot ask Cloud Asset Inventory which GCR buckets "
            "--scan-org / --scan-folder hold; add --scan-project PROJECT, or drop --dry_run"
        )
    return tuple(dict.fromkeys(buckets))


def preflight(config: Config, client, buckets: tuple[str, ...]) -> None:
    """Each bucket exists and its objects can be listed, before any worker starts."""
    for bucket in buckets:
        try:
            listing = client.list_blobs(
                bucket, prefix=config.source.prefix, max_results=1, retry=reach_retry(), timeout=REACH_TIMEOUT_S
            )
            next(iter(listing), None)
        except UNREACHABLE_ERRORS as err:
            raise unreachable(config, err) from None
        except gapi.NotFound:
            raise UnusableInput(f"bucket {bucket!r} does not exist (--bucket / source.buckets)") from None
        except gapi.Forbidden as err:
            raise UnusableInput(
                f"bucket {bucket!r}: not allowed to list objects ({err.message}); "
                "the scanning identity needs roles/storage.objectViewer on it"
            ) from None


def check_manifest_sources(config: Config, client, buckets: tuple[str, ...]) -> None:
    """A cross-check with no manifest for a bucket would call every blob there unreferenced."""
    mode = effective_mode(config.scan.mode, config.manifests)
    if mode == "names" or config.manifests.sources:
        return
    from pipeline.adapters.manifest_files import LEGACY_PREFIX

    # Only legacy metadata could supply manifests (the config refuses the mode when it is off).
    without = [
        b for b in buckets if next(iter(client.list_blobs(b, prefix=LEGACY_PREFIX, max_results=1)), None) is None
    ]
    if without:
        raise UnusableInput(
            f"--mode {mode} needs a manifest source: the config file sets no manifests.sources, and "
            f"{', '.join(without)} hold(s) no legacy metadata under {LEGACY_PREFIX}; add manifests.sources "
            "or scan with --mode names"
        )


def _report_client(emulator_endpoint: str | None):
    from google.cloud import storage

    if emulator_endpoint:
        return gcs.make_client(emulator_endpoint)
    credentials, project = google.auth.default(scopes=[READ_WRITE_SCOPE])
    return storage.Client(project=project, credentials=credentials)


def check_output(output_root: str, run_id: str, emulator_endpoint: str | None) -> None:
    """Write and delete one empty object where the report goes, so a bad location fails now, not at the end."""
    probe = f"{PROBE_NAME}-{run_id}"
    if not output_root.startswith("gs://"):
        root = os.path.abspath(output_root)
        try:
            os.makedirs(root, exist_ok=True)
            path = os.path.join(root, probe)
            with open(path, "wb"):
                pass
            os.remove(path)
        except OSError as err:
            raise UnusableInput(
                f"--output {output_root}: cannot write there ({err.strerror or err}); "
                "pass a writable directory or gs://BUCKET/PATH"
            ) from None
        return
    bucket, _, path = output_root[len("gs://") :].partition("/")
    name = f"{path.strip('/')}/{probe}" if path.strip("/") else probe
    try:
        blob = _report_client(emulator_endpoint).bucket(bucket).blob(name)
        blob.upload_from_string(b"", timeout=PREFLIGHT_TIMEOUT_S)
        blob.delete(timeout=PREFLIGHT_TIMEOUT_S)
    except gapi.NotFound:
        raise UnusableInput(f"--output {output_root}: bucket {bucket!r} does not exist") from None
    except gapi.Forbidden as err:
        raise UnusableInput(
            f"--output {output_root}: not allowed to write and delete there ({err.message}); "
            "the identity that writes the report needs roles/storage.objectAdmin on it"
        ) from None
    except google.auth.exceptions.GoogleAuthError as err:
        raise UnusableInput(f"--output {output_root}: no usable Google Cloud credentials ({err})") from None
    except (gapi.GoogleAPICallError, requests.RequestException) as err:
        raise UnusableInput(f"--output {output_root}: cannot write there ({type(err).__name__}: {err})") from None


def split_dataset(dataset: str) -> tuple[str | None, str]:
    """``[PROJECT:|PROJECT.]DATASET`` -> (project or None, dataset id); a dataset id has neither ':' nor '.'."""
    cut = max(dataset.rfind(":"), dataset.rfind("."))
    return (dataset[:cut], dataset[cut + 1 :]) if cut >= 0 else (None, dataset)


def check_bigquery_dataset(dataset: str, job_project: str | None, client=None) -> None:
    """The dataset exists and can be read, so that the load at the end of the run cannot fail on it."""
    from google.cloud import bigquery

    project, dataset_id = split_dataset(dataset)
    where = f"--bigquery-dataset {dataset}"
    try:
        client = client or bigquery.Client(project=project or job_project)
        project = project or client.project
        if not project:
            raise UnusableInput(f"{where}: no project to look in; name it as PROJECT:DATASET or pass --project")
        retry = bigquery.DEFAULT_RETRY.with_deadline(PREFLIGHT_TIMEOUT_S)
        client.get_dataset(bigquery.DatasetReference(project, dataset_id), retry=retry, timeout=PREFLIGHT_TIMEOUT_S)
    except gapi.NotFound:
        raise UnusableInput(
            f"{where}: dataset {project}:{dataset_id} not found; create it (bq mk --dataset {project}:{dataset_id})"
        ) from None
    except gapi.Forbidden as err:
        raise UnusableInput(
            f"{where}: not allowed to use dataset {project}:{dataset_id} ({err.message}); "
            "the job's identity needs roles/bigquery.dataEditor on it"
        ) from None
    except google.auth.exceptions.GoogleAuthError as err:
        raise UnusableInput(f"{where}: no usable Google Cloud credentials ({err})") from None
    except (gapi.GoogleAPICallError, gapi.RetryError, requests.RequestException) as err:
        raise UnusableInput(f"{where}: cannot reach BigQuery ({type(err).__name__}: {err})") from None


def check_registries(config: Config) -> None:
    """Each registry source lets its credentials in: a 401 or 403 now would fail every manifest later."""
    from pipeline.adapters.registry import RegistryClient, access_problem

    for index, spec in enumerate(config.manifests.sources):
        if spec.kind != "registry":
            continue
        client = RegistryClient(
            spec.location,
            auth=spec.auth,
            credentials_env=spec.credentials_env,
            tls_verify=spec.tls_verify,
            token_realm=spec.token_realm,
            requests_per_second=config.manifests.requests_per_second,
            max_attempts=2,
        )
        try:
            problem = access_problem(client)
        finally:
            client.close()
        if problem:
            raise UnusableInput(f"manifests.sources[{index}] ({spec.location}): {problem}")


def make_storage_client(config: Config):
    try:
        return gcs.make_client(config.source.emulator_endpoint)
    except google.auth.exceptions.DefaultCredentialsError as err:
        raise UnusableInput(
            f"no Google Cloud credentials ({err}); run `gcloud auth application-default login`, "
            f"or name a local emulator with --emulator-endpoint or {EMULATOR_ENV}"
        ) from None


def plan_run(config: Config, client, options: PipelineOptions | None = None) -> RunPlan:
    """Every preflight check, then what the run scans and where it reports."""
    buckets = resolve_buckets(config, client)
    preflight(config, client, buckets)
    check_manifest_sources(config, client, buckets)
    if config.report.bigquery_dataset:
        project = (options or PipelineOptions([])).view_as(GoogleCloudOptions).project
        check_bigquery_dataset(config.report.bigquery_dataset, project)
    check_registries(config)
    run_id = config.report.run_id or default_run_id()
    check_output(config.report.output, run_id, config.source.emulator_endpoint)  # last: it may create the folder
    run_dir = report_io.run_folder(config.report.output, run_id)
    return RunPlan(
        buckets=buckets,
        run_id=run_id,
        run_dir=run_dir,
        started_at=utc_now(),
        previous=resolve_ledger(config, run_id, run_dir),  # docs/incremental.md
        # Location and soft delete, for the reclaim plan's cost; never fatal (objectViewer lacks buckets.get).
        bucket_facts={bucket: gcs.bucket_facts(client, bucket) for bucket in buckets},
    )


def plan_scan(config: Config) -> dict[str, Any]:
    """``--plan-only``: find the buckets, list their sizes and GET their metadata, then price and
    estimate the scan (``pipeline.core.scan_plan``). No blob is read and no worker starts."""
    prepare_environment(config)
    client = make_storage_client(config)
    buckets = resolve_buckets(config, client)
    rows = [
        scan_plan.bucket_row(
            bucket, listed_size(client, bucket, config.source.prefix), gcs.bucket_facts(client, bucket)
        )
        for bucket in buckets
    ]
    source = config.source
    sources = {
        "buckets": list(source.buckets),
        "projects": list(source.projects),
        "organizations": [f"organizations/{n}" for n in source.organizations],
        "folders": [f"folders/{n}" for n in source.folders],
    }
    return scan_plan.build_plan(rows, sources, os.cpu_count() or 1)


def listed_size(client, bucket: str, prefix: str) -> dict[str, Any]:
    """``gcs.prefix_size``, or why the bucket could not be listed: a plan reports it, never stops on it."""
    try:
        return gcs.prefix_size(client, bucket, prefix, PLAN_LISTING_LIMIT)
    except gapi.NotFound:
        return {"error": "the bucket does not exist"}
    except gapi.Forbidden as err:
        return {"error": f"not allowed to list objects ({err.message}); the scan needs roles/storage.objectViewer"}
    except (gapi.GoogleAPICallError, requests.RequestException) as err:
        return {"error": f"the listing failed ({type(err).__name__}: {err})"}


def resolve_ledger(config: Config, run_id: str, run_dir: str):
    """The earlier run ``report.ledger`` names, before the run clears its own folder; None without one."""
    if not config.report.ledger:
        return None
    from pipeline.adapters.ledger import LedgerUnusable, resolve

    try:
        previous, lines = resolve(config.report.ledger, config.report.output, run_id, run_dir)
    except LedgerUnusable as err:
        raise UnusableInput(str(err)) from None
    for line in lines:
        log.info("%s", line)
    return previous


def with_registry_share(config: Config, options) -> Config:
    """The config with the fleet's process count, so each process takes its share of the registry budget."""
    if not any(source.kind == "registry" for source in config.manifests.sources):
        return config
    try:
        fleet = fleet_of(options)
    except BudgetError as err:
        raise UnusableInput(str(err)) from None
    manifests = replace(config.manifests, processes=fleet.processes)
    log.info(
        "registry budget %g requests/s for the job: %g per SDK process (%s)",
        manifests.requests_per_second,
        manifests.requests_per_process,
        fleet.reason,
    )
    return replace(config, manifests=manifests)


def dry_run_plan(config: Config) -> RunPlan:
    run_id = config.report.run_id or default_run_id()
    return RunPlan(
        buckets=dry_run_buckets(config),
        run_id=run_id,
        run_dir=report_io.run_folder(config.report.output, run_id),
        started_at=utc_now(),
        previous=unresolved_previous(config.report.ledger, config.report.output) if config.report.ledger else None,
    )


def run_scan(config: Config, beam_args: list[str]) -> dict[str, Any] | None:
    """Scan and return the summary document once the pipeline has finished; None for a dry run."""
    result, plan = submit_scan(config, beam_args)
    result.wait_until_finish()
    if is_dry_run(pipeline_options(beam_args)):
        log.info("dry run: the job was built and checked, and not submitted; its report would go to %s", plan.run_dir)
        return None
    summary = report_io.read_json(report_io.FileSystems.join(plan.run_dir, report_io.SUMMARY_FILE))
    if summary is None:
        raise RuntimeError(f"the pipeline finished but wrote no {report_io.SUMMARY_FILE} under {plan.run_dir}")
    return summary


def local_options_for(config: Config, plan: RunPlan, beam_args: list[str]):
    """Options and runner for a local run, its execution mode chosen by the size of the scan."""
    client = make_storage_client(config)
    limit = IN_PROCESS_MAX_OBJECTS
    estimate = sum(gcs.estimate_objects(client, bucket, config.source.prefix, limit) for bucket in plan.buckets)
    options = pipeline_options(beam_args, estimate)
    options.view_as(SetupOptions).save_main_session = False
    log.info("about %d objects to scan: running %s", estimate, options.view_as(DirectOptions).direct_running_mode)
    return options, runner_for(options)


def submit_scan(config: Config, beam_args: list[str]) -> tuple[PipelineResult, RunPlan]:
    """Plan, build and start the scan without waiting: what a Flex Template launch must do."""
    prepare_environment(config)
    options = pipeline_options(beam_args)
    # DoFns reference our modules; workers must import them rather than unpickle globals.
    options.view_as(SetupOptions).save_main_session = False
    try:
        runner = runner_for(options)
        dry_run = is_dry_run(options)
    except OptionsError as err:
        raise UnusableInput(str(err)) from None
    if options.view_as(StandardOptions).runner == "DataflowRunner" and not config.report.output.startswith("gs://"):
        raise UnusableInput(
            f"--output {config.report.output}: Dataflow workers cannot write a local folder; pass gs://BUCKET/PATH"
        )

    if dry_run:
        plan = dry_run_plan(config)
    else:
        plan = plan_run(config, make_storage_client(config), options)
    # After the preflight: a launch it refuses ends with its one line only.
    config = replace(config, report=replace(config.report, run_id=plan.run_id))
    if not dry_run and chooses_running_mode(beam_args):
        options, runner = local_options_for(config, plan, beam_args)
    config = with_registry_share(config, options)
    try:
        check_dataflow_options(options)
    except OptionsError as err:
        raise UnusableInput(str(err)) from None
    token = None
    if not dry_run:
        removed = report_io.clear_run_folder(plan.run_dir)
        if removed:
            log.info("replaced %d file(s) of an earlier run with id %s", removed, plan.run_id)
        if is_local(options):  # elsewhere the job's own workers write the report: they outlive this process
            token = interrupt.on_interrupt(
                f"the partial report {plan.run_dir}", interrupt.remove_partial_report(plan.run_dir)
            )
    log.info(
        "%s %d bucket(s) under %r; report: %s",
        "dry run: building the job for" if dry_run else "scanning",
        len(plan.buckets),
        config.source.prefix,
        plan.run_dir,
    )

    logs.new_run()
    recovering = with_recovery_for_reclaim(config)
    if recovering is not None:
        config = recovering
        log.info(
            "image recovery is on: reclaim's second guard needs the images the buckets themselves show "
            "(it costs CPU in the same read, not reads; docs/recovery.md)"
        )
    try:
        pipeline = beam.Pipeline(runner=runner, options=options)
        build_pipeline(pipeline, config, plan)
        result = pipeline.run()
    finally:
        if token is not None:
            interrupt.done(token)
    if not is_local(options) and not dry_run:
        log.info("submitted; the report will appear under %s when the job ends", plan.run_dir)
    return result, plan
