"""Find the ledger a run names: the run folders under the output root and their summaries (local or gs://).

Thin: the choice and the trust rules are ``pipeline.core.ledger``'s. Runs once, on the launcher.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import stat
from datetime import datetime, timezone

from apache_beam.io.filesystem import BeamIOError, CompressionTypes
from apache_beam.io.filesystems import FileSystems

from pipeline.adapters import report as report_io
from pipeline.core import ledger as core

log = logging.getLogger(__name__)


class LedgerUnusable(ValueError):
    """``report.ledger`` names something that cannot serve as a ledger; the message says why (exit status 2)."""


def _absolute(location: str) -> str:
    return location if location.startswith("gs://") else os.path.abspath(location)


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0]


def run_folders(root: str) -> list[str]:
    """Every folder directly under ``root`` holding a run's summary or row files, sorted.

    A local root is listed, not matched, so that a root named with glob characters
    (``reports[1]``) is taken as it is; on gs:// object names are matched as Beam does.
    """
    report_io.anonymous_gcs_for_emulator()
    root = _absolute(root).rstrip("/")
    if not root.startswith("gs://"):
        return _local_run_folders(root)
    patterns = [
        FileSystems.join(root, "*", report_io.SUMMARY_FILE),
        FileSystems.join(root, "*", f"{report_io.FINDINGS_PREFIX}-*{report_io.ROWS_SUFFIX}"),
        FileSystems.join(root, "*", f"{report_io.VERIFIED_PREFIX}-*{report_io.ROWS_SUFFIX}"),
    ]
    folders = set()
    try:
        for result in FileSystems.match(patterns):
            folders.update(_parent(metadata.path) for metadata in result.metadata_list)
    except BeamIOError as err:
        # A root that does not exist yet (the first run) holds no run.
        log.debug("no run folders under %s: %s", root, err)
    return sorted(folders)


def _is_run_file(name: str) -> bool:
    return name == report_io.SUMMARY_FILE or any(
        fnmatch.fnmatchcase(name, f"{prefix}-*{report_io.ROWS_SUFFIX}")
        for prefix in (report_io.FINDINGS_PREFIX, report_io.VERIFIED_PREFIX)
    )


def _local_run_folders(root: str) -> list[str]:
    try:
        entries = [entry for entry in os.scandir(root) if entry.is_dir()]
    except OSError as err:  # a root that does not exist yet (the first run) holds no run
        log.debug("no run folders under %s: %s", root, err)
        return []
    folders = []
    for entry in entries:
        try:
            if any(_is_run_file(name) for name in os.listdir(entry.path)):
                folders.append(entry.path)
        except OSError as err:
            log.debug("run folder %s cannot be listed: %s", entry.path, err)
    return sorted(folders)


# A row this tool writes is well under a kilobyte; a longer line is not one of its rows.
LINE_MAX_BYTES = 1024**2


def read_lines(path: str, on_overlong=lambda: None):
    """The lines of one row file as bytes, none longer than ``LINE_MAX_BYTES`` held in memory: a longer
    one is skipped to its end, and ``on_overlong`` is told."""
    with FileSystems.open(
        path, mime_type="application/octet-stream", compression_type=CompressionTypes.UNCOMPRESSED
    ) as handle:
        while line := handle.readline(LINE_MAX_BYTES + 1):
            if len(line) > LINE_MAX_BYTES and not line.endswith(b"\n"):
                while (rest := handle.readline(LINE_MAX_BYTES)) and not rest.endswith(b"\n"):
                    pass
                on_overlong()
                continue
            yield line.rstrip(b"\r\n")


# A summary.json is a few kB; one far larger is not a summary this tool wrote.
SUMMARY_MAX_BYTES = 16 * 1024**2
ROW_PREFIXES = (report_io.VERIFIED_PREFIX, report_io.FINDINGS_PREFIX)


class FolderProblem(Exception):
    """A file of a run folder that cannot be read as the run wrote it; the message says which and why."""


def _matched(pattern: str) -> list:
    try:
        return [m for result in FileSystems.match([pattern]) for m in result.metadata_list]
    except BeamIOError:
        return []


def _check_local_file(run_dir: str, path: str) -> None:
    """A regular file inside the run folder: a FIFO would block ``open()`` for ever, and a symlink
    out of the folder would make another file's rows this run's."""
    name = os.path.basename(path)
    inside = os.path.realpath(run_dir)
    target = os.path.realpath(path)
    if os.path.dirname(target) != inside:
        raise FolderProblem(f"{name} is a link out of the run folder (to {os.fsdecode(target)!r})")
    try:
        mode = os.stat(target).st_mode
    except OSError as err:
        raise FolderProblem(f"{name} cannot be read ({err.strerror or err})") from None
    if not stat.S_ISREG(mode):
        raise FolderProblem(f"{name} is not a regular file")


def _read_summary(run_dir: str):
    """The parsed summary.json, None when there is none; ``FolderProblem`` when it cannot be a summary."""
    path = FileSystems.join(run_dir, report_io.SUMMARY_FILE)
    if run_dir.startswith("gs://"):
        if not FileSystems.exists(path):
            return None
    else:
        if not os.path.lexists(path):
            return None
        _check_local_file(run_dir, path)
    try:
        with FileSystems.open(path, mime_type="application/json") as handle:
            data = handle.read(SUMMARY_MAX_BYTES + 1)
    except (BeamIOError, OSError) as err:
        raise FolderProblem(f"summary.json cannot be read ({err})") from None
    if len(data) > SUMMARY_MAX_BYTES:
        raise FolderProblem(f"summary.json is over {SUMMARY_MAX_BYTES} bytes, not a summary this tool wrote")
    try:
        # ValueError: not JSON, not UTF-8, or an integer past Python's digit limit; RecursionError: nesting.
        return json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as err:
        raise FolderProblem(f"summary.json is not valid JSON ({str(err)[:200]})") from None


def _row_file_sizes(run_dir: str, prefix: str) -> list[tuple[str, int]]:
    """(path, size) of each ``<prefix>-*.jsonl`` in the folder; locally by listing it, so that a folder
    name holding glob characters (``reports[1]``) is taken as it is."""
    if run_dir.startswith("gs://"):
        pattern = FileSystems.join(run_dir, f"{prefix}-*{report_io.ROWS_SUFFIX}")
        return [(m.path, m.size_in_bytes) for m in _matched(pattern)]
    found = []
    for entry in sorted(os.listdir(run_dir)):
        if fnmatch.fnmatchcase(entry, f"{prefix}-*{report_io.ROWS_SUFFIX}"):
            path = os.path.join(run_dir, entry)
            _check_local_file(run_dir, path)
            found.append((path, os.stat(path).st_size))
    return found


def _ends_with_newline(path: str, size: int) -> bool:
    with FileSystems.open(path, mime_type="application/octet-stream") as handle:
        handle.seek(size - 1)
        return handle.read(1) == b"\n"


def _row_files(run_dir: str, summary: dict) -> tuple[str, ...]:
    """The run's verified and findings files, each checked; ``FolderProblem`` for one the run did not
    write whole: a FIFO, a link out of the folder, a file its summary does not list, or one cut short."""
    named = summary.get("files") if isinstance(summary.get("files"), list) else None
    files = []
    for prefix in ROW_PREFIXES:
        for path, size in _row_file_sizes(run_dir, prefix):
            name = path.rstrip("/").rsplit("/", 1)[-1]
            if named is not None and name not in named:
                raise FolderProblem(f"{name} is not among the files its summary.json lists")
            if size and not _ends_with_newline(path, size):
                raise FolderProblem(f"{name} ends in the middle of a row: it was cut short")
            files.append(path)
    if named is not None:
        present = {path.rsplit("/", 1)[-1] for path in files}
        missing = [n for n in named if isinstance(n, str) and n.startswith(ROW_PREFIXES) and n not in present]
        if missing:
            raise FolderProblem(f"{missing[0]}, listed in its summary.json, is missing: its rows are incomplete")
    return tuple(sorted(files))


def candidate(run_dir: str) -> core.Candidate:
    run_id = run_dir.rstrip("/").rsplit("/", 1)[-1]
    try:
        summary = _read_summary(run_dir)
        files = _row_files(run_dir, summary) if isinstance(summary, dict) else ()
    except FolderProblem as problem:
        return core.Candidate(run_dir=run_dir, run_id=run_id, summary={}, files_problem=str(problem))
    except (OSError, BeamIOError) as err:  # a folder that cannot be listed, a file that cannot be opened
        return core.Candidate(
            run_dir=run_dir, run_id=run_id, summary={}, files_problem=f"its files cannot be read ({err})"
        )
    return core.Candidate(run_dir=run_dir, run_id=run_id, summary=summary, row_files=files)


def _same_folder(a: str, b: str) -> bool:
    if a.startswith("gs://") or b.startswith("gs://"):
        return a.rstrip("/") == b.rstrip("/")
    return os.path.realpath(a) == os.path.realpath(b)  # a link to the run's own folder is that folder


def _now() -> datetime:
    return datetime.now(timezone.utc)  # noqa: UP017 (datetime.UTC is 3.11+)


def resolve(
    value: str, output_root: str, current_run_id: str, current_run_dir: str
) -> tuple[core.PreviousRun | None, list[str]]:
    """The ledger ``report.ledger`` names, and the lines that say how it was chosen.

    ``auto`` with no trusted run yet is None (a first run); an explicit run folder that cannot
    be trusted, or that is this run's own folder, is ``LedgerUnusable``.
    """
    spec = core.parse_ledger(value)
    if spec.kind == core.BIGQUERY:
        return core.PreviousRun(kind=core.BIGQUERY, location=spec.location), [
            f"ledger: the newest trusted run in BigQuery table {spec.location}"
        ]
    if spec.kind == core.AUTO:
        root = _absolute(output_root)
        choice = core.choose_auto([candidate(folder) for folder in run_folders(root)], current_run_id, _now())
        lines = core.choice_lines(root, choice)
        if choice.taken is None:
            return None, lines
        return core.previous_run(choice.taken, core.AUTO, choice.skipped), lines
    run_dir = _absolute(spec.location)
    if not run_dir.startswith("gs://"):
        if not os.path.exists(run_dir):
            raise LedgerUnusable(f"report.ledger {value}: no such folder")
        if not os.path.isdir(run_dir):
            raise LedgerUnusable(f"report.ledger {value}: not a folder; name the folder of one finished run")
    if _same_folder(run_dir, _absolute(current_run_dir)):
        raise LedgerUnusable(
            f"report.ledger {value}: this is the run's own folder, which the run replaces; "
            "name an earlier run's folder or use auto"
        )
    found = candidate(run_dir)
    problem = found.problem(_now())
    if problem:
        raise LedgerUnusable(f"report.ledger {value}: cannot be trusted as a ledger: {problem}")
    return core.previous_run(found, "explicit"), [f"ledger: run {found.summary['run_id']} from {run_dir}"]
