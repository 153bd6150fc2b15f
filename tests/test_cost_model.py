"""docs/production.md, "Expected duration and cost for 10 TB in 1 M objects": every figure follows from the others.

The figures are what a user plans a budget with, and nothing else checks them: each one the
section states is recomputed here from P, the worker shape and the prices the section itself gives.
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import REPO

SECTION = (
    (REPO / "docs" / "production.md").read_text().split("### Expected duration and cost for 10 TB in 1 M objects")[1]
)
SECTION = " ".join(SECTION.split("\n### ")[0].replace("\n> ", "\n").split())  # one line: figures may wrap
MB = 10_000_000  # 10 TB
OBJECTS = 1_000_000
WORKERS, VCPUS, GB = 20, 4, 16


def _number(pattern: str) -> float:
    match = re.search(pattern, SECTION)
    assert match, f"docs/production.md no longer says {pattern!r}"
    return float(match.group(1).replace(",", ""))


@pytest.fixture(scope="module")
def p() -> float:
    return _number(r"take \*\*P = (\d+)\*\*")


@pytest.fixture(scope="module")
def c_ms() -> float:
    """CPU per object, whatever its size, in milliseconds."""
    return _number(r"take \*\*c = ([\d.]+) ms\*\* of CPU per object")


def test_the_per_object_term_beside_the_bytes(p, c_ms):
    assert _number(r"1,000,000 × ([\d.]+) ms = [\d,]+ core-seconds") == c_ms
    per_object = OBJECTS * c_ms / 1000
    assert per_object == _number(r"1,000,000 × [\d.]+ ms = ([\d,]+) core-seconds")
    bytes_work = _number(r"% of the bytes' ([\d,]+) at P")
    assert round(MB / p) == bytes_work
    assert round(100 * per_object / bytes_work, 1) == _number(r"core-seconds, ([\d.]+) % of the bytes'")


def test_p_is_the_per_vcpu_share_of_the_network_wherever_it_is_quoted(p):
    network = _number(r"moves about ([\d,]+) MB/s, i\.e\. about")
    assert round(network / VCPUS, -1) == p
    assert _number(r"i\.e\. P ≈ (\d+) MB/s per vCPU") == p
    assert _number(r"about (\d+) MB/s per vCPU, so the network") == p


def test_work_cores_and_hashing_time():
    assert round(MB / 3600) == _number(r"= ([\d,]+) / P core-hours")
    assert _number(r"(\d+) workers × 4 vCPU") == WORKERS
    assert MB / (WORKERS * VCPUS) == _number(r"\| ([\d,]+) / P seconds")


def test_worker_price_and_compute_cost():
    vcpu_h = _number(r"4 × \$([\d.]+) \(vCPU-h\)")
    gb_h = _number(r"16 × \$([\d.]+) \(GB-h\)")
    per_worker_hour = _number(r"≈ \$([\d.]+) per worker-hour")
    assert round(VCPUS * vcpu_h + GB * gb_h, 3) == per_worker_hour
    fixed_hours = _number(r"20 workers × ([\d.]+) h ×")
    assert fixed_hours == _number(r"about (\d+) min \(Dataflow's usual") / 60
    assert round(MB / 3600 / VCPUS * per_worker_hour) == _number(r"≈ (\d+) / P \+ \$")
    assert round(WORKERS * fixed_hours * per_worker_hour, 2) == _number(r"/ P \+ \$([\d.]+) \|")


def test_request_and_network_costs():
    class_b = _number(r"Class B, \$([\d.]+) per 1,000")
    assert round(OBJECTS / 1000 * class_b, 2) == _number(r"per 1,000\) \| \$([\d.]+) \|")
    list_calls = _number(r"≈ 1,000–([\d,]+) list calls")
    assert list_calls / 1000 * _number(r"Class A, \$([\d.]+) per 1,000") < 0.01
    assert MB / 1000 * _number(r"\$0 to \$([\d.]+)/GB") == _number(r"up to \$(\d+) for 10 TB")


def test_the_worked_example_at_p(p):
    hashing = _number(r"hashing ([\d,]+) / \d+ ≈") / p
    assert _number(r"hashing [\d,]+ / (\d+) ≈") == p
    assert round(hashing, -2) == _number(r"≈ (\d+) s ≈")
    assert round(hashing / 60) == _number(r"≈ \d+ s ≈ (\d+) min")
    fixed = _number(r"about (\d+) min \(Dataflow's usual")
    assert round(hashing / 60 + fixed) == _number(r"≈ (\d+) min in all")
    coefficient, fixed_cost = _number(r"compute ≈ (\d+) / \d+"), _number(r"compute ≈ \d+ / \d+ \+ \$([\d.]+)")
    compute = coefficient / p + fixed_cost
    assert round(compute, 1) == _number(r"\+ \$[\d.]+ ≈ \$([\d.]+),")
    requests = 0.40 + 0.01
    assert round(compute + requests, 1) == _number(r", ≈ \$([\d.]+) with the GCS requests")


def test_request_rate_arithmetic(p, c_ms):
    mean_mb = MB / OBJECTS
    assert WORKERS * VCPUS / mean_mb == _number(r"= (\d+) × P/s")
    reads = WORKERS * VCPUS * p / mean_mb
    assert round(reads, -2) == _number(r"≈ ([\d,]+)/s at P = \d+")
    assert reads < 5000
    small_mb_s = 5000 * 0.1
    assert small_mb_s == _number(r"5,000 reads/s is (\d+) MB/s")
    assert round(small_mb_s / p, 1) == _number(r"≈ ([\d.]+) vCPUs hash")
    assert round(5000 * c_ms / 1000, 1) == _number(r"5,000 × c = ([\d.]+) vCPUs of per-object work")
    assert round(small_mb_s / p + 5000 * c_ms / 1000, 1) == _number(r"≈ ([\d.]+) vCPUs in all")
    assert round(OBJECTS / 256, -3) == _number(r"each listing at about ([\d,]+) objects")


def test_the_daily_incremental_line(p):
    """docs/incremental.md's worked example, priced as the rest of the table."""
    churn, due, sample = (
        _number(pattern)
        for pattern in (
            r"R = 30 and s = 1 %, ([\d.]+) % \+",
            r"% \+ ([\d.]+) % \+ 1 % =",
            r"% \+ [\d.]+ % \+ ([\d.]+) % =",
        )
    )
    assert due == round(100 * 1.39 / 30, 1) and sample == 1.0
    share = _number(r"\+ 1 % = ([\d.]+) % of the bytes and GETs") / 100
    assert round(churn + due + sample, 1) == share * 100
    assert MB * share == _number(r"\| ([\d,]+) MB ÷ P core-seconds; compute")
    assert _number(r"compute ≈ ([\d.]+) × 195 / P") == share
    assert round(share * 195 / p + 0.56, 2) == _number(r"\+ \$0\.56 ≈ \$([\d.]+) at P = 310")
    assert OBJECTS * share == _number(r"\(the fixed time dominates\), ([\d,]+) GETs")
    assert round(OBJECTS * share / 1000 * 0.0004, 2) == _number(r"[\d,]+ GETs \$([\d.]+), network")
    assert round(share * 200) == _number(r"network up to \$(\d+) \|")


def test_the_plans_constants_are_the_documented_ones(p, c_ms):
    """``--plan-only`` estimates with pipeline/core/scan_plan.py: the same figures as this section."""
    from pipeline.core import scan_plan

    assert scan_plan.DATAFLOW_MB_PER_VCPU_S == p
    assert scan_plan.CPU_S_PER_OBJECT * 1000 == c_ms
    assert scan_plan.DATAFLOW_FIXED_S == 60 * _number(r"about (\d+) min \(Dataflow's usual")
    assert scan_plan.WORKER_USD_PER_HOUR == _number(r"≈ \$([\d.]+) per worker-hour")
    assert scan_plan.GET_USD_PER_1000 == _number(r"Class B, \$([\d.]+) per 1,000")
    assert scan_plan.LIST_USD_PER_1000 == _number(r"Class A, \$([\d.]+) per 1,000")
    assert scan_plan.NETWORK_USD_PER_GB_MAX == _number(r"\$0 to \$([\d.]+)/GB")
    assert scan_plan.DATAFLOW_WORKERS == WORKERS and scan_plan.DATAFLOW_WORKER_VCPUS == VCPUS
    assert f"`{scan_plan.DATAFLOW_MACHINE_TYPE}` workers" in SECTION
    assert scan_plan.LOCAL_CPU_S_PER_GB == _number(r"costs about ([\d.]+) CPU-s per GB")
    assert scan_plan.GCS_READS_PER_BUCKET_S == _number(r"A bucket serves about ([\d,]+) object reads/s")
