"""Benchmark: the fixed cost of a one-object scan, of two or more source trees side by side.

Not collected by pytest. ``python tests/bench/bench_fixed_cost.py --tree main=/tmp/main-tree
--tree this=. --rounds 5`` seeds one 1 KiB blob into one server, then runs in each round
every tree's whole CLI scan of it once (interpreter start to exit, through that tree's own
``tests/bench/timed_scan.py``, so the phases show), in an order rotated each round.
It prints, per tree, the median wall and CPU seconds and the median of each phase, and
per round the ratio of each tree's wall to the first tree's. Every tree runs on this
interpreter (the same installed dependencies); its own source comes first on ``sys.path``.

A tree's run must end as the first tree's did: the same exit status, the same report file
names and the same rows (the run's own id and times aside), or the benchmark stops.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NO_GCE_CHECK", "true")
REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.bench import measure  # noqa: E402
from tests.bench.servers import SERVERS  # noqa: E402
from tests.support.proxy import FaultyProxy  # noqa: E402

BUCKET = "bench-one.appspot.com"
PREFIX = "containers/images/"
PYTHON = sys.executable
# Fields that differ between any two runs, whatever the code: the run's id and clock, and where it wrote.
VOLATILE = re.compile(
    r'"(run_id|started_at|ended_at|verified_at|duration_s|report_location|objects_per_s|bytes_per_s|report_html)"'
)


def one_object() -> list[tuple[str, bytes]]:
    content = b"registry-scrub fixed cost\n" * 40
    return [(f"{PREFIX}sha256:{hashlib.sha256(content).hexdigest()}", content)]


def scan_once(tree: Path, endpoint: str, output: Path, run_id: str, phases_file: Path) -> dict:
    started = time.time()
    command = [
        PYTHON,
        str(tree / "tests" / "bench" / "timed_scan.py"),
        str(phases_file),
        repr(started),
        "--",
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
    ]
    run = measure.run(command, cwd=str(tree))
    if not phases_file.exists():
        raise SystemExit(f"{tree}: the scan ended with {run.returncode} and no phases:\n{run.stderr[-3000:]}")
    recorded = json.loads(phases_file.read_text())
    phases: dict[str, float] = {}
    for name, seconds in recorded["phases"]:
        phases[name] = phases.get(name, 0.0) + seconds
    phases["interpreter exit"] = started + run.wall - recorded["ended"]
    phases[f"of the Beam run: its bundles ({len(recorded['bundles'])})"] = sum(s for _, s in recorded["bundles"])
    return {"wall": run.wall, "cpu": run.cpu, "status": run.returncode, "phases": phases}


def report_of(run_dir: Path) -> dict[str, list]:
    """File name -> its content with the run's own id and clock blanked: what must not move."""
    files: dict[str, list] = {}
    for path in sorted(run_dir.iterdir()):
        text = path.read_text()
        if path.suffix == ".jsonl":
            files[path.name] = [_blank(json.loads(line)) for line in text.splitlines()]
        elif path.suffix == ".json":
            files[path.name] = [_blank(json.loads(text))]
        elif path.suffix == ".txt":
            files[path.name] = text.splitlines()
        else:  # report.html carries the run's clock in its text: its presence is what is compared
            files[path.name] = []
    return files


def _differences(expected, actual) -> str:
    (status_a, files_a), (status_b, files_b) = expected, actual
    if status_a != status_b:
        return f"exit status {status_b}, not {status_a}"
    if sorted(files_a) != sorted(files_b):
        return f"files {sorted(files_b)}, not {sorted(files_a)}"
    changed = [name for name in files_a if files_a[name] != files_b[name]]
    return "; ".join(f"{name}: {files_b[name]} != {files_a[name]}" for name in changed)


def _blank(value):
    if isinstance(value, dict):
        return {k: ("…" if VOLATILE.fullmatch(f'"{k}"') else _blank(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_blank(v) for v in value]
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", action="append", metavar="NAME=PATH", help="a source tree; repeat (default: this)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--server", choices=sorted(SERVERS), default="fake-gcs-server")
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="run every scan through the tests' loopback proxy adding this much to each request (GCS: about 30)",
    )
    args = parser.parse_args()
    trees = [(name, Path(path).resolve()) for name, path in (t.split("=", 1) for t in args.tree or [f"this={REPO}"])]
    with tempfile.TemporaryDirectory(prefix="bench-fixed-") as scratch_name:
        scratch = Path(scratch_name)
        server = SERVERS[args.server](scratch)
        server.seed(BUCKET, one_object())
        server.start()
        proxy = FaultyProxy(server.port, latency=args.latency_ms / 1000).__enter__() if args.latency_ms else None
        endpoint = proxy.endpoint if proxy else server.endpoint
        results: dict[str, list[dict]] = {name: [] for name, _ in trees}
        reference = None
        try:
            for round_index in range(args.rounds):
                order = trees[round_index % len(trees) :] + trees[: round_index % len(trees)]
                for name, tree in order:
                    run_id = f"{name}-{round_index}"
                    output = scratch / "reports"
                    sample = scan_once(tree, endpoint, output, run_id, scratch / f"phases-{run_id}.json")
                    report = report_of(output / run_id)
                    if reference is None:
                        reference = (sample["status"], report)
                    elif (sample["status"], report) != reference:
                        differences = _differences(reference, (sample["status"], report))
                        raise SystemExit(f"{name}: its report differs from the first run's: {differences}")
                    results[name].append(sample)
                    print(f"round {round_index + 1} {name:>10}: {sample['wall']:.2f} s wall, {sample['cpu']:.2f} CPU-s")
        finally:
            if proxy:
                proxy.__exit__(None, None, None)
            server.stop()
    through = f" through the proxy (+{args.latency_ms:g} ms per request)" if args.latency_ms else ""
    print(f"\n{args.server}{through}, {args.rounds} rounds, load average {os.getloadavg()[0]:.1f} at the end")
    first = trees[0][0]
    for name, _ in trees:
        samples = results[name]
        walls = [s["wall"] for s in samples]
        ratios = [b["wall"] / s["wall"] for s, b in zip(samples, results[first], strict=True)]
        print(
            f"{name:>10}: median {statistics.median(walls):.2f} s wall, "
            f"{statistics.median(s['cpu'] for s in samples):.2f} CPU-s  "
            f"(rounds: {', '.join(f'{w:.2f}' for w in walls)}); "
            f"{first}/{name} per round, median {statistics.median(ratios):.2f}x"
        )
        for phase in samples[0]["phases"]:
            values = [s["phases"].get(phase, 0.0) for s in samples]
            print(f"      {phase:<58} {statistics.median(values):5.2f} s")


if __name__ == "__main__":
    main()
