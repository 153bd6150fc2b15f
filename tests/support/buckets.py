"""Buckets on the session's one emulator, which outlives every test that uses it."""

from __future__ import annotations

from google.cloud import storage


def fresh_bucket(client: storage.Client, name: str) -> storage.Bucket:
    """The bucket ``name``, created, or emptied of whatever an earlier test left in it."""
    bucket = client.lookup_bucket(name)
    if bucket is None:
        return client.create_bucket(name)
    for blob in client.list_blobs(name):
        blob.delete()
    return bucket
