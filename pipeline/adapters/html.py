"""The human report's files: write ``report.html``, and read a run folder's rows back (local or ``gs://``).

Rows are read one JSONL line at a time, so re-rendering a million-object run never
holds its rows in memory.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

from apache_beam.io.filesystems import FileSystems

from pipeline.adapters import report as report_io

log = logging.getLogger(__name__)

REPORT_FILE = "report.html"
IMAGES_PREFIX = "images"


def report_path(run_dir: str) -> str:
    return FileSystems.join(run_dir, REPORT_FILE)


def write_html(path: str, page: str) -> None:
    with FileSystems.create(path, mime_type="text/html") as handle:
        handle.write(page.encode("utf-8"))


def row_files(run_dir: str, prefix: str) -> list[str]:
    """The ``<prefix>-*.jsonl`` shards of a run folder, sorted."""
    pattern = FileSystems.join(run_dir, f"{prefix}-*{report_io.ROWS_SUFFIX}")
    return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)


def read_rows(run_dir: str, prefix: str) -> Iterator[dict[str, Any]]:
    """Every row of a run's ``<prefix>-*.jsonl`` files; a line that is not a JSON object is skipped and logged."""
    for path in row_files(run_dir, prefix):
        with FileSystems.open(path, mime_type="application/octet-stream") as handle:
            for number, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                try:
                    row = json.loads(raw)
                except ValueError as err:
                    log.warning("%s line %d: not JSON (%s); skipped", path, number, err)
                    continue
                if isinstance(row, dict):
                    yield row
                else:
                    log.warning("%s line %d: not a JSON object; skipped", path, number)
