"""What the scan learns about buckets before reading them: bucket facts, GCR bucket discovery, the object estimate.

Against the real gcp-storage-emulator; the fault proxy (tests/support/proxy.py) in front of it
refuses or garbles a bucket GET, and shows the exact listing request each call sends.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
from google.api_core import exceptions as gapi

from pipeline.adapters import gcs
from tests.support.buckets import fresh_bucket
from tests.support.proxy import Fault, FaultyProxy

PREFIX = "containers/images/"

NOTHING_KNOWN = {
    "location": None,
    "location_type": None,
    "storage_class": None,
    "soft_delete_retention_seconds": None,
    "soft_delete_reported": False,
}


def query(path: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(path).query)


def test_bucket_facts_of_a_readable_bucket_are_whole(storage_client, bucket):
    assert gcs.bucket_facts(storage_client, bucket.name) == {
        "location": "US",
        "location_type": "multi-region",
        "storage_class": "STANDARD",
        "soft_delete_retention_seconds": 7 * 86400,
        "soft_delete_reported": True,
        "error": None,
    }


@pytest.mark.parametrize(
    "policy, seconds, reported",
    [
        ({"retentionDurationSeconds": "0"}, 0, True),  # soft delete off: reported, and zero
        ({"retentionDurationSeconds": "90"}, 90, True),
        ({}, None, False),  # a policy that names no retention says nothing about it
        ({"retentionDurationSeconds": "abc"}, None, False),
        ({"retentionDurationSeconds": None}, None, False),
        ("7 days", None, False),  # not an object at all
    ],
)
def test_soft_delete_is_reported_only_when_the_bucket_states_a_whole_number_of_seconds(
    storage_client, bucket, policy, seconds, reported
):
    # The emulator stores what a PATCH sends, so it serves each policy as given.
    bucket._patch_property("softDeletePolicy", policy)
    bucket.patch()
    facts = gcs.bucket_facts(storage_client, bucket.name)
    assert (facts["soft_delete_retention_seconds"], facts["soft_delete_reported"]) == (seconds, reported)
    assert (facts["location"], facts["error"]) == ("US", None)


def test_a_missing_bucket_is_recorded_with_its_status_and_message(storage_client, emulator):
    facts = gcs.bucket_facts(storage_client, "no-such-bucket-here")
    assert facts == {
        **NOTHING_KNOWN,
        "error": "bucket GET answered HTTP 404: GET "
        f"{emulator.endpoint}/storage/v1/b/no-such-bucket-here?projection=noAcl&prettyPrint=false: unknown error",
    }


def test_a_refused_bucket_get_is_recorded_not_fatal(bucket, emulator):
    # roles/storage.objectViewer does not grant storage.buckets.get: GCS answers 403.
    with FaultyProxy(emulator.port, faults=[Fault(path_contains=f"/b/{bucket.name}?", status=403)]) as proxy:
        facts = gcs.bucket_facts(gcs.make_client(proxy.endpoint), bucket.name)
    assert facts == {
        **NOTHING_KNOWN,
        "error": f"bucket GET answered HTTP 403: GET {proxy.endpoint}/storage/v1/b/{bucket.name}"
        "?projection=noAcl&prettyPrint=false: injected by test proxy",
    }


def test_a_bucket_get_that_is_not_json_is_recorded_by_its_error_type(bucket, emulator):
    fault = Fault(path_contains=f"/b/{bucket.name}?", status=200, message=b"<html>sign in</html>")
    with FaultyProxy(emulator.port, faults=[fault]) as proxy:
        facts = gcs.bucket_facts(gcs.make_client(proxy.endpoint), bucket.name)
    assert facts == {
        **NOTHING_KNOWN,
        "error": "bucket GET failed: JSONDecodeError: Expecting value: line 1 column 1 (char 0)",
    }


def test_discovery_keeps_the_gcr_buckets_of_the_project_sorted(storage_client, emulator):
    names = ["zz-test-discovery.artifacts.p.appspot.com", "aa-test-discovery.artifacts.p.appspot.com"]
    for name in [*names, "aa-test-discovery-not-gcr"]:
        if storage_client.lookup_bucket(name) is None:
            storage_client.create_bucket(name)
    with FaultyProxy(emulator.port) as proxy:
        client = gcs.make_client(proxy.endpoint)
        found = gcs.discover_gcr_buckets(client, "proj-x", lambda name: "test-discovery." in name)
    assert found == sorted(names)
    (listing,) = proxy.stats.paths
    assert query(listing)["project"] == ["proj-x"]  # the project asked for, not the client's own


def test_discovery_uses_the_callers_retry_policy(storage_client, emulator):
    # The launcher bounds discovery with its own policy; one that never retries surfaces the 503.
    never = gcs.storage_retry.DEFAULT_RETRY.with_predicate(lambda err: False)
    with FaultyProxy(emulator.port, faults=[Fault(path_contains="/storage/v1/b?", status=503)]) as proxy:
        with pytest.raises(gapi.ServiceUnavailable):
            gcs.discover_gcr_buckets(gcs.make_client(proxy.endpoint), "proj-x", lambda name: True, retry=never)


@pytest.fixture(scope="module")
def sampled_bucket(emulator):
    """Three objects under ``sha256:0`` (the sixteenth sampled) and five elsewhere under the prefix."""
    bucket = fresh_bucket(gcs.make_client(emulator.endpoint), "test-gcs-adapter-estimate.appspot.com")
    for digit, count in (("0", 3), ("1", 2), ("f", 3)):
        for i in range(count):
            bucket.blob(f"{PREFIX}sha256:{digit}{i:063x}").upload_from_string(b"x")
    bucket.blob("containers/repositories/sha256:0x").upload_from_string(b"not under the prefix")
    return bucket


@pytest.mark.parametrize(
    "up_to, estimate, max_results",
    [
        (10_000, 48, 626),  # the whole sixteenth fits: 3 x 16
        (48, 48, 4),
        (32, 48, 3),  # up_to // 16 + 1 = 3 names: still all of them
        (31, 32, 2),  # cut short at 2 names: "more than about up_to"
        (15, 16, 1),
        (0, 16, 1),
    ],
)
def test_the_estimate_lists_one_sixteenth_of_the_names_and_no_more_than_needed(
    sampled_bucket, emulator, up_to, estimate, max_results
):
    with FaultyProxy(emulator.port) as proxy:
        client = gcs.make_client(proxy.endpoint)
        assert gcs.estimate_objects(client, sampled_bucket.name, PREFIX, up_to) == estimate
    (listing,) = [path for path in proxy.stats.paths if "/o?" in path]
    asked = query(listing)
    # Only names, only the sixteenth, and a page no longer than the count that decides the estimate.
    assert (asked["prefix"], asked["maxResults"], asked["fields"]) == (
        [PREFIX + "sha256:0"],
        [str(max_results)],
        ["items(name)"],
    )


def test_an_empty_prefix_estimates_zero(storage_client, bucket):
    assert gcs.estimate_objects(storage_client, bucket.name, PREFIX, 10_000) == 0


@pytest.mark.parametrize(
    "error, retried",
    [
        (gapi.ServiceUnavailable("x"), True),
        (gapi.TooManyRequests("x"), True),
        (ConnectionError("reset"), True),
        (json.JSONDecodeError("Unterminated string", '{"items": [{"na', 13), True),  # a page cut mid-JSON
        (gapi.Forbidden("x"), False),
        (gapi.NotFound("x"), False),
    ],
)
def test_a_listing_retries_transient_faults_and_a_page_cut_mid_json_but_not_a_refusal(error, retried):
    assert gcs._listing_fault(error) is retried
