"""ReadLedger: the previous run's rows, keyed by ``(bucket, object)``, from its run folder or from BigQuery.

Only rows about objects this run also lists are kept (a scanned bucket, under the scanned
prefix), so a ledger of a wider run never makes objects look vanished. The rows stay a
PCollection end to end: they meet the listing in a ``CoGroupByKey``, never as a side input,
so ten million of them are no burden on any worker (docs/incremental.md).
"""

from __future__ import annotations

import json
import logging

import apache_beam as beam
from apache_beam.coders import BytesCoder
from apache_beam.io import ReadAllFromText
from apache_beam.metrics import Metrics

from pipeline.adapters import report as report_io
from pipeline.adapters.ledger import LINE_MAX_BYTES, read_lines
from pipeline.core import ledger as core
from pipeline.core import run_diff

log = logging.getLogger(__name__)

VERIFIED, OBJECTS, FINDINGS, PROBLEM = "verified", "objects", "findings", "problem"


def parse_line(line: bytes | str):
    """A JSONL line as a dict; anything else is counted and dropped (the ledger is not ours to repair).

    Lines arrive as bytes: a line that is not UTF-8 is one unreadable row, not a failed run.
    """
    try:
        # ValueError: not JSON, not UTF-8, or an integer past Python's digit limit; RecursionError: nesting.
        row = json.loads(line) if len(line) <= LINE_MAX_BYTES else None
    except (ValueError, RecursionError):
        row = None
    if isinstance(row, dict):
        yield row
    elif line.strip():
        count_unreadable_line()


def count_unreadable_line() -> None:
    Metrics.counter("ledger", "unreadable_lines").inc()


def _keyed_ledger_row(row, run_id, started_at, buckets, prefix):
    normal = core.ledger_row(row, run_id, started_at)
    if normal is not None and core.in_scope(normal, buckets, prefix):
        yield core.object_key(normal), normal


def _unless_damaged(element, problem):
    if problem is None:
        yield element


def _judge_rows(_, expected, verified_read, findings_read):
    problem = core.rows_problem(expected, verified_read, findings_read)
    if problem:
        log.warning("ledger: no object is carried over and no change is reported: %s", problem)
        Metrics.counter("ledger", "damaged").inc()
    return problem


def _in_buckets(row, buckets) -> bool:
    return row.get("bucket") is None or row.get("bucket") in buckets


class ReadLedger(beam.PTransform):
    """pbegin -> {"verified": ((bucket, object), ledger row), "objects": previous object rows,
    "findings": previous finding rows, "problem": a singleton, None or why the rows cannot be used}.

    A run folder whose readable rows are not the rows its summary counts (``rows_problem``) gives
    no ledger rows at all: nothing is carried over, and ``RunDiff`` reports no change.

    ``previous`` is the launcher's ``pipeline.core.ledger.PreviousRun``. A run folder is read from
    its ``verified-*.jsonl`` and ``findings-*.jsonl``; a BigQuery ledger by two queries of the
    newest trusted run (``bigquery_ledger_query``, ``bigquery_findings_query``).
    """

    def __init__(self, previous: core.PreviousRun, buckets: tuple[str, ...], prefix: str, current_run_id: str):
        super().__init__()
        self._previous = previous
        self._buckets = tuple(buckets)
        self._prefix = prefix
        self._current_run_id = current_run_id

    def _read_folder(self, pbegin, prefix: str, label: str):
        join = report_io.FileSystems.join
        checked = [path for path in self._previous.files if path.rsplit("/", 1)[-1].startswith(prefix + "-")]
        if self._previous.files:
            # The files the launcher checked (regular, inside the folder, whole), each opened by its
            # path: read as a pattern, a folder named reports[1] would match nothing.
            return (
                pbegin
                | f"{label}Files" >> beam.Create(checked)
                | f"Spread{label}Files" >> beam.Reshuffle()
                | f"Read{label}" >> beam.FlatMap(read_lines, on_overlong=count_unreadable_line)
                | f"Parse{label}" >> beam.FlatMap(parse_line)
            )
        pattern = join(self._previous.location, f"{prefix}-*{report_io.ROWS_SUFFIX}")
        return (
            pbegin
            | f"{label}Files" >> beam.Create([pattern])
            | f"Read{label}" >> ReadAllFromText(coder=BytesCoder())
            | f"Parse{label}" >> beam.FlatMap(parse_line)
        )

    def _query(self, pbegin, query: str, label: str):
        from apache_beam.io.gcp.bigquery import ReadFromBigQuery

        return pbegin | f"Query{label}" >> ReadFromBigQuery(query=query, use_standard_sql=True)

    def expand(self, pbegin):
        previous, buckets, prefix = self._previous, self._buckets, self._prefix
        if previous.kind == core.BIGQUERY:
            verified = self._query(
                pbegin,
                core.bigquery_ledger_query(previous.location, buckets, prefix, self._current_run_id),
                "LedgerVerified",
            )
            findings = self._query(
                pbegin, core.bigquery_findings_query(previous.location, buckets, self._current_run_id), "LedgerFindings"
            )
        else:
            verified = self._read_folder(pbegin, report_io.VERIFIED_PREFIX, "LedgerVerified")
            findings = self._read_folder(pbegin, report_io.FINDINGS_PREFIX, "LedgerFindings")
        if previous.kind == core.BIGQUERY or previous.expected_rows is None:
            problem = pbegin | "LedgerRowsUnjudged" >> beam.Create([None])
        else:
            count = beam.combiners.Count.Globally
            problem = (
                pbegin
                | "LedgerRowsJudged" >> beam.Create([None])
                | "JudgeLedgerRows"
                >> beam.Map(
                    _judge_rows,
                    previous.expected_rows,
                    beam.pvalue.AsSingleton(verified | "CountLedgerVerified" >> count()),
                    beam.pvalue.AsSingleton(findings | "CountLedgerFindings" >> count()),
                )
            )
        keyed = (
            verified
            | "LedgerRows" >> beam.FlatMap(_keyed_ledger_row, previous.run_id, previous.started_at, buckets, prefix)
            | "UnlessLedgerDamaged" >> beam.FlatMap(_unless_damaged, beam.pvalue.AsSingleton(problem))
        )
        findings = findings | "LedgerFindingsInScope" >> beam.Filter(_in_buckets, buckets)
        object_findings = (
            findings
            | "LedgerObjectFindings" >> beam.Filter(run_diff.is_object_row)
            | "LedgerObjectFindingsInScope" >> beam.Filter(core.in_scope, buckets, prefix)
        )
        objects = (
            keyed | "LedgerObjects" >> beam.Values(),
            object_findings,
        ) | "PreviousObjects" >> beam.Flatten()
        return {VERIFIED: keyed, OBJECTS: objects, FINDINGS: findings, PROBLEM: problem}
