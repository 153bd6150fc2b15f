"""The GCS adapter against a real gcp-storage-emulator: listing, streaming reads, failures.

Faults (503, 429, a connection cut mid-body) come from ``FaultyProxy``, a loopback
proxy in front of the real emulator, because the emulator itself never fails;
every byte read still comes from the emulator.
"""

import hashlib
import os

import pytest

from pipeline.adapters import gcs
from pipeline.core.blobs import ReadFailure
from pipeline.core.shards import plan_ranges
from tests.support.proxy import Fault, FaultyProxy

PREFIX = "containers/images/"


def upload_blob(bucket, content: bytes, name: str | None = None) -> str:
    name = name or PREFIX + "sha256:" + hashlib.sha256(content).hexdigest()
    bucket.blob(name).upload_from_string(content)
    return name


def list_all(client, bucket_name, shard_count=16):
    return [obj for r in plan_ranges(PREFIX, shard_count) for obj in gcs.list_range(client, bucket_name, r)]


def read(endpoint, obj, **kwargs):
    session, base = gcs.make_session(endpoint, 4)
    kwargs.setdefault("max_attempts", 3)
    return gcs.read_and_hash(session, base, obj, chunk_size=64 * 1024, sleep=lambda s: None, **kwargs)


@pytest.mark.parametrize("shard_count", [16, 256])
def test_listing_covers_every_shard_and_the_sweep_once(storage_client, bucket, shard_count):
    names = {upload_blob(bucket, f"blob {i}".encode()) for i in range(40)}
    names |= {
        upload_blob(bucket, b"x", PREFIX + leaf)
        for leaf in ("README", "sha256:", "sha256:XYZ", "sha256:g00d", "tmp/partial", "~lock")
    }
    upload_blob(bucket, b"outside", "containers/repositories/library/app/manifest")
    listed = list_all(storage_client, bucket.name, shard_count)
    assert sorted(o.name for o in listed) == sorted(names)
    digests = [o.name for o in listed if len(o.name) == len(PREFIX) + 71]
    assert len({name[len(PREFIX) + 7] for name in digests}) > 8  # the 40 digests spread over many shards
    sample = next(o for o in listed if o.name.endswith("README"))
    assert sample.size == 1 and sample.generation and sample.crc32c


def test_intact_object_hashes_to_its_name(storage_client, bucket, emulator):
    content = os.urandom(300_000)
    upload_blob(bucket, content)
    (obj,) = list_all(storage_client, bucket.name)
    result = read(emulator.endpoint, obj)
    assert result.ok and result.size == len(content)
    assert result.sha256 == hashlib.sha256(content).hexdigest()
    assert result.crc32c == obj.crc32c


def test_bytes_changed_behind_the_emulators_back_are_seen(storage_client, bucket, emulator):
    content = os.urandom(50_000)
    name = upload_blob(bucket, content)
    path = emulator.object_path(bucket.name, name)
    damaged = bytearray(path.read_bytes())
    damaged[12345] ^= 0xFF
    path.write_bytes(bytes(damaged))
    (obj,) = list_all(storage_client, bucket.name)
    result = read(emulator.endpoint, obj)
    assert result.sha256 == hashlib.sha256(bytes(damaged)).hexdigest()
    assert result.crc32c != obj.crc32c  # the stored crc32c still describes the original upload


def test_object_deleted_after_listing_is_vanished(storage_client, bucket, emulator):
    name = upload_blob(bucket, b"soon gone")
    (obj,) = list_all(storage_client, bucket.name)
    bucket.blob(name).delete()
    result = read(emulator.endpoint, obj)
    assert result.failure is ReadFailure.VANISHED and result.http_status == 404
    assert f"generation {obj.generation} not found" in result.reason


def test_transient_errors_are_retried_and_a_cut_stream_resumes(storage_client, bucket, emulator):
    content = os.urandom(2_000_000)
    upload_blob(bucket, content)
    (obj,) = list_all(storage_client, bucket.name)
    faults = [
        Fault("alt=media", status=503),
        Fault("alt=media", status=429, retry_after="0"),
        Fault("alt=media", cut_after=700_000),
    ]
    with FaultyProxy(emulator.port, faults=faults) as proxy:
        result = read(proxy.endpoint, obj, max_attempts=5)
    assert result.ok and result.attempts == 4
    assert result.sha256 == hashlib.sha256(content).hexdigest()
    assert proxy.stats.faults_injected == 3
    # The last attempt asked only for what the cut stream had not delivered.
    assert len(proxy.stats.ranges) == 1 and proxy.stats.ranges[0].startswith("bytes=")
    assert 0 < int(proxy.stats.ranges[0][6:-1]) <= 700_000


def test_persistent_failure_becomes_unreadable_with_its_status(storage_client, bucket, emulator):
    upload_blob(bucket, b"never readable")
    (obj,) = list_all(storage_client, bucket.name)
    with FaultyProxy(emulator.port, faults=[Fault("alt=media", status=503, times=10)]) as proxy:
        result = read(proxy.endpoint, obj, max_attempts=3)
    assert result.failure is ReadFailure.UNREADABLE
    assert result.http_status == 503 and result.attempts == 3
    assert proxy.stats.faults_injected == 3


def test_permission_denied_is_not_retried(storage_client, bucket, emulator):
    upload_blob(bucket, b"forbidden")
    (obj,) = list_all(storage_client, bucket.name)
    with FaultyProxy(emulator.port, faults=[Fault("alt=media", status=403, times=10)]) as proxy:
        result = read(proxy.endpoint, obj, max_attempts=5)
    assert result.failure is ReadFailure.UNREADABLE and result.http_status == 403
    assert result.attempts == 1 and "injected by test proxy" in result.reason
