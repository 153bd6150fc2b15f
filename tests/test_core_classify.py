"""Pure: one listed-and-read object becomes exactly one verified row or one finding."""

import base64
import hashlib

import google_crc32c
import pytest

from pipeline.core.blobs import ListedObject, ReadFailure, ReadResult
from pipeline.core.classify import classify_name, classify_read
from pipeline.core.findings import FINDING_FIELDS, VERIFIED_FIELDS, Kind, finding, verified

PREFIX = "containers/images/"
CONTENT = b"layer bytes"
DIGEST = "sha256:" + hashlib.sha256(CONTENT).hexdigest()
CREATED = "2026-01-02T03:04:05.678000Z"


def crc(data: bytes) -> str:
    return base64.b64encode(google_crc32c.Checksum(data).digest()).decode()


def listed(data: bytes = CONTENT, name: str = PREFIX + DIGEST, crc32c: str | None = "from-data") -> ListedObject:
    stored = crc(data) if crc32c == "from-data" else crc32c
    return ListedObject("b", name, 7, len(data), stored, storage_class="NEARLINE", time_created=CREATED)


def read_of(data: bytes) -> ReadResult:
    return ReadResult(sha256=hashlib.sha256(data).hexdigest(), crc32c=crc(data), size=len(data))


def test_intact_object_is_verified_with_its_evidence():
    row, problem = classify_read(listed(), DIGEST, read_of(CONTENT))
    assert problem is None
    assert list(row) == list(VERIFIED_FIELDS)
    assert row == {
        "bucket": "b",
        "object": PREFIX + DIGEST,
        "generation": 7,
        "size": len(CONTENT),
        "crc32c": crc(CONTENT),
        "sha256": DIGEST.removeprefix("sha256:"),
        "storage_class": "NEARLINE",
        "time_created": CREATED,
        # docs/incremental.md: read by this run (the pipeline stamps verified_at with the run's start).
        "verified_by": "read",
        "verified_at": None,
        "ledger_run_id": None,
    }


def test_damage_after_write_disagrees_with_stored_crc32c():
    damaged = b"layer bytez"
    row, problem = classify_read(listed(CONTENT), DIGEST, read_of(damaged))
    assert row is None
    assert problem["kind"] == "digest_mismatch" and problem["severity"] == "error"
    assert problem["expected"] == DIGEST
    assert problem["actual"] == "sha256:" + hashlib.sha256(damaged).hexdigest()
    assert problem["crc32c_match"] is False
    assert "damaged after it was written" in problem["detail"]
    # The object as listed, for an auditor: the stored crc32c (not the one of the bytes read), the generation.
    assert problem["crc32c"] == crc(CONTENT) and problem["generation"] == 7
    assert problem["storage_class"] == "NEARLINE" and problem["time_created"] == CREATED


def test_bad_write_agrees_with_stored_crc32c():
    wrong = b"other bytes"
    _, problem = classify_read(listed(wrong), DIGEST, read_of(wrong))
    assert problem["crc32c_match"] is True
    assert "written with wrong content" in problem["detail"]


def test_no_stored_crc32c_is_said_plainly():
    wrong = b"other"
    _, problem = classify_read(listed(wrong, crc32c=None), DIGEST, read_of(wrong))
    assert problem["crc32c_match"] is None
    assert "no crc32c" in problem["detail"]


def test_size_difference_is_named():
    _, problem = classify_read(listed(CONTENT), DIGEST, read_of(CONTENT[:-3]))
    assert f"read {len(CONTENT) - 3} bytes, listing said {len(CONTENT)}" in problem["detail"]


@pytest.mark.parametrize(
    "failure, kind, severity",
    [
        (ReadFailure.VANISHED, "vanished", "warning"),
        (ReadFailure.UNREADABLE, "read_error", "error"),
    ],
)
def test_read_failures_become_findings_with_status(failure, kind, severity):
    result = ReadResult(failure=failure, http_status=503, reason="HTTP 503", attempts=5)
    row, problem = classify_read(listed(), DIGEST, result)
    assert row is None
    assert (problem["kind"], problem["severity"], problem["http_status"]) == (kind, severity, 503)
    if kind == "read_error":
        assert "after 5 attempt(s)" in problem["detail"]


def test_malformed_name_finding_and_well_formed_name_passes():
    assert classify_name(listed(), PREFIX) == (DIGEST, None)
    digest, problem = classify_name(listed(name=PREFIX + "tmp-upload"), PREFIX)
    assert digest is None
    assert problem["kind"] == "malformed_name" and problem["severity"] == "warning"
    assert problem["actual"] == "tmp-upload"


def test_every_finding_row_has_the_whole_schema():
    row = finding(Kind.VANISHED, bucket="b")
    assert tuple(row) == FINDING_FIELDS
    with pytest.raises(ValueError, match="not finding fields"):
        finding(Kind.VANISHED, colour="red")
    with pytest.raises(ValueError, match="missing"):
        verified(bucket="b")


def test_object_fields_and_is_error():
    from types import SimpleNamespace

    from pipeline.core.findings import is_error, object_fields

    bare = SimpleNamespace(bucket="b", name="o", generation=1, size=2, crc32c="c")
    assert object_fields(bare) == {
        "bucket": "b",
        "object": "o",
        "generation": 1,
        "size": 2,
        "crc32c": "c",
        "storage_class": None,
        "time_created": None,
    }
    assert is_error(finding(Kind.DIGEST_MISMATCH)) and not is_error(finding(Kind.UNREFERENCED_BLOB))
    assert not is_error({})
