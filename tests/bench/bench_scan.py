"""Benchmark: registry-scrub against the shell recipe and the machine's hashing limit.

Not collected by pytest; run ``make bench`` or ``python tests/bench/bench_scan.py --help``.
Everything runs side by side in one run against one real gcp-storage-emulator,
because these machines are shared and noisy: compare the ratios, not the figures.

Printed, per corpus:
- emulator ceiling: plain sequential downloads, no hashing (every local figure is bounded by it);
- registry-scrub: the whole pipeline on the default local runner (wall time includes
  about 2 s of worker start-up);
- shell recipe: list, then ``curl …?alt=media | sha256sum`` for each object, sequentially;
- hashlib in memory: one process hashing the same bytes already in RAM (the per-core limit).
Then the small corpus again through a loopback proxy adding 30 ms to every request
(GCS's first-byte latency), with the object GETs registry-scrub made (one per healthy
object: the read protocol re-reads only on a mismatch), and the peak RSS of one worker hashing a 1 GiB object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

os.environ.setdefault("NO_GCE_CHECK", "true")
REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import requests  # noqa: E402

from jobs import logs  # noqa: E402
from jobs.emulator import Emulator, bulk_seed  # noqa: E402
from jobs.launcher import run_scan  # noqa: E402
from pipeline.config import parse_config  # noqa: E402
from tests.support.proxy import FaultyProxy  # noqa: E402

PREFIX = "containers/images/"
MiB = 1024 * 1024


@dataclass
class Corpus:
    bucket: str
    objects: list[tuple[str, bytes]]

    @property
    def total_bytes(self) -> int:
        return sum(len(content) for _, content in self.objects)


def make_corpus(bucket: str, count: int, size: int, seed: int) -> Corpus:
    rng = random.Random(seed)
    objects = []
    for _ in range(count):
        content = rng.randbytes(size)
        objects.append((PREFIX + "sha256:" + hashlib.sha256(content).hexdigest(), content))
    return Corpus(bucket, objects)


@dataclass
class Figure:
    label: str
    seconds: float
    total_bytes: int
    objects: int

    def row(self, reference: Figure | None) -> str:
        mbps = self.total_bytes / 1e6 / self.seconds
        ratio = f"{reference.seconds / self.seconds:6.2f}x" if reference else "      "
        return (
            f"  {self.label:<34} {self.seconds:8.2f} s {mbps:9.1f} MB/s "
            f"{self.objects / self.seconds:9.0f} obj/s  {ratio}"
        )


def time_emulator_ceiling(endpoint: str, corpus: Corpus) -> Figure:
    session = requests.Session()
    received = 0
    start = time.perf_counter()
    for name, _ in corpus.objects:
        with session.get(
            f"{endpoint}/download/storage/v1/b/{corpus.bucket}/o/{quote(name, safe='')}?alt=media", stream=True
        ) as response:
            response.raise_for_status()
            for chunk in response.iter_content(MiB):
                received += len(chunk)
    assert received == corpus.total_bytes, (received, corpus.total_bytes)
    return Figure(
        "emulator ceiling (download only)", time.perf_counter() - start, corpus.total_bytes, len(corpus.objects)
    )


def time_registry_scrub(
    endpoint: str, corpus: Corpus, output: Path, label: str, concurrency: int, fixed_cost: float = 0.0
) -> list[Figure]:
    config = parse_config(
        {
            "source": {"buckets": [corpus.bucket], "emulator_endpoint": endpoint},
            "scan": {"read_concurrency": concurrency},
            "report": {"output": str(output), "run_id": label.replace(" ", "-")},
        },
        "bench",
    )
    start = time.perf_counter()
    summary = run_scan(config, [])
    seconds = time.perf_counter() - start
    assert summary["objects_verified"] == len(corpus.objects), summary
    figures = [Figure(f"registry-scrub ({concurrency} reads/worker)", seconds, corpus.total_bytes, len(corpus.objects))]
    if fixed_cost and seconds > fixed_cost:
        figures.append(
            Figure("  same, less fixed start-up cost", seconds - fixed_cost, corpus.total_bytes, len(corpus.objects))
        )
    return figures


def measure_fixed_cost(endpoint: str, output: Path) -> float:
    """Wall time of a scan of a bucket with one tiny object: Beam's start-up, stages and report."""
    config = parse_config(
        {
            "source": {"buckets": ["bench-empty.appspot.com"], "emulator_endpoint": endpoint},
            "report": {"output": str(output), "run_id": "fixed-cost"},
        },
        "bench",
    )
    start = time.perf_counter()
    run_scan(config, [])
    return time.perf_counter() - start


SHELL_RECIPE = r"""
set -euo pipefail
curl -sf "$EP/storage/v1/b/$BUCKET/o?prefix=containers/images/" \
  | python3 -c 'import json,sys,urllib.parse as u
for item in json.load(sys.stdin).get("items", []): print(u.quote(item["name"], safe=""))' \
  | while read -r name; do
      curl -sf "$EP/download/storage/v1/b/$BUCKET/o/$name?alt=media" | sha256sum
    done | wc -l
"""


def time_shell_recipe(endpoint: str, corpus: Corpus) -> Figure:
    start = time.perf_counter()
    out = subprocess.run(
        ["bash", "-c", SHELL_RECIPE],
        env=dict(os.environ, EP=endpoint, BUCKET=corpus.bucket),
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = time.perf_counter() - start
    assert int(out.stdout.strip()) == len(corpus.objects), out
    return Figure("shell recipe (curl | sha256sum)", seconds, corpus.total_bytes, len(corpus.objects))


def time_hashlib(corpus: Corpus) -> Figure:
    start = time.perf_counter()
    for _, content in corpus.objects:
        hashlib.sha256(content).hexdigest()
    return Figure(
        "hashlib.sha256 in memory (1 core)", time.perf_counter() - start, corpus.total_bytes, len(corpus.objects)
    )


def worker_rss(endpoint: str, bucket: str, name: str, mode: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "tests.bench.worker_rss", endpoint, bucket, name, mode],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def print_block(title: str, figures: list[Figure], reference: Figure) -> None:
    print(f"\n{title}")
    print(f"  {'':<34} {'wall':>10} {'throughput':>14} {'objects':>14}  vs {reference.label.split(' (')[0]}")
    for figure in figures:
        print(figure.row(reference))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--large-count", type=int, default=40)
    parser.add_argument("--large-mib", type=int, default=25)
    parser.add_argument("--small-count", type=int, default=5000)
    parser.add_argument("--small-bytes", type=int, default=1024)
    parser.add_argument("--latency-ms", type=float, default=30.0)
    parser.add_argument("--rss-gib", type=float, default=1.0, help="size of the object for the memory figure")
    parser.add_argument("--skip-rss", action="store_true")
    args = parser.parse_args()
    logs.configure(quiet=True)

    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}")
    large = make_corpus("bench-large.appspot.com", args.large_count, args.large_mib * MiB, seed=1)
    small = make_corpus("bench-small.appspot.com", args.small_count, args.small_bytes, seed=2)
    huge_name = None
    with tempfile.TemporaryDirectory(prefix="registry-scrub-bench-") as scratch:
        data_dir, output = Path(scratch) / "gcs", Path(scratch) / "reports"
        started = time.perf_counter()
        bulk_seed(data_dir, large.bucket, large.objects)
        bulk_seed(data_dir, small.bucket, small.objects)
        bulk_seed(data_dir, "bench-empty.appspot.com", [(PREFIX + "sha256:" + hashlib.sha256(b"").hexdigest(), b"")])
        if not args.skip_rss:
            huge = os.urandom(int(args.rss_gib * 1024 * MiB))
            huge_name = PREFIX + "sha256:" + hashlib.sha256(huge).hexdigest()
            bulk_seed(data_dir, "bench-huge.appspot.com", [(huge_name, huge)])
            del huge
        print(
            f"seeded {len(large.objects)} x {args.large_mib} MiB and {len(small.objects)} x "
            f"{args.small_bytes} B in {time.perf_counter() - started:.1f} s"
        )

        with Emulator(data_dir) as emulator:
            fixed = measure_fixed_cost(emulator.endpoint, output)
            print(f"registry-scrub fixed cost (scan of a one-object bucket): {fixed:.2f} s")
            for corpus, title in (
                (large, f"large objects: {len(large.objects)} x {args.large_mib} MiB"),
                (small, f"small objects: {len(small.objects)} x {args.small_bytes} B"),
            ):
                ceiling = time_emulator_ceiling(emulator.endpoint, corpus)
                figures = [
                    ceiling,
                    *time_registry_scrub(emulator.endpoint, corpus, output, title.split(":")[0], 8, fixed),
                    time_shell_recipe(emulator.endpoint, corpus),
                    time_hashlib(corpus),
                ]
                print_block(title, figures, ceiling)

            with FaultyProxy(emulator.port, latency=args.latency_ms / 1000) as proxy:
                shell = time_shell_recipe(proxy.endpoint, small)
                gets_before = len(proxy.stats.media_reads())
                figures = [shell, *time_registry_scrub(proxy.endpoint, small, output, "small-proxied", 32, fixed)]
                gets = len(proxy.stats.media_reads()) - gets_before
                print_block(
                    f"small objects through a {args.latency_ms:.0f} ms latency proxy "
                    f"({len(small.objects)} x {args.small_bytes} B)",
                    figures,
                    shell,
                )
                # The read protocol re-reads only on a mismatch: a healthy bucket costs one GET per object.
                print(
                    f"  registry-scrub object GETs: {gets} for {len(small.objects)} objects "
                    f"({gets / len(small.objects):.2f} per object)"
                )

            if huge_name:
                print(f"\npeak RSS of one worker process hashing a {args.rss_gib:g} GiB object")
                for mode in ("scan", "download_as_bytes"):
                    result = worker_rss(emulator.endpoint, "bench-huge.appspot.com", huge_name, mode)
                    label = "registry-scrub HashObjectsFn" if mode == "scan" else "naive download_as_bytes"
                    print(
                        f"  {label:<34} peak {result['peak_rss_mib']:7.0f} MiB "
                        f"(before the read {result['baseline_rss_mib']:.0f} MiB; "
                        f"{result['size'] / 1e6 / result['seconds']:.0f} MB/s)"
                    )


if __name__ == "__main__":
    main()
