"""The report's row files (``findings-00000-of-00001.jsonl`` …) through Beam's own ``FileBasedSink``.

Beam's sink does the file work: a temporary file per writer under a ``beam-temp-…`` folder
beside the final files, then a finalize that renames each into its final shard name,
skipping a rename an earlier attempt already made (so a retried bundle or finalize on
Dataflow is safe), and removes the temporary folder. Only the graph around it is ours
(pipeline/transforms/row_files.py): Beam's ``WriteToText`` builds five stages per file
kind, where every kind can share one.
"""

from __future__ import annotations

import uuid

from apache_beam.coders.coders import ToBytesCoder
from apache_beam.io.filebasedsink import FileBasedSink
from apache_beam.io.filesystems import FileSystems

from pipeline.adapters import report as report_io

# WriteToText's names, which the README promises: findings-00000-of-00001.jsonl.
SHARD_NAME_TEMPLATE = "-SSSSS-of-NNNNN"


class LineSink(FileBasedSink):
    """One text line per record, as ``WriteToText`` writes them: UTF-8, each ended by a newline."""

    def __init__(self, file_path_prefix: str, file_name_suffix: str):
        self.path_prefix, self.path_suffix = file_path_prefix, file_name_suffix
        super().__init__(
            file_path_prefix,
            coder=ToBytesCoder(),
            file_name_suffix=file_name_suffix,
            shard_name_template=SHARD_NAME_TEMPLATE,
            mime_type="text/plain",
        )

    def write_encoded_record(self, file_handle, encoded_value: bytes) -> None:
        file_handle.write(encoded_value + b"\n")


def row_sink(run_dir: str, prefix: str, suffix: str = report_io.ROWS_SUFFIX) -> LineSink:
    return LineSink(FileSystems.join(run_dir, prefix), suffix)


def temp_folder(run_dir: str, prefix: str) -> str:
    """Where a kind's temporary files go until finalized: named as ``WriteToText`` names it,
    but chosen once on the launcher, so every writer and the finalize agree without a side input."""
    return FileSystems.join(run_dir, f"beam-temp-{prefix}-{uuid.uuid1().hex}")


def open_writer(sink: LineSink, temp_dir: str):
    """A writer of one temporary file (``write(line)``, then ``close()`` -> its path)."""
    return sink.open_writer(temp_dir, str(uuid.uuid4()))


def finalize(sink: LineSink, temp_dir: str, written: list[str]) -> list[str]:
    """Rename the temporary files into their shard names and remove the temporary folder;
    the final paths. With none written, one empty shard, as ``WriteToText`` leaves one.

    Beam's own pre-finalize step (deleting earlier files that match the final names) is left
    out: the launcher clears the run folder before the run, and on a retried finalize it
    would delete the files the first attempt had already renamed.
    """
    written = list(written)
    if not written:
        written.append(open_writer(sink, temp_dir).close())
    # Beam's generator yields only the names it renamed this time (none on a retry): consume it,
    # and name every shard from the count, as it does (sorted temporary names -> shard numbers).
    for _ in sink.finalize_write(temp_dir, written, None):
        pass
    if temp_dir.startswith("gs://"):
        # Beam deletes the temporary folder as one object, which on GCS leaves the files of attempts
        # that failed (a retried bundle's first try) in the run folder; as a prefix, they go too.
        FileSystems.delete([temp_dir.rstrip("/") + "/"])
    return [shard_path(sink, index, len(written)) for index in range(len(written))]


def shard_path(sink: LineSink, index: int, total: int) -> str:
    return f"{sink.path_prefix}-{index:05d}-of-{total:05d}{sink.path_suffix}"
