"""HashObjects: read every listed object once, hash it, and classify the result.

Each worker keeps a bounded number of reads in flight, because GCS spends tens
of milliseconds before the first byte of every read and small blobs dominate.
Each read holds at most one chunk, so memory stays constant whatever the sizes.
"""

from __future__ import annotations

import logging
import queue
import threading

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.pvalue import TaggedOutput
from apache_beam.transforms.window import GlobalWindows

from pipeline.adapters import gcs
from pipeline.core.blobs import ListedObject, ReadFailure, ReadResult
from pipeline.core.classify import blob_fact, classify_name, classify_read
from pipeline.core.layer_sniff import LayerSniffer, output_cap
from pipeline.core.read_verdict import DEFAULT_MIN_READ_RATE, DEFAULT_READ_TIMEOUT_S
from pipeline.core.recovery import sniffed_fact
from pipeline.transforms.progress import Progress

log = logging.getLogger(__name__)

VERIFIED = "verified"
FINDINGS = "findings"
SNIFFED = "sniffed"  # configs and layers seen by the read, for RecoverImages (scan.recover_images)


class HashObjectsFn(beam.DoFn):
    """ListedObject -> a digest-keyed blob fact on the main output, plus exactly one
    row on ``verified`` or ``findings``.

    The main output, ``(digest, {bucket, object, size, intact})``, is what manifest
    references join against.
    """

    def __init__(
        self,
        prefix: str,
        emulator_endpoint: str | None,
        chunk_size: int,
        read_concurrency: int,
        max_attempts: int,
        read_timeout: float = DEFAULT_READ_TIMEOUT_S,
        min_read_rate: int = DEFAULT_MIN_READ_RATE,
        recover_images: bool = False,
    ):
        self._read_timeout = read_timeout
        self._min_read_rate = min_read_rate
        self._recover_images = recover_images
        self._prefix = prefix
        self._emulator_endpoint = emulator_endpoint
        self._chunk_size = chunk_size
        self._read_concurrency = read_concurrency
        self._max_attempts = max_attempts
        self._hashed_objects = Metrics.counter("scan", "objects_hashed")
        self._hashed_bytes = Metrics.counter("scan", "bytes_hashed")
        self._object_sizes = Metrics.distribution("scan", "object_size_bytes")

    def setup(self) -> None:
        self._session, self._endpoint = gcs.make_session(self._emulator_endpoint, self._read_concurrency)
        self._progress = Progress()
        # A plain queue in, a plain queue out, and threads of our own: per small object a
        # Future and a wait() over every read in flight cost more than the read itself.
        self._todo: queue.SimpleQueue = queue.SimpleQueue()
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        # Started as reads call for them: a scan of a few objects starts a few threads, not read_concurrency.
        self._readers: list[threading.Thread] = []
        self._in_flight = 0

    def teardown(self) -> None:
        for _ in self._readers:
            self._todo.put(None)
        for reader in self._readers:
            reader.join()
        self._session.close()

    def start_bundle(self) -> None:
        # Each bundle collects into a queue of its own: reads left over from a failed bundle stay out.
        self._done = queue.SimpleQueue()
        self._in_flight = 0

    def process(self, obj: ListedObject):
        digest, malformed = classify_name(obj, self._prefix)
        if malformed is not None:
            yield TaggedOutput(FINDINGS, malformed)
            return
        self._todo.put((obj, digest, self._done))
        self._in_flight += 1
        if self._in_flight > len(self._readers):
            self._start_reader()
        if self._in_flight >= self._read_concurrency:
            # Wait for one read, then take every other that is done too.
            for done in self._collect(block_for=1):
                for tag, value in self._outputs(*done):
                    yield _tagged(tag, value)

    def finish_bundle(self):
        for done in self._collect(block_for=self._in_flight):
            for tag, value in self._outputs(*done):
                # Outputs after process() carry no window of their own: batch is global.
                yield _tagged(tag, GlobalWindows.windowed_value(value))

    def _collect(self, block_for: int) -> list:
        """Reads that are done: at least ``block_for`` of them, waiting as needed."""
        done = []
        while len(done) < block_for or not self._done.empty():
            outcome = self._done.get()
            self._in_flight -= 1
            if isinstance(outcome, BaseException):
                raise outcome
            done.append(outcome)
        return done

    def _start_reader(self) -> None:
        reader = threading.Thread(target=self._reader, name=f"hash-{len(self._readers)}", daemon=True)
        reader.start()
        self._readers.append(reader)

    def _reader(self) -> None:
        while (task := self._todo.get()) is not None:
            obj, digest, done = task
            try:
                outcome = self._read(obj, digest)
            except BaseException as err:  # handed to the bundle's thread, which fails the bundle
                outcome = err
            done.put(outcome)

    def _read(self, obj: ListedObject, digest: str):
        sniffer = LayerSniffer(max_output_bytes=output_cap(obj.size)) if self._recover_images else None
        result = gcs.read_and_hash(
            self._session,
            self._endpoint,
            obj,
            chunk_size=self._chunk_size,
            max_attempts=self._max_attempts,
            read_timeout=self._read_timeout,
            min_read_rate=self._min_read_rate,
            expected_sha256=digest.partition(":")[2],
            on_bytes=self._progress.add_bytes,
            observer=sniffer,
        )
        self._progress.object_done()
        return obj, digest, result, sniffer.result() if sniffer and result.ok else None

    def _outputs(self, obj: ListedObject, digest: str, result: ReadResult, sniffed=None):
        """(tag, value) pairs; tag None is the main output."""
        verified_row, finding_row = classify_read(obj, digest, result)
        if result.ok:
            self._hashed_objects.inc()
            self._hashed_bytes.inc(result.size)
            self._object_sizes.update(result.size)
        if result.failure is not ReadFailure.VANISHED:
            yield None, blob_fact(digest, obj, intact=verified_row is not None)
        if verified_row is not None:
            yield VERIFIED, verified_row
            if sniffed is not None:
                yield SNIFFED, sniffed_fact(obj.bucket, obj.name, digest, obj.size, sniffed)
        else:
            yield FINDINGS, finding_row


def _tagged(tag: str | None, value):
    return value if tag is None else TaggedOutput(tag, value)


class HashObjects(beam.PTransform):
    """ListedObject -> tagged outputs ``blobs`` (main), ``verified`` and ``findings``.

    Takes ``HashObjectsFn``'s arguments, so the two signatures cannot drift apart.
    """

    def __init__(self, *fn_args, **fn_kwargs):
        super().__init__()
        self._fn = HashObjectsFn(*fn_args, **fn_kwargs)

    def expand(self, objects):
        outputs = objects | "HashAndClassify" >> beam.ParDo(self._fn).with_outputs(
            VERIFIED, FINDINGS, SNIFFED, main="blobs"
        )
        return outputs
