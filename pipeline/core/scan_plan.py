"""``--plan-only``: the buckets a scan would read, what they hold and cost, and what scanning them takes.

Pure: the launcher lists each bucket's prefix (sizes only, ``gcs.prefix_size``) and GETs its
metadata (``gcs.bucket_facts``); this module prices them and estimates the scan from the cost
model of docs/production.md ("Expected duration and cost for 10 TB in 1 M objects"), whose
figures tests/test_cost_model.py checks against the constants below.
"""

from __future__ import annotations

from typing import Any

from pipeline.core.eta import format_duration
from pipeline.core.pricing import GIB, location_type_of, usd_per_gib_month
from pipeline.values import decimal_size, gcr_project, usd_text

MB = 1_000_000
# docs/production.md: P, the MB/s one Dataflow vCPU sustains (the network, not hashing, binds).
DATAFLOW_MB_PER_VCPU_S = 310
# c: CPU per object, whatever its size (request, response head, classification, Beam's element).
CPU_S_PER_OBJECT = 0.0005
DATAFLOW_FIXED_S = 6 * 60  # launcher VM, worker start, listing, report and teardown
DATAFLOW_MACHINE_TYPE = "n2-standard-4"
DATAFLOW_WORKER_VCPUS = 4
DATAFLOW_WORKERS = 20  # the deploy defaults (MAX_WORKERS)
WORKER_USD_PER_HOUR = 0.281  # 4 vCPU-h + 16 GB-h, Dataflow batch, us-central1 list price
GET_USD_PER_1000 = 0.0004  # Class B
LIST_USD_PER_1000 = 0.005  # Class A
OBJECTS_PER_LIST_PAGE = 1000
NETWORK_USD_PER_GB_MAX = 0.02  # multi-region reads within the continent: $0 to this
GCS_READS_PER_BUCKET_S = 5000  # a bucket's reads/s before GCS scales it up
# Locally: 0.98 CPU-s per GB read and hashed (docs/performance.md), the multi-processing start,
# and an assumed 1 Gbit/s link to Cloud Storage (the plan says so; nothing measures the link).
LOCAL_CPU_S_PER_GB = 0.98
LOCAL_START_S = 2.0
LOCAL_LINK_MB_S = 125
# Up to an hour, a local run is the simpler choice; beyond it Dataflow's parallelism pays.
LOCAL_CHOICE_LIMIT_S = 3600

BASIS_TEXT = {
    "listed": "listed",
    "sampled": "estimated from 1/16 of the names",
    "at least": "at least (the listing was cut short)",
}


def bucket_row(bucket: str, size: dict[str, Any] | None, facts: dict[str, Any] | None) -> dict[str, Any]:
    """One bucket of the plan: its size as far as the listing tells, its monthly cost, and what is unknown.

    ``size`` is ``gcs.prefix_size``'s answer, or ``{"error": text}`` when the listing failed;
    ``facts`` is ``gcs.bucket_facts``'s.
    """
    facts = facts or {}
    size = size or {"error": "not listed"}
    unknown = []
    objects = bytes_ = None
    basis = size.get("basis")
    if size.get("error"):
        unknown.append(f"objects and bytes: {size['error']}")
    else:
        objects, bytes_ = size["objects"], size["bytes"]
        if basis != "listed":
            unknown.append(f"objects and bytes {BASIS_TEXT.get(basis, basis)}")
    location_type, _ = location_type_of(bucket, facts.get("location_type"))
    rate = usd_per_gib_month(facts.get("storage_class"), location_type)
    if rate is None:
        why = facts.get("error") or "the bucket's storage class was not reported"
        unknown.append(f"monthly cost: {why}")
    usd = None if rate is None or bytes_ is None else round(bytes_ / GIB * rate, 6)
    return {
        "bucket": bucket,
        "project": gcr_project(bucket),
        "objects": objects,
        "bytes": bytes_,
        "basis": None if size.get("error") else basis,
        "location": facts.get("location"),
        "storage_class": facts.get("storage_class"),
        "usd_per_month": usd,
        "unknown": unknown,
    }


def dataflow_estimate(objects: int, bytes_: int, largest_bucket_objects: int) -> dict[str, Any]:
    """Time and cost on Dataflow with the deploy defaults, as docs/production.md computes them."""
    vcpus = DATAFLOW_WORKERS * DATAFLOW_WORKER_VCPUS
    core_s = bytes_ / MB / DATAFLOW_MB_PER_VCPU_S + objects * CPU_S_PER_OBJECT
    # Buckets are read side by side; each serves about 5,000 reads/s before GCS scales it up.
    work_s = max(core_s / vcpus, largest_bucket_objects / GCS_READS_PER_BUCKET_S)
    compute = core_s / 3600 / DATAFLOW_WORKER_VCPUS * WORKER_USD_PER_HOUR
    compute += DATAFLOW_WORKERS * DATAFLOW_FIXED_S / 3600 * WORKER_USD_PER_HOUR
    requests = (
        objects / 1000 * GET_USD_PER_1000 + max(1, -(-objects // OBJECTS_PER_LIST_PAGE)) / 1000 * LIST_USD_PER_1000
    )
    network = bytes_ / 1e9 * NETWORK_USD_PER_GB_MAX
    return {
        "seconds": round(DATAFLOW_FIXED_S + work_s, 1),
        "workers": DATAFLOW_WORKERS,
        "machine_type": DATAFLOW_MACHINE_TYPE,
        # Six places, as every other amount: the text rounds them, and shows a cost under a
        # cent as "<$0.01", never as a free "$0.00".
        "compute_usd": round(compute, 6),
        "requests_usd": round(requests, 6),
        "network_usd_up_to": round(network, 6),
        "usd_low": round(compute + requests, 6),
        "usd_high": round(compute + requests + network, 6),
    }


def local_estimate(objects: int, bytes_: int, cores: int) -> dict[str, Any]:
    """Time on this machine: the CPU the bytes and objects cost, or the link, whichever is slower."""
    cores = max(1, cores)
    cpu_s = bytes_ / 1e9 * LOCAL_CPU_S_PER_GB + objects * CPU_S_PER_OBJECT
    link_s = bytes_ / MB / LOCAL_LINK_MB_S
    return {
        "seconds": round(LOCAL_START_S + max(cpu_s / cores, link_s), 1),
        "cores": cores,
        "cpu_seconds": round(cpu_s, 1),
        "link_seconds": round(link_s, 1),
        "link_mb_per_s": LOCAL_LINK_MB_S,
    }


def build_plan(rows: list[dict[str, Any]], sources: dict[str, Any], cores: int) -> dict[str, Any]:
    """The whole plan: buckets sorted by monthly cost (then bytes, then name), totals, estimates, a choice."""
    rows = sorted(rows, key=lambda r: (-(r["usd_per_month"] or 0), -(r["bytes"] or 0), r["bucket"]))
    known = [r for r in rows if r["objects"] is not None]
    objects = sum(r["objects"] for r in known)
    bytes_ = sum(r["bytes"] for r in known)
    priced = [r["usd_per_month"] for r in rows if r["usd_per_month"] is not None]
    complete = all(r["basis"] == "listed" for r in rows)
    local = local_estimate(objects, bytes_, cores)
    dataflow = dataflow_estimate(objects, bytes_, max((r["objects"] for r in known), default=0))
    if local["seconds"] <= LOCAL_CHOICE_LIMIT_S or local["seconds"] <= dataflow["seconds"]:
        choice = "local"
        why = f"about {format_duration(local['seconds'])} here, no Dataflow start-up or cost"
    else:
        choice = "dataflow"
        why = (
            f"about {format_duration(local['seconds'])} here against {format_duration(dataflow['seconds'])} "
            f"on Dataflow for about ${dataflow['usd_low']:,.2f}"
        )
    return {
        "sources": sources,
        "buckets": rows,
        "totals": {
            "buckets": len(rows),
            "objects": objects,
            "bytes": bytes_,
            "usd_per_month": round(sum(priced), 6) if priced else None,
            "unpriced_buckets": len(rows) - len(priced),
            "unlisted_buckets": len(rows) - len(known),
            "exact": complete,
        },
        "estimate": {"local": local, "dataflow": dataflow},
        "choice": choice,
        "choice_reason": why,
    }


def _usd(amount: float | None) -> str:
    if amount is None:
        return "unknown"
    return usd_text(amount)


def _count(row: dict[str, Any]) -> str:
    if row["objects"] is None:
        return "unknown"
    prefix = {"sampled": "~", "at least": "≥"}.get(row["basis"] or "", "")
    return f"{prefix}{row['objects']:,}"


def _size(size: int | None, basis: str | None = "listed") -> str:
    if size is None:
        return "unknown"
    prefix = {"sampled": "~", "at least": "≥"}.get(basis or "", "")
    return f"{prefix}{decimal_size(size)}"


def format_plan(plan: dict[str, Any]) -> str:
    """The plan as plain text: buckets, totals, what is unknown, both estimates and the choice."""
    totals, rows = plan["totals"], plan["buckets"]
    named = [
        name if kind != "projects" else f"project {name}" for kind, names in plan["sources"].items() for name in names
    ]
    if len(named) > 4:
        named = [*named[:3], f"{len(named) - 3} more"]
    lines = [f"plan: {totals['buckets']} bucket(s) from {', '.join(named)}; no blob was read"]
    width = max([len(r["bucket"]) for r in rows] + [6])
    pwidth = max([len(r["project"] or "-") for r in rows] + [7])
    lines.append(f"  {'bucket':<{width}}  {'project':<{pwidth}}  {'objects':>12}  {'bytes':>14}  {'$/month':>9}")
    for r in rows:
        lines.append(
            f"  {r['bucket']:<{width}}  {r['project'] or '-':<{pwidth}}  {_count(r):>12}  "
            f"{_size(r['bytes'], r['basis']):>14}  {_usd(r['usd_per_month']):>9}"
        )
    exact = "" if totals["exact"] else " (some sizes estimated or cut short: see below)"
    lines.append(
        f"total: {totals['objects']:,} objects, {_size(totals['bytes'])}, "
        f"{_usd(totals['usd_per_month'])} a month at list prices{exact}"
    )
    unknowns = [(r["bucket"], text) for r in rows for text in r["unknown"]]
    if unknowns:
        lines.append("unknown:")
        lines += [f"  {bucket}: {text}" for bucket, text in unknowns]
        if totals["unlisted_buckets"]:
            lines.append(
                f"  the estimates leave out the {totals['unlisted_buckets']} bucket(s) that could not be listed"
            )
    local, dataflow = plan["estimate"]["local"], plan["estimate"]["dataflow"]
    lines.append("estimate (the cost model of docs/production.md):")
    lines.append(
        f"  local, {local['cores']} core(s): about {format_duration(local['seconds'])} "
        f"({local['cpu_seconds']:,.1f} CPU-s; {local['link_seconds']:,.1f} s to move the bytes at an assumed "
        f"{local['link_mb_per_s']} MB/s)"
    )
    lines.append(
        f"  Dataflow, {dataflow['workers']} x {dataflow['machine_type']}: about "
        f"{format_duration(dataflow['seconds'])}, about {_usd(dataflow['usd_low'])} "
        f"({_usd(dataflow['compute_usd'])} compute, {_usd(dataflow['requests_usd'])} requests) "
        f"plus network up to {_usd(dataflow['network_usd_up_to'])}"
    )
    lines.append(f"choose: {plan['choice']} ({plan['choice_reason']}); docs/fleet.md explains the choice")
    return "\n".join(lines)
