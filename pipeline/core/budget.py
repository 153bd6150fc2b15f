"""A registry request budget for the whole job, shared out between the SDK processes that run it.

``manifests.requests_per_second`` is what the whole fleet may send to one registry. Each SDK
worker process has one limiter per registry (every thread and DoFn of the process draws from
it), so each process takes ``budget / processes``, where ``processes`` is the most SDK
processes the job can ever run at once. Counting too many only makes the scan slower; counting
too few would break the budget, so every rule below errs on the high side.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Shared-core machine types whose name carries no vCPU count.
_SHARED_CORE_VCPUS = {"e2-micro": 2, "e2-small": 2, "e2-medium": 2, "f1-micro": 1, "g1-small": 1}
_CUSTOM = re.compile(r"(?:^|-)custom-(\d+)-\d+(?:-ext)?$")
_STANDARD = re.compile(r"^[a-z][a-z0-9]*-[a-z]+(?:-[a-z]+)?-(\d+)(?:-[a-z0-9]+)?$")
# Dataflow's default worker for batch jobs when --machine_type is not given.
DATAFLOW_DEFAULT_MACHINE_TYPE = "n1-standard-1"
# Dataflow's ceiling on autoscaled batch workers when --max_num_workers is not given.
DATAFLOW_DEFAULT_MAX_WORKERS = 1000


class BudgetError(ValueError):
    """The fleet's size cannot be told from the options; the message names the flag to set."""


@dataclass(frozen=True)
class Fleet:
    """The most SDK worker processes a job can run at once, and how that number was reached."""

    processes: int
    reason: str


def share_per_process(budget: float, processes: int) -> float:
    """Requests per second one process may send so that all of them together stay within ``budget``."""
    if budget <= 0:
        raise ValueError(f"a request budget must be positive, got {budget}")
    if processes < 1:
        raise ValueError(f"a fleet has at least one process, got {processes}")
    return budget / processes


def vcpus_of(machine_type: str) -> int:
    """vCPUs of a Compute Engine machine type name: ``n2-standard-4`` -> 4, ``custom-6-23040`` -> 6."""
    name = machine_type.strip().lower().rsplit("/", 1)[-1]
    if name in _SHARED_CORE_VCPUS:
        return _SHARED_CORE_VCPUS[name]
    for pattern in (_CUSTOM, _STANDARD):
        match = pattern.search(name)
        if match:
            return int(match.group(1))
    raise BudgetError(
        f"--machine_type={machine_type}: cannot tell its vCPUs from the name, so the registry budget "
        "cannot be shared out; name a predefined or custom-N-M machine type"
    )


def dataflow_fleet(max_workers: int | None, machine_type: str | None, one_sdk_process_per_worker: bool) -> Fleet:
    """Dataflow Runner v2 starts one Python SDK process per vCPU of each worker, unless the job sets
    ``--experiments=no_use_multiple_sdk_containers`` (then one process runs all of the worker's threads)."""
    workers = max_workers or DATAFLOW_DEFAULT_MAX_WORKERS
    worker_text = f"--max_num_workers={max_workers}" if max_workers else f"Dataflow's default of {workers} workers"
    if one_sdk_process_per_worker:
        return Fleet(workers, f"{worker_text} x 1 SDK process (no_use_multiple_sdk_containers)")
    machine = machine_type or DATAFLOW_DEFAULT_MACHINE_TYPE
    per_worker = vcpus_of(machine)
    return Fleet(workers * per_worker, f"{worker_text} x {per_worker} SDK processes (one per vCPU of {machine})")


def local_fleet(multi_processing: bool, num_workers: int) -> Fleet:
    if not multi_processing:
        return Fleet(1, "one in-memory process")
    return Fleet(max(1, num_workers), f"--direct_num_workers={num_workers} processes")


def flink_fleet(parallelism: int | None, loopback: bool) -> Fleet:
    if loopback:
        return Fleet(1, "LOOPBACK: the SDK workers run in the launching process")
    if not parallelism or parallelism < 1:
        raise BudgetError(
            "FlinkRunner without LOOPBACK: set --parallelism so that the registry budget "
            "(manifests.requests_per_second) can be shared between the SDK workers"
        )
    return Fleet(parallelism, f"--parallelism={parallelism} SDK workers at most")
