"""Incremental scan: join the listing with the ledger, carry over what it proved, read the rest.

``SplitByLedger`` joins listed objects and ledger rows with a ``CoGroupByKey`` on
``(bucket, object)`` (no side input: the ledger may hold ten million rows) and applies
``pipeline.core.incremental.decide`` to each object. ``Recheck`` joins the fresh reads of the
re-check sample with their ledger rows the same way and lets ``recheck`` judge them.
``IncrementalHash`` wires both around two ``HashObjects``: the reads of objects the ledger
cannot vouch for, and the re-check sample's. See docs/incremental.md.
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.pvalue import TaggedOutput

from pipeline.core import incremental as rule
from pipeline.core.blobs import ListedObject
from pipeline.core.classify import blob_fact
from pipeline.core.digests import digest_of_hex
from pipeline.core.ledger import parse_time
from pipeline.transforms.hashing import FINDINGS, VERIFIED, HashObjects

TO_READ, CARRIED, CARRIED_BLOBS = "to_read", "carried", "carried_blobs"
SAMPLED, SAMPLE_LEDGER = "sampled", "sample_ledger"


def _listed_key(obj: ListedObject):
    return (obj.bucket, obj.name), obj


def _row_key(row):
    return (row["bucket"], row["object"]), row


class DecideFn(beam.DoFn):
    """((bucket, object), {"listed": [obj], "ledger": [rows]}) -> an object to read, a carried-over
    verified row (and its blob fact), or a sampled object with its ledger row."""

    def __init__(self, prefix: str, run_id: str, run_started_at: str, reverify_after_s: float, sample_rate: float):
        self._prefix = prefix
        self._run_id = run_id
        self._run_started_at = run_started_at
        self._reverify_after_s = reverify_after_s
        self._sample_rate = sample_rate
        self._carried = Metrics.counter("incremental", "objects_carried_over")
        self._sampled = Metrics.counter("incremental", "objects_rechecked")
        self._read = Metrics.counter("incremental", "objects_read")

    def setup(self) -> None:
        self._started = parse_time(self._run_started_at)

    def process(self, element):
        key, groups = element
        ledger_rows = list(groups["ledger"])
        for obj in groups["listed"]:
            decision = rule.decide(
                obj,
                ledger_rows,
                prefix=self._prefix,
                run_id=self._run_id,
                run_started_at=self._started,
                reverify_after_s=self._reverify_after_s,
                sample_rate=self._sample_rate,
            )
            if decision.action == rule.CARRY:
                self._carried.inc()
                row = rule.carried_row(obj, decision.ledger)
                yield TaggedOutput(CARRIED, row)
                yield TaggedOutput(CARRIED_BLOBS, blob_fact(digest_of_hex(row["sha256"]), obj, intact=True))
            elif decision.action == rule.SAMPLE:
                self._sampled.inc()
                yield TaggedOutput(SAMPLED, obj)
                yield TaggedOutput(SAMPLE_LEDGER, (key, decision.ledger))
            else:
                self._read.inc()
                yield obj


class SplitByLedger(beam.PTransform):
    """(listed, keyed ledger rows) -> {"to_read", "carried", "carried_blobs", "sampled", "sample_ledger"}."""

    def __init__(self, prefix: str, run_id: str, run_started_at: str, reverify_after_s: float, sample_rate: float):
        super().__init__()
        self._fn = DecideFn(prefix, run_id, run_started_at, reverify_after_s, sample_rate)

    def expand(self, inputs):
        listed, ledger = inputs
        joined = {
            "listed": listed | "KeyListed" >> beam.Map(_listed_key),
            "ledger": ledger,
        } | "JoinListingWithLedger" >> beam.CoGroupByKey()
        return joined | "CarryOverOrRead" >> beam.ParDo(self._fn).with_outputs(
            CARRIED, CARRIED_BLOBS, SAMPLED, SAMPLE_LEDGER, main=TO_READ
        )


def _recheck(element):
    _, groups = element
    ledger_rows = list(groups["ledger"])
    if not ledger_rows:  # cannot happen: every sampled object was sent with its ledger row
        return
    ledger = ledger_rows[0]
    outcomes = [(row, None) for row in groups["verified"]] + [(None, row) for row in groups["findings"]]
    for verified_row, finding_row in outcomes:
        verified_row, finding_row = rule.recheck(ledger, verified_row, finding_row)
        if verified_row is not None:
            yield TaggedOutput(VERIFIED, verified_row)
        if finding_row is not None:
            yield TaggedOutput(FINDINGS, finding_row)


class Recheck(beam.PTransform):
    """(sample ledger rows, sample's verified rows, sample's findings) -> {"verified", "findings"}."""

    def expand(self, inputs):
        ledger, verified, findings = inputs
        joined = {
            "ledger": ledger,
            "verified": verified | "KeyRecheckedVerified" >> beam.Map(_row_key),
            "findings": findings | "KeyRecheckedFindings" >> beam.Map(_row_key),
        } | "JoinSampleWithLedger" >> beam.CoGroupByKey()
        return joined | "CompareWithLedger" >> beam.FlatMap(_recheck).with_outputs(VERIFIED, FINDINGS)


class IncrementalHash(beam.PTransform):
    """(listed, keyed ledger rows) -> {"blobs", "verified", "findings"}, as HashObjects gives them.

    Takes HashObjects' arguments for the two reads (the objects the ledger cannot vouch for, and
    the re-check sample), and the rule's settings.
    """

    def __init__(self, hash_args: tuple, split: SplitByLedger):
        super().__init__()
        self._hash_args = hash_args
        self._split = split

    def expand(self, inputs):
        split = inputs | "SplitByLedger" >> self._split
        hashed = split[TO_READ] | "HashObjects" >> HashObjects(*self._hash_args)
        sample = split[SAMPLED] | "HashSample" >> HashObjects(*self._hash_args)
        rechecked = (split[SAMPLE_LEDGER], sample[VERIFIED], sample[FINDINGS]) | "Recheck" >> Recheck()
        return {
            "blobs": (hashed["blobs"], sample["blobs"], split[CARRIED_BLOBS]) | "AllBlobs" >> beam.Flatten(),
            VERIFIED: (hashed[VERIFIED], split[CARRIED], rechecked[VERIFIED]) | "AllVerified" >> beam.Flatten(),
            FINDINGS: (hashed[FINDINGS], rechecked[FINDINGS]) | "AllFindings" >> beam.Flatten(),
        }
