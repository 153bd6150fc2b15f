"""Benchmark: the size of report.html for a synthetic 1 M-object run, and the cost of folding its rows.

Not collected by pytest; run ``python tests/bench/bench_report.py [--objects N]``.
Rows are generated lazily (never a million dicts at once) and folded into four
``ReportAccumulator``s, as four workers would, then merged, modelled and rendered.

The synthetic run: ``--objects`` listed objects over six years of creation dates,
1 % of them findings spread over every kind (unreferenced blobs the most), and one
image per 20 objects, 2 % of them broken. Printed: page size, rows folded per second,
the accumulator's pickled size (what Beam ships between workers) and peak RSS.
"""

from __future__ import annotations

import argparse
import os
import pickle
import random
import resource
import sys
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from pipeline.core import report_model as rm  # noqa: E402
from pipeline.core.findings import VERIFIED_FIELDS, Kind, finding  # noqa: E402
from pipeline.core.summary import Tally, build_summary  # noqa: E402
from pipeline.report_html import render  # noqa: E402

BUCKETS = ["artifacts.bench-project.appspot.com", "us.artifacts.bench-project.appspot.com"]
RUN_DAY = date(2026, 11, 27)
# Share of listed objects per finding kind (about 1 % in all).
FINDING_SHARES = {
    Kind.UNREFERENCED_BLOB: 0.006,
    Kind.DIGEST_MISMATCH: 0.001,
    Kind.READ_ERROR: 0.0005,
    Kind.VANISHED: 0.0002,
    Kind.MALFORMED_NAME: 0.0003,
    Kind.MISSING_BLOB: 0.0005,
    Kind.SIZE_MISMATCH: 0.0003,
    Kind.MANIFEST_UNAVAILABLE: 0.0001,
    Kind.INVALID_MANIFEST: 0.0001,
}


def name(n: int) -> str:
    return f"containers/images/sha256:{n:064x}"


def created(rng: random.Random) -> str:
    return (RUN_DAY - timedelta(days=rng.randrange(6 * 365))).isoformat() + "T10:00:00.000Z"


def image(n: int) -> str:
    return f"gcr.io/bench-project/app{n % 500}@sha256:{n:064x}"


def synthetic_rows(objects: int, seed: int = 1):
    """Yield ("finding"|"verified"|"image", row) one at a time, as the pipeline's rows arrive."""
    rng = random.Random(seed)
    kinds = list(FINDING_SHARES)
    weights = [FINDING_SHARES[k] for k in kinds]
    finding_rate = sum(weights)
    for n in range(objects):
        bucket = BUCKETS[n % len(BUCKETS)]
        size = int(rng.lognormvariate(13, 2)) + 1  # a few kB to hundreds of MB; median ~0.4 MB
        verified_row = dict.fromkeys(VERIFIED_FIELDS)
        verified_row.update(
            run_id="bench",
            bucket=bucket,
            object=name(n),
            generation=n,
            size=size,
            crc32c="AAAAAA==",
            sha256=f"{n:064x}",
            time_created=created(rng),
            storage_class="STANDARD",
        )
        kind = rng.choices(kinds, weights)[0] if rng.random() < finding_rate else None
        if kind is None or kind.value not in rm.OBJECT_FINDING_KINDS:
            yield "verified", verified_row  # intact (unreferenced and size_mismatch blobs are intact too)
        if kind is not None:
            row = finding(
                kind,
                bucket=bucket,
                object=name(n),
                generation=n,
                digest=f"sha256:{n:064x}",
                expected=f"sha256:{n:064x}",
                actual=f"sha256:{n + 1:064x}" if kind is Kind.DIGEST_MISMATCH else None,
                size=size,
                crc32c_match=rng.random() < 0.5 if kind is Kind.DIGEST_MISMATCH else None,
                http_status=503 if kind is Kind.READ_ERROR else None,
                detail=f"synthetic {kind.value} number {n}",
                images=[image(n), image(n + 1)] if kind is not Kind.UNREFERENCED_BLOB else None,
                tags=[f"gcr.io/bench-project/app{n % 500}:v{n % 7}"],
            )
            row.update(run_id="bench", crc32c="AAAAAA==", time_created=verified_row["time_created"])
            yield "finding", row
        if n % 20 == 0:
            broken = rng.random() < 0.02
            yield (
                "image",
                {
                    "image": image(n),
                    "repository": image(n).split("@")[0],
                    "manifest_digest": image(n).split("@")[1],
                    "tags": [f"{image(n).split('@')[0]}:v{n % 7}"],
                    "size": size * 8,
                    "blobs": 8,
                    "status": "broken" if broken else "intact",
                    "error_findings": 1 if broken else 0,
                    "broken_by_count": 1 if broken else 0,
                    "broken_by": [
                        {"kind": "digest_mismatch", "digest": f"sha256:{n:064x}", "object": name(n), "size": size}
                    ]
                    if broken
                    else [],
                },
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument("--out", help="also write the page here")
    args = parser.parse_args()

    workers = [rm.ReportAccumulator() for _ in range(4)]
    listed = Counter()
    findings_by_kind: Counter = Counter()
    verified_bytes = verified_objects = reclaimable = 0
    images_affected = 0
    start = time.perf_counter()
    folded = 0
    for i, (tag, row) in enumerate(synthetic_rows(args.objects)):
        worker = workers[i % 4]
        folded += 1
        if tag == "finding":
            worker.add_finding(row)
            findings_by_kind[row["kind"]] += 1
            if row["kind"] in rm.OBJECT_FINDING_KINDS:
                listed["objects"] += 1
                listed["bytes"] += row["size"]
            if row["kind"] == Kind.UNREFERENCED_BLOB.value:
                reclaimable += row["size"]
        elif tag == "verified":
            worker.add_verified(row)
            verified_objects += 1
            verified_bytes += row["size"]
            listed["objects"] += 1
            listed["bytes"] += row["size"]
        else:
            worker.add_image(row)
            images_affected += row["status"] == "broken"
    fold_s = time.perf_counter() - start
    shipped = [len(pickle.dumps(w)) for w in workers]
    merged = workers[0]
    for other in workers[1:]:
        merged.merge(pickle.loads(pickle.dumps(other)))

    # summary.json's arithmetic, from the same counts (pipeline/core/summary.py).
    tally = Tally(
        objects_listed=listed["objects"],
        bytes_listed=listed["bytes"],
        objects_verified=verified_objects,
        bytes_verified=verified_bytes,
        findings=findings_by_kind,
        manifests_scanned=args.objects // 20,
        images_affected=images_affected,
    )
    summary = build_summary(
        tally,
        run_id="bench",
        started_at=f"{RUN_DAY.isoformat()}T09:00:00Z",
        ended_at=f"{RUN_DAY.isoformat()}T11:00:00Z",
        config={"source": {"buckets": BUCKETS}, "scan": {"mode": "both"}},
        report_location="gs://bench-reports/registry-scrub/bench",
    )
    assert summary["unaccounted_objects"] == 0, summary["unaccounted_objects"]
    # Reclaim proven in every bucket (the rule itself is pipeline/core/reclaim.py's).
    summary.update(
        reclaimable_bytes=reclaimable,
        unreferenced_objects=findings_by_kind[Kind.UNREFERENCED_BLOB.value],
        unreferenced_bytes=reclaimable,
    )
    for key in ("reclaim_by_bucket", "reclaim_blocked_by"):
        summary.pop(key, None)
    start = time.perf_counter()
    model = rm.build_model(summary, merged, report_file="gs://bench-reports/registry-scrub/bench/report.html")
    page = render(model).encode("utf-8")
    render_s = time.perf_counter() - start
    if args.out:
        Path(args.out).write_bytes(page)

    detail_rows = sum(len(s["rows"]) for s in model["findings"])
    print(
        f"synthetic run: {args.objects:,} objects, {sum(findings_by_kind.values()):,} findings, "
        f"{args.objects // 20:,} images ({images_affected:,} broken), {len(BUCKETS)} buckets"
    )
    print(f"folded {folded:,} rows in {fold_s:.1f} s ({folded / fold_s:,.0f} rows/s, one process, incl. generation)")
    print(f"accumulator pickled per worker: {max(shipped) / 1e6:.2f} MB at most")
    print(f"model + render: {render_s:.2f} s")
    print(
        f"report.html: {len(page):,} bytes ({len(page) / 1e6:.2f} MB); "
        f"{detail_rows:,} finding rows shown of {sum(findings_by_kind.values()):,}, "
        f"{len(model['images']['rows']):,} image rows of {model['images']['total']:,}"
    )
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB (pid {os.getpid()})")


if __name__ == "__main__":
    main()
