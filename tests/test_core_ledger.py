"""pipeline/core/ledger.py: what report.ledger names, which runs are trusted, which one auto takes."""

from __future__ import annotations

import pytest

from pipeline.core import ledger as L


def summary(run_id="r1", started_at="2026-11-01T03:00:00Z", unaccounted=0, **extra):
    return {
        "run_id": run_id,
        "started_at": started_at,
        "unaccounted_objects": unaccounted,
        "exit_status": 0,
        "config": {"source": {"buckets": ["b-one"], "prefix": "containers/images/"}, "scan": {"mode": "names"}},
        **extra,
    }


@pytest.mark.parametrize(
    "value, kind, location",
    [
        ("auto", L.AUTO, ""),
        ("./scrub-reports/20261101T030000Z/", L.RUN_FOLDER, "./scrub-reports/20261101T030000Z"),
        ("gs://reports/scrub/r1", L.RUN_FOLDER, "gs://reports/scrub/r1"),
        ("bq:my-project.registry_audit.verified", L.BIGQUERY, "my-project.registry_audit.verified"),
        ("bq:example.com:my-project.audit.verified", L.BIGQUERY, "example.com:my-project.audit.verified"),
    ],
)
def test_parse_ledger(value, kind, location):
    assert L.parse_ledger(value) == L.LedgerSpec(kind, location)


@pytest.mark.parametrize(
    "value, message",
    [
        ("", "expected auto, a run folder"),
        ("bq:dataset.table", "expected bq:PROJECT.DATASET.TABLE"),
        ("bq:my-project.registry_audit", "expected bq:PROJECT.DATASET.TABLE"),
        ("gs://reports", "expected gs://BUCKET/PATH/RUN_ID"),
        ("gs://B/r1", "expected gs://BUCKET/PATH/RUN_ID"),
        ("s3://reports/r1", "expected a local run folder or gs://"),
    ],
)
def test_parse_ledger_refuses_with_the_fix(value, message):
    with pytest.raises(ValueError, match=message):
        L.parse_ledger(value)


def test_a_finished_sound_run_is_trusted():
    assert L.trust_problem(summary()) is None


@pytest.mark.parametrize(
    "document, reason",
    [
        (None, "no summary.json: the run did not finish"),
        ([], "not a JSON object"),
        ({**summary(), "unaccounted_objects": None}, "no unaccounted_objects count"),
        (summary(unaccounted=3), "3 listed object(s) ended in no report row"),
        (summary(unaccounted=-2), "2 more report row(s) than it listed"),
        (summary(unaccounted=True), "no unaccounted_objects count"),
        (summary(started_at="yesterday"), "no valid started_at"),
        (summary(run_id=""), "no run_id"),
        ({**summary(), "config": {"scan": {"mode": "manifests"}}}, "hashed no object"),
    ],
)
def test_untrusted_runs_say_why(document, reason):
    assert reason in L.trust_problem(document)


def candidate(run_id, document):
    return L.Candidate(run_dir=f"/reports/{run_id}", run_id=run_id, summary=document)


def test_auto_takes_the_newest_trusted_run_and_names_the_newer_untrusted_ones():
    runs = [
        candidate("r1", summary("r1", "2026-11-01T03:00:00Z")),
        candidate("r2", summary("r2", "2026-11-02T03:00:00Z")),
        candidate("r3", summary("r3", "2026-11-03T03:00:00Z", unaccounted=4)),
        candidate("r4", None),  # crashed: rows, no summary
        candidate("r0", None),  # an older crash: not in the way, not named
    ]
    choice = L.choose_auto(runs, current_run_id="r5")
    assert choice.taken.run_id == "r2"
    assert [run for run, _ in choice.skipped] == ["r3", "r4"]
    assert "unaccounted_objects" in dict(choice.skipped)["r3"]
    lines = L.choice_lines("/reports", choice)
    assert lines[0] == "ledger auto: took run r2 (started 2026-11-02T03:00:00Z) from /reports/r2"
    assert lines[1].startswith("ledger auto: skipped run r3: 4 listed object(s)")
    assert (
        lines[2]
        == "ledger auto: skipped run r4: no summary.json: the run did not finish, so its rows may be incomplete"
    )


def test_auto_orders_by_start_time_not_by_name():
    runs = [
        candidate("zz-manual", summary("zz-manual", "2026-10-01T00:00:00Z")),
        candidate("20261102T030000Z", summary("20261102T030000Z", "2026-11-02T03:00:00Z")),
    ]
    assert L.choose_auto(runs, "now").taken.run_id == "20261102T030000Z"


def test_auto_never_takes_the_run_it_replaces():
    runs = [candidate("r1", summary("r1")), candidate("r2", summary("r2", "2026-11-05T00:00:00Z"))]
    assert L.choose_auto(runs, current_run_id="r2").taken.run_id == "r1"


def test_auto_with_no_trusted_run_takes_none_and_says_so():
    choice = L.choose_auto([candidate("r1", summary(unaccounted=1))], "r2")
    assert choice.taken is None and [run for run, _ in choice.skipped] == ["r1"]
    assert "no trusted earlier run under /reports" in L.choice_lines("/reports", choice)[0]


def test_many_skipped_runs_are_counted_not_listed():
    runs = [candidate(f"r{n:02d}", None) for n in range(15)]
    lines = L.choice_lines("/reports", L.choose_auto(runs, "now"))
    assert len(lines) == 1 + L.SKIPPED_SHOWN + 1 and lines[-1] == "ledger auto: skipped 5 more untrusted run(s)"


def test_previous_run_carries_what_workers_need():
    document = summary("r1", reclaim_by_bucket={"b-one": {}, "b-found": {}})
    previous = L.previous_run(candidate("r1", document), "auto", (("r2", "why"),))
    assert previous.buckets == ("b-one", "b-found") and previous.prefix == "containers/images/"
    assert previous.describe() == {
        "kind": "run",
        "location": "/reports/r1",
        "run_id": "r1",
        "started_at": "2026-11-01T03:00:00Z",
        "chosen_by": "auto",
        "skipped": [{"run": "r2", "reason": "why"}],
    }


def test_ledger_rows_keep_the_original_verification_time():
    read_then = {"bucket": "b", "object": "o", "generation": "7", "size": 3, "crc32c": "c", "sha256": "s"}
    assert L.ledger_row(read_then, "r1", "2026-11-01T00:00:00Z") == {
        "bucket": "b",
        "object": "o",
        "generation": 7,
        "size": 3,
        "crc32c": "c",
        "sha256": "s",
        "verified_at": "2026-11-01T00:00:00Z",
        "run_id": "r1",
    }
    carried = {**read_then, "verified_at": "2026-10-01T00:00:00Z", "run_id": "r0"}
    row = L.ledger_row(carried, "r1", "2026-11-01T00:00:00Z")
    assert row["verified_at"] == "2026-10-01T00:00:00Z" and row["run_id"] == "r0"
    assert L.ledger_row({"bucket": "b"}) is None and L.ledger_row("not a row") is None
    assert L.ledger_row({**read_then, "generation": True})["generation"] is None


def test_in_scope_keeps_only_objects_this_run_lists():
    row = {"bucket": "b-one", "object": "containers/images/sha256:x"}
    assert L.in_scope(row, ("b-one",), "containers/images/")
    assert not L.in_scope(row, ("b-two",), "containers/images/")
    assert not L.in_scope(row, ("b-one",), "other/")


def test_parse_time_reads_z_and_offsets():
    assert L.parse_time("2026-11-01T03:00:00Z").isoformat() == "2026-11-01T03:00:00+00:00"
    assert L.parse_time("2026-11-01T03:00:00.123000Z").microsecond == 123000
    assert L.parse_time("2026-11-01T03:00:00") is not None
    assert L.parse_time("soon") is None and L.parse_time(None) is None


def test_bigquery_query_takes_the_newest_trusted_run_of_these_buckets():
    """No BigQuery emulator runs here: the query text is what is tested (and the graph, in test_ledger_graph)."""
    sql = L.bigquery_ledger_query("my-project.audit.verified", ("b-one", "b'two"), "containers/images/", "r9")
    assert "FROM `my-project.audit.summaries`" in sql
    assert "WHERE unaccounted_objects = 0 AND exit_status IN (0, 1)" in sql
    assert "AND run_id != 'r9'" in sql
    assert "b IN ('b-one', 'b\\'two')" in sql, "literals are escaped"
    assert "ORDER BY started_at DESC, run_id DESC\n  LIMIT 1" in sql
    assert "FROM `my-project.audit.verified` AS v" in sql
    assert "ON v.run_id = r.run_id AND v.run_started_at = r.started_at" in sql
    assert "STARTS_WITH(v.object, 'containers/images/')" in sql
    findings = L.bigquery_findings_query("my-project.audit.verified", ("b-one",), "r9")
    assert "FROM `my-project.audit.findings` AS f" in findings and "LIMIT 1" in findings


def test_a_dry_run_ledger_reads_nothing():
    assert L.unresolved_previous("auto", "gs://r/scrub/").location == "gs://r/scrub/LEDGER_RUN"
    assert L.unresolved_previous("bq:my-project.audit.verified", "x").kind == L.BIGQUERY
    assert L.unresolved_previous("gs://reports/scrub/r1", "x").location == "gs://reports/scrub/r1"


def test_a_hostile_summary_is_judged_not_crashed_on():
    odd = summary(config="not a mapping", reclaim_by_bucket=["b-x"])
    assert L.trust_problem(odd) is None
    assert L.scanned_buckets(odd) == ()
    assert L.scanned_buckets(summary(config={"source": {"buckets": "b-one"}})) == ()
    assert L.previous_run(candidate("r1", odd), "auto").prefix is None


def test_rows_that_are_not_the_rows_the_summary_counts_are_a_problem_in_either_file():
    assert L.rows_problem(None, 3, 2) is None  # an older run's summary counts no rows
    assert L.rows_problem((3, 2), 3, 2) is None
    for verified_read, findings_read in ((2, 2), (3, 1), (3, 3), (4, 1)):
        problem = L.rows_problem((3, 2), verified_read, findings_read)
        assert problem is not None
        assert f"{verified_read} readable verified row(s) and {findings_read} finding row(s)" in problem
        assert "counts 3 and 2" in problem


def test_a_ledger_row_is_keyed_by_its_bucket_and_object():
    assert L.object_key({"bucket": "b", "object": "o", "generation": 1}) == ("b", "o")


@pytest.mark.parametrize(
    "changes, field, kept",
    [
        ({"bucket": ""}, None, None),
        ({"object": ""}, None, None),
        ({"bucket": 3}, None, None),
        ({"object": None}, None, None),
        ({"size": "12"}, "size", 12),
        ({"size": "-1"}, "size", None),
        ({"size": 1.5}, "size", None),
        ({"size": False}, "size", None),
        ({"generation": 9}, "generation", 9),
        ({"crc32c": 5}, "crc32c", None),
        ({"sha256": ["s"]}, "sha256", None),
        ({"run_id": ""}, "run_id", "r1"),
        ({"run_id": 7}, "run_id", "r1"),
        ({"verified_at": "not a time"}, "verified_at", "2026-11-01T00:00:00Z"),
        # A row verified after its run started was not written by the run.
        ({"verified_at": "2026-11-02T00:00:00Z"}, "verified_at", None),
        ({"verified_at": "2026-11-01T00:00:00Z"}, "verified_at", "2026-11-01T00:00:00Z"),
    ],
)
def test_a_ledger_row_keeps_only_what_has_the_right_type(changes, field, kept):
    row = {"bucket": "b", "object": "o", "generation": 7, "size": 3, "crc32c": "c", "sha256": "s", **changes}
    got = L.ledger_row(row, "r1", "2026-11-01T00:00:00Z")
    assert (got if field is None else got[field]) == kept


def test_a_ledger_row_of_a_run_that_says_no_start_keeps_its_own_time():
    row = {"bucket": "b", "object": "o", "verified_at": "2026-11-02T00:00:00Z"}
    assert L.ledger_row(row, "r1", None)["verified_at"] == "2026-11-02T00:00:00Z"
    assert L.ledger_row({"bucket": "b", "object": "o"}, None, None)["verified_at"] is None


def test_the_ledger_of_a_dry_run_is_the_same_graph_with_its_run_not_chosen():
    assert L.unresolved_previous("auto", "gs://r/scrub/") == L.PreviousRun(
        kind=L.RUN_FOLDER, location="gs://r/scrub/LEDGER_RUN", chosen_by=L.AUTO
    )
    assert L.unresolved_previous("bq:my-project.audit.verified", "x") == L.PreviousRun(
        kind=L.BIGQUERY, location="my-project.audit.verified"
    )
    assert L.unresolved_previous("./runs/r1", "x") == L.PreviousRun(kind=L.RUN_FOLDER, location="./runs/r1")


def test_scanned_buckets_are_the_configured_strings_then_those_found():
    document = summary(reclaim_by_bucket={"b-found": {}, "b-one": {}})
    document["config"]["source"]["buckets"] = ["b-one", 7, "b-two"]
    assert L.scanned_buckets(document) == ("b-one", "b-two", "b-found")


def test_previous_run_is_whole():
    document = summary("r1", objects_verified=5, findings_by_kind={"a": 1, "b": 2})
    found = L.Candidate("/reports/r1", "folder-name", document, row_files=("verified-0.jsonl", "findings-0.jsonl"))
    previous = L.previous_run(found, "explicit")
    assert (previous.files, previous.expected_rows, previous.run_id) == (
        ("verified-0.jsonl", "findings-0.jsonl"),
        (5, 3),
        "r1",
    )
    unnamed = L.Candidate("/reports/r9", "folder-name", summary(run_id=None))
    assert L.previous_run(unnamed, "auto").run_id == "folder-name"


@pytest.mark.parametrize(
    "document, expected",
    [
        ({"objects_verified": 5, "findings_by_kind": {"a": 1, "b": 0}}, (5, 1)),
        ({"objects_verified": 0, "findings_by_kind": {}}, (0, 0)),
        ({"objects_verified": 5}, None),
        ({"findings_by_kind": {"a": 1}}, None),
        ({"objects_verified": True, "findings_by_kind": {"a": 1}}, None),
        ({"objects_verified": 5, "findings_by_kind": {"a": -1}}, None),
        ({"objects_verified": 5, "findings_by_kind": {"a": "1"}}, None),
        ({"objects_verified": 5, "findings_by_kind": [1]}, None),
        ("not a summary", None),
    ],
)
def test_expected_rows_only_from_counts_that_are_counts(document, expected):
    assert L.expected_rows(document) == expected


NEWEST_TRUSTED_RUN = (
    "WITH ledger_run AS (\n"
    "  SELECT run_id, started_at\n"
    "  FROM `my-project.audit.summaries`\n"
    "  WHERE unaccounted_objects = 0 AND exit_status IN (0, 1)\n"
    "    AND run_id != 'r9'\n"
    "    AND EXISTS (SELECT 1 FROM UNNEST(buckets) AS b WHERE b IN ('b-one', 'b\\'two'))\n"
    "  ORDER BY started_at DESC, run_id DESC\n"
    "  LIMIT 1\n"
    ")\n"
)


def test_the_bigquery_queries_in_full():
    """The whole GoogleSQL text, reviewed once: no BigQuery runs here to tell a changed query apart."""
    buckets = ("b-one", "b'two")
    assert L.bigquery_ledger_query("my-project.audit.verified", buckets, "containers/images/", "r9") == (
        NEWEST_TRUSTED_RUN + "SELECT v.run_id, v.bucket, v.object, v.generation, v.size, v.crc32c, v.sha256,\n"
        "  FORMAT_TIMESTAMP('%Y-%m-%dT%H:%M:%E6SZ', COALESCE(v.verified_at, v.run_started_at), 'UTC') AS verified_at\n"
        "FROM `my-project.audit.verified` AS v\n"
        "JOIN ledger_run AS r ON v.run_id = r.run_id AND v.run_started_at = r.started_at\n"
        "WHERE v.bucket IN ('b-one', 'b\\'two') AND STARTS_WITH(v.object, 'containers/images/')"
    )
    assert L.bigquery_findings_query("my-project.audit.verified", buckets, "r9") == (
        NEWEST_TRUSTED_RUN
        + "SELECT f.run_id, f.kind, f.severity, f.bucket, f.object, f.generation, f.digest, f.size,\n"
        "  f.repository, f.manifest_digest\n"
        "FROM `my-project.audit.findings` AS f\n"
        "JOIN ledger_run AS r ON f.run_id = r.run_id AND f.run_started_at = r.started_at"
    )


@pytest.mark.parametrize(
    "document, problem",
    [
        (None, "no summary.json: the run did not finish, so its rows may be incomplete"),
        ([], "summary.json is not a JSON object"),
        (
            summary(unaccounted=None),
            "summary.json has no unaccounted_objects count, so its rows cannot be shown complete",
        ),
        (
            summary(unaccounted=True),
            "summary.json has no unaccounted_objects count, so its rows cannot be shown complete",
        ),
        (
            summary(unaccounted=2),
            "2 listed object(s) ended in no report row (unaccounted_objects): its rows are incomplete",
        ),
        (summary(unaccounted=-3), "it wrote 3 more report row(s) than it listed objects (unaccounted_objects -3)"),
        (summary(run_id=""), "summary.json has no run_id"),
        (summary(run_id=7), "summary.json has no run_id"),
        (
            summary(started_at="yesterday"),
            "summary.json has no valid started_at, so the age of its verifications is unknown",
        ),
        (
            summary(started_at="2026-11-02T04:00:01Z"),
            "it says it started at 2026-11-02T04:00:01Z, after now (2026-11-02T03:00:00Z): "
            "a clock that cannot be trusted to date its verifications",
        ),
        (summary(started_at="2026-11-02T04:00:00Z"), None),  # exactly the slack later: still trusted
        (
            {**summary(), "config": {"scan": {"mode": "manifests"}}},
            "it ran with scan.mode manifests and hashed no object",
        ),
        (summary(), None),
    ],
)
def test_trust_problems_word_for_word(document, problem):
    from datetime import datetime, timezone

    now = datetime(2026, 11, 2, 3, 0, tzinfo=timezone.utc)  # noqa: UP017 (3.10 has no datetime.UTC)
    assert L.trust_problem(document, now) == problem


@pytest.mark.parametrize(
    "value, message",
    [
        ("  ", "expected auto, a run folder (local or gs://BUCKET/PATH/RUN_ID) or bq:PROJECT.DATASET.TABLE"),
        (None, "expected auto, a run folder (local or gs://BUCKET/PATH/RUN_ID) or bq:PROJECT.DATASET.TABLE"),
        ("gs://reports//", "expected gs://BUCKET/PATH/RUN_ID, the folder of one finished run, got 'gs://reports//'"),
        ("http://x/y", "expected a local run folder or gs://BUCKET/PATH/RUN_ID, got 'http://x/y'"),
    ],
)
def test_ledger_values_refused_word_for_word(value, message):
    with pytest.raises(ValueError) as err:
        L.parse_ledger(value)
    assert str(err.value) == message


def test_ledger_values_lose_only_trailing_slashes():
    assert L.parse_ledger(" gs://reports/scrub/r1// ") == L.LedgerSpec(L.RUN_FOLDER, "gs://reports/scrub/r1")
    assert L.parse_ledger("/") == L.LedgerSpec(L.RUN_FOLDER, "/")
    assert L.parse_ledger("/reports/r1/") == L.LedgerSpec(L.RUN_FOLDER, "/reports/r1")
    assert L.parse_time("2026-11-02T03:00:00") == L.parse_time("2026-11-02T03:00:00Z")
    assert L.parse_time("2026-11-02T03:00:00+01:00").utcoffset().total_seconds() == 3600


def test_a_run_from_the_future_is_skipped_by_auto_and_ties_go_to_the_later_name():
    from datetime import datetime, timezone

    now = datetime(2026, 11, 2, 3, 0, tzinfo=timezone.utc)  # noqa: UP017 (3.10 has no datetime.UTC)
    future = candidate("r9", summary("r9", "2026-11-05T00:00:00Z"))
    good = candidate("r1", summary("r1", "2026-11-01T03:00:00Z"))
    choice = L.choose_auto([future, good], "current", now)
    assert choice.taken is good and [run for run, _ in choice.skipped] == ["r9"]
    assert choice.skipped[0][1].startswith("it says it started at 2026-11-05T00:00:00Z, after now")
    # An untrusted run that started at the same time as the one taken is not newer: not named.
    twin = candidate("r2", summary("r2", "2026-11-01T03:00:00Z", unaccounted=1))
    assert L.choose_auto([good, twin], "current").skipped == ()
    unread = candidate("r1", None)  # no summary, and its name sorts as the taken one's
    assert L.choose_auto([good, unread], "current").skipped == ()
    # Skipped runs of one start are listed by run id, newest name first.
    late = [candidate(name, summary(name, "2026-11-02T00:00:00Z", unaccounted=1)) for name in ("ra", "rc", "rb")]
    assert [run for run, _ in L.choose_auto([good, *late], "current").skipped] == ["rc", "rb", "ra"]


def test_a_folder_whose_files_are_damaged_names_that_problem_first():
    damaged = L.Candidate("/reports/r1", "r1", summary("r1"), files_problem="verified-0.jsonl is a FIFO")
    assert damaged.problem() == "verified-0.jsonl is a FIFO"
    unfinished = L.Candidate("/reports/r2", "r2", None, files_problem="summary.json does not parse")
    assert unfinished.problem() == "no summary.json: the run did not finish, so its rows may be incomplete"


def test_exactly_the_shown_number_of_skipped_runs_are_all_listed():
    runs = [candidate(f"r{n:02d}", None) for n in range(L.SKIPPED_SHOWN)]
    lines = L.choice_lines("/reports", L.choose_auto(runs, "now"))
    assert len(lines) == 1 + L.SKIPPED_SHOWN and "more untrusted" not in lines[-1]


def test_literals_escape_backslashes_and_quotes_and_a_table_needs_three_parts():
    assert L._quote("a\\'b") == "'a\\\\\\'b'"
    with pytest.raises(ValueError, match=r"^not PROJECT.DATASET.TABLE: 'p.d'$"):
        L.table_parts("p.d")


def test_ledger_values_keep_their_last_character():
    assert L.parse_ledger("gs://reports/X") == L.LedgerSpec(L.RUN_FOLDER, "gs://reports/X")
    assert L.parse_ledger("./runs/20261101T030000X/") == L.LedgerSpec(L.RUN_FOLDER, "./runs/20261101T030000X")
    assert L.unresolved_previous("auto", "gs://r/X").location == "gs://r/X/LEDGER_RUN"
    assert L.parse_time(5) is None and L.parse_time("") is None


def test_a_summary_that_is_not_an_object_has_no_start():
    odd = L.Candidate("/reports/r0", "r0", ["not", "an", "object"])
    good = candidate("r1", summary("r1"))
    choice = L.choose_auto([odd, good], "current")
    assert choice.taken is good and choice.skipped == ()
