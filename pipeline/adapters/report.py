"""The report location: a local directory or ``gs://`` prefix, through Beam's FileSystems.

Beam's FileSystems gives one code path for both, on the launcher and on workers.
"""

from __future__ import annotations

import json
import os
from typing import Any

from apache_beam.io.filesystem import BeamIOError
from apache_beam.io.filesystems import FileSystems

SUMMARY_FILE = "summary.json"
FINDINGS_PREFIX = "findings"
VERIFIED_PREFIX = "verified"
ROWS_SUFFIX = ".jsonl"


def anonymous_gcs_for_emulator() -> bool:
    """Against a GCS emulator (``STORAGE_EMULATOR_HOST`` set), let Beam's ``gs://`` filesystem connect
    anonymously at once. True when it applies.

    Beam looks for Google credentials once per process and, finding none, retries
    ``google.auth.default()`` with backoff for about 25 s before it falls back to an
    anonymous client, which is what an emulator needs anyway. Settling that cache to "no
    credentials" first skips the wait. It is Beam's internal cache (``apache_beam.internal.
    gcp.auth``, Beam 2.77); if it moves, the only cost is the wait again. Real GCS is never
    affected: the variable is set only for emulators (``jobs/launcher.py``).
    """
    if not os.environ.get("STORAGE_EMULATOR_HOST"):
        return False
    try:
        from apache_beam.internal.gcp import auth

        cache = auth._Credentials
        with cache._credentials_lock:
            if not cache._credentials_init:
                cache._credentials = None
                cache._credentials_init = True
    except (ImportError, AttributeError):
        return False
    return True


# Workers inherit the launcher's environment and import this module before they write a report file.
anonymous_gcs_for_emulator()


def run_folder(output_root: str, run_id: str) -> str:
    """``<root>/<run_id>``; a local root is made absolute so that every worker and reader agrees."""
    anonymous_gcs_for_emulator()
    if not output_root.startswith("gs://"):
        output_root = os.path.abspath(output_root)
    return FileSystems.join(output_root, run_id)


def clear_run_folder(run_dir: str) -> int:
    """Remove what an earlier run with the same id left, so two runs never mix. Returns files removed."""
    anonymous_gcs_for_emulator()
    if run_dir.startswith("gs://"):
        matched = FileSystems.match([run_dir.rstrip("/") + "/**"])[0].metadata_list
        paths = [m.path for m in matched]
        if paths:
            FileSystems.delete(paths)
        return len(paths)
    if not FileSystems.exists(run_dir):
        return 0
    count = len(FileSystems.match([FileSystems.join(run_dir, "*")])[0].metadata_list)
    FileSystems.delete([run_dir])
    return count


def remove_files(paths: list[str]) -> None:
    """Remove files this run wrote (never anything else); a path already gone is fine."""
    present = [path for path in paths if FileSystems.exists(path)]
    if present:
        FileSystems.delete(present)


def write_json(path: str, document: dict[str, Any]) -> None:
    with FileSystems.create(path, mime_type="application/json") as handle:
        handle.write(json.dumps(document, indent=2, sort_keys=False).encode("utf-8") + b"\n")


def read_json(path: str) -> dict[str, Any] | None:
    anonymous_gcs_for_emulator()
    try:
        with FileSystems.open(path, mime_type="application/json") as handle:
            return json.loads(handle.read().decode("utf-8"))
    except (BeamIOError, FileNotFoundError, OSError):
        return None
