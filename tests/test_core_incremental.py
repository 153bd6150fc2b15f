"""pipeline/core/incremental.py: carry over, read, or re-check; and what a re-check concludes."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pytest

from pipeline.core import incremental as inc
from pipeline.core.blobs import ListedObject
from pipeline.core.findings import FINDING_FIELDS, VERIFIED_FIELDS, Kind, finding

PREFIX = "containers/images/"
SHA = hashlib.sha256(b"layer").hexdigest()
NAME = PREFIX + "sha256:" + SHA
NOW = datetime(2026, 11, 27, 3, 0, tzinfo=timezone.utc)  # noqa: UP017 (3.10 has no datetime.UTC)


def listed(**changes):
    fields = {"bucket": "b", "name": NAME, "generation": 7, "size": 5, "crc32c": "crc=", "storage_class": "STANDARD"}
    return ListedObject(**{**fields, **changes})


def ledger(**changes):
    row = {
        "bucket": "b",
        "object": NAME,
        "generation": 7,
        "size": 5,
        "crc32c": "crc=",
        "sha256": SHA,
        "verified_at": "2026-11-20T03:00:00Z",
        "run_id": "r1",
    }
    return {**row, **changes}


def decide(obj, rows, sample_rate=0.0, reverify_after_s=30 * 86400, run_id="r2"):
    return inc.decide(
        obj,
        rows,
        prefix=PREFIX,
        run_id=run_id,
        run_started_at=NOW,
        reverify_after_s=reverify_after_s,
        sample_rate=sample_rate,
    )


def test_the_same_bytes_verified_recently_are_carried_over():
    decision = decide(listed(), [ledger()])
    assert decision.action == inc.CARRY and decision.ledger == ledger()


@pytest.mark.parametrize(
    "obj, row, reason",
    [
        (listed(), None, "not in the ledger"),
        (listed(name=PREFIX + "stray.tmp"), ledger(object=PREFIX + "stray.tmp"), "not a digest name"),
        (listed(generation=8), ledger(), "generation 8 is not the ledger's 7"),
        (listed(generation=None), ledger(), "no generation"),
        (listed(), ledger(generation=None), "no generation"),
        (listed(crc32c="other="), ledger(), "stored crc32c other= is not the ledger's crc="),
        (listed(crc32c=None), ledger(crc32c=None), "stored crc32c None"),
        (listed(size=6), ledger(), "size 6 is not the ledger's 5"),
        (listed(), ledger(verified_at=None), "does not say when"),
        (listed(), ledger(verified_at="2026-12-30T00:00:00Z"), "in the future"),
        (listed(), ledger(verified_at="2026-10-28T02:59:59Z"), "due again (scan.reverify_after)"),
    ],
)
def test_anything_the_ledger_cannot_vouch_for_is_read(obj, row, reason):
    decision = decide(obj, [row] if row else [])
    assert decision.action == inc.READ and reason in decision.reason


@pytest.mark.parametrize("other", [ledger(sha256="0" * 64), ledger(size=6), ledger(crc32c="other=")])
def test_two_ledger_rows_that_disagree_about_one_generation_are_read_in_either_order(other):
    good = ledger(verified_at="2026-11-21T03:00:00Z", run_id="r1")
    for rows in ([good, other], [other, good]):
        decision = decide(listed(), rows)
        assert decision.action == inc.READ and "rows for this generation that disagree" in decision.reason


def test_ledger_rows_that_agree_or_speak_of_another_generation_do_not_conflict():
    again = ledger(verified_at="2026-11-22T03:00:00Z", run_id="r0")  # the same proof, from another run
    older = ledger(generation=6, sha256="0" * 64, size=9, crc32c="old=")
    assert decide(listed(), [again, ledger()]).action == inc.CARRY
    assert decide(listed(), [older, ledger()]).action == inc.CARRY


def at(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_verification_lasts_its_objects_share_of_reverify_after_to_the_second():
    window = inc.trusted_for(30 * 86400, "b", NAME)
    assert timedelta(days=15) <= window <= timedelta(days=30)
    assert window == inc.trusted_for(30 * 86400, "b", NAME), "the same object, the same share, every run"
    just_in = ledger(verified_at=at(NOW - window + timedelta(seconds=1)))
    just_out = ledger(verified_at=at(NOW - window - timedelta(seconds=1)))
    assert decide(listed(), [just_in]).action == inc.CARRY
    assert decide(listed(), [just_out]).action == inc.READ


def test_nothing_is_trusted_past_reverify_after_and_expiries_spread_over_its_second_half():
    windows = [inc.trusted_for(30 * 86400, "b", f"{PREFIX}sha256:{n:064x}") for n in range(10_000)]
    assert max(windows) <= timedelta(days=30) and min(windows) >= timedelta(days=15)
    by_day = [sum(15 + d <= w.total_seconds() / 86400 < 16 + d for w in windows) for d in range(15)]
    assert all(550 < n < 800 for n in by_day), by_day  # about 10,000 / 15 = 667 expire each day


def test_a_ledger_row_that_contradicts_the_name_is_always_checked():
    decision = decide(listed(), [ledger(sha256="0" * 64)])
    assert decision.action == inc.SAMPLE and "not the digest in the name" in decision.reason


def test_the_row_of_the_listed_generation_wins_over_others():
    rows = [ledger(generation=6, verified_at="2026-11-26T00:00:00Z"), ledger()]
    assert decide(listed(), rows).action == inc.CARRY


def test_the_sample_is_fixed_by_the_run_id_and_about_the_rate():
    names = [f"{PREFIX}sha256:{n:064x}" for n in range(20_000)]
    points = [inc.sample_point("r2", "b", name) for name in names]
    assert points == [inc.sample_point("r2", "b", name) for name in names], "a rerun re-checks the same objects"
    assert all(0 <= p < 1 for p in points)
    sampled = sum(p < 0.01 for p in points)
    assert 150 < sampled < 250, sampled  # 1 % of 20,000 is 200; a binomial sd of 14
    other_run = [inc.sample_point("r3", "b", name) < 0.01 for name in names]
    assert sum(a and b for a, b in zip((p < 0.01 for p in points), other_run, strict=True)) < 20


def test_sampled_objects_are_rechecked_and_the_rest_carried():
    assert decide(listed(), [ledger()], sample_rate=1.0).action == inc.SAMPLE
    assert decide(listed(), [ledger()], sample_rate=0.0).action == inc.CARRY


def test_a_carried_row_has_the_ledgers_proof_and_todays_listing():
    row = inc.carried_row(listed(storage_class="NEARLINE"), ledger())
    assert tuple(row) == VERIFIED_FIELDS
    assert row["verified_by"] == "ledger" and row["ledger_run_id"] == "r1"
    assert row["verified_at"] == "2026-11-20T03:00:00Z" and row["sha256"] == SHA
    assert row["storage_class"] == "NEARLINE" and row["generation"] == 7


def read_row(**changes):
    fields = {
        "bucket": "b",
        "object": NAME,
        "generation": 7,
        "size": 5,
        "crc32c": "crc=",
        "sha256": SHA,
        "storage_class": "STANDARD",
        "time_created": None,
        "verified_by": "read",
        "verified_at": None,
        "ledger_run_id": None,
    }
    return {**fields, **changes}


def test_a_recheck_that_agrees_is_a_verified_row_naming_the_ledger_run():
    verified, found = inc.recheck(ledger(), read_row(), None)
    assert found is None and verified["verified_by"] == "read" and verified["ledger_run_id"] == "r1"


def damaged_read(**changes):
    """The finding of a read whose bytes do not hash to their name, confirmed."""
    return finding(
        Kind.DIGEST_MISMATCH,
        bucket="b",
        object=NAME,
        generation=7,
        digest="sha256:" + SHA,
        expected="sha256:" + SHA,
        actual="sha256:" + "f" * 64,
        size=5,
        crc32c="crc=",
        crc32c_match=False,
        reads=2,
        detail="confirmed by 2 complete reads that agree",
        **changes,
    )


def test_a_recheck_of_damaged_bytes_is_ledger_disagrees_with_both_sides():
    mismatch = damaged_read()
    verified, found = inc.recheck(ledger(), None, mismatch)
    assert verified is None and tuple(found) == FINDING_FIELDS
    assert found["kind"] == "ledger_disagrees" and found["severity"] == "error"
    assert (found["expected"], found["actual"]) == ("sha256:" + SHA, "sha256:" + "f" * 64)
    assert (found["ledger_run_id"], found["ledger_sha256"], found["ledger_size"]) == ("r1", SHA, 5)
    assert found["ledger_verified_at"] == "2026-11-20T03:00:00Z" and found["ledger_crc32c"] == "crc="
    assert found["crc32c_match"] is False and found["reads"] == 2
    assert found["detail"].startswith("ledger run r1 verified it at 2026-11-20T03:00:00Z: sha256 " + SHA)
    assert "this read: sha256 " + "f" * 64 in found["detail"]


def test_a_ledger_that_recorded_other_bytes_disagrees_even_when_the_object_is_sound():
    verified, found = inc.recheck(ledger(sha256="0" * 64, crc32c="old="), read_row(), None)
    assert verified is None and found["kind"] == "ledger_disagrees"
    assert found["expected"] == "sha256:" + "0" * 64 and found["actual"] == "sha256:" + SHA
    assert "hash to their name, but not to what the ledger recorded" in found["detail"]


@pytest.mark.parametrize("kind", [Kind.READ_ERROR, Kind.VANISHED])
def test_a_recheck_that_could_not_read_stays_what_it_is(kind):
    failed = finding(kind, bucket="b", object=NAME, detail="HTTP 503")
    assert inc.recheck(ledger(), None, failed) == (None, failed)


def test_a_recheck_of_sound_bytes_the_ledger_recorded_otherwise_is_the_whole_row():
    """Every field of the ledger_disagrees row, from the fresh read and the ledger."""
    read = read_row(storage_class="NEARLINE", time_created="2026-01-02T03:04:05Z", generation=8)
    old = "0" * 64
    verified, found = inc.recheck(ledger(sha256=old, crc32c="old=", size=4), read, None)
    assert verified is None
    assert found == finding(
        Kind.LEDGER_DISAGREES,
        bucket="b",
        object=NAME,
        generation=8,
        digest="sha256:" + SHA,
        expected="sha256:" + old,
        actual="sha256:" + SHA,
        size=5,
        crc32c="old=",
        storage_class="NEARLINE",
        time_created="2026-01-02T03:04:05Z",
        reads=1,
        detail=f"ledger run r1 verified it at 2026-11-20T03:00:00Z: sha256 {old}, 4 bytes, crc32c old=; "
        f"this read: sha256 {SHA}, 5 bytes, crc32c crc= "
        "(the bytes hash to their name, but not to what the ledger recorded)",
        ledger_run_id="r1",
        ledger_verified_at="2026-11-20T03:00:00Z",
        ledger_sha256=old,
        ledger_size=4,
        ledger_crc32c="old=",
    )


@pytest.mark.parametrize("differs", [{"sha256": "0" * 64}, {"size": 4}, {"crc32c": "old="}])
def test_a_recheck_agrees_only_in_sha256_size_and_crc32c_all_three(differs):
    verified, found = inc.recheck(ledger(**differs), read_row(), None)
    assert verified is None and found["kind"] == "ledger_disagrees"
    assert found["expected"] == "sha256:" + ledger(**differs)["sha256"]


def test_a_ledger_without_a_sha256_disagrees_with_no_expected_digest():
    _, found = inc.recheck(ledger(sha256=None), read_row(), None)
    assert found["expected"] is None and found["ledger_sha256"] is None
    mismatch = finding(Kind.DIGEST_MISMATCH, bucket="b", object=NAME, actual="sha256:" + "f" * 64, detail="d")
    _, found = inc.recheck(ledger(sha256=None), None, mismatch)
    assert found["expected"] is None


def test_a_recheck_of_damaged_bytes_is_the_whole_row():
    mismatch = damaged_read(storage_class="COLDLINE", time_created="2026-01-02T03:04:05Z")
    assert inc.recheck(ledger(), None, mismatch) == (
        None,
        finding(
            Kind.LEDGER_DISAGREES,
            bucket="b",
            object=NAME,
            generation=7,
            digest="sha256:" + SHA,
            size=5,
            crc32c="crc=",
            crc32c_match=False,
            reads=2,
            storage_class="COLDLINE",
            time_created="2026-01-02T03:04:05Z",
            expected="sha256:" + SHA,
            actual="sha256:" + "f" * 64,
            detail=f"ledger run r1 verified it at 2026-11-20T03:00:00Z: sha256 {SHA}, 5 bytes, crc32c crc=; "
            f"this read: sha256 {'f' * 64}, 5 bytes (confirmed by 2 complete reads that agree)",
            ledger_run_id="r1",
            ledger_verified_at="2026-11-20T03:00:00Z",
            ledger_sha256=SHA,
            ledger_size=5,
            ledger_crc32c="crc=",
        ),
    )
    # A mismatch whose actual digest is not known says so, and a finding without detail adds nothing.
    _, found = inc.recheck(ledger(), None, {**mismatch, "actual": None, "detail": None})
    assert found["detail"].endswith("; this read: sha256 None, 5 bytes")


def test_a_carried_row_is_the_ledgers_proof_with_what_the_listing_says_now():
    obj = listed(storage_class="ARCHIVE", time_created="2026-01-02T03:04:05Z", size=5)
    assert inc.carried_row(obj, ledger()) == {
        "bucket": "b",
        "object": NAME,
        "generation": 7,
        "size": 5,
        "crc32c": "crc=",
        "sha256": SHA,
        "storage_class": "ARCHIVE",
        "time_created": "2026-01-02T03:04:05Z",
        "verified_by": "ledger",
        "verified_at": "2026-11-20T03:00:00Z",
        "ledger_run_id": "r1",
    }


def test_every_decision_says_why_in_words():
    assert decide(listed(), []).reason == "not in the ledger"
    odd = listed(name=PREFIX + "stray.tmp")
    assert decide(odd, [ledger(object=odd.name)]).reason == "not a digest name"
    assert decide(listed(generation=None), [ledger()]).reason == "no generation to compare with the ledger"
    assert decide(listed(), [ledger(verified_at=None)]).reason == "the ledger does not say when it verified the object"
    assert decide(listed(), [ledger(sha256="0" * 64)]) == inc.Decision(
        inc.SAMPLE, "the ledger's sha256 is not the digest in the name", ledger(sha256="0" * 64)
    )
    assert decide(listed(), [ledger()], sample_rate=1.0) == inc.Decision(
        inc.SAMPLE, "in this run's re-check sample", ledger()
    )
    assert decide(listed(), [ledger()]) == inc.Decision(inc.CARRY, "the ledger verified these bytes", ledger())
    both = [ledger(), ledger(size=6)]
    assert decide(listed(), both) == inc.Decision(inc.READ, "the ledger holds rows for this generation that disagree")


def test_the_sample_takes_points_strictly_below_the_rate_and_depends_on_run_bucket_and_name():
    point = inc.sample_point("r2", "b", NAME)
    assert decide(listed(), [ledger()], sample_rate=point).action == inc.CARRY
    assert decide(listed(), [ledger()], sample_rate=point + 1e-12).action == inc.SAMPLE
    others = {inc.sample_point(*args) for args in (("r3", "b", NAME), ("r2", "c", NAME), ("r2", "b", NAME + "0"))}
    assert point not in others and len(others) == 3
    # A name that is not valid UTF-8 (a lone surrogate, as os.fsdecode makes) still has a fixed point.
    assert 0 <= inc.sample_point("r2", "b", PREFIX + "\udcff") < 1
    assert inc.trusted_for(86400, "b", PREFIX + "\udcff") <= timedelta(days=1)


def test_the_future_and_due_boundaries_are_exclusive():
    just_future = at(NOW + inc.FUTURE_SLACK)
    assert decide(listed(), [ledger(verified_at=just_future)]).action == inc.CARRY
    slack_later = at(NOW + inc.FUTURE_SLACK + timedelta(seconds=1))
    assert decide(listed(), [ledger(verified_at=slack_later)]).action == inc.READ
    # Verified exactly its trusted time before the run (to the microsecond): still trusted.
    edge = (NOW - inc.trusted_for(30 * 86400, "b", NAME)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert decide(listed(), [ledger(verified_at=edge)]).action == inc.CARRY


def test_of_rows_of_other_generations_the_newest_verification_then_generation_is_picked():
    obj = listed(generation=9)
    older = ledger(generation=3, verified_at="2026-11-01T00:00:00Z")
    newer = ledger(generation=2, verified_at="2026-11-02T00:00:00Z")
    for rows in ([older, newer], [newer, older]):
        assert "is not the ledger's 2" in decide(obj, rows).reason
    same_day = [ledger(generation=5, verified_at="2026-11-02T00:00:00Z"), newer]
    for rows in (same_day, same_day[::-1]):
        assert "is not the ledger's 5" in decide(obj, rows).reason
    undated = [ledger(generation=4, verified_at=None), ledger(generation=1, verified_at=None)]
    for rows in (undated, undated[::-1]):
        assert "is not the ledger's 4" in decide(obj, rows).reason
    # A row without a generation never stands for the listed generation.
    for rows in ([ledger(generation=None), ledger()], [ledger(), ledger(generation=None)]):
        assert decide(listed(), rows).action == inc.CARRY


def test_an_undated_row_ranks_below_dated_ones_and_a_missing_generation_as_zero():
    obj = listed(generation=9)
    dated, undated = ledger(generation=3), ledger(generation=4, verified_at=None)
    for rows in ([dated, undated], [undated, dated]):
        assert "is not the ledger's 3" in decide(obj, rows).reason
    # Same date: a row without a generation ranks as generation 0, below generation 1.
    for rows in ([ledger(generation=1), ledger(generation=None)], [ledger(generation=None), ledger(generation=1)]):
        assert decide(obj, rows).reason == "generation 9 is not the ledger's 1"
