"""A real ``gcp-storage-emulator`` in its own process on a free loopback port.

Used by the demo, the tests and the benchmarks. It runs in a separate process so
that it never shares a GIL with the scanner it serves.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path

STORAGE_DIR = ".cloudstorage"  # the emulator's own default, under STORAGE_BASE


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process(process: subprocess.Popen, grace: float = 5.0) -> None:
    """Terminate a local server, and kill it if it has not exited after ``grace`` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_until_serving(process: subprocess.Popen, endpoint: str, timeout: float, name: str) -> None:
    """Returns once a started GCS server answers its bucket list; ``RuntimeError`` naming it
    (with the end of its stderr, when piped) if it exits first or stays silent for ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = process.stderr.read().decode(errors="replace")[-2000:] if process.stderr else ""
            raise RuntimeError(f"{name} exited with {process.returncode}: {err}")
        try:
            with urllib.request.urlopen(f"{endpoint}/storage/v1/b", timeout=1):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.05)
    raise RuntimeError(f"{name} did not answer on {endpoint} within {timeout}s")


class Emulator:
    """Start with ``with Emulator(data_dir) as emu:``; ``emu.endpoint`` is its URL."""

    def __init__(self, data_dir: str | Path, port: int | None = None, startup_timeout: float = 30.0):
        self.data_dir = Path(data_dir).resolve()
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen | None = None

    def object_path(self, bucket: str, name: str) -> Path:
        """Where the emulator keeps an object's bytes: edit it to damage the object behind its back."""
        return self.data_dir / STORAGE_DIR / bucket / name

    def start(self) -> Emulator:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, STORAGE_BASE=str(self.data_dir), STORAGE_DIR=STORAGE_DIR)
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gcp_storage_emulator",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--quiet",
            ],
            env=env,
            cwd=self.data_dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            wait_until_serving(self._process, self.endpoint, self._startup_timeout, "gcp-storage-emulator")
        except RuntimeError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._process is not None:
            stop_process(self._process)
            if self._process.stderr:
                self._process.stderr.close()
        self._process = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def bulk_seed(data_dir: str | Path, bucket: str, objects: Iterable[tuple[str, bytes]]) -> int:
    """Write objects into a stopped emulator's store through its own storage layer.

    Uploading through the API rewrites the emulator's whole metadata file per object
    (about 11 objects/s by 5,000), so large corpora are written here with the
    emulator's own object resources and checksums, and its metadata saved once.
    Call it before ``Emulator.start()`` on the same ``data_dir``.
    """
    data_dir = Path(data_dir).resolve()
    from gcp_storage_emulator.handlers import buckets as bucket_handlers
    from gcp_storage_emulator.handlers import objects as object_handlers
    from gcp_storage_emulator.storage import Storage

    storage = Storage(data_dir=str(data_dir))
    save = storage._write_config_to_file
    storage._write_config_to_file = lambda: None  # saved once below
    try:
        if bucket not in storage.buckets:
            bucket_handlers.create_bucket(bucket, storage)
        count = 0
        for name, content in objects:
            resource = object_handlers._make_object_resource(
                "http://127.0.0.1", bucket, name, "application/octet-stream", str(len(content))
            )
            resource = object_handlers._checksums(content, resource)
            storage.create_file(bucket, name, content, resource)
            count += 1
    finally:
        storage._write_config_to_file = save
    save()
    return count
