"""build_pipeline(): the whole scan graph, returning its key PCollections for tests."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import apache_beam as beam

from pipeline.config import Config
from pipeline.core.ledger import PreviousRun
from pipeline.core.reclaim import source_facts
from pipeline.manifest_config import effective_mode
from pipeline.transforms.decommission import DecommissionFacts
from pipeline.transforms.hashing import FINDINGS, SNIFFED, VERIFIED, HashObjects
from pipeline.transforms.html_report import HumanReport, WriteHtmlReport
from pipeline.transforms.listing import ListObjects
from pipeline.transforms.outcome import LogOutcomeFn, structured_log_project
from pipeline.transforms.protection import ImageClaims
from pipeline.transforms.reclaim import Reclaim, unchecked_verdict
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
    # The earlier run report.ledger resolved to (docs/incremental.md); None: no comparison.
    previous: PreviousRun | None = None


def stamp_verified_at(row: dict[str, Any], started_at: str) -> dict[str, Any]:
    """A row read by this run was verified during it: its start is when, to within the run's length."""
    return row if row.get("verified_at") else {**row, "verified_at": started_at}


def build_pipeline(pipeline: beam.Pipeline, config: Config, plan: RunPlan) -> dict[str, beam.PCollection]:
    source, scan = config.source, config.scan
    # names: hash only; manifests: cross-check from the listing; both (README.md, "Manifest cross-check").
    mode = effective_mode(scan.mode, config.manifests)
    config = replace(config, scan=replace(scan, mode=mode))
    listed = pipeline | "ListObjects" >> ListObjects(
        plan.buckets, source.prefix, scan.shard_count, source.emulator_endpoint
    )
    tallies = []
    ledger = None
    # The transforms of features a run leaves off are imported only when it turns them on.
    if plan.previous is not None:
        from pipeline.transforms.ledger import ReadLedger

        ledger = pipeline | "ReadLedger" >> ReadLedger(plan.previous, plan.buckets, source.prefix, plan.run_id)
    hash_args = (
        source.prefix,
        source.emulator_endpoint,
        scan.chunk_size,
        scan.read_concurrency,
        scan.max_attempts,
        scan.read_timeout,
        scan.min_read_rate,
        scan.recover_images,
    )
    if mode != "names":
        from pipeline.transforms.manifests import ListingFacts, add_manifest_checks, sources_for
    if mode == "manifests":
        hashed = listed | "ListingFacts" >> ListingFacts(source.prefix)
        tallies.append(hashed["tallies"])
    elif scan.incremental and ledger is not None:
        from pipeline.transforms.incremental import IncrementalHash, SplitByLedger

        split = SplitByLedger(source.prefix, plan.run_id, plan.started_at, scan.reverify_after, scan.reverify_sample)
        hashed = (listed, ledger["verified"]) | "IncrementalHash" >> IncrementalHash(hash_args, split)
    else:
        hashed = listed | "HashObjects" >> HashObjects(*hash_args)
    verified, findings, refs = hashed[VERIFIED], hashed[FINDINGS], None
    if mode != "manifests":
        verified = verified | "StampVerifiedAt" >> beam.Map(stamp_verified_at, plan.started_at)
    images = None
    sources = ()
    evidence = None
    if mode != "names":
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
            from pipeline.transforms.migration import MigrationAudit

            audit = (refs, hashed["blobs"]) | "MigrationAudit" >> MigrationAudit(plan.run_dir)
            tallies.append(audit["tally"])
    recovered = claims = None
    if scan.recover_images:
        if images is None:
            images = pipeline | "NoManifests" >> beam.Create([])
        recovery = (hashed[SNIFFED], images, hashed["blobs"]) | "RecoverImages" >> RecoverImages(plan.run_dir)
        findings = (findings, recovery["findings"]) | "WithDiffIdChecks" >> beam.Flatten()
        tallies.append(recovery["tally"])
        recovered = recovery["recovered"]
        # Reclaim's second guard: the images the buckets themselves show (pipeline/core/protection.py).
        claims = (recovered, recovery["manifest_blobs"]) | "ImageClaims" >> ImageClaims()
    facts = tuple(source_facts(i, spec, plan.buckets) for i, spec in enumerate(sources))
    if evidence is None:
        reclaim = {"decided": unchecked_verdict(plan.buckets)}
    else:
        guard = () if claims is None else (claims,)
        reclaim = (findings, evidence, *guard) | "Reclaim" >> Reclaim(
            facts, plan.buckets, True, plan.run_dir, plan.started_at, config.reclaim.accept_losing
        )
        tallies.append(reclaim["tallies"])
    # The decommission verdict's facts: images only here, and images other sources still serve from here.
    serving = {f.index: f.label for f in facts if f.kind != "legacy" and sources[f.index].role != "successor"}
    known = {"blobs": hashed["blobs"], "refs": refs, "recovered": recovered}
    known = {name: pcoll for name, pcoll in known.items() if pcoll is not None}
    tallies.append(known | "DecommissionFacts" >> DecommissionFacts(serving))
    # One report model feeds summary.json and report.html (pipeline/transforms/report.py, html_report.py).
    image_rows = diff = None
    if refs is not None:
        image_rows = (refs, findings) | "HumanReport" >> HumanReport()
    if ledger is not None:
        from pipeline.transforms.run_diff import RunDiff

        diff = (listed, findings, ledger["objects"], ledger["findings"], ledger["problem"]) | "RunDiff" >> RunDiff(
            plan.previous
        )
    reported = (listed, verified, findings, *tallies) | "WriteReport" >> WriteReport(
        plan.run_dir,
        plan.run_id,
        plan.started_at,
        config.to_dict(),
        reclaim,
        plan.bucket_facts,
        images=image_rows,
        changes=diff,
    )
    summary = reported | "WriteHtmlReport" >> WriteHtmlReport(plan.run_dir)
    summary = summary | "LogOutcome" >> beam.ParDo(LogOutcomeFn(structured_log_project(pipeline.options)))
    outputs = {
        "listed": listed,
        "blobs": hashed["blobs"],
        "verified": verified,
        "findings": findings,
        "summary": summary,
        "ledger": ledger,
    }
    if config.report.bigquery_dataset:
        # BigQuery's client libraries load only when a run asks for them.
        from pipeline.transforms.bigquery import WriteAuditTables

        outputs["bigquery"] = (findings, summary, verified) | "WriteAuditTables" >> WriteAuditTables(
            config.report.bigquery_dataset, plan.run_id, plan.started_at, plan.buckets
        )
    return outputs
