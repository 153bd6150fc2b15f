"""The ledger: an earlier run whose verified rows the next run may trust (docs/incremental.md).

Pure rules, no I/O: what ``report.ledger`` names, whether a finished run may serve as a
ledger, which run ``auto`` takes among those under ``report.output``, and the plain rows the
pipeline joins on. Reading run folders and BigQuery is ``pipeline.adapters.ledger``'s job.

A run is trusted only when it finished (its ``summary.json`` exists: the report writes it
last) and accounted for every listed object (``unaccounted_objects`` is 0). A run that
crashed, was cut short or lost rows could name an object verified that it never read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from pipeline.compat import parse_iso_datetime
from pipeline.values import BUCKET_RE

# datetime.UTC is Python 3.11+; this module also serves 3.10.
UTC = timezone.utc  # noqa: UP017
Row = dict[str, Any]

AUTO = "auto"
BIGQUERY_PREFIX = "bq:"
RUN_FOLDER, BIGQUERY = "run", "bigquery"
# What a BigQuery ledger names: PROJECT.DATASET.TABLE (a project id may carry a domain: example.com:p).
_BQ_TABLE_RE = re.compile(
    r"(?P<project>(?:[a-z][a-z0-9.-]*[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9])"
    r"\.(?P<dataset>[A-Za-z0-9_]{1,1024})\.(?P<table>[A-Za-z0-9_]{1,1024})"
)
# The summaries table a BigQuery ledger's runs are judged by, in the verified table's dataset.
SUMMARIES_TABLE = "summaries"
# Untrusted runs named in one message; the rest are counted.
SKIPPED_SHOWN = 10
# A run that says it started later than this after now has a clock that cannot be trusted. Taken as
# the newest run, it would win ``auto`` for ever, and its rows could look freshly verified for years.
CLOCK_SLACK = timedelta(hours=1)


@dataclass(frozen=True)
class LedgerSpec:
    """``report.ledger`` parsed: ``auto`` (under the output root), a run folder, or a BigQuery table."""

    kind: str  # AUTO | RUN_FOLDER | BIGQUERY
    location: str  # the output root (auto), the run folder, or PROJECT.DATASET.TABLE


def parse_ledger(value: str) -> LedgerSpec:
    """The spec a ``report.ledger`` value names; ``ValueError("expected …")`` for anything else."""
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise ValueError("expected auto, a run folder (local or gs://BUCKET/PATH/RUN_ID) or bq:PROJECT.DATASET.TABLE")
    if text == AUTO:
        return LedgerSpec(AUTO, "")
    if text.startswith(BIGQUERY_PREFIX):
        table = text[len(BIGQUERY_PREFIX) :]
        if not _BQ_TABLE_RE.fullmatch(table):
            raise ValueError(
                f"expected bq:PROJECT.DATASET.TABLE (the verified-objects table), e.g. "
                f"bq:my-project.registry_audit.verified, got {text!r}"
            )
        return LedgerSpec(BIGQUERY, table)
    if text.startswith("gs://"):
        bucket, _, path = text[len("gs://") :].partition("/")
        if not BUCKET_RE.fullmatch(bucket) or not path.strip("/"):
            raise ValueError(f"expected gs://BUCKET/PATH/RUN_ID, the folder of one finished run, got {text!r}")
        return LedgerSpec(RUN_FOLDER, text.rstrip("/"))
    if "://" in text:
        raise ValueError(f"expected a local run folder or gs://BUCKET/PATH/RUN_ID, got {text!r}")
    return LedgerSpec(RUN_FOLDER, text.rstrip("/") or text)


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp as an aware datetime (a trailing ``Z`` too, on every Python); None if it is not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = parse_iso_datetime(value)  # 3.10's fromisoformat also refuses fractions of 1, 2, 4, 5 digits
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _part(document: Any, *keys: str) -> dict[str, Any]:
    """``document[k1][k2]…`` when each level is a mapping, else ``{}``: a summary may be hostile."""
    for key in keys:
        document = document.get(key) if isinstance(document, dict) else None
    return document if isinstance(document, dict) else {}


def trust_problem(summary: Any, now: datetime | None = None) -> str | None:
    """Why a run's rows cannot serve as a ledger, or None when they can.

    With ``now``, a run that says it started in the future (beyond ``CLOCK_SLACK``) is refused:
    a skewed clock must not make a run the newest, nor its verifications recent, for ever.
    """
    if summary is None:
        return "no summary.json: the run did not finish, so its rows may be incomplete"
    if not isinstance(summary, dict):
        return "summary.json is not a JSON object"
    unaccounted = summary.get("unaccounted_objects")
    if isinstance(unaccounted, bool) or not isinstance(unaccounted, int):
        return "summary.json has no unaccounted_objects count, so its rows cannot be shown complete"
    if unaccounted > 0:
        return f"{unaccounted} listed object(s) ended in no report row (unaccounted_objects): its rows are incomplete"
    if unaccounted < 0:
        return f"it wrote {-unaccounted} more report row(s) than it listed objects (unaccounted_objects {unaccounted})"
    if not isinstance(summary.get("run_id"), str) or not summary["run_id"]:
        return "summary.json has no run_id"
    started = parse_time(summary.get("started_at"))
    if started is None:
        return "summary.json has no valid started_at, so the age of its verifications is unknown"
    if now is not None and started > now + CLOCK_SLACK:
        return (
            f"it says it started at {summary['started_at']}, after now ({now.strftime('%Y-%m-%dT%H:%M:%SZ')}): "
            "a clock that cannot be trusted to date its verifications"
        )
    mode = _part(summary, "config", "scan").get("mode")
    if mode == "manifests":
        return "it ran with scan.mode manifests and hashed no object"
    return None


def scanned_buckets(summary: Row) -> tuple[str, ...]:
    """The buckets a finished run scanned: configured ones and those found in its projects."""
    configured = _part(summary, "config", "source").get("buckets")
    buckets = [b for b in configured if isinstance(b, str)] if isinstance(configured, list) else []
    buckets += [b for b in _part(summary, "reclaim_by_bucket") if b not in buckets]
    return tuple(buckets)


@dataclass(frozen=True)
class PreviousRun:
    """The ledger a run uses, resolved on the launcher: plain values that travel to workers.

    ``run_id`` and ``started_at`` are known for a run folder; a BigQuery ledger finds its run
    in the query, so they are None there. ``skipped`` names the untrusted runs ``auto`` passed
    over, each with the reason.
    """

    kind: str  # RUN_FOLDER | BIGQUERY
    location: str  # the run folder, or PROJECT.DATASET.TABLE
    run_id: str | None = None
    started_at: str | None = None
    buckets: tuple[str, ...] = ()
    prefix: str | None = None
    chosen_by: str = "explicit"  # "auto" or "explicit"
    skipped: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    # The run folder's row files, checked on the launcher; empty: read what the folder's pattern matches.
    files: tuple[str, ...] = ()
    # (verified rows, finding rows) its summary.json counts; None when it does not say.
    expected_rows: tuple[int, int] | None = None

    def describe(self) -> dict[str, Any]:
        """The ``ledger`` block of summary.json."""
        return {
            "kind": self.kind,
            "location": self.location,
            "run_id": self.run_id,
            "started_at": self.started_at,
            "chosen_by": self.chosen_by,
            "skipped": [{"run": run, "reason": reason} for run, reason in self.skipped],
        }


@dataclass(frozen=True)
class Candidate:
    """One folder under the output root that holds a run's files."""

    run_dir: str
    run_id: str  # the folder's name
    summary: Row | None
    # Why the folder's files cannot be read as the run wrote them (a summary that does not parse, a
    # row file that is a FIFO or a symlink out of the folder, one cut short …), found by the adapter.
    files_problem: str | None = None
    row_files: tuple[str, ...] = ()  # the verified and findings files to read, checked

    def problem(self, now: datetime | None = None) -> str | None:
        """Why this run cannot serve as a ledger, or None."""
        if self.files_problem and self.summary is not None:
            return self.files_problem
        return trust_problem(self.summary, now) or self.files_problem


@dataclass(frozen=True)
class AutoChoice:
    taken: Candidate | None
    skipped: tuple[tuple[str, str], ...]  # (run id, reason), newest first


def _started(candidate: Candidate) -> datetime | None:
    return parse_time((candidate.summary or {}).get("started_at")) if isinstance(candidate.summary, dict) else None


def choose_auto(candidates: list[Candidate], current_run_id: str, now: datetime | None = None) -> AutoChoice:
    """The newest trusted run (by ``started_at``), and every untrusted one that would otherwise have won.

    The current run's own folder is never a candidate: the run replaces it. An untrusted run is
    named as skipped when it started after the one taken, or when its start is unknown (no
    readable summary) and its folder name sorts after the taken one's (default run ids are
    UTC times, so they sort by age).
    """
    others = [c for c in candidates if c.run_id != current_run_id]
    trusted = [c for c in others if c.problem(now) is None]
    trusted.sort(key=lambda c: (_started(c), c.run_id), reverse=True)
    taken = trusted[0] if trusted else None
    skipped = []
    for candidate in others:
        problem = candidate.problem(now)
        if problem is None:
            continue
        started = _started(candidate)
        if taken is None:
            newer = True
        elif started is not None:
            newer = started > _started(taken)
        else:
            newer = candidate.run_id > taken.run_id
        if newer:
            skipped.append((candidate.run_id, problem, started))
    far_past = datetime.min.replace(tzinfo=UTC)
    skipped.sort(key=lambda s: (s[2] or far_past, s[0]), reverse=True)
    return AutoChoice(taken, tuple((run_id, reason) for run_id, reason, _ in skipped))


def previous_run(candidate: Candidate, chosen_by: str, skipped=()) -> PreviousRun:
    summary = candidate.summary or {}
    return PreviousRun(
        kind=RUN_FOLDER,
        location=candidate.run_dir,
        run_id=summary.get("run_id") or candidate.run_id,
        started_at=summary.get("started_at"),
        buckets=scanned_buckets(summary),
        prefix=_part(summary, "config", "source").get("prefix"),
        chosen_by=chosen_by,
        skipped=tuple(skipped),
        files=candidate.row_files,
        expected_rows=expected_rows(summary),
    )


def expected_rows(summary: Any) -> tuple[int, int] | None:
    """(verified rows, finding rows) a finished run wrote, by its summary.json; None when it does not say."""
    verified = summary.get("objects_verified") if isinstance(summary, dict) else None
    by_kind = summary.get("findings_by_kind") if isinstance(summary, dict) else None
    counts = list(by_kind.values()) if isinstance(by_kind, dict) else None
    whole = [verified, *(counts or ())]
    if counts is None or any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in whole):
        return None
    return verified, sum(counts)


def rows_problem(expected: tuple[int, int] | None, verified_read: int, findings_read: int) -> str | None:
    """Why the rows read from a run folder are not the rows its summary counts, or None.

    Lines that are not JSON, not UTF-8 or too long are dropped as they are read; a ledger that lost
    or gained rows could otherwise make an object look new, a finding new, or carry over a forged row.
    """
    if expected is None:
        return None
    verified, findings = expected
    if (verified_read, findings_read) == (verified, findings):
        return None
    return (
        f"its row files hold {verified_read} readable verified row(s) and {findings_read} finding row(s), "
        f"but its summary.json counts {verified} and {findings}: the rows are damaged or were edited"
    )


def choice_lines(root: str, choice: AutoChoice) -> list[str]:
    """What ``report.ledger: auto`` decided, for the log: the run taken and the runs skipped, and why."""
    lines = []
    if choice.taken is None:
        lines.append(
            f"ledger auto: no trusted earlier run under {root}: every object is read, and no differences are reported"
        )
    else:
        summary = choice.taken.summary or {}
        lines.append(
            f"ledger auto: took run {choice.taken.run_id} (started {summary.get('started_at')}) "
            f"from {choice.taken.run_dir}"
        )
    for run_id, reason in choice.skipped[:SKIPPED_SHOWN]:
        lines.append(f"ledger auto: skipped run {run_id}: {reason}")
    if len(choice.skipped) > SKIPPED_SHOWN:
        lines.append(f"ledger auto: skipped {len(choice.skipped) - SKIPPED_SHOWN} more untrusted run(s)")
    return lines


# --- rows -----------------------------------------------------------------------------------------


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def ledger_row(row: Any, run_id: str | None = None, started_at: str | None = None) -> Row | None:
    """A previous run's verified row as the ledger keeps it, or None when it names no object.

    ``verified_at`` is when the bytes were last read: the row's own (a carried-over row keeps
    its original one), else the start of the run that wrote it, ``started_at``.
    """
    if not isinstance(row, dict):
        return None
    bucket, name = row.get("bucket"), row.get("object")
    if not isinstance(bucket, str) or not isinstance(name, str) or not bucket or not name:
        return None
    verified_at = row.get("verified_at") if parse_time(row.get("verified_at")) else started_at
    run_start = parse_time(started_at)
    if run_start is not None and parse_time(verified_at) > run_start:
        # A run dates its reads by its own start, and a carried-over row keeps an older date: a row
        # verified after its run started was not written by the run, and proves nothing about when.
        verified_at = None
    return {
        "bucket": bucket,
        "object": name,
        "generation": _int(row.get("generation")),
        "size": _int(row.get("size")),
        "crc32c": row.get("crc32c") if isinstance(row.get("crc32c"), str) else None,
        "sha256": row.get("sha256") if isinstance(row.get("sha256"), str) else None,
        "verified_at": verified_at,
        "run_id": row.get("run_id") if isinstance(row.get("run_id"), str) and row.get("run_id") else run_id,
    }


def object_key(row: Row) -> tuple[str, str]:
    return (row["bucket"], row["object"])


def in_scope(row: Row, buckets: tuple[str, ...], prefix: str) -> bool:
    """A previous row about an object this run also lists: a scanned bucket, under the scanned prefix."""
    return row.get("bucket") in buckets and isinstance(row.get("object"), str) and row["object"].startswith(prefix)


# --- BigQuery ---------------------------------------------------------------------------------------


def _quote(text: str) -> str:
    """A GoogleSQL string literal; the values are validated names, escaped all the same."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def table_parts(table: str) -> tuple[str, str, str]:
    match = _BQ_TABLE_RE.fullmatch(table)
    if not match:
        raise ValueError(f"not PROJECT.DATASET.TABLE: {table!r}")
    return match.group("project"), match.group("dataset"), match.group("table")


def _newest_trusted_run(project: str, dataset: str, buckets: tuple[str, ...], current_run_id: str) -> str:
    bucket_list = ", ".join(_quote(b) for b in buckets)
    return (
        "SELECT run_id, started_at\n"
        f"  FROM `{project}.{dataset}.{SUMMARIES_TABLE}`\n"
        "  WHERE unaccounted_objects = 0 AND exit_status IN (0, 1)\n"
        f"    AND run_id != {_quote(current_run_id)}\n"
        f"    AND EXISTS (SELECT 1 FROM UNNEST(buckets) AS b WHERE b IN ({bucket_list}))\n"
        "  ORDER BY started_at DESC, run_id DESC\n"
        "  LIMIT 1"
    )


def bigquery_ledger_query(table: str, buckets: tuple[str, ...], prefix: str, current_run_id: str) -> str:
    """GoogleSQL for the verified rows of the newest trusted run in ``table`` (the verified-objects table).

    Trust is judged as for run folders, from the dataset's ``summaries`` table: only a run that
    wrote its summary (it finished) with ``unaccounted_objects = 0``, and that scanned one of
    ``buckets``; its attempt is the one that summary belongs to (``run_started_at``).
    """
    project, dataset, name = table_parts(table)
    bucket_list = ", ".join(_quote(b) for b in buckets)
    return (
        f"WITH ledger_run AS (\n  {_newest_trusted_run(project, dataset, buckets, current_run_id)}\n)\n"
        "SELECT v.run_id, v.bucket, v.object, v.generation, v.size, v.crc32c, v.sha256,\n"
        "  FORMAT_TIMESTAMP('%Y-%m-%dT%H:%M:%E6SZ', COALESCE(v.verified_at, v.run_started_at), 'UTC') AS verified_at\n"
        f"FROM `{project}.{dataset}.{name}` AS v\n"
        "JOIN ledger_run AS r ON v.run_id = r.run_id AND v.run_started_at = r.started_at\n"
        f"WHERE v.bucket IN ({bucket_list}) AND STARTS_WITH(v.object, {_quote(prefix)})"
    )


def bigquery_findings_query(table: str, buckets: tuple[str, ...], current_run_id: str) -> str:
    """GoogleSQL for the findings of the same run ``bigquery_ledger_query`` takes (the dataset's ``findings``)."""
    project, dataset, _ = table_parts(table)
    return (
        f"WITH ledger_run AS (\n  {_newest_trusted_run(project, dataset, buckets, current_run_id)}\n)\n"
        "SELECT f.run_id, f.kind, f.severity, f.bucket, f.object, f.generation, f.digest, f.size,\n"
        "  f.repository, f.manifest_digest\n"
        f"FROM `{project}.{dataset}.findings` AS f\n"
        "JOIN ledger_run AS r ON f.run_id = r.run_id AND f.run_started_at = r.started_at"
    )


def unresolved_previous(value: str, output_root: str) -> PreviousRun:
    """The ledger of a Dataflow dry run, which reads nothing: the same graph, its run not yet chosen."""
    spec = parse_ledger(value)
    if spec.kind == BIGQUERY:
        return PreviousRun(kind=BIGQUERY, location=spec.location)
    if spec.kind == AUTO:
        return PreviousRun(kind=RUN_FOLDER, location=f"{output_root.rstrip('/')}/LEDGER_RUN", chosen_by=AUTO)
    return PreviousRun(kind=RUN_FOLDER, location=spec.location)
