"""WriteAuditTables: findings and the summary also loaded into BigQuery, for audits across runs.

Batch loads (``FILE_LOADS``): rows are staged as files under the pipeline's
``--temp_location`` and loaded by BigQuery load jobs, which cost nothing per row
and never stream. Tables are appended to, day-partitioned on the run's scan date,
and created on first use with the schema from ``pipeline.core.bq_schema``.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

import apache_beam as beam
from apache_beam.io.gcp.bigquery import BigQueryDisposition, WriteToBigQuery

from pipeline.core import bq_schema


def _load(table: str, dataset: str, columns: list[dict]) -> WriteToBigQuery:
    return WriteToBigQuery(
        bq_schema.table_spec(dataset, table),
        schema=bq_schema.table_schema(columns),
        method=WriteToBigQuery.Method.FILE_LOADS,
        create_disposition=BigQueryDisposition.CREATE_IF_NEEDED,
        write_disposition=BigQueryDisposition.WRITE_APPEND,
        additional_bq_parameters=bq_schema.TABLE_OPTIONS[table],
    )


class _ParsedJsonWarning(logging.Filter):
    """Beam warns, once per JSON column, that a value given as a string would load as a JSON string.
    Ours are parsed values (``bq_schema._cell``), so the warning would only alarm the person reading."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Found JSON type in TableSchema")


@contextmanager
def _without_parsed_json_warning():
    root, quiet = logging.getLogger(), _ParsedJsonWarning()
    root.addFilter(quiet)
    try:
        yield
    finally:
        root.removeFilter(quiet)


class WriteAuditTables(beam.PTransform):
    """(findings, summary[, verified]) -> rows appended to ``<dataset>.findings``, ``<dataset>.summaries``
    and ``<dataset>.verified`` (the ledger in BigQuery, docs/incremental.md)."""

    def __init__(self, dataset: str, run_id: str, started_at: str, buckets: tuple[str, ...]):
        super().__init__()
        self._dataset = dataset
        self._run_id = run_id
        self._started_at = started_at
        self._buckets = tuple(buckets)
        # Built here so that a field added to one schema and not the other fails at construction.
        self._finding_columns = bq_schema.finding_columns()
        self._summary_columns = bq_schema.summary_columns()
        self._verified_columns = bq_schema.verified_columns()

    def expand(self, inputs):
        with _without_parsed_json_warning():
            return self._expand(inputs)

    def _expand(self, inputs):
        findings, summary, *verified = inputs
        run_id, started_at, buckets = self._run_id, self._started_at, self._buckets
        finding_rows = findings | "FindingRows" >> beam.Map(lambda row: bq_schema.finding_row(row, run_id, started_at))
        summary_rows = summary | "SummaryRow" >> beam.Map(lambda document: bq_schema.summary_row(document, buckets))
        tables = {}
        if verified:
            verified_rows = verified[0] | "VerifiedRows" >> beam.Map(
                lambda row: bq_schema.verified_row(row, run_id, started_at)
            )
            tables[bq_schema.VERIFIED_TABLE] = verified_rows | "LoadVerified" >> _load(
                bq_schema.VERIFIED_TABLE, self._dataset, self._verified_columns
            )
        return {
            **tables,
            bq_schema.FINDINGS_TABLE: finding_rows
            | "LoadFindings" >> _load(bq_schema.FINDINGS_TABLE, self._dataset, self._finding_columns),
            bq_schema.SUMMARIES_TABLE: summary_rows
            | "LoadSummary" >> _load(bq_schema.SUMMARIES_TABLE, self._dataset, self._summary_columns),
        }
