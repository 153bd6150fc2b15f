"""pipeline/core/run_diff.py: objects new, changed, vanished; findings new, gone, persisting."""

from __future__ import annotations

import random

from pipeline.core import run_diff as d
from pipeline.core.findings import Kind, finding


def obj(generation, name="o", run_id=None):
    return {"bucket": "b", "object": name, "generation": generation, "size": 10, "run_id": run_id}


def test_object_changes():
    (new,) = d.object_changes([obj(2)], [])
    assert new["change"] == d.NEW_OBJECT and new["generation"] == 2 and tuple(new) == d.CHANGE_FIELDS
    (changed,) = d.object_changes([obj(2)], [obj(1, run_id="r1")])
    assert changed["change"] == d.CHANGED_OBJECT
    assert (changed["previous_generation"], changed["generation"], changed["previous_run_id"]) == (1, 2, "r1")
    (vanished,) = d.object_changes([], [obj(1, run_id="r1")])
    assert vanished["change"] == d.VANISHED_OBJECT and vanished["generation"] is None
    assert vanished["previous_generation"] == 1
    assert d.object_changes([obj(1)], [obj(1)]) == []
    assert d.object_changes([], []) == []


def test_finding_keys_use_the_object_else_the_digest_else_the_manifest():
    on_object = finding(Kind.DIGEST_MISMATCH, bucket="b", object="o", digest="sha256:x")
    missing = finding(Kind.MISSING_BLOB, bucket="b", digest="sha256:y")
    manifest = finding(Kind.INVALID_MANIFEST, repository="gcr.io/p/app", manifest_digest="sha256:z")
    assert d.finding_key(on_object) == ("finding", "digest_mismatch", "b", "o")
    assert d.finding_key(missing) == ("finding", "missing_blob", "b", "sha256:y")
    assert d.finding_key(manifest) == ("finding", "invalid_manifest", None, "gcr.io/p/app@sha256:z")


def test_finding_changes():
    row = {**finding(Kind.READ_ERROR, bucket="b", object="o", generation=3), "run_id": "r1"}
    key = d.finding_key(row)
    assert d.finding_changes(key, [row], [])[0]["change"] == d.NEW_FINDING
    (gone,) = d.finding_changes(key, [], [row])
    assert gone["change"] == d.GONE_FINDING and gone["previous_run_id"] == "r1" and gone["severity"] == "error"
    (persisting,) = d.finding_changes(key, [row], [row])
    assert persisting["change"] == d.PERSISTING_FINDING and persisting["subject"] == "o"


def test_joined_changes_tell_objects_from_findings():
    assert d.joined_changes((("object", "b", "o"), {"current": [obj(1)], "previous": []}))[0]["change"] == "new_object"
    row = finding(Kind.MALFORMED_NAME, bucket="b", object="x")
    key = d.finding_key(row)
    assert d.joined_changes((key, {"current": [], "previous": [row]}))[0]["change"] == "gone_finding"


def test_is_object_row():
    assert d.is_object_row({"bucket": "b", "object": "o", "sha256": "x"})
    assert d.is_object_row(finding(Kind.LEDGER_DISAGREES))
    assert not d.is_object_row(finding(Kind.UNREFERENCED_BLOB))


def rows_of_every_change(count):
    rows = []
    for n in range(count):
        rows.append(d.change_row(d.NEW_OBJECT, bucket="b", object=f"n{n:03d}", generation=n))
        rows.append(d.change_row(d.NEW_FINDING, bucket="b", object=f"f{n:03d}", kind="read_error", severity="error"))
    return rows


def test_the_accumulator_merges_in_any_order_to_the_same_block():
    rows = rows_of_every_change(50)
    whole = d.ChangesAccumulator()
    for row in rows:
        whole.add(row)
    shuffled = rows[:]
    random.Random(4).shuffle(shuffled)
    parts = [d.ChangesAccumulator() for _ in range(3)]
    for i, row in enumerate(shuffled):
        parts[i % 3].add(row)
    merged = parts[2].merge(parts[0]).merge(parts[1])
    previous = {"run_id": "r1", "location": "/reports/r1"}
    assert d.changes_block(merged, previous) == d.changes_block(whole, previous)
    block = d.changes_block(whole, previous, ["changes-00000-of-00001.jsonl"])
    assert block["objects"] == {"new": 50, "changed": 0, "vanished": 0}
    assert block["findings"] == {"new": 50, "gone": 0, "persisting": 0}
    assert block["findings_by_kind"] == {"read_error": {"new": 50, "gone": 0, "persisting": 0}}
    assert [r["object"] for r in block["examples"]["new_object"]] == [f"n{n:03d}" for n in range(20)]
    assert block["examples"]["vanished_object"] == [] and block["files"] == ["changes-00000-of-00001.jsonl"]
    assert block["previous_run_id"] == "r1"


def test_a_bigquery_ledger_names_its_run_from_the_rows():
    acc = d.ChangesAccumulator().add(d.change_row(d.VANISHED_OBJECT, bucket="b", object="o", previous_run_id="r7"))
    assert d.changes_block(acc, {"run_id": None, "location": "p.d.verified"})["previous_run_id"] == "r7"


def test_change_lines():
    acc = d.ChangesAccumulator()
    acc.add(d.change_row(d.CHANGED_OBJECT, bucket="b", object="o", generation=2, previous_generation=1))
    acc.add(d.change_row(d.NEW_FINDING, object=None, subject="gcr.io/p@sha256:z", kind="invalid_manifest"))
    lines = d.change_lines(d.changes_block(acc, {"run_id": "r1"}))
    assert lines[0] == ("since run r1: 0 new, 1 changed, 0 vanished object(s); findings 1 new, 0 gone, 0 persisting")
    assert "  changed: gs://b/o (generation 1 -> 2)" in lines
    assert "  new finding: invalid_manifest gcr.io/p@sha256:z" in lines
    assert d.change_lines(None) == []


def test_a_new_missing_blob_is_named_by_digest_and_bucket_not_as_an_object_path():
    """Issue 18: it printed as gs://BUCKET/sha256:…, a path that names no object."""
    digest = "sha256:" + "5" * 64
    row = {"kind": "missing_blob", "severity": "error", "bucket": "artifacts.p.appspot.com", "digest": digest}
    (change,) = d.finding_changes(d.finding_key(row), [row], [])
    lines = d.change_lines(d.changes_block(d.ChangesAccumulator().add(change), {"run_id": "r1"}))
    assert f"  new finding: missing_blob {digest} in bucket artifacts.p.appspot.com" in lines
    assert not [line for line in lines if "gs://" in line]


def test_page_section_is_none_without_a_previous_run():
    assert d.page_section({"changes": None}) is None
    block = d.changes_block(d.ChangesAccumulator(), {"run_id": "r1", "location": "x"})
    section = d.page_section({"changes": block, "ledger": {"chosen_by": "auto", "skipped": []}})
    assert section["previous_run_id"] == "r1" and section["chosen_by"] == "auto"


def test_the_page_section_renders_counts_and_escaped_examples():
    from pipeline.report_html.changes import render_changes

    acc = d.ChangesAccumulator()
    acc.add(d.change_row(d.VANISHED_OBJECT, bucket="b", object="<script>x</script>", previous_generation=4))
    acc.add(d.change_row(d.CHANGED_OBJECT, bucket="b", object="o", generation=5, previous_generation=4))
    summary = {
        "changes": d.changes_block(acc, {"run_id": "r1", "location": "/reports/r1"}),
        "ledger": {"chosen_by": "auto", "skipped": [{"run": "r0", "reason": "no summary.json"}]},
        "verified_from_ledger": 7,
        "bytes_from_ledger": 7000,
        "reverified_from_ledger": 1,
    }
    page = render_changes({"changes": d.page_section(summary)})
    assert page.startswith('<h2 id="changes">Since the previous run</h2>')
    assert "0 new, 1 changed and 1 vanished object(s)" in page
    assert "7 object(s) (7.0 kB) were carried over" in page and "skipped run" in page
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "4 (gone)" in page and "4 \u2192 5" in page
    assert render_changes({"changes": None}) == ""


def test_only_buckets_both_runs_scanned_are_compared():
    assert d.compared("b-one", ("b-one", "b-two"))
    assert not d.compared("b-new", ("b-one",))
    assert d.compared(None, ("b-one",)), "manifest findings name no bucket"
    assert d.compared("anything", ()), "a BigQuery ledger does not say which buckets its run scanned"


def change(change, **fields):
    return {**dict.fromkeys(d.CHANGE_FIELDS), "change": change, **fields}


def test_object_changes_are_whole_rows():
    now = {"bucket": "b", "object": "o", "generation": 5, "size": 11, "run_id": "r2"}
    before = {"bucket": "b", "object": "o", "generation": 4, "size": 10, "run_id": "r1"}
    assert d.object_changes([now], []) == [change("new_object", bucket="b", object="o", generation=5, size=11)]
    assert d.object_changes([now], [before]) == [
        change(
            "changed_object",
            bucket="b",
            object="o",
            generation=5,
            size=11,
            previous_generation=4,
            previous_size=10,
            previous_run_id="r1",
        )
    ]
    assert d.object_changes([], [before]) == [
        change("vanished_object", bucket="b", object="o", previous_generation=4, previous_size=10, previous_run_id="r1")
    ]


def test_of_several_previous_rows_the_current_generation_else_the_newest_decides_in_any_order():
    now = obj(5)
    for previous in ([obj(5, run_id="r1"), obj(9, run_id="r1")], [obj(9, run_id="r1"), obj(5, run_id="r1")]):
        assert d.object_changes([now], previous) == []
    for previous in ([obj(3, run_id="r1"), obj(4, run_id="r1")], [obj(4, run_id="r1"), obj(3, run_id="r1")]):
        (changed,) = d.object_changes([now], previous)
        assert changed["previous_generation"] == 4
    # A row without a usable generation (missing, or a bool) is older than any generation.
    for odd in (None, True, "7"):
        for previous in ([obj(odd), obj(2)], [obj(2), obj(odd)]):
            (changed,) = d.object_changes([now], previous)
            assert changed["previous_generation"] == 2, odd
        (vanished,) = d.object_changes([], [obj(odd), obj(0)])
        assert vanished["previous_generation"] == 0
    # The previous run id is the first row's that has one.
    (changed,) = d.object_changes([now], [obj(3), obj(4, run_id="r7")])
    assert changed["previous_run_id"] == "r7"


def test_finding_changes_are_whole_rows():
    before = {**finding(Kind.READ_ERROR, bucket="b", object="o", generation=3), "run_id": "r1"}
    now = {**finding(Kind.READ_ERROR, bucket="b", object="o", generation=4), "run_id": "r2"}
    key = d.finding_key(now)
    fields = {"bucket": "b", "object": "o", "kind": "read_error", "severity": "error", "subject": "o"}
    assert d.finding_changes(key, [now], []) == [change("new_finding", **fields, generation=4)]
    assert d.finding_changes(key, [], [before]) == [
        change("gone_finding", **fields, previous_generation=3, previous_run_id="r1")
    ]
    assert d.finding_changes(key, [now], [before]) == [
        change("persisting_finding", **fields, generation=4, previous_generation=3, previous_run_id="r1")
    ]
    assert d.finding_changes(key, [], []) == []
    # A kind this version does not know keeps the severity its row gave.
    odd = {"kind": "from_the_future", "severity": "warning", "object": "o", "bucket": "b"}
    (row,) = d.finding_changes(d.finding_key(odd), [], [odd])
    assert (row["kind"], row["severity"], row["previous_run_id"]) == ("from_the_future", "warning", None)


def test_a_finding_subject_falls_back_to_the_reference_then_the_repository():
    assert d.finding_subject({"manifest_digest": "sha256:z"}) == "@sha256:z"
    assert d.finding_subject({"reference": "gcr.io/p/app:v1", "repository": "gcr.io/p/app"}) == "gcr.io/p/app:v1"
    assert d.finding_subject({"repository": "gcr.io/p/app"}) == "gcr.io/p/app"
    assert d.finding_subject({}) == ""
    assert d.finding_subject({"object": "", "digest": "sha256:y"}) == "sha256:y"


def test_the_object_state_and_key_compared():
    row = {"bucket": "b", "object": "o", "generation": 3, "size": 4, "run_id": "r", "sha256": "x", "crc32c": "c"}
    assert d.object_state(row) == {"bucket": "b", "object": "o", "generation": 3, "size": 4, "run_id": "r"}
    assert d.object_state({}) == dict.fromkeys(("bucket", "object", "generation", "size", "run_id"))
    assert d.object_key(row) == ("object", "b", "o")


def test_examples_keep_errors_first_then_bucket_then_subject():
    acc = d.ChangesAccumulator()
    rows = [
        d.change_row(d.NEW_FINDING, bucket="b", subject="s2", kind="unreferenced_blob", severity="info"),
        d.change_row(d.NEW_FINDING, bucket="b", subject="s9", kind="invalid_manifest", severity="warning"),
        d.change_row(d.NEW_FINDING, bucket="a", object="o", kind="x", severity=None),
        d.change_row(d.NEW_FINDING, bucket=None, subject="s1", kind="read_error", severity="error"),
        d.change_row(d.NEW_FINDING, bucket="b", subject="s0", kind="read_error", severity="error"),
        d.change_row(d.NEW_FINDING, bucket="a", object="o2", kind="read_error", severity="error"),
        d.change_row(d.NEW_FINDING, bucket="b", subject="s1", kind="unreferenced_blob", severity="info"),
        d.change_row(d.NEW_FINDING, bucket="b", subject="s0", kind="unreferenced_blob", severity="info"),
    ]
    for row in rows:
        acc.add(row)
    shown = [(r["severity"], r["bucket"], r["subject"] or r["object"]) for r in acc.example_rows(d.NEW_FINDING)]
    assert shown == [
        ("error", None, "s1"),
        ("error", "a", "o2"),
        ("error", "b", "s0"),
        ("warning", "b", "s9"),
        ("info", "b", "s0"),
        ("info", "b", "s1"),
        ("info", "b", "s2"),
        (None, "a", "o"),
    ]
    # Only the first EXAMPLES_PER_CHANGE survive a trim, and the counts keep every row.
    many = d.ChangesAccumulator()
    for n in reversed(range(2 * d.EXAMPLES_PER_CHANGE + 1)):
        many.add(d.change_row(d.NEW_OBJECT, bucket="b", object=f"o{n:03d}"))
    assert [r["object"] for r in many.example_rows(d.NEW_OBJECT)] == [f"o{n:03d}" for n in range(20)]
    assert many.counts[d.NEW_OBJECT] == 41 and many.example_rows(d.GONE_FINDING) == []


def test_a_changes_block_is_whole():
    acc = d.ChangesAccumulator()
    acc.add(d.change_row(d.GONE_FINDING, bucket="b", object="o", kind="read_error", previous_run_id="r1"))
    acc.add(d.change_row(d.PERSISTING_FINDING, bucket="b", object="p", kind="digest_mismatch", previous_run_id="r2"))
    block = d.changes_block(acc, {"run_id": None, "location": "p.d.verified"}, ["c-1.jsonl", "c-0.jsonl"])
    assert block == {
        "previous_run_id": None,  # two runs in the rows: none is named
        "previous_location": "p.d.verified",
        "objects": {"new": 0, "changed": 0, "vanished": 0},
        "findings": {"new": 0, "gone": 1, "persisting": 1},
        "findings_by_kind": {
            "digest_mismatch": {"new": 0, "gone": 0, "persisting": 1},
            "read_error": {"new": 0, "gone": 1, "persisting": 0},
        },
        "examples": {change: acc.example_rows(change) for change in d.CHANGES},
        "examples_per_change": 20,
        "files": ["c-0.jsonl", "c-1.jsonl"],
        "withheld": None,
    }
    assert d.changes_block(acc, {"run_id": "r9"})["previous_run_id"] == "r9"
    withheld = d.changes_block(d.ChangesAccumulator(), {}, withheld="the ledger's rows are damaged")
    assert withheld["withheld"] == "the ledger's rows are damaged"
    assert d.change_lines(withheld) == ["since run (unknown): not compared: the ledger's rows are damaged"]


def test_change_lines_name_up_to_three_of_each_change_in_order():
    acc = d.ChangesAccumulator()
    for n in range(4):
        acc.add(d.change_row(d.NEW_OBJECT, bucket="b", object=f"n{n}"))
    acc.add(d.change_row(d.VANISHED_OBJECT, bucket="b", object="v"))
    acc.add(d.change_row(d.GONE_FINDING, bucket="b", object="g", kind="read_error", severity="error"))
    acc.add(d.change_row(d.PERSISTING_FINDING, bucket="b", object="p", kind="read_error", severity="error"))
    assert d.change_lines(d.changes_block(acc, {})) == [
        "since run (unknown): 4 new, 0 changed, 1 vanished object(s); findings 0 new, 1 gone, 1 persisting",
        "  new: gs://b/n0",
        "  new: gs://b/n1",
        "  new: gs://b/n2",
        "  vanished: gs://b/v",
        "  gone finding: read_error gs://b/g",
    ]
    assert d.change_lines(d.changes_block(acc, {}), shown=1)[1:] == [
        "  new: gs://b/n0",
        "  vanished: gs://b/v",
        "  gone finding: read_error gs://b/g",
    ]


def test_the_page_section_is_whole():
    acc = d.ChangesAccumulator().add(d.change_row(d.NEW_OBJECT, bucket="b", object="o"))
    block = d.changes_block(acc, {"run_id": "r1", "location": "/reports/r1"}, ["c-0.jsonl"])
    skipped = [{"run": f"r{n}", "reason": "why"} for n in range(12)]
    summary = {
        "changes": block,
        "ledger": {"chosen_by": "auto", "skipped": skipped},
        "verified_from_ledger": 7,
        "bytes_from_ledger": 7000,
        "reverified_from_ledger": 1,
    }
    assert d.page_section(summary) == {
        "previous_run_id": "r1",
        "previous_location": "/reports/r1",
        "chosen_by": "auto",
        "skipped": skipped[:10],
        "objects": {"new": 1, "changed": 0, "vanished": 0},
        "findings": {"new": 0, "gone": 0, "persisting": 0},
        "findings_by_kind": {},
        "examples": block["examples"],
        "files": ["c-0.jsonl"],
        "verified_from_ledger": 7,
        "bytes_from_ledger": 7000,
        "reverified_from_ledger": 1,
    }
    bare = d.page_section({"changes": {}, "ledger": "not a mapping"})
    assert bare == {
        "previous_run_id": None,
        "previous_location": None,
        "chosen_by": None,
        "skipped": [],
        "objects": {},
        "findings": {},
        "findings_by_kind": {},
        "examples": {change: [] for change in d.CHANGES},
        "files": [],
        "verified_from_ledger": 0,
        "bytes_from_ledger": 0,
        "reverified_from_ledger": 0,
    }
    assert d.page_section({"changes": {**block, "withheld": "damaged"}}) is None
    assert d.page_section({"changes": "not a block"}) is None


def test_the_accumulator_keeps_at_most_five_run_ids_and_merges_into_an_empty_one():
    acc = d.ChangesAccumulator()
    acc.add(d.change_row(d.NEW_OBJECT, bucket="b", object="none"))
    assert acc.previous_run_ids == set()
    for n in range(7):
        acc.add(d.change_row(d.VANISHED_OBJECT, bucket="b", object=f"o{n}", previous_run_id=f"r{n}"))
    assert len(acc.previous_run_ids) == 5
    other = d.ChangesAccumulator().add(d.change_row(d.GONE_FINDING, bucket="b", object="x", previous_run_id="z"))
    merged = d.ChangesAccumulator().merge(other)
    assert merged.previous_run_ids == {"z"} and merged.example_rows(d.GONE_FINDING) == other.example_rows(
        d.GONE_FINDING
    )
    both = d.ChangesAccumulator().add(d.change_row(d.GONE_FINDING, bucket="b", object="y", previous_run_id="w"))
    assert both.merge(other).previous_run_ids == {"w", "z"}


def test_examples_of_one_object_with_two_kinds_rank_equal_and_still_sort():
    acc = d.ChangesAccumulator()
    for kind in ("size_mismatch", "read_error"):
        acc.add(d.change_row(d.NEW_FINDING, bucket="b", object="o", subject="o", kind=kind, severity="error"))
    acc.add(d.change_row(d.NEW_FINDING, bucket="a", object="w", subject="w", kind="k", severity="warning"))
    assert [r["kind"] for r in acc.example_rows(d.NEW_FINDING)] == ["size_mismatch", "read_error", "k"]


def test_a_finding_row_without_a_severity_takes_its_kinds():
    row = {"kind": "read_error", "bucket": "b", "object": "o"}
    (gone,) = d.finding_changes(d.finding_key(row), [], [row])
    assert gone["severity"] == "error"
    (new,) = d.joined_changes((d.finding_key(row), {"current": [row], "previous": []}))
    assert new["change"] == d.NEW_FINDING


def test_a_withheld_comparison_names_its_run_and_the_page_keeps_kinds():
    block = d.changes_block(d.ChangesAccumulator(), {"run_id": "r1"}, withheld="damaged")
    assert d.change_lines(block) == ["since run r1: not compared: damaged"]
    acc = d.ChangesAccumulator().add(d.change_row(d.NEW_FINDING, bucket="b", object="o", kind="read_error"))
    section = d.page_section({"changes": d.changes_block(acc, {"run_id": "r1"})})
    assert section["findings_by_kind"] == {"read_error": {"new": 1, "gone": 0, "persisting": 0}}


def test_a_missing_bucket_or_subject_sorts_first_even_before_digits():
    acc = d.ChangesAccumulator()
    acc.add(d.change_row(d.NEW_FINDING, bucket="1b", subject="a", kind="k", severity="error"))
    acc.add(d.change_row(d.NEW_FINDING, bucket=None, subject="z", kind="k", severity="error"))
    acc.add(d.change_row(d.NEW_FINDING, bucket="2b", subject="0a", kind="k", severity="error"))
    acc.add(d.change_row(d.NEW_FINDING, bucket="2b", subject="", kind="k", severity="error"))
    shown = [(r["bucket"], r["subject"]) for r in acc.example_rows(d.NEW_FINDING)]
    assert shown == [(None, "z"), ("1b", "a"), ("2b", ""), ("2b", "0a")]
