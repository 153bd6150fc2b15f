"""Buckets on the session's one emulator, which outlives every test that uses it."""

from __future__ import annotations

from pathlib import Path

from google.cloud import storage

from pipeline.adapters import gcs

PREFIX = "containers/images/"


def fresh_bucket(client: storage.Client, name: str) -> storage.Bucket:
    """The bucket ``name``, created, or emptied of whatever an earlier test left in it."""
    bucket = client.lookup_bucket(name)
    if bucket is None:
        return client.create_bucket(name)
    for blob in client.list_blobs(name):
        blob.delete()
    return bucket


def seed_bucket(emulator, name: str, blobs: dict[str, Path]) -> tuple[storage.Bucket, dict[str, int]]:
    """Upload ``blobs`` as GCR does (``containers/images/<digest>``); returns the listed generations."""
    bucket = fresh_bucket(gcs.make_client(emulator.endpoint), name)
    for digest, data in sorted(blobs.items()):
        bucket.blob(PREFIX + digest).upload_from_filename(str(data))
    return bucket, listed_generations(emulator, name)


def listed_generations(emulator, name: str) -> dict[str, int]:
    """``{object name: generation}`` of every object under ``containers/images/`` of bucket ``name``."""
    client = gcs.make_client(emulator.endpoint)
    return {blob.name: blob.generation for blob in client.list_blobs(name, prefix=PREFIX)}
