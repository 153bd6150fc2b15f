"""ListObjects: every object under the prefix of every bucket, spread across workers."""

from __future__ import annotations

import collections
import logging
import queue
import threading
from concurrent.futures import ThreadPoolExecutor

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindows
from google.api_core.exceptions import GoogleAPICallError

from pipeline.adapters import gcs
from pipeline.core.blobs import ListedObject
from pipeline.core.shards import KeyRange, plan_ranges
from pipeline.runner import spreads_listed_objects
from pipeline.transforms import progress

log = logging.getLogger(__name__)


class ListingFailed(RuntimeError):
    """A listing that failed after the client's retries. It fails the run rather than
    leaving the range out: objects never listed could appear in no report row."""


# Listings a bundle runs at once in the launcher's own process. Each is a chain of page requests
# whose latency dominates on GCS (30-50 ms each): a small scan's 16 shards listed one after
# another were most of its wall time. Four, not more: gcp-storage-emulator's listen backlog is
# 5, and at 8 a connect now and then waited out the kernel's 1 s SYN retry (docs/performance.md).
# With worker processes or on Dataflow, one: the shards are spread over workers already, and
# each listing ahead holds a page (on fake-gcs-server, a whole shard).
LISTINGS_IN_FLIGHT = 4
# Objects handed from a listing's thread to the bundle's at a time, and chunks held per listing:
# what a listing may run ahead of the bundle that consumes it, beyond the page it holds.
CHUNK_OBJECTS = 200
CHUNKS_AHEAD = 2
_DONE = object()


class _Listing:
    """One (bucket, KeyRange) listed on a thread into a bounded queue of chunks, ended by _DONE or an error."""

    def __init__(self, element: tuple[str, KeyRange], client, executor: ThreadPoolExecutor, cancelled: threading.Event):
        self.element = element
        self._chunks: queue.Queue = queue.Queue(maxsize=CHUNKS_AHEAD)
        self._cancelled = cancelled
        executor.submit(self._run, client)

    def _put(self, item) -> bool:
        while not self._cancelled.is_set():
            try:
                self._chunks.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, client) -> None:
        bucket, key_range = self.element
        chunk = []
        try:
            for obj in gcs.list_range(client, bucket, key_range):
                chunk.append(obj)
                if len(chunk) >= CHUNK_OBJECTS:
                    if not self._put(chunk):
                        return
                    chunk = []
            if chunk and not self._put(chunk):
                return
            self._put(_DONE)
        except BaseException as err:  # handed to the bundle's thread, which raises it there
            self._put(err)

    def objects(self):
        """Every object, in order, on the calling thread; the listing's error is raised here."""
        while True:
            item = self._chunks.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield from item


class ListRangeFn(beam.DoFn):
    """(bucket, KeyRange) -> every ListedObject in that range.

    With ``in_flight`` above 1, the ranges of a bundle are listed concurrently, that many at
    once, each on a thread of its own a few chunks ahead; their objects come out on the
    bundle's thread, one listing after another, where Beam's counters count them and a failed
    listing fails the bundle. A range's objects may then come out while a later range is
    processed, or when the bundle finishes: batch, one window, so they belong to it all the same.
    """

    def __init__(self, emulator_endpoint: str | None, listings: int | None = None, in_flight: int = 1):
        self._emulator_endpoint = emulator_endpoint
        self._listings = listings  # how many ranges the scan lists, for the console's totals
        self._in_flight = in_flight
        self._listed = Metrics.counter("scan", "objects_listed")
        self._listed_bytes = Metrics.counter("scan", "bytes_listed")

    def setup(self) -> None:
        self._client = gcs.make_client(self._emulator_endpoint)
        self._executor = None
        if self._in_flight > 1:
            self._executor = ThreadPoolExecutor(max_workers=self._in_flight, thread_name_prefix="listing")
        self._cancelled = threading.Event()

    def start_bundle(self) -> None:
        self._stop_listings()  # a failed bundle's listings, if any, end here
        self._pending: collections.deque[_Listing] = collections.deque()

    def process(self, element: tuple[str, KeyRange]):
        if self._executor is None:
            yield from self._counted(element, gcs.list_range(self._client, *element))
            return
        self._pending.append(_Listing(element, self._client, self._executor, self._cancelled))
        while len(self._pending) > self._in_flight:
            listing = self._pending.popleft()
            yield from self._counted(listing.element, listing.objects())

    def finish_bundle(self):
        while self._pending:
            listing = self._pending.popleft()
            for obj in self._counted(listing.element, listing.objects()):
                yield GlobalWindows.windowed_value(obj)

    def teardown(self) -> None:
        self._stop_listings()
        if self._executor is not None:
            self._executor.shutdown(wait=False)

    def _stop_listings(self) -> None:
        self._cancelled.set()
        self._cancelled = threading.Event()

    def _counted(self, element: tuple[str, KeyRange], objects):
        bucket, key_range = element
        count = size = 0
        try:
            for obj in objects:
                count += 1
                size += obj.size
                self._listed.inc()
                self._listed_bytes.inc(obj.size)
                yield obj
        except GoogleAPICallError as err:
            # Beam retries the bundle (its partial output is discarded), then fails the job.
            raise ListingFailed(f"listing gs://{bucket} {key_range.label} failed after {count} objects: {err}") from err
        progress.log_listed(bucket, key_range.label, count, size, self._listings)


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
        in_flight = 1 if spread_units else LISTINGS_IN_FLIGHT  # one process: its bundle has every range
        listed = listed | "ListRanges" >> beam.ParDo(
            ListRangeFn(self._emulator_endpoint, listings=len(self._units), in_flight=in_flight)
        ).with_output_types(ListedObject)
        if spread_objects:
            listed = listed | "SpreadObjects" >> beam.Reshuffle()
        return listed
