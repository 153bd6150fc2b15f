"""Benchmark: memory against the object count, and a 200,000-object bucket end to end.

Not collected by pytest.

- ``python tests/bench/bench_scale.py --rss 1000,20000`` scans buckets of those sizes and
  prints the peak RSS of each process of the scan (the launcher, and Beam's SDK workers in
  multi-processing mode), so what grows with the object count shows.
- ``python tests/bench/bench_scale.py --objects 200000`` seeds that many 1 KiB blobs
  straight into fake-gcs-server's storage (its filesystem backend's own layout; no uploads)
  and prints the time of each phase: seeding, the server's start, a listing of every shard
  (counted, never kept) with 16 and 256 shards, and the whole scan, phase by phase and stage
  by stage (tests/bench/timed_scan.py), with each process's peak RSS.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("NO_GCE_CHECK", "true")
REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.bench import measure  # noqa: E402
from tests.bench.servers import SERVERS  # noqa: E402

PREFIX = "containers/images/"
PYTHON = sys.executable


def blobs(count: int, seed: int):
    """``count`` distinct 1 KiB blobs, generated as they are written (never all in memory)."""
    for index in range(count):
        content = hashlib.sha256(f"{seed}:{index}".encode()).digest() * 32
        yield PREFIX + "sha256:" + hashlib.sha256(content).hexdigest(), content


def scan(
    endpoint: str, bucket: str, output: Path, run_id: str, beam_args: list[str], phases_file: Path | None = None
) -> measure.Run:
    head = [PYTHON, "-m", "jobs.cli"]
    if phases_file is not None:
        head = [PYTHON, str(REPO / "tests" / "bench" / "timed_scan.py"), str(phases_file), repr(time.time()), "--"]
    command = [*head, "scan", "--bucket", bucket, "--emulator-endpoint", endpoint]
    command += ["--output", str(output), "--run-id", run_id, "-q", *beam_args]
    run = measure.run(command, cwd=str(REPO))
    assert run.returncode == 0, run.stderr[-2000:]
    return run


def print_run(label: str, run: measure.Run, objects: int, output: Path, run_id: str) -> None:
    summary = json.loads((output / run_id / "summary.json").read_text())
    assert summary["objects_verified"] == objects, summary
    print(
        f"  {label}: {run.wall:.1f} s, {objects / run.wall:.0f} obj/s, {run.cpu:.1f} CPU-s "
        f"({run.cpu / objects * 1000:.2f} ms per object)"
    )
    for pid, (command, peak) in run.peak_rss_mib.items():
        role = "launcher" if pid == run.root_pid else "worker"
        print(f"    peak RSS {peak:7.0f} MiB  {role:<8} {command[:70]}")


def print_phases(phases_file: Path) -> None:
    recorded = json.loads(phases_file.read_text())
    totals: dict[str, float] = defaultdict(float)
    for name, seconds in recorded["phases"]:
        totals[name] += seconds
    for name, seconds in totals.items():
        print(f"    {seconds:8.1f} s  {name}")
    stages: dict[str, list[float]] = defaultdict(list)
    for stage, seconds in recorded["bundles"]:
        stages[stage].append(seconds)
    print("    the Beam run's stages, longest first:")
    for stage, times in sorted(stages.items(), key=lambda item: -sum(item[1]))[:6]:
        print(f"    {sum(times):8.1f} s  {len(times)} bundle(s): {stage[:90]}")


def listing_phase(endpoint: str, bucket: str, shard_count: int) -> tuple[int, float, float]:
    """Every object of every shard, counted as it streams: (count, seconds, the largest shard's share)."""
    from pipeline.adapters import gcs
    from pipeline.core.shards import plan_ranges

    client = gcs.make_client(endpoint)
    start = time.perf_counter()
    counts = [sum(1 for _ in gcs.list_range(client, bucket, r)) for r in plan_ranges(PREFIX, shard_count)]
    return sum(counts), time.perf_counter() - start, max(counts) / max(sum(counts), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rss", default="", help="comma-separated object counts, e.g. 1000,20000")
    parser.add_argument("--objects", type=int, default=0, help="the scale run's object count, e.g. 200000")
    parser.add_argument("--server", default="fake-gcs-server", choices=sorted(SERVERS))
    parser.add_argument("--modes", default="multi_processing,auto", help="execution modes for the RSS runs")
    parser.add_argument("--listing-shards", default="16,256", help="shard counts for the listing-alone phase")
    args = parser.parse_args()
    counts = [int(c) for c in args.rss.split(",") if c]
    print(
        f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; "
        f"{time.strftime('%H:%M:%S', time.gmtime())} UTC"
    )
    with tempfile.TemporaryDirectory(prefix="registry-scrub-scale-") as scratch_name:
        scratch = Path(scratch_name)
        server = SERVERS[args.server](scratch)
        output = scratch / "reports"
        started = time.perf_counter()
        for count in counts:
            server.seed(f"rss-{count}.appspot.com", blobs(count, seed=count))
        if args.objects:
            server.seed("scale.appspot.com", blobs(args.objects, seed=0))
        print(f"seed ({server.name}, straight into its storage): {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        server.start()
        print(f"server start: {time.perf_counter() - started:.1f} s")
        try:
            for count in counts:
                print(f"\n{count:,} objects")
                for mode in args.modes.split(","):
                    beam_args = [] if mode == "auto" else [f"--direct_running_mode={mode}"]
                    run_id = f"rss-{count}-{mode}"
                    run = scan(server.endpoint, f"rss-{count}.appspot.com", output, run_id, beam_args)
                    print_run(mode, run, count, output, run_id)
            if args.objects:
                print(f"\nscale: {args.objects:,} objects")
                for shard_count in (int(s) for s in args.listing_shards.split(",") if s):
                    listed, seconds, largest = listing_phase(server.endpoint, "scale.appspot.com", shard_count)
                    assert listed == args.objects, listed
                    print(
                        f"  listing alone, {shard_count} shards: {seconds:.1f} s ({listed / seconds:,.0f} obj/s); "
                        f"the largest shard holds {largest:.1%} of the objects"
                    )
                phases_file = scratch / "scale-phases.json"
                run = scan(server.endpoint, "scale.appspot.com", output, "scale", [], phases_file)
                print_run("whole scan (list, hash, report)", run, args.objects, output, "scale")
                print_phases(phases_file)
        finally:
            server.stop()
    print(f"finished {time.strftime('%H:%M:%S', time.gmtime())} UTC")


if __name__ == "__main__":
    main()
