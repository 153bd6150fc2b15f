"""Pure: how the terminal's change lines name what changed when a row lacks a bucket, object or subject."""

from __future__ import annotations

from pipeline.core import run_diff as d


def _lines(*rows):
    block = {
        "previous_run_id": "r1",
        "objects": {"new": 0, "changed": 0, "vanished": 0},
        "findings": {"new": len(rows), "gone": 0, "persisting": 0},
        "examples": {d.NEW_FINDING: list(rows)},
    }
    return d.change_lines(block, shown=len(rows))[1:]


def test_a_row_is_named_by_path_object_subject_and_bucket_or_what_it_has():
    assert _lines(
        {"kind": "read_error", "bucket": "b", "object": "containers/images/sha256:aa"},
        {"kind": "read_error", "object": "containers/images/sha256:bb"},
        {"kind": "invalid_manifest", "subject": "gcr.io/p/app@sha256:cc", "bucket": "b"},
        {"kind": "invalid_manifest", "subject": "gcr.io/p/app@sha256:dd"},
        {"kind": "invalid_manifest"},
    ) == [
        "  new finding: read_error gs://b/containers/images/sha256:aa",
        "  new finding: read_error containers/images/sha256:bb",
        "  new finding: invalid_manifest gcr.io/p/app@sha256:cc in bucket b",
        "  new finding: invalid_manifest gcr.io/p/app@sha256:dd",
        # Nothing to name: the line ends after the kind rather than inventing a name.
        "  new finding: invalid_manifest ",
    ]
