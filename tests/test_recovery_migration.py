"""Migration audit core: blobs that successor images use, the per-bucket line, in_registry_only."""

from collections import Counter

import pytest

from pipeline.config import ConfigError, parse_config
from pipeline.core import migration as mg

B = "artifacts.p.appspot.com"
OTHER = "eu.artifacts.p.appspot.com"


def ref(repo, manifest, successor, role="layer", bucket=None, tags=(), size=10):
    return {
        "repository": repo,
        "manifest_digest": manifest,
        "images": [f"{repo}@{manifest}"],
        "tags": list(tags),
        "role": role,
        "size": size,
        "bucket": bucket,
        "successor": successor,
    }


def blob(bucket, size):
    return {"bucket": bucket, "object": "containers/images/x", "size": size, "intact": True}


def test_a_blob_a_successor_image_uses_counts_as_migrated_once_per_image():
    refs = [
        ref("gcr.io/p/app", "sha256:m1", True, tags=["gcr.io/p/app:v1"]),
        ref("gcr.io/p/app", "sha256:m1", True, role="manifest"),
        ref("gcr.io/p/app", "sha256:m2", True, tags=["gcr.io/p/app:v2"]),
        ref("old/app", "sha256:m3", False),
    ]
    counts, images = mg.blob_migration(refs, [blob(B, 100), blob(OTHER, 100)])
    assert counts == Counter(
        {(B, mg.SUCCESSOR_BLOBS): 1, (B, mg.SUCCESSOR_BYTES): 100, (OTHER, mg.SUCCESSOR_BLOBS): 1,
         (OTHER, mg.SUCCESSOR_BYTES): 100}
    )  # fmt: skip
    assert sorted(key for key, _ in images) == [
        (B, "gcr.io/p/app@sha256:m1"),
        (B, "gcr.io/p/app@sha256:m2"),
        (OTHER, "gcr.io/p/app@sha256:m1"),
        (OTHER, "gcr.io/p/app@sha256:m2"),
    ]


def test_a_blob_only_other_sources_or_none_use_belongs_to_no_successor_image():
    counts, images = mg.blob_migration([ref("old/app", "sha256:m3", False)], [blob(B, 7)])
    assert counts == Counter({(B, mg.OTHER_BLOBS): 1, (B, mg.OTHER_BYTES): 7}) and images == []
    scoped = [ref("gcr.io/p/app", "sha256:m1", True, bucket=OTHER)]
    counts, _ = mg.blob_migration(scoped, [blob(B, 5)])
    assert counts == Counter({(B, mg.OTHER_BLOBS): 1, (B, mg.OTHER_BYTES): 5})


def test_migrated_image_rows_and_the_bucket_line():
    parts = [
        {"repository": "r", "manifest_digest": "sha256:m", "tags": ["r:b"], "blobs": 1, "bytes": 1500},
        {"repository": "r", "manifest_digest": "sha256:m", "tags": ["r:a"], "blobs": 1, "bytes": 500},
    ]
    row = mg.migrated_image_row(B, "r@sha256:m", parts)
    assert (row["tags"], row["blobs_in_bucket"], row["bytes_in_bucket"]) == (["r:a", "r:b"], 2, 2000)
    counts = Counter(
        {
            (B, mg.SUCCESSOR_BLOBS): 3,
            (B, mg.SUCCESSOR_BYTES): 2_500_000,
            (B, mg.OTHER_BLOBS): 1,
            (B, mg.OTHER_BYTES): 12,
        }
    )
    assert mg.successor_table(counts) == {
        B: {"successor_blobs": 3, "successor_bytes": 2_500_000, "other_blobs": 1, "other_bytes": 12}
    }
    assert mg.bucket_lines(mg.successor_table(counts)) == [
        f"{B}: 3 blobs / 2.5 MB belong to images in the successor registry; 1 blobs / 12 B belong to no image there"
    ]


def test_split_and_the_in_registry_only_row():
    refs = [ref("gcr.io/p/new", "sha256:m9", True, size=42), ref("old/app", "sha256:m3", False)]
    others, successor = mg.split_successor(refs)
    assert [r["repository"] for r in others] == ["old/app"] and [r["repository"] for r in successor] == ["gcr.io/p/new"]
    row = mg.registry_only_finding(
        "sha256:" + "a" * 64, B, successor, {"images": ["gcr.io/p/new@sha256:m9"], "tags": []}
    )
    assert (row["kind"], row["severity"], row["size"], row["bucket"]) == ("in_registry_only", "info", 42, B)
    assert "held by the successor registry only (1 image(s)); not in bucket " + B in row["detail"]


def test_role_successor_is_a_source_key_with_one_value():
    def load(source):
        return parse_config({"source": {"buckets": [B]}, "manifests": {"sources": [source]}}, "test.yaml")

    assert load({"registry": "https://gcr.io", "role": "successor"}).manifests.sources[0].role == "successor"
    assert load({"registry": "https://gcr.io"}).manifests.sources[0].role is None
    with pytest.raises(ConfigError, match="role: expected successor"):
        load({"registry": "https://gcr.io", "role": "primary"})
    # Manifest files copied from the successor (as the demo plants them) may carry the role too.
    assert load({"directory": "/tmp/x", "role": "successor"}).manifests.sources[0].role == "successor"


def test_the_cross_check_calls_a_blob_only_successor_images_need_in_registry_only():
    from pipeline.core.crosscheck import classify_joined

    digest = "sha256:" + "c" * 64
    only_successor = [ref("gcr.io/p/new", "sha256:m9", True), ref("gcr.io/p/new", "sha256:m9", True, role="config")]
    [row] = classify_joined(digest, only_successor, [])
    assert (row["kind"], row["severity"], row["images"]) == ("in_registry_only", "info", ["gcr.io/p/new@sha256:m9"])
    mixed = [*only_successor, ref("old/app", "sha256:m3", False)]
    [row] = classify_joined(digest, mixed, [])
    assert (row["kind"], row["images"]) == ("missing_blob", ["old/app@sha256:m3"])
    assert classify_joined(digest, only_successor, [blob(B, 10)]) == []


def test_google_auth_asks_for_a_read_only_token(registry, monkeypatch):
    """A fake for Application Default Credentials only (nothing local stands in for Google's token
    service); the registry is the real docker-registry, which ignores the Basic header."""
    import datetime

    import google.auth
    import google.oauth2.credentials

    from jobs.images import make_image, random_layer
    from pipeline.adapters.registry import RegistryClient

    asked = []

    def default(scopes=None):
        asked.append(scopes)
        expiry = datetime.datetime.utcnow() + datetime.timedelta(hours=1)
        return google.oauth2.credentials.Credentials(token="read-only-token", expiry=expiry), "p"

    monkeypatch.setattr(google.auth, "default", default)
    registry.push(make_image([random_layer(5101, 500)], oci=False), "p/app", "v1")
    client = RegistryClient(registry.url, auth="google", requests_per_second=1000)
    assert list(client.catalog()) == ["p/app"]
    assert asked == [["https://www.googleapis.com/auth/devstorage.read_only"]]


def test_blob_migration_rows_are_whole_and_a_blob_of_unknown_size_counts_zero_bytes():
    refs = [
        ref("gcr.io/p/app", "sha256:m1", True, tags=["gcr.io/p/app:v1"]),
        ref("gcr.io/p/app", "sha256:m1", True, tags=["gcr.io/p/app:v1"]),  # the same image twice: once
        ref("gcr.io/p/app", "sha256:m2", True, bucket=B, tags=["gcr.io/p/app:v2"]),
    ]
    counts, images = mg.blob_migration(refs, [blob(B, 100), blob(OTHER, None)])
    assert counts == Counter(
        {(B, mg.SUCCESSOR_BLOBS): 1, (B, mg.SUCCESSOR_BYTES): 100, (OTHER, mg.SUCCESSOR_BLOBS): 1,
         (OTHER, mg.SUCCESSOR_BYTES): 0}
    )  # fmt: skip
    assert images == [
        (
            (B, "gcr.io/p/app@sha256:m1"),
            {"repository": "gcr.io/p/app", "manifest_digest": "sha256:m1", "tags": ["gcr.io/p/app:v1"],
             "blobs": 1, "bytes": 100},
        ),
        (
            (B, "gcr.io/p/app@sha256:m2"),
            {"repository": "gcr.io/p/app", "manifest_digest": "sha256:m2", "tags": ["gcr.io/p/app:v2"],
             "blobs": 1, "bytes": 100},
        ),
        (
            (OTHER, "gcr.io/p/app@sha256:m1"),
            {"repository": "gcr.io/p/app", "manifest_digest": "sha256:m1", "tags": ["gcr.io/p/app:v1"],
             "blobs": 1, "bytes": 0},
        ),
    ]  # fmt: skip
    counts, _ = mg.blob_migration([], [blob(B, None)])
    assert counts == Counter({(B, mg.OTHER_BLOBS): 1, (B, mg.OTHER_BYTES): 0})


def test_a_migrated_image_row_is_whole():
    parts = [
        {"repository": "r", "manifest_digest": "sha256:m", "tags": ["r:b", "r:a"], "blobs": 2, "bytes": 1500},
        {"repository": "r", "manifest_digest": "sha256:m", "tags": ["r:a"], "blobs": 1, "bytes": 500},
    ]
    assert mg.migrated_image_row(B, "r@sha256:m", parts) == {
        "bucket": B,
        "image": "r@sha256:m",
        "repository": "r",
        "manifest_digest": "sha256:m",
        "tags": ["r:a", "r:b"],
        "blobs_in_bucket": 3,
        "bytes_in_bucket": 2000,
    }


@pytest.mark.parametrize(
    "size, shown",
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1.0 kB"),
        (999_949, "999.9 kB"),
        (999_999, "1.0 MB"),
        (10**6, "1.0 MB"),
        (10**9, "1.0 GB"),
    ],
)
def test_bucket_line_sizes(size, shown):
    table = {B: {"successor_blobs": 1, "successor_bytes": size, "other_blobs": 2, "other_bytes": size}}
    assert mg.bucket_lines(table) == [
        f"{B}: 1 blobs / {shown} belong to images in the successor registry; 2 blobs / {shown} belong to no image there"
    ]


def test_the_in_registry_only_row_is_whole_and_names_no_size_it_cannot_tell():
    named = {"images": ["gcr.io/p/new@sha256:m9", "gcr.io/p/new@sha256:m8"], "tags": ["gcr.io/p/new:v9"]}
    refs = [ref("gcr.io/p/new", "sha256:m9", True, size=42), ref("gcr.io/p/new", "sha256:m8", True, size=None)]
    row = mg.registry_only_finding("sha256:" + "a" * 64, None, refs, named)
    assert row == {
        **row,
        "kind": "in_registry_only",
        "severity": "info",
        "bucket": None,
        "digest": "sha256:" + "a" * 64,
        "size": 42,
        "images": named["images"],
        "tags": named["tags"],
        "detail": "held by the successor registry only (2 image(s)); not in any scanned bucket, "
        "as expected for images pushed after the migration",
    }
    two_sizes = [ref("r", "sha256:m9", True, size=42), ref("r", "sha256:m8", True, size=43)]
    assert mg.registry_only_finding("sha256:" + "a" * 64, B, two_sizes, named)["size"] is None


def test_a_migrated_image_row_of_one_part():
    part = {"repository": "r", "manifest_digest": "sha256:m", "tags": [], "blobs": 1, "bytes": 5}
    row = mg.migrated_image_row(B, "r@sha256:m", [part])
    assert (row["repository"], row["manifest_digest"], row["blobs_in_bucket"]) == ("r", "sha256:m", 1)


def test_a_blob_no_successor_image_uses_does_not_stop_the_next():
    refs = [ref("gcr.io/p/app", "sha256:m1", True, bucket=OTHER)]
    counts, images = mg.blob_migration(refs, [blob(B, 5), blob(OTHER, 7)])
    assert counts == Counter(
        {(B, mg.OTHER_BLOBS): 1, (B, mg.OTHER_BYTES): 5, (OTHER, mg.SUCCESSOR_BLOBS): 1, (OTHER, mg.SUCCESSOR_BYTES): 7}
    )
    assert [key for key, _ in images] == [(OTHER, "gcr.io/p/app@sha256:m1")]
