CREATE OR REPLACE VIEW `${ref}.object_history` AS
SELECT bucket, object, run_id, run_started_at, scan_date, 'verified' AS outcome,
  'info' AS severity, generation, size, crc32c, sha256, verified_by, verified_at, ledger_run_id,
  CAST(NULL AS STRING) AS detail
FROM `${ref}.verified_latest`
UNION ALL
SELECT f.bucket, f.object, f.run_id, f.run_started_at, f.scan_date, f.kind AS outcome, f.severity,
  f.generation, f.size, f.crc32c, CAST(NULL AS STRING) AS sha256, CAST(NULL AS STRING) AS verified_by,
  f.ledger_verified_at AS verified_at, f.ledger_run_id, f.detail
FROM `${ref}.findings_latest` AS f
WHERE f.kind IN ('digest_mismatch', 'malformed_name', 'read_error', 'vanished', 'ledger_disagrees') AND f.object IS NOT NULL
