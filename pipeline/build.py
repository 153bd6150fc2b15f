"""build_pipeline(): the whole scan graph, returning its key PCollections for tests."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import apache_beam as beam

from pipeline.config import Config
from pipeline.core.reclaim import source_facts
from pipeline.manifest_config import effective_mode
from pipeline.transforms.hashing import FINDINGS, SNIFFED, VERIFIED, HashObjects
from pipeline.transforms.html_report import WriteHtmlReport, add_report_model
from pipeline.transforms.listing import ListObjects
from pipeline.transforms.manifests import ListingFacts, add_manifest_checks, sources_for
from pipeline.transforms.migration import MigrationAudit
from pipeline.transforms.outcome import LogOutcomeFn
from pipeline.transforms.reclaim import Reclaim
from pipeline.transforms.recovery import RecoverImages
from pipeline.transforms.report import WriteReport


@dataclass(frozen=True)
class RunPlan:
    """What one run scans and where it reports: resolved on the launcher, plain values only."""

    buckets: tuple[str, ...]
    run_id: str
    run_dir: str
    started_at: str
    # Per bucket, what a bucket GET told (gcs.bucket_facts): location and soft delete, for reclaim.
    bucket_facts: dict[str, dict[str, Any]] = field(default_factory=dict)


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
            scan.recover_images,
        )
    verified, findings, refs = hashed[VERIFIED], hashed[FINDINGS], None
    images = None
    sources = ()
    if mode == "names":
        evidence = pipeline | "NoManifestEvidence" >> beam.Create([])
    else:
        sources = sources_for(config.manifests, plan.buckets)
        findings, manifest_tallies, manifests = add_manifest_checks(
            pipeline,
            sources,
            config.manifests,
            source.emulator_endpoint,
            hashed["blobs"],
            findings,
        )
        tallies.extend(manifest_tallies)
        refs, images, evidence = manifests["refs"], manifests["images"], manifests["evidence"]
        if any(spec.role == "successor" for spec in config.manifests.sources):
            audit = (refs, hashed["blobs"]) | "MigrationAudit" >> MigrationAudit(plan.run_dir)
            tallies.append(audit["tally"])
    if scan.recover_images:
        if images is None:
            images = pipeline | "NoManifests" >> beam.Create([])
        recovery = (hashed[SNIFFED], images, hashed["blobs"]) | "RecoverImages" >> RecoverImages(plan.run_dir)
        findings = (findings, recovery["findings"]) | "WithDiffIdChecks" >> beam.Flatten()
        tallies.append(recovery["tally"])
    facts = tuple(source_facts(i, spec, plan.buckets) for i, spec in enumerate(sources))
    reclaim = (findings, evidence) | "Reclaim" >> Reclaim(
        facts, plan.buckets, mode != "names", plan.run_dir, plan.started_at
    )
    tallies.append(reclaim["tallies"])
    # One report model feeds summary.json and report.html (pipeline/transforms/html_report.py).
    report_model, extras = add_report_model(findings, verified, refs, plan.run_dir)
    summary = (listed, verified, findings, *tallies) | "WriteReport" >> WriteReport(
        plan.run_dir, plan.run_id, plan.started_at, config.to_dict(), reclaim, plan.bucket_facts, extras
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
