"""Beam DoFns called directly (setup/process/finish_bundle) against the real emulator."""

import hashlib
import re

import pytest
from apache_beam.pvalue import TaggedOutput
from apache_beam.utils.windowed_value import WindowedValue

from pipeline.adapters import gcs
from pipeline.core.blobs import ListedObject
from pipeline.core.shards import plan_ranges
from pipeline.transforms.hashing import FINDINGS, VERIFIED, HashObjectsFn, Progress
from pipeline.transforms.listing import LISTINGS_IN_FLIGHT, ListingFailed, ListRangeFn

PREFIX = "containers/images/"


def run_fn(fn, elements):
    """Every output of one bundle, as (tag, value); tag None is the main output."""
    fn.setup()
    fn.start_bundle()
    outputs = [out for element in elements for out in fn.process(element)]
    outputs += list(fn.finish_bundle() or [])
    fn.teardown()
    result = []
    for out in outputs:
        tag, value = (out.tag, out.value) if isinstance(out, TaggedOutput) else (None, out)
        if isinstance(value, WindowedValue):
            value = value.value
        result.append((tag, value))
    return result


def seed(bucket, count):
    names = []
    for i in range(count):
        content = f"content {i}".encode()
        name = PREFIX + "sha256:" + hashlib.sha256(content).hexdigest()
        bucket.blob(name).upload_from_string(content)
        names.append(name)
    return names


def _bundle(fn, elements):
    """One bundle through a DoFn as Beam runs it: what process() and finish_bundle() output."""
    fn.start_bundle()
    outputs = [out for element in elements for out in fn.process(element)]
    return outputs + [windowed.value for windowed in fn.finish_bundle()]


@pytest.mark.parametrize("in_flight", [1, LISTINGS_IN_FLIGHT])
def test_list_range_fn_lists_its_range_only(emulator, bucket, in_flight):
    names = seed(bucket, 12)
    fn = ListRangeFn(emulator.endpoint, in_flight=in_flight)
    fn.setup()
    ranges = plan_ranges(PREFIX, 16)
    per_range = [[obj.name for obj in _bundle(fn, [(bucket.name, r)])] for r in ranges]
    assert sorted(n for chunk in per_range for n in chunk) == sorted(names)
    assert max(len(chunk) for chunk in per_range) < len(names)
    fn.teardown()


def test_a_bundle_of_ranges_lists_each_object_once_with_more_ranges_than_listings_in_flight(emulator, bucket):
    names = seed(bucket, 40)
    fn = ListRangeFn(emulator.endpoint, in_flight=LISTINGS_IN_FLIGHT)
    fn.setup()
    ranges = plan_ranges(PREFIX, 256)  # 256 listings, LISTINGS_IN_FLIGHT at a time, most of them empty
    listed = _bundle(fn, [(bucket.name, r) for r in ranges])
    assert sorted(obj.name for obj in listed) == sorted(names)
    fn.teardown()


@pytest.mark.parametrize("in_flight", [1, LISTINGS_IN_FLIGHT])
def test_a_listing_that_fails_fails_its_bundle_naming_the_range(emulator, in_flight):
    fn = ListRangeFn(emulator.endpoint, in_flight=in_flight)
    fn.setup()
    ranges = plan_ranges(PREFIX, 16)
    # The first range's error, raised on the bundle's thread while the others are in flight.
    first = re.escape(f"listing gs://no-such-bucket-here {ranges[0].label} failed after 0 objects: 404")
    with pytest.raises(ListingFailed, match=first):
        _bundle(fn, [("no-such-bucket-here", r) for r in ranges])
    fn.teardown()


def test_each_object_yields_one_row_even_with_more_objects_than_reads_in_flight(emulator, storage_client, bucket):
    seed(bucket, 9)
    bucket.blob(PREFIX + "junk").upload_from_string(b"junk")
    listed = [obj for r in plan_ranges(PREFIX, 16) for obj in gcs.list_range(storage_client, bucket.name, r)]
    # A deleted object that was listed: it must come out as vanished, not disappear.
    gone = listed[3]
    bucket.blob(gone.name).delete()
    fn = HashObjectsFn(PREFIX, emulator.endpoint, chunk_size=4096, read_concurrency=2, max_attempts=2)
    outputs = run_fn(fn, listed)
    rows = [(tag, value) for tag, value in outputs if tag in (VERIFIED, FINDINGS)]
    assert sorted(value["object"] for _, value in rows) == sorted(o.name for o in listed)
    kinds = {value["object"]: value.get("kind", "verified") for _, value in rows}
    assert kinds[gone.name] == "vanished"
    assert kinds[PREFIX + "junk"] == "malformed_name"
    assert list(kinds.values()).count("verified") == 8
    blob_facts = dict(value for tag, value in outputs if tag is None)
    assert len(blob_facts) == 8 and all(fact["intact"] for fact in blob_facts.values())


def test_unreachable_store_becomes_read_errors_not_a_crash():
    obj = ListedObject("b", PREFIX + "sha256:" + "0" * 64, 1, 10, None)
    # Port 9 on loopback: connection refused at once.
    fn = HashObjectsFn(PREFIX, "http://127.0.0.1:9", chunk_size=4096, read_concurrency=2, max_attempts=2)
    [(tag, row)] = [out for out in run_fn(fn, [obj]) if out[0] == FINDINGS]
    assert row["kind"] == "read_error" and "ConnectionError" in row["detail"]


def test_progress_line_reports_objects_bytes_and_rate():
    now = [100.0]
    progress = Progress(interval=5, clock=lambda: now[0])
    progress.add_bytes(50_000_000)
    progress.object_done()
    now[0] = 110.0
    line = progress.line()
    assert "1 objects, 50.0 MB hashed" in line and "(5.0 MB/s" in line
