"""Carry over or re-read: the rule of an incremental scan, and what a re-check of the ledger concludes.

Pure: no I/O, no Beam. ``decide`` takes one listed object and the ledger's rows about it
(what the pipeline's ``CoGroupByKey`` on ``(bucket, object)`` gathered) and says whether the
object is carried over as verified (not read), read because the ledger cannot vouch for it,
or read as part of the re-check sample. ``recheck`` then compares a sampled object's fresh
read with the ledger: agreement is a verified row, any contradiction a ``ledger_disagrees``.
See docs/incremental.md.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pipeline.core.blobs import ListedObject
from pipeline.core.digests import digest_of_hex, parse_blob_name
from pipeline.core.findings import Kind, finding, verified
from pipeline.core.ledger import parse_time

Row = dict[str, Any]

CARRY, READ, SAMPLE = "carry", "read", "sample"
VERIFIED_BY_READ, VERIFIED_BY_LEDGER = "read", "ledger"
DEFAULT_REVERIFY_AFTER_S = 30 * 86400
DEFAULT_REVERIFY_SAMPLE = 0.01
# A verification dated this far after the run's start is a clock that cannot be trusted, not a fresh proof.
FUTURE_SLACK = timedelta(days=1)
# Each object's verification lasts between (1 - EXPIRY_SPREAD) and all of reverify_after, fixed per
# object: after a first full scan the objects would otherwise all expire on the same day, and one
# run in every reverify_after would read the whole bucket again.
EXPIRY_SPREAD = 0.5


@dataclass(frozen=True)
class Decision:
    action: str  # CARRY | READ | SAMPLE
    reason: str
    ledger: Row | None = None  # the ledger row the decision rests on (CARRY and SAMPLE)


def sample_point(run_id: str, bucket: str, name: str) -> float:
    """A number in [0, 1) fixed by the run id and the object: the same run samples the same objects.

    A new run id draws a new sample, so over successive runs every carried-over object is
    re-read sooner or later; a rerun with the same id re-checks exactly the same ones.
    """
    seed = hashlib.sha256(f"{run_id}\0{bucket}\0{name}".encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(seed[:8], "big") / 2**64


def trusted_for(reverify_after_s: float, bucket: str, name: str) -> timedelta:
    """How long the ledger's verification of this object is trusted: a share of ``reverify_after``
    from ``1 - EXPIRY_SPREAD`` to 1, the same for the object in every run."""
    seed = hashlib.sha256(f"expiry\0{bucket}\0{name}".encode("utf-8", "surrogateescape")).digest()
    share = 1 - EXPIRY_SPREAD * int.from_bytes(seed[:8], "big") / 2**64
    return timedelta(seconds=reverify_after_s * share)


def _pick(obj: ListedObject, rows: list[Row]) -> Row | None:
    """The ledger row about this object: the one of its listed generation, else the newest."""
    if not rows:
        return None
    same = [r for r in rows if r.get("generation") is not None and r.get("generation") == obj.generation]
    return (same or sorted(rows, key=lambda r: (r.get("verified_at") or "", r.get("generation") or 0)))[-1]


def _conflicting(row: Row, rows: list[Row]) -> bool:
    """Rows of the same generation that disagree in what they proved (a ledger that contradicts itself)."""
    proof = ("sha256", "size", "crc32c")
    return any(
        other.get("generation") == row.get("generation") and any(other.get(k) != row.get(k) for k in proof)
        for other in rows
    )


def decide(
    obj: ListedObject,
    ledger_rows: list[Row],
    *,
    prefix: str,
    run_id: str,
    run_started_at: datetime,
    reverify_after_s: float,
    sample_rate: float,
) -> Decision:
    """Whether ``obj`` may be carried over from the ledger, must be read, or is re-checked by the sample.

    Carried over only when the ledger verified the same bytes: the same generation and the same
    stored crc32c and size, a sha256 that is the name's digest, verified less than
    ``trusted_for`` (at most ``reverify_after_s``) before this run started. Of those, the ``sample_rate`` share that
    ``sample_point`` picks is read again and compared (``recheck``).
    """
    row = _pick(obj, ledger_rows)
    if row is None:
        return Decision(READ, "not in the ledger")
    if _conflicting(row, ledger_rows):
        # Which row is the proof would depend on the order the join delivers them in.
        return Decision(READ, "the ledger holds rows for this generation that disagree")
    digest = parse_blob_name(obj.name, prefix).digest
    if digest is None:
        return Decision(READ, "not a digest name")
    if obj.generation is None or row.get("generation") is None:
        return Decision(READ, "no generation to compare with the ledger")
    if row["generation"] != obj.generation:
        return Decision(READ, f"generation {obj.generation} is not the ledger's {row['generation']}")
    if obj.crc32c is None or row.get("crc32c") != obj.crc32c:
        return Decision(READ, f"stored crc32c {obj.crc32c} is not the ledger's {row.get('crc32c')}")
    if row.get("size") != obj.size:
        return Decision(READ, f"size {obj.size} is not the ledger's {row.get('size')}")
    verified_at = parse_time(row.get("verified_at"))
    if verified_at is None:
        return Decision(READ, "the ledger does not say when it verified the object")
    if verified_at > run_started_at + FUTURE_SLACK:
        return Decision(READ, f"the ledger dates its verification in the future ({row['verified_at']})")
    if run_started_at - verified_at > trusted_for(reverify_after_s, obj.bucket, obj.name):
        return Decision(READ, f"last verified {row['verified_at']}: due again (scan.reverify_after)")
    if row.get("sha256") is None or digest_of_hex(row["sha256"]) != digest:
        # The ledger contradicts the name itself: never carry that over, check it.
        return Decision(SAMPLE, "the ledger's sha256 is not the digest in the name", row)
    if sample_point(run_id, obj.bucket, obj.name) < sample_rate:
        return Decision(SAMPLE, "in this run's re-check sample", row)
    return Decision(CARRY, "the ledger verified these bytes", row)


def carried_row(obj: ListedObject, ledger: Row) -> Row:
    """The verified row of an object carried over: the ledger's proof, what the listing says now."""
    return verified(
        bucket=obj.bucket,
        object=obj.name,
        generation=obj.generation,
        size=obj.size,
        crc32c=ledger["crc32c"],
        sha256=ledger["sha256"],
        storage_class=obj.storage_class,
        time_created=obj.time_created,
        verified_by=VERIFIED_BY_LEDGER,
        verified_at=ledger["verified_at"],
        ledger_run_id=ledger.get("run_id"),
    )


def _ledger_evidence(ledger: Row) -> dict[str, Any]:
    return {
        "ledger_run_id": ledger.get("run_id"),
        "ledger_verified_at": ledger.get("verified_at"),
        "ledger_sha256": ledger.get("sha256"),
        "ledger_size": ledger.get("size"),
        "ledger_crc32c": ledger.get("crc32c"),
    }


def _story(ledger: Row, sha256: str | None, size: Any, crc32c: str | None, read_story: str | None) -> str:
    said = (
        f"ledger run {ledger.get('run_id')} verified it at {ledger.get('verified_at')}: "
        f"sha256 {ledger.get('sha256')}, {ledger.get('size')} bytes, crc32c {ledger.get('crc32c')}"
    )
    now = f"this read: sha256 {sha256}, {size} bytes" + (f", crc32c {crc32c}" if crc32c else "")
    return f"{said}; {now}" + (f" ({read_story})" if read_story else "")


def recheck(ledger: Row, verified_row: Row | None, finding_row: Row | None) -> tuple[Row | None, Row | None]:
    """``(verified_row, finding)`` for a sampled object, from its fresh read and the ledger row.

    A read that agrees with the ledger in sha256, size and crc32c is a verified row (read now,
    ``ledger_run_id`` naming the run it confirmed). A read that could not conclude (``read_error``,
    ``vanished``) stays what it is. Anything else contradicts the ledger: ``ledger_disagrees``,
    with the ledger's evidence and the read's side by side.
    """
    if verified_row is not None:
        agrees = (
            verified_row.get("sha256") == ledger.get("sha256")
            and verified_row.get("size") == ledger.get("size")
            and verified_row.get("crc32c") == ledger.get("crc32c")
        )
        if agrees:
            return {**verified_row, "ledger_run_id": ledger.get("run_id")}, None
        return None, finding(
            Kind.LEDGER_DISAGREES,
            bucket=verified_row["bucket"],
            object=verified_row["object"],
            generation=verified_row.get("generation"),
            digest=digest_of_hex(verified_row["sha256"]),
            expected=digest_of_hex(ledger["sha256"]) if ledger.get("sha256") else None,
            actual=digest_of_hex(verified_row["sha256"]),
            size=verified_row.get("size"),
            crc32c=ledger.get("crc32c"),
            storage_class=verified_row.get("storage_class"),
            time_created=verified_row.get("time_created"),
            reads=1,
            detail=_story(
                ledger,
                verified_row.get("sha256"),
                verified_row.get("size"),
                verified_row.get("crc32c"),
                "the bytes hash to their name, but not to what the ledger recorded",
            ),
            **_ledger_evidence(ledger),
        )
    if finding_row is None or finding_row.get("kind") != Kind.DIGEST_MISMATCH.value:
        return None, finding_row
    actual = finding_row.get("actual")
    return None, finding(
        Kind.LEDGER_DISAGREES,
        **{
            key: finding_row.get(key)
            for key in ("bucket", "object", "generation", "digest", "size", "crc32c", "crc32c_match", "reads")
        },
        storage_class=finding_row.get("storage_class"),
        time_created=finding_row.get("time_created"),
        expected=digest_of_hex(ledger["sha256"]) if ledger.get("sha256") else None,
        actual=actual,
        detail=_story(
            ledger,
            actual.partition(":")[2] if isinstance(actual, str) else None,
            finding_row.get("size"),
            None,
            finding_row.get("detail"),
        ),
        **_ledger_evidence(ledger),
    )
