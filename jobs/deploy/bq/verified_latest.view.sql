CREATE OR REPLACE VIEW `${ref}.verified_latest` AS
SELECT v.* FROM `${ref}.verified` AS v
JOIN `${ref}.summaries_latest` AS s
  ON v.run_id = s.run_id AND v.run_started_at = s.started_at
