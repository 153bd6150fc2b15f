"""The GCS adapter against a real gcp-storage-emulator: listing, streaming reads, failures.

Faults (503, 429, a connection cut mid-body, short bodies, flipped bytes, a 200 to
a ranged read, stalls and drips) come from ``FaultyProxy``, a loopback proxy in
front of the real emulator, because the emulator itself never fails; every byte
read still comes from the emulator. The proxy also shows what the emulator
cannot: which generation each read asked for, and on which connection.
"""

import hashlib
import os
import time
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from google.auth.credentials import AnonymousCredentials
from google.auth.transport.requests import AuthorizedSession

from pipeline.adapters import gcs
from pipeline.core.blobs import ListedObject, ReadFailure
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
    kwargs.setdefault("sleep", lambda s: None)
    kwargs.setdefault("expected_sha256", obj.name.rpartition(":")[2])
    try:
        return gcs.read_and_hash(session, base, obj, chunk_size=64 * 1024, **kwargs)
    finally:
        session.close()


def assert_pinned(proxy, obj):
    """Every read asked for the listed generation (the emulator would serve the current one regardless)."""
    reads = proxy.stats.media_reads()
    assert reads
    for record in reads:
        assert parse_qs(urlsplit(record.path).query)["generation"] == [str(obj.generation)], record.path


def one_object(storage_client, bucket, size):
    content = os.urandom(size)
    upload_blob(bucket, content)
    (obj,) = list_all(storage_client, bucket.name)
    return obj, hashlib.sha256(content).hexdigest()


@pytest.mark.parametrize("shard_count", [16, 256])
def test_listing_covers_every_shard_and_the_sweep_once(storage_client, bucket, shard_count):
    names = {upload_blob(bucket, f"blob {i}".encode()) for i in range(40)}
    names |= {
        upload_blob(bucket, b"x", PREFIX + leaf)
        for leaf in ("README", "sha256:", "sha256:0", "sha256:a", "sha256:XYZ", "sha256:g00d", "tmp/partial", "~lock")
    }
    upload_blob(bucket, b"outside", "containers/repositories/library/app/manifest")
    listed = list_all(storage_client, bucket.name, shard_count)
    # Each name once: "sha256:0" and "sha256:a" sit exactly on the end of a sweep range.
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


def test_bytes_changed_behind_the_emulators_back_are_a_confirmed_mismatch(storage_client, bucket, emulator):
    content = os.urandom(50_000)
    name = upload_blob(bucket, content)
    path = emulator.object_path(bucket.name, name)
    damaged = bytearray(path.read_bytes())
    damaged[12345] ^= 0xFF
    path.write_bytes(bytes(damaged))
    (obj,) = list_all(storage_client, bucket.name)
    with FaultyProxy(emulator.port) as proxy:
        result = read(proxy.endpoint, obj)
    assert result.ok and (result.reads, result.attempts) == (2, 2)
    assert result.sha256 == hashlib.sha256(bytes(damaged)).hexdigest()
    assert result.crc32c != obj.crc32c  # the stored crc32c still describes the original upload
    assert result.server_crc32c == obj.crc32c  # and so does the server's x-goog-hash
    first, second = proxy.stats.media_reads()
    # The confirmation came from byte 0 on a connection of its own.
    assert second.range is None and second.connection != first.connection
    assert_pinned(proxy, obj)


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
    assert result.attempts == 1 and result.reason == "HTTP 403 Injected: injected by test proxy"


@pytest.mark.parametrize(
    "body, said",
    [(b"<html>" + b"x" * 300, "<html>" + "x" * 194), (b"", ""), (b"\xffbad", "\ufffdbad")],  # not UTF-8: replaced
)
def test_an_error_that_is_not_json_is_quoted_in_part(storage_client, bucket, emulator, body, said):
    obj, _ = one_object(storage_client, bucket, 100)
    with FaultyProxy(emulator.port, faults=[Fault(status=400, message=body)]) as proxy:
        result = read(proxy.endpoint, obj)
    assert (result.failure, result.reason) == (ReadFailure.UNREADABLE, f"HTTP 400 Injected: {said}")


def test_a_healthy_read_is_one_get_pinned_to_the_listed_generation(storage_client, bucket, emulator):
    obj, sha = one_object(storage_client, bucket, 100_000)
    with FaultyProxy(emulator.port) as proxy:
        result = read(proxy.endpoint, obj)
    assert result.ok and result.sha256 == sha and (result.attempts, result.reads) == (1, 1)
    assert len(proxy.stats.media_reads()) == 1
    assert_pinned(proxy, obj)


def test_a_body_that_ends_early_on_a_clean_close_is_resumed_not_hashed_as_the_object(storage_client, bucket, emulator):
    obj, sha = one_object(storage_client, bucket, 100_000)
    with FaultyProxy(emulator.port, faults=[Fault(close_after=61_092)]) as proxy:
        result = read(proxy.endpoint, obj)
    assert result.ok and result.sha256 == sha and (result.attempts, result.reads) == (2, 1)
    assert proxy.stats.ranges == ["bytes=61092-"]
    assert_pinned(proxy, obj)


def test_a_byte_flipped_in_transit_is_read_again_and_verified(storage_client, bucket, emulator):
    obj, sha = one_object(storage_client, bucket, 100_000)
    with FaultyProxy(emulator.port, faults=[Fault(flip_at=4321)]) as proxy:
        result = read(proxy.endpoint, obj)
    assert result.ok and result.sha256 == sha and (result.attempts, result.reads) == (2, 2)
    first, second = proxy.stats.media_reads()
    assert second.range is None and second.connection != first.connection


def test_a_200_with_only_the_tail_is_never_taken_for_the_object(storage_client, bucket, emulator):
    obj, sha = one_object(storage_client, bucket, 100_000)
    faults = [Fault(cut_after=30_000), Fault(range_as_200="tail", only_ranged=True)]
    with FaultyProxy(emulator.port, faults=faults) as proxy:
        result = read(proxy.endpoint, obj)
    assert result.ok and result.sha256 == sha and (result.attempts, result.reads) == (3, 1)
    # The tail restarted the digests and could not be resumed from: the third read starts over.
    assert [record.range for record in proxy.stats.media_reads()] == [None, "bytes=30000-", None]


def test_a_server_that_ignores_range_restarts_the_digests_on_its_whole_body(storage_client, bucket, emulator):
    obj, sha = one_object(storage_client, bucket, 100_000)
    faults = [Fault(cut_after=30_000), Fault(range_as_200="whole", only_ranged=True)]
    with FaultyProxy(emulator.port, faults=faults) as proxy:
        result = read(proxy.endpoint, obj)
    # Two requests: the whole 200 body is the object, not a continuation of the first 30,000 bytes.
    assert result.ok and result.sha256 == sha and (result.attempts, result.reads) == (2, 1)


def test_a_206_that_starts_elsewhere_is_refused_and_the_object_read_from_byte_0(storage_client, bucket, emulator):
    obj, sha = one_object(storage_client, bucket, 100_000)
    faults = [Fault(cut_after=30_000), Fault(content_range_shift=1, only_ranged=True)]
    with FaultyProxy(emulator.port, faults=faults) as proxy:
        result = read(proxy.endpoint, obj)
    assert result.ok and result.sha256 == sha and (result.attempts, result.reads) == (3, 1)
    assert [record.range for record in proxy.stats.media_reads()] == [None, "bytes=30000-", None]


def test_a_reset_mid_body_is_resumed(storage_client, bucket, emulator):
    obj, sha = one_object(storage_client, bucket, 100_000)
    with FaultyProxy(emulator.port, faults=[Fault(reset_after=40_000)]) as proxy:
        result = read(proxy.endpoint, obj)
    assert result.ok and result.sha256 == sha and result.attempts == 2
    (resumed,) = proxy.stats.ranges
    assert 0 < int(resumed[6:-1]) <= 40_000


def test_a_body_longer_than_listed_is_never_complete(storage_client, bucket, emulator):
    obj, _ = one_object(storage_client, bucket, 10_000)
    shorter = replace(obj, size=9_990)
    result = read(emulator.endpoint, shorter, max_attempts=2)
    assert result.failure is ReadFailure.UNREADABLE and (result.attempts, result.reads) == (2, 0)
    assert result.reason == "long body: 9991 bytes received, the listing says 9990"


def test_retry_after_is_honoured_on_429_and_503(storage_client, bucket, emulator):
    obj, sha = one_object(storage_client, bucket, 1000)
    faults = [
        Fault(status=429, retry_after="7"),
        Fault(status=503, retry_after="3"),
        Fault(status=429, retry_after="999"),
    ]
    sleeps = []
    with FaultyProxy(emulator.port, faults=faults) as proxy:
        result = read(proxy.endpoint, obj, sleep=sleeps.append, max_attempts=4)
    assert result.ok and result.sha256 == sha and result.attempts == 4
    assert sleeps == [7.0, 3.0, 60.0]  # the last one capped


def test_a_stalled_body_is_abandoned_and_resumed(storage_client, bucket, emulator):
    obj, sha = one_object(storage_client, bucket, 20_000)
    with FaultyProxy(emulator.port, faults=[Fault(stall_after=5_000)]) as proxy:
        result = read(proxy.endpoint, obj, read_timeout=0.3)
    assert result.ok and result.sha256 == sha and result.attempts == 2
    assert proxy.stats.ranges == ["bytes=5000-"]


def test_a_dripping_body_is_abandoned_at_the_attempts_deadline(storage_client, bucket, emulator):
    # One byte every 50 ms never trips a per-socket-read timeout of 0.5 s; only the deadline
    # for the whole attempt (0.5 s + 200 B at 1 MiB/s) ends it. Undripped, it would take 10 s.
    obj, sha = one_object(storage_client, bucket, 200)
    with FaultyProxy(emulator.port, faults=[Fault(drip_every=0.05)]) as proxy:
        result = read(proxy.endpoint, obj, read_timeout=0.5, min_read_rate=1024 * 1024)
    assert result.ok and result.sha256 == sha and result.attempts == 2
    (resumed,) = proxy.stats.ranges
    assert 0 < int(resumed[6:-1]) < 200


def test_attempts_that_all_time_out_are_a_timeout_read_error(storage_client, bucket, emulator):
    obj, _ = one_object(storage_client, bucket, 200)
    faults = [Fault(drip_every=0.05, times=2), Fault(stall_after=0, times=1)]
    with FaultyProxy(emulator.port, faults=faults) as proxy:
        result = read(proxy.endpoint, obj, read_timeout=0.3, max_attempts=3)
    assert result.failure is ReadFailure.UNREADABLE and (result.attempts, result.reads) == (3, 0)
    assert result.reason.startswith("timeout: ")
    assert proxy.stats.faults_injected == 3


def test_a_wrong_server_checksum_does_not_outweigh_a_matching_sha256(storage_client, bucket, emulator):
    obj, sha = one_object(storage_client, bucket, 1000)
    with FaultyProxy(emulator.port, faults=[Fault(hash_header="crc32c=AAAAAA==,md5=x")]) as proxy:
        result = read(proxy.endpoint, obj)
    assert result.ok and result.sha256 == sha and (result.attempts, result.reads) == (1, 1)
    assert result.server_crc32c == "AAAAAA==" and result.crc32c == obj.crc32c
    assert len(proxy.stats.media_reads()) == 1


def test_reads_that_keep_disagreeing_are_unstable(storage_client, bucket, emulator):
    obj, _ = one_object(storage_client, bucket, 1000)
    faults = [Fault(flip_at=1), Fault(flip_at=2), Fault(flip_at=3)]
    with FaultyProxy(emulator.port, faults=faults) as proxy:
        result = read(proxy.endpoint, obj)
    assert result.failure is ReadFailure.UNSTABLE and (result.attempts, result.reads) == (3, 3)
    assert result.reason.startswith("unstable reads: 3 complete reads gave 3 different digests")


def test_media_urls_escape_the_whole_name_and_pin_the_generation():
    obj = ListedObject("artifacts.p.appspot.com", PREFIX + "sha256:" + "a" * 64, 1700000000000001, 5)
    assert gcs.media_url("http://h:1", obj) == (
        "http://h:1/download/storage/v1/b/artifacts.p.appspot.com/o/"
        "containers%2Fimages%2Fsha256%3A" + "a" * 64 + "?alt=media&generation=1700000000000001"
    )
    assert gcs.media_url("http://h:1", ListedObject("b", "x y", None, 5)) == (
        "http://h:1/download/storage/v1/b/b/o/x%20y?alt=media"
    )


def test_healthy_reads_share_the_pooled_connection_and_ask_for_stored_bytes(storage_client, bucket, emulator):
    for i in range(3):
        upload_blob(bucket, f"pooled {i}".encode() * 100)
    listed = list_all(storage_client, bucket.name)
    with FaultyProxy(emulator.port) as proxy:
        session, base = gcs.make_session(proxy.endpoint, 4)
        results = [
            gcs.read_and_hash(
                session, base, obj, chunk_size=4096, max_attempts=1, expected_sha256=obj.name.rpartition(":")[2]
            )
            for obj in listed
        ]
        session.close()
    assert [(r.ok, r.reads, r.attempts) for r in results] == [(True, 1, 1)] * 3
    reads = proxy.stats.media_reads()
    # Keep-alive: only a re-read after a mismatch opens a connection of its own.
    assert len({record.connection for record in reads}) == 1
    # Accept-Encoding: gzip, so GCS never decompresses a gzip-stored object before it is hashed.
    assert [record.headers.get("accept-encoding") for record in reads] == ["gzip"] * 3


def test_a_fresh_session_keeps_the_credentials_but_not_the_connections():
    credentials = AnonymousCredentials()
    pooled = AuthorizedSession(credentials)
    fresh = gcs.fresh_session(pooled)
    assert isinstance(fresh, AuthorizedSession) and fresh.credentials is credentials and fresh is not pooled
    assert type(gcs.fresh_session(gcs.make_session("http://127.0.0.1:9", 2)[0])) is requests.Session


@pytest.mark.parametrize(
    "make, pool_size",
    [(lambda: gcs.make_session("http://e:1", 7)[0], 7), (lambda: gcs.fresh_session(requests.Session()), 1)],
)
def test_sessions_never_retry_on_their_own_and_pool_as_sized(make, pool_size):
    # Retries inside urllib3 would hide attempts from the read protocol, which counts them.
    session = make()
    adapter = session.get_adapter("http://example/")
    assert session.get_adapter("https://example/") is adapter
    assert adapter.max_retries.total == 0 and adapter.max_retries.connect is None
    assert (adapter._pool_connections, adapter._pool_maxsize) == (1, pool_size)


def test_progress_sees_every_byte_hashed(storage_client, bucket, emulator):
    obj, sha = one_object(storage_client, bucket, 150_000)
    seen = []
    result = read(emulator.endpoint, obj, on_bytes=seen.append)
    assert result.ok and sum(seen) == 150_000 and len(seen) >= 3  # 64 KiB chunks


def test_an_error_in_the_client_is_that_objects_read_error_only(storage_client, bucket, emulator):
    obj, _ = one_object(storage_client, bucket, 1000)

    def broken_progress(n):
        raise RuntimeError("progress is broken")

    result = read(emulator.endpoint, obj, on_bytes=broken_progress)
    assert result.failure is ReadFailure.UNREADABLE and result.attempts == 1
    assert result.reason == "RuntimeError: progress is broken"


def test_a_read_that_fails_after_a_mismatch_says_the_mismatch_was_unconfirmed(storage_client, bucket, emulator):
    obj, _ = one_object(storage_client, bucket, 1000)
    with FaultyProxy(emulator.port, faults=[Fault(flip_at=10), Fault(status=403)]) as proxy:
        result = read(proxy.endpoint, obj)
    assert result.failure is ReadFailure.UNREADABLE and (result.http_status, result.reads, result.attempts) == (
        403,
        1,
        2,
    )
    assert result.reason.endswith("; 1 earlier complete read(s) did not match the name, unconfirmed")


def test_an_unpinned_object_that_is_gone_is_vanished(storage_client, bucket, emulator):
    name = upload_blob(bucket, b"unpinned")
    (obj,) = list_all(storage_client, bucket.name)
    bucket.blob(name).delete()
    result = read(emulator.endpoint, replace(obj, generation=None))
    assert (result.failure, result.http_status, result.reason) == (
        ReadFailure.VANISHED,
        404,
        "object not found when read",
    )


@pytest.mark.parametrize(
    "fault, status, reason",
    [
        (dict(status=503, times=3), 503, "HTTP 503 Injected"),
        # Resumed twice (206), 100 bytes each time: 300 in all.
        (dict(close_after=100, times=3), 206, "short body: 300 bytes received, the listing says 1000"),
    ],
)
def test_the_last_status_and_reason_are_kept_when_attempts_run_out(
    storage_client, bucket, emulator, fault, status, reason
):
    obj, _ = one_object(storage_client, bucket, 1000)
    # A new Fault each run: a fault counts down its uses.
    with FaultyProxy(emulator.port, faults=[Fault(**fault)]) as proxy:
        result = read(proxy.endpoint, obj)
    assert (result.failure, result.http_status, result.reason, result.attempts) == (
        ReadFailure.UNREADABLE,
        status,
        reason,
        3,
    )


def test_a_server_that_keeps_sending_the_wrong_content_range_is_a_read_error(storage_client, bucket, emulator):
    obj, _ = one_object(storage_client, bucket, 1000)
    faults = [Fault(cut_after=100), Fault(content_range_shift=5, only_ranged=True)]
    with FaultyProxy(emulator.port, faults=faults) as proxy:
        result = read(proxy.endpoint, obj, max_attempts=2)
    assert (result.failure, result.http_status, result.attempts) == (ReadFailure.UNREADABLE, 206, 2)
    assert result.reason == "206 Content-Range bytes 105-999/1000 starts at 105, asked 100"


def test_a_contradicting_server_checksum_is_remembered_across_a_resume(storage_client, bucket, emulator):
    obj, sha = one_object(storage_client, bucket, 5000)
    faults = [
        Fault(hash_header="crc32c=AAAAAA==", close_after=1000),
        Fault(hash_header=f"crc32c={obj.crc32c}", only_ranged=True),
    ]
    with FaultyProxy(emulator.port, faults=faults) as proxy:
        result = read(proxy.endpoint, obj)
    assert result.ok and result.sha256 == sha and result.attempts == 2
    assert result.server_crc32c == "AAAAAA=="


@pytest.mark.parametrize(
    "value",
    [
        "2024-01-01T00:00:00Z",
        "2024-01-01T00:00:00.5Z",
        "2024-02-29T23:59:59.123Z",
        "2024-01-01T00:00:00.123456789Z",  # nanoseconds: truncated, as the Blob's parser does
    ],
)
def test_listing_times_parse_as_a_blob_would(value):
    from google.cloud._helpers import _rfc3339_nanos_to_datetime

    assert gcs._listed_time(value) == _rfc3339_nanos_to_datetime(value)
    assert gcs._listed_time(value).tzinfo is not None


def test_a_listing_time_not_in_gcs_form_is_refused_as_a_blob_would():
    with pytest.raises(ValueError):
        gcs._listed_time("2024-01-01T00:00:00+02:00")


def test_headers_dripped_a_byte_at_a_time_are_abandoned_at_the_attempts_deadline(storage_client, bucket, emulator):
    # Issue 18: a head trickled one byte every 0.05 s never trips the per-read timeout of 0.5 s;
    # before, the attempt waited for the whole head (hundreds of bytes: tens of seconds), then the body.
    obj, sha = one_object(storage_client, bucket, 200)
    with FaultyProxy(emulator.port, faults=[Fault(drip_head_every=0.05)]) as proxy:
        started = time.monotonic()
        result = read(proxy.endpoint, obj, read_timeout=0.5, min_read_rate=1024 * 1024)
        took = time.monotonic() - started
    assert result.ok and result.sha256 == sha and result.attempts == 2
    assert took < 3  # the first attempt's deadline is 0.5 s + 200 B at 1 MiB/s
    assert [record.fault for record in proxy.stats.media_reads()] == ["drip_head_every=0.05", None]


def test_an_attempt_past_its_deadline_says_so_not_that_no_byte_came(storage_client, bucket, emulator):
    # A byte every 0.3 s, never a 0.5 s silence: the socket read that times out is the one the
    # attempt's 0.5 s deadline cut short, and the reason must say that, not "no byte for 0.5 s".
    obj, _ = one_object(storage_client, bucket, 200)
    with FaultyProxy(emulator.port, faults=[Fault(drip_every=0.3, times=2)]) as proxy:
        result = read(proxy.endpoint, obj, read_timeout=0.5, min_read_rate=1024 * 1024, max_attempts=2)
    assert result.failure is ReadFailure.UNREADABLE and result.attempts == 2
    assert result.reason.startswith("timeout: the attempt passed its 0.5 s deadline after "), result.reason
    assert proxy.stats.faults_injected == 2


def test_a_listing_page_cut_by_a_clean_close_is_retried(storage_client, bucket, emulator):
    # Issue 18: no Content-Length and a clean close after 60 bytes: the page ends mid-JSON
    # ("Unterminated string"), which failed the run with nothing scanned. It is a transient fault.
    names = {upload_blob(bucket, f"listed {i}".encode()) for i in range(5)}
    listing = f"/b/{bucket.name}/o?"
    with FaultyProxy(emulator.port, faults=[Fault(path_contains=listing, close_after=60)]) as proxy:
        client = gcs.make_client(proxy.endpoint)
        listed = list_all(client, bucket.name)
    assert sorted(o.name for o in listed) == sorted(names)
    assert proxy.stats.faults_injected == 1
