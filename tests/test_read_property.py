"""The read protocol under a faulty network, end to end: whole scans through the fault proxy.

A flaky transport must never read as damage. Each seeded run scans a bucket of
healthy objects through ``FaultyProxy``, which faults a large share of the
object reads at random with every kind of transport failure the protocol knows:
a clean close without Content-Length, one byte flipped, a short 200 answering a
Range, a reset mid-body, 503 and 429 with Retry-After, a stall and a drip.

The expectations hold for any seed: no ``digest_mismatch``, every object
accounted for, and every object verified unless every one of its reads was
faulted. Faults are drawn per object and per request number, so a run does not
depend on the order in which threads reach the proxy.

Real damage (bytes changed in the emulator's data directory) must still be a
confirmed ``digest_mismatch`` after exactly two reads, and a healthy bucket must
still cost exactly one GET per object.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import defaultdict
from pathlib import Path
from urllib.parse import unquote

import pytest

from jobs.launcher import run_scan
from pipeline.adapters import gcs
from pipeline.config import parse_config
from tests.support.buckets import fresh_bucket
from tests.support.proxy import Fault, FaultyProxy

PREFIX = "containers/images/"
IN_MEMORY = ["--direct_running_mode=in_memory"]
OBJECTS = 20
FAULT_SHARE = 0.45
_OBJECT_IN_PATH = re.compile(r"/o/([^?]+)\?")


def object_of(path: str) -> str:
    return unquote(_OBJECT_IN_PATH.search(path).group(1))


def seeded_faults(seed: int):
    """A ``choose`` for FaultyProxy: fault about FAULT_SHARE of object reads, drawn per (object, request number)."""
    requests_seen: dict[str, int] = defaultdict(int)

    def choose(path: str, headers: dict[str, str]) -> Fault | None:
        if "alt=media" not in path:
            return None  # listings pass untouched: this test is about reads
        name = object_of(path)
        requests_seen[name] += 1
        rng = random.Random(f"{seed}:{name}:{requests_seen[name]}")
        if rng.random() >= FAULT_SHARE:
            return None
        at = rng.randrange(1, 3000)
        kinds = [
            Fault(close_after=at),
            Fault(flip_at=at),
            Fault(reset_after=at),
            Fault(status=503, retry_after="0"),
            Fault(status=429, retry_after="1"),
            Fault(stall_after=at),
            Fault(drip_every=0.02),
        ]
        if "range" in headers:
            kinds.append(Fault(range_as_200="tail"))
        return rng.choice(kinds)

    return choose


def scan(endpoint: str, buckets: list[str], output: Path, run_id: str, **scan_keys) -> dict:
    config = parse_config(
        {
            "source": {"buckets": buckets, "emulator_endpoint": endpoint},
            "scan": {"read_concurrency": 8, **scan_keys},
            "report": {"output": str(output), "run_id": run_id},
        },
        "test",
    )
    return run_scan(config, IN_MEMORY)


def rows(run_dir: Path, kind: str) -> list[dict]:
    found = []
    for path in sorted(run_dir.glob(f"{kind}-*.jsonl")):
        found += [json.loads(line) for line in path.read_text().splitlines() if line]
    return found


def upload(client, bucket_name: str, content: bytes, name: str | None = None) -> str:
    name = name or PREFIX + "sha256:" + hashlib.sha256(content).hexdigest()
    client.bucket(bucket_name).blob(name).upload_from_string(content)
    return name


@pytest.fixture(scope="module")
def healthy_bucket(emulator) -> tuple[str, list[str]]:
    client = gcs.make_client(emulator.endpoint)
    name = fresh_bucket(client, "read-property.appspot.com").name
    rng = random.Random(7)
    names = [upload(client, name, rng.randbytes(rng.randrange(4000, 9000))) for _ in range(OBJECTS)]
    return name, names


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_faulty_network_never_reads_as_damage(emulator, healthy_bucket, tmp_path, seed):
    bucket, names = healthy_bucket
    # At most 4 requests at the emulator at once: its listen queue holds 5, and a connection it
    # drops waits out a 1 s SYN retry, a timeout no injected fault explains.
    with FaultyProxy(emulator.port, choose=seeded_faults(seed), upstream_connections=4) as proxy:
        # Small deadlines keep stalls and drips short: 1 s + size at 1 MiB/s per attempt.
        summary = scan(proxy.endpoint, [bucket], tmp_path, f"seed-{seed}", read_timeout=1, max_attempts=4)
    run_dir = tmp_path / f"seed-{seed}"
    findings, verified = rows(run_dir, "findings"), rows(run_dir, "verified")

    reads_of: dict[str, list] = defaultdict(list)
    for record in proxy.stats.media_reads():
        reads_of[object_of(record.path)].append(record)
    faulted = sum(1 for records in reads_of.values() for record in records if record.fault)
    total = sum(len(records) for records in reads_of.values())
    assert faulted / total >= 0.3, f"only {faulted} of {total} reads faulted: the test would prove little"

    assert [row for row in findings if row["kind"] == "digest_mismatch"] == []
    assert summary["unaccounted_objects"] == 0 and summary["objects_listed"] == OBJECTS
    assert sorted(row["object"] for row in verified + findings) == sorted(names)
    assert {row["kind"] for row in findings} <= {"read_error"}
    for row in findings:
        assert all(record.fault for record in reads_of[row["object"]]), (row, reads_of[row["object"]])
    for row in verified:
        assert row["sha256"] == row["object"].rpartition(":")[2]


@pytest.mark.slow
def test_damage_is_confirmed_in_two_reads_and_a_healthy_bucket_costs_one_get_per_object(emulator, tmp_path):
    client = gcs.make_client(emulator.endpoint)
    healthy_bucket, damaged_bucket = "read-gets-healthy.appspot.com", "read-gets-damaged.appspot.com"
    fresh_bucket(client, healthy_bucket)
    fresh_bucket(client, damaged_bucket)
    rng = random.Random(11)
    healthy = [upload(client, healthy_bucket, rng.randbytes(5000)) for _ in range(6)]
    # Damaged after it was written: bytes changed behind the emulator's back, stored crc32c unchanged.
    damaged = upload(client, damaged_bucket, rng.randbytes(5000))
    path = emulator.object_path(damaged_bucket, damaged)
    content = bytearray(path.read_bytes())
    content[100] ^= 0xFF
    path.write_bytes(bytes(content))
    # Written wrong: the bytes GCS stored (and their crc32c) are not what the name says.
    bad_write = upload(client, damaged_bucket, b"not what the name says", PREFIX + "sha256:" + "ab" * 32)

    with FaultyProxy(emulator.port) as proxy:
        summary = scan(proxy.endpoint, [healthy_bucket, damaged_bucket], tmp_path, "gets")
    gets = defaultdict(int)
    for record in proxy.stats.media_reads():
        gets[object_of(record.path)] += 1
    assert {name: gets[name] for name in healthy} == dict.fromkeys(healthy, 1)
    assert (gets[damaged], gets[bad_write]) == (2, 2)
    assert summary["objects_verified"] == len(healthy)

    mismatches = {row["object"]: row for row in rows(tmp_path / "gets", "findings")}
    assert set(mismatches) == {damaged, bad_write}
    assert {row["kind"] for row in mismatches.values()} == {"digest_mismatch"}
    assert (mismatches[damaged]["reads"], mismatches[damaged]["crc32c_match"]) == (2, False)
    assert (mismatches[bad_write]["reads"], mismatches[bad_write]["crc32c_match"]) == (2, True)
    assert mismatches[damaged]["actual"] == "sha256:" + hashlib.sha256(bytes(content)).hexdigest()
