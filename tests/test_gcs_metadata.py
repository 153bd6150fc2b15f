"""What the listing and a bucket GET tell about objects and buckets, against the real emulator.

Only the 403 comes from the fault proxy (tests/support/proxy.py) in front of it: the
emulator grants everything, while a scanner holding only roles/storage.objectViewer is
refused ``storage.buckets.get`` on real GCS.
"""

from __future__ import annotations

from pipeline.adapters import gcs
from pipeline.compat import parse_iso_datetime
from pipeline.core.shards import KeyRange
from tests.support.proxy import Fault, FaultyProxy


def test_listing_carries_storage_class_and_times(storage_client, bucket):
    bucket.blob("containers/images/sha256:" + "a" * 64).upload_from_string(b"abc")
    (listed,) = gcs.list_range(storage_client, bucket.name, KeyRange(prefix="containers/images/"))
    assert listed.storage_class == "STANDARD" and listed.generation is not None
    created = parse_iso_datetime(listed.time_created)
    assert listed.time_created.endswith("Z") and created.tzinfo is not None
    assert parse_iso_datetime(listed.updated) >= created


def test_bucket_facts_read_location_and_soft_delete(storage_client, bucket):
    facts = gcs.bucket_facts(storage_client, bucket.name)
    assert facts == {
        "location": "US",
        "location_type": "multi-region",
        "storage_class": "STANDARD",
        "soft_delete_retention_seconds": 7 * 86400,
        "soft_delete_reported": True,
        "error": None,
    }
    bucket.soft_delete_policy.retention_duration_seconds = 0
    bucket.patch()
    facts = gcs.bucket_facts(storage_client, bucket.name)
    assert facts["soft_delete_reported"] and facts["soft_delete_retention_seconds"] == 0


def test_bucket_facts_never_fail_a_scan(storage_client, bucket, emulator):
    missing = gcs.bucket_facts(storage_client, "no-such-bucket-here")
    assert missing["error"].startswith("bucket GET answered HTTP 404") and missing["location"] is None
    port = int(emulator.endpoint.rsplit(":", 1)[1])
    with FaultyProxy(port, faults=[Fault(path_contains=f"/b/{bucket.name}", status=403, times=10)]) as proxy:
        refused = gcs.bucket_facts(gcs.make_client(proxy.endpoint), bucket.name)
    assert refused["error"].startswith("bucket GET answered HTTP 403")
    assert refused["soft_delete_retention_seconds"] is None and not refused["soft_delete_reported"]
