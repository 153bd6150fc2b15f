"""What the reads of one object prove, decided from what they returned.

The GCS adapter moves bytes; this module decides what they mean. Pure: no I/O.

- A response's body is taken only where it belongs (``plan_body``): a ``206``
  must say, in its ``Content-Range``, that it starts where we asked and runs to
  the listed end; a ``200`` always starts at byte 0, even when we asked for a range.
- A read is complete when the bytes received equal the listed size. Fewer or
  more is a transient failure, never a verdict (``body_outcome``).
- ``decide`` turns the complete reads of one object into a verdict. A read whose
  SHA-256 equals the name settles it: a transport cannot forge a SHA-256. A
  different digest stands only when a second complete read from byte 0, on a
  fresh connection, returns the same SHA-256 and crc32c. Reads that keep
  disagreeing are unstable: a ``read_error``, never damage.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.compat import StrEnum

DEFAULT_READ_TIMEOUT_S = 60.0
DEFAULT_MIN_READ_RATE = 1024 * 1024  # bytes per second
# The first read, its confirmation, and one more to break a tie between two that disagree.
MAX_READS = 3
MAX_RETRY_AFTER_S = 60.0
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 32.0

_CONTENT_RANGE = re.compile(r"\s*bytes\s+([0-9]+)-([0-9]+)/([0-9]+|\*)\s*")


def attempt_deadline(size: int, read_timeout: float, min_read_rate: int) -> float:
    """Seconds one attempt may take in all: a fixed allowance plus the object at the slowest acceptable rate."""
    return read_timeout + size / min_read_rate


def retry_wait(attempt: int, status: int | None, retry_after: float | None, jitter: float) -> float:
    """Seconds to wait before ``attempt`` (2, 3 …): what a 429 or 503 asks (capped), else backoff.

    The backoff is exponential with full jitter, as GCS's retry guidance asks:
    ``jitter`` (uniform in [0, 1)) times 0.5 s doubling per attempt, at most 32 s.
    """
    if status in (429, 503) and retry_after is not None:
        return min(max(retry_after, 0.0), MAX_RETRY_AFTER_S)
    return jitter * min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** (attempt - 2))


def parse_content_range(value: str | None) -> tuple[int, int, int | None] | None:
    """``bytes START-END/TOTAL`` as ``(start, end, total)``; ``total`` None for ``*``; None if unusable."""
    match = _CONTENT_RANGE.fullmatch(value or "")
    if not match:
        return None
    start, end, total = match.groups()
    return int(start), int(end), None if total == "*" else int(total)


def server_crc32c(x_goog_hash: str | None) -> str | None:
    """The crc32c in an ``x-goog-hash`` header (``crc32c=…,md5=…``; repeated headers arrive comma-joined)."""
    for part in (x_goog_hash or "").split(","):
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "crc32c" and value.strip():
            return value.strip()
    return None


@dataclass(frozen=True)
class BodyPlan:
    """Where a response's first body byte belongs, or why the body is refused.

    ``prefix_trusted`` says whether the bytes of a body that ends early may be
    kept and resumed from. Not so for a ``200`` that answered a ranged request:
    a server that ignores ``Range`` may just as well send only the tail.
    """

    offset: int | None
    prefix_trusted: bool = True
    problem: str | None = None

    @property
    def refused(self) -> bool:
        return self.offset is None


def plan_body(asked_from: int, status: int, content_range: str | None, listed_size: int) -> BodyPlan:
    """How to take the body of a ``200`` or ``206`` that answered a read from ``asked_from``."""
    if status == 200:
        # A 200 is the whole object from byte 0, whatever was asked: the digests restart.
        return BodyPlan(0, prefix_trusted=asked_from == 0)
    if status != 206:
        raise ValueError(f"plan_body: expected status 200 or 206, got {status}")
    parsed = parse_content_range(content_range)
    if parsed is None:
        return BodyPlan(None, problem=f"206 with an unusable Content-Range {content_range!r}")
    start, end, total = parsed
    if start != asked_from:
        return BodyPlan(
            None, problem=f"206 Content-Range {content_range.strip()} starts at {start}, asked {asked_from}"
        )
    if end != listed_size - 1 or (total is not None and total != listed_size):
        return BodyPlan(
            None, problem=f"206 Content-Range {content_range.strip()} does not end the {listed_size}-byte listed object"
        )
    return BodyPlan(start)


class Transfer(StrEnum):
    COMPLETE = "complete"
    SHORT = "short"
    LONG = "long"


def body_outcome(received: int, listed_size: int) -> Transfer:
    """A read is complete when the bytes received equal the listed size; anything else is transient."""
    if received == listed_size:
        return Transfer.COMPLETE
    return Transfer.SHORT if received < listed_size else Transfer.LONG


@dataclass(frozen=True)
class CompleteRead:
    """One object's bytes, all received: their digests, and what the server claimed alongside.

    ``fresh`` is true for a read that started from byte 0 on a connection no
    earlier read of this object used. ``server_crc32c`` is the crc32c of any
    ``x-goog-hash`` header that came with it.
    """

    sha256: str
    crc32c: str
    size: int
    fresh: bool = False
    server_crc32c: str | None = None


def suspicions(read: CompleteRead, listed_crc32c: str | None) -> list[str]:
    """Why a complete read may not be what GCS stored: its checksums disagree with the listing's."""
    found = []
    if listed_crc32c is not None and read.server_crc32c is not None and read.server_crc32c != listed_crc32c:
        found.append(f"x-goog-hash crc32c {read.server_crc32c} differs from the listing's {listed_crc32c}")
    if listed_crc32c is not None and read.crc32c != listed_crc32c:
        found.append(f"bytes have crc32c {read.crc32c}, the listing says {listed_crc32c}")
    return found


class Verdict(StrEnum):
    VERIFIED = "verified"  # a read hashed to the name
    CONFIRMED = "confirmed"  # two complete reads agree on a digest that is not the name's
    UNSTABLE = "unstable"  # complete reads disagree, none matches: a read_error
    REREAD = "reread"  # not settled yet: read again from byte 0 on a fresh connection


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    read: CompleteRead | None = None  # the read the verdict rests on
    reason: str | None = None


def decide(
    expected_sha256: str, listed_crc32c: str | None, reads: Sequence[CompleteRead], max_reads: int = MAX_READS
) -> Decision:
    """The verdict on one object from its complete reads so far, in the order they were made."""
    if not reads:
        raise ValueError("decide: needs at least one complete read")
    for read in reads:
        if read.sha256 == expected_sha256:
            return Decision(Verdict.VERIFIED, read)
    latest = reads[-1]
    if latest.fresh:
        for earlier in reads[:-1]:
            if (earlier.sha256, earlier.crc32c) == (latest.sha256, latest.crc32c):
                return Decision(Verdict.CONFIRMED, latest)
    if len(reads) >= max_reads:
        distinct = len({(read.sha256, read.crc32c) for read in reads})
        return Decision(
            Verdict.UNSTABLE,
            reason=f"unstable reads: {len(reads)} complete reads gave {distinct} different digests, "
            "none of them the name's",
        )
    why = "; ".join(suspicions(latest, listed_crc32c)) or "digest differs from the name"
    return Decision(Verdict.REREAD, reason=why)
