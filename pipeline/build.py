"""build_pipeline(): the whole scan graph, returning its key PCollections for tests."""

from __future__ import annotations

from dataclasses import dataclass, replace

import apache_beam as beam

from pipeline.config import Config
from pipeline.manifest_config import effective_mode
from pipeline.transforms.hashing import FINDINGS, VERIFIED, HashObjects
from pipeline.transforms.html_report import WriteHtmlReport, add_report_model
from pipeline.transforms.listing import ListObjects
from pipeline.transforms.manifests import ListingFacts, add_manifest_checks, sources_for
from pipeline.transforms.outcome import LogOutcomeFn
from pipeline.transforms.report import WriteReport


@dataclass(frozen=True)
class RunPlan:
    """What one run scans and where it reports: resolved on the launcher, plain values only."""

    buckets: tuple[str, ...]
    run_id: str
    run_dir: str
    started_at: str


def build_pipeline(pipeline: beam.Pipeline, config: Config, plan: RunPlan) -> dict[str, beam.PCollection]:
    source, scan = config.source, config.scan
    # names: hash only; manifests: cross-check from the listing; both (README.md, "Manifest cross-check").
    mode = effective_mode(scan.mode, config.manifests)
    config = replace(config, scan=replace(scan, mode=mode))
    listed = pipeline | "ListObjects" >> ListObjects(
        plan.buckets, source.prefix, scan.shard_count, source.emulator_endpoint
    )
    tallies = []
    if mode == "manifests":
        hashed = listed | "ListingFacts" >> ListingFacts(source.prefix)
        tallies.append(hashed["tallies"])
    else:
        hashed = listed | "HashObjects" >> HashObjects(
            source.prefix,
            source.emulator_endpoint,
            scan.chunk_size,
            scan.read_concurrency,
            scan.max_attempts,
            scan.read_timeout,
            scan.min_read_rate,
        )
    verified, findings, refs = hashed[VERIFIED], hashed[FINDINGS], None
    if mode != "names":
        findings, manifest_tallies, refs = add_manifest_checks(
            pipeline,
            sources_for(config.manifests, plan.buckets),
            config.manifests,
            source.emulator_endpoint,
            hashed["blobs"],
            findings,
        )
        tallies.extend(manifest_tallies)
    # One report model feeds summary.json and report.html (pipeline/transforms/html_report.py).
    report_model, extras = add_report_model(findings, verified, refs, plan.run_dir)
    summary = (listed, verified, findings, *tallies) | "WriteReport" >> WriteReport(
        plan.run_dir, plan.run_id, plan.started_at, config.to_dict(), extras
    )
    summary = summary | "WriteHtmlReport" >> WriteHtmlReport(plan.run_dir, report_model)
    summary = summary | "LogOutcome" >> beam.ParDo(LogOutcomeFn())
    outputs = {
        "listed": listed,
        "blobs": hashed["blobs"],
        "verified": verified,
        "findings": findings,
        "summary": summary,
    }
    if config.report.bigquery_dataset:
        # BigQuery's client libraries load only when a run asks for them.
        from pipeline.transforms.bigquery import WriteAuditTables

        outputs["bigquery"] = (findings, summary) | "WriteAuditTables" >> WriteAuditTables(
            config.report.bigquery_dataset, plan.run_id, plan.started_at, plan.buckets
        )
    return outputs
