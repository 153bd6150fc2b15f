"""Manifest cross-check: ManifestSource -> references keyed by digest -> CrossCheck with the listed blobs.

ManifestSource: source units -> Reshuffle -> enumerate manifests per unit ->
GroupByKey by (repository, digest) (tags merged, each manifest fetched once) ->
fetch, verify and parse (recursing into every child of an index, fetched by
digest from the same repository) -> GroupByKey again (a child may also be listed
on its own) -> manifest findings, references and per-repository counts.

CrossCheck: ``CoGroupByKey`` of references, blob facts and the object findings
that carry a digest, classified by ``pipeline.core.crosscheck.classify_joined``.
No side input ever holds the digests.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import replace
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.pvalue import TaggedOutput

from pipeline.adapters import gcs
from pipeline.adapters.manifest_files import (
    DirectoryStore,
    LegacyStore,
    OciLayoutStore,
    Unavailable,
)
from pipeline.adapters.registry import RegistryClient, RegistryStore
from pipeline.core import crosscheck as cc
from pipeline.core import reference_checks
from pipeline.core.blobs import ListedObject
from pipeline.core.classify import blob_fact, classify_name
from pipeline.core.digests import is_digest
from pipeline.core.findings import Kind, is_error
from pipeline.core.manifests import manifest_digest
from pipeline.core.oci_rules import REGISTERED_ALGORITHMS, digest_algorithm
from pipeline.core.reclaim import Evidence
from pipeline.core.recovery import image_of_record
from pipeline.core.summary import Tally
from pipeline.manifest_config import ManifestsConfig, SourceSpec

log = logging.getLogger(__name__)

FINDINGS = "findings"
TALLIES = "tallies"
IMAGES = "images"
# What a source met that stops reclaim from being proven (pipeline/core/reclaim.py).
EVIDENCE = "evidence"
VERIFIED = "verified"
# Object findings whose blob may still be needed by an image: they go through the join.
DAMAGE_KINDS = frozenset(
    {Kind.DIGEST_MISMATCH.value, Kind.READ_ERROR.value, Kind.VANISHED.value, Kind.LEDGER_DISAGREES.value}
)


def _finding_name(row: dict[str, Any]) -> str:
    if row.get("bucket") and row.get("object"):
        return f"gs://{row['bucket']}/{row['object']}"
    return row.get("object") or row.get("reference") or row.get("repository") or "(source)"


def source_finding(index: int, row: dict[str, Any]):
    """A finding of source ``index`` and, when it means a manifest went unread, the evidence of it."""
    yield TaggedOutput(FINDINGS, row)
    if row["kind"] in cc.UNREAD_KINDS:
        yield TaggedOutput(EVIDENCE, Evidence.of_unread(index, _finding_name(row)))


def sources_for(manifests: ManifestsConfig, buckets: tuple[str, ...]) -> tuple[SourceSpec, ...]:
    """The configured sources, plus each scanned bucket's legacy metadata when enabled."""
    legacy = (
        tuple(SourceSpec(kind="legacy", location=b, bucket=b) for b in buckets) if manifests.legacy_metadata else ()
    )
    return manifests.sources + legacy


class _StoresFn(beam.DoFn):
    """A DoFn that opens the manifest stores in ``setup()`` (clients are not picklable)."""

    def __init__(self, sources: tuple[SourceSpec, ...], settings: ManifestsConfig, emulator_endpoint: str | None):
        self._sources = sources
        self._settings = replace(settings, sources=())
        self._emulator_endpoint = emulator_endpoint

    def setup(self) -> None:
        self._stores: dict[int, Any] = {}
        self._gcs_client = None

    def teardown(self) -> None:
        for store in self._stores.values():
            client = getattr(store, "_client", None)
            if isinstance(client, RegistryClient):
                client.close()

    def _client(self):
        if self._gcs_client is None:
            self._gcs_client = gcs.make_client(self._emulator_endpoint)
        return self._gcs_client

    def _source_unavailable(self, index: int, detail: str, http_status: int | None = None):
        """A source (or one unit of it) that yields no manifests: reported, never silently empty."""
        spec = self._sources[index]
        where = {"object": spec.location}
        if spec.kind == "legacy":
            where = {"bucket": spec.bucket, "object": "containers/repositories/"}
        return source_finding(
            index, cc.finding(Kind.MANIFEST_UNAVAILABLE, **where, http_status=http_status, detail=detail)
        )

    def store(self, index: int):
        if index not in self._stores:
            self._stores[index] = open_store(index, self._sources[index], self._settings, self._client)
        return self._stores[index]


def open_store(index: int, spec: SourceSpec, settings: ManifestsConfig, client_factory):
    max_bytes = settings.max_manifest_size
    if spec.kind == "registry":
        client = RegistryClient(
            spec.location,
            auth=spec.auth,
            credentials_env=spec.credentials_env,
            tls_verify=spec.tls_verify,
            token_realm=spec.token_realm,
            requests_per_second=settings.requests_per_process,
            max_attempts=settings.max_attempts,
            max_manifest_bytes=max_bytes,
        )
        store = RegistryStore(
            index, client, gcr_roots=spec.gcr_projects, repositories=spec.repositories, bucket=spec.bucket
        )
        store.claimed_by = "digest the registry listed"
        return store
    if spec.kind == "directory":
        store = DirectoryStore(index, spec.location, spec.repository, spec.bucket, client_factory, max_bytes)
    elif spec.kind == "oci_layout":
        store = OciLayoutStore(index, spec.location, spec.repository, spec.bucket, client_factory, max_bytes)
    elif spec.kind == "legacy":
        store = LegacyStore(index, spec.location, client_factory, max_bytes)
    else:
        raise ValueError(f"unknown manifest source kind {spec.kind!r}")
    store.claimed_by = "digest that names the file"
    return store


class SourceUnitsFn(_StoresFn):
    """source index -> (index, unit): repositories to enumerate, folders, layouts, buckets."""

    def process(self, index: int):
        try:
            for unit in self.store(index).units():
                yield index, unit
        except Exception as err:  # a source that cannot even start is a finding, not a crash
            log.warning("manifest source %d (%s) failed", index, self._sources[index].location, exc_info=True)
            yield from self._source_unavailable(index, f"cannot read manifest source: {type(err).__name__}: {err}")


class EnumerateFn(_StoresFn):
    """(index, unit) -> manifest requests (main) and findings for what cannot be enumerated."""

    def process(self, element):
        index, unit = element
        try:
            for item in self.store(index).enumerate(unit):
                if "kind" in item:
                    yield from source_finding(index, item)
                elif "partial" in item:  # a repository listed without every manifest (no GCR map)
                    yield TaggedOutput(EVIDENCE, Evidence.of_partial(index, item["partial"]))
                else:
                    yield item
        except Unavailable as err:
            yield from self._source_unavailable(index, f"cannot enumerate manifests: {err.reason}", err.status)
        except Exception as err:
            log.warning("enumerating %r failed", unit, exc_info=True)
            yield from self._source_unavailable(index, f"cannot enumerate manifests: {type(err).__name__}: {err}")


def _request_key(request: dict[str, Any]):
    return (request["source"], request["repository"], request["digest"] or request["location"])


def merge_requests(requests) -> dict[str, Any]:
    requests = list(requests)
    merged = dict(requests[0])
    merged["tags"] = sorted({t for r in requests for t in r["tags"]})
    return merged


class FetchManifestsFn(_StoresFn):
    """A manifest request -> manifest records: the manifest and, for an index, every child below it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._fetched = Metrics.counter("manifests", "fetched")
        self._failed = Metrics.counter("manifests", "unavailable")

    def process(self, request: dict[str, Any]):
        """Breadth first, each digest fetched once per listed manifest: an index is first met at its
        shallowest depth, and a DAG whose indexes share children (100 x 100 x 100 x 100 paths through
        400 manifests) costs one fetch per manifest, not one per path. Every path still counts: a
        child met again adds its index's declared size and type, and each record's ``parents`` is
        every index above it (``reference_checks.ancestors``), not only those of the first path."""
        store = self.store(request["source"])
        source = None if isinstance(store, RegistryStore) else f"{store.label.rstrip('/')}/{request['location']}"
        root = cc.new_record(
            request["repository"],
            request["digest"],
            tags=request["tags"],
            bucket=request["bucket"],
            source=source,
            source_index=request["source"],
        )
        root["successor"] = self._sources[request["source"]].role == "successor"
        pending = deque([(root, request["location"], request["media_type"], None)])
        met: dict[str, dict[str, Any]] = {}
        parents_of: dict[str, set[str]] = {}
        records = []
        while pending:
            record, location, media_hint, claimed_by = pending.popleft()
            manifest = self._fetch(store, record, location, media_hint, claimed_by)
            met.setdefault(record["digest"], record)
            records.append(record)
            if manifest is None:
                continue
            for child_digest, size, _platform, child_type in record["children"]:
                if digest_algorithm(child_digest) not in REGISTERED_ALGORITHMS:
                    continue  # reported as unverifiable: nothing could check the bytes fetched
                parents_of.setdefault(child_digest, set()).add(record["digest"])
                if child_digest in met:  # met again by another path: no second fetch
                    declared = [record["digest"], size, child_type]
                    if declared not in met[child_digest]["declared"]:
                        met[child_digest]["declared"].append(declared)
                    continue
                child = cc.child_record(record, child_digest, size, child_type)
                child["source"] = None if isinstance(store, RegistryStore) else store.label
                child["successor"] = record["successor"]
                child["chain"] = [*record.get("chain", [record["digest"]]), child_digest]
                met[child_digest] = child
                pending.append((child, None, None, f"digest that index {record['digest']} lists"))
        above = reference_checks.ancestors(parents_of)
        for record in records:
            record["parents"] = sorted(above.get(record["digest"], ()))
            yield record

    def _fetch(self, store, record, location, media_hint, claimed_by=None):
        """Fetch, verify and parse one manifest into ``record``; the Manifest, or None."""
        try:
            data, media_type, header_digest = store.fetch(record["repository"], record["digest"], location)
        except Unavailable as err:
            self._failed.inc()
            cc.mark_unavailable(record, err.reason, err.status)
            return None
        except Exception as err:
            log.warning("fetching %s@%s failed", record["repository"], record["digest"], exc_info=True)
            cc.mark_unavailable(record, f"{type(err).__name__}: {err}")
            return None
        self._fetched.inc()
        if record["digest"] is None:  # a legacy object with no digest in its name: it names itself
            record["digest"] = manifest_digest(data, media_type or media_hint)
        limit = self._settings.max_manifest_size
        if len(data) > limit:
            record.update(
                status=cc.INVALID,
                size=len(data),
                detail=f"manifest larger than {limit:,} bytes (manifests.max_manifest_size); not parsed",
            )
            return None
        manifest = cc.evaluate(
            record,
            data,
            media_type or media_hint,
            header_digest,
            claimed_by=claimed_by or getattr(store, "claimed_by", "reference digest"),
            max_bytes=limit,
        )
        if manifest is not None:
            record["unverifiable"] = list(manifest.unverifiable)
            if manifest.is_index:
                reference_checks.stop_deep_or_cyclic_chain(record, [child.digest for child in manifest.children])
        return manifest


class ManifestOutcomeFn(beam.DoFn):
    """((repository, digest), records) -> references (main), findings, tallies and reclaim evidence."""

    def process(self, element):
        _, records = element
        record = cc.merge_records(records)
        rows = cc.record_findings(record)
        if record["status"] == cc.OK:
            rows += reference_checks.unverifiable_findings(record)
        for row in rows:
            yield TaggedOutput(FINDINGS, row)
        if any(row["kind"] in cc.UNREAD_KINDS for row in rows):
            for index in record["sources"]:
                yield TaggedOutput(EVIDENCE, Evidence.of_unread(index, cc.manifest_label(record)))
        if cc.counts_as_scanned(record):
            yield TaggedOutput(TALLIES, Tally.of_manifest(record["repository"]))
        if record["status"] == cc.OK:
            for digest, ref in cc.record_references(record):
                yield digest, {**ref, "successor": record.get("successor", False), "source_indexes": record["sources"]}
            image = image_of_record(record)
            if image is not None:
                yield TaggedOutput(IMAGES, image)  # config and layer order, for RecoverImages


class ManifestSource(beam.PTransform):
    """PBegin -> {"refs": (digest, ref), "findings": rows, "tallies": Tally, "evidence": reclaim Evidence,
    "images": image rows}."""

    def __init__(self, sources: tuple[SourceSpec, ...], settings: ManifestsConfig, emulator_endpoint: str | None):
        super().__init__()
        self._args = (sources, settings, emulator_endpoint)
        self._count = len(sources)

    def expand(self, pbegin):
        units = (
            pbegin
            | "Sources" >> beam.Create(list(range(self._count)))
            | "Units" >> beam.ParDo(SourceUnitsFn(*self._args)).with_outputs(FINDINGS, EVIDENCE, main="units")
        )
        enumerated = (
            units["units"]
            | "SpreadUnits" >> beam.Reshuffle()
            | "Enumerate" >> beam.ParDo(EnumerateFn(*self._args)).with_outputs(FINDINGS, EVIDENCE, main="requests")
        )
        records = (
            enumerated["requests"]
            | "KeyRequests" >> beam.Map(lambda r: (_request_key(r), r))
            | "GroupRequests" >> beam.GroupByKey()
            | "MergeRequests" >> beam.MapTuple(lambda _, rs: merge_requests(rs))
            | "Fetch" >> beam.ParDo(FetchManifestsFn(*self._args))
        )
        outcome = (
            records
            | "KeyRecords" >> beam.Map(lambda r: ((r["repository"], r["digest"]), r))
            | "GroupRecords" >> beam.GroupByKey()
            | "Outcome"
            >> beam.ParDo(ManifestOutcomeFn()).with_outputs(FINDINGS, TALLIES, EVIDENCE, IMAGES, main="refs")
        )
        findings = (units[FINDINGS], enumerated[FINDINGS], outcome[FINDINGS]) | "SourceFindings" >> beam.Flatten()
        evidence = (units[EVIDENCE], enumerated[EVIDENCE], outcome[EVIDENCE]) | "SourceEvidence" >> beam.Flatten()
        return {
            "refs": outcome["refs"],
            "findings": findings,
            "tallies": outcome[TALLIES],
            "evidence": evidence,
            "images": outcome[IMAGES],
        }


def _split_damage(row: dict[str, Any]):
    if row.get("kind") in DAMAGE_KINDS and is_digest(row.get("digest")):
        yield TaggedOutput("damaged", (row["digest"], row))
    else:
        yield row


def _classify(element):
    digest, groups = element
    return cc.classify_joined(digest, groups["refs"], groups["blobs"], groups["damaged"])


class CrossCheck(beam.PTransform):
    """(refs, blobs, object findings) -> every finding: object findings (damaged ones naming the
    images they break) plus missing_blob, size_mismatch and unreferenced_blob."""

    def expand(self, inputs):
        refs, blobs, object_findings = inputs
        split = object_findings | "SplitDamage" >> beam.ParDo(_split_damage).with_outputs("damaged", main="other")
        classified = (
            {"refs": refs, "blobs": blobs, "damaged": split["damaged"]}
            | "JoinByDigest" >> beam.CoGroupByKey()
            | "Classify" >> beam.FlatMap(_classify)
        )
        return (split["other"], classified) | "AllFindings" >> beam.Flatten()


class ImagesAffected(beam.PTransform):
    """findings -> one Tally per distinct repo@digest named by an error finding."""

    def expand(self, findings):
        return (
            findings
            | "ErrorImages" >> beam.FlatMap(lambda row: row.get("images") or [] if is_error(row) else [])
            | "DistinctImages" >> beam.Distinct()
            | "TallyImages" >> beam.Map(Tally.of_affected_image)
        )


class ListingFactsFn(beam.DoFn):
    """``manifests`` mode: a listed object -> its blob fact from the listing alone (nothing hashed)."""

    def __init__(self, prefix: str):
        self._prefix = prefix

    def process(self, obj: ListedObject):
        digest, malformed = classify_name(obj, self._prefix)
        if malformed is not None:
            yield TaggedOutput(FINDINGS, malformed)
            return
        yield blob_fact(digest, obj, intact=None)
        yield TaggedOutput(TALLIES, Tally.of_not_hashed())


class ListingFacts(beam.PTransform):
    """ListedObject -> ``blobs`` (main), ``findings`` (malformed names), ``tallies``, empty ``verified``."""

    def __init__(self, prefix: str):
        super().__init__()
        self._prefix = prefix

    def expand(self, listed):
        return listed | "FactsFromListing" >> beam.ParDo(ListingFactsFn(self._prefix)).with_outputs(
            VERIFIED, FINDINGS, TALLIES, main="blobs"
        )


def add_manifest_checks(
    pipeline,
    sources: tuple[SourceSpec, ...],
    settings: ManifestsConfig,
    emulator_endpoint: str | None,
    blobs,
    object_findings,
):
    """Wire ManifestSource and CrossCheck onto a scan: returns (all findings, [tally PCollections], ManifestSource's
    outputs: refs, reclaim evidence, and images for the recovery and the migration audit)."""
    manifests = pipeline | "ManifestSource" >> ManifestSource(sources, settings, emulator_endpoint)
    checked = (manifests["refs"], blobs, object_findings) | "CrossCheck" >> CrossCheck()
    findings = (checked, manifests["findings"]) | "MergeFindings" >> beam.Flatten()
    affected = findings | "ImagesAffected" >> ImagesAffected()
    return findings, [manifests["tallies"], affected], manifests
