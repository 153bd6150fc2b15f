"""The read protocol's decisions, tested directly: pure functions over what the reads returned."""

import hashlib

import pytest

from pipeline.core.blobs import ListedObject, ReadFailure, ReadResult
from pipeline.core.classify import classify_name, classify_read
from pipeline.core.findings import FINDING_FIELDS
from pipeline.core.read_verdict import (
    MAX_READS,
    MAX_RETRY_AFTER_S,
    CompleteRead,
    Transfer,
    Verdict,
    attempt_deadline,
    body_outcome,
    decide,
    parse_content_range,
    plan_body,
    retry_wait,
    server_crc32c,
    suspicions,
)
from pipeline.core.shards import plan_ranges

PREFIX = "containers/images/"
NAME_HEX = hashlib.sha256(b"the blob").hexdigest()
OTHER_HEX = hashlib.sha256(b"damaged").hexdigest()
THIRD_HEX = hashlib.sha256(b"garbled").hexdigest()


def read(sha256=NAME_HEX, crc32c="AAAAAA==", size=8, fresh=False, server=None) -> CompleteRead:
    return CompleteRead(sha256=sha256, crc32c=crc32c, size=size, fresh=fresh, server_crc32c=server)


# --- one response ---


@pytest.mark.parametrize(
    "asked_from, status, content_range, offset, trusted",
    [
        (0, 200, None, 0, True),
        (0, 206, "bytes 0-99/100", 0, True),
        (40, 206, "bytes 40-99/100", 40, True),
        (40, 206, "bytes 40-99/*", 40, True),
        # A server that ignores Range answers 200: the body starts at byte 0, and a short one is not resumed.
        (40, 200, None, 0, False),
    ],
)
def test_a_body_is_taken_where_it_belongs(asked_from, status, content_range, offset, trusted):
    plan = plan_body(asked_from, status, content_range, 100)
    assert (plan.offset, plan.prefix_trusted, plan.problem) == (offset, trusted, None)


@pytest.mark.parametrize(
    "asked_from, content_range, problem",
    [
        (40, None, "206 with an unusable Content-Range None"),
        (40, "bytes */100", "206 with an unusable Content-Range 'bytes */100'"),
        (40, "bytes 41-99/100", "206 Content-Range bytes 41-99/100 starts at 41, asked 40"),
        (40, "bytes 0-99/100", "206 Content-Range bytes 0-99/100 starts at 0, asked 40"),
        (40, "bytes 40-98/100", "206 Content-Range bytes 40-98/100 does not end the 100-byte listed object"),
        (40, "bytes 40-99/101", "206 Content-Range bytes 40-99/101 does not end the 100-byte listed object"),
        (40, "bytes 40-100/100", "206 Content-Range bytes 40-100/100 does not end the 100-byte listed object"),
    ],
)
def test_a_206_that_does_not_start_where_asked_or_end_at_the_listed_end_is_refused(asked_from, content_range, problem):
    plan = plan_body(asked_from, 206, content_range, 100)
    assert plan.refused and plan.problem == problem


def test_plan_body_refuses_statuses_it_was_not_meant_for():
    with pytest.raises(ValueError, match="expected status 200 or 206, got 404"):
        plan_body(0, 404, None, 10)


def test_content_range_parsing():
    assert parse_content_range("bytes 5-9/10") == (5, 9, 10)
    assert parse_content_range(" bytes 0-0/* ") == (0, 0, None)
    assert parse_content_range("bytes 5-9") is None
    assert parse_content_range("items 5-9/10") is None


@pytest.mark.parametrize(
    "received, outcome", [(99, Transfer.SHORT), (100, Transfer.COMPLETE), (101, Transfer.LONG), (0, Transfer.SHORT)]
)
def test_only_the_listed_size_is_complete(received, outcome):
    assert body_outcome(received, 100) is outcome


def test_the_server_checksum_is_read_from_x_goog_hash():
    assert server_crc32c("crc32c=n03x6A==,md5=Ojk9c3dhfxgoKVVHYwFbHQ==") == "n03x6A=="
    assert server_crc32c("md5=Ojk9c3dhfxgoKVVHYwFbHQ==, crc32c=n03x6A==") == "n03x6A=="
    assert server_crc32c("md5=Ojk9c3dhfxgoKVVHYwFbHQ==") is None
    assert server_crc32c(None) is None


def test_the_deadline_grows_with_the_size():
    assert attempt_deadline(0, 60.0, 1024 * 1024) == 60.0
    assert attempt_deadline(10 * 1024 * 1024, 60.0, 1024 * 1024) == 70.0
    assert attempt_deadline(3000, 0.5, 1000) == 3.5


@pytest.mark.parametrize(
    "status, retry_after, wait",
    [
        (429, 7.0, 7.0),
        (503, 2.0, 2.0),
        (503, 0.0, 0.0),
        (503, -5.0, 0.0),
        (429, 3600.0, MAX_RETRY_AFTER_S),
        (429, None, 0.25),  # no Retry-After: the backoff
        (500, 7.0, 0.25),  # Retry-After is honoured on 429 and 503 only
        (None, None, 0.25),
    ],
)
def test_retry_after_is_honoured_on_429_and_503_and_capped(status, retry_after, wait):
    assert retry_wait(2, status, retry_after, jitter=0.5) == wait


@pytest.mark.parametrize(
    "attempt, jitter, wait",
    [(2, 1.0, 0.5), (3, 1.0, 1.0), (4, 0.5, 1.0), (8, 1.0, 32.0), (20, 0.25, 8.0), (5, 0.0, 0.0)],
)
def test_backoff_doubles_from_half_a_second_up_to_32_with_full_jitter(attempt, jitter, wait):
    assert retry_wait(attempt, None, None, jitter) == wait


# --- the verdict over complete reads ---


def test_a_read_that_hashes_to_the_name_verifies_at_once():
    decision = decide(NAME_HEX, "AAAAAA==", [read()])
    assert decision.verdict is Verdict.VERIFIED and decision.read == read()


def test_a_matching_read_settles_it_whatever_came_before():
    earlier = [read(OTHER_HEX, "BBBBBB=="), read(THIRD_HEX, "CCCCCC==", fresh=True)]
    decision = decide(NAME_HEX, "AAAAAA==", [*earlier, read(fresh=True)])
    assert decision.verdict is Verdict.VERIFIED and decision.read.sha256 == NAME_HEX


def test_one_mismatching_read_is_never_a_verdict():
    decision = decide(NAME_HEX, "AAAAAA==", [read(OTHER_HEX, "BBBBBB==")])
    assert decision.verdict is Verdict.REREAD
    assert decision.reason == "bytes have crc32c BBBBBB==, the listing says AAAAAA=="


def test_a_mismatch_stands_when_a_fresh_read_from_byte_0_agrees():
    first, second = read(OTHER_HEX, "BBBBBB=="), read(OTHER_HEX, "BBBBBB==", fresh=True)
    decision = decide(NAME_HEX, "AAAAAA==", [first, second])
    assert decision.verdict is Verdict.CONFIRMED and decision.read == second


def test_agreement_on_a_connection_already_used_confirms_nothing():
    first, second = read(OTHER_HEX, "BBBBBB=="), read(OTHER_HEX, "BBBBBB==", fresh=False)
    assert decide(NAME_HEX, "AAAAAA==", [first, second]).verdict is Verdict.REREAD


def test_reads_must_agree_on_the_crc32c_too():
    first, second = read(OTHER_HEX, "BBBBBB=="), read(OTHER_HEX, "CCCCCC==", fresh=True)
    assert decide(NAME_HEX, "AAAAAA==", [first, second]).verdict is Verdict.REREAD


def test_a_third_read_breaks_a_tie_between_two_that_disagree():
    reads = [
        read(OTHER_HEX, "BBBBBB=="),
        read(THIRD_HEX, "CCCCCC==", fresh=True),
        read(OTHER_HEX, "BBBBBB==", fresh=True),
    ]
    decision = decide(NAME_HEX, "AAAAAA==", reads)
    assert decision.verdict is Verdict.CONFIRMED and decision.read.sha256 == OTHER_HEX


def test_reads_that_keep_disagreeing_are_unstable_not_damage():
    reads = [
        read(OTHER_HEX, "BBBBBB=="),
        read(THIRD_HEX, "CCCCCC==", fresh=True),
        read("0" * 64, "DDDDDD==", fresh=True),
    ]
    assert len(reads) == MAX_READS
    decision = decide(NAME_HEX, "AAAAAA==", reads)
    assert decision.verdict is Verdict.UNSTABLE
    assert decision.reason == "unstable reads: 3 complete reads gave 3 different digests, none of them the name's"


def test_a_fresh_read_confirms_any_earlier_read_it_agrees_with():
    reads = [
        read(OTHER_HEX, "BBBBBB=="),
        read(THIRD_HEX, "CCCCCC==", fresh=True),
        read(THIRD_HEX, "CCCCCC==", fresh=True),
    ]
    decision = decide(NAME_HEX, "AAAAAA==", reads)
    assert decision.verdict is Verdict.CONFIRMED and decision.read.sha256 == THIRD_HEX


def test_the_reason_for_a_reread_names_every_suspicion_or_just_the_digest():
    suspect = read(OTHER_HEX, "BBBBBB==", server="CCCCCC==")
    assert decide(NAME_HEX, "AAAAAA==", [suspect]).reason == (
        "x-goog-hash crc32c CCCCCC== differs from the listing's AAAAAA==; "
        "bytes have crc32c BBBBBB==, the listing says AAAAAA=="
    )
    assert decide(NAME_HEX, None, [suspect]).reason == "digest differs from the name"


def test_decide_needs_a_read():
    with pytest.raises(ValueError, match="^decide: needs at least one complete read$"):
        decide(NAME_HEX, None, [])


def test_suspicions_name_each_checksum_that_disagrees():
    assert suspicions(read(crc32c="AAAAAA==", server="AAAAAA=="), "AAAAAA==") == []
    assert suspicions(read(crc32c="BBBBBB==", server="CCCCCC=="), "AAAAAA==") == [
        "x-goog-hash crc32c CCCCCC== differs from the listing's AAAAAA==",
        "bytes have crc32c BBBBBB==, the listing says AAAAAA==",
    ]
    assert suspicions(read(crc32c="BBBBBB==", server="CCCCCC=="), None) == []


# --- classification of what read_and_hash returns ---

LISTED = ListedObject("b", PREFIX + "sha256:" + NAME_HEX, 7, 8, "AAAAAA==")


def test_a_verified_row_takes_its_size_from_the_bytes_read():
    listed = ListedObject("b", LISTED.name, 7, 999, "AAAAAA==")
    row, problem = classify_read(listed, "sha256:" + NAME_HEX, ReadResult(sha256=NAME_HEX, crc32c="AAAAAA==", size=8))
    assert problem is None and row["size"] == 8


@pytest.mark.parametrize("crc32c, match, story", [("AAAAAA==", True, "written with wrong"), ("BBBBBB==", False, "dam")])
def test_a_confirmed_mismatch_records_its_reads_and_its_crc32c_match(crc32c, match, story):
    result = ReadResult(sha256=OTHER_HEX, crc32c=crc32c, size=8, reads=2, attempts=2)
    row, problem = classify_read(LISTED, "sha256:" + NAME_HEX, result)
    assert row is None
    assert (problem["kind"], problem["reads"], problem["crc32c_match"]) == ("digest_mismatch", 2, match)
    assert problem["detail"].startswith("confirmed by 2 complete reads that agree; ")
    assert story in problem["detail"]


def test_a_server_checksum_that_contradicts_the_listing_is_told():
    result = ReadResult(sha256=OTHER_HEX, crc32c="BBBBBB==", size=8, reads=2, server_crc32c="CCCCCC==")
    _, problem = classify_read(LISTED, "sha256:" + NAME_HEX, result)
    assert problem["detail"].endswith("GCS sent x-goog-hash crc32c CCCCCC==, the listing says AAAAAA==")


def test_unstable_reads_are_a_read_error_with_their_count():
    result = ReadResult(failure=ReadFailure.UNSTABLE, reason="unstable reads: …", attempts=4, reads=3)
    row, problem = classify_read(LISTED, "sha256:" + NAME_HEX, result)
    assert row is None and problem["kind"] == "read_error" and problem["reads"] == 3
    assert problem["detail"] == "unstable reads: … (after 4 attempt(s), 3 complete read(s))"


SHA_DIGEST = "sha256:" + NAME_HEX


def test_every_field_of_a_malformed_name_finding():
    obj = ListedObject("b", PREFIX + "sha256:XYZ", 7, 3, "AAAAAA==")
    assert classify_name(obj, PREFIX) == (
        None,
        finding_row(
            kind="malformed_name",
            severity="warning",
            generation=7,
            object=PREFIX + "sha256:XYZ",
            size=3,
            crc32c="AAAAAA==",  # as listed
            expected="sha256:<64 lowercase hex>",
            actual="sha256:XYZ",
            detail="digest has characters other than lowercase hex",
        ),
    )
    outside = ListedObject("b", "elsewhere/sha256:1", 7, 3, None)
    assert classify_name(outside, PREFIX)[1]["actual"] == "elsewhere/sha256:1"


def finding_row(**fields):
    row = dict.fromkeys(FINDING_FIELDS)
    row.update(bucket="b", **fields)
    return row


@pytest.mark.parametrize(
    "result, kind, severity, detail",
    [
        (
            ReadResult(failure=ReadFailure.VANISHED, http_status=404, reason="gone", attempts=1),
            "vanished",
            "warning",
            "gone",
        ),
        (
            ReadResult(failure=ReadFailure.VANISHED, http_status=404, attempts=1),
            "vanished",
            "warning",
            "listed, then not found when read",
        ),
        (
            ReadResult(failure=ReadFailure.UNREADABLE, http_status=503, reason="HTTP 503", attempts=5, reads=1),
            "read_error",
            "error",
            "HTTP 503 (after 5 attempt(s), 1 complete read(s))",
        ),
    ],
)
def test_every_field_of_a_read_failure_finding(result, kind, severity, detail):
    assert classify_read(LISTED, SHA_DIGEST, result) == (
        None,
        finding_row(
            kind=kind,
            severity=severity,
            object=LISTED.name,
            generation=7,
            digest=SHA_DIGEST,
            size=8,
            crc32c=LISTED.crc32c,
            http_status=result.http_status,
            reads=result.reads,
            detail=detail,
        ),
    )


@pytest.mark.parametrize(
    "listed_crc32c, match, story",
    [
        ("BBBBBB==", True, "bytes match the crc32c GCS stored: the object was written with wrong content"),
        ("AAAAAA==", False, "bytes differ from the crc32c GCS stored: the object was damaged after it was written"),
        (None, None, "GCS stored no crc32c to tell a bad write from later damage"),
    ],
)
def test_every_field_of_a_confirmed_mismatch(listed_crc32c, match, story):
    listed = ListedObject("b", LISTED.name, 7, 8, listed_crc32c)
    result = ReadResult(sha256=OTHER_HEX, crc32c="BBBBBB==", size=8, reads=2, attempts=3, server_crc32c=listed_crc32c)
    assert classify_read(listed, SHA_DIGEST, result) == (
        None,
        finding_row(
            kind="digest_mismatch",
            severity="error",
            object=LISTED.name,
            generation=7,
            digest=SHA_DIGEST,
            expected=SHA_DIGEST,
            actual="sha256:" + OTHER_HEX,
            size=8,
            crc32c=listed_crc32c,
            crc32c_match=match,
            reads=2,
            detail=f"confirmed by 2 complete reads that agree; {story}",
        ),
    )


def test_a_mismatch_read_once_has_no_confirmation_story():
    result = ReadResult(sha256=OTHER_HEX, crc32c="BBBBBB==", size=8, reads=1)
    _, problem = classify_read(LISTED, SHA_DIGEST, result)
    assert problem["detail"] == "bytes differ from the crc32c GCS stored: the object was damaged after it was written"


def test_a_server_checksum_is_told_only_when_both_are_known_and_differ():
    for listed_crc32c, server in (("AAAAAA==", None), (None, "CCCCCC=="), ("AAAAAA==", "AAAAAA==")):
        listed = ListedObject("b", LISTED.name, 7, 8, listed_crc32c)
        result = ReadResult(sha256=OTHER_HEX, crc32c="BBBBBB==", size=8, reads=2, server_crc32c=server)
        assert "x-goog-hash" not in classify_read(listed, SHA_DIGEST, result)[1]["detail"]


# --- shards: a name exactly at a range's end belongs to one range only ---


@pytest.mark.parametrize("shard_count", [16, 256])
@pytest.mark.parametrize("leaf", ["sha256:0", "sha256:a", "sha256:00", "sha256:f", "sha256:g", "sha256::"])
def test_a_name_at_a_range_boundary_is_in_exactly_one_range(shard_count, leaf):
    ranges = plan_ranges(PREFIX, shard_count)
    assert sum(r.contains(PREFIX + leaf) for r in ranges) == 1
