"""Shared fixtures: a real gcp-storage-emulator on a free loopback port.

No test talks to the network beyond 127.0.0.1, and none needs credentials.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# google-auth must never probe the metadata server in tests (a 20-second stall).
os.environ.setdefault("NO_GCE_CHECK", "true")

from jobs.emulator import Emulator  # noqa: E402
from pipeline.adapters import gcs  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

pytest_plugins = ["tests.registry_fixtures"]


@pytest.fixture(scope="session")
def emulator(tmp_path_factory) -> Emulator:
    """One emulator for the session; each test uses buckets of its own (see ``bucket``)."""
    with Emulator(tmp_path_factory.mktemp("gcs")) as emu:
        yield emu


@pytest.fixture
def storage_client(emulator):
    return gcs.make_client(emulator.endpoint)


@pytest.fixture
def bucket(request, storage_client):
    """A fresh, empty bucket named after the test."""
    digest = abs(hash(request.node.nodeid)) % 10**10
    name = f"test-{digest}.appspot.com"
    existing = storage_client.lookup_bucket(name)
    if existing is not None:
        for blob in storage_client.list_blobs(name):
            blob.delete()
        return existing
    return storage_client.create_bucket(name)
