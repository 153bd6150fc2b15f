"""ListObjects: every object under the prefix of every bucket, spread across workers."""

from __future__ import annotations

import logging

import apache_beam as beam
from apache_beam.metrics import Metrics
from google.api_core.exceptions import GoogleAPICallError

from pipeline.adapters import gcs
from pipeline.core.blobs import ListedObject
from pipeline.core.shards import KeyRange, plan_ranges
from pipeline.runner import spreads_listed_objects

log = logging.getLogger(__name__)


class ListingFailed(RuntimeError):
    """A listing that failed after the client's retries. It fails the run rather than
    leaving the range out: objects never listed could appear in no report row."""


class ListRangeFn(beam.DoFn):
    """(bucket, KeyRange) -> every ListedObject in that range."""

    def __init__(self, emulator_endpoint: str | None):
        self._emulator_endpoint = emulator_endpoint
        self._listed = Metrics.counter("scan", "objects_listed")
        self._listed_bytes = Metrics.counter("scan", "bytes_listed")

    def setup(self) -> None:
        self._client = gcs.make_client(self._emulator_endpoint)

    def process(self, element: tuple[str, KeyRange]):
        bucket, key_range = element
        count = 0
        try:
            for obj in gcs.list_range(self._client, bucket, key_range):
                count += 1
                self._listed.inc()
                self._listed_bytes.inc(obj.size)
                yield obj
        except GoogleAPICallError as err:
            # Beam retries the bundle (its partial output is discarded), then fails the job.
            raise ListingFailed(f"listing gs://{bucket} {key_range.label} failed after {count} objects: {err}") from err
        log.debug("listed %d objects in gs://%s %s", count, bucket, key_range.label)


class ListObjects(beam.PTransform):
    """Lists ``prefix`` in every bucket, one listing per hex shard and sweep range.

    On Dataflow the first Reshuffle spreads the listings across workers and the second
    spreads the listed objects, because fusion would otherwise hash every object on the
    worker that happened to list it. Locally the objects go straight from the listing to
    the next step, fused with it (``pipeline.runner.spreads_listed_objects`` says why), so
    no process holds the listing.
    """

    def __init__(self, buckets: tuple[str, ...], prefix: str, shard_count: int, emulator_endpoint: str | None):
        super().__init__()
        self._units = [(bucket, r) for bucket in buckets for r in plan_ranges(prefix, shard_count)]
        self._emulator_endpoint = emulator_endpoint

    def expand(self, pbegin):
        spread_units, spread_objects = spreads_listed_objects(pbegin.pipeline.options)
        # Create's own Reshuffle would repeat SpreadListings.
        listed = pbegin | "ListingUnits" >> beam.Create(self._units, reshuffle=False)
        if spread_units:
            listed = listed | "SpreadListings" >> beam.Reshuffle()
        listed = listed | "ListRanges" >> beam.ParDo(ListRangeFn(self._emulator_endpoint)).with_output_types(
            ListedObject
        )
        if spread_objects:
            listed = listed | "SpreadObjects" >> beam.Reshuffle()
        return listed
