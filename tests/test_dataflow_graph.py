"""The scan graph as Dataflow would receive it, built offline.

The pipeline is built by the launcher (``jobs.launcher.submit_scan``) for
DataflowRunner with production-like options and ``--dry_run=True``: Beam
translates it exactly as for a submission (runner
overrides, Runner v2 proto, Docker environment) and stops before any request.
The job description's environment is then built the way the Dataflow client
builds it before it uploads anything, so the test sees the worker pool Dataflow
would get. No network is touched (DESIGN.md §5).
"""

from __future__ import annotations

import json

import pytest
from apache_beam.portability import common_urns
from apache_beam.portability.api import beam_runner_api_pb2
from apache_beam.runners.dataflow.internal import apiclient

from jobs.launcher import submit_scan
from pipeline.config import parse_config

PROJECT = "my-audit-project"
IMAGE = f"us-central1-docker.pkg.dev/{PROJECT}/registry-scrub/registry-scrub:0123abc"
WORKER_SA = f"registry-scrub-worker@{PROJECT}.iam.gserviceaccount.com"
BUCKETS = ("artifacts.team-a-prod.appspot.com", "eu.artifacts.team-b-prod.appspot.com")
RUN_ID = "20250101T000000Z"
DATAFLOW_ARGS = [
    "--runner=DataflowRunner",
    f"--project={PROJECT}",
    "--region=us-central1",
    f"--temp_location=gs://{PROJECT}-registry-scrub-dataflow/tmp",
    f"--staging_location=gs://{PROJECT}-registry-scrub-dataflow/staging",
    f"--sdk_container_image={IMAGE}",
    f"--service_account_email={WORKER_SA}",
    "--machine_type=n2-standard-4",
    "--max_num_workers=20",
    "--no_use_public_ips",
    "--dry_run=True",
]


def _graph(bigquery_dataset: str | None):
    raw = {
        "source": {"buckets": list(BUCKETS)},
        "scan": {"shard_count": 256},
        "report": {"output": "gs://my-audit-reports/registry-scrub", "run_id": RUN_ID},
        "manifests": {"sources": [{"registry": "https://gcr.io", "gcr_projects": [PROJECT]}]},
    }
    if bigquery_dataset:
        raw["report"]["bigquery_dataset"] = bigquery_dataset
    config = parse_config(raw, "test")
    # The launcher's own path, options included: what it sets (save_main_session) is what is tested.
    result, plan = submit_scan(config, DATAFLOW_ARGS)
    assert plan.run_dir == f"gs://my-audit-reports/registry-scrub/{RUN_ID}" and plan.buckets == BUCKETS
    job = result.job
    environment = apiclient.Environment(
        packages=[],
        options=job.options,
        environment_version=apiclient._FNAPI_ENVIRONMENT_MAJOR_VERSION,
        proto_pipeline_staged_url=f"gs://{PROJECT}-registry-scrub-dataflow/staging/pipeline.pb",
        proto_pipeline=job.proto_pipeline,
    )
    job.proto.environment = environment.proto
    return job.proto_pipeline, json.loads(job.json())


@pytest.fixture(scope="module")
def graph():
    return _graph("my-audit-project:registry_audit")


def _by_name(proto):
    return {t.unique_name: t for t in proto.components.transforms.values()}


def _producer(proto, pcoll_id: str) -> str:
    for transform in proto.components.transforms.values():
        if not transform.subtransforms and pcoll_id in transform.outputs.values():
            return transform.unique_name
    raise AssertionError(f"no leaf transform produces {pcoll_id}")


def _side_inputs(transform) -> list[str]:
    if transform.spec.urn != common_urns.primitives.PAR_DO.urn:
        return []
    return list(beam_runner_api_pb2.ParDoPayload.FromString(transform.spec.payload).side_inputs)


def test_objects_are_reshuffled_between_listing_and_hashing(graph):
    proto, _ = graph
    transforms = _by_name(proto)
    spread = transforms["ListObjects/SpreadObjects"]
    assert spread.spec.urn == common_urns.composites.RESHUFFLE.urn
    (spread_input,) = spread.inputs.values()
    assert _producer(proto, spread_input) == "ListObjects/ListRanges"
    hashing = transforms["HashObjects/HashAndClassify/ParDo(HashObjectsFn)"]
    (hash_input,) = hashing.inputs.values()
    (spread_output,) = spread.outputs.values()
    assert hash_input == spread_output, "hashing must read the reshuffled objects, not the listing's output"
    # The listing units are spread too, so the shards are listed on many workers.
    units = transforms["ListObjects/SpreadListings"]
    assert units.spec.urn == common_urns.composites.RESHUFFLE.urn
    (list_input,) = transforms["ListObjects/ListRanges"].inputs.values()
    assert list_input == next(iter(units.outputs.values()))


def test_no_side_input_carries_objects_or_digests(graph):
    proto, _ = graph
    # Side inputs exist only where a small value is broadcast: the written file names for the
    # summary, the empty-input default of the report's fold (counts and model), BigQuery's load
    # bookkeeping, and the reclaim verdict (one short blocker list per bucket) with the plan
    # writer's own bookkeeping.
    allowed = (
        "WriteReport/WriteSummary",
        "WriteReport/Fold/",
        "WriteReport/Write",
        "WriteAuditTables/",
        "Reclaim/PlanLines/",
        "Reclaim/WritePlan/",
        "Reclaim/CombineEvidence/",
        # Recovery (on whenever a plan could be written): its row files' bookkeeping and the tally
        # that waits on their names.
        "RecoverImages/Write",
        "RecoverImages/SumRecoveryCounts/",
        "RecoverImages/RecoveryTally",
        # The human report's model (bounded by its caps) and the images-*.jsonl file names.
        "HumanReport/",
        "WriteHtmlReport/",
    )
    with_side_inputs = [t.unique_name for t in proto.components.transforms.values() if _side_inputs(t)]
    assert with_side_inputs, "expected the summary's side inputs; the graph walk found none"
    unexpected = [name for name in with_side_inputs if not name.startswith(allowed)]
    assert not unexpected, f"side inputs outside the report/BigQuery sinks: {unexpected}"


def test_no_step_gathers_all_objects_on_one_worker(graph):
    proto, _ = graph
    transforms = _by_name(proto)
    reshuffles = [name for name, t in transforms.items() if t.spec.urn == common_urns.composites.RESHUFFLE.urn]
    gbk = common_urns.primitives.GROUP_BY_KEY.urn
    grouping = [name for name, t in transforms.items() if t.spec.urn == gbk]
    # From listing to hashing the only groupings are inside Reshuffles (random keys: they spread,
    # never gather). The manifest cross-check joins them later, with a CoGroupByKey by digest.
    scan = [name for name in grouping if name.startswith(("ListObjects/", "HashObjects/"))]
    assert scan, "expected the Reshuffles' GroupByKeys; the graph walk found none"
    gathering = [name for name in scan if not any(name.startswith(r + "/") for r in reshuffles)]
    assert not gathering, f"groupings outside a Reshuffle between listing and hashing: {gathering}"


def test_cogroupbykey_joins_references_with_the_digest_keyed_blobs(graph):
    proto, _ = graph
    joins = [t.unique_name for t in proto.components.transforms.values() if "CoGroupByKey" in t.unique_name]
    assert joins, "no CoGroupByKey: manifest references must be joined with the blobs by digest"
    blobs = _by_name(proto)["HashObjects/HashAndClassify/ParDo(HashObjectsFn)"].outputs["None"]
    consumers: dict[str, list] = {}
    for transform in proto.components.transforms.values():
        for pcoll in transform.inputs.values():
            consumers.setdefault(pcoll, []).append(transform)
    seen, frontier = set(), [blobs]
    while frontier:
        pcoll = frontier.pop()
        for transform in consumers.get(pcoll, []):
            if "CoGroupByKey" in transform.unique_name:
                return
            if transform.unique_name not in seen:
                seen.add(transform.unique_name)
                frontier.extend(transform.outputs.values())
    raise AssertionError(f"the CoGroupByKey {joins} does not read the digest-keyed blobs output")


def test_report_and_bigquery_sinks(graph):
    proto, _ = graph
    transforms = _by_name(proto)
    for sink in (
        "WriteReport/WriteRows/WriteFindings",
        "WriteReport/WriteRows/WriteVerified",
        "WriteReport/WriteRows/Finalize",
        "WriteReport/WriteSummary",
        "LogOutcome",
    ):
        assert sink in transforms, sink
    for load in ("WriteAuditTables/LoadFindings", "WriteAuditTables/LoadSummary"):
        assert transforms[load].spec.urn == "beam:transform:write_to_big_query:v0"
        names = [n for n in transforms if n.startswith(load + "/")]
        assert any(n.endswith("/BigQueryBatchFileLoads") for n in names), f"{load} is not FILE_LOADS"
        assert not any("StreamInsertRows" in n or "StorageWriteApi" in n for n in names), names


def test_worker_pool_runs_our_image(graph):
    proto, job = graph
    environments = proto.components.environments
    assert environments
    for environment in environments.values():
        assert environment.urn == common_urns.environments.DOCKER.urn
        payload = beam_runner_api_pb2.DockerPayload.FromString(environment.payload)
        assert payload.container_image == IMAGE
    (pool,) = job["environment"]["workerPools"]
    assert [image["containerImage"] for image in pool["sdkHarnessContainerImages"]] == [IMAGE]
    assert pool["machineType"] == "n2-standard-4"
    assert pool["autoscalingSettings"]["maxNumWorkers"] == 20
    assert pool["ipConfiguration"] == "WORKER_IP_PRIVATE"
    assert job["environment"]["serviceAccountEmail"] == WORKER_SA
    assert job["type"] == "JOB_TYPE_BATCH"
    assert "use_runner_v2" in job["environment"]["experiments"]
    options = job["environment"]["sdkPipelineOptions"]["options"]
    assert options["save_main_session"] is False, "workers must import our modules from the image"


def test_no_bigquery_unless_configured():
    proto, _ = _graph(None)
    names = {t.unique_name for t in proto.components.transforms.values()}
    assert not any(name.startswith("WriteAuditTables") for name in names)
    assert "WriteReport/WriteSummary" in names


def test_an_incremental_run_joins_the_ledger_without_a_side_input():
    """docs/incremental.md: the ledger (up to ten million rows) meets the listing in a CoGroupByKey."""
    raw = {
        "source": {"buckets": list(BUCKETS)},
        "scan": {"shard_count": 256, "incremental": True},
        "report": {
            "output": "gs://my-audit-reports/registry-scrub",
            "run_id": RUN_ID,
            "ledger": "bq:my-audit-project.registry_audit.verified",
        },
    }
    result, plan = submit_scan(parse_config(raw, "test"), DATAFLOW_ARGS)
    assert plan.previous.kind == "bigquery"
    proto = result.job.proto_pipeline
    transforms = _by_name(proto)
    for join in ("IncrementalHash/SplitByLedger/JoinListingWithLedger", "RunDiff/JoinWithPreviousRun"):
        assert join in transforms and transforms[join].subtransforms, join
    assert "IncrementalHash/Recheck/JoinSampleWithLedger" in transforms
    with_side_inputs = [t.unique_name for t in proto.components.transforms.values() if _side_inputs(t)]
    ours = [n for n in with_side_inputs if n.startswith(("IncrementalHash/", "RunDiff/", "WithChanges"))]
    # Only small values travel as side inputs: the changes block's file names and its combine's default,
    # and the one value that says whether the ledger's rows are damaged (test_ledger_hostile.py).
    small = (
        "RunDiff/ChangesBlock",
        "RunDiff/WriteChanges/",
        "RunDiff/FoldChanges/InjectDefault",
        "RunDiff/UnlessLedgerDamaged",
        "WithChanges",
    )
    assert ours and all(n.startswith(small) for n in ours), ours
    for name in ("ReadLedger/QueryLedgerVerified", "ReadLedger/QueryLedgerFindings"):
        assert name in transforms, name


def test_the_json_columns_load_without_beams_string_warning(caplog):
    """The summaries table has JSON columns; Beam warns for each that a string would load as a JSON
    string. Our rows hold parsed values (tests/test_bq_schema.py), so the launcher prints no such line."""
    import logging

    import apache_beam as beam

    from pipeline.transforms.bigquery import WriteAuditTables

    pipeline = beam.Pipeline()  # built, never run: a load needs BigQuery
    with caplog.at_level(logging.WARNING):
        findings = pipeline | "F" >> beam.Create([])
        summary = pipeline | "S" >> beam.Create([])
        _ = (findings, summary) | WriteAuditTables("my-project:registry_audit", "r", "2026-01-01T00:00:00Z", ("b",))
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_the_outcome_step_writes_structured_entries_to_the_jobs_project(graph):
    """On Dataflow the LogOutcome DoFn carries the job's project: its structured entries
    (tests/test_outcome.py) go to that project's Cloud Logging, where deploy.sh's metrics read them."""
    from apache_beam.internal import pickler

    proto, _ = graph
    step = _by_name(proto)["LogOutcome"]
    payload = beam_runner_api_pb2.ParDoPayload.FromString(step.spec.payload)
    fn = pickler.loads(payload.do_fn.payload)[0]
    assert type(fn).__name__ == "LogOutcomeFn" and fn._project == PROJECT
