"""Benchmark: a first scan, then an incremental rescan of the same unchanged bucket (docs/incremental.md).

Not collected by pytest; run ``python tests/bench/bench_incremental.py`` (``--help`` for the knobs).

One bucket of 5,000 x 1 KiB blobs is seeded straight into the server's storage
(``tests/bench/servers.py``), and a loopback proxy in front of it counts every object GET
(``tests/support/proxy.py``; it only forwards). The CLI runs twice, each time in its own process,
measured by ``tests/bench/measure.py``:

1. a full scan (``--run-id first``);
2. ``--incremental`` (``report.ledger: auto`` takes the first run), nothing changed in between.

It prints, for each run, the object GETs, the bytes read and hashed, the wall time and the CPU
seconds, then the second run's share of the first's reads, which the issue wants well under a
tenth: with the default ``reverify_sample`` of 1 %, it reads about 1 % of the objects.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("NO_GCE_CHECK", "true")
REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.bench import measure  # noqa: E402
from tests.bench.servers import SERVERS  # noqa: E402
from tests.support.proxy import FaultyProxy  # noqa: E402

PREFIX = "containers/images/"
BUCKET = "bench-incremental.appspot.com"


def corpus(count: int, size: int, seed: int = 12) -> list[tuple[str, bytes]]:
    rng = random.Random(seed)
    objects = []
    for _ in range(count):
        content = rng.randbytes(size)
        objects.append((PREFIX + "sha256:" + hashlib.sha256(content).hexdigest(), content))
    return objects


def scan(endpoint: str, output: Path, run_id: str, extra: list[str]) -> tuple[measure.Run, dict]:
    command = [
        sys.executable,
        "-m",
        "jobs.cli",
        "scan",
        "--bucket",
        BUCKET,
        "--emulator-endpoint",
        endpoint,
        "--output",
        str(output),
        "--run-id",
        run_id,
        "-q",
        *extra,
    ]
    run = measure.run(command, cwd=str(REPO))
    if run.returncode != 0:
        raise SystemExit(f"{run_id} failed with status {run.returncode}: {run.stderr[-2000:]}")
    return run, json.loads((output / run_id / "summary.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=5000, help="objects in the bucket (default 5000)")
    parser.add_argument("--size", type=int, default=1024, help="bytes per object (default 1024)")
    parser.add_argument("--server", choices=sorted(SERVERS), default="gcp-storage-emulator")
    parser.add_argument("--sample", default="1%", help="scan.reverify_sample of the second run (default 1%%)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-incremental-") as scratch:
        scratch = Path(scratch)
        server = SERVERS[args.server](scratch)
        objects = corpus(args.objects, args.size)
        server.seed(BUCKET, objects)
        config = scratch / "incremental.yaml"
        config.write_text(f"scan:\n  reverify_sample: {args.sample!r}\n")
        server.start()
        try:
            with FaultyProxy(server.port) as proxy:
                output = scratch / "reports"
                results = []
                for run_id, extra in (("first", []), ("second", ["--incremental", "--config", str(config)])):
                    before = len(proxy.stats.media_reads())
                    run, summary = scan(proxy.endpoint, output, run_id, extra)
                    gets = len(proxy.stats.media_reads()) - before
                    assert summary["objects_verified"] == args.objects and summary["unaccounted_objects"] == 0
                    results.append((run_id, run, summary, gets))
        finally:
            server.stop()

    print(f"{args.objects:,} x {args.size:,} B on {args.server}, reverify_sample {args.sample} on the second run")
    for run_id, run, summary, gets in results:
        hashed = summary["bytes_verified"] - summary["bytes_from_ledger"]
        print(
            f"  {run_id:<7} {gets:>6,} GETs, {hashed:>11,} bytes read and hashed, "
            f"{summary['verified_from_ledger']:>6,} carried over; {run.wall:6.2f} s wall, {run.cpu:6.2f} CPU-s"
        )
    (_, first_run, first, first_gets), (_, second_run, second, second_gets) = results
    share = second_gets / first_gets
    hashed_share = (second["bytes_verified"] - second["bytes_from_ledger"]) / first["bytes_verified"]
    wall_share = second_run.wall / first_run.wall
    print(f"  second / first: {share:.1%} of the GETs, {hashed_share:.1%} of the bytes, {wall_share:.0%} of the wall")
    print(f"  well under a tenth of the reads: {'yes' if share < 0.1 else 'NO'}")


if __name__ == "__main__":
    main()
